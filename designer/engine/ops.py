"""NumPy forward ops with PyTorch's arithmetic.

Public layout is NCHW float32, as in PyTorch: ``x`` is ``(N, C, H, W)`` for maps and ``(N, F)`` for
flat vectors. Convolution works channels-last internally (the im2col patch matrix is then one
contiguous copy of a sliding-window view) and returns an NCHW *view* of its NHWC result, so no
layout copy is made between layers.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]
#: called between chunks of a large op with the fraction of that op done; may raise to cancel
ChunkHook = Callable[[float], None]

DEFAULT_SCRATCH_BYTES = 256 * 2**20
#: elementwise work and scans are done this many values at a time, so their temporaries stay small
CHUNK_VALUES = 1 << 18


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


BAND_BYTES = 8 * 2**20  # patch-matrix band that stays cache-friendly and is reused


def conv_band(oh: int, ow: int, patch: int, scratch_bytes: int = DEFAULT_SCRATCH_BYTES) -> int:
    """Output rows per im2col band: as many as fit in BAND_BYTES and ``scratch_bytes``, at least
    one. ``patch`` is the values in one patch (kh·kw·C); the band takes
    ``rows · ow · patch`` float32 values."""
    row_bytes = max(1, ow * patch * 4)
    return max(1, min(oh, int(min(scratch_bytes, BAND_BYTES) // row_bytes)))


def patch_windows(x: np.ndarray, kernel: Pair, stride: Pair, padding, dilation: Pair,
                  groups: int) -> tuple[np.ndarray, tuple[Pair, Pair]]:
    """A convolution's im2col windows over x (N, C, H, W): a view (N, H', W', groups, kh, kw,
    C/groups) of the zero-padded channels-last input, channels innermost (the engine's patch
    order, see :func:`conv_matrix`), and the padding ``((top, bottom), (left, right))``. The
    padded copy is skipped when x is a view of NHWC float32 memory and nothing is padded."""
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
        xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=np.float32)
        xp[:, pt:pt + h, pl:pl + w, :] = xt
    windows = sliding_window_view(xp, (eh, ew), axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
    windows = windows[:, :oh, :ow].reshape(n, oh, ow, groups, c // groups, kh, kw)
    return windows.transpose(0, 1, 2, 3, 5, 6, 4), ((pt, pb), (pl, pr))


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Pair,
           padding, dilation: Pair, groups: int, scratch_bytes: int = DEFAULT_SCRATCH_BYTES,
           hook: ChunkHook | None = None, matrix: np.ndarray | None = None,
           scratch: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as PyTorch) by im2col and one matrix product per group
    and band of output rows.

    x: ndarray of shape (N, C, H, W); weight: (K, C/groups, kh, kw); bias: (K,) or None;
    matrix: optionally ``conv_matrix(weight, groups)``, computed once by the caller;
    scratch: optionally a flat float32 buffer to build the patch bands in (reused across calls
    saves the page faults of a fresh allocation); used if it is large enough.
    Returns (N, K, H', W') float32 (an NCHW view of channels-last memory).

    The patch matrix is built a band of output rows at a time in one reused buffer of about
    BAND_BYTES and never more than ``scratch_bytes`` (at least one output row is done at once).
    """
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    windows, _ = patch_windows(x, (kh, kw), stride, padding, dilation, groups)
    oh, ow = windows.shape[1:3]
    kk = kh * kw * cg
    wmat = conv_matrix(weight, groups) if matrix is None else matrix
    out = np.empty((n, oh, ow, k), dtype=np.float32)
    band = conv_band(oh, ow, kh * kw * c, scratch_bytes)
    size = band * ow * groups * kk
    if scratch is not None and scratch.size >= size:
        buffer = scratch[:size].reshape(band, ow, groups, kh, kw, cg)
    else:
        buffer = np.empty((band, ow, groups, kh, kw, cg), dtype=np.float32)
    kg = k // groups
    total = n * oh
    done = 0
    for i in range(n):
        for r0 in range(0, oh, band):
            r1 = min(oh, r0 + band)
            cols = buffer[:r1 - r0]
            np.copyto(cols, windows[i, r0:r1])  # the im2col copy
            cols = cols.reshape((r1 - r0) * ow, groups, kk)
            dst = out[i, r0:r1].reshape((r1 - r0) * ow, k)
            if groups == 1:
                np.matmul(cols[:, 0, :], wmat[0].T, out=dst)
            else:
                for g in range(groups):
                    dst[:, g * kg:(g + 1) * kg] = cols[:, g, :] @ wmat[g].T
            if bias is not None:
                dst += bias  # while the band is still in cache
            done += r1 - r0
            if hook is not None and done < total:
                hook(done / total)
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


def _windows(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
             ceil_mode: bool, fill: float) -> np.ndarray:
    """Pooling windows (N, C, oh, ow, kh, kw) over x padded with ``fill``."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    oh, xh = _pool_geometry(h, kh, sh, ph, dh, ceil_mode)
    ow, xw = _pool_geometry(w, kw, sw, pw, dw, ceil_mode)
    if ph or pw or xh or xw:
        xp = np.full((n, c, h + 2 * ph + xh, w + 2 * pw + xw), fill, dtype=np.float32)
        xp[:, :, ph:ph + h, pw:pw + w] = x
    else:
        xp = x
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    return win[:, :, :oh, :ow]


def _tiles(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
           ceil_mode: bool) -> np.ndarray | None:
    """Fast path: windows that tile the input exactly are a reshape, no copy."""
    n, c, h, w = x.shape
    (kh, kw) = kernel
    if (tuple(stride) != (kh, kw) or padding != (0, 0) or dilation != (1, 1)
            or h % kh or w % kw):
        return None
    return x.reshape(n, c, h // kh, kh, w // kw, kw)


def max_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
               ceil_mode: bool) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'); padding counts as −∞, as in PyTorch."""
    tiles = _tiles(x, kernel, stride, padding, dilation, ceil_mode)
    if tiles is not None:
        return tiles.max(axis=(3, 5))
    return _windows(x, kernel, stride, padding, dilation, ceil_mode, -np.inf).max(axis=(4, 5))


def _avg_divisor(size: int, k: int, s: int, p: int, out: int, include_pad: bool) -> np.ndarray:
    """PyTorch's divisor per output index along one axis: the window clipped to the padded input
    (count_include_pad) or to the real input."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if include_pad:
        return (end - start).astype(np.float32)
    return (np.minimum(end, size) - np.maximum(start, 0)).astype(np.float32)


def avg_pool2d(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool,
               count_include_pad: bool) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W')."""
    tiles = _tiles(x, kernel, stride, padding, (1, 1), ceil_mode)
    if tiles is not None:
        return tiles.mean(axis=(3, 5), dtype=np.float32)
    sums = _windows(x, kernel, stride, padding, (1, 1), ceil_mode, 0.0).sum(axis=(4, 5))
    oh, ow = sums.shape[2:]
    dv_h = _avg_divisor(x.shape[2], kernel[0], stride[0], padding[0], oh, count_include_pad)
    dv_w = _avg_divisor(x.shape[3], kernel[1], stride[1], padding[1], ow, count_include_pad)
    sums /= np.outer(dv_h, dv_w)
    return sums


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
