"""Broken designs of any size are analysed in linear time with messages of bounded size: one
message per cycle, short pointers on the cycle's other nodes, cut-off chains traced once, other
nodes' ids quoted short. (Time bounds are generous guards against quadratic blow-ups; the
results themselves are asserted.)"""
from __future__ import annotations

import gc
import io
import json
import random
import time

import pytest

from designer.core.analysis import PAUSE_COLLECTOR_FROM, Analysis
from designer.core.design import Design
from designer.core.problems import ID_SHOWN
from designer.core.summary import format_table, summarize, write_json
from designer.io.templates import list_templates
from tests.helpers import graph

INPUT = ("input", "Input", {"channels": 3, "height": 8, "width": 8})


def ring(n: int, tail: int = 0) -> Design:
    """input → add → r0 → … → r(n−3) → add: one cycle of n − 1 nodes fed from the Input; with
    ``tail``, a chain t0 → t1 → … of that many nodes below r(n−3)."""
    body = [f"r{i}" for i in range(n - 2)]
    ids = ["add"] + body
    below = [f"t{i}" for i in range(tail)]
    return graph([INPUT, ("add", "Add", {})] + [(b, "ReLU", {}) for b in body + below],
                 [("input", "add")] + list(zip(ids, ids[1:])) + [(ids[-1], "add")]
                 + ([(ids[-1], below[0])] + list(zip(below, below[1:])) if tail else []))


def analysed(design: Design) -> Analysis:
    a = Analysis(design)
    a.refresh()
    return a


def messages(design: Design) -> list[str]:
    s = summarize(design)
    return [m for node in s["nodes"] for m in node["errors"] + node["warnings"]]


def timed(fn, limit: float = 2.0):
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    assert seconds < limit, f"{seconds:.1f} s"
    return result


def test_a_long_cycle_gets_one_message_on_its_first_node():
    d = ring(3000)
    a = Analysis(d)
    [first] = a.info("add").errors
    assert first.code == "cycle"
    assert first.text.startswith("is part of a cycle of 2,999 layers "
                                 "(add → r0 → r1 → r2 → … → r2997 → add): data must flow one way")
    for n in ("r0", "r1500", "r2997"):
        [e] = a.info(n).errors
        assert (e.code, e.text) == ("cycle", "is on the cycle reported at add: data must flow one "
                                             "way; remove one of its connections")
    assert not a.valid
    # bounded messages: the summary grows linearly (before: every node spelled out the cycle,
    # 3,000 × 3,000 names)
    text = json.dumps(summarize(d))
    assert len(text) < 300 * len(d)
    assert max(len(m) for m in messages(d)) < 250


def test_the_cycle_message_goes_to_the_first_node_in_file_order():
    nodes = [INPUT, ("c", "ReLU", {}), ("a", "ReLU", {}), ("m", "Add", {}), ("b", "ReLU", {})]
    d = graph(nodes, [("input", "m"), ("m", "a"), ("a", "b"), ("b", "c"), ("c", "m")])
    a = Analysis(d)
    assert "cycle of 4 layers (c → m → a → b → c)" in a.info("c").errors[0].text
    for n in ("a", "m", "b"):
        assert "reported at c" in a.info(n).errors[0].text


def test_cycles_sharing_nodes_are_one_message_with_the_count():
    # m → a → m and m → b → c → m: one knot of four nodes, shortest cycle through m shown
    nodes = [INPUT, ("m", "Add", {}), ("a", "ReLU", {}), ("b", "ReLU", {}), ("c", "ReLU", {}),
             ("x", "Add", {})]
    d = graph(nodes, [("input", "x"), ("x", "m"), ("a", "m"), ("m", "a"), ("m", "b"), ("b", "c"),
                      ("c", "x")])
    a = Analysis(d)
    text = a.info("m").errors[0].text
    assert "cycle of 2 layers (m → a → m), one of the cycles among 5 layers" in text
    cyclic = [n for n in ("m", "a", "b", "c", "x") if a.info(n).errors[0].code == "cycle"]
    assert cyclic == ["m", "a", "b", "c", "x"]
    assert sum("is part of a cycle" in e.text for n in cyclic for e in a.info(n).errors) == 1


def test_many_small_cycles_each_get_their_message():
    nodes, edges = [INPUT], []
    for k in range(500):
        nodes += [(f"a{k}", "Add", {}), (f"r{k}", "ReLU", {})]
        edges += [("input", f"a{k}"), (f"a{k}", f"r{k}"), (f"r{k}", f"a{k}")]
    d = graph(nodes, edges)
    a = timed(lambda: analysed(d))
    for k in (0, 499):
        assert f"cycle of 2 layers (a{k} → r{k} → a{k})" in a.info(f"a{k}").errors[0].text
        assert a.info(f"r{k}").errors[0].text.startswith(f"is on the cycle reported at a{k}")


def test_a_long_chain_below_a_cycle_is_traced_once():
    n = 5000
    d = ring(50, tail=n)
    a = timed(lambda: analysed(d), 1.0)
    for i in (0, n // 2, n - 1):
        [e] = a.info(f"t{i}").errors
        assert e.text == "is not fed from the Input: its inputs trace back to r47, which is part of a cycle"


def test_a_long_cut_off_chain_is_traced_once():
    # before: every node walked back to the top: 12.5 million steps
    n = 5000
    d = graph([INPUT] + [(f"r{i}", "ReLU", {}) for i in range(n)],
              [(f"r{i - 1}", f"r{i}") for i in range(1, n)])
    a = timed(lambda: analysed(d), 1.0)
    assert a.info("r4999").errors[0].text == ("is not fed from the Input: its inputs trace back "
                                              "to r0, which has no input")
    assert [p.code for p in a.info("r0").errors] == ["input-count"]


def test_cut_off_branches_trace_back_to_their_own_cut():
    # two cut-off roots joined by a merge: each node names the root its first cut input leads to
    d = graph([INPUT, ("p", "ReLU", {}), ("q", "ReLU", {}), ("p1", "ReLU", {}), ("q1", "ReLU", {}),
               ("m", "Add", {}), ("after", "ReLU", {})],
              [("p", "p1"), ("q", "q1"), ("q1", "m"), ("p1", "m"), ("m", "after")])
    a = Analysis(d)
    assert a.info("p1").errors[0].text.endswith("trace back to p, which has no input")
    assert a.info("q1").errors[0].text.endswith("trace back to q, which has no input")
    assert a.info("m").errors[0].text.endswith("trace back to q, which has no input")
    assert a.info("after").errors[0].text.endswith("trace back to q, which has no input")


def test_many_inputs_are_listed_briefly():
    d = graph([(f"in{i}", "Input", {"channels": 1, "height": 2, "width": 2}) for i in range(3000)],
              [])
    text = Analysis(d).info("in7").errors[0].text
    assert text == ("the design has 3,000 Input nodes (in0, in1, in2, in3, in4, … (2,995 more)); "
                    "it needs exactly one: delete the extra ones")
    assert len(json.dumps(summarize(d))) < 600 * len(d)  # an error and a dead-end warning each


def test_long_ids_are_quoted_short_in_other_nodes_messages():
    long = "x" * 5000
    d = graph([INPUT, (long, "Add", {}), ("b", "ReLU", {}), ("c", "ReLU", {}), ("d", "ReLU", {})],
              [("input", long), (long, "b"), ("b", long), ("input", "c"), ("c", "d")])
    a = Analysis(d)
    pointer = a.info("b").errors[0].text
    assert pointer == f"is on the cycle reported at {'x' * (ID_SHOWN - 1)}…: data must flow one way; remove one of its connections"
    assert len(a.info(long).errors[0].text) < 400  # its own id is quoted short in its cycle too
    d2 = graph([INPUT, ("r", "ReLU", {}), (long, "ReLU", {}), ("tail", "ReLU", {})],
               [("r", long), (long, "tail")])
    assert Analysis(d2).info("tail").errors[0].text.endswith(
        "trace back to r, which has no input")
    d3 = graph([INPUT, ("a", "ReLU", {}), (long, "ReLU", {})], [("input", "a"), ("input", long)])
    warning = Analysis(d3).info("a").warnings[0].text
    assert "output is " + "x" * (ID_SHOWN - 1) + "… (2 nodes" in warning


def test_cycle_detection_agrees_with_a_slow_reference_on_random_graphs():
    rng = random.Random(5)
    for _ in range(300):
        n = rng.randint(2, 9)
        ids = [f"n{i}" for i in range(n)]
        edges = set()
        for _ in range(rng.randint(0, 14)):
            s, t = rng.choice(["input"] + ids), rng.choice(ids)
            edges.add((s, t))
        d = graph([INPUT] + [(i, "Add", {}) for i in ids], sorted(edges))
        a = Analysis(d)

        def reaches(x, y):
            seen, stack = set(), [x]
            while stack:
                v = stack.pop()
                for s, t in edges:
                    if s == v and t not in seen:
                        seen.add(t)
                        stack.append(t)
            return y in seen

        on_cycle = {i for i in ids if reaches(i, i)}
        flagged = {i for i in ids if any(e.code == "cycle" for e in a.info(i).errors)}
        assert flagged == on_cycle
        reports = [i for i in ids for e in a.info(i).errors
                   if e.code == "cycle" and "reported at" not in e.text]
        # one report per knot (nodes reaching each other), on its first node
        knots = {frozenset(j for j in on_cycle if reaches(i, j) and reaches(j, i))
                 for i in on_cycle}
        assert sorted(reports) == sorted(min(k, key=ids.index) for k in knots)


def test_write_json_prints_what_summarize_returns():
    designs = [t.load() for t in list_templates()]
    designs += [ring(40), graph([], []), graph([INPUT, ("a", "ReLU", {})], [("a", "a")])]
    for d in designs:
        out = io.StringIO()
        write_json(d, out)
        text = out.getvalue()
        assert json.loads(text) == summarize(d)
        assert text.endswith("}\n") and text.count("\n") == (7 + len(d) if len(d) else 6)


def test_the_collector_is_paused_only_during_large_analyses_and_restored():
    d = ring(PAUSE_COLLECTOR_FROM + 10)
    seen = []
    a = Analysis(d)
    a.updated.connect(lambda changed: seen.append(gc.isenabled()))
    assert gc.isenabled()
    a.refresh()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        Analysis(d).refresh()
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
    small = Analysis(ring(10))
    small.updated.connect(lambda changed: seen.append(gc.isenabled()))
    small.refresh()
    assert seen == [False, True]


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["ring", "ring and tail", "rings", "cut chain", "chain"])
def test_100000_node_designs_in_linear_time(shape):
    n = 100_000
    if shape == "ring":
        d = ring(n)
    elif shape == "ring and tail":
        d = ring(n // 2, tail=n // 2)
    elif shape == "rings":
        nodes, edges = [INPUT], []
        for k in range(n // 3):
            nodes += [(f"a{k}", "Add", {}), (f"b{k}", "ReLU", {}), (f"c{k}", "ReLU", {})]
            edges += [("input", f"a{k}"), (f"a{k}", f"b{k}"), (f"b{k}", f"c{k}"), (f"c{k}", f"a{k}")]
        d = graph(nodes, edges)
    elif shape == "cut chain":
        d = graph([INPUT] + [(f"r{i}", "ReLU", {}) for i in range(n)],
                  [(f"r{i - 1}", f"r{i}") for i in range(1, n)])
    else:
        d = graph([INPUT] + [(f"r{i}", "ReLU", {}) for i in range(n)],
                  [("input", "r0")] + [(f"r{i - 1}", f"r{i}") for i in range(1, n)])
    a = Analysis(d)
    s = timed(lambda: summarize(d, a), 10.0)  # before: minutes and gigabytes for the cycles
    out = io.StringIO()
    timed(lambda: write_json(d, out, a), 5.0)
    assert len(out.getvalue()) < 350 * n
    assert len(s["nodes"]) == len(d)
    timed(lambda: format_table(d, a), 5.0)


def test_a_node_with_many_inputs_names_a_few():
    d = graph([INPUT] + [(f"a{i}", "ReLU", {}) for i in range(100)] + [("r", "ReLU", {})],
              [("input", f"a{i}") for i in range(100)] + [(f"a{i}", "r") for i in range(100)])
    text = Analysis(d).info("r").errors[0].text
    assert text == ("ReLU takes exactly one input, but it has 100 (from a0, a1, a2, a3, a4, … "
                    "(95 more)); merge them first with Add or Concat")


def test_write_json_writes_each_node_as_the_json_module_would():
    """The node lines are formatted by hand (for speed): byte for byte what json.dumps writes,
    with quotes, non-ASCII ids, fractional fields and problems."""
    odd = graph([INPUT, ('c "1" é', "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2}),
                 ("pool", "AdaptiveAvgPool2d", {"output_size": 3}), ("bad", "Linear", {})],
                [("input", 'c "1" é'), ('c "1" é', "pool"), ("pool", "bad")])
    designs = [t.load() for t in list_templates()] + [odd, ring(12)]
    for d in designs:
        out = io.StringIO()
        write_json(d, out)
        lines = out.getvalue().splitlines()[5:-2]
        expected = summarize(d)["nodes"]
        assert len(lines) == len(expected)
        for line, node in zip(lines, expected):
            assert line.strip().rstrip(",") == json.dumps(node, ensure_ascii=False)
