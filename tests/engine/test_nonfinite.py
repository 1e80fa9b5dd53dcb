"""Saying where numbers go bad: find_nonfinite names the first layer whose output holds inf or
NaN (checked against a plain loop), and forward itself raises no NumPy warnings."""
from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

from designer.engine import ops
from designer.engine.network import NonFinite, build, find_nonfinite
from tests.helpers import chain


def first_bad(acts, order):
    """The independent answer: a plain loop with np.isfinite over whole arrays."""
    for node_id in order:
        if not np.isfinite(acts[node_id]).all():
            return node_id
    return None


def test_a_2000_layer_chain_that_overflows_names_the_first_bad_layer():
    depth = 2000
    layers = [(f"c{i}", "Conv2d", {"out_channels": 2, "kernel_size": 1}) for i in range(depth)]
    design = chain((2, 3, 3), *layers)
    rng = np.random.default_rng(7)
    weights = {}
    for i in range(depth):
        weights[f"c{i}.weight"] = (3 * rng.standard_normal((2, 2, 1, 1))).astype(np.float32)
        weights[f"c{i}.bias"] = np.zeros(2, np.float32)
    net = build(design, weights=weights)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow is reported by find_nonfinite, not by NumPy
        acts = net.forward(x)
        found = net.find_nonfinite(acts)
    bad = first_bad(acts, net.order)
    assert bad is not None and bad != "input"
    assert np.isnan(acts[f"c{depth - 1}"]).any()  # garbage all the way down
    before = net.order[net.order.index(bad) - 1]
    assert found == NonFinite(bad, "overflow", float(np.abs(acts[before]).max()), found.message)
    assert np.isinf(acts[bad]).any()
    assert found.message.startswith(f"activations overflow from {bad} on (")
    assert "going in): add normalization (BatchNorm2d)" in found.message
    assert "e3" in found.message  # float32 overflows beyond 3.4e38: the value going in is huge
    # the module-level function with a mapping of sources gives the same answer
    sources = {n: list(net.design.sources(n)) for n in net.order}
    assert find_nonfinite(acts, net.order, sources) == found


def test_nan_without_inf_is_called_nan():
    design = chain((2, 4, 4), ("conv", "Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("bn", "BatchNorm2d", {}), ("relu", "ReLU", {}))
    net = build(design, seed=1)
    weights = dict(net.weights)
    weights["bn.running_var"] = np.array([1.0, -2.0, 1.0], np.float32)  # sqrt of a negative
    net = build(design, weights=weights)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = net.forward(x)
    found = net.find_nonfinite(acts)
    assert first_bad(acts, net.order) == "bn"
    assert found.node_id == "bn" and found.kind == "nan"
    assert found.largest == pytest.approx(float(np.abs(acts["conv"]).max()))
    assert found.message.startswith("activations become NaN from bn on (")


def test_sums_that_overflow_both_ways_into_nan_are_an_overflow():
    """Huge values of both signs meet in one sum as inf − inf: NaN with no inf anywhere, and
    what happened is an overflow, not a NaN from the weights."""
    design = chain((2, 1, 1), ("fc", "Conv2d", {"out_channels": 1, "kernel_size": 1}))
    net = build(design, weights={"fc.weight": np.array([[[[1.0]], [[1.0]]]], np.float32) * 4,
                                 "fc.bias": np.zeros(1, np.float32)})
    x = np.array([[[[3e38]], [[-3e38]]]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = net.forward(x)
    assert np.isnan(acts["fc"]).all()  # (4·3e38 = inf) + (−inf) = NaN
    found = net.find_nonfinite(acts)
    assert found.node_id == "fc" and found.kind == "overflow"
    assert found.message.startswith("activations overflow from fc on (3e38 going in)")


def test_a_bad_input_is_named_as_such():
    net = build(chain((1, 2, 2), ("relu", "ReLU", {})))
    acts = net.forward(np.array([[[[1.0, np.nan], [0.0, 2.0]]]], np.float32))
    found = net.find_nonfinite(acts)
    assert found.node_id == "input" and found.kind == "nan" and math.isnan(found.largest)
    assert "the input (input) holds NaN values" in found.message
    acts = net.forward(np.array([[[[1.0, np.inf], [np.nan, 2.0]]]], np.float32))
    assert net.find_nonfinite(acts).kind == "overflow"  # an inf is there


def test_finite_passes_and_skipped_nodes():
    net = build(chain((1, 4, 4), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 3})))
    acts = net.forward(np.ones((1, 1, 4, 4), np.float32))
    assert net.find_nonfinite(acts) is None
    assert find_nonfinite({"c": np.array([np.inf])}, ["input", "c"], {"c": ["input"]}) == NonFinite(
        "c", "overflow", math.nan, "activations overflow from c on: add normalization "
        "(BatchNorm2d) or use smaller weights")


@pytest.mark.parametrize("make", [
    lambda a: a,
    lambda a: np.asfortranarray(a),
    lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),  # conv output
    lambda a: a[:, ::-1],
    lambda a: a[:, :, 1:, ::2],
    lambda a: a.reshape(-1)[3:4].reshape(()),  # 0-d
])
def test_chunks_cover_every_element_once(make):
    base = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6)
    a = make(base)
    parts = list(ops.chunks(a, size=7))
    assert all(p.ndim == 1 and p.size <= 7 for p in parts)
    assert all(np.shares_memory(p, a) for p in parts if p.size)  # views, never copies
    assert sorted(np.concatenate(parts).tolist()) == sorted(np.ravel(a).tolist())


def test_the_scan_makes_no_big_temporaries():
    big = np.zeros((1, 64, 256, 256), np.float32)  # 16 MiB
    big[0, 63, 255, 255] = np.inf
    acts = {"input": np.ones((1, 1, 2, 2), np.float32), "a": big}
    tracemalloc.start()
    try:
        found = find_nonfinite(acts, ["input", "a"], {"a": ["input"]})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.node_id == "a" and found.largest == 1.0
    assert peak < 2**20


# ------------------------------------------- pooling over infinities: PyTorch's answers

def window_mean(values) -> float:
    """A plain Python sum then a division, as PyTorch's kernels do: −∞ plus anything finite is
    −∞, +∞ plus −∞ is NaN, NaN stays NaN."""
    total = 0.0
    for v in values:
        total += float(v)
    return total / len(values)


def adaptive_slow(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
                    c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
                    out[b, k, i, j] = window_mean([x[b, k, r, q] for r in range(r0, r1)
                                                   for q in range(c0, c1)])
    return out


def special_map(rng, shape):
    """Random values with some −∞, a few +∞ and NaN."""
    x = rng.standard_normal(shape).astype(np.float32)
    pick = rng.random(shape)
    x[pick < 0.15] = -np.inf
    x[(pick > 0.15) & (pick < 0.18)] = np.inf
    x[(pick > 0.18) & (pick < 0.20)] = np.nan
    return x


@pytest.mark.parametrize("h, w, oh, ow", [(5, 7, 3, 2), (4, 4, 3, 3), (6, 6, 3, 2), (3, 5, 5, 7),
                                          (1, 4, 1, 3)])
def test_adaptive_average_over_infinities_matches_pytorch_sums(h, w, oh, ow):
    rng = np.random.default_rng(h * 100 + w)
    x = special_map(rng, (2, 3, h, w))
    with np.errstate(invalid="ignore"):
        got = ops.adaptive_avg_pool2d(x, (oh, ow))
    expected = adaptive_slow(x, oh, ow)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, atol=1e-6)
    all_low = np.full((1, 1, h, w), -np.inf, np.float32)  # a map of padding-only windows
    assert np.isneginf(ops.adaptive_avg_pool2d(all_low, (oh, ow))).all()


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode, include", [
    ((2, 2), (2, 2), (0, 0), False, True),  # the tiling fast path
    ((3, 3), (2, 2), (1, 1), True, True),
    ((3, 2), (1, 2), (1, 0), False, False),
])
def test_avg_pool_over_infinities_matches_pytorch_sums(kernel, stride, padding, ceil_mode,
                                                       include):
    rng = np.random.default_rng(3)
    x = special_map(rng, (1, 2, 6, 6))
    with np.errstate(invalid="ignore"):
        got = ops.avg_pool2d(x, kernel, stride, padding, ceil_mode, include)
    n, c, h, w = x.shape
    expected = np.zeros(got.shape)
    for k in range(c):
        for i in range(got.shape[2]):
            for j in range(got.shape[3]):
                r0, c0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
                rows = [r for r in range(r0, r0 + kernel[0]) if 0 <= r < h]
                cols = [q for q in range(c0, c0 + kernel[1]) if 0 <= q < w]
                values = [x[0, k, r, q] for r in rows for q in cols]
                if include:
                    nr = min(r0 + kernel[0], h + padding[0]) - r0
                    nc = min(c0 + kernel[1], w + padding[1]) - c0
                    divisor = nr * nc
                else:
                    divisor = len(values)
                expected[0, k, i, j] = window_mean(values) * len(values) / divisor
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, atol=1e-6)


def test_adaptive_average_after_a_padding_only_max_pool_is_minus_infinity():
    """The issue's case: a max-pool window made only of padding (rows −1 and 2 of a 2-row map)
    gives −∞, and PyTorch's adaptive average of −∞ is −∞ (it used to be NaN here)."""
    design = chain((2, 2, 5),
                   ("pool", "MaxPool2d", {"kernel_size": 2, "stride": 1, "padding": 1,
                                          "dilation": 3}),
                   ("gap", "AdaptiveAvgPool2d", {"output_size": [1, 3]}))
    net = build(design)
    x = np.arange(20, dtype=np.float32).reshape(1, 2, 2, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = net.forward(x)
    assert acts["pool"].shape == (1, 2, 1, 4) and np.isneginf(acts["pool"]).all()
    np.testing.assert_array_equal(acts["gap"], adaptive_slow(acts["pool"], 1, 3))
    assert np.isneginf(acts["gap"]).all()
    found = net.find_nonfinite(acts)
    assert found.node_id == "pool" and found.kind == "overflow" and found.largest == 19.0
    assert found.message == ("pool: some of its windows hold only padding, so their maximum is "
                             "−∞ from pool on; use less padding or dilation")
