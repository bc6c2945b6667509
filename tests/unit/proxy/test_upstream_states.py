"""What a client gets while the proxy's PostgreSQL is being restarted or is gone, and what the
container's health check says then (an in-process proxy whose upstream state is set by hand,
as emulator/supervisor.py sets it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulator import healthcheck
from proxy.callback import CallbackServer
from proxy.listener import ProxyConfig, ProxyServer, Upstream
from tests.support import wire
from tests.support.emulators import free_port


async def _no_engine(message: dict[str, Any]) -> Any:
    raise AssertionError("no model call expected")


def first_reply(port: int) -> wire.Reply:
    with wire.connect("127.0.0.1", port) as sock:
        sock.sendall(wire.startup_packet())
        replies = wire.read_until_closed(sock)
    assert len(replies) == 1, replies
    return replies[0]


@pytest.mark.parametrize(("state", "sqlstate"), [("starting", "57P03"), ("down", "08006")])
def test_new_clients_get_a_fatal_with_a_sqlstate_and_the_health_check_fails(
        state: str, sqlstate: str) -> None:
    async def scenario() -> tuple[wire.Reply, str | None]:
        callback = CallbackServer(_no_engine, lambda pid: False, emulator_address="test")
        # Nothing listens on the upstream port: the embedded server is not there.
        config = ProxyConfig(port=0, upstream=Upstream(port=free_port()))
        proxy = ProxyServer(config, callback)
        await proxy.start()
        proxy.upstream_state = state
        try:
            reply = await asyncio.to_thread(first_reply, config.port)
            health = await asyncio.to_thread(healthcheck.check, "127.0.0.1", config.port)
        finally:
            await proxy.close()
        return reply, health

    reply, health = asyncio.run(scenario())
    assert reply.type == b"E"
    assert (reply.fields["S"], reply.fields["C"]) == ("FATAL", sqlstate)
    assert health is not None and health.startswith(sqlstate)
