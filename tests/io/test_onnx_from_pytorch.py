"""A model written by PyTorch's own ONNX exporter (tests/io/fixtures/make_torch_mobile.py: a small
MobileNet with BatchNorm folded into its convolutions, ReLU6 as Clip(0, 6), Hardswish, SiLU as
Sigmoid + Mul, Hardsigmoid, depthwise convolutions and residual Adds) imports to the layers it
was built from and gives PyTorch's outputs, which the script saved beside it."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

import designer
from designer.io.onnx_import import import_onnx

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_pytorch_exported_mobilenet_imports_and_gives_pytorchs_outputs():
    design, weights = import_onnx(FIXTURES / "torch_mobile.onnx")
    types = Counter(n.type for n in design.nodes)
    assert types == {"Input": 1, "Conv2d": 10, "ReLU6": 3, "Hardswish": 3, "SiLU": 2, "Add": 3,
                     "AdaptiveAvgPool2d": 1, "Flatten": 1, "Linear": 2, "Hardsigmoid": 1}
    depthwise = [n for n in design.nodes if n.type == "Conv2d" and n.params["groups"] > 1]
    assert [n.params["groups"] for n in depthwise] == [64, 48, 32]
    net = designer.build(design, weights=weights)
    x = np.load(FIXTURES / "torch_mobile_x.npy")
    want = np.load(FIXTURES / "torch_mobile_y.npy")
    got = net.forward(x)[net.order[-1]]
    assert got.shape == want.shape == (2, 10)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_node_ids_are_pytorchs_module_names():
    design, weights = import_onnx(FIXTURES / "torch_mobile.onnx")
    ids = [n.id for n in design.nodes]
    assert ids[:4] == ["input", "stem.0", "stem.2", "b1.expand.0"]
    assert {"b1.dw.0", "b1.project.0", "b3.dw.2", "head.0", "head.2", "head.6"} <= set(ids)
    assert "b1.expand.0.weight" in weights and "head.5.bias" in weights


def test_module_names_from_the_exporters_node_names():
    from designer.io.onnx_import import module_name
    assert module_name("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert module_name("/features/features.10/Conv") == "features.10"
    assert module_name("/b1/expand/expand.0/Conv") == "b1.expand.0"
    assert module_name("/fc/Gemm") == "fc"
    assert module_name("/Add") == ""  # an op of the top module's own forward: named by its type
    assert module_name("conv1") == "conv1" and module_name("a/b") == "a/b"
