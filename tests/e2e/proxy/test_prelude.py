"""The relay's prelude (proxy/session.py): a statement of the proxy's own, sent upstream as a
Query of its own before a client's Query, its answer swallowed, its error standing for the
statement's. Its users are ``CREATE INDEX CONCURRENTLY ... USING scann`` (ScaNN's row checks)
and ``USING ivf`` (the access method added first). Here over raw sockets, so that every byte the
client gets back is seen (compared byte for byte with PostgreSQL's own answers where the prelude
lets the statement through), and with psycopg and asyncpg."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from proxy import protocol as pq
from tests.support import wire
from tests.support.databases import fresh_database
from tests.support.emulators import Emulator
from tests.support.wire import SYNC, Reply, bind, describe, execute, parse, query

DB = "prelude_tests"
EMPTY = ('Cannot create ScaNN index "empty_emb_idx" for table "empty", error: FAILED_PRECONDITION: '
         'Cannot create ScaNN index "empty_emb_idx" with empty table "empty". Once the table is '
         'populated with data, create the index. See documentation to bypass this validation.')
REFUSED = "CREATE INDEX CONCURRENTLY ON empty USING scann (emb cosine)"
ACCEPTED = "CREATE INDEX CONCURRENTLY three_idx ON three USING scann (emb l2)"


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, DB, "alloydb_scann")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE empty (id int, emb vector(3))")
        conn.execute("CREATE TABLE three (id int, emb vector(3))")
        conn.execute("INSERT INTO three SELECT i, ARRAY[i, 1, 2]::vector FROM generate_series(1, 3) i")
    return dsn


@pytest.fixture
def admin(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
        conn.execute("DROP INDEX IF EXISTS three_idx, empty_emb_idx")


def indexes(admin: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    return [str(r[0]) for r in admin.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename IN ('empty', 'three') ORDER BY 1")]


def exchange(host: str, port: int, stream: bytes, readies: int,
             cuts: list[int] | None = None) -> list[Reply]:
    """Log in, send ``stream`` (in pieces at ``cuts``, each its own send) before reading
    anything, then read the answers up to the ``readies``-th ReadyForQuery."""
    sock, _ = wire.open_session(host, port, database=DB)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bounds = [0, *sorted(c for c in set(cuts or []) if 0 < c < len(stream)), len(stream)]
        for start, end in itertools.pairwise(bounds):
            sock.sendall(stream[start:end])
        answer: list[Reply] = []
        for _ in range(readies):
            answer += wire.read_until_ready(sock)
        return answer


def kinds(answer: list[Reply]) -> bytes:
    return b"".join(r.type for r in answer)


def raw(answer: list[Reply]) -> bytes:
    return b"".join(pq.message(r.type, r.body) for r in answer)


def test_a_pipelined_client_gets_exactly_its_answers_around_a_refused_statement(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    stream = query("SELECT 1") + query(REFUSED) + query("SELECT 2")
    answer = exchange(emulator.host, emulator.port, stream, 3)
    # SELECT 1's rows; the refusal and its ReadyForQuery; SELECT 2's rows: nothing of the
    # prelude's own (its CommandComplete, its ReadyForQuery) and nothing more
    assert kinds(answer) == b"TDCZ" + b"EZ" + b"TDCZ"
    error = answer[4].fields
    assert (error["S"], error["C"], error["M"]) == ("ERROR", "XX000", EMPTY)
    assert "W" not in error  # no CONTEXT lines of the proxy's DO block
    assert answer[5].body == b"I"
    assert indexes(admin) == []


def test_a_statement_the_prelude_lets_through_is_answered_as_postgresql_answers_it(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    stream = query("SELECT 1") + query(ACCEPTED) + query("SELECT 2")
    direct = exchange(emulator.direct_host, emulator.direct_port, stream, 3)
    assert kinds(direct) == b"TDCZ" + b"CZ" + b"TDCZ"
    admin.execute("DROP INDEX three_idx")
    assert raw(exchange(emulator.host, emulator.port, stream, 3)) == raw(direct)
    assert indexes(admin) == ["three_idx"]


@pytest.mark.parametrize("cuts", [[], list(range(1, 400, 7)), [5, 30, 31, 90, 200]])
def test_preludes_queued_behind_each_other_keep_the_stream_in_order(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]], cuts: list[int]) -> None:
    """Two statements with preludes in one stream, cut anywhere: the second prelude waits for
    the first, and every Query is answered in turn."""
    stream = (query(REFUSED) + query("SELECT 'between'") + query(ACCEPTED)
              + query(REFUSED) + query("SELECT 'after'"))
    answer = exchange(emulator.host, emulator.port, stream, 5, cuts)
    assert kinds(answer) == b"EZ" + b"TDCZ" + b"CZ" + b"EZ" + b"TDCZ"
    assert answer[0].fields["M"] == answer[8].fields["M"] == EMPTY
    assert wire.data_values(answer) == [[b"between"], [b"after"]]
    assert answer[6].body == b"CREATE INDEX\x00"
    assert indexes(admin) == ["three_idx"]


@pytest.mark.parametrize("script", [
    [query("BEGIN"), query(REFUSED), query("ROLLBACK")],
    [query("BEGIN"), query("SELECT 1/0"), query(REFUSED), query("ROLLBACK")],
])
def test_inside_a_transaction_the_refusal_is_postgresqls_own(
        emulator: Emulator, script: list[bytes]) -> None:
    """CONCURRENTLY inside a transaction block (25001), or in an aborted one (25P02): the
    prelude neither ends the client's transaction nor says anything else."""
    stream = b"".join(script)
    direct = exchange(emulator.direct_host, emulator.direct_port, stream, len(script))
    proxied = exchange(emulator.host, emulator.port, stream, len(script))
    assert kinds(proxied) == kinds(direct)
    for ours, theirs in zip(proxied, direct, strict=True):
        if ours.type == b"E":
            assert (ours.fields["C"], ours.fields["M"]) == (theirs.fields["C"], theirs.fields["M"])
        else:
            assert ours == theirs  # tags, and the ReadyForQuery statuses T, E, I


def test_a_statement_sent_by_parse_goes_as_postgresql_answers_it(
        emulator: Emulator, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    """The decision for the extended protocol: a Parse gets no prelude (a Query of the proxy's
    own would end the batch's implicit transaction; proxy/session.py), so its statement is
    answered exactly as by PostgreSQL, unchecked."""
    stream = (parse("", REFUSED) + bind("", "", []) + describe(b"P", "") + execute("") + SYNC
              + query("SELECT 2"))
    direct = exchange(emulator.direct_host, emulator.direct_port, stream, 2)
    assert kinds(direct) == b"12nCZ" + b"TDCZ"
    admin.execute("DROP INDEX empty_emb_idx")
    assert raw(exchange(emulator.host, emulator.port, stream, 2)) == raw(direct)


def test_psycopg_gets_the_error_and_its_session_goes_on(
        dsn: str, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InternalError) as refused:
            conn.execute(REFUSED)
        assert refused.value.diag.message_primary == EMPTY
        assert refused.value.diag.context is None
        assert conn.execute("SELECT 'still here'").fetchone() == ("still here",)
        cur = conn.execute(ACCEPTED)
        assert cur.statusmessage == "CREATE INDEX"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert indexes(admin) == ["three_idx"]


def test_asyncpg_gets_the_error_and_its_session_goes_on(
        dsn: str, admin: psycopg.Connection[tuple[object, ...]]) -> None:
    async def scenario() -> tuple[str, str, str]:
        conn = await asyncpg.connect(dsn)
        try:
            with pytest.raises(asyncpg.exceptions.InternalServerError) as refused:
                await conn.execute(REFUSED)  # no arguments: the simple protocol
            status = await conn.execute(ACCEPTED)
            after = await conn.fetchval("SELECT 'still here'")
            return str(refused.value.message), status, str(after)
        finally:
            await conn.close()

    message, status, after = asyncio.run(scenario())
    assert message == EMPTY
    assert (status, after) == ("CREATE INDEX", "still here")
    assert indexes(admin) == ["three_idx"]
