"""Allocator settings for the processes that compute features and windows.

Feature panels are many short-lived arrays of 100-200 KB. glibc serves each from a fresh
``mmap`` and unmaps it on free, so every array page-faults again: measured on an 8-symbol batch,
40% of the CPU time was kernel time (700k minor faults per 50 batches). Raising the mmap
threshold and the trim threshold keeps freed memory in the heap for reuse (1.6x faster, no kernel
time). It is process-wide, so only Ray workers and benchmarks call it, never library code paths.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory(mmap_threshold: int = 64 * 2**20, trim_threshold: int = 256 * 2**20) -> bool:
    """Apply the glibc settings once per process; False where the C library is not glibc."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))
        ok = ok and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.debug("mallopt unavailable; keeping the default allocator settings")
    _done = ok
    return ok
