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

The client direction is the mirror: ``client_segments`` takes what ``client_scanner()`` framed
(pass-through bytes and the Query and Parse messages the byte prefilter picked) and answers the
bytes to send upstream, rewritten (proxy/rewrites.py), with the steps in between. What it needs
of the proxy it is given: the configuration (warm-up on or off, the extension stand-in) and what
the proxy knows of the databases, both through small Protocols.

Preludes. A statement that cannot run in a ``DO`` block (``CREATE INDEX CONCURRENTLY``) cannot be
wrapped in the checks AlloyDB makes; its rewrite may instead ask for a ``Prelude``, a statement
the session sends upstream as a Query of its own just before the client's Query. The shell holds
the client direction from the prelude on (what follows waits in the ``HoldQueue``, in order); the
session swallows the prelude's answer (its last CommandComplete or ErrorResponse and its
ReadyForQuery) and then says what goes upstream in the Query's place (``after_prelude``): the
client's Query, as rewritten, when the prelude succeeded; nothing when it failed, its
ErrorResponse and ReadyForQuery being forwarded instead, as the answer to the client's Query
(what the client would have seen had its statement failed so).

The server's ReadyForQuery ordinals run one ahead per swallowed prelude; the session counts them
(``readies_swallowed``) so that its own bookkeeping (the endpoint registration after a given
statement's answer) keeps the client's numbering. While a prelude is under way the server
direction inspects every message, to tell the prelude's answer from those of the client's
earlier messages still coming in (answers to extended-protocol messages not yet synced come out
just before it, so the prelude's is the last CommandComplete or ErrorResponse before its
ReadyForQuery). Only a statement whose rewrite asks for a prelude costs anything: the fast paths
neither see nor test for one.

A Parse gets no prelude (its statement goes as rewritten, unchecked): inside an extended-protocol
batch a Query of the proxy's own would end the batch's implicit transaction, and after an error
in the batch the server would ignore it until the client's Sync, which the hold keeps back; the
relay does not follow the batches message by message (the fast path steps over Bind, Execute and
Sync, only counting them), so it cannot tell when one is safe.

Command tags. A rename is aimed at one result by its place: the span (the ReadyForQuery that ends
it) and, for an Execute, its number among the span's results; prepared statements that rename a
tag are followed by name through Bind and Execute (docs/internals.md, "Command tags").
"""

from __future__ import annotations

import collections
import logging
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Protocol

from proxy import protocol as pq
from proxy import readonly
from proxy.rewrites import ErrorHint, rewrite
from proxy.startup import UpstreamRefused
from proxy.statements import worth_parsing

log = logging.getLogger("alloydb_ai_emulator.proxy")

SERVER_INSPECT = frozenset(b"KS")  # BackendKeyData, ParameterStatus
_READY = frozenset(b"Z")  # ReadyForQuery: during startup, and before pending work
_AUTH = frozenset(b"R")  # Authentication*: during startup only (SASL mechanisms)
# CommandComplete, ErrorResponse, ReadyForQuery: while a tag is to be renamed
_RENAMING = frozenset(b"CEZ")
_EVERY_TYPE = frozenset(range(256))  # while a prelude is under way: its answers are swallowed
STARTUP_INSPECT = SERVER_INSPECT | _READY | _AUTH

CLIENT_INSPECT = frozenset(b"QP")  # Query, Parse: the statements the proxy may rewrite
_ANSWERED_BY_READY = frozenset(b"QS")  # client Query and Sync: one ReadyForQuery each
_EXECUTES = frozenset(b"E")  # client Execute: each has one result (numbered between two Syncs)
# Query, Execute: what may start a COPY FROM STDIN; CopyDone, CopyFail: what ends it (the Syncs
# between, which PostgreSQL ignores, are not counted)
_COPY_STARTS, _COPY_ENDS = frozenset(b"QE"), frozenset(b"cf")
# Parse, Bind, Execute, Close: framed while a prepared statement or portal has a tag to rename
_FOLLOWED = frozenset(b"PBEC")
# The server's results: CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse
# (numbered between two ReadyForQuery: an Execute's result is the one of its number)
RESULTS = frozenset(b"CIsE")

# The command tag PostgreSQL answers each stand-in extension command with.
_EXTENSION_TAGS = {"create": b"CREATE EXTENSION", "update": b"ALTER EXTENSION",
                   "drop": b"DROP EXTENSION"}


def client_scanner() -> pq.MessageScanner:
    """The framer of a client's stream: Query and Parse whole when the byte prefilter picks
    them, every other byte streamed; Query and Sync counted (each is answered by one
    ReadyForQuery, which is how a statement's answer is found), Executes numbered between them
    (each has one result); from a Parse the prefilter picked on, Parse, Bind, Execute and Close
    framed too, until the session has no prepared statement with a tag to rename
    (``Session.follows``)."""
    return pq.MessageScanner(
        CLIENT_INSPECT,
        valid_types=pq.CLIENT_MESSAGE_TYPES,
        wanted=worth_parsing,
        count=_ANSWERED_BY_READY,
        within=_EXECUTES,
        follow=_FOLLOWED,
        copy_starts=_COPY_STARTS,
        copy_ends=_COPY_ENDS,
    )


class TagRename(NamedTuple):
    """A command tag to rename: the ``old`` tag of a result in the server's ``span`` (the
    ReadyForQuery ordinal before it, less the preludes' swallowed ones) becomes ``new``. With a
    ``result`` number (an Execute's), only that result of the span; without (a Query's), the
    first result of the span with the ``old`` tag."""

    span: int
    result: int | None
    old: bytes
    new: bytes


class ParseUndo(NamedTuple):
    """A Parse or Close that changed what a statement name renames, before its answer: the server
    ``span`` and the Executes before it in that span (``executes``), like an Execute's TagRename,
    and the name's renames before it (None: none). PostgreSQL skips a Parse after an error of
    its span and refuses one of a name that exists (42P05), and skips a Close after an error:
    the statement stays what it was, and so must its renames."""

    span: int
    executes: int
    name: bytes
    previous: tuple[tuple[bytes, bytes], ...] | None


# Pending Parses beyond this many (a client pipelining thousands before a Sync): the session
# forgets its statements instead (Session.lose_track).
_MAX_PARSES_PENDING = 1024
_DUPLICATE_PREPARED_STATEMENT = "42P05"


class Step(Enum):
    """What the shell must do, in stream order, between the bytes a session hands it."""

    BACKEND_KEY = "backend_key"  # the backend is known: record the session by its pid
    # Hold the client direction from here (the client bytes that follow this step wait too),
    # register the engine endpoint in the session's database, release. The one step for every
    # trigger: the first session of a database (at startup's ReadyForQuery), the ReadyForQuery
    # that answers CREATE/ALTER EXTENSION, a model-calling statement where the extension was not
    # seen yet (before that statement).
    REGISTER_ENDPOINT = "register_endpoint"
    # The prelude's ReadyForQuery came: send ``Session.after_prelude()`` upstream, then release
    # the client direction.
    PRELUDE_DONE = "prelude_done"
    # End the session with FATAL ``Session.read_only_breach`` (25006): code the proxy could not
    # see made a read-only session writable (proxy/readonly.py)
    READ_ONLY_BREACH = "read_only_breach"


@dataclass(frozen=True, slots=True)
class Prelude:
    """A statement of the proxy's own to run, as a Query of its own, before the client's Query
    ``message`` (as rewritten), which goes upstream only once the prelude has succeeded (see the
    module's plan)."""

    sql: str
    message: bytes
    before: int  # client Query and Sync messages before ``message``: where the answer comes


class ExtensionStandIn(Protocol):
    """The statements that stand in for CREATE, ALTER ... UPDATE and DROP EXTENSION on a server
    without the extension's files (emulator/extension_files.ExtensionEmulation)."""

    def handles(self, name: str) -> bool: ...
    def create_sql(self, name: str, if_not_exists: bool, version: str | None = None) -> str: ...
    def update_sql(self, name: str, version: str | None) -> str: ...
    def drop_sql(self, name: str, if_exists: bool) -> str: ...


class RewriteConfig(Protocol):
    """What the client direction reads of the proxy's configuration (listener.ProxyConfig)."""

    @property
    def warmup(self) -> bool: ...
    @property
    def extension_emulation(self) -> ExtensionStandIn | None: ...
    @property
    def flags(self) -> Mapping[str, tuple[str, bool]]: ...


class Databases(Protocol):
    """What the client direction asks of the proxy about databases (listener.ProxyServer)."""

    @property
    def databases_with_extension(self) -> Collection[str]: ...
    def extension_check_due(self, dbname: str) -> bool:
        """Whether a model-calling statement in ``dbname``, where the extension was not seen,
        should first have the endpoint registered (it answers True at most once a second)."""
        ...


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
        "_after_prelude", "_parses", "_portals", "_prelude", "_prelude_last", "_prelude_ready",
        "_statements", "backend_key", "backend_pid", "client_encoding", "client_filter",
        "error_hints", "params", "peer", "read_only", "read_only_breach", "readies_swallowed",
        "register_at", "server_inspect", "started", "tag_renames", "transaction_status",
    )

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params: dict[str, str] = params or {}
        self.peer = "?"  # the client's address, for log lines
        self.started = False  # the first ReadyForQuery has been seen
        self.backend_pid: int | None = None
        self.backend_key: bytes | None = None
        self.transaction_status = b"I"  # as of the last ReadyForQuery inspected
        self.client_encoding = "UTF8"
        # The server ReadyForQuery (by ordinal) after which to register the engine endpoint.
        self.register_at: int | None = None
        self.tag_renames: collections.deque[TagRename] = collections.deque()
        # Prepared statements and portals whose results get a tag renamed, by name: each
        # Execute of such a portal queues its renames (only these: a statement's tag is its
        # own, whatever the client prepares and never runs)
        self._statements: dict[bytes, tuple[tuple[bytes, bytes], ...]] = {}
        self._portals: dict[bytes, tuple[tuple[bytes, bytes], ...]] = {}
        # Parses that changed a name's renames and are not answered yet, oldest first: an error
        # of their span may mean PostgreSQL kept the statement as it was (ParseUndo)
        self._parses: collections.deque[ParseUndo] = collections.deque()
        # HINTs for the errors of statements that do not parse, oldest first (rewrites.py).
        # ... each with the span of its statement's answer (as TagRename's): a HINT goes only to
        # an error of that span, and goes when the span ends without one.
        self.error_hints: collections.deque[tuple[int, ErrorHint]] = collections.deque(maxlen=16)
        self.server_inspect = STARTUP_INSPECT
        # The prelude under way (sent upstream, not answered yet), the server ReadyForQuery
        # ordinal that ends its answer, the last CommandComplete or ErrorResponse since the
        # ReadyForQuery before it (held back: the prelude's own if the next is its
        # ReadyForQuery), and what to send once it has answered
        self._prelude: Prelude | None = None
        self._prelude_ready = 0
        self._prelude_last: pq.Message | None = None
        self._after_prelude = b""
        self.readies_swallowed = 0  # prelude answers' ReadyForQuery the client never saw
        # alloydb_session_read_only (proxy/readonly.py), and how to give the client direction's
        # scanner another prefilter once the session uses it (the shell's; None in tests)
        self.read_only = readonly.ReadOnlyState()
        self.client_filter: Callable[[Callable[[bytes, int, int], bool]], None] | None = None
        self.read_only_breach = ""  # the FATAL message of Step.READ_ONLY_BREACH

    @property
    def dbname(self) -> str:
        return self.params.get("database") or self.params.get("user", "")

    def start(self, version: int, params: dict[str, str], instance: str) -> bytes:
        """The client's StartupMessage was received: the one to send upstream, with this
        proxy's instance name added to ``options``, so the session's model calls come back to
        this proxy when several front one server. ``alloydb_session_read_only`` is taken out
        (proxy/readonly.py); a value it does not take raises UpstreamRefused."""
        self.params = params
        try:
            params, read_only = readonly.startup_parameters(params)
        except readonly.InvalidValue as exc:
            raise UpstreamRefused(pq.error_response(
                "22023", str(exc), severity="FATAL", hint=readonly.VALUES_HINT)) from None
        if read_only is not None:
            self.read_only = readonly.ReadOnlyState(read_only)
            self._read_only_filter()
        params = dict(params)
        option = f"-c google_ml_integration.emulator_instance={instance}"
        params["options"] = f"{params['options']} {option}" if params.get("options") else option
        return pq.startup_message(version, params)

    # -- the client direction ---------------------------------------------------------------

    def client_segments(
        self, segments: list[pq.Segment], config: RewriteConfig, databases: Databases,
    ) -> list[bytes | Step | Prelude]:
        """What to send upstream for a client chunk that ``client_scanner()`` framed: runs of
        bytes (each may be empty), with the steps to take and the preludes to run between them,
        in stream order (a prelude carries its own message)."""
        out: list[bytes | Step | Prelude] = []
        run: list[bytes] = []
        for segment in segments:
            if type(segment) is pq.Message:
                raw, step = self.client_message(segment, config, databases)
                if step is not None:
                    out.append(b"".join(run))
                    out.append(step)
                    run = []
                if type(raw) is Prelude:
                    out.append(b"".join(run))
                    out.append(raw)
                    run = []
                else:
                    run.append(raw)  # type: ignore[arg-type]
            else:
                run.append(bytes(segment))  # type: ignore[arg-type]
        out.append(b"".join(run))
        return out

    def client_message(
        self, msg: pq.Message, config: RewriteConfig, databases: Databases,
    ) -> tuple[bytes | Prelude, Step | None]:
        """For a Query or Parse the prefilter picked: the bytes to send upstream (or a prelude
        that carries them), and the step to take *before* them (REGISTER_ENDPOINT: a statement
        that may call a model, in a database where the proxy has not seen the extension; another
        proxy or a direct connection may have created it since)."""
        mtype = msg.type
        if mtype != pq.QUERY and (mtype != pq.PARSE or not self._picked(msg.raw)):
            self._followed(msg)  # (framed because a prepared statement renames a tag)
            return msg.raw, None
        dbname = self.dbname
        step = Step.REGISTER_ENDPOINT if databases.extension_check_due(dbname) else None
        renames: list[tuple[bytes, bytes]] = []
        raw = self._rewritten(msg, config, dbname in databases.databases_with_extension, renames)
        if mtype == pq.QUERY:
            for old, new in renames:
                self.rename_next_tag(old, new, msg.ordinal)
        else:
            self._prepared(msg, renames)
        return raw, step

    @property
    def follows(self) -> bool:
        """Whether the client direction must frame Parse, Bind, Execute and Close: a prepared
        statement or a portal renames its results' tag, or may again once a pending Parse or
        Close is answered."""
        return bool(self._statements or self._portals or self._parses)

    def lose_track(self) -> None:
        """A followed message went by unseen (a Parse or Bind too long to frame): which
        statement a portal runs is no longer known, so nothing is renamed from here on (a tag
        left as PostgreSQL wrote it rather than another statement's renamed)."""
        self._statements.clear()
        self._portals.clear()
        self._parses.clear()

    def _picked(self, raw: bytes) -> bool:
        """Whether the byte prefilter picks this Parse (one framed only because the session
        follows its prepared statements is not rewritten)."""
        wanted = readonly.read_only_wanted if self.read_only.in_use else worth_parsing
        return wanted(raw, 0, len(raw))

    def _prepared(self, msg: pq.Message, renames: list[tuple[bytes, bytes]]) -> None:
        """A Parse: its statement's results get ``renames`` (a Parse of the same name without
        any replaces one with), unless its answer says PostgreSQL did not make it
        (``_parse_failed``)."""
        try:
            name, _ = pq.cstring(msg.raw, 5)
        except pq.ProtocolViolation:
            return
        previous = self._statements.get(name)
        if renames:
            self._statements[name] = tuple(renames)
        else:
            self._statements.pop(name, None)
        self._changed(msg, name, previous)

    def _changed(self, msg: pq.Message, name: bytes,
                 previous: tuple[tuple[bytes, bytes], ...] | None) -> None:
        """A Parse or Close of statement ``name`` (``msg``), which had ``previous``: kept
        until its span is answered, in case PostgreSQL did not run it (``_parse_failed``)."""
        if self._statements.get(name) == previous:
            return
        if len(self._parses) >= _MAX_PARSES_PENDING:
            self.lose_track()
            return
        # (answered by the ReadyForQuery after the next Sync, as an Execute's result is)
        self._parses.append(ParseUndo(msg.ordinal + 1, msg.index, name, previous))
        self._update_server_inspect()

    def _parse_failed(self, span: int, result: int, sqlstate: str | None) -> None:
        """An ErrorResponse, the ``result``-th of ``span``: undo the pending changes of names
        it undid. A Parse or Close after the failed Execute's place never ran. One between the
        last result and the error ran, unless the error is 42P05: then it was that Parse's own
        (the name exists), and what followed it was skipped. Any other error there is taken as
        a later Bind's or Execute's, which is what it is unless a Parse of an existing name did
        not parse at all."""
        parses = self._parses
        settled = [parse for parse in parses if parse.span == span]
        while parses and parses[0].span <= span:
            parses.popleft()
        duplicate = sqlstate == _DUPLICATE_PREPARED_STATEMENT
        for parse in reversed(settled):
            if parse.executes < result or (parse.executes == result and not duplicate):
                break  # it ran
            if parse.previous:
                self._statements[parse.name] = parse.previous
            else:
                self._statements.pop(parse.name, None)
            if parse.executes == result:
                break  # the Parse that failed: what came before it ran

    def _followed(self, msg: pq.Message) -> None:
        """A Parse the prefilter did not pick, a Bind, an Execute or a Close, seen while the
        session follows its prepared statements: which portal runs which statement, and the
        renames of each Execute's result."""
        raw = msg.raw
        try:
            if msg.type == pq.PARSE:
                self._prepared(msg, [])
            elif msg.type == pq.BIND:
                portal, offset = pq.cstring(raw, 5)
                renames = self._statements.get(pq.cstring(raw, offset)[0])
                if renames:
                    self._portals[portal] = renames
                else:
                    self._portals.pop(portal, None)
            elif msg.type == pq.EXECUTE:
                renames = self._portals.get(pq.cstring(raw, 5)[0])
                for old, new in renames or ():
                    # answered by the ReadyForQuery after the next Sync: the server's ordinals
                    # run one ahead of the client's count (the one after startup)
                    self._rename(TagRename(msg.ordinal + 1, msg.index, old, new))
            elif msg.type == pq.CLOSE:
                name = pq.cstring(raw, 6)[0]
                if raw[5:6] == b"S":
                    self._changed(msg, name, self._statements.pop(name, None))
                else:
                    self._portals.pop(name, None)
        except pq.ProtocolViolation:
            pass  # PostgreSQL says what is wrong with it

    def _rewritten(self, msg: pq.Message, config: RewriteConfig, extension_installed: bool,
                   renames: list[tuple[bytes, bytes]]) -> bytes | Prelude:
        raw = msg.raw
        utf8 = self.client_encoding in ("UTF8", "SQL_ASCII")
        if not utf8 and not self.read_only.in_use and not readonly.names_parameter(raw):
            return raw
        try:
            if msg.type == pq.QUERY:
                sql_bytes, _ = pq.cstring(raw, 5)
                prefix, suffix = b"", b""
            else:
                name, offset = pq.cstring(raw, 5)
                sql_bytes, after = pq.cstring(raw, offset)
                prefix, suffix = name + b"\x00", raw[after:]
        except pq.ProtocolViolation:
            return raw  # PostgreSQL will say what is wrong with it
        try:
            sql = sql_bytes.decode("utf-8") if utf8 else None
        except UnicodeDecodeError:
            sql = None
        if sql is None:
            return self._read_only_checked(msg, sql_bytes, prefix, suffix, renames)
        try:
            read_only = self._read_only_plan(sql, sql_bytes)
            result = rewrite(read_only.sql or sql, warmup=config.warmup,
                             extension_installed=extension_installed, flags=config.flags)
        except Exception:  # a rewrite must never break a statement that would have run
            log.exception("client %s: rewrite failed; statement forwarded unchanged", self.peer)
            return raw
        if read_only.sql is not None and result.sql is None:
            result.sql = read_only.sql
        if read_only.parameters and msg.type == pq.PARSE:
            suffix = _declared_parameters(suffix, read_only.parameters)
        if read_only.show:
            renames.append((b"SELECT 1", b"SHOW"))
        if result.error_hint is not None:
            self.add_error_hint(result.error_hint,
                                msg.ordinal if msg.type == pq.QUERY else msg.ordinal + 1)
        if result.touches_extension:
            # Register at the ReadyForQuery that answers this statement: a Query is answered by
            # its own, a Parse by the next Sync's. Server ReadyForQuery ordinals run one ahead
            # of the client's Query/Sync count (the server sends one after startup).
            answered_by = msg.ordinal if msg.type == pq.QUERY else msg.ordinal + 1
            self.register_after(answered_by + 1)
        emulation = config.extension_emulation
        command = result.extension_command
        emulated = emulation is not None and command is not None and emulation.handles(
            command.name)
        if not emulated:  # (the stand-in's statement has its own tag, renamed below)
            renames.extend(result.rename_tags)
        else:
            assert emulation is not None and command is not None
            # A server without the extension's files: create its objects instead.
            if command.kind == "create":
                result.sql = emulation.create_sql(
                    command.name, command.if_not_exists_or_if_exists, command.version)
            elif command.kind == "update":
                result.sql = emulation.update_sql(command.name, command.version)
            else:
                result.sql = emulation.drop_sql(command.name, command.if_not_exists_or_if_exists)
            renames.append((b"DO", _EXTENSION_TAGS[command.kind]))
        if result.sql is not None:
            for note in result.notes:
                log.info("client %s: %s", self.peer, note)
            raw = pq.message(msg.type, prefix + result.sql.encode("utf-8") + b"\x00" + suffix)
        if result.prelude is None or msg.type != pq.QUERY:
            return raw  # a Parse goes unchecked (see the module's plan)
        return Prelude(result.prelude, raw, msg.ordinal - 1)

    def _read_only_checked(self, msg: pq.Message, sql_bytes: bytes, prefix: bytes,
                           suffix: bytes, renames: list[tuple[bytes, bytes]]) -> bytes:
        """A text that is not UTF-8 gets no rewrite, but a read-only session's checks all the
        same: read as Latin-1 (one character a byte), the text outside the statements replaced
        goes back byte for byte."""
        try:
            plan = self._read_only_plan(sql_bytes.decode("latin-1"), sql_bytes)
        except Exception:  # as in _rewritten
            log.exception("client %s: rewrite failed; statement forwarded unchanged", self.peer)
            return msg.raw
        if plan.show:
            renames.append((b"SELECT 1", b"SHOW"))
        if plan.sql is None:
            return msg.raw
        return pq.message(msg.type, prefix + plan.sql.encode("latin-1") + b"\x00" + suffix)

    def _read_only_plan(self, sql: str, sql_bytes: bytes) -> readonly.Plan:
        """alloydb_session_read_only's part (proxy/readonly.py): only for a session that uses
        it or a text that names it."""
        state = self.read_only
        if not state.in_use and not readonly.names_parameter(sql_bytes):
            return readonly.Plan()
        plan = readonly.plan(sql, state)
        if state.in_use:
            self._read_only_filter()
        if state.tracking:
            self._update_server_inspect()
        return plan

    def _read_only_filter(self) -> None:
        """The session uses the parameter: its client prefilter also picks the statements that
        could make a read-only session writable."""
        if self.client_filter is not None:
            self.client_filter(readonly.read_only_wanted)
            self.client_filter = None  # once is enough: the filter stays

    # -- what the client direction learns ---------------------------------------------------

    def register_after(self, ordinal: int) -> None:
        """Register the engine endpoint after the server's ReadyForQuery number ``ordinal``."""
        self.register_at = ordinal
        self._update_server_inspect()

    def rename_next_tag(self, old: bytes, new: bytes, ordinal: int) -> None:
        """The first ``old`` tag among the results of the Query counted ``ordinal`` becomes
        ``new``."""
        self._rename(TagRename(ordinal, None, old, new))

    def _rename(self, rename: TagRename) -> None:
        self.tag_renames.append(rename)
        self._update_server_inspect()

    def add_error_hint(self, hint: ErrorHint, span: int) -> None:
        """``hint`` for an error among the answers of ``span`` (see ``TagRename``)."""
        self.error_hints.append((span, hint))
        self._update_server_inspect()

    # -- preludes (see the module's plan) ----------------------------------------------------

    def start_prelude(self, prelude: Prelude) -> bytes:
        """The shell sends the prelude now (every client byte before its message has gone
        upstream, nothing after it): the Query to send."""
        self._prelude = prelude
        self._prelude_last = None
        # ReadyForQuery ordinals: one after startup, one per client Query or Sync, one per
        # prelude swallowed so far; then the prelude's own
        self._prelude_ready = prelude.before + 1 + self.readies_swallowed + 1
        self._update_server_inspect()
        return pq.message(pq.QUERY, prelude.sql.encode("utf-8") + b"\x00")

    def after_prelude(self) -> bytes:
        """At PRELUDE_DONE: what goes upstream in the place of the prelude's Query."""
        after, self._after_prelude = self._after_prelude, b""
        return after

    def _prelude_answer(self, msg: pq.Message) -> tuple[bytes, Step | None]:
        """A server message since the ReadyForQuery before the prelude's answer."""
        mtype = msg.type
        if mtype == pq.COMMAND_COMPLETE or mtype == pq.ERROR_RESPONSE:
            # the prelude's own if its ReadyForQuery comes next; else an earlier message's
            held, self._prelude_last = self._prelude_last, msg
            return (b"" if held is None else self._server_message(held)[0]), None
        if mtype != pq.READY_FOR_QUERY:
            return self._server_message(msg)
        prelude, last = self._prelude, self._prelude_last
        assert prelude is not None
        self._prelude = self._prelude_last = None
        self.transaction_status = msg.raw[5:6]
        forwarded = b""
        if last is not None and last.type == pq.ERROR_RESPONSE:
            # the client's Query is dropped: this answer is its answer (and its error takes
            # what the session keeps for the statement's error: a tag rename, a HINT)
            self._after_prelude = b""
            error = pq.Message(pq.ERROR_RESPONSE, _without_context(last.raw), last.ordinal)
            forwarded = self._server_message(error)[0] + msg.raw
        else:
            self._after_prelude = prelude.message
            self.readies_swallowed += 1
        self._update_server_inspect()
        return forwarded, Step.PRELUDE_DONE

    def _update_server_inspect(self) -> None:
        if self._prelude is not None:
            self.server_inspect = _EVERY_TYPE
            return
        inspect = SERVER_INSPECT
        if not self.started:
            inspect = STARTUP_INSPECT
        elif self.register_at is not None:
            inspect = inspect | _READY
        if self.tag_renames or self.error_hints or self._parses:
            inspect = inspect | _RENAMING
        if self.read_only.tracking:  # whether the transaction that set it commits
            inspect = inspect | _RENAMING | _READY
        self.server_inspect = inspect

    # -- the server direction ---------------------------------------------------------------

    def server_message(self, msg: pq.Message) -> tuple[bytes, Step | None]:
        """For an inspected server message: the bytes to forward, and the step to take."""
        if self._prelude is not None and (
            msg.ordinal >= self._prelude_ready if msg.type == pq.READY_FOR_QUERY
            # (a message's ordinal counts the ReadyForQuery messages before it)
            else msg.ordinal >= self._prelude_ready - 1
        ):  # after the ReadyForQuery of the last client message before the prelude
            return self._prelude_answer(msg)
        return self._server_message(msg)

    def _server_message(self, msg: pq.Message) -> tuple[bytes, Step | None]:
        mtype = msg.type
        if self.read_only.tracking:
            if mtype == pq.COMMAND_COMPLETE:
                self.read_only.command_complete(msg.body)
            elif mtype == pq.ERROR_RESPONSE:
                self.read_only.error()
        if mtype == pq.COMMAND_COMPLETE:
            if self.tag_renames:
                return self._command_complete(msg), None
        elif mtype == pq.ERROR_RESPONSE:
            if self._parses:
                self._parse_failed(msg.ordinal - self.readies_swallowed, msg.index,
                                   pq.parse_error_fields(msg.body).get("C"))
                self._update_server_inspect()
            if self.tag_renames:  # the statement failed: no tag of its span will come
                span = self._renames_due(msg)
                while self.tag_renames and self.tag_renames[0].span == span:
                    self.tag_renames.popleft()
                self._update_server_inspect()
            if self.error_hints:  # the first error of the hinted statement's span is its own
                span = msg.ordinal - self.readies_swallowed
                hints = self.error_hints
                while hints and hints[0][0] < span:
                    hints.popleft()
                if hints and hints[0][0] == span:
                    hint = hints.popleft()[1]
                    self._update_server_inspect()
                    return pq.with_hint(msg.raw, hint.sqlstate, hint.position, hint.hint,
                                        replace=hint.replaces,
                                        message_part=hint.message_part), None
                self._update_server_inspect()
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
            breach = readonly.breach(self.read_only, key, value)
            if breach is not None:
                self.read_only_breach = breach
                return b"", Step.READ_ONLY_BREACH
        return msg.raw, None

    def _renames_due(self, msg: pq.Message) -> int:
        """Drop the renames whose result has gone by; the span of ``msg``."""
        span = msg.ordinal - self.readies_swallowed
        renames = self.tag_renames
        while renames and (renames[0].span < span or (
                renames[0].span == span and renames[0].result is not None
                and renames[0].result < msg.index)):
            renames.popleft()
        return span

    def _command_complete(self, msg: pq.Message) -> bytes:
        """A CommandComplete while tags are to be renamed: renamed if it is the one."""
        span = self._renames_due(msg)
        renames = self.tag_renames
        raw = msg.raw
        if renames and renames[0].span == span:
            rename = renames[0]
            tag = msg.body.rstrip(b"\x00")
            if rename.result is None and tag == rename.old:
                renames.popleft()
                raw = pq.message(pq.COMMAND_COMPLETE, rename.new + b"\x00")
            elif rename.result == msg.index:
                renames.popleft()
                if tag == rename.old:
                    raw = pq.message(pq.COMMAND_COMPLETE, rename.new + b"\x00")
        self._update_server_inspect()
        return raw

    def _ready_for_query(self, msg: pq.Message) -> Step | None:
        # The answers of the span it ends have all come (its ordinal counts itself).
        ended = msg.ordinal - self.readies_swallowed
        renames, hints, parses = self.tag_renames, self.error_hints, self._parses
        while renames and renames[0].span < ended:
            renames.popleft()
        while parses and parses[0].span < ended:  # answered without an error: made
            parses.popleft()
        while hints and hints[0][0] < ended:
            hints.popleft()
        self.transaction_status = msg.raw[5:6]
        self.started = True
        if self.read_only.tracking:
            self.read_only.ready(self.transaction_status)
        step = None
        if (
            self.register_at is not None
            and msg.ordinal - self.readies_swallowed >= self.register_at
            and self.transaction_status == b"I"  # committed: the admin connection sees it
        ):
            self.register_at = None
            step = Step.REGISTER_ENDPOINT
        self._update_server_inspect()
        return step


_TEXT_OID = 25


def _declared_parameters(suffix: bytes, count: int) -> bytes:
    """A Parse's parameter types for a statement the proxy replaced by one without parameters:
    at least ``count``, each the client's or, where it left it to the server, ``text`` (the
    server cannot infer a type from a text that no longer uses the parameter)."""
    try:
        (declared,) = struct.unpack_from("!H", suffix, 0)
        oids = list(struct.unpack_from(f"!{declared}I", suffix, 2))
    except struct.error:
        return suffix  # malformed: PostgreSQL says what is wrong with it
    oids = [oid or _TEXT_OID for oid in oids] + [_TEXT_OID] * (count - declared)
    return struct.pack(f"!H{len(oids)}I", len(oids), *oids)


def _without_context(error: bytes) -> bytes:
    """A prelude's ErrorResponse without its CONTEXT field: the lines name the proxy's DO block
    and functions, not the client's statement, which has none of its own."""
    fields = [part for part in error[5:-1].split(b"\x00") if part and not part.startswith(b"W")]
    return pq.message(pq.ERROR_RESPONSE, b"".join(f + b"\x00" for f in fields) + b"\x00")


class Held(NamedTuple):
    data: bytes
    framed: bool  # True: scanned and rewritten, send as is; False: raw, scan when released
    prelude: Prelude | None = None  # a prelude to start here (``data`` is then empty)


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

    @property
    def holds_besides_one(self) -> bool:
        """Whether another piece of work is still under way besides the one ending now."""
        return self._holds > 1

    def keep(self, data: bytes, *, framed: bool) -> None:
        """Keep client bytes until the hold ends (the shell stops reading meanwhile)."""
        if not self._holds:
            raise RuntimeError("keep() without hold(): send the bytes on")
        self._items.append(Held(data, framed))

    def keep_prelude(self, prelude: Prelude) -> None:
        """Keep a prelude, to be started in its place among the bytes kept."""
        if not self._holds:
            raise RuntimeError("keep_prelude() without hold(): start it")
        self._items.append(Held(b"", True, prelude))

    def keep_first(self, data: bytes) -> None:
        """Framed bytes that go before everything kept (a prelude's message, while another
        hold is still on)."""
        if not self._holds:
            raise RuntimeError("keep_first() without hold(): send the bytes on")
        self._items.insert(0, Held(data, True))

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
