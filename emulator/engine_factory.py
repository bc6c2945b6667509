"""Build the engine that the callback endpoint hands requests to, from the command-line flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from emulator.engine.calls import CallLog
from emulator.engine.cassette import CassetteError
from emulator.engine.engine import Engine
from emulator.engine.settings import EngineSettings
from emulator.engine.warm_copy import StoreTarget, WarmCopier
from emulator.fakes.embeddings import similarity
from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.transport import FakeTransport
from emulator.providers import DISCOVERY_ENGINE_BASE_URL, VERTEX_BASE_URL
from emulator.usage_error import UsageError


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
        raise UsageError(str(exc)) from exc


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    try:
        return EngineSettings(
            models=args.models,
            vertex_base_url=args.vertex_base_url or VERTEX_BASE_URL,
            discovery_engine_base_url=args.discovery_engine_base_url
            or DISCOVERY_ENGINE_BASE_URL,
            secret_manager_endpoint=args.secret_manager_endpoint,
            google_project=args.google_project,
            google_region=args.google_region,
            read_timeout=args.read_timeout,
            max_retries=args.max_retries,
            model_concurrency=args.model_concurrency,
            cache_size=args.cache_size,
            cache_live=args.cache_live,
            secrets_file=str(args.secrets_file) if args.secrets_file else None,
            cassette=str(args.cassette) if getattr(args, "cassette", None) else None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def call_log(args: argparse.Namespace, current_proxy: Callable[[], Any]) -> CallLog | None:
    """The inspector's call log when --inspector-port is given; who called comes from the
    proxy's session registry (the caller's backend pid -> its database and user)."""
    if getattr(args, "inspector_port", None) is None:
        return None
    from proxy.callback import CALLER_PID

    def whois(pid: int) -> tuple[str | None, str | None]:
        server = current_proxy()
        session = server.sessions.get(pid) if server is not None else None
        if session is None:
            return None, None
        params = session.params
        return params.get("database") or params.get("user"), params.get("user")

    try:
        return CallLog(args.inspector_max_calls, args.inspector_body_chars, whois, CALLER_PID.get)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def warm_copier(current_proxy: Callable[[], Any]) -> WarmCopier:
    """The warm-up's binary store (engine/warm_copy.py). A "store" object names a statement
    key; it is taken only when the key is one of the caller's own (it starts with the pid of the
    backend on the other end of the callback connection), and the batches go to the database
    of that backend's session, through the proxy's admin connection settings."""
    from proxy.callback import CALLER_PID

    def resolve(store: Any) -> StoreTarget | None:
        server = current_proxy()
        pid = CALLER_PID.get()
        session = server.sessions.get(pid) if server is not None and pid else None
        if session is None or not isinstance(store, dict):
            return None
        key, model_id = store.get("key"), store.get("model_id")
        if (not isinstance(key, str) or not key.startswith(f"{pid}:")
                or not isinstance(model_id, str)):
            return None
        if not session.dbname:
            return None
        return StoreTarget(server.config.upstream.admin_conninfo(session.dbname), key, model_id)

    return WarmCopier(resolve)


def build_engine(
    args: argparse.Namespace, current_proxy: Callable[[], Any] = lambda: None
) -> Engine:
    settings = engine_settings(args)
    try:
        return engine_with_fakes(settings, call_log(args, current_proxy), fake_knobs(args),
                                 warm_copier(current_proxy))
    except CassetteError as exc:
        raise UsageError(str(exc)) from exc


def engine_with_fakes(
    settings: EngineSettings | None = None,
    calls: CallLog | None = None,
    knobs: FakeKnobs | None = None,
    copier: WarmCopier | None = None,
) -> Engine:
    """An engine with the fake models plugged in (the engine does not import them): their
    transport, and the text similarity alloydb_ai_nl ranks templates with."""
    settings = settings or EngineSettings()
    fake = FakeTransport(knobs or FakeKnobs(), settings.read_timeout)
    return Engine(settings, calls, fake, nl_similarity=similarity, warm_copier=copier)
