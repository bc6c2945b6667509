"""Command-line flags, each with its ``ALLOYDB_AI_EMULATOR_<FLAG>`` environment variable.

A flag given on the command line wins over its variable; the variable wins over the default.
``--port`` reads ``ALLOYDB_AI_EMULATOR_PORT``, ``--vertex-base-url`` reads
``ALLOYDB_AI_EMULATOR_VERTEX_BASE_URL``, and so on. ``--password`` also reads
``POSTGRES_PASSWORD``, as the official postgres image does.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

ENV_PREFIX = "ALLOYDB_AI_EMULATOR_"
DEFAULT_PORT = 5488  # not 5432 (a local PostgreSQL) nor 6432 (PgBouncer)


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


class EnvDefaults:
    """Adds flags to a parser with defaults taken from the environment."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def add(self, flag: str, *, default: Any = None, type: Any = str, help: str, **kw: Any) -> None:
        env = env_name(flag)
        raw = os.environ.get(env)
        extra_env = kw.pop("also_env", None)
        if raw is None and extra_env:
            raw = os.environ.get(extra_env)
        value = default
        if raw is not None and raw != "":
            if kw.get("action") == "store_true":
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                try:
                    value = type(raw)
                except ValueError:
                    self.parser.error(f"{env}={raw!r} is not a valid value for {flag}")
        env_help = f" [env {env}" + (f", {extra_env}" if extra_env else "") + "]"
        if kw.get("action") == "store_true":
            self.parser.add_argument(flag, default=value, help=help + env_help, **kw)
        else:
            self.parser.add_argument(flag, default=value, type=type, help=help + env_help, **kw)
