"""Prometheus metrics of a running emulator: ``serve --metrics-port N`` serves them at ``/metrics``.

Plan: nothing is counted here. The engine keeps plain counters (`emulator.engine.stats`) and the
proxy keeps its connection and byte counts (`proxy.listener.ProxyServer`); a custom collector
reads both at scrape time and turns them into metric families. The HTTP endpoint is a tiny
asyncio server on the emulator's own event loop, so a scrape reads the counters between two
callbacks of that loop and never races a model call.

Metrics (all prefixed ``alloydb_ai_emulator_``; ``model`` is the model id, ``provider`` the
model's provider):

- ``model_calls_total{model,provider}``: model calls (batch members count one each);
- ``model_call_errors_total{model,provider,sqlstate}``: calls that ended in a PostgreSQL error;
- ``model_call_retries_total{model,provider}``: retried provider requests (429, 5xx, connect);
- ``model_cache_hits_total{model,provider}``: calls answered from the response cache;
- ``provider_requests_total{model,provider}``: requests sent to a provider (fake or real);
- ``model_call_duration_seconds{model,provider}``: histogram of whole calls, cache hits included;
- ``provider_request_duration_seconds{model,provider}``: histogram of single provider requests;
- ``provider_requests_in_flight{model,provider}``: provider requests under way now, and
  ``provider_requests_in_flight_max{model,provider}``: the most there have been at once (how
  much of ``--model-concurrency`` a backfill used);
- ``model_tokens_total{model,provider,direction}``: tokens the provider reported (input, output);
- ``http_requests_total``: real HTTP requests to providers (0 with fake models);
- ``response_cache_entries``: entries in the response cache;
- ``warmup_streams_total``, ``warmup_streams_open``, ``warmup_batches_held``: the warm-up's
  streamed batches (emulator/engine/streams.py): streams started, open now, and their batches
  started and not yet taken (a stream left open after its statement ended would show here);
- ``warmup_fallbacks_total{sqlstate}``: warm-ups that failed (their rows made their own calls);
- ``warmup_row_misses_total{kind}``: per-row calls of warmed statements that found no warmed
  answer and made their own request;
- ``warmup_batches_copied_total``, ``warmup_copy_failures_total``: batches the engine stored in
  the caller's cache itself (emulator/engine/warm_copy.py: binary COPYs, INSERTs of text), and
  those it could not (handed to the session);
- ``proxy_connections_total``, ``proxy_connections_open``: client connections to the proxy;
- ``proxy_received_bytes_total``, ``proxy_sent_bytes_total``: bytes from and to clients;
- ``build_info{version,models}``: always 1.

Also the standard ``process_*`` metrics of this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from emulator.engine.stats import EngineStats, LatencyHistogram
from emulator.usage_error import UsageError

log = logging.getLogger("alloydb_ai_emulator.metrics")

PREFIX = "alloydb_ai_emulator_"
MAX_REQUEST_HEAD = 8192


class EmulatorCollector(Collector):
    """Reads the engine's and the proxy's counters at each scrape."""

    def __init__(self, engine: Any, proxy: Any | None) -> None:
        self._engine = engine
        self._proxy = proxy

    def collect(self) -> Iterator[Metric]:
        stats: EngineStats = self._engine.stats
        labels = ["model", "provider"]
        calls = CounterMetricFamily(PREFIX + "model_calls", "Model calls.", labels=labels)
        errors = CounterMetricFamily(PREFIX + "model_call_errors",
                                     "Model calls that ended in an error, by SQLSTATE.",
                                     labels=[*labels, "sqlstate"])
        retries = CounterMetricFamily(PREFIX + "model_call_retries",
                                      "Provider requests retried (429, 5xx, connection errors).",
                                      labels=labels)
        hits = CounterMetricFamily(PREFIX + "model_cache_hits",
                                   "Model calls answered from the response cache.", labels=labels)
        requests = CounterMetricFamily(PREFIX + "provider_requests",
                                       "Requests sent to a provider, faked or real.", labels=labels)
        tokens = CounterMetricFamily(PREFIX + "model_tokens",
                                     "Tokens reported by the provider.",
                                     labels=[*labels, "direction"])
        call_latency = HistogramMetricFamily(PREFIX + "model_call_duration_seconds",
                                             "Duration of model calls, cache hits included.",
                                             labels=labels)
        request_latency = HistogramMetricFamily(PREFIX + "provider_request_duration_seconds",
                                                "Duration of single provider requests.",
                                                labels=labels)
        in_flight = GaugeMetricFamily(PREFIX + "provider_requests_in_flight",
                                      "Provider requests under way now.", labels=labels)
        in_flight_max = GaugeMetricFamily(PREFIX + "provider_requests_in_flight_max",
                                          "The most provider requests under way at once.",
                                          labels=labels)
        for model_id, m in list(stats.models.items()):
            key = [model_id, m.provider]
            in_flight.add_metric(key, m.in_flight)
            in_flight_max.add_metric(key, m.max_in_flight)
            calls.add_metric(key, m.calls)
            for sqlstate, n in list(m.errors_by_sqlstate.items()):
                errors.add_metric([*key, sqlstate], n)
            retries.add_metric(key, m.retries)
            hits.add_metric(key, m.cache_hits)
            requests.add_metric(key, m.provider_requests)
            if m.input_tokens or m.output_tokens:
                tokens.add_metric([*key, "input"], m.input_tokens)
                tokens.add_metric([*key, "output"], m.output_tokens)
            _add_histogram(call_latency, key, m.call_latency)
            _add_histogram(request_latency, key, m.request_latency)
        yield from (calls, errors, retries, hits, requests, tokens, call_latency, request_latency,
                    in_flight, in_flight_max)

        yield CounterMetricFamily(PREFIX + "http_requests",
                                  "Real HTTP requests to providers.", value=stats.http_requests)
        cache = getattr(self._engine, "cache", None)
        try:
            entries = len(cache) if cache is not None else 0
        except TypeError:
            entries = 0
        yield GaugeMetricFamily(PREFIX + "response_cache_entries",
                                "Entries in the response cache.", value=entries)
        streams = getattr(self._engine, "streams", None)
        if streams is not None:
            yield CounterMetricFamily(PREFIX + "warmup_streams",
                                      "Warm-up batch streams started.", value=streams.opened)
            yield GaugeMetricFamily(PREFIX + "warmup_streams_open",
                                    "Warm-up batch streams open now.", value=len(streams))
            yield GaugeMetricFamily(PREFIX + "warmup_batches_held",
                                    "Batches of open warm-up streams started and not yet taken.",
                                    value=streams.held)
        copier = getattr(self._engine, "warm_copier", None)
        if copier is not None:
            yield CounterMetricFamily(PREFIX + "warmup_batches_copied",
                                      "Warm-up batches the engine stored itself (a binary COPY,"
                                      " or an INSERT of text).", value=copier.batches)
            yield CounterMetricFamily(PREFIX + "warmup_copy_failures",
                                      "Warm-up batches the engine could not store (handed to the"
                                      " session).", value=copier.failures)
        fallbacks = getattr(self._engine, "warmup_fallbacks", None)
        if fallbacks is not None:
            fell_back = CounterMetricFamily(
                PREFIX + "warmup_fallbacks",
                "Warm-ups that failed, their rows left to their own model calls, by SQLSTATE.",
                labels=["sqlstate"])
            for sqlstate, count in sorted(fallbacks.items()):
                fell_back.add_metric([sqlstate], count)
            yield fell_back
        misses = getattr(self._engine, "warmup_row_misses", None)
        if misses is not None:
            missed = CounterMetricFamily(
                PREFIX + "warmup_row_misses",
                "Per-row model calls of warmed statements that found no warmed answer (each made"
                " its own request), by kind.", labels=["kind"])
            for kind, count in sorted(misses.items()):
                missed.add_metric([kind], count)
            yield missed
        settings = getattr(self._engine, "settings", None)
        info = InfoMetricFamily(PREFIX + "build", "The emulator's version and model mode.")
        info.add_metric([], {"version": _version(),
                             "models": str(getattr(settings, "models", "unknown"))})
        yield info

        proxy = self._proxy
        if proxy is None:
            return
        yield CounterMetricFamily(PREFIX + "proxy_connections",
                                  "Client connections accepted by the proxy.",
                                  value=proxy.connections_total)
        yield GaugeMetricFamily(PREFIX + "proxy_connections_open",
                                "Client connections open now.", value=proxy.connections_open)
        yield CounterMetricFamily(PREFIX + "proxy_received_bytes",
                                  "Bytes received from clients.",
                                  value=getattr(proxy, "bytes_from_clients", 0))
        yield CounterMetricFamily(PREFIX + "proxy_sent_bytes", "Bytes sent to clients.",
                                  value=getattr(proxy, "bytes_to_clients", 0))


def _add_histogram(family: HistogramMetricFamily, key: list[str], h: LatencyHistogram) -> None:
    if h.count:
        family.add_metric(key, buckets=h.cumulative(), sum_value=h.total)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alloydb-ai-emulator")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_registry(engine: Any, proxy: Any | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EmulatorCollector(engine, proxy))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


async def start_metrics_server(host: str, port: int, proxy: Any, engine: Any) -> asyncio.Server:
    """Serve ``GET /metrics`` (Prometheus text format) on host:port; close() stops it."""
    registry = build_registry(engine, proxy)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if len(head) > MAX_REQUEST_HEAD:
                raise ValueError("request head too long")
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = path.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path in ("/metrics", "/"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, render(registry)
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"see /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port, limit=MAX_REQUEST_HEAD)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    log.debug("metrics at http://%s:%d/metrics", host if ":" not in host else f"[{host}]", port)
    return server
