"""Peak memory of training steps (``net.gradients`` then ``designer.Adam``'s step) against
``net.estimate_training_bytes(batch)``, for LeNet-5, the CIFAR-10 ConvNet and Tiny VGG at
batch 64 and 256.

    .venv/bin/python benchmarks/bench_train_memory.py [--batch 64 256] [--steps 3]

Each case runs in a fresh child process. Two measures of the peak, both counting everything
the steps allocate (the weights are drawn inside the measurement; the batch is made before):

* traced: tracemalloc's peak (NumPy reports its arrays to it), over the first step (which makes
  every array) and over the later ones (which reuse the arrays the first kept);
* resident: the growth of the process's peak resident set (ru_maxrss) over its size before.

The estimate should be an upper bound of both and not far above them (``estimate / peak``
between 1 and about 1.5).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPLATES = {"LeNet-5": "lenet5.json", "CIFAR-10 ConvNet": "cifar10-convnet.json",
             "Tiny VGG": "tiny-vgg.json"}


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def child(file: str, batch: int, steps: int) -> dict:
    import tracemalloc

    import numpy as np

    import designer
    design = designer.load_design(ROOT / "resources" / "templates" / file)
    net = designer.build(design, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + net.input_shape, dtype=np.float32)
    y = rng.integers(0, net.infos[net.analysis.output].shape[0], batch)
    opt = designer.Adam(lr=1e-3)
    estimate = net.estimate_training_bytes(batch)
    before = resident_bytes()
    tracemalloc.start()
    peaks = []
    for _ in range(steps):
        _, grads = net.gradients(x, y, rng=0)
        opt.step(net, grads)
        del grads
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.reset_peak()
    tracemalloc.stop()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"estimate": estimate, "first": peaks[0], "later": max(peaks[1:] or peaks),
            "resident": max(0, grown), "weights": net._weight_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.steps)))
        return
    print(f"{'':17s} {'batch':>5s} {'estimate':>9s} {'traced 1st':>10s} {'traced later':>12s} "
          f"{'resident':>9s} {'estimate/peak':>13s}   (MiB)")
    for name, file in TEMPLATES.items():
        for batch in args.batch:
            out = subprocess.run([sys.executable, __file__, "--child", file, str(batch),
                                  "--steps", str(args.steps)], capture_output=True, text=True,
                                 cwd=ROOT)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            peak = max(r["first"], r["later"], r["resident"])
            print(f"{name:17s} {batch:5d} {r['estimate'] / 2**20:9.1f} {r['first'] / 2**20:10.1f} "
                  f"{r['later'] / 2**20:12.1f} {r['resident'] / 2**20:9.1f} "
                  f"{r['estimate'] / peak:13.2f}", flush=True)


if __name__ == "__main__":
    main()
