"""How close im2col can get: each convolution of ResNet-18 timed three ways.

    .venv/bin/python benchmarks/bench_conv_floor.py --torch /tmp/torchvenv13/bin/python
    .venv/bin/python benchmarks/bench_conv_floor.py --torch ... --batch 8 --rounds 7

For every distinct convolution of ResNet-18 (224², the count says how often the network has it):

- **engine**: ``ops.conv2d`` on channels-last input, as an inference pass calls it (the conv
  matrix made once, the block buffer reused, the copy split over the cores);
- **product**: the matrix product alone that im2col reduces the layer to, (N·H'·W' × kh·kw·C)
  @ (kh·kw·C × K) (or its transpose, whichever is faster), by NumPy's BLAS on both cores, on
  ready-made operands: no copy, no padding, nothing else. No im2col convolution can be faster
  than this;
- **PyTorch**: ``nn.Conv2d`` in inference mode, 2 threads (a scratch environment's torch, never
  a dependency).

Children time in turn, a round at a time, with a pause between them; the table shows the best
time of all rounds per image, and the totals weighted by the counts. Where "product" is above
"PyTorch", the matrix library alone is slower than PyTorch's whole convolution and no im2col
engine built on it can reach PyTorch's pace on that layer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREADS = 2

#: (name, C, K, kernel, stride, padding, input size, how many ResNet-18 has)
LAYERS = [("conv1 7×7/2, 3→64 @224", 3, 64, 7, 2, 3, 224, 1),
          ("3×3, 64 @56", 64, 64, 3, 1, 1, 56, 4),
          ("3×3/2, 64→128 @56", 64, 128, 3, 2, 1, 56, 1),
          ("3×3, 128 @28", 128, 128, 3, 1, 1, 28, 3),
          ("3×3/2, 128→256 @28", 128, 256, 3, 2, 1, 28, 1),
          ("3×3, 256 @14", 256, 256, 3, 1, 1, 14, 3),
          ("3×3/2, 256→512 @14", 256, 512, 3, 2, 1, 14, 1),
          ("3×3, 512 @7", 512, 512, 3, 1, 1, 7, 3),
          ("1×1/2, 64→128 @56", 64, 128, 1, 2, 0, 56, 1),
          ("1×1/2, 128→256 @28", 128, 256, 1, 2, 0, 28, 1),
          ("1×1/2, 256→512 @14", 256, 512, 1, 2, 0, 14, 1)]


def _best(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _engine_timers(batch: int):
    import numpy as np

    from designer.engine import ops
    from designer.engine.memory import keep_freed_memory
    keep_freed_memory()  # as a network does: passes reuse freed memory
    rng = np.random.default_rng(0)
    timers = []
    for _, c, k, f, s, p, size, _ in LAYERS:
        x = np.ascontiguousarray(rng.standard_normal((batch, size, size, c), np.float32))
        x = x.transpose(0, 3, 1, 2)  # channels-last, as the layers before give it
        weight = rng.standard_normal((k, f, f, c), np.float32).transpose(0, 3, 1, 2)
        matrix = ops.conv_matrix(weight, 1)
        out = (size + 2 * p - f) // s + 1
        scratch = np.empty(ops.conv_block_values(batch, out, out, f * f * c), np.float32)

        def conv(x=x, weight=weight, matrix=matrix, s=s, p=p, scratch=scratch):
            return ops.conv2d(x, weight, None, (s, s), (p, p), (1, 1), 1, matrix=matrix,
                              scratch=scratch, parts=ops.worker_count())
        a = rng.standard_normal((batch * out * out, f * f * c), np.float32)
        b = np.ascontiguousarray(matrix[0].T)
        result = np.empty((a.shape[0], k), np.float32)
        timers.append({"engine": conv,  # the product either way round (see ops.SHORT_ROWS)
                       "product": lambda a=a, b=b, r=result: np.matmul(a, b, out=r),
                       "product, transposed": lambda a=a, m=matrix[0]: np.matmul(m, a.T)})
    return timers


def _torch_timers(batch: int):
    import torch
    torch.set_num_threads(THREADS)
    timers = []
    for _, c, k, f, s, p, size, _ in LAYERS:
        x = torch.randn(batch, c, size, size)
        conv = torch.nn.Conv2d(c, k, f, s, p, bias=False).eval()

        def run(conv=conv, x=x):
            with torch.inference_mode():
                return conv(x)
        timers.append({"PyTorch": run})
    return timers


def child(kind: str, batch: int) -> None:
    """Answer each line "reps" on stdin with the best times of a round, as JSON."""
    sys.path.insert(0, str(ROOT))
    timers = _engine_timers(batch) if kind == "engine" else _torch_timers(batch)
    for line in sys.stdin:
        reps = int(line)
        print(json.dumps([{name: _best(fn, reps) for name, fn in t.items()} for t in timers]),
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", help="a Python with torch (a scratch environment)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=10, help="timed runs per layer and round")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch)
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
               PYTHONPATH=str(ROOT))
    pythons = {"engine": sys.executable}
    if args.torch:
        pythons["torch"] = args.torch
    children = {k: subprocess.Popen([py, __file__, "--child", k, "--batch", str(args.batch)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    env=env, cwd=str(ROOT)) for k, py in pythons.items()}
    best: list[dict[str, float]] = [{} for _ in LAYERS]
    try:
        for r in range(args.rounds):
            for kind, proc in (list(children.items())[::1 if r % 2 == 0 else -1]):
                time.sleep(0.3)  # the other's thread pool winds down
                proc.stdin.write(f"{args.reps}\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the {kind} child stopped (see its error above)")
                for i, times in enumerate(json.loads(line)):
                    for name, t in times.items():
                        name = name.split(",")[0]  # the faster way round of the product
                        best[i][name] = min(best[i].get(name, t), t)
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for proc in children.values():
            proc.stdin.close()
            proc.wait()
    columns = ["engine", "product"] + (["PyTorch"] if args.torch else [])
    print(f"\nResNet-18's convolutions at batch {args.batch}: best ms per image over "
          f"{args.rounds} rounds ({THREADS} threads)")
    print(f"{'layer':<26}{'count':>6}" + "".join(f"{c:>10}" for c in columns)
          + ("  product/PyTorch" if args.torch else ""))
    totals = dict.fromkeys(columns, 0.0)
    for (name, *_, count), times in zip(LAYERS, best):
        per = {c: times[c] * 1000 / args.batch for c in columns}
        for c in columns:
            totals[c] += per[c] * count
        ratio = f"  {per['product'] / per['PyTorch']:14.2f}×" if args.torch else ""
        print(f"{name:<26}{count:>6}" + "".join(f"{per[c]:10.2f}" for c in columns) + ratio)
    ratio = f"  {totals['product'] / totals['PyTorch']:14.2f}×" if args.torch else ""
    print(f"{'all, weighted by count':<32}" + "".join(f"{totals[c]:10.2f}" for c in columns)
          + ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
