"""Rules that decide what the fake LLMs answer.

A rules file maps prompt patterns to answers. It is JSON or TOML (chosen by the `.toml` suffix):

    # rules.toml
    [[rules]]
    pattern = "delivery|shipping"      # Python regex, searched in the prompt (one batch item)
    answer = "true"                    # text; \\1 or \\g<name> insert groups of the match
    model = "gemini-.*"                # optional: regex the model name must match in full
    ignore_case = true                 # optional, default true

    {"rules": [{"pattern": "capital of France", "answer": "Paris"}]}

The first rule whose pattern is found wins. The answer is then fitted to what the request asked
for: an enum answer must be one of the enum values (else the rule is skipped), a number must
parse as one, a boolean accepts true/false/yes/no.

Operations: `load_rules(path)` (cached per path and modification time), `RuleSet.answer(prompt,
model)`. Known gaps: no per-provider rules; errors in the file raise `RulesFileError` at load.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RulesFileError(ValueError):
    """The rules file cannot be read or has a malformed rule."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    answer: str
    model: re.Pattern[str] | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()

    def answers(self, prompt: str, model: str) -> list[str]:
        """Every matching rule's answer, in file order (the caller takes the first that fits)."""
        found = []
        for rule in self.rules:
            if rule.model is not None and not rule.model.fullmatch(model):
                continue
            match = rule.pattern.search(prompt)
            if match is not None:
                found.append(match.expand(rule.answer))
        return found


EMPTY_RULES = RuleSet()
_cache: dict[str, tuple[float, RuleSet]] = {}


def parse_rules(document: Any) -> RuleSet:
    """Build a RuleSet from a decoded rules document (`{"rules": [...]}`)."""
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RulesFileError('a rules file holds {"rules": [ {pattern, answer}, ... ]}')
    rules = []
    for index, entry in enumerate(document.get("rules", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
            raise RulesFileError(f"rule {index + 1}: 'pattern' (a string) is required")
        if not isinstance(entry.get("answer"), str):
            raise RulesFileError(f"rule {index + 1}: 'answer' (a string) is required")
        flags = re.IGNORECASE if entry.get("ignore_case", True) else 0
        try:
            pattern = re.compile(entry["pattern"], flags)
            model = entry.get("model")
            model_pattern = re.compile(model, re.IGNORECASE) if isinstance(model, str) else None
        except re.error as exc:
            raise RulesFileError(f"rule {index + 1}: bad regular expression: {exc}") from exc
        rules.append(Rule(pattern, entry["answer"], model_pattern))
    return RuleSet(tuple(rules))


def load_rules(path: str | os.PathLike[str] | None) -> RuleSet:
    """The rules of the file at `path` (none when `path` is None), reloaded when it changes."""
    if path is None:
        return EMPTY_RULES
    file = Path(path)
    try:
        mtime = file.stat().st_mtime
    except OSError as exc:
        raise RulesFileError(f"cannot read rules file {file}: {exc.strerror}") from exc
    cached = _cache.get(str(file))
    if cached is not None and cached[0] == mtime:
        return cached[1]
    text = file.read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RulesFileError(f"rules file {file} is not valid: {exc}") from exc
    rules = parse_rules(document)
    _cache[str(file)] = (mtime, rules)
    return rules
