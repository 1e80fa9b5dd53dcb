"""Safe .npy / .npz reading: headers checked before data, sizes before allocation, special files
before opening, and every refusal an ArrayFileError (or NotEnoughMemory) naming the file."""
from __future__ import annotations

import io
import os
import struct
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from designer.engine import network as network_module
from designer.engine.arrays import (ArrayFileError, NpzReader, load_npy, npy_header)
from designer.engine.network import NotEnoughMemory


def npy_bytes(header: dict | str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy file with exactly this header text (padded as NumPy pads it) and data."""
    text = header if isinstance(header, str) else repr(header)
    length_size = 2 if version == 1 else 4
    body = text.encode("latin1")
    pad = -(6 + 2 + length_size + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    return (b"\x93NUMPY" + bytes([version, 0])
            + struct.pack("<H" if version == 1 else "<I", len(body)) + body + data)


def header(shape, descr="<f4", fortran=False):
    return {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}


# ------------------------------------------------------------------------------------ .npy

@pytest.mark.parametrize("array", [
    np.arange(24, dtype=np.float32).reshape(2, 3, 4),
    np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
    np.arange(5, dtype=">i2"),
    np.array(3.5, dtype=np.float32),
    np.zeros((0, 7), np.float32),
    np.array([True, False]),
    np.array(["cat", "dog"]),
])
def test_npy_round_trip(tmp_path, array):
    path = tmp_path / "a.npy"
    np.save(path, array)
    got = load_npy(path)
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    with open(path, "rb") as handle:
        shape, dtype, fortran = npy_header(handle)
    assert shape == array.shape and dtype == array.dtype
    assert fortran == (array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous)


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_npy_later_format_versions(tmp_path, version):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version)
    path = tmp_path / "v.npy"
    path.write_bytes(buffer.getvalue())
    np.testing.assert_array_equal(load_npy(path), array)


def test_tiny_file_claiming_3e17_elements_is_refused_at_once(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_bytes(header((300_000_000_000_000_000,)), b"\0"))
    assert len(path.read_bytes()) == 129
    t0 = time.perf_counter()
    with pytest.raises(ArrayFileError, match=r"huge\.npy: the file is cut short: .*"
                                             r"\(300000000000000000,\).*1 byte follow"):
        load_npy(path)
    assert time.perf_counter() - t0 < 2.0


def test_memory_is_checked_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((1024, 1024), np.float32))  # 4 MiB
    monkeypatch.setattr(network_module, "available_memory", lambda: 2**20)
    with pytest.raises(NotEnoughMemory, match=r"big\.npy: the input array of shape \(1024, 1024\) "
                                              r"\(float32\) needs about 4 MiB, but only 1 MiB is "
                                              r"free"):
        load_npy(path, what="input array")
    monkeypatch.setattr(network_module, "available_memory", lambda: None)  # unknown: go ahead
    assert load_npy(path).shape == (1024, 1024)


def test_check_refuses_before_any_data_is_read(tmp_path):
    path = tmp_path / "short.npy"
    path.write_bytes(npy_bytes(header((3, 1000, 1000)), b"\0" * 8))  # data missing too
    seen = []

    def check(shape, dtype):
        seen.append((shape, dtype))
        raise ValueError("takes (3, 32, 32)")
    with pytest.raises(ValueError, match=r"takes \(3, 32, 32\)"):
        load_npy(path, check)
    assert seen == [((3, 1000, 1000), np.dtype(np.float32))]


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "not a regular file \\(a named pipe \\(FIFO\\)\\)"),
    (lambda p: p.mkdir(), "is a folder, not a NumPy ar"),
])
def test_special_files_are_refused_without_blocking(tmp_path, make, message):
    path = tmp_path / "special.npy"
    make(path)
    errors = []
    thread = threading.Thread(target=lambda: errors.append(_raises(load_npy, path)), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading a special file blocked"
    assert isinstance(errors[0], ArrayFileError) and "special.npy: " + "" in str(errors[0])
    assert __import__("re").search(message, str(errors[0])), str(errors[0])
    with pytest.raises(ArrayFileError, match=message):
        NpzReader(path)


def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test looks at what it was
        return exc
    return None


def test_a_device_is_refused():
    with pytest.raises(ArrayFileError, match=r"zero: not a regular file \(a device\)"):
        load_npy("/dev/zero")


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(ArrayFileError, match=r"absent\.npy: no such file"):
        load_npy(tmp_path / "absent.npy")


@pytest.mark.parametrize("content, message", [
    (npy_bytes(header((2,), "|O"), b"\0" * 16), "Python objects"),
    (npy_bytes(header((2,), [("a", "<f4"), ("b", "<i4")]), b"\0" * 16), "structured"),
    (npy_bytes(header((2,), "|V8"), b"\0" * 16), "structured or raw"),
    (npy_bytes(header((2,), "(2,2)<f4"), b"\0" * 32), "structured or raw"),
    (npy_bytes(header((2,), "<M8[D]"), b"\0" * 16), "datetime64\\[D\\] values, not numbers"),
    (npy_bytes(header((2,), "nonsense"), b"\0" * 16), "unknown value type"),
    (npy_bytes(header((2, -3)), b""), "negative size in shape \\(2, -3\\)"),
    (npy_bytes(header((2.0, 3))), "not a tuple of whole numbers"),
    (npy_bytes(header((1,) * 65)), "65 dimensions"),
    (npy_bytes(header((2**40, 2**40))), "more than any memory can hold"),
    (npy_bytes({"descr": "<f4", "fortran_order": 1, "shape": (1,)}), "fortran_order is 1"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
     "header can't be read"),
    (npy_bytes("__import__('os').system('true')"), "header can't be read"),
    (npy_bytes("(" * 5000 + ")" * 5000, version=2), "header can't be read"),
    (b"\x93NUMPY\x01\x00\xff\xff" + b" " * 100, "cut short inside its header"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b" " * 100, "header is 2,147,483,648 bytes"),
    (b"\x93NUMPY\x09\x00", "format version 9.0"),
    (b"hello world", "not a NumPy array file"),
    (b"PK\x03\x04", "an archive of several arrays"),
])
def test_bad_npy_files_are_refused_with_a_reason(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(ArrayFileError, match="bad\\.npy: .*" + message):
        load_npy(path)


# ------------------------------------------------------------------------------------ .npz

def test_npz_entries_and_read(tmp_path):
    arrays = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
              "conv.bias": np.ones(2, np.float32), "steps": np.array(7)}
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        with NpzReader(path) as archive:
            assert archive.entries == {k: (v.shape, v.dtype) for k, v in arrays.items()}
            assert list(archive) == list(arrays) and len(archive) == 3 and "steps" in archive
            assert archive.nbytes("conv.weight") == 96
            for key, value in arrays.items():
                np.testing.assert_array_equal(archive.read(key), value)
            with pytest.raises(KeyError, match="holds no array 'nope'"):
                archive.read("nope")


def _patch_sizes(data: bytes, size: int) -> bytes:
    """Set the uncompressed size of the (only) member in both its local and central headers."""
    out = bytearray(data)
    local = out.find(b"PK\x03\x04")
    out[local + 22:local + 26] = struct.pack("<I", size)
    central = out.find(b"PK\x01\x02")
    out[central + 24:central + 28] = struct.pack("<I", size)
    return bytes(out)


def _zip(members, method=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _nameless(data: bytes) -> bytes:
    """The one-member archive ``data`` with its member's one-letter name removed (zipfile can't
    write an empty name, but a hostile file can have one)."""
    out = bytearray(data)
    assert struct.unpack("<H", out[26:28])[0] == 1
    out[26:28] = struct.pack("<H", 0)
    del out[30]  # the name in the local header
    central = out.find(b"PK\x01\x02")
    out[central + 28:central + 30] = struct.pack("<H", 0)
    del out[central + 46]
    end = out.find(b"PK\x05\x06")
    size, offset = struct.unpack("<II", out[end + 12:end + 20])
    out[end + 12:end + 20] = struct.pack("<II", size - 1, offset - 1)
    return bytes(out)


def test_small_npz_claiming_1e12_floats_is_refused_fast(tmp_path):
    path = tmp_path / "claims.npz"
    path.write_bytes(_zip([("x.npy", npy_bytes(header((10**12,)), b"\0" * 8))]))
    assert len(path.read_bytes()) < 400
    t0 = time.perf_counter()
    with pytest.raises(ArrayFileError, match=r"claims\.npz: 'x': its header declares shape "
                                             r"\(1000000000000,\) \(float32\).* index gives"):
        NpzReader(path)
    assert time.perf_counter() - t0 < 2.0


def test_index_sizes_that_cannot_be_true_are_refused(tmp_path):
    member = npy_bytes(header((4,)), b"\0" * 16)
    stored = tmp_path / "stored.npz"
    stored.write_bytes(_patch_sizes(_zip([("x.npy", member)]), 2**31))
    with pytest.raises(ArrayFileError, match=r"stored\.npz: 'x': the archive's index is damaged"):
        NpzReader(stored)
    deflated = tmp_path / "deflated.npz"
    deflated.write_bytes(_patch_sizes(_zip([("x.npy", member)], zipfile.ZIP_DEFLATED), 2**31))
    with pytest.raises(ArrayFileError, match=r"compressed data can't hold the 2,147,483,648"):
        NpzReader(deflated)


def zip_bomb(path, values: int) -> None:
    """A deflated member holding ``values`` zero floats: about a thousandth of that on disk."""
    info = zipfile.ZipInfo("x.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(npy_bytes(header((values,))))
            block = bytes(2**20)
            for _ in range(values * 4 // len(block)):
                member.write(block)


def test_zip_bomb_costs_only_its_headers_until_read(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    zip_bomb(path, 16 * 2**20)  # 64 MiB of zeros in about 64 KiB
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with NpzReader(path) as archive:
            assert archive.entries == {"x": ((16 * 2**20,), np.dtype(np.float32))}
            monkeypatch.setattr(network_module, "available_memory", lambda: 32 * 2**20)
            with pytest.raises(NotEnoughMemory, match=r"bomb\.npz: the array 'x' .* needs about "
                                                      r"80 MiB, but only 32 MiB is free"):
                archive.read("x")
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


def test_npz_member_problems(tmp_path):
    good = npy_bytes(header((2,)), b"\0" * 8)
    with pytest.warns(UserWarning, match="Duplicate name"):
        duplicate = _zip([("a.npy", good), ("a.npy", good)])
    cases = [
        (duplicate, "holds two arrays named 'a'"),
        (_zip([("a.npy", good), ("a", good)]), "holds two arrays named 'a'"),
        (_zip([("a.npy", npy_bytes(header((2,), "|O"), b"\0" * 16))]), "'a': holds Python objects"),
        (_zip([("readme.txt", b"hello there")]), "'readme.txt' is not a NumPy array"),
        (_zip([("d/", b"")]), "holds a folder 'd/'"),
        (_nameless(_zip([("a", good)])), "holds a member without a name"),
        (b"PK\x03\x04 and then nothing like a zip", "not a readable NumPy archive \\(.npz\\): "),
        (b"just text", "not a readable NumPy archive \\(.npz archive expected\\)"),
        (npy_bytes(header((2,)), b"\0" * 8), "a single array \\(.npy\\), not a NumPy archive"),
    ]
    for data, message in cases:
        path = tmp_path / "case.npz"
        path.write_bytes(data)
        with pytest.raises(ArrayFileError, match="case\\.npz: .*" + message):
            NpzReader(path)


def test_damaged_data_is_noticed_when_read(tmp_path):
    path = tmp_path / "flipped.npz"
    np.savez(path, x=np.arange(100_000, dtype=np.float32))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte in the middle of the data
    path.write_bytes(bytes(data))
    with NpzReader(path) as archive:  # the header is intact
        with pytest.raises(ArrayFileError, match=r"flipped\.npz: 'x': the archive is damaged.*CRC"):
            archive.read("x")


def test_truncated_archive(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez_compressed(path, x=np.random.default_rng(0).random(10_000))
    path.write_bytes(path.read_bytes()[:-3000])
    with pytest.raises(ArrayFileError, match=r"cut\.npz: not a readable NumPy archive"):
        NpzReader(path)


# ------------------------------------------------------------------------ fuzz (fast subset)

def _valid_files():
    npy = io.BytesIO()
    np.save(npy, np.arange(12, dtype=np.float32).reshape(3, 4))
    npz = io.BytesIO()
    np.savez(npz, a=np.ones(3, np.float32), b=np.arange(4))
    npzc = io.BytesIO()
    np.savez_compressed(npzc, a=np.ones((2, 2), np.float64))
    return [npy.getvalue(), npz.getvalue(), npzc.getvalue()]


VALID = _valid_files()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(VALID) - 1),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                      max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10_000)))
def test_mutated_files_give_an_array_or_a_refusal(tmp_path, which, edits, cut):
    data = bytearray(VALID[which])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[:cut % (len(data) + 1)]
    path = tmp_path / "fuzz.bin"
    path.write_bytes(bytes(data))
    t0 = time.perf_counter()
    for read in (load_npy, _read_all):
        try:
            read(path)
        except (ArrayFileError, NotEnoughMemory) as exc:
            assert "fuzz.bin" in str(exc)
    assert time.perf_counter() - t0 < 5.0


def _read_all(path):
    with NpzReader(path) as archive:
        return {key: archive.read(key) for key in archive}
