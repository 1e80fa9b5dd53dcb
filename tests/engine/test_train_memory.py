"""The training step's memory estimate against what a step allocates (tracemalloc sees NumPy's
arrays): an upper bound on every template small enough to train here and on designs with every
op, and not padded out beyond its fixed allowance and an eighth."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import designer
from designer.engine.network import TRAIN_FIXED_BYTES
from tests.helpers import chain, graph


def designs():
    out = [(name, designer.load_design(f"resources/templates/{name}.json"))
           for name in ("lenet5", "cifar10-convnet", "tiny-vgg")]
    out.append(("every op", chain(
        (3, 20, 18),
        ("c1", "Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 2, "dilation": 2}),
        ("bn", "BatchNorm2d", {}), ("l", "LeakyReLU", {}), ("t", "Tanh", {}),
        ("p", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        ("c2", "Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "groups": 2}),
        ("s", "Sigmoid", {}), ("a", "AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}),
        ("g", "GELU", {}), ("ln", "LayerNorm", {}), ("r", "ReLU", {}),
        ("ad", "AdaptiveAvgPool2d", {"output_size": [3, 2]}), ("f", "Flatten", {}),
        ("d", "Dropout", {"p": 0.3}), ("fc", "Linear", {"out_features": 5}),
        ("sm", "Softmax", {}))))
    out.append(("branches", graph(
        [("input", "Input", {"channels": 4, "height": 16, "width": 16}),
         ("a", "Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": "same"}),
         ("b", "Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 2}),
         ("sum", "Add", {}), ("r", "ReLU", {}), ("cat", "Concat", {}),
         ("p", "MaxPool2d", {"kernel_size": 2}), ("f", "Flatten", {}),
         ("fc", "Linear", {"out_features": 3})],
        [("input", "a"), ("input", "b"), ("a", "sum"), ("b", "sum"), ("sum", "r"),
         ("r", "cat"), ("a", "cat"), ("cat", "p"), ("p", "f"), ("f", "fc")])))
    return out


@pytest.mark.parametrize("name, design", designs(), ids=[n for n, _ in designs()])
def test_the_training_estimate_bounds_what_a_step_allocates(name, design):
    net = designer.build(design, seed=0)
    batch = 16
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + net.input_shape, dtype=np.float32)
    y = rng.integers(0, net.infos[net.analysis.output].shape[0], batch)
    opt = designer.Adam()
    tracemalloc.start()
    try:
        peaks = []
        for _ in range(2):  # the first step makes the arrays, the second reuses them
            _, grads = net.gradients(x, y, rng=0)
            opt.step(net, grads)
            del grads
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    estimate = net.estimate_training_bytes(batch)
    assert max(peaks) <= estimate
    arrays = estimate - net._training_allowance(batch)
    assert net._training_allowance(batch) >= TRAIN_FIXED_BYTES
    assert arrays <= 1.5 * max(peaks), (arrays / 2**20, max(peaks) / 2**20)  # not padded out
    # a second pass needs no new memory beyond what the network already holds
    assert net._held_bytes() >= net._weight_bytes + net._workspace().nbytes
