"""glibc malloc settings for the processes that move embeddings in bulk: ours and the server's.

A warm-up moves its batches through each process as buffers of 1-4 MB (a provider's answer, the
binary values of 250 embeddings, the COPY data, the batch's literals in the server). With
glibc's defaults, each block over 128 KB is mapped when allocated, touched page by page and
unmapped when freed: the embedded server spent 17% of a dense backfill's time in page faults
(emulator/embedded.py), and packing one batch's binary values here took 2.5 ms instead of
0.7 ms. So blocks of up to 32 MB (glibc's largest dynamic threshold) come from the heap, which
is trimmed only past 64 MB of free space at its top: a process may hold up to 64 MB it has
freed until it allocates again or exits.

Operations: ``SERVER_MALLOC_TUNABLES``, the same settings as the ``GLIBC_TUNABLES`` of a child
process (the embedded server); ``keep_freed_memory()``, applied to this process (``serve`` and
``fake-models`` call it first). A ``GLIBC_TUNABLES`` the user set wins in both; elsewhere than
glibc nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024
SERVER_MALLOC_TUNABLES = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}"
                          f":glibc.malloc.trim_threshold={TRIM_THRESHOLD}")
_M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Apply the settings to this process; False where they were not (the user's
    GLIBC_TUNABLES, or not glibc)."""
    if "GLIBC_TUNABLES" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
