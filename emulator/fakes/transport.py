"""The fake models as a transport: in process, no HTTP, no credentials.

This is how the fakes plug into the engine, which does not import them: whoever builds the
engine passes `Engine(..., fake=FakeTransport(knobs, read_timeout))` (emulator/engine_factory.py).
`FakeTransport.exchange` answers with `emulator.fakes.models.answer_request` after applying the
fake knobs exactly as the standalone server does (latency, then a 429 with
Retry-After, a 500, or a 'timeout' that waits out the read timeout and raises
`TransportTimeout`), so retry and timeout paths behave the same in process and over HTTP. The
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
        if knobs.latency > 0:
            await asyncio.sleep(knobs.latency)
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
        try:
            async with self._turn:
                value = answer_request(request.url, request.body, load_rules(knobs.rules_path),
                                       frozen=True)
                await asyncio.sleep(0)  # held through the turn: the next answer waits for the next
        except FakeModelError as exc:
            return _error_response(exc)
        except RulesFileError as exc:
            raise ModelCallError(
                SQLSTATE_PROVIDER_ERROR,
                f'model "{request.model_id}": the fake models\' rules file is invalid',
                str(exc),
            ) from exc
        return RawResponse(200, {}, b"", value)

    async def aclose(self) -> None:
        return None
