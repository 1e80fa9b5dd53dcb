"""Time of the automatic layout (``designer.layout``, contract §7) on 1,000-node designs: a
ResNet-50-like stack of bottleneck blocks with skips, the residual design of bench_inference, a
long chain with skips of every length, wide fan-outs into Concats, and a random DAG. Target: well
under a second each.

    .venv/bin/python benchmarks/bench_layout.py
"""
from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inference import residual_design  # noqa: E402
from designer.core.design import Design, Node  # noqa: E402
from designer.core.layout import layout  # noqa: E402

TARGET_S = 1.0


def resnet50_like(n_nodes: int = 1000) -> Design:
    """Bottleneck blocks (1×1, 3×3, 1×1 with BN and ReLU) with identity shortcuts, and a
    projection shortcut (conv, BN) opening each stage."""
    nodes, edges, last, b = [Node("input", "Input")], [], "input", 0
    while len(nodes) + 12 <= n_nodes:
        names = [f"s{b}.{p}" for p in ("conv1", "bn1", "relu1", "conv2", "bn2", "relu2",
                                         "conv3", "bn3")]
        nodes += [Node(n, "ReLU") for n in names]
        edges += list(zip([last] + names[:-1], names))
        shortcut = last
        if b % 6 == 0:
            nodes += [Node(f"s{b}.down", "Conv2d"), Node(f"s{b}.down_bn", "BatchNorm2d")]
            edges += [(last, f"s{b}.down"), (f"s{b}.down", f"s{b}.down_bn")]
            shortcut = f"s{b}.down_bn"
        nodes += [Node(f"s{b}.add", "Add"), Node(f"s{b}.out", "ReLU")]
        edges += [(names[-1], f"s{b}.add"), (shortcut, f"s{b}.add"), (f"s{b}.add", f"s{b}.out")]
        last, b = f"s{b}.out", b + 1
    while len(nodes) < n_nodes:
        nodes.append(Node(f"tail{len(nodes)}", "ReLU"))
        edges.append((last, nodes[-1].id))
        last = nodes[-1].id
    return Design.from_parts("resnet50-like", nodes, edges)


def chain_with_skips(n_nodes: int = 1000, seed: int = 0) -> Design:
    """A long chain; every tenth node also feeds one 2 to 40 rows further down."""
    rng = random.Random(seed)
    nodes = [Node(f"c{i}", "ReLU") for i in range(n_nodes)]
    edges = [(f"c{i}", f"c{i + 1}") for i in range(n_nodes - 1)]
    for i in range(0, n_nodes - 2, 10):
        j = min(n_nodes - 1, i + rng.randint(2, 40))
        if (f"c{i}", f"c{j}") not in edges:
            edges.append((f"c{i}", f"c{j}"))
    return Design.from_parts("chain", nodes, edges)


def fan_outs(n_nodes: int = 1000, width: int = 24) -> Design:
    """Stages of ``width`` parallel branches of three layers, each stage joined by a Concat."""
    nodes, edges, last, s = [Node("input", "Input")], [], "input", 0
    while len(nodes) + 3 * width + 1 <= n_nodes:
        for w in range(width):
            branch = [f"f{s}.{w}.{k}" for k in range(3)]
            nodes += [Node(n, "ReLU") for n in branch]
            edges += list(zip([last] + branch[:-1], branch))
            edges.append((branch[-1], f"f{s}.cat"))
        nodes.append(Node(f"f{s}.cat", "Concat"))
        last, s = f"f{s}.cat", s + 1
    while len(nodes) < n_nodes:
        nodes.append(Node(f"tail{len(nodes)}", "ReLU"))
        edges.append((last, nodes[-1].id))
        last = nodes[-1].id
    return Design.from_parts("fan-outs", nodes, edges)


def random_dag(n_nodes: int = 1000, extra: int = 300, seed: int = 0) -> Design:
    """A chain plus random forward edges of up to 30 rows."""
    rng = random.Random(seed)
    nodes = [Node(f"r{i}", "ReLU") for i in range(n_nodes)]
    edges = {(i, i + 1) for i in range(n_nodes - 1)}
    while len(edges) < n_nodes - 1 + extra:
        i = rng.randrange(n_nodes - 2)
        edges.add((i, min(n_nodes - 1, i + rng.randint(2, 30))))
    return Design.from_parts("random", nodes, [(f"r{s}", f"r{t}") for s, t in sorted(edges)])


def main() -> None:
    cases = [("ResNet-50-like (bottlenecks, projection shortcuts)", resnet50_like()),
             ("bench_inference's residual design", residual_design()),
             ("long chain with skips of 2–40 rows", chain_with_skips()),
             ("fan-outs of 24 branches into Concats", fan_outs()),
             ("random DAG, 300 extra edges of up to 30 rows", random_dag())]
    print(f"{'design':<52} {'nodes':>6} {'edges':>6} {'points':>6} {'median s':>9} {'worst s':>8}")
    worst_all = 0.0
    for name, design in cases:
        times = []
        for _ in range(7):
            gc.collect()
            t0 = time.perf_counter()
            lay = layout(design)
            times.append(time.perf_counter() - t0)
        points = sum(len(p) for p in lay.edges.values())
        worst_all = max(worst_all, max(times))
        print(f"{name:<52} {len(design):>6} {len(design.edges):>6} {points:>6} "
              f"{statistics.median(times):>9.3f} {max(times):>8.3f}")
    print(f"\ntarget: each under {TARGET_S:.1f} s: {'met' if worst_all < TARGET_S else 'NOT met'} "
          f"(slowest {worst_all:.3f} s)")


if __name__ == "__main__":
    main()
