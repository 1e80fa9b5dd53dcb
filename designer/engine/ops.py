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


def result_array(out: np.ndarray | None, shape: tuple[int, ...], alloc: Alloc
                 ) -> np.ndarray:
    """Where an op writes its result: ``out``, a caller's float32 array of that shape (a split
    pass's share of the batch's array, see ``Network._forward_split``), or a new one made by
    ``alloc``."""
    if out is None:
        return alloc(tuple(shape))
    if out.shape != tuple(shape) or out.dtype != np.float32:
        raise ValueError(f"the result takes a float32 array of shape {tuple(shape)}, not "
                         f"{out.dtype} {out.shape}")
    return out


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
                _release_control(libs)  # the last thread out, maybe another, restores it
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for lib, n in zip(libs, self._saved):
                        lib.set_num_threads(n)
                    _release_control(libs)


def _release_control(libs: list) -> None:
    """Let other threads set the BLAS's threads again. threadpoolctl lets only one thread at a
    time change a process-wide pool (OpenBLAS with pthreads): the first to set it keeps the
    control until it lets go, and every other thread's setting is ignored without a word, so
    without this the app's run worker could no longer leave a core to the window once a pass
    had run elsewhere."""
    for lib in libs:
        clear = getattr(type(lib), "clear_controlling_thread", None)
        if clear is not None:
            clear()  # only if this thread holds the control


BLAS = _Blas()
_workers: list[queue.SimpleQueue] = []  # one job queue per engine worker thread
_workers_lock = threading.Lock()


_nesting = threading.local()  # depth of run_parallel sections this thread is inside


def _work(jobs: queue.SimpleQueue) -> None:
    _nesting.depth = 1  # a task on a worker never hands work on (see run_parallel)
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
    raised after every task has stopped). A task that calls run_parallel again has its tasks
    run one after another on its own thread (no worker ever waits for itself). NumPy's
    error handling (np.errstate, which is per thread) is the caller's in every task."""
    if len(tasks) <= 1 or getattr(_nesting, "depth", 0):
        return [task() for task in tasks]
    state = np.geterr()

    def under_callers_errstate(task: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with np.errstate(**state):
                return task()
        return run
    tasks = [tasks[0]] + [under_callers_errstate(t) for t in tasks[1:]]
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
    _nesting.depth = 1
    try:
        first = tasks[0]()
    finally:
        _nesting.depth = 0
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


def worker_count() -> int:
    """Threads an inference op may spread its work over: the cores, at most as many as the
    BLAS may use (a caller that limits it, as the app does to keep a core for the window,
    limits this too)."""
    return max(1, min(os.cpu_count() or 1, BLAS.threads()))


def run_blocks(blocks: list, parts: int, work: Callable[[Any, int], None],
               hook: ChunkHook | None = None, weights: list[float] | None = None) -> None:
    """``work(block, part)`` for every block, the list cut into ``parts`` contiguous runs of
    about equal weight done at once (the first on this thread, see :func:`run_parallel`).
    ``hook(fraction)`` is called between the first run's blocks (its share done stands for
    the whole); if it raises, the other runs stop at their next block and the exception is
    raised once all have stopped."""
    parts = max(1, min(parts, len(blocks)))
    if parts == 1:
        for i, block in enumerate(blocks):
            work(block, 0)
            if hook is not None and i + 1 < len(blocks):
                hook((i + 1) / len(blocks))
        return
    weights = weights or [1.0] * len(blocks)
    total = sum(weights) or 1.0
    cuts, acc = [0], 0.0
    for i, wt in enumerate(weights):
        acc += wt
        if len(cuts) < parts and acc >= total * len(cuts) / parts and i + 1 < len(blocks):
            cuts.append(i + 1)
    cuts.append(len(blocks))
    runs = [blocks[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
    stop: list[bool] = []

    def run(index: int, mine: list) -> None:
        for i, block in enumerate(mine):
            if stop:
                return
            work(block, index)
            if index == 0 and hook is not None and i + 1 < len(mine):
                try:
                    hook((i + 1) / len(mine))
                except BaseException:
                    stop.append(True)
                    raise
    run_parallel([lambda i=i, r=r: run(i, r) for i, r in enumerate(runs)])


def map_blocks(shape: tuple[int, ...], values: int = 1 << 16, planes: bool = False
               ) -> list[tuple]:
    """Index tuples cutting an array of ``shape`` into blocks of about ``values`` values (at
    least one row): whole samples together when one is smaller, else bands of one sample's
    rows (axis 2 of maps (N, C, H, W): contiguous in channels-last memory) or, with
    ``planes``, runs of its channels' whole planes (contiguous in NCHW memory, where bands of
    rows would make NumPy's loops several times slower). For elementwise work in cache-sized
    pieces."""
    n = shape[0] if shape else 1
    per = math.prod(shape[1:]) if len(shape) > 1 else 1
    if per >= values and len(shape) == 4 and planes and shape[1] > 1:
        step = max(1, values * shape[1] // per)
        return [(slice(i, i + 1), slice(ch, min(shape[1], ch + step)))
                for i in range(n) for ch in range(0, shape[1], step)]
    if per >= values and len(shape) == 4 and shape[2] > 1:
        rows = max(1, values * shape[2] // per)
        return [(slice(i, i + 1), slice(None), slice(r, min(shape[2], r + rows)))
                for i in range(n) for r in range(0, shape[2], rows)]
    step = max(1, values // max(1, per))
    return [(slice(i, min(n, i + step)),) for i in range(0, n, step)]


def parallel_map(shape: tuple[int, ...], work: Callable[[tuple], None],
                 parts: int | None = None, values: int = 1 << 16, planes: bool = False
                 ) -> None:
    """``work(index)`` over cache-sized blocks of an array of ``shape`` (see
    :func:`map_blocks`; ``planes`` for NCHW memory), spread over the engine's threads (NumPy
    releases the GIL in its loops) when there are at least PARALLEL_VALUES values."""
    size = math.prod(shape)
    if parts is None:
        parts = worker_count() if size >= PARALLEL_VALUES else 1
    if size == 0:
        return
    run_blocks(map_blocks(shape, values, planes), parts, lambda block, _: work(block))


#: work of an inference pass (im2col copies, depthwise layers) spreads over threads from this
#: many values on
PARALLEL_VALUES = 1 << 18
#: ... elementwise ops and pooling from this many (measured on 2 cores: BatchNorm, ReLU and Add
#: of 200,000-450,000 values ran as fast or faster on one thread; 1.2 million 1.3-1.4× faster
#: on two)
ELEMENTWISE_VALUES = 1 << 19


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


#: an im2col block of fewer output pixels than this (and at least four times as many output
#: channels) is multiplied transposed, weights first (ResNet-18's 7×7 layers: 1.3× faster)
SHORT_ROWS = 128


def conv_kind(c: int, weight_shape: tuple[int, ...], groups: int, padding, dilation: Pair,
              stride: Pair = (1, 1), out: Pair | None = None) -> str:
    """How :func:`conv2d` does an inference convolution of C input channels: "depthwise"
    (groups = C > 1: shifted multiply-adds, no im2col), "pointwise" (1×1, groups 1, no
    padding: one matrix product, no im2col), "winograd" (given the output size ``out``, where
    :func:`winograd_suits` for a batch large enough: a smaller batch goes by im2col; conv2d
    does it when asked with ``winograd=True``) or "im2col"."""
    k, cg, kh, kw = weight_shape
    if groups > 1 and cg == 1 and groups == c:
        return "depthwise"
    if (kh, kw) == (1, 1) and groups == 1 and pad_amounts(padding, (1, 1), dilation) == (
            (0, 0), (0, 0)):
        return "pointwise"
    if out is not None and winograd_suits(c, weight_shape, stride, dilation, groups, *out,
                                          None):
        return "winograd"
    return "im2col"


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
           padding, dilation: Pair, groups: int, scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
           hook: ChunkHook | None = None, matrix: np.ndarray | None = None,
           scratch: np.ndarray | None = None, alloc: Alloc = new_array,
           windows: np.ndarray | None = None, parts: int = 1,
           part_scratch: Callable[[int, int], np.ndarray] | None = None,
           patches: np.ndarray | None = None, winograd: bool = False,
           out: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch) by im2col and one matrix product per
    block of output rows (all groups in one batched product).

    x: ndarray of shape (N, C, H, W); weight: (K, C/groups, kh, kw); bias: (K,) or None;
    matrix: optionally ``conv_matrix(weight, groups)``, computed once by the caller;
    scratch: optionally a flat float32 buffer to build the patch blocks in (reused across calls
    saves the page faults of a fresh allocation); used if it is large enough;
    alloc: makes the output and the padded input; windows: optionally
    ``patch_windows(x, ...)[0]``, made by the caller (who keeps it for the backward pass);
    parts: with ``windows`` (a training pass) the batch is split in that many parts done at
    once on as many threads (each with a block buffer of its own, ``part_scratch(values,
    part)`` for parts after the first, else made by ``alloc``, and a single-threaded BLAS;
    ``hook`` is then called from the first part); without, each block's im2col copy is split
    over that many threads and the products keep the BLAS's threads; patches: optionally an
    (N, H', W', groups, kh, kw, C/groups) float32 array to build the whole patch matrix in,
    block by block, instead of the block buffers (the training pass keeps a small one for
    the backward pass); out: optionally the (N, H', W', K) float32 array (channels-last) to
    write the result into (an NCHW 1×1 convolution of NCHW maps makes its own).
    Returns (N, K, H', W') float32 (an NCHW view of channels-last memory, or plain NCHW for a
    1×1 convolution of NCHW maps).

    Without ``windows`` and ``patches`` (inference), two layers skip im2col: a depthwise
    convolution (groups = C) is a multiply-add per kernel tap over shifted views of the
    channels-last input (:func:`depthwise_conv2d`), and an unpadded 1×1 convolution one matrix
    product over the (strided) input as it lies (:func:`pointwise_conv2d`); with ``winograd``,
    a 3×3 convolution that :func:`winograd_suits` is done by :func:`winograd_conv2d`.

    The patch matrix is built a block at a time (see :func:`sample_blocks`): whole samples
    together, up to about BAND_BYTES and never more than ``scratch_bytes``, so that a small
    layer is one large matrix product for many samples, or a band of one sample's output rows
    (at least one row) when a sample is larger; the block is built in one reused buffer.
    """
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    if windows is None and patches is None:
        kind = conv_kind(c, weight.shape, groups, padding, dilation)
        if kind == "depthwise":
            return depthwise_conv2d(x, weight, bias, stride, padding, dilation, hook, alloc,
                                    parts, out)
        if kind == "pointwise":
            return pointwise_conv2d(x, weight, bias, stride, hook, alloc, parts, out)
        if winograd:
            (pt, pb), (pl, pr) = pad_amounts(padding, (kh, kw), dilation)
            oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
            ow = (w + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
            if winograd_suits(c, weight.shape, stride, dilation, groups, oh, ow, n):
                return winograd_conv2d(x, weight, bias, padding, hook, alloc, parts, out=out)
    given_windows = windows is not None
    if windows is None:
        windows, _ = patch_windows(x, (kh, kw), stride, padding, dilation, groups, alloc)
    oh, ow = windows.shape[1:3]
    kk = kh * kw * cg
    wmat = conv_matrix(weight, groups) if matrix is None else matrix
    wmat_t = wmat.transpose(0, 2, 1)  # (groups, kh·kw·C/g, K/g)
    out = result_array(out, (n, oh, ow, k), alloc)
    kg = k // groups
    budget = min(scratch_bytes, BAND_BYTES)
    # an inference pass (no windows given) keeps the BLAS's own threads for the products and
    # spreads each block's im2col copy over ``parts`` threads; a training pass splits its batch
    split_copy = parts > 1 and not given_windows and patches is None
    ranges = sample_parts(n, 1 if split_copy else parts)

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

    def block(b: tuple[int, int, int, int], index: int) -> None:
        i0, i1, r0, r1 = b
        rows = (i1 - i0) * (r1 - r0) * ow
        cols = (patches[i0:i1, r0:r1] if patches is not None else
                buffers[index][:rows * groups * kk].reshape(i1 - i0, r1 - r0, ow, groups, kh,
                                                            kw, cg))
        src = windows[i0:i1, r0:r1]
        if split_copy and cols.size >= PARALLEL_VALUES:  # the im2col copy on every core
            flat_cols = cols.reshape((i1 - i0) * (r1 - r0), *cols.shape[2:])
            flat_src = (src.reshape((i1 - i0) * (r1 - r0), *src.shape[2:]) if i1 - i0 == 1
                        else None)
            if flat_src is not None:
                edges = [len(flat_cols) * p // parts for p in range(parts + 1)]
                run_parallel([lambda a=a, z=z: np.copyto(flat_cols[a:z], flat_src[a:z])
                              for a, z in zip(edges, edges[1:]) if z > a])
            else:
                edges = [(i1 - i0) * p // parts for p in range(parts + 1)]
                run_parallel([lambda a=a, z=z: np.copyto(cols[a:z], src[a:z])
                              for a, z in zip(edges, edges[1:]) if z > a])
        else:
            np.copyto(cols, src)  # the im2col copy
        cols = cols.reshape(rows, groups, kk)
        dst = out[i0:i1, r0:r1].reshape(rows, k)
        if groups == 1 and rows < SHORT_ROWS and k >= 4 * rows:  # few pixels, many channels:
            # the BLAS splits the transposed product better over its threads
            np.copyto(dst, np.matmul(wmat[0], cols[:, 0, :].T).T)
        elif groups == 1:
            np.matmul(cols[:, 0, :], wmat_t[0], out=dst)
        else:  # every group in one batched product, written in place
            np.matmul(cols.transpose(1, 0, 2), wmat_t,
                      out=dst.reshape(rows, groups, kg).transpose(1, 0, 2))
        if bias is not None:
            dst += bias  # while the block is still in cache

    row_bytes = 4 * ow * kh * kw * c
    work = [[(i0 + s0, i1 + s0, r0, r1) for i0, i1, r0, r1
             in sample_blocks(s1 - s0, oh, row_bytes, budget)] for s0, s1 in ranges]
    if len(ranges) == 1:
        run_blocks(work[0], 1, block, hook)
    else:
        stop: list[bool] = []

        def part(index: int) -> None:
            for j, b in enumerate(work[index]):
                if stop:
                    return
                block(b, index)
                if index == 0 and hook is not None and j + 1 < len(work[0]):
                    try:
                        hook((j + 1) / len(work[0]))
                    except BaseException:
                        stop.append(True)
                        raise
        with BLAS.single():
            run_parallel([lambda i=i: part(i) for i in range(len(ranges))])
    return out.transpose(0, 3, 1, 2)


#: a 1×1 convolution's matrix product is cut into blocks of output pixels of this many
#: multiply-adds (the steps of its progress): large enough for the BLAS's threads to pay
POINTWISE_MACS = 1 << 26


def pointwise_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
                     hook: ChunkHook | None = None, alloc: Alloc = new_array, parts: int = 1,
                     out: np.ndarray | None = None) -> np.ndarray:
    """An unpadded 1×1 convolution (groups 1) as one matrix product over the input as it lies,
    without im2col: channels-last maps (N·H'·W', C) @ (C, K) into channels-last output, NCHW
    maps (K, C) @ (C, H'·W') per sample into NCHW output; a strided layer first copies the
    pixels it reads (channels-last, on ``parts`` threads). Blocks of output pixels
    (POINTWISE_MACS multiply-adds each) are the steps between ``hook`` calls. ``out``: the
    channels-last (N, H', W', K) array to write channels-last output into. Returns
    (N, K, H', W') float32."""
    n, c = x.shape[:2]
    k = weight.shape[0]
    wmat = weight.reshape(k, c)
    xs = x[:, :, ::stride[0], ::stride[1]]
    oh, ow = xs.shape[2:]
    if not (xs.flags.c_contiguous and xs.dtype == np.float32):
        xt = xs.transpose(0, 2, 3, 1)
        if not (xt.flags.c_contiguous and xt.dtype == np.float32):
            copy = alloc((n, oh, ow, c))
            parallel_map(copy.shape, lambda i: np.copyto(copy[i], xt[i]), parts)
            xt = copy
        a = xt.reshape(n * oh * ow, c)
        out = result_array(out, (n, oh, ow, k), alloc)
        flat = out.reshape(n * oh * ow, k)
        step = max(1, POINTWISE_MACS // max(1, k * c))
        blocks = [slice(r, min(a.shape[0], r + step)) for r in range(0, a.shape[0], step)]

        def block(r: slice, _: int) -> None:
            np.matmul(a[r], wmat.T, out=flat[r])
            if bias is not None:
                flat[r] += bias
        result = out.transpose(0, 3, 1, 2)
    else:  # plain NCHW maps: W @ x per sample, NCHW out
        a = xs.reshape(n, c, oh * ow)
        out = alloc((n, k, oh, ow))
        flat = out.reshape(n, k, oh * ow)
        step = max(1, POINTWISE_MACS // max(1, k * c))
        blocks = [(i, slice(p, min(oh * ow, p + step))) for i in range(n)
                  for p in range(0, oh * ow, step)]
        col_bias = None if bias is None else bias.reshape(k, 1)

        def block(b: tuple, _: int) -> None:
            i, p = b
            np.matmul(wmat, a[i, :, p], out=flat[i, :, p])
            if col_bias is not None:
                flat[i, :, p] += col_bias
        result = out
    run_blocks(blocks, 1, block, hook)  # the products on the BLAS's own threads
    return result


#: Winograd F(2×2, 3×3) (:func:`winograd_conv2d`) for an inference pass's 3×3 convolutions of
#: at least this many input and output channels, at least WINOGRAD_MIN_TILES 2×2 tiles a
#: sample and WINOGRAD_MIN_MACS samples × tiles × C × K (its 16 matrix products large enough
#: for the BLAS to run at speed). Measured on 2 cores against im2col, within whole passes:
#: VGG-16's convolutions at 448² 0.7× the time, ResNet-18 at batch 8 0.94× (at batch 1, below
#: WINOGRAD_MIN_MACS, no faster); 1.1-1.4× slower at 512 channels 7² (16 tiles) and 32-48
#: channels
WINOGRAD_CHANNELS = 64
WINOGRAD_MIN_TILES = 49
WINOGRAD_MIN_MACS = 1 << 23
_WINO_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)


def winograd_suits(c: int, weight_shape: tuple[int, ...], stride: Pair, dilation: Pair,
                   groups: int, oh: int, ow: int, n: int | None = 1) -> bool:
    """Whether an inference pass of ``n`` samples does this convolution (output oh × ow) by
    :func:`winograd_conv2d`; ``n`` None: whether it does for a batch large enough."""
    k, cg, kh, kw = weight_shape
    tiles = -(-oh // 2) * -(-ow // 2)
    return ((kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and min(c, k) >= WINOGRAD_CHANNELS and tiles >= WINOGRAD_MIN_TILES
            and (n is None or n * tiles * c * k >= WINOGRAD_MIN_MACS))


def winograd_weights(weight: np.ndarray) -> np.ndarray:
    """The 3×3 weight (K, C, 3, 3) transformed for F(2×2, 3×3): G g Gᵀ per (k, c), laid out
    (16, K, C) (tap of the 4×4 tile, then one matrix per tap, used transposed), float32. G's
    entries are 0, ±½ and 1: sums of weights halved, a few passes over (K, C) arrays."""
    k, c = weight.shape[:2]
    g = weight.transpose(0, 2, 3, 1)  # (K, 3, 3, C): a view for weights in the engine's layout
    u = np.empty((4, 4, k, c), np.float32)
    half = np.float32(0.5)

    def spread(a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, out: np.ndarray) -> None:
        """out[0..3] = a0, (a0 + a1 + a2)/2, (a0 − a1 + a2)/2, a2."""
        np.copyto(out[0], a0)
        np.add(a0, a2, out=out[1])
        np.subtract(out[1], a1, out=out[2])
        out[1] += a1
        out[1] *= half
        out[2] *= half
        np.copyto(out[3], a2)

    rows = np.empty((4, 3, k, c), np.float32)  # G over the kernel rows, per kernel column
    for j in range(3):
        spread(g[:, 0, j], g[:, 1, j], g[:, 2, j], rows[:, j])
    for a in range(4):  # ... then over the columns
        spread(rows[a, 0], rows[a, 1], rows[a, 2], u[a])
    return u.reshape(16, k, c)


#: tiles a Winograd block aims for: each of its 16 matrix products has this many rows (fewer
#: make the BLAS slow), unless a sample has fewer
WINOGRAD_TILES = 512


def winograd_block_values(oh: int, ow: int, c: int, k: int, n: int | None = None
                          ) -> tuple[int, int]:
    """(rows of tiles per block, float32 values of the work buffers) for
    :func:`winograd_conv2d` of ``n`` samples (any number if None): about WINOGRAD_TILES tiles
    a block (rows of several samples when one has fewer), or as many rows of tiles as fit in
    BAND_BYTES if that is more, never more than the samples have."""
    th, tw = -(-oh // 2), -(-ow // 2)
    wp = 2 * tw + 2
    per_row = tw * (16 * c + 16 * k + 12 * k) + 4 * wp * c
    rows = max(-(-WINOGRAD_TILES // tw), BAND_BYTES // (4 * per_row))
    rows = max(1, rows if n is None else min(n * th, rows))
    return rows, rows * per_row


#: the transforms of a Winograd block are worked out a few rows of tiles at a time, about this
#: many values of each row pass's and column pass's results, so that they stay in cache
WINOGRAD_PIECE_VALUES = 1 << 18


def winograd_step(tw: int, c: int, k: int) -> int:
    """Rows of tiles :func:`winograd_conv2d` transforms at a time (tw tiles a row)."""
    return max(1, WINOGRAD_PIECE_VALUES // max(1, 8 * tw * max(c, k)))


def winograd_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding,
                    hook: ChunkHook | None = None, alloc: Alloc = new_array, parts: int = 1,
                    u: np.ndarray | None = None, scratch: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """A 3×3 convolution of stride 1 (groups 1, no dilation) by Winograd's minimal filtering
    F(2×2, 3×3) (Lavin & Gray 2016): each 4×4 tile of the zero-padded channels-last input is
    transformed (Bᵀ d B: additions only), the 16 tile taps are multiplied by the transformed
    weights as 16 matrix products (4 multiplications per output pixel and channel pair instead
    of 9), and each product tile is transformed back to a 2×2 output tile (Aᵀ m A). The sums
    differ from im2col's only in rounding (relative differences about 1e-6). Blocks of tile
    rows (see :func:`winograd_block_values`) are done one after another, their products on the
    BLAS's own threads (blocks spread over ``parts`` threads with a single-threaded BLAS each
    ran as fast alone but slowed a whole pass by 10 %: the BLAS's threads stopped and started
    around every such layer); the padded copy is made on ``parts`` threads. A block's
    transforms are worked a few rows of tiles at a time (see
    :func:`winograd_step`), over the padded input kept with its columns split into even and
    odd phases, so that each add runs over whole rows of tiles, not over one pixel's channels.
    ``u``: the transformed weight (:func:`winograd_weights`), made here if None; ``scratch``:
    a flat float32 buffer of at least :func:`winograd_block_values` values to
    work in (a caller's, reused across layers: fresh buffers each layer cost their page
    faults), made here if None or too small; ``out``: the channels-last (N, H', W', K) array
    to write into, made here if None. Returns
    (N, K, H', W') float32, an NCHW view of channels-last memory."""
    n, c, h, w = x.shape
    k = weight.shape[0]
    (pt, pb), (pl, pr) = pad_amounts(padding, (3, 3), (1, 1))
    oh, ow = h + pt + pb - 2, w + pl + pr - 2
    th, tw = -(-oh // 2), -(-ow // 2)
    hp, half = 2 * th + 2, tw + 1  # padded rows; padded columns per phase
    # zeros around, up to whole tiles at the bottom and right; the columns split into their
    # even and odd phases (xp[:, :, q, j] is padded column 2j + q), so that the four columns
    # of every tile are runs of whole rows of tiles in one phase or the other
    xp = alloc((n, hp, 2, half, c))
    xp[:, :pt], xp[:, pt + h:] = 0, 0
    spans = []
    for q in range(2):
        first = max(0, -(-(pl - q) // 2))  # the phase's first column inside x ...
        x0 = 2 * first + q - pl  # ... is x's column x0
        count = len(range(x0, w, 2))
        spans.append((first, x0, count))
        xp[:, pt:pt + h, q, :first], xp[:, pt:pt + h, q, first + count:] = 0, 0
    xt = x.transpose(0, 2, 3, 1)

    def pad(i: tuple) -> None:
        rows = i[2] if len(i) > 2 else slice(None)
        for q, (first, x0, count) in enumerate(spans):
            np.copyto(xp[i[0], pt:pt + h, q, first:first + count][:, rows],
                      xt[i[0], :, x0::2][:, rows])
    parallel_map((n, 1, h, w * c), pad, parts)
    u = winograd_weights(weight) if u is None else u
    out = result_array(out, (n, oh, ow, k), alloc)
    rows, _ = winograd_block_values(oh, ow, c, k, n)
    total = n * th  # rows of tiles of every sample, one after another; a block may span samples
    blocks = [(g, min(total, g + rows)) for g in range(0, total, rows)]
    step = min(winograd_step(tw, c, k), rows)  # rows of tiles transformed at a time
    shapes = dict(v=(16, rows * tw, c), m=(16, rows * tw, k), t=(4, step, 2, half, c),
                  s=(2, 4, step * tw, k), y=(2, 2, step * tw, k))
    each = sum(math.prod(s) for s in shapes.values())  # at most winograd_block_values'
    if scratch is None or scratch.size < each:
        scratch = np.empty(each, np.float32)
    buf, at = {}, 0  # the buffers, carved from the one scratch buffer
    for name, shape in shapes.items():
        buf[name] = scratch[at:at + math.prod(shape)].reshape(shape)
        at += math.prod(shape)

    def pieces(g0: int, g1: int) -> list[tuple[int, int, int, int]]:
        """(sample, first tile row, last + 1, offset in the block's tiles) of rows g0:g1, at
        most ``step`` rows of one sample each, the block's rows shared about equally (one
        small piece left over costs a piece's Python for little work)."""
        size = -(-(g1 - g0) // -(-(g1 - g0) // step))
        found, g = [], g0
        while g < g1:
            i, t0 = divmod(g, th)
            t1 = min(th, t0 + g1 - g, t0 + size)
            found.append((i, t0, t1, (g - g0) * tw))
            g += t1 - t0
        return found

    def block(b: tuple[int, int], _: int) -> None:
        g0, g1 = b
        p = (g1 - g0) * tw
        work = pieces(g0, g1)
        for i, t0, t1, at in work:  # Bᵀ d B, a few rows of tiles at a time
            r = t1 - t0
            tt = buf["t"][:, :r]
            src = [xp[i, 2 * t0 + a:2 * t1 + a:2] for a in range(4)]  # (r, 2, half, C)
            np.subtract(src[0], src[2], out=tt[0])  # over the tile rows, both column phases
            np.add(src[1], src[2], out=tt[1])
            np.subtract(src[2], src[1], out=tt[2])
            np.subtract(src[1], src[3], out=tt[3])
            v = buf["v"][:, at:at + r * tw].reshape(4, 4, r, tw, c)
            even, odd = tt[:, :, 0], tt[:, :, 1]  # ... then over the columns of all four rows:
            cols = [even[:, :, :tw], odd[:, :, :tw], even[:, :, 1:], odd[:, :, 1:]]
            np.subtract(cols[0], cols[2], out=v[:, 0])  # 2j, 2j + 1, 2j + 2, 2j + 3
            np.add(cols[1], cols[2], out=v[:, 1])
            np.subtract(cols[2], cols[1], out=v[:, 2])
            np.subtract(cols[1], cols[3], out=v[:, 3])
        m = buf["m"][:, :p]
        np.matmul(buf["v"][:, :p], u.transpose(0, 2, 1), out=m)  # on the BLAS's threads
        m4 = m.reshape(4, 4, p, k)
        for i, t0, t1, at in work:  # Aᵀ m A, a few rows of tiles at a time
            r = t1 - t0
            span = slice(at, at + r * tw)
            s = buf["s"][:, :, :r * tw]  # (2 output rows, 4 columns, tiles, K)
            np.add(m4[0, :, span], m4[1, :, span], out=s[0])  # over the tile rows ...
            s[0] += m4[2, :, span]
            np.subtract(m4[1, :, span], m4[2, :, span], out=s[1])
            s[1] -= m4[3, :, span]
            y = buf["y"][:, :, :r * tw]  # (2 output columns, 2 output rows, tiles, K)
            np.add(s[:, 0], s[:, 1], out=y[0])  # ... and over its columns, into the pixels
            y[0] += s[:, 2]
            np.subtract(s[:, 1], s[:, 2], out=y[1])
            y[1] -= s[:, 3]
            if 2 * t1 <= oh and ow % 2 == 0:  # whole tiles: one copy
                dst = out[i, 2 * t0:2 * t1].reshape(r, 2, tw, 2, k).transpose(3, 1, 0, 2, 4)
                np.copyto(dst, y.reshape(2, 2, r, tw, k))
            else:
                for a in range(2):
                    n_rows = min(t1, (oh - a + 1) // 2) - t0
                    for bcol in range(2 if n_rows > 0 else 0):
                        n_cols = (ow - bcol + 1) // 2
                        dst = out[i, 2 * t0 + a:2 * t0 + a + 2 * n_rows - 1:2,
                                  bcol:bcol + 2 * n_cols - 1:2]
                        np.copyto(dst, y[bcol, a].reshape(r, tw, k)[:n_rows, :n_cols])
            if bias is not None:
                out[i, 2 * t0:min(oh, 2 * t1)] += bias

    run_blocks(blocks, 1, block, hook)  # the products on the BLAS's own threads
    return out.transpose(0, 3, 1, 2)


#: a depthwise convolution's output is worked out in blocks of about this many values (the
#: block, its product temporary and the input rows it reads stay in the core's cache)
DEPTHWISE_VALUES = 1 << 15


def depthwise_temp_values(c: int, h: int, w: int, weight_shape: tuple[int, ...], stride: Pair,
                          padding, dilation: Pair, parts: int) -> tuple[int, int]:
    """(float32 values a sample's padded copy takes, values of the other buffers of one call)
    of an inference pass's depthwise convolution (see :func:`depthwise_conv2d`)."""
    k, _, kh, kw = weight_shape
    (pt, pb), (pl, pr) = pad_amounts(padding, (kh, kw), dilation)
    wp, sw = w + pl + pr, stride[1]
    ow = (wp - dilation[1] * (kw - 1) - 1) // sw + 1
    if k == c and sw > 1:  # the padded copy as kw planes of the output's width
        wp = kw * ow
    # the taps' weights along a row (K = C) or one temporary block per thread (K > C)
    return (h + pt + pb) * wp * c, max(kh * kw * ow * k, max(1, parts) * DEPTHWISE_VALUES * 2)


def depthwise_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
                     padding, dilation: Pair, hook: ChunkHook | None = None,
                     alloc: Alloc = new_array, parts: int = 1, out: np.ndarray | None = None
                     ) -> np.ndarray:
    """A depthwise convolution (groups = C; K = m·C, each input channel feeding m outputs) over
    shifted strided views of the zero-padded channels-last input, in blocks of output rows
    small enough to stay in cache, spread over ``parts`` threads (NumPy releases the GIL in its
    loops) when the output has at least PARALLEL_VALUES values (below, the threads' hand-overs
    cost more than they save). Products are summed in float32 in the kernel's row-major
    order. ``out``: the channels-last (N, H', W', K) array to write into, made if None. Returns
    (N, K, H', W') float32, an NCHW view of channels-last memory.

    With K = C, a block is one ``np.einsum`` over a (kh, kw, rows, W'·C) view of the input
    and the taps' weights repeated along a row: every product and sum in one C loop over
    whole rows, no temporary, no Python between taps (3× faster than a multiply and an add
    per tap, and it spreads over the threads, which per-tap ops, holding the GIL between
    short loops, did not; 1.3-15× faster than banded matrix products for 5×5 and 7×7
    kernels). For a stride of s > 1 columns the padded copy is made as kw
    planes, plane v holding the columns tap v reads (every s-th), so that a row of a tap's
    values is one run there too. With m > 1, one multiply and one add per tap."""
    n, c, h, w = x.shape
    k, _, kh, kw = weight.shape
    m = k // c
    (pt, pb), (pl, pr) = pad_amounts(padding, (kh, kw), dilation)
    sh, sw = stride
    dh, dw = dilation
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if n * oh * ow * k < PARALLEL_VALUES:
        parts = 1
    xt = x.transpose(0, 2, 3, 1)
    hp, wp = h + pt + pb, w + pl + pr
    gathered = m == 1 and sw > 1
    if gathered:  # plane v, column j: padded column v·dw + j·sw
        xp = alloc((kw * n, hp, ow, c)).reshape(kw, n, hp, ow, c)
        spans = []
        for v in range(kw):
            first = max(0, -(-(pl - v * dw) // sw))  # the plane's columns inside x: from
            last = min(ow, -(-(w + pl - v * dw) // sw))  # first to last - 1, x's columns
            first = min(first, last)
            spans.append((first, last, v * dw + sw * first - pl))  # ... from the third, by s
            plane = xp[v]
            plane[:, :pt], plane[:, pt + h:] = 0, 0
            plane[:, pt:pt + h, :first], plane[:, pt:pt + h, last:] = 0, 0

        def pad(i: tuple) -> None:
            rows = i[2] if len(i) > 2 else slice(None)
            for v, (first, last, x0) in enumerate(spans):
                if last > first:
                    np.copyto(xp[v, i[0], pt:pt + h, first:last][:, rows],
                              xt[i[0], :, x0:x0 + sw * (last - first - 1) + 1:sw][:, rows])
        parallel_map((n, 1, h, w * c), pad, parts)
    elif not (pt or pb or pl or pr) and xt.flags.c_contiguous and xt.dtype == np.float32:
        xp = xt
    else:
        xp = alloc((n, hp, wp, c))
        xp[:, :pt], xp[:, pt + h:] = 0, 0
        xp[:, pt:pt + h, :pl], xp[:, pt:pt + h, pl + w:] = 0, 0

        def pad(i: tuple) -> None:
            rows = i[2] if len(i) > 2 else slice(None)
            np.copyto(xp[i[0], pt:pt + h, pl:pl + w][:, rows], xt[i[0]][:, rows])
        parallel_map((n, 1, h, w * c), pad, parts)
    taps = np.ascontiguousarray(weight.reshape(c, m, kh, kw).transpose(2, 3, 0, 1),
                                dtype=np.float32)  # (kh, kw, C, m)
    if m == 1:
        taps = taps[..., 0]
    out = result_array(out, (n, oh, ow, k), alloc)
    rows = max(1, min(oh, DEPTHWISE_VALUES // max(1, ow * k)))
    blocks = [(i, r, min(oh, r + rows)) for i in range(n) for r in range(0, oh, rows)]

    if m == 1:  # (kh, kw, rows, W'·C) views: the rows of every tap's values, one run each
        tiled = np.tile(taps, (1, 1, ow))  # (kh, kw, W'·C): each tap's weights along a row
        if gathered:
            row_step, tap_step = xp.strides[2], xp.strides[0]
        else:
            row_step, tap_step = xp.strides[1], dw * xp.strides[2]

        def block(b: tuple[int, int, int], part: int) -> None:
            i, r0, r1 = b
            base = xp[:, i, r0 * sh:] if gathered else xp[i, r0 * sh:]
            view = np.lib.stride_tricks.as_strided(
                base, (kh, kw, r1 - r0, ow * c), (dh * row_step, tap_step, sh * row_step,
                                                  xp.strides[-1]), writeable=False)
            acc = out[i, r0:r1].reshape(r1 - r0, ow * c)
            np.einsum("uvyz,uvz->yz", view, tiled, out=acc)
            if bias is not None:
                acc.reshape(r1 - r0, ow, c)[...] += bias
    else:
        temps = [np.empty((rows, ow) + taps.shape[2:], np.float32) for _ in range(max(1, parts))]

        def block(b: tuple[int, int, int], part: int) -> None:
            i, r0, r1 = b
            acc = out[i, r0:r1].reshape((r1 - r0, ow) + taps.shape[2:])
            tmp = temps[part][:r1 - r0]
            for u in range(kh):
                top = r0 * sh + u * dh
                band = xp[i, top:top + sh * (r1 - r0 - 1) + 1:sh]
                for v in range(kw):
                    view = band[:, v * dw:v * dw + sw * (ow - 1) + 1:sw][..., None]
                    if u == v == 0:
                        np.multiply(view, taps[0, 0], out=acc)
                    else:
                        np.multiply(view, taps[u, v], out=tmp)
                        acc += tmp
            if bias is not None:
                acc += bias.reshape(taps.shape[2:])

    run_blocks(blocks, parts, block, hook)
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
                ceil_mode: bool, fill: float, alloc: Alloc = new_array, parts: int = 1
                ) -> tuple[np.ndarray, int, int]:
    """(x padded with ``fill`` so that every (partial) window exists, oh, ow). No copy when
    nothing is padded; the copy keeps x's layout (channels-last or not): the border filled,
    the inside copied (over ``parts`` threads)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    oh, xh = _pool_geometry(h, kh, sh, ph, dh, ceil_mode)
    ow, xw = _pool_geometry(w, kw, sw, pw, dw, ceil_mode)
    if not (ph or pw or xh or xw):
        return x, oh, ow
    xp = empty_maps((n, c, h + 2 * ph + xh, w + 2 * pw + xw), channels_last(x), x.dtype, None,
                    alloc)
    xp[:, :, :ph], xp[:, :, ph + h:] = fill, fill
    xp[:, :, ph:ph + h, :pw], xp[:, :, ph:ph + h, pw + w:] = fill, fill
    inside = xp[:, :, ph:ph + h, pw:pw + w]
    parallel_map(x.shape, lambda i: np.copyto(inside[i], x[i]), parts,
                 planes=not channels_last(x))
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
               ceil_mode: bool, alloc: Alloc = new_array, out: np.ndarray | None = None,
               parts: int = 1) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'); padding counts as −∞, as in PyTorch. A window's
    maximum is the maximum over its rows of the maxima over its columns: first, for every
    padded row, np.maximum over the kernel's column taps (strided views), then over the
    row taps of that (its rows are whole runs of output columns): kh + kw − 2 passes instead
    of kh·kw − 1 (NaN propagates either way, as in PyTorch). Each pass a cache-sized block at
    a time, over ``parts`` threads; the result keeps x's layout (or goes to ``out``)."""
    xp, oh, ow = pool_padded(x, kernel, stride, padding, dilation, ceil_mode, -np.inf, alloc,
                             parts)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, hp = xp.shape[:3]
    layout = channels_last(x)
    if out is None:
        out = empty_maps((n, c, oh, ow), layout, np.float32, alloc=alloc)
    rows = empty_maps((n, c, hp, ow), layout, np.float32, alloc=alloc)  # maxima over columns
    cols = [xp[:, :, :, v * dw:v * dw + sw * (ow - 1) + 1:sw] for v in range(kw)]
    parallel_map(rows.shape, lambda i: _maximum_of(cols, i, rows[i]), parts, planes=not layout)
    taps = [rows[:, :, u * dh:u * dh + sh * (oh - 1) + 1:sh] for u in range(kh)]
    parallel_map(out.shape, lambda i: _maximum_of(taps, i, out[i]), parts, planes=not layout)
    return out


def _maximum_of(views: list[np.ndarray], i: tuple, out: np.ndarray) -> None:
    """out = the elementwise maximum of ``views[...][i]`` (NaN propagating)."""
    if len(views) == 1:
        np.copyto(out, views[0][i])
        return
    np.maximum(views[0][i], views[1][i], out=out)
    for view in views[2:]:
        np.maximum(out, view[i], out=out)


def max_pool_temp_values(c: int, h: int, w: int, kernel: Pair, stride: Pair, padding: Pair,
                         dilation: Pair, ceil_mode: bool) -> int:
    """Float32 values of :func:`max_pool2d`'s temporaries for one sample beside its output:
    the padded copy (when anything is padded) and the maxima over columns of every padded
    row."""
    oh, xh = _pool_geometry(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow, xw = _pool_geometry(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    hp, wp = h + 2 * padding[0] + xh, w + 2 * padding[1] + xw
    padded = c * hp * wp if (padding[0] or padding[1] or xh or xw) else 0
    return padded + c * hp * ow


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
               out: np.ndarray | None = None, parts: int = 1) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'): the float32 sum of shifted strided views, one add per
    kernel tap in row-major order, divided by PyTorch's divisor, a cache-sized block of output
    rows at a time over ``parts`` threads; keeps x's layout (or goes to ``out``)."""
    xp, oh, ow = pool_padded(x, kernel, stride, padding, (1, 1), ceil_mode, 0.0, alloc, parts)
    if out is None:
        out = empty_maps((x.shape[0], x.shape[1], oh, ow), channels_last(x), np.float32,
                         alloc=alloc)
    taps = list(pool_taps(xp, kernel, stride, (1, 1), oh, ow))
    h, w = x.shape[2:]
    if (tuple(stride) == tuple(kernel) and tuple(padding) == (0, 0) and oh * kernel[0] <= h
            and ow * kernel[1] <= w):  # windows that tile the input: one divisor for all
        divisor = np.float32(kernel[0] * kernel[1])
    else:
        dv_h = _avg_divisor(h, kernel[0], stride[0], padding[0], oh, count_include_pad)
        dv_w = _avg_divisor(w, kernel[1], stride[1], padding[1], ow, count_include_pad)
        divisor = np.broadcast_to(np.outer(dv_h, dv_w), out.shape)

    def work(i: tuple) -> None:
        o = out[i]
        for (a, b), view in taps:
            if a == b == 0:
                np.copyto(o, view[i])
            else:
                o += view[i]
        o /= divisor if np.ndim(divisor) == 0 else divisor[i]
    parallel_map(out.shape, work, parts, planes=not channels_last(out))
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
               bias: np.ndarray | None, eps: float, parts: int = 1,
               out: np.ndarray | None = None) -> np.ndarray:
    """Inference-mode BatchNorm2d. x: (N, C, H, W); statistics and affine (C,). The per-channel
    scale and shift are worked out in float64; the maps are scaled and shifted in float32 (see
    :func:`channel_affine`); the result keeps x's layout (``out``: an array to write it
    into)."""
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    shift = -mean * scale
    if weight is not None:
        scale, shift = scale * weight, shift * weight + bias
    return channel_affine(x, scale.astype(np.float32), shift.astype(np.float32), parts, out)


#: per-channel vectors of channels-last elementwise work are repeated along a row of about this
#: many values, so that NumPy's inner loop runs over a long row, not over one pixel's channels
TILED_ROW = 8192


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, parts: int = 1,
                   out: np.ndarray | None = None) -> np.ndarray:
    """x · scale + shift per channel (float32 (C,) each) of maps x (N, C, H, W), in float32, a
    cache-sized block at a time (both steps while it is in cache), over ``parts`` threads;
    the result keeps x's layout. Channels-last maps are worked as rows of whole pixels with
    the vectors repeated along the row (a pixel's C values alone make NumPy's inner loop too
    short to be fast: 2× slower at 96 channels); the same products and sums either way.
    ``out``: an array laid out as x to write the result into (made if None or laid out
    otherwise)."""
    c = x.shape[1]
    if out is not None and (out.shape != x.shape or channels_last(out) != channels_last(x)):
        out = None
    if channels_last(x) and c < TILED_ROW:
        out = empty_maps(x.shape, True) if out is None else out
        flat_x, flat_out = x.transpose(0, 2, 3, 1).reshape(-1), out.transpose(0, 2, 3, 1).reshape(-1)
        pixels = flat_x.size // max(1, c)
        per_row = max(1, min(pixels, TILED_ROW // max(1, c)))
        main = pixels // per_row * per_row * c
        rows_x, rows_out = (flat_x[:main].reshape(-1, per_row * c),
                            flat_out[:main].reshape(-1, per_row * c))
        scales, shifts = np.tile(scale, per_row), np.tile(shift, per_row)

        def rows(i: tuple) -> None:
            o = rows_out[i]
            np.multiply(rows_x[i], scales, out=o)
            o += shifts
        parallel_map(rows_x.shape, rows, parts)
        if main < flat_x.size:  # the last pixels, fewer than a row
            tail = flat_out[main:].reshape(-1, c)
            np.multiply(flat_x[main:].reshape(-1, c), scale, out=tail)
            tail += shift
        return out
    shape = (1, -1, 1, 1)
    scale32, shift32 = scale.reshape(shape), shift.reshape(shape)
    out = empty_maps(x.shape, channels_last(x)) if out is None else out

    def work(i: tuple) -> None:
        o = out[i]
        channels = (slice(None), i[1]) if len(i) > 1 else ()  # the block's own channels
        np.multiply(x[i], scale32[channels], out=o, dtype=np.float32)
        o += shift32[channels]
    parallel_map(x.shape, work, parts, planes=not channels_last(x))
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


def _map(x: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], None], parts: int | None = None,
         out: np.ndarray | None = None) -> np.ndarray:
    """A float32 array shaped (and laid out) like ``x``, filled by ``fn(chunk_in, chunk_out)``,
    the chunks spread over the engine's threads for large arrays (``parts``: as many as
    :func:`worker_count` from ELEMENTWISE_VALUES values on, unless given; ``fn`` must be safe to
    call from several threads at once, as NumPy's ufuncs are); into ``out`` if given."""
    out = np.empty_like(x, dtype=np.float32) if out is None else out
    pairs = list(_pairs(x, out))
    if parts is None:
        parts = worker_count() if x.size >= ELEMENTWISE_VALUES else 1
    run_blocks(pairs, parts, lambda pair, _: fn(*pair))
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


#: max(x, 0) as NumPy's clip ufunc between 0 and +∞: 3-4× faster than np.maximum with a scalar
#: (which has no fast loop for one), the same values, and −0 stays −0 as in PyTorch's relu
_ZERO, _INFINITY = np.float32(0), np.float32(np.inf)


def relu_into(x: np.ndarray, out: np.ndarray) -> None:
    """out = max(x, 0) (float32, NaN stays NaN)."""
    np.clip(x, _ZERO, _INFINITY, out=out)


def relu(x: np.ndarray, parts: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0) in float32, keeping x's layout (or into ``out``, of x's shape), in chunks over
    ``parts`` threads."""
    out = result_array(out, x.shape, lambda shape: (
        empty_maps(shape, channels_last(x)) if x.ndim == 4 else np.empty(shape, np.float32)))
    if parts > 1:
        return _map(x, relu_into, parts, out)
    relu_into(x, out)
    return out


def add(inputs: list[np.ndarray], parts: int = 1, out: np.ndarray | None = None
        ) -> np.ndarray:
    """The sum of equally shaped arrays (float32, in their order), laid out as the first (or
    into ``out``), cache-sized blocks over ``parts`` threads."""
    first = inputs[0]
    out = result_array(out, first.shape, lambda shape: (
        empty_maps(shape, channels_last(first)) if first.ndim == 4
        else np.empty(shape, np.float32)))

    def work(i: tuple) -> None:
        o = out[i]
        np.add(inputs[0][i], inputs[1][i], out=o, dtype=np.float32)
        for extra in inputs[2:]:
            o += extra[i]
    parallel_map(first.shape, work, parts, planes=first.ndim == 4 and not channels_last(first))
    return out


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
    """PyTorch's exact GELU: x · Φ(x) = x/2 · (1 + erf(x/√2)), in float64 a chunk at a time
    (on one thread: each chunk's float64 work takes some 16 MiB)."""
    return _map(x, _gelu, parts=1)


def softmax(x: np.ndarray) -> np.ndarray:
    """Over dimension 1 (channels or features), numerically stable, in float32 in place."""
    z = np.subtract(x, x.max(axis=1, keepdims=True), dtype=np.float32)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
