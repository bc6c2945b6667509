"""The statements the proxy changes, and why.

Plan
----
``rewrite(sql)`` looks at one Query or Parse text that passed the byte prefilter and answers a
``Rewrite``: the new text (or ``None`` to forward the original) and what the session must do
around it. The rewrites are few and each exists for fidelity with AlloyDB:

* ``pg_settings`` in a database that has the extension: stock PostgreSQL hides placeholder
  settings from ``pg_settings``; the extension's view ``google_ml.pg_settings_with_flags`` shows
  them too, so the relation is swapped for it.
* ``CREATE`` / ``ALTER EXTENSION google_ml_integration`` (also inside a ``DO`` block): the session
  must register the engine's callback endpoint in that database before the client's next
  statement runs (see docs/internals.md).
* ``CALL google_ml.create_model(... 'x' model_in_transform_fn => ...)``: the AlloyDB
  documentation has one example with a missing comma between two named arguments; it is mended
  so the documented statement runs (only between a literal and a known parameter name, only
  when the statement does not parse otherwise).

Warm-up splices for bulk model calls live in ``warmup.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.visitors import Visitor

from proxy.statements import Splice, apply_splices, name_span
from proxy.warmup import plan_warmup

EXTENSION_NAME = "google_ml_integration"
SETTINGS_VIEW = "google_ml.pg_settings_with_flags"

_MODEL_PARAMS = (
    "model_id|model_request_url|model_provider|model_type|model_qualified_name|model_auth_type"
    "|model_auth_id|generate_headers_fn|model_in_transform_fn|model_out_transform_fn"
    "|model_batch_in_transform_fn|model_batch_out_transform_fn"
)
_MISSING_COMMA = re.compile(rf"('(?:[^']|'')*')(\s+)(?=(?:{_MODEL_PARAMS})\s*=>)")


@dataclass(frozen=True, slots=True)
class ExtensionCommand:
    kind: str  # "create" | "drop"
    name: str
    if_not_exists_or_if_exists: bool
    version: str | None = None  # CREATE EXTENSION ... VERSION 'v'


@dataclass(slots=True)
class Rewrite:
    sql: str | None = None  # new text, or None to forward the original
    touches_extension: bool = False  # CREATE/ALTER EXTENSION google_ml_integration
    # The whole text is one CREATE or DROP EXTENSION statement (of any extension: the session
    # knows which ones it stands in for)
    extension_command: ExtensionCommand | None = None
    notes: list[str] = field(default_factory=list)


def rewrite(sql: str, *, warmup: bool = True, extension_installed: bool = True) -> Rewrite:
    """What to send instead of ``sql``. ``warmup`` allows warm-up splices;
    ``extension_installed`` says whether the session's database has the extension (the
    pg_settings rewrite needs its view, and a warm-up its functions)."""
    result = Rewrite()
    try:
        stmts: Any = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        mended = _mend_missing_comma(sql)
        if mended is None:
            return result  # let PostgreSQL report the syntax error itself
        try:
            stmts = pglast.parse_sql(mended)
        except pglast.parser.ParseError:
            return result
        result.notes.append("inserted a missing comma between named arguments")
        sql = mended
        result.sql = mended
    if len(stmts) == 1:
        result.extension_command = _extension_command(stmts[0].stmt)
    finder = _Finder(sql, extension_installed)
    for raw in stmts:
        finder(raw.stmt)
        if warmup and extension_installed:
            start = raw.stmt_location
            end = start + raw.stmt_len if raw.stmt_len else len(sql)
            finder.splices.extend(plan_warmup(sql, raw.stmt, start, end))
    result.touches_extension = finder.touches_extension
    if finder.splices:
        result.sql = apply_splices(sql, finder.splices)
    return result


def _extension_command(stmt: Any) -> ExtensionCommand | None:
    if isinstance(stmt, ast.CreateExtensionStmt):
        version = None
        for option in stmt.options or ():
            if option.defname == "new_version":
                version = getattr(option.arg, "sval", None)
        return ExtensionCommand("create", str(stmt.extname), bool(stmt.if_not_exists), version)
    if (
        isinstance(stmt, ast.DropStmt)
        and stmt.removeType == pglast.enums.ObjectType.OBJECT_EXTENSION
    ):
        names = [getattr(o, "sval", None) for o in stmt.objects or ()]
        if len(names) == 1 and isinstance(names[0], str):
            return ExtensionCommand("drop", names[0], bool(stmt.missing_ok))
    return None


def _mend_missing_comma(sql: str) -> str | None:
    if "create_model" not in sql and "alter_model" not in sql:
        return None
    mended, count = _MISSING_COMMA.subn(r"\1,\2", sql)
    return mended if count else None


_EXTENSION_DDL = re.compile(
    rf"\b(create|alter|drop)\s+extension\b[^;]*\b{EXTENSION_NAME}\b", re.IGNORECASE
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
        if node.extname == EXTENSION_NAME:
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
        if not self.extension_installed or node.relname != "pg_settings":
            return
        if node.schemaname not in (None, "pg_catalog"):
            return
        start, end = name_span(self.sql, node.location)
        alias = "" if node.alias is not None else " AS pg_settings"
        self.splices.append(Splice(start, end, SETTINGS_VIEW + alias))

