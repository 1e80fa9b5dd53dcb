"""Inference speed on a 1,000-node design (target: full inference under 20 ms).

    .venv/bin/python benchmarks/bench_inference.py

Prints the median and best of several runs for: a full inference from scratch, an edit at the top
(everything downstream recomputes), an edit at the end, and loading + inferring from JSON.
"""
from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from designer.core.analysis import Analysis  # noqa: E402
from designer.core.design import Design, Node  # noqa: E402
from designer.io.design_file import design_from_json, design_to_json  # noqa: E402


def residual_design(n_nodes: int = 1000) -> Design:
    """A ResNet-like stack of residual blocks (conv, BN, ReLU, conv, BN, Add, ReLU) with the
    occasional strided downsampling, to ``n_nodes`` nodes."""
    nodes = [Node("input", "Input", {"channels": 64, "height": 224, "width": 224})]
    edges = []
    last, block, channels = "input", 0, 64
    while len(nodes) + 9 <= n_nodes - 3:
        b = f"b{block}"
        down = block % 40 == 39
        stride = 2 if down else 1
        out = channels * 2 if down else channels
        spec = [(f"{b}.conv1", "Conv2d", {"out_channels": out, "kernel_size": 3, "padding": 1,
                                          "stride": stride, "bias": False}),
                (f"{b}.bn1", "BatchNorm2d", {}), (f"{b}.relu", "ReLU", {}),
                (f"{b}.conv2", "Conv2d", {"out_channels": out, "kernel_size": 3, "padding": 1,
                                          "bias": False}),
                (f"{b}.bn2", "BatchNorm2d", {})]
        prev = last
        for node_id, t, p in spec:
            nodes.append(Node(node_id, t, p))
            edges.append((prev, node_id))
            prev = node_id
        shortcut = last
        if down:
            nodes.append(Node(f"{b}.down", "Conv2d", {"out_channels": out, "kernel_size": 1,
                                                      "stride": 2, "bias": False}))
            edges.append((last, f"{b}.down"))
            shortcut = f"{b}.down"
        nodes += [Node(f"{b}.add", "Add"), Node(f"{b}.out", "ReLU")]
        edges += [(prev, f"{b}.add"), (shortcut, f"{b}.add"), (f"{b}.add", f"{b}.out")]
        last, block, channels = f"{b}.out", block + 1, out
    while len(nodes) < n_nodes - 3:
        node_id = f"act{len(nodes)}"
        nodes.append(Node(node_id, "ReLU"))
        edges.append((last, node_id))
        last = node_id
    for node_id, t, p in (("pool", "AdaptiveAvgPool2d", {"output_size": 1}),
                          ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 1000})):
        nodes.append(Node(node_id, t, p))
        edges.append((last, node_id))
        last = node_id
    return Design.from_parts("residual-1000", nodes, edges)


def timeit(fn, repeat: int = 30) -> tuple[float, float]:
    gc.collect()  # start every case from a clean heap (garbage-collector pauses are counted)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    design = residual_design()
    analysis = Analysis(design)
    assert len(design) == 1000, len(design)
    assert analysis.valid, analysis.problems()[:3]
    print(f"design: {len(design)} nodes, {len(design.edges)} edges, "
          f"{analysis.totals()['params']:,} parameters")

    def full():
        fresh = Analysis(design)
        fresh.refresh()
        fresh.close()

    toggle = iter(range(1, 10**9))  # odd first: the first edit already changes something

    def edit_top():  # every shape below the input changes
        design.set_param("input", "height", 224 - 32 * (next(toggle) % 2))
        analysis.refresh()

    def edit_end():
        design.set_param("fc", "out_features", 1000 + next(toggle) % 2)
        analysis.refresh()

    text = design_to_json(design)

    def load_and_infer():
        loaded = Analysis(design_from_json(text))
        loaded.refresh()
        loaded.close()

    rows = [("full inference (fresh Analysis)", full),
            ("edit at the top (all downstream recomputed)", edit_top),
            ("edit at the end (one node)", edit_end),
            ("parse JSON + full inference", load_and_infer)]
    print(f"{'case':<48} {'median ms':>10} {'best ms':>9}")
    for name, fn in rows:
        median, best = timeit(fn)
        print(f"{name:<48} {median:>10.2f} {best:>9.2f}")
    median, _ = timeit(full, repeat=200)
    print(f"\ntarget: full inference of 1,000 nodes < 20 ms: "
          f"{'met' if median < 20 else 'NOT met'} ({median:.2f} ms median)")


if __name__ == "__main__":
    main()
