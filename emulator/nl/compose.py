"""Question to SQL without a model (fake mode): deterministic, from the configuration alone.

Plan for one question (``compose(context)``):

1. Facts of the question: the value-index values it names (longest phrase wins), its numbers,
   its quoted strings, and its meaningful words (content stems, without the values and without
   asking words such as "list" or "show").
2. Templates, closest first: a template is a candidate when its parameterized intent shares a
   meaningful word with the question; candidates are ranked by a text similarity of those words
   (``TextSimilarity``: the engine's builder plugs in the cosine of the fake embeddings, where
   shared words make texts close), then by weight.
3. Each candidate's parameters are filled: by matching the parameterized intent as a pattern,
   else numbers from the question's numbers and strings from the values it names - a value goes
   to the parameter compared with a column of the same value-index column. A template that
   cannot take a value the question names (nor a fragment can) does not fit.
4. Fragments whose intent the question contains (all its meaningful words; a parameterized
   intent as a pattern) add their condition, ANDed into the WHERE clause with the template's
   alias for the fragment's table (through pglast, so the result is re-printed SQL).
5. No template fits: a composer over the registered schema - the columns the question names,
   an aggregate its words ask for (maximum, average, how many...), the values it names as
   conditions, joined along foreign keys (shortest path).
6. A question that asks for n rows ("List 2 products ...", "top 5") limits a query that has no
   limit and is not a single aggregate row.
7. Attempts that EXPLAIN refused (sent back by the SQL) are skipped: the next candidate answers.

Nothing fits: ``Composed(sql="", error=...)``, which get_sql returns as AlloyDB's error shape.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.enums import BoolExprType
from pglast.stream import RawStream
from pglast.visitors import Visitor

from emulator.nl.params import (
    NUMBER,
    captured,
    fill,
    intent_pattern,
    parameter_kinds,
    parameters_of,
    sql_string,
    word_pattern,
)
from emulator.words import content_stems, stem, words

# Words that say how to answer, not what about: they never make a template fit.
ASKING_WORDS = frozenset(stem(w) for w in (
    "list", "show", "find", "give", "get", "display", "return", "tell", "what", "which", "who",
    "many", "much", "number", "all", "every", "each", "me", "please", "provide", "retrieve",
))
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?![\w])")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")
_AGGREGATES = (
    (re.compile(r"\b(how many|number of|count)\b", re.IGNORECASE), "count"),
    (re.compile(r"\b(maximum|max|highest|largest|most expensive|biggest)\b", re.IGNORECASE), "max"),
    (re.compile(r"\b(minimum|min|lowest|smallest|cheapest|least expensive)\b", re.IGNORECASE), "min"),
    (re.compile(r"\b(average|avg|mean)\b", re.IGNORECASE), "avg"),
    (re.compile(r"\b(total|sum)\b", re.IGNORECASE), "sum"),
)
_MAX_JOIN_HOPS = 4


# How close two texts are, 0..1 (emulator.fakes.embeddings.similarity, plugged in by the
# engine's builder: this package imports nothing of the fakes).
TextSimilarity = Callable[[str, str], float]


@dataclass(frozen=True, slots=True)
class ValueMatch:
    phrase: str
    value: str
    concept_type: str
    columns: tuple[str, ...]  # schema.table.column, lower case


@dataclass(slots=True)
class Facts:
    question: str
    values: list[ValueMatch]
    numbers: list[str]
    quoted: list[str]
    stems: list[str]  # meaningful words, values and numbers removed, in order


@dataclass(slots=True)
class Composed:
    sql: str
    error: str = ""
    template_id: int | None = None
    fragment_ids: list[int] = field(default_factory=list)


def _column_names(raw: Any) -> tuple[str, ...]:
    return tuple(c.strip().lower() for c in str(raw or "").split(",") if c.strip())


def facts_of(question: str, raw_values: list[dict[str, Any]]) -> Facts:
    matches = [ValueMatch(str(v["phrase"]), str(v["value"]), str(v.get("concept_type") or ""),
                          _column_names(v.get("columns"))) for v in raw_values if v.get("phrase")]
    matches.sort(key=lambda m: (-len(m.phrase), m.phrase.lower(), m.columns))
    kept: list[ValueMatch] = []
    for match in matches:  # "Tote" inside "Tote Bag" is not a value of its own
        if any(match.phrase.lower() != k.phrase.lower() and word_pattern(match.phrase).search(k.phrase)
               for k in kept):
            continue
        kept.append(match)
    kept.sort(key=lambda m: question.lower().find(m.phrase.lower()))
    rest = question
    for match in kept:
        rest = word_pattern(match.phrase).sub(" ", rest)
    numbers = _NUMBER_IN_TEXT.findall(rest)
    quoted = [a or b for a, b in _QUOTED.findall(question)]
    stems = [s for s in content_stems(_NUMBER_IN_TEXT.sub(" ", rest)) if s not in ASKING_WORDS]
    return Facts(question, kept, numbers, quoted, stems)


def _similarity(similarity: TextSimilarity, a: list[str], b: list[str]) -> float:
    return similarity(" ".join(sorted(set(a))), " ".join(sorted(set(b))))


def template_words(pintent: str) -> list[str]:
    text = _NUMBER_IN_TEXT.sub(" ", re.sub(r"\$\d+", " ", pintent))
    return [s for s in content_stems(text) if s not in ASKING_WORDS]


def ranked_templates(facts: Facts, templates: list[dict[str, Any]],
                     similarity: TextSimilarity) -> list[tuple[float, dict[str, Any]]]:
    ranked: list[tuple[float, dict[str, Any]]] = []
    for template in templates:
        words_t = template_words(str(template.get("pintent") or template.get("intent") or ""))
        if not set(words_t) & set(facts.stems):
            continue
        score = _similarity(similarity, facts.stems, words_t)
        ranked.append((score, template))
    ranked.sort(key=lambda item: (-item[0], -int(item[1].get("weight") or 1), int(item[1].get("id") or 0)))
    return ranked


# -- relations and aliases in a statement --------------------------------------------------------


class _Relations(Visitor):
    """Relations of a statement: alias (or name) -> schema.table, lower case."""

    def __init__(self) -> None:
        super().__init__()
        self.by_alias: dict[str, str] = {}

    def visit_RangeVar(self, ancestors: Any, node: Any) -> None:
        name = f"{node.schemaname}.{node.relname}" if node.schemaname else str(node.relname)
        alias = node.alias.aliasname if node.alias is not None else node.relname
        self.by_alias[str(alias).lower()] = name.lower()


class _Comparisons(Visitor):
    """``column <op> $k`` (either side): parameter number -> column reference fields."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: dict[int, tuple[str, ...]] = {}

    def visit_A_Expr(self, ancestors: Any, node: Any) -> None:
        pairs = ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr))
        for column, param in pairs:
            if isinstance(column, ast.ColumnRef) and isinstance(param, ast.ParamRef):
                fields = tuple(str(getattr(f, "sval", "")).lower() for f in column.fields or ())
                self.columns.setdefault(int(param.number or 0), fields)


def _parse_one(sql: str) -> Any | None:
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return None
    return statements[0].stmt if len(statements) == 1 else None


def _same_relation(a: str, b: str) -> bool:
    """``schema.table`` names, either possibly unqualified."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def compared_columns(psql: str) -> dict[int, str]:
    """Parameter number -> the column it is compared with (``schema.table.column`` where the
    statement says which relation, else ``table.column`` or just ``column``)."""
    stmt = _parse_one(psql)
    if stmt is None:
        return {}
    relations = _Relations()
    relations(stmt)
    comparisons = _Comparisons()
    comparisons(stmt)
    result: dict[int, str] = {}
    for number, fields in comparisons.columns.items():
        if len(fields) >= 2 and fields[-2] in relations.by_alias:
            result[number] = relations.by_alias[fields[-2]] + "." + fields[-1]
        elif len(fields) == 1 and len(set(relations.by_alias.values())) == 1:
            result[number] = next(iter(relations.by_alias.values())) + "." + fields[0]
        else:
            result[number] = ".".join(fields)
    return result


def _column_matches(column: str, candidates: tuple[str, ...]) -> bool:
    return any(c == column or c.endswith("." + column) for c in candidates)


# -- filling a template ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Filled:
    sql: str
    used: set[str]  # lower-case values taken from the question's value matches


def _fill_template(template: dict[str, Any], facts: Facts, indexed: set[str]) -> _Filled | None:
    psql = str(template.get("psql") or template.get("sql") or "")
    pintent = str(template.get("pintent") or "")
    kinds = parameter_kinds(str(template.get("sql") or ""), psql)
    numbers_in_sql = sorted(set(parameters_of(psql)))
    order = [n for n in parameters_of(pintent) if n in numbers_in_sql]
    order += [n for n in numbers_in_sql if n not in order]
    if not order:
        return _Filled(psql, set())
    values: dict[int, str] = {}
    pattern = intent_pattern(pintent)
    match = pattern.search(facts.question) if pattern else None
    if match:
        values.update({n: v for n, v in captured(match).items() if n in order})
    targets = compared_columns(psql)
    used: set[str] = {v.lower() for v in values.values()}
    numbers = [n for n in facts.numbers if n not in values.values()]
    quoted = [q for q in facts.quoted if q.lower() not in used]
    for number in order:
        if number in values:
            continue
        original = kinds.get(number)
        if original is not None and original.numeric:
            if not numbers:
                return None
            values[number] = numbers.pop(0)
            continue
        chosen = _choose_value(facts, used, targets.get(number), indexed)
        if chosen is None and quoted:
            chosen = quoted.pop(0)
        if chosen is None:
            return None
        values[number] = chosen
        used.add(chosen.lower())
    numeric = {n: bool(kinds[n].numeric) if n in kinds else bool(NUMBER.match(v)) for n, v in values.items()}
    return _Filled(fill(psql, values, numeric), used)


def _choose_value(facts: Facts, used: set[str], target: str | None, indexed: set[str]) -> str | None:
    free = [m for m in facts.values if m.value.lower() not in used]
    if target is not None:
        for match in free:
            if _column_matches(target, match.columns):
                return match.value
        if any(c == target or c.endswith("." + target) for c in indexed):
            return None  # the question names no value of the column the parameter is compared with
    return free[0].value if free else None


# -- fragments ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Condition:
    fragment_id: int
    relation: str
    alias: str
    condition: str
    used: set[str]


def matching_fragments(facts: Facts, fragments: list[dict[str, Any]]) -> list[_Condition]:
    question_stems = set(content_stems(facts.question))
    found: list[_Condition] = []
    for fragment in fragments:
        pintent = str(fragment.get("pintent") or fragment.get("intent") or "")
        pfragment = str(fragment.get("pfragment") or fragment.get("fragment") or "")
        pattern = intent_pattern(pintent)
        values: dict[int, str] = {}
        if pattern is not None:
            match = pattern.search(facts.question)
            if match is None:
                continue
            values = captured(match)
            condition = fill(pfragment, values, {n: bool(NUMBER.match(v)) for n, v in values.items()})
        else:
            wanted = set(content_stems(str(fragment.get("intent") or "")))
            if not wanted or not wanted <= question_stems:
                continue
            condition = str(fragment.get("fragment") or "")
        for scope in fragment.get("table_aliases") or []:
            parts = re.split(r"\s+(?:as\s+)?", str(scope).strip(), flags=re.IGNORECASE)
            relation = parts[0].lower().replace('"', "")
            alias = (parts[-1] if len(parts) > 1 else relation.rsplit(".", 1)[-1]).lower().replace('"', "")
            found.append(_Condition(int(fragment.get("id") or 0), relation, alias, condition,
                                    {v.lower() for v in values.values()}))
            break
    return found


class _Requalify(Visitor):
    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old = old
        self.new = new

    def visit_ColumnRef(self, ancestors: Any, node: Any) -> None:
        fields = list(node.fields)
        if len(fields) >= 2 and str(getattr(fields[-2], "sval", "")).lower() == self.old:
            fields[-2] = ast.String(sval=self.new)
            node.fields = tuple(fields)


def with_conditions(sql: str, conditions: list[_Condition]) -> tuple[str, list[_Condition]]:
    """``sql`` with the conditions whose relation it reads ANDed into its WHERE clause."""
    stmt = _parse_one(sql)
    if not isinstance(stmt, ast.SelectStmt) or stmt.op != pglast.enums.SetOperation.SETOP_NONE:
        return sql, []
    relations = _Relations()
    relations(stmt.fromClause or ())
    applied: list[_Condition] = []
    added: list[Any] = []
    for cond in conditions:
        alias = next((a for a, r in relations.by_alias.items() if _same_relation(r, cond.relation)), None)
        if alias is None:
            continue
        probe = _parse_one(f"SELECT 1 WHERE {cond.condition}")
        if not isinstance(probe, ast.SelectStmt) or probe.whereClause is None:
            continue
        expr = probe.whereClause
        _Requalify(cond.alias, alias)(expr)
        added.append(expr)
        applied.append(cond)
    if not added:
        return sql, []
    parts = [stmt.whereClause] if stmt.whereClause is not None else []
    stmt.whereClause = added[0] if not parts and len(added) == 1 else ast.BoolExpr(
        boolop=BoolExprType.AND_EXPR, args=tuple(parts + added))
    return RawStream()(stmt), applied


# -- composing from the schema --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    relation: str
    name: str
    type: str
    tokens: tuple[str, ...]


def _relations(schema: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["name"]).lower(): r for r in schema if r.get("name")}


def _edges(relations: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """relation -> [(neighbour, join condition template with {a} and {b} aliases)]."""
    edges: dict[str, list[tuple[str, str]]] = {name: [] for name in relations}
    for name, rel in relations.items():
        for fk in rel.get("foreign_keys") or []:
            target = str(fk.get("references") or "").lower()
            if target not in relations:
                continue
            pairs = list(zip(fk.get("columns") or [], fk.get("referenced_columns") or []))
            on_ab = " AND ".join(f'{{a}}."{c}" = {{b}}."{r}"' for c, r in pairs)
            on_ba = " AND ".join(f'{{b}}."{c}" = {{a}}."{r}"' for c, r in pairs)
            edges[name].append((target, on_ab))
            edges[target].append((name, on_ba))
    return edges


def _path(edges: dict[str, list[tuple[str, str]]], start: str, goal: str) -> list[tuple[str, str, str]] | None:
    """Shortest join path: [(from, to, condition)], or None past _MAX_JOIN_HOPS."""
    if start == goal:
        return []
    queue: deque[tuple[str, list[tuple[str, str, str]]]] = deque([(start, [])])
    seen = {start}
    while queue:
        node, path = queue.popleft()
        if len(path) >= _MAX_JOIN_HOPS:
            continue
        for neighbour, condition in edges.get(node, []):
            if neighbour in seen:
                continue
            step = [*path, (node, neighbour, condition)]
            if neighbour == goal:
                return step
            seen.add(neighbour)
            queue.append((neighbour, step))
    return None


def _quote_relation(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


def _named_columns(facts: Facts, relations: dict[str, dict[str, Any]]) -> list[list[_Column]]:
    """Groups of columns the question names (one group per phrase: a name shared by several
    relations makes a group of several), most specific first."""
    columns: list[_Column] = []
    for name, rel in relations.items():
        for col in rel.get("columns") or []:
            ctype = str(col.get("type") or "")
            if ctype.startswith(("vector", "bytea")):
                continue
            tokens = tuple(stem(w) for w in words(str(col["name"]).replace("_", " ")))
            if tokens and tokens != ("id",):
                columns.append(_Column(name, str(col["name"]), ctype, tokens))
    available = list(facts.stems)
    groups: list[list[_Column]] = []
    for tokens in sorted({c.tokens for c in columns}, key=lambda t: (-len(t), t)):
        if "id" in tokens or not all(t in available for t in tokens):
            continue
        for token in tokens:
            available.remove(token)
        groups.append([c for c in columns if c.tokens == tokens])
    groups.sort(key=lambda g: min(facts.stems.index(t) for t in g[0].tokens))
    return groups


def _mentioned_relations(facts: Facts, relations: dict[str, dict[str, Any]]) -> list[str]:
    """The relations the question names, in the order it names them."""
    mentioned: list[tuple[int, str]] = []
    for name in relations:
        stems = [stem(w) for w in words(name.rsplit(".", 1)[-1].replace("_", " "))]
        if stems and all(s in facts.stems for s in stems):
            mentioned.append((facts.stems.index(stems[0]), name))
    return [name for _, name in sorted(mentioned)]


_GROUPINGS = (  # (pattern, index of the grouping word, index of the counted word)
    (re.compile(r"\bwhich\s+(\w+)\s+(?:has|have)\s+the\s+(?:largest|most|highest|biggest|greatest)"
                r"\s+(?:number\s+of\s+)?(\w+)", re.IGNORECASE), 1, 2),
    (re.compile(r"\bnumber\s+of\s+(\w+)\s+(?:per|by|for\s+each|in\s+each)\s+(\w+)", re.IGNORECASE), 2, 1),
)


def _relation_named(word: str, relations: dict[str, dict[str, Any]]) -> str | None:
    wanted = stem(word.lower())
    return next((name for name in relations if stem(name.rsplit(".", 1)[-1]) == wanted), None)


def _value_filters(facts: Facts, relations: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(relation, condition with ``{alias}``) for each value the question names, and for each
    row it names by number ("client number 4", "order 12")."""
    filters: list[tuple[str, str]] = []
    for match in facts.values:
        relation = match.columns[0].rsplit(".", 1)[0] if match.columns else ""
        if relation not in relations:
            continue
        cols = [c.rsplit(".", 1)[1] for c in match.columns]
        expr = ('{alias}."' + cols[0] + '"' if len(cols) == 1 else
                "concat_ws(' ', " + ", ".join('{alias}."' + c + '"' for c in cols) + ")")
        filters.append((relation, f"{expr} = {sql_string(match.value)}"))
    for name, rel in relations.items():
        singular = re.sub(r"s$", "", name.rsplit(".", 1)[-1])
        columns = {str(c["name"]) for c in rel.get("columns") or []}
        key = next((k for k in (f"{singular}_id", "id") if k in columns), None)
        pattern = rf"\b{re.escape(singular)}s?\s+(?:number\s+|no\.?\s*|#\s*|id\s+)?(\d+)\b"
        for number in re.findall(pattern, facts.question, re.IGNORECASE):
            if key is not None:
                filters.append((name, f'{{alias}}."{key}" = {number}'))
    return filters


def _label_column(relation: dict[str, Any]) -> str:
    """The column that names a row: the first text column that is not a key."""
    columns = relation.get("columns") or []
    for col in columns:
        if str(col.get("type") or "").startswith(("text", "character")) and not str(col["name"]).endswith("_id"):
            return str(col["name"])
    return str(columns[0]["name"]) if columns else "*"


class _Joins:
    """FROM base, joined along the shortest foreign-key paths to the other relations."""

    def __init__(self, base: str, edges: dict[str, list[tuple[str, str]]]) -> None:
        self.edges = edges
        self.aliases = {base: "t1"}
        self.clauses = [f"FROM {_quote_relation(base)} AS t1"]

    def reach(self, relation: str) -> bool:
        if relation in self.aliases:
            return True
        path = _path(self.edges, next(iter(self.aliases)), relation)
        if path is None:
            return False
        for source, target, condition in path:
            if target not in self.aliases:
                self.aliases[target] = f"t{len(self.aliases) + 1}"
                self.clauses.append(f"JOIN {_quote_relation(target)} AS {self.aliases[target]} ON "
                                    + condition.format(a=self.aliases[source], b=self.aliases[target]))
        return True

    @property
    def joined(self) -> bool:
        return len(self.aliases) > 1


def compose_from_schema(facts: Facts, schema: list[dict[str, Any]]) -> str | None:
    relations = _relations(schema)
    if not relations:
        return None
    edges = _edges(relations)
    filters = _value_filters(facts, relations)
    mentioned = _mentioned_relations(facts, relations)
    grouping = next(((g, c) for pattern, gi, ci in _GROUPINGS if (m := pattern.search(facts.question))
                     and (g := _relation_named(m.group(gi), relations))
                     and (c := _relation_named(m.group(ci), relations)) and g != c), None)
    if grouping is not None:
        return _grouped(grouping, filters, relations, edges)
    anchors = [r for r, _ in filters] + mentioned

    def distance(relation: str) -> int:
        lengths = [len(p) for a in anchors if (p := _path(edges, relation, a)) is not None]
        return min(lengths) if lengths else 99

    targets = [min(group, key=lambda c: (c.relation not in mentioned, distance(c.relation),
                                         list(relations).index(c.relation)))
               for group in _named_columns(facts, relations)]
    aggregate = next((name for pattern, name in _AGGREGATES if pattern.search(facts.question)), None)
    candidates = [t.relation for t in targets] + mentioned + [r for r, _ in filters]
    if not candidates:
        return None
    base = candidates[0]
    joins = _Joins(base, edges)
    if not all(joins.reach(r) for r in [t.relation for t in targets] + [r for r, _ in filters]):
        return None
    selected = [f'{joins.aliases[t.relation]}."{t.name}"' for t in targets]
    if aggregate == "count":
        select = f"count(DISTINCT {selected[0]})" if selected else "count(*)"
    elif aggregate is not None and selected:
        select = f"{aggregate}({selected[0]})"
    elif selected:
        select = ("DISTINCT " if joins.joined else "") + ", ".join(selected)
    else:
        select = "t1.*"
    return f"SELECT {select} " + " ".join(joins.clauses) + _where(filters, joins)


# "List 2 products ...", "top 5", "first 10": how many rows the question wants.
_ROW_COUNT = re.compile(r"\b(?:list|show|give\s+me|find|return|top|first)\s+(?:the\s+)?(?:top\s+)?"
                        r"(\d{1,6})\s+(?!percent\b|%)[a-z]", re.IGNORECASE)


_AGGREGATE_NAMES = frozenset({"count", "max", "min", "avg", "sum"})


def _is_aggregate(target: Any) -> bool:
    value = getattr(target, "val", None)
    names = [getattr(n, "sval", "") for n in getattr(value, "funcname", None) or ()]
    return isinstance(value, ast.FuncCall) and bool(names) and names[-1].lower() in _AGGREGATE_NAMES


def with_row_limit(sql: str, question: str) -> str:
    """``sql`` with ``LIMIT n`` when the question asks for n rows and the query has no limit of
    its own (AlloyDB's page: *List 2 products similar to a Tote Bag* gets ``LIMIT 2``)."""
    match = _ROW_COUNT.search(question)
    stmt = _parse_one(sql)
    if match is None or not isinstance(stmt, ast.SelectStmt) or stmt.limitCount is not None:
        return sql
    if stmt.groupClause is None and all(_is_aggregate(t) for t in stmt.targetList or ()):
        return sql  # one row already
    # A new line: a trailing -- comment of the template cannot swallow the limit.
    return sql.rstrip().rstrip(";").rstrip() + f"\nLIMIT {int(match.group(1))}"


def _where(filters: list[tuple[str, str]], joins: _Joins) -> str:
    conditions = [c.format(alias=joins.aliases[r]) for r, c in filters]
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _grouped(grouping: tuple[str, str], filters: list[tuple[str, str]],
             relations: dict[str, dict[str, Any]], edges: dict[str, list[tuple[str, str]]]) -> str | None:
    """"Which brands have the largest number of products": one row per group, with its count."""
    group, counted = grouping
    joins = _Joins(group, edges)
    if not joins.reach(counted) or not all(joins.reach(r) for r, _ in filters):
        return None
    label = f't1."{_label_column(relations[group])}"'
    return (f"SELECT {label}, count({joins.aliases[counted]}.*) AS count " + " ".join(joins.clauses)
            + _where(filters, joins) + f" GROUP BY {label} ORDER BY count DESC, {label}")


# -- the whole answer -----------------------------------------------------------------------------


def compose(context: dict[str, Any], similarity: TextSimilarity) -> Composed:
    question = str(context.get("question") or "")
    facts = facts_of(question, list(context.get("values") or []))
    refused = {str(a.get("sql") or "").strip() for a in context.get("attempts") or []}
    indexed = {c for entry in context.get("value_columns") or [] for c in _column_names(entry.get("columns"))}
    fragments = matching_fragments(facts, list(context.get("fragments") or []))
    wanted = {m.value.lower() for m in facts.values}
    for _score, template in ranked_templates(facts, list(context.get("templates") or []),
                                                similarity):
        filled = _fill_template(template, facts, indexed)
        if filled is None:
            continue
        sql, applied = with_conditions(filled.sql, fragments)
        used = filled.used.union(*(c.used for c in applied)) if applied else filled.used
        named_in_template = {v for v in wanted if word_pattern(v).search(str(template.get("intent") or ""))}
        if wanted - used - named_in_template:
            continue  # the question names a value this template has no place for
        sql = with_row_limit(sql, question)
        if sql.strip() in refused:
            continue
        return Composed(sql, template_id=int(template.get("id") or 0),
                        fragment_ids=[c.fragment_id for c in applied])
    sql_or_none = compose_from_schema(facts, list(context.get("schema") or []))
    if sql_or_none is not None:
        sql, applied = with_conditions(sql_or_none, fragments)
        sql = with_row_limit(sql, question)
        if sql.strip() not in refused:
            return Composed(sql, fragment_ids=[c.fragment_id for c in applied])
    reason = ("no template, fragment or registered column matches the question"
              if not refused else "every candidate statement failed its EXPLAIN check")
    return Composed("", error=f"Unable to generate SQL for the question: {reason}.")

