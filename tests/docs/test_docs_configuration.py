"""docs/configuration.md lists every flag and variable of every subcommand: its tables are
generated from the settings table (emulator/config.py), and this test fails when they differ.

Regenerate after changing a flag:  .venv/bin/python -m tests.docs.test_docs_configuration
"""

from __future__ import annotations

import argparse
import re
import sys

from emulator.cli import build_parser, subcommand_parsers
from emulator.config import SUBCOMMANDS, Setting
from tests.support.paths import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
SECTION = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(.*?)(<!-- END GENERATED -->)",
                     re.DOTALL)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return subcommand_parsers(build_parser())


def flag_table(settings: tuple[Setting, ...]) -> str:
    rows = ["| flag | variable | default | what it does |", "|---|---|---|---|"]
    for row in settings:
        variables = ", ".join(f"`{v}`" for v in row.variables) or "—"
        help_text = row.help
        if row.choices:
            help_text += " (one of: " + ", ".join(f"`{c}`" for c in row.choices) + ")"
        cell = help_text.replace("|", "\\|")
        rows.append(f"| `{row.flag}` | {variables} | {_default_of(row)} | {cell} |")
    return "\n".join(rows) + "\n"


def _default_of(row: Setting) -> str:
    if row.default is None or row.default is False:
        return "off" if row.switch else "—"
    return f"`{row.default}`"


def generate(markdown: str) -> str:
    def replace(match: re.Match[str]) -> str:
        return match.group(1) + flag_table(SUBCOMMANDS[match.group("name")]) + match.group(4)

    return SECTION.sub(replace, markdown)


def test_every_subcommand_has_a_generated_table() -> None:
    names = {m.group("name") for m in SECTION.finditer(CONFIGURATION.read_text())}
    assert names == set(subcommands()) == set(SUBCOMMANDS)


def test_tables_match_the_settings_table() -> None:
    text = CONFIGURATION.read_text()
    assert generate(text) == text, (
        "docs/configuration.md is out of date with emulator/config.py; run "
        ".venv/bin/python -m tests.docs.test_docs_configuration")


def test_the_page_names_the_command_that_regenerates_it() -> None:
    assert f"`.venv/bin/python -m {__name__}`" in CONFIGURATION.read_text()


def test_every_flag_of_the_parser_is_in_the_settings_table() -> None:
    """No flag is added to a parser outside the table (it would be missing from the docs)."""
    for name, parser in subcommands().items():
        flags = [f for a in parser._actions for f in a.option_strings if f.startswith("--")]
        assert flags == ["--help", *(row.flag for row in SUBCOMMANDS[name]), "--version"], name


if __name__ == "__main__":
    CONFIGURATION.write_text(generate(CONFIGURATION.read_text()))
    print(f"wrote {CONFIGURATION}", file=sys.stderr)
