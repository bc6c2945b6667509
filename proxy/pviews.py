"""AlloyDB's parameterized secure views: ``CREATE VIEW`` with ``$@name`` parameters.

Plan
----
AlloyDB's ``parameterized_views`` extension lets a view name parameters as ``$@name``
(``CREATE VIEW secure_checked_items WITH (security_barrier) AS SELECT ... WHERE customer_id =
$@app_end_userid``); ``parameterized_views.execute_parameterized_query`` supplies their values.
PostgreSQL's grammar has no ``$@``: such a statement is a syntax error, so this is the one
rewrite of a statement PostgreSQL cannot parse, and it is built from PostgreSQL's own scanner
(pglast's ``scan``) and parser:

1. the tokens ``$`` ``@`` ``name``, written together, are the parameters (a name as AlloyDB
   allows it: a letter or underscore, then letters, digits, underscores; no ``$``); the text
   must be exactly one ``CREATE [OR REPLACE] [TEMP] VIEW ... AS <query>`` once each parameter is
   ``$1``, ``$2``, ... (numbered by name, case-sensitive), with no ``$n`` of its own and no
   ``WITH CHECK OPTION``;
2. the statement is split at its top-level ``AS`` into the head (kept byte for byte) and the
   query; the query with ``$n`` in the parameters' places must parse as a ``PREPARE``, and head
   plus that query must give the same statement as step 1's;
3. the text sent is a ``DO`` block calling ``parameterized_views._create_view(head, probe,
   template, names)`` (the extension's SQL): PostgreSQL infers each parameter's type where it
   stands (a PREPARE of the probe) and the view is created with the parameter read from the
   call's values in each place. The server's ``DO`` tag is renamed ``CREATE VIEW``.

A Query of several statements (a script sent whole: ``psql -c``, a notebook's
``conn.execute(script)``) is cut at its top-level semicolons (the scanner's, so none inside a
literal, a quoted name or a comment): each statement with ``$@`` must be such a view and becomes
its DO block, every other one must parse and is kept byte for byte. Each view's ``DO`` is
renamed in order (a rename waits for the next ``DO`` tag), so a script with a ``DO`` block of
its own before a view is left as it came.

Anything else with ``$@`` goes as it came, and PostgreSQL answers its syntax error (AlloyDB
accepts ``$@name`` in views only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums import ViewCheckOption
from pglast.parser import scan

from proxy.scann import sql_literal, without_locations

# A view parameter's name as AlloyDB's page states it: it starts with a letter (accented and
# non-Latin letters too) or an underscore; then letters, underscores, digits; never a $.
_NAME = re.compile(r"[^\W\d]\w*")
_TAG = "$parameterized_views$"
TAG_RENAME = (b"DO", b"CREATE VIEW")


@dataclass(frozen=True, slots=True)
class _Parameter:
    start: int  # of the $
    end: int  # after the name
    name: str


def worth_trying(sql: str) -> bool:
    """Whether ``sql`` may be a CREATE VIEW with view parameters (cheap)."""
    return "$@" in sql


@dataclass(frozen=True, slots=True)
class ViewsRewrite:
    sql: str  # the text to send
    views: int  # how many view statements became DO blocks (each one's tag is renamed)


def views_rewrite(sql: str) -> ViewsRewrite | None:
    """The text to send for ``sql``, one or more statements of which are CREATE VIEWs with
    ``$@name`` parameters, or None (see the module's plan)."""
    try:  # the scanner's statements: no semicolon inside a literal, a name or a comment counts
        slices = pglast.split(sql, with_parser=False, only_slices=True)
    except pglast.parser.ParseError:
        return None
    pieces = [sql[piece] for piece in slices]
    views = sum("$@" in piece for piece in pieces)
    out: list[str] = []
    done = 0  # the text up to here is in out, as it came or rewritten
    made = 0
    for piece, where in zip(pieces, slices, strict=True):
        if "$@" in piece:
            block = view_parameters_rewrite(piece)
            if block is None:
                return None
            made += 1
        else:
            kind = _plain_statement(piece)
            # a DO of the client's before a view would take that view's tag rename
            if kind is None or (kind is ast.DoStmt and made < views):
                return None
            block = piece
        out += (sql[done:where.start], block)
        done = where.stop
    out.append(sql[done:])  # the blanks and semicolons between statements stay where they are
    return ViewsRewrite("".join(out), views) if views else None


def _plain_statement(piece: str) -> type | None:
    """The statement type of ``piece`` when PostgreSQL parses it as at most one statement
    (``type(None)`` for comments only), else None."""
    try:
        stmts: Any = pglast.parse_sql(piece)
    except pglast.parser.ParseError:
        return None
    if len(stmts) > 1:
        return None
    return type(stmts[0].stmt) if stmts else type(None)


def view_parameters_rewrite(sql: str) -> str | None:
    """The DO block that creates the view ``sql`` with its ``$@name`` parameters, or None when
    ``sql`` is not exactly one such CREATE VIEW (see the module's plan)."""
    try:
        tokens = list(scan(sql))
    except pglast.parser.ParseError:
        return None
    params = _parameters(sql, tokens)
    if not params or any(t.name == "PARAM" for t in tokens):
        return None
    numbers: dict[str, int] = {}
    for p in params:
        numbers.setdefault(p.name, len(numbers) + 1)
    view = _one_view(_spliced(sql, params, numbers, 0, len(sql)))
    if view is None:
        return None
    query_start = _query_start(tokens)
    if query_start is None or query_start > params[0].start:
        return None
    end = tokens[-1].start if tokens[-1].name == "ASCII_59" else len(sql)
    head = sql[:query_start]
    probe = _spliced(sql, params, numbers, query_start, end)
    template = _template(sql, params, numbers, query_start, end)
    if not _same_view(head + probe, view) or not _prepares(probe):
        return None
    if _TAG in sql:
        return None
    names = "ARRAY[" + ", ".join(sql_literal(n) for n in numbers) + "]::text[]"
    return (
        f"DO {_TAG} BEGIN "
        "IF pg_catalog.to_regnamespace('parameterized_views') IS NULL THEN "
        "RAISE EXCEPTION 'view parameters ($@name) need the parameterized_views extension' "
        "USING ERRCODE = 'syntax_error', "
        "HINT = 'CREATE EXTENSION parameterized_views; then create the view again.'; END IF; "
        f"PERFORM parameterized_views._create_view({sql_literal(head)}, {sql_literal(probe)}, "
        f"{sql_literal(template)}, {names}); END {_TAG}"
    )


def _parameters(sql: str, tokens: list[Any]) -> list[_Parameter]:
    """Every ``$@name`` in ``sql``; empty when a ``$`` outside literals is anything else."""
    found: list[_Parameter] = []
    for i, token in enumerate(tokens):
        if token.name != "ASCII_36":
            continue
        if i + 2 >= len(tokens):
            return []
        at, name = tokens[i + 1], tokens[i + 2]
        text = sql[name.start:name.end + 1]
        if (sql[at.start:at.end + 1] != "@" or at.start != token.end + 1
                or name.start != at.end + 1 or not _NAME.fullmatch(text)):
            return []
        found.append(_Parameter(token.start, name.end + 1, text))
    return found


def _spliced(sql: str, params: list[_Parameter], numbers: dict[str, int],
             start: int, end: int) -> str:
    """``sql[start:end]`` with ``$n`` for each parameter."""
    out, cursor = [], start
    for p in params:
        if start <= p.start < end:
            out.append(sql[cursor:p.start])
            out.append(f"${numbers[p.name]}")
            cursor = p.end
    out.append(sql[cursor:end])
    return "".join(out)


def _template(sql: str, params: list[_Parameter], numbers: dict[str, int],
              start: int, end: int) -> str:
    """``sql[start:end]`` as a format() string: % doubled, ``%n$s`` for each parameter."""
    out, cursor = [], start
    for p in params:
        if start <= p.start < end:
            out.append(sql[cursor:p.start].replace("%", "%%"))
            out.append(f"%{numbers[p.name]}$s")
            cursor = p.end
    out.append(sql[cursor:end].replace("%", "%%"))
    return "".join(out)


def _one_view(text: str) -> Any:
    """The ViewStmt when ``text`` is exactly one plain CREATE VIEW, else None."""
    try:
        stmts: Any = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return None
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.ViewStmt):
        return None
    view = stmts[0].stmt
    if view.withCheckOption not in (None, ViewCheckOption.NO_CHECK_OPTION):
        return None
    return view


def _query_start(tokens: list[Any]) -> int | None:
    """Where the view's query starts: after the first ``AS`` outside parentheses that follows
    ``VIEW``."""
    depth = 0
    seen_view = False
    for i, token in enumerate(tokens):
        if token.name == "ASCII_40":
            depth += 1
        elif token.name == "ASCII_41":
            depth -= 1
        elif token.name == "VIEW":
            seen_view = True
        elif token.name == "AS" and depth == 0 and seen_view and i + 1 < len(tokens):
            return int(tokens[i + 1].start)
    return None


def _same_view(text: str, view: Any) -> bool:
    other = _one_view(text)
    return other is not None and without_locations(other(depth=None, skip_none=True)) == \
        without_locations(view(depth=None, skip_none=True))


def _prepares(query: str) -> bool:
    try:
        stmts: Any = pglast.parse_sql(f"PREPARE p AS {query}")
    except pglast.parser.ParseError:
        return False
    return len(stmts) == 1 and isinstance(stmts[0].stmt, ast.PrepareStmt)
