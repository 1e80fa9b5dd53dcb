"""Freed arrays' memory stays with the process for the next pass (no page faults for pages
touched before), and is handed back when free memory runs short, so that it never makes a
pass look as if it won't fit."""
from __future__ import annotations

import resource
import sys

import numpy as np

from designer.engine import memory
from designer.engine.network import build
from tests.helpers import chain

MIB = 2**20
ON_GLIBC = memory._glibc() is not None


def touch_arrays(count: int = 8, size: int = 16 * MIB) -> int:
    """Page faults while ``count`` arrays of ``size`` bytes are made and written (then freed)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.empty(size // 4, np.float32) for _ in range(count)]
    for a in arrays:
        a.fill(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del arrays
    return faults


def test_building_a_network_keeps_freed_memory_where_the_c_library_allows():
    build(chain((1, 4, 4), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3})))
    assert memory._kept.is_set() == ON_GLIBC
    assert memory.keep_freed_memory() == ON_GLIBC
    assert ON_GLIBC == sys.platform.startswith("linux")  # the platform this runs on


def test_a_second_round_of_arrays_reuses_the_pages_of_the_first():
    memory.keep_freed_memory()
    first = touch_arrays()
    second = touch_arrays()
    assert first > 60  # 128 MiB of fresh pages: at least one fault per 2 MiB huge page
    assert second <= first // 10


def resident() -> int:
    """Bytes of this process's memory in RAM."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def test_kept_memory_is_handed_back_when_free_memory_runs_short(monkeypatch):
    memory.keep_freed_memory()
    touch_arrays()  # 128 MiB freed, kept
    assert memory.kept_free_bytes() >= 100 * MIB
    monkeypatch.setattr(memory, "_system_available", lambda: 10_000 * MIB)
    held = resident()
    assert memory.available_memory() == 10_000 * MIB
    assert resident() > held - 10 * MIB  # plenty free: kept for the next pass
    monkeypatch.setattr(memory, "_system_available", lambda: 200 * MIB)
    assert memory.available_memory() == 200 * MIB
    assert resident() < held - 100 * MIB  # more than a quarter of it: handed back
