"""Weights (contract §3): which tensors a design has, seeded initialization, NPZ load and save.

Keys are ``"<node id>.<tensor>"`` with PyTorch's state-dict names and layouts; everything is
float32. Loading never unpickles.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np
# imported here, not on first use: NumPy loads its random module lazily, and loading it (~25 ms,
# holding Python's lock) on the run's worker thread would stall the window
from numpy.random import default_rng

from designer.core.analysis import Analysis
from designer.core.atomic import describe_os_error, describe_read_error, write_atomic


class WeightsError(ValueError):
    """A weights file or mapping that doesn't fit the design; the message names the key."""


def expected_tensors(analysis: Analysis) -> dict[str, tuple[int, ...]]:
    """Every tensor the design's layers hold, with its PyTorch shape, in topological order."""
    out: dict[str, tuple[int, ...]] = {}
    design = analysis.design
    for info in analysis.infos():
        v = info.values
        if v is None:
            continue
        sources = design.sources(info.id)
        in_shape = analysis.info(sources[0]).shape if sources else None
        if in_shape is None:
            continue
        t = info.type
        if t == "Conv2d":
            kh, kw = v["kernel_size"]
            k = v["out_channels"]
            out[f"{info.id}.weight"] = (k, in_shape[0] // v["groups"], kh, kw)
            if v["bias"]:
                out[f"{info.id}.bias"] = (k,)
        elif t == "Linear":
            out[f"{info.id}.weight"] = (v["out_features"], in_shape[0])
            if v["bias"]:
                out[f"{info.id}.bias"] = (v["out_features"],)
        elif t == "BatchNorm2d":
            c = in_shape[0]
            if v["affine"]:
                out[f"{info.id}.weight"] = (c,)
                out[f"{info.id}.bias"] = (c,)
            out[f"{info.id}.running_mean"] = (c,)
            out[f"{info.id}.running_var"] = (c,)
        elif t == "LayerNorm" and v["elementwise_affine"]:
            out[f"{info.id}.weight"] = tuple(in_shape)
            out[f"{info.id}.bias"] = tuple(in_shape)
    return out


#: large tensors are drawn this many values at a time: filling VGG-16's fc6 (400 MB of fresh
#: memory) in one call stalled the app's window for 50–100 ms in some runs (benchmarks/bench_run.py)
BLOCK_VALUES = 1 << 20


def init_weights(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded initialization: He (Kaiming) normal for convolution and linear weights, zero biases,
    identity statistics for norms (mean 0, variance 1, scale 1, shift 0).

    Each tensor draws from its own generator seeded by (seed, key), so adding or removing a layer
    leaves every other layer's weights as they were."""
    out = {}
    for key, shape in shapes.items():
        name = key.rsplit(".", 1)[1]
        if name == "weight" and len(shape) in (2, 4):  # Conv2d or Linear
            fan_in = int(np.prod(shape[1:]))
            rng = default_rng([seed & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])
            # drawn in float32 and scaled in place: VGG-16's first fully connected layer alone
            # would otherwise pass through 2 GB of float64 temporaries
            tensor = np.empty(shape, np.float32)
            flat = tensor.reshape(shape[0], -1)
            scale = np.float32(np.sqrt(2.0 / fan_in))
            step = max(1, BLOCK_VALUES // flat.shape[1])
            for start in range(0, shape[0], step):  # the same values as one call, in blocks
                block = flat[start:start + step]
                rng.standard_normal(out=block, dtype=np.float32)
                block *= scale
            out[key] = tensor
        elif name in ("weight", "running_var"):
            out[key] = np.ones(shape, dtype=np.float32)
        else:
            out[key] = np.zeros(shape, dtype=np.float32)
    return out


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_weights(weights: Mapping[str, object], shapes: Mapping[str, tuple[int, ...]],
                  where: str = "weights", copy: bool = True) -> dict[str, np.ndarray]:
    """Validate a mapping of arrays against the expected shapes; float32 copies on success
    (``copy`` false: float32 arrays are taken as they are, for callers that never change them;
    VGG-16's weights are half a gigabyte)."""
    problems = []
    if not isinstance(weights, Mapping):
        raise WeightsError(f"weights must be None, a path to an .npz file or a mapping of name to "
                           f"array, not {type(weights).__name__}")
    # PyTorch's BatchNorm counts its training steps in a buffer that inference never reads
    ignored = {k for k in weights
               if k.endswith(".num_batches_tracked") and f"{k.rsplit('.', 1)[0]}.running_mean" in shapes}
    missing = [k for k in shapes if k not in weights]
    unexpected = [k for k in weights if k not in shapes and k not in ignored]
    out: dict[str, np.ndarray] = {}
    for key in missing:
        problems.append(f"{key} is missing (expected shape {_shape_text(shapes[key])})")
    for key in unexpected:
        problems.append(f"{key} is not a tensor of this design (no such node or tensor)")
    for key, shape in shapes.items():
        if key not in weights:
            continue
        value = weights[key]
        try:
            array = np.asarray(value)
        except Exception:  # an object numpy can't make an array of
            problems.append(f"{key} is not an array")
            continue
        if array.dtype.kind not in "fiu":
            problems.append(f"{key} holds {array.dtype} values, not numbers")
            continue
        if tuple(array.shape) != tuple(shape):
            problems.append(f"{key} has shape {_shape_text(array.shape)}, but this design needs "
                            f"{_shape_text(shape)}")
            continue
        array = array.astype(np.float32, copy=copy)
        if not np.isfinite(array).all():
            problems.append(f"{key} holds NaN or infinite values")
            continue
        out[key] = array
    if problems:
        shown = problems[:8] + ([f"… and {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise WeightsError(f"{where} doesn't fit this design: " + "; ".join(shown))
    return out


def load_weights_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an NPZ archive (never unpickling) into a dict of arrays."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if magic[:4] != b"PK\x03\x04":
            if magic == b"\x93NUMPY":
                raise WeightsError(f"{path.name}: a single array (.npy), not a weights archive "
                                   f"(.npz, one array per tensor)")
            raise WeightsError(f"{path.name}: not a readable weights file (.npz archive expected)")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except WeightsError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise WeightsError(describe_read_error(exc, path, "weights file")) from None
    except ValueError as exc:
        if "pickle" in str(exc):
            raise WeightsError(f"{path.name}: holds Python objects, which are never loaded "
                               f"(only plain numeric arrays)") from None
        raise WeightsError(f"{path.name}: not a readable weights file (.npz): {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path.name}: not a readable weights file (.npz): {exc}") from None


def save_weights_file(weights: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write an NPZ archive atomically (a temporary file beside it, then a rename)."""
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    try:
        write_atomic(path, lambda handle: np.savez(handle, **arrays))
    except OSError as exc:
        raise WeightsError(describe_os_error(exc, path)) from None
