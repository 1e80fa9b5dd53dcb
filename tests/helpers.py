"""Helpers for tests: build small designs from a compact description."""
from __future__ import annotations

import signal
from contextlib import contextmanager

from designer.core.analysis import Analysis
from designer.core.design import Design, Node


def chain(input_shape, *layers, name="test"):
    """A straight chain: Input of ``input_shape`` then ``(id, type, params)`` layers in order."""
    c, h, w = input_shape
    nodes = [Node("input", "Input", {"channels": c, "height": h, "width": w})]
    nodes += [Node(i, t, dict(p)) for i, t, p in layers]
    edges = [(a.id, b.id) for a, b in zip(nodes, nodes[1:])]
    return Design.from_parts(name, nodes, edges)


def graph(nodes, edges, name="test"):
    """Any graph: ``nodes`` as ``(id, type, params)``, ``edges`` as ``(source, target)``."""
    return Design.from_parts(name, [Node(i, t, dict(p)) for i, t, p in nodes], edges)


def info(design, node_id):
    return Analysis(design).info(node_id)


#: the contract's example design (contract §2)
SEED = {
    "format": "cnn-designer",
    "version": 1,
    "name": "Seed example",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 3, "height": 32, "width": 32},
         "position": [0, 0]},
        {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 10, "kernel_size": 5, "padding": 2},
         "position": [0, 120]},
    ],
    "edges": [["input", "conv1"]],
}


@contextmanager
def deadline(seconds):
    """Fail (instead of hanging) if the block takes longer than ``seconds`` (main thread only)."""
    def expired(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def lenet_onnx(folder, seed, name="lenet.onnx"):
    """LeNet-5 with seeded weights exported as ONNX into ``folder``: (design, network, path)."""
    import designer
    from designer.io.onnx_export import export_onnx
    from designer.io.templates import find_template

    design = find_template("lenet5").load()
    net = designer.build(design, seed=seed)
    path = folder / name
    export_onnx(design, net.weights, path)
    return design, net, path
