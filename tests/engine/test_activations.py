"""ReLU6, SiLU, Hardswish, Hardsigmoid and Identity: the forward ops against their scalar
definitions, the backward ops against finite differences (and PyTorch's values at the kinks),
and both through a network: input gradients, training gradients, memory."""
from __future__ import annotations

import math

import numpy as np
import pytest

import designer
from designer.engine import activations as act
from designer.engine.network import build
from tests.engine.test_gradients import ref_conv, ref_loss
from tests.engine.test_input_gradient import check
from tests.engine.test_memory import traced
from tests.helpers import chain


def _relu6(v):
    return min(max(v, 0.0), 6.0)


SCALAR = {
    "ReLU6": _relu6,
    "SiLU": lambda v: v / (1.0 + math.exp(-v)) if v > -700 else -0.0,
    "Hardswish": lambda v: v * _relu6(v + 3.0) / 6.0,
    "Hardsigmoid": lambda v: _relu6(v + 3.0) / 6.0,
}
KINKS = {"ReLU6": (0.0, 6.0), "SiLU": (), "Hardswish": (-3.0, 3.0), "Hardsigmoid": (-3.0, 3.0)}


@pytest.mark.parametrize("name", list(SCALAR))
def test_forward_matches_the_scalar_definition(name):
    x = np.concatenate([np.linspace(-40, 40, 801), [-1000, -90, -3, 0, 3, 6, 90, 1000]]
                       ).astype(np.float32).reshape(1, -1)
    got = act.ACTIVATIONS[name].forward(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    expected = np.array([SCALAR[name](float(v)) for v in x.ravel()])
    np.testing.assert_allclose(got.ravel(), expected, rtol=1e-6, atol=1e-7, err_msg=name)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("name", list(SCALAR))
def test_forward_keeps_the_layout_of_maps(name):
    x = np.random.default_rng(2).standard_normal((2, 5, 4, 3)).astype(np.float32) * 5
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    got = act.ACTIVATIONS[name].forward(nhwc)
    np.testing.assert_array_equal(got, act.ACTIVATIONS[name].forward(np.ascontiguousarray(x)))


@pytest.mark.parametrize("name", list(SCALAR))
def test_backward_matches_central_differences_away_from_the_kinks(name):
    v = np.linspace(-8, 8, 1601)
    v = v[np.all([np.abs(v - k) > 1e-3 for k in KINKS[name]], axis=0)] if KINKS[name] else v
    gy = np.random.default_rng(1).standard_normal(v.shape)
    got = act.ACTIVATIONS[name].backward(gy, v)
    h = 1e-6
    fd = np.array([(SCALAR[name](t + h) - SCALAR[name](t - h)) / (2 * h) for t in v])
    np.testing.assert_allclose(got, gy * fd, rtol=1e-6, atol=1e-7)


def test_backward_at_the_kinks_takes_pytorchs_values():
    # PyTorch: hardtanh (ReLU6) and hardsigmoid pass nothing at the ends of the slope;
    # hardswish uses the slope x/3 + 1/2 only inside (−3, 3) (PyTorch 2.13's values)
    gy = np.ones(4)
    np.testing.assert_array_equal(act.relu6_backward(gy, np.array([0.0, 6.0, 1e-3, 5.999])),
                                  [0, 0, 1, 1])
    np.testing.assert_array_equal(act.hardsigmoid_backward(gy, np.array([-3.0, 3.0, -2.9, 0])),
                                  [0, 0, 1 / 6, 1 / 6])
    np.testing.assert_allclose(act.hardswish_backward(gy, np.array([-3.0, 3.0, -3.01, 3.01])),
                               [0, 1, 0, 1])


def test_silu_backward_is_finite_far_out():
    got = act.silu_backward(np.ones(4), np.array([-1000.0, -80.0, 80.0, 1000.0]))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, [0, 0, 1, 1], atol=1e-30)


@pytest.mark.parametrize("name", ["ReLU6", "SiLU", "Hardswish", "Hardsigmoid", "Identity"])
def test_input_gradient_through_a_network_matches_finite_differences(name):
    design = chain((2, 6, 6), ("c", "Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("a", name, {}), ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    check(design, "c2", (1, 0), seed=3)


def test_identity_passes_its_input_on():
    design = chain((2, 5, 5), ("i", "Identity", {}), ("r", "ReLU6", {}))
    net = build(design)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32) * 8
    out = net.forward(x)
    np.testing.assert_array_equal(out["i"], x)
    np.testing.assert_array_equal(out["r"], np.clip(x, 0, 6))
    assert designer.summarize(design)["total_params"] == 0


def _ref_loss(name, w, x, y):
    """conv → activation → flatten → linear, in float64 loops and scalar definitions."""
    h = ref_conv(x.astype(np.float64), w["c.weight"], w["c.bias"], (1, 1), (0, 0), (1, 1), 1)
    if name != "Identity":
        h = np.vectorize(SCALAR[name])(h)
    logits = h.reshape(len(h), -1) @ w["fc.weight"].T + w["fc.bias"]
    return ref_loss(logits, y)


@pytest.mark.parametrize("name", ["ReLU6", "SiLU", "Hardswish", "Hardsigmoid", "Identity"])
def test_training_gradients_match_finite_differences(name):
    design = chain((2, 5, 5), ("c", "Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("a", name, {}), ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))
    rng = np.random.default_rng(5)
    net = build(design, seed=2)
    weights = {k: (rng.standard_normal(v.shape) * 1.5).astype(np.float32)
               for k, v in net.weights.items()}
    net = build(design, weights=weights)
    x = (rng.standard_normal((3, 2, 5, 5)) * 2).astype(np.float32)
    y = np.array([0, 2, 1])
    loss, grads = net.gradients(x, y)
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    assert loss == pytest.approx(_ref_loss(name, w64, x, y), rel=2e-5)
    eps = 1e-6
    for key in ("c.weight", "c.bias", "fc.weight"):
        for idx in list(np.ndindex(*w64[key].shape))[:: max(1, w64[key].size // 6)]:
            plus, minus = dict(w64), dict(w64)
            plus[key], minus[key] = w64[key].copy(), w64[key].copy()
            plus[key][idx] += eps
            minus[key][idx] -= eps
            fd = (_ref_loss(name, plus, x, y) - _ref_loss(name, minus, x, y)) / (2 * eps)
            assert grads[key][idx] == pytest.approx(fd, rel=2e-3, abs=2e-5), (key, idx)


@pytest.mark.parametrize("name", ["ReLU6", "SiLU", "Hardswish", "Hardsigmoid"])
def test_forward_stays_in_float32_chunks(name):
    design = chain((32, 256, 256), ("op", name, {}))
    net = build(design)
    x = np.random.default_rng(1).standard_normal((1, 32, 256, 256)).astype(np.float32)
    acts, peak = traced(lambda: net.forward(x))
    assert acts["op"].dtype == np.float32
    assert peak <= net._cost["op"].act + 6 * 2**20  # the output and a few chunks
