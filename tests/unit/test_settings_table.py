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
