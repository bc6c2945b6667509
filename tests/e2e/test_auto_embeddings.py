"""Auto-embeddings: ai.initialize_embeddings, ai.refresh_embeddings, ai.drop_embedding_config and
ai.embedding_progress_view, against the session emulator's fakes (database ``auto_embeddings``).

A CALL commits batch by batch, so its progress shows in another session; inside a transaction
block it is refused, as on AlloyDB (docs/ai-functions.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.databases import fresh_database
from tests.support.emulators import Emulator

DB = "auto_embeddings"
MODEL = "text-embedding-005"


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {DB} SET "
                     "google_ml_integration.enable_faster_embedding_generation = on")
    return dsn


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def make_table(db: psycopg.Connection[Any], name: str, rows: int, vector: str = "vector(768)") -> None:
    db.execute(f'DROP TABLE IF EXISTS "{name}"')
    db.execute(f'CREATE TABLE "{name}" (id serial PRIMARY KEY, "Body" text, emb {vector})')
    db.execute(f'INSERT INTO "{name}" ("Body") SELECT \'item number \' || i || '
               f"CASE WHEN i % 7 = 0 THEN NULL ELSE ' of the catalogue' END "
               f"FROM generate_series(1, {rows}) AS i")
    db.execute(f'UPDATE "{name}" SET "Body" = NULL WHERE "Body" IS NULL OR id % 97 = 0')


def embedded_correctly(db: psycopg.Connection[Any], name: str) -> tuple[int, int, int]:
    row = db.execute(
        f'SELECT count(*) FILTER (WHERE "Body" IS NOT NULL), count(emb), '
        f"count(*) FILTER (WHERE emb = CASE WHEN \"Body\" IS NOT NULL "
        f"THEN embedding('{MODEL}', \"Body\")::vector END) "
        f'FROM "{name}"').fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_initialize_5000_rows_with_progress_seen_from_another_session(
        db: psycopg.Connection[Any], dsn: str) -> None:
    make_table(db, "Order Items", 5000)
    seen: list[tuple[str, int, float]] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as other:
            while not done.is_set():
                for status, processed, percent in other.execute(
                        "SELECT status, rows_processed, percent_progress "
                        "FROM ai.embedding_progress_view WHERE table_name = 'Order Items'"):
                    seen.append((status, processed, float(percent)))
                time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'Order Items', 'Body', 'emb', 100)")
    finally:
        done.set()
        watcher.join()
    with_content, embedded, correct = embedded_correctly(db, "Order Items")
    assert with_content == embedded == correct > 4000
    running = [s for s in seen if s[0] == "running" and 0 < s[1] < with_content]
    assert running, f"no progress seen while it ran: {seen[:5]}...{seen[-5:]}"
    assert all(0 < s[2] < 100 for s in running)
    processed = [s[1] for s in seen]
    assert processed == sorted(processed)
    row = db.execute("SELECT status, rows_processed, percent_progress, model_id, content_column, "
                     "embedding_column, elapsed_time > interval '0' "
                     "FROM ai.embedding_progress_view WHERE table_name = 'Order Items'").fetchone()
    assert row == ("success", with_content, 100, MODEL, "Body", "emb", True)


def test_transactional_mode_embeds_inserts_and_updates(db: psycopg.Connection[Any]) -> None:
    make_table(db, "tx_items", 50)
    db.execute(f"CALL ai.initialize_embeddings(model_id => '{MODEL}', table_name => 'tx_items', "
               "content_column => 'Body', embedding_column => 'emb', "
               "incremental_refresh_mode => 'transactional')")
    db.execute('INSERT INTO tx_items ("Body") VALUES (\'a brand new row\'), (NULL)')
    db.execute('UPDATE tx_items SET "Body" = \'changed content\' WHERE id = 1')
    db.execute('UPDATE tx_items SET "Body" = NULL WHERE id = 2')
    with_content, embedded, correct = embedded_correctly(db, "tx_items")
    assert with_content == embedded == correct
    assert one(db, 'SELECT emb IS NULL FROM tx_items WHERE id = 2') is True
    # Rolled back with the transaction that wrote it.
    with db.transaction():
        db.execute('INSERT INTO tx_items ("Body") VALUES (\'inside a transaction\')')
        assert one(db, "SELECT emb IS NOT NULL FROM tx_items WHERE \"Body\" = 'inside a transaction'")
    db.execute("CALL ai.drop_embedding_config('tx_items', 'emb')")
    db.execute('INSERT INTO tx_items ("Body") VALUES (\'after the drop\')')
    assert one(db, "SELECT emb IS NULL FROM tx_items WHERE \"Body\" = 'after the drop'") is True
    assert one(db, "SELECT count(*) FROM ai.embedding_progress_view WHERE table_name = 'tx_items'") == 0


def test_dropping_a_config_prints_nothing_and_takes_its_triggers(db: psycopg.Connection[Any]) -> None:
    # LangChain's form: positional arguments, a quoted schema-qualified table name.
    notices: list[str] = []
    db.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
    for mode in ("manual", "transactional"):
        make_table(db, "dropped_items", 5)
        notices.clear()  # make_table's DROP TABLE IF EXISTS
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', '\"public\".\"dropped_items\"', "
                   f"'Body', 'emb', 10, '{mode}')")
        db.execute("CALL ai.drop_embedding_config('\"public\".\"dropped_items\"', 'emb')")
        assert one(db, "SELECT count(*) FROM pg_trigger "
                       "WHERE tgrelid = 'dropped_items'::regclass AND NOT tgisinternal") == 0
        assert notices == []


def test_manual_mode_waits_for_refresh(db: psycopg.Connection[Any]) -> None:
    make_table(db, "manual_items", 30, vector="real[]")
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'manual_items', 'Body', 'emb', 7, 'manual')")
    db.execute('INSERT INTO manual_items ("Body") VALUES (\'later\')')
    assert one(db, "SELECT emb IS NULL FROM manual_items WHERE \"Body\" = 'later'") is True
    db.execute("CALL ai.refresh_embeddings('manual_items', 'emb')")
    assert one(db, "SELECT emb = embedding(%s, 'later') FROM manual_items WHERE \"Body\" = 'later'",
               [MODEL]) is True
    assert one(db, "SELECT status FROM ai.embedding_progress_view "
                   "WHERE table_name = 'manual_items'") == "success"


def test_manual_mode_tracking_column_has_alloydbs_name(db: psycopg.Connection[Any]) -> None:
    # LangChain's AlloyDBEngine leaves out "the hidden google_ml_track_stale_embedding_<n>
    # columns" by that prefix; its live AlloyDB test finds exactly one after initialize.
    db.execute("DROP TABLE IF EXISTS tracked_items")
    db.execute("CREATE TABLE tracked_items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
               "content text, meta json, embedding vector(768), other vector(768))")
    db.execute("INSERT INTO tracked_items (content) VALUES ('a'), ('b'), ('c')")
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'tracked_items', 'content', 'embedding')")
    columns = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'tracked_items' "
        "ORDER BY ordinal_position")]
    tracking = [c for c in columns if c.startswith("google_ml_track_stale_embedding_")]
    assert len(tracking) == 1, columns
    # the client's own filter: every column but the vectors and the tracking column
    kept = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = 'tracked_items' AND udt_name NOT IN ('vector', 'halfvec', 'sparsevec') "
        "AND column_name NOT LIKE %s ORDER BY ordinal_position",
        [r"google\_ml\_track\_stale\_embedding\_%"])]
    assert kept == ["id", "content", "meta"]
    # a second embedding column gets its own
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'tracked_items', 'content', 'other')")
    assert one(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                   "'tracked_items' AND column_name LIKE 'google\\_ml\\_track\\_stale\\_embedding\\_%'") == 2
    db.execute("CALL ai.drop_embedding_config('tracked_items')")
    assert one(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                   "'tracked_items' AND column_name LIKE 'google\\_ml\\_track%'") == 0


def test_inside_a_transaction_block_it_is_refused_and_changes_nothing(
        dsn: str, db: psycopg.Connection[Any]) -> None:
    # AlloyDB's procedures commit internally, which PostgreSQL refuses inside a transaction
    # block (the page: "Verify that AUTOCOMMIT is set to ON"; LangChain runs them in autocommit)
    make_table(db, "atomic_items", 20)
    calls = (f"CALL ai.initialize_embeddings('{MODEL}', 'atomic_items', 'Body', 'emb', 5)",
             "CALL ai.refresh_embeddings('atomic_items', 'emb')",
             "CALL ai.drop_embedding_config('atomic_items', 'emb')")
    for i, call in enumerate(calls):
        if i == 1:  # the others need a configuration
            db.execute(calls[0])
        with (psycopg.connect(dsn) as conn,
              pytest.raises(psycopg.errors.InvalidTransactionTermination,
                            match="invalid transaction termination")):
            conn.execute(call)
        # a Query of several statements is one implicit transaction block
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            db.execute(f"{call}; SELECT 1")
    assert one(db, "SELECT count(*) FROM ai.embedding_progress_view "
                   "WHERE table_name = 'atomic_items'") == 1
    assert embedded_correctly(db, "atomic_items") == (18, 18, 18)  # the autocommit CALL's
    # sent with parameters (the extended protocol) outside a block, it commits as psql's does
    db.execute("CALL ai.drop_embedding_config(%s, %s)", ["atomic_items", "emb"])
    db.execute("UPDATE atomic_items SET emb = NULL")
    db.execute("CALL ai.initialize_embeddings(%s, %s, %s, %s, %s)",
               [MODEL, "atomic_items", "Body", "emb", 5])
    assert embedded_correctly(db, "atomic_items") == (18, 18, 18)


def test_names_are_quoted_and_injection_fails_cleanly(db: psycopg.Connection[Any]) -> None:
    make_table(db, "safe_items", 3)
    db.execute("CREATE TABLE IF NOT EXISTS canary (x int)")
    attempts = [
        ("safe_items; DROP TABLE canary", "Body", "emb", psycopg.errors.UndefinedTable),
        ('safe_items"; DROP TABLE canary; --', "Body", "emb", psycopg.errors.UndefinedTable),
        ("safe_items", 'Body" = NULL; DROP TABLE canary; --', "emb", psycopg.errors.UndefinedColumn),
        ("safe_items", "Body", "emb = NULL; DROP TABLE canary", psycopg.errors.UndefinedColumn),
    ]
    for table, content, embedding, error in attempts:
        with pytest.raises(error):
            db.execute("CALL ai.initialize_embeddings(%s, %s, %s, %s)",
                       [MODEL, table, content, embedding])
    assert one(db, "SELECT to_regclass('canary') IS NOT NULL") is True
    db.execute("CALL ai.initialize_embeddings(%s, %s, %s, %s)",
               [MODEL, 'public."safe_items"', "Body", "emb"])
    assert embedded_correctly(db, "safe_items")[1] == 3


def test_failure_part_way_keeps_finished_batches_and_says_what_to_do(
        db: psycopg.Connection[Any]) -> None:
    db.execute("""
        CREATE OR REPLACE FUNCTION poison_in(model_id varchar(100), input_text text) RETURNS json
        LANGUAGE plpgsql AS $$
        BEGIN
            IF input_text = 'poison' THEN
                RAISE EXCEPTION 'the model refuses this text';
            END IF;
            RETURN google_ml.vertexai_text_embedding_input_transform(model_id, input_text);
        END $$""")
    db.execute("""
        CREATE OR REPLACE FUNCTION poison_batch_in(model_id text, input_texts text[]) RETURNS json
        LANGUAGE plpgsql AS $$
        BEGIN
            IF 'poison' = ANY (input_texts) THEN
                RAISE EXCEPTION 'the model refuses this text';
            END IF;
            RETURN google_ml.vertexai_text_embedding_batch_input_transform(model_id, input_texts);
        END $$""")
    db.execute("DELETE FROM google_ml.models WHERE id = 'poisonable'")
    db.execute("CALL google_ml.create_model(model_id => 'poisonable', model_provider => 'google', "
               "model_type => 'text_embedding', model_qualified_name => 'text-embedding-005', "
               "model_in_transform_fn => 'poison_in', "
               "model_out_transform_fn => 'google_ml.vertexai_text_embedding_output_transform', "
               "model_batch_in_transform_fn => 'poison_batch_in', "
               "model_batch_out_transform_fn => "
               "'google_ml.vertexai_text_embedding_batch_output_transform')")
    db.execute("DROP TABLE IF EXISTS fragile")
    db.execute("CREATE TABLE fragile (id int PRIMARY KEY, body text, emb vector(768))")
    db.execute("INSERT INTO fragile SELECT i, CASE WHEN i = 25 THEN 'poison' ELSE 'row ' || i END, "
               "NULL FROM generate_series(1, 30) AS i")
    with pytest.raises(psycopg.errors.RaiseException, match="refuses") as info:
        db.execute("CALL ai.initialize_embeddings('poisonable', 'fragile', 'body', 'emb', 10)")
    assert "ai.refresh_embeddings('fragile', 'emb')" in (info.value.diag.message_hint or "")
    assert "after 20 of 30 rows" in str(info.value)
    assert one(db, "SELECT count(emb) FROM fragile") == 20
    assert one(db, "SELECT count(*) FROM fragile WHERE id > 20 AND emb IS NOT NULL") == 0
    row = db.execute("SELECT status, rows_processed FROM ai.embedding_progress_view "
                     "WHERE table_name = 'fragile'").fetchone()
    assert row == ("failed", 20)
    db.execute("UPDATE fragile SET body = 'cured' WHERE id = 25")
    db.execute("CALL ai.refresh_embeddings('fragile', 'emb')")
    assert one(db, "SELECT count(emb) FROM fragile") == 30


def test_a_batch_over_4_mb_is_refused_with_alloydbs_text(db: psycopg.Connection[Any]) -> None:
    # troubleshoot/troubleshoot-auto-embedding-generation: "Error: 'AutoEmbeddingGeneration:
    # Request size is greater than 4MB'" / "The request size for a batch exceeds the maximum
    # supported size of 4MB" / "Reduce the batch_size value in your function call and retry."
    db.execute("DROP TABLE IF EXISTS wordy")
    db.execute("CREATE TABLE wordy (id int PRIMARY KEY, body text, emb vector(768))")
    db.execute("INSERT INTO wordy SELECT i, i || repeat(' lorem', 1666) "
               "FROM generate_series(1, 450) AS i")  # 4.5 MB of text
    with pytest.raises(psycopg.errors.InternalError_,
                       match="AutoEmbeddingGeneration: Request size is greater than 4MB") as info:
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'wordy', 'body', 'emb', 450)")
    assert "smaller batch_size" in (info.value.diag.message_detail or "")
    assert one(db, "SELECT count(emb) FROM wordy") == 0
    db.execute("CALL ai.refresh_embeddings('wordy', 'emb', 400)")  # 4.0 MB a batch: accepted
    assert one(db, "SELECT count(emb) FROM wordy") == 450


def test_flag_off_is_p0001_naming_the_setting(db: psycopg.Connection[Any]) -> None:
    make_table(db, "gated_items", 2)
    db.execute("SET google_ml_integration.enable_faster_embedding_generation = off")
    with pytest.raises(psycopg.errors.RaiseException,
                       match="google_ml_integration.enable_faster_embedding_generation"):
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'gated_items', 'Body', 'emb')")


def test_bad_arguments_are_clear_errors(db: psycopg.Connection[Any]) -> None:
    make_table(db, "args_items", 2)
    db.execute("ALTER TABLE args_items ADD COLUMN not_a_vector int")
    with pytest.raises(psycopg.errors.DatatypeMismatch, match="vector"):
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'args_items', 'Body', 'not_a_vector')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="incremental_refresh_mode"):
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'args_items', 'Body', 'emb', 10, 'sometimes')")
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("CALL ai.refresh_embeddings('args_items', 'emb')")
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'args_items', 'Body', 'emb')")
    with pytest.raises(psycopg.errors.DuplicateObject, match="already configured"):
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'args_items', 'Body', 'emb')")


def test_temporary_and_unlogged_tables_are_refused(db: psycopg.Connection[Any]) -> None:
    # ai/generate-manage-auto-embeddings-for-tables (2026-04-10): "Auto vector embeddings are
    # supported only for regular and partitioned PostgreSQL tables. They don't support
    # temporary tables or unlogged tables."
    db.execute("CREATE TEMP TABLE temp_items (id int, \"Body\" text, emb vector(768))")
    db.execute("INSERT INTO temp_items VALUES (1, 'a row')")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="temporary") as info:
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'temp_items', 'Body', 'emb')")
    assert info.value.diag.message_hint and "regular and partitioned" in info.value.diag.message_hint
    make_table(db, "unlogged_items", 3)
    db.execute("ALTER TABLE unlogged_items SET UNLOGGED")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="unlogged"):
        db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'unlogged_items', 'Body', 'emb', "
                   "incremental_refresh_mode => 'transactional')")
    assert one(db, "SELECT count(emb) FROM unlogged_items") == 0
    assert one(db, "SELECT count(*) FROM ai.embedding_progress_view "
                   "WHERE table_name IN ('temp_items', 'unlogged_items')") == 0
    # made unlogged after its initialization: refresh refuses too
    db.execute("ALTER TABLE unlogged_items SET LOGGED")
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'unlogged_items', 'Body', 'emb')")
    db.execute("ALTER TABLE unlogged_items SET UNLOGGED")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="unlogged"):
        db.execute("CALL ai.refresh_embeddings('unlogged_items', 'emb')")


def test_documented_state_tables_can_be_granted_and_read_but_not_forged(
        dsn: str, db: psycopg.Connection[Any]) -> None:
    make_table(db, "state_items", 12, vector="real[]")
    db.execute(f"CALL ai.initialize_embeddings('{MODEL}', 'state_items', 'Body', 'emb', 5, 'manual')")
    db.execute("DROP ROLE IF EXISTS embed_manager")
    db.execute("CREATE ROLE embed_manager LOGIN")
    # the GRANTs of AlloyDB's auto-embeddings page run unchanged
    db.execute("GRANT INSERT, UPDATE, DELETE ON google_ml.embed_gen_progress TO embed_manager")
    db.execute("GRANT INSERT, UPDATE, DELETE ON google_ml.embed_gen_settings TO embed_manager")
    assert db.execute(
        "SELECT model_id, batch_size, incremental_refresh_mode FROM google_ml.embed_gen_settings "
        "WHERE table_name = 'state_items'").fetchall() == [(MODEL, 5, "manual")]
    with psycopg.connect(dsn.replace("postgres@", "embed_manager@", 1), autocommit=True) as user:
        (status, total, done) = user.execute(  # type: ignore[misc]
            "SELECT status, rows_total, rows_processed FROM google_ml.embed_gen_progress "
            "WHERE table_name = 'state_items'").fetchone()
        assert status == "success" and total == done
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):  # not updatable
            user.execute("DELETE FROM google_ml.embed_gen_settings")
    assert one(db, "SELECT count(*) FROM google_ml.embed_gen_settings "
                   "WHERE table_name = 'state_items'") == 1
    db.execute("DROP OWNED BY embed_manager")
    db.execute("DROP ROLE embed_manager")


def test_transactional_mode_needs_the_tables_owner(dsn: str, db: psycopg.Connection[Any]) -> None:
    # The page: "To use the transactional mode, you must have the owner role on the table."
    # PostgreSQL alone lets a holder of the TRIGGER privilege create the mode's trigger.
    make_table(db, "owned_items", 4)
    db.execute("DROP OWNED BY trigger_holder" if one(
        db, "SELECT count(*) FROM pg_roles WHERE rolname = 'trigger_holder'") else "SELECT 1")
    db.execute("DROP ROLE IF EXISTS trigger_holder")
    db.execute("DROP ROLE IF EXISTS owners")
    db.execute("CREATE ROLE trigger_holder LOGIN")
    db.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRIGGER ON owned_items TO trigger_holder")
    call = (f"CALL ai.initialize_embeddings('{MODEL}', 'owned_items', 'Body', 'emb', "
            "incremental_refresh_mode => 'transactional')")
    with psycopg.connect(dsn.replace("postgres@", "trigger_holder@", 1), autocommit=True) as user:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owner of table") as info:
            user.execute(call)
        assert info.value.diag.message_hint and "owner" in info.value.diag.message_hint
        assert one(user, "SELECT count(emb) FROM owned_items") == 0
        assert one(db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'owned_items'::regclass") == 0
        # a member of the owning role may
        db.execute("CREATE ROLE owners")
        db.execute("ALTER TABLE owned_items OWNER TO owners")
        db.execute("GRANT owners TO trigger_holder")
        user.execute(call)
        assert one(user, "SELECT count(emb) FROM owned_items") == one(
            user, 'SELECT count("Body") FROM owned_items')
        user.execute("CALL ai.drop_embedding_config('owned_items')")
    db.execute("DROP TABLE owned_items")
    db.execute("DROP OWNED BY trigger_holder")
    db.execute("DROP ROLE trigger_holder")
    db.execute("DROP ROLE owners")
