"""Build the engine that the callback endpoint hands requests to, from the command-line flags."""

from __future__ import annotations

import argparse

from emulator.engine.engine import Engine
from emulator.engine.extract import RawText
from emulator.engine.settings import (
    DEFAULT_DISCOVERY_ENGINE_BASE_URL,
    DEFAULT_VERTEX_BASE_URL,
    EngineSettings,
)
from emulator.fakes.knobs import FakeKnobs


def fake_knobs(args: argparse.Namespace) -> FakeKnobs:
    try:
        return FakeKnobs(
            latency=float(args.fake_latency_ms) / 1000.0,
            fault_rate=float(args.fake_fault_rate),
            forced_fault=args.fake_fault,
            retry_after=float(args.fake_retry_after),
            rules_path=str(args.fake_rules) if args.fake_rules else None,
        )
    except ValueError as exc:
        from emulator.cli import UsageError

        raise UsageError(str(exc)) from exc


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    try:
        return EngineSettings(
            models=args.models,
            vertex_base_url=args.vertex_base_url or DEFAULT_VERTEX_BASE_URL,
            discovery_engine_base_url=args.discovery_engine_base_url
            or DEFAULT_DISCOVERY_ENGINE_BASE_URL,
            secret_manager_endpoint=args.secret_manager_endpoint,
            google_project=args.google_project,
            google_region=args.google_region,
            read_timeout=args.read_timeout,
            max_retries=args.max_retries,
            model_concurrency=args.model_concurrency,
            cache_size=args.cache_size,
            cache_live=args.cache_live,
            secrets_file=str(args.secrets_file) if args.secrets_file else None,
            fake=fake_knobs(args),
        )
    except ValueError as exc:
        from emulator.cli import UsageError

        raise UsageError(str(exc)) from exc


def build_engine(args: argparse.Namespace) -> Engine:
    import proxy.callback

    proxy.callback.RAW_TEXT_TYPES = (RawText,)
    return Engine(engine_settings(args))
