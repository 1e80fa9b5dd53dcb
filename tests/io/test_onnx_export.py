"""ONNX export (contract §8): every template and designs covering every layer and option are
exported, pass onnx.checker's full check, and give the engine's outputs in onnxruntime (largest
difference at most 1e-4 of the largest output value), with any batch size."""
from __future__ import annotations

import random

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import designer
from designer.core.analysis import Analysis
from designer.engine.network import InvalidDesign
from designer.engine.weights import WeightsError
from designer.io.onnx_export import OPSET, export_onnx
from designer.io.templates import list_templates
from tests.helpers import chain, graph

SLOW_TEMPLATES = {"alexnet", "vgg16"}  # half a gigabyte of weights each: seconds to write and run
TOLERANCE = 1e-4


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest difference over the largest magnitude of the engine's output."""
    assert got.shape == want.shape
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(got.astype(np.float64) - want))) / scale


def varied_weights(net, seed=1):
    """The network's weights with BatchNorm statistics and norm scales drawn at random (the
    seeded ones are 0 and 1, which would hide a swapped or ignored tensor)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, w in net.weights.items():
        if key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
        elif key.endswith(("running_mean", ".bias")) or (
                key.endswith(".weight") and net.infos[key.rsplit(".", 1)[0]].type
                in ("BatchNorm2d", "LayerNorm")):
            out[key] = (w + rng.standard_normal(w.shape)).astype(np.float32)
        else:
            out[key] = w
    return out


def check_export(design, tmp_path, weights=None, batches=(2, 1, 3)):
    """Export, check, run in onnxruntime with each batch size; the largest relative error."""
    net = designer.build(design, seed=0)
    weights = varied_weights(net) if weights is None else weights
    net = designer.build(design, weights=weights)
    path = tmp_path / "model.onnx"
    export_onnx(design, weights, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    outputs = [n for n in net.order if not design.targets(n)]
    assert [i.name for i in model.graph.input] == [net.input_id]
    assert [o.name for o in model.graph.output] == outputs
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "N" and not batch_dim.HasField("dim_value")
    assert {i.name for i in model.graph.initializer} >= set(weights)
    assert {n.name for n in model.graph.node} >= set(net.order) - {net.input_id}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    rng = np.random.default_rng(7)
    for batch in batches:
        x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
        got = session.run(outputs, {net.input_id: x})
        acts = net.forward(x)
        for name, value in zip(outputs, got):
            worst = max(worst, relative_error(value, acts[name]))
    assert worst <= TOLERANCE
    return worst, model


TEMPLATES = [pytest.param(t, id=t.id, marks=[pytest.mark.slow] if t.id in SLOW_TEMPLATES else [])
             for t in list_templates()]


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_gives_the_engines_outputs(template, tmp_path):
    design = template.load()
    batches = (2, 1) if template.id == "resnet18" else (2, 1, 3)
    worst, model = check_export(design, tmp_path, batches=batches)
    # torchvision's ids (features.0, layer1.0.conv1) name the nodes and weights unchanged
    assert {n.name for n in model.graph.node} >= {n.id for n in design.nodes
                                                   if n.type != "Input"}


# ---------------------------------------------------------------- every layer and option

CASES = {
    "conv options": chain((4, 9, 11), ("c1", "Conv2d", {"out_channels": 6, "kernel_size": [3, 2],
                                                        "stride": [2, 1], "padding": [1, 0],
                                                        "dilation": [1, 2]}),
                          ("c2", "Conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 3,
                                            "bias": False}),
                          ("c3", "Conv2d", {"out_channels": 12, "kernel_size": 3, "groups": 6,
                                            "padding": "valid"})),
    "conv same, even kernel and dilation": chain(
        (3, 8, 7), ("c1", "Conv2d", {"out_channels": 4, "kernel_size": [4, 2], "padding": "same"}),
        ("c2", "Conv2d", {"out_channels": 5, "kernel_size": 3, "padding": "same",
                          "dilation": [2, 3]})),
    "max pool ceil, padding, dilation": chain(
        (2, 9, 10), ("p1", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                         "ceil_mode": True}),
        ("p2", "MaxPool2d", {"kernel_size": [2, 3], "stride": 1, "dilation": [2, 1]})),
    "max pool whose ceil window needs a Pad": chain(
        (2, 6, 6), ("p1", "MaxPool2d", {"kernel_size": 2, "stride": 3, "padding": 1,
                                         "dilation": 3, "ceil_mode": True})),
    "avg pool counting padding, ceil": chain(
        (2, 10, 9), ("p1", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                         "ceil_mode": True})),
    "avg pool not counting padding, ceil": chain(
        (2, 10, 9), ("p1", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                         "ceil_mode": True, "count_include_pad": False})),
    "avg pool counting padding": chain(
        (2, 9, 9), ("p1", "AvgPool2d", {"kernel_size": [3, 2], "stride": [2, 1],
                                         "padding": [1, 1]})),
    "avg pool ceil without padding": chain(
        (2, 7, 8), ("p1", "AvgPool2d", {"kernel_size": 2, "ceil_mode": True})),
    "adaptive pools": chain(
        (3, 8, 9), ("a1", "AdaptiveAvgPool2d", {"output_size": [4, 3]}),
        ("relu", "ReLU", {}), ("a2", "AdaptiveAvgPool2d", {"output_size": 1}),
        ("flat", "Flatten", {})),
    "batch norm": chain(
        (3, 5, 5), ("bn1", "BatchNorm2d", {"eps": 1e-3}),
        ("bn2", "BatchNorm2d", {"affine": False})),
    "layer norm on maps and features": chain(
        (3, 4, 5), ("ln1", "LayerNorm", {"eps": 1e-4}), ("flat", "Flatten", {}),
        ("ln2", "LayerNorm", {"elementwise_affine": False}), ("fc", "Linear", {"out_features": 7}),
        ("ln3", "LayerNorm", {})),
    "linear and activations on features": chain(
        (2, 3, 3), ("flat", "Flatten", {}), ("fc1", "Linear", {"out_features": 9, "bias": False}),
        ("leaky", "LeakyReLU", {"negative_slope": 0.2}), ("gelu", "GELU", {}),
        ("drop", "Dropout", {"p": 0.3}), ("fc2", "Linear", {"out_features": 5}),
        ("tanh", "Tanh", {}), ("sig", "Sigmoid", {}), ("soft", "Softmax", {})),
    "activations on maps": chain(
        (3, 5, 4), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 1}), ("gelu", "GELU", {}),
        ("leaky", "LeakyReLU", {}), ("drop", "Dropout", {}), ("relu", "ReLU", {}),
        ("soft", "Softmax", {})),
    "mobile activations": chain(
        (3, 6, 5), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 1}),
        ("r6", "ReLU6", {}), ("c2", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
        ("hs", "Hardswish", {}), ("silu", "SiLU", {}), ("id", "Identity", {}),
        ("hsig", "Hardsigmoid", {}), ("flat", "Flatten", {}),
        ("fc", "Linear", {"out_features": 3}), ("r6b", "ReLU6", {})),
    "merges: Add of two and three, Concat in edge order": graph(
        [("in", "Input", {"channels": 2, "height": 6, "width": 6}),
         ("a", "Conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 1}),
         ("b", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("c", "Conv2d", {"out_channels": 3, "kernel_size": 3, "padding": "same"}),
         ("add2", "Add", {}), ("add3", "Add", {}), ("cat", "Concat", {})],
        [("in", "a"), ("in", "b"), ("in", "c"), ("a", "add2"), ("b", "add2"),
         ("c", "add3"), ("a", "add3"), ("add2", "add3"),
         ("c", "cat"), ("add3", "cat"), ("a", "cat")]),
    "two outputs": graph(
        [("in", "Input", {"channels": 1, "height": 5, "width": 5}),
         ("x", "Conv2d", {"out_channels": 2, "kernel_size": 3}), ("y", "ReLU", {})],
        [("in", "x"), ("in", "y")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_and_option_gives_the_engines_outputs(name, tmp_path):
    design = CASES[name]
    assert Analysis(design).valid
    check_export(design, tmp_path)


def op_types(model):
    return [n.op_type for n in model.graph.node]


def test_layers_become_their_onnx_namesakes(tmp_path):
    _, model = check_export(CASES["linear and activations on features"], tmp_path)
    assert op_types(model) == ["Flatten", "Gemm", "LeakyRelu", "Div", "Erf", "Add", "Mul", "Mul",
                               "Dropout", "Gemm", "Tanh", "Sigmoid", "Softmax"]
    gemm = model.graph.node[1]
    assert [(a.name, a.i) for a in gemm.attribute] == [("transB", 1)]
    assert list(gemm.input) == ["flat", "fc1.weight"]  # no bias
    _, model = check_export(CASES["merges: Add of two and three, Concat in edge order"], tmp_path)
    ops = {n.name: n for n in model.graph.node}
    assert ops["add2"].op_type == "Add" and ops["add3"].op_type == "Sum"
    assert list(ops["cat"].input) == ["c", "add3", "a"]
    _, model = check_export(CASES["adaptive pools"], tmp_path)
    assert op_types(model) == ["AveragePool", "Relu", "GlobalAveragePool", "Flatten"]
    _, model = check_export(CASES["mobile activations"], tmp_path)
    assert op_types(model) == ["Conv", "Clip", "Conv", "HardSwish", "Sigmoid", "Mul", "Identity",
                               "HardSigmoid", "Flatten", "Gemm", "Clip"]
    ops = {n.name: n for n in model.graph.node}
    bounds = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert [float(bounds[b]) for b in ops["r6"].input[1:]] == [0.0, 6.0]
    assert {a.name: round(a.f, 6) for a in ops["hsig"].attribute} == {"alpha": round(1 / 6, 6),
                                                                      "beta": 0.5}


def test_same_padding_puts_the_odd_pixel_last(tmp_path):
    _, model = check_export(CASES["conv same, even kernel and dilation"], tmp_path)
    pads = {n.name: list(onnx.helper.get_attribute_value(
        next(a for a in n.attribute if a.name == "pads"))) for n in model.graph.node}
    assert pads == {"c1": [1, 0, 2, 1], "c2": [2, 3, 2, 3]}


def test_a_ceil_window_past_the_kernel_is_padded_first(tmp_path):
    _, model = check_export(CASES["max pool whose ceil window needs a Pad"], tmp_path)
    assert op_types(model) == ["Pad", "MaxPool"]


def _random_pool_design(rng: random.Random):
    """A random stack of convolutions and poolings with every option drawn."""
    h, w = rng.randint(5, 13), rng.randint(5, 13)
    layers = []
    for i in range(rng.randint(1, 3)):
        kind = rng.choice(["Conv2d", "MaxPool2d", "AvgPool2d"])
        k = [rng.randint(1, 4), rng.randint(1, 4)]
        p = {"kernel_size": k, "stride": [rng.randint(1, 3), rng.randint(1, 3)],
             "padding": [rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2)]}
        if kind == "Conv2d":
            p.update(out_channels=rng.choice([2, 4]), groups=rng.choice([1, 2]),
                     dilation=[rng.randint(1, 2), rng.randint(1, 2)], bias=rng.random() < 0.5)
            if rng.random() < 0.3:
                p.update(padding="same", stride=1)
        else:
            p["ceil_mode"] = rng.random() < 0.7
            if kind == "MaxPool2d":
                p["dilation"] = [rng.randint(1, 3), rng.randint(1, 3)]
            else:
                p["count_include_pad"] = rng.random() < 0.5
        layers.append((f"l{i}", kind, p))
    return chain((2, h, w), *layers)


@pytest.mark.parametrize("seed", range(40))
def test_random_convolutions_and_poolings(seed, tmp_path):
    rng = random.Random(seed)
    for _ in range(200):
        design = _random_pool_design(rng)
        if Analysis(design).valid:
            break
    else:
        raise AssertionError(f"no valid design drawn for seed {seed}")
    check_export(design, tmp_path, batches=(2, 3))


# ---------------------------------------------------------------- refusals


def test_adaptive_pool_with_unequal_windows_is_refused(tmp_path):
    design = chain((3, 7, 8), ("pool", "AdaptiveAvgPool2d", {"output_size": [3, 3]}))
    with pytest.raises(ValueError, match=r"pool: AdaptiveAvgPool2d to 3×3 on a 7×8 input"):
        export_onnx(design, None, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_invalid_design_is_refused(tmp_path):
    design = chain((3, 8, 8), ("fc", "Linear", {"out_features": 4}))
    with pytest.raises(InvalidDesign, match="fc"):
        export_onnx(design, None, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_weights_that_dont_fit_are_refused(tmp_path):
    design = chain((3, 8, 8), ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}))
    weights = {"conv.weight": np.zeros((4, 3, 5, 5), np.float32),
               "conv.bias": np.zeros(4, np.float32)}
    with pytest.raises(WeightsError, match="conv.weight"):
        export_onnx(design, weights, tmp_path / "m.onnx")


def test_weights_from_a_file_or_the_seed(tmp_path):
    design = CASES["batch norm"]
    net = designer.build(design, weights=varied_weights(designer.build(design)))
    net.save_weights(tmp_path / "w.npz")
    export_onnx(design, str(tmp_path / "w.npz"), tmp_path / "file.onnx")
    stored = {i.name: onnx.numpy_helper.to_array(i)
              for i in onnx.load(str(tmp_path / "file.onnx")).graph.initializer}
    assert np.array_equal(stored["bn1.running_var"], net.weights["bn1.running_var"])
    export_onnx(design, None, tmp_path / "seed.onnx")
    stored = {i.name: onnx.numpy_helper.to_array(i)
              for i in onnx.load(str(tmp_path / "seed.onnx")).graph.initializer}
    assert np.array_equal(stored["bn1.running_var"], designer.build(design).weights["bn1.running_var"])
