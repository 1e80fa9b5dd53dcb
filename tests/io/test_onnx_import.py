"""ONNX import (contract §8): export → import gives back the design (summary: types, shapes,
parameter counts; node ids) and the engine's outputs with the imported weights; models built
with onnx.helper for what other exporters write (Gemm either way round, MatMul + Add, a
flattening Reshape, GlobalAveragePool, a Constant node, auto_pad) import to the layers whose
outputs are computed here independently with NumPy; everything else is refused with a message
naming the ONNX node and its op type."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import designer
from designer.core.analysis import Analysis
from designer.io.onnx_export import export_onnx
from designer.io.onnx_import import OnnxImportError, import_onnx
from designer.io.templates import list_templates
from tests.io.test_onnx_export import CASES, SLOW_TEMPLATES, relative_error, varied_weights

TOLERANCE = 1e-4


def summary_rows(design):
    return [(n["id"], n["type"], n["output_shape"], n["params"])
            for n in designer.summarize(design)["nodes"]]


def same_type(original, imported, design):
    """Equal types, except an AdaptiveAvgPool2d to more than 1×1, which ONNX has as the plain
    AveragePool (its input a multiple of its output) and so comes back as that AvgPool2d."""
    return original == imported or (
        original[0] == imported[0] and (original[1], imported[1]) == ("AdaptiveAvgPool2d",
                                                                      "AvgPool2d")
        and design.node(original[0]).params["output_size"] not in (1, [1, 1]))


def round_trip(design, tmp_path):
    net = designer.build(design, seed=0)
    weights = varied_weights(net)
    net = designer.build(design, weights=weights)
    path = tmp_path / "model.onnx"
    export_onnx(design, weights, path)
    imported, got_weights = import_onnx(path)
    assert Analysis(imported).valid
    want_rows, got_rows = summary_rows(design), summary_rows(imported)
    assert [r[::2] + r[3:] for r in got_rows] == [r[::2] + r[3:] for r in want_rows]
    assert all(same_type(w[:2], g[:2], design) for w, g in zip(want_rows, got_rows))
    assert sorted(got_weights) == sorted(weights)
    assert all(got_weights[k].dtype == np.float32 for k in got_weights)
    assert all(n.position is not None for n in imported.nodes)
    net2 = designer.build(imported, weights=got_weights)
    x = np.random.default_rng(3).standard_normal((2, *net.input_shape)).astype(np.float32)
    want, got = net.forward(x), net2.forward(x)
    outputs = [n for n in net.order if not design.targets(n)]
    assert max(relative_error(got[n], want[n]) for n in outputs) <= TOLERANCE
    return imported, got_weights


TEMPLATES = [pytest.param(t, id=t.id, marks=[pytest.mark.slow] if t.id in SLOW_TEMPLATES else [])
             for t in list_templates()]


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_round_trip(template, tmp_path):
    round_trip(template.load(), tmp_path)


@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_and_option_round_trips(name, tmp_path):
    round_trip(CASES[name], tmp_path)


def test_adaptive_pool_comes_back_as_the_equal_average_pool(tmp_path):
    imported, _ = round_trip(CASES["adaptive pools"], tmp_path)
    assert [n.type for n in imported.nodes] == ["Input", "AvgPool2d", "ReLU",
                                                "AdaptiveAvgPool2d", "Flatten"]
    assert imported.node("a1").params["kernel_size"] == [2, 3]


# ------------------------------------------------------------------------ hand-built models

RNG = np.random.default_rng(11)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def save(tmp_path, nodes, inits, in_shape=("N", 3, 4, 4), out="y", name="model.onnx",
         opset=17):
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def run(design, weights, x):
    net = designer.build(design, weights=weights)
    outputs = [n for n in net.order if not design.targets(n)]
    assert len(outputs) == 1
    return net.forward(x)[outputs[0]]


X = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
W = RNG.standard_normal((5, 48)).astype(np.float32)  # (out, in)
B = RNG.standard_normal(5).astype(np.float32)
WANT_LINEAR = X.reshape(2, -1) @ W.T + B


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_either_weight_orientation(tmp_path, trans_b):
    weight = W if trans_b else W.T
    path = save(tmp_path, [
        helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=trans_b)],
        [const("w", weight), const("b", B)])
    design, weights = import_onnx(path)
    assert [(n.id, n.type) for n in design.nodes] == [("x", "Input"), ("flat", "Flatten"),
                                                      ("fc", "Linear")]
    assert design.node("fc").params["out_features"] == 5
    assert weights["fc.weight"].shape == (5, 48)
    np.testing.assert_allclose(run(design, weights, X), WANT_LINEAR, rtol=1e-5, atol=1e-5)


def test_matmul_and_add_become_one_linear_after_a_flattening_reshape(tmp_path):
    path = save(tmp_path, [
        helper.make_node("Constant", [], ["shape"], name="shape_const",
                         value=const("v", np.array([0, -1], np.int64))),
        helper.make_node("Reshape", ["x", "shape"], ["f"], name="/Reshape"),
        helper.make_node("MatMul", ["f", "w"], ["m"], name="/fc/MatMul"),
        helper.make_node("Add", ["m", "b"], ["y"], name="/fc/Add")],
        [const("w", W.T), const("b", B)])
    design, weights = import_onnx(path)
    assert [n.type for n in design.nodes] == ["Input", "Flatten", "Linear"]
    linear = design.nodes[2]
    assert linear.id == "fc" and linear.params["bias"] is True  # PyTorch's module name
    assert design.nodes[1].id == "flatten"  # "/Reshape": an op of the top module's forward
    assert sorted(weights) == ["fc.bias", "fc.weight"]
    np.testing.assert_allclose(run(design, weights, X), WANT_LINEAR, rtol=1e-5, atol=1e-5)


def test_matmul_without_add_is_a_linear_without_bias(tmp_path):
    path = save(tmp_path, [
        helper.make_node("Flatten", ["x"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "w"], ["y"], name="mm")], [const("w", W.T)])
    design, weights = import_onnx(path)
    assert design.node("mm").params == {"out_features": 5, "bias": False}
    np.testing.assert_allclose(run(design, weights, X), X.reshape(2, -1) @ W.T, rtol=1e-5,
                               atol=1e-5)


def test_global_average_pool_conv_auto_pad_and_softmax(tmp_path):
    w = RNG.standard_normal((6, 3, 3, 3)).astype(np.float32)
    path = save(tmp_path, [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["c"], ["r"], name=""),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Softmax", ["f"], ["y"], name="soft", axis=-1)], [const("w", w)])
    design, weights = import_onnx(path)
    assert [(n.id, n.type) for n in design.nodes] == [
        ("x", "Input"), ("conv", "Conv2d"), ("relu", "ReLU"), ("gap", "AdaptiveAvgPool2d"),
        ("flat", "Flatten"), ("soft", "Softmax")]
    assert design.node("conv").params["padding"] == "same"
    assert design.node("gap").params == {"output_size": 1}
    # independent reference: direct convolution with zero padding 1
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((2, 6, 4, 4))
    for i in range(4):
        for j in range(4):
            conv[:, :, i, j] = np.einsum("nchw,kchw->nk", padded[:, :, i:i + 3, j:j + 3], w)
    pooled = np.maximum(conv, 0).mean(axis=(2, 3))
    want = np.exp(pooled) / np.exp(pooled).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run(design, weights, X), want, rtol=1e-5, atol=1e-6)


def test_ids_are_made_unique(tmp_path):
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["a"], name="x"),
                           helper.make_node("Relu", ["a"], ["b"], name="act"),
                           helper.make_node("Sigmoid", ["b"], ["y"], name="act")], [])
    design, _ = import_onnx(path)
    assert [n.id for n in design.nodes] == ["x", "x_2", "act", "act_2"]
    assert design.edges == [("x", "x_2"), ("x_2", "act"), ("act", "act_2")]


# ------------------------------------------------------------------ mobile activations

SCALAR = {"ReLU": lambda v: np.maximum(v, 0), "ReLU6": lambda v: np.clip(v, 0, 6),
          "Hardswish": lambda v: v * np.clip(v + 3, 0, 6) / 6,
          "Hardsigmoid": lambda v: np.clip(v + 3, 0, 6) / 6,
          "SiLU": lambda v: v / (1 + np.exp(-v)), "Identity": lambda v: v}
XA = (RNG.standard_normal((2, 3, 4, 4)) * 5).astype(np.float32)


def check_activation(path, want_type, node_id="a"):
    design, weights = import_onnx(path)
    assert [(n.id, n.type) for n in design.nodes] == [("x", "Input"), (node_id, want_type)]
    np.testing.assert_allclose(run(design, weights, XA), SCALAR[want_type](XA.astype(np.float64)),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("low, high, want", [(0, 6, "ReLU6"), (0, None, "ReLU")])
def test_clip_with_bounds_as_inputs(tmp_path, low, high, want):
    inputs = ["x", "lo"] + (["hi"] if high is not None else [])
    inits = [const("lo", np.array(low, np.float32))] + (
        [const("hi", np.array(high, np.float32))] if high is not None else [])
    check_activation(save(tmp_path, [helper.make_node("Clip", inputs, ["y"], name="a")], inits),
                     want)


def test_clip_with_bounds_from_constant_nodes_and_an_infinite_top(tmp_path):
    path = save(tmp_path, [
        helper.make_node("Constant", [], ["lo"], value=const("v0", np.array(0, np.float32))),
        helper.make_node("Constant", [], ["hi"], value=const("v1", np.array(np.inf, np.float32))),
        helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="a")], [])
    check_activation(path, "ReLU")


def test_clip_with_bounds_as_attributes_before_opset_11(tmp_path):
    path = save(tmp_path, [helper.make_node("Clip", ["x"], ["y"], name="a", min=0.0, max=6.0)],
                [], opset=10)
    check_activation(path, "ReLU6")


@pytest.mark.parametrize("op, attrs, want", [("HardSwish", {}, "Hardswish"),
                                             ("HardSigmoid", {"alpha": 1 / 6}, "Hardsigmoid"),
                                             ("Identity", {}, "Identity")])
def test_mobile_ops_become_their_layers(tmp_path, op, attrs, want):
    check_activation(save(tmp_path, [helper.make_node(op, ["x"], ["y"], name="a", **attrs)], []),
                     want)


def test_sigmoid_times_its_input_is_silu(tmp_path):
    for order in (["x", "s"], ["s", "x"]):
        path = save(tmp_path, [helper.make_node("Sigmoid", ["x"], ["s"], name="a/Sigmoid"),
                               helper.make_node("Mul", order, ["y"], name="a")], [])
        check_activation(path, "SiLU")


def test_a_sigmoid_used_elsewhere_too_stays_a_sigmoid(tmp_path):
    path = save(tmp_path, [helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
                           helper.make_node("Relu", ["s"], ["r"], name="r"),
                           helper.make_node("Mul", ["x", "s"], ["m"], name="m"),
                           helper.make_node("Add", ["r", "m"], ["y"], name="y")], [])
    with pytest.raises(OnnxImportError, match='"m" \\(Mul\\)'):
        import_onnx(path)


def test_identity_of_a_weight_is_an_alias(tmp_path):
    w = RNG.standard_normal((5, 48)).astype(np.float32)
    path = save(tmp_path, [helper.make_node("Identity", ["w0"], ["w"], name="alias"),
                           helper.make_node("Flatten", ["x"], ["f"], name="flat"),
                           helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1)],
                [const("w0", w)])
    design, weights = import_onnx(path)
    assert [n.type for n in design.nodes] == ["Input", "Flatten", "Linear"]
    np.testing.assert_array_equal(weights["fc.weight"], w)


def test_fixed_batch_input_is_read(tmp_path):
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], [],
                in_shape=(1, 3, 4, 4))
    design, _ = import_onnx(path)
    assert design.node("x").params == {"channels": 3, "height": 4, "width": 4}


# ------------------------------------------------------------------------------- refusals


def refused(path):
    with pytest.raises(OnnxImportError) as caught:
        import_onnx(path)
    return str(caught.value)


def test_unsupported_op_names_node_op_and_what_is_supported(tmp_path):
    path = save(tmp_path, [helper.make_node("Resize", ["x", "", "s"], ["y"], name="up1",
                                            mode="nearest")],
                [const("s", np.array([1, 1, 2, 2], np.float32))])
    message = refused(path)
    assert '"up1"' in message and "(Resize)" in message and "supported: Conv" in message


@pytest.mark.parametrize("nodes, inits, words", [
    ([helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2],
                       pads=[0, 0, 1, 1])], [], ["(MaxPool)", "asymmetric pads [0, 0, 1, 1]"]),
    ([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 0, 0, 0])],
     [const("w", np.ones((2, 3, 3, 3), np.float32))], ["(Conv)", "asymmetric pads"]),
    ([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=-1)], [],
     ["(Softmax)", "axis -1", "axis 1"]),
    ([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
     [const("s", np.array([0, 3, 16], np.int64))], ["(Reshape)", "[0, 3, 16]"]),
    ([helper.make_node("Flatten", ["x"], ["f"], name="f"),
      helper.make_node("Add", ["f", "b"], ["y"], name="plus")],
     [const("b", np.ones(48, np.float32))], ['"plus" (Add)', "bias"]),
    ([helper.make_node("Conv", ["x", "w"], ["y"], name="dyn")], [],
     ['"dyn" (Conv)', "weight must be a constant"]),
    ([helper.make_node("Gemm", ["x", "w"], ["y"], name="g", transB=1)],
     [const("w", np.ones((5, 48), np.float32))], ['"g" (Gemm)', "Flatten"]),
    ([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2)], [],
     ['"cat" (Concat)', "axis 2"]),
    ([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clamp")],
     [const("lo", np.array(-1, np.float32)), const("hi", np.array(1, np.float32))],
     ['"clamp" (Clip)', "Clip(-1, 1)", "Clip(0, 6) as ReLU6"]),
    ([helper.make_node("HardSigmoid", ["x"], ["y"], name="hs")], [],
     ['"hs" (HardSigmoid)', "alpha 0.2 and beta 0.5", "alpha 1/6"]),
    ([helper.make_node("Pad", ["x", "p"], ["y"], name="pad")],
     [const("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], ['"pad" (Pad)']),
])
def test_refusals_name_the_node_and_its_op(tmp_path, nodes, inits, words):
    message = refused(save(tmp_path, nodes, inits))
    assert message.startswith("model.onnx: ")
    for word in words:
        assert word in message


def test_input_that_is_not_an_image_batch_is_refused(tmp_path):
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")], [],
                in_shape=("N", 10))
    assert 'graph input "x" has shape (?, 10)' in refused(path)


def test_garbage_truncated_and_missing_files_get_a_message(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model at all \xff\xfe" * 20)
    assert "garbage.onnx: is not an ONNX model" in refused(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert "empty.onnx: is not an ONNX model" in refused(empty)
    good = tmp_path / "good.onnx"
    export_onnx(CASES["batch norm"], None, good)
    data = good.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert "cut.onnx: is not an ONNX model, or the file is cut short" in refused(cut)
    assert "missing.onnx: can't read the file" in refused(tmp_path / "missing.onnx")


def test_class_names_travel_with_the_model(tmp_path):
    design = CASES["linear and activations on features"].copy()
    names = ["cat", "dog", "bird", "fish", "frog"]
    design.set_classes(names)
    path = tmp_path / "named.onnx"
    export_onnx(design, None, path)
    model = onnx.load(str(path))
    assert {p.key for p in model.metadata_props} == {"cnn_designer.classes"}
    imported, _ = import_onnx(path)
    assert imported.classes == tuple(names)
    # a model without them, or with names that can't be classes, imports unnamed
    helper.set_model_props(model, {"cnn_designer.classes": '["a", "a"]'})
    onnx.save(model, str(path))
    assert import_onnx(path)[0].classes is None
