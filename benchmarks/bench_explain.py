"""Time of the explanations (contract §5) on ResNet-18 at 224×224: saliency (d logit / d input)
and Grad-CAM (target: each under 2 s), with occlusion sensitivity's throughput, and optionally
a check of all of them against PyTorch's autograd.

    .venv/bin/python benchmarks/bench_explain.py [--repeat 3] [--occlusion] [--torch PYTHON]

Runs are interleaved and the best and median of ``--repeat`` are printed (the machine is
shared: the best is the figure to compare). ``--occlusion``: also ResNet-18's occlusion map at
the default geometry (13 × 13 patches, 170 forward passes: minutes). ``--torch PYTHON``: an
interpreter with torch installed (a scratch environment, never a dependency); it computes the
same saliency and Grad-CAM maps with autograd in a child process, on the same weights and image,
in float64 and float32, and prints how far this engine and PyTorch's float32 are from float64
(with random weights a ReLU input or a max-pool window a rounding error away from a tie flips
between float32 and float64: differences of 1e-2 at a few pixels are that, not an error).

"the same by input_gradient" is saliency's computation through the network's own backward pass
(``Network.input_gradient``), for comparison with explain's; both use the same float32
matrix-product convolution backward (``backward.conv2d_input``).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import designer  # noqa: E402
from designer.engine import explain  # noqa: E402

TEMPLATES = ROOT / "resources" / "templates"


def resnet18():
    """ResNet-18 with seeded weights and BatchNorm running statistics made non-trivial, and an
    image, both fixed."""
    design = designer.load_design(TEMPLATES / "resnet18.json")
    net = designer.build(design, seed=0)
    rng = np.random.default_rng(0)
    weights = dict(net.weights)
    for key in weights:
        if key.endswith("running_var"):
            weights[key] = rng.uniform(0.5, 2.0, weights[key].shape).astype(np.float32)
        elif key.endswith("running_mean"):
            weights[key] = rng.normal(0, 0.1, weights[key].shape).astype(np.float32)
    net = designer.build(design, weights=weights)
    x = rng.random((1,) + net.input_shape, dtype=np.float32)
    return net, x


def timed(runs: dict, repeat: int) -> dict:
    """{name: (best, median)} of the callables in ``runs``, interleaved, after a warm-up each."""
    for fn in runs.values():
        fn()
    times: dict = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def torch_child(path: str) -> None:
    """In the child: saliency and Grad-CAM with torch autograd, in float64 and float32; saves
    them next to ``path``."""
    import torch
    import torch.nn.functional as F
    data = np.load(path)
    design = designer.load_design(TEMPLATES / str(data["template"]))
    net = designer.build(design)
    c, cam_node = int(data["c"]), str(data["cam_node"])
    results = {}
    for dtype in (torch.float64, torch.float32):
        w = {k[2:]: torch.from_numpy(data[k]).to(dtype) for k in data.files if k[:2] == "w:"}
        x = torch.from_numpy(data["x"]).to(dtype).requires_grad_(True)
        acts = {}
        for node_id in net.order:
            info = net.infos[node_id]
            v, t = info.values, info.type
            ins = [acts[s] for s in design.sources(node_id)]
            a = ins[0] if ins else None
            if t == "Input":
                y = x
            elif t == "Conv2d":
                y = F.conv2d(a, w[f"{node_id}.weight"], w.get(f"{node_id}.bias"), v["stride"],
                             v["padding"], v["dilation"], v["groups"])
            elif t == "BatchNorm2d":
                y = F.batch_norm(a, w[f"{node_id}.running_mean"], w[f"{node_id}.running_var"],
                                 w.get(f"{node_id}.weight"), w.get(f"{node_id}.bias"), False,
                                 0.0, v["eps"])
            elif t == "ReLU":
                y = F.relu(a)
            elif t == "MaxPool2d":
                y = F.max_pool2d(a, v["kernel_size"], v["stride"], v["padding"], v["dilation"],
                                 v["ceil_mode"])
            elif t == "AdaptiveAvgPool2d":
                y = F.adaptive_avg_pool2d(a, v["output_size"])
            elif t == "Flatten":
                y = a.flatten(1)
            elif t == "Linear":
                y = F.linear(a, w[f"{node_id}.weight"], w.get(f"{node_id}.bias"))
            elif t == "Add":
                y = sum(ins)
            elif t == "Concat":
                y = torch.cat(ins, 1)
            elif t == "Softmax":
                y = a  # its input is the logits
            else:
                raise SystemExit(f"no torch op for {t} in this check")
            if node_id == cam_node:
                y.retain_grad()
            acts[node_id] = y
        acts[net.analysis.output][0, c].backward()
        a = acts[cam_node]
        alpha = a.grad[0].mean(dim=(1, 2))
        cam = torch.relu((alpha[:, None, None] * a[0]).sum(0))
        bits = 64 if dtype == torch.float64 else 32
        results[f"saliency{bits}"] = x.grad[0].double().numpy()
        results[f"cam{bits}"] = cam.detach().double().numpy()
    np.savez(path + ".torch.npz", **results)
    print(json.dumps({"version": torch.__version__}))


def compare_with_torch(python: str, net, x, c: int, cam_node: str) -> str:
    sal = explain.saliency(net, x, c)
    cam = explain.grad_cam(net, x, cam_node, c)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(pathlib.Path(tmp) / "case.npz")
        np.savez(path, x=x, c=c, cam_node=cam_node, template="resnet18.json",
                 **{f"w:{k}": v for k, v in net.weights.items()})
        out = subprocess.run([python, __file__, "--child", path], capture_output=True,
                             text=True, check=True).stdout
        ref = np.load(path + ".torch.npz")
        version = json.loads(out.strip().splitlines()[-1])["version"]
    lines = [f"PyTorch {version} autograd, class {c}: difference from float64 autograd relative "
             f"to its largest value, largest and at the 99.9th percentile (this engine; "
             f"PyTorch's own float32)"]
    for name, got, key in [("saliency", sal, "saliency"),
                           (f"Grad-CAM at {cam_node}", cam, "cam")]:
        expected = ref[key + "64"]
        scale = np.abs(expected).max()
        ours, theirs = np.abs(got - expected) / scale, np.abs(ref[key + "32"] - expected) / scale
        lines.append(f"  {name:32s} {ours.max():.1e}, {np.quantile(ours, 0.999):.1e}; "
                     f"{theirs.max():.1e}, {np.quantile(theirs, 0.999):.1e}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--occlusion", action="store_true")
    parser.add_argument("--torch", metavar="PYTHON", help="an interpreter with torch installed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch_child(args.child)
        return

    net, x = resnet18()
    c = int(net.predict(x)[0].argmax())
    last = explain.default_cam_layer(net)
    runs = {
        "forward (for scale)": lambda: net.forward(x),
        "saliency": lambda: explain.saliency(net, x, c),
        "the same by input_gradient": lambda: net.input_gradient(x, "fc", (c,)),
        f"Grad-CAM at {last} (default)": lambda: explain.grad_cam(net, x, None, c),
        "Grad-CAM at layer2.0.relu_out": lambda: explain.grad_cam(net, x, "layer2.0.relu_out", c),
    }
    sal, same = explain.saliency(net, x, c), net.input_gradient(x, "fc", (c,))
    assert np.abs(sal - same).max() <= 1e-5 * np.abs(same).max()
    print(f"ResNet-18, 3×224×224, class {c}, best / median of {args.repeat}:", flush=True)
    for name, (best, median) in timed(runs, args.repeat).items():
        target = " (target < 2 s)" if name.startswith(("saliency", "Grad-CAM at " + last)) else ""
        print(f"  {name:38s} {best:6.2f} s / {median:6.2f} s{target}", flush=True)

    convnet = designer.build(designer.load_design(TEMPLATES / "cifar10-convnet.json"),
                             weights="trained")
    small = np.random.default_rng(1).random((1,) + convnet.input_shape, dtype=np.float32)
    (patch, stride, rows, cols) = explain.occlusion_geometry(convnet)
    images = len(rows) * len(cols) + 1
    best, median = timed({"o": lambda: explain.occlusion(convnet, small, 3)}, args.repeat)["o"]
    print(f"occlusion, CIFAR-10 ConvNet 3×32×32, patch {patch}, stride {stride}: {images} "
          f"images in batches of {explain.occlusion_batch(convnet, images)}: best {best:.2f} s, "
          f"median {median:.2f} s", flush=True)
    coarse = 56
    images = (224 // coarse) ** 2 + 1
    start = time.perf_counter()
    explain.occlusion(net, x, c, patch=coarse, stride=coarse)
    took = time.perf_counter() - start
    print(f"occlusion, ResNet-18, {coarse}×{coarse} patches: {images} images in batches of "
          f"{explain.occlusion_batch(net, images)}: {took:.1f} s ({took / images * 1e3:.0f} ms "
          f"an image)", flush=True)
    if args.occlusion:
        (patch, stride, rows, cols) = explain.occlusion_geometry(net)
        images = len(rows) * len(cols) + 1
        start = time.perf_counter()
        explain.occlusion(net, x, c)
        print(f"occlusion, ResNet-18, default patch {patch}, stride {stride}: {images} images: "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    if args.torch:
        print(compare_with_torch(args.torch, net, x, c, last))
        print(compare_with_torch(args.torch, net, x, (c + 1) % 1000, "layer2.0.relu_out"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
