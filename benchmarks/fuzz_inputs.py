"""Fuzz the command line with hostile input (issue 11): mutated design files through ``summary``
and crafted .npy arrays, .npz weights, images and designs through ``run``. Reports tracebacks,
runs over the time limit, exit statuses and this process's peak memory; exits 1 if any case
printed a traceback, hung, or returned an exit status outside the contract's.

    .venv/bin/python benchmarks/fuzz_inputs.py [--designs 5000] [--runs 400] [--seed 0]

Every case is remade from (seed, index): a failure's arguments are printed with both.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzzing import Tally, design_case, peak_rss_bytes, run_case, run_cli  # noqa: E402

LIMIT_SECONDS = 2.0
KEEP = {"target.json", "ok.npy", "ok.png"}  # shared by every run case


def fuzz_designs(count: int, seed: int, folder: Path, log=print) -> Tally:
    tally = Tally()
    for i in range(count):
        rng = random.Random(f"design-{seed}-{i}")
        path = folder / f"design{i % 50}.json"
        path.write_bytes(design_case(rng))
        argv = ["summary", str(path)] + (["--json"] if rng.random() < 0.5 else [])
        outcome = run_cli(argv)
        outcome.argv = [f"(seed {seed}, design {i})", *argv]
        tally.add(outcome, LIMIT_SECONDS)
        if (i + 1) % 1000 == 0:
            log(f"  {i + 1} designs, longest {tally.longest:.2f} s, "
                f"peak {peak_rss_bytes() / 2**20:,.0f} MiB")
    return tally


def fuzz_runs(count: int, seed: int, folder: Path) -> Tally:
    tally = Tally()
    for i in range(count):
        rng = random.Random(f"run-{seed}-{i}")
        argv = run_case(rng, folder, i)
        outcome = run_cli(argv)
        outcome.argv = [f"(seed {seed}, run {i})", *argv]
        tally.add(outcome, LIMIT_SECONDS)
        for path in folder.iterdir():  # inputs are remade from the seed: keep the disk small
            if path.is_file() and path.name not in KEEP:
                path.unlink()
    return tally


def report(name: str, tally: Tally) -> None:
    statuses = ", ".join(f"exit {k}: {v}" for k, v in sorted(tally.by_status.items(),
                                                            key=lambda kv: str(kv[0])))
    print(f"{name}: {tally.cases} cases ({statuses}); {len(tally.failures)} failures, "
          f"{len(tally.slow)} over {LIMIT_SECONDS:g} s, longest {tally.longest:.2f} s")
    for outcome in tally.failures[:10]:
        why = ("hung" if outcome.overtime else outcome.escaped or
               f"exit {outcome.status}" if outcome.status not in (0, 1, 2) else "traceback")
        print(f"  FAIL {' '.join(outcome.argv)[:200]}\n       {why}: {outcome.stderr[-600:]!r}")
    for outcome in tally.slow[:10]:
        print(f"  SLOW {outcome.seconds:.2f} s: {' '.join(outcome.argv)[:200]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnn-fuzz-") as tmp:
        folder = Path(tmp)
        print(f"Fuzzing {args.designs} design files through `summary` ...", flush=True)
        designs = fuzz_designs(args.designs, args.seed, folder)
        print(f"Fuzzing {args.runs} crafted inputs, weights and designs through `run` ...",
              flush=True)
        runs = fuzz_runs(args.runs, args.seed, folder)
    print()
    report("summary", designs)
    report("run", runs)
    print(f"peak memory of this process: {peak_rss_bytes() / 2**20:,.0f} MiB; "
          f"{time.perf_counter() - started:.0f} s in all")
    bad = designs.failures + designs.slow + runs.failures + runs.slow
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
