"""The callback endpoint: where the extension's model-call functions reach the engine.

Plan
----
A backend that evaluates ``google_ml.embedding(...)`` connects here with dblink (libpq) and
sends one simple Query per model call whose text is the request as JSON (docs/internals.md).
This module speaks just enough of the server side of the protocol for libpq: startup with a
cleartext password over loopback, ``SET`` commands answered as no-ops, one-row one-column
results, ErrorResponses that dblink re-raises in the caller's session with their SQLSTATE, and
CancelRequest, which abandons the engine call in flight. A backend that disconnects during a
call (pg_terminate_backend, a crash) abandons its call too.

Who may call: the password is a secret of this emulator run, readable in the database only by
the extension's SECURITY DEFINER function. The ``application_name`` carries the caller's (leader)
backend pid; a call from a backend whose session did not come through the proxy is refused with
a message that says how to connect.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from proxy import protocol as pq
from proxy import startup

log = logging.getLogger("alloydb_ai_emulator.callback")

CALLBACK_USER = "alloydb_ai_emulator"
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# An answer bigger than this is written in parts rather than copied into one buffer.
_COPY_AT_MOST = 1024 * 1024
# Calls that take longer than this also watch their connection (see _call_while_connected).
WATCH_CALLS_AFTER_SECONDS = 0.5

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

# The (leader) backend pid of the session a handler task serves, for the call inspector.
CALLER_PID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "alloydb_ai_emulator_caller_pid", default=None)


class CallbackServer:
    def __init__(
        self,
        handler: Handler,
        is_fronted_pid: Callable[[int], bool],
        *,
        emulator_address: str,
        password: str | None = None,
        raw_text_types: tuple[type, ...] = (),
    ) -> None:
        self.handler = handler
        # Answers of these types are sent as they are rather than as JSON (the engine's RawText;
        # the proxy does not import the engine, so the command line names it).
        self.raw_text_types = raw_text_types
        self.is_fronted_pid = is_fronted_pid
        self.emulator_address = emulator_address
        self.password = password or secrets.token_urlsafe(24)
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._running: dict[tuple[int, int], asyncio.Task[Any]] = {}
        self._callers: dict[tuple[int, int], int] = {}  # callback key -> caller's backend pid

    async def start(self, host: str, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        sock = self._server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def conninfo(self, connect_host: str | None = None) -> str:
        """What the extension's ``_engine_endpoint`` row holds (without application_name)."""
        host = connect_host or self.host
        return (
            f"host={host} port={self.port} user={CALLBACK_USER} dbname=callback "
            f"password={self.password} sslmode=disable connect_timeout=5"
        )

    def cancel_calls_of(self, caller_pid: int) -> int:
        """Abandon the engine calls in flight for a session (its leader backend pid).

        A cancelled backend does not give up on its dblink call: dblink's error path drains the
        connection and waits for the answer. The proxy calls this when it relays a client's
        CancelRequest, so the engine answers 57014 at once and the HTTP request is abandoned.
        """
        keys = [key for key, pid in self._callers.items() if pid == caller_pid]
        for key in keys:
            task = self._running.get(key)
            if task is not None:
                task.cancel()
        return len(keys)

    # -- one connection -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._session(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except pq.ProtocolViolation as exc:
            log.warning("callback connection: %s", exc)
        except Exception:
            log.exception("callback connection failed")
        finally:
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        params = await self._startup(reader, writer)
        if params is None:
            return
        if params.get("user") != CALLBACK_USER:
            writer.write(pq.error_response("28000", "not a callback user", severity="FATAL"))
            return
        writer.write(pq.message(pq.AUTHENTICATION, struct.pack("!I", 3)))  # cleartext password
        mtype, body = await _read_message(reader, 4096)
        given = body.rstrip(b"\x00")
        if mtype != pq.PASSWORD or not hmac.compare_digest(given, self.password.encode()):
            writer.write(
                pq.error_response("28P01", "callback authentication failed", severity="FATAL")
            )
            return
        caller_pid = int(params.get("application_name") or 0) if (
            params.get("application_name") or ""
        ).isdigit() else 0
        key = (secrets.randbits(31), secrets.randbits(32))
        writer.write(_greeting(key))
        await writer.drain()
        while True:
            mtype, body = await _read_message(reader, MAX_REQUEST_BYTES)
            if mtype == pq.TERMINATE:
                return
            if mtype != pq.QUERY:
                writer.write(pq.error_response("08P01", "only simple queries are accepted"))
                writer.write(pq.ready_for_query())
                continue
            text = body.rstrip(b"\x00")
            if not text.lstrip().startswith(b"{"):
                tag = text.split(None, 1)[0].upper() if text.strip() else b""
                writer.write(pq.message(pq.COMMAND_COMPLETE, (tag or b"SET") + b"\x00"))
                writer.write(pq.ready_for_query())
                await writer.drain()
                continue
            reply = await self._call_while_connected(reader, key, caller_pid, text)
            if reply is None:
                return
            parts = (*reply, pq.ready_for_query())
            if len(parts) > 2 and len(parts[1]) > _COPY_AT_MOST:
                for part in parts:  # a big answer's payload goes out without another copy
                    writer.write(part)
            else:
                writer.write(b"".join(parts))  # one write, one system call
            await writer.drain()

    async def _startup(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, str] | None:
        """The StartupMessage's parameters, or None after a CancelRequest. Reads exactly the
        packets' bytes, so what follows is still in ``reader``."""
        negotiation = startup.StartupNegotiation(tls=False)
        while True:
            for event in negotiation.receive(await reader.readexactly(negotiation.missing)):
                if isinstance(event, startup.Reply):
                    writer.write(event.data)
                elif isinstance(event, startup.Startup):
                    return event.params
                elif isinstance(event, startup.Cancel):
                    self._cancel(event.packet)
                    return None
                elif isinstance(event, startup.Refused):
                    raise pq.ProtocolViolation(event.text)
                else:  # DirectTLS (never StartTLS: no TLS here, libpq connects sslmode=disable)
                    raise pq.ProtocolViolation("TLS is not accepted on the callback endpoint")

    def _cancel(self, packet: bytes) -> None:
        if len(packet) >= 16:
            pid, secret = struct.unpack_from("!II", packet, 8)
            task = self._running.get((pid, secret))
            if task is not None:
                task.cancel()

    async def _call_while_connected(
        self, reader: asyncio.StreamReader, key: tuple[int, int], caller_pid: int, text: bytes
    ) -> tuple[bytes, ...] | None:
        """The answer to one call (the bytes to send, in parts), or None when the backend went away before it (terminated,
        crashed): then the call is abandoned, so a provider request stops costing anything.

        A quick call is just awaited. A slow one also watches the connection: libpq sends
        nothing while it waits for a result, so whatever arrives (end of file, or Terminate
        from a closing backend) means the caller is gone."""
        call = asyncio.ensure_future(self._call(key, caller_pid, text))
        done, _ = await asyncio.wait({call}, timeout=WATCH_CALLS_AFTER_SECONDS)
        if done:
            return call.result()
        gone = asyncio.ensure_future(reader.read(1))
        both: set[asyncio.Future[Any]] = {call, gone}
        finished, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        if gone not in finished:
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)  # the reader is free again
            if gone.cancelled():
                return call.result()
        # Bytes arrived (or the end of the stream): no libpq client sends anything mid-call.
        log.info("a backend left during its model call (pid %d); call abandoned", caller_pid)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        return None

    async def _call(self, key: tuple[int, int], caller_pid: int, text: bytes) -> tuple[bytes, ...]:
        reply = await self._answer(key, caller_pid, text)
        return (reply,) if isinstance(reply, bytes) else reply

    async def _answer(
        self, key: tuple[int, int], caller_pid: int, text: bytes
    ) -> bytes | tuple[bytes, ...]:
        if not self.is_fronted_pid(caller_pid):
            return pq.error_response(
                "08004",
                "model calls need the AlloyDB AI emulator: this session is connected to "
                "PostgreSQL directly; connect through the emulator (alloydb-ai-emulator serve)",
                hint=f"Connect through the emulator at {self.emulator_address}.",
            )
        try:
            request = json.loads(text)
        except ValueError as exc:
            return pq.error_response("22023", f"invalid model call request: {exc}")
        context = contextvars.copy_context()
        context.run(CALLER_PID.set, caller_pid)
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
            _awaited(self.handler(request)), context=context)
        self._running[key] = task
        self._callers[key] = caller_pid
        deadline = _deadline_seconds(request)
        try:
            if deadline is None:
                result = await task
            else:
                result = await asyncio.wait_for(task, deadline)
        except TimeoutError:
            # The backend cannot interrupt its dblink wait; the engine keeps its
            # statement_timeout for it and abandons the provider request.
            return pq.error_response("57014", "canceling statement due to statement timeout")
        except asyncio.CancelledError:
            if task.cancelled():
                return pq.error_response("57014", "canceling statement due to user request")
            raise
        except Exception as exc:
            sqlstate = getattr(exc, "sqlstate", None)
            if sqlstate is None:
                log.exception("model call failed")
                return pq.error_response(
                    "XX000", f"the emulator engine failed: {type(exc).__name__}"
                )
            return pq.error_response(
                sqlstate,
                getattr(exc, "message", str(exc)),
                detail=getattr(exc, "detail", None),
                hint=getattr(exc, "hint", None),
            )
        finally:
            self._running.pop(key, None)
            self._callers.pop(key, None)
        if isinstance(result, self.raw_text_types):
            return _single_text_row(result if isinstance(result, bytes) else str(result).encode())
        payload = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        return _single_text_row(payload)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _deadline_seconds(request: Any) -> float | None:
    """What is left of the caller's statement_timeout (``deadline_ms`` in the request)."""
    value = request.get("deadline_ms") if isinstance(request, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return max(float(value), 0.0) / 1000.0


def _greeting(key: tuple[int, int]) -> bytes:
    parts = [pq.message(pq.AUTHENTICATION, struct.pack("!I", 0))]
    for name, value in (
        ("server_version", "18.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ):
        parts.append(pq.message(pq.PARAMETER_STATUS, name.encode() + b"\x00" + value.encode() + b"\x00"))
    parts.append(pq.message(pq.BACKEND_KEY_DATA, struct.pack("!II", *key)))
    parts.append(pq.ready_for_query())
    return b"".join(parts)


_TEXT_COLUMN = (
    struct.pack("!H", 1) + b"response\x00" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
)


_SELECT_1 = pq.message(pq.COMMAND_COMPLETE, b"SELECT 1\x00")


def _single_text_row(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """RowDescription and the DataRow's header; the payload; CommandComplete."""
    head = b"".join((
        pq.message(pq.ROW_DESCRIPTION, _TEXT_COLUMN),
        pq.DATA_ROW + struct.pack("!Ihi", 4 + 2 + 4 + len(payload), 1, len(payload)),
    ))
    return head, payload, _SELECT_1


async def _read_message(reader: asyncio.StreamReader, limit: int) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    return header[:1], await reader.readexactly(pq.body_length(header, limit))
