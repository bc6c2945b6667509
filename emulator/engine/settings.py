"""Engine settings: where the providers are, how to call them.

`EngineSettings` is a frozen dataclass; the command line builds one from its flags
(emulator/engine_factory.py). The fields that are flags (`models`, `read_timeout`, `cache_size`,
...) take their defaults from the settings table (emulator/config.py), which also documents
them with their `ALLOYDB_AI_EMULATOR_*` variables (docs/configuration.md). The others
(`connect_timeout`, `max_retry_after`, the backoff, `max_connections`, `secret_cache_seconds`,
`max_response_bytes`) are not configurable; their values are set here.

Local secret overrides (offline use, no Secret Manager call), first match wins:
1. `ALLOYDB_AI_EMULATOR_SECRET_<NAME>`, NAME the secret's name in its path
   (`projects/p/secrets/<name>/versions/v`) uppercased, every non-alphanumeric character as `_`:
   `projects/p/secrets/openai-key/versions/1` -> `ALLOYDB_AI_EMULATOR_SECRET_OPENAI_KEY`;
2. the JSON object in `secrets_file`, keyed by the full secret path, or by the path without its
   `/versions/...` part to match every version.
`secret_env` is the environment these are read from (the process environment by default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from emulator.config import default, setting
from emulator.providers import DISCOVERY_ENGINE_BASE_URL, VERTEX_BASE_URL

ModelsMode = Literal["fake", "live", "record", "replay", "replay-or-fake"]
MODES: tuple[str, ...] = setting("models").choices or ()
DEFAULT_MODELS: ModelsMode = default("models")
CASSETTE_MODES = frozenset({"record", "replay", "replay-or-fake"})


@dataclass(frozen=True)
class EngineSettings:
    models: ModelsMode = DEFAULT_MODELS
    vertex_base_url: str = VERTEX_BASE_URL
    discovery_engine_base_url: str = DISCOVERY_ENGINE_BASE_URL
    secret_manager_endpoint: str | None = None
    google_project: str | None = None
    google_region: str = default("google_region")
    connect_timeout: float = 10.0
    read_timeout: float = default("read_timeout")
    max_retries: int = default("max_retries")
    max_retry_after: float = 30.0
    backoff_base: float = 0.5  # first retry waits up to this, doubling per attempt
    backoff_cap: float = 20.0
    model_concurrency: int = default("model_concurrency")
    max_connections: int = 100
    cache_size: int = default("cache_size")
    cache_live: bool = default("cache_live")
    # The longest provider answer read: 256 MiB is twice OpenAI's largest embedding answer
    # (2,048 inputs of 3,072 numbers written in full, about 126 MB), and past it PostgreSQL's
    # jsonb could not hold the answer anyway.
    max_response_bytes: int = 256 * 1024 * 1024
    secret_cache_seconds: float = 60.0
    secrets_file: str | None = None
    secret_env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    cassette: str | None = None

    def __post_init__(self) -> None:
        if self.models not in MODES:
            raise ValueError(f"models must be one of {', '.join(MODES)}")
        if self.models in CASSETTE_MODES and not self.cassette:
            raise ValueError(f"--models {self.models} needs --cassette FILE")
        if self.cassette and self.models not in CASSETTE_MODES:
            raise ValueError("--cassette goes with --models record, replay or replay-or-fake")
        bounds = (("connect_timeout", 0.0, "positive"), ("read_timeout", 0.0, "positive"),
                  ("max_retry_after", 0.0, "positive"), ("backoff_base", 0.0, "positive"),
                  ("max_retries", -1, ">= 0"), ("cache_size", -1, ">= 0"),
                  ("max_response_bytes", 0, ">= 1"), ("model_concurrency", 0, ">= 1"),
                  ("max_connections", 0, ">= 1"))
        for name, above, rule in bounds:
            value = getattr(self, name)
            if value <= above:
                raise ValueError(f"{_named(name)} must be {rule}, not {value}")


def _named(field_name: str) -> str:
    """A field as the user sets it: its flag and variable where it has them (config.py's
    table), else its name (the settings set here)."""
    try:
        row = setting(field_name)
    except KeyError:
        return field_name
    return " / ".join((row.flag, *row.variables))
