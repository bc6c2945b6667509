"""Supervision of the embedded PostgreSQL: noticed when it dies, restarted, given up on when it
keeps dying.

Plan
----
``Supervisor.run()`` watches the server process (it is the emulator's child: polled every
``POLL_SECONDS``, which also reaps it, so no zombie stays behind). When it exits while the
emulator serves:

1. an error line in the log, with its exit status;
2. the proxy's ``upstream_state`` becomes ``starting``: a client that connects now gets FATAL
   ``57P03`` at once (sessions that were open lost their backends with the server, as with
   PostgreSQL itself);
3. the server starts again with the same data directory, port and socket; PostgreSQL's crash
   recovery replays its write-ahead log, so every committed row is there. A start that fails
   (the dead server's backends may still hold its shared memory for a moment) is retried for up
   to ``RESTART_SECONDS``;
4. once it accepts connections: ``up`` again, and a log line says so.

``MAX_CRASHES`` exits within ``CRASH_WINDOW_SECONDS``, or a restart that never succeeds, end the
supervision: ``run()`` returns the reason, and ``serve`` prints it and exits with status
``EXIT_POSTGRES_FAILED``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import time
from typing import Any

from emulator.embedded import EmbeddedPostgres, EmbeddedPostgresError

log = logging.getLogger("alloydb_ai_emulator.supervisor")

POLL_SECONDS = 0.2
MAX_CRASHES = 3
CRASH_WINDOW_SECONDS = 60.0
RESTART_SECONDS = 60.0
EXIT_POSTGRES_FAILED = 3

UP = "up"
STARTING = "starting"
DOWN = "down"


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class Supervisor:
    def __init__(self, embedded: EmbeddedPostgres, proxy: Any) -> None:
        self.embedded = embedded
        self.proxy = proxy  # has a writable ``upstream_state`` (proxy/listener.py)
        self._crashes: collections.deque[float] = collections.deque()

    async def run(self) -> str:
        """Supervise until cancelled; the reason, when it gives up."""
        while True:
            pid = self.embedded.pid
            status = await self._exited()
            now = time.monotonic()
            self._crashes.append(now)
            while now - self._crashes[0] > CRASH_WINDOW_SECONDS:
                self._crashes.popleft()
            log.error("the embedded PostgreSQL (pid %s) stopped unexpectedly (%s)",
                      pid, describe_exit(status))
            if len(self._crashes) >= MAX_CRASHES:
                self.proxy.upstream_state = DOWN
                return (f"the embedded PostgreSQL stopped {len(self._crashes)} times within "
                        f"{CRASH_WINDOW_SECONDS:.0f} s; giving up. Its log: "
                        f"{self.embedded.log_file}")
            self.proxy.upstream_state = STARTING
            log.warning("restarting the embedded PostgreSQL (crash recovery keeps every "
                        "committed row)")
            reason = await self._restart()
            if reason is not None:
                self.proxy.upstream_state = DOWN
                return reason
            self.proxy.upstream_state = UP
            log.warning("the embedded PostgreSQL serves again (pid %s)", self.embedded.pid)

    async def _exited(self) -> int:
        while True:
            status = self.embedded.exit_status()
            if status is not None:
                return status
            await asyncio.sleep(POLL_SECONDS)

    async def _restart(self) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + RESTART_SECONDS
        last = ""
        while time.monotonic() < deadline:
            # launch() from this (the main) thread: the server's parent-death signal follows
            # the thread that started it (emulator/lifetime.py).
            self.embedded.launch()
            try:
                await loop.run_in_executor(None, self.embedded.wait_ready)
                return None
            except EmbeddedPostgresError as exc:
                last = str(exc)
                log.warning("the embedded PostgreSQL did not start again yet: %s",
                            last.splitlines()[0] if last else "")
                await asyncio.sleep(0.5)
        return f"the embedded PostgreSQL could not be restarted in {RESTART_SECONDS:.0f} s: {last}"
