"""The emulator engine: invoke model requests (auth, HTTP, retries, cache, fakes)."""

from emulator.engine.engine import Engine
from emulator.engine.errors import ModelCallError
from emulator.engine.settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "ModelCallError"]
