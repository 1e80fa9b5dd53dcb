"""Engine speed against PyTorch and onnxruntime on every row of the engine-speed issue.

    .venv/bin/python benchmarks/bench_engine_speed.py --torch /tmp/torchvenv13/bin/python
    .venv/bin/python benchmarks/bench_engine_speed.py --torch ... --quick       # fewer rounds, a subset
    .venv/bin/python benchmarks/bench_engine_speed.py --torch ... --only mobilenet
    .venv/bin/python benchmarks/bench_engine_speed.py --profile resnet18-b1   # per-node timers + cProfile

``--torch`` names a Python that has torch, onnxruntime and onnx installed (a scratch environment:
never a dependency of the project). Every case is written to a temporary folder as a design file,
a weights file (seeded weights; BatchNorm's statistics and affine drawn at random so that no layer
is the identity), an input, PyTorch code (``designer.io.pytorch``) and an ONNX model
(``designer.export``). Three child processes then load them: the engine (this Python), PyTorch
(2 threads, inference mode) and onnxruntime (2 intra-op threads, all graph optimizations). Rounds
are interleaved (each round asks every child in turn to time every case, with a pause between
children so that one's spinning thread pool doesn't slow the next) and the table shows the best
and the median per image over all rounds, with the ratios engine / PyTorch and engine /
onnxruntime of the best times. The machine is shared: best-of-N is the figure to compare.

The engine keeps the memory of freed arrays for its next pass (no page faults); PyTorch and
onnxruntime, as they come, hand large freed arrays back and fault them in again on the next pass
(with glibc) or not, depending on what the process allocated before: PyTorch's 7×7 depthwise
layer takes 80 ms one way and 23 ms the other. ``--reuse-memory`` gives their children glibc
settings that keep freed memory too, for a comparison that doesn't hang on that.

Rows: ResNet-18 224² at batch 1, 8, 32 (time per image); VGG-16's convolutional stack at 448²
(``--big``: also 896²); the Inception block template; MobileNet-V1 and V2 at 224² (built here as
designs: depthwise convolutions are Conv2d with groups = channels; ReLU6 where the catalog has it,
else ReLU); one 7×7 depthwise convolution, 64 channels, 512²; and ``input_gradient`` of one unit of
VGG-16's last convolution (224²) against PyTorch's autograd of the same unit. Each child checks
its output against the engine's (largest difference relative to the largest value).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
THREADS = 2

# --------------------------------------------------------------------------- designs (engine side)


def _catalog_has(layer: str) -> bool:
    from designer.core.catalog import LAYER_TYPES
    names = LAYER_TYPES if isinstance(LAYER_TYPES, (dict, set, frozenset)) else [
        getattr(t, "name", t) for t in LAYER_TYPES]
    return layer in names


class _Builder:
    """A chain-of-layers design built node by node (JSON dict, contract §2)."""

    def __init__(self, name: str, c: int, h: int, w: int) -> None:
        self.nodes = [{"id": "input", "type": "Input",
                       "params": {"channels": c, "height": h, "width": w}}]
        self.edges: list[list[str]] = []
        self.last = "input"
        self.name = name
        self.act = "ReLU6" if _catalog_has("ReLU6") else "ReLU"

    def add(self, node_id: str, t: str, params: dict | None = None,
            sources: list[str] | None = None) -> str:
        self.nodes.append({"id": node_id, "type": t, "params": params or {}})
        for s in sources or [self.last]:
            self.edges.append([s, node_id])
        self.last = node_id
        return node_id

    def conv_bn(self, name: str, out: int, k: int, stride: int = 1, groups: int = 1,
                act: bool = True) -> str:
        self.add(f"{name}.conv", "Conv2d", {"out_channels": out, "kernel_size": k,
                                            "stride": stride, "padding": k // 2,
                                            "groups": groups, "bias": False})
        self.add(f"{name}.bn", "BatchNorm2d")
        return self.add(f"{name}.act", self.act) if act else self.last

    def head(self, classes: int = 1000) -> None:
        self.add("pool", "AdaptiveAvgPool2d", {"output_size": 1})
        self.add("flatten", "Flatten")
        self.add("fc", "Linear", {"out_features": classes})

    def design(self) -> dict:
        return {"format": "cnn-designer", "version": 1, "name": self.name,
                "nodes": self.nodes, "edges": self.edges}


def mobilenet_v1(size: int = 224) -> dict:
    b = _Builder("MobileNet-V1", 3, size, size)
    b.conv_bn("stem", 32, 3, 2)
    channels = 32
    for i, (out, stride) in enumerate([(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
                                       (1024, 2), (1024, 1)]):
        b.conv_bn(f"b{i}.dw", channels, 3, stride, groups=channels)
        b.conv_bn(f"b{i}.pw", out, 1)
        channels = out
    b.head()
    return b.design()


def mobilenet_v2(size: int = 224) -> dict:
    b = _Builder("MobileNet-V2", 3, size, size)
    b.conv_bn("stem", 32, 3, 2)
    channels, block = 32, 0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            start = b.last
            hidden = channels * t
            if t != 1:
                b.conv_bn(f"b{block}.expand", hidden, 1)
            b.conv_bn(f"b{block}.dw", hidden, 3, stride, groups=hidden)
            end = b.conv_bn(f"b{block}.project", c, 1, act=False)
            if stride == 1 and channels == c:
                b.add(f"b{block}.add", "Add", sources=[end, start])
            channels = c
            block += 1
    b.conv_bn("last", 1280, 1)
    b.head()
    return b.design()


def depthwise7(size: int = 512, channels: int = 64) -> dict:
    b = _Builder("Depthwise 7x7", channels, size, size)
    b.add("dw", "Conv2d", {"out_channels": channels, "kernel_size": 7, "padding": 3,
                           "groups": channels})
    return b.design()


def _template(name: str) -> dict:
    from designer.io.templates import find_template
    from designer.io.design_file import design_to_json
    return json.loads(design_to_json(find_template(name).load()))


def _cut(design: dict, last: str, size: int | None = None) -> dict:
    """``design`` up to node ``last`` (its ancestors in file order), the input resized."""
    keep: set[str] = {last}
    grew = True
    while grew:
        grew = False
        for s, t in design["edges"]:
            if t in keep and s not in keep:
                keep.add(s)
                grew = True
    nodes = [json.loads(json.dumps(n)) for n in design["nodes"] if n["id"] in keep]
    if size is not None:
        nodes[0]["params"].update(height=size, width=size)
    return {**design, "nodes": nodes,
            "edges": [e for e in design["edges"] if e[0] in keep and e[1] in keep],
            "name": f"{design['name']} to {last}"}


def _resized(design: dict, size: int) -> dict:
    nodes = [json.loads(json.dumps(n)) for n in design["nodes"]]
    for n in nodes:
        if n["type"] == "Input":
            n["params"].update(height=size, width=size)
    return {**design, "nodes": nodes}


VGG_LAST_POOL = "features.30"
VGG_LAST_CONV = "features.28"


def cases(big: bool) -> list[dict]:
    """Every row: name, design (JSON dict), batch, kind ("forward" or "gradient"), unit."""
    resnet = _template("resnet18")
    vgg = _template("vgg16")
    rows = [dict(name=f"resnet18-b{b}", title=f"ResNet-18 224², batch {b}", design=resnet,
                 batch=b) for b in (1, 8, 32)]
    rows.append(dict(name="vgg16-448", title="VGG-16 convs 448²",
                     design=_cut(vgg, VGG_LAST_POOL, 448), batch=1))
    if big:
        rows.append(dict(name="vgg16-896", title="VGG-16 convs 896²",
                         design=_cut(vgg, VGG_LAST_POOL, 896), batch=1))
    rows += [dict(name="inception", title="Inception block", design=_template("inception-block"),
                  batch=1),
             dict(name="mobilenet-v1", title="MobileNet-V1 224²", design=mobilenet_v1(), batch=1),
             dict(name="mobilenet-v2", title="MobileNet-V2 224²", design=mobilenet_v2(), batch=1),
             dict(name="depthwise7", title="7×7 depthwise, 64 ch, 512²", design=depthwise7(),
                  batch=1),
             dict(name="vgg16-grad", title="input_gradient, VGG-16 last conv", batch=1,
                  design=_cut(vgg, VGG_LAST_CONV), kind="gradient", unit=[7, 7])]
    for row in rows:
        row.setdefault("kind", "forward")
    return rows


def prepare(row: dict, folder: Path) -> dict:
    """Write the case's files; returns the row with their paths. A design with ReLU6 that the
    engine or an export can't take yet is measured with ReLU instead (said so)."""
    try:
        return _prepare(row, folder)
    except (ValueError, AssertionError, KeyError) as exc:
        if not any(n["type"] == "ReLU6" for n in row["design"]["nodes"]):
            raise
        print(f"  {row['title']}: ReLU instead of ReLU6 ({exc})", flush=True)
        nodes = [dict(n, type="ReLU") if n["type"] == "ReLU6" else n
                 for n in row["design"]["nodes"]]
        return _prepare({**row, "design": {**row["design"], "nodes": nodes}}, folder)


def _prepare(row: dict, folder: Path) -> dict:
    import numpy as np

    import designer
    from designer.engine.network import build
    from designer.engine.weights import save_weights_file
    from designer.io.design_file import load_design

    design = load_design(row["design"])
    net = build(design, None, 0)
    weights = dict(net.weights)
    if any(n["type"] == "ReLU6" for n in row["design"]["nodes"]):  # can the engine run it?
        c, h, w = (row["design"]["nodes"][0]["params"][k] for k in ("channels", "height", "width"))
        net.forward(np.zeros((1, c, h, w), np.float32))
    rng = np.random.default_rng(1)
    for key, array in weights.items():  # BatchNorm: no identity (as check_pytorch_export)
        if key.endswith(("running_var", ".weight")) and array.ndim == 1:
            weights[key] = rng.uniform(0.5, 1.5, array.shape).astype(np.float32)
        elif key.endswith(("running_mean", ".bias")) and array.ndim == 1:
            weights[key] = rng.uniform(-0.5, 0.5, array.shape).astype(np.float32)
    base = folder / row["name"]
    paths = {k: str(base) + ext for k, ext in
             (("design", ".json"), ("weights", ".npz"), ("input", ".npy"), ("onnx", ".onnx"),
              ("code", ".py"), ("reference", ".ref.npy"))}
    Path(paths["design"]).write_text(json.dumps(row["design"]), encoding="utf-8")
    save_weights_file(weights, paths["weights"])
    c, h, w = (row["design"]["nodes"][0]["params"][k] for k in ("channels", "height", "width"))
    x = np.random.default_rng(2).standard_normal((row["batch"], c, h, w)).astype(np.float32)
    np.save(paths["input"], x)
    designer.export(design, paths["code"])
    if row["kind"] == "forward":
        designer.export(design, paths["onnx"], weights=paths["weights"])
    else:
        paths["onnx"] = None
    return {**{k: v for k, v in row.items() if k != "design"}, **paths}


# --------------------------------------------------------------------------- children


def _engine_runner(row: dict):
    import numpy as np

    from designer.engine.network import build
    from designer.io.design_file import load_design

    design = load_design(json.loads(Path(row["design"]).read_text(encoding="utf-8")))
    net = build(design, row["weights"])
    x = np.load(row["input"])
    out = net.analysis.output
    if row["kind"] == "gradient":
        unit = tuple(row["unit"])
        return lambda: net.input_gradient(x, out, unit)
    return lambda: net.forward(x)[out]


def _torch_runner(row: dict):
    import importlib.util

    import numpy as np
    import torch
    torch.set_num_threads(THREADS)
    spec = importlib.util.spec_from_file_location(f"m_{row['name'].replace('-', '_')}",
                                                  row["code"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(row["weights"]).eval()
    x = torch.from_numpy(np.load(row["input"]))
    if row["kind"] == "gradient":
        r, c = row["unit"]

        def grad():
            xg = x[:1].clone().requires_grad_(True)
            model(xg)[0, :, r, c].sum().backward()
            return xg.grad[0].numpy()
        return grad

    def run():
        with torch.inference_mode():
            return model(x).numpy()
    return run


def _ort_runner(row: dict):
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(row["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.load(row["input"])
    return lambda: session.run(None, {name: x})[0]


def child(kind: str) -> None:
    """Serve requests on stdin, one JSON line each: {"load": row} answers the warm-up time and
    the largest relative difference from the reference; {"time": name, "reps": n} answers n
    times in seconds."""
    import numpy as np
    sys.path.insert(0, str(ROOT))
    make = {"engine": _engine_runner, "torch": _torch_runner, "ort": _ort_runner}[kind]
    runners = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "load" in request:
            row = request["load"]
            if kind == "ort" and not row.get("onnx"):
                print(json.dumps({"skip": True}), flush=True)
                continue
            fn = runners[row["name"]] = make(row)
            t0 = time.perf_counter()
            out = np.asarray(fn(), dtype=np.float64)
            warm = time.perf_counter() - t0
            if kind == "engine":
                np.save(row["reference"], out)
                error = 0.0
            else:
                ref = np.load(row["reference"])
                error = float(np.abs(out.reshape(ref.shape) - ref).max()
                              / max(np.abs(ref).max(), 1e-30))
            print(json.dumps({"warm": warm, "error": error}), flush=True)
        elif "time" in request:
            fn = runners[request["time"]]
            times = []
            for _ in range(request["reps"]):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            print(json.dumps({"times": times}), flush=True)
        elif "drop" in request:
            runners.pop(request["drop"], None)
            import gc
            gc.collect()
            print(json.dumps({}), flush=True)


#: ``--reuse-memory``: glibc's settings for the PyTorch and onnxruntime children that keep the
#: memory of freed arrays for the next pass, as the engine does for itself
#: (``designer.engine.memory.keep_freed_memory``), up to arrays of 1 GiB
REUSE_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}


class Child:
    def __init__(self, kind: str, python: str, reuse_memory: bool = False) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
                   PYTHONPATH=str(ROOT))
        if reuse_memory and kind != "engine":
            env.update(REUSE_MEMORY)
        self.kind = kind
        self.process = subprocess.Popen([python, str(HERE), "--child", kind],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=env, cwd=str(ROOT))

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} child stopped (see its error above)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# --------------------------------------------------------------------------- parent


def measure(rows: list[dict], torch_python: str | None, rounds: int, budget: float,
            pause: float, reuse_memory: bool = False) -> dict:
    kinds = ["engine"] + (["torch", "ort"] if torch_python else [])
    children = {k: Child(k, sys.executable if k == "engine" else torch_python, reuse_memory)
                for k in kinds}
    results: dict = {}
    try:
        for row in rows:
            info = {}
            for k in kinds:  # the engine first: it writes the reference
                answer = children[k].ask({"load": row})
                if not answer.get("skip"):
                    info[k] = answer
            results[row["name"]] = {"row": row, "info": info, "times": {k: [] for k in info}}
            print(f"  {row['title']}: warm-up " + ", ".join(
                f"{k} {a['warm'] * 1000:.0f} ms" for k, a in info.items()), flush=True)
        for r in range(rounds):
            for row in rows:
                order = list(results[row["name"]]["info"])
                order = order[r % len(order):] + order[:r % len(order)]  # rotate who goes first
                for k in order:
                    time.sleep(pause)
                    n = max(1, min(20, round(budget / max(results[row["name"]]["info"][k]["warm"],
                                                          1e-4))))
                    answer = children[k].ask({"time": row["name"], "reps": n})
                    results[row["name"]]["times"][k] += answer["times"]
            print(f"  round {r + 1}/{rounds} done", flush=True)
    finally:
        for c in children.values():
            c.close()
    return results


def table(results: dict) -> str:
    lines = [f"{'case':<36} {'engine best/med ms':>19} {'PyTorch best/med':>17} "
             f"{'onnxrt best/med':>16} {'eng/PT':>7} {'eng/ORT':>8} {'err PT':>8} {'err ORT':>8}"]
    for name, res in results.items():
        row = res["row"]
        per = row["batch"]
        cells, best = [], {}
        for k in ("engine", "torch", "ort"):
            t = res["times"].get(k)
            if t:
                best[k] = min(t) / per
                cells.append(f"{best[k] * 1000:8.1f}/{statistics.median(t) / per * 1000:<8.1f}")
            else:
                cells.append("—")
        ratio = lambda k: f"{best['engine'] / best[k]:.2f}×" if k in best else "—"  # noqa: E731
        err = lambda k: (f"{res['info'][k]['error']:.1e}" if k in res["info"] else "—")  # noqa: E731
        title = row["title"] + (" (per image)" if per > 1 else "")
        lines.append(f"{title:<36} {cells[0]:>19} {cells[1]:>17} {cells[2]:>16} "
                     f"{ratio('torch'):>7} {ratio('ort'):>8} {err('torch'):>8} {err('ort'):>8}")
    return "\n".join(lines)


def profile(rows: list[dict], folder: Path, top: int) -> None:
    """Per-node timers (by layer type and the slowest nodes) and cProfile of the engine."""
    import cProfile
    import pstats

    from designer.engine import network
    sys.path.insert(0, str(ROOT))
    for row in rows:
        prepared = prepare(row, folder)
        fn = _engine_runner(prepared)
        fn()
        timers: dict[str, float] = {}
        original = network.Network._run

        def timed(self, node_id, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(self, node_id, *args, **kwargs)
            finally:
                timers[node_id] = timers.get(node_id, 0.0) + time.perf_counter() - t0
        network.Network._run = timed
        try:
            runs = 3
            t0 = time.perf_counter()
            for _ in range(runs):
                fn()
            total = (time.perf_counter() - t0) / runs
        finally:
            network.Network._run = original
        design = json.loads(Path(prepared["design"]).read_text(encoding="utf-8"))
        types = {n["id"]: n["type"] for n in design["nodes"]}
        by_type: dict[str, float] = {}
        for node_id, s in timers.items():
            by_type[types[node_id]] = by_type.get(types[node_id], 0.0) + s / runs
        print(f"\n{row['title']}: {total * 1000:.1f} ms a pass (timers: "
              f"{sum(timers.values()) / runs * 1000:.1f} ms in nodes)")
        for t, s in sorted(by_type.items(), key=lambda kv: -kv[1]):
            print(f"  {t:<20} {s * 1000:8.1f} ms  {s / total:6.1%}")
        print("  slowest nodes:")
        for node_id, s in sorted(timers.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {node_id:<28} {types[node_id]:<18} {s / runs * 1000:8.1f} ms")
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", help="a Python with torch, onnxruntime and onnx")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.6,
                        help="seconds of timed runs per child, case and round (default 0.6)")
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds of shorter timings (a quick look, noisier)")
    parser.add_argument("--big", action="store_true", help="also VGG-16 convs at 896²")
    parser.add_argument("--only", default="", help="comma-separated substrings of case names")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds between two children's timings (thread pools wind down)")
    parser.add_argument("--profile", metavar="CASES", help="profile the engine on these cases")
    parser.add_argument("--reuse-memory", action="store_true",
                        help="PyTorch and onnxruntime keep freed memory for the next pass, as "
                             "the engine does (no page faults on their large outputs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    sys.path.insert(0, str(ROOT))
    rows = cases(args.big)
    wanted = args.profile if args.profile is not None else args.only
    if wanted:
        keys = [w.strip() for w in wanted.split(",") if w.strip()]
        rows = [r for r in rows if any(k in r["name"] for k in keys)]
    if args.quick:
        args.rounds, args.budget, args.pause = min(args.rounds, 3), min(args.budget, 0.3), 0.15
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile is not None:
            profile(rows, Path(tmp), 15)
            return 0
        print(f"preparing {len(rows)} cases …", flush=True)
        prepared = [prepare(r, Path(tmp)) for r in rows]
        if not args.torch:
            print("no --torch Python given: the engine alone")
        results = measure(prepared, args.torch, args.rounds, args.budget, args.pause,
                          args.reuse_memory)
    import numpy as np
    print(f"\nNumPy {np.__version__}, {os.cpu_count()} cores, {THREADS} threads for PyTorch and "
          f"onnxruntime; {args.rounds} interleaved rounds; ms per image (best/median over all "
          f"rounds); ratios of the best times; err = max |other − engine| / max |engine|"
          + ("; PyTorch and onnxruntime keep freed memory (--reuse-memory)"
             if args.reuse_memory else ""))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
