"""Build the engine the callback endpoint hands requests to, from the command-line flags."""

from __future__ import annotations

import argparse
from typing import Any


class EngineUnavailable(Exception):
    sqlstate = "0A000"

    def __init__(self) -> None:
        super().__init__("the model engine is not available in this build")
        self.message = str(self)
        self.detail = None
        self.hint = None


class _NoEngine:
    async def invoke_request(self, request: dict[str, Any]) -> Any:
        raise EngineUnavailable()

    async def aclose(self) -> None:
        return None


def build_engine(args: argparse.Namespace) -> Any:
    return _NoEngine()


def fake_knobs(args: argparse.Namespace) -> Any:
    return None
