"""The training pass's fast paths against slow loop references: pooling tap by tap (windows
that tile the input, written once, and overlapping or padded ones, added) forward and backward
in both layouts, the branch-free select, the convolution's backward with its kernel-tap col2im
in blocks of samples and rows, and the arrays a training pass reuses from one pass to the
next."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import designer
from designer.engine import backward, ops
from tests.helpers import chain


def layouts(x):
    """x as plain NCHW memory and as an NCHW view of channels-last memory (what convolutions
    hand on); the same values."""
    return [np.ascontiguousarray(x),
            np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)]


def out_size(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    if ceil_mode:
        o = -(-(size + 2 * p - eff) // s) + 1
        if (o - 1) * s >= size + p:
            o -= 1
        return o
    return (size + 2 * p - eff) // s + 1


def max_pool_backward_ref(gy, x, kernel, stride, padding, dilation, ceil_mode):
    """Loops: each window's gradient goes to its first largest value in row-major order (its
    first NaN if it holds one), padding counting as −∞; won by padding, it goes nowhere."""
    n, c, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    assert gy.shape == (n, c, oh, ow)
    gx = np.zeros(x.shape)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    window = []
                    for u in range(kernel[0]):
                        for v in range(kernel[1]):
                            r = i * stride[0] - padding[0] + u * dilation[0]
                            q = j * stride[1] - padding[1] + v * dilation[1]
                            inside = 0 <= r < h and 0 <= q < w
                            window.append((float(x[b, ch, r, q]) if inside else -np.inf,
                                           (r, q) if inside else None))
                    nans = [pos for value, pos in window if np.isnan(value)]
                    if nans:
                        where = nans[0]
                    else:
                        top = max(value for value, _ in window)
                        where = next(pos for value, pos in window if value == top)
                    if where is not None:
                        gx[b, ch, where[0], where[1]] += gy[b, ch, i, j]
    return gx


def avg_pool_backward_ref(gy, shape, kernel, stride, padding, ceil_mode, include):
    n, c, h, w = shape
    oh = out_size(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    ow = out_size(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    gx = np.zeros(shape)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            rows = [r for r in range(r0, r0 + kernel[0]) if 0 <= r < h]
            cols = [q for q in range(c0, c0 + kernel[1]) if 0 <= q < w]
            if include:
                divisor = ((min(r0 + kernel[0], h + padding[0]) - r0)
                           * (min(c0 + kernel[1], w + padding[1]) - c0))
            else:
                divisor = len(rows) * len(cols)
            for r in rows:
                for q in cols:
                    gx[:, :, r, q] += gy[:, :, i, j] / divisor
    return gx


@st.composite
def pool_cases(draw, kind):
    tiles = draw(st.booleans())
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = ((draw(st.integers(1, 2)), draw(st.integers(1, 2))) if kind == "max"
                else (1, 1))
    if tiles:  # windows that never overlap: the written-once path
        stride = tuple(dilation[i] * (kernel[i] - 1) + 1 + draw(st.integers(0, 1))
                       for i in (0, 1))
    else:
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(dilation[0] * (kernel[0] - 1) + 1, 9))
    w = draw(st.integers(dilation[1] * (kernel[1] - 1) + 1, 9))
    return dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=ceil_mode, shape=(2, draw(st.integers(1, 3)), h, w),
                seed=draw(st.integers(0, 10**6)), ties=draw(st.booleans()))


@settings(max_examples=80, deadline=None)
@given(pool_cases("max"))
def test_max_pool_forward_and_backward_tap_by_tap_match_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    if case["ties"]:  # many equal values: the first one in the window must win
        x = np.round(x).astype(np.float32)
    args = (case["kernel"], case["stride"], case["padding"], case["dilation"],
            case["ceil_mode"])
    for xl in layouts(x):
        y = ops.max_pool2d(xl, *args)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        expected = max_pool_backward_ref(gy, x, *args)
        for dtype in (np.float32, np.float64):
            gx = backward.max_pool2d(gy, xl, *args, dtype, y)
            assert gx.dtype == dtype and gx.shape == x.shape
            np.testing.assert_allclose(gx, expected, rtol=1e-6, atol=1e-6)
        assert ops.channels_last(y) if ops.channels_last(xl) else y.flags.c_contiguous
        # without the forward's output at hand it is worked out again
        np.testing.assert_array_equal(backward.max_pool2d(gy, xl, *args, np.float32),
                                      backward.max_pool2d(gy, xl, *args, np.float32, y))


def test_max_pool_backward_sends_a_nan_window_to_its_first_nan():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], np.float32)
    y = ops.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert np.isnan(y).all()
    gx = backward.max_pool2d(np.ones((1, 1, 1, 1), np.float32), x, (2, 2), (2, 2), (0, 0),
                             (1, 1), False, np.float32, y)
    np.testing.assert_array_equal(gx[0, 0], [[0, 1], [0, 0]])


@settings(max_examples=60, deadline=None)
@given(pool_cases("avg"), st.booleans())
def test_avg_pool_forward_and_backward_tap_by_tap_match_loops(case, include):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(np.float32)
    args = (case["kernel"], case["stride"], case["padding"], case["ceil_mode"])
    for xl in layouts(x):
        y = ops.avg_pool2d(xl, *args, include)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        expected = avg_pool_backward_ref(gy, x.shape, *args, include)
        for channels_last in (False, True):
            gx = backward.avg_pool2d(gy, x.shape, *args, include, np.float32, channels_last)
            assert gx.dtype == np.float32 and gx.shape == x.shape
            np.testing.assert_allclose(gx, expected, rtol=1e-5, atol=1e-6)


def test_the_tiling_fast_paths_equal_the_general_path(monkeypatch):
    """Pooling windows that never overlap are written once; the general path, which adds
    every window's share, gives the same gradients on random shapes, strides and paddings."""
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(30):
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (k[0] + int(rng.integers(0, 2)), k[1] + int(rng.integers(0, 2)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        shape = (2, int(rng.integers(1, 4)), int(rng.integers(k[0], 13)),
                 int(rng.integers(k[1], 13)))
        x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)  # with ties
        ceil = bool(rng.integers(0, 2))
        assert backward._tiles(k, s, p, (1, 1))
        y = ops.max_pool2d(x, k, s, p, (1, 1), ceil)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        a = ops.avg_pool2d(x, k, s, p, ceil, True)
        ga = rng.standard_normal(a.shape).astype(np.float32)
        cases.append((x, k, s, p, ceil, y, gy, ga))

    def both(x, k, s, p, ceil, y, gy, ga):
        return [backward.max_pool2d(gy, xl, k, s, p, (1, 1), ceil, np.float32, y)
                for xl in layouts(x)] + [backward.avg_pool2d(ga, x.shape, k, s, p, ceil, True,
                                                             np.float32, cl)
                                         for cl in (False, True)]
    fast = [both(*case) for case in cases]
    monkeypatch.setattr(backward, "_tiles", lambda *args: False)
    general = [both(*case) for case in cases]
    for f, g in zip(fast, general):
        for a, b in zip(f, g):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_where_is_np_where_exactly_even_for_nan_and_inf(dtype):
    rng = np.random.default_rng(1)
    values = rng.standard_normal((5, 7, 3)).astype(dtype)
    values[0, 0, 0], values[1, 1, 1], values[2, 2, 2] = np.nan, np.inf, -np.inf
    values[3, 3, 0] = -0.0
    mask = rng.random(values.shape) < 0.5
    mask[0, 0, 0] = mask[1, 1, 1] = False
    expected = np.where(mask, values, dtype(0))
    got = ops.keep_where(mask.copy(), values)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.view(f"i{got.itemsize}"),
                                  expected.view(f"i{got.itemsize}"))  # bit for bit
    strided = np.zeros((5, 7, 6), dtype)[:, :, ::2]
    ops.keep_where(mask.copy(), values, strided)
    np.testing.assert_array_equal(strided, expected)


# ------------------------------------------------------------ convolution backward

def conv_backward_ref(gy, x, weight, stride, pads, dilation, groups):
    """Loops in float64: d input, d weight, d bias of a convolution."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    (pt, pb), (pl, pr) = pads
    xp = np.zeros((n, c, h + pt + pb, w + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + w] = x
    gxp = np.zeros_like(xp)
    gw = np.zeros(weight.shape)
    oh, ow = gy.shape[2:]
    kg = k // groups
    for o in range(k):
        g = o // kg
        for i in range(oh):
            for j in range(ow):
                for u in range(kh):
                    for v in range(kw):
                        r, q = i * stride[0] + u * dilation[0], j * stride[1] + v * dilation[1]
                        for cc in range(cg):
                            gw[o, cc, u, v] += (gy[:, o, i, j] * xp[:, g * cg + cc, r, q]).sum()
                            gxp[:, g * cg + cc, r, q] += gy[:, o, i, j] * weight[o, cc, u, v]
    return gxp[:, :, pt:pt + h, pl:pl + w], gw, gy.sum(axis=(0, 2, 3))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_conv_backward_in_blocks_matches_loops(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    groups = data.draw(st.integers(1, 3))
    c, k = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    h = data.draw(st.integers(dilation[0] * (kh - 1) + 1, 8))
    w = data.draw(st.integers(dilation[1] * (kw - 1) + 1, 8))
    n = data.draw(st.integers(1, 3))
    budget = data.draw(st.sampled_from([1, 200, 2000, 8 * 2**20]))  # rows, samples, all
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((k, c // groups, kh, kw)).astype(np.float32)
    y = ops.conv2d(x, weight, None, stride, padding, dilation, groups)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    for xl, gyl in zip(layouts(x), layouts(gy)):
        scratch = np.empty(1 << 16, np.float32)
        gx, gw, gb = backward.conv2d_train(gyl, xl, weight, ops.conv_matrix(weight, groups),
                                           stride, padding, dilation, groups, True,
                                           lambda v, part=0: scratch[:v]
                                           if v <= scratch.size and not part
                                           else np.empty(v, np.float32), budget)
        pads = ops.pad_amounts(padding, (kh, kw), dilation)
        ex, ew, eb = conv_backward_ref(gy.astype(np.float64), x.astype(np.float64),
                                       weight.astype(np.float64), stride, pads, dilation, groups)
        np.testing.assert_allclose(gx, ex, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gw, ew, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gb, eb, rtol=1e-4, atol=1e-4)
        assert gx.dtype == gw.dtype == gb.dtype == np.float32


@pytest.mark.parametrize("padding, dilation, groups", [
    ((2, 2), (1, 1), 1), ((1, 2), (2, 1), 1), ((3, 0), (1, 1), 2), ((0, 0), (1, 1), 1)])
def test_conv_input_gradient_by_convolution_equals_col2im(monkeypatch, padding, dilation,
                                                          groups):
    """Stride 1: the transposed convolution and col2im give the same input gradient (and the
    same weight and bias gradients), padding larger than the kernel's reach included."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    weight = rng.standard_normal((6, 4 // groups, 3, 2)).astype(np.float32)
    y = ops.conv2d(x, weight, None, (1, 1), padding, dilation, groups)
    gy = rng.standard_normal(y.shape).astype(np.float32)

    def run():
        return backward.conv2d_train(gy, x, weight, ops.conv_matrix(weight, groups), (1, 1),
                                     padding, dilation, groups, True,
                                     lambda v, part=0: np.empty(v, np.float32), 1000)
    assert backward._by_convolution((1, 1), (9, 8), y.shape[2:]) or padding == (0, 0)
    monkeypatch.setattr(backward, "_by_convolution", lambda *a: True)
    by_convolution = run()
    monkeypatch.setattr(backward, "_by_convolution", lambda *a: False)
    by_col2im = run()
    for a, b in zip(by_convolution, by_col2im):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ex, _, _ = conv_backward_ref(gy.astype(np.float64), x.astype(np.float64),
                                 weight.astype(np.float64), (1, 1),
                                 ops.pad_amounts(padding, (3, 2), dilation), dilation, groups)
    np.testing.assert_allclose(by_convolution[0], ex, rtol=1e-4, atol=1e-4)


def test_conv_forward_in_blocks_of_whole_samples_equals_one_sample_at_a_time():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3, 9, 9)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    together = ops.conv2d(x, weight, bias, *args)  # all seven samples in one block
    per_sample = 4 * 9 * 9 * 27
    assert ops.conv_block_values(7, 9, 9, 27) == 7 * 9 * 9 * 27
    assert ops.conv_block_values(7, 9, 9, 27, 2 * per_sample) == 2 * 9 * 9 * 27
    assert ops.conv_block_values(None, 9, 9, 27, 2 * per_sample) == 2 * 9 * 9 * 27
    for scratch in (2 * per_sample, per_sample // 3, 1):  # pairs of samples, bands, rows
        alone = np.concatenate([ops.conv2d(x[i:i + 1], weight, bias, *args,
                                           scratch_bytes=scratch) for i in range(7)])
        blocks = ops.conv2d(x, weight, bias, *args, scratch_bytes=scratch)
        np.testing.assert_allclose(blocks, alone, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ arrays reused between passes

def test_workspace_hands_back_the_same_arrays_only_when_they_fit():
    ws = ops.Workspace()
    first = ws.allocator("a")
    a1, a2 = first((2, 3, 4, 5)), first((2, 3, 4, 5), np.float32, True)
    assert a1 is not a2 and ops.channels_last(a2) and a1.flags.c_contiguous
    again = ws.allocator("a")
    assert again((2, 3, 4, 5)) is a1 and again((2, 3, 4, 5), np.float32, True) is a2
    other = ws.allocator("a")
    assert other((2, 3, 4, 6)) is not a1  # another shape: a new array in its place
    assert other((2, 3, 4, 5), np.bool_) is not a2
    assert ws.nbytes == 2 * 3 * 4 * 6 * 4 + 2 * 3 * 4 * 5
    ws.clear()
    assert ws.nbytes == 0


def test_repeated_training_passes_give_what_a_fresh_network_gives():
    """The second pass reuses the first's arrays: its results equal a fresh network's, and the
    gradients handed out earlier are not overwritten by a later pass."""
    design = chain((3, 12, 12),
                   ("c1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                   ("r", "ReLU", {}), ("p1", "MaxPool2d", {"kernel_size": 3, "stride": 2,
                                                          "padding": 1}),
                   ("c2", "Conv2d", {"out_channels": 5, "kernel_size": 3}),
                   ("t", "Tanh", {}), ("p2", "AvgPool2d", {"kernel_size": 2}),
                   ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 10}))
    rng = np.random.default_rng(0)
    xs = [rng.random((5, 3, 12, 12), dtype=np.float32) for _ in range(2)]
    ys = [rng.integers(0, 10, 5) for _ in range(2)]
    net = designer.build(design, seed=1)
    first = net.gradients(xs[0], ys[0])
    kept = {k: v.copy() for k, v in first[1].items()}
    second = net.gradients(xs[1], ys[1])
    assert all(np.array_equal(first[1][k], kept[k]) for k in kept)
    fresh = designer.build(design, seed=1).gradients(xs[1], ys[1])
    assert second[0] == fresh[0]
    assert all(np.array_equal(second[1][k], fresh[1][k]) for k in kept)
    assert net._held_bytes() > net._weight_bytes  # the arrays are kept for the next pass
    held = net._held_bytes()
    net.release_buffers()
    assert net._held_bytes() < held
    third = net.gradients(xs[1], ys[1])  # after the release: made again, same answer
    assert third[0] == fresh[0]


def test_a_smaller_last_batch_then_a_full_one_again():
    design = chain((2, 8, 8), ("c", "Conv2d", {"out_channels": 3, "kernel_size": 3,
                                               "padding": 1}),
                   ("r", "ReLU", {}), ("p", "MaxPool2d", {"kernel_size": 2}),
                   ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 2, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    net = designer.build(design, seed=2)
    results = [net.gradients(x[:n], y[:n]) for n in (6, 2, 6)]
    fresh = designer.build(design, seed=2)
    for n, (loss, grads) in zip((6, 2, 6), results):
        loss_f, grads_f = fresh.gradients(x[:n], y[:n])
        assert loss == loss_f
        assert all(np.array_equal(grads[k], grads_f[k]) for k in grads)


def test_gradients_and_logits_gives_the_training_pass_logits():
    design = chain((2, 6, 6), ("c", "Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("r", "ReLU", {}), ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 4}),
                   ("sm", "Softmax", {}))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 2, 6, 6)).astype(np.float32)
    y = rng.integers(0, 4, 5)
    net = designer.build(design, seed=3)
    loss, grads, logits = net.gradients_and_logits(x, y)
    plain = designer.build(design, seed=3).gradients(x, y)
    assert loss == plain[0] and all(np.array_equal(grads[k], plain[1][k]) for k in grads)
    # no Dropout or BatchNorm: the eval-mode logits (the final Softmax's input), the same values
    np.testing.assert_array_equal(logits, net.forward(x)["fc"])
    assert logits.dtype == np.float32 and logits.shape == (5, 4)
    kept = logits.copy()
    net.gradients(x[::-1].copy(), y[::-1].copy())  # the next pass doesn't overwrite them
    np.testing.assert_array_equal(logits, kept)


# ------------------------------------------------------------ convolutions split over threads

@pytest.mark.parametrize("groups, stride, padding", [(1, (1, 1), (1, 1)), (2, (2, 1), (0, 2)),
                                                     (1, (1, 1), (0, 0))])
def test_convolutions_split_over_threads_give_the_one_thread_result(groups, stride, padding):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((7, 4, 9, 10)).astype(np.float32)
    weight = rng.standard_normal((6, 4 // groups, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    args = (stride, padding, (1, 1), groups)
    whole = ops.conv2d(x, weight, bias, *args)
    gy = rng.standard_normal(whole.shape).astype(np.float32)
    matrix = ops.conv_matrix(weight, groups)
    single = backward.conv2d_train(gy, x, weight, matrix, *args, True,
                                   lambda v, part=0: np.empty(v, np.float32), 3000)
    for parts in (2, 3, 9):  # 9: more parts than samples, one sample each
        split = ops.conv2d(x, weight, bias, *args, parts=parts, scratch_bytes=3000)
        np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-5)  # float32 rounding
        got = backward.conv2d_train(gy, x, weight, matrix, *args, True,
                                    lambda v, part=0: np.empty(v, np.float32), 3000,
                                    parts=parts)
        for a, b in zip(got, single):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert ops.sample_parts(7, 3) == [(0, 2), (2, 4), (4, 7)]
    assert ops.sample_parts(2, 5) == [(0, 1), (1, 2)]


def test_single_threaded_blas_sections_nest_across_threads_and_restore_the_setting():
    import threading
    before = ops.BLAS.threads()
    inside = []
    barrier = threading.Barrier(3)

    def section():
        with ops.BLAS.single():
            barrier.wait()
            inside.append(ops.BLAS.threads())  # the setting outside, for parallel_parts
            barrier.wait()
    threads = [threading.Thread(target=section) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert inside == [before] * 3
    assert ops.BLAS.threads() == before
    libs = ops.BLAS._libs()
    assert all(lib.get_num_threads() == before for lib in libs) or not libs


def test_run_parallel_waits_for_every_task_before_raising():
    import time
    done = []

    def slow():
        time.sleep(0.05)
        done.append("slow")
        return 2

    def fails():
        raise ValueError("part 0 failed")
    assert ops.run_parallel([lambda: 1, slow]) == [1, 2]
    with pytest.raises(ValueError, match="part 0 failed"):
        ops.run_parallel([fails, slow])
    assert done == ["slow", "slow"]


def test_a_training_pass_split_over_threads_gives_the_one_thread_result(monkeypatch):
    """Every op the pass splits by samples (convolutions, pooling with and without padding,
    ReLU, Tanh), forward and backward, against the same pass in one piece."""
    import designer.engine.network as network
    design = chain((3, 10, 10),
                   ("c1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                   ("r", "ReLU", {}),
                   ("p1", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                   ("c2", "Conv2d", {"out_channels": 5, "kernel_size": 2}), ("t", "Tanh", {}),
                   ("p2", "AvgPool2d", {"kernel_size": 2, "padding": 1}),
                   ("p3", "MaxPool2d", {"kernel_size": 2}),
                   ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 3, 10, 10)).astype(np.float32)
    y = rng.integers(0, 3, 7)
    monkeypatch.setattr(network, "PARALLEL_VALUES", 0)  # split even these small maps
    monkeypatch.setattr(network, "PARALLEL_MACS", 0)
    monkeypatch.setattr(network, "PARALLEL_PASS_MACS", 0)
    results = {}
    for parts in (1, 3):
        monkeypatch.setattr(ops, "parallel_parts", lambda batch, p=parts: min(p, batch))
        net = designer.build(design, seed=4)
        results[parts] = [net.gradients_and_logits(x, y) for _ in range(2)]  # reusing arrays
    for (l1, g1, z1), (l3, g3, z3) in zip(results[1], results[3]):
        assert l1 == pytest.approx(l3, rel=1e-6)
        np.testing.assert_allclose(z1, z3, rtol=1e-5, atol=1e-6)
        for key in g1:
            np.testing.assert_allclose(g1[key], g3[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("stride, padding, need_input", [((1, 1), (1, 1), True),
                                                         ((2, 1), (0, 1), True),
                                                         ((1, 1), (0, 0), False)])
def test_patches_kept_by_the_forward_pass_give_what_copying_them_again_gives(stride, padding,
                                                                             need_input):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 3, 8, 9)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    args = (stride, padding, (1, 1), 1)
    windows, _ = ops.patch_windows(x, (3, 2), *args)
    patches = np.full(windows.shape, np.nan, np.float32)  # every value must be written
    kept = ops.conv2d(x, weight, None, *args, scratch_bytes=2000, windows=windows, parts=2,
                      patches=patches)
    np.testing.assert_array_equal(patches, windows)
    np.testing.assert_allclose(kept, ops.conv2d(x, weight, None, *args), rtol=1e-5, atol=1e-5)
    gy = rng.standard_normal(kept.shape).astype(np.float32)
    matrix = ops.conv_matrix(weight, 1)

    def scratch(v, part=0):
        return np.empty(v, np.float32)
    copied = backward.conv2d_train(gy, x, weight, matrix, *args, need_input, scratch, 1000)
    reused = backward.conv2d_train(gy, x, weight, matrix, *args, need_input, scratch, 1000,
                                   windows=windows, parts=2, patches=patches)
    for a, b in zip(copied, reused):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
