"""NumPy forward ops with PyTorch's arithmetic.

Public layout is NCHW float32, as in PyTorch: ``x`` is ``(N, C, H, W)`` for maps and ``(N, F)`` for
flat vectors. Convolution works channels-last internally (the im2col patch matrix is then one
contiguous copy of a sliding-window view) and returns an NCHW *view* of its NHWC result, so no
layout copy is made between layers.
"""
from __future__ import annotations

import math
import os
import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]
#: called between chunks of a large op with the fraction of that op done; may raise to cancel
ChunkHook = Callable[[float], None]

DEFAULT_SCRATCH_BYTES = 256 * 2**20
#: elementwise work and scans are done this many values at a time, so their temporaries stay small
CHUNK_VALUES = 1 << 18


#: makes an array for an op: ``alloc(shape, dtype=np.float32, channels_last=False)``; where an op
#: takes one, the caller may hand out arrays it reuses from pass to pass (see :class:`Workspace`)
Alloc = Callable[..., np.ndarray]


def new_array(shape: tuple[int, ...], dtype=np.float32, channels_last: bool = False
              ) -> np.ndarray:
    """``np.empty(shape, dtype)``, laid out channels-last (an NCHW view of NHWC memory) when
    ``channels_last`` and the shape is 4-D: the default :data:`Alloc`."""
    if channels_last and len(shape) == 4:
        n, c, h, w = shape
        return np.empty((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)
    return np.empty(shape, dtype=dtype)


class Workspace:
    """Arrays kept from one pass to the next, so that a repeated pass (training, batch after
    batch) touches memory it already has instead of fresh pages (whose faults cost a fifth of a
    training step). ``allocator(name)`` gives an :data:`Alloc` whose i-th call of a pass
    returns the array of its i-th call in the pass before when shape, type and layout agree
    (contents undefined), a new one otherwise. An array handed out must not outlive the pass
    that asked for it: the next pass overwrites it. One workspace per thread."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, int], tuple[np.ndarray, tuple, Any, bool]] = {}

    def allocator(self, name: str) -> Alloc:
        count = iter(range(1 << 30))

        def alloc(shape: tuple[int, ...], dtype=np.float32, channels_last: bool = False
                  ) -> np.ndarray:
            key = (name, next(count))
            shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
            channels_last = bool(channels_last and len(shape) == 4)
            kept = self._arrays.get(key)
            if kept is not None and kept[1:] == (shape, dtype, channels_last):
                return kept[0]
            self._arrays.pop(key, None)  # the old one goes before the new one comes
            a = new_array(shape, dtype, channels_last)
            self._arrays[key] = (a, shape, dtype, channels_last)
            return a
        return alloc

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a, *_ in list(self._arrays.values()))

    def clear(self) -> None:
        self._arrays.clear()


class _Blas:
    """The matrix library's thread count, read and set through threadpoolctl: a parallel
    section of the engine runs its own threads over parts of a batch, each with a
    single-threaded BLAS (its matrix products are too small to share well). Sections from
    several threads nest: the first sets one thread, the last out restores the setting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controllers: list | None = None
        self._depth = 0
        self._saved: list[int] = []

    def _libs(self) -> list:
        if self._controllers is None:
            try:
                from threadpoolctl import ThreadpoolController
                found = ThreadpoolController().select(user_api="blas").lib_controllers
            except Exception:  # noqa: BLE001 - no control: every section runs on one thread
                found = []
            self._controllers = list(found)
        return self._controllers

    def threads(self) -> int:
        """Threads the BLAS would use now (the limit a caller set, e.g. the app's), or 1."""
        libs = self._libs()
        with self._lock:
            if self._depth:
                return max(self._saved or [1])
            try:
                return max([int(lib.get_num_threads() or 1) for lib in libs] or [1])
            except Exception:  # noqa: BLE001
                return 1

    @contextmanager
    def single(self):
        libs = self._libs()
        with self._lock:
            if self._depth == 0:
                self._saved = [int(lib.get_num_threads() or 1) for lib in libs]
                for lib in libs:
                    lib.set_num_threads(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for lib, n in zip(libs, self._saved):
                        lib.set_num_threads(n)


BLAS = _Blas()
_workers: list[queue.SimpleQueue] = []  # one job queue per engine worker thread
_workers_lock = threading.Lock()


def _work(jobs: queue.SimpleQueue) -> None:
    while True:
        task, answer = jobs.get()
        try:
            answer.put((True, task()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            answer.put((False, exc))


def parallel_parts(batch: int) -> int:
    """Into how many parts a training pass splits a batch's convolutions: as many as the
    BLAS may use threads (so a caller that limits it, as the app does to keep a core for the
    window, limits this too), at most the batch and the cores."""
    return max(1, min(batch, os.cpu_count() or 1, BLAS.threads()))


def run_parallel(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the tasks at once, the first on this thread and each other on an engine worker
    thread of its own (daemon threads, started on first use, fed through queues: about 30 µs
    a hand-over), and return their results in order once all have finished (an exception is
    raised after every task has stopped). The tasks must not call run_parallel."""
    if len(tasks) <= 1:
        return [task() for task in tasks]
    with _workers_lock:
        while len(_workers) < len(tasks) - 1:
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            threading.Thread(target=_work, args=(jobs,), daemon=True,
                             name=f"engine-{len(_workers) + 1}").start()
            _workers.append(jobs)
        workers = _workers[:len(tasks) - 1]
    answers = []
    for jobs, task in zip(workers, tasks[1:]):
        answer: queue.SimpleQueue = queue.SimpleQueue()
        jobs.put((task, answer))
        answers.append(answer)
    try:
        first = tasks[0]()
    finally:
        results = [answer.get() for answer in answers]
    for ok, value in results:
        if not ok:
            raise value
    return [first] + [value for _, value in results]


def sample_parts(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges of samples covering 0 … n − 1 (as even as can be)."""
    parts = max(1, min(parts, n))
    edges = [n * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def flat_view(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of every element of ``a`` in memory order (C, Fortran, or any permutation of
    axes, as the NCHW views of channels-last memory that convolutions return), or None if ``a``
    is not one contiguous block. Never copies."""
    if a.ndim == 0:
        return a.reshape(1)
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if a.flags.f_contiguous:
        return a.T.reshape(-1)
    order = sorted(range(a.ndim), key=lambda i: -abs(a.strides[i]))
    t = a.transpose(order)
    return t.reshape(-1) if t.flags.c_contiguous else None


def chunks(a: np.ndarray, size: int = CHUNK_VALUES):
    """1-D views covering every element of ``a`` once, at most ``size`` values each, in memory
    order where possible; never copies."""
    flat = a.reshape(-1) if a.ndim <= 1 else flat_view(a)
    if flat is None:
        for sub in a:
            yield from chunks(sub, size)
        return
    for start in range(0, flat.size, size):
        yield flat[start:start + size]


def keep_where(mask: np.ndarray, values: np.ndarray, out: np.ndarray | None = None
               ) -> np.ndarray:
    """``np.where(mask, values, 0)`` for float ``values``, exactly (where the mask is False the
    result is +0.0, also under NaN and inf), by a bitwise AND with the mask spread to every
    bit: one branch-free pass, many times faster than np.where on an irregular mask. ``mask``
    (bool, shaped like ``values`` or broadcasting to it) is overwritten; ``out`` (optional,
    any strides) receives the result, else a new array laid out like ``values``."""
    bits = np.dtype(f"i{values.dtype.itemsize}")
    m8 = mask.view(np.int8)
    np.negative(m8, out=m8)  # True (1) -> -1: every bit set once widened
    if out is None:
        out = np.empty_like(values)
    np.bitwise_and(values.view(bits), m8, out=out.view(bits))
    return out


def pad_amounts(padding, kernel: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """``((top, bottom), (left, right))`` for an int pair or "same" / "valid" (PyTorch's split:
    the smaller half first when the total is odd)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        totals = [dilation[i] * (kernel[i] - 1) for i in (0, 1)]
        return tuple((t // 2, t - t // 2) for t in totals)  # type: ignore[return-value]
    return (padding[0], padding[0]), (padding[1], padding[1])


def conv_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """PyTorch's conv weight (K, C/g, kh, kw) rearranged for the engine's patch order:
    (g, K/g, kh·kw·C/g), each patch row ordered (kh, kw, channel) so that channels, contiguous in
    channels-last memory, are copied in runs."""
    k, cg, kh, kw = weight.shape
    return np.ascontiguousarray(
        weight.reshape(groups, k // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2)
    ).reshape(groups, k // groups, kh * kw * cg)


BAND_BYTES = 8 * 2**20  # patch-matrix block that stays cache-friendly and is reused


def conv_band(oh: int, ow: int, patch: int, scratch_bytes: int = DEFAULT_SCRATCH_BYTES) -> int:
    """Output rows per im2col band of one sample: as many as fit in BAND_BYTES and
    ``scratch_bytes``, at least one. ``patch`` is the values in one patch (kh·kw·C); the band
    takes ``rows · ow · patch`` float32 values."""
    row_bytes = max(1, ow * patch * 4)
    return max(1, min(oh, int(min(scratch_bytes, BAND_BYTES) // row_bytes)))


def sample_blocks(n: int, oh: int, row_bytes: int, budget: int):
    """(first sample, last sample + 1, first row, last row + 1) blocks covering n × oh output
    rows, each at most ``budget`` bytes of patches (``row_bytes`` per output row) and at least
    one row: whole samples together when one fits, bands of one sample's rows otherwise."""
    per_sample = oh * row_bytes
    if per_sample <= budget:
        step = max(1, budget // max(1, per_sample))
        for i in range(0, n, step):
            yield i, min(n, i + step), 0, oh
    else:
        band = max(1, budget // max(1, row_bytes))
        for i in range(n):
            for r in range(0, oh, band):
                yield i, i + 1, r, min(oh, r + band)


def conv_block_values(n: int | None, oh: int, ow: int, patch: int,
                      scratch_bytes: int = DEFAULT_SCRATCH_BYTES) -> int:
    """Float32 values of the largest im2col block :func:`conv2d` builds for ``n`` samples (any
    number of samples when ``n`` is None): whole samples up to BAND_BYTES and
    ``scratch_bytes``, or a band of one sample's rows (at least one row)."""
    row = ow * patch
    budget = min(scratch_bytes, BAND_BYTES)
    per_sample = oh * row * 4
    if per_sample <= budget:
        step = max(1, budget // max(1, per_sample))
        return (step if n is None else min(n, step)) * oh * row
    return conv_band(oh, ow, patch, scratch_bytes) * row


def patch_windows(x: np.ndarray, kernel: Pair, stride: Pair, padding, dilation: Pair,
                  groups: int, alloc: Alloc = new_array
                  ) -> tuple[np.ndarray, tuple[Pair, Pair]]:
    """A convolution's im2col windows over x (N, C, H, W): a view (N, H', W', groups, kh, kw,
    C/groups) of the zero-padded channels-last input, channels innermost (the engine's patch
    order, see :func:`conv_matrix`), and the padding ``((top, bottom), (left, right))``. The
    padded copy (made by ``alloc``) is skipped when x is a view of NHWC float32 memory and
    nothing is padded."""
    n, c, h, w = x.shape
    kh, kw = kernel
    (pt, pb), (pl, pr) = pad_amounts(padding, kernel, dilation)
    sh, sw = stride
    dh, dw = dilation
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh = (h + pt + pb - eh) // sh + 1
    ow = (w + pl + pr - ew) // sw + 1
    xt = x.transpose(0, 2, 3, 1)
    if not (pt or pb or pl or pr) and xt.flags.c_contiguous and xt.dtype == np.float32:
        xp = xt
    else:
        xp = alloc((n, h + pt + pb, w + pl + pr, c))
        xp[:, :pt], xp[:, pt + h:], xp[:, pt:pt + h, :pl], xp[:, pt:pt + h, pl + w:] = 0, 0, 0, 0
        xp[:, pt:pt + h, pl:pl + w, :] = xt
    windows = sliding_window_view(xp, (eh, ew), axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
    windows = windows[:, :oh, :ow].reshape(n, oh, ow, groups, c // groups, kh, kw)
    return windows.transpose(0, 1, 2, 3, 5, 6, 4), ((pt, pb), (pl, pr))


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
           padding, dilation: Pair, groups: int, scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
           hook: ChunkHook | None = None, matrix: np.ndarray | None = None,
           scratch: np.ndarray | None = None, alloc: Alloc = new_array,
           windows: np.ndarray | None = None, parts: int = 1,
           part_scratch: Callable[[int, int], np.ndarray] | None = None,
           patches: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch) by im2col and one matrix product per group
    and block of output rows.

    x: ndarray of shape (N, C, H, W); weight: (K, C/groups, kh, kw); bias: (K,) or None;
    matrix: optionally ``conv_matrix(weight, groups)``, computed once by the caller;
    scratch: optionally a flat float32 buffer to build the patch blocks in (reused across calls
    saves the page faults of a fresh allocation); used if it is large enough;
    alloc: makes the output and the padded input; windows: optionally
    ``patch_windows(x, ...)[0]``, made by the caller (who keeps it for the backward pass);
    parts: split the samples into that many parts done at once on as many threads (each with
    a block buffer of its own, ``part_scratch(values, part)`` for parts after the first, else
    made by ``alloc``, and a single-threaded BLAS; no ``hook`` then); patches: optionally an
    (N, H', W', groups, kh, kw, C/groups) float32 array to build the whole patch matrix in,
    block by block, instead of the block buffers (the training pass keeps a small one for
    the backward pass).
    Returns (N, K, H', W') float32 (an NCHW view of channels-last memory).

    The patch matrix is built a block at a time (see :func:`sample_blocks`): whole samples
    together, up to about BAND_BYTES and never more than ``scratch_bytes``, so that a small
    layer is one large matrix product for many samples, or a band of one sample's output rows
    (at least one row) when a sample is larger; the block is built in one reused buffer.
    """
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    if windows is None:
        windows, _ = patch_windows(x, (kh, kw), stride, padding, dilation, groups, alloc)
    oh, ow = windows.shape[1:3]
    kk = kh * kw * cg
    wmat = conv_matrix(weight, groups) if matrix is None else matrix
    out = alloc((n, oh, ow, k))
    ranges = sample_parts(n, parts if hook is None else 1)
    kg = k // groups
    total = n * oh

    buffers = []  # one block buffer per part, made here (in order) before any thread starts
    for index, (s0, s1) in enumerate(ranges):
        size = 0 if patches is not None else conv_block_values(s1 - s0, oh, ow, kh * kw * c,
                                                               scratch_bytes)
        if index == 0 and scratch is not None and scratch.size >= size:
            buffers.append(scratch[:size])
        else:
            buffers.append(np.empty(size, dtype=np.float32) if index == 0 else
                           part_scratch(size, index) if part_scratch is not None else
                           alloc((size,)))

    def part(index: int, s0: int, s1: int) -> None:
        buffer = buffers[index]
        done = 0
        for i0, i1, r0, r1 in sample_blocks(s1 - s0, oh, 4 * ow * kh * kw * c,
                                            min(scratch_bytes, BAND_BYTES)):
            i0, i1 = i0 + s0, i1 + s0
            rows = (i1 - i0) * (r1 - r0) * ow
            cols = (patches[i0:i1, r0:r1] if patches is not None else
                    buffer[:rows * groups * kk].reshape(i1 - i0, r1 - r0, ow, groups, kh, kw,
                                                        cg))
            np.copyto(cols, windows[i0:i1, r0:r1])  # the im2col copy
            cols = cols.reshape(rows, groups, kk)
            dst = out[i0:i1, r0:r1].reshape(rows, k)
            if groups == 1:
                np.matmul(cols[:, 0, :], wmat[0].T, out=dst)
            else:
                for g in range(groups):
                    dst[:, g * kg:(g + 1) * kg] = cols[:, g, :] @ wmat[g].T
            if bias is not None:
                dst += bias  # while the block is still in cache
            done += (i1 - i0) * (r1 - r0)
            if hook is not None and done < total:
                hook(done / total)

    if len(ranges) == 1:
        part(0, 0, n)
    else:
        with BLAS.single():
            run_parallel([lambda i=i, r=r: part(i, *r) for i, r in enumerate(ranges)])
    return out.transpose(0, 3, 1, 2)


def _pool_geometry(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, int]:
    """Output size and extra right padding needed so that every (partial) window exists."""
    eff = d * (k - 1) + 1
    span = size + 2 * p - eff
    if ceil_mode:
        out = (span + s - 1) // s + 1
        if (out - 1) * s >= size + p:
            out -= 1
    else:
        out = span // s + 1
    extra = max(0, (out - 1) * s + eff - (size + 2 * p))
    return out, extra


def channels_last(x: np.ndarray) -> bool:
    """Whether the maps x (N, C, H, W) are an NCHW view of channels-last (NHWC) memory, as
    convolutions return and elementwise ops on their results keep."""
    return x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous


def empty_maps(shape: tuple[int, ...], like_channels_last: bool, dtype=np.float32,
               fill: float | None = None, alloc: Alloc = new_array) -> np.ndarray:
    """A (N, C, H, W) array from ``alloc``, laid out channels-last (an NCHW view of NHWC
    memory) when ``like_channels_last``, plainly NCHW otherwise; filled with ``fill`` unless
    None."""
    a = alloc(tuple(shape), dtype, like_channels_last)
    if fill is not None:
        a.fill(fill)
    return a


def pool_padded(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                ceil_mode: bool, fill: float, alloc: Alloc = new_array
                ) -> tuple[np.ndarray, int, int]:
    """(x padded with ``fill`` so that every (partial) window exists, oh, ow). No copy when
    nothing is padded; the copy keeps x's layout (channels-last or not)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    oh, xh = _pool_geometry(h, kh, sh, ph, dh, ceil_mode)
    ow, xw = _pool_geometry(w, kw, sw, pw, dw, ceil_mode)
    if not (ph or pw or xh or xw):
        return x, oh, ow
    xp = empty_maps((n, c, h + 2 * ph + xh, w + 2 * pw + xw), channels_last(x), x.dtype, fill,
                    alloc)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp, oh, ow


def pool_taps(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, oh: int, ow: int):
    """((i, j), view) per kernel tap in row-major order (PyTorch's order within a window):
    the (N, C, oh, ow) strided view of the padded maps ``xp`` that tap reads, so that a
    pooling is one elementwise op per tap over whole maps, never a copy of the windows."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    for i in range(kh):
        for j in range(kw):
            yield (i, j), xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                             j * dw:j * dw + sw * (ow - 1) + 1:sw]


def max_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
               ceil_mode: bool, alloc: Alloc = new_array, out: np.ndarray | None = None
               ) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'); padding counts as −∞, as in PyTorch. The maximum of
    shifted strided views, one np.maximum per kernel tap (NaN propagates, as in PyTorch);
    the result keeps x's layout (or goes to ``out``)."""
    xp, oh, ow = pool_padded(x, kernel, stride, padding, dilation, ceil_mode, -np.inf, alloc)
    if out is None:
        out = empty_maps((x.shape[0], x.shape[1], oh, ow), channels_last(x), np.float32,
                         alloc=alloc)
    for (i, j), view in pool_taps(xp, kernel, stride, dilation, oh, ow):
        if i == j == 0:
            np.copyto(out, view)
        else:
            np.maximum(out, view, out=out)
    return out


def _avg_divisor(size: int, k: int, s: int, p: int, out: int, include_pad: bool) -> np.ndarray:
    """PyTorch's divisor per output index along one axis: the window clipped to the padded input
    (count_include_pad) or to the real input."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if include_pad:
        return (end - start).astype(np.float32)
    return (np.minimum(end, size) - np.maximum(start, 0)).astype(np.float32)


def avg_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool,
               count_include_pad: bool, alloc: Alloc = new_array,
               out: np.ndarray | None = None) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'): the float32 sum of shifted strided views, one add per
    kernel tap in row-major order, divided by PyTorch's divisor; keeps x's layout (or goes
    to ``out``)."""
    xp, oh, ow = pool_padded(x, kernel, stride, padding, (1, 1), ceil_mode, 0.0, alloc)
    if out is None:
        out = empty_maps((x.shape[0], x.shape[1], oh, ow), channels_last(x), np.float32,
                         alloc=alloc)
    for (i, j), view in pool_taps(xp, kernel, stride, (1, 1), oh, ow):
        if i == j == 0:
            np.copyto(out, view)
        else:
            out += view
    h, w = x.shape[2:]
    if (tuple(stride) == tuple(kernel) and tuple(padding) == (0, 0) and oh * kernel[0] <= h
            and ow * kernel[1] <= w):  # windows that tile the input: one divisor for all
        out /= np.float32(kernel[0] * kernel[1])
        return out
    dv_h = _avg_divisor(h, kernel[0], stride[0], padding[0], oh, count_include_pad)
    dv_w = _avg_divisor(w, kernel[1], stride[1], padding[1], ow, count_include_pad)
    out /= np.outer(dv_h, dv_w)
    return out


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive pooling windows along one axis: [floor(i·size/out), ceil((i+1)·size/out))."""
    i = np.arange(out, dtype=np.int64)
    return (i * size) // out, -(-((i + 1) * size) // out)


def adaptive_avg_pool2d(x: np.ndarray, output_size: Pair) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, oh, ow), PyTorch's windows [floor(i·H/oh), ceil((i+1)·H/oh)),
    each summed in float32 and divided by its height, then its width, as PyTorch does: a window
    holding −∞ (a max-pool window of padding only) averages to −∞, one holding +∞ and −∞ to NaN.

    Rows of each window are summed first (one (N, C, oh, W) temporary), then columns."""
    n, c, h, w = x.shape
    oh, ow = output_size
    if h % oh == 0 and w % ow == 0:
        return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5), dtype=np.float32)
    h0, h1 = adaptive_windows(h, oh)
    w0, w1 = adaptive_windows(w, ow)
    rows = np.empty((n, c, oh, w), dtype=np.float32)
    for i in range(oh):
        np.sum(x[:, :, h0[i]:h1[i], :], axis=2, dtype=np.float32, out=rows[:, :, i, :])
    out = np.empty((n, c, oh, ow), dtype=np.float32)
    for j in range(ow):
        np.sum(rows[:, :, :, w0[j]:w1[j]], axis=3, dtype=np.float32, out=out[:, :, :, j])
    out /= (h1 - h0).astype(np.float32)[:, None]
    out /= (w1 - w0).astype(np.float32)[None, :]
    return out


def batch_norm(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
               bias: np.ndarray | None, eps: float) -> np.ndarray:
    """Inference-mode BatchNorm2d. x: (N, C, H, W); statistics and affine (C,). The per-channel
    scale and shift are worked out in float64; the maps are scaled in float32, in place."""
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    shift = -mean * scale
    if weight is not None:
        scale, shift = scale * weight, shift * weight + bias
    shape = (1, -1, 1, 1)
    out = np.multiply(x, scale.astype(np.float32).reshape(shape), dtype=np.float32)
    out += shift.astype(np.float32).reshape(shape)
    return out


def _pairs(x: np.ndarray, out: np.ndarray, size: int = CHUNK_VALUES):
    """Matching 1-D chunks of ``x`` and ``out`` (same shape), views of both, so that elementwise
    work needs temporaries of one chunk only."""
    if x.ndim <= 1:
        a, b = x.reshape(-1), out.reshape(-1)
    else:
        a = flat_view(x) if x.strides == out.strides else None
        if a is None:
            for xi, oi in zip(x, out):
                yield from _pairs(xi, oi, size)
            return
        b = flat_view(out)
    for start in range(0, a.size, size):
        yield a[start:start + size], b[start:start + size]


def _map(x: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
    """A float32 array shaped (and laid out) like ``x``, filled by ``fn(chunk_in, chunk_out)``."""
    out = np.empty_like(x, dtype=np.float32)
    for a, b in _pairs(x, out):
        fn(a, b)
    return out


def layer_norm(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
               eps: float) -> np.ndarray:
    """Normalize each sample over all its features. x: (N, ...); weight and bias: x.shape[1:].
    Mean and variance are accumulated in float64 a chunk at a time (two passes); the output is
    worked out in float32, in place."""
    out = np.empty_like(x, dtype=np.float32)
    count = math.prod(x.shape[1:]) or 1
    for xi, oi in zip(x, out):
        total = 0.0
        for chunk in chunks(xi):
            total += float(chunk.sum(dtype=np.float64))
        mean = total / count
        squares = 0.0
        for chunk in chunks(xi):
            d = chunk.astype(np.float64)
            d -= mean
            squares += float(np.dot(d, d))
        inv = 1.0 / math.sqrt(squares / count + eps)  # biased variance, as PyTorch
        np.subtract(xi, np.float32(mean), out=oi)
        oi *= np.float32(inv)
        if weight is not None:
            oi *= weight
            oi += bias
    return out


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x: (N, F); weight: (F', F); bias: (F',) -> (N, F')."""
    y = np.matmul(x, weight.T, dtype=np.float32)
    if bias is not None:
        y += bias
    return y


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0), dtype=np.float32)


def leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    s = np.float32(slope)

    def fn(a: np.ndarray, out: np.ndarray) -> None:
        np.multiply(a, s, out=out)
        np.copyto(out, a, where=a >= 0)
    return _map(x, fn)


def _sigmoid(a: np.ndarray, out: np.ndarray) -> None:
    # 1 / (1 + e^−x) for x ≥ 0 and e^x / (1 + e^x) below: exp never overflows
    np.abs(a, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    denominator = out + np.float32(1)
    np.copyto(out, np.float32(1), where=a >= 0)
    out /= denominator


def sigmoid(x: np.ndarray) -> np.ndarray:
    return _map(x, _sigmoid)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, dtype=np.float32)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to float32 precision (NumPy has none): Abramowitz & Stegun 7.1.26
    refined in float64, absolute error below 1.5e-7."""
    x64 = np.asarray(x, dtype=np.float64)
    a = np.abs(x64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    y = 1.0 - poly * np.exp(-a * a)
    return np.sign(x64) * y


def _gelu(a: np.ndarray, out: np.ndarray) -> None:
    x = a.astype(np.float64)
    out[...] = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def gelu(x: np.ndarray) -> np.ndarray:
    """PyTorch's exact GELU: x · Φ(x) = x/2 · (1 + erf(x/√2)), in float64 a chunk at a time."""
    return _map(x, _gelu)


def softmax(x: np.ndarray) -> np.ndarray:
    """Over dimension 1 (channels or features), numerically stable, in float32 in place."""
    z = np.subtract(x, x.max(axis=1, keepdims=True), dtype=np.float32)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
