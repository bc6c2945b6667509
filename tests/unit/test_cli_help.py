"""What `alloydb-ai-emulator --help` and `--version` tell a newcomer, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest

from emulator.cli import build_parser, main, subcommand_parsers
from emulator.extension_build import DEFAULT_VERSION
from tests.support.paths import REPO


@pytest.mark.parametrize("argv", [["--version"], ["serve", "--version"],
                                  ["env-init", "--version"]])
def test_version_names_the_package_and_the_extension(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Also after a subcommand: `./serve --version` and `docker run IMAGE --version` reach serve."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"alloydb-ai-emulator {version('alloydb-ai-emulator')} ")
    assert f"google_ml_integration {DEFAULT_VERSION}" in printed


def test_every_subcommand_says_what_it_does_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --help` printed only its flags: nothing said what it starts or how to stop it."""
    for name, parser in subcommand_parsers(build_parser()).items():
        assert parser.description, f"{name} --help has no description"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "ready: accepting connections" in " ".join(capsys.readouterr().out.split())


def test_ctrl_c_while_the_modules_load_is_a_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """serve installs its SIGINT handler once its modules are loaded (a second or two); a Ctrl-C
    before that raised KeyboardInterrupt through main, a traceback, with nothing started."""
    import emulator.cli

    def interrupted(coro: Any) -> int:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(emulator.cli, "_run", interrupted)
    try:
        status = main(["serve", "--ephemeral"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt went through main: a traceback for the person at Ctrl-C")
    assert status == 130
    assert capsys.readouterr().err == "alloydb-ai-emulator: interrupted\n"


def test_the_command_line_loads_without_the_database_modules() -> None:
    """`--help`, `env-init` and the Ctrl-C window above stay short: importing emulator.cli
    loaded psycopg and pglast (a third of a second) for one constant of the supervisor's."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, emulator.cli; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True, cwd=REPO).stdout.split()
    assert not {"psycopg", "pglast", "emulator.supervisor"} & set(loaded)


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--prot", "5499"], "unrecognized arguments: --prot 5499 (did you mean --port?)"),
    (["serve", "--data_dir=x"], "unrecognized arguments: --data_dir=x (did you mean --data-dir?)"),
    (["env-init", "--pasword", "x"], "(did you mean --password?)"),
    (["serve", "extra"], "unrecognized arguments: extra\n"),
])
def test_a_mistyped_flag_is_refused_by_its_subcommand_with_the_nearest_flag(
        argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse refused `serve --prot` with the top-level usage, which lists no flag at all."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: alloydb-ai-emulator {argv[0]} ")
    assert f"alloydb-ai-emulator {argv[0]}: error: " in err and says in err


def test_the_bare_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """It said only 'the following arguments are required: command'."""
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Start with `alloydb-ai-emulator serve`" in " ".join(err.split())
    assert "serve               start the emulator" in err
