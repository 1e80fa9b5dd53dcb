"""Free memory, and the refusal raised before an allocation that wouldn't fit.

Kept apart from the executor so that the array readers (``arrays.py``) can refuse an oversized
file without importing the executor. Both names are also importable from
``designer.engine.network``, which is where callers (and tests) find and replace
``available_memory``.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading

from designer.core.problems import num


class NotEnoughMemory(MemoryError):
    """An allocation would need more memory than the machine has free; the message gives both
    numbers and what to do about it."""


#: glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: arrays up to this size come from the heap (glibc's largest mmap threshold on 64 bits) ...
HEAP_ARRAY_BYTES = 32 * 2**20
#: ... and this much freed memory stays with the process for the next pass
KEPT_FREE_BYTES = 2**31 - 1
#: heap memory kept free beyond this share of the free memory is handed back before measuring
KEPT_SHARE = 0.25

_libc_lock = threading.Lock()
_libc: list = []  # [glibc or None], once looked up


def _glibc():
    with _libc_lock:
        if not _libc:
            lib = None
            if sys.platform.startswith("linux"):
                try:
                    candidate = ctypes.CDLL(None)
                    if all(hasattr(candidate, f) for f in ("mallopt", "malloc_trim",
                                                            "mallinfo2")):
                        lib = candidate
                except OSError:
                    lib = None
            _libc.append(lib)
        return _libc[0]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_kept = threading.Event()


def keep_freed_memory() -> bool:
    """Let the process keep the memory of freed arrays for the next pass (glibc: arrays up to
    HEAP_ARRAY_BYTES from the heap, up to KEPT_FREE_BYTES of freed heap not handed back):
    a pass then writes into pages it has touched before instead of faulting in (and zeroing)
    fresh ones, about 1 GB of them for ResNet-18 at batch 32 (a quarter of its time in the
    kernel). :func:`available_memory` hands the kept memory back when memory runs short.
    Done once per process; False where the C library offers no such control."""
    lib = _glibc()
    if lib is None:
        return False
    if not _kept.is_set():
        with _libc_lock:
            if not _kept.is_set():
                lib.mallopt(_M_MMAP_THRESHOLD, HEAP_ARRAY_BYTES)
                lib.mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES)
                _kept.set()
    return True


def kept_free_bytes() -> int:
    """Bytes of freed memory in the process's heap (glibc's free chunks; 0 where unknown).
    After :func:`release_freed_memory` the pages of free chunks amid the heap are handed back
    but the chunks stay listed, so this falls only by what lay at the heap's top: measure
    what went back by the process's resident memory (/proc/self/statm), not by this."""
    lib = _glibc()
    if lib is None:
        return 0
    lib.mallinfo2.restype = _MallInfo2
    return int(lib.mallinfo2().fordblks)


def release_freed_memory() -> bool:
    """Hand the freed memory the process keeps back to the system (False where unknown)."""
    lib = _glibc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux: MemAvailable), or None if unknown.
    Freed memory the process keeps for reuse (see :func:`keep_freed_memory`) is handed back
    first when it is more than a quarter of that, so it never makes memory look short (when
    memory is that short, every call hands back again what a pass took up since)."""
    free = _system_available()
    if free is not None and _kept.is_set() and kept_free_bytes() > KEPT_SHARE * free:
        release_freed_memory()
        free = _system_available()
    return free


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def mib(n: int) -> str:
    """Bytes as whole MiB with thousands separators ("12,345 MiB"); exact integer arithmetic, so
    sizes too large for a float (shapes multiply freely) still print."""
    n = max(0, int(n))
    whole = (n + 2**19) // 2**20
    if whole >= 10**15:
        digits = str(whole)
        return f"{digits[0]}.{digits[1]}e{len(digits) - 1} MiB"
    return f"{num(whole)} MiB"


def count(n: int) -> str:
    """A possibly astronomical count with thousands separators, or as 1.2e34 when longer than
    that is readable."""
    n = int(n)
    if abs(n) >= 10**18:
        digits = str(abs(n))
        return f"{'-' if n < 0 else ''}{digits[0]}.{digits[1]}e{len(digits) - 1}"
    return num(n)
