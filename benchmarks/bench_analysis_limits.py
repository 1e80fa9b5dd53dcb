"""The analysis on very large and broken designs: `cnn-designer summary --json` on 100,000-node
designs (valid chains, cycles of every shape, chains cut off from the Input), timed and measured
as a separate process (target: under 2 s and 300 MB peak each).

    .venv/bin/python benchmarks/bench_analysis_limits.py [--nodes 100000] [--only ring,tail]
                                                         [--in-process]

Prints, per design: its file size, the wall time and peak resident memory of the CLI, the size of
the JSON it printed and its exit status; with ``--in-process`` also the time of
``designer.summarize`` alone (load + analysis + dict, no printing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = ROOT / ".venv" / "bin" / "cnn-designer"

INPUT = {"id": "input", "type": "Input", "params": {"channels": 3, "height": 32, "width": 32}}


def _file(nodes: list[dict], edges: list[list[str]], name: str) -> dict:
    return {"format": "cnn-designer", "version": 1, "name": name, "nodes": nodes, "edges": edges}


def _relus(prefix: str, count: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "type": "ReLU"} for i in range(count)]


def _path(ids: list[str]) -> list[list[str]]:
    return [[a, b] for a, b in zip(ids, ids[1:])]


def chain(n: int) -> dict:
    """A valid chain: Input, then convolutions and ReLUs in turn."""
    nodes = [INPUT]
    for i in range(n - 1):
        nodes.append({"id": f"c{i}", "type": "Conv2d",
                      "params": {"out_channels": 3, "kernel_size": 3, "padding": 1}}
                     if i % 2 == 0 else {"id": f"r{i}", "type": "ReLU"})
    return _file(nodes, _path([m["id"] for m in nodes]), "chain")


def ring(n: int) -> dict:
    """One big cycle fed from the Input: input → add → r0 → … → r(n−3) → add."""
    body = _relus("r", n - 2)
    ids = ["add"] + [m["id"] for m in body]
    return _file([INPUT, {"id": "add", "type": "Add"}] + body,
                 [["input", "add"]] + _path(ids) + [[ids[-1], "add"]], "ring")


def ring_and_tail(n: int) -> dict:
    """A cycle of n/2 nodes fed from the Input, and a chain of n/2 nodes hanging below it."""
    half = n // 2
    body = _relus("r", half - 2)
    ids = ["add"] + [m["id"] for m in body]
    tail = _relus("t", n - half)
    tail_ids = [m["id"] for m in tail]
    return _file([INPUT, {"id": "add", "type": "Add"}] + body + tail,
                 [["input", "add"]] + _path(ids) + [[ids[-1], "add"], [ids[-1], tail_ids[0]]]
                 + _path(tail_ids), "ring and tail")


def many_rings(n: int, size: int = 3) -> dict:
    """(n − 1)/size small cycles, each an Add fed from the Input and a loop of ReLUs."""
    nodes, edges = [INPUT], []
    for k in range((n - 1) // size):
        ids = [f"a{k}"] + [f"r{k}_{i}" for i in range(size - 1)]
        nodes += [{"id": ids[0], "type": "Add"}] + [{"id": x, "type": "ReLU"} for x in ids[1:]]
        edges += [["input", ids[0]]] + _path(ids) + [[ids[-1], ids[0]]]
    return _file(nodes, edges, "many rings")


def cut_chain(n: int) -> dict:
    """A chain that starts at a ReLU with no input: every node is cut off from the Input."""
    body = _relus("r", n - 1)
    return _file([INPUT] + body, _path([m["id"] for m in body]), "cut chain")


def two_rings_long_ids(n: int) -> dict:
    """A ring whose node ids are 1,000 characters long (messages must not repeat them n times)."""
    body = [{"id": f"{'x' * 990}{i:010d}", "type": "ReLU"} for i in range(n - 2)]
    ids = ["add"] + [m["id"] for m in body]
    return _file([INPUT, {"id": "add", "type": "Add"}] + body,
                 [["input", "add"]] + _path(ids) + [[ids[-1], "add"]], "long ids")


def many_inputs(n: int) -> dict:
    """n Input nodes (each gets the 'more than one Input' error)."""
    return _file([{**INPUT, "id": f"in{i}"} for i in range(n)], [], "many inputs")


DESIGNS = {"chain": chain, "ring": ring, "tail": ring_and_tail, "rings": many_rings,
           "cut": cut_chain, "inputs": many_inputs}
EXTRA = {"longids": two_rings_long_ids}  # fewer nodes: the file alone is 1 KB a node


#: ``--streamed``: what `summary --json` costs when it prints with core.summary.write_json (node
#: by node) instead of json.dumps(summarize(...), indent=2)
STREAMED = ("import sys\n"
            "from designer.core.analysis import Analysis\n"
            "from designer.core.summary import write_json\n"
            "from designer.io.design_file import load_design\n"
            "design = load_design(sys.argv[1])\n"
            "analysis = Analysis(design)\n"
            "write_json(design, sys.stdout, analysis)\n"
            "sys.exit(0 if analysis.valid else 1)\n")


def run_cli(path: Path, streamed: bool = False) -> tuple[float, float, int, int]:
    """Wall seconds, peak RSS in MB, stdout bytes and exit status of `summary --json path`."""
    script = ("import resource, subprocess, sys, time\n"
              "t0 = time.perf_counter()\n"
              "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
              "t = time.perf_counter() - t0\n"
              "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
              "print(t, rss, len(p.stdout), p.returncode, p.stderr.decode()[-300:].replace('\\n', ' '))\n")
    # a fresh process per measurement, so RUSAGE_CHILDREN's peak is this command's alone
    command = ([sys.executable, "-c", STREAMED, str(path)] if streamed
               else [str(CLI), "summary", "--json", str(path)])
    out = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split(" ", 4)
    if out[4].strip():
        print("   stderr:", out[4].strip())
    return float(out[0]), int(out[1]) / 1024, int(out[2]), int(out[3])


def in_process(path: Path) -> float:
    script = ("import sys, time\nimport designer\n"
              "t0 = time.perf_counter()\ndesigner.summarize(sys.argv[1])\n"
              "print(time.perf_counter() - t0)\n")
    return float(subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                                text=True, check=True, cwd=ROOT).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(
        [*DESIGNS, *EXTRA]))
    parser.add_argument("--in-process", action="store_true",
                        help="also time designer.summarize(path) alone")
    parser.add_argument("--streamed", action="store_true",
                        help="also run the summary printed by core.summary.write_json")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(DESIGNS) + list(EXTRA)
    header = (f"{'design':<12} {'nodes':>8} {'file MB':>8} {'wall s':>7} {'peak MB':>8} "
              f"{'JSON MB':>8} {'exit':>4}" + (f" {'summarize s':>11}" if args.in_process else "")
              + (f" {'streamed s':>10} {'peak MB':>8}" if args.streamed else ""))
    print(header)
    print("-" * len(header))
    worst_t = worst_m = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            make = DESIGNS.get(key) or EXTRA[key]
            n = args.nodes if key in DESIGNS else min(args.nodes, 20_000)
            data = make(n)
            path = Path(tmp) / f"{key}.json"
            path.write_text(json.dumps(data), encoding="utf-8")
            t, mb, out_bytes, rc = run_cli(path)
            worst_t, worst_m = max(worst_t, t), max(worst_m, mb)
            line = (f"{key:<12} {len(data['nodes']):>8,} {path.stat().st_size / 1e6:>8.1f} "
                    f"{t:>7.2f} {mb:>8.0f} {out_bytes / 1e6:>8.1f} {rc:>4}")
            if args.in_process:
                line += f" {in_process(path):>11.2f}"
            if args.streamed:
                t2, mb2, _, _ = run_cli(path, streamed=True)
                line += f" {t2:>10.2f} {mb2:>8.0f}"
            print(line, flush=True)
    print(f"\nworst: {worst_t:.2f} s, {worst_m:.0f} MB (target: under 2 s and 300 MB)")


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
