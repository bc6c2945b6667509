"""A few lines of the PostgreSQL protocol: messages built byte by byte (the framing tests feed
them to the scanner) and a session over a raw socket, for tests that must send exactly the bytes
a misbehaving client would (no driver lets you send a bad length)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from proxy import protocol as pq

TIMEOUT = 15.0


@dataclass
class Reply:
    type: bytes
    body: bytes

    @property
    def fields(self) -> dict[str, str]:
        return pq.parse_error_fields(self.body)


# -- messages a client or a server sends, built byte by byte


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def query(sql: str) -> bytes:
    return pq.message(b"Q", cstr(sql))


def parse(name: str, sql: str, oids: tuple[int, ...] = ()) -> bytes:
    body = cstr(name) + cstr(sql) + struct.pack("!H", len(oids))
    body += b"".join(struct.pack("!I", oid) for oid in oids)
    return pq.message(b"P", body)


def bind(portal: str, stmt: str, params: list[bytes | None]) -> bytes:
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for value in params:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    body += struct.pack("!H", 0)
    return pq.message(b"B", body)


def describe(kind: bytes, name: str) -> bytes:
    return pq.message(b"D", kind + cstr(name))


def execute(portal: str, max_rows: int = 0) -> bytes:
    return pq.message(b"E", cstr(portal) + struct.pack("!I", max_rows))


SYNC = pq.message(b"S", b"")
FLUSH = pq.message(b"H", b"")
TERMINATE = pq.message(b"X", b"")


def copy_data(payload: bytes) -> bytes:
    return pq.message(b"d", payload)


def data_row(values: list[bytes | None]) -> bytes:
    body = struct.pack("!H", len(values))
    for value in values:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return pq.message(b"D", body)


def parameter_status(key: str, value: str) -> bytes:
    return pq.message(b"S", cstr(key) + cstr(value))


def backend_key_data(pid: int, key: bytes) -> bytes:
    return pq.message(b"K", struct.pack("!I", pid) + key)


def row_description(names: list[str]) -> bytes:
    body = struct.pack("!H", len(names))
    for name in names:
        body += cstr(name) + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
    return pq.message(b"T", body)


def notice_response(text: str) -> bytes:
    return pq.message(pq.NOTICE_RESPONSE, b"SWARNING\x00C01000\x00M" + cstr(text) + b"\x00")


def command_complete(tag: str) -> bytes:
    return pq.message(b"C", cstr(tag))


# -- a session over a socket


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def startup_packet(user: str = "postgres", database: str = "postgres",
                   version: int = pq.PROTOCOL_3_0, params: dict[str, str] | None = None) -> bytes:
    body = struct.pack("!I", version)
    for key, value in {"user": user, "database": database, **(params or {})}.items():
        body += key.encode() + b"\x00" + value.encode() + b"\x00"
    body += b"\x00"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request() -> bytes:
    return struct.pack("!II", 8, pq.SSL_REQUEST_CODE)


def gssenc_request() -> bytes:
    return struct.pack("!II", 8, pq.GSSENC_REQUEST_CODE)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_message(sock: socket.socket) -> Reply:
    header = recv_exactly(sock, 5)
    mtype, length = header[:1], struct.unpack("!I", header[1:])[0]
    return Reply(mtype, recv_exactly(sock, length - 4))


def read_until_ready(sock: socket.socket) -> list[Reply]:
    replies = []
    while True:
        reply = read_message(sock)
        replies.append(reply)
        if reply.type == b"Z":
            return replies


def read_until_closed(sock: socket.socket) -> list[Reply]:
    """Every message until the peer closes; raises socket.timeout if it never does."""
    replies: list[Reply] = []
    while True:
        try:
            reply = read_message(sock)
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            return replies
        replies.append(reply)


def read_until_closed_or_ready(sock: socket.socket) -> list[Reply]:
    """Every message until a ReadyForQuery or until the peer closes."""
    replies: list[Reply] = []
    while not replies or replies[-1].type != b"Z":
        try:
            replies.append(read_message(sock))
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            break
    return replies


def open_session(host: str, port: int, **params: str) -> tuple[socket.socket, list[Reply]]:
    """A trust-authenticated session, ready for a query."""
    sock = connect(host, port)
    sock.sendall(startup_packet(params=params))
    return sock, read_until_ready(sock)


def simple_query(sock: socket.socket, sql: str) -> list[Reply]:
    sock.sendall(query(sql))
    return read_until_ready(sock)


def data_values(replies: list[Reply]) -> list[list[bytes | None]]:
    rows = []
    for reply in replies:
        if reply.type != b"D":
            continue
        (count,) = struct.unpack_from("!H", reply.body, 0)
        offset, row = 2, list[bytes | None]()
        for _ in range(count):
            (size,) = struct.unpack_from("!i", reply.body, offset)
            offset += 4
            if size < 0:
                row.append(None)
            else:
                row.append(reply.body[offset : offset + size])
                offset += size
        rows.append(row)
    return rows
