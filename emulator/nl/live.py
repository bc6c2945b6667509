"""Live mode: the prompts sent to the configuration's Gemini model and the reading of its answers.

Each task is one ``generateContent`` request (temperature 0). The SQL prompt carries what the
page says AlloyDB uses: the schema context (registered relations, their columns and comments,
foreign keys), the general context, the templates closest to the question, the fragments, the
values the value index found in the question, and the statements EXPLAIN refused with their
errors (the retry loop).
"""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.nl.compose import TextSimilarity, facts_of, ranked_templates

MAX_TEMPLATES = 5


def request_body(prompt: str, json_answer: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {"temperature": 0, "candidateCount": 1, "maxOutputTokens": 8192}
    if json_answer:
        config["responseMimeType"] = "application/json"
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


def answer_text(response: Any) -> str:
    """The text of a generateContent answer (also of a streamed one: a list of chunks)."""
    chunks = response if isinstance(response, list) else [response]
    texts: list[str] = []
    for chunk in chunks:
        for candidate in (chunk or {}).get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
            break
    return "".join(texts)


def sql_of(text: str) -> str:
    block = re.search(r"```(?:sql|postgresql)?\s*\n?(.*?)```", text, re.DOTALL | re.IGNORECASE)
    sql = block.group(1) if block else text
    return sql.strip().rstrip(";").strip()


def json_of(text: str) -> dict[str, Any]:
    block = re.search(r"```(?:json)?\s*\n?(.*?)```", text, re.DOTALL)
    try:
        value = json.loads(block.group(1) if block else text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _schema_text(schema: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for rel in schema:
        lines.append(f"{rel.get('kind', 'table')} {rel['name']}" +
                     (f" -- {rel['comment']}" if rel.get("comment") else ""))
        for col in rel.get("columns") or []:
            lines.append(f"  {col['name']} {col['type']}" + (f" -- {col['comment']}" if col.get("comment") else ""))
        for fk in rel.get("foreign_keys") or []:
            lines.append(f"  FOREIGN KEY ({', '.join(fk['columns'])}) REFERENCES "
                         f"{fk['references']} ({', '.join(fk['referenced_columns'])})")
    return "\n".join(lines)


def sql_prompt(context: dict[str, Any], similarity: TextSimilarity) -> str:
    question = str(context.get("question") or "")
    facts = facts_of(question, list(context.get("values") or []))
    parts = ["You translate a question into one PostgreSQL SELECT statement over the schema below.",
             ("Answer with the statement only, in a ```sql block. Use only the relations and "
              "columns of the schema; compare strings with single quotes."),
             "", "[Schema]", _schema_text(list(context.get("schema") or []))]
    general = [str(g) for g in context.get("general_context") or []]
    if general:
        parts += ["", "[General context]", *general]
    ranked = ranked_templates(facts, list(context.get("templates") or []), similarity)
    templates = [t for _, t in ranked][:MAX_TEMPLATES] or list(context.get("templates") or [])[:MAX_TEMPLATES]
    for template in templates:
        parts += ["", "[Template]", f"Question: {template.get('intent')}", f"SQL: {template.get('sql')}",
                  f"Parameterized question: {template.get('pintent')}",
                  f"Parameterized SQL: {template.get('psql')}"]
        if template.get("explanation"):
            parts.append(f"Explanation: {template['explanation']}")
    for fragment in context.get("fragments") or []:
        parts += ["", "[Fragment]", f"Condition meaning: {fragment.get('intent')}",
                  f"Tables: {', '.join(fragment.get('table_aliases') or [])}",
                  f"Predicate: {fragment.get('fragment')}"]
    for match in facts.values:
        parts.append(f"\n[Value] \"{match.phrase}\" is the {match.concept_type} {match.value!r} "
                     f"of column {', '.join(match.columns)}")
    for attempt in context.get("attempts") or []:
        parts += ["", "[A previous answer failed]", f"SQL: {attempt.get('sql')}",
                  f"Error: {attempt.get('error')}", "Correct it."]
    parts += ["", f"[Question] {question}"]
    return "\n".join(parts)


def check_prompt(kind: str, entry: dict[str, Any]) -> str:
    what = "SQL statement" if kind == "template" else "SQL predicate"
    return "\n".join([
        (f"Does the following {what} answer the intent? Reply with a JSON object "
         '{"answer": true or false, "reason": "why not, or an empty string"}.'),
        "", "[Schema]", _schema_text(list(entry.get("schema") or [])),
        "", f"[Intent] {entry.get('intent')}", f"[{what}] {entry.get('sql')}"])


def describe_prompt(relation: dict[str, Any]) -> str:
    return "\n".join([
        ("Describe this database relation and each of its columns for someone who writes SQL "
         "queries over it. Reply with a JSON object "
         '{"relation": "description", "columns": {"column name": "description"}}.'),
        "", _schema_text([relation]),
        "", "Sample values: " + json.dumps({c["name"]: c.get("samples") or [] for c in relation.get("columns") or []})])


def summary_prompt(payload: dict[str, Any]) -> str:
    return "\n".join([
        "Summarize, in a few sentences, what this result set says about the question.",
        f"[Question] {payload.get('question')}", f"[SQL] {payload.get('sql')}",
        f"[Rows: {payload.get('row_count')} in all, the first ones below]",
        json.dumps(payload.get("rows") or [], default=str)])


def template_prompt(sql: str) -> str:
    return ("Write the natural-language question that this SQL query answers, as one sentence. "
            f"Reply with the question only.\n\n[SQL] {sql}")
