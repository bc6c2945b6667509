"""Every relative link in README.md and docs/*.md points at a file that exists."""

from __future__ import annotations

import re

import pytest

from tests.support.paths import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page: object) -> None:
    path = page  # a pathlib.Path
    for match in LINK.finditer(path.read_text()):  # type: ignore[attr-defined]
        target = match.group(1)
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{path.name}: {target}"  # type: ignore[attr-defined]


def test_readme_links_every_doc() -> None:
    readme = (REPO / "README.md").read_text()
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, doc.name

