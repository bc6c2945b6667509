"""README.md's psql session runs as printed: the statements typed at its ``postgres=#`` prompts
go through the emulator with psql, in a new database, and psql prints the output shown."""

from __future__ import annotations

import re
import subprocess

from tests.docs.test_docs_quickstart import normalize, psql
from tests.support.databases import empty_database
from tests.support.emulators import Emulator
from tests.support.paths import REPO

README = REPO / "README.md"
CONSOLE = re.compile(r"^```console\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
PROMPT = "postgres=# "


def psql_session(block: str) -> tuple[str, str]:
    """The SQL typed at the prompts of a console block (a statement runs on to its `;`), and
    the output it shows; `$ ` lines are the shell's."""
    typed: list[str] = []
    shown: list[str] = []
    in_statement = False
    for line in block.splitlines():
        if line.startswith("$ "):
            continue
        if line.startswith(PROMPT) or in_statement:
            typed.append(line.removeprefix(PROMPT))
            in_statement = not line.rstrip().endswith(";")
        else:
            shown.append(line)
    return "\n".join(typed) + "\n", "\n".join(shown)


def test_the_readme_psql_session_prints_what_it_shows(emulator: Emulator) -> None:
    blocks = CONSOLE.findall(README.read_text())
    assert len(blocks) == 1
    sql, shown = psql_session(blocks[0])
    assert "embedding(" in sql
    result = subprocess.run(
        [psql(), "-X", "-v", "ON_ERROR_STOP=1", "-d", empty_database(emulator, "readme"),
         "-f", "-"], input=sql, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert normalize(result.stdout) == normalize(shown), (
        f"README.md's psql session printed something else:\n--- README\n{shown}\n--- psql\n"
        f"{result.stdout}")


def test_a_session_is_split_into_what_is_typed_and_what_is_shown() -> None:
    block = ("$ psql postgresql://x\npostgres=# SELECT 1\n           AS one;\n one\n-----\n"
             "   1\n(1 row)\n")
    assert psql_session(block) == ("SELECT 1\n           AS one;\n", " one\n-----\n   1\n(1 row)")
