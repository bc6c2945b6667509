"""``alloydb-ai-emulator``: the one command.

Subcommands:
  serve              the proxy, the engine and (unless --upstream) an embedded PostgreSQL
  install-extension  copy the extension's files into a PostgreSQL installation
  fake-models        the built-in fake models as a standalone HTTP server
  env-init           print `export PGHOST=... DATABASE_URL=...` lines for a running emulator
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import ssl
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.config import SUBCOMMANDS, add_settings, default
from emulator.malloc import keep_freed_memory
from emulator.usage_error import UsageError

if TYPE_CHECKING:
    from emulator.embedded import EmbeddedPostgres

log = logging.getLogger("alloydb_ai_emulator")


# ---------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, its flags from the settings table (emulator/config.py)."""
    parser = argparse.ArgumentParser(
        prog="alloydb-ai-emulator",
        description="An emulator of AlloyDB AI (google_ml_integration) on stock PostgreSQL.",
        epilog="Start with `alloydb-ai-emulator serve`; `alloydb-ai-emulator COMMAND --help` "
        "lists a command's flags, and docs/configuration.md all of them.",
    )
    parser.add_argument("--version", action=_PrintVersion, help=VERSION_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    add_settings(sub.add_parser(
        "serve", help="start the emulator",
        description="Starts the proxy, the engine and, unless --upstream is given, an embedded "
        "PostgreSQL 18 (with pgvector and dblink), then prints `ready: accepting connections at "
        "postgresql://...`. Each flag can also be set by the variable shown in [env ...]; the "
        "flag wins. Stop it with Ctrl-C or SIGTERM: the data directory is kept, unless "
        "--ephemeral."), SUBCOMMANDS["serve"])
    add_settings(sub.add_parser(
        "install-extension", help="install the extension's files",
        description="Copies the control files and SQL scripts of the emulator's extensions into "
        "the PostgreSQL installation of --pg-config, so that a server you run yourself can "
        "CREATE EXTENSION google_ml_integration; then front it with `serve --upstream URL` "
        "(docs/own-postgres.md)."), SUBCOMMANDS["install-extension"])
    add_settings(sub.add_parser(
        "fake-models", help="serve the fake models over HTTP",
        description="Serves the built-in fake models over HTTP in each provider's wire format "
        "(Vertex AI, Gemini, OpenAI, Anthropic, Hugging Face, ranking), for custom models and "
        "for other programs; prints `ready: fake models listening on http://...`."),
        SUBCOMMANDS["fake-models"])
    env_init = sub.add_parser(
        "env-init", help="print export lines (PGHOST, PGPORT, DATABASE_URL) for a running emulator",
        description="Prints shell export lines for the emulator at --host:--port, which default "
        "to serve's own (the same ALLOYDB_AI_EMULATOR_HOST and _PORT variables), so "
        "`eval \"$(alloydb-ai-emulator env-init)\"` points psql, libpq and DATABASE_URL readers at it.",
    )
    add_settings(env_init, SUBCOMMANDS["env-init"])
    for command in sub.choices.values():  # `./serve --version`, `docker run IMAGE --version`
        command.add_argument("--version", action=_PrintVersion, help=VERSION_HELP)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args`, but an unknown flag is refused by its subcommand (whose usage is
    the one to read) with the nearest flag it has: argparse reported `serve --prot 5499` with
    the top-level usage, which lists no flag at all."""
    import difflib

    if not (sys.argv[1:] if argv is None else argv):  # a bare `alloydb-ai-emulator`: what to type
        parser.print_help(sys.stderr)
        parser.exit(2)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = subcommand_parsers(parser)[args.command]
        flags = [flag for action in command._actions for flag in action.option_strings]
        first = next((word.split("=", 1)[0] for word in unknown if word.startswith("-")), "")
        near = difflib.get_close_matches(first, flags, n=1) if first else []
        command.error(f"unrecognized arguments: {' '.join(unknown)}"
                      + (f" (did you mean {near[0]}?)" if near else ""))
    return args


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's own parser, by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


VERSION_HELP = "print the emulator's and its extensions' versions and exit"


class _PrintVersion(argparse.Action):
    """``--version``: the text is made only when asked for (the extensions' versions come from
    modules too slow to import at every start)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from importlib.metadata import version

        print(f"alloydb-ai-emulator {version('alloydb-ai-emulator')} (google_ml_integration "
              f"{_extension_version()}, alloydb_ai_nl {_nl_version()})")
        parser.exit()


# ---------------------------------------------------------------------------------------------
# Entry point


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    _configure_logging(getattr(args, "log_level", default("log_level")),
                       getattr(args, "log_format", default("log_format")))
    if args.command in ("serve", "fake-models"):
        keep_freed_memory()  # they move embeddings in buffers of megabytes (emulator/malloc.py)
    try:
        if args.command == "serve":
            return _run(serve(args))
        if args.command == "install-extension":
            return install_extension(args)
        if args.command == "fake-models":
            return _run(fake_models(args))
        if args.command == "env-init":
            return env_init(args)
    except UsageError as exc:
        print(f"alloydb-ai-emulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the modules load, before serve's own handler
        print("alloydb-ai-emulator: interrupted", file=sys.stderr)
        return 130
    return 2


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        handlers=[handler])


def _run(coro: Any) -> int:
    try:
        import uvloop

        return int(uvloop.run(coro))
    except ImportError:  # pragma: no cover - platforms without uvloop
        return int(asyncio.run(coro))


def install_extension(args: argparse.Namespace) -> int:
    from emulator.extension_files import ExtensionInstallError, install_extension_files

    try:
        target = install_extension_files(args.pg_config)
    except ExtensionInstallError as exc:
        raise UsageError(str(exc)) from exc
    from emulator.extension_files import EXTENSION_NAMES, renewables

    print(f"installed {', '.join(EXTENSION_NAMES)} into {target}")
    if args.renew:
        import psycopg

        from emulator.extension_renewal import renew_databases

        try:
            lines = renew_databases(args.renew, target, renewables())
        except psycopg.Error as exc:
            raise UsageError(f"cannot renew the extensions at --renew: {exc}") from exc
        for line in lines or ["no database holds an extension that another build made"]:
            print(line)
    return 0


# ---------------------------------------------------------------------------------------------
# serve


async def serve(args: argparse.Namespace) -> int:
    from emulator.embedded import EmbeddedPostgres, EmbeddedPostgresError, default_data_dir
    from emulator.engine.extract import RawText
    from emulator.engine_factory import build_engine
    from emulator.flags import defaults as flag_defaults
    from emulator.inspector import with_sql_ops
    from proxy.callback import CallbackServer
    from proxy.listener import ProxyConfig, ProxyServer, Upstream

    stop = _stop_on_signals()
    ssl_context = _tls_context(args.tls_cert, args.tls_key)
    # Before PostgreSQL starts: a bad flag or cassette is reported with nothing to clean up.
    _check_given_files(args)
    _check_port_free(args.host, args.port)  # a second `serve` says so now, not after initdb
    proxy: ProxyServer | None = None
    engine = build_engine(args, lambda: proxy)
    embedded: EmbeddedPostgres | None = None
    exit_status = 0
    loop = asyncio.get_running_loop()
    if args.upstream:
        upstream = await _check_upstream(args.upstream)
    else:
        data_dir = (
            Path(tempfile.mkdtemp(prefix="alloydb-ai-emulator-"))
            if args.ephemeral else (args.data_dir or default_data_dir())
        )
        embedded = EmbeddedPostgres(data_dir, password=args.password, ephemeral=args.ephemeral)
        try:
            await loop.run_in_executor(None, embedded.prepare)
            embedded.launch()  # from this thread, which outlives the server (see launch)
            await loop.run_in_executor(None, embedded.wait_ready)
            if not args.ephemeral:  # a kept data directory: another build may have made it
                await loop.run_in_executor(None, _renew_extension, embedded)
        except EmbeddedPostgresError as exc:
            await loop.run_in_executor(None, embedded.stop)
            raise UsageError(str(exc)) from exc
        except OSError as exc:  # a data directory of another user's, a file it cannot write
            await loop.run_in_executor(None, embedded.stop)
            raise UsageError(f"cannot use the data directory {embedded.data_dir}: {exc}; "
                             "choose another with --data-dir, or --ephemeral") from exc
        upstream = Upstream(
            host="127.0.0.1",
            port=embedded.port,
            unix_socket=None if args.password else embedded.socket_path,
            admin_socket_dir=str(embedded.socket_dir),  # the proxy's own SQL: private socket
        )

    config = ProxyConfig(host=args.host, port=args.port, upstream=upstream, ssl_context=ssl_context,
                         warmup=args.warmup == "on", flags=flag_defaults())
    missing: tuple[str, ...] = () if embedded is not None else await _extensions_missing(upstream)
    if missing:
        from emulator.extension_files import ExtensionEmulation

        config.extension_emulation = ExtensionEmulation(missing)
        print(f"note: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
              "on the upstream server; the proxy creates its objects on CREATE EXTENSION (no "
              "pg_extension row). For a real extension run: alloydb-ai-emulator "
              "install-extension --pg-config <its pg_config>",
              file=sys.stderr, flush=True)
    address = f"{args.host}:{args.port}"
    callback = CallbackServer(
        with_sql_ops(engine.handle, engine.calls),
        lambda pid: proxy is not None and proxy.is_fronted_pid(pid),
        emulator_address=address,
        raw_text_types=(RawText,),
    )
    try:
        await callback.start(args.callback_host, 0)
        if embedded is not None:
            embedded.write_endpoint(callback.conninfo(config.callback_connect_host))
        proxy = ProxyServer(config, callback)
        try:
            await proxy.start()
        except OSError as exc:
            raise _cannot_listen(args.host, args.port, exc) from exc
        metrics = await _start_metrics(args, proxy, engine)
        inspector = await _start_inspector(args, engine)
        user_part = "postgres"
        print(f"ready: accepting connections at postgresql://{user_part}@{_url_host(args.host)}:"
              f"{config.port}/postgres", flush=True)
        if embedded is not None:
            print(f"upstream: postgresql://postgres@127.0.0.1:{embedded.port}/postgres "
                  f"(embedded PostgreSQL, data in {embedded.data_dir})", flush=True)
        print(f"models: {args.models} ({MODEL_MODES[args.models]})", flush=True)
        metrics_port = None if metrics is None else metrics.sockets[0].getsockname()[1]
        for line in startup_banner(args, metrics_port):
            print(line, flush=True)
        freeze_start_up_objects()
        # Calls that go over HTTP: the client (its CA store) is built now, not in the first call.
        preparing = (asyncio.ensure_future(engine.prepare())
                     if args.models in ("live", "record") else None)
        gave_up = await _serve_until_stopped(stop, embedded, proxy)
        if preparing is not None:
            preparing.cancel()
        log.info("shutting down")
        if metrics is not None:
            metrics.close()
        if inspector is not None:
            inspector.close()
        if gave_up is not None:
            from emulator.supervisor import EXIT_POSTGRES_FAILED

            print(f"alloydb-ai-emulator: {gave_up}", file=sys.stderr, flush=True)
            exit_status = EXIT_POSTGRES_FAILED
    finally:
        if proxy is not None:
            await proxy.close()  # each client gets 57P01 first, as from PostgreSQL's shutdown
        await callback.close()
        await engine.aclose()
        if embedded is not None:
            await loop.run_in_executor(None, embedded.stop)
    return exit_status


def _renew_extension(embedded: EmbeddedPostgres) -> None:
    """The emulator's extensions renewed where another build of the emulator made them
    (emulator/extension_renewal.py); each database renewed, or not, is one line on stderr."""
    from emulator.embedded import bin_dir
    from emulator.extension_files import extension_dir, renewables
    from emulator.extension_renewal import renew_databases

    for line in renew_databases(embedded.admin_conninfo(), extension_dir(bin_dir() / "pg_config"),
                                renewables()):
        print(f"note: {line}", file=sys.stderr, flush=True)


def freeze_start_up_objects() -> None:
    """Keep what start-up made (modules, classes, the parser's tables: about 100,000 objects that
    live as long as the process) out of the garbage collector's full collections, which would
    otherwise walk all of it each time, tens of milliseconds, a few times per bulk statement."""
    gc.collect()
    gc.freeze()


async def _serve_until_stopped(stop: asyncio.Event, embedded: Any, proxy: Any) -> str | None:
    """Wait for SIGINT/SIGTERM while supervising the embedded PostgreSQL (supervisor.py); the
    reason the supervisor gave up, if it did."""
    from emulator.supervisor import Supervisor

    waits: set[asyncio.Task[Any]] = {asyncio.ensure_future(stop.wait())}
    supervision = None
    if embedded is not None:
        supervision = asyncio.ensure_future(Supervisor(embedded, proxy).run())
        waits.add(supervision)
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:  # a stop must not look like a crash to the supervisor
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if supervision is not None and supervision in done:
        return str(supervision.result())
    return None


def startup_banner(args: argparse.Namespace, metrics_port: int | None) -> list[str]:
    """What is emulated, what is not, where model calls go; printed after the ready line."""
    from emulator.providers import DISCOVERY_ENGINE_BASE_URL, VERTEX_BASE_URL

    lines = [
        (f"emulated: AlloyDB AI's google_ml_integration {_extension_version()} on stock "
        "PostgreSQL: model registry (google_ml.create_model & co.), secrets, embedding(), "
        "predict_row(), ml_predict_row(), its flags in pg_settings; alloydb_ai_nl "
        f"{_nl_version()} (natural language to SQL: get_sql, execute_nl_query); alloydb_scann "
        "(ScaNN indexes on pgvector's HNSW); parameterized_views (CREATE VIEW ... $@name, "
        "execute_parameterized_query)"),
        ("not emulated: the rest of AlloyDB (columnar engine, ScaNN's own algorithm, IAM database "
        "authentication, the Auth Proxy and connectors, pg_settings beyond the extension's "
        "flags); see docs/differences.md"),
    ]
    if args.models == "fake":
        lines.append("model calls: Vertex AI, OpenAI, Anthropic and Hugging Face models are "
                     "answered by deterministic local fakes (no network, no credentials); "
                     "custom models go to their registered URL")
    elif args.models in ("replay", "replay-or-fake"):
        lines.append(f"model calls: answered from the cassette {args.cassette} (no network, no "
                     "credentials)" + ("; unrecorded ones by the fakes as with --models fake"
                                      if args.models == "replay-or-fake" else
                                      "; an unrecorded call is an error"))
    else:
        vertex = args.vertex_base_url or VERTEX_BASE_URL
        ranking = args.discovery_engine_base_url or DISCOVERY_ENGINE_BASE_URL
        secrets = args.secret_manager_endpoint or "Secret Manager"
        lines.append(f"model calls: LIVE: Vertex AI at {vertex}, ranking at {ranking}, other "
                     f"providers at their registered URLs; secrets from {secrets}"
                     + (f" and {args.secrets_file}" if args.secrets_file else "")
                     + "; Google credentials from Application Default Credentials"
                     + (f"; answers recorded into {args.cassette}" if args.models == "record"
                        else ""))
    if metrics_port is not None:  # the port bound: --metrics-port 0 picks a free one
        lines.append(f"metrics: http://{_url_host(args.host)}:{metrics_port}/metrics")
    return lines


def _nl_version() -> str:
    from emulator.extension_files import default_version

    return default_version("alloydb_ai_nl")


MODEL_MODES = {
    "fake": "answered locally by the built-in fakes",
    "live": "sent to their real endpoints",
    "record": "sent to their real endpoints and recorded",
    "replay": "replayed from a cassette",
    "replay-or-fake": "replayed from a cassette, else faked",
}


def _extension_version() -> str:
    from emulator.extension_build import DEFAULT_VERSION

    return DEFAULT_VERSION


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM. Installed before anything starts, so a signal that
    arrives during startup still ends in a clean shutdown, never a KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _check_port_free(host: str, port: int) -> None:
    """Bind host:port as the proxy will (SO_REUSEADDR, IPv6 only for IPv6) and let go; the
    proxy's own bind, after PostgreSQL has started, stays the last word (this is a race)."""
    import socket

    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except OSError:
        return  # an unknown host: the proxy's bind says so
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise _cannot_listen(host, port, exc) from exc


def _cannot_listen(host: str, port: int, exc: OSError) -> UsageError:
    import errno
    import os

    reason = os.strerror(exc.errno) if exc.errno else str(exc)  # uvloop's strerror is long
    hint = ("; is an emulator already running there? Stop it, or choose another --port"
            if exc.errno == errno.EADDRINUSE else "")
    return UsageError(f"cannot listen on {_url_host(host)}:{port}: {reason}{hint}")


def _check_given_files(args: argparse.Namespace) -> None:
    """A --fake-rules or --secrets-file that cannot be read is said at start-up, not by the
    first model call that needs it (an SQL error that does not name the flag)."""
    if args.fake_rules is not None:
        from emulator.fakes.rules import RulesFileError, load_rules

        try:
            load_rules(args.fake_rules)
        except RulesFileError as exc:
            raise UsageError(f"--fake-rules: {exc}") from exc
    secrets_file = getattr(args, "secrets_file", None)
    if secrets_file is not None:
        from emulator.engine.secrets import SecretsFileError, read_secrets_file

        try:
            read_secrets_file(secrets_file)
        except SecretsFileError as exc:
            raise UsageError(f"--secrets-file: {exc}") from exc


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["postgresql"])  # required by clients using direct TLS (PG 17+)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the TLS certificate or key: {exc}") from exc
    return context


async def _check_upstream(dsn: str) -> Any:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from proxy.listener import Upstream

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"--upstream is not a valid connection string: {exc}") from exc
    host = str(params.get("host") or "127.0.0.1")
    port = int(params.get("port") or 5432)
    upstream = Upstream(
        host=host if not host.startswith("/") else "127.0.0.1",
        port=port,
        unix_socket=f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None,
        admin_user=str(params.get("user") or "postgres"),
        admin_password=str(params["password"]) if params.get("password") else None,
        admin_dbname=str(params.get("dbname") or "postgres"),
        sslmode=str(params.get("sslmode") or "prefer"),
        sslrootcert=str(params["sslrootcert"]) if params.get("sslrootcert") else None,
    )
    try:
        conn = await psycopg.AsyncConnection.connect(upstream.admin_conninfo(), connect_timeout=10)
        await conn.close()
    except psycopg.OperationalError as exc:
        # reachable, perhaps, but refusing: a wrong user or password, a missing database
        raise UsageError(f"cannot connect to the --upstream PostgreSQL: {str(exc).strip()}") from exc
    return upstream


async def _extensions_missing(upstream: Any) -> tuple[str, ...]:
    """The emulator's extensions whose files the upstream server does not have."""
    import psycopg

    from emulator.extension_files import EXTENSION_NAMES

    async with await psycopg.AsyncConnection.connect(upstream.admin_conninfo()) as conn:
        cur = await conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY (%s)", (list(EXTENSION_NAMES),)
        )
        available = {row[0] for row in await cur.fetchall()}
    return tuple(name for name in EXTENSION_NAMES if name not in available)


async def _start_metrics(args: argparse.Namespace, proxy: Any, engine: Any) -> Any:
    if args.metrics_port is None:
        return None
    from emulator.metrics import start_metrics_server

    return await start_metrics_server(args.host, args.metrics_port, proxy, engine)


async def _start_inspector(args: argparse.Namespace, engine: Any) -> Any:
    if args.inspector_port is None or engine.calls is None:
        return None
    from emulator.inspector import start_inspector_server

    server, port = await start_inspector_server(args.host, args.inspector_port, engine.calls)
    print(f"inspector: http://{_url_host(args.host)}:{port}/", flush=True)
    return server


# ---------------------------------------------------------------------------------------------
# env-init


def env_init(args: argparse.Namespace) -> int:
    """Print export lines for the emulator at --host:--port (checked to answer, unless told)."""
    import shlex
    import socket
    from urllib.parse import quote

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(args.host, args.host)
    if not args.no_check:
        try:
            socket.create_connection((host, args.port), timeout=3).close()
        except OSError as exc:
            raise UsageError(
                f"no emulator answers at {_url_host(host)}:{args.port} ({exc.strerror or exc}); "
                "start one with `alloydb-ai-emulator serve`, or pass --host/--port "
                "(or ALLOYDB_AI_EMULATOR_HOST/_PORT) as given to it"
            ) from exc
    auth = quote(args.user, safe="")
    if args.password:
        auth += ":" + quote(args.password, safe="")
    url = f"postgresql://{auth}@{_url_host(host)}:{args.port}/{quote(args.dbname, safe='')}"
    values = {"PGHOST": host, "PGPORT": str(args.port), "PGUSER": args.user,
              "PGDATABASE": args.dbname}
    if args.password:
        values["PGPASSWORD"] = args.password
    values["DATABASE_URL"] = url
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


# ---------------------------------------------------------------------------------------------
# fake-models


async def fake_models(args: argparse.Namespace) -> int:
    from emulator.engine_factory import fake_knobs
    from emulator.fakes.server import start_fake_model_server

    if args.repeat_answers_mb < 0:
        raise UsageError("--repeat-answers-mb must be >= 0 (0 keeps no answers)")
    _check_given_files(args)
    stop = _stop_on_signals()
    try:
        server, port = await start_fake_model_server(
            args.host, args.port, fake_knobs(args),
            repeat_answers_bytes=args.repeat_answers_mb * 1024 * 1024,
            dense_embeddings=args.dense_embeddings)
    except OSError as exc:
        raise _cannot_listen(args.host, args.port, exc) from exc
    freeze_start_up_objects()
    print(f"ready: fake models listening on http://{_url_host(args.host)}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.aclose()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
