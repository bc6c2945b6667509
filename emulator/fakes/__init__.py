"""Deterministic fake models: in process (`answer_request`) and as an HTTP server."""

from emulator.fakes.knobs import FakeKnobs
from emulator.fakes.models import FakeModelError, answer_request
from emulator.fakes.server import (
    FakeModelServer,
    ReceivedRequest,
    start_fake_model_server,
)

__all__ = [
    "FakeKnobs",
    "FakeModelError",
    "FakeModelServer",
    "ReceivedRequest",
    "answer_request",
    "start_fake_model_server",
]
