"""Backward passes of the engine's ops with respect to their inputs (vector–Jacobian products).

Each function takes ``gy``, the gradient of some scalar with respect to the op's output, and
returns the gradient with respect to the op's input(s). They are what ``Network.input_gradient``
chains to find the effective receptive field of a unit. Gradients are computed in float64,
but for convolutions: float32 matrix products of the BLAS and col2im (:func:`conv2d_input`,
shared with saliency and Grad-CAM), as PyTorch's autograd computes them; the values differ from
float64 ones by float32 rounding (relative 1e-6), and the result of ``input_gradient`` is
float32 anyway.
"""
from __future__ import annotations

import numpy as np

from designer.engine.ops import (BLAS, Alloc, Pair, _avg_divisor, _pool_geometry,
                                 channels_last, conv2d as ops_conv2d, conv_block_values, conv_matrix,
                                 empty_maps, erf, keep_where, new_array, pad_amounts,
                                 patch_windows, pool_padded, pool_taps, run_parallel,
                                 sample_blocks, sample_parts)
from designer.engine.ops import max_pool2d as ops_max_pool2d


def _strided(start: int, step: int, count: int) -> slice:
    return slice(start, start + step * (count - 1) + 1, step)


#: values of the patch gradients the input gradient's col2im works on at once (8 MiB of float32)
PATCH_BLOCK_VALUES = 2 * 2**20
#: input channels (per group) below which the input gradient's col2im works channels-first:
#: each kernel tap's gradient for one channel is then a run of pixels, not a run of a few
#: channels (3× faster for an RGB input's first layer; the same from 32 channels on)
CHANNELS_FIRST_BELOW = 16


def conv2d(gy: np.ndarray, x_shape: tuple[int, ...], weight: np.ndarray, stride: Pair, padding,
           dilation: Pair, groups: int, matrix: np.ndarray | None = None,
           block: int | None = None) -> np.ndarray:
    """Conv2d's gradient with respect to its input: float32 (N, C, H, W) (an NCHW view of
    channels-last memory), given ``gy`` (N, K, H', W') for its output (any float type) and the
    weight (K, C/groups, kh, kw); ``matrix``: ``ops.conv_matrix(weight, groups)`` if the caller
    has it (made here otherwise). The products are float32 matrix products of the BLAS (PyTorch
    too works in float32): see :func:`conv2d_input`. ``block``: values of patch gradients
    worked on at once (default PATCH_BLOCK_VALUES)."""
    kernel = tuple(weight.shape[2:])
    if matrix is None:
        matrix = conv_matrix(weight, groups)
    return conv2d_input(gy, x_shape, matrix, kernel, stride, padding, dilation, groups, block)


def conv2d_input(gy: np.ndarray, x_shape: tuple[int, ...], matrix: np.ndarray,
                 kernel: Pair, stride: Pair, padding, dilation: Pair, groups: int,
                 block: int | None = None) -> np.ndarray:
    """Conv2d's gradient with respect to its input, float32 (N, C, H, W) (an NCHW view of
    channels-last memory, but see below), given ``gy`` (N, K, H', W') for its output and
    ``matrix``, the weight in the engine's patch order (``ops.conv_matrix``: (groups, K/g,
    kh·kw·C/g), which the network caches). Per band of output rows and group, one matrix product
    ``dout @ matrix`` gives the gradient of every patch (``block`` values at most, at least one
    row; default PATCH_BLOCK_VALUES), sent back to the input pixels it was read from one kernel
    tap at a time (col2im), as the training pass's backward (:func:`conv2d_train`) does. The
    products use the BLAS's threads; splitting the rows over the engine's threads instead (each
    with a single-threaded BLAS, so that col2im's adds run beside the products) was measured
    1.3-1.6× slower on VGG-16's 224² and 112² layers.

    With fewer than CHANNELS_FIRST_BELOW input channels a group, the products are transposed
    (``matrix.T @ dout.T``) and the result is plain NCHW memory instead.

    Only the rows and columns of ``gy`` between its first and last nonzero ones are worked on
    (the gradient of one unit, ``input_gradient``'s seed, is zero outside its receptive field:
    a quarter to all of each layer's maps in VGG-16), unless the weight holds inf or NaN (whose
    products with the zeros are NaN, as in a full pass)."""
    n, c, h, w = x_shape
    kh, kw = kernel
    (pt, pb), (pl, pr) = pad_amounts(padding, (kh, kw), dilation)
    sh, sw = stride
    dh, dw = dilation
    k, (oh, ow) = gy.shape[1], gy.shape[2:]
    kg, cg = k // groups, c // groups
    patch = kh * kw * cg
    hp, wp = h + pt + pb, w + pl + pr
    block = PATCH_BLOCK_VALUES if block is None else block
    first = cg < CHANNELS_FIRST_BELOW
    gxp = np.zeros((n, groups, cg, hp, wp) if first else (n, hp, wp, groups, cg), np.float32)
    (i0, i1), (j0, j1) = _nonzero_span(gy)
    if (i1 - i0, j1 - j0) != (oh, ow) and not np.isfinite(matrix.sum(dtype=np.float64)):
        (i0, i1), (j0, j1) = (0, oh), (0, ow)  # 0 · inf is NaN: every output counts
    width = j1 - j0
    # (N, rows, columns, K), float32
    gyt = np.ascontiguousarray(gy[:, :, i0:i1, j0:j1].transpose(0, 2, 3, 1), dtype=np.float32)
    band = max(1, min(i1 - i0, block // max(1, width * groups * patch)))
    dcols = np.empty(band * width * groups * patch, dtype=np.float32)
    for i in range(n):
        for r0 in range(i0, i1, band):
            rows = min(band, i1 - r0)
            gyb = gyt[i, r0 - i0:r0 - i0 + rows].reshape(rows * width, k)
            if first:  # per group, (patch, pixels): each tap's channel is a run of pixels
                out = dcols[:groups * patch * rows * width].reshape(groups, patch, rows * width)
                for g in range(groups):
                    np.matmul(matrix[g].T, gyb[:, g * kg:(g + 1) * kg].T, out=out[g])
                taps = out.reshape(groups, kh, kw, cg, rows, width)
                target = gxp[i]
            else:
                out = dcols[:rows * width * groups * patch].reshape(rows * width, groups, patch)
                for g in range(groups):
                    np.matmul(gyb[:, g * kg:(g + 1) * kg], matrix[g], out=out[:, g, :])
                taps = out.reshape(rows, width, groups, kh, kw, cg)
            for a in range(kh):
                rs = _strided(r0 * sh + a * dh, sh, rows)
                for b in range(kw):
                    cs = _strided(j0 * sw + b * dw, sw, width)
                    if first:
                        target[:, :, rs, cs] += taps[:, a, b]
                    else:
                        gxp[i, rs, cs] += taps[:, :, :, a, b, :]
    if first:
        return gxp.reshape(n, c, hp, wp)[:, :, pt:pt + h, pl:pl + w]
    gx = gxp.reshape(n, hp, wp, c)[:, pt:pt + h, pl:pl + w]
    return gx.transpose(0, 3, 1, 2)


def _nonzero_span(gy: np.ndarray) -> tuple[Pair, Pair]:
    """((first row, last row + 1), (first column, last column + 1)) of the maps gy (N, K, H, W)
    holding every value that is not zero (NaN included), over all samples and channels; empty
    spans ((0, 0), (0, 0)) when gy is all zeros."""
    nonzero = np.logical_or.reduce(gy != 0, axis=(0, 1))  # (H, W)
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    if rows.size == 0:
        return (0, 0), (0, 0)
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


def _tiles(kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> bool:
    """Whether pooling windows never overlap (the stride is at least the dilated kernel): each
    input pixel is then read by one window at most, so its gradient is written, not added."""
    return (stride[0] >= dilation[0] * (kernel[0] - 1) + 1
            and stride[1] >= dilation[1] * (kernel[1] - 1) + 1)


def max_pool2d(gy: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
               dilation: Pair, ceil_mode: bool, dtype=np.float64,
               y: np.ndarray | None = None, alloc: Alloc = new_array,
               out: np.ndarray | None = None) -> np.ndarray:
    """The gradient goes to the first largest value of each window (PyTorch's choice on ties;
    a window holding NaN sends it to its first NaN). ``dtype``: of the result (float32 in
    training); ``y``: the forward pass's output, if at hand (else it is worked out again).

    Tap by tap over strided views of the padded input (no copy of the windows): a tap takes
    a window's gradient where it equals the window's maximum and no earlier tap took it. The
    result keeps x's layout (channels-last or not), or goes to ``out`` (x's shape);
    ``alloc`` makes the big arrays."""
    n, c, h, w = x.shape
    xp, oh, ow = pool_padded(x, kernel, stride, padding, dilation, ceil_mode, -np.inf, alloc)
    gy = np.asarray(gy, dtype=dtype)
    if y is None:
        y = ops_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, alloc)
    nan = bool(np.isnan(y).any())
    last_cl = channels_last(y)
    if out is not None and xp.shape == x.shape:  # nothing padded: straight into out
        gxp = out
        gxp.fill(0)
    else:
        gxp = empty_maps(xp.shape, channels_last(x), dtype, 0, alloc)
    hit, free = alloc(y.shape, np.bool_, last_cl), alloc(y.shape, np.bool_, last_cl)
    masked = None if _tiles(kernel, stride, padding, dilation) else alloc(y.shape, dtype, last_cl)
    last = kernel[0] * kernel[1] - 1
    taps = zip(pool_taps(xp, kernel, stride, dilation, oh, ow),
               pool_taps(gxp, kernel, stride, dilation, oh, ow))
    for t, ((_, view), (_, target)) in enumerate(taps):
        np.equal(view, y, out=hit)
        if nan:
            hit |= np.isnan(view)
        if t == 0:
            np.logical_not(hit, out=free)  # windows whose gradient no tap has taken yet
        else:
            hit &= free
            if t < last:
                free ^= hit
        if masked is None:  # every pixel is read by one window at most: written once
            keep_where(hit, gy, target)
        else:
            target += keep_where(hit, gy, masked)
    gx = gxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]
    if out is None or gxp is out:
        return gxp if gxp is out else gx
    np.copyto(out, gx)
    return out


def avg_pool2d(gy: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair,
               padding: Pair, ceil_mode: bool, count_include_pad: bool,
               dtype=np.float64, channels_last_out: bool = False,
               alloc: Alloc = new_array, out: np.ndarray | None = None) -> np.ndarray:
    """Each window's gradient shared out over its pixels, tap by tap over strided views;
    ``channels_last_out``: lay the result out channels-last (as the forward's input was);
    ``alloc`` makes the result (or it goes to ``out``, shaped ``x_shape``)."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, xh = _pool_geometry(h, kh, sh, ph, 1, ceil_mode)
    ow, xw = _pool_geometry(w, kw, sw, pw, 1, ceil_mode)
    divisor = np.outer(_avg_divisor(h, kh, sh, ph, oh, count_include_pad),
                       _avg_divisor(w, kw, sw, pw, ow, count_include_pad))
    share = (gy / divisor).astype(dtype, copy=False)
    hp, wp = h + 2 * ph + xh, w + 2 * pw + xw
    tiles = _tiles(kernel, stride, padding, (1, 1))
    if out is not None and (hp, wp) == (h, w):
        gxp = out
        gxp.fill(0)
    else:
        gxp = empty_maps((n, c, hp, wp), channels_last_out, dtype, 0, alloc)
    for _, target in pool_taps(gxp, kernel, stride, (1, 1), oh, ow):
        if tiles:
            np.copyto(target, share, casting="same_kind")
        else:
            target += share
    gx = gxp[:, :, ph:ph + h, pw:pw + w]
    if out is None or gxp is out:
        return gxp if gxp is out else gx
    np.copyto(out, gx)
    return out


def adaptive_avg_pool2d(gy: np.ndarray, x_shape: tuple[int, ...],
                        dtype=np.float64) -> np.ndarray:
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    gx = np.zeros((n, c, h, w), dtype=dtype)
    for a in range(oh):
        h0, h1 = (a * h) // oh, -(-((a + 1) * h) // oh)
        for b in range(ow):
            w0, w1 = (b * w) // ow, -(-((b + 1) * w) // ow)
            gx[:, :, h0:h1, w0:w1] += (gy[:, :, a, b] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return gx


def batch_norm(gy: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
               eps: float) -> np.ndarray:
    scale = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    if weight is not None:
        scale = scale * weight
    return gy * scale.reshape(1, -1, 1, 1)


def layer_norm(gy: np.ndarray, x: np.ndarray, weight: np.ndarray | None,
               eps: float) -> np.ndarray:
    axes = tuple(range(1, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    xhat = (x64 - mean) * inv
    g = gy * weight if weight is not None else gy
    return inv * (g - g.mean(axis=axes, keepdims=True)
                  - xhat * (g * xhat).mean(axis=axes, keepdims=True))


#: a Linear weight is turned to float64 this many values at a time (VGG-16's first fully
#: connected layer would otherwise pass through an 800 MB float64 copy)
BLOCK_VALUES = 1 << 20


def linear(gy: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """gy (N, F') -> (N, F): gy · W, in float64, a block of W's rows at a time."""
    out = np.zeros((gy.shape[0], weight.shape[1]))
    step = max(1, BLOCK_VALUES // max(1, weight.shape[1]))
    for start in range(0, weight.shape[0], step):
        block = weight[start:start + step].astype(np.float64)
        out += gy[:, start:start + step] @ block
    return out


def relu(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, gy, 0.0)


def leaky_relu(gy: np.ndarray, x: np.ndarray, slope: float) -> np.ndarray:
    return np.where(x >= 0, gy, gy * slope)


def sigmoid(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = y.astype(np.float64)
    return gy * y * (1.0 - y)


def tanh(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = y.astype(np.float64)
    return gy * (1.0 - y * y)


def gelu(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d/dx x·Φ(x) = Φ(x) + x·φ(x)."""
    x = x.astype(np.float64)
    cdf = 0.5 * (1.0 + erf(x / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return gy * (cdf + x * pdf)


def softmax(gy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Over dimension 1: y ⊙ (gy − Σ gy·y)."""
    y = y.astype(np.float64)
    return y * (gy - (gy * y).sum(axis=1, keepdims=True))


def concat(gy: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(gy, np.cumsum(sizes)[:-1], axis=1)


# ---------------------------------------------------------------- weight gradients (training)

def conv2d_train(gy: np.ndarray, x: np.ndarray, weight: np.ndarray, matrix: np.ndarray,
                 stride: Pair, padding, dilation: Pair, groups: int, need_input: bool,
                 scratch, budget: int = 8 * 2**20, alloc: Alloc = new_array,
                 windows: np.ndarray | None = None, parts: int = 1,
                 patches: np.ndarray | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Conv2d's backward pass for training: (d input or None, d weight, d bias), float32.

    gy: (N, K, H', W'); x: the layer's input (N, C, H, W); weight: (K, C/groups, kh, kw);
    matrix: ``ops.conv_matrix(weight, groups)``; scratch(values): a flat float32 buffer of at
    least that many values (the caller's per-thread one; ``scratch(values, part)`` for the
    parts after the first, which run at once, each in its own). Works on the forward pass's im2col
    layout (channels-last patches ordered (kh, kw, C/g)), a block of output rows at a time
    (``budget`` bytes of patches, see ``ops.sample_blocks``): per block and group, the weight
    gradient is one matrix product ``dout.T @ cols``. The input gradient of a stride-1
    convolution whose output is about as large as its input is the convolution of the
    output gradient (padded) with the flipped kernel (:func:`_input_gradient_by_convolution`);
    otherwise the patch gradient is one (batched) matrix product ``dout @ W`` laid out kernel
    tap by tap, so that col2im sends each tap's gradients back to the input pixels it read
    with one strided add of contiguous rows. The bias gradient is one matrix–vector product.
    ``alloc`` makes the large arrays (and the padded input, unless ``windows``, the forward
    pass's ``ops.patch_windows(x, ...)[0]``, is given). ``parts``: split the samples into
    that many parts done at once on as many threads (each with its own block buffer and
    weight-gradient sum, added at the end; a single-threaded BLAS). ``patches``: the forward
    pass's whole patch matrix, if it kept it (``ops.conv2d``'s), used instead of copying the
    patches again."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    sh, sw = stride
    dh, dw = dilation
    (pt, pb), (pl, pr) = pad_amounts(padding, (kh, kw), dilation)
    if windows is None:  # the forward pass's patches
        windows, _ = patch_windows(x, (kh, kw), stride, padding, dilation, groups, alloc)
    oh, ow = gy.shape[2:]
    kg, kk, taps = k // groups, kh * kw * cg, kh * kw
    gyt = gy.transpose(0, 2, 3, 1)  # (N, oh, ow, K)
    if not (gyt.flags.c_contiguous and gyt.dtype == np.float32):
        gyt = _copy(gyt, alloc)
    hp, wp = h + pt + pb, w + pl + pr
    by_convolution = need_input and _by_convolution(stride, (h, w), (oh, ow))
    gxp = None
    if need_input and not by_convolution:
        gxp = alloc((n, hp, wp, groups, cg))
        gxp.fill(0)
    # per group, the weight as (taps, K/g, C/g) matrices: views of ``matrix``, no copy
    wtaps = matrix.reshape(groups, kg, taps, cg).transpose(0, 2, 1, 3)
    ranges = sample_parts(n, parts)
    plans, buffers = [], []  # per part: its blocks and its buffer, made here, in order
    for index, (s0, s1) in enumerate(ranges):
        blocks = list(sample_blocks(s1 - s0, oh, 4 * ow * groups * kk, budget))
        most = max((i1 - i0) * (r1 - r0) for i0, i1, r0, r1 in blocks) * ow * groups * kk
        transposed = (conv_block_values(s1 - s0, h, w, kh * kw * k, 2 * budget)
                      if by_convolution else 0)  # the block of the input gradient's conv
        copies = (0 if patches is not None else 1) + (1 if gxp is not None else 0)
        size = max(most * copies, transposed)  # one buffer for the patches and their gradient
        plans.append((s0, blocks, 0 if patches is not None else most))
        buffers.append(scratch(size, index))
    gws = [np.zeros((groups, kg, kk), dtype=np.float32) for _ in ranges]

    def part(index: int) -> None:
        s0, blocks, most = plans[index]
        buffer, gw = buffers[index], gws[index]
        for i0, i1, r0, r1 in blocks:
            i0, i1 = i0 + s0, i1 + s0
            ni, nr = i1 - i0, r1 - r0
            rows = ni * nr * ow
            if patches is not None:  # kept by the forward pass
                cols = patches[i0:i1, r0:r1].reshape(rows, groups, kk)
            else:
                cols = buffer[:rows * groups * kk].reshape(ni, nr, ow, groups, kh, kw, cg)
                np.copyto(cols, windows[i0:i1, r0:r1])  # the forward pass's im2col copy
                cols = cols.reshape(rows, groups, kk)
            gyb = gyt[i0:i1, r0:r1].reshape(rows, k)
            for g in range(groups):
                gw[g] += gyb[:, g * kg:(g + 1) * kg].T @ cols[:, g, :]
            if gxp is None:
                continue
            dcols = buffer[most:most + rows * groups * kk].reshape(groups, taps, rows, cg)
            for g in range(groups):  # (rows, K/g) @ (taps, K/g, C/g) -> (taps, rows, C/g)
                np.matmul(gyb[:, g * kg:(g + 1) * kg], wtaps[g], out=dcols[g])
            dtaps = dcols.reshape(groups, taps, ni, nr, ow, cg)
            for a in range(kh):
                rs = _strided(r0 * sh + a * dh, sh, nr)
                for b in range(kw):
                    cs = _strided(b * dw, sw, ow)
                    for g in range(groups):  # parts hold different samples: no overlap
                        gxp[i0:i1, rs, cs, g, :] += dtaps[g, a * kw + b]

    if len(ranges) == 1:
        part(0)
    else:
        with BLAS.single():
            run_parallel([lambda i=i: part(i) for i in range(len(ranges))])
    gw = gws[0]
    for other in gws[1:]:
        gw += other
    gweight = np.ascontiguousarray(
        gw.reshape(groups, kg, kh, kw, cg).transpose(0, 1, 4, 2, 3)).reshape(k, cg, kh, kw)
    flat = gyt.reshape(-1, k)
    gbias = np.matmul(np.ones(flat.shape[0], np.float32), flat)  # Σ over samples and pixels
    gx = None
    if gxp is not None:
        gx = gxp.reshape(n, hp, wp, c)[:, pt:pt + h, pl:pl + w, :].transpose(0, 3, 1, 2)
    elif by_convolution:
        gx = _input_gradient_by_convolution(gyt, (n, c, h, w), weight, (pt, pl), dilation,
                                            groups, scratch, 2 * budget, alloc, len(ranges))
    return gx, gweight, gbias


def _by_convolution(stride: Pair, size: Pair, out: Pair) -> bool:
    """Whether a convolution's input gradient is worked out as a convolution (stride 1, and
    an output about as large as the input, so that the transposed convolution does no more
    work than col2im; a 'valid' 5×5 on 5×5 maps would do 25 times more) rather than by
    col2im."""
    return tuple(stride) == (1, 1) and 2 * size[0] * size[1] <= 3 * out[0] * out[1]


def _copy(a: np.ndarray, alloc: Alloc) -> np.ndarray:
    """A C-contiguous float32 copy of ``a`` made by ``alloc``."""
    out = alloc(a.shape)
    np.copyto(out, a, casting="same_kind")
    return out


def _input_gradient_by_convolution(gyt: np.ndarray, x_shape: tuple[int, ...],
                                   weight: np.ndarray, pad: Pair, dilation: Pair, groups: int,
                                   scratch, scratch_bytes: int, alloc: Alloc, parts: int = 1
                                   ) -> np.ndarray:
    """The input gradient of a stride-1 convolution as a convolution: with the output gradient
    gyt (N, H', W', K) placed in zeros at offset ((kh−1)·dh − top, (kw−1)·dw − left) (cropped
    where that is negative), d x = that, convolved (dilation d, no padding) with the kernel
    flipped in both directions and its in/out channels swapped per group. One im2col and
    matrix product, as the forward pass; no scatter. Returns (N, C, H, W) float32 (an NCHW
    view of channels-last memory)."""
    n, c, h, w = x_shape
    k, cg, kh, kw = weight.shape
    oh, ow = gyt.shape[1:3]
    eh, ew = (kh - 1) * dilation[0], (kw - 1) * dilation[1]
    top, left = eh - pad[0], ew - pad[1]
    gyp = alloc((n, h + eh, w + ew, k))
    r0, c0 = max(0, -top), max(0, -left)  # rows and columns of gy that land inside
    r1, c1 = min(oh, h + eh - top), min(ow, w + ew - left)
    if r1 > r0 and c1 > c0:
        _zero_outside(gyp, r0 + top, r1 + top, c0 + left, c1 + left)
        gyp[:, r0 + top:r1 + top, c0 + left:c1 + left] = gyt[:, r0:r1, c0:c1]
    else:  # no output pixel reads the input (all padding): the gradient is zero
        gyp.fill(0)
    kg = k // groups
    flipped = np.ascontiguousarray(  # (C, K/groups, kh, kw)
        weight[:, :, ::-1, ::-1].reshape(groups, kg, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    ).reshape(c, kg, kh, kw)
    first = sample_parts(n, parts)[0]  # the part that builds its blocks in ``scratch``
    values = conv_block_values(first[1] - first[0], h, w, kh * kw * k, scratch_bytes)
    return ops_conv2d(gyp.transpose(0, 3, 1, 2), flipped, None, (1, 1), (0, 0), dilation,
                      groups, scratch_bytes, None, None, scratch(values), alloc, None, parts,
                      scratch)


def _zero_outside(a: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
    """Zero every pixel of the maps a (N, H, W, C) outside rows r0:r1 and columns c0:c1."""
    a[:, :r0], a[:, r1:], a[:, r0:r1, :c0], a[:, r0:r1, c1:] = 0, 0, 0, 0


def linear_train(gy: np.ndarray, x: np.ndarray, weight: np.ndarray, need_input: bool
                 ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Linear's backward pass: gy (N, F'), x (N, F), weight (F', F) -> (d input (N, F) or
    None, d weight (F', F), d bias (F',)), float32."""
    gy = gy.astype(np.float32, copy=False)
    gx = np.matmul(gy, weight, dtype=np.float32) if need_input else None
    gw = np.matmul(gy.T, x, dtype=np.float32)
    gb = gy.sum(axis=0, dtype=np.float64).astype(np.float32)
    return gx, gw, gb


def layer_norm_train(gy: np.ndarray, x: np.ndarray, weight: np.ndarray | None, eps: float
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """LayerNorm's backward pass (over every feature of each sample): (d input, d weight,
    d bias); the last two None without elementwise affine. In float64, returned as float32."""
    axes = tuple(range(1, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    xhat = (x64 - mean) * inv
    gy64 = gy.astype(np.float64)
    g = gy64 * weight if weight is not None else gy64
    gx = inv * (g - g.mean(axis=axes, keepdims=True)
                - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    if weight is None:
        return gx.astype(np.float32), None, None
    return (gx.astype(np.float32), (gy64 * xhat).sum(axis=0).astype(np.float32),
            gy64.sum(axis=0).astype(np.float32))
