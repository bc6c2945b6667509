"""docs/configuration.md lists every flag and variable of every subcommand: its tables are
generated from the argparse parser, and this test fails when they differ from it.

Regenerate after changing a flag:  .venv/bin/python -m tests.test_docs_configuration
"""

from __future__ import annotations

import argparse
import re
import sys

from emulator.cli import build_parser
from emulator.config import env_name
from tests.conftest import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
SECTION = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(.*?)(<!-- END GENERATED -->)",
                     re.DOTALL)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flag_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| flag | variable | default | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        flags = [f for f in action.option_strings if f.startswith("--")]
        if not flags or action.dest == "help":
            continue
        help_text = action.help or ""
        envs = re.search(r" \[env ([^\]]+)\]$", help_text)
        help_text = help_text[: envs.start()] if envs else help_text
        variables = ", ".join(f"`{v.strip()}`" for v in envs.group(1).split(",")) if envs else "—"
        if action.choices:
            help_text += " (one of: " + ", ".join(f"`{c}`" for c in action.choices) + ")"
        default = _default_of(action)
        cell = help_text.replace("|", "\\|")
        rows.append(f"| `{flags[0]}` | {variables} | {default} | {cell} |")
    return "\n".join(rows) + "\n"


def _default_of(action: argparse.Action) -> str:
    """The default as the code sets it (callers clear the ALLOYDB_AI_EMULATOR_* variables first:
    the parser reads them when it is built)."""
    default = action.default
    if default is None or default is False:
        return "—" if action.nargs != 0 else "off"
    return f"`{default}`"


def generate(markdown: str) -> str:
    parsers = subcommands()

    def replace(match: re.Match[str]) -> str:
        return match.group(1) + flag_table(parsers[match.group("name")]) + match.group(4)

    return SECTION.sub(replace, markdown)


def test_every_subcommand_has_a_generated_table() -> None:
    names = {m.group("name") for m in SECTION.finditer(CONFIGURATION.read_text())}
    assert names == set(subcommands())


def test_tables_match_the_parser(monkeypatch: object) -> None:
    import os

    for name in [k for k in os.environ if k.startswith("ALLOYDB_AI_EMULATOR_")] + [
            "POSTGRES_PASSWORD"]:
        monkeypatch.delenv(name, raising=False)  # type: ignore[attr-defined]
    text = CONFIGURATION.read_text()
    assert generate(text) == text, (
        "docs/configuration.md is out of date with the parser; run "
        ".venv/bin/python -m tests.test_docs_configuration")


def test_every_flag_and_variable_is_documented(monkeypatch: object) -> None:
    text = CONFIGURATION.read_text()
    for parser in subcommands().values():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}`" in text, flag
            if action.help and "[env " in action.help:
                assert f"`{env_name(action.option_strings[-1])}`" in text


if __name__ == "__main__":
    import os

    for key in [k for k in os.environ if k.startswith("ALLOYDB_AI_EMULATOR_")] + [
            "POSTGRES_PASSWORD"]:
        os.environ.pop(key, None)
    CONFIGURATION.write_text(generate(CONFIGURATION.read_text()))
    print(f"wrote {CONFIGURATION}", file=sys.stderr)
