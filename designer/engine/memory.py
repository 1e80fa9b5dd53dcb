"""Free memory, and the refusal raised before an allocation that wouldn't fit.

Kept apart from the executor so that the array readers (``arrays.py``) can refuse an oversized
file without importing the executor. Both names are also importable from
``designer.engine.network``, which is where callers (and tests) find and replace
``available_memory``.
"""
from __future__ import annotations

import os

from designer.core.problems import num


class NotEnoughMemory(MemoryError):
    """An allocation would need more memory than the machine has free; the message gives both
    numbers and what to do about it."""


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux: MemAvailable), or None if unknown."""
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
