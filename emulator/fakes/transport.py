"""The fake models as a transport: in process, no HTTP, no credentials.

This is how the fakes plug into the engine, which does not import them: whoever builds the
engine passes `Engine(..., fake=FakeTransport(knobs, read_timeout))` (emulator/engine_factory.py).
`FakeTransport.exchange` answers with `emulator.fakes.models.answer_request`, applying the
fake knobs exactly as the standalone server does (the answer computed at once and handed back
once the latency is up, unless a 429 with Retry-After, a 500, or a 'timeout' that waits out the
read timeout and raises `TransportTimeout` replaces it), so retry and timeout paths behave the
same in process and over HTTP. The
answer is handed back as an already parsed value: no JSON encoding round trip. Its text
embeddings come frozen (`answer_request(..., frozen=True)`, emulator/embedding_literal.py): the
engine thaws them into lists for every caller but the warm-up, which reads only their literals.
"""

from __future__ import annotations

import asyncio
import json
import random

from emulator.engine.errors import SQLSTATE_PROVIDER_ERROR, ModelCallError
from emulator.engine.transport import OutgoingRequest, RawResponse, TransportTimeout
from emulator.fakes.knobs import FakeKnobs, format_retry_after, pick_fault
from emulator.fakes.models import FakeModelError, answer_request, error_for_path
from emulator.fakes.rules import RulesFileError, load_rules


def _error_response(error: FakeModelError, headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(error.status, headers or {}, json.dumps(error.body).encode("utf-8"))


class FakeTransport:
    is_http = False

    def __init__(
        self, knobs: FakeKnobs, read_timeout: float, rng: random.Random | None = None
    ) -> None:
        self._knobs = knobs
        self._read_timeout = read_timeout  # how long a 'timeout' fault waits, as a client would
        self._rng = rng or random.Random()
        # One answer computed at a time, each in its own turn of the event loop: batches that
        # wake together (the same latency) would otherwise all be computed in one turn, and
        # what the first one's caller does next (a warm-up's COPY) would wait for all of them.
        self._turn = asyncio.Lock()

    async def exchange(self, request: OutgoingRequest) -> RawResponse:
        knobs = self._knobs
        loop = asyncio.get_running_loop()
        answered_at = loop.time() + knobs.latency
        # The answer is computed as the request leaves and handed back once its latency is up: a
        # provider works while its caller waits, and so do the fakes (the engine's thread would
        # otherwise sit idle through the first latency of a warm-up, then compute every batch).
        try:
            async with self._turn:
                value = answer_request(request.url, request.body, load_rules(knobs.rules_path),
                                       frozen=True)
                await asyncio.sleep(0)  # held through the turn: the next answer waits for the next
        except (FakeModelError, RulesFileError) as exc:
            failed: FakeModelError | RulesFileError | None = exc
        else:
            failed = None
        if knobs.latency > 0:
            await asyncio.sleep(max(0.0, answered_at - loop.time()))
        fault = pick_fault(knobs, self._rng)
        path = request.url.split("?", 1)[0]
        if fault == "timeout":
            await asyncio.sleep(self._read_timeout)
            raise TransportTimeout("fake timeout")
        if fault == "429":
            error = error_for_path(path, 429, "Fake fault: quota exceeded, retry later.")
            return _error_response(error, {"retry-after": format_retry_after(knobs.retry_after)})
        if fault == "500":
            return _error_response(error_for_path(path, 500, "Fake fault: internal error."))
        if isinstance(failed, FakeModelError):
            return _error_response(failed)
        if failed is not None:
            raise ModelCallError(
                SQLSTATE_PROVIDER_ERROR,
                f'model "{request.model_id}": the fake models\' rules file is invalid',
                str(failed),
            ) from failed
        return RawResponse(200, {}, b"", value)

    async def aclose(self) -> None:
        return None
