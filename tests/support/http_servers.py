"""Real HTTP servers on 127.0.0.1 for the engine tests: scripted providers, OAuth, Secret Manager.

`ScriptedServer(responder)` runs a threading `http.server` (deliberately not the project's own
server, so client and server are independent implementations). `responder(request)` returns
`Reply(status, body, headers)`, or `HANG` to hold the request open until the client leaves;
`server.requests` records what arrived and `server.closed_while_waiting` is set when a client
abandons a held request. `CaptureServer` answers as the providers do (the fakes' `answer_request`)
unless a test scripts its replies.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from emulator.fakes.models import FakeModelError, answer_request


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int] = ("", 0)  # the client's address and port: one per connection

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON value, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)


HANG = object()
Responder = Callable[[Seen], Any]


class ScriptedServer:
    def __init__(self, responder: Responder) -> None:
        self.requests: list[Seen] = []
        self.closed_while_waiting = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    self.client_address[:2],
                )
                outer.requests.append(seen)
                reply = responder(seen)
                if reply is HANG:
                    outer._hang(self)
                    return
                assert isinstance(reply, Reply)
                body = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if reply.headers.get("Transfer-Encoding") == "chunked":  # no length said
                    self.end_headers()
                    for start in range(0, len(body), 4096):
                        piece = body[start:start + 4096]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _handle
            do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _hang(self, handler: BaseHTTPRequestHandler) -> None:
        deadline = time.monotonic() + 30
        sock = handler.connection
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready and not sock.recv(1, 0):
                self.closed_while_waiting.set()
                handler.close_connection = True
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class CaptureServer(ScriptedServer):
    """Answers every POST as the provider its path names would; records every request.

    ``script(path_part, *replies)`` queues replies (``Reply`` or ``HANG``) for the next requests
    whose path contains ``path_part``; when the queue is empty the provider answer comes back.
    ``responder`` may be replaced to answer everything differently.
    """

    def __init__(self) -> None:
        self._scripts: dict[str, deque[Any]] = {}
        self._lock = threading.Lock()
        self.responder: Callable[[Seen], Any] | None = None
        super().__init__(self._respond)
        # http.server writes the head and the body separately: without TCP_NODELAY (inherited by
        # accepted sockets) Nagle and delayed ACKs add 40 ms to every request.
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def script(self, path_part: str, *replies: Any) -> None:
        with self._lock:
            self._scripts.setdefault(path_part, deque()).extend(replies)

    def seen(self, path_part: str) -> list[Seen]:
        return [r for r in list(self.requests) if path_part in r.path]

    def _respond(self, seen: Seen) -> Any:
        with self._lock:
            for part, queue in self._scripts.items():
                if part in seen.path and queue:
                    return queue.popleft()
        if self.responder is not None:
            return self.responder(seen)
        try:
            return Reply(200, answer_request(seen.path, seen.json()))
        except FakeModelError as exc:
            return Reply(exc.status, exc.body)


def token_endpoint(token: str = "local-access-token") -> ScriptedServer:
    """An OAuth token endpoint answering every POST with an access token."""
    return ScriptedServer(
        lambda seen: Reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
    )


def secret_manager(secrets: dict[str, str]) -> ScriptedServer:
    """Secret Manager's REST `GET /v1/{name}:access` for the given path -> value map."""

    def respond(seen: Seen) -> Reply:
        name = seen.path.split("?", 1)[0].removeprefix("/v1/").removesuffix(":access")
        if name not in secrets:
            return Reply(
                404,
                {
                    "error": {
                        "code": 404,
                        "message": f"Secret [{name}] not found",
                        "status": "NOT_FOUND",
                    }
                },
            )
        data = base64.b64encode(secrets[name].encode()).decode()
        return Reply(200, {"name": name, "payload": {"data": data}})

    return ScriptedServer(respond)


def write_service_account(path: str, token_uri: str) -> None:
    """A service-account JSON file with a fresh RSA key and the given token URI."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "type": "service_account",
                "project_id": "sa-project",
                "private_key_id": "test-key",
                "private_key": pem,
                "client_email": "emulator-test@sa-project.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": token_uri,
            },
            f,
        )
