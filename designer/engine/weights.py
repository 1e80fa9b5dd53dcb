"""Weights (contract §3): which tensors a design has, seeded initialization, NPZ load and save.

Keys are ``"<node id>.<tensor>"`` with PyTorch's state-dict names and layouts; everything is
float32. Loading never unpickles, and checks the archive's keys, shapes and sizes (from the
members' headers) and free memory before it reads any array.
"""
from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
# imported here, not on first use: NumPy loads its random module lazily, and loading it (~25 ms,
# holding Python's lock) on the run's worker thread would stall the window
from numpy.random import default_rng

from designer.core.analysis import Analysis
from designer.core.atomic import describe_os_error, write_atomic
from designer.engine import ops
from designer.engine.arrays import ArrayFileError, NpzReader
from designer.engine.memory import NotEnoughMemory, mib


class WeightsError(ValueError):
    """A weights file or mapping that doesn't fit the design; the message names the key."""


class WeightsTooLarge(WeightsError, NotEnoughMemory):
    """A weights file whose tensors need more memory than is free (both numbers in the message).
    Caught as either a WeightsError (a file that can't be used) or a NotEnoughMemory."""


def weights_bytes(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Bytes the float32 tensors of these shapes take."""
    return 4 * sum(math.prod(s) for s in shapes.values())


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


def init_tensor(key: str, shape: tuple[int, ...], seed: int = 0,
                progress: Callable[[int], Any] | None = None,
                block: int = BLOCK_VALUES) -> np.ndarray:
    """One tensor of :func:`init_weights`, drawn ``block`` values at a time (the same values as
    one draw: the generator's stream is split, not changed); ``progress(values drawn so far)``
    is called after each block and may raise to stop (the app's Cancel)."""
    shape = tuple(int(s) for s in shape)
    name = key.rsplit(".", 1)[1]
    if name == "weight" and len(shape) in (2, 4):  # Conv2d or Linear
        fan_in = math.prod(shape[1:])
        rng = default_rng([seed & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])
        # drawn in float32 and scaled in place: VGG-16's first fully connected layer alone
        # would otherwise pass through 2 GB of float64 temporaries; in blocks, since filling it
        # (400 MB of fresh memory) in one call stalled the app's window in some runs
        tensor = np.empty(shape, np.float32)
        flat = tensor.reshape(-1)
        scale = np.float32(np.sqrt(2.0 / fan_in))
        block = max(1, int(block))
        for start in range(0, flat.size, block):
            part = flat[start:start + block]
            rng.standard_normal(out=part, dtype=np.float32)
            part *= scale
            if progress is not None:
                progress(start + part.size)
        return tensor
    tensor = (np.ones if name in ("weight", "running_var") else np.zeros)(shape, np.float32)
    if progress is not None:
        progress(tensor.size)
    return tensor


def engine_layout(array: np.ndarray) -> np.ndarray:
    """A float32 copy of a convolution weight (K, C/groups, kh, kw) whose memory is laid out
    (K, kh, kw, C/groups): the same array to every reader (PyTorch's shape and values), but
    also, reshaped, the matrix of the engine's patch order (``ops.conv_matrix``) without a
    second copy of the weights, always in step with them (``Network._matrix``)."""
    return np.array(np.asarray(array).transpose(0, 2, 3, 1), dtype=np.float32, order="C",
                    copy=True).transpose(0, 3, 1, 2)


def in_engine_layout(array: np.ndarray) -> bool:
    """Whether a convolution weight is laid out as :func:`engine_layout` makes it (float32)."""
    return (array.ndim == 4 and array.dtype == np.float32
            and array.transpose(0, 2, 3, 1).flags.c_contiguous)


def init_weights(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded initialization: He (Kaiming) normal for convolution and linear weights, zero biases,
    identity statistics for norms (mean 0, variance 1, scale 1, shift 0).

    Each tensor draws from its own generator seeded by (seed, key), so adding or removing a layer
    leaves every other layer's weights as they were."""
    out = {}
    for key, shape in shapes.items():
        tensor = init_tensor(key, shape, seed)
        out[key] = engine_layout(tensor) if tensor.ndim == 4 else tensor  # a conv weight
    return out


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _ignored(keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]]) -> set[str]:
    """PyTorch's BatchNorm counts its training steps in a buffer that inference never reads."""
    return {k for k in keys if isinstance(k, str) and k.endswith(".num_batches_tracked")
            and f"{k.rsplit('.', 1)[0]}.running_mean" in shapes}


def _fit_problems(found: Mapping[str, tuple[tuple[int, ...], np.dtype] | None],
                  shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """What keeps tensors of these shapes and value types (``found``; None for a value that is
    not an array) from fitting ``shapes``."""
    problems = []
    ignored = _ignored(found, shapes)
    for key in shapes:
        if key not in found:
            problems.append(f"{key} is missing (expected shape {_shape_text(shapes[key])})")
    for key in found:
        if key not in shapes and key not in ignored:
            problems.append(f"{key} is not a tensor of this design (no such node or tensor)")
    for key, shape in shapes.items():
        if key not in found:
            continue
        if found[key] is None:
            problems.append(f"{key} is not an array")
            continue
        got, dtype = found[key]
        if dtype.kind not in "fiu":
            problems.append(f"{key} holds {dtype} values, not numbers")
        elif tuple(got) != tuple(shape):
            problems.append(f"{key} has shape {_shape_text(got)}, but this design needs "
                            f"{_shape_text(shape)}")
    return problems


def _refuse(where: str, problems: list[str]) -> WeightsError:
    shown = problems[:8] + ([f"… and {len(problems) - 8} more"] if len(problems) > 8 else [])
    return WeightsError(f"{where} doesn't fit this design: " + "; ".join(shown))


def all_finite(array: np.ndarray) -> bool:
    """True if no value is inf or NaN (a chunked scan: no temporary the size of the array)."""
    return all(np.isfinite(chunk).all() for chunk in ops.chunks(array))


def check_weights(weights: Mapping[str, object], shapes: Mapping[str, tuple[int, ...]],
                  where: str = "weights", copy: bool = True) -> dict[str, np.ndarray]:
    """Validate a mapping of arrays against the expected shapes; float32 copies on success
    (``copy`` false: float32 arrays are taken as they are, for callers that never change them;
    VGG-16's weights are half a gigabyte)."""
    if not isinstance(weights, Mapping):
        raise WeightsError(f"weights must be None, a path to an .npz file or a mapping of name to "
                           f"array, not {type(weights).__name__}")
    arrays: dict[str, np.ndarray] = {}
    found: dict[str, tuple[tuple[int, ...], np.dtype] | None] = {}
    for key in weights:
        found[key] = None
        if key in shapes:
            try:
                arrays[key] = np.asarray(weights[key])
            except Exception:  # an object numpy can't make an array of
                continue
            found[key] = (arrays[key].shape, arrays[key].dtype)
    problems = _fit_problems(found, shapes)
    out: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        array = arrays.get(key)
        if array is None or array.dtype.kind not in "fiu" or tuple(array.shape) != tuple(shape):
            continue
        if copy and array.ndim == 4:  # a conv weight: copied into the engine's layout
            array = engine_layout(array)
        else:
            array = array.astype(np.float32, copy=copy)
        if not all_finite(array):
            problems.append(f"{key} holds NaN or infinite values")
            continue
        out[key] = array
    if problems:
        raise _refuse(where, problems)
    return out


def load_weights_file(path: str | os.PathLike,
                      shapes: Mapping[str, tuple[int, ...]] | None = None
                      ) -> dict[str, np.ndarray]:
    """Read an NPZ archive (never unpickling) into a dict of arrays.

    With ``shapes`` (the design's tensors, as ``expected_tensors`` gives them), the archive's
    keys, shapes and value types are checked against them from the members' headers before any
    array is read (the message names each key and both shapes), and the result is the design's
    tensors only, in float32, checked to be finite. Without, every array is returned as stored.
    Either way free memory is checked before reading (``WeightsTooLarge``, both numbers).
    Raises WeightsError."""
    path = Path(path)
    name = path.name or str(path)
    try:
        with NpzReader(path, what="tensor", kind="weights file") as archive:
            entries = archive.entries
            if shapes is not None:
                problems = _fit_problems(entries, shapes)
                if problems:
                    raise _refuse(name, problems)
                keys = list(shapes)
            else:
                keys = list(entries)
            need = 0
            for key in keys:
                need += archive.nbytes(key)
                if shapes is not None and entries[key][1] != np.float32:
                    need += 4 * math.prod(entries[key][0])  # the float32 copy
            need += min(need, 16 * 2**20)  # one chunk read beside the arrays
            if shapes is not None:  # a conv weight read, then copied into the engine's layout
                need += max((4 * math.prod(shapes[k]) for k in keys if len(shapes[k]) == 4),
                            default=0)
            from designer.engine import network  # where callers replace available_memory
            free = network.available_memory()
            if free is not None and need > free:
                raise WeightsTooLarge(f"{name}: the weights need about {mib(need)}, but only "
                                      f"{mib(free)} is free; close other programs, or use a "
                                      f"smaller design")
            out: dict[str, np.ndarray] = {}
            for key in keys:
                array = archive.read(key)
                if shapes is not None:
                    array = (engine_layout(array) if array.ndim == 4
                             else array.astype(np.float32, copy=False))
                    if not all_finite(array):
                        raise _refuse(name, [f"{key} holds NaN or infinite values"])
                out[key] = array
            return out
    except NotEnoughMemory as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsTooLarge(str(exc)) from None
    except ArrayFileError as exc:
        raise WeightsError(str(exc)) from None


def save_weights_file(weights: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write an NPZ archive atomically (a temporary file beside it, then a rename)."""
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    try:
        write_atomic(path, lambda handle: np.savez(handle, **arrays))
    except OSError as exc:
        raise WeightsError(describe_os_error(exc, path)) from None
