"""CNN Designer: design convolutional neural networks and look inside them.

The public Python API (contract §5)::

    import designer
    design = designer.load_design("vgg16.json")   # also accepts the dict; raises designer.DesignError
    summary = designer.summarize(design)          # the dict that `cnn-designer summary --json` prints
    net = designer.build(design, weights=None, seed=0)  # weights: None, a path, or a mapping
    acts = net.forward(x)                         # x: float32 (N, C, H, W) -> {node id: array}
    net.weights                                   # {"conv1.weight": array, ...}
"""
from designer.core.analysis import Analysis
from designer.core.design import Design, GraphError, Node
from designer.core.summary import format_table, summarize
from designer.engine.network import (Cancelled, InputError, InvalidDesign, Network,
                                     NotEnoughMemory, build)
from designer.engine.weights import WeightsError
from designer.io.design_file import DesignError, load_design, save_design

__all__ = ["Analysis", "Cancelled", "Design", "DesignError", "GraphError", "InputError",
           "InvalidDesign", "Network", "Node", "NotEnoughMemory", "WeightsError", "build",
           "format_table", "load_design", "save_design", "summarize"]
__version__ = "0.1.0"
