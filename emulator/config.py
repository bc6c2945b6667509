"""The settings table: every command-line flag of every subcommand, in one place.

Each `Setting` is one row: its flag (whose name, dashes as underscores, is the argparse
attribute and, for the engine's settings, the `EngineSettings` field), its
``ALLOYDB_AI_EMULATOR_<FLAG>`` variable, type, default and help. From this table come:

- the argument parser of each subcommand (`add_settings`, used by `emulator.cli`);
- the defaults of `EngineSettings` (emulator/engine/settings.py) and `FakeKnobs`
  (emulator/fakes/knobs.py), through `default(name)`;
- the flag tables of docs/configuration.md (tests/docs/test_docs_configuration.py generates them
  and fails when the page falls behind).

A flag given on the command line wins over its variable; the variable wins over the default.
``--password`` also reads ``POSTGRES_PASSWORD``, as the official postgres image does. A variable
is checked as its flag is (type and choices); an on/off flag is on when its variable is 1, true,
yes or on, off when it is 0, false, no or off.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "ALLOYDB_AI_EMULATOR_"
DEFAULT_HOST = "127.0.0.1"  # loopback: listening on every address is a choice (--host 0.0.0.0)
DEFAULT_PORT = 5488  # not 5432 (a local PostgreSQL) nor 6432 (PgBouncer)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: the socket layer would take 70000 as 4464."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


@dataclass(frozen=True)
class Setting:
    """One flag: `--flag`, what it does, its default and how its text becomes a value."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    switch: bool = False  # an on/off flag without a value (argparse's store_true)
    env: bool = True  # False: the flag has no ALLOYDB_AI_EMULATOR_* variable
    also_env: str | None = None  # a second variable, read when the first is unset

    @property
    def name(self) -> str:
        """The argparse attribute (and EngineSettings field) this flag sets."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables this flag reads, in order of precedence."""
        if not self.env:
            return ()
        return (env_name(self.flag),) + ((self.also_env,) if self.also_env else ())


# ---------------------------------------------------------------------------------------------
# The table. Subcommands share rows where a flag means the same thing in each.

LOG = (
    Setting("--log-level", default="info", type=str.lower,
            choices=("debug", "info", "warning", "error"),
            help="how much to log; debug adds a line per model call: model, provider, status, "
                 "latency"),
    Setting("--log-format", default="text", choices=("text", "json"),
            help="text: one human-readable line per event; json: one JSON object per line"),
)

FAKES = (
    Setting("--fake-latency-ms", default=0.0, type=float, help="latency of each fake model request"),
    Setting("--fake-fault-rate", default=0.0, type=float,
            help="share of fake requests that fail (0..1)"),
    Setting("--fake-fault", choices=("429", "500", "timeout"),
            help="make every fake request fail so"),
    Setting("--fake-retry-after", default=1.0, type=float, help="Retry-After seconds of fake 429s"),
    Setting("--fake-rules", type=Path, help="rules file for fake generations"),
)

ENGINE = (
    Setting("--models", default="fake", choices=("fake", "live", "record", "replay", "replay-or-fake"),
            help="fake: answer known providers locally (default); live: call real endpoints; "
                 "record: live, keeping every answer in --cassette; replay: answer only from "
                 "--cassette (no network, no credentials); replay-or-fake: from --cassette, "
                 "else as fake"),
    Setting("--cassette", type=Path, help="the cassette file of --models record, replay and "
            "replay-or-fake (JSON lines)"),
    Setting("--google-project", help="project for relative Vertex URLs (default: the ADC project; "
            "'emulator-project' for faked calls)"),
    Setting("--google-region", default="us-central1", help="region for relative Vertex URLs"),
    Setting("--vertex-base-url", help="replaces https://{region}-aiplatform.googleapis.com"),
    Setting("--discovery-engine-base-url", help="replaces https://discoveryengine.googleapis.com"),
    Setting("--secret-manager-endpoint",
            help="Secret Manager REST endpoint (e.g. http://127.0.0.1:9000)"),
    Setting("--secrets-file", type=Path,
            help="JSON file mapping secret paths to values (offline)"),
    Setting("--read-timeout", default=120.0, type=float,
            help="seconds to wait for a provider's answer"),
    Setting("--max-retries", default=4, type=int, help="retries on 429, 5xx and connection errors"),
    Setting("--model-concurrency", default=16, type=int,
            help="requests in flight per model, a warm-up's batches included (Vertex AI: up "
                 "to 250 texts each); a 429 waits its Retry-After, so a quota is respected at "
                 "any value, but lower it when your quota is small (each 429 costs a round trip)"),
    Setting("--cache-size", default=10000, type=int,
            help="response cache entries (0: off); all entries together hold at most 20 "
                 "million numbers (about 250 MB)"),
    Setting("--cache-live", default=False, switch=True, help="cache live responses too"),
    Setting("--warmup", default="on", choices=("on", "off"),
            help="batch per-row model calls of a statement before it runs"),
    *FAKES,
)

SERVE = (
    Setting("--host", default=DEFAULT_HOST, help="address to listen on"),
    Setting("--port", default=DEFAULT_PORT, type=port_number,
            help=f"port to listen on (default {DEFAULT_PORT})"),
    Setting("--upstream", help="front this PostgreSQL (a libpq URL or key=value string) instead "
            "of starting the embedded one"),
    Setting("--data-dir", type=Path,
            help="data directory of the embedded PostgreSQL (default: a per-user directory)"),
    Setting("--ephemeral", default=False, switch=True,
            help="use a temporary data directory, removed on exit"),
    Setting("--password", also_env="POSTGRES_PASSWORD",
            help="require this password (SCRAM) for the postgres user of the embedded server"),
    Setting("--tls-cert", type=Path, help="certificate (PEM) to terminate TLS with"),
    Setting("--tls-key", type=Path, help="private key (PEM) of --tls-cert"),
    Setting("--callback-host", default=DEFAULT_HOST,
            help="address the database uses to reach the emulator's engine"),
    *ENGINE,
    *LOG,
    Setting("--metrics-port", type=port_number, help="serve Prometheus metrics on this port"),
    Setting("--inspector-port", type=port_number, help="serve the call inspector (a web page and "
            "GET /api/calls) on this port; 0 picks a free one"),
    Setting("--inspector-max-calls", default=1000, type=int,
            help="calls the inspector keeps (the oldest go first)"),
    Setting("--inspector-body-chars", default=65536, type=int,
            help="request and response bodies longer than this are cut in the inspector"),
)

INSTALL_EXTENSION = (
    Setting("--pg-config", default="pg_config", env=False,
            help="pg_config of the target installation (default: from PATH)"),
    Setting("--renew", default=None, env=False,
            help="then renew the extensions in every database of the server at this URL (a "
                 "superuser's) that an older build of the emulator made (the functions only; "
                 "the user's objects stay)"),
)

FAKE_MODELS = (
    Setting("--host", default=DEFAULT_HOST, help="address to listen on"),
    Setting("--port", default=8089, type=port_number, help="port to listen on"),
    *FAKES,
    Setting("--repeat-answers-mb", default=0, type=int,
            help="keep up to this many MB of answers: a request seen before (same path and "
                 "body) is answered from memory, after the same latency, without the fakes' "
                 "CPU, as a remote provider costs none here (load tests; 0 = off; a kept "
                 "answer does not see later edits of the rules file)"),
    Setting("--dense-embeddings", default=False, switch=True,
            help="answer text embeddings with every component non-zero (the fake vector plus a "
                 "fixed offset of at most 1e-3), written with 17 significant digits as real "
                 "providers write them, so a load test parses what production parses; not the "
                 "fakes' own vectors"),
    *LOG,
)

ENV_INIT = (
    Setting("--host", default=DEFAULT_HOST,
            help="address the emulator listens on (0.0.0.0 and :: mean this machine)"),
    Setting("--port", default=DEFAULT_PORT, type=port_number,
            help=f"its port (default {DEFAULT_PORT})"),
    Setting("--password", also_env="POSTGRES_PASSWORD",
            help="password to put in PGPASSWORD and DATABASE_URL"),
    Setting("--user", default="postgres", env=False, help="database user (default postgres)"),
    Setting("--dbname", default="postgres", env=False, help="database (default postgres)"),
    Setting("--no-check", default=False, switch=True, env=False,
            help="print the lines even if nothing answers at host:port"),
)

SUBCOMMANDS: dict[str, tuple[Setting, ...]] = {
    "serve": SERVE,
    "install-extension": INSTALL_EXTENSION,
    "fake-models": FAKE_MODELS,
    "env-init": ENV_INIT,
}


def setting(name: str, settings: tuple[Setting, ...] = SERVE) -> Setting:
    """The row of `settings` (serve's by default) whose name (or flag) is `name`."""
    for row in settings:
        if name in (row.name, row.flag):
            return row
    raise KeyError(name)


def default(name: str) -> Any:
    """The default of serve's setting `name`: what EngineSettings and FakeKnobs start from."""
    return setting(name).default


# ---------------------------------------------------------------------------------------------
# The parser


def add_settings(parser: argparse.ArgumentParser, settings: tuple[Setting, ...]) -> None:
    """Add each setting's flag to `parser`, its default taken from its variable when set."""
    for row in settings:
        value = _value_from_env(parser, row)
        help_text = row.help
        if row.variables:
            help_text += f" [env {', '.join(row.variables)}]"
        if row.switch:
            parser.add_argument(row.flag, action="store_true", default=value, help=help_text)
        else:
            parser.add_argument(row.flag, default=value, type=row.type, help=help_text,
                                choices=list(row.choices) if row.choices else None)


def _value_from_env(parser: argparse.ArgumentParser, row: Setting) -> Any:
    """The value of `row`'s variable, checked as argparse checks the flag (argparse checks
    neither the type nor the choices of a default), or the row's default when it is unset."""
    found = next(((v, os.environ[v]) for v in row.variables if os.environ.get(v) is not None),
                 None)
    if found is None or found[1] == "":
        return row.default
    variable, raw = found
    if row.switch:
        word = raw.strip().lower()
        if word not in _TRUE + _FALSE:
            parser.error(f"{variable}={raw!r} is neither on ({', '.join(_TRUE)}) nor off "
                         f"({', '.join(_FALSE)}) for {row.flag}")
        return word in _TRUE
    try:
        value = row.type(raw)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        why = f": {exc}" if isinstance(exc, argparse.ArgumentTypeError) else ""
        parser.error(f"{variable}={raw!r} is not a valid value for {row.flag}{why}")
    if row.choices and value not in row.choices:
        parser.error(f"{variable}={raw!r} is not a valid value for {row.flag} (choose from "
                     f"{', '.join(row.choices)})")
    return value
