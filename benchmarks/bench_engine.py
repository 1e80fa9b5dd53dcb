"""Engine speed and memory (issue targets: VGG-16's convolutional stack at 224×224, batch 1, within
1.5× of PyTorch's CPU time in the same run; peak memory for a 2048×2048 image).

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchenv/bin/python benchmarks/bench_engine.py   # a scratch environment: never a dependency
    .venv/bin/python benchmarks/bench_engine.py [--skip-2048]

Prints: the engine's and PyTorch's times (median of several runs, same threads), the engine's
GFLOP/s, NumPy's own matrix-product throughput at the same shapes (the ceiling im2col can reach),
and the peak resident memory of a 2048×2048 pass, measured in a fresh child process, against
the engine's own estimate (``Network.estimate_bytes``), which must bound it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from designer.core.analysis import Analysis  # noqa: E402
from designer.core.design import Design  # noqa: E402
from designer.engine.network import build  # noqa: E402
from designer.io.templates import find_template  # noqa: E402

LAST_FEATURE = "features.30"  # VGG-16's last max pool: the end of the convolutional stack


def vgg16_features(size: int = 224) -> Design:
    """VGG-16 up to its last max pool, on a size × size input."""
    full = find_template("vgg16").load()
    keep = full.node_ids[:full.node_ids.index(LAST_FEATURE) + 1]
    nodes = [full.node(n).copy() for n in keep]
    nodes[0].params.update(height=size, width=size)
    edges = [e for e in full.edges if e[0] in keep and e[1] in keep]
    return Design.from_parts(f"VGG-16 features {size}", nodes, edges)


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_ceiling(design: Design, repeat: int) -> float:
    """Seconds NumPy needs for just the matrix products of every convolution (no im2col)."""
    analysis = Analysis(design)
    rng = np.random.default_rng(0)
    shapes = []
    for info in analysis.infos():
        if info.type == "Conv2d":
            src = analysis.info(design.sources(info.id)[0]).shape
            kh, kw = info.values["kernel_size"]
            shapes.append((info.shape[1] * info.shape[2], src[0] * kh * kw, info.shape[0]))
    mats = [(rng.random((m, k), dtype=np.float32), rng.random((n, k), dtype=np.float32))
            for m, k, n in shapes]

    def run():
        for a, b in mats:
            a @ b.T
    return median_time(run, repeat)


def torch_model(design: Design, weights: dict):
    """The same convolutional stack in PyTorch with the same weights, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    layers = []
    analysis = Analysis(design)
    for info in analysis.infos():
        v = info.values
        if info.type == "Conv2d":
            conv = torch.nn.Conv2d(analysis.info(design.sources(info.id)[0]).shape[0],
                                   v["out_channels"], v["kernel_size"], v["stride"], v["padding"],
                                   v["dilation"], v["groups"], v["bias"])
            conv.weight.data = torch.from_numpy(weights[f"{info.id}.weight"])
            conv.bias.data = torch.from_numpy(weights[f"{info.id}.bias"])
            layers.append(conv)
        elif info.type == "ReLU":
            layers.append(torch.nn.ReLU())
        elif info.type == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(v["kernel_size"], v["stride"]))
    return torch, torch.nn.Sequential(*layers).eval()


def in_blocks(fns, repeat: int, blocks: int = 3) -> list[float]:
    """Median seconds of each function, timed in alternating blocks with a pause between them:
    the thread pools of NumPy's BLAS and of PyTorch spin for a while after a call, so running the
    two back to back would slow whichever runs second."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            time.sleep(0.5)
            fn()  # warm-up
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def peak_memory_child(size: int) -> dict:
    """Run one pass in a fresh process and report its peak resident memory."""
    code = f"""
import json, resource, sys, time
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import numpy as np
from bench_engine import vgg16_features
from designer.engine.network import build
net = build(vgg16_features({size}))
x = np.random.default_rng(0).random((1, 3, {size}, {size}), dtype=np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter(); acts = net.forward(x); seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
kept = sum(a.nbytes for a in acts.values())
weights = sum(w.nbytes for w in net.weights.values())
print(json.dumps(dict(peak=peak, before=before, kept=kept, weights=weights, seconds=seconds,
                      estimate=net.estimate_bytes(1))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5, help="runs per block (3 blocks)")
    parser.add_argument("--skip-2048", action="store_true")
    args = parser.parse_args()

    design = vgg16_features(224)
    net = build(design, seed=0)
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    macs = sum(i.macs for i in Analysis(design).infos())
    flops = 2 * macs
    ceiling = matmul_ceiling(design, args.repeat)
    torch_parts = torch_model(design, net.weights)
    print(f"VGG-16 convolutional stack, 224×224, batch 1 ({macs / 1e9:.2f} G mult-adds)")
    if torch_parts is None:
        ours = median_time(lambda: net.forward(x), args.repeat)
    else:
        torch, model = torch_parts
        tx = torch.from_numpy(x)
        with torch.inference_mode():
            reference = model(tx).numpy()
            ours, theirs = in_blocks([lambda: net.forward(x), lambda: model(tx)], args.repeat)
    print(f"  engine (NumPy {np.__version__}):   {ours * 1000:8.1f} ms   {flops / ours / 1e9:6.1f} GFLOP/s")
    print(f"  NumPy matmuls alone:      {ceiling * 1000:8.1f} ms   {flops / ceiling / 1e9:6.1f} GFLOP/s"
          f"   (engine reaches {ceiling / ours:.0%} of this ceiling)")
    if torch_parts is None:
        print("  PyTorch: not installed (.venv/bin/pip install torch==2.13.0 to compare)")
    else:
        ratio = ours / theirs
        error = float(np.abs(net.forward(x)[LAST_FEATURE] - reference).max())
        print(f"  PyTorch {torch.__version__} ({torch.get_num_threads()} threads): "
              f"{theirs * 1000:8.1f} ms   {flops / theirs / 1e9:6.1f} GFLOP/s")
        print(f"  engine / PyTorch = {ratio:.2f}× (target ≤ 1.5×: {'met' if ratio <= 1.5 else 'NOT met'});"
              f" largest difference in the output {error:.2e}")
    if not args.skip_2048:
        m = peak_memory_child(2048)
        gib = 2**30
        print("VGG-16 convolutional stack, 2048×2048, batch 1 (fresh process)")
        print(f"  time {m['seconds']:.1f} s; peak resident memory {m['peak'] / gib:.2f} GiB")
        used = m['peak'] - m['before']
        print(f"  activations kept {m['kept'] / gib:.2f} GiB + weights {m['weights'] / gib:.3f} GiB;"
              f" process before the pass {m['before'] / gib:.2f} GiB")
        print(f"  the pass took {used / gib:.2f} GiB at its peak; engine's estimate "
              f"{m['estimate'] / gib:.2f} GiB (peak / estimate = {used / m['estimate']:.2f}; "
              f"the estimate must not be below it)")


if __name__ == "__main__":
    main()
