"""Hostile input for the command line: mutated design files for ``summary`` and crafted arrays,
archives and images for ``run``, and a harness that runs a command in-process and tells whether it
behaved (a message and one of the contract's exit codes, quickly, never a traceback).

Used by tests/test_fuzz.py (a fast subset, driven by hypothesis) and benchmarks/fuzz_inputs.py
(thousands of cases, with timings and peak memory). Everything is drawn from a ``random.Random``
so that a case is remade from its seed.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import random
import resource
import signal
import struct
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from designer import cli
from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.io.design_file import load_design

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(p for p in (ROOT / "resources" / "templates").glob("*.json")
                   if p.name != "index.json")
TEMPLATE_DATA = [json.loads(p.read_text(encoding="utf-8")) for p in TEMPLATES]

#: templates whose forward pass takes a moment (below 100 M mult-adds)
SMALL_TEMPLATE_DATA = [d for d in TEMPLATE_DATA
                       if Analysis(load_design(d)).totals()["macs"] < 100_000_000]

BIG = 2**31 - 1
#: parameter values a careless user or a hostile file might hold
EXTREMES: list[Any] = [
    0, -1, 1, 2, 3, 7, 64, BIG, BIG + 1, 2**63, 10**8, 10**400, -BIG, 1.5, 3.0, 1e308, -0.0, 1e-320,
    True, False, None, "same", "valid", "SAME", "", "x" * 5000, "\u00e9", [], [1], [1, 2, 3],
    [BIG, 1], [1, BIG], [0, 0], [2, 0], [3, "3"], {"a": 1}, [[1, 2]], [True, 2],
]
TYPES = list(LAYER_TYPES) + ["conv2d", "Conv2D", "Relu", "", "Transformer", "Input "]


# --------------------------------------------------------------------------- design files

def _ids(data: dict) -> list[str]:
    return [n.get("id") for n in data.get("nodes", []) if isinstance(n, dict)
            and isinstance(n.get("id"), str)]


def _set_param(data: dict, rng: random.Random) -> None:
    nodes = [n for n in data["nodes"] if isinstance(n, dict)]
    node = rng.choice(nodes)
    layer = LAYER_TYPES.get(node.get("type"))
    names = [p.name for p in layer.params] if layer is not None and layer.params else []
    name = rng.choice(names + ["in_channels", "bogus"]) if rng.random() < 0.9 and names else \
        rng.choice(["kernel_size", "stride", "in_channels", "x"])
    params = node.setdefault("params", {})
    if not isinstance(params, dict):
        node["params"] = params = {}
    params[name] = rng.choice(EXTREMES)


def _huge_input(data: dict, rng: random.Random) -> None:
    for node in data["nodes"]:
        if isinstance(node, dict) and node.get("type") == "Input":
            key = rng.choice(["channels", "height", "width", "all"])
            value = rng.choice([BIG, 100_000, 20_000, 4096, 1, 2**20])
            params = node.setdefault("params", {})
            for k in (["channels", "height", "width"] if key == "all" else [key]):
                params[k] = value
            return


def _add_edge(data: dict, rng: random.Random) -> None:
    ids = _ids(data)
    if ids:
        edge = [rng.choice(ids), rng.choice(ids)]
        if edge not in data["edges"]:
            data["edges"].append(edge)


def _remove_edge(data: dict, rng: random.Random) -> None:
    if data["edges"]:
        data["edges"].pop(rng.randrange(len(data["edges"])))


def _remove_node(data: dict, rng: random.Random) -> None:
    if data["nodes"]:
        node = data["nodes"].pop(rng.randrange(len(data["nodes"])))
        if rng.random() < 0.8 and isinstance(node, dict):  # else: edges naming it stay
            data["edges"] = [e for e in data["edges"] if node.get("id") not in e]


def _retype(data: dict, rng: random.Random) -> None:
    node = rng.choice(data["nodes"])
    if isinstance(node, dict):
        node["type"] = rng.choice(TYPES)


def _rename(data: dict, rng: random.Random) -> None:
    node = rng.choice(data["nodes"])
    if isinstance(node, dict):
        node["id"] = rng.choice(["", "in\ud800", "\udcff", "a" * 10_000, "conv1", "input", 5,
                                 None, "réseau ✓", "../../etc/passwd", "a/b", "con"])


def _duplicate(data: dict, rng: random.Random) -> None:
    data["nodes"].append(copy.deepcopy(rng.choice(data["nodes"])))


def _top_level(data: dict, rng: random.Random) -> None:
    key = rng.choice(["format", "version", "name", "nodes", "edges", "extra"])
    if rng.random() < 0.3 and key in data:
        del data[key]
    else:
        data[key] = rng.choice([None, 0, 2, 1, "1", 1e9, "cnn-designer", [], {}, "x", -1, True])


def _long_chain(data: dict, rng: random.Random) -> None:
    """A long straight chain of cheap layers, sometimes closed into a cycle."""
    n = rng.choice([500, 2000, 5000])
    kind = rng.choice(["ReLU", "Conv2d", "Add"])
    params = {"out_channels": 2, "kernel_size": 1} if kind == "Conv2d" else {}
    data["nodes"] = [{"id": "input", "type": "Input",
                      "params": {"channels": 2, "height": 4, "width": 4}}]
    data["nodes"] += [{"id": f"n{i}", "type": kind, "params": dict(params)} for i in range(n)]
    chain = ["input"] + [f"n{i}" for i in range(n)]
    data["edges"] = [[a, b] for a, b in zip(chain, chain[1:])]
    if rng.random() < 0.5:  # close a cycle over most of it
        data["edges"].append([chain[-1], chain[rng.randrange(1, max(2, n // 10))]])


def _many_cycles(data: dict, rng: random.Random) -> None:
    rings = rng.choice([10, 300])
    size = rng.choice([2, 3, 10])
    data["nodes"] = [{"id": "input", "type": "Input",
                      "params": {"channels": 1, "height": 8, "width": 8}}]
    data["edges"] = []
    for r in range(rings):
        ids = [f"r{r}_{i}" for i in range(size)]
        data["nodes"] += [{"id": i, "type": "ReLU"} for i in ids]
        data["edges"] += [[a, b] for a, b in zip(ids, ids[1:] + ids[:1])]
        data["edges"].append(["input", ids[0]])


STRUCTURED: list[Callable[[dict, random.Random], None]] = [
    _set_param, _set_param, _set_param, _huge_input, _add_edge, _remove_edge, _remove_node,
    _retype, _rename, _duplicate, _top_level, _long_chain, _many_cycles,
]


def _byte_mutation(text: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:  # truncated
        return text[:rng.randrange(len(text) + 1)]
    if kind == 1:  # a flipped byte
        i = rng.randrange(len(text))
        return text[:i] + bytes([text[i] ^ (1 << rng.randrange(8))]) + text[i + 1:]
    if kind == 2:  # garbage inserted
        i = rng.randrange(len(text) + 1)
        return text[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))) + text[i:]
    if kind == 3:  # a number replaced with a JSON extension or a huge literal
        i = text.find(b":", rng.randrange(len(text)))
        if i < 0:
            return text
        j = i + 1
        while j < len(text) and text[j:j + 1] in b" -0123456789.":
            j += 1
        token = rng.choice([b" NaN", b" Infinity", b" -Infinity", b" 1e999", b" " + b"9" * 5000])
        return text[:i + 1] + token + text[j:]
    if kind == 4:  # deeply nested
        depth = rng.choice([100, 10_000, 200_000])
        return b'{"format": "cnn-designer", "version": 1, "nodes": ' + b"[" * depth + b"]" * depth \
            + b', "edges": []}'
    if kind == 5:  # not text
        return rng.choice([b"\xff\xfe\x00\x00", b"\x00" * 100, bytes(range(256)), b"", b"   "])
    return b"\xef\xbb\xbf" + text  # a byte-order mark (allowed)


def design_case(rng: random.Random, templates: list[dict] | None = None) -> bytes:
    """One mutated design file (of one of ``templates``, by default all of them), as bytes."""
    data = copy.deepcopy(rng.choice(templates or TEMPLATE_DATA))
    for _ in range(rng.randrange(0, 4)):  # none: a valid template, with a mutated text below
        if not isinstance(data.get("nodes"), list) or not data["nodes"] \
                or not isinstance(data.get("edges"), list):
            break
        rng.choice(STRUCTURED)(data, rng)
    try:
        text = json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        text = b"{}"
    if rng.random() < 0.15:
        text = _byte_mutation(text, rng)
    return text


# --------------------------------------------------------------------------- arrays and images

def npy_header(shape: Any, descr: str = "<f4", fortran: bool = False, version: int = 1,
               raw_header: str | None = None) -> bytes:
    """A .npy header (magic, version, length, dict) exactly as NumPy writes one, for any shape."""
    header = raw_header if raw_header is not None else \
        f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"
    body = header.encode("latin1")
    fmt, size = ("<H", 2) if version == 1 else ("<I", 4)
    total = 6 + 2 + size + len(body) + 1
    pad = (64 - total % 64) % 64
    body = body + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(body)) + body


def npy_case(rng: random.Random, shape: tuple[int, int, int]) -> bytes:
    """A crafted .npy for ``run --input`` on an Input of ``shape`` (C, H, W)."""
    c, h, w = shape
    kind = rng.randrange(12)
    if kind == 0:  # a header claiming 3·10¹⁷ elements
        return npy_header((3, 10**8, 10**9))
    if kind == 1:  # right shape, data missing
        return npy_header((1, c, h, w)) + b"\x00" * rng.randrange(c * h * w * 4)
    if kind == 2:  # a huge batch of the right shape
        return npy_header((rng.choice([10**6, 10**9, 2**40]), c, h, w))
    if kind == 3:  # pickled objects
        return npy_header((2,), descr="|O") + b"\x80\x04N."
    if kind == 4:  # a structured or odd dtype
        return npy_header((c, h, w), descr=rng.choice(["|V8", "<U4", "|S3", "<c8", "|b1", ">f8"]))
    if kind == 5:  # garbage header
        return npy_header(None, raw_header=rng.choice([
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }",
            "{'descr': '<f4', 'shape': (3,), }", "__import__('os')", "{" * 2000,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 'a'), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 400 + ",), }"]))
    if kind == 6:  # a header length past the end of the file
        return b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
    if kind == 7:  # non-finite values
        x = np.full((c, h, w), rng.choice([np.nan, np.inf, -np.inf, 3e38]), np.float32)
        return _npy_bytes(x)
    if kind == 8:  # fortran order, right shape, valid data
        return _npy_bytes(np.asfortranarray(np.zeros((1, c, h, w), np.float32)))
    if kind == 9:  # a wrong shape
        return _npy_bytes(np.zeros(rng.choice([(c, h), (c + 1, h, w), (2, 2, c, h, w)]), np.float32))
    if kind == 10:  # float64 and integers are fine (used as they are)
        return _npy_bytes(np.ones((2, c, h, w), rng.choice([np.float64, np.int16, np.uint8])))
    return b"\x93NUMPY" + bytes(rng.randrange(256) for _ in range(rng.randrange(40)))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def zip_bomb(key: str, values: int, header_shape: Any | None = None) -> bytes:
    """An .npz whose member ``key`` is a .npy of ``values`` float32 zeros, deflated: a few
    kilobytes per hundred megabytes."""
    header = npy_header(header_shape if header_shape is not None else (values,))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        with archive.open(zipfile.ZipInfo(f"{key}.npy"), "w", force_zip64=True) as member:
            member.write(header)
            chunk = bytes(1 << 20)
            left = values * 4
            while left > 0:
                member.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    return out.getvalue()


def lying_zip(key: str, header_shape: Any, declared: int, actual_values: int) -> bytes:
    """An .npz whose member's declared uncompressed size is ``declared`` bytes while its
    stream holds a header and ``actual_values`` zeros."""
    payload = npy_header(header_shape) + bytes(actual_values * 4)
    data = zlib.compress(payload, 9)[2:-4]  # raw deflate
    name = f"{key}.npy".encode()
    crc = zlib.crc32(payload)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data),
                        declared & 0xFFFFFFFF, len(name), 0) + name
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                          len(data), declared & 0xFFFFFFFF, len(name), 0, 0, 0, 0, 0, 0) + name
    body = local + data
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + end


def npz_case(rng: random.Random, tensors: dict[str, tuple[int, ...]]) -> bytes:
    """A crafted weights archive for ``run --weights`` on a design with ``tensors``."""
    keys = list(tensors)
    key = rng.choice(keys)
    kind = rng.randrange(9)
    if kind == 0:  # a member claiming 10¹² floats, 363 bytes in all
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(f"{key}.npy", npy_header((10**6, 10**6)))
        return out.getvalue()
    if kind == 1:  # a zip bomb: small file, big member, with a header that claims it
        return zip_bomb(key, rng.choice([2**22, 2**24]))
    if kind == 2:  # a zip bomb whose header claims a small array
        return zip_bomb(key, 2**22, header_shape=tensors[key])
    if kind == 3:  # a member whose declared size lies
        return lying_zip(key, tensors[key], rng.choice([0, 10, 2**32 - 1]), 2**20)
    if kind == 4:  # pickled member
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(f"{key}.npy", npy_header((1,), descr="|O") + b"\x80\x04N.")
        return out.getvalue()
    if kind == 5:  # every key, one of them mis-shaped
        arrays = {k: np.zeros(s, np.float32) for k, s in tensors.items()}
        arrays[key] = np.zeros(tuple(d + 1 for d in tensors[key]), np.float32)
        return _npz_bytes(arrays)
    if kind == 6:  # many unexpected keys
        return _npz_bytes({f"x{i}": np.zeros(1, np.float32) for i in range(rng.choice([1, 5000]))})
    if kind == 7:  # truncated archive
        whole = _npz_bytes({k: np.zeros(s, np.float32) for k, s in tensors.items()})
        return whole[:rng.randrange(len(whole))]
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, idat: bytes = b"", color: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + (_png_chunk(b"IDAT", idat) if idat else b"") + _png_chunk(b"IEND", b""))


def image_case(rng: random.Random) -> tuple[str, bytes]:
    """A crafted image file ``(suffix, bytes)`` for ``run --input``."""
    kind = rng.randrange(9)
    if kind == 0:  # a PNG claiming a huge size
        w, h = rng.choice([(BIG, BIG), (100_000, 100_000), (60_000, 1), (1, 2**30), (20_000, 20_000)])
        return ".png", png_header(w, h, zlib.compress(b"\x00" * 64))
    if kind == 1:  # a valid small PNG
        w, h = rng.choice([(1, 1), (7, 3), (64, 64)])
        raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(3 * w)) for _ in range(h))
        return ".png", png_header(w, h, zlib.compress(raw))
    if kind == 2:  # a zero-sized PNG
        return ".png", png_header(0, 0)
    if kind == 3:  # a GIF claiming 65535 × 65535
        return ".gif", (b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00"
                        + b",\x00\x00\x00\x00" + struct.pack("<HH", 65535, 65535) + b"\x00\x02\x02D\x01\x00;")
    if kind == 4:  # a BMP claiming a huge size
        w, h = rng.choice([(50_000, 50_000), (2**31 - 1, 1), (1, -2**31)])
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0)
        return ".bmp", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info
    if kind == 5:  # a JPEG start with a huge frame
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65000, 65000, 1) + b"\x01\x11\x00"
        return ".jpg", b"\xff\xd8" + sof + b"\xff\xd9"
    if kind == 6:  # random bytes named as an image
        return rng.choice([".png", ".jpg", ".bmp", ".webp"]), bytes(
            rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    if kind == 7:  # a PNG truncated in the middle of its data
        raw = b"".join(b"\x00" + b"\x80" * 3 * 32 for _ in range(32))
        whole = png_header(32, 32, zlib.compress(raw))
        return ".png", whole[:rng.randrange(20, len(whole))]
    return ".txt", b"not an image"


# --------------------------------------------------------------------------- the harness

#: warnings Python does not show by default (a user never sees them)
QUIET_WARNINGS = (ResourceWarning, DeprecationWarning, PendingDeprecationWarning, ImportWarning)


class _Overtime(BaseException):
    """Raised by the watchdog in a command that runs far too long (not an Exception, so no
    handler in the command catches it)."""


@dataclass
class Outcome:
    argv: list[str]
    status: int | None
    seconds: float
    stderr: str
    stdout_bytes: int
    escaped: str | None = None  # an exception that left main(), as text
    overtime: bool = False
    warnings: list[str] = field(default_factory=list)  # Python warnings a user would see

    @property
    def traceback(self) -> bool:
        """A traceback (or the last guard's bug report) reached the user."""
        return (self.escaped is not None or "Traceback (most recent call last)" in self.stderr
                or "this is a bug" in self.stderr.lower() or bool(self.warnings))

    @property
    def ok(self) -> bool:
        return not self.traceback and not self.overtime and self.status in (0, 1, 2)


@dataclass
class Tally:
    cases: int = 0
    by_status: dict[Any, int] = field(default_factory=dict)
    failures: list[Outcome] = field(default_factory=list)
    slow: list[Outcome] = field(default_factory=list)
    longest: float = 0.0

    def add(self, outcome: Outcome, limit: float) -> None:
        self.cases += 1
        self.by_status[outcome.status] = self.by_status.get(outcome.status, 0) + 1
        self.longest = max(self.longest, outcome.seconds)
        if not outcome.ok:
            self.failures.append(outcome)
        if outcome.seconds > limit:
            self.slow.append(outcome)


class _Sink(io.StringIO):
    """stdout that counts what is written instead of keeping it (a summary may be large)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def write(self, text: str) -> int:
        self.count += len(text)
        return len(text)


def run_cli(argv: list[str], watchdog: float = 60.0) -> Outcome:
    """Run ``cnn-designer ARGV`` in this process; stop it with an error after ``watchdog``
    seconds (needs the main thread)."""
    out, err = _Sink(), io.StringIO()

    def alarm(signum: int, frame: Any) -> None:
        raise _Overtime()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, watchdog)
    started = time.perf_counter()
    status: int | None = None
    escaped = None
    overtime = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = cli.main(list(argv))
    except _Overtime:
        overtime = True
    except BaseException as exc:  # noqa: BLE001 - what the fuzz is looking for
        escaped = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        shown = [f"{w.category.__name__}: {w.message}" for w in caught
                 if not issubclass(w.category, QUIET_WARNINGS)]
    return Outcome(list(argv), status, time.perf_counter() - started, err.getvalue()[:4000],
                   out.count, escaped, overtime, shown[:5])


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: a small valid design that ``run`` cases use: cheap to run, with every tensor kind
RUN_DESIGN = {
    "format": "cnn-designer", "version": 1, "name": "fuzz target",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 3, "height": 16, "width": 16}},
        {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                     "padding": 1}},
        {"id": "bn1", "type": "BatchNorm2d"},
        {"id": "relu1", "type": "ReLU"},
        {"id": "pool1", "type": "MaxPool2d", "params": {"kernel_size": 2}},
        {"id": "flat", "type": "Flatten"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 5}},
    ],
    "edges": [["input", "conv1"], ["conv1", "bn1"], ["bn1", "relu1"], ["relu1", "pool1"],
              ["pool1", "flat"], ["flat", "fc"]],
}
RUN_TENSORS = {"conv1.weight": (4, 3, 3, 3), "conv1.bias": (4,), "bn1.weight": (4,),
               "bn1.bias": (4,), "bn1.running_mean": (4,), "bn1.running_var": (4,),
               "fc.weight": (5, 64), "fc.bias": (5,)}
RUN_SHAPE = (3, 16, 16)


def run_case(rng: random.Random, folder: Path, index: int) -> list[str]:
    """Write one crafted input for ``run`` into ``folder`` and return the command's arguments."""
    design = folder / "target.json"
    if not design.exists():
        design.write_text(json.dumps(RUN_DESIGN), encoding="utf-8")
    out = str(folder / "out")
    kind = rng.randrange(4)
    if kind == 0:
        path = folder / f"in{index}.npy"
        path.write_bytes(npy_case(rng, RUN_SHAPE))
        return ["run", str(design), "--input", str(path), "--out", out]
    if kind == 1:
        suffix, data = image_case(rng)
        path = folder / f"in{index}{suffix}"
        path.write_bytes(data)
        extra = rng.choice([[], ["--mean", "0.5"], ["--std", rng.choice(["nan", "0", "-1", "inf",
                                                                         "0.2,0.2"])],
                            ["--mean", rng.choice(["inf", "nan", "1,2,3,4"])]])
        return ["run", str(design), "--input", str(path), "--out", out, *extra]
    if kind == 2:
        weights = folder / f"w{index}.npz"
        weights.write_bytes(npz_case(rng, RUN_TENSORS))
        image = folder / "ok.npy"
        if not image.exists():
            image.write_bytes(_npy_bytes(np.zeros(RUN_SHAPE, np.float32)))
        return ["run", str(design), "--input", str(image), "--weights", str(weights), "--out", out]
    # a hostile design with an ordinary input (small templates: a valid VGG-16 takes its time)
    path = folder / f"d{index}.json"
    path.write_bytes(design_case(rng, SMALL_TEMPLATE_DATA))
    image = folder / "ok.png"
    if not image.exists():
        image.write_bytes(png_header(8, 8, zlib.compress(b"".join(b"\x00" + b"\x40" * 24
                                                                  for _ in range(8)))))
    return ["run", str(path), "--input", str(image), "--out", out]
