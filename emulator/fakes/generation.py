"""What a fake LLM answers: a value for a prompt, fitted to the requested response schema.

Operation: `answer(prompt_parts, schema, model, rules) -> value`, where `prompt_parts` are the
texts of the request's last user turn and `schema` a JSON schema in Gemini's (`"type": "STRING"`)
or OpenAI's (`"type": "string"`) spelling, or None for free text. The value is a Python value of
the schema's type (str, bool, float, int, list, dict); providers render it (`render_text`).

Decisions, for one prompt:

- a rule of the rules file (see `rules.py`) that matches and fits the schema wins;
- free text: `Fake answer from <model>: <the prompt, whitespace collapsed, cut at 80 chars>`;
- true/false (a BOOLEAN, or a STRING enum of exactly true and false): see `decide_yes_no`;
- the enum positive / negative / neutral: the prompt's sentiment (more words of the small built-in
  lexicon on one side than the other), else neutral;
- another enum: the enum value named in the prompt (the last one mentioned), else one chosen by a
  hash of the prompt;
- NUMBER / INTEGER: the relevance of the prompt's text to its question (`relevance`: the share of
  the question's content words found in the text; question and text split at the first "?", else
  ":", else line break), in 0..1, or scaled into a range the question names ("from 1 to 10");
- ARRAY: one answer per batch item (see `batch_prompts.py`), n = minItems/maxItems when given;
- OBJECT: each property answered by its own schema.

`decide_yes_no(prompt)`, the documented default for ai.if: the prompt is split at its first "?"
into a question and a text.
  1. The question names a sentiment ("positive", "negative", "complaint", ...): true when the text
     has more words of that sentiment than of the opposite one (a small built-in lexicon).
  2. Otherwise true when question and text share a content word (stemmed, stop words and words
     like "review", "text", "answer" ignored).
  3. Without a "?": true when the prompt says yes, true, correct or affirmative (the phrases
     "true or false" and "yes or no" do not count).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from emulator.fakes.batch_prompts import split_items
from emulator.fakes.rules import RuleSet
from emulator.words import overlap, stem, words

# Words that talk about the task rather than its subject.
_META_WORDS_TEXT = """answer question following true false yes no respond reply return item items each json
    array review reviews text texts document documents prompt statement sentence whether
    mention mentions talk talks discuss please"""
_META_WORDS = frozenset(_META_WORDS_TEXT.split())
_POSITIVE_WORDS_TEXT = """good great excellent love loved lovely amazing happy fantastic wonderful best perfect
    awesome nice recommend pleased satisfied fast friendly helpful enjoy enjoyed"""
_POSITIVE_WORDS = frozenset(_POSITIVE_WORDS_TEXT.split())
_NEGATIVE_WORDS_TEXT = """bad terrible awful hate hated poor worst broken disappointed disappointing horrible late
    refund slow rude damaged useless never annoying angry complaint problem"""
_NEGATIVE_WORDS = frozenset(_NEGATIVE_WORDS_TEXT.split())
_ASKS_POSITIVE = frozenset({"positive", "favorable", "favourable", "happy", "satisfied", "praise"})
_ASKS_NEGATIVE = frozenset({"negative", "unfavorable", "complaint", "complain", "unhappy", "angry"})
_YES_WORDS = frozenset({"yes", "true", "correct", "affirmative"})
_SENTIMENT_LABELS = frozenset({"positive", "negative", "neutral"})
_CHOICE_PHRASES = re.compile(r"\b(?:true\s*(?:or|/)\s*false|yes\s*(?:or|/)\s*no)\b", re.IGNORECASE)
_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:to|-|and)\s*(-?\d+(?:\.\d+)?)")


def _split_question(prompt: str) -> tuple[str, str] | None:
    question, mark, text = prompt.partition("?")
    return (question, text) if mark and text.strip() else None


def sentiment(text: str) -> int:
    tokens = words(text)
    return sum(t in _POSITIVE_WORDS for t in tokens) - sum(t in _NEGATIVE_WORDS for t in tokens)


def decide_yes_no(prompt: str) -> bool:
    """The default true/false answer (documented in the module plan)."""
    split = _split_question(prompt)
    if split is None:
        return bool(_YES_WORDS & set(words(_CHOICE_PHRASES.sub(" ", prompt))))
    question, text = split
    asked = set(words(question))
    if asked & _ASKS_POSITIVE:
        return sentiment(text) > 0
    if asked & _ASKS_NEGATIVE:
        return sentiment(text) < 0
    return overlap(question, text, _META_WORDS) > 0


def relevance(prompt: str) -> float:
    """How much of the question the text covers, 0..1, scaled into a range the prompt names."""
    split = _split_question(prompt) or _split_at(prompt, ":") or _split_at(prompt, "\n")
    score = overlap(split[0], split[1], _META_WORDS) if split else hash_fraction(prompt)
    found = _RANGE.search(split[0] if split else prompt)
    if found is not None:
        low, high = float(found.group(1)), float(found.group(2))
        if low < high:
            return round(low + score * (high - low), 4)
    return round(score, 4)


def _split_at(prompt: str, separator: str) -> tuple[str, str] | None:
    question, mark, text = prompt.partition(separator)
    return (question, text) if mark and text.strip() else None


def hash_fraction(prompt: str) -> float:
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def free_text(prompt: str, model: str) -> str:
    summary = " ".join(prompt.split())
    if len(summary) > 80:
        summary = summary[:77] + "..."
    return f"Fake answer from {model}: {summary}"


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "")
    if isinstance(kind, list):  # OpenAI's ["string", "null"]
        kind = next((k for k in kind if k != "null"), "")
    return str(kind).upper()


def _fit(raw: str, schema: dict[str, Any] | None) -> tuple[bool, Any]:
    """Fit a rule's answer to the schema: (fits, value)."""
    if schema is None:
        return True, raw
    kind = _schema_type(schema)
    text = raw.strip()
    if isinstance(schema.get("enum"), list):
        for option in schema["enum"]:
            if str(option).lower() == text.lower():
                return True, option
        return False, None
    if kind == "BOOLEAN":
        if text.lower() in ("true", "yes"):
            return True, True
        if text.lower() in ("false", "no"):
            return True, False
        return False, None
    if kind in ("NUMBER", "INTEGER"):
        try:
            number = float(text)
        except ValueError:
            return False, None
        return True, int(number) if kind == "INTEGER" else number
    if kind in ("ARRAY", "OBJECT"):
        try:
            return True, json.loads(text)
        except json.JSONDecodeError:
            return False, None
    return True, raw


def _enum_answer(options: list[Any], prompt: str) -> Any:
    lowered = {str(o).lower() for o in options}
    if lowered == {"true", "false"}:
        wanted = "true" if decide_yes_no(prompt) else "false"
        return next(o for o in options if str(o).lower() == wanted)
    if lowered == _SENTIMENT_LABELS:
        score = sentiment(prompt)
        wanted = "positive" if score > 0 else "negative" if score < 0 else "neutral"
        return next(o for o in options if str(o).lower() == wanted)
    stems = [stem(w) for w in words(prompt)]
    best, best_position = None, -1
    for option in options:
        option_stems = [stem(w) for w in words(str(option))]
        if not option_stems:
            continue
        for i in range(len(stems) - len(option_stems), -1, -1):
            if stems[i : i + len(option_stems)] == option_stems:
                if i > best_position:
                    best, best_position = option, i
                break
    if best is not None:
        return best
    return options[int(hash_fraction(prompt) * len(options))] if options else ""


def answer_one(prompt: str, schema: dict[str, Any] | None, model: str, rules: RuleSet) -> Any:
    """The answer to one prompt, a value of the schema's type."""
    kind = _schema_type(schema) if schema is not None else ""
    if kind != "ARRAY":
        for raw in rules.answers(prompt, model):
            fits, value = _fit(raw, schema)
            if fits:
                return value
    if schema is None:
        return free_text(prompt, model)
    if isinstance(schema.get("enum"), list):
        return _enum_answer(schema["enum"], prompt)
    if kind == "BOOLEAN":
        return decide_yes_no(prompt)
    if kind == "NUMBER":
        return relevance(prompt)
    if kind == "INTEGER":
        return round(relevance(prompt))
    if kind == "ARRAY":
        return answer([prompt], schema, model, rules)
    if kind == "OBJECT":
        properties = schema.get("properties") or {}
        return {
            name: answer_one(prompt, sub if isinstance(sub, dict) else None, model, rules)
            for name, sub in properties.items()
        }
    return free_text(prompt, model)


def _array_size(schema: dict[str, Any]) -> int | None:
    for key in ("minItems", "maxItems", "min_items", "max_items"):
        value = schema.get(key)
        if isinstance(value, (int, str)) and str(value).isdigit():
            return int(value)
    return None


def answer(
    prompt_parts: list[str], schema: dict[str, Any] | None, model: str, rules: RuleSet
) -> Any:
    """The answer to a request whose last user turn holds `prompt_parts`."""
    if schema is not None and _schema_type(schema) == "ARRAY":
        items_schema = schema.get("items")
        item_schema = items_schema if isinstance(items_schema, dict) else None
        items = split_items(prompt_parts, _array_size(schema))
        return [answer_one(item, item_schema, model, rules) for item in items]
    return answer_one("\n".join(prompt_parts), schema, model, rules)


def render_text(value: Any, as_json: bool) -> str:
    """The response text carrying `value`: JSON text, or plain text for text/enum answers."""
    if isinstance(value, str) and not as_json:
        return value
    if isinstance(value, bool) and not as_json:
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)
