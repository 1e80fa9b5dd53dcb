"""CNN Designer: design convolutional neural networks and look inside them.

The public Python API (contract §5)::

    import designer
    design = designer.load_design("vgg16.json")   # also accepts the dict; raises designer.DesignError
    summary = designer.summarize(design)          # the dict that `cnn-designer summary --json` prints
    net = designer.build(design, weights=None, seed=0)  # weights: None, a path, or a mapping
    acts = net.forward(x)                         # x: float32 (N, C, H, W) -> {node id: array}
    net.weights                                   # {"conv1.weight": array, ...}
    loss, grads = net.gradients(x, y)             # training mode: cross-entropy and its gradients
    p = net.predict(x)                            # (N, F) class probabilities
    sal = net.saliency(x, c)                      # d logit[c] / d input, first sample
    cam = net.grad_cam(x, "conv2", c)             # Grad-CAM at a node with maps (None: the last)
    data = designer.load_dataset("builtin:digits", design)  # data.train, data.val: (x, y); data.classes
    history = designer.train(net, data, epochs=5, batch_size=64, optimizer=opt, seed=0)  # .rows
    lay = designer.layout(design)                 # cards and edge polylines (contract §7)
    designer.export(design, "model.py")           # .py PyTorch code, .onnx, .svg/.pdf/.png diagram
    design, weights = designer.import_onnx("model.onnx")  # raises designer.OnnxImportError
"""
import sys as _sys
import types as _types

from designer.core.analysis import Analysis
from designer.core.design import Design, GraphError, Node
from designer.core import layout as _layout
from designer.core.layout import Layout
from designer.core import summary as _summary
from designer.core.summary import format_table
from designer.io.design_file import DesignError, load_design, save_design

#: the public names that come from the engine, data, training and ONNX layers, imported on first
#: use (PEP 562) so that ``import designer`` and the commands that only read designs
#: (``summary``, ``templates``) load neither the engine nor NumPy
_LAZY = {
    **dict.fromkeys(["Cancelled", "InputError", "InvalidDesign", "Network", "NotEnoughMemory"],
                    "designer.engine.network"),
    "TrainingError": "designer.engine.training",
    "ExplainError": "designer.engine.explain",
    **dict.fromkeys(["SGD", "Adam", "AdamW", "CosineAnnealingLR", "StepLR", "clip_grad_norm"],
                    "designer.engine.optim"),
    "WeightsError": "designer.engine.weights",
    "load_dataset": "designer.data.dataset",
    "OnnxImportError": "designer.io.onnx_import",
    "train": "designer.train.loop",
}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'designer' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Designer(_types.ModuleType):
    """This package's module: ``designer.train`` stays the training function (contract §5) when
    the subpackage of the same name is first imported, which sets the subpackage as this
    module's attribute (the subpackage itself is ``sys.modules["designer.train"]``)."""

    def __setattr__(self, name, value):
        if name == "train" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Designer


def _as_design(design):
    """A Design as it is; a path or a dict loaded (DesignError if it is not a design)."""
    return design if isinstance(design, Design) else load_design(design)


def summarize(design, analysis=None):
    """The dict that ``cnn-designer summary --json`` prints (contract §4). ``design``: a Design,
    or a path or dict as ``load_design`` takes."""
    return _summary.summarize(_as_design(design), analysis)


def build(design, weights=None, seed=0, scratch_bytes=None):
    """A runnable network (contract §5). ``design``: a Design, or a path or dict; ``weights``:
    None (seeded He initialization), a path to an .npz file, a mapping of name to array, or
    ``"trained"``: the weights that ship with the project for this design's structure (contract
    §6; a WeightsError saying so when no shipped weights fit it). ``scratch_bytes``: the
    engine's im2col buffer at most (None: ``designer.engine.ops.DEFAULT_SCRATCH_BYTES``)."""
    from designer.engine import network
    design = _as_design(design)
    if isinstance(weights, str) and weights == "trained":
        from designer.io.trained import trained_for
        weights = trained_for(design).weights
    if scratch_bytes is None:
        return network.build(design, weights, seed)
    return network.build(design, weights, seed, scratch_bytes)


def layout(design):
    """The automatic layout (contract §7): ``.cards`` ``{id: (x, y, width, height)}`` and
    ``.edges`` ``{(source, target): [(x, y), ...]}``. ``design``: a Design, or a path or dict."""
    return _layout.layout(_as_design(design))


#: what ``export`` writes, by the output's extension (contract §4, §8)
EXPORT_FORMATS = {".py": "PyTorch code", ".onnx": "an ONNX model", ".svg": "an SVG diagram",
                  ".pdf": "a PDF diagram", ".png": "a PNG diagram"}


class ExportUnavailable(RuntimeError):
    """This installation can't write the asked format (a part of it is missing)."""


def export_kind(path):
    """The output's extension (lower case) if ``export`` writes it; ValueError naming the
    supported ones otherwise."""
    import os
    kind = os.path.splitext(os.fspath(path))[1].lower()
    if kind not in EXPORT_FORMATS:
        what = (f'a "{os.path.splitext(os.fspath(path))[1]}" file' if kind
                else "a file without an extension")
        supported = ", ".join(f"{k} ({v})" for k, v in EXPORT_FORMATS.items())
        raise ValueError(f"{os.path.basename(os.fspath(path)) or path}: can't export to {what}; "
                         f"end the file name with one of {supported}")
    return kind


def export(design, path, weights=None, scale=1.0):
    """Write ``design`` in the format ``path``'s extension names (contract §5, §8): ``.py``
    PyTorch code (weights are not part of the code: its ``build_model(path)`` loads a weights
    file), ``.onnx`` an ONNX model with ``weights`` (None: the seed-0 weights; a path or a
    mapping as ``build`` takes), ``.svg`` / ``.pdf`` / ``.png`` the diagram (``scale``: the PNG's
    pixels per canvas unit). ``design``: a Design, or a path or dict.

    Raises ValueError for an unknown extension; InvalidDesign (code and ONNX) for a design with
    errors; designer.io.pytorch.CodeExportError for node ids PyTorch can't take; WeightsError;
    ExportUnavailable when this installation lacks what the format needs; OSError when the file
    can't be written."""
    kind = export_kind(path)
    design = _as_design(design)
    if kind == ".py":
        from designer.engine.network import InvalidDesign
        from designer.io.pytorch import write_pytorch_code
        analysis = Analysis(design)
        if not analysis.valid:
            raise InvalidDesign(_problem_texts(analysis))
        write_pytorch_code(design, path, analysis)
    elif kind == ".onnx":
        try:
            from designer.io.onnx_export import export_onnx
        except ImportError as exc:
            raise ExportUnavailable(_unavailable("ONNX export", exc)) from None
        try:
            export_onnx(design, weights, path)
        except ImportError as exc:
            raise ExportUnavailable(_unavailable("ONNX export", exc)) from None
    else:
        try:
            from designer.app.diagram import export_diagram
        except ImportError as exc:
            raise ExportUnavailable(_unavailable("diagram export", exc)) from None
        export_diagram(design, path, scale)


def import_onnx(path):
    """An ONNX model as ``(design, weights)`` (contract §5, §8): the design with its layout's
    positions and its weights as a mapping of §3. Raises OnnxImportError with a message for a
    file that is not ONNX (or cut short) and for an operator no layer here expresses (naming
    the ONNX node and its op type); ExportUnavailable when the onnx package is missing."""
    try:
        from designer.io.onnx_import import import_onnx as read
        import onnx  # noqa: F401
    except ImportError as exc:
        raise ExportUnavailable(_unavailable("ONNX import", exc)) from None
    return read(path)


def _problem_texts(analysis):
    problems = [str(p) for p in analysis.problems() if p.severity == "error"]
    return problems or analysis.design_problems()


def _unavailable(what, exc):
    name = getattr(exc, "name", None)
    if name and name.split(".")[0] in ("onnx", "PySide6"):
        package = name.split(".")[0]
        return f"{what} needs the {package} package, which is not installed (pip install {package})"
    return f"{what} is not available yet in this version of CNN Designer"


__all__ = ["Analysis", "Cancelled", "Design", "DesignError", "GraphError", "InputError",
           "InvalidDesign", "Layout", "Network", "Node", "NotEnoughMemory", "TrainingError", "WeightsError", "build",
           "format_table", "layout", "load_design", "save_design", "summarize"]
__all__ += ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "StepLR", "clip_grad_norm"]
__all__ += ["load_dataset"]
__all__ += ["train", "ExplainError"]
__all__ += ["export", "ExportUnavailable", "EXPORT_FORMATS"]
__all__ += ["import_onnx", "OnnxImportError"]
__version__ = "0.1.0"
