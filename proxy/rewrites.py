"""The statements the proxy changes, and why.

Plan
----
``rewrite(sql)`` looks at one Query or Parse text that passed the byte prefilter and answers a
``Rewrite``: the new text (or ``None`` to forward the original) and what the session must do
around it. The rewrites are few and each exists for fidelity with AlloyDB:

* ``pg_settings`` in a database that has the extension: stock PostgreSQL hides placeholder
  settings from ``pg_settings``; the extension's view ``google_ml.pg_settings_with_flags`` shows
  them too, so the relation is swapped for it.
* ``SHOW google_ml_integration.<flag>``, alone in its message: PostgreSQL knows an unset
  placeholder only by name and would answer "unrecognized configuration parameter"; AlloyDB's
  instance flags always answer, in every database. It becomes a one-row ``SELECT`` (tag renamed
  back to ``SHOW``): of the view's setting in a database with the extension (a name the view
  lacks falls to ``current_setting``, which raises PostgreSQL's own error); elsewhere, of the
  flag's setting or its default (emulator/flags.py, through the proxy's config), a name that is
  no flag going as it is. The same for the instance flags of AlloyDB's other libraries that
  set-up scripts check with ``SHOW`` (``alloydb_ai_nl.enabled``, ``parameterized_views.enabled``,
  ``scann.enable_preview_features``
  and the few ScaNN settings whose defaults the pages state: ``_INSTANCE_FLAGS``), in every
  database.
* ``CREATE`` / ``ALTER EXTENSION google_ml_integration`` (also inside a ``DO`` block): the session
  must register the engine's callback endpoint in that database before the client's next
  statement runs (see docs/internals.md).
* ``CREATE INDEX ... USING scann ... WITH (...)`` and ``SET scann.*``: AlloyDB's ScaNN options
  and settings, checked and (for the index) taken out, since the emulated ``scann`` access method
  is pgvector's HNSW handler (``scann.py``). The only rewrite of statements that do not run at
  once: it changes no expression the index stores.
* ``CREATE INDEX CONCURRENTLY ... USING scann`` or ``USING ivf``, which cannot run in a ``DO``
  block: a *prelude* (``Rewrite.prelude``), a statement the session sends as a Query of its own
  just before, whose error stands for the statement's (proxy/session.py): ScaNN's row checks,
  or the ``ivf`` access method added.
* ``TRUNCATE``: in a ``DO`` block that lets alloydb_scann refuse it first when a truncated
  table has a ScaNN index, as AlloyDB does (``scann.py``).
* ``CREATE VIEW ... AS <query using $@name>``: AlloyDB's parameterized secure views, whose
  ``$@name`` PostgreSQL cannot parse; built from PostgreSQL's scanner and parser into a call
  of the ``parameterized_views`` extension (``pviews.py``), tag renamed back.
* ``CREATE INDEX ... USING ivf``, ``SET``/``SHOW ivf.probes``, ``set_config('ivf.probes', ...)``
  in a SELECT and ``CREATE EXTENSION vector``: AlloyDB's IVF index, which comes with its
  ``vector``, emulated on pgvector's ivfflat (``ivf.py``).

What the proxy never does (docs/differences.md): mend invalid SQL (a statement PostgreSQL cannot
parse goes as it is; for a missing comma between named arguments, as in one AlloyDB example, the
syntax error gains a HINT: ``missing_comma_hint``; so does the "does not exist" error of a
model procedure called with ``model_auth =>``, as some AlloyDB pages print it for
``model_auth_id``: ``misnamed_argument_hint``; the "operator does not exist" error of an
uncast embedding call beside a pgvector operator: ``uncast_embedding_hint``; and the "function
does not exist" error of an ``ai.if`` call that fits none of its forms, such as the optimized
form given a ``model_id``: ``ai_if_hint``), or rewrite a statement that stores SQL text
(views, materialized views, rules, functions, procedures, policies, triggers: ``_runs_now``) or
that writes to ``pg_settings`` (``UPDATE pg_settings`` is PostgreSQL's own ``SET``). One
exception to both, for syntax AlloyDB's grammar has and PostgreSQL's lacks: a ``CREATE VIEW``
with ``$@name`` view parameters (``pviews.py``), which no valid PostgreSQL statement can be.
Every splice is computed from the parse tree, and the result is parsed again; if it does not
parse, the original text goes through (logged at debug).

Warm-up splices for bulk model calls live in ``warmup.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.enums import ObjectType
from pglast.parser import scan
from pglast.visitors import Visitor

from proxy.ivf import plan_ivf, plan_set_config, show_probes
from proxy.pviews import TAG_RENAME as VIEW_TAG_RENAME
from proxy.pviews import views_rewrite, worth_trying
from proxy.scann import BOOL_FALSE, BOOL_TRUE, plan_scann
from proxy.statements import Splice, apply_splices, name_span
from proxy.warmup import plan_warmup

log = logging.getLogger("alloydb_ai_emulator.proxy")

EXTENSION_NAME = "google_ml_integration"
# CREATE EXTENSION alloydb_ai_nl CASCADE creates google_ml_integration too.
REQUIRING_EXTENSIONS = frozenset({EXTENSION_NAME, "alloydb_ai_nl"})
SETTINGS_VIEW = "google_ml.pg_settings_with_flags"


@dataclass(frozen=True, slots=True)
class ErrorHint:
    """A HINT for the ErrorResponse PostgreSQL will send for a statement: added when the error
    has this SQLSTATE and cursor position (1-based, in characters). ``replaces``: it stands in
    for PostgreSQL's own HINT, which would mislead; otherwise an error with a HINT keeps it."""

    sqlstate: str
    position: int
    hint: str
    replaces: bool = False
    # For an error without a position: recognised by this part of its message instead
    message_part: str | None = None


@dataclass(frozen=True, slots=True)
class ExtensionCommand:
    kind: str  # "create" | "update" | "drop"
    name: str
    if_not_exists_or_if_exists: bool
    version: str | None = None  # CREATE EXTENSION ... VERSION 'v', ALTER ... UPDATE TO 'v'


@dataclass(slots=True)
class Rewrite:
    sql: str | None = None  # new text, or None to forward the original
    touches_extension: bool = False  # CREATE/ALTER EXTENSION google_ml_integration
    # The whole text is one CREATE, ALTER ... UPDATE or DROP EXTENSION statement (of any
    # extension: the session knows which ones it stands in for)
    extension_command: ExtensionCommand | None = None
    error_hint: ErrorHint | None = None  # a HINT for the error PostgreSQL will answer
    notes: list[str] = field(default_factory=list)
    # Statements the server will answer with another command tag: (server's, client's), in order
    rename_tags: list[tuple[bytes, bytes]] = field(default_factory=list)
    # A statement the session runs first, as a Query of its own (proxy/session.py's Prelude):
    # only for a text that is one statement which cannot run in a DO block
    prelude: str | None = None


def rewrite(sql: str, *, warmup: bool = True, extension_installed: bool = True,
            flags: Mapping[str, tuple[str, bool]] | None = None) -> Rewrite:
    """What to send instead of ``sql``. ``warmup`` allows warm-up splices;
    ``extension_installed`` says whether the session's database has the extension (the
    pg_settings rewrite needs its view, and a warm-up its functions); ``flags`` are the
    google_ml_integration.* flags' defaults (full name -> default, is a bool: emulator/flags.py),
    for SHOW where the extension is not."""
    result = Rewrite()
    try:
        stmts: Any = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        # AlloyDB's view parameters ($@name), which PostgreSQL's grammar lacks (proxy/pviews.py)
        created = views_rewrite(sql) if worth_trying(sql) else None
        if created is not None and _parses(created.sql):
            result.sql = created.sql
            result.rename_tags.extend([VIEW_TAG_RENAME] * created.views)
            return result
        # Never mended: PostgreSQL reports the syntax error itself, as AlloyDB does.
        result.error_hint = missing_comma_hint(sql, exc)
        return result
    if len(stmts) == 1:
        result.extension_command = _extension_command(stmts[0].stmt)
        show = (_show_flag(stmts[0].stmt, extension_installed, flags or {})
                or _show_instance_flag(stmts[0].stmt) or show_probes(stmts[0].stmt))
        if show is not None and _parses(show):
            result.sql = show
            result.rename_tags.append((b"SELECT 1", b"SHOW"))
            return result
    finder = _Finder(sql, extension_installed)
    for raw in stmts:
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        before = len(finder.splices)
        finder(raw.stmt)  # also notices CREATE/ALTER EXTENSION, wherever it is
        if not _runs_now(raw.stmt) or _writes_pg_settings(raw.stmt):
            del finder.splices[before:]
            # ScaNN's CREATE/ALTER INDEX, SET scann.* and TRUNCATE: their own plan, which keeps
            # every stored expression as written (proxy/scann.py)
            renamable = not any(isinstance(other.stmt, ast.DoStmt) for other in stmts)
            scann = plan_scann(sql, raw.stmt, start, end, tags_renamable=renamable)
            if not scann.splices:  # AlloyDB's IVF index and ivf.probes (proxy/ivf.py)
                scann = plan_ivf(sql, raw.stmt, start, end, tags_renamable=renamable)
            finder.splices.extend(scann.splices)
            if scann.rename_tag:
                result.rename_tags.append(scann.rename_tag)
            # Parsed, as every text of the proxy's own that stands for the client's: one that
            # does not parse is not sent (the statement then goes unchecked, as by Parse).
            if scann.prelude is not None and len(stmts) == 1 and _parses(scann.prelude):
                result.prelude = scann.prelude
            if scann.hint is not None:
                result.error_hint = _hint(scann.hint, replaces=scann.hint_replaces)
            continue
        probes = plan_set_config(sql, raw.stmt)  # set_config('ivf.probes', ...) (proxy/ivf.py)
        if probes.splices:
            finder.splices.extend(probes.splices)
            result.error_hint = _hint(probes.hint)
        if warmup and extension_installed:
            finder.splices.extend(plan_warmup(sql, raw.stmt, start, end))
    result.touches_extension = finder.touches_extension
    if finder.splices:
        rewritten = apply_splices(sql, finder.splices)
        if _parses(rewritten):
            result.sql = rewritten
        else:
            result.rename_tags.clear()
            result.prelude = None  # it was for the rewritten statement
    # Positions are the text's own only when it goes unchanged; the substring test keeps the
    # tree walk off every other statement (warm-up statements come by here too).
    lowered = sql.lower()
    if result.sql is None and "model_auth" in lowered:
        result.error_hint = misnamed_argument_hint(stmts)
    if (result.sql is None and result.error_hint is None and "embedding" in lowered
            and any(op in sql for op in _DISTANCE_OPERATORS) and not _calls_all_cast(sql)):
        result.error_hint = uncast_embedding_hint(stmts)
    if (result.sql is None and result.error_hint is None and extension_installed
            and ".if" in lowered):
        result.error_hint = ai_if_hint(stmts)
    # Not beside a CREATE EXTENSION (it may create google_ml_integration, with CASCADE too): the
    # call would then succeed, and a HINT for an error that never comes would wait for the next
    if (result.error_hint is None and not extension_installed
            and not any(isinstance(raw.stmt, ast.CreateExtensionStmt) for raw in stmts)):
        result.error_hint = missing_extension_hint(stmts)
    return result


def _hint(hint: tuple[str, str, str] | None, *, replaces: bool = False) -> ErrorHint | None:
    """The ErrorHint of a plan's (SQLSTATE, part of the message, hint), for an error without a
    position."""
    if hint is None:
        return None
    sqlstate, message_part, text = hint
    return ErrorHint(sqlstate, 0, text, replaces=replaces, message_part=message_part)


def _parses(rewritten: str) -> bool:
    """Whether a rewrite parses again; one that does not is dropped (the statement goes as it
    came)."""
    try:
        pglast.parse_sql(rewritten)
    except pglast.parser.ParseError as exc:
        # Not the text itself: a statement may carry a key in a literal.
        log.debug("rewrite dropped: the rewritten statement does not parse (%s)", exc)
        return False
    return True


# Statements whose text runs now, once. Any other kind either stores SQL text (a view, rule,
# function, policy, trigger...: a rewrite would be stored with it, and tie the object to the
# extension) or has nothing the proxy rewrites.
_RUNS_NOW = (
    ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt,
    ast.CallStmt, ast.CopyStmt,
)


def _runs_now(stmt: Any) -> bool:
    if isinstance(stmt, _RUNS_NOW):
        return True
    if isinstance(stmt, (ast.ExplainStmt, ast.PrepareStmt, ast.DeclareCursorStmt)):
        return _runs_now(stmt.query)
    if isinstance(stmt, ast.CreateTableAsStmt):  # CREATE TABLE AS stores rows; a matview, SQL
        return stmt.objtype != ObjectType.OBJECT_MATVIEW and _runs_now(stmt.query)
    return False


class _PgSettingsWrite(Visitor):
    """Finds INSERT, UPDATE, DELETE or MERGE on pg_settings anywhere (CTEs included)."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def _check(self, relation: Any) -> None:
        if _is_pg_settings(relation):
            self.found = True

    def visit_InsertStmt(self, ancestors: Any, node: Any) -> None:
        self._check(node.relation)

    def visit_UpdateStmt(self, ancestors: Any, node: Any) -> None:
        self._check(node.relation)

    def visit_DeleteStmt(self, ancestors: Any, node: Any) -> None:
        self._check(node.relation)

    def visit_MergeStmt(self, ancestors: Any, node: Any) -> None:
        self._check(node.relation)


def _writes_pg_settings(stmt: Any) -> bool:
    """``UPDATE pg_settings SET setting = ...`` is PostgreSQL's way to SET a parameter: it
    must reach pg_settings itself, and so must every read in the same statement."""
    finder = _PgSettingsWrite()
    finder(stmt)
    return finder.found


def _is_pg_settings(relation: Any) -> bool:
    return (
        isinstance(relation, ast.RangeVar)
        and relation.relname == "pg_settings"
        and relation.schemaname in (None, "pg_catalog")
    )


_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})


def missing_comma_hint(sql: str, error: pglast.parser.ParseError) -> ErrorHint | None:
    """A HINT for a syntax error at a named argument (``name => value``) that directly
    follows another argument with no comma in between, as in
    ``model_auth_type => 'x'  model_in_transform_fn => 'f'``."""
    if len(error.args) < 2 or not str(error.args[0]).startswith("syntax error at or near"):
        return None
    offset = error.args[1]
    try:
        tokens = [t for t in scan(sql) if t.name not in _COMMENTS]
    except Exception:  # noqa: BLE001 - the scanner refuses the text: no hint
        return None
    for i, tok in enumerate(tokens):
        if tok.start != offset:
            continue
        if i == 0 or i + 1 >= len(tokens) or tokens[i + 1].name != "EQUALS_GREATER":
            return None
        if tokens[i - 1].name in ("ASCII_44", "ASCII_40", "EQUALS_GREATER"):
            return None  # a comma or an opening parenthesis is there: something else is wrong
        name = sql[tok.start : tok.end + 1]
        return ErrorHint(
            "42601",
            offset + 1,
            f'Is a comma missing before "{name}"? The arguments of a call are separated by '
            "commas.",
        )
    return None


# Model procedures, and named arguments that some AlloyDB pages print under another name: the
# model-endpoint-manage-model page and the older model endpoint reference write
# ``model_auth => 'AUTH_ID'`` where the current reference (and LangChain, LlamaIndex) pass
# ``model_auth_id``. No such parameter exists, so PostgreSQL answers 42883 "procedure ... does
# not exist" with a HINT about type casts; this HINT says what to write instead.
_MODEL_PROCEDURES = frozenset({"create_model", "alter_model"})
_MODEL_SCHEMAS = frozenset({"google_ml", "ai"})
_MISNAMED_ARGUMENTS = {"model_auth": "model_auth_id"}


class _MisnamedArguments(Visitor):
    """Finds the first call of a model procedure with a misnamed named argument."""

    def __init__(self) -> None:
        super().__init__()
        self.found: tuple[str, str, int] | None = None  # procedure, argument, call location

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        names = [getattr(n, "sval", None) for n in node.funcname or ()]
        if self.found is not None or not names or names[-1] not in _MODEL_PROCEDURES:
            return
        # Schema-qualified only: those calls always fail, so the queued HINT meets its own
        # error; an unqualified name may be the user's own function, which succeeds, and the
        # HINT would wait for the next error.
        if len(names) != 2 or names[0] not in _MODEL_SCHEMAS:
            return
        for arg in node.args or ():
            if isinstance(arg, ast.NamedArgExpr) and arg.name in _MISNAMED_ARGUMENTS:
                self.found = (".".join(str(n) for n in names), str(arg.name), node.location)
                return


def _first_found(finder: Any, stmts: Any) -> Any:
    """What ``finder`` (a Visitor keeping its first match in ``found``) finds in the first
    statement that has one, or None."""
    for raw in stmts:
        finder(raw.stmt)
        if finder.found is not None:
            return finder.found
    return None

def misnamed_argument_hint(stmts: Any) -> ErrorHint | None:
    """A HINT for the 42883 error of a call like ``google_ml.alter_model(..., model_auth =>
    'AUTH_ID')``: the parameter is ``model_auth_id``. It replaces PostgreSQL's HINT (explicit
    type casts would not help); SQLSTATE and message stay PostgreSQL's, as AlloyDB's."""
    found = _first_found(_MisnamedArguments(), stmts)
    if found is None:
        return None
    procedure, argument, location = found
    right = _MISNAMED_ARGUMENTS[argument]
    return ErrorHint(
        "42883",
        location + 1,
        f'{procedure} has no parameter "{argument}": the Secret Manager secret\'s id '
        f"goes in {right} ({right} => 'AUTH_ID').",
        replaces=True,
    )


# ai.if's forms (ai_functions.sql; google_ml.if alike). troubleshoot/troubleshoot-optimized-func
# prints what a call of the optimized form with a model fails with, as PostgreSQL fails any call
# that matches no form ("ERROR:  function ai.if(text, vector, unknown) does not exist", 42883,
# with PostgreSQL's HINT about explicit casts): "If you pass the model_id parameter together with
# the embedding column when calling ai.if(), AlloyDB doesn't use the trained proxy model". The
# HINT says which forms there are, and that that one takes no model_id.
_IF_SCHEMAS = frozenset({"ai", "google_ml"})


class _IfCall(Visitor):
    """Finds the first schema-qualified call of ai.if or google_ml.if."""

    def __init__(self) -> None:
        super().__init__()
        self.found: tuple[str, int] | None = None  # function, call location

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        names = [getattr(n, "sval", None) for n in node.funcname or ()]
        # Schema-qualified only, as for _MisnamedArguments: a call of the user's own if()
        # succeeds, and the HINT would wait for the next error.
        if self.found is None and len(names) == 2 and names[0] in _IF_SCHEMAS and names[1] == "if":
            self.found = (f"{names[0]}.if", node.location)


def ai_if_hint(stmts: Any) -> ErrorHint | None:
    """A HINT for the 42883 error of an ai.if (google_ml.if) call that matches none of its
    forms, such as the optimized form given a model_id: it lists the forms. It replaces
    PostgreSQL's generic HINT; SQLSTATE and message stay PostgreSQL's, as AlloyDB's."""
    found = _first_found(_IfCall(), stmts)
    if found is None:
        return None
    function, location = found
    return ErrorHint(
        "42883",
        location + 1,
        f"{function}() has four forms: {function}(prompt, model_id), {function}(prompts text[], "
        f"batch_size, model_id), {function}(prompt, input_cursor, batch_size, model_id), and the "
        f"optimized {function}(prompt, embedding real[]), which takes no model_id: leave the "
        "model_id out to use the trained proxy model (troubleshoot-optimized-func), or the "
        "embedding out to ask the model.",
        replaces=True,
    )


# pgvector's distance operators take vector (halfvec, sparsevec) on both sides, and the
# embedding functions return real[], whose cast to vector is an assignment cast only: ``col <=>
# embedding('m', 'text')`` fails with 42883 "operator does not exist: vector <=> real[]" and
# PostgreSQL's HINT about explicit casts. ai/run-vector-similarity-search prints its example so
# ("ORDER BY EMBEDDING_COLUMN::vector <=> google_ml.embedding('MODEL_IDVERSION_TAG', 'TEXT')"),
# right under "you must explicitly cast the embedding() call to vector".
_DISTANCE_OPERATORS = frozenset({"<->", "<#>", "<=>", "<+>", "<~>", "<%>"})
_EMBEDDING_FUNCTIONS = frozenset({"embedding", "text_embedding", "image_embedding"})
_EMBEDDING_SCHEMAS = frozenset({"public", "google_ml", "ai"})


class _UncastEmbedding(Visitor):
    """Finds the first distance operator with an embedding function's call as an operand."""

    def __init__(self) -> None:
        super().__init__()
        self.found: tuple[str, str, int] | None = None  # operator, function, operator location

    def visit_A_Expr(self, ancestors: Any, node: Any) -> None:
        if self.found is not None or node.kind != pglast.enums.A_Expr_Kind.AEXPR_OP:
            return
        names = [getattr(n, "sval", None) for n in node.name or ()]
        if len(names) != 1 or names[0] not in _DISTANCE_OPERATORS:
            return
        for operand in (node.lexpr, node.rexpr):
            if not isinstance(operand, ast.FuncCall):
                continue
            called = [getattr(n, "sval", None) for n in operand.funcname or ()]
            if called and called[-1] in _EMBEDDING_FUNCTIONS and (
                    len(called) == 1 or (len(called) == 2 and called[0] in _EMBEDDING_SCHEMAS)):
                self.found = (str(names[0]), ".".join(str(n) for n in called), node.location)
                return


# An embedding function's call, by its name and opening parenthesis (any schema, any case).
_EMBEDDING_CALL = re.compile(r"(?<![\w$])(?:text_|image_)?embedding\s*\(", re.IGNORECASE)
# What _calls_all_cast does not follow: a dollar quote ($ not before a parameter's digits), a
# comment, a quoted identifier, a backslash (of an E'' string)
_UNREAD_MARKS = re.compile(r"\$(?!\d)|--|/\*|\"|\\")


def _calls_all_cast(sql: str) -> bool:
    """Whether every embedding call in `sql` is followed by a cast (``...)::vector``), as
    vector searches written as the pages write them are: then no call can be the bare operand
    uncast_embedding_hint looks for, and its tree walk (a tenth of a millisecond, on every such
    search the proxy parses) is spared. Read from the text, with quoted strings skipped; a text
    with what this reading does not follow (_UNREAD_MARKS) is not judged: False, and the walk
    decides."""
    if _UNREAD_MARKS.search(sql) is not None:
        return False
    for call in _EMBEDDING_CALL.finditer(sql):
        depth, quoted, index = 0, False, call.end() - 1
        while index < len(sql):
            char = sql[index]
            if quoted:
                quoted = char != "'"  # a doubled quote closes and reopens
            elif char == "'":
                quoted = True
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            index += 1
        if not sql[index + 1:].lstrip().startswith("::"):
            return False
    return True


def uncast_embedding_hint(stmts: Any) -> ErrorHint | None:
    """A HINT for the 42883 error of ``vector_column <=> embedding(...)``: the call returns
    real[] and needs ``::vector``. It replaces PostgreSQL's generic HINT; SQLSTATE and message
    stay PostgreSQL's (and AlloyDB's: its page says the cast is required)."""
    found = _first_found(_UncastEmbedding(), stmts)
    if found is None:
        return None
    operator, function, location = found
    return ErrorHint(
        "42883",
        location + 1,
        f"{function}() returns real[], and pgvector's {operator} takes vector: cast the "
        f"call, as in {function}('MODEL_ID', 'TEXT')::vector.",
        replaces=True,
    )



# google_ml_integration's functions in public, and its schemas. Google's pages install it per
# database: "This extension is included with AlloyDB. You can install it on any database in your
# cluster" (work-with-embeddings, after a plain CREATE EXTENSION google_ml_integration, which
# would fail with 42710 where it came pre-installed); the register page's "Enable the extension"
# runs CREATE EXTENSION google_ml_integration VERSION '1.3'. So a new database has it only once
# created, and a call there fails as PostgreSQL fails it.
_PUBLIC_FUNCTIONS = frozenset({"embedding", "ml_predict_row"})
_EXTENSION_SCHEMAS = frozenset({"google_ml", "ai"})


class _ExtensionCall(Visitor):
    """Finds the first call of one of google_ml_integration's functions."""

    def __init__(self) -> None:
        super().__init__()
        self.found: tuple[str, str, str] | None = None  # SQLSTATE, message part, function

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        if self.found is not None:
            return
        names = [getattr(n, "sval", None) for n in node.funcname or ()]
        if len(names) == 1 or (len(names) == 2 and names[0] == "public"):
            if names[-1] in _PUBLIC_FUNCTIONS:
                called = ".".join(str(n) for n in names)
                self.found = ("42883", f"function {called}(", called)
        elif len(names) == 2 and names[0] in _EXTENSION_SCHEMAS:
            self.found = ("3F000", f'schema "{names[0]}" does not exist', f"{names[0]}.{names[1]}")


def missing_extension_hint(stmts: Any) -> ErrorHint | None:
    """A HINT for the error of a call of google_ml_integration's functions in a database without
    the extension (42883 "function embedding(unknown, unknown) does not exist", 3F000 "schema
    \"google_ml\" does not exist"): it says to create the extension. For 42883 it replaces
    PostgreSQL's HINT (explicit type casts would not help)."""
    found = _first_found(_ExtensionCall(), stmts)
    if found is None:
        return None
    sqlstate, message_part, function = found
    return ErrorHint(
        sqlstate, 0,
        f"{function}() comes with the google_ml_integration extension, which is created "
        f"in each database: CREATE EXTENSION IF NOT EXISTS google_ml_integration;",
        replaces=True, message_part=message_part)


_FLAG_PREFIX = EXTENSION_NAME + "."


# Instance flags of AlloyDB's other libraries (full name -> default, is a bool), which AlloyDB
# loads on every instance, so that ``SHOW`` answers them before any ``SET``; stock PostgreSQL knows
# an unset one only by name. Deployment checks run ``SHOW alloydb_ai_nl.enabled;`` and
# ``SHOW scann.enable_preview_features;``. Defaults from reference/alloydb-flags
# (enable_preview_features off, max_background_workers 1, maintenance_background_naptime_s 1),
# ai/maintain-vector-indexes (pct_leaves_to_search "The default value is 0") and
# reference/ai/scann-index-reference (num_search_threads 2, enable_pca "enabled by default",
# max_pct_leaves_to_search 15). The page states num_leaves_to_search ("1% of num_leaves") and
# pre_reordering_num_neighbors ("50 x K") only as rules; their values, 0 and -1, are what
# pg_settings shows on AlloyDB Omni (google/alloydbomni, 2026-08) once alloydb_scann is loaded,
# with num_search_threads 2 and pct_leaves_to_search 0 as above. Other ScaNN settings are left to
# PostgreSQL. alloydb_ai_nl.enabled is off on a new
# AlloyDB instance, but the emulator's alloydb_ai_nl treats an unset flag as on
# (g_check_alloydb_ai_nl_enabled), so SHOW says what the emulator does.
_INSTANCE_FLAGS: Mapping[str, tuple[str, bool]] = {
    "alloydb_ai_nl.enabled": ("on", True),
    "parameterized_views.enabled": ("on", True),  # emulator/sql/parameterized_views--1.0.sql
    # LangChain's live AlloyDB test matches "vector_assist.enabled" in AlloyDB's error text; unset
    # means on in emulator/sql/vector_assist--1.0.sql
    "vector_assist.enabled": ("on", True),
    "scann.enable_preview_features": ("off", True),
    "scann.max_background_workers": ("1", False),
    "scann.maintenance_background_naptime_s": ("1", False),
    "scann.pct_leaves_to_search": ("0", False),
    "scann.num_search_threads": ("2", False),
    "scann.enable_pca": ("on", True),
    "scann.max_pct_leaves_to_search": ("15", False),
    "scann.num_leaves_to_search": ("0", False),
    "scann.pre_reordering_num_neighbors": ("-1", False),
}


def _show_flag(stmt: Any, extension_installed: bool,
               flags: Mapping[str, tuple[str, bool]]) -> str | None:
    """The SELECT that answers ``SHOW google_ml_integration.<flag>`` (see the module plan), or
    None for any other statement: from the extension's view where it is installed, else from
    the flag's setting or its default (``flags``: full name -> default, is a bool), the flags
    being instance flags on AlloyDB, which every database answers."""
    if not isinstance(stmt, ast.VariableShowStmt):
        return None
    name = str(stmt.name or "")
    if not name.startswith(_FLAG_PREFIX) or not re.fullmatch(r"[a-z0-9_.]+", name):
        return None
    if extension_installed:
        return (f"SELECT COALESCE((SELECT s.setting FROM {SETTINGS_VIEW} AS s "
                f"WHERE s.name = '{name}'), pg_catalog.current_setting('{name}')) AS \"{name}\"")
    return _show_default(name, flags)


def _show_instance_flag(stmt: Any) -> str | None:
    """The SELECT that answers ``SHOW`` of one of ``_INSTANCE_FLAGS``, or None."""
    if not isinstance(stmt, ast.VariableShowStmt):
        return None
    return _show_default(str(stmt.name or ""), _INSTANCE_FLAGS)


def _show_default(name: str, flags: Mapping[str, tuple[str, bool]]) -> str | None:
    """The SELECT of the flag's setting, or its default where unset (None for a name that is no
    flag: PostgreSQL's own "unrecognized configuration parameter")."""
    if name not in flags:
        return None
    default, is_bool = flags[name]
    literal = "'" + default.replace("'", "''") + "'"
    setting = f"pg_catalog.current_setting('{name}', true)"
    if is_bool:  # unset or not a boolean: the default, as the extension's _flag() reads it
        value = f"pg_catalog.lower(pg_catalog.btrim({setting}))"
        shown = (f"CASE WHEN {value} IN ({_words(BOOL_TRUE)}) THEN 'on' "
                 f"WHEN {value} IN ({_words(BOOL_FALSE)}) THEN 'off' ELSE {literal} END")
    else:  # unset or empty: the default (the extension's _setting())
        shown = f"COALESCE(NULLIF({setting}, ''), {literal})"
    return f"SELECT {shown} AS \"{name}\""


def _words(words: frozenset[str]) -> str:
    return ", ".join(f"'{w}'" for w in sorted(words))


def _extension_command(stmt: Any) -> ExtensionCommand | None:
    if isinstance(stmt, ast.CreateExtensionStmt):
        return ExtensionCommand("create", str(stmt.extname), bool(stmt.if_not_exists),
                                _new_version(stmt))
    if isinstance(stmt, ast.AlterExtensionStmt):  # ALTER EXTENSION name UPDATE [TO 'v']
        return ExtensionCommand("update", str(stmt.extname), False, _new_version(stmt))
    if (
        isinstance(stmt, ast.DropStmt)
        and stmt.removeType == pglast.enums.ObjectType.OBJECT_EXTENSION
    ):
        names = [getattr(o, "sval", None) for o in stmt.objects or ()]
        if len(names) == 1 and isinstance(names[0], str):
            return ExtensionCommand("drop", names[0], bool(stmt.missing_ok))
    return None


def _new_version(stmt: Any) -> str | None:
    """The version of CREATE EXTENSION ... VERSION 'v' or ALTER EXTENSION ... UPDATE TO 'v'."""
    for option in stmt.options or ():
        if option.defname == "new_version":
            return getattr(option.arg, "sval", None)
    return None


_EXTENSION_DDL = re.compile(
    rf"\b(create|alter|drop)\s+extension\b[^;]*\b({'|'.join(sorted(REQUIRING_EXTENSIONS))})\b",
    re.IGNORECASE,
)


class _Finder(Visitor):
    """Walks one statement and collects the splices it needs."""

    def __init__(self, sql: str, extension_installed: bool) -> None:
        super().__init__()
        self.sql = sql
        self.splices: list[Splice] = []
        self.touches_extension = False
        self.extension_installed = extension_installed

    def visit_CreateExtensionStmt(self, ancestors: Any, node: Any) -> None:
        if node.extname in REQUIRING_EXTENSIONS:
            self.touches_extension = True

    def visit_AlterExtensionStmt(self, ancestors: Any, node: Any) -> None:
        if node.extname == EXTENSION_NAME:
            self.touches_extension = True

    def visit_DoStmt(self, ancestors: Any, node: Any) -> None:
        # LangChain creates the extension inside a DO block.
        for item in node.args or ():
            code = getattr(getattr(item, "arg", None), "sval", None)
            if isinstance(code, str) and _EXTENSION_DDL.search(code):
                self.touches_extension = True

    def visit_DropStmt(self, ancestors: Any, node: Any) -> None:
        if node.removeType == pglast.enums.ObjectType.OBJECT_EXTENSION and any(
            getattr(o, "sval", None) == EXTENSION_NAME for o in node.objects
        ):
            self.touches_extension = True

    def visit_RangeVar(self, ancestors: Any, node: Any) -> None:
        # Every read of pg_settings, not only those that name a flag: the name may come as a
        # parameter ($1), and AlloyDB lists its flags among all the others.
        if not self.extension_installed or not _is_pg_settings(node):
            return
        start, end = name_span(self.sql, node.location)
        alias = "" if node.alias is not None else " AS pg_settings"
        self.splices.append(Splice(start, end, SETTINGS_VIEW + alias))

