"""``./serve`` (the README's first command) runs the emulator in the caller's directory."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO


def test_relative_paths_are_the_callers(tmp_path: Path) -> None:
    """`../alloydb-ai-emulator/serve --data-dir data` put the data in the clone, not here: the
    script changed into its own directory before it ran the command."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(REPO / "serve", clone / "serve")
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    # An installed .venv, as the first run leaves it, whose command tells where it ran.
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    digest = hashlib.sha256((clone / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (clone / ".venv" / f".installed-{digest}").touch()
    command = bin_dir / "alloydb-ai-emulator"
    command.write_text('#!/bin/sh\necho "$PWD" "$@"\n')
    command.chmod(0o755)
    caller = tmp_path / "project"
    caller.mkdir()

    result = subprocess.run(["../clone/serve", "--data-dir", "data"], cwd=caller,
                            capture_output=True, text=True, timeout=30, check=True)

    assert result.stdout.split() == [str(caller), "serve", "--data-dir", "data"]
    assert result.stderr == ""  # installed already: no pip run
