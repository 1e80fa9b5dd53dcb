"""Every engine op against a slow, obviously-correct loop written from PyTorch's definitions,
on random shapes, strides, paddings, dilations and groups (including ceil_mode's last window,
odd "same" padding and overlapping adaptive windows)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from designer.engine import ops

TOL = dict(rtol=1e-4, atol=1e-4)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ slow references

def conv_ref(x, weight, bias, stride, pads, dilation, groups):
    """Direct definition: out[n,k,i,j] = b[k] + Σ_c,u,v w[k,c,u,v] · xpad[n, g·C/g + c, i·s + u·d, j·s + v·d]."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    (pt, pb), (pl, pr) = pads
    xp = np.zeros((n, c, h + pt + pb, w + pl + pr), np.float64)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    oh = (h + pt + pb - stride[0] * 0 - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (w + pl + pr - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // groups
    for b in range(n):
        for o in range(k):
            g = o // kg
            for i in range(oh):
                for j in range(ow):
                    total = 0.0 if bias is None else float(bias[o])
                    for cc in range(cg):
                        for u in range(kh):
                            for v in range(kw):
                                total += weight[o, cc, u, v] * xp[b, g * cg + cc,
                                                                  i * stride[0] + u * dilation[0],
                                                                  j * stride[1] + v * dilation[1]]
                    out[b, o, i, j] = total
    return out


def out_size(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    if ceil_mode:
        o = math.ceil((size + 2 * p - eff) / s) + 1
        if (o - 1) * s >= size + p:
            o -= 1
        return o
    return (size + 2 * p - eff) // s + 1


def pool_ref(x, kind, kernel, stride, padding, dilation=(1, 1), ceil_mode=False,
             count_include_pad=True):
    """Loop over output positions; gather the window's in-bounds elements explicitly."""
    n, c, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            rows = [h0 + u * dilation[0] for u in range(kernel[0])]
            cols = [w0 + v * dilation[1] for v in range(kernel[1])]
            inside_r = [r for r in rows if 0 <= r < h]
            inside_c = [q for q in cols if 0 <= q < w]
            if kind == "max":
                block = x[:, :, inside_r][:, :, :, inside_c]
                out[:, :, i, j] = block.max(axis=(2, 3))
            else:
                block = x[:, :, inside_r][:, :, :, inside_c]
                if count_include_pad:  # padding counts, the overhang past the padding does not
                    nr = min(h0 + kernel[0], h + padding[0]) - h0
                    nc = min(w0 + kernel[1], w + padding[1]) - w0
                    divisor = nr * nc
                else:
                    divisor = len(inside_r) * len(inside_c)
                out[:, :, i, j] = block.sum(axis=(2, 3)) / divisor
    return out


def adaptive_ref(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


# ------------------------------------------------------------------ convolution

@settings(max_examples=120, deadline=None)
@given(st.data())
def test_conv2d_matches_direct_loops(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    groups = data.draw(st.integers(1, 3))
    c = groups * data.draw(st.integers(1, 2))
    k = groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    same = data.draw(st.booleans())
    stride = (1, 1) if same else (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    padding = "same" if same else (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    h = data.draw(st.integers(dilation[0] * (kh - 1) + 1, 9))
    w = data.draw(st.integers(dilation[1] * (kw - 1) + 1, 9))
    n = data.draw(st.integers(1, 2))
    x, weight = rand(rng, n, c, h, w), rand(rng, k, c // groups, kh, kw)
    bias = rand(rng, k) if data.draw(st.booleans()) else None
    scratch = data.draw(st.sampled_from([1, 300, ops.DEFAULT_SCRATCH_BYTES]))  # 1: a row at a time
    got = ops.conv2d(x, weight, bias, stride, padding, dilation, groups, scratch_bytes=scratch)
    pads = ops.pad_amounts(padding, (kh, kw), dilation)
    if same:  # PyTorch: the smaller half of an odd total goes first
        for axis, kk in enumerate((kh, kw)):
            total = dilation[axis] * (kk - 1)
            assert pads[axis] == (total // 2, total - total // 2)
    np.testing.assert_allclose(got, conv_ref(x, weight, bias, stride, pads, dilation, groups), **TOL)
    assert got.dtype == np.float32


def test_conv2d_reports_progress_between_row_bands():
    rng = np.random.default_rng(0)
    seen = []
    ops.conv2d(rand(rng, 1, 2, 12, 12), rand(rng, 3, 2, 3, 3), None, (1, 1), (1, 1), (1, 1), 1,
               scratch_bytes=12 * 2 * 9 * 4 * 3, hook=seen.append)  # three output rows a band
    assert seen == sorted(seen) and len(seen) == 3 and 0 < seen[0] < 1


# ------------------------------------------------------------------ pooling

@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pooling_matches_loops(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kernel = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    stride = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    padding = (data.draw(st.integers(0, kernel[0] // 2)), data.draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = data.draw(st.booleans())
    kind = data.draw(st.sampled_from(["max", "avg"]))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) if kind == "max" else (1, 1)
    h = data.draw(st.integers(dilation[0] * (kernel[0] - 1) + 1, 11))
    w = data.draw(st.integers(dilation[1] * (kernel[1] - 1) + 1, 11))
    x = rand(rng, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), h, w)
    include = data.draw(st.booleans())
    if kind == "max":
        got = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    else:
        got = ops.avg_pool2d(x, kernel, stride, padding, ceil_mode, include)
    np.testing.assert_allclose(got, pool_ref(x, kind, kernel, stride, padding, dilation, ceil_mode,
                                             include), **TOL)


def test_ceil_mode_last_window_starting_in_padding_is_dropped():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    got = ops.max_pool2d(x, (2, 2), (2, 2), (1, 1), (1, 1), True)
    assert got.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(got, pool_ref(x, "max", (2, 2), (2, 2), (1, 1), (1, 1), True))


def test_avg_pool_tiles_fast_path_equals_loops():
    x = rand(np.random.default_rng(3), 2, 3, 8, 6)
    np.testing.assert_allclose(ops.avg_pool2d(x, (2, 2), (2, 2), (0, 0), False, True),
                               pool_ref(x, "avg", (2, 2), (2, 2), (0, 0)), **TOL)
    np.testing.assert_allclose(ops.max_pool2d(x, (2, 3), (2, 3), (0, 0), (1, 1), False),
                               pool_ref(x, "max", (2, 3), (2, 3), (0, 0)), **TOL)


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 8), ow=st.integers(1, 8),
       seed=st.integers(0, 1000))
def test_adaptive_avg_pool_matches_loops_including_overlapping_windows(h, w, oh, ow, seed):
    x = rand(np.random.default_rng(seed), 2, 2, h, w)
    np.testing.assert_allclose(ops.adaptive_avg_pool2d(x, (oh, ow)), adaptive_ref(x, oh, ow), **TOL)


# ------------------------------------------------------------------ the rest

def test_batch_norm_matches_formula():
    rng = np.random.default_rng(4)
    x = rand(rng, 2, 3, 4, 5)
    mean, var = rand(rng, 3), rng.random(3).astype(np.float32) + 0.5
    weight, bias = rand(rng, 3), rand(rng, 3)
    got = ops.batch_norm(x, mean, var, weight, bias, 1e-5)
    for c in range(3):
        expected = (x[:, c] - mean[c]) / math.sqrt(var[c] + 1e-5) * weight[c] + bias[c]
        np.testing.assert_allclose(got[:, c], expected, **TOL)
    plain = ops.batch_norm(x, mean, var, None, None, 1e-5)
    np.testing.assert_allclose(plain[:, 1], (x[:, 1] - mean[1]) / math.sqrt(var[1] + 1e-5), **TOL)


def test_layer_norm_matches_per_sample_loop():
    rng = np.random.default_rng(5)
    x = rand(rng, 3, 2, 3, 4)
    weight, bias = rand(rng, 2, 3, 4), rand(rng, 2, 3, 4)
    got = ops.layer_norm(x, weight, bias, 1e-5)
    for n in range(3):
        values = [float(v) for v in x[n].ravel()]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        expected = (x[n] - mean) / math.sqrt(var + 1e-5) * weight + bias
        np.testing.assert_allclose(got[n], expected, **TOL)


def test_linear_matches_loops():
    rng = np.random.default_rng(6)
    x, weight, bias = rand(rng, 2, 5), rand(rng, 3, 5), rand(rng, 3)
    got = ops.linear(x, weight, bias)
    for n in range(2):
        for o in range(3):
            assert got[n, o] == pytest.approx(sum(x[n, i] * weight[o, i] for i in range(5)) + bias[o],
                                              abs=1e-4)


def test_activations_match_scalar_definitions():
    x = np.linspace(-40, 40, 801, dtype=np.float32).reshape(1, 801)
    scalars = {
        "relu": (ops.relu(x), lambda v: max(v, 0.0)),
        "leaky": (ops.leaky_relu(x, 0.2), lambda v: v if v >= 0 else 0.2 * v),
        "sigmoid": (ops.sigmoid(x), lambda v: 1 / (1 + math.exp(-v)) if v > -700 else 0.0),
        "tanh": (ops.tanh(x), math.tanh),
        "gelu": (ops.gelu(x), lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    }
    for name, (got, fn) in scalars.items():
        expected = np.array([fn(float(v)) for v in x.ravel()])
        np.testing.assert_allclose(got.ravel(), expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.isfinite(got).all(), name


def test_erf_to_float32_precision():
    v = np.linspace(-6, 6, 2001)
    assert np.abs(ops.erf(v) - np.array([math.erf(t) for t in v])).max() < 2e-7


def test_softmax_over_channels_is_stable_and_sums_to_one():
    x = np.array([[[[1000.0]], [[1001.0]], [[999.0]]]], dtype=np.float32)  # (1, 3, 1, 1)
    got = ops.softmax(x)
    exps = [math.exp(v - 1001.0) for v in (1000.0, 1001.0, 999.0)]
    np.testing.assert_allclose(got.ravel(), [e / sum(exps) for e in exps], rtol=1e-6)
    flat = ops.softmax(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    assert flat.sum() == pytest.approx(1.0)
