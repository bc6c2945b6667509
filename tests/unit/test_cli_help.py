"""What `alloydb-ai-emulator --help` and `--version` tell a newcomer, before anything starts."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from emulator.cli import build_parser, main
from emulator.extension_build import DEFAULT_VERSION


def test_version_names_the_package_and_the_extension(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"alloydb-ai-emulator {version('alloydb-ai-emulator')} ")
    assert f"google_ml_integration {DEFAULT_VERSION}" in printed


def test_every_subcommand_says_what_it_does_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --help` printed only its flags: nothing said what it starts or how to stop it."""
    subparsers = next(a for a in build_parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        assert parser.description, f"{name} --help has no description"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "ready: accepting connections" in " ".join(capsys.readouterr().out.split())
