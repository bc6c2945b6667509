"""Warm-up splices: batch a statement's per-row model calls before its rows are processed.

Plan
----
AlloyDB evaluates ``embedding()`` once per row, one HTTP request at a time. For a statement that
calls a model per row, the proxy adds a *warm-up*: a scalar subquery, true by construction,
that hands the distinct arguments of the calls to ``google_ml._warm(kind, model, items)``:

    UPDATE docs SET emb = google_ml.embedding('m', content)::vector WHERE emb IS NULL
 -> UPDATE docs SET emb = google_ml.embedding('m', content)::vector
    WHERE (SELECT google_ml._warm('embedding', 'm', array_agg(DISTINCT (content)))
           FROM docs WHERE emb IS NULL) AND emb IS NULL

The planner runs an uncorrelated subquery once, before the first row (a One-Time Filter or an
InitPlan); ``_warm`` sends the items to the engine in provider-sized batches and fills a cache
that the per-row calls read. ``_warm`` always answers true and swallows its own errors, so the
statement's result is what it would be without it; a call the warm-up missed takes the per-row
path, only slower. ``true AND x`` is ``x`` whatever ``x`` is, which is why the splice may go right
after ``WHERE`` without parenthesising the original condition.

Conservative by design: only plain ``SELECT``, ``UPDATE``, ``DELETE`` and ``INSERT ... SELECT``
without LIMIT/OFFSET, set operations, CTEs or row locks; only arguments built from columns,
constants, parameters, casts, ``||`` and a few immutable functions; only calls outside
subqueries. Anything else is left to the per-row path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.parser import Token, scan

from proxy.statements import Splice

# name -> (kind, position of the model argument, of the item argument, their parameter names)
MODEL_CALLS: dict[tuple[str, ...], tuple[str, int, int, str, str]] = {
    ("embedding",): ("embedding", 0, 1, "model_id", "content"),
    ("google_ml", "embedding"): ("embedding", 0, 1, "model_id", "content"),
    ("ai", "embedding"): ("embedding", 0, 1, "model_id", "content"),
    ("ai", "if"): ("if", 1, 0, "model_id", "prompt"),
    ("google_ml", "if"): ("if", 1, 0, "model_id", "prompt"),
    ("ai", "generate"): ("generate", 1, 0, "model_id", "prompt"),
    ("google_ml", "generate"): ("generate", 1, 0, "model_id", "prompt"),
    ("ai", "rank"): ("rank", 1, 0, "model_id", "prompt"),
    ("google_ml", "rank"): ("rank", 1, 0, "model_id", "prompt"),
    ("ai", "summarize"): ("summarize", 1, 0, "model_id", "prompt"),
    ("google_ml", "summarize"): ("summarize", 1, 0, "model_id", "prompt"),
    ("ai", "analyze_sentiment"): ("sentiment", 1, 0, "model_id", "prompt"),
    ("google_ml", "analyze_sentiment"): ("sentiment", 1, 0, "model_id", "prompt"),
}
# Functions an item argument may use: immutable, no side effects, not aggregates.
SAFE_FUNCTIONS = frozenset(
    {"coalesce", "concat", "concat_ws", "lower", "upper", "trim", "btrim", "ltrim", "rtrim",
     "substr", "substring", "left", "right", "replace", "format", "nullif", "to_char"}
)
_CLAUSE_END = frozenset(
    {"FROM", "WHERE", "GROUP_P", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR",
     "UNION", "INTERSECT", "EXCEPT", "RETURNING", "ASCII_59"}
)
_CLAUSE_END_UPDATE = _CLAUSE_END | {"SET"}
_CLAUSE_END_DELETE = _CLAUSE_END | {"USING"}


@dataclass(slots=True)
class _Call:
    kind: str
    model_text: str
    item_text: str


def plan_warmup(sql: str, stmt: Any, start: int, end: int) -> list[Splice]:
    """Splices that add a warm-up to one statement (``sql[start:end]``), or none."""
    inner, relation = _target(stmt)
    if inner is None:
        return []
    tokens = [t for t in scan(sql[start:end])]
    shifted = [Token(t.start + start, t.end + start, t.name, t.kind) for t in tokens]
    calls = _calls(sql, inner, stmt)
    if not calls:
        return []
    keywords = (
        _CLAUSE_END_UPDATE if isinstance(stmt, ast.UpdateStmt)
        else _CLAUSE_END_DELETE if isinstance(stmt, ast.DeleteStmt) else _CLAUSE_END
    )
    clauses = _top_level_clauses(shifted, end, keywords)
    from_text = _from_text(sql, stmt, clauses, relation)
    if from_text is None:
        return []
    where = clauses.get("WHERE")
    conditions = _conditions_without_calls(sql, shifted, where) if where else []
    splices: list[Splice] = []
    warms = []
    seen: set[tuple[str, str, str]] = set()
    for call in calls:
        key = (call.kind, call.model_text, call.item_text)
        if key in seen:
            continue
        seen.add(key)
        filter_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        warms.append(
            f"(SELECT google_ml._warm('{call.kind}', {call.model_text}, "
            f"array_agg(DISTINCT ({call.item_text})::text)) FROM {from_text}{filter_sql})"
        )
    warm = " AND ".join(warms)
    if where is not None:
        where_kw_end = where[0]
        splices.append(Splice(where_kw_end, where_kw_end, f" {warm} AND"))
    else:
        insert_at = _where_insert_point(clauses, end)
        splices.append(Splice(insert_at, insert_at, f" WHERE {warm} "))
    return splices


# -- what the statement is --------------------------------------------------------------------


def _target(stmt: Any) -> tuple[Any, Any]:
    """The node whose rows call the model, and the UPDATE/DELETE target relation."""
    if isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        if stmt.withClause is not None:
            return None, None
        return stmt, stmt.relation
    if isinstance(stmt, ast.InsertStmt):
        if stmt.withClause is not None or stmt.onConflictClause is not None:
            return None, None
        select = stmt.selectStmt
        if isinstance(select, ast.SelectStmt) and _plain_select(select):
            return select, None
        return None, None
    if isinstance(stmt, ast.SelectStmt) and _plain_select(stmt):
        return stmt, None
    return None, None


def _plain_select(stmt: Any) -> bool:
    return (
        stmt.op == 0  # SETOP_NONE
        and not stmt.valuesLists
        and stmt.withClause is None
        and stmt.limitCount is None
        and stmt.limitOffset is None
        and not stmt.lockingClause
        and stmt.intoClause is None
        and bool(stmt.fromClause)
    )


def _calls(sql: str, node: Any, stmt: Any) -> list[_Call]:
    found: list[_Call] = []
    targets = list(getattr(node, "targetList", None) or ())
    roots: list[Any] = [t.val for t in targets if getattr(t, "val", None) is not None]
    if getattr(node, "whereClause", None) is not None:
        roots.append(node.whereClause)
    for root in roots:
        for call in _walk_calls(root):
            parsed = _model_call(sql, call)
            if parsed is None:
                return []  # a call we cannot batch safely: leave the statement alone
            found.append(parsed)
    return found


def _walk_calls(node: Any) -> list[Any]:
    """Model calls in an expression, not descending into subqueries."""
    out: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.SubLink):
            continue
        if isinstance(item, ast.FuncCall) and _call_name(item) in MODEL_CALLS:
            out.append(item)
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(_children(item))
    return out


def _children(node: ast.Node) -> list[Any]:
    values = []
    for name in node:
        value = getattr(node, name)
        if isinstance(value, (ast.Node, list, tuple)):
            values.append(value)
    return values


def _call_name(call: Any) -> tuple[str, ...]:
    return tuple(n.sval.lower() for n in call.funcname)


def _model_call(sql: str, call: Any) -> _Call | None:
    kind, model_pos, item_pos, model_name, item_name = MODEL_CALLS[_call_name(call)]
    if call.agg_filter is not None or call.over is not None or call.agg_star:
        return None
    nodes: dict[str, Any] = {}
    positional: list[Any] = []
    for arg in call.args or ():
        if isinstance(arg, ast.NamedArgExpr):
            nodes[str(arg.name)] = arg.arg
        else:
            positional.append(arg)
    if kind != "embedding" and len(positional) + len(nodes) > 2:
        return None  # array and cursor forms batch themselves
    texts = call_arguments(sql, call.location)
    if texts is None or len(texts) != len(call.args or ()):
        return None
    named_texts = {name: text for name, text in texts if name is not None}
    positional_texts = [text for name, text in texts if name is None]

    def pick(pos: int, name: str) -> tuple[Any, str | None]:
        if name in nodes:
            return nodes[name], named_texts.get(name)
        if len(positional) > pos:
            return positional[pos], positional_texts[pos]
        return None, None

    model, model_text = pick(model_pos, model_name)
    item, item_text = pick(item_pos, item_name)
    if item is None or item_text is None or not _safe_item(item):
        return None
    if model is not None and not _is_constant(model):
        if kind == "if" and model_name not in nodes:
            # ai.if(prompt, embedding), the 1.5.8 overload: a column in second place is an
            # embedding, and the call answers with the default model. (Were it a model_id
            # column, the warm-up would only miss: the per-row calls ask their own model.)
            model_text = None
        else:
            return None
    return _Call(kind, model_text or "NULL", item_text)


def call_arguments(sql: str, location: int) -> list[tuple[str | None, str]] | None:
    """The arguments of the call at ``location`` as (parameter name or None, source text)."""
    args: list[tuple[str | None, str]] = []
    depth = 0
    arg_start: int | None = None
    arg_tokens: list[Token] = []
    for tok in scan(sql[location:]):
        name = tok.name
        if name == "ASCII_40":
            depth += 1
            if depth == 1:
                arg_start = tok.end + 1
                continue
        elif name == "ASCII_41":
            depth -= 1
            if depth == 0:
                if arg_start is not None and arg_tokens:
                    args.append(_argument(sql, location, arg_start, tok.start, arg_tokens))
                return args
        elif name == "ASCII_44" and depth == 1:
            assert arg_start is not None
            args.append(_argument(sql, location, arg_start, tok.start, arg_tokens))
            arg_start = tok.end + 1
            arg_tokens = []
            continue
        if depth >= 1:
            arg_tokens.append(tok)
    return None


def _argument(
    sql: str, base: int, start: int, end: int, tokens: list[Token]
) -> tuple[str | None, str]:
    if len(tokens) >= 2 and tokens[1].name == "EQUALS_GREATER":
        name = sql[base + tokens[0].start : base + tokens[0].end + 1].strip('"').lower()
        return name, sql[base + tokens[1].end + 1 : base + end].strip()
    return None, sql[base + start : base + end].strip()


def _is_constant(node: Any) -> bool:
    if isinstance(node, ast.TypeCast):
        return _is_constant(node.arg)
    return isinstance(node, (ast.A_Const, ast.ParamRef))


def _safe_item(node: Any) -> bool:
    if isinstance(node, (ast.A_Const, ast.ParamRef, ast.ColumnRef)):
        return True
    if isinstance(node, ast.TypeCast):
        return _safe_item(node.arg)
    if isinstance(node, ast.A_Expr):
        ops = [n.sval for n in node.name or ()]
        return ops == ["||"] and _safe_item(node.lexpr) and _safe_item(node.rexpr)
    if isinstance(node, ast.CoalesceExpr):
        return all(_safe_item(a) for a in node.args or ())
    if isinstance(node, ast.FuncCall):
        name = _call_name(node)
        return (
            name[-1] in SAFE_FUNCTIONS
            and (len(name) == 1 or name[0] == "pg_catalog")
            and node.over is None
            and not node.agg_star
            and all(_safe_item(a) for a in (node.args or ()))
        )
    return False


# -- where the clauses are --------------------------------------------------------------------


def _top_level_clauses(
    tokens: list[Token], end: int, keywords: frozenset[str]
) -> dict[str, tuple[int, int]]:
    """Top-level clause keyword -> (end of the keyword, end of the clause) in ``sql``."""
    depth = 0
    marks: list[tuple[str, int, int]] = []  # (keyword, keyword start, keyword end)
    for tok in tokens:
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
        elif depth == 0 and tok.name in keywords:
            marks.append((tok.name, tok.start, tok.end + 1))
    clauses: dict[str, tuple[int, int]] = {}
    for i, (name, _kw_start, kw_end) in enumerate(marks):
        clause_end = marks[i + 1][1] if i + 1 < len(marks) else end
        clauses.setdefault(name, (kw_end, clause_end))
        clauses.setdefault(name + "@start", (_kw_start, kw_end))
    return clauses


def _from_text(
    sql: str, stmt: Any, clauses: dict[str, tuple[int, int]], relation: Any
) -> str | None:
    parts: list[str] = []
    if relation is not None:
        rel = _quote_ident_path(relation)
        alias = f" AS {relation.alias.aliasname}" if relation.alias is not None else ""
        if relation.alias is not None and not relation.alias.aliasname.isidentifier():
            return None
        parts.append(rel + alias)
        extra = clauses.get("FROM") if isinstance(stmt, ast.UpdateStmt) else clauses.get("USING")
        if extra is not None:
            parts.append(sql[extra[0] : extra[1]].strip())
        return ", ".join(parts)
    span = clauses.get("FROM")
    if span is None:
        return None
    return sql[span[0] : span[1]].strip() or None


def _quote_ident_path(relation: Any) -> str:
    def q(name: str) -> str:
        if name.isidentifier() and name == name.lower():
            return name
        return '"' + name.replace('"', '""') + '"'

    names = [relation.relname] if relation.schemaname is None else [
        relation.schemaname, relation.relname]
    if relation.catalogname:
        names.insert(0, relation.catalogname)
    return ".".join(q(n) for n in names)


def _conditions_without_calls(
    sql: str, tokens: list[Token], where: tuple[int, int]
) -> list[str]:
    """The top-level AND-ed conditions of a WHERE clause that call no model."""
    begin, finish = where
    pieces: list[tuple[int, int]] = []
    depth = 0
    piece_start = begin
    between = False
    for tok in tokens:
        if tok.start < begin or tok.start >= finish:
            continue
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
        elif depth == 0 and tok.name == "BETWEEN":
            between = True
        elif depth == 0 and tok.name == "AND":
            if between:
                between = False
                continue
            pieces.append((piece_start, tok.start))
            piece_start = tok.end + 1
        elif depth == 0 and tok.name == "OR":
            return []  # an OR at the top: keep it simple, warm all rows
    pieces.append((piece_start, finish))
    out = []
    from proxy.statements import PREFILTER

    for a, b in pieces:
        text = sql[a:b].strip()
        if not text:
            continue
        if PREFILTER.search(text.encode()):
            continue
        out.append(f"({text})")
    return out


def _where_insert_point(clauses: dict[str, tuple[int, int]], end: int) -> int:
    marks = [
        clauses[name + "@start"][0]
        for name in ("GROUP_P", "HAVING", "WINDOW", "ORDER", "RETURNING", "ASCII_59")
        if name + "@start" in clauses
    ]
    return min(marks, default=end)
