"""Deterministic texts of fake mode: schema descriptions, intent checks, summaries, intents of
generated templates. Each is built from what the SQL sent, so the same input gives the same
text in every run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pglast
from pglast import ast
from pglast.visitors import Visitor

_ASKS_COUNT = re.compile(r"^\s*(how many|count|number of|what is the number)\b", re.IGNORECASE)
_ASKS_LIST = re.compile(r"^\s*(list|show|find|give|display|return|which|what are|get)\b", re.IGNORECASE)


def _plural(words_: str) -> str:
    return words_ if words_.endswith("s") else words_ + "s"


def describe(relations: list[dict[str, Any]]) -> list[dict[str, str]]:
    contexts: list[dict[str, str]] = []
    for rel in relations:
        name = str(rel["name"])
        schema, _, table = name.rpartition(".")
        kind = str(rel.get("kind") or "table")
        columns = rel.get("columns") or []
        text = (f"The {table} {kind} in schema {schema} stores {table.replace('_', ' ')} records, "
                f"with the columns {', '.join(str(c['name']) for c in columns)}.")
        for fk in rel.get("foreign_keys") or []:
            text += (f" Each row refers to {fk['references']} through "
                     f"{', '.join(fk.get('columns') or [])}.")
        contexts.append({"schema_object": name, "object_type": kind, "object_context": text})
        for col in columns:
            samples = [str(s) for s in col.get("samples") or []]
            ctext = f"The {col['name']} column of the {name} {kind} holds {col['type']} values"
            ctext += (", for example " + ", ".join(json.dumps(s) for s in samples) + ".") if samples else "."
            contexts.append({"schema_object": f"{name}.{col['name']}", "object_type": "column",
                             "object_context": ctext})
    return contexts


class _Counts(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.count_args: list[str] = []

    def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
        if [getattr(n, "sval", "") for n in node.funcname or ()][-1:] == ["count"]:
            arg = (node.args or [None])[0]
            if isinstance(arg, ast.ColumnRef):
                self.count_args.append(str(getattr((arg.fields or (None,))[-1], "sval", "rows")))
            else:
                self.count_args.append("rows")


def _top_level_counts(sql: str) -> tuple[list[str], bool]:
    """The count() arguments of the outer select list, and whether that list is only counts."""
    try:
        stmt = pglast.parse_sql(sql)[0].stmt
    except (pglast.parser.ParseError, IndexError):
        return [], False
    targets = getattr(stmt, "targetList", None) or ()
    counts = _Counts()
    only_counts = bool(targets)
    for target in targets:
        before = len(counts.count_args)
        counts(target)
        if len(counts.count_args) == before:
            only_counts = False
    return counts.count_args, only_counts


def check_intent(intent: str, sql: str) -> str:
    """Empty when the intent and the SQL agree as far as a rule can tell; else the reason."""
    counted, only_counts = _top_level_counts(sql)
    if _ASKS_COUNT.search(intent) and not counted:
        return "The question asks for a number of items, but the SQL query does not count anything."
    if _ASKS_LIST.search(intent) and only_counts:
        thing = counted[0].lower()
        thing = re.sub(r"_id$", " IDs", thing) if thing.endswith("_id") else _plural(thing.replace("_", " "))
        return (f"The SQL query only counts the number of {thing}, but the question asks for a "
                f"list of the {thing}.")
    return ""


def summary(question: str, rows: list[dict[str, Any]], row_count: int) -> str:
    if row_count == 0:
        return f"The result set for the question \"{question}\" is empty: no rows match."
    shown = "; ".join(", ".join(f"{k}: {v}" for k, v in row.items()) for row in rows[:3])
    more = f" (the first 3 of {row_count} rows)" if row_count > 3 else ""
    noun = "row" if row_count == 1 else "rows"
    return f"The result set has {row_count} {noun}{more}: {shown}."


def template_intent(sql: str) -> str:
    """An intent for a statement of the query log: what it selects from where."""
    try:
        stmt = pglast.parse_sql(sql)[0].stmt
    except (pglast.parser.ParseError, IndexError):
        return ""
    relations: list[str] = []

    class _Names(Visitor):
        def visit_RangeVar(self, ancestors: Any, node: Any) -> None:
            relations.append(str(node.relname).replace("_", " "))

    if stmt is None:
        return ""
    _Names()(stmt)
    if not relations:
        return ""
    counted, only_counts = _top_level_counts(sql)
    head = "How many" if only_counts and counted else "List the"
    where = ""
    if getattr(stmt, "whereClause", None) is not None:
        condition = re.split(r"\bwhere\b", sql, maxsplit=1, flags=re.IGNORECASE)[-1]
        literals = re.findall(r"'((?:[^']|'')*)'|(?<![\w$])(\d+(?:\.\d+)?)(?!\w)", condition)
        values = [a.replace("''", "'") or b for a, b in literals]
        if values:
            where = " for " + " and ".join(values)
    return f"{head} {' and '.join(dict.fromkeys(relations))}{where}?"
