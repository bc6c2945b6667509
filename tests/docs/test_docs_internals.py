"""docs/internals.md is true to the code: its layout lists every module of `proxy` and
`emulator`, and every path it names exists."""

from __future__ import annotations

import re

from tests.support.paths import REPO

INTERNALS = REPO / "docs" / "internals.md"
PACKAGES = ("proxy", "emulator")
# A layout line: two spaces per level, then a file or folder name, then (maybe) what it does.
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[\w.-]+(?:/[\w.-]+)*/?)(?: |$)")


def layout_block() -> list[str]:
    text = INTERNALS.read_text()
    start = text.index("```\n", text.index("## Layout")) + 4
    return text[start:text.index("```", start)].splitlines()


def listed_paths(lines: list[str]) -> set[str]:
    """The paths of the layout tree: each entry under the nearest folder less indented than it."""
    paths: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, path) of the enclosing folders
    for line in lines:
        match = ENTRY.match(line)
        if match is None or not ("." in match["name"] or match["name"].endswith("/")):
            continue  # a description's second line
        indent = len(match["indent"])
        while folders and folders[-1][0] >= indent:
            folders.pop()
        path = (folders[-1][1] if folders else "") + match["name"]
        paths.add(path.rstrip("/"))
        if path.endswith("/"):
            folders.append((indent, path))
    return paths


def test_the_layout_reader_follows_nesting() -> None:
    lines = ["a/         x", "  b.py     y", "  c/       z", "    d.py   w", "           more",
             "  e.py     v"]
    assert listed_paths(lines) == {"a", "a/b.py", "a/c", "a/c/d.py", "a/e.py"}


def test_every_listed_path_exists() -> None:
    missing = sorted(p for p in listed_paths(layout_block()) if not (REPO / p).exists())
    assert not missing, f"docs/internals.md lists files that do not exist: {missing}"


def test_every_module_is_listed() -> None:
    listed = listed_paths(layout_block())
    modules = {str(p.relative_to(REPO)) for package in PACKAGES
               for p in (REPO / package).rglob("*.py") if p.name != "__init__.py"}
    unlisted = sorted(modules - listed)
    assert not unlisted, f"add these to the layout in docs/internals.md: {unlisted}"


def test_every_path_named_in_the_text_exists() -> None:
    named = set(re.findall(r"\b(?:proxy|emulator|tests|bench)/[\w./-]*\w", INTERNALS.read_text()))
    assert named
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"docs/internals.md names paths that do not exist: {missing}"
