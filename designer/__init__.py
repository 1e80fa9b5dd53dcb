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
"""
from designer.core.analysis import Analysis
from designer.core.design import Design, GraphError, Node
from designer.core import layout as _layout
from designer.core.layout import Layout
from designer.core import summary as _summary
from designer.core.summary import format_table
from designer.engine import network as _network
from designer.engine.network import Cancelled, InputError, InvalidDesign, Network, NotEnoughMemory
from designer.engine.training import TrainingError
from designer.engine.explain import ExplainError
from designer.engine.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR, clip_grad_norm
from designer.engine.weights import WeightsError
from designer.data.dataset import load_dataset
from designer.io.design_file import DesignError, load_design, save_design
from designer.train.loop import train



def _as_design(design):
    """A Design as it is; a path or a dict loaded (DesignError if it is not a design)."""
    return design if isinstance(design, Design) else load_design(design)


def summarize(design, analysis=None):
    """The dict that ``cnn-designer summary --json`` prints (contract §4). ``design``: a Design,
    or a path or dict as ``load_design`` takes."""
    return _summary.summarize(_as_design(design), analysis)


def build(design, weights=None, seed=0, scratch_bytes=_network.ops.DEFAULT_SCRATCH_BYTES):
    """A runnable network (contract §5). ``design``: a Design, or a path or dict; ``weights``:
    None (seeded He initialization), a path to an .npz file, a mapping of name to array, or
    ``"trained"``: the weights that ship with the project for this design's structure (contract
    §6; a WeightsError saying so when no shipped weights fit it)."""
    design = _as_design(design)
    if isinstance(weights, str) and weights == "trained":
        from designer.io.trained import trained_for
        weights = trained_for(design).weights
    return _network.build(design, weights, seed, scratch_bytes)


def layout(design):
    """The automatic layout (contract §7): ``.cards`` ``{id: (x, y, width, height)}`` and
    ``.edges`` ``{(source, target): [(x, y), ...]}``. ``design``: a Design, or a path or dict."""
    return _layout.layout(_as_design(design))


__all__ = ["Analysis", "Cancelled", "Design", "DesignError", "GraphError", "InputError",
           "InvalidDesign", "Layout", "Network", "Node", "NotEnoughMemory", "TrainingError", "WeightsError", "build",
           "format_table", "layout", "load_design", "save_design", "summarize"]
__all__ += ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "StepLR", "clip_grad_norm"]
__all__ += ["load_dataset"]
__all__ += ["train", "ExplainError"]
__version__ = "0.1.0"
