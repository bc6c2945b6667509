"""The serving commands keep what start-up made out of the garbage collector's full collections."""

from __future__ import annotations

import gc
import weakref

from emulator.cli import freeze_start_up_objects


def test_start_up_objects_are_frozen_and_garbage_is_not() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    garbage = weakref.ref(Cycle())  # collected first, not frozen for the life of the process
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > 1000  # this test process's modules and classes
        assert garbage() is None
    finally:
        gc.unfreeze()
