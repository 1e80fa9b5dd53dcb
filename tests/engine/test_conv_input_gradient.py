"""Conv2d's gradient with respect to its input (``backward.conv2d``, what ``input_gradient``
chains, and ``backward.conv2d_input``, what saliency and Grad-CAM use on the cached weight
matrix): float32 matrix products and col2im against a float64 loop over output pixels and kernel
taps written from the definition, for strides, paddings, dilations, groups and bands of rows."""
from __future__ import annotations

import numpy as np
import pytest

from designer.engine import backward, explain, ops


@pytest.fixture(params=["channels-last", "channels-first"], autouse=True)
def col2im_layout(request, monkeypatch):
    """Every test in both of col2im's layouts (channels-first is for few channels a group)."""
    below = 0 if request.param == "channels-last" else 1 << 30
    monkeypatch.setattr(backward, "CHANNELS_FIRST_BELOW", below)
    return request.param


def reference(gy, x_shape, weight, stride, padding, dilation, groups):
    """d x[n, c, r, q] = Σ over the outputs (i, j) and taps (a, b) that read input (r, q):
    gy[n, k, i, j] · weight[k, c, a, b], in float64, one output pixel and tap at a time."""
    n, c, h, w = x_shape
    k, cg, kh, kw = weight.shape
    (pt, _), (pl, _) = ops.pad_amounts(padding, (kh, kw), dilation)
    gx = np.zeros(x_shape)
    kg = k // groups
    w64 = weight.astype(np.float64)
    gy = np.asarray(gy, dtype=np.float64)
    for i in range(gy.shape[2]):
        for j in range(gy.shape[3]):
            for a in range(kh):
                r = i * stride[0] - pt + a * dilation[0]
                if not 0 <= r < h:
                    continue
                for b in range(kw):
                    q = j * stride[1] - pl + b * dilation[1]
                    if not 0 <= q < w:
                        continue
                    for g in range(groups):
                        ks, cs = slice(g * kg, (g + 1) * kg), slice(g * cg, (g + 1) * cg)
                        gx[:, cs, r, q] += gy[:, ks, i, j] @ w64[ks, :, a, b]
    return gx


CONVS = [  # (input shape, out_channels, kernel, stride, padding, dilation, groups)
    ((2, 3, 9, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 2, 11, 10), 3, (3, 2), (2, 3), (0, 1), (2, 1), 1),
    ((1, 4, 7, 7), 6, (3, 3), (2, 2), (2, 0), (1, 1), 2),
    ((3, 6, 6, 5), 3, (4, 3), (1, 1), "same", (1, 2), 3),
    ((1, 3, 12, 12), 5, (7, 7), (2, 2), (3, 3), (1, 1), 1),
    ((1, 2, 5, 5), 2, (1, 1), (2, 2), (0, 0), (1, 1), 1),
    ((2, 5, 6, 7), 4, (1, 1), (1, 1), (0, 0), (1, 1), 1),       # 1×1: one product
    ((1, 2, 5, 5), 3, (5, 5), (1, 1), "valid", (1, 1), 1),      # output 1×1
    ((1, 6, 8, 8), 6, (3, 3), (1, 1), (1, 1), (1, 1), 6),       # depthwise
    ((1, 4, 9, 9), 8, (2, 2), (2, 2), "valid", (1, 1), 1),      # tiles: no tap overlaps
    ((1, 3, 10, 9), 2, (3, 3), (3, 2), (4, 1), (3, 2), 1),      # padding beyond the kernel
    ((2, 4, 6, 6), 4, (4, 4), (1, 1), "same", (1, 1), 2),       # even kernel: uneven padding
]


def case_arrays(case, seed=0):
    shape, k, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed + shape[1] * 7 + k)
    weight = rng.standard_normal((k, shape[1] // groups) + kernel).astype(np.float32)
    pads = ops.pad_amounts(padding, kernel, dilation)
    oh = (shape[2] + sum(pads[0]) - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (shape[3] + sum(pads[1]) - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    gy = rng.standard_normal((shape[0], k, oh, ow))
    return weight, gy


def close(got, expected, rel=1e-6):
    scale = np.abs(expected).max()
    assert scale > 1e-3  # not vacuous
    assert np.abs(got - expected).max() <= rel * scale, np.abs(got - expected).max() / scale


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("block", [None, 1, 50])
def test_backward_conv2d_is_the_definition(case, block, col2im_layout):
    """In one block, one output row at a time (block 1) and a few rows at a time; float32,
    laid out channels-last (an NCHW view) or NCHW as col2im worked."""
    shape, _, kernel, stride, padding, dilation, groups = case
    weight, gy = case_arrays(case)
    expected = reference(gy, shape, weight, stride, padding, dilation, groups)
    got = backward.conv2d(gy, shape, weight, stride, padding, dilation, groups, block=block)
    assert got.shape == shape and got.dtype == np.float32
    assert (got.strides[1] == 4) == (col2im_layout == "channels-last")  # channels adjacent
    close(got, expected)
    matrix = ops.conv_matrix(weight, groups)
    same = backward.conv2d_input(gy, shape, matrix, kernel, stride, padding, dilation, groups,
                                 block)
    assert np.array_equal(same, got)
    assert np.array_equal(backward.conv2d(gy, shape, weight, stride, padding, dilation, groups,
                                          matrix=matrix, block=block), got)


@pytest.mark.parametrize("case", CONVS[:4])
def test_any_layout_and_float_type_of_the_output_gradient(case):
    """float64 or float32, NCHW or an NCHW view of channels-last memory: the same result."""
    shape, _, _, stride, padding, dilation, groups = case
    weight, gy = case_arrays(case, seed=1)
    base = backward.conv2d(gy, shape, weight, stride, padding, dilation, groups)
    gy32 = gy.astype(np.float32)
    last = np.ascontiguousarray(gy32.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for variant in (gy32, last):
        got = backward.conv2d(variant, shape, weight, stride, padding, dilation, groups)
        close(got, base)
    close(base, reference(gy32, shape, weight, stride, padding, dilation, groups))


def test_saliency_uses_the_same_convolution_backward():
    """explain's helper is backward.conv2d_input with explain's block size (one implementation)."""
    case = CONVS[1]
    shape, _, kernel, stride, padding, dilation, groups = case
    weight, gy = case_arrays(case)
    matrix = ops.conv_matrix(weight, groups)
    assert np.array_equal(
        explain.conv2d_input_gradient(gy, shape, matrix, kernel, stride, padding, dilation,
                                      groups),
        backward.conv2d(gy, shape, weight, stride, padding, dilation, groups))


def test_works_in_bands_of_rows_not_a_float64_copy_per_tap():
    """Memory: at most a band of float32 patch gradients besides the float32 result (the float64
    einsum per tap before made a float64 copy of the output gradient's size per tap and a float64
    padded result)."""
    import tracemalloc
    weight = np.ones((8, 8, 3, 3), dtype=np.float32)
    gy = np.ones((1, 8, 64, 64))
    patches = 64 * 64 * 8 * 9 * 4  # bytes of every patch's gradient at once: 1.2 MB
    result = 66 * 66 * 8 * 4  # the padded float32 result

    def peak(block):
        tracemalloc.start()
        try:
            backward.conv2d(gy, (1, 8, 64, 64), weight, (1, 1), (1, 1), (1, 1), 1, block=block)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(2**30) > patches
    small = peak(64 * 8 * 9 * 2)  # two rows of patches at a time
    assert small < patches / 2
    assert small < 2 * result + 64 * 64 * 8 * 4 + 2 * 64 * 8 * 9 * 4 + 200_000


@pytest.mark.parametrize("case", CONVS)
def test_a_gradient_zero_outside_a_few_units_is_the_definition(case):
    """input_gradient's seed: one unit, or a patch of them, the rest exact zeros; only the span
    of the nonzero rows and columns is worked on, and the result is the full pass's."""
    shape, _, _, stride, padding, dilation, groups = case
    weight, gy = case_arrays(case, seed=2)
    oh, ow = gy.shape[2:]
    for rows, cols in [((oh - 1, oh), (0, 1)), ((oh // 2, oh // 2 + 1), (ow // 2, ow)),
                       ((0, max(1, oh // 2)), (ow - 1, ow))]:
        sparse = np.zeros_like(gy)
        sparse[:, :, rows[0]:rows[1], cols[0]:cols[1]] = gy[:, :, rows[0]:rows[1], cols[0]:cols[1]]
        for block in (None, 1):
            got = backward.conv2d(sparse, shape, weight, stride, padding, dilation, groups,
                                  block=block)
            expected = reference(sparse, shape, weight, stride, padding, dilation, groups)
            close(got, expected)
            assert np.array_equal(got != 0, expected != 0)


@np.errstate(invalid="ignore")
def test_all_zero_gradient_and_non_finite_values():
    case = CONVS[0]
    shape, _, _, stride, padding, dilation, groups = case
    weight, gy = case_arrays(case, seed=3)
    zero = backward.conv2d(np.zeros_like(gy), shape, weight, stride, padding, dilation, groups)
    assert zero.shape == shape and not zero.any()
    sparse = np.zeros_like(gy)
    sparse[0, 1, 2, 3] = 1.0
    # an infinite weight: its products with the zeros are NaN, as in a full pass
    bad = weight.copy()
    bad[2, 1, 0, 0] = np.inf
    for w in (bad, np.where(bad == np.inf, np.nan, bad).astype(np.float32)):
        got = backward.conv2d(sparse, shape, w, stride, padding, dilation, groups)
        expected = reference(sparse, shape, w, stride, padding, dilation, groups)
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        assert np.isnan(got).sum() > 9  # beyond the one unit's taps
        finite = np.isfinite(expected)
        close(got[finite], expected[finite])
    # a NaN in the output gradient reaches the input pixels its taps read, and no others
    nan = sparse.copy()
    nan[1, 0, 5, 5] = np.nan
    got = backward.conv2d(nan, shape, weight, stride, padding, dilation, groups)
    expected = reference(nan, shape, weight, stride, padding, dilation, groups)
    assert np.array_equal(np.isnan(got), np.isnan(expected)) and np.isnan(got).any()
    assert np.isfinite(got[0]).all()
