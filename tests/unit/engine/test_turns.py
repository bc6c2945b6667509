"""A warm-up's batches that arrive together are read one per turn of the event loop (the fakes'
`FakeTransport._turn`, the HTTP client's `ProviderClient._reading`): otherwise every one of
them is read in the same turn, and the first one's next step (its COPY into the caller's cache,
which the statement's rows wait for) waits for all of them."""

from __future__ import annotations

import asyncio
from asyncio import run
from typing import Any

from emulator.engine.http import ProviderClient
from emulator.engine.settings import EngineSettings
from emulator.engine.stats import EngineStats
from emulator.engine.transport import OutgoingRequest, RawResponse
from emulator.fakes import transport as fake_transport
from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.models import answer_request
from emulator.fakes.transport import FakeTransport

BODY = {"instances": [{"content": "a text"}]}


class Ticker:
    """Counts the event loop's turns: one tick per turn while it runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.ticks += 1

    def stop(self) -> None:
        self._task.cancel()


def request(url: str) -> OutgoingRequest:
    return OutgoingRequest("text-embedding-005", url, {}, BODY, "google")


def test_the_fakes_answer_batches_that_wake_together_in_turns_of_their_own(
        monkeypatch: Any) -> None:
    async def scenario() -> list[int]:
        ticker, seen = Ticker(), []
        answer = answer_request

        def counted(*args: Any, **kwargs: Any) -> Any:
            seen.append(ticker.ticks)
            return answer(*args, **kwargs)

        monkeypatch.setattr(fake_transport, "answer_request", counted)
        fake = FakeTransport(FakeKnobs(latency=0.01), 5.0)
        url = ("http://x/v1/projects/p/locations/us-central1/publishers/google/models/"
               "text-embedding-005:predict")
        await asyncio.gather(*(fake.exchange(request(url)) for _ in range(4)))
        ticker.stop()
        return seen

    seen = run(scenario())
    assert len(seen) == 4 and len(set(seen)) == 4  # each in a turn of its own


class ArrivingTogether:
    """A transport whose answers all arrive after the same delay, in one turn: what 16 batches
    sent at once to a provider answering in a fixed time look like to the client."""

    is_http = True

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        await asyncio.sleep(0.01)
        return RawResponse(200, {}, b'{"predictions": []}')

    async def aclose(self) -> None:
        return None


def test_answers_read_from_their_bytes_are_read_in_turns_of_their_own() -> None:
    async def scenario() -> list[int]:
        ticker, seen = Ticker(), []
        client = ProviderClient(EngineSettings(models="live", secret_env={}), EngineStats())

        def read(content: bytes) -> bytes:
            seen.append(ticker.ticks)
            return content

        await asyncio.gather(*(client.call(request("http://x/predict"), ArrivingTogether(), [],
                                           raw=read) for _ in range(4)))
        ticker.stop()
        return seen

    seen = run(scenario())
    assert len(seen) == 4 and len(set(seen)) == 4
