"""Time of one training pass, ``net.gradients(x, y)``, at batch 64 on LeNet-5 and the CIFAR-10
ConvNet (resources/templates), with PyTorch's forward + backward for comparison when torch is
importable (it is never a dependency: install it in a scratch environment to compare).

    .venv/bin/python benchmarks/bench_train_step.py [--batch 64] [--repeat 20] [--torch PYTHON]

``--torch PYTHON``: an interpreter with torch installed (a scratch environment); PyTorch is timed
in a child process of its own, on the same weights and batch, so that its threads and NumPy's
don't compete in one process.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import designer  # noqa: E402

TEMPLATES = {"LeNet-5": "lenet5.json", "CIFAR-10 ConvNet": "cifar10-convnet.json"}


def best_of(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm up (weights drawn, buffers made)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def torch_step(design, net, x, y):
    """PyTorch's forward + backward of the same network and weights, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from torch import nn
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
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(tx), ty)
        loss.backward()
        return float(loss.detach())

    return step, torch.get_num_threads()


def torch_child(path: str, repeat: int) -> None:
    """In the child: time PyTorch on the batch and weights saved at ``path``; print JSON."""
    import torch
    data = np.load(path)
    design = designer.load_design(ROOT / "resources" / "templates" / str(data["template"]))
    net = designer.build(design, weights={k[2:]: data[k] for k in data.files if k[:2] == "w:"})
    step, threads = torch_step(design, net, data["x"], data["y"])
    best, median = best_of(step, repeat)
    print(json.dumps({"best": best, "median": median, "threads": threads, "loss": step(),
                      "version": torch.__version__}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--torch", metavar="PYTHON", help="an interpreter with torch installed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch_child(args.child, args.repeat)
        return
    for name, file in TEMPLATES.items():
        design = designer.load_design(ROOT / "resources" / "templates" / file)
        net = designer.build(design, seed=0)
        rng = np.random.default_rng(0)
        x = rng.random((args.batch,) + net.input_shape, dtype=np.float32)
        y = rng.integers(0, net.infos[net.analysis.output].shape[0], args.batch)
        loss = net.gradients(x, y, rng=0)[0]
        best, median = best_of(lambda: net.gradients(x, y, rng=0), args.repeat)
        line = (f"{name:17s} batch {args.batch}: gradients() best {best * 1e3:6.1f} ms, "
                f"median {median * 1e3:6.1f} ms; estimate "
                f"{net.estimate_training_bytes(args.batch) / 2**20:,.0f} MiB")
        if args.torch:
            with tempfile.TemporaryDirectory() as tmp:
                path = str(pathlib.Path(tmp) / "batch.npz")
                np.savez(path, x=x, y=y, template=file,
                         **{f"w:{k}": v for k, v in net.weights.items()})
                out = subprocess.run([args.torch, __file__, "--child", path, "--repeat",
                                      str(args.repeat)], capture_output=True, text=True,
                                     check=True).stdout
            t = json.loads(out.strip().splitlines()[-1])
            line += (f"; PyTorch {t['version']} ({t['threads']} threads) forward+backward best "
                     f"{t['best'] * 1e3:6.1f} ms, median {t['median'] * 1e3:6.1f} ms "
                     f"(ratio of medians {median / t['median']:.2f}; losses {loss:.6f} / "
                     f"{t['loss']:.6f})")
        print(line, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
