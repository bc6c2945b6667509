"""PostgreSQL wire protocol v3: message types, framing and the few messages the proxy writes.

Sans-io: bytes in, frames out; nothing here knows about sockets.

Plan
----
The relay forwards almost every byte untouched. It must still know where each message starts,
for three reasons: to see the statements it may rewrite (``Q`` Query and ``P`` Parse from the
client), to learn ``BackendKeyData`` and ``ReadyForQuery`` from the server, and to place replies
of its own between the server's. ``MessageScanner`` walks the 5-byte headers of a stream and
hands back *segments*: runs of bytes to forward as they are, and whole messages of the types the
caller asked to inspect. A message that is not inspected is never buffered: its body streams
through in whatever pieces the network delivers, so a 100 MB ``DataRow`` costs no memory.

Every round trip of every session crosses the scanner twice, so its common case is short:
``scan()`` steps over each message with one table lookup by type (step, count, ask ``wanted``,
or take the full walk) and answers None when the chunk goes on exactly as it came, with no list
and no copy. The full walk (``_walk``) handles the rest with every check; tests hold the two to
the same segments, counts and boundaries under any chunking.

Goals: consume only what was read (no quadratic re-scans), bound every length, never trust a
length field from the network.

Known gaps: inspected messages larger than ``max_inspect`` are streamed through uninspected
(the proxy then simply does not rewrite them).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

# Client -> server message types.
QUERY: Final = b"Q"  # Query (simple protocol)
PARSE: Final = b"P"  # Parse
BIND: Final = b"B"  # Bind
EXECUTE: Final = b"E"  # Execute
DESCRIBE: Final = b"D"  # Describe (client) / DataRow (server)
CLOSE: Final = b"C"  # Close (client) / CommandComplete (server)
SYNC: Final = b"S"  # Sync (client) / ParameterStatus (server)
FLUSH: Final = b"H"  # Flush
TERMINATE: Final = b"X"  # Terminate
PASSWORD: Final = b"p"  # PasswordMessage / SASLInitialResponse / SASLResponse
FUNCTION_CALL: Final = b"F"  # FunctionCall
COPY_DATA: Final = b"d"  # CopyData (both directions)
COPY_DONE: Final = b"c"  # CopyDone (both directions)
COPY_FAIL: Final = b"f"  # CopyFail

# Server -> client message types.
AUTHENTICATION: Final = b"R"  # Authentication*
BACKEND_KEY_DATA: Final = b"K"  # BackendKeyData
PARAMETER_STATUS: Final = b"S"  # ParameterStatus
READY_FOR_QUERY: Final = b"Z"  # ReadyForQuery
ERROR_RESPONSE: Final = b"E"  # ErrorResponse
NOTICE_RESPONSE: Final = b"N"  # NoticeResponse
COMMAND_COMPLETE: Final = b"C"  # CommandComplete
ROW_DESCRIPTION: Final = b"T"  # RowDescription
DATA_ROW: Final = b"D"  # DataRow
NEGOTIATE_PROTOCOL_VERSION: Final = b"v"  # NegotiateProtocolVersion

CLIENT_MESSAGE_TYPES: Final = frozenset(b"QPBEDCSHXpFdcf")

# Untyped startup packets: a 4-byte length, then a 4-byte code.
SSL_REQUEST_CODE: Final = 80877103
GSSENC_REQUEST_CODE: Final = 80877104
CANCEL_REQUEST_CODE: Final = 80877102
PROTOCOL_3_0: Final = 196608
PROTOCOL_3_2: Final = 196610
MAX_STARTUP_PACKET: Final = 10_000  # PostgreSQL's own MAX_STARTUP_PACKET_LENGTH
TLS_HANDSHAKE_FIRST_BYTE: Final = 0x16  # direct TLS (PostgreSQL 17+): a ClientHello

# PostgreSQL refuses messages over 1 GB; so does the proxy.
MAX_MESSAGE_LENGTH: Final = 0x3FFF_FFFF

_HEADER = struct.Struct("!cI")
_LENGTH = struct.Struct("!I")


class ProtocolViolation(Exception):
    """The peer sent bytes that are not a valid message stream."""


@dataclass(slots=True)
class Message:
    """A whole message as it came off the wire (5-byte header included). ``ordinal``: how many
    messages of the scanner's counted types had been seen when this one was (itself included).
    ``index``: how many messages of the scanner's ``within`` types it had seen since the last
    counted one (itself excluded): an Execute's place among its Sync's Executes, a result's
    among the results a ReadyForQuery ends."""

    type: bytes
    raw: bytes
    ordinal: int = 0
    index: int = 0

    @property
    def body(self) -> bytes:
        return self.raw[5:]


Segment = bytes | Message


class MessageScanner:
    """Splits a stream into pass-through bytes and whole messages of the inspected types.

    ``feed()`` returns segments in stream order. Bytes of messages not inspected are returned as
    soon as they arrive, even if the message is incomplete; inspected messages are returned only
    once whole. ``scan()`` is the same for the relay's hot path: None when the chunk goes on
    exactly as it came (no list built). ``wanted(data, start, end)``, when given, is asked about
    each whole message of an inspected type and may let it pass as plain bytes (the relay's byte
    prefilter). With ``record_types`` the type of every message seen is kept in ``types_seen``
    (for tests).

    ``within`` types are numbered between two counted messages (``Message.index``). ``follow``
    types are framed whole, without asking ``wanted``, from the first message of one of them
    that ``wanted`` picked on, until ``unfollow()``: the session then sees the Bind, Execute and
    Close messages after a Parse it may have renamed, in the chunk of that Parse already.

    ``copy_ends`` (CopyDone, CopyFail from a client) take back what was counted and numbered since
    the last message of the ``copy_starts`` types (Query, Execute): PostgreSQL ignores a Sync
    during COPY FROM STDIN, which libpq and pgjdbc send before the data, so it gets no
    ReadyForQuery of its own.
    """

    __slots__ = (
        "_base_inspect", "_copy_ends", "_copy_starts", "_count", "_follow", "_inspect",
        "_mark", "_max_inspect", "_pending", "_pending_index", "_record", "_remaining",
        "_special", "_valid_types", "_wanted", "_within", "counted", "following", "types_seen",
        "unfollowed", "within",
    )

    def __init__(
        self,
        inspect: frozenset[int],
        *,
        max_inspect: int = 16 * 1024 * 1024,
        valid_types: frozenset[int] | None = None,
        wanted: Callable[[bytes, int, int], bool] | None = None,
        record_types: bool = False,
        count: frozenset[int] = frozenset(),
        within: frozenset[int] = frozenset(),
        follow: frozenset[int] = frozenset(),
        copy_starts: frozenset[int] = frozenset(),
        copy_ends: frozenset[int] = frozenset(),
    ) -> None:
        self._base_inspect = self._inspect = inspect
        self._max_inspect = max_inspect
        self._valid_types = valid_types
        self._wanted = wanted
        self._pending = bytearray()  # an incomplete header, or an incomplete inspected message
        self._remaining = 0  # bytes still to stream of a message that is not inspected
        self._record = record_types
        self.types_seen: list[int] | None = [] if record_types else None
        # Messages of the ``count`` types seen so far (e.g. Query and Sync from a client, each
        # answered by one ReadyForQuery; ReadyForQuery from a server).
        self._count = count
        self.counted = 0
        self._within = within
        self.within = 0  # messages of the ``within`` types since the last counted one
        self._pending_index = 0  # the ``index`` of the message in ``_pending``
        self._follow = follow
        self.following = False
        # Messages of the ``follow`` types streamed while following, too long to frame: the
        # caller has lost track of them (scan() answers a list, not None, for such a chunk)
        self.unfollowed = 0
        self._copy_starts = copy_starts
        self._copy_ends = copy_ends
        self._mark = (0, 0)  # (counted, within) after the last message of ``copy_starts``
        self._special = self._table()

    @property
    def at_boundary(self) -> bool:
        """True when no message is partly received."""
        return self._remaining == 0 and not self._pending

    def set_wanted(self, wanted: Callable[[bytes, int, int], bool] | None) -> None:
        """Another prefilter from now on (a session that starts using a feature with words of
        its own: proxy/readonly.py)."""
        self._wanted = wanted

    def set_inspect(self, inspect: frozenset[int]) -> None:
        if inspect != self._base_inspect:
            self._base_inspect = inspect
            self._inspect = inspect | self._follow if self.following else inspect
            self._special = self._table()

    def unfollow(self) -> None:
        """Back to the inspected types alone (see ``follow``)."""
        if self.following:
            self.following = False
            self._inspect = self._base_inspect
            self._special = self._table()

    def _start_following(self, mtype: int) -> frozenset[int]:
        """A message ``wanted`` picked: framed ``follow`` types from here on, if it is one of
        them. The inspected types now."""
        if mtype in self._follow and not self.following:
            self.following = True
            self._inspect = self._base_inspect | self._follow
            self._special = self._table()
        return self._inspect

    def _table(self) -> bytes:
        # Followed types take the walk, which frames them without asking ``wanted``.
        return _special_types(self._inspect, self._count, self._valid_types, self._record,
                              self._within, self._follow if self.following else frozenset(),
                              self._copy_starts, self._copy_ends)

    def feed(self, data: bytes) -> list[Segment]:
        segments = self.scan(data)
        if segments is None:
            return [data] if data else []
        return segments

    def scan(self, data: bytes) -> list[Segment] | None:
        """As ``feed()``, but None when ``data`` is to be forwarded exactly as it is."""
        if self._remaining or self._pending:
            return self._continue(data)
        # The hot loop of the relay, one pass per message. A message whose type needs nothing
        # but a step (or a count, or a ``wanted`` that says no) costs a table lookup and its
        # length; anything else (a wanted or invalid message, a message to keep whole across
        # chunks, a header cut short) goes to ``_walk``. A method call per message would cost
        # more than the whole loop body.
        special = self._special
        unpack = _LENGTH.unpack_from
        counted, within = self.counted, self.within  # kept in locals, stored on the way out
        pos = 0
        end = len(data)
        while pos < end:
            try:
                (length,) = unpack(data, pos + 1)
            except struct.error:  # a header cut short
                self.counted, self.within = counted, within
                return self._walked(data, pos)
            if length < 4:
                self._check_length(data[pos], length)  # raises
            kind = special[data[pos]]
            if kind:
                if kind & _WALK:
                    self.counted, self.within = counted, within
                    return self._walked(data, pos)
                if kind & _INSPECT:
                    total = length + 1
                    if end - pos < total or total > self._max_inspect or self._wanted is None:
                        self.counted, self.within = counted, within
                        return self._walked(data, pos)
                    if self._wanted(data, pos, pos + total):
                        self.counted, self.within = counted, within
                        return self._walked(data, pos, asked=True)
                if kind & _COUNT:
                    counted += 1
                    within = 0
                    if kind & _MARK:
                        self._mark = (counted, within)
                elif kind & _WITHIN:
                    within += 1
                    if kind & _MARK:
                        self._mark = (counted, within)
            pos += length + 1
        self.counted, self.within = counted, within
        if pos > end:  # the last message goes on in the next chunks
            if length > MAX_MESSAGE_LENGTH:  # (one that ends in this chunk is shorter)
                self._check_length(data[pos - length - 1], length)  # raises
            self._remaining = pos - end
        return None

    def _walked(self, data: bytes, pos: int, *, asked: bool = False) -> list[Segment] | None:
        """``scan()`` from the message at ``pos`` on, with every check; ``asked``: that message
        is inspected, whole, and ``wanted`` said yes."""
        out: list[Segment] = []
        run_start = 0
        if asked:
            mtype = data[pos]
            total = _LENGTH.unpack_from(data, pos + 1)[0] + 1
            index = self._numbered(mtype)
            if self.types_seen is not None:
                self.types_seen.append(mtype)
            if pos:
                out.append(data[:pos])
            out.append(Message(bytes((mtype,)), data[pos : pos + total], self.counted, index))
            self._start_following(mtype)
            pos = run_start = pos + total
        unfollowed = self.unfollowed
        segments = self._walk(data, pos, run_start, out)
        if self.unfollowed != unfollowed:
            return segments  # (not None: the caller looks at ``unfollowed``)
        return None if len(segments) == 1 and segments[0] is data else segments

    def _continue(self, data: bytes) -> list[Segment]:
        """``scan()`` of a chunk that starts inside a message."""
        out: list[Segment] = []
        types_seen = self.types_seen
        view = data
        pos = 0
        end = len(view)
        run_start = 0  # start of the current run of pass-through bytes in ``data``

        if self._remaining:
            take = min(self._remaining, end)
            self._remaining -= take
            pos = take
        else:
            pending = self._pending
            if len(pending) < 5:
                need = 5 - len(pending)
                pending += view[:need]
                pos = min(need, end)
                if len(pending) < 5:
                    return out
                # Counted once, when its header is first whole (a whole header kept pending
                # by the loop below was counted there).
                self._pending_index = self._numbered(pending[0])
            _, length = _HEADER.unpack_from(pending, 0)
            total = self._check_length(pending[0], length) + 1
            if pending[0] in self._inspect and total <= self._max_inspect:
                need = total - len(pending)
                pending += view[pos : pos + need]
                pos = min(pos + need, end)
                if len(pending) < total:
                    return out
                if types_seen is not None:
                    types_seen.append(pending[0])
                raw = bytes(pending[:total])
                self._pending = bytearray()
                mtype = raw[0]
                if self._wanted is None or (self.following and mtype in self._follow):
                    out.append(Message(raw[0:1], raw, self.counted, self._pending_index))
                elif self._wanted(raw, 0, total):
                    out.append(Message(raw[0:1], raw, self.counted, self._pending_index))
                    self._start_following(mtype)
                else:
                    out.append(raw)
                run_start = pos
            else:
                # Not inspected after all: release the header, stream the body.
                if self.following and pending[0] in self._follow:
                    self.unfollowed += 1  # too long to frame
                if types_seen is not None:
                    types_seen.append(pending[0])
                out.append(bytes(pending))
                self._pending = bytearray()
                body_left = total - len(pending)
                take = min(body_left, end - pos)
                self._remaining = body_left - take
                run_start = pos
                pos += take
        if self._remaining:
            if pos > run_start:
                out.append(view[run_start:pos])
            return out
        return self._walk(data, pos, run_start, out)

    def _walk(self, view: bytes, pos: int, run_start: int, out: list[Segment]) -> list[Segment]:
        """Messages from ``pos`` (a message boundary) on, with every check; the bytes from
        ``run_start`` to ``pos`` are pass-through bytes not yet in ``out``."""
        types_seen = self.types_seen
        end = len(view)
        inspect = self._inspect
        wanted = self._wanted
        valid = self._valid_types
        unpack = _LENGTH.unpack_from
        while pos < end:
            if end - pos < 5:
                if pos > run_start:
                    out.append(view[run_start:pos])
                self._pending = bytearray(view[pos:end])
                return out
            mtype = view[pos]
            (length,) = unpack(view, pos + 1)
            if length < 4 or length > MAX_MESSAGE_LENGTH or (
                valid is not None and mtype not in valid
            ):
                self._check_length(mtype, length)  # raises
            total = length + 1
            index = self._numbered(mtype)
            if mtype in inspect and total <= self._max_inspect:
                if end - pos < total:
                    if pos > run_start:
                        out.append(view[run_start:pos])
                    self._pending = bytearray(view[pos:end])
                    self._pending_index = index
                    return out
                if types_seen is not None:
                    types_seen.append(mtype)
                if wanted is not None and not (self.following and mtype in self._follow):
                    if not wanted(view, pos, pos + total):
                        pos += total  # inspected type, but nothing of interest: in the run
                        continue
                    inspect = self._start_following(mtype)
                if pos > run_start:
                    out.append(view[run_start:pos])
                out.append(Message(bytes((mtype,)), view[pos : pos + total], self.counted,
                                   index))
                pos += total
                run_start = pos
                continue
            if self.following and mtype in self._follow:
                self.unfollowed += 1  # too long to frame (over max_inspect): streamed
            if types_seen is not None:
                types_seen.append(mtype)
            if end - pos < total:
                self._remaining = total - (end - pos)
                pos = end
                break
            pos += total
        if pos > run_start:
            out.append(view[run_start:pos] if run_start or pos != end else view)
        return out

    def _numbered(self, mtype: int) -> int:
        """Count a message whose header was just read whole; its ``index``."""
        index = self.within
        if mtype in self._count:
            self.counted += 1
            self.within = 0
        elif mtype in self._within:
            self.within += 1
        if mtype in self._copy_starts:
            self._mark = (self.counted, self.within)
        elif mtype in self._copy_ends:
            self.counted, self.within = self._mark
        return index

    def _check_length(self, mtype: int, length: int) -> int:
        if length < 4 or length > MAX_MESSAGE_LENGTH:
            raise ProtocolViolation(
                f"invalid message length {length} for message type {bytes((mtype,))!r}"
            )
        if self._valid_types is not None and mtype not in self._valid_types:
            raise ProtocolViolation(f"unknown message type {bytes((mtype,))!r}")
        return length


# What ``MessageScanner.scan`` does with a message type, bits of its table: nothing but step
# over it (0), count it, number it within the counted span, ask ``wanted`` about it, or leave it
# to ``_walk``.
_COUNT, _INSPECT, _WALK, _WITHIN, _MARK = 1, 2, 4, 8, 16


@functools.lru_cache(maxsize=64)
def _special_types(
    inspect: frozenset[int], count: frozenset[int], valid: frozenset[int] | None, record: bool,
    within: frozenset[int] = frozenset(), followed: frozenset[int] = frozenset(),
    copy_starts: frozenset[int] = frozenset(), copy_ends: frozenset[int] = frozenset(),
) -> bytes:
    """``MessageScanner``'s table by message type (the bits above): recorded, invalid, followed
    and copy-ending types always take the walk with every check."""
    def kind(t: int) -> int:
        if record or (valid is not None and t not in valid) or t in followed or t in copy_ends:
            return _WALK
        return ((_COUNT if t in count else _WITHIN if t in within else 0)
                | (_INSPECT if t in inspect else 0) | (_MARK if t in copy_starts else 0))

    return bytes(kind(t) for t in range(256))


def body_length(header: bytes, limit: int = MAX_MESSAGE_LENGTH) -> int:
    """The body length a 5-byte message header (type, length) announces; a length below 4 or a
    body over ``limit`` bytes is a ProtocolViolation. For readers that take one whole message
    at a time (the callback endpoint), where ``MessageScanner`` is for streams relayed through."""
    length: int = _LENGTH.unpack_from(header, 1)[0]
    if length < 4 or length - 4 > limit:
        raise ProtocolViolation(f"invalid message length {length}")
    return length - 4


# ---------------------------------------------------------------------------------------------
# Writing messages


def message(mtype: bytes, body: bytes) -> bytes:
    return mtype + _LENGTH.pack(len(body) + 4) + body


def error_response(
    sqlstate: str,
    text: str,
    *,
    severity: str = "ERROR",
    detail: str | None = None,
    hint: str | None = None,
) -> bytes:
    """An ErrorResponse with the fields libpq and the drivers read."""
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + sqlstate.encode()]
    fields.append(b"M" + text.encode())
    if detail:
        fields.append(b"D" + detail.encode())
    if hint:
        fields.append(b"H" + hint.encode())
    body = b"".join(f.replace(b"\x00", b" ") + b"\x00" for f in fields) + b"\x00"
    return message(ERROR_RESPONSE, body)


def ready_for_query(status: bytes = b"I") -> bytes:
    return message(READY_FOR_QUERY, status)


def parse_error_fields(body: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse or NoticeResponse body, by their one-letter code."""
    fields: dict[str, str] = {}
    for part in body.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def with_hint(raw: bytes, sqlstate: str, position: int, hint: str, *,
              replace: bool = False, message_part: str | None = None) -> bytes:
    """The ErrorResponse ``raw`` with a HINT added, if it has this SQLSTATE and cursor
    position (or, given ``message_part``, a message that contains it: for errors without a
    position) and no HINT of its own (with ``replace``, ours takes the place of its own);
    otherwise ``raw`` unchanged."""
    fields = parse_error_fields(raw[5:])
    if fields.get("C") != sqlstate:
        return raw
    if message_part is not None:
        if message_part not in fields.get("M", ""):
            return raw
    elif fields.get("P") != str(position):
        return raw
    if "H" in fields and not replace:
        return raw
    kept = b"".join(part + b"\x00" for part in raw[5:-1].split(b"\x00")
                    if part and not part.startswith(b"H"))
    field = b"H" + hint.encode("utf-8").replace(b"\x00", b" ") + b"\x00"
    return message(ERROR_RESPONSE, kept + field + b"\x00")


def parse_startup_parameters(body: bytes) -> dict[str, str]:
    """Key/value pairs of a StartupMessage body (after the protocol version)."""
    items = body.split(b"\x00")
    params: dict[str, str] = {}
    for key, value in zip(items[0::2], items[1::2]):
        if not key:
            break
        params[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return params


def startup_message(version: int, params: dict[str, str]) -> bytes:
    """A StartupMessage with these parameters, in this order."""
    body = b"".join(k.encode() + b"\x00" + v.encode() + b"\x00" for k, v in params.items())
    body = struct.pack("!I", version) + body + b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def cstring(data: bytes, offset: int = 0) -> tuple[bytes, int]:
    """A NUL-terminated string at ``offset`` and the offset after its terminator."""
    end = data.find(b"\x00", offset)
    if end < 0:
        raise ProtocolViolation("unterminated string")
    return data[offset:end], end + 1
