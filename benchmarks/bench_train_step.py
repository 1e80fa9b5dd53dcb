"""Time of one training step, ``net.gradients(x, y)`` then ``designer.Adam``'s step, at batch 64
on LeNet-5 and the CIFAR-10 ConvNet (resources/templates), beside PyTorch's step on the same
weights and batch (forward, cross-entropy, backward and ``torch.optim.Adam``'s step) when an
interpreter with torch is given (torch is never a dependency: install it in a scratch
environment to compare).

    .venv/bin/python benchmarks/bench_train_step.py [--batch 64] [--repeat 20] [--rounds 3]
        [--threads N] [--torch PYTHON]

Each side runs in a child process of its own (so that neither's threads compete with the
other's), in interleaved rounds (engine, PyTorch, engine, PyTorch, ...), ``--repeat`` steps a
round after two warm-up steps; the figures are the best and the median over all rounds, of the
wall-clock time and of the CPU time of the process (all threads) per step. ``--threads N`` sets
the BLAS / OpenMP threads of both sides (default: each library's own choice, the number of
cores). On a machine shared with other work, the CPU time and ``--threads 1`` are the steadier
comparison; the wall-clock best with the default threads is what a user sees on an idle machine.
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
sys.path.insert(0, str(ROOT))

TEMPLATES = {"LeNet-5": "lenet5.json", "CIFAR-10 ConvNet": "cifar10-convnet.json"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def timed(step, repeat: int) -> dict:
    """Two warm-up steps, then ``repeat`` timed ones: wall and process CPU seconds each."""
    step()
    step()
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"wall": wall, "cpu": cpu}


def engine_child(path: str, repeat: int) -> dict:
    import designer
    data = np.load(path)
    design = designer.load_design(ROOT / "resources" / "templates" / str(data["template"]))
    net = designer.build(design, weights={k[2:]: data[k] for k in data.files if k[:2] == "w:"})
    opt = designer.Adam(lr=1e-3)
    x, y = data["x"], data["y"]
    losses = []

    def step():
        loss, grads = net.gradients(x, y, rng=0)
        opt.step(net, grads)
        losses.append(loss)

    result = timed(step, repeat)
    result["first_loss"] = float(losses[0])
    return result


def torch_child(path: str, repeat: int) -> dict:
    import torch
    from torch import nn

    import designer
    data = np.load(path)
    design = designer.load_design(ROOT / "resources" / "templates" / str(data["template"]))
    net = designer.build(design, weights={k[2:]: data[k] for k in data.files if k[:2] == "w:"})
    layers = []
    for node_id in net.order[1:]:
        info = net.infos[node_id]
        v, t = info.values, info.type
        if t == "Conv2d":
            k, cg, kh, kw = net.shapes[f"{node_id}.weight"]
            layer = nn.Conv2d(cg * v["groups"], k, (kh, kw), v["stride"], v["padding"],
                              v["dilation"], v["groups"], v["bias"])
        elif t == "Linear":
            o, i = net.shapes[f"{node_id}.weight"]
            layer = nn.Linear(i, o, v["bias"])
        elif t in ("MaxPool2d", "AvgPool2d"):
            layer = getattr(nn, t)(v["kernel_size"], v["stride"])
        elif t == "Flatten":
            layer = nn.Flatten()
        elif t == "Softmax":
            continue  # fused with the loss, as gradients() does
        else:
            layer = getattr(nn, t)()
        with torch.no_grad():
            for name, p in layer.named_parameters():
                p.copy_(torch.from_numpy(net.weights[f"{node_id}.{name}"]))
        layers.append(layer)
    model = nn.Sequential(*layers).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))

    result = timed(step, repeat)
    result.update(first_loss=losses[0], threads=torch.get_num_threads(),
                  version=torch.__version__)
    return result


def run_child(python: str, side: str, path: str, repeat: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    out = subprocess.run([python, __file__, "--child", side, path, "--repeat", str(repeat)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"the {side} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    wall = sorted(t for r in runs for t in r["wall"])
    cpu = sorted(t for r in runs for t in r["cpu"])
    return {"best": wall[0], "median": float(np.median(wall)), "cpu": float(np.median(cpu))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="BLAS / OpenMP threads of both sides")
    parser.add_argument("--torch", metavar="PYTHON", help="an interpreter with torch installed")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, path = args.child
        result = (engine_child if side == "engine" else torch_child)(path, args.repeat)
        print(json.dumps(result))
        return
    import designer
    print(f"batch {args.batch}, {args.rounds} rounds of {args.repeat} steps, threads: "
          f"{args.threads or 'default'}; ms per step (wall best / wall median / CPU median)")
    for name, file in TEMPLATES.items():
        design = designer.load_design(ROOT / "resources" / "templates" / file)
        net = designer.build(design, seed=0)
        rng = np.random.default_rng(0)
        x = rng.random((args.batch,) + net.input_shape, dtype=np.float32)
        y = rng.integers(0, net.infos[net.analysis.output].shape[0], args.batch)
        ours, theirs = [], []
        with tempfile.TemporaryDirectory() as tmp:
            path = str(pathlib.Path(tmp) / "batch.npz")
            np.savez(path, x=x, y=y, template=file,
                     **{f"w:{k}": v for k, v in net.weights.items()})
            for _ in range(args.rounds):
                ours.append(run_child(sys.executable, "engine", path, args.repeat,
                                      args.threads))
                if args.torch:
                    theirs.append(run_child(args.torch, "torch", path, args.repeat,
                                            args.threads))
        a = summary(ours)
        line = (f"{name:17s} engine  {a['best'] * 1e3:6.1f} / {a['median'] * 1e3:6.1f} / "
                f"{a['cpu'] * 1e3:6.1f}; estimate "
                f"{net.estimate_training_bytes(args.batch) / 2**20:,.0f} MiB")
        if theirs:
            b = summary(theirs)
            t = theirs[0]
            line += (f"\n{'':17s} PyTorch {b['best'] * 1e3:6.1f} / {b['median'] * 1e3:6.1f} / "
                     f"{b['cpu'] * 1e3:6.1f} ({t['version']}, {t['threads']} threads)"
                     f"\n{'':17s} ratio   {a['best'] / b['best']:6.2f} / "
                     f"{a['median'] / b['median']:6.2f} / {a['cpu'] / b['cpu']:6.2f}"
                     f"   (first losses {ours[0]['first_loss']:.6f} / {t['first_loss']:.6f})")
        print(line, flush=True)


if __name__ == "__main__":
    main()
