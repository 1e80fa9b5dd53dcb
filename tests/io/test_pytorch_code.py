"""PyTorch code export (contract §8): the code compiles, creates the right modules with the right
constructor arguments, gives exactly the weights file's state-dict keys and shapes, and its
forward follows the graph.

PyTorch is not installed here: the code is executed against a small stand-in for ``torch`` that
checks every constructor call against PyTorch's signature, registers modules and tensors as
``nn.Module`` does (refusing names ``add_module`` refuses), and makes ``forward`` return a record
of what was called on what. The numbers are compared with real PyTorch by
benchmarks/check_pytorch_export.py.
"""
from __future__ import annotations

import ast
import inspect
import random
import types

import numpy as np
import pytest

from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.core.design import Design, Node
from designer.engine.weights import expected_tensors
from designer.io.pytorch import CodeExportError, class_name, pytorch_code
from designer.io.templates import list_templates
from tests.helpers import chain, graph


# ---------------------------------------------------------------------------- a stand-in for torch

class Token:
    """What a call in ``forward`` gave: the operation and its operands."""

    def __init__(self, op, inputs=()):
        self.op = op
        self.inputs = tuple(inputs)

    def __add__(self, other):
        return Token("add", (self, other))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# PyTorch 2.x's constructor signatures (keyword names and defaults as torch.nn has them)
def _conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
            bias=True, padding_mode="zeros", device=None, dtype=None): ...
def _maxpool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
               ceil_mode=False): ...
def _avgpool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None): ...
def _adaptive(output_size): ...
def _batchnorm(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
               device=None, dtype=None): ...
def _layernorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
               dtype=None): ...
def _linear(in_features, out_features, bias=True, device=None, dtype=None): ...
def _leaky(negative_slope=0.01, inplace=False): ...
def _softmax(dim=None): ...
def _dropout(p=0.5, inplace=False): ...
def _gelu(approximate="none"): ...
def _relu(inplace=False): ...
def _none(): ...


SIGNATURES = {"Conv2d": _conv2d, "MaxPool2d": _maxpool2d, "AvgPool2d": _avgpool2d,
              "AdaptiveAvgPool2d": _adaptive, "BatchNorm2d": _batchnorm, "LayerNorm": _layernorm,
              "Linear": _linear, "LeakyReLU": _leaky, "Softmax": _softmax, "Dropout": _dropout,
              "GELU": _gelu, "ReLU": _relu, "Sigmoid": _none, "Tanh": _none}


def _tensors(kind, a):
    """The parameters and buffers PyTorch's module of this kind holds, with their shapes."""
    if kind == "Conv2d":
        kh, kw = _pair(a["kernel_size"])
        out = {"weight": (a["out_channels"], a["in_channels"] // a["groups"], kh, kw)}
        return out | ({"bias": (a["out_channels"],)} if a["bias"] else {})
    if kind == "Linear":
        out = {"weight": (a["out_features"], a["in_features"])}
        return out | ({"bias": (a["out_features"],)} if a["bias"] else {})
    if kind == "BatchNorm2d":
        c = (a["num_features"],)
        out = {"weight": c, "bias": c} if a["affine"] else {}
        return out | {"running_mean": c, "running_var": c, "num_batches_tracked": ()}
    if kind == "LayerNorm":
        shape = tuple(a["normalized_shape"])
        return {"weight": shape, "bias": shape} if a["elementwise_affine"] else {}
    return {}


class Module:
    def __init__(self):
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_tensors", {})
        object.__setattr__(self, "path", "")

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self.add_module(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return modules[name]
        raise AttributeError(name)

    def add_module(self, name, module):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"bad module name {name!r}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    def state_dict(self, prefix=""):
        out = {prefix + k: v for k, v in self._tensors.items()}
        for name, child in self._modules.items():
            out.update(child.state_dict(prefix + name + "."))
        return out

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def __call__(self, *args):
        return self.forward(*args)

    def eval(self):
        object.__setattr__(self, "evaluated", True)
        return self


class ModuleDict(Module):
    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __getitem__(self, key):
        return self._modules[key]

    def keys(self):
        return self._modules.keys()


def _layer_class(kind):
    signature = inspect.signature(SIGNATURES.get(kind, _none))

    class Layer(Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            bound = signature.bind(*args, **kwargs)  # TypeError for a name PyTorch doesn't take
            bound.apply_defaults()
            object.__setattr__(self, "kind", kind)
            object.__setattr__(self, "args", args)
            object.__setattr__(self, "kwargs", kwargs)
            object.__setattr__(self, "arguments", dict(bound.arguments))
            self._tensors.update(_tensors(kind, bound.arguments))

        def forward(self, x):
            return Token(("module", self), (x,))

    Layer.__name__ = kind
    return Layer


def fake_torch():
    nn = types.ModuleType("torch.nn")
    nn.Module = Module
    nn.ModuleDict = ModuleDict
    for kind in LAYER_TYPES:
        setattr(nn, kind, _layer_class(kind))
    torch = types.ModuleType("torch")
    torch.nn = nn

    def cat(tensors, dim):
        assert dim == 1
        return Token("cat", tensors)

    def flatten(x, start_dim):
        assert start_dim == 1
        return Token("flatten", (x,))

    torch.cat = cat
    torch.flatten = flatten
    torch.from_numpy = lambda a: a
    return torch, nn


def run_code(code):
    """Execute the exported code against the stand-in; returns its namespace and the model."""
    torch, nn = fake_torch()
    namespace = {}
    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __import__

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "torch":
            return torch
        return real_import(name, globals, locals, fromlist, level)

    builtins = dict(vars(__import__("builtins")))
    builtins["__import__"] = importer
    namespace["__builtins__"] = builtins
    exec(compile(code, "<exported>", "exec"), namespace)
    return namespace


def check_code(design):
    """Every structural promise of the export, for one design."""
    analysis = Analysis(design)
    code = pytorch_code(design)
    tree = ast.parse(code)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert [c.name for c in classes] == [class_name(design.name)]
    assert {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} == {"build_model"}
    ns = run_code(code)
    model = ns[classes[0].name]()
    # state-dict keys and shapes are exactly the weights file's (plus BatchNorm's counter)
    state = model.state_dict()
    expected = expected_tensors(analysis)
    counters = {f"{i.id}.num_batches_tracked": () for i in analysis.infos() if i.type == "BatchNorm2d"}
    assert state == {**expected, **counters}
    # one module per layer node, at the path its id names, of its type and with its parameters
    modules = {path: m for path, m in model.named_modules() if path and isinstance(m, Module)
               and hasattr(m, "kind")}
    layer_ids = {i.id for i in analysis.infos() if i.type not in ("Input", "Add", "Concat", "Flatten")}
    assert set(modules) == layer_ids
    for node_id, module in modules.items():
        info = analysis.info(node_id)
        assert module.kind == info.type
        check_arguments(info, module.arguments, analysis.info(design.sources(node_id)[0]).shape)
        object.__setattr__(module, "path", node_id)
    # forward follows the graph
    x = Token("input")
    got = model.forward(x)
    outputs = [n for n in analysis.order if not design.targets(n)]
    got = got if len(outputs) > 1 else (got,)
    assert isinstance(got, tuple) and len(got) == len(outputs)
    memo = {}
    for token, node_id in zip(got, outputs):
        assert follows(token, node_id, design, x, memo), node_id
    return code, ns, model


def follows(token, node_id, design, x, memo):
    """True if ``token`` computes node ``node_id`` from the input as the design says."""
    key = (id(token), node_id)
    if key in memo:
        return memo[key]
    kind = design.node(node_id).type
    sources = design.sources(node_id)
    if kind == "Input":
        ok = token is x
    elif kind == "Add":
        ok = adds(token, sources, design, x, memo)
    elif kind == "Concat":
        ok = (token.op == "cat" and len(token.inputs) == len(sources)
              and all(follows(t, s, design, x, memo) for t, s in zip(token.inputs, sources)))
    elif kind == "Flatten":
        ok = token.op == "flatten" and follows(token.inputs[0], sources[0], design, x, memo)
    else:
        ok = (isinstance(token.op, tuple) and token.op[1].path == node_id
              and follows(token.inputs[0], sources[0], design, x, memo))
    memo[key] = ok
    return ok


def adds(token, sources, design, x, memo):
    if len(sources) == 1:
        return follows(token, sources[0], design, x, memo)
    return (token.op == "add" and adds(token.inputs[0], sources[:-1], design, x, memo)
            and follows(token.inputs[1], sources[-1], design, x, memo))


def check_arguments(info, a, in_shape):
    """The module's constructor arguments (defaults applied) mean the node's parameters."""
    v = info.values
    t = info.type
    if t == "Conv2d":
        assert a["in_channels"] == in_shape[0] and a["out_channels"] == v["out_channels"]
        assert _pair(a["kernel_size"]) == v["kernel_size"]
        assert _pair(a["stride"]) == v["stride"] and _pair(a["dilation"]) == v["dilation"]
        pad = a["padding"]
        assert (pad if isinstance(pad, str) else _pair(pad)) == v["padding"]
        assert a["groups"] == v["groups"] and a["bias"] == v["bias"]
    elif t in ("MaxPool2d", "AvgPool2d"):
        assert _pair(a["kernel_size"]) == v["kernel_size"]
        assert _pair(a["stride"] if a["stride"] is not None else a["kernel_size"]) == v["stride"]
        assert _pair(a["padding"]) == v["padding"] and a["ceil_mode"] == v["ceil_mode"]
        if t == "MaxPool2d":
            assert _pair(a["dilation"]) == v["dilation"]
        else:
            assert a["count_include_pad"] == v["count_include_pad"]
    elif t == "AdaptiveAvgPool2d":
        assert _pair(a["output_size"]) == v["output_size"]
    elif t == "BatchNorm2d":
        assert a["num_features"] == in_shape[0]
        assert (a["eps"], a["momentum"], a["affine"]) == (v["eps"], v["momentum"], v["affine"])
    elif t == "LayerNorm":
        assert tuple(a["normalized_shape"]) == tuple(in_shape)
        assert (a["eps"], a["elementwise_affine"]) == (v["eps"], v["elementwise_affine"])
    elif t == "Linear":
        assert (a["in_features"], a["out_features"], a["bias"]) == (in_shape[0], v["out_features"], v["bias"])
    elif t == "LeakyReLU":
        assert a["negative_slope"] == v["negative_slope"]
    elif t == "Softmax":
        assert a["dim"] == 1
    elif t == "Dropout":
        assert a["p"] == v["p"]
    elif t == "GELU":
        assert a["approximate"] == "none"


# ---------------------------------------------------------------------------- designs

EVERY_LAYER = graph(
    [("input", "Input", {"channels": 4, "height": 15, "width": 13}),
     ("conv.same", "Conv2d", {"out_channels": 8, "kernel_size": [3, 5], "padding": "same",
                              "dilation": [2, 1]}),
     ("bn", "BatchNorm2d", {"eps": 0.001, "momentum": None}),
     ("leaky", "LeakyReLU", {"negative_slope": 0.2}),
     ("grouped", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 4,
                            "bias": False}),
     ("gelu", "GELU", {}),
     ("add", "Add", {}),
     ("max", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
     ("avg", "AvgPool2d", {"kernel_size": [3, 2], "stride": [2, 1], "padding": 1,
                           "ceil_mode": True, "count_include_pad": False}),
     ("valid", "Conv2d", {"out_channels": 8, "kernel_size": 1, "padding": "valid"}),
     ("sigmoid", "Sigmoid", {}),
     ("adaptive", "AdaptiveAvgPool2d", {"output_size": [4, 3]}),
     ("tanh", "Tanh", {}),
     ("adaptive2", "AdaptiveAvgPool2d", {"output_size": [4, 3]}),
     ("cat", "Concat", {}),
     ("spatial softmax", "Softmax", {}),
     ("ln", "LayerNorm", {"eps": 0.0001}),
     ("flatten", "Flatten", {}),
     ("drop", "Dropout", {"p": 0.25}),
     ("fc1", "Linear", {"out_features": 12}),
     ("relu", "ReLU", {}),
     ("ln2", "LayerNorm", {"elementwise_affine": False}),
     ("fc2", "Linear", {"out_features": 5, "bias": False}),
     ("softmax", "Softmax", {})],
    [("input", "conv.same"), ("conv.same", "bn"), ("bn", "leaky"), ("leaky", "grouped"),
     ("grouped", "gelu"), ("gelu", "add"), ("leaky", "add"), ("add", "max"), ("add", "avg"),
     ("max", "valid"), ("valid", "sigmoid"), ("sigmoid", "adaptive"), ("avg", "tanh"),
     ("tanh", "adaptive2"), ("adaptive2", "cat"), ("adaptive", "cat"), ("cat", "spatial softmax"),
     ("spatial softmax", "ln"), ("ln", "flatten"), ("flatten", "drop"), ("drop", "fc1"),
     ("fc1", "relu"), ("relu", "ln2"), ("ln2", "fc2"), ("fc2", "softmax")],
    name="Every layer")


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_every_template_exports_with_the_weights_files_keys(template):
    code, _, _ = check_code(template.load())
    compile(code, template.id, "exec")


def test_the_design_with_every_layer_type():
    covered = {n.type for n in EVERY_LAYER.nodes}
    assert covered >= set(LAYER_TYPES) - {t for t, l in LAYER_TYPES.items() if not l.params
                                          and t not in ("ReLU", "Sigmoid", "Tanh", "GELU",
                                                        "Softmax", "Flatten", "Add", "Concat")}
    code, _, model = check_code(EVERY_LAYER)
    assert 'self.conv["same"] = nn.Conv2d(4, 8, kernel_size=(3, 5), padding="same", dilation=(2, 1))' in code
    assert "nn.BatchNorm2d(8, eps=0.001, momentum=None)" in code
    assert "nn.AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=1, ceil_mode=True, count_include_pad=False)" in code
    assert "nn.LayerNorm([16, 4, 3], eps=0.0001)" in code
    assert "nn.LayerNorm([12], elementwise_affine=False)" in code
    assert "nn.Dropout(p=0.25)" in code and "nn.LeakyReLU(negative_slope=0.2)" in code
    assert 'self.add_module("spatial softmax", nn.Softmax(dim=1))' in code
    assert "cat = torch.cat([adaptive2, adaptive], dim=1)" in code  # edge order
    assert "add = gelu + leaky" in code
    assert "flatten = torch.flatten(ln, 1)" in code


def test_every_catalog_type_has_a_constructor():
    """A layer type added to the catalog must be exportable (parameterless ones are nn's
    namesakes without arguments)."""
    for kind, layer in LAYER_TYPES.items():
        if kind in ("Input", "Add", "Concat", "Flatten"):
            continue
        values = {p.name: p.default for p in layer.params if not p.required}
        if layer.params and any(p.required for p in layer.params):
            continue  # covered by the every-layer design
        from designer.io.pytorch import module_call
        assert module_call(kind, values, (3, 4, 4)).startswith(f"nn.{kind}(")


def test_torchvision_ids_become_nested_containers():
    code, _, model = check_code(list_templates_by_id("resnet18"))
    assert "self.layer1 = nn.ModuleDict()" in code
    assert 'self.layer1["0"]["conv1"] = nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False)' in code
    assert "layer1.0.conv1.weight" in model.state_dict()
    assert "layer2.0.downsample.1.num_batches_tracked" in model.state_dict()
    code, _, model = check_code(list_templates_by_id("alexnet"))
    assert 'self.features["0"] = nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)' in code
    assert "features.0.weight" in model.state_dict()


def list_templates_by_id(template_id):
    return next(t for t in list_templates() if t.id == template_id).load()


def test_header_names_the_design_and_its_totals():
    design = list_templates_by_id("lenet5")
    totals = Analysis(design).totals()
    code = pytorch_code(design)
    head = ast.get_docstring(ast.parse(code))
    assert design.name in head
    assert f"{totals['params']:,} parameters" in head and f"{totals['macs']:,} mult-adds" in head


def test_build_model_loads_an_npz_and_returns_eval_mode(tmp_path):
    design = chain((3, 8, 8), ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                   ("bn", "BatchNorm2d", {}), name="small")
    code = pytorch_code(design)
    ns = run_code(code)
    loaded = {}

    def load_state_dict(self, state, strict):
        loaded.update(state)
        assert strict is True

    Module.load_state_dict = load_state_dict
    try:
        shapes = expected_tensors(Analysis(design))
        np.savez(tmp_path / "w.npz", **{k: np.zeros(s, np.float32) for k, s in shapes.items()})
        model = ns["build_model"](str(tmp_path / "w.npz"))
    finally:
        del Module.load_state_dict
    assert model.evaluated
    assert set(loaded) == set(shapes) | {"bn.num_batches_tracked"}
    assert ns["build_model"]().evaluated


def test_class_names():
    assert class_name("VGG-16") == "VGG16"
    assert class_name("Seed example") == "SeedExample"
    assert class_name("3 layers") == "Net3Layers"
    assert class_name(None) == "Network" and class_name("—") == "Network"
    assert class_name("none") == "NoneNet"


def test_odd_ids_give_exact_keys_and_valid_variables():
    design = chain((1, 6, 6), ("0", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
                   ("my conv.1", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
                   ("class", "ReLU", {}), ("x", "Flatten", {}), ("héllo", "Linear", {"out_features": 3}),
                   name="odd")
    code, _, model = check_code(design)
    assert set(model.state_dict()) == {"0.weight", "0.bias", "my conv.1.weight", "my conv.1.bias",
                                       "héllo.weight", "héllo.bias"}
    assert 'self.add_module("0", nn.Conv2d(1, 2, kernel_size=3))' in code


@pytest.mark.parametrize("ids, word", [
    (("forward",), "forward"), (("a.keys",), "keys"), (("a..b",), "empty part"),
    (("conv", "conv.b"), "conv"), (("conv.b", "conv"), "conv"),
])
def test_ids_pytorch_cannot_take_are_refused_with_the_node(ids, word):
    layers = [(i, "Conv2d", {"out_channels": 1, "kernel_size": 1}) for i in ids]
    with pytest.raises(CodeExportError) as caught:
        pytorch_code(chain((1, 4, 4), *layers))
    message = str(caught.value)
    assert word in message and "rename" in message and message.startswith("node ")


def test_ids_without_modules_may_be_groups():
    design = graph([("input", "Input", {"channels": 1, "height": 4, "width": 4}),
                    ("block", "Conv2d", {"out_channels": 1, "kernel_size": 1}),
                    ("block.inner", "Conv2d", {"out_channels": 1, "kernel_size": 1})],
                   [("input", "block"), ("block", "block.inner")])
    with pytest.raises(CodeExportError, match="block"):
        pytorch_code(design)
    design = graph([("input", "Input", {"channels": 1, "height": 4, "width": 4}),
                    ("block.a", "Conv2d", {"out_channels": 1, "kernel_size": 1}),
                    ("block.b", "Conv2d", {"out_channels": 1, "kernel_size": 1}),
                    ("block", "Add", {})],
                   [("input", "block.a"), ("input", "block.b"), ("block.a", "block"), ("block.b", "block")])
    code, _, _ = check_code(design)
    assert "block = block_a + block_b" in code


def test_an_invalid_design_is_refused_with_its_errors():
    design = chain((3, 4, 4), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 7}))
    with pytest.raises(CodeExportError, match=r"conv: .*fix it first"):
        pytorch_code(design)
    with pytest.raises(CodeExportError, match="empty"):
        pytorch_code(Design("nothing"))


# ---------------------------------------------------------------------------- random designs

def random_design(rng: random.Random) -> Design:
    """A valid design grown at random: layers of every type with random parameters, branches
    merged by Add and Concat, ending (sometimes) in a flat classifier."""
    design = Design("random")
    design.insert_node(Node("input", "Input", {"channels": rng.randint(1, 4),
                                                "height": rng.randint(5, 12),
                                                "width": rng.randint(5, 12)}))
    count = 0
    for _ in range(rng.randint(3, 14)):
        analysis = Analysis(design)
        spatial = [i.id for i in analysis.infos() if i.shape is not None and len(i.shape) == 3]
        flat = [i.id for i in analysis.infos() if i.shape is not None and len(i.shape) == 1]
        count += 1
        node_id = rng.choice([f"n{count}", f"block{count % 3}.{count}", f"layer {count}"])
        roll = rng.random()
        if roll < 0.15 and len(spatial) >= 2:
            kind, sources = rng.choice(["Add", "Concat"]), rng.sample(spatial, 2)
            params = {}
        elif flat and roll < 0.4:
            kind = rng.choice(["Linear", "ReLU", "Dropout", "LayerNorm", "Softmax", "GELU"])
            sources = [rng.choice(flat)]
            params = {"Linear": {"out_features": rng.randint(1, 6), "bias": rng.random() < 0.5},
                      "Dropout": {"p": rng.choice([0.1, 0.5])},
                      "LayerNorm": {"elementwise_affine": rng.random() < 0.5}}.get(kind, {})
        else:
            kind = rng.choice(["Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                               "BatchNorm2d", "LayerNorm", "LeakyReLU", "Sigmoid", "Tanh",
                               "Flatten", "Softmax"])
            sources = [rng.choice(spatial)]
            k = rng.choice([1, 2, 3, [1, 3]])
            params = {
                "Conv2d": {"out_channels": rng.choice([2, 4]), "kernel_size": k,
                           "padding": rng.choice([0, 1, "same"]), "bias": rng.random() < 0.5,
                           "groups": rng.choice([1, 2])},
                "MaxPool2d": {"kernel_size": k, "ceil_mode": rng.random() < 0.5},
                "AvgPool2d": {"kernel_size": k, "stride": 1, "count_include_pad": rng.random() < 0.5},
                "AdaptiveAvgPool2d": {"output_size": rng.choice([1, 2, [2, 3]])},
                "BatchNorm2d": {"affine": rng.random() < 0.5},
                "LeakyReLU": {"negative_slope": 0.1},
            }.get(kind, {})
        design.insert_node(Node(node_id, kind, params))
        for s in sources:
            design.connect(s, node_id)
        if not Analysis(design).valid:
            for s in sources:
                design.disconnect(s, node_id)
            design.remove_node(node_id)
    return design


@pytest.mark.parametrize("seed", range(25))
def test_random_designs(seed):
    design = random_design(random.Random(seed))
    assert Analysis(design).valid
    check_code(design)
