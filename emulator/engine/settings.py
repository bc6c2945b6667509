"""Engine settings: where the providers are, how to call them, how the fakes behave.

`EngineSettings` is a frozen dataclass; the command line builds one from its flags, and
`EngineSettings.from_env()` reads the `ALLOYDB_AI_EMULATOR_*` variables below (unset: default).

| field                      | variable                                   | default                  |
|----------------------------|--------------------------------------------|--------------------------|
| models (MODES below)       | ALLOYDB_AI_EMULATOR_MODELS                 | fake                     |
| cassette (record/replay)   | ALLOYDB_AI_EMULATOR_CASSETTE               | None                     |
| vertex_base_url            | ALLOYDB_AI_EMULATOR_VERTEX_BASE_URL        | https://{region}-aiplatform.googleapis.com |
| discovery_engine_base_url  | ALLOYDB_AI_EMULATOR_DISCOVERY_ENGINE_BASE_URL | https://discoveryengine.googleapis.com |
| secret_manager_endpoint    | ALLOYDB_AI_EMULATOR_SECRET_MANAGER_ENDPOINT| None (Google's)          |
| google_project             | ALLOYDB_AI_EMULATOR_GOOGLE_PROJECT         | None (ADC's project)     |
| google_region              | ALLOYDB_AI_EMULATOR_GOOGLE_REGION          | us-central1              |
| connect_timeout (s)        | ALLOYDB_AI_EMULATOR_CONNECT_TIMEOUT        | 10                       |
| read_timeout (s)           | ALLOYDB_AI_EMULATOR_READ_TIMEOUT           | 120                      |
| max_retries                | ALLOYDB_AI_EMULATOR_MAX_RETRIES            | 4                        |
| max_retry_after (s)        | ALLOYDB_AI_EMULATOR_MAX_RETRY_AFTER        | 30 (longer Retry-After values are cut to this) |
| model_concurrency          | ALLOYDB_AI_EMULATOR_MODEL_CONCURRENCY      | 16 requests in flight per model |
| max_connections            | ALLOYDB_AI_EMULATOR_MAX_CONNECTIONS        | 100 (HTTP pool)          |
| cache_size (entries)       | ALLOYDB_AI_EMULATOR_CACHE_SIZE             | 10000 (0 = off)          |
| cache_live                 | ALLOYDB_AI_EMULATOR_CACHE_LIVE             | false: cache live responses too |
| secrets_file               | ALLOYDB_AI_EMULATOR_SECRETS_FILE           | None                     |
| fake.latency (s)           | ALLOYDB_AI_EMULATOR_FAKE_LATENCY           | 0                        |
| fake.fault_rate (0..1)     | ALLOYDB_AI_EMULATOR_FAKE_FAULT_RATE        | 0                        |
| fake.forced_fault          | ALLOYDB_AI_EMULATOR_FAKE_FAULT             | None ('429', '500', 'timeout') |
| fake.retry_after (s)       | ALLOYDB_AI_EMULATOR_FAKE_RETRY_AFTER       | 1                        |
| fake.rules_path            | ALLOYDB_AI_EMULATOR_FAKE_RULES             | None                     |

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
from typing import Literal, cast

from emulator.fakes.knobs import FAULTS, FakeKnobs

ModelsMode = Literal["fake", "live", "record", "replay", "replay-or-fake"]
MODES: tuple[str, ...] = ("fake", "live", "record", "replay", "replay-or-fake")
CASSETTE_MODES = frozenset({"record", "replay", "replay-or-fake"})
ENV_PREFIX = "ALLOYDB_AI_EMULATOR_"
DEFAULT_VERTEX_BASE_URL = "https://{region}-aiplatform.googleapis.com"
DEFAULT_DISCOVERY_ENGINE_BASE_URL = "https://discoveryengine.googleapis.com"


@dataclass(frozen=True)
class EngineSettings:
    models: ModelsMode = "fake"
    vertex_base_url: str = DEFAULT_VERTEX_BASE_URL
    discovery_engine_base_url: str = DEFAULT_DISCOVERY_ENGINE_BASE_URL
    secret_manager_endpoint: str | None = None
    google_project: str | None = None
    google_region: str = "us-central1"
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 4
    max_retry_after: float = 30.0
    backoff_base: float = 0.5  # first retry waits up to this, doubling per attempt
    backoff_cap: float = 20.0
    model_concurrency: int = 16
    max_connections: int = 100
    cache_size: int = 10_000
    cache_live: bool = False
    secret_cache_seconds: float = 60.0
    secrets_file: str | None = None
    secret_env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    fake: FakeKnobs = field(default_factory=FakeKnobs)
    cassette: str | None = None

    def __post_init__(self) -> None:
        if self.models not in MODES:
            raise ValueError(f"models must be one of {', '.join(MODES)}")
        if self.models in CASSETTE_MODES and not self.cassette:
            raise ValueError(f"--models {self.models} needs --cassette FILE")
        if self.cassette and self.models not in CASSETTE_MODES:
            raise ValueError("--cassette goes with --models record, replay or replay-or-fake")
        for name in ("connect_timeout", "read_timeout", "max_retry_after", "backoff_base"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_retries < 0 or self.cache_size < 0:
            raise ValueError("max_retries and cache_size must be >= 0")
        if self.model_concurrency < 1 or self.max_connections < 1:
            raise ValueError("model_concurrency and max_connections must be >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        """Settings from `ALLOYDB_AI_EMULATOR_*` variables (the table in the module plan)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        def number(name: str, default: float) -> float:
            value = get(name)
            try:
                return default if value is None else float(value)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{name} must be a number, not {value!r}") from exc

        fault = get("FAKE_FAULT")
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"{ENV_PREFIX}FAKE_FAULT must be one of {', '.join(FAULTS)}")
        mode = get("MODELS") or "fake"
        if mode not in MODES:
            raise ValueError(f"{ENV_PREFIX}MODELS must be one of {', '.join(MODES)}, not {mode!r}")
        knobs = FakeKnobs(
            latency=number("FAKE_LATENCY", 0.0),
            fault_rate=number("FAKE_FAULT_RATE", 0.0),
            forced_fault=fault,
            retry_after=number("FAKE_RETRY_AFTER", 1.0),
            rules_path=get("FAKE_RULES"),
        )
        return cls(
            models=cast(ModelsMode, mode),
            vertex_base_url=get("VERTEX_BASE_URL") or DEFAULT_VERTEX_BASE_URL,
            discovery_engine_base_url=(
                get("DISCOVERY_ENGINE_BASE_URL") or DEFAULT_DISCOVERY_ENGINE_BASE_URL
            ),
            secret_manager_endpoint=get("SECRET_MANAGER_ENDPOINT"),
            google_project=get("GOOGLE_PROJECT"),
            google_region=get("GOOGLE_REGION") or "us-central1",
            connect_timeout=number("CONNECT_TIMEOUT", 10.0),
            read_timeout=number("READ_TIMEOUT", 120.0),
            max_retries=int(number("MAX_RETRIES", 4)),
            max_retry_after=number("MAX_RETRY_AFTER", 30.0),
            model_concurrency=int(number("MODEL_CONCURRENCY", 16)),
            max_connections=int(number("MAX_CONNECTIONS", 100)),
            cache_size=int(number("CACHE_SIZE", 10_000)),
            cache_live=(get("CACHE_LIVE") or "false").lower() in ("1", "true", "yes", "on"),
            secrets_file=get("SECRETS_FILE"),
            secret_env=env,
            fake=knobs,
            cassette=get("CASSETTE"),
        )
