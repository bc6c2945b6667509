"""Run a client check program as a subprocess and read its verdicts.

The programs under this folder (``jdbc/ProxyCheck.java``, ``node/check.js``) print one line per
check, ``OK <name>`` or ``FAIL <name>: <reason>``, so one run of a program serves one pytest test
per check. A tool the program needs (java, node, the JDBC jar, node_modules) fails the test when
it is missing in CI, which installs them (``.ci/run``), and skips it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

STDERR_TAIL_CHARS = 4000


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing(what: str, install_hint: str) -> NoReturn:
    """Fail in CI (a missing client is a broken CI set-up), skip on a developer's machine."""
    message = f"{what} is not available; install it with: {install_hint}"
    if in_ci():
        pytest.fail(message + " (CI is set, so .ci/run should have installed it)")
    pytest.skip(message)


def require_program(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"the program {name!r}", install_hint)
    return path


def require_path(path: Path, what: str, install_hint: str) -> Path:
    if not path.exists():
        missing(f"{what} ({path})", install_hint)
    return path


@dataclass
class CheckRun:
    """The verdicts of one run of a check program."""

    command: str
    returncode: int | None  # None when the run was killed at its deadline
    stdout: str
    stderr: str
    verdicts: dict[str, str | None] = field(default_factory=dict)  # name -> None (OK) or reason

    @classmethod
    def parse(cls, command: str, returncode: int | None, stdout: str, stderr: str) -> CheckRun:
        run = cls(command, returncode, stdout, stderr)
        for line in stdout.splitlines():
            status, _, rest = line.partition(" ")
            if status == "OK":
                run.verdicts[rest.strip()] = None
            elif status == "FAIL":
                name, _, reason = rest.partition(":")
                run.verdicts[name.strip()] = reason.strip() or "failed"
        return run

    def assert_ok(self, check: str) -> None:
        if check in self.verdicts and self.verdicts[check] is None:
            return
        if check in self.verdicts:
            headline = f"{check} failed: {self.verdicts[check]}"
        elif self.returncode is None:
            headline = f"{check} did not finish: the program was killed at its deadline"
        else:
            headline = f"{check} reported nothing (exit code {self.returncode})"
        pytest.fail(
            f"{headline}\ncommand: {self.command}\n"
            f"--- stdout ---\n{self.stdout}\n"
            f"--- stderr (tail) ---\n{self.stderr[-STDERR_TAIL_CHARS:]}",
            pytrace=False,
        )


def run_checks(argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> CheckRun:
    command = " ".join(argv)
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return CheckRun.parse(command, None, _text(exc.stdout), _text(exc.stderr))
    return CheckRun.parse(command, done.returncode, done.stdout, done.stderr)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
