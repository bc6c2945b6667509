"""The settings table (emulator/config.py) is the one home of every flag's variable and default:
the parser reads the variables, and the engine's settings start from the same defaults."""

from __future__ import annotations

import argparse
from typing import get_args

import pytest

from emulator.cli import build_parser
from emulator.config import ENV_PREFIX
from emulator.engine.settings import MODES, EngineSettings, ModelsMode
from emulator.engine_factory import engine_settings, fake_knobs
from emulator.fakes.knobs import FAULTS, FakeKnobs, Fault
from emulator.usage_error import UsageError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [k for k in os.environ if k.startswith(ENV_PREFIX)] + ["POSTGRES_PASSWORD"]:
        monkeypatch.delenv(name, raising=False)


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_serve_without_flags_builds_the_default_engine_settings() -> None:
    assert engine_settings(serve_args()) == EngineSettings()
    assert fake_knobs(serve_args()) == FakeKnobs()


def test_variables_reach_the_engine_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"MODELS": "live", "GOOGLE_PROJECT": "proj", "FAKE_LATENCY_MS": "50",
                        "FAKE_FAULT": "500", "CACHE_LIVE": "true", "READ_TIMEOUT": "7.5"}.items():
        monkeypatch.setenv(ENV_PREFIX + name, value)
    settings = engine_settings(serve_args())
    assert (settings.models, settings.google_project, settings.cache_live) == ("live", "proj", True)
    assert settings.read_timeout == 7.5
    assert fake_knobs(serve_args()) == FakeKnobs(latency=0.05, forced_fault="500")


def test_a_flag_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PREFIX + "MAX_RETRIES", "9")
    assert engine_settings(serve_args()).max_retries == 9
    assert engine_settings(serve_args("--max-retries", "2")).max_retries == 2


def test_a_variable_that_is_not_a_value_of_its_flag_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV_PREFIX + "CACHE_SIZE", "many")
    with pytest.raises(SystemExit) as exited:
        serve_args()
    assert exited.value.code == 2
    assert "ALLOYDB_AI_EMULATOR_CACHE_SIZE='many' is not a valid value for --cache-size" in (
        capsys.readouterr().err)


def test_the_typed_choices_are_the_tables() -> None:
    assert get_args(ModelsMode) == MODES
    assert get_args(Fault) == FAULTS


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("WARMUP", "true", ("ALLOYDB_AI_EMULATOR_WARMUP='true' is not a valid value for --warmup "
                        "(choose from on, off)")),
    ("LOG_FORMAT", "yaml", "(choose from text, json)"),
    ("MODELS", "liv", "ALLOYDB_AI_EMULATOR_MODELS='liv' is not a valid value for --models"),
    ("FAKE_FAULT", "503", "(choose from 429, 500, timeout)"),
    ("LOG_LEVEL", "verbose", "(choose from debug, info, warning, error)"),
])
def test_a_variable_outside_its_flags_choices_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        variable: str, value: str, says: str) -> None:
    """argparse checks the choices of a flag, not of a default: without this check
    ALLOYDB_AI_EMULATOR_WARMUP=true turned the warm-up off, and LOG_FORMAT=yaml logged text."""
    monkeypatch.setenv(ENV_PREFIX + variable, value)
    with pytest.raises(SystemExit) as exited:
        serve_args()
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_an_on_off_variable_must_say_on_or_off(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for word, on in [("YES", True), ("on", True), ("0", False), ("Off", False)]:
        monkeypatch.setenv(ENV_PREFIX + "EPHEMERAL", word)
        assert serve_args().ephemeral is on
    monkeypatch.setenv(ENV_PREFIX + "EPHEMERAL", "maybe")
    with pytest.raises(SystemExit):
        serve_args()
    assert ("ALLOYDB_AI_EMULATOR_EPHEMERAL='maybe' is neither on (1, true, yes, on) nor off "
            "(0, false, no, off) for --ephemeral") in capsys.readouterr().err


def test_log_level_takes_any_case_and_refuses_other_words(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_args("--log-level", "DEBUG").log_level == "debug"
    monkeypatch.setenv(ENV_PREFIX + "LOG_LEVEL", "Warning")
    assert serve_args().log_level == "warning"
    with pytest.raises(SystemExit):
        serve_args("--log-level", "verbose")
    assert "argument --log-level: invalid choice: 'verbose'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["serve", "--port", "70000"], ["serve", "--port", "-5"], ["serve", "--metrics-port", "65536"],
    ["serve", "--inspector-port", "99999"], ["fake-models", "--port", "70000"],
    ["env-init", "--port", "70000"],
])
def test_a_port_outside_0_to_65535_is_a_usage_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The socket layer took --port 70000 as 4464, and the ready line said 70000."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "is not a port number (0 to 65535)" in capsys.readouterr().err


def test_a_port_variable_is_checked_as_the_flag_is(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_args("--port", "0").port == 0
    monkeypatch.setenv(ENV_PREFIX + "PORT", "65535")
    assert serve_args().port == 65535
    monkeypatch.setenv(ENV_PREFIX + "PORT", "70000")
    with pytest.raises(SystemExit):
        serve_args()
    assert ("ALLOYDB_AI_EMULATOR_PORT='70000' is not a valid value for --port: 70000 is not a "
            "port number (0 to 65535)") in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "says"), [
    (["--cache-size", "-1"], "--cache-size / ALLOYDB_AI_EMULATOR_CACHE_SIZE must be >= 0, not -1"),
    (["--model-concurrency", "0"],
     "--model-concurrency / ALLOYDB_AI_EMULATOR_MODEL_CONCURRENCY must be >= 1, not 0"),
    (["--read-timeout", "0"],
     "--read-timeout / ALLOYDB_AI_EMULATOR_READ_TIMEOUT must be positive, not 0.0"),
    (["--max-retries", "-2"],
     "--max-retries / ALLOYDB_AI_EMULATOR_MAX_RETRIES must be >= 0, not -2"),
])
def test_an_engine_setting_out_of_bounds_names_its_flag_and_variable(
        argv: list[str], says: str) -> None:
    """It named EngineSettings' fields ("max_retries and cache_size must be >= 0")."""
    with pytest.raises(UsageError) as refused:
        engine_settings(serve_args(*argv))
    assert str(refused.value) == says
