"""The warm-up's store: answered batches written into the caller's statement cache.

Plan. A warm-up running in READ COMMITTED asks its stream to be stored by the engine (the
``"store"`` of ``invoke_batch``, warmup.sql's _warm_stream). Each batch, once answered and made
binary (binary.py), is written with ``COPY google_ml._warm_cache ... (FORMAT binary)`` over the
engine's own connection to the caller's database, as the emulator's admin user, and committed;
a batch whose numbers stay text (short ones, cheaper for strtof than for Python) is written by
an INSERT that parses its literals as the session's own store does (INSERT_TEXT), so that
PostgreSQL reads them in this connection's backend, beside the session's rows;
``stream_next`` then answers the batch's position alone, and the session stores nothing. The
per-row lookups (``_warm_embedding``, VOLATILE) take a new snapshot per query in READ
COMMITTED, so they see the committed rows. REPEATABLE READ and SERIALIZABLE would not: those
warm-ups keep storing the text themselves.

Who may write what. The cache is keyed by statement (``pid:statement_timestamp``); a key is
only read by that backend's statement. The key comes from ``_authorized_request`` (SECURITY
DEFINER), and `resolve` (engine_factory.py) accepts it only when it starts with the pid of the
backend on the other end of the callback connection, in the database that backend's session is
connected to: a caller can write under its own statements' keys and no one else's.

Rows written this way are committed whatever the statement does; its key is never used again,
and the next warm-up of the backend (or any, once the backend has gone) deletes them
(_warm_store).

Failure. A batch whose COPY fails (connection refused, too many connections, an admin user
without the right to the table, a lock the caller's own transaction holds: `LOCK_TIMEOUT_MS`) is
answered as text, as without this store; the database is then left alone for
`RETRY_AFTER_SECONDS` (the rest of that warm-up's batches included), and the failure logged once.
A literal PostgreSQL refuses (a data error) sends only its batch to the session, which refuses it
the same way and leaves its rows to the per-row calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

log = logging.getLogger("alloydb_ai_emulator.engine")

COPY = ("COPY google_ml._warm_cache (statement_key, kind, model_id, item, embedding)"
        " FROM STDIN (FORMAT binary)")
# A batch whose numbers stay text: its literals parsed as the session's own store parses them
# (warmup.sql, _warm_add_embeddings: `[...]` with pgvector's input, which reads 768 numbers in
# half the time real[]'s takes, and a COPY in text format takes twice that again), one literal
# a line. {vector} is pgvector's type in that database (`google_ml._pgvector_type()`, written
# schema-qualified under this connection's search_path), or real[] without it.
INSERT_TEXT = """
INSERT INTO google_ml._warm_cache (statement_key, kind, model_id, item, embedding)
SELECT %s, 'embedding', %s, u.i,
       CASE WHEN u.r OPERATOR(pg_catalog.=) '[]' THEN '{{}}'::pg_catalog.float4[]
            WHEN pg_catalog.starts_with(u.r, '[') THEN u.r::{vector}::pg_catalog.float4[]
            ELSE u.r::pg_catalog.float4[] END
  FROM ROWS FROM (pg_catalog.unnest(%s::pg_catalog.text[]),
                  pg_catalog.string_to_table(%s::pg_catalog.text, E'\\n', '')) AS u (i, r)
 WHERE u.i IS NOT NULL AND u.r IS NOT NULL"""
RETRY_AFTER_SECONDS = 60.0
# The caller's backend waits for these COPYs; if its own transaction holds a lock they need (it
# locked the cache, or created or altered the extension in the same transaction), they would
# wait for it for ever. They give up instead, and the batch goes as text.
LOCK_TIMEOUT_MS = 1000
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # no OIDs, no extension
_TRAILER = struct.pack("!h", -1)
_LENGTH = struct.Struct("!i")


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """Where one warm-up's batches go: the caller's database (a conninfo as the admin user),
    its statement key and the model id the per-row calls look up."""

    conninfo: str
    key: str
    model_id: str


# The "store" object of a streamed invoke_batch -> its target, or None (not the caller's key,
# no session known for the caller): built by engine_factory.py, which knows the proxy.
Resolve = Callable[[Any], StoreTarget | None]


def copy_data(target: StoreTarget, items: list[str], values: list[bytes]) -> bytes:
    """COPY's binary format for one batch: a row per item, its binary ``real[]`` value."""
    def field(data: bytes) -> bytes:
        return _LENGTH.pack(len(data)) + data

    head = struct.pack("!h", 5) + field(target.key.encode()) + field(b"embedding") + field(
        target.model_id.encode())
    parts = [_SIGNATURE]
    for item, value in zip(items, values):  # joined once: the values are not copied per row
        parts += (head, field(item.encode()), _LENGTH.pack(len(value)), value)
    parts.append(_TRAILER)
    return b"".join(parts)


class WarmCopier:
    """The engine's connections to the databases whose warm-ups it stores: at most
    `per_database` at once per database, kept open for the next batch while a warm-up that
    stores there is under way (`hold`), closed when the last one ends: an idle connection
    would make the user's DROP DATABASE fail ("being accessed by other users")."""

    def __init__(self, resolve: Resolve, per_database: int = 2) -> None:
        self.resolve = resolve
        self.per_database = per_database
        self.batches = 0  # batches stored, ever (the metrics read it)
        self.failures = 0  # batches that fell back to text
        self._idle: dict[str, list[psycopg.AsyncConnection[Any]]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._failed_at: dict[str, float] = {}
        self._holders: dict[str, int] = {}  # conninfo -> warm-ups under way that store there
        self._closing: set[asyncio.Task[None]] = set()
        # INSERT_TEXT as each open connection's database spells it
        self._statements: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], bytes] = (
            weakref.WeakKeyDictionary())

    def hold(self, target: StoreTarget) -> Callable[[], None]:
        """Keeps `target`'s connections open until the returned release is called (once)."""
        conninfo = target.conninfo
        self._holders[conninfo] = self._holders.get(conninfo, 0) + 1
        if not self._idle.get(conninfo):
            # Connected while the provider answers the first batch, not after.
            self._track(asyncio.get_running_loop().create_task(self._preconnect(conninfo)))
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._holders[conninfo] -= 1
            if self._holders[conninfo] == 0:
                del self._holders[conninfo]
                idle = self._idle.pop(conninfo, [])
                if idle:
                    self._track(asyncio.get_running_loop().create_task(_close_all(idle)))

        return release

    def _track(self, task: asyncio.Task[None]) -> None:
        self._closing.add(task)  # kept until done; `aclose` waits for them
        task.add_done_callback(self._closing.discard)

    async def _preconnect(self, conninfo: str) -> None:
        """One connection opened ahead, kept idle while a warm-up holds the database."""
        with contextlib.suppress(psycopg.Error, OSError):  # the first COPY will say what is wrong
            async with self._connection(conninfo):
                pass

    def target(self, store: Any) -> StoreTarget | None:
        """The target of a warm-up's "store" object, or None (store it as text)."""
        if not isinstance(store, dict):
            return None
        target = self.resolve(store)
        if target is None:
            return None
        return None if self._failed_recently(target.conninfo) else target

    def _failed_recently(self, conninfo: str) -> bool:
        failed_at = self._failed_at.get(conninfo)
        return failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER_SECONDS

    async def store(self, target: StoreTarget, items: list[str], values: list[bytes],
                    text: bool = False) -> bool:
        """Write one batch and commit it: `values` are binary ``real[]`` values (a binary COPY),
        or with `text` the batch's literals (INSERT_TEXT). False if it could not be (the
        caller answers text)."""
        if self._failed_recently(target.conninfo):  # an earlier batch of this warm-up, say
            self.failures += 1
            return False
        try:
            async with self._connection(target.conninfo) as conn, conn.cursor() as cursor:
                if text:
                    await cursor.execute(
                        await self._insert_text(conn),
                        (target.key, target.model_id, items, _Text(b"\n".join(values))),
                        binary=True)
                else:
                    async with cursor.copy(COPY) as copy:
                        await copy.write(copy_data(target, items, values))
        except psycopg.DataError:
            # A literal PostgreSQL refuses (a number out of range for real): that batch goes to
            # the session, whose store refuses it too and leaves its rows to the per-row calls,
            # which report it. The database is fine.
            self.failures += 1
            return False
        except (psycopg.Error, OSError) as exc:
            self.failures += 1
            if target.conninfo not in self._failed_at:
                # The message names the table or the connection problem; never the conninfo.
                log.warning("the warm-up stores its batches as text for a while: %s",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            self._failed_at[target.conninfo] = time.monotonic()
            return False
        self._failed_at.pop(target.conninfo, None)
        self.batches += 1
        return True

    async def _insert_text(self, conn: psycopg.AsyncConnection[Any]) -> bytes:
        """INSERT_TEXT for the database `conn` is connected to (its pgvector type looked up
        once per connection)."""
        statement = self._statements.get(conn)
        if statement is None:
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT google_ml._pgvector_type()::pg_catalog.text")
                row = await cursor.fetchone()
            vector = row[0] if row is not None and row[0] else "pg_catalog.float4[]"
            statement = self._statements[conn] = INSERT_TEXT.format(vector=vector).encode()
        return statement

    @contextlib.asynccontextmanager
    async def _connection(self, conninfo: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        slots = self._slots.setdefault(conninfo, asyncio.Semaphore(self.per_database))
        async with slots:
            idle = self._idle.setdefault(conninfo, [])
            conn = idle.pop() if idle else await _connect(conninfo)
            try:
                yield conn
            except BaseException:
                await conn.close()  # a failed or cancelled COPY leaves no state to trust
                raise
            if conn.closed or len(idle) >= self.per_database or conninfo not in self._holders:
                await conn.close()
            else:
                idle.append(conn)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            await _close_all(idle)
        self._idle.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


class _Text(bytes):
    """UTF-8 bytes sent as a text parameter (a batch's literals, joined: not decoded to a str
    and encoded back)."""


class _TextDumper(Dumper):
    oid = postgres.types["text"].oid
    format = Format.BINARY  # text's binary form is its bytes

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


async def _connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    # A SET rather than a startup option: a pooler in front of the server may refuse options.
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    conn.adapters.register_dumper(_Text, _TextDumper)
    try:
        # No object of the database's users is found first (INSERT_TEXT qualifies its names).
        await conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS};"
                           " SET search_path = pg_catalog, pg_temp")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _close_all(connections: list[psycopg.AsyncConnection[Any]]) -> None:
    for conn in connections:
        await conn.close()
