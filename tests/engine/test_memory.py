"""Memory before allocation: building allocates nothing big, seeded weights are drawn lazily
after a check, every pass is refused with both numbers before it allocates, the estimate is an
honest upper bound of what a pass allocates (measured with tracemalloc, which sees NumPy's
arrays), and the ops keep float32 throughout (no float64 copies of activations)."""
from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

import designer
from designer.engine import network as network_module
from designer.engine.memory import mib
from designer.engine.network import FIXED_BYTES, NotEnoughMemory, build
from designer.io.templates import list_templates
from tests.helpers import chain, graph

MAX_INT = 2**31 - 1


def traced(fn):
    """(result, peak bytes NumPy and Python allocated while fn ran)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def numbers(message):
    """The MiB figures of a refusal, in order."""
    return [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) MiB", message)]


def test_building_draws_no_weights_and_their_check_comes_first(monkeypatch):
    design = chain((1, 1, 1), ("flat", "Flatten", {}),
                   ("fc", "Linear", {"out_features": 25_000_000}))  # 100 MB of weights
    net, peak = traced(lambda: build(design))
    assert peak < 2**20
    monkeypatch.setattr(network_module, "available_memory", lambda: 50 * 2**20)
    with pytest.raises(NotEnoughMemory) as refused:
        net.weights  # noqa: B018 - the access draws them
    message = str(refused.value)
    assert message.startswith("the weights of this design need about 191 MiB, but only 50 MiB "
                              "is free")
    with pytest.raises(NotEnoughMemory, match=r"this pass needs about .* but only 50 MiB"):
        net.forward(np.zeros((1, 1, 1, 1), np.float32))


@pytest.mark.parametrize("layers", [
    [("flat", "Flatten", {}), ("fc", "Linear", {"out_features": MAX_INT})],
    [("conv", "Conv2d", {"out_channels": MAX_INT, "kernel_size": 3})],
    [("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "groups": 1})],
])
def test_huge_layers_are_refused_with_both_numbers(layers):
    c = 4 if layers[0][0] == "conv" and layers[0][2]["out_channels"] == 4 else 3
    shape = (c, 8, 8) if layers[0][2].get("out_channels") == MAX_INT or c == 3 else (c, 8, 8)
    if layers[0][2].get("out_channels") == 4:  # a huge kernel on a huge input instead
        shape = (3, 60_000, 60_000)
        layers = [("conv", "Conv2d", {"out_channels": 4, "kernel_size": 60_000})]
    design = chain(shape, *layers)
    net = build(design)  # nothing allocated yet
    assert net.estimate_bytes(1) > 2**34
    x = np.broadcast_to(np.float32(0), (1,) + shape)  # takes no memory
    with pytest.raises(NotEnoughMemory) as refused:
        net.forward(x)
    need, free = numbers(str(refused.value))
    assert need > free and need >= (net.estimate_bytes(1) >> 20) - 1
    with pytest.raises(NotEnoughMemory, match=r"need about [\d,]+ MiB, but only [\d,]+ MiB"):
        net.weights  # noqa: B018


def test_an_input_of_3x100000x100000_is_refused_before_anything_is_allocated():
    design = chain((3, 100_000, 100_000), ("relu", "ReLU", {}))
    net = build(design)
    x = np.broadcast_to(np.float32(0.5), (1, 3, 100_000, 100_000))
    _, peak = traced(lambda: pytest.raises(NotEnoughMemory, net.forward, x))
    assert peak < 2**20
    assert net.estimate_bytes(1) >= 2 * 4 * 3 * 10**10


def test_astronomical_shapes_are_measured_exactly():
    design = graph([("input", "Input", {"channels": MAX_INT, "height": MAX_INT, "width": MAX_INT}),
                    ("a", "ReLU", {}), ("b", "ReLU", {}), ("cat", "Concat", {})],
                   [("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat")])
    net = build(design)
    elements = MAX_INT ** 3
    assert net.estimate_bytes(1) >= 4 * 4 * elements  # input, a, b and the concatenation
    assert net.estimate_bytes(3) > 3 * 4 * 4 * elements
    with pytest.raises(NotEnoughMemory, match=r"this pass needs about \d\.\de23 MiB \(.*\), but "
                                              r"only [\d,]+ MiB is free"):
        net.check_memory(1)
    assert mib(10**40) == "9.5e33 MiB" and mib(5 * 2**20) == "5 MiB"


def test_gradient_memory_is_checked_with_its_own_estimate(monkeypatch):
    design = chain((3, 32, 32), ("c", "Conv2d", {"out_channels": 8, "kernel_size": 3}),
                   ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 4}))
    net = build(design)
    x = np.zeros((1, 3, 32, 32), np.float32)
    need = net.estimate_gradient_bytes("fc")
    assert need > net.estimate_bytes(1)  # float64 gradients on top of the forward pass
    monkeypatch.setattr(network_module, "available_memory", lambda: need // 2)
    with pytest.raises(NotEnoughMemory):
        net.input_gradient(x, "fc", (0,))


def small_designs():
    out = [(t.id, designer.load_design(t.path)) for t in list_templates()
           if t.id not in ("alexnet", "vgg16", "resnet18")]
    out.append(("every op", chain(
        (8, 37, 41),
        ("c1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 2, "dilation": 2}),
        ("bn", "BatchNorm2d", {}), ("ln", "LayerNorm", {}), ("g", "GELU", {}),
        ("s", "Sigmoid", {}), ("t", "Tanh", {}), ("l", "LeakyReLU", {}),
        ("p", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        ("a", "AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}),
        ("big", "Conv2d", {"out_channels": 5, "kernel_size": [19, 21], "groups": 1}),
        ("ad", "AdaptiveAvgPool2d", {"output_size": [1, 1]}),
        ("sm", "Softmax", {}), ("d", "Dropout", {}), ("f", "Flatten", {}),
        ("fc", "Linear", {"out_features": 10}))))
    out.append(("branches", graph(
        [("input", "Input", {"channels": 4, "height": 50, "width": 50}),
         ("a", "Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": "same"}),
         ("b", "Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 2}),
         ("sum", "Add", {}), ("cat", "Concat", {}),
         ("gap", "AdaptiveAvgPool2d", {"output_size": [7, 9]})],
        [("input", "a"), ("input", "b"), ("a", "sum"), ("b", "sum"), ("sum", "cat"),
         ("a", "cat"), ("cat", "gap")])))
    return out


@pytest.mark.parametrize("name, design", small_designs(), ids=[n for n, _ in small_designs()])
def test_the_estimate_bounds_what_a_pass_allocates(name, design):
    net = build(design, scratch_bytes=64 * 1024)
    c, h, w = net.input_shape
    x = np.random.default_rng(0).random((3, c, h, w), dtype=np.float32)
    acts, peak = traced(lambda: net.forward(x))  # the weights are drawn inside, and counted
    assert all(a.dtype == np.float32 for a in acts.values())
    assert peak <= net.estimate_bytes(3)
    kept = sum(a.nbytes for k, a in acts.items() if k != "input")
    assert net.estimate_bytes(3) - FIXED_BYTES <= 3 * max(peak, 2**20)  # honest, not padded out
    assert kept <= peak
    # the deepest node whose backward pass is cheap enough for the default run
    node = next(n for n in reversed(net.order)
                if sum(net.infos[u].macs for u in net.design.upstream(n)) <= 30_000_000)
    info = net.infos[node]
    unit = (0,) if len(info.shape) == 1 else (0, 0)
    fresh = build(design, scratch_bytes=64 * 1024)
    _, peak = traced(lambda: fresh.input_gradient(x, node, unit))
    assert peak <= fresh.estimate_gradient_bytes(node)


OPS = [("Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
       ("BatchNorm2d", {}), ("LayerNorm", {}), ("ReLU", {}), ("LeakyReLU", {}), ("Sigmoid", {}),
       ("Tanh", {}), ("GELU", {}), ("Softmax", {}), ("Dropout", {}),
       ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
       ("AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}),
       ("AdaptiveAvgPool2d", {"output_size": [100, 70]}),
       ("Flatten", {})]


@pytest.mark.parametrize("kind, params", OPS, ids=[k for k, _ in OPS])
def test_each_op_stays_in_float32_with_the_temporaries_the_estimate_counts(kind, params):
    """8 MiB maps: any float64 copy or extra full-size temporary of an op shows (the margin is
    a few chunks of elementwise work, and GELU's float64 chunks)."""
    design = chain((32, 256, 256), ("op", kind, params))
    net = build(design)
    weights = net.weights  # drawn outside the measurement
    x = np.random.default_rng(1).standard_normal((1, 32, 256, 256)).astype(np.float32)
    acts, peak = traced(lambda: net.forward(x))
    assert acts["op"].dtype == np.float32
    cost = net._cost["op"]
    margin = (17 if kind == "GELU" else 6) * 2**20  # chunks: GELU's float64 work, norms' sums
    held = sum(m.nbytes for m in net._matrices.values()) + cost.scratch
    assert peak <= cost.act + cost.temp + held + margin, (peak - cost.act - cost.temp) / 2**20
    assert weights is net.weights


def test_memory_refusal_allocates_nothing(monkeypatch):
    design = chain((16, 128, 128), ("c", "Conv2d", {"out_channels": 16, "kernel_size": 3}))
    net = build(design)
    x = np.zeros((4, 16, 128, 128), np.float64)  # converting it would take 4 MiB
    monkeypatch.setattr(network_module, "available_memory", lambda: 2**20)
    _, peak = traced(lambda: pytest.raises(NotEnoughMemory, net.forward, x))
    assert peak < 2**19
