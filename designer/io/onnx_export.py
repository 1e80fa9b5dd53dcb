"""ONNX export (contract §8): a valid design and its weights as an ONNX model.

Opset 17, the weights as initializers named as in the weights file (``"conv1.weight"``, §3),
one graph input named after the Input node with a dynamic batch dimension ``"N"``, and the
output node(s) as graph outputs named after them. Every ONNX node is named after the design
node it comes from (a layer that takes several ONNX nodes, GELU, names them ``"<id>/Erf"`` …,
the last one carrying the id itself), and every node's output tensor is named after its id.

PyTorch's meaning of each layer (§1) is kept exactly: pooling windows that PyTorch's
``ceil_mode`` adds are written as explicit extra padding on the right and bottom (ONNX pads
with −∞ for MaxPool and leaves the padding out of an average unless asked), so onnxruntime gives
the engine's outputs to float rounding.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import numpy as np

from designer.core.design import Design
from designer.core.atomic import write_atomic

OPSET = 17
#: the metadata key holding the design's class names (a JSON list), read back by the import
CLASSES_KEY = "cnn_designer.classes"
IR_VERSION = 8  # what opset 17 came with: readers from then on accept the file
#: protobuf refuses a message of 2 GiB or more; the weights are the bulk of the file
PROTOBUF_LIMIT = 2**31 - 1


class _Graph:
    """ONNX nodes and initializers as they are added, in topological order."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: set[str] = set()

    def constant(self, name: str, array: np.ndarray) -> str:
        if name not in self.names:
            self.names.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, name: str, weights: Mapping[str, np.ndarray]) -> str:
        return self.constant(name, np.ascontiguousarray(weights[name], dtype=np.float32))

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attrs))
        return output


def _pool_extra(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Extra right padding PyTorch's ceil_mode needs so its last (partial) window exists: none
    for a window that would start in the right padding (PyTorch drops it)."""
    eff = d * (k - 1) + 1
    span = size + 2 * p - eff
    if not ceil_mode:
        return 0
    out = (span + s - 1) // s + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return max(0, (out - 1) * s + eff - (size + 2 * p))


def _pool_pads(in_shape: tuple[int, ...], v: Mapping[str, Any], dilation: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (bottom, right)) padding of a PyTorch pooling, ceil_mode's extra included."""
    (kh, kw), (sh, sw), (ph, pw) = v["kernel_size"], v["stride"], v["padding"]
    xh = _pool_extra(in_shape[1], kh, sh, ph, dilation[0], v["ceil_mode"])
    xw = _pool_extra(in_shape[2], kw, sw, pw, dilation[1], v["ceil_mode"])
    return (ph, pw), (ph + xh, pw + xw)


def _export_node(g: _Graph, node_id: str, t: str, v: Mapping[str, Any], inputs: list[str],
                 in_shape: tuple[int, ...], weights: Mapping[str, np.ndarray]) -> None:
    a = inputs[0] if inputs else ""
    if t == "Conv2d":
        kh, kw = v["kernel_size"]
        dh, dw = v["dilation"]
        padding = v["padding"]
        if padding == "same":  # PyTorch: the odd one out goes on the right and bottom
            th, tw = dh * (kh - 1), dw * (kw - 1)
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        else:
            ph, pw = (0, 0) if padding == "valid" else padding
            pads = [ph, pw, ph, pw]
        ins = [a, g.weight(f"{node_id}.weight", weights)]
        if v["bias"]:
            ins.append(g.weight(f"{node_id}.bias", weights))
        g.node("Conv", ins, node_id, node_id, kernel_shape=[kh, kw], strides=list(v["stride"]),
               pads=pads, dilations=[dh, dw], group=v["groups"])
    elif t in ("MaxPool2d", "AvgPool2d"):
        dilation = v["dilation"] if t == "MaxPool2d" else (1, 1)
        (ph, pw), (eh, ew) = _pool_pads(in_shape, v, dilation)
        kernel, strides = list(v["kernel_size"]), list(v["stride"])
        if t == "MaxPool2d":
            if eh >= kernel[0] or ew >= kernel[1]:  # onnxruntime wants pads below the kernel
                a = g.node("Pad", [a, g.constant(f"{node_id}/pads", np.array(
                    [0, 0, ph, pw, 0, 0, eh, ew], np.int64)), g.constant(
                    f"{node_id}/minus_inf", np.array(-np.inf, np.float32))],
                    f"{node_id}/padded", f"{node_id}/Pad", mode="constant")
                ph = pw = eh = ew = 0
            g.node("MaxPool", [a], node_id, node_id, kernel_shape=kernel, strides=strides,
                   pads=[ph, pw, eh, ew], dilations=list(dilation), ceil_mode=0)
            return
        # PyTorch divides by the window's part inside [−padding, size + padding): the padding
        # counts (count_include_pad) but not ceil_mode's extra. ONNX counts all pads or none.
        if v["count_include_pad"] and (ph or pw) and (eh, ew) != (ph, pw):
            a = g.node("Pad", [a, g.constant(f"{node_id}/pads", np.array(
                [0, 0, ph, pw, 0, 0, ph, pw], np.int64))], f"{node_id}/padded",
                f"{node_id}/Pad", mode="constant")
            eh, ew, ph, pw = eh - ph, ew - pw, 0, 0
            include = 0
        else:
            include = int(v["count_include_pad"] and (eh, ew) == (ph, pw))
        g.node("AveragePool", [a], node_id, node_id, kernel_shape=kernel, strides=strides,
               pads=[ph, pw, eh, ew], count_include_pad=include, ceil_mode=0)
    elif t == "AdaptiveAvgPool2d":
        oh, ow = v["output_size"]
        h, w = in_shape[1:]
        if (oh, ow) == (1, 1):
            g.node("GlobalAveragePool", [a], node_id, node_id)
        elif h % oh == 0 and w % ow == 0:
            g.node("AveragePool", [a], node_id, node_id, kernel_shape=[h // oh, w // ow],
                   strides=[h // oh, w // ow])
        else:
            raise ValueError(
                f"{node_id}: AdaptiveAvgPool2d to {oh}×{ow} on a {h}×{w} input can't be written "
                f"in ONNX: its windows differ in size because {h}×{w} is not a multiple of "
                f"{oh}×{ow}; change output_size to a divisor of the input (or 1), or the input "
                f"size to a multiple of it")
    elif t == "BatchNorm2d":
        c = in_shape[0]
        if v["affine"]:
            scale, bias = g.weight(f"{node_id}.weight", weights), g.weight(f"{node_id}.bias", weights)
        else:
            scale = g.constant(f"{node_id}/scale", np.ones(c, np.float32))
            bias = g.constant(f"{node_id}/bias", np.zeros(c, np.float32))
        g.node("BatchNormalization", [a, scale, bias, g.weight(f"{node_id}.running_mean", weights),
                                      g.weight(f"{node_id}.running_var", weights)],
               node_id, node_id, epsilon=v["eps"])
    elif t == "LayerNorm":
        if v["elementwise_affine"]:
            ins = [a, g.weight(f"{node_id}.weight", weights), g.weight(f"{node_id}.bias", weights)]
        else:
            ins = [a, g.constant(f"{node_id}/scale", np.ones(in_shape, np.float32))]
        g.node("LayerNormalization", ins, node_id, node_id, axis=1, epsilon=v["eps"])
    elif t == "Linear":
        ins = [a, g.weight(f"{node_id}.weight", weights)]
        if v["bias"]:
            ins.append(g.weight(f"{node_id}.bias", weights))
        g.node("Gemm", ins, node_id, node_id, transB=1)
    elif t == "Flatten":
        g.node("Flatten", [a], node_id, node_id, axis=1)
    elif t in ("ReLU", "Sigmoid", "Tanh"):
        g.node({"ReLU": "Relu"}.get(t, t), [a], node_id, node_id)
    elif t == "LeakyReLU":
        g.node("LeakyRelu", [a], node_id, node_id, alpha=v["negative_slope"])
    elif t == "GELU":  # exact GELU, x/2 · (1 + erf(x/√2)), as PyTorch writes it for opset 17
        half = g.node("Div", [a, g.constant("gelu/sqrt2", np.array(math.sqrt(2), np.float32))],
                      f"{node_id}/scaled", f"{node_id}/Div")
        erf = g.node("Erf", [half], f"{node_id}/erf", f"{node_id}/Erf")
        one = g.node("Add", [erf, g.constant("gelu/one", np.array(1, np.float32))],
                     f"{node_id}/one_plus_erf", f"{node_id}/Add")
        prod = g.node("Mul", [a, one], f"{node_id}/x_times", f"{node_id}/Mul")
        g.node("Mul", [prod, g.constant("gelu/half", np.array(0.5, np.float32))], node_id,
               node_id)
    elif t == "ReLU6":  # as PyTorch writes it: a Clip with its bounds as inputs
        g.node("Clip", [a, g.constant("clip/zero", np.array(0, np.float32)),
                        g.constant("clip/six", np.array(6, np.float32))], node_id, node_id)
    elif t == "SiLU":  # x · σ(x), as PyTorch writes it for opset 17
        sig = g.node("Sigmoid", [a], f"{node_id}/sigmoid", f"{node_id}/Sigmoid")
        g.node("Mul", [a, sig], node_id, node_id)
    elif t == "Hardswish":
        g.node("HardSwish", [a], node_id, node_id)
    elif t == "Hardsigmoid":  # ONNX's max(0, min(1, αx + β)) with PyTorch's α = 1/6, β = 1/2
        g.node("HardSigmoid", [a], node_id, node_id, alpha=1 / 6, beta=0.5)
    elif t == "Identity":
        g.node("Identity", [a], node_id, node_id)
    elif t == "Softmax":
        g.node("Softmax", [a], node_id, node_id, axis=1)
    elif t == "Dropout":  # no training_mode input: identity, as at inference
        g.node("Dropout", [a], node_id, node_id)
    elif t == "Add":
        g.node("Add" if len(inputs) == 2 else "Sum", inputs, node_id, node_id)
    elif t == "Concat":
        g.node("Concat", inputs, node_id, node_id, axis=1)
    else:
        raise ValueError(f"{node_id}: layer type {t} can't be exported to ONNX yet")


def export_onnx(design: Design, weights: Mapping[str, Any] | str | os.PathLike | None,
                path: str | os.PathLike) -> None:
    """Write ``design`` with ``weights`` (a mapping of §3, a path to a weights file, or None for
    the seed-0 weights) to ``path`` as an ONNX model. Raises InvalidDesign for a design with
    errors, WeightsError for weights that don't fit it, ValueError for what ONNX can't express
    and OSError if the file can't be written (the file is then left as it was)."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    from designer.engine.network import Network

    net = Network(design, weights, copy_weights=False)  # InvalidDesign, WeightsError
    weights = net.weights
    infos = net.infos
    g = _Graph(helper, numpy_helper)
    for node_id in net.order:
        info = infos[node_id]
        if info.type == "Input":
            continue
        sources = design.sources(node_id)
        _export_node(g, node_id, info.type, info.values, list(sources),
                     infos[sources[0]].shape, weights)
    outputs = [n for n in net.order if not design.targets(n)]
    if net.input_id in outputs:
        raise ValueError(f"{net.input_id}: the Input feeds no layer, so there is nothing to "
                         f"export; connect a layer to it")

    def value(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                             ["N", *infos[name].shape])

    graph = helper.make_graph(g.nodes, design.name or "cnn-designer", [value(net.input_id)],
                              [value(n) for n in outputs], initializer=g.initializers)
    model = helper.make_model(graph, producer_name="cnn-designer",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if design.classes is not None:  # the output's class names travel with the model
        helper.set_model_props(model, {CLASSES_KEY: json.dumps(list(design.classes))})
    size = model.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise ValueError(f"the ONNX file would take {size / 2**20:,.0f} MiB, but an ONNX file "
                         f"holds at most 2,048 MiB with its weights inside; use fewer or smaller "
                         f"layers")
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    write_atomic(path, lambda handle: handle.write(data))
