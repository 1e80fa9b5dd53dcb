"""Hostile input through the command line (issue 11): whatever a file holds, ``summary`` and
``run`` answer with a message and one of the contract's exit codes, never a traceback or a hang.

The default run tries a few hundred cases drawn by hypothesis; the full fuzz (thousands of
cases, benchmarks/fuzz_inputs.py) is marked slow.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing

#: a case that runs this long is hung (speed itself is measured by benchmarks/fuzz_inputs.py)
WATCHDOG_SECONDS = 20.0

def fast(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _check(outcome: fuzzing.Outcome) -> None:
    assert not outcome.overtime, f"hung: {outcome.argv}"
    assert outcome.escaped is None, f"{outcome.escaped} from {outcome.argv}"
    assert not outcome.traceback, f"traceback for {outcome.argv}: {outcome.stderr[-800:]} {outcome.warnings}"
    assert outcome.status in (0, 1, 2), outcome
    if outcome.status == 2:  # refused: the user is told why (by the command, or by argparse)
        lines = outcome.stderr.strip().splitlines()
        assert lines and (lines[0].startswith("cnn-designer: ")
                          or lines[-1].startswith("cnn-designer run: error: ")), outcome.stderr


@fast(150)
@given(rng=st.randoms(use_true_random=False), as_json=st.booleans())
def test_mutated_design_files_through_summary(tmp_path, rng, as_json):
    path = tmp_path / "design.json"
    path.write_bytes(fuzzing.design_case(rng))
    outcome = fuzzing.run_cli(["summary", str(path)] + (["--json"] if as_json else []),
                              WATCHDOG_SECONDS)
    _check(outcome)
    if outcome.status in (0, 1):
        assert outcome.stdout_bytes > 0


@fast(80)
@given(rng=st.randoms(use_true_random=False), index=st.integers(0, 10**6))
def test_crafted_inputs_weights_and_designs_through_run(tmp_path_factory, rng, index):
    folder = tmp_path_factory.mktemp("run")
    _check(fuzzing.run_cli(fuzzing.run_case(rng, folder, index), WATCHDOG_SECONDS))


@pytest.mark.parametrize("kind", ["designs", "runs"])
def test_the_generators_make_every_kind_of_case(tmp_path, kind):
    """The fuzz reaches every branch: each exit status of the contract comes up."""
    statuses = set()
    for i in range(40):
        rng = random.Random(f"{kind}-{i}")
        if kind == "designs":
            path = tmp_path / "d.json"
            path.write_bytes(fuzzing.design_case(rng))
            argv = ["summary", str(path)]
        else:
            argv = fuzzing.run_case(rng, tmp_path, i)
        statuses.add(fuzzing.run_cli(argv, WATCHDOG_SECONDS).status)
    assert {0, 1, 2} <= statuses


@pytest.mark.slow
def test_full_fuzz(tmp_path):
    """benchmarks/fuzz_inputs.py's whole run: 5,000 designs and 400 crafted run inputs."""
    designs = _bench().fuzz_designs(5000, 0, tmp_path, log=lambda *a: None)
    runs = _bench().fuzz_runs(400, 0, tmp_path)
    for tally in (designs, runs):
        assert tally.cases and not tally.failures, [
            (o.argv, o.escaped, o.stderr[-300:]) for o in tally.failures[:5]]


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_inputs.py"
    spec = importlib.util.spec_from_file_location("fuzz_inputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
