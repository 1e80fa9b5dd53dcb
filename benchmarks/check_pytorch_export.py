"""Check the PyTorch code export against the engine with real PyTorch (contract §8).

PyTorch is not a dependency of the project: run this with a Python that has torch and numpy
installed, from the repository's root, e.g.::

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python benchmarks/check_pytorch_export.py

For every template and a design with every layer type it writes the code, imports it, loads the engine's seeded weights (norms' tensors drawn at random; saved as
an .npz weights file), runs both on the same random input and prints the largest relative error
(max |torch − engine| / max |engine|, over every output). Exit status 1 if any error exceeds the
tolerance (1e-4).
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from designer.core.analysis import Analysis  # noqa: E402
from designer.engine.network import build  # noqa: E402
from designer.engine.weights import save_weights_file  # noqa: E402
from designer.io.pytorch import pytorch_code  # noqa: E402
from designer.io.templates import list_templates  # noqa: E402

TOLERANCE = 1e-4


#: a design with every layer type of the catalog and non-default parameters (the templates
#: don't use LayerNorm, GELU, "same" padding, ceil_mode …)
EVERY_LAYER = {
    "format": "cnn-designer", "version": 1, "name": "Every layer",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 4, "height": 15, "width": 13}},
        {"id": "conv.same", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": [3, 5],
                                                          "padding": "same", "dilation": [2, 1]}},
        {"id": "bn", "type": "BatchNorm2d", "params": {"eps": 0.001, "momentum": None}},
        {"id": "leaky", "type": "LeakyReLU", "params": {"negative_slope": 0.2}},
        {"id": "grouped", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3,
                                                        "padding": 1, "groups": 4, "bias": False}},
        {"id": "gelu", "type": "GELU", "params": {}},
        {"id": "add", "type": "Add", "params": {}},
        {"id": "max", "type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 2, "padding": 1,
                                                       "dilation": 1, "ceil_mode": True}},
        {"id": "avg", "type": "AvgPool2d", "params": {"kernel_size": [3, 2], "stride": [2, 1],
                                                       "padding": 1, "ceil_mode": True,
                                                       "count_include_pad": False}},
        {"id": "valid", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 1,
                                                      "padding": "valid"}},
        {"id": "sigmoid", "type": "Sigmoid", "params": {}},
        {"id": "adaptive", "type": "AdaptiveAvgPool2d", "params": {"output_size": [4, 3]}},
        {"id": "tanh", "type": "Tanh", "params": {}},
        {"id": "adaptive2", "type": "AdaptiveAvgPool2d", "params": {"output_size": [4, 3]}},
        {"id": "cat", "type": "Concat", "params": {}},
        {"id": "spatial softmax", "type": "Softmax", "params": {}},
        {"id": "ln", "type": "LayerNorm", "params": {"eps": 0.0001}},
        {"id": "flatten", "type": "Flatten", "params": {}},
        {"id": "drop", "type": "Dropout", "params": {"p": 0.25}},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 12}},
        {"id": "relu", "type": "ReLU", "params": {}},
        {"id": "silu", "type": "SiLU", "params": {}},
        {"id": "hswish", "type": "Hardswish", "params": {}},
        {"id": "relu6", "type": "ReLU6", "params": {}},
        {"id": "hsigmoid", "type": "Hardsigmoid", "params": {}},
        {"id": "same", "type": "Identity", "params": {}},
        {"id": "ln2", "type": "LayerNorm", "params": {"elementwise_affine": False}},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 5, "bias": False}},
        {"id": "softmax", "type": "Softmax", "params": {}},
    ],
    "edges": [["input", "conv.same"], ["conv.same", "bn"], ["bn", "leaky"], ["leaky", "grouped"],
              ["grouped", "gelu"], ["gelu", "add"], ["leaky", "add"], ["add", "max"],
              ["add", "avg"], ["max", "valid"], ["valid", "sigmoid"], ["sigmoid", "adaptive"],
              ["avg", "tanh"], ["tanh", "adaptive2"], ["adaptive", "cat"], ["adaptive2", "cat"],
              ["cat", "spatial softmax"], ["spatial softmax", "ln"], ["ln", "flatten"],
              ["flatten", "drop"], ["drop", "fc1"], ["fc1", "relu"], ["relu", "silu"],
              ["silu", "hswish"], ["hswish", "relu6"], ["relu6", "hsigmoid"], ["hsigmoid", "same"],
              ["same", "ln2"],
              ["ln2", "fc2"], ["fc2", "softmax"]],
}


class _Design:
    """A design that isn't a template, shaped like one for :func:`check`."""

    def __init__(self, id: str, data: dict) -> None:
        self.id = id
        self.data = data

    def load(self):
        from designer.io.design_file import load_design
        return load_design(self.data)


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(template, folder: Path, batch: int = 2, seed: int = 0) -> tuple[float, float, float]:
    design = template.load()
    analysis = Analysis(design)
    code_path = folder / f"{template.id.replace('-', '_')}.py"
    code_path.write_text(pytorch_code(design, analysis), encoding="utf-8")
    # the seeded weights, with every norm's scale, shift and statistics drawn at random too
    # (seeded norms are the identity, which would hide a mix-up of their tensors)
    weights = dict(build(design, None, seed).weights)
    rng = np.random.default_rng(seed + 1)
    for key, array in weights.items():
        if key.endswith(("running_var", ".weight")) and array.ndim in (1, 3):
            weights[key] = rng.uniform(0.5, 1.5, array.shape).astype(np.float32)
        elif key.endswith(("running_mean", ".bias")) and array.ndim in (1, 3):
            weights[key] = rng.uniform(-0.5, 0.5, array.shape).astype(np.float32)
    net = build(design, weights, seed)
    weights_path = folder / f"{template.id}.npz"
    save_weights_file(net.weights, weights_path)
    module = import_file(code_path, f"exported_{template.id.replace('-', '_')}")
    model = module.build_model(str(weights_path))
    shape = next(i.shape for i in analysis.infos() if i.type == "Input")
    x = np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)
    start = time.perf_counter()
    acts = net.forward(x)
    engine_s = time.perf_counter() - start
    outputs = [i for i in analysis.order if not design.targets(i)]
    start = time.perf_counter()
    with torch.no_grad():
        got = model(torch.from_numpy(x))
    torch_s = time.perf_counter() - start
    if not isinstance(got, tuple):
        got = (got,)
    worst = 0.0
    for node_id, tensor in zip(outputs, got, strict=True):
        want = np.asarray(acts[node_id], dtype=np.float64)
        have = tensor.numpy().astype(np.float64)
        assert have.shape == want.shape, (node_id, have.shape, want.shape)
        scale = max(np.abs(want).max(), 1e-30)
        worst = max(worst, float(np.abs(have - want).max() / scale))
    return worst, engine_s, torch_s


def main() -> int:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    print(f"{'template':<26} {'max rel. error':>15} {'engine s':>9} {'torch s':>8}")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for template in [*list_templates(), _Design("every-layer", EVERY_LAYER)]:
            error, engine_s, torch_s = check(template, Path(tmp))
            flag = "" if error <= TOLERANCE else "  FAIL"
            print(f"{template.id:<26} {error:>15.2e} {engine_s:>9.3f} {torch_s:>8.3f}{flag}")
            if error > TOLERANCE:
                failed.append(template.id)
    print("all templates match" if not failed else "mismatch: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
