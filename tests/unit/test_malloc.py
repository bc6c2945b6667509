"""glibc malloc settings (emulator/malloc.py): applied to this process unless the user set
GLIBC_TUNABLES, and the same settings handed to the embedded server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emulator.embedded import server_environment
from emulator.malloc import SERVER_MALLOC_TUNABLES

PROBE = "from emulator.malloc import keep_freed_memory; print(keep_freed_memory())"


def run_probe(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_settings_apply_to_this_process_unless_the_user_set_their_own() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    assert run_probe(env) == "True"
    assert run_probe({**env, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == "False"


def test_the_server_gets_the_same_settings_unless_the_user_set_their_own() -> None:
    assert server_environment({})["GLIBC_TUNABLES"] == SERVER_MALLOC_TUNABLES
    assert SERVER_MALLOC_TUNABLES == ("glibc.malloc.mmap_threshold=33554432"
                                      ":glibc.malloc.trim_threshold=67108864")
    assert server_environment({"GLIBC_TUNABLES": "x=1"})["GLIBC_TUNABLES"] == "x=1"
