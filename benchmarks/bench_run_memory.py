"""Peak memory of `cnn-designer run` against the network's own estimate (issue 11: VGG-16 on a
3×2048×2048 input must peak within 1.25× of ``net.estimate_bytes``).

    .venv/bin/python benchmarks/bench_run_memory.py [--size 2048] [--image PATH] [--trace]

Makes a copy of the VGG-16 template whose Input is size × size, runs `cnn-designer run` on it in a
fresh child process (results in a temporary folder, removed afterwards), and prints the estimate,
the child's peak resident memory (its own rusage, from wait4; the same figure getrusage's
RUSAGE_CHILDREN gives for a first child), the baseline of a child that only starts the command
line (Python, NumPy and Qt loaded), and the time. With --trace, the child's resident memory is
sampled every 0.1 s and printed as a timeline, to show where the memory goes.

Needs about as much free memory as the estimate (about 9.6 GiB at 2048×2048); on 2 cores the
2048×2048 run takes a few minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import designer  # noqa: E402
from designer.io.templates import find_template  # noqa: E402

MIB = 2**20


def vgg16_at(size: int) -> dict:
    data = json.loads(find_template("vgg16").path.read_text(encoding="utf-8"))
    for node in data["nodes"]:
        if node["type"] == "Input":
            node["params"].update(height=size, width=size)
    data["name"] = f"VGG-16 at {size}×{size}"
    return data


def rss_of(pid: int) -> int | None:
    """Resident memory of a running process, in bytes (Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def run_child(args: list[str], trace: bool) -> tuple[int, int, float, str, str, list]:
    """(exit status, peak RSS in bytes, seconds, stdout, stderr, [(t, rss)] samples)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONIOENCODING="utf-8")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "designer", *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             encoding="utf-8")
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = rss_of(child.pid)
            if rss is not None:
                samples.append((time.perf_counter() - started, rss))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    if trace:
        sampler.start()
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [threading.Thread(target=lambda: out_chunks.append(child.stdout.read())),
               threading.Thread(target=lambda: err_chunks.append(child.stderr.read()))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    for reader in readers:
        reader.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    return (child.returncode, usage.ru_maxrss * 1024, seconds, "".join(out_chunks),
            "".join(err_chunks), samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="input height and width")
    parser.add_argument("--image", default=str(ROOT / "resources" / "samples" / "scene.png"),
                        help="the image to run on (resized to the input)")
    parser.add_argument("--trace", action="store_true", help="print a memory timeline")
    args = parser.parse_args()

    data = vgg16_at(args.size)
    net = designer.build(designer.load_design(data))
    estimate = net.estimate_bytes(1)
    with tempfile.TemporaryDirectory(prefix="bench-run-memory-") as folder:
        design = Path(folder) / "vgg16.json"
        design.write_text(json.dumps(data), encoding="utf-8")
        out = Path(folder) / "results"
        status, peak, seconds, stdout, stderr, samples = run_child(
            ["run", str(design), "--input", args.image, "--out", str(out)], args.trace)
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        written = sum(p.stat().st_size for p in out.glob("*")) if out.exists() else 0
        _, base, base_seconds, _, _, _ = run_child(["templates"], False)

    print(f"{data['name']}, batch 1, input {Path(args.image).name}")
    print(f"  estimate (net.estimate_bytes(1)):     {estimate / MIB:10,.0f} MiB")
    print(f"  peak RSS of `cnn-designer run`:       {peak / MIB:10,.0f} MiB   "
          f"({peak / estimate:.2f}× the estimate; target ≤ 1.25×)")
    print(f"  (getrusage RUSAGE_CHILDREN, same child: {children_peak / MIB:,.0f} MiB)")
    print(f"  baseline (`cnn-designer templates`):  {base / MIB:10,.0f} MiB   "
          f"({base_seconds:.1f} s)")
    print(f"  time: {seconds:.1f} s in all; results written: {written / MIB:,.0f} MiB")
    print(f"  exit status {status}")
    for line in (stdout + stderr).strip().splitlines():
        print(f"    | {line}")
    if args.trace and samples:
        print("  resident memory over time (MiB):")
        step = max(1, len(samples) // 60)
        for t, rss in samples[::step]:
            print(f"    {t:7.1f} s {rss / MIB:9,.0f} {'#' * int(60 * rss / max(peak, 1))}")
    return 0 if status == 0 and peak <= 1.25 * estimate else 1


if __name__ == "__main__":
    sys.exit(main())
