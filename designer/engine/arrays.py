"""Safe reading of NumPy array files (.npy) and archives of them (.npz).

Nothing here unpickles, and nothing is allocated or decompressed before it has been checked:

- a path that is not a regular file (a FIFO, a device, a folder) is refused after ``os.stat``,
  before it is opened; it is opened non-blocking in case it was swapped for one in between;
- a header is read on its own (at most ``MAX_HEADER_BYTES``), parsed with ``ast.literal_eval``
  and refused if it declares object, void or structured values, negative or absurd dimensions;
- the number of bytes the header declares must be what the file (or the archive's index, for a
  member of an .npz) actually holds, so a 129-byte file claiming 3·10¹⁷ elements is refused at
  once, and a member never costs more than its declared size to decompress;
- the declared size is checked against free memory (``NotEnoughMemory``, with both numbers);
- only then is the array allocated and filled, in chunks.

Every refusal is an ``ArrayFileError`` (a ``ValueError``) whose message names the file.
"""
from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from designer.core.atomic import NotRegularFile, open_regular
from designer.core.problems import num
from designer.engine.memory import NotEnoughMemory, count, mib

MAGIC = b"\x93NUMPY"
#: longest header read; NumPy itself refuses headers over 10,000 bytes unless told otherwise
MAX_HEADER_BYTES = 1 << 16
#: most dimensions an array may have (NumPy's own limit is 64)
MAX_DIMS = 64
#: value kinds an array may hold: booleans, integers, floats, complex numbers, text
ALLOWED_KINDS = "biufcSU"
#: a file is read this many bytes at a time (a member of an archive needs one chunk beside it)
CHUNK_BYTES = 16 * 2**20
#: deflate never compresses better than about 1,032 to 1
DEFLATE_RATIO = 1032

Check = Callable[[tuple[int, ...], np.dtype], Any]


class ArrayFileError(ValueError):
    """A .npy or .npz file that can't be read safely; the message names the file and says why."""


# ---------------------------------------------------------------------------- helpers

def _free_memory() -> int | None:
    # looked up on the executor's module at call time: that is where callers replace it
    from designer.engine import network
    return network.available_memory()


def _check_memory(need: int, label: str, what: str, shape: tuple[int, ...],
                  dtype: np.dtype) -> None:
    free = _free_memory()
    if free is not None and need > free:
        raise NotEnoughMemory(
            f"{label}: the {what} of shape {_shape_text(shape)} ({dtype.name}) needs about "
            f"{mib(need)}, but only {mib(free)} is free; use a smaller array, or close other "
            f"programs")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _bytes_text(n: int) -> str:
    return f"{count(n)} byte{'s' if n != 1 else ''}"


def _open_regular(path: Path, kind: str) -> Any:
    """A binary handle on ``path`` if it is a regular file; otherwise ArrayFileError, decided by
    ``os.stat`` before any open that could block (``kind`` names what it should be)."""
    try:
        return open_regular(path, kind)
    except NotRegularFile as exc:
        raise ArrayFileError(str(exc).replace(str(path), path.name or str(path), 1)) from None


def _read_exact(handle: Any, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the data)."""
    parts = []
    while size > 0:
        part = handle.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _fill(handle: Any, array: np.ndarray) -> int:
    """Read into ``array``'s memory a chunk at a time; returns the number of bytes read."""
    view = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
    done = 0
    total = len(view)
    while done < total:
        got = handle.readinto(view[done:done + min(CHUNK_BYTES, total - done)])
        if not got:
            break
        done += got
    return done


# ---------------------------------------------------------------------------- .npy headers

class _Header:
    __slots__ = ("shape", "dtype", "fortran", "size")  # size: header bytes, magic included

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, fortran: bool, size: int):
        self.shape, self.dtype, self.fortran, self.size = shape, dtype, fortran, size

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _handle_label(handle: Any) -> str:
    name = getattr(handle, "name", None)
    return Path(name).name if isinstance(name, str) and name else "the array file"


def _parse_dtype(descr: Any, label: str) -> np.dtype:
    if isinstance(descr, (list, tuple)):
        raise ArrayFileError(f"{label}: holds structured records, not plain numbers")
    if not isinstance(descr, str) or not descr or len(descr) > 64:
        raise ArrayFileError(f"{label}: its header names no valid value type ({descr!r:.80})")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError, OverflowError, MemoryError):
        raise ArrayFileError(f"{label}: its header names an unknown value type "
                             f"({descr!r:.80})") from None
    if dtype.hasobject:
        raise ArrayFileError(f"{label}: holds Python objects, which are never loaded "
                             f"(only plain numeric arrays)")
    if dtype.subdtype is not None or dtype.fields is not None or dtype.kind == "V":
        raise ArrayFileError(f"{label}: holds structured or raw (void) values, not plain numbers")
    if dtype.kind not in ALLOWED_KINDS or dtype.itemsize == 0:
        raise ArrayFileError(f"{label}: holds {dtype.name} values, not numbers")
    return dtype


def _read_header(handle: Any, label: str) -> _Header:
    start = _read_exact(handle, 8)
    if start[:2] == b"PK":
        raise ArrayFileError(f"{label}: an archive of several arrays (.npz), not one .npy array")
    if len(start) < 8 or start[:6] != MAGIC:
        raise ArrayFileError(f"{label}: not a NumPy array file (.npy)")
    major, minor = start[6], start[7]
    if major == 1:
        length_size, fmt, encoding = 2, "<H", "latin1"
    elif major in (2, 3):
        length_size, fmt, encoding = 4, "<I", "latin1" if major == 2 else "utf8"
    else:
        raise ArrayFileError(f"{label}: NumPy array format version {major}.{minor}, which this "
                             f"program can't read (1.0 to 3.0)")
    raw = _read_exact(handle, length_size)
    if len(raw) < length_size:
        raise ArrayFileError(f"{label}: the file is cut short inside its header")
    (length,) = struct.unpack(fmt, raw)
    if length > MAX_HEADER_BYTES:
        raise ArrayFileError(f"{label}: its header is {num(length)} bytes long, more than the "
                             f"{num(MAX_HEADER_BYTES)} a NumPy array file needs; the file is "
                             f"damaged or not an array")
    text = _read_exact(handle, length)
    if len(text) < length:
        raise ArrayFileError(f"{label}: the file is cut short inside its header")
    try:
        header = ast.literal_eval(text.decode(encoding))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError,
            UnicodeDecodeError):
        raise ArrayFileError(f"{label}: its header can't be read (not NumPy's "
                             f"{{'descr', 'fortran_order', 'shape'}} record)") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ArrayFileError(f"{label}: its header can't be read (not NumPy's "
                             f"{{'descr', 'fortran_order', 'shape'}} record)")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(fortran, bool):
        raise ArrayFileError(f"{label}: its header's fortran_order is {fortran!r:.40}, not "
                             f"True or False")
    if not isinstance(shape, tuple) or not all(type(s) is int for s in shape):
        raise ArrayFileError(f"{label}: its header's shape {shape!r:.80} is not a tuple of "
                             f"whole numbers")
    if len(shape) > MAX_DIMS:
        raise ArrayFileError(f"{label}: its header declares {len(shape)} dimensions, more than "
                             f"the {MAX_DIMS} an array can have")
    if any(s < 0 for s in shape):
        raise ArrayFileError(f"{label}: its header declares a negative size in shape "
                             f"{_shape_text(shape)}")
    dtype = _parse_dtype(header["descr"], label)
    result = _Header(shape, dtype, fortran, 8 + length_size + length)
    if result.nbytes >= 2**62:
        raise ArrayFileError(f"{label}: its header declares an array of shape "
                             f"{_shape_text(shape)} ({dtype.name}), {_bytes_text(result.nbytes)}: "
                             f"more than any memory can hold; the file is damaged")
    return result


def npy_header(handle: Any, *, name: str | None = None) -> tuple[tuple[int, ...], np.dtype, bool]:
    """``(shape, dtype, fortran_order)`` of the .npy data at ``handle``'s position, from its magic
    and header only (the handle is left at the first data byte). ``name`` labels messages
    (default: the handle's file name). Raises ArrayFileError for anything but a plain array of
    numbers or text of a sane shape."""
    header = _read_header(handle, name or _handle_label(handle))
    return header.shape, header.dtype, header.fortran


def _allocate(header: _Header) -> tuple[np.ndarray, np.ndarray]:
    """(buffer to fill in file order, the array it is seen as)."""
    if header.fortran and len(header.shape) > 1:
        buffer = np.empty(header.shape[::-1], dtype=header.dtype)
        return buffer, buffer.transpose()
    buffer = np.empty(header.shape, dtype=header.dtype)
    return buffer, buffer


# ---------------------------------------------------------------------------- .npy files

def load_npy(path: str | os.PathLike, check: Check | None = None,
             what: str = "array") -> np.ndarray:
    """Read a .npy file safely (see the module's notes). ``check(shape, dtype)`` is called once
    the header is read and may raise to refuse the array before any data is read; ``what`` names
    the array in messages ("input array"). Raises ArrayFileError, NotEnoughMemory."""
    path = Path(path)
    label = path.name or str(path)
    with _open_regular(path, "a NumPy array file (.npy)") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = _read_header(handle, label)
        if check is not None:
            check(header.shape, header.dtype)
        available = size - header.size
        if available < header.nbytes:
            raise ArrayFileError(
                f"{label}: the file is cut short: its header declares a {what} of shape "
                f"{_shape_text(header.shape)} ({header.dtype.name}), "
                f"{_bytes_text(header.nbytes)} of data, but only "
                f"{_bytes_text(max(0, available))} follow the header")
        _check_memory(header.nbytes, label, what, header.shape, header.dtype)
        buffer, array = _allocate(header)
        try:
            got = _fill(handle, buffer)
        except OSError as exc:
            raise ArrayFileError(f"{label}: can't be read ({exc.strerror or exc})") from None
        if got < header.nbytes:
            raise ArrayFileError(f"{label}: the file is cut short (it shrank while being read)")
        return array


# ---------------------------------------------------------------------------- .npz archives

class _Member:
    __slots__ = ("info", "header")

    def __init__(self, info: zipfile.ZipInfo, header: _Header):
        self.info, self.header = info, header


#: what zipfile and its decompressors raise on damaged data
_ZIP_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zlib.error, EOFError,
                                                 OSError, NotImplementedError, RuntimeError,
                                                 ValueError, struct.error, IndexError, KeyError,
                                                 OverflowError)
try:  # optional decompressors
    import lzma
    _ZIP_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover - Python built without lzma
    pass


class NpzReader:
    """An .npz archive read safely (see the module's notes), as a context manager::

        with NpzReader("w.npz") as archive:
            archive.entries            # {"conv1.weight": ((10, 3, 5, 5), dtype('float32')), ...}
            archive.read("conv1.weight")

    Opening reads the archive's index and each member's .npy header (only the header's bytes
    are decompressed) and refuses a file that is not a zip archive, a member that is not an
    array or holds Python objects, two members with the same key, and a member whose size in
    the index doesn't match its header. ``read`` checks free memory first and never decompresses
    more than the member's declared size. Keys are member names without ``.npy``, as
    ``numpy.load`` gives them. Raises ArrayFileError, NotEnoughMemory."""

    def __init__(self, path: str | os.PathLike, what: str = "array",
                 kind: str = "NumPy archive") -> None:
        self.path = Path(path)
        self.name = self.path.name or str(self.path)
        self.what = what  # one array, in messages: "array", "tensor"
        self.kind = kind  # the whole file, in messages: "NumPy archive", "weights file"
        self._members: dict[str, _Member] = {}
        self._zip: zipfile.ZipFile | None = None
        self._file = _open_regular(self.path, f"a {self.kind} (.npz)")
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        start = self._file.read(6)
        self._file.seek(0)
        if start == MAGIC:
            raise ArrayFileError(f"{self.name}: a single array (.npy), not a {self.kind} (.npz, "
                                 f"one array per {self.what})")
        if start[:2] != b"PK":
            raise ArrayFileError(f"{self.name}: not a readable {self.kind} (.npz archive "
                                 f"expected)")
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except _ZIP_ERRORS as exc:
            raise ArrayFileError(f"{self.name}: not a readable {self.kind} (.npz): {exc}") from None
        for info in infos:
            self._add(info)

    def _add(self, info: zipfile.ZipInfo) -> None:
        member = info.filename
        key = member[:-4] if member.endswith(".npy") else member
        label = f"{self.name}: {key!r}"
        if not member:
            raise ArrayFileError(f"{self.name}: holds a member without a name; the archive is "
                                 f"damaged")
        if member.endswith("/"):
            raise ArrayFileError(f"{self.name}: holds a folder {member!r}, not only arrays")
        if key in self._members:
            raise ArrayFileError(f"{self.name}: holds two arrays named {key!r}; the archive is "
                                 f"ambiguous")
        if info.flag_bits & 0x1:
            raise ArrayFileError(f"{label} is encrypted; it can't be read")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ArrayFileError(f"{label}: the archive's index is damaged (a stored member of "
                                 f"{_bytes_text(info.file_size)} takes "
                                 f"{_bytes_text(info.compress_size)})")
        if (info.compress_type == zipfile.ZIP_DEFLATED
                and info.file_size > DEFLATE_RATIO * info.compress_size + 1024):
            raise ArrayFileError(f"{label}: the archive's index is damaged "
                                 f"({_bytes_text(info.compress_size)} of compressed data can't "
                                 f"hold the {_bytes_text(info.file_size)} it declares)")
        assert self._zip is not None
        try:
            with self._zip.open(info) as handle:
                header = _read_header(handle, label)
        except ArrayFileError as exc:
            if "not a NumPy array file" in str(exc) or "archive of several" in str(exc):
                raise ArrayFileError(f"{label} is not a NumPy array (.npy)") from None
            raise
        except _ZIP_ERRORS as exc:
            raise ArrayFileError(f"{label}: the archive is damaged ({exc})") from None
        if info.file_size != header.size + header.nbytes:
            raise ArrayFileError(
                f"{label}: its header declares shape {_shape_text(header.shape)} "
                f"({header.dtype.name}), {_bytes_text(header.size + header.nbytes)} with the "
                f"header, but the archive's index gives {_bytes_text(info.file_size)}; the file "
                f"is damaged")
        self._members[key] = _Member(info, header)

    # -- the mapping of keys to headers

    @property
    def entries(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """``{key: (shape, dtype)}`` from the members' headers, in archive order."""
        return {k: (m.header.shape, m.header.dtype) for k, m in self._members.items()}

    def nbytes(self, key: str) -> int:
        """Bytes the array ``key`` takes once read."""
        return self._member(key).header.nbytes

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def _member(self, key: str) -> _Member:
        try:
            return self._members[key]
        except KeyError:
            raise KeyError(f"{self.name} holds no array {key!r}") from None

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, after a check of free memory; decompresses no more than its
        declared size and verifies its checksum."""
        member = self._member(key)
        header = member.header
        label = f"{self.name}: {key!r}"
        need = header.nbytes + min(header.nbytes, CHUNK_BYTES)  # the array and one chunk read
        _check_memory(need, self.name, f"{self.what} {key!r}", header.shape, header.dtype)
        assert self._zip is not None
        buffer, array = _allocate(header)
        try:
            with self._zip.open(member.info) as handle:
                if len(_read_exact(handle, header.size)) < header.size:
                    raise ArrayFileError(f"{label}: the archive is cut short")
                got = _fill(handle, buffer)
                if got < header.nbytes or handle.read(1):
                    raise ArrayFileError(f"{label}: the archive is damaged (the member's data "
                                         f"doesn't match its size)")
        except ArrayFileError:
            raise
        except _ZIP_ERRORS as exc:
            raise ArrayFileError(f"{label}: the archive is damaged ({exc})") from None
        return array

    # -- context manager

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._file is not None:
            self._file.close()
            self._file = None  # type: ignore[assignment]

    def __enter__(self) -> "NpzReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
