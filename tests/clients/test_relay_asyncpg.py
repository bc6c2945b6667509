"""asyncpg through the proxy. asyncpg is the strictest of the common drivers about the
extended protocol: it sends Parse/Describe/Flush and waits for the answer before Bind/Execute/Sync,
so a proxy that holds messages until Sync hangs it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_prepared_statement_is_reused(emulator: Any) -> None:
    async def main() -> list[Any]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            stmt = await conn.prepare("SELECT $1::int * 3, $2::text")
            results = [await stmt.fetchrow(i, f"n{i}") for i in range(10)]
            prepared = await conn.fetchval(
                "SELECT count(*) FROM pg_prepared_statements "
                "WHERE statement = 'SELECT $1::int * 3, $2::text'")
            assert prepared == 1
            return [tuple(r) for r in results]
        finally:
            await conn.close()

    assert run(main()) == [(i * 3, f"n{i}") for i in range(10)]


def test_statement_cache_serves_a_repeated_query(emulator: Any) -> None:
    async def main() -> list[int]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            return [await conn.fetchval("SELECT $1::int + 1", i) for i in range(50)]
        finally:
            await conn.close()

    assert run(main()) == [i + 1 for i in range(50)]


def test_pool_of_eight_connections_runs_concurrent_queries(emulator: Any) -> None:
    async def main() -> tuple[list[int], int]:
        async with asyncpg.create_pool(emulator.dsn, min_size=8, max_size=8) as pool:
            async def one(i: int) -> tuple[int, int]:
                async with pool.acquire() as conn:
                    value = await conn.fetchval("SELECT $1::int FROM pg_sleep(0.01)", i)
                    return value, await conn.fetchval("SELECT pg_backend_pid()")

            results = await asyncio.gather(*(one(i) for i in range(200)))
        return [v for v, _ in results], len({pid for _, pid in results})

    values, backends = run(main())
    assert values == list(range(200))
    assert 1 < backends <= 8


def test_copy_records_to_table_then_read_back(emulator: Any) -> None:
    records = [(i, f"label {i}", [float(i), 0.5]) for i in range(1000)]

    async def main() -> list[Any]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_copy")
            await conn.execute("CREATE TABLE apg_copy (id int, label text, xs float8[])")
            result = await conn.copy_records_to_table("apg_copy", records=records)
            assert result == "COPY 1000"
            return [tuple(r) for r in await conn.fetch("SELECT * FROM apg_copy ORDER BY id")]
        finally:
            await conn.execute("DROP TABLE IF EXISTS apg_copy")
            await conn.close()

    assert run(main()) == records


def test_copy_from_query_streams_rows_out(emulator: Any) -> None:
    async def main() -> bytes:
        conn = await asyncpg.connect(emulator.dsn)
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)

        try:
            await conn.copy_from_query("SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g",
                                       output=sink)
            return b"".join(chunks)
        finally:
            await conn.close()

    out = run(main())
    assert out.count(b"\n") == 5000
    assert out.startswith(b"1\t" + b"x" * 100 + b"\n")


def test_executemany_inserts_every_row(emulator: Any) -> None:
    async def main() -> list[Any]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_many")
            await conn.execute("CREATE TABLE apg_many (id int, name text)")
            await conn.executemany("INSERT INTO apg_many VALUES ($1, $2)",
                                   [(i, f"name {i}") for i in range(300)])
            return [tuple(r) for r in await conn.fetch("SELECT * FROM apg_many ORDER BY id")]
        finally:
            await conn.execute("DROP TABLE IF EXISTS apg_many")
            await conn.close()

    assert run(main()) == [(i, f"name {i}") for i in range(300)]


def test_executemany_failing_midway_rolls_back_and_the_connection_recovers(emulator: Any) -> None:
    async def main() -> tuple[int, int]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            await conn.execute("DROP TABLE IF EXISTS apg_many_fail")
            await conn.execute("CREATE TABLE apg_many_fail (id int PRIMARY KEY)")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.executemany("INSERT INTO apg_many_fail VALUES ($1)",
                                       [(1,), (2,), (2,), (3,)])
            count = await conn.fetchval("SELECT count(*) FROM apg_many_fail")
            return count, await conn.fetchval("SELECT 7")
        finally:
            await conn.execute("DROP TABLE IF EXISTS apg_many_fail")
            await conn.close()

    assert run(main()) == (0, 7)


def test_server_error_then_recovery(emulator: Any) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM apg_no_such_table")
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / $1::int", 0)
            return await conn.fetchval("SELECT 'recovered'")
        finally:
            await conn.close()

    assert run(main()) == "recovered"


def test_error_inside_a_transaction_then_rollback(emulator: Any) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            with pytest.raises(asyncpg.DivisionByZeroError):
                async with conn.transaction():
                    await conn.execute("SELECT 1 / 0")
            assert not conn.is_in_transaction()
            return await conn.fetchval("SELECT 8")
        finally:
            await conn.close()

    assert run(main()) == 8


def test_asyncio_timeout_cancels_the_query_and_the_connection_stays_usable(
        emulator: Any) -> None:
    async def main() -> tuple[Any, Any]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval("SELECT pg_sleep(30)", timeout=0.5)
            value = await conn.fetchval("SELECT 'after timeout'")
            # asyncpg cancelled the query with a CancelRequest; the backend is idle again.
            state = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
                "AND state = 'active'")
            return value, state
        finally:
            await conn.close()

    assert run(main()) == ("after timeout", 0)


def test_asyncio_wait_for_cancellation_stops_the_query(emulator: Any) -> None:
    async def main() -> Any:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(conn.execute("SELECT pg_sleep(30)"), timeout=0.5)
            return await conn.fetchval("SELECT 9")
        finally:
            await conn.close()

    assert run(main()) == 9


def test_listen_callback_receives_a_notification(emulator: Any) -> None:
    async def main() -> tuple[str, str]:
        listener = await asyncpg.connect(emulator.dsn)
        sender = await asyncpg.connect(emulator.dsn)
        got: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        try:
            await listener.add_listener("apg_chan",
                                        lambda c, pid, ch, payload: got.set_result((ch, payload)))
            await sender.execute("NOTIFY apg_chan, 'ping'")
            return await asyncio.wait_for(got, timeout=10)
        finally:
            await listener.close()
            await sender.close()

    assert run(main()) == ("apg_chan", "ping")


def test_cursor_in_a_transaction_fetches_in_chunks(emulator: Any) -> None:
    async def main() -> list[int]:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            async with conn.transaction():
                return [r[0] async for r in conn.cursor(
                    "SELECT generate_series(1, 1000)", prefetch=33)]
        finally:
            await conn.close()

    assert run(main()) == list(range(1, 1001))


def test_a_ten_megabyte_value_round_trips(emulator: Any) -> None:
    value = b"\x01\x02" * (5 * 1024 * 1024)

    async def main() -> Any:
        conn = await asyncpg.connect(emulator.dsn)
        try:
            return await conn.fetchval("SELECT $1::bytea", value)
        finally:
            await conn.close()

    assert run(main()) == value
