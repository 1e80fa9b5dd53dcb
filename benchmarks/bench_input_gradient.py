"""Time of ``net.input_gradient`` (contract §5: the effective receptive field of one unit) on
VGG-16 at 224×224, for the centre unit of its last convolution (features.28, 14×14 maps: the
gradient goes back through all thirteen convolutions), beside PyTorch's autograd of the same
unit (the sum over channels of that position, d/d input) on the same weights and image, when an
interpreter with torch is given (torch is never a dependency: install it in a scratch
environment to compare).

    .venv/bin/python benchmarks/bench_input_gradient.py [--repeat 3] [--rounds 3]
        [--threads 2] [--torch PYTHON] [--template vgg16.json] [--node features.28]
        [--baseline DIR]

Each side runs in a child process of its own, in interleaved rounds (engine, PyTorch, engine,
PyTorch, ...), ``--repeat`` timed calls a round after one warm-up call; the figures are the best
and the median over all rounds, wall clock. ``--threads`` sets the BLAS / OpenMP threads of both
sides (default 2). Both children save their gradient; the largest difference, relative to the
largest value, is printed (float32 on both sides: about 1e-6).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
# the engine a child times: this project's, or the baseline's (--root, given to the child)
CODE = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv else str(ROOT)
sys.path.insert(0, CODE)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def timed(call, repeat: int) -> list[float]:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _load(path: str):
    import designer
    data = np.load(path)
    design = designer.load_design(ROOT / "resources" / "templates" / str(data["template"]))
    weights = {k[2:]: data[k] for k in data.files if k[:2] == "w:"}
    return data, design, designer.build(design, weights=weights), weights


def engine_child(path: str, repeat: int) -> dict:
    data, _, net, _ = _load(path)
    x, node, unit = data["x"], str(data["node"]), tuple(int(u) for u in data["unit"])
    result = {}

    def call():
        result["grad"] = net.input_gradient(x, node, unit)

    times = timed(call, repeat)
    np.save(path + ".engine.npy", result["grad"])
    return {"wall": times}


def torch_child(path: str, repeat: int) -> dict:
    import torch
    import torch.nn.functional as F
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    data, design, net, weights = _load(path)
    node, unit = str(data["node"]), tuple(int(u) for u in data["unit"])
    nodes = net._upstream(node)
    w = {k: torch.from_numpy(v) for k, v in weights.items()}
    x0 = torch.from_numpy(data["x"][:1])
    result = {}

    def call():
        x = x0.clone().requires_grad_(True)
        acts = {}
        for n in nodes:
            info = net.infos[n]
            v, t = info.values, info.type
            a = acts[design.sources(n)[0]] if design.sources(n) else None
            if t == "Input":
                y = x
            elif t == "Conv2d":
                y = F.conv2d(a, w[f"{n}.weight"], w.get(f"{n}.bias"), v["stride"], v["padding"],
                             v["dilation"], v["groups"])
            elif t == "ReLU":
                y = F.relu(a)
            elif t == "MaxPool2d":
                y = F.max_pool2d(a, v["kernel_size"], v["stride"], v["padding"], v["dilation"],
                                 v["ceil_mode"])
            else:
                raise SystemExit(f"no torch op for {t} in this benchmark")
            acts[n] = y
        acts[node][0, :, unit[0], unit[1]].sum().backward()
        result["grad"] = x.grad[0]

    times = timed(call, repeat)
    np.save(path + ".torch.npy", result["grad"].numpy())
    return {"wall": times, "version": torch.__version__, "threads": torch.get_num_threads()}


def run_child(python: str, side: str, path: str, repeat: int, threads: int,
              root: str | None = None) -> dict:
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    extra = ["--root", root] if root else []
    out = subprocess.run([python, __file__, "--child", side, path, "--repeat", str(repeat)]
                         + extra, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the {side} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--template", default="vgg16.json")
    parser.add_argument("--node", default="features.28")
    parser.add_argument("--torch", metavar="PYTHON", help="an interpreter with torch installed")
    parser.add_argument("--baseline", metavar="DIR", help="another copy's engine to time too")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, path = args.child
        result = (engine_child if side == "engine" else torch_child)(path, args.repeat)
        print(json.dumps(result))
        return
    import designer
    design = designer.load_design(ROOT / "resources" / "templates" / args.template)
    net = designer.build(design, seed=0)
    _, h, w = net.infos[args.node].shape
    unit = (h // 2, w // 2)
    x = np.random.default_rng(0).random((1,) + net.input_shape, dtype=np.float32)
    ours, theirs, base = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(pathlib.Path(tmp) / "case.npz")
        if args.baseline:
            os.symlink(path, path + ".base")
        np.savez(path, x=x, template=args.template, node=args.node, unit=np.array(unit),
                 **{f"w:{k}": v for k, v in net.weights.items()})
        for _ in range(args.rounds):
            ours += run_child(sys.executable, "engine", path, args.repeat, args.threads)["wall"]
            if args.baseline:
                base += run_child(sys.executable, "engine", path + ".base", args.repeat,
                                  args.threads, os.path.abspath(args.baseline))["wall"]
            if args.torch:
                theirs.append(run_child(args.torch, "torch", path, args.repeat, args.threads))
        mine = np.load(path + ".engine.npy")
        print(f"{args.template} {args.node} unit {unit}, {args.rounds} rounds of {args.repeat}, "
              f"{args.threads} threads; seconds (best / median)")
        print(f"engine  {min(ours):7.3f} / {np.median(ours):7.3f}")
        if base:
            old = np.load(path + ".base.engine.npy")
            error = float(np.abs(mine - old).max() / max(np.abs(old).max(), 1e-30))
            print(f"baseline {min(base):6.3f} / {np.median(base):7.3f} ({args.baseline}; "
                  f"largest difference {error:.1e} of the largest value)")
        if theirs:
            times = [t for r in theirs for t in r["wall"]]
            ref = np.load(path + ".torch.npy")
            error = float(np.abs(mine - ref).max() / max(np.abs(ref).max(), 1e-30))
            print(f"PyTorch {min(times):7.3f} / {np.median(times):7.3f} "
                  f"({theirs[0]['version']}, {theirs[0]['threads']} threads)")
            print(f"ratio   {min(ours) / min(times):7.2f} / "
                  f"{np.median(ours) / np.median(times):7.2f}; largest difference "
                  f"{error:.1e} of the largest value")


if __name__ == "__main__":
    main()
