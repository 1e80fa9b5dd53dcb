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
