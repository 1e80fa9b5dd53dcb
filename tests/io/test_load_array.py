"""``--input`` as a .npy array: the header is checked against the Input, the file and free memory
before any data is read, so a crafted header can't make a run allocate what it claims."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from designer.engine.memory import NotEnoughMemory
from designer.io.images import ImageError, load_array
from tests.fuzzing import npy_header


def test_a_tiny_file_claiming_3e17_values_is_refused_at_once(tmp_path):
    path = tmp_path / "claim.npy"
    path.write_bytes(npy_header((3, 10**8, 10**9)))
    assert path.stat().st_size <= 129
    started = time.perf_counter()
    with pytest.raises(ImageError, match=r"claim.npy: has shape \(3, 100000000, 1000000000\)"):
        load_array(path, (3, 8, 8))
    assert time.perf_counter() - started < 10.0  # a guard against reading or allocating it


def test_a_header_of_the_right_shape_with_data_missing_is_refused(tmp_path):
    path = tmp_path / "short.npy"
    path.write_bytes(npy_header((2, 3, 8, 8)) + bytes(100))
    with pytest.raises(ImageError, match="cut short"):
        load_array(path, (3, 8, 8))


def test_a_batch_too_large_for_memory_names_both_numbers(tmp_path, monkeypatch):
    import designer.engine.arrays as arrays

    path = tmp_path / "batch.npy"
    path.write_bytes(npy_header((10**6, 3, 8, 8)) + bytes(16))
    os.truncate(path, path.stat().st_size + 10**6 * 3 * 8 * 8 * 4)  # sparse: no disk used
    monkeypatch.setattr(arrays, "_free_memory", lambda: 50 * 2**20)
    with pytest.raises(NotEnoughMemory, match=r"MiB.*50 MiB"):
        load_array(path, (3, 8, 8))


@pytest.mark.parametrize("shape, message", [((0, 3, 8, 8), "empty batch"),
                                            ((3, 8), r"has shape \(3, 8\)"),
                                            ((1, 1, 3, 8, 8), r"has shape \(1, 1, 3, 8, 8\)")])
def test_wrong_shapes_are_refused_before_reading(tmp_path, shape, message):
    path = tmp_path / "wrong.npy"
    path.write_bytes(npy_header(shape))  # no data at all: the shape is refused first
    with pytest.raises(ImageError, match=message):
        load_array(path, (3, 8, 8))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        load_array(fifo, (3, 8, 8))


def test_valid_arrays_of_any_number_type_come_back_as_float32(tmp_path):
    rng = np.random.default_rng(3)
    for dtype in (np.float64, np.float32, np.int16, np.uint8):
        data = (rng.random((2, 3, 4, 5)) * 100).astype(dtype)
        np.save(tmp_path / "a.npy", data)
        got = load_array(tmp_path / "a.npy", (3, 4, 5))
        assert got.dtype == np.float32 and got.shape == (2, 3, 4, 5)
        np.testing.assert_array_equal(got, data.astype(np.float32))
    np.save(tmp_path / "f.npy", np.asfortranarray(rng.random((3, 4, 5))))
    np.testing.assert_array_equal(load_array(tmp_path / "f.npy", (3, 4, 5))[0],
                                  np.load(tmp_path / "f.npy").astype(np.float32))
