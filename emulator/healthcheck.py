"""The container's health check: ``python -m emulator.healthcheck`` exits 0 only when the
emulator takes sessions, that is when its PostgreSQL does too.

``pg_isready`` cannot tell: libpq counts any error with a SQLSTATE other than 57P03 as "the
server is up", and the proxy answers 08006 when its PostgreSQL is gone. So this sends a
StartupMessage to ``127.0.0.1:$ALLOYDB_AI_EMULATOR_PORT`` (5432) and reads the first answer:

- an authentication request (trust, password, SCRAM): healthy, exit 0;
- an ErrorResponse of class 28 (authentication) or 3D000 (no such database): PostgreSQL
  itself answered, healthy, exit 0;
- any other ErrorResponse (57P03 while the embedded server restarts, 08006 while it is gone),
  no answer within 5 seconds, or no listener: unhealthy, exit 1, with the reason on stderr.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

TIMEOUT_SECONDS = 5.0


def _startup() -> bytes:
    body = struct.pack("!I", 196608) + b"user\x00postgres\x00database\x00postgres\x00"
    body += b"application_name\x00alloydb-ai-emulator-healthcheck\x00\x00"
    return struct.pack("!I", len(body) + 4) + body


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed without an answer")
        data += chunk
    return data


def check(host: str, port: int) -> str | None:
    """None when healthy, else why not."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as sock:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.sendall(_startup())
            header = _read_exactly(sock, 5)
            (length,) = struct.unpack("!I", header[1:])
            body = _read_exactly(sock, min(max(length - 4, 0), 64 * 1024))
    except OSError as exc:
        return f"no answer from {host}:{port}: {exc}"
    if header[:1] == b"R":
        return None
    if header[:1] != b"E":
        return f"unexpected answer {header[:1]!r}"
    fields = {part[:1]: part[1:].decode("utf-8", "replace") for part in body.split(b"\x00") if part}
    code = fields.get(b"C", "")
    if code.startswith("28") or code == "3D000":
        return None
    return f"{code}: {fields.get(b'M', '')}"


def main() -> int:
    port = int(os.environ.get("ALLOYDB_AI_EMULATOR_PORT") or 5432)
    problem = check("127.0.0.1", port)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
