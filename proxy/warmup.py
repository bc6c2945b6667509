"""Warm-up splices: batch a statement's per-row model calls before its rows are processed.

Plan
----
AlloyDB evaluates ``embedding()`` once per row, one HTTP request at a time. For a statement that
calls a model per row, the proxy adds a *warm-up*: a scalar subquery, true by construction,
that hands the arguments of the calls to ``google_ml._warm(kind, model, items)``:

    UPDATE docs SET emb = google_ml.embedding('m', content)::vector WHERE emb IS NULL
 -> UPDATE docs SET emb = google_ml.embedding('m', content)::vector
    WHERE (SELECT google_ml._warm('embedding', 'm', array_agg((content)::text))
           FROM docs WHERE (emb IS NULL)) AND (emb IS NULL)

The planner runs an uncorrelated subquery once, before the first row (a One-Time Filter or an
InitPlan); ``_warm`` sends the items to the engine in provider-sized batches and fills a cache
that the per-row calls read. ``_warm`` always answers true and swallows its own errors, so the
statement's result is what it would be without it; a call the warm-up missed takes the per-row
path, only slower.

Built from the parse tree, proved on it: what the warm-up copies (model, items, FROM list, the
conditions that call no model) is printed from the statement's tree, never cut out of its text;
the original condition is parenthesised whole. The spliced statement is parsed again and must
give the original tree with only ``WHERE <warm-ups> AND (<original>)`` changed; otherwise the
statement goes as it came (``keeps_the_statement``).

Conservative by design: only plain ``SELECT``, ``UPDATE``, ``DELETE`` and ``INSERT ... SELECT``
without LIMIT/OFFSET, set operations, CTEs or row locks; only arguments built from columns,
constants, parameters, casts, ``||`` and a few immutable functions; only calls outside
subqueries. Anything else is left to the per-row path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums import BoolExprType, SubLinkType
from pglast.parser import scan
from pglast.stream import RawStream

from proxy.statements import PREFILTER, Splice, apply_splices

log = logging.getLogger("alloydb_ai_emulator.proxy")

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
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name"})
# Top-level keywords that end a WHERE clause (or, without one, mark where it would go).
_AFTER_WHERE = frozenset(
    {"GROUP_P", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR", "UNION",
     "INTERSECT", "EXCEPT", "RETURNING", "ASCII_59"}
)
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})


@dataclass(frozen=True, slots=True)
class _Call:
    kind: str
    model_text: str
    item_text: str


def plan_warmup(sql: str, stmt: Any, start: int, end: int) -> list[Splice]:
    """Splices that add a warm-up to one statement (``sql[start:end]``), or none.

    Everything the warm-up copies (model, items, FROM list, conditions) is rendered from the
    parse tree. The splices are then checked: the statement with them applied must parse to
    the original tree with only its WHERE changed into ``warm-ups AND (original)``; when it
    does not, the statement goes unchanged (the per-row path gives the same answer)."""
    inner, relation = _target(stmt)
    if inner is None:
        return []
    calls = _calls(inner)
    if not calls:
        return []
    from_text = _from_text(stmt, inner, relation)
    conditions = _conditions_without_calls(inner.whereClause)
    if from_text is None or conditions is None:
        return []
    filter_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    warms: list[str] = []
    for call in dict.fromkeys(calls):  # distinct, in order
        warms.append(
            f"(SELECT google_ml._warm('{call.kind}', {call.model_text}, "
            f"array_agg(({call.item_text})::text)) FROM {from_text}{filter_sql})"
        )
    splices = _where_splices(sql, start, end, inner.whereClause is not None, warms)
    if splices is None or not keeps_the_statement(sql, start, end, splices, stmt, len(warms)):
        log.debug("warm-up not added: the spliced statement did not check out")
        return []
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


def _calls(node: Any) -> list[_Call]:
    found: list[_Call] = []
    targets = list(getattr(node, "targetList", None) or ())
    roots: list[Any] = [t.val for t in targets if getattr(t, "val", None) is not None]
    if getattr(node, "whereClause", None) is not None:
        roots.append(node.whereClause)
    for root in roots:
        for call in _walk_calls(root):
            parsed = _model_call(call)
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


def _model_call(call: Any) -> _Call | None:
    kind, model_pos, item_pos, model_name, item_name = MODEL_CALLS[_call_name(call)]
    if (
        call.agg_filter is not None or call.over is not None or call.agg_star
        or call.agg_distinct or call.agg_order or call.func_variadic
    ):
        return None
    named: dict[str, Any] = {}
    positional: list[Any] = []
    for arg in call.args or ():
        if isinstance(arg, ast.NamedArgExpr):
            named[str(arg.name).lower()] = arg.arg
        else:
            positional.append(arg)
    if kind != "embedding" and len(positional) + len(named) > 2:
        return None  # array and cursor forms batch themselves

    def pick(pos: int, name: str) -> Any:
        return named[name] if name in named else (
            positional[pos] if len(positional) > pos else None)

    model = pick(model_pos, model_name)
    item = pick(item_pos, item_name)
    if item is None or not _safe_item(item):
        return None
    if model is not None and not _is_constant(model):
        if kind == "if" and model_name not in named:
            # ai.if(prompt, embedding), the 1.5.8 overload: a column in second place is an
            # embedding, and the call answers with the default model. (Were it a model_id
            # column, the warm-up would only miss: the per-row calls ask their own model.)
            model = None
        else:
            return None
    model_text = "NULL" if model is None else render(model)
    item_text = render(item)
    if model_text is None or item_text is None:
        return None
    return _Call(kind, model_text, item_text)


def render(node: Any) -> str | None:
    """SQL text for an expression or FROM item, printed from its parse tree (pglast's
    printer), or None when the printer cannot."""
    try:
        return str(RawStream()(node))
    except Exception:  # noqa: BLE001 - any printer failure just means: no warm-up
        return None


def _is_constant(node: Any) -> bool:
    if isinstance(node, ast.TypeCast):
        return _is_constant(node.arg)
    return isinstance(node, (ast.A_Const, ast.ParamRef))


def _safe_item(node: Any) -> bool:
    if isinstance(node, (ast.A_Const, ast.ParamRef, ast.ColumnRef)):
        return True
    if isinstance(node, ast.TypeCast):
        # The warm-up reads rows the statement may never evaluate the item on (those a
        # condition with a model call drops): only casts to text, which cannot fail.
        type_name: Any = node.typeName
        names = [getattr(n, "sval", "") for n in (getattr(type_name, "names", None) or ())]
        return bool(names) and names[-1] in _TEXT_TYPES and _safe_item(node.arg)
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


# -- what the warm-up copies -------------------------------------------------------------


def _from_text(stmt: Any, inner: Any, relation: Any) -> str | None:
    """The FROM list of the warm-up: the statement's relations, printed from the tree."""
    items: list[Any] = []
    if relation is not None:  # UPDATE / DELETE: the target, then FROM / USING
        items.append(relation)
        extra = stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause
        items.extend(extra or ())
    else:
        items.extend(inner.fromClause or ())
    texts = [render(item) for item in items]
    if not texts or any(t is None for t in texts):
        return None
    return ", ".join(t for t in texts if t is not None)


def _conditions_without_calls(where: Any) -> list[str] | None:
    """The WHERE clause's top-level AND-ed conditions that call no model, each printed from
    the tree and parenthesised; None when one cannot be printed. Leaving out a condition
    that calls a model only warms more rows than the statement needs."""
    if where is None:
        return []
    conjuncts = (
        list(where.args or ())
        if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR
        else [where]
    )
    out: list[str] = []
    for conjunct in conjuncts:
        text = render(conjunct)
        if text is None:
            return None
        if PREFILTER.search(text.encode()):
            continue
        out.append(f"({text})")
    return out


# -- where the splices go, and the check ------------------------------------------------------


def _where_splices(
    sql: str, start: int, end: int, has_where: bool, warms: list[str]
) -> list[Splice] | None:
    """``WHERE <warms> AND (<original condition>)``, or ``WHERE <warms>`` added where a WHERE
    clause would go. The scanner only places the splices (paren depth, where the clause ends);
    keeps_the_statement then proves the result right."""
    depth = 0
    where_end: int | None = None  # end of the WHERE keyword
    last_end: int | None = None  # end of the last token of the WHERE clause (or before it)
    for tok in scan(sql[start:end]):
        if tok.name in _COMMENTS:
            continue
        if depth == 0 and tok.name == "WHERE" and has_where and where_end is None:
            where_end = start + tok.end + 1
            last_end = where_end
            continue
        if depth == 0 and tok.name in _AFTER_WHERE and (where_end is not None or not has_where):
            break
        if tok.name == "ASCII_40":
            depth += 1
        elif tok.name == "ASCII_41":
            depth -= 1
        last_end = start + tok.end + 1
    if last_end is None or (has_where and where_end is None):
        return None
    joined = " AND ".join(warms)
    if where_end is None:
        return [Splice(last_end, last_end, f" WHERE {joined}")]
    return [Splice(where_end, where_end, f" {joined} AND ("), Splice(last_end, last_end, ")")]


def keeps_the_statement(
    sql: str, start: int, end: int, splices: list[Splice], stmt: Any, count: int
) -> bool:
    """Whether the spliced statement parses to ``stmt`` with only its WHERE changed: ``count``
    warm-up subqueries AND-ed in front of the original condition (locations aside)."""
    local = [Splice(s.start - start, s.end - start, s.replacement) for s in splices]
    try:
        parsed = pglast.parse_sql(apply_splices(sql[start:end], local))
    except (pglast.parser.ParseError, ValueError):
        return False
    if len(parsed) != 1 or type(parsed[0].stmt) is not type(stmt):
        return False
    new: Any = parsed[0].stmt
    new_holder: Any = new.selectStmt if isinstance(new, ast.InsertStmt) else new
    old_holder: Any = stmt.selectStmt if isinstance(stmt, ast.InsertStmt) else stmt
    if new_holder is None or old_holder is None:
        return False
    added = new_holder.whereClause
    original = old_holder.whereClause
    if original is None and count == 1:
        warm_nodes: list[Any] = [added]
    elif isinstance(added, ast.BoolExpr) and added.boolop == BoolExprType.AND_EXPR:
        args = list(added.args or ())
        if original is not None:
            if len(args) != count + 1 or args[-1] != original:
                return False
            args = args[:-1]
        warm_nodes = args
    else:
        return False
    if len(warm_nodes) != count or not all(_is_warm(node) for node in warm_nodes):
        return False
    new_holder.whereClause = original
    return bool(new == stmt)


def _is_warm(node: Any) -> bool:
    if not isinstance(node, ast.SubLink) or node.subLinkType != SubLinkType.EXPR_SUBLINK:
        return False
    select: Any = node.subselect
    targets: Any = getattr(select, "targetList", None) or ()
    if not isinstance(select, ast.SelectStmt) or len(targets) != 1:
        return False
    call = targets[0].val
    return isinstance(call, ast.FuncCall) and _call_name(call) == ("google_ml", "_warm")
