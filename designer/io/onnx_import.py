"""ONNX import (contract §8): an ONNX model as a design and its weights (§3's layout).

Reads what exporters write for the layers of §1: ``Conv``, ``Gemm`` (either weight
orientation) or ``MatMul`` + ``Add`` → ``Linear``, ``Flatten`` or a flattening ``Reshape`` →
``Flatten``, ``GlobalAveragePool`` → ``AdaptiveAvgPool2d(1)``, ``MaxPool``, ``AveragePool``,
``BatchNormalization``, ``LayerNormalization``, ``Relu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``,
``Clip(0, 6)`` → ``ReLU6`` (``Clip(0)`` → ``ReLU``), ``Sigmoid`` + ``Mul`` → ``SiLU``,
``HardSwish``, ``HardSigmoid`` (PyTorch's α = 1/6, β = 1/2), ``Softmax``, ``Dropout``,
``Add``/``Sum``, ``Concat``, ``Identity`` and the erf pattern of exact GELU. Node ids come from the ONNX node names, positions from the layout.
Anything else is refused with an OnnxImportError naming the ONNX node, its op type and what is
supported; a file that is not ONNX gets a message too, never a traceback.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from designer.core.design import Design, GraphError, Node, check_id
from designer.core.layout import layered_positions

SUPPORTED = ("Conv, Gemm, MatMul+Add, Relu, LeakyRelu, Sigmoid, Tanh, Clip(0, 6), HardSwish, "
             "HardSigmoid, Softmax, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, "
             "LayerNormalization, Flatten, Reshape (flattening), Add, Sum, Concat, Dropout, "
             "Identity, SiLU's Sigmoid+Mul and GELU's Erf pattern")


class OnnxImportError(ValueError):
    """The file is not an ONNX model this project can read, or uses what no layer expresses."""


def _pool_extra(size: int, k: int, s: int, p: int, d: int) -> int:
    """The extra right padding PyTorch's ceil_mode adds (as the exporter writes it)."""
    from designer.io.onnx_export import _pool_extra as extra
    return extra(size, k, s, p, d, True)


class _Reader:
    def __init__(self, model: Any, stem: str) -> None:
        from onnx import numpy_helper
        self.numpy_helper = numpy_helper
        self.graph = model.graph
        self.props = list(model.metadata_props)
        self.consts: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.tensor: dict[str, str] = {}  # ONNX tensor name -> design node id
        self.shape: dict[str, tuple[int, ...]] = {}  # design node id -> shape without batch
        self.nodes: list[Node] = []
        self.edges: list[tuple[str, str]] = []
        self.weights: dict[str, np.ndarray] = {}
        self.ids: set[str] = set()
        self.done: set[int] = set()
        self.stem = stem
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.graph.node):
            for name in n.input:
                self.consumers.setdefault(name, []).append(i)
        opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        self.opset = opsets[0] if opsets else 17

    # ------------------------------------------------------------------ helpers
    def fail(self, n: Any, why: str) -> OnnxImportError:
        name = n.name or "(unnamed)"
        return OnnxImportError(f'ONNX node "{name}" ({n.op_type}): {why}')

    def unique_id(self, wanted: str, fallback: str) -> str:
        stem = wanted or fallback
        try:
            check_id(stem)
        except GraphError:
            stem = fallback
        node_id, k = stem, 2
        while node_id in self.ids:
            node_id, k = f"{stem}_{k}", k + 1
        self.ids.add(node_id)
        return node_id

    def attrs(self, n: Any) -> dict[str, Any]:
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    def source(self, n: Any, name: str) -> str:
        if name not in self.tensor:
            what = "a constant" if name in self.consts else "a tensor no supported layer makes"
            raise self.fail(n, f'its input "{name}" is {what}; supported: {SUPPORTED}')
        return self.tensor[name]

    def const(self, n: Any, index: int, what: str) -> np.ndarray:
        if index >= len(n.input) or n.input[index] not in self.consts:
            raise self.fail(n, f"its {what} must be a constant (an initializer) to become a "
                               f"layer's weights")
        return self.consts[n.input[index]]

    def add(self, n: Any, type_: str, params: dict[str, Any], sources: list[str],
            shape: tuple[int, ...], weights: dict[str, np.ndarray] | None = None,
            name: str | None = None, output: str | None = None) -> str:
        node_id = self.unique_id(module_name(n.name if name is None else name), type_.lower())
        self.nodes.append(Node(node_id, type_, params))
        self.edges += [(s, node_id) for s in sources]
        for key, w in (weights or {}).items():
            self.weights[f"{node_id}.{key}"] = np.ascontiguousarray(w, dtype=np.float32)
        self.shape[node_id] = shape
        self.tensor[n.output[0] if output is None else output] = node_id
        return node_id

    def single_consumer(self, name: str) -> Any | None:
        users = self.consumers.get(name, [])
        outputs = {o.name for o in self.graph.output}
        if len(users) != 1 or name in outputs:
            return None
        return users[0]

    # ------------------------------------------------------------------ reading
    def read(self) -> tuple[Design, dict[str, np.ndarray]]:
        g = self.graph
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise OnnxImportError(
                f"the model has {len(inputs)} graph inputs "
                f"({', '.join(i.name for i in inputs) or 'none'}); a design has exactly one "
                f"Input, an image batch (N, C, H, W)")
        inp = inputs[0]
        dims = inp.type.tensor_type.shape.dim
        sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(sizes) != 4 or any(s is None or s < 1 for s in sizes[1:]):
            shown = ", ".join("?" if s is None else str(s) for s in sizes)
            raise OnnxImportError(
                f'graph input "{inp.name}" has shape ({shown}); a design\'s Input is an image '
                f"batch (N, C, H, W) with fixed C, H and W")
        c, h, w = sizes[1:]
        input_id = self.unique_id(inp.name, "input")
        self.nodes.append(Node(input_id, "Input", {"channels": c, "height": h, "width": w}))
        self.tensor[inp.name] = input_id
        self.shape[input_id] = (c, h, w)
        for i, n in enumerate(g.node):
            if i in self.done:
                continue
            self.done.add(i)
            self.node(i, n)
        if len(self.nodes) == 1:
            raise OnnxImportError("the model has no layers to import")
        design = Design.from_parts(g.name or self.stem, self.nodes, self.edges)
        for node_id, position in layered_positions(design).items():
            design.node(node_id).position = position
        classes = self.classes()
        if classes is not None:
            design.set_classes(classes)
        return design, self.weights

    def classes(self) -> list[str] | None:
        """The class names a model exported here carries (ignored when they don't fit)."""
        from designer.core.design import classes_problem
        from designer.io.onnx_export import CLASSES_KEY
        text = next((p.value for p in self.props if p.key == CLASSES_KEY), None)
        try:
            classes = json.loads(text) if text is not None else None
        except ValueError:
            return None
        return classes if classes is not None and classes_problem(classes) is None else None

    def node(self, i: int, n: Any) -> None:
        op, a = n.op_type, self.attrs(n)
        if n.domain not in ("", "ai.onnx"):
            raise self.fail(n, f'operators of domain "{n.domain}" are not supported; '
                               f"supported: {SUPPORTED}")
        if op == "Constant":
            value = a.get("value")
            if value is None:
                raise self.fail(n, "only tensor constants (value) are supported")
            self.consts[n.output[0]] = self.numpy_helper.to_array(value)
            return
        if op == "Identity" and n.input and n.input[0] in self.consts:
            self.consts[n.output[0]] = self.consts[n.input[0]]  # an alias of a weight
            return
        if op in ("Add", "Sum") and any(x in self.consts for x in n.input):
            raise self.fail(n, "adding a constant is supported only as a Linear layer's bias "
                               "right after a MatMul")
        if op == "Div" and self.gelu(i, n):
            return
        if op == "Sigmoid" and self.silu(n):
            return
        src = self.source(n, n.input[0]) if n.input else None
        shape = self.shape.get(src) if src else None
        simple = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}
        if op in simple:
            self.add(n, simple[op], {}, [src], shape)
        elif op in ("HardSwish", "Identity"):
            self.add(n, {"HardSwish": "Hardswish"}.get(op, op), {}, [src], shape)
        elif op == "HardSigmoid":
            alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
            if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
                raise self.fail(n, f"HardSigmoid with alpha {alpha:g} and beta {beta:g}; "
                                   f"supported: alpha 1/6 and beta 1/2 (PyTorch's Hardsigmoid)")
            self.add(n, "Hardsigmoid", {}, [src], shape)
        elif op == "Clip":
            self.clip(n, a, src, shape)
        elif op == "LeakyRelu":
            self.add(n, "LeakyReLU", {"negative_slope": float(a.get("alpha", 0.01))}, [src],
                     shape)
        elif op == "Softmax":
            axis = a.get("axis", -1 if self.opset >= 13 else 1)
            if axis < 0:
                axis += len(shape) + 1
            if axis != 1:
                raise self.fail(n, f"softmax over axis {a.get('axis')} of a rank-"
                                   f"{len(shape) + 1} tensor; supported: over axis 1 (channels "
                                   f"or features)")
            self.add(n, "Softmax", {}, [src], shape)
        elif op == "Dropout":
            ratio = a.get("ratio", 0.5)
            if len(n.input) > 1 and n.input[1]:
                ratio = float(self.const(n, 1, "ratio"))
            self.add(n, "Dropout", {"p": float(ratio)}, [src], shape)
        elif op == "Conv":
            self.conv(n, a, src, shape)
        elif op == "Gemm":
            self.gemm(n, a, src, shape)
        elif op == "MatMul":
            self.matmul(n, src, shape)
        elif op in ("MaxPool", "AveragePool"):
            self.pool(n, a, src, shape)
        elif op == "Pad":
            self.pad(n, a, src, shape)
        elif op == "GlobalAveragePool":
            self.need_maps(n, shape)
            self.add(n, "AdaptiveAvgPool2d", {"output_size": 1}, [src], (shape[0], 1, 1))
        elif op == "BatchNormalization":
            self.need_maps(n, shape)
            scale, bias, mean, var = (self.const(n, k, w) for k, w in (
                (1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
            affine = not (np.all(scale == 1) and np.all(bias == 0)
                          and not n.input[1].endswith(".weight"))
            params = {"eps": float(a.get("epsilon", 1e-5))}
            weights = {"running_mean": mean, "running_var": var}
            if affine:
                weights.update(weight=scale, bias=bias)
            else:
                params["affine"] = False
            self.add(n, "BatchNorm2d", params, [src], shape, weights)
        elif op == "LayerNormalization":
            axis = a.get("axis", -1)
            if axis < 0:
                axis += len(shape) + 1
            if axis != 1:
                raise self.fail(n, f"normalizing from axis {a.get('axis', -1)} of a rank-"
                                   f"{len(shape) + 1} tensor; supported: over all of a sample's "
                                   f"features (axis 1), as LayerNorm does here")
            scale = np.broadcast_to(self.const(n, 1, "scale"), shape)
            bias = (np.broadcast_to(self.const(n, 2, "bias"), shape)
                    if len(n.input) > 2 and n.input[2] else np.zeros(shape, np.float32))
            params = {"eps": float(a.get("epsilon", 1e-5))}
            if np.all(scale == 1) and np.all(bias == 0) and not n.input[1].endswith(".weight"):
                params["elementwise_affine"] = False
                weights = {}
            else:
                weights = {"weight": scale, "bias": bias}
            self.add(n, "LayerNorm", params, [src], shape, weights)
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                raise self.fail(n, f"flattening from axis {a['axis']}; supported: axis 1")
            self.flatten(n, src, shape)
        elif op == "Reshape":
            target = [int(v) for v in np.asarray(self.const(n, 1, "shape")).ravel()]
            size = int(np.prod(shape))
            if not (len(target) == 2 and target[0] in (0, -1) or len(target) == 2
                    and target[0] > 0) or target[1] not in (-1, size) or (
                    target[0] == -1 and target[1] == -1):
                raise self.fail(n, f"reshape to {target}; supported: only flattening each "
                                   f"sample, shape [N, -1], [0, -1] or [-1, {size}]")
            self.flatten(n, src, shape)
        elif op in ("Add", "Sum"):
            sources = [self.source(n, x) for x in n.input]
            if len(sources) == 1:
                self.tensor[n.output[0]] = sources[0]
                return
            self.add(n, "Add", {}, sources, shape)
        elif op == "Concat":
            axis = a.get("axis")
            if axis is not None and axis < 0:
                axis += len(shape) + 1
            if axis != 1 or len(shape) != 3:
                raise self.fail(n, f"concatenation along axis {a.get('axis')}; supported: "
                                   f"image maps along the channels (axis 1)")
            sources = [self.source(n, x) for x in n.input]
            shapes = [self.shape[s] for s in sources]
            self.add(n, "Concat", {}, sources,
                     (sum(s[0] for s in shapes), *shapes[0][1:]))
        else:
            raise self.fail(n, f"this operator has no layer here; supported: {SUPPORTED}")

    def need_maps(self, n: Any, shape: tuple[int, ...]) -> None:
        if len(shape) != 3:
            raise self.fail(n, f"its input is a flat vector of {shape[0]} features; this "
                               f"layer needs image maps (C, H, W)")

    def flatten(self, n: Any, src: str, shape: tuple[int, ...]) -> None:
        if len(shape) == 1:  # already flat: nothing to do
            self.tensor[n.output[0]] = src
            return
        self.add(n, "Flatten", {}, [src], (int(np.prod(shape)),))

    def conv(self, n: Any, a: dict[str, Any], src: str, shape: tuple[int, ...]) -> None:
        self.need_maps(n, shape)
        weight = self.const(n, 1, "weight")
        if weight.ndim != 4:
            raise self.fail(n, f"a {weight.ndim - 2}-d convolution; supported: 2-d (images)")
        k, _, kh, kw = weight.shape
        strides = list(a.get("strides", [1, 1]))
        dilations = list(a.get("dilations", [1, 1]))
        group = int(a.get("group", 1))
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        totals = [dilations[0] * (kh - 1), dilations[1] * (kw - 1)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if strides != [1, 1]:
                raise self.fail(n, f"auto_pad {auto_pad} with strides {strides}; supported: "
                                   f"with stride 1 (PyTorch's padding='same'), or explicit pads")
            if auto_pad == "SAME_LOWER" and any(t % 2 for t in totals):
                raise self.fail(n, "auto_pad SAME_LOWER with an odd padding total puts the "
                                   "extra row on top, which PyTorch's padding='same' doesn't")
            padding: Any = "same"
        elif auto_pad == "VALID":
            padding = 0
        else:
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if pads[:2] == pads[2:]:
                padding = pads[:2]
            elif strides == [1, 1] and pads == [totals[0] // 2, totals[1] // 2,
                                                totals[0] - totals[0] // 2,
                                                totals[1] - totals[1] // 2]:
                padding = "same"
            else:
                raise self.fail(n, f"asymmetric pads {pads} (top, left, bottom, right); "
                                   f"supported: equal padding on both sides, or "
                                   f"padding='same' with stride 1")
        bias = (self.const(n, 2, "bias") if len(n.input) > 2 and n.input[2] else None)
        params: dict[str, Any] = {"out_channels": int(k), "kernel_size": _pair(kh, kw),
                                  "stride": _pair(*strides), "padding": (
                                      padding if isinstance(padding, (str, int))
                                      else _pair(*padding)),
                                  "dilation": _pair(*dilations), "groups": group,
                                  "bias": bias is not None}
        if padding == "same":
            oh, ow = shape[1:]
        else:
            ph, pw = (0, 0) if padding == 0 else padding
            oh = (shape[1] + 2 * ph - totals[0] - 1) // strides[0] + 1
            ow = (shape[2] + 2 * pw - totals[1] - 1) // strides[1] + 1
        weights = {"weight": weight}
        if bias is not None:
            weights["bias"] = bias
        self.add(n, "Conv2d", params, [src], (int(k), oh, ow), weights)

    def linear_input(self, n: Any, shape: tuple[int, ...]) -> None:
        if len(shape) != 1:
            raise self.fail(n, f"its input is image maps {list(shape)}; a Linear layer takes "
                               f"a flat vector (put a Flatten before it)")

    def gemm(self, n: Any, a: dict[str, Any], src: str, shape: tuple[int, ...]) -> None:
        self.linear_input(n, shape)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.fail(n, "transA, alpha or beta other than 0, 1, 1; supported: "
                               "x · Wᵀ + b as PyTorch's Linear")
        weight = self.const(n, 1, "weight")
        if not a.get("transB", 0):
            weight = weight.T
        bias = None
        if len(n.input) > 2 and n.input[2]:
            bias = np.asarray(self.const(n, 2, "bias")).reshape(-1)
            if bias.size == 1 and weight.shape[0] != 1:
                bias = np.full(weight.shape[0], float(bias[0]), np.float32)
        self.linear(n, src, shape, weight, bias)

    def linear(self, n: Any, src: str, shape: tuple[int, ...], weight: np.ndarray,
               bias: np.ndarray | None, name: str | None = None, output: str | None = None
               ) -> None:
        if weight.ndim != 2 or weight.shape[1] != shape[0]:
            raise self.fail(n, f"weight of shape {list(weight.shape)} doesn't take "
                               f"{shape[0]} input features")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise self.fail(n, f"bias of shape {list(bias.shape)}; expected "
                               f"[{weight.shape[0]}]")
        weights = {"weight": weight}
        if bias is not None:
            weights["bias"] = bias
        self.add(n, "Linear", {"out_features": int(weight.shape[0]), "bias": bias is not None},
                 [src], (int(weight.shape[0]),), weights, name=name, output=output)

    def matmul(self, n: Any, src: str, shape: tuple[int, ...]) -> None:
        self.linear_input(n, shape)
        weight = self.const(n, 1, "weight")
        if weight.ndim != 2:
            raise self.fail(n, "a weight that is not a matrix")
        weight = weight.T  # MatMul's (in, out) → Linear's (out, in)
        j = self.single_consumer(n.output[0])
        if j is not None and j not in self.done:
            m = self.graph.node[j]
            others = [x for x in m.input if x != n.output[0]]
            if m.op_type == "Add" and len(m.input) == 2 and len(others) == 1 \
                    and others[0] in self.consts:
                bias = np.asarray(self.consts[others[0]])
                if bias.size == weight.shape[0]:
                    self.done.add(j)
                    self.linear(n, src, shape, weight, bias.reshape(-1), name=n.name or m.name,
                                output=m.output[0])
                    return
        self.linear(n, src, shape, weight, None)

    def pad(self, n: Any, a: dict[str, Any], src: str, shape: tuple[int, ...]) -> None:
        """A constant Pad is read only as part of the pooling right after it (the exporter
        writes one where ONNX's pooling pads can't say what PyTorch's do)."""
        self.need_maps(n, shape)
        j = self.single_consumer(n.output[0])
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pool = self.graph.node[j] if j is not None and j not in self.done else None
        if pool is None or pool.op_type not in ("MaxPool", "AveragePool") or mode != "constant":
            raise self.fail(n, f"padding is supported only as constant padding right before a "
                               f"MaxPool or AveragePool; supported: {SUPPORTED}")
        pads = [int(v) for v in np.asarray(self.const(n, 1, "pads")).ravel()]
        value = (float(np.ravel(self.const(n, 2, "value"))[0])
                 if len(n.input) > 2 and n.input[2] else 0.0)
        if len(pads) != 8 or any(pads[k] for k in (0, 1, 4, 5)) or min(pads) < 0:
            raise self.fail(n, f"pads {pads}; supported: padding rows and columns only")
        want = -math.inf if pool.op_type == "MaxPool" else 0.0
        if value != want:
            raise self.fail(n, f"padding with {value} before {pool.op_type}; supported: "
                               f"{want} (what PyTorch's {pool.op_type} pads with)")
        self.done.add(j)
        self.pool(pool, self.attrs(pool), src, shape, pre=[pads[2], pads[3], pads[6], pads[7]])

    def pool(self, n: Any, a: dict[str, Any], src: str, shape: tuple[int, ...],
             pre: list[int] | None = None) -> None:
        self.need_maps(n, shape)
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1, 1]))
        dilations = list(a.get("dilations", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if pre is not None and n.op_type == "AveragePool":
            # zeros counted in the average: PyTorch's count_include_pad padding; the pooling's
            # own (right, bottom) pads, not counted, are ceil_mode's extra
            if pre[:2] != pre[2:] or pads[:2] != [0, 0] or a.get("count_include_pad", 0):
                raise self.fail(n, f"padding {pre} before an average pooling with pads {pads}; "
                                   f"supported: equal padding on both sides, counted in the "
                                   f"average (count_include_pad)")
            extra = [_pool_extra(shape[1 + d], kernel[d], strides[d], pre[d], 1)
                     for d in range(2)]
            if pads[2:] not in ([0, 0], extra):
                raise self.fail(n, f"asymmetric pads {pads} after padding {pre}; supported: "
                                   f"the extra right and bottom padding of PyTorch's ceil_mode")
            a = dict(a, count_include_pad=1)
            pads = [pre[0], pre[1], pre[0] + pads[2], pre[1] + pads[3]]
        elif pre is not None:
            pads = [p + q for p, q in zip(pads, pre)]
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID"):
            raise self.fail(n, f"auto_pad {auto_pad}; supported: explicit pads")
        if len(kernel) != 2:
            raise self.fail(n, f"a {len(kernel)}-d pooling; supported: 2-d (images)")
        ceil = bool(a.get("ceil_mode", 0))
        include = bool(a.get("count_include_pad", 0))
        max_pool = n.op_type == "MaxPool"
        if pads[:2] != pads[2:]:
            extra = [_pool_extra(shape[1 + d], kernel[d], strides[d], pads[d], dilations[d])
                     for d in range(2)]
            if ceil or [pads[2] - pads[0], pads[3] - pads[1]] != extra or (
                    not max_pool and include and pre is None):
                raise self.fail(n, f"asymmetric pads {pads} (top, left, bottom, right); "
                                   f"supported: equal padding on both sides (or the extra "
                                   f"right and bottom padding of PyTorch's ceil_mode)")
            ceil = True
        params: dict[str, Any] = {"kernel_size": _pair(*kernel), "stride": _pair(*strides),
                                  "padding": _pair(*pads[:2]), "ceil_mode": ceil}
        if max_pool:
            params["dilation"] = _pair(*dilations)
        else:
            if dilations != [1, 1]:
                raise self.fail(n, "a dilated average pooling; PyTorch's AvgPool2d has none")
            # without padding, counting it in or not is the same
            params["count_include_pad"] = include or pads[:2] == [0, 0]
        out = []
        for d in range(2):
            eff = dilations[d] * (kernel[d] - 1) + 1
            span = shape[1 + d] + 2 * pads[d] - eff
            o = (span + (strides[d] - 1 if ceil else 0)) // strides[d] + 1
            if ceil and (o - 1) * strides[d] >= shape[1 + d] + pads[d]:
                o -= 1
            out.append(o)
        self.add(n, "MaxPool2d" if max_pool else "AvgPool2d", params, [src],
                 (shape[0], *out))

    def clip(self, n: Any, a: dict[str, Any], src: str, shape: tuple[int, ...]) -> None:
        """Clip(0, 6) is ReLU6 and Clip(0) (no upper bound) is ReLU; other bounds are refused.
        The bounds are inputs from opset 11, attributes before."""
        if self.opset >= 11:
            low = self.const(n, 1, "lower bound") if len(n.input) > 1 and n.input[1] else None
            high = self.const(n, 2, "upper bound") if len(n.input) > 2 and n.input[2] else None
        else:
            low, high = a.get("min"), a.get("max")
        low = None if low is None else float(np.ravel(low)[0])
        high = None if high is None or not np.isfinite(np.ravel(high)[0]) \
            else float(np.ravel(high)[0])
        if low == 0 and high == 6:
            self.add(n, "ReLU6", {}, [src], shape)
        elif low == 0 and high is None:
            self.add(n, "ReLU", {}, [src], shape)
        else:
            shown = ", ".join("none" if b is None else f"{b:g}" for b in (low, high))
            raise self.fail(n, f"Clip({shown}); supported: Clip(0, 6) as ReLU6 and Clip(0) "
                               f"as ReLU")

    def silu(self, n: Any) -> bool:
        """SiLU as the exporter writes it: Sigmoid(x) → Mul(x, ·). True when the Sigmoid ``n``
        starts it (and then it is read); a Sigmoid used otherwise stays a Sigmoid."""
        x = n.input[0]
        j = self.single_consumer(n.output[0])
        if x not in self.tensor or j is None or self.graph.node[j].op_type != "Mul":
            return False
        m = self.graph.node[j]
        if sorted(m.input) != sorted([x, n.output[0]]):
            return False
        self.done.add(j)
        src = self.tensor[x]
        self.add(m, "SiLU", {}, [src], self.shape[src])
        return True

    def gelu(self, i: int, n: Any) -> bool:
        """Exact GELU as the exporter writes it: Div(x, √2) → Erf → Add(1) → Mul(x, ·) →
        Mul(·, 0.5). True when node ``i`` starts it (and then it is read)."""
        x = n.input[0]
        if x not in self.tensor or not _scalar(self.consts.get(n.input[1]), math.sqrt(2)):
            return False
        chain = [i]
        want = [("Erf", None), ("Add", 1.0), ("Mul", "x"), ("Mul", 0.5)]
        name = n.output[0]
        for op, other in want:
            j = self.single_consumer(name)
            if j is None or self.graph.node[j].op_type != op:
                return False
            m = self.graph.node[j]
            rest = [v for v in m.input if v != name]
            if other == "x":
                if rest != [x]:
                    return False
            elif other is not None and not (len(rest) == 1
                                            and _scalar(self.consts.get(rest[0]), other)):
                return False
            chain.append(j)
            name = m.output[0]
        last = self.graph.node[chain[-1]]
        self.done.update(chain)
        src = self.tensor[x]
        self.add(last, "GELU", {}, [src], self.shape[src])
        return True


def module_name(name: str) -> str:
    """The PyTorch module an ONNX node name written by PyTorch's exporter comes from, as
    ``state_dict`` names it: "/layer1/layer1.0/conv1/Conv" → "layer1.0.conv1",
    "/features/features.0/Conv" → "features.0"; "/Add" (an op in the top module's forward) → ""
    (the caller then names it after its layer type). Other names are kept as they are."""
    parts = name.split("/")
    if len(parts) < 2 or parts[0] != "" or not all(parts[1:]):
        return name
    full, previous = "", ""
    for part in parts[1:-1]:  # the last part is the op type ("Conv", "Relu_1")
        if previous and part.startswith(previous + "."):  # a child written as parent.child
            full = full[:len(full) - len(previous)] + part
        else:
            full = f"{full}.{part}" if full else part
        previous = part
    return full


def _scalar(value: np.ndarray | None, want: float) -> bool:
    return value is not None and np.size(value) == 1 and abs(float(np.ravel(value)[0]) - want) \
        <= 1e-6 * max(1.0, abs(want))


def _pair(h: int, w: int) -> Any:
    return int(h) if h == w else [int(h), int(w)]


def import_onnx(path: str | os.PathLike) -> tuple[Design, dict[str, np.ndarray]]:
    """Read the ONNX model at ``path`` as a design and its weights (a mapping of §3). Raises
    OnnxImportError with a message for a file that can't be read, is not ONNX, or uses an
    operator or option no layer here expresses (naming the ONNX node and its op type)."""
    import onnx

    shown = os.path.basename(os.fspath(path)) or os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise OnnxImportError(f"{shown}: can't read the file ({exc.strerror or exc})") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError and friends: not an ONNX model or cut short
        model = None
    if model is None or not model.HasField("graph") or not (
            model.graph.node or model.graph.input) or not model.opset_import:
        raise OnnxImportError(f"{shown}: is not an ONNX model, or the file is cut short "
                              f"(it could not be decoded); export the model again")
    if any(i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer):
        raise OnnxImportError(f"{shown}: the weights are kept in separate files (external "
                              f"data); save the model with its weights inside")
    stem = os.path.splitext(shown)[0]
    try:
        return _Reader(model, stem).read()
    except OnnxImportError as exc:
        raise OnnxImportError(f"{shown}: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise OnnxImportError(f"{shown}: the model is malformed and can't be read ({exc})"
                              ) from None
