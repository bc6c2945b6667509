"""AlloyDB's session parameter ``alloydb_session_read_only``: sans-io.

Plan
----
AlloyDB (PostgreSQL 17 and later) makes a session read-only with ``alloydb_session_read_only``:
``off`` (the default), ``on`` (read-only until set back to ``off``) or ``locked`` (read-only
until the session ends; no other value is accepted after it). The MCP Toolbox's AlloyDB source
with ``readOnly: true`` connects with ``options='-c alloydb_session_read_only=locked'``. Google
documents the parameter's twin, Cloud SQL's ``cloudsql_session_read_only``
(docs.cloud.google.com/sql/docs/postgres/read-only-sessions), which this follows.

PostgreSQL refuses a parameter it does not know, so the proxy keeps this one itself:

- at startup it takes the parameter out of ``options`` (``-c name=value``, ``-cname=value``,
  ``--name=value``) and out of the startup parameters (asyncpg's ``server_settings``), and for
  ``on`` and ``locked`` asks for ``default_transaction_read_only=on`` instead: PostgreSQL's own
  read-only transactions then refuse every write with its own error (25006, "cannot execute
  INSERT in a read-only transaction");
- ``SET [SESSION|LOCAL]``, ``RESET`` and ``SET ... TO DEFAULT`` of the parameter become the same
  statements of ``default_transaction_read_only``: a transaction already writing goes on writing
  until it ends, as the page says, and PostgreSQL undoes the setting with the transaction that
  made it, as it undoes any SET; ``SHOW`` becomes a SELECT, and ``current_setting()`` of the
  parameter an expression, that read ``default_transaction_read_only`` (``locked`` or ``on``
  when it is on, as the proxy knows the session; a driver may prepare the SELECT and run it
  again later);
- while the value is ``on`` or ``locked`` the statements that would make a transaction writable
  again (``SET``/``RESET``/``set_config`` of ``default_transaction_read_only`` or
  ``transaction_read_only`` to off, ``BEGIN``/``START TRANSACTION READ WRITE``, ``SET
  [SESSION CHARACTERISTICS AS] TRANSACTION READ WRITE``, a ``DO`` block) are refused, as are
  what the twin's page lists beyond PostgreSQL's read-only transactions (``VACUUM``, ``NOTIFY``,
  functions with side effects, procedures; see _REFUSED_STATEMENTS), and while
  it is ``locked`` so are other values for the parameter and a ``RESET ALL``/``DISCARD ALL`` that
  would reset it.

The value a session shows follows PostgreSQL's rules for SET: ``ReadOnlyState`` keeps the
committed value, the one set in the open transaction (kept only if the transaction commits) and
a ``SET LOCAL`` one (dropped when the transaction ends), learning the outcome from the server's
last CommandComplete or ErrorResponse before an idle ReadyForQuery. Statements are decided from
the parse tree (pglast); a text that does not parse goes on unchanged (PostgreSQL reports it).
Sessions that never use the parameter are unaffected: only texts naming it reach this module.

Code the proxy does not see (a function written before, calling ``set_config()``) could still
turn ``default_transaction_read_only`` off; PostgreSQL reports that setting to the client
whenever it changes, and a locked session ends (``breach``) before the next statement can write
(an ``on`` one follows the server: it becomes ``off``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import pglast
from pglast import ast
from pglast.enums import DiscardMode, TransactionStmtKind, VariableSetKind
from pglast.visitors import Visitor

from proxy.scann import parse_bool, sql_literal
from proxy.statements import Splice, apply_splices, call_span, worth_parsing

PARAMETER: Final = "alloydb_session_read_only"
OFF: Final = "off"
ON: Final = "on"
LOCKED: Final = "locked"
VALUES: Final = (OFF, ON, LOCKED)
VALUES_HINT: Final = "Available values: off, on, locked."

# PostgreSQL's settings behind a read-only transaction
_READ_ONLY_SETTINGS: Final = frozenset({"default_transaction_read_only", "transaction_read_only"})
# What a text needs to hold to matter in a session that is read-only now: the words of the
# statements that would make it writable (``READ WRITE``, the settings' names, ``set_config``,
# ``RESET``, ``DISCARD``) and of those refused below. Asked only in such sessions; every other
# session keeps the proxy's own prefilter.
_READ_ONLY_PREFILTER: Final = re.compile(
    rb"write|read_only|set_config|reset|discard|\bdo\b|vacuum|analy[sz]e|notify|reindex|cluster"
    rb"|txid_current|xact_id|_backend|pg_promote|\bcall\b|dblink|alter\s+system|reload_conf"
    rb"|rotate_logfile|switch_wal|restore_point|stat_reset", re.IGNORECASE)
# What the twin's page lists beyond PostgreSQL's read-only transactions, which allow them:
# statements that take a transaction id or act outside the transaction (VACUUM, NOTIFY; ANALYZE,
# REINDEX and CLUSTER take one as VACUUM does), procedures (a procedure may commit, and the
# transaction it starts then would be writable if it turned default_transaction_read_only off;
# the page refuses procedural code, and the proxy cannot tell a procedure's language)
_REFUSED_STATEMENTS: Final = {"NotifyStmt": "NOTIFY", "ReindexStmt": "REINDEX",
                              "ClusterStmt": "CLUSTER", "CallStmt": "CALL",
                              "AlterSystemStmt": "ALTER SYSTEM"}
# the page's examples (pg_promote, pg_cancel_backend, pg_terminate_backend) and their kin:
# internal, volatile, acting beyond the transaction
_REFUSED_FUNCTIONS: Final = frozenset({
    "pg_notify", "txid_current", "pg_current_xact_id", "pg_cancel_backend",
    "pg_terminate_backend", "pg_promote", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
    "pg_create_restore_point", "pg_stat_reset", "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters", "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru", "pg_stat_reset_replication_slot", "pg_stat_reset_subscription_stats",
    "pg_stat_reset_backend_stats"})
# dblink's functions, in whatever schema (the page refuses foreign data wrappers): a connection
# of their own is another session, which nothing makes read-only
_REFUSED_FUNCTION_WORD: Final = "dblink"
_TAG: Final = "$alloydb_read_only$"


def names_parameter(sql: bytes) -> bool:
    """Whether a text may name the parameter (the cheap test before parsing)."""
    return b"session_read_only" in sql.lower()


def read_only_wanted(data: bytes, start: int, end: int) -> bool:
    """The client prefilter of a session that has used the parameter (the relay's scanner asks
    it about every Query and Parse instead of ``worth_parsing``)."""
    return worth_parsing(data, start, end) or _READ_ONLY_PREFILTER.search(
        data, start, end) is not None


class InvalidValue(ValueError):
    """A value the parameter does not take (SQLSTATE 22023, as PostgreSQL for an enum)."""

    def __init__(self, value: str) -> None:
        super().__init__(f'invalid value for parameter "{PARAMETER}": "{value}"')


def _value(text: str) -> str:
    value = text.lower()  # PostgreSQL compares enum values without case
    if value not in VALUES:
        raise InvalidValue(text)
    return value


# -- startup ----------------------------------------------------------------------------------

def _option_tokens(options: str) -> list[tuple[str, str]]:
    """The words of a startup ``options`` string as PostgreSQL splits them (pg_split_opts:
    whitespace separates, a backslash takes the next character as it is): (as written, value)."""
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(options)
    while pos < n:
        while pos < n and options[pos] in " \t\n\r\v\f":
            pos += 1
        if pos >= n:
            break
        start, chars = pos, []
        while pos < n and options[pos] not in " \t\n\r\v\f":
            if options[pos] == "\\" and pos + 1 < n:
                pos += 1
            chars.append(options[pos])
            pos += 1
        tokens.append((options[start:pos], "".join(chars)))
    return tokens


def _setting(assignment: str) -> tuple[str, str] | None:
    """``name=value`` as PostgreSQL's ParseLongOption reads it (hyphens in the name are
    underscores), when the name is this parameter's."""
    name, equals, value = assignment.partition("=")
    if not equals or name.replace("-", "_").lower() != PARAMETER:
        return None
    return name, value


def startup_parameters(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The startup parameters to send upstream, without this parameter (for ``on`` and
    ``locked``: with ``default_transaction_read_only=on``), and the session's value (None: not
    given). Raises InvalidValue. A plain startup parameter wins over ``options``, as in
    PostgreSQL (it applies them after the options)."""
    value: str | None = None
    kept: list[str] = []
    options = params.get("options", "")
    if "session_read_only" in options.lower().replace("-", "_"):
        tokens = _option_tokens(options)
        i = 0
        while i < len(tokens):
            raw, word = tokens[i]
            if word == "-c" and i + 1 < len(tokens) and _setting(tokens[i + 1][1]):
                setting = _setting(tokens[i + 1][1])
                i += 2
            elif word.startswith("--") or (word.startswith("-c") and word != "-c"):
                setting = _setting(word[2:])
                i += 1
                if setting is None:
                    kept.append(raw)
                    continue
            else:
                kept.append(raw)
                i += 1
                continue
            assert setting is not None
            value = _value(setting[1])
    out = {k: v for k, v in params.items() if k.lower() != PARAMETER}
    for key, given in params.items():
        if key.lower() == PARAMETER:
            value = _value(given)
    if value is None:
        return params, None
    if value != OFF:
        # (after any of the client's: the last -c wins; and a startup parameter of its own,
        # which PostgreSQL applies after the options, is dropped)
        kept.append("-c default_transaction_read_only=on")
        out = {k: v for k, v in out.items() if k.lower() != "default_transaction_read_only"}
    if kept:
        out["options"] = " ".join(kept)
    else:
        out.pop("options", None)
    return out, value


# -- the session's value ----------------------------------------------------------------------

class ReadOnlyState:
    """The session's value as PostgreSQL would keep it for a SET (see the module's plan)."""

    __slots__ = ("_committed", "_failed", "_rolled_back", "local", "pending", "reset", "tracking",
                 "value")

    def __init__(self, value: str = OFF) -> None:
        self.reset = value  # the startup value: RESET's
        self.value = value  # committed
        self.pending: str | None = None  # SET in the open transaction
        self.local: str | None = None  # SET LOCAL, until the transaction ends
        self.tracking = False  # the server's answers decide pending/local
        self._failed = False
        self._rolled_back = False
        self._committed = False

    @property
    def current(self) -> str:
        return self.local or self.pending or self.value

    @property
    def in_use(self) -> bool:
        return OFF != self.current or self.value != OFF or self.reset != OFF

    def set(self, value: str, *, local: bool) -> None:
        if local and value != LOCKED:
            self.local = value
        else:
            # 'locked' makes the session read-only for good, SET LOCAL or not
            self.pending, self.local = value, None
        self.tracking = True

    def command_complete(self, tag: bytes) -> None:
        self._failed = False
        self._rolled_back = tag.startswith(b"ROLLBACK")
        self._committed = tag.startswith((b"COMMIT", b"PREPARE TRANSACTION"))

    def settling(self) -> str:
        """The value once the transaction the last answer ended is over (what PostgreSQL's
        settings are when it reports them, just before its ReadyForQuery)."""
        if not self.tracking:
            return self.current
        if self._failed or self._rolled_back:
            return self.value
        if self._committed:
            return self.pending or self.value
        return self.current

    def error(self) -> None:
        self._failed = True

    def ready(self, status: bytes) -> None:
        """A ReadyForQuery: when idle, the transaction that set a value has ended."""
        if status != b"I":
            return
        if self.pending is not None and not (self._failed or self._rolled_back):
            self.value = self.pending
        self.pending = self.local = None
        self.tracking = self._failed = self._rolled_back = self._committed = False


def breach(state: ReadOnlyState, setting: bytes, value: bytes) -> str | None:
    """For a ParameterStatus (PostgreSQL reports default_transaction_read_only whenever it
    changes, PostgreSQL 14 and later): the message that ends the session when code the proxy
    could not see (a function calling set_config(), a statement a driver prepared before) turned
    it off while the session is locked; None when all is well. While the value is ``on``, which
    the session may turn off, it follows the server instead (a driver may run a prepared ``SET
    alloydb_session_read_only = off`` again without the proxy seeing its text)."""
    if setting != b"default_transaction_read_only" or value != b"off":
        return None
    current = state.settling()
    if current == ON:
        state.value, state.pending, state.local = OFF, None, None
    if current != LOCKED:
        return None
    return (f'terminating connection: default_transaction_read_only was turned off while '
            f'"{PARAMETER}" is "{current}"')


# -- statements -------------------------------------------------------------------------------

@dataclass(slots=True)
class Plan:
    sql: str | None = None  # the text to send instead, or None
    show: bool = False  # a SHOW answered with a SELECT: its tag is to be renamed
    # The highest $n of the statements replaced (a Parse's refusal keeps as many parameters,
    # so that the client's Bind still fits and the refusal's error is what it sees)
    parameters: int = 0


class _Parameters(Visitor):
    def __init__(self) -> None:
        self.highest = 0

    def visit_ParamRef(self, ancestors: Any, node: Any) -> None:
        self.highest = max(self.highest, int(node.number or 0))


def _raise(sqlstate: str, message: str, hint: str | None) -> str:
    fields = [f"ERRCODE = {sql_literal(sqlstate)}", f"MESSAGE = {sql_literal(message)}"]
    if hint:
        fields.append(f"HINT = {sql_literal(hint)}")
    return f"DO {_TAG} BEGIN RAISE EXCEPTION USING {', '.join(fields)}; END {_TAG}"


def _hint(current: str) -> str:
    if current == LOCKED:
        return (f"{PARAMETER} = 'locked' keeps the session read-only until it ends: "
                "connect again without it to write.")
    return f"Run SET {PARAMETER} = 'off' first."


def _refusal(what: str, current: str) -> str:
    return _raise("25006", f'cannot {what} while "{PARAMETER}" is "{current}"', _hint(current))


def _locked_refusal(what: str | None = None) -> str:
    message = f'parameter "{PARAMETER}" cannot be changed once it is "locked"'
    return _raise("55P02", f"{what}: {message}" if what else message, _hint(LOCKED))


def _const_bool(node: Any) -> bool | None:
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    val: Any = node.val
    if isinstance(val, ast.Boolean):
        return bool(val.boolval)
    if isinstance(val, ast.Integer):
        return {0: False, 1: True}.get(val.ival or 0)
    if isinstance(val, ast.String):
        return parse_bool(str(val.sval))
    return None


def _const_text(node: Any) -> str | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return None


def _makes_writable(options: Any) -> bool:
    """Whether transaction options (DefElem) hold READ WRITE."""
    return any(isinstance(opt, ast.DefElem) and opt.defname == "transaction_read_only"
               and _const_bool(opt.arg) is False for opt in options or ())


class _Calls(Visitor):
    """Calls a read-only session refuses: set_config() calls that may make transactions
    writable (a read-only setting's name, or a name that is not a literal, with a value that is
    not a literal true), and the functions with side effects of _REFUSED_FUNCTIONS."""

    def __init__(self) -> None:
        self.found: str | None = None

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        names = [str(n.sval) for n in node.funcname if isinstance(n, ast.String)]
        if names and _REFUSED_FUNCTION_WORD in names[-1].lower():
            self.found = f"execute {names[-1]}()"
            return
        if not names or names[:-1] not in ([], ["pg_catalog"]):
            return
        if names[-1] in _REFUSED_FUNCTIONS:
            self.found = f"execute {names[-1]}()"
            return
        if names[-1] != "set_config":
            return
        args: Any = node.args or ()
        if len(args) != 3:
            return
        name = _const_text(args[0])
        if name is None:
            self.found = "call set_config() for a setting named by an expression"
        elif name.lower() in _READ_ONLY_SETTINGS and _const_bool(args[1]) is not True:
            self.found = f"call set_config() for {name.lower()}"


def plan(sql: str, state: ReadOnlyState) -> Plan:
    """What to send for ``sql`` in a session with this state (updated as the statements set it)."""
    try:
        stmts: Any = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return Plan()
    result = Plan()
    splices: list[Splice] = []
    for raw in stmts:
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        replacement = _statement(raw.stmt, state, single=len(stmts) == 1)
        if replacement is None:
            reads = _CurrentSetting()
            reads(raw.stmt)
            splices.extend(
                Splice(*call_span(sql, location), _shown(state) + (
                    " AS current_setting" if location in reads.unnamed else ""))
                for location in reads.locations)
            continue
        if replacement.startswith("SELECT "):
            result.show = True
        parameters = _Parameters()
        parameters(raw.stmt)
        result.parameters = max(result.parameters, parameters.highest)
        splices.append(Splice(start, end, replacement))
    if splices:
        spliced = apply_splices(sql, splices)
        try:  # every rewrite is parsed again; one that does not parse is not sent
            pglast.parse_sql(spliced)
        except pglast.parser.ParseError:
            # the text as it came, unless that could write in a read-only session
            current = state.current
            return Plan() if current == OFF else Plan(_refusal("run this statement", current))
        result.sql = spliced
    return result


def _shown(state: ReadOnlyState) -> str:
    """The parameter's value as an expression. It reads the server's setting, not a constant:
    a driver may prepare the statement once and run it again later (psycopg does from the fifth
    time)."""
    shown = sql_literal(LOCKED if state.current == LOCKED else ON)
    return ("(CASE WHEN pg_catalog.current_setting('default_transaction_read_only')::boolean "
            f"THEN {shown} ELSE 'off' END)::text")


class _CurrentSetting(Visitor):
    """The locations of ``current_setting('alloydb_session_read_only'[, missing_ok])`` calls,
    and of those that are a whole output column without a name (which keeps its name,
    ``current_setting``, with an ``AS``)."""

    def __init__(self) -> None:
        self.locations: list[int] = []
        self.unnamed: set[int] = set()

    def visit_ResTarget(self, ancestors: Any, node: Any) -> None:
        if node.name is None and isinstance(node.val, ast.FuncCall):
            self.unnamed.add(int(node.val.location or 0))

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        names = [str(n.sval) for n in node.funcname if isinstance(n, ast.String)]
        args: Any = node.args or ()
        if (names in (["current_setting"], ["pg_catalog", "current_setting"])
                and 1 <= len(args) <= 2 and (_const_text(args[0]) or "").lower() == PARAMETER):
            self.locations.append(node.location)


def _statement(stmt: Any, state: ReadOnlyState, *, single: bool) -> str | None:
    """The text that replaces one statement, or None."""
    if isinstance(stmt, ast.VariableShowStmt) and str(stmt.name).lower() == PARAMETER:
        if not single:  # its tag could not be told from another SELECT's
            return None
        return f"SELECT {_shown(state)} AS {PARAMETER}"
    if isinstance(stmt, ast.VariableSetStmt) and (stmt.name or "").lower() == PARAMETER:
        return _set_parameter(stmt, state)
    current = state.current
    if current == OFF:
        return None
    if isinstance(stmt, ast.VariableSetStmt):
        return _set_other(stmt, state)
    if isinstance(stmt, ast.DiscardStmt) and stmt.target == DiscardMode.DISCARD_ALL:
        return _reset_all("DISCARD ALL", state)
    if isinstance(stmt, ast.TransactionStmt) and stmt.kind in (
            TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
        if _makes_writable(stmt.options):
            return _refusal("start a read-write transaction", current)
        return None
    if isinstance(stmt, ast.DoStmt):
        # The twin's page: read-only mode refuses code in a procedural language
        return _refusal("execute DO", current)
    if isinstance(stmt, ast.VacuumStmt):
        return _refusal(f"execute {'VACUUM' if stmt.is_vacuumcmd else 'ANALYZE'}", current)
    command = _REFUSED_STATEMENTS.get(type(stmt).__name__)
    if command is not None:
        return _refusal(f"execute {command}", current)
    finder = _Calls()
    finder(stmt)
    if finder.found is not None:
        return _refusal(finder.found, current)
    return None


def _set_parameter(stmt: Any, state: ReadOnlyState) -> str | None:
    local = bool(stmt.is_local)
    kind = stmt.kind
    if kind == VariableSetKind.VAR_SET_VALUE:
        args: Any = stmt.args or ()
        if len(args) != 1:
            return _raise("42601", f"SET {PARAMETER} takes only one argument", None)
        text = _const_text(args[0])
        if text is None:
            given = args[0].val
            shown = str(getattr(given, "ival", getattr(given, "fval", "")))
            return _raise("22023", str(InvalidValue(shown)), VALUES_HINT)
        try:
            value = _value(text)
        except InvalidValue as exc:
            return _raise("22023", str(exc), VALUES_HINT)
        mapped = f"= {'off' if value == OFF else 'on'}"
    elif kind in (VariableSetKind.VAR_SET_DEFAULT, VariableSetKind.VAR_RESET):
        value, mapped = state.reset, "TO DEFAULT"
    else:
        return None  # SET ... FROM CURRENT: only in a function's definition
    if state.current == LOCKED and value != LOCKED:
        return _locked_refusal()
    state.set(value, local=local)
    scope = "LOCAL " if local and value != LOCKED else ""
    if kind == VariableSetKind.VAR_RESET and not scope:
        return "RESET default_transaction_read_only"
    return f"SET {scope}default_transaction_read_only {mapped}"


def _set_other(stmt: Any, state: ReadOnlyState) -> str | None:
    current = state.current
    kind = stmt.kind
    if kind == VariableSetKind.VAR_RESET_ALL:
        return _reset_all("RESET ALL", state)
    if kind == VariableSetKind.VAR_SET_MULTI:  # SET [SESSION CHARACTERISTICS AS] TRANSACTION
        if _makes_writable(stmt.args):
            return _refusal("make transactions read-write", current)
        return None
    name = (stmt.name or "").lower()
    if name not in _READ_ONLY_SETTINGS:
        return None
    if kind == VariableSetKind.VAR_SET_VALUE:
        args: Any = stmt.args or ()
        if len(args) == 1 and _const_bool(args[0]) is False:
            return _refusal(f"set {name} to off", current)
        return None  # on, or a value PostgreSQL refuses itself
    if kind in (VariableSetKind.VAR_SET_DEFAULT, VariableSetKind.VAR_RESET) and state.reset == OFF:
        return _refusal(f"reset {name}", current)
    return None


def _reset_all(what: str, state: ReadOnlyState) -> str | None:
    if state.current == LOCKED and state.reset != LOCKED:
        return _locked_refusal(f"cannot execute {what}")
    state.set(state.reset, local=False)  # PostgreSQL resets default_transaction_read_only too
    return None
