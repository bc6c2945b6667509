"""Sans-io parts of a relayed session: what the asyncio shell in proxy/relay.py delegates.

Plan
----
A session sometimes must do work of its own between two client messages: open its upstream
connection after the StartupMessage, or register the engine endpoint in its database before a
statement that may call a model runs (docs/internals.md). Meanwhile what the client sends is
*held*: ``HoldQueue`` keeps it, in arrival order, until every piece of work is done. It holds two
kinds of bytes: *raw* bytes not yet framed (they are scanned, and possibly rewritten, only once
released, so they see the state the work left) and *framed* bytes, already scanned and rewritten,
that go upstream as they are (the rest of a chunk whose first statement started the work).

``Session`` is what a session knows of its statements, fed the server messages the relay
inspects: the backend's key, the client encoding, the transaction status, the command tags to
rename and the HINTs to add to the errors of statements it rewrote or could not parse, and the
ReadyForQuery after which to register the engine endpoint. It answers each message with the
bytes to forward and at most one step for the shell to take (``REGISTER_ENDPOINT``,
``BACKEND_KEY``), and keeps ``server_inspect``, the server message types it needs to see now:
every other message streams through with no per-message work beyond its header.

Known gaps (issue 14): the client direction's rewriting (``relay.ClientSide._client_message``)
and the startup relay still live in the asyncio shell.
"""

from __future__ import annotations

import collections
import struct
from enum import Enum
from typing import NamedTuple

from proxy import protocol as pq
from proxy.rewrites import ErrorHint

SERVER_INSPECT = frozenset(b"KS")  # BackendKeyData, ParameterStatus
_READY = frozenset(b"Z")  # ReadyForQuery: during startup, and before pending work
_AUTH = frozenset(b"R")  # Authentication*: during startup only (SASL mechanisms)
_RENAMING = frozenset(b"CE")  # CommandComplete, ErrorResponse: while a tag is to be renamed
STARTUP_INSPECT = SERVER_INSPECT | _READY | _AUTH


class Step(Enum):
    """What the shell must do after a server message."""

    BACKEND_KEY = "backend_key"  # the backend is known: record the session by its pid
    REGISTER_ENDPOINT = "register_endpoint"  # hold the client, register, release


def without_channel_binding(raw: bytes) -> bytes:
    """An AuthenticationSASL message without the ``-PLUS`` mechanisms: channel binding ties
    SCRAM to the TLS connection it runs on, and a proxy ends the client's connection and opens
    another (pitfalls: libpq refuses -PLUS over plaintext; with TLS on both legs it fails)."""
    if len(raw) < 9 or struct.unpack_from("!I", raw, 5)[0] != 10:  # AuthenticationSASL
        return raw
    mechanisms = [m for m in raw[9:].split(b"\x00") if m]
    kept = [m for m in mechanisms if not m.endswith(b"-PLUS")]
    if kept == mechanisms:
        return raw
    return pq.message(pq.AUTHENTICATION, raw[5:9] + b"".join(m + b"\x00" for m in kept) + b"\x00")


class Session:
    """A session's statement accounting, without I/O."""

    __slots__ = (
        "backend_key", "backend_pid", "client_encoding", "error_hints", "params", "register_at",
        "server_inspect", "started", "tag_renames", "transaction_status",
    )

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params: dict[str, str] = params or {}
        self.started = False  # the first ReadyForQuery has been seen
        self.backend_pid: int | None = None
        self.backend_key: bytes | None = None
        self.transaction_status = b"I"  # as of the last ReadyForQuery inspected
        self.client_encoding = "UTF8"
        # The server ReadyForQuery (by ordinal) after which to register the engine endpoint.
        self.register_at: int | None = None
        self.tag_renames: collections.deque[tuple[bytes, bytes]] = collections.deque()
        # HINTs for the errors of statements that do not parse, oldest first (rewrites.py).
        self.error_hints: collections.deque[ErrorHint] = collections.deque(maxlen=16)
        self.server_inspect = STARTUP_INSPECT

    @property
    def dbname(self) -> str:
        return self.params.get("database") or self.params.get("user", "")

    # -- what the client direction learns ---------------------------------------------------

    def register_after(self, ordinal: int) -> None:
        """Register the engine endpoint after the server's ReadyForQuery number ``ordinal``."""
        self.register_at = ordinal
        self._update_server_inspect()

    def rename_next_tag(self, old: bytes, new: bytes) -> None:
        self.tag_renames.append((old, new))
        self._update_server_inspect()

    def add_error_hint(self, hint: ErrorHint) -> None:
        self.error_hints.append(hint)
        self._update_server_inspect()

    def _update_server_inspect(self) -> None:
        inspect = SERVER_INSPECT
        if not self.started:
            inspect = STARTUP_INSPECT
        elif self.register_at is not None:
            inspect = inspect | _READY
        if self.tag_renames or self.error_hints:
            inspect = inspect | _RENAMING
        self.server_inspect = inspect

    # -- the server direction ---------------------------------------------------------------

    def server_message(self, msg: pq.Message) -> tuple[bytes, Step | None]:
        """For an inspected server message: the bytes to forward, and the step to take."""
        mtype = msg.type
        if mtype == pq.COMMAND_COMPLETE:
            if self.tag_renames and msg.body.rstrip(b"\x00") == self.tag_renames[0][0]:
                _, new = self.tag_renames.popleft()
                self._update_server_inspect()
                return pq.message(pq.COMMAND_COMPLETE, new + b"\x00"), None
        elif mtype == pq.ERROR_RESPONSE:
            if self.tag_renames:  # the statement failed: no tag will come
                self.tag_renames.popleft()
                self._update_server_inspect()
            if self.error_hints:  # the first error after an unparsable statement is its own
                hint = self.error_hints.popleft()
                self._update_server_inspect()
                return pq.with_hint(msg.raw, hint.sqlstate, hint.position, hint.hint), None
        elif mtype == pq.READY_FOR_QUERY:
            return msg.raw, self._ready_for_query(msg)
        elif mtype == pq.AUTHENTICATION:
            return without_channel_binding(msg.raw), None
        elif mtype == pq.BACKEND_KEY_DATA:
            body = msg.body
            (self.backend_pid,) = struct.unpack_from("!I", body, 0)
            self.backend_key = body[4:]
            return msg.raw, Step.BACKEND_KEY
        elif mtype == pq.PARAMETER_STATUS:
            key, offset = pq.cstring(msg.raw, 5)
            value, _ = pq.cstring(msg.raw, offset)
            if key == b"client_encoding":
                self.client_encoding = value.decode("ascii", "replace").upper()
        return msg.raw, None

    def _ready_for_query(self, msg: pq.Message) -> Step | None:
        self.transaction_status = msg.raw[5:6]
        self.started = True
        step = None
        if (
            self.register_at is not None
            and msg.ordinal >= self.register_at
            and self.transaction_status == b"I"  # committed: the admin connection sees it
        ):
            self.register_at = None
            step = Step.REGISTER_ENDPOINT
        self._update_server_inspect()
        return step


class Held(NamedTuple):
    data: bytes
    framed: bool  # True: scanned and rewritten, send as is; False: raw, scan when released


class HoldQueue:
    """Client bytes kept while the session waits; released when the last hold ends."""

    __slots__ = ("_holds", "_items", "holding")

    def __init__(self) -> None:
        self._holds = 0
        self._items: list[Held] = []
        self.holding = False  # an attribute, not a property: the relay reads it per chunk

    def hold(self) -> None:
        """One more piece of work to wait for."""
        self._holds += 1
        self.holding = True

    def keep(self, data: bytes, *, framed: bool) -> None:
        """Keep client bytes until the hold ends (the shell stops reading meanwhile)."""
        if not self._holds:
            raise RuntimeError("keep() without hold(): send the bytes on")
        self._items.append(Held(data, framed))

    def release(self) -> list[Held]:
        """One piece of work is done: when it was the last, everything kept, in order."""
        if self._holds == 0:
            raise RuntimeError("release() without hold()")
        self._holds -= 1
        if self._holds:
            return []
        self.holding = False
        items, self._items = self._items, []
        return items

    def requeue(self, items: list[Held]) -> None:
        """Put back, after what was kept meanwhile, released items that met a new hold."""
        self._items.extend(items)
