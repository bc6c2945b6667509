"""Child processes that end with the thread that started them.

Operation: `end_with_parent(signum)` returns a ``preexec_fn`` for `subprocess.Popen` that asks
Linux (``prctl(PR_SET_PDEATHSIG)``) to send the child `signum` when the thread that forked it
dies, or None where there is no such call. The embedded PostgreSQL gets SIGINT (its fast
shutdown) when the emulator dies; the pytest plugin's emulator gets SIGTERM (its clean shutdown)
when pytest dies. So a SIGKILL, a crash or a CI timeout leaves no server behind.

Call `Popen` with it from a thread that lives as long as the parent (the main thread): the signal
follows the forking thread, not the process.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent(signum: int) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        # Runs in the child after any uid change (which would clear it), just before exec.
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call above
            os._exit(1)

    return set_parent_death_signal
