"""Weights files read header-first: keys, shapes and value types are checked against the design
from the members' headers, and sizes against free memory, before any array is read."""
from __future__ import annotations

import os
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

from designer.engine import network as network_module
from designer.engine.network import NotEnoughMemory, build
from designer.engine.weights import (WeightsError, WeightsTooLarge, expected_tensors,
                                     load_weights_file)
from designer.core.analysis import Analysis
from tests.engine.test_arrays import header, npy_bytes
from tests.helpers import chain


def design():
    return chain((3, 8, 8), ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                 ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))


def good_weights():
    return {k: np.asarray(v) for k, v in build(design(), seed=3).weights.items()}


def traced(fn):
    tracemalloc.start()
    try:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - returned for the test to look at
            return exc, tracemalloc.get_traced_memory()[1]
        return None, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_bomb_of_the_wrong_shape_is_refused_before_it_is_decompressed(tmp_path):
    path = tmp_path / "bomb.npz"
    values = 16 * 2**20  # 64 MiB of zeros, about 64 KiB compressed
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in good_weights().items():
            if key != "fc.weight":
                archive.writestr(f"{key}.npy", npy_bytes(header(value.shape), value.tobytes()))
        info = zipfile.ZipInfo("fc.weight.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(npy_bytes(header((2, values // 2))))
            for _ in range(values * 4 // 2**20):
                member.write(bytes(2**20))
    assert path.stat().st_size < 200_000
    error, peak = traced(lambda: build(design(), weights=path))
    assert isinstance(error, WeightsError)
    assert str(error) == ("bomb.npz doesn't fit this design: fc.weight has shape (2, 8388608), "
                          "but this design needs (2, 144)")
    assert peak < 2**20


def test_weights_larger_than_free_memory_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    np.savez(path, **good_weights())
    monkeypatch.setattr(network_module, "available_memory", lambda: 1000)
    error, peak = traced(lambda: build(design(), weights=path))
    assert isinstance(error, WeightsTooLarge)
    assert isinstance(error, WeightsError) and isinstance(error, NotEnoughMemory)
    assert str(error).startswith("w.npz: the weights need about 0 MiB, but only 0 MiB is free")
    assert peak < 2**16
    monkeypatch.setattr(network_module, "available_memory", lambda: None)
    assert set(build(design(), weights=path).weights) == set(good_weights())


def test_value_types_are_checked_from_headers_and_numbers_become_float32(tmp_path):
    weights = good_weights()
    path = tmp_path / "w.npz"
    np.savez(path, **{**weights, "conv.bias": np.array(["a", "b", "c", "d"])})
    with pytest.raises(WeightsError, match=r"w\.npz doesn't fit this design: conv\.bias holds "
                                           r"<U1 values, not numbers"):
        build(design(), weights=path)
    np.savez(path, **{**weights, "fc.weight": weights["fc.weight"].astype(np.float64),
                      "conv.bias": np.arange(4, dtype=np.int16)})
    loaded = load_weights_file(path, expected_tensors(Analysis(design())))
    assert all(v.dtype == np.float32 for v in loaded.values())
    assert list(loaded) == list(expected_tensors(Analysis(design())))
    np.testing.assert_array_equal(loaded["conv.bias"], [0, 1, 2, 3])
    np.savez(path, **{**weights, "fc.bias": np.array([1.0, np.inf], np.float32)})
    with pytest.raises(WeightsError, match=r"fc\.bias holds NaN or infinite values"):
        build(design(), weights=path)


def test_without_shapes_every_array_is_returned_as_stored(tmp_path):
    path = tmp_path / "any.npz"
    np.savez(path, a=np.arange(3, dtype=np.int64), b=np.ones((2, 2), np.float64))
    loaded = load_weights_file(path)
    assert loaded["a"].dtype == np.int64 and loaded["b"].shape == (2, 2)


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.zeros(3)), r"w\.npz: a single array \(\.npy\), not a weights file"),
    (lambda p: os.mkfifo(p), r"w\.npz: not a regular file \(a named pipe \(FIFO\)\)"),
    (lambda p: p.write_bytes(b"PK\x03\x04junk"), r"w\.npz: not a readable weights file \(\.npz\)"),
])
def test_files_that_are_not_weights_archives(tmp_path, make, message):
    path = tmp_path / "w.npz"
    make(path)
    if path.suffix == ".npz" and (tmp_path / "w.npz.npy").exists():  # np.save adds .npy
        (tmp_path / "w.npz.npy").rename(path)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(
        pytest.raises(WeightsError, load_weights_file, path)), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading the weights blocked"
    assert errors and errors[0].match(message)
