"""Flow control across the pair: a client that does not read makes PostgreSQL wait, a server
that does not read makes the client wait; the proxy never soaks up a whole stream in memory."""

from __future__ import annotations

import struct
import time
from typing import Any

import psycopg

from tests.support import wire

MB = 1024 * 1024


def backend_state(observer: psycopg.Connection[Any], pid: int) -> tuple[str, str | None, str]:
    row = observer.execute("SELECT state, wait_event, query FROM pg_stat_activity "
                           "WHERE pid = %s", (pid,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def backend_pid_of(replies: list[wire.Reply]) -> int:
    key_data = next(r for r in replies if r.type == b"K")
    return int(struct.unpack_from("!I", key_data.body)[0])


def test_a_client_that_stops_reading_makes_postgresql_wait_to_write(
        emulator: Any, conn: psycopg.Connection[Any]) -> None:
    """If the proxy buffered the whole 256 MB result, the query would finish and go idle."""
    sock, replies = wire.open_session(emulator.host, emulator.port)
    pid = backend_pid_of(replies)
    with sock:
        sql = "SELECT repeat('x', 1048576) FROM generate_series(1, 256)"
        sock.sendall(wire.query(sql))
        for _ in range(3000):
            state, wait_event, current = backend_state(conn, pid)
            if current == sql and (state, wait_event) == ("active", "ClientWrite"):
                break
            assert not (current == sql and state == "idle"), "the proxy took the whole result"
            time.sleep(0.01)
        assert (state, wait_event) == ("active", "ClientWrite")
        # Now read it all: nothing was lost while the pair was paused.
        rows = 0
        while True:
            reply = wire.read_message(sock)
            if reply.type == b"D":
                rows += 1
                assert len(reply.body) == 2 + 4 + MB
            if reply.type == b"Z":
                break
        assert rows == 256
        assert wire.data_values(wire.simple_query(sock, "SELECT 'usable'")) == [[b"usable"]]


def test_a_server_that_stops_reading_makes_the_client_wait_to_send(
        emulator: Any, conn: psycopg.Connection[Any]) -> None:
    """While the backend sleeps it reads nothing; a client streaming a huge message must block
    once the buffers on the way are full, not have the proxy take all of it in memory."""
    sock, replies = wire.open_session(emulator.host, emulator.port)
    pid = backend_pid_of(replies)
    try:
        sock.sendall(wire.query("SELECT pg_sleep(60)"))
        for _ in range(2000):
            if backend_state(conn, pid)[:1] == ("active",):
                break
            time.sleep(0.01)
        total = 512 * MB
        sock.sendall(b"Q" + struct.pack("!I", total + 4))
        chunk = b"-" * MB
        sent = 0
        sock.settimeout(5)
        blocked = False
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except TimeoutError:
            blocked = True
        assert blocked, f"sent all {sent // MB} MB while the server read nothing"
        assert sent < 128 * MB
    finally:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        sock.close()
    assert conn.execute("SELECT 'unaffected'").fetchone() == ("unaffected",)


def test_a_reader_of_a_large_copy_out_gets_every_line_in_order(emulator: Any) -> None:
    # Reads message by message, a few hundred bytes per recv. (No tiny SO_RCVBUF here: set
    # after connect it makes loopback TCP crawl at ~150 KB/s, straight to PostgreSQL too.)
    sock, _ = wire.open_session(emulator.host, emulator.port)
    with sock:
        sock.sendall(wire.query(
            "COPY (SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 50000) g) "
            "TO STDOUT"))
        lines = 0
        data = bytearray()
        while True:
            reply = wire.read_message(sock)
            if reply.type == b"d":
                data += reply.body
            elif reply.type == b"Z":
                break
        for line in bytes(data).split(b"\n")[:-1]:
            number, text = line.split(b"\t")
            lines += 1
            assert int(number) == lines
            assert len(text) == 960
        assert lines == 50000


def test_a_fifty_megabyte_copy_in_arrives_whole(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP TABLE IF EXISTS flow_copy_in")
    conn.execute("CREATE TABLE flow_copy_in (v text)")
    line = ("y" * 1023 + "\n").encode()
    try:
        with conn.cursor().copy("COPY flow_copy_in FROM STDIN") as copy:
            for _ in range(50 * 1024):
                copy.write(line)
        row = conn.execute("SELECT count(*), sum(length(v)) FROM flow_copy_in").fetchone()
        assert row == (50 * 1024, 50 * 1024 * 1023)
    finally:
        conn.execute("DROP TABLE flow_copy_in")
