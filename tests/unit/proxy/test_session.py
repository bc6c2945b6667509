"""proxy/session.py without sockets: the hold queue a session keeps client bytes in, and its
statement accounting fed server and client messages (as h11 tests its Connection)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy import protocol as pq
from proxy.rewrites import SETTINGS_VIEW, ErrorHint
from proxy.session import (
    SERVER_INSPECT,
    STARTUP_INSPECT,
    ExtensionStandIn,
    Held,
    HoldQueue,
    Prelude,
    Session,
    Step,
    client_scanner,
)
from tests.support import wire


def test_nothing_is_held_until_a_hold_begins() -> None:
    queue = HoldQueue()
    assert not queue.holding
    with pytest.raises(RuntimeError):
        queue.keep(b"Q...", framed=False)


def test_bytes_kept_during_a_hold_come_back_in_arrival_order_with_their_kind() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"framed", framed=True)
    queue.keep(b"raw", framed=False)
    assert queue.holding
    assert queue.release() == [Held(b"framed", True), Held(b"raw", False)]
    assert not queue.holding


def test_bytes_wait_for_the_last_of_overlapping_holds() -> None:
    queue = HoldQueue()
    queue.hold()  # e.g. opening the upstream connection
    queue.hold()  # e.g. registering the engine endpoint
    queue.keep(b"a", framed=False)
    assert queue.release() == []
    assert queue.holding
    assert queue.release() == [Held(b"a", False)]


def test_a_release_leaves_the_queue_empty_for_the_next_hold() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"a", framed=False)
    queue.release()
    queue.hold()
    assert queue.release() == []


def test_requeued_items_come_after_what_the_new_hold_kept() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.keep(b"first", framed=False)
    queue.keep(b"second", framed=False)
    _first, second = queue.release()
    # Relaying ``first`` started new work, which kept the rest of its own chunk.
    queue.hold()
    queue.keep(b"rest of first", framed=True)
    queue.requeue([second])
    assert queue.release() == [Held(b"rest of first", True), second]


def test_release_without_hold_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        HoldQueue().release()


# -- Session: statement accounting, fed server messages as the relay inspects them ----------

def server(mtype: bytes, body: bytes, ordinal: int = 0) -> pq.Message:
    return pq.Message(mtype, pq.message(mtype, body), ordinal)


def ready(ordinal: int, status: bytes = b"I") -> pq.Message:
    return server(pq.READY_FOR_QUERY, status, ordinal)


def started_session() -> Session:
    session = Session({"user": "alice", "database": "shop"})
    session.server_message(ready(1))
    return session


def test_startup_inspects_authentication_and_ready_then_only_key_and_parameters() -> None:
    session = Session()
    assert session.server_inspect == STARTUP_INSPECT
    session.server_message(ready(1))
    assert session.started
    assert session.server_inspect == SERVER_INSPECT


def test_backend_key_data_is_learned_and_asks_the_shell_to_record_the_session() -> None:
    session = Session()
    raw, step = session.server_message(server(pq.BACKEND_KEY_DATA, struct.pack("!II", 4242, 7)))
    assert step is Step.BACKEND_KEY
    assert session.backend_pid == 4242 and session.backend_key == struct.pack("!I", 7)
    assert raw == pq.message(pq.BACKEND_KEY_DATA, struct.pack("!II", 4242, 7))


def test_registration_is_one_step_at_the_ready_for_query_that_answers_the_statement() -> None:
    session = started_session()
    session.register_after(3)
    assert ord("Z") in session.server_inspect
    assert session.server_message(ready(2)) == (ready(2).raw, None)
    assert session.server_message(ready(3))[1] is Step.REGISTER_ENDPOINT
    assert session.register_at is None
    assert ord("Z") not in session.server_inspect
    assert session.server_message(ready(4))[1] is None


def test_registration_waits_for_the_transaction_to_commit() -> None:
    session = started_session()
    session.register_after(2)
    assert session.server_message(ready(2, b"T"))[1] is None
    assert session.server_message(ready(3, b"I"))[1] is Step.REGISTER_ENDPOINT


def test_a_renamed_tag_replaces_the_next_matching_command_complete() -> None:
    session = started_session()
    session.rename_next_tag(b"DO", b"CREATE EXTENSION", 1)  # the first Query's answer
    assert ord("C") in session.server_inspect
    raw, _ = session.server_message(server(pq.COMMAND_COMPLETE, b"SET\x00", 1))
    assert raw == pq.message(pq.COMMAND_COMPLETE, b"SET\x00")
    raw, _ = session.server_message(server(pq.COMMAND_COMPLETE, b"DO\x00", 1))
    assert raw == pq.message(pq.COMMAND_COMPLETE, b"CREATE EXTENSION\x00")
    assert session.server_inspect == SERVER_INSPECT


def test_an_error_drops_the_pending_rename_and_gets_its_hint() -> None:
    session = started_session()
    session.rename_next_tag(b"DO", b"CREATE EXTENSION", 0)
    session.add_error_hint(ErrorHint("42601", 8, "try this"), 0)
    error = pq.error_response("42601", "syntax error")
    error = pq.message(pq.ERROR_RESPONSE, error[5:-1] + b"P8\x00\x00")
    raw, _ = session.server_message(pq.Message(pq.ERROR_RESPONSE, error))
    assert pq.parse_error_fields(raw[5:])["H"] == "try this"
    assert not session.tag_renames and not session.error_hints
    assert session.server_inspect == SERVER_INSPECT


def test_client_encoding_is_followed_from_parameter_status() -> None:
    session = started_session()
    session.server_message(server(pq.PARAMETER_STATUS, b"client_encoding\x00latin1\x00"))
    assert session.client_encoding == "LATIN1"


def test_channel_binding_mechanisms_are_removed_from_authentication_sasl() -> None:
    body = struct.pack("!I", 10) + b"SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"
    raw, _ = Session().server_message(server(pq.AUTHENTICATION, body))
    assert raw == pq.message(pq.AUTHENTICATION, struct.pack("!I", 10) + b"SCRAM-SHA-256\x00\x00")


def test_dbname_defaults_to_the_user() -> None:
    assert Session({"user": "alice"}).dbname == "alice"


def test_start_adds_the_instance_to_the_options_sent_upstream() -> None:
    session = Session()
    packet = session.start(pq.PROTOCOL_3_0, {"user": "alice", "options": "-c work_mem=4MB"},
                           "host:6432")
    assert session.params == {"user": "alice", "options": "-c work_mem=4MB"}
    assert pq.parse_startup_parameters(packet[8:]) == {
        "user": "alice",
        "options": "-c work_mem=4MB -c google_ml_integration.emulator_instance=host:6432"}
    packet = Session().start(pq.PROTOCOL_3_0, {"user": "bob"}, "h:1")
    assert pq.parse_startup_parameters(packet[8:])["options"] == (
        "-c google_ml_integration.emulator_instance=h:1")


# -- Session: the client direction, fed the messages client_scanner() frames ----------------

CREATE = "CREATE EXTENSION google_ml_integration"
MODEL_CALL = ("SELECT count(*) FROM docs WHERE CASE WHEN flag THEN true END"
              " AND google_ml.embedding('text-embedding-005', content) IS NOT NULL")


@dataclass
class Config:
    """A proxy configuration as the client direction reads it (listener.ProxyConfig)."""

    warmup: bool = True
    extension_emulation: ExtensionStandIn | None = None
    flags: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class Databases:
    """What the proxy knows of databases: has the extension; a check is due (each answer once)."""

    databases_with_extension: set[str] = field(default_factory=set)
    due: list[bool] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def extension_check_due(self, dbname: str) -> bool:
        self.asked.append(dbname)
        return self.due.pop(0) if self.due else False


class StandIn:
    """An extension stand-in that says which statement it stood in for."""

    def handles(self, name: str) -> bool:
        return name == "google_ml_integration"

    def create_sql(self, name: str, if_not_exists: bool, version: str | None = None) -> str:
        return f"DO $$ BEGIN RAISE NOTICE 'create {name} {if_not_exists} {version}'; END $$"

    def update_sql(self, name: str, version: str | None) -> str:
        return f"DO $$ BEGIN RAISE NOTICE 'update {name} {version}'; END $$"

    def drop_sql(self, name: str, if_exists: bool) -> str:
        return f"DO $$ BEGIN RAISE NOTICE 'drop {name} {if_exists}'; END $$"


def query(sql: str, ordinal: int = 1) -> pq.Message:
    return pq.Message(pq.QUERY, pq.message(pq.QUERY, sql.encode() + b"\x00"), ordinal)


def parse(sql: str, name: bytes = b"s1", ordinal: int = 0) -> pq.Message:
    body = name + b"\x00" + sql.encode() + b"\x00" + struct.pack("!hI", 1, 25)
    return pq.Message(pq.PARSE, pq.message(pq.PARSE, body), ordinal)


def sql_of(raw: bytes | Prelude) -> str:
    if isinstance(raw, Prelude):
        raw = raw.message
    if raw[:1] == pq.PARSE:
        _, offset = pq.cstring(raw, 5)
        return pq.cstring(raw, offset)[0].decode()
    return pq.cstring(raw, 5)[0].decode()


def shop_with_extension() -> Databases:
    return Databases({"shop"})


def test_a_statement_with_nothing_to_rewrite_goes_as_it_came() -> None:
    msg = query("SELECT name FROM extensions_catalogue")
    assert started_session().client_message(msg, Config(), shop_with_extension()) == (
        msg.raw, None)


def test_pg_settings_is_read_through_the_extensions_view_where_it_is_installed() -> None:
    msg = query("SELECT name FROM pg_settings")
    raw, step = started_session().client_message(msg, Config(), shop_with_extension())
    assert step is None and SETTINGS_VIEW in sql_of(raw)
    raw, _ = started_session().client_message(msg, Config(), Databases())
    assert raw == msg.raw  # no view without the extension


def test_a_model_call_gets_its_warm_up_unless_the_configuration_turns_it_off() -> None:
    msg = query(MODEL_CALL)
    raw, _ = started_session().client_message(msg, Config(), shop_with_extension())
    assert "google_ml._warm(" in sql_of(raw)
    raw, _ = started_session().client_message(msg, Config(warmup=False), shop_with_extension())
    assert raw == msg.raw


def test_a_statement_where_the_extension_was_not_seen_registers_first() -> None:
    session = started_session()
    databases = Databases(due=[True])
    msg = query(MODEL_CALL)
    raw, step = session.client_message(msg, Config(), databases)
    assert step is Step.REGISTER_ENDPOINT  # before the statement: the shell holds it
    assert raw == msg.raw  # no warm-up: the extension is not known to be there yet
    assert databases.asked == ["shop"]
    assert session.client_message(msg, Config(), databases)[1] is None  # not due again


def test_create_extension_registers_at_the_ready_for_query_that_answers_it() -> None:
    session = started_session()
    raw, step = session.client_message(query(CREATE, ordinal=2), Config(), Databases())
    assert step is None and raw == query(CREATE).raw
    assert session.register_at == 3  # the server's ReadyForQuery ordinals run one ahead
    assert ord("Z") in session.server_inspect
    assert session.server_message(ready(3))[1] is Step.REGISTER_ENDPOINT


def test_create_extension_in_a_parse_registers_after_the_next_sync() -> None:
    session = started_session()
    session.client_message(parse(CREATE, ordinal=2), Config(), Databases())
    assert session.register_at == 4


def test_the_stand_in_replaces_extension_commands_and_their_tags() -> None:
    for sql, replaced, tag in [
        (CREATE + " VERSION '1.4.2'", "create google_ml_integration False 1.4.2",
         b"CREATE EXTENSION"),
        ("ALTER EXTENSION google_ml_integration UPDATE TO '1.5.8'",
         "update google_ml_integration 1.5.8", b"ALTER EXTENSION"),
        ("DROP EXTENSION IF EXISTS google_ml_integration", "drop google_ml_integration True",
         b"DROP EXTENSION"),
    ]:
        session = started_session()
        raw, _ = session.client_message(query(sql), Config(extension_emulation=StandIn()),
                                        Databases())
        assert replaced in sql_of(raw)
        answered, _ = session.server_message(server(pq.COMMAND_COMPLETE, b"DO\x00", 1))
        assert answered == pq.message(pq.COMMAND_COMPLETE, tag + b"\x00")


def test_other_extensions_are_not_stood_in_for() -> None:
    msg = query("CREATE EXTENSION hstore")
    raw, _ = started_session().client_message(msg, Config(extension_emulation=StandIn()),
                                              Databases())
    assert raw == msg.raw


def test_a_rewritten_parse_keeps_its_name_and_parameter_types() -> None:
    msg = parse("SELECT name FROM pg_settings WHERE name = $1")
    raw, _ = started_session().client_message(msg, Config(), shop_with_extension())
    assert isinstance(raw, bytes) and raw[5:8] == b"s1\x00"
    assert SETTINGS_VIEW in sql_of(raw)
    assert raw.endswith(struct.pack("!hI", 1, 25))


def test_statements_are_not_rewritten_in_an_encoding_the_parser_does_not_read() -> None:
    session = started_session()
    session.server_message(server(pq.PARAMETER_STATUS, b"client_encoding\x00LATIN1\x00"))
    msg = query("SELECT name FROM pg_settings")
    assert session.client_message(msg, Config(), shop_with_extension())[0] == msg.raw
    invalid = pq.Message(pq.QUERY, pq.message(pq.QUERY, b"SELECT '\xff' FROM pg_settings\x00"))
    assert started_session().client_message(invalid, Config(), shop_with_extension())[0] == (
        invalid.raw)


def test_an_unparsable_statement_goes_as_it_came_and_its_error_gets_a_hint() -> None:
    session = started_session()
    sql = ("SELECT google_ml.create_model(model_id => 'm' "
           "model_provider => 'google')")
    msg = query(sql)
    assert session.client_message(msg, Config(), Databases())[0] == msg.raw
    [(span, hint)] = session.error_hints
    assert span == 1  # the Query's own answer
    assert ord("E") in session.server_inspect and "comma" in hint.hint


def test_client_segments_put_the_registration_step_before_its_statement() -> None:
    session = started_session()
    stream = (pq.message(pq.QUERY, b"SELECT 1\x00") + query(MODEL_CALL).raw
              + pq.message(pq.SYNC, b""))
    segments = client_scanner().feed(stream)
    out = session.client_segments(segments, Config(), Databases(due=[True]))
    assert out == [pq.message(pq.QUERY, b"SELECT 1\x00"), Step.REGISTER_ENDPOINT,
                   query(MODEL_CALL).raw + pq.message(pq.SYNC, b"")]


def _client_stream() -> bytes:
    messages = [
        pq.message(pq.QUERY, b"SELECT 1\x00"),
        query(MODEL_CALL).raw,
        parse("SELECT name FROM pg_settings").raw,
        pq.message(pq.BIND, b"\x00s1\x00" + b"\x00" * 6),
        pq.message(pq.EXECUTE, b"\x00\x00\x00\x00\x00"),
        pq.message(pq.SYNC, b""),
        query(CREATE).raw,
        query("SELECT broken FROM pg_settings WHERE").raw,
        query(MODEL_CALL).raw,
        pq.message(pq.TERMINATE, b""),
    ]
    return b"".join(messages)


def _relayed(pieces: list[bytes]) -> tuple[list[bytes | Step], int | None]:
    """What a session sends upstream for a client stream received in these pieces: the bytes
    joined between steps, and the ReadyForQuery it will register after."""
    session = started_session()
    scanner = client_scanner()
    databases = Databases(due=[False, True, False, False, True])
    out: list[bytes | Step] = []
    run = b""
    for piece in pieces:
        for item in session.client_segments(scanner.feed(piece), Config(), databases):
            if isinstance(item, Step):
                out += [run, item]
                run = b""
            else:
                assert isinstance(item, bytes)  # no statement of this stream has a prelude
                run += item
    return [*out, run], session.register_at


@given(st.lists(st.integers(min_value=1, max_value=64), max_size=40))
def test_any_split_of_the_client_stream_gives_the_same_upstream_bytes_and_steps(
        cuts: list[int]) -> None:
    stream = _client_stream()
    pieces, pos = [], 0
    for cut in [*cuts, len(stream)]:
        if pos < len(stream):
            pieces.append(stream[pos:pos + cut])
            pos += cut
    whole, register_at = _relayed([stream])
    assert _relayed(pieces) == (whole, register_at)
    assert whole.count(Step.REGISTER_ENDPOINT) == 2 and register_at is not None


# -- Session: preludes (a statement of the proxy's own before a client's Query) -------------

CONCURRENTLY = "CREATE INDEX CONCURRENTLY i ON t USING scann (e cosine) WITH (num_leaves = 5)"


def test_a_concurrent_scann_index_query_comes_as_a_prelude_carrying_the_statement() -> None:
    session = started_session()
    prelude, step = session.client_message(query(CONCURRENTLY, ordinal=3), Config(), Databases())
    assert step is None and isinstance(prelude, Prelude)
    assert "_scann_check_new_index" in prelude.sql
    assert sql_of(prelude.message) == "CREATE INDEX CONCURRENTLY i ON t USING scann (e cosine)"
    assert prelude.before == 2  # Query and Sync messages before it


def test_the_same_statement_in_a_parse_goes_without_a_prelude() -> None:
    raw, _ = started_session().client_message(parse(CONCURRENTLY), Config(), Databases())
    assert isinstance(raw, bytes)
    assert sql_of(raw) == "CREATE INDEX CONCURRENTLY i ON t USING scann (e cosine)"


def test_client_segments_put_the_prelude_in_the_statements_place() -> None:
    stream = pq.message(pq.QUERY, b"SELECT 1\x00") + query(CONCURRENTLY).raw + pq.message(
        pq.SYNC, b"")
    out = started_session().client_segments(client_scanner().feed(stream), Config(), Databases())
    assert len(out) == 3 and isinstance(out[1], Prelude)
    assert out[0] == pq.message(pq.QUERY, b"SELECT 1\x00")
    assert out[2] == pq.message(pq.SYNC, b"")


def prelude_under_way(before: int = 0) -> tuple[Session, Prelude]:
    session = started_session()
    prelude = Prelude("DO $$ BEGIN END $$", query(CONCURRENTLY).raw, before)
    sent = session.start_prelude(prelude)
    assert sent == pq.message(pq.QUERY, b"DO $$ BEGIN END $$\x00")
    assert session.server_inspect == frozenset(range(256))  # every message, to find its answer
    return session, prelude


def command_complete(tag: bytes, ordinal: int) -> pq.Message:
    return server(pq.COMMAND_COMPLETE, tag + b"\x00", ordinal)


def test_a_preludes_answer_is_swallowed_and_its_statement_goes_next() -> None:
    session, prelude = prelude_under_way()
    assert session.server_message(command_complete(b"DO", 1)) == (b"", None)
    assert session.server_message(ready(2)) == (b"", Step.PRELUDE_DONE)
    assert session.after_prelude() == prelude.message
    assert session.after_prelude() == b""  # handed out once
    assert session.readies_swallowed == 1
    assert session.server_inspect == SERVER_INSPECT


def test_a_preludes_error_is_the_answer_to_the_dropped_statement_without_its_context() -> None:
    session, _ = prelude_under_way()
    error = pq.error_response("XX000", "Cannot create ScaNN index")
    error = pq.message(pq.ERROR_RESPONSE, error[5:-1] + b"WPL/pgSQL function inline_code_block\x00\x00")
    assert session.server_message(pq.Message(pq.ERROR_RESPONSE, error, 1)) == (b"", None)
    forwarded, step = session.server_message(ready(2))
    assert step is Step.PRELUDE_DONE and session.after_prelude() == b""
    assert forwarded == pq.error_response("XX000", "Cannot create ScaNN index") + ready(2).raw
    assert session.readies_swallowed == 0  # its ReadyForQuery is the statement's


def test_answers_of_earlier_messages_pass_before_the_preludes_own() -> None:
    """A Query and messages of an extended-protocol batch sent before the prelude: their
    answers come first, the prelude's is the last CommandComplete before its ReadyForQuery."""
    session, prelude = prelude_under_way(before=1)
    select = server(pq.DATA_ROW, b"\x00\x00", 1)
    assert session.server_message(select) == (select.raw, None)
    done = command_complete(b"SELECT 1", 1)
    assert session.server_message(done) == (done.raw, None)
    assert session.server_message(ready(2)) == (ready(2).raw, None)  # not the prelude's
    parsed = server(b"1", b"", 2)
    assert session.server_message(parsed) == (parsed.raw, None)
    # from here a CommandComplete is held back until the next: the prelude's is the last
    assert session.server_message(command_complete(b"INSERT 0 1", 2)) == (b"", None)
    assert session.server_message(command_complete(b"DO", 2)) == (
        command_complete(b"INSERT 0 1", 2).raw, None)
    assert session.server_message(ready(3)) == (b"", Step.PRELUDE_DONE)
    assert session.after_prelude() == prelude.message


def test_registration_after_a_prelude_counts_the_clients_ready_for_query_messages() -> None:
    """CREATE EXTENSION sent after a statement with a prelude: the registration comes at the
    ReadyForQuery that answers it, one later on the server's count."""
    session, _ = prelude_under_way()
    session.client_message(query(CREATE, ordinal=2), Config(), Databases())
    assert session.register_at == 3
    session.server_message(ready(2))  # the prelude's
    assert session.server_message(ready(3))[1] is None  # the statement's
    assert session.server_message(ready(4))[1] is Step.REGISTER_ENDPOINT  # CREATE EXTENSION's


def test_a_prelude_kept_during_a_hold_comes_back_in_its_place() -> None:
    queue = HoldQueue()
    queue.hold()
    queue.hold()
    queue.keep(b"before", framed=True)
    prelude = Prelude("DO $$ BEGIN END $$", b"Q", 0)
    queue.keep_prelude(prelude)
    queue.keep(b"after", framed=False)
    assert queue.holds_besides_one
    queue.keep_first(b"first")
    assert queue.release() == []
    assert not queue.holds_besides_one
    assert queue.release() == [Held(b"first", True), Held(b"before", True),
                               Held(b"", True, prelude), Held(b"after", False)]


def test_a_preludes_error_takes_the_hint_queued_for_its_statement() -> None:
    session, _ = prelude_under_way()
    session.add_error_hint(ErrorHint("42704", 0, "Write vector_l2_ops.", message_part='"l2"'), 1)
    error = pq.error_response("42704", 'operator class "l2" does not exist for access method "ivf"')
    session.server_message(pq.Message(pq.ERROR_RESPONSE, error, 1))
    forwarded, _ = session.server_message(ready(2))
    assert pq.parse_error_fields(forwarded[5:])["H"] == "Write vector_l2_ops."
    assert not session.error_hints


class ScannStandIn(StandIn):
    def handles(self, name: str) -> bool:
        return name == "alloydb_scann"


def test_a_stood_in_statement_keeps_only_the_stand_ins_tag_rename() -> None:
    """CREATE EXTENSION alloydb_scann CASCADE: the proxy's own DO block (the ivf access method
    added after it) gives way to the stand-in's on a server without the files; one DO tag comes,
    so one rename."""
    session = started_session()
    raw, _ = session.client_message(query("CREATE EXTENSION alloydb_scann CASCADE"),
                                    Config(extension_emulation=ScannStandIn()), Databases())
    assert "create alloydb_scann False" in sql_of(raw)
    assert [(r.old, r.new) for r in session.tag_renames] == [(b"DO", b"CREATE EXTENSION")]


# -- Session: the tags of prepared statements ------------------------------------------------

SHOW_FLAG = "SHOW google_ml_integration.enable_model_support"


def result(tag: bytes, ordinal: int, index: int) -> pq.Message:
    return pq.Message(pq.COMMAND_COMPLETE, pq.message(pq.COMMAND_COMPLETE, tag + b"\x00"),
                      ordinal, index)


def tag_of(session: Session, msg: pq.Message) -> bytes:
    return session.server_message(msg)[0][5:].rstrip(b"\x00")


def test_each_execute_of_a_prepared_show_renames_its_own_result_and_no_other() -> None:
    session, scanner = started_session(), client_scanner()

    def send(stream: bytes) -> None:
        session.client_segments(scanner.feed(stream), Config(), shop_with_extension())
        if scanner.following and not session.follows:
            scanner.unfollow()

    # Prepared and run once, in one chunk (as psycopg sends it); never-run s2 renames nothing.
    send(wire.parse("s1", SHOW_FLAG) + wire.bind("p", "s1", []) + wire.execute("p")
         + wire.parse("s2", SHOW_FLAG) + wire.SYNC)
    assert session.follows and scanner.following
    assert tag_of(session, result(b"SELECT 1", 1, 0)) == b"SHOW"
    session.server_message(ready(2))
    # Run again between two other statements: only its result, the second of the span.
    send(wire.parse("", "SELECT 7") + wire.bind("", "", []) + wire.execute("")
         + wire.bind("", "s1", []) + wire.execute("")
         + wire.parse("", "SELECT 8") + wire.bind("", "", []) + wire.execute("") + wire.SYNC)
    assert [tag_of(session, result(b"SELECT 1", 2, i)) for i in range(3)] == [
        b"SELECT 1", b"SHOW", b"SELECT 1"]
    session.server_message(ready(3))
    # An error in the span: the Executes after it are skipped, their renames dropped.
    send(wire.bind("", "s1", []) + wire.execute("") + wire.SYNC)
    session.server_message(server(pq.ERROR_RESPONSE, pq.error_response("57014", "c")[5:], 3))
    session.server_message(ready(4))
    assert not session.tag_renames
    send(wire.query("SELECT 42"))  # a Query's own span
    assert tag_of(session, result(b"SELECT 1", 4, 0)) == b"SELECT 1"
    session.server_message(ready(5))
    # Closed, the statements and portals are forgotten; the client direction is not followed.
    send(pq.message(b"C", b"Ss1\x00") + pq.message(b"C", b"Ss2\x00") + pq.message(b"C", b"Pp\x00")
         + pq.message(b"C", b"P\x00") + wire.SYNC)
    assert session.follows  # until the Closes are answered (an error would undo them)
    session.server_message(ready(6))
    send(b"")
    assert not session.follows and not scanner.following


def error(sqlstate: str, ordinal: int, index: int = 0) -> pq.Message:
    return pq.Message(pq.ERROR_RESPONSE, pq.error_response(sqlstate, "e"), ordinal, index)


def test_a_parse_postgresql_did_not_make_leaves_the_names_renames_as_they_were() -> None:
    """PostgreSQL keeps a statement when a Parse of its name fails (42P05, the name exists), or
    when a Parse or Close of it is skipped after an error of its span (the pitfall: record a
    statement's state only once its Parse is answered)."""
    session, scanner = started_session(), client_scanner()

    def send(stream: bytes) -> None:
        session.client_segments(scanner.feed(stream), Config(), shop_with_extension())

    send(wire.parse("s1", SHOW_FLAG) + wire.SYNC)
    session.server_message(ready(2))
    # s1 exists: this Parse fails, and s1 is still the SHOW.
    send(wire.parse("s1", "SELECT 1") + wire.SYNC)
    session.server_message(error("42P05", 2))
    session.server_message(ready(3))
    send(wire.bind("", "s1", []) + wire.execute("") + wire.SYNC)
    assert tag_of(session, result(b"SELECT 1", 3, 0)) == b"SHOW"
    session.server_message(ready(4))
    # A Close and a Parse after the failing Execute never ran: s1 is still the SHOW.
    send(wire.parse("", "SELECT 1/0") + wire.bind("", "", []) + wire.execute("")
         + pq.message(b"C", b"Ss1\x00") + wire.parse("s1", "SELECT 5") + wire.SYNC)
    session.server_message(error("22012", 4))
    session.server_message(ready(5))
    send(wire.bind("", "s1", []) + wire.execute("") + wire.SYNC)
    assert tag_of(session, result(b"SELECT 1", 5, 0)) == b"SHOW"
    session.server_message(ready(6))
    # A Parse answered without an error is made: s3 renames its results from then on.
    send(wire.parse("s3", SHOW_FLAG) + wire.bind("", "s3", []) + wire.execute("") + wire.SYNC)
    assert tag_of(session, result(b"SELECT 1", 6, 0)) == b"SHOW"
    session.server_message(ready(7))
    # An error after a Parse that is not the Parse's 42P05 is a later message's: s4 was made.
    send(wire.parse("s4", SHOW_FLAG) + wire.bind("", "s4", [b"x"]) + wire.execute("")
         + wire.SYNC)
    session.server_message(error("08P01", 7))
    session.server_message(ready(8))
    send(wire.bind("", "s4", []) + wire.execute("") + wire.SYNC)
    assert tag_of(session, result(b"SELECT 1", 8, 0)) == b"SHOW"
    session.server_message(ready(9))
    send(wire.bind("", "s1", []) + wire.execute("") + wire.bind("", "s3", [])
         + wire.execute("") + wire.SYNC)
    assert [tag_of(session, result(b"SELECT 1", 9, i)) for i in range(2)] == [b"SHOW", b"SHOW"]


def test_pending_parses_are_bounded() -> None:
    """A client pipelining Parses without a Sync: past the bound the session forgets its
    statements (tags left as PostgreSQL writes them) instead of keeping every one."""
    session, scanner = started_session(), client_scanner()
    stream = b"".join(wire.parse(f"s{i}", SHOW_FLAG) for i in range(1100))
    session.client_segments(scanner.feed(stream), Config(), shop_with_extension())
    assert len(session._parses) < 1100
    assert len(session._statements) < 1100


@given(body=st.binary(max_size=64))
def test_any_error_response_body_is_taken_in_every_state(body: bytes) -> None:
    """An ErrorResponse without a SQLSTATE, or with fields cut short (PgBouncer 1.25.2 crashed
    on one), while renames, a HINT and a Parse wait for their answers: forwarded as it came,
    and what waited for it is settled, whatever its fields say."""
    session, scanner = started_session(), client_scanner()
    sql = "SELECT google_ml.create_model(model_id => 'm' model_provider => 'google')"
    stream = (wire.query(SHOW_FLAG) + wire.query(sql)
              + wire.parse("s1", SHOW_FLAG) + wire.bind("", "s1", []) + wire.execute("")
              + wire.SYNC)
    session.client_segments(scanner.feed(stream), Config(), shop_with_extension())
    assert session.tag_renames and session.error_hints and session._parses
    for ordinal in (1, 2, 3):
        raw = pq.message(pq.ERROR_RESPONSE, body)
        forwarded, _ = session.server_message(pq.Message(pq.ERROR_RESPONSE, raw, ordinal))
        assert forwarded == raw or "H" in pq.parse_error_fields(forwarded[5:])
        session.server_message(ready(ordinal + 1))
    assert not session.tag_renames and not session.error_hints and not session._parses


def test_a_hint_goes_only_to_an_error_of_its_statements_answer() -> None:
    """A hinted statement that runs (pglast and PostgreSQL disagree) leaves no HINT behind for
    a later statement's error of the same kind."""
    session = started_session()
    sql = "SELECT google_ml.create_model(model_id => 'm' model_provider => 'google')"
    session.client_message(query(sql, ordinal=1), Config(), Databases())
    error = pq.error_response("42601", 'syntax error at or near "model_provider"')
    position = str(sql.index("model_provider") + 1).encode()
    error = pq.message(pq.ERROR_RESPONSE, error[5:-1] + b"P" + position + b"\x00\x00")
    session.server_message(command_complete(b"SELECT 1", 1))
    session.server_message(ready(2))
    assert not session.error_hints
    raw, _ = session.server_message(pq.Message(pq.ERROR_RESPONSE, error, 2))
    assert raw == error
    # In a Parse, the hint waits for the answers of the next Sync's span.
    session.client_message(parse(sql, ordinal=2), Config(), Databases())
    raw, _ = session.server_message(pq.Message(pq.ERROR_RESPONSE, error, 3))
    assert "H" in pq.parse_error_fields(raw[5:])
