"""The cost of inferring a node never depends on the size of a parameter's value: 2^31 − 1 strides,
paddings, dilations and channel counts give their hints at once (the time bound only guards
against a hang; the results are checked exactly)."""
from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from designer.core.analysis import Analysis
from designer.core.layers import _Axis, _fix_for_fraction, divisors, largest_divisor_below
from designer.core.summary import format_table, summarize
from tests.helpers import chain, graph

BIG = 2**31 - 1  # the largest size a parameter may hold (a prime)


class _Clock:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def _analyse(design, node_id):
    """The node's info with its worked arithmetic, the summary and the table, timed together."""
    with _Clock() as clock:
        a = Analysis(design)
        info = a.info(node_id)
        derivations = info.derivations
        summarize(design, a)
        format_table(design, a)
    assert clock.seconds < 10.0, f"{clock.seconds:.1f} s"
    return info, dict(derivations)


def _old_fix_for_fraction(a: _Axis, pool: bool, symmetric_padding: bool) -> str:
    """The counting search the closed forms replace (the reference on small values)."""
    eff = a.d * (a.k - 1) + 1
    options = []
    if symmetric_padding:
        limit = a.k // 2 if pool else eff - 1
        for p in range(a.p_lo + 1, a.p_lo + a.s + 1):
            if p <= limit and (a.n + 2 * p - eff) % a.s == 0:
                options.append(f"padding {p}")
                break
    span = a.n + a.p_lo + a.p_hi - eff
    for s in range(a.s - 1, 0, -1):
        if span % s == 0:
            options.append(f"stride {s}")
            break
    if pool:
        options.append("ceil_mode true")
    return "try " + " or ".join(options) if options else "try another kernel size, stride or padding"


def test_fix_it_hints_agree_with_the_counting_search_on_small_values():
    rng = random.Random(11)
    checked = 0
    while checked < 20_000:
        n, k, s = rng.randint(1, 200), rng.randint(1, 12), rng.randint(1, 50)
        p, d, symmetric = rng.randint(0, 10), rng.randint(1, 3), rng.random() < 0.7
        a = _Axis(n, k, s, p, p if symmetric else p + 1, d)
        if a.n + a.p_lo + a.p_hi - (d * (k - 1) + 1) <= 0:
            continue
        pool = rng.random() < 0.5
        assert _fix_for_fraction(a, pool, symmetric) == _old_fix_for_fraction(a, pool, symmetric), a
        checked += 1


def test_divisors_against_counting():
    for n in range(1, 3000):
        assert divisors(n) == [x for x in range(1, n + 1) if n % x == 0]
    for n in (BIG, BIG - 1, 2**61 - 1, 1_000_003 * 1_000_033, 2**62, 3**39, 720720**3):
        ds = divisors(n)
        assert ds[0] == 1 and ds[-1] == n and all(n % x == 0 for x in ds)
        small = [q for q in range(1, 2000) if n % q == 0]  # the small ones, counted
        assert [x for x in ds if x < 2000] == small
        assert sorted(n // q for q in small)[::-1] == [x for x in ds[::-1][:len(small)]]
    assert divisors(BIG) == [1, BIG]
    assert largest_divisor_below(12, 12) == 6 and largest_divisor_below(7, 100) == 7
    assert largest_divisor_below(BIG - 1, BIG - 2) == (BIG - 1) // 2
    assert largest_divisor_below(5, 1) is None


def test_a_2_31_stride_on_a_7x7_input():
    d = chain((1, 7, 7), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": BIG}))
    info, derived = _analyse(d, "c")
    assert info.shape == (1, 1, 1)
    # windows of 3 rows 2^31 − 1 apart skip the rows between them on purpose (subsampling): the
    # 4 rows after the first window are skipped like those, not a warning
    assert not info.warnings
    # not "= 1": the value is above 1 by 4/(2^31 − 1)
    assert derived["output height and width"] == (
        "(7 − 3 + 2·0)/2147483647 + 1 = 1.000000002 → 1: its windows of 3 rows and columns are "
        "2,147,483,647 apart, so 2,147,483,644 rows and columns between them are skipped on "
        "purpose (subsampling); the last 4 rows and columns are skipped the same way")
    # windows that touch (kernel 3, stride 5 leaves 2 rows between them) and 4 rows left over
    d = chain((1, 7, 7), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 5}))
    info, _ = _analyse(d, "c")
    [w] = info.warnings
    assert w.code == "fractional-output"
    assert w.text.endswith("try stride 4")  # the span 7 − 3 = 4 itself; no padding can help


def test_a_2_31_stride_on_a_2_31_input_suggests_the_largest_smaller_divisor():
    # a 1×1 window with a stride of 2^31 − 3 on 2^31 − 1 rows: subsampling, no warning
    d = chain((1, BIG, BIG), ("p", "MaxPool2d", {"kernel_size": 1, "stride": BIG - 2}))
    info, derived = _analyse(d, "p")
    assert info.shape == (1, 2, 2) and not info.warnings
    assert "keeps every 2,147,483,645th row and column" in derived["output height and width"]
    # windows of 1,000 every 1,000 rows on 2^31 − 1 rows leave 647 over: the stride suggested is
    # the span's largest divisor below 1,000, counted from below to check
    span = BIG - 1000
    best = next(s for s in range(999, 0, -1) if span % s == 0)
    d = chain((1, BIG, BIG), ("p", "MaxPool2d", {"kernel_size": 1000}))
    info, _ = _analyse(d, "p")
    assert info.shape == (1, span // 1000 + 1, span // 1000 + 1)
    [w] = info.warnings
    assert w.text.endswith(f"try stride {best} or ceil_mode true")
    d = chain((1, BIG, BIG), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 1000,
                                              "stride": 1000}))
    info, _ = _analyse(d, "c")
    assert info.warnings[0].text.endswith(f"try stride {best}")


def test_a_padding_hint_a_billion_steps_away_is_found_directly():
    # a 2×2 kernel dilated 2^31 − 11 on 2^31 − 1 rows, stride 2^31 − 3: (n − eff)/s + 1 leaves 9
    # rows over, more than the 7 its windows skip between them; the next padding that makes it
    # whole solves 2p ≡ eff − n (mod s), unique in (0, s] since s is odd: p = (s − 9)/2, half a
    # billion steps up
    s = BIG - 2
    d = chain((1, BIG, BIG), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 2,
                                              "dilation": BIG - 10, "stride": s}))
    info, _ = _analyse(d, "c")
    [w] = info.warnings
    eff = BIG - 9
    fix = (s - 9) // 2
    assert (BIG + 2 * fix - eff) % s == 0 and 0 < fix <= eff - 1
    assert w.text.endswith(f"try padding {fix} or stride 9")
    # with a stride of 2^31 − 1 the 9 rows left over are just the 9 skipped between windows
    d = chain((1, BIG, BIG), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 2,
                                              "dilation": BIG - 10, "stride": BIG}))
    assert not _analyse(d, "c")[0].warnings


def test_groups_that_do_not_divide_2_31_channels():
    d = chain((BIG, 4, 4), ("c", "Conv2d", {"out_channels": BIG - 1, "kernel_size": 1,
                                            "groups": 2}))
    info, _ = _analyse(d, "c")
    [e] = info.errors
    assert e.code == "groups" and e.text.endswith("try groups 1")  # 2^31 − 1 is prime
    c = BIG - 1
    d = chain((c, 4, 4), ("c", "Conv2d", {"out_channels": c, "kernel_size": 1, "groups": 4}))
    info, _ = _analyse(d, "c")
    largest = [c // q for q in itertools.islice((q for q in itertools.count(1) if c % q == 0), 6)]
    assert info.errors[0].text.endswith("try groups " + ", ".join(map(str, largest[::-1])))


def test_groups_hint_on_a_concat_of_huge_channel_counts():
    c = 2**30 * 15  # more channels than any parameter may hold: the hint is bounded all the same
    d = graph([("input", "Input", {"channels": 3, "height": 4, "width": 4}),
               *[(f"b{i}", "Conv2d", {"out_channels": 2**30, "kernel_size": 1}) for i in range(15)],
               ("cat", "Concat", {}),
               ("c", "Conv2d", {"out_channels": 2**29 * 3, "kernel_size": 1, "groups": 7})],
              [*[("input", f"b{i}") for i in range(15)], *[(f"b{i}", "cat") for i in range(15)],
               ("cat", "c")])
    info, _ = _analyse(d, "c")
    g = math.gcd(c, 2**29 * 3)
    largest = sorted(g // q for q in range(1, 100) if g % q == 0)[-6:]
    assert info.errors[0].text.endswith("try groups " + ", ".join(map(str, largest)))


@pytest.mark.parametrize("layer, params", [
    ("AdaptiveAvgPool2d", {"output_size": BIG}),
    ("AdaptiveAvgPool2d", {"output_size": [BIG - 1, 3]}),
    ("AvgPool2d", {"kernel_size": BIG, "stride": BIG, "ceil_mode": True}),
    ("MaxPool2d", {"kernel_size": 2, "stride": BIG, "dilation": BIG, "padding": 1}),
    ("Conv2d", {"out_channels": BIG, "kernel_size": BIG, "padding": BIG, "dilation": BIG}),
    ("Conv2d", {"out_channels": 1, "kernel_size": [1, BIG], "padding": [BIG, 0], "stride": BIG}),
])
@pytest.mark.parametrize("size", [7, BIG])
def test_other_layers_with_2_31_values_finish_at_once(layer, params, size):
    d = chain((3, size, size), ("x", layer, params), ("r", "ReLU", {}))
    info, _ = _analyse(d, "x")
    assert info.shape is not None or info.errors
