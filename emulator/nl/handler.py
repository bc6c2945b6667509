"""The engine's ``alloydb_ai_nl`` request kind.

A request is what ``alloydb_ai_nl._ask_engine`` sends: the configuration's model, already
authorized from the registry (url, auth, provider), plus ``task`` and ``nl`` (the task's data).
Fake or live follows the engine's rule for the model (``Engine.is_faked``): a faked provider is
answered here, deterministically; otherwise the task is one generateContent call to the model.
Both rank templates by the engine's ``nl_similarity`` (compose.TextSimilarity), which whoever
builds the engine plugs in (emulator/engine_factory.py: the fakes' embedding cosine), as it
plugs in the fake transport: this package imports nothing of the fakes.

Tasks and answers:

| task        | nl                                          | answer                               |
|-------------|---------------------------------------------|--------------------------------------|
| `sql`       | question, templates, fragments, values, schema, attempts | `{sql, prompt}` or `{sql: "", error}` |
| `template`, `fragment` | intent, sql, psql?, pintent?, manifest?, known_values, check_intent, schema | `{psql, pintent, manifest}` or `{error}` |
| `describe`  | relations                                   | `{contexts: [{schema_object, object_type, object_context}]}` |
| `summary`   | question, sql, rows, row_count              | `{answer}`                           |
| `generate_template` | sql, schema                         | `{intent, psql, pintent, manifest}`  |

Every SQL answer is a single read-only query (one SELECT, no INTO, no locking, no data-modifying
WITH); anything else is refused here, before the SQL side checks it with EXPLAIN.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import pglast
from pglast import ast
from pglast.visitors import Visitor

from emulator.engine.errors import bad_request
from emulator.engine.request import ModelRequest
from emulator.nl import fake_text, live
from emulator.nl.compose import Composed, TextSimilarity, compose
from emulator.nl.params import parameterize

MAX_TEXT = 1_000_000


class _Engine(Protocol):
    nl_similarity: TextSimilarity | None

    def is_faked(self, request: ModelRequest) -> bool: ...
    async def invoke(self, request: dict[str, Any]) -> Any: ...


class _Writes(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = ""

    def visit_InsertStmt(self, ancestors: Any, node: Any) -> None:
        self.found = "INSERT"

    def visit_UpdateStmt(self, ancestors: Any, node: Any) -> None:
        self.found = "UPDATE"

    def visit_DeleteStmt(self, ancestors: Any, node: Any) -> None:
        self.found = "DELETE"

    def visit_MergeStmt(self, ancestors: Any, node: Any) -> None:
        self.found = "MERGE"


def query_problem(sql: str) -> str:
    """Why ``sql`` is not a single read-only query, or an empty string."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        return f"the generated SQL does not parse: {exc}"
    if len(statements) != 1:
        return "the generated SQL is not a single statement"
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        return f"the generated SQL is not a query ({type(stmt).__name__})"
    if stmt.intoClause is not None or stmt.lockingClause:
        return "the generated query writes (SELECT INTO or FOR UPDATE)"
    writes = _Writes()
    writes(stmt)
    if writes.found:
        return f"the generated query writes ({writes.found} in a WITH clause)"
    return ""


async def handle(engine: _Engine, message: dict[str, Any]) -> Any:
    task = message.get("task")
    payload = message.get("nl")
    if not isinstance(payload, dict):
        raise bad_request(None, "an alloydb_ai_nl request needs an 'nl' object")
    model = {k: v for k, v in message.items() if k not in ("op", "task", "nl")}
    faked = engine.is_faked(ModelRequest.parse(model))

    async def ask(prompt: str, json_answer: bool = False) -> str:
        body = live.request_body(prompt[:MAX_TEXT], json_answer)
        return live.answer_text(await engine.invoke({**model, "body": body}))

    if task == "sql":
        return await _sql(payload, faked, ask, _similarity(engine))
    if task in ("template", "fragment"):
        return await _prepare(str(task), payload, faked, ask)
    if task == "describe":
        return await _describe(payload, faked, ask)
    if task == "summary":
        rows = payload.get("rows")
        if isinstance(rows, str):  # the rows' JSON as text, which keeps their column order
            payload = {**payload, "rows": json.loads(rows)}
        if faked:
            return {"answer": fake_text.summary(str(payload.get("question") or ""),
                                                list(payload.get("rows") or []),
                                                int(payload.get("row_count") or 0))}
        return {"answer": (await ask(live.summary_prompt(payload))).strip()}
    if task == "generate_template":
        sql = str(payload.get("sql") or "")
        intent = fake_text.template_intent(sql) if faked else (await ask(live.template_prompt(sql))).strip()
        if not intent:
            return {"intent": ""}
        prm = parameterize(sql, intent, [])
        return {"intent": intent, "psql": prm.psql, "pintent": prm.pintent, "manifest": prm.manifest}
    raise bad_request(None, f"unknown alloydb_ai_nl task {task!r}")


def _similarity(engine: _Engine) -> TextSimilarity:
    if engine.nl_similarity is None:
        raise bad_request(None, "alloydb_ai_nl needs the engine built with its text similarity "
                                "(emulator.engine_factory.engine_with_fakes plugs it in)")
    return engine.nl_similarity


async def _sql(payload: dict[str, Any], faked: bool, ask: Any,
               similarity: TextSimilarity) -> dict[str, Any]:
    if faked:
        composed = compose(payload, similarity)
        if not composed.sql:
            return {"sql": "", "error": composed.error, "prompt": "(fake mode) no candidate"}
        problem = query_problem(composed.sql)
        return {"sql": "" if problem else composed.sql, "error": problem, "prompt": _fake_choice(composed)}
    prompt = live.sql_prompt(payload, similarity)
    sql = live.sql_of(await ask(prompt))
    if not sql:
        return {"sql": "", "error": "the model answered no SQL", "prompt": prompt}
    problem = query_problem(sql)
    return {"sql": "" if problem else sql, "error": problem, "prompt": prompt}


def _fake_choice(composed: Composed) -> str:
    """What verbose_mode shows in fake mode instead of a prompt: where the SQL came from."""
    source = (f"template {composed.template_id}" if composed.template_id is not None
              else "composed from the schema")
    if composed.fragment_ids:
        source += ", fragments " + ", ".join(str(i) for i in composed.fragment_ids)
    return f"(fake mode) {source}"


async def _prepare(kind: str, entry: dict[str, Any], faked: bool, ask: Any) -> dict[str, Any]:
    intent = str(entry.get("intent") or "")
    sql = str(entry.get("sql") or "")
    known = list(entry.get("known_values") or [])
    if entry.get("psql") and entry.get("pintent"):
        psql, pintent = str(entry["psql"]), str(entry["pintent"])
        manifest = str(entry.get("manifest") or intent)
        probe = psql if kind == "template" else f"SELECT 1 WHERE {psql}"
        try:
            pglast.parse_sql(probe)
        except pglast.parser.ParseError as exc:
            return {"error": f"The parameterized {'sql' if kind == 'template' else 'fragment'} "
                             f"is not valid SQL: {exc}"}
    else:
        prm = parameterize(sql, intent, known)
        psql, pintent = prm.psql, prm.pintent
        manifest = str(entry.get("manifest") or prm.manifest)
    if entry.get("check_intent"):
        if faked:
            reason = fake_text.check_intent(intent, sql) if kind == "template" else ""
        else:
            verdict = live.json_of(await ask(live.check_prompt(kind, entry), json_answer=True))
            ok = str(verdict.get("answer", "")).lower() == "true"
            reason = "" if ok else str(verdict.get("reason") or "intent mismatch")
        if reason:
            if kind == "template":
                return {"error": f"Checking intent failed, for nl_question:{intent}..reason:{reason}"}
            return {"error": f"Checking intent failed for fragment: {sql}, reason: {reason}"}
    return {"psql": psql, "pintent": pintent, "manifest": manifest}


async def _describe(payload: dict[str, Any], faked: bool, ask: Any) -> dict[str, Any]:
    relations = list(payload.get("relations") or [])
    if faked:
        return {"contexts": fake_text.describe(relations)}
    contexts: list[dict[str, str]] = []
    for rel in relations:
        answer = live.json_of(await ask(live.describe_prompt(rel), json_answer=True))
        kind = str(rel.get("kind") or "table")
        contexts.append({"schema_object": rel["name"], "object_type": kind,
                         "object_context": str(answer.get("relation") or "")})
        raw_columns = answer.get("columns")
        columns: dict[str, Any] = raw_columns if isinstance(raw_columns, dict) else {}
        for col in rel.get("columns") or []:
            text = str(columns.get(col["name"]) or "")
            if text:
                contexts.append({"schema_object": f"{rel['name']}.{col['name']}",
                                 "object_type": "column", "object_context": text})
    return {"contexts": [c for c in contexts if c["object_context"]]}
