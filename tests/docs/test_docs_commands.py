"""The shell commands README.md and docs/*.md print work as printed, and show what they print."""

from __future__ import annotations

import re

from emulator.extension_files import EXTENSION_NAMES
from tests.docs.test_docs_links import PAGES
from tests.support.paths import REPO


def lines_matching(pattern: str) -> list[str]:
    found = re.compile(pattern)
    return [f"{page.name}:{number}: {line.strip()}" for page in PAGES
            for number, line in enumerate(page.read_text().splitlines(), 1) if found.search(line)]


def test_the_package_is_installed_from_a_clone() -> None:
    """The package is not published on a package index: a page that says
    `pip install alloydb-ai-emulator` sends a newcomer to an error (or to someone else's
    package). Pages install it from a clone of this repository, by path."""
    assert lines_matching(r"pip install\s+['\"]?alloydb-ai-emulator\b") == []


def test_sudo_runs_the_command_by_its_path() -> None:
    """sudo's secure_path does not hold a virtualenv's bin: `sudo alloydb-ai-emulator ...` is
    `command not found` for everyone who installed it as the pages say."""
    assert lines_matching(r"sudo\s+alloydb-ai-emulator\b") == []


def test_install_extension_shows_the_line_it_prints() -> None:
    page = (REPO / "docs" / "own-postgres.md").read_text()
    assert f"# installed {', '.join(EXTENSION_NAMES)} into /usr/share/postgresql/16/extension" in page
