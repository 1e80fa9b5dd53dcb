"""Receptive fields below merges of paths with unequal jumps (contract §4: the smallest window,
padding included, holding every input position that can affect the unit, over all paths).
Checked against a slow reference that follows index sets through the graph on infinite planes
(padding positions count, as the contract says), for unit (0, 0) and for every unit's window
(core.unit_field), and against the engine's input gradient on the issue's design."""
from __future__ import annotations

import functools
import random

import numpy as np
import pytest

import designer
from designer.core.analysis import Analysis
from designer.core.layers import MAX_PATH_JUMPS, AxisField, ReceptiveField, merge_fields
from designer.core.unit_field import field_path, unit_window
from tests.helpers import graph

WINDOWED = ("Conv2d", "MaxPool2d", "AvgPool2d")


def issue_design(pool: str = "MaxPool2d"):
    """The issue's case: a 10×10 input, a 1×1 stride-3 branch and a [7, 4] stride-[1, 2] one
    (jumps 3 and 1 down the rows, 3 and 2 across), added, then a 2×2 pool."""
    return graph([("input", "Input", {"channels": 1, "height": 10, "width": 10}),
                  ("a", "Conv2d", {"out_channels": 1, "kernel_size": 1, "stride": 3}),
                  ("b", "Conv2d", {"out_channels": 1, "kernel_size": [7, 4], "stride": [1, 2]}),
                  ("add", "Add", {}), ("pool", pool, {"kernel_size": 2})],
                 [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "pool")])


# ----------------------------------------------------------------- the slow reference

class Reference:
    """Per axis, the input positions unit i of a node depends on, on infinite planes: a window
    layer's unit u reads units u·s − p + t·d (t < k) of its input whether or not they lie in the
    map (padding positions are positions too), a merge reads every input, LayerNorm every unit
    of its input's map."""

    def __init__(self, design):
        self.design = design
        self.a = Analysis(design)
        self.deps = functools.lru_cache(maxsize=None)(self._deps)

    def _geometry(self, node_id, axis):
        node = self.design.node(node_id)
        v = self.a.info(node_id).values
        k, s, d = v["kernel_size"][axis], v["stride"][axis], v.get("dilation", (1, 1))[axis]
        pad = v["padding"]
        if pad == "same":
            p = d * (k - 1) // 2
        elif pad == "valid":
            p = 0
        else:
            p = pad[axis]
        assert node.type in WINDOWED
        return k, s, p, d

    def _deps(self, node_id, axis, i):
        node = self.design.node(node_id)
        sources = self.design.sources(node_id)
        if node.type == "Input":
            return frozenset([i])
        if node.type in WINDOWED:
            k, s, p, d = self._geometry(node_id, axis)
            out = set()
            for t in range(k):
                out |= self.deps(sources[0], axis, i * s - p + t * d)
            return frozenset(out)
        if node.type == "LayerNorm":
            n = self.a.info(sources[0]).shape[1 + axis]
            out = set()
            for j in range(n):
                out |= self.deps(sources[0], axis, j)
            return frozenset(out)
        out = set()
        for src in sources:  # merges, and layers that keep positions
            out |= self.deps(src, axis, i)
        return frozenset(out)

    def jumps(self, node_id, axis):
        """The jumps of the node's paths: products of strides (0 after LayerNorm)."""
        node = self.design.node(node_id)
        sources = self.design.sources(node_id)
        if node.type == "Input":
            return {1}
        if node.type in WINDOWED:
            s = self._geometry(node_id, axis)[1]
            return {j * s for j in self.jumps(sources[0], axis)}
        if node.type == "LayerNorm":
            return {0}
        return set().union(*(self.jumps(src, axis) for src in sources))


def check_against_reference(design, every_unit=True):
    ref = Reference(design)
    checked = 0
    for node_id in ref.a.order:
        info = ref.a.info(node_id)
        if info.field is None:
            continue
        assert not info.errors, [str(e) for e in info.errors]
        for axis, a in enumerate(info.field):
            positions = ref.deps(node_id, axis, 0)
            lo, hi = min(positions), max(positions)
            where = (node_id, "rows" if axis == 0 else "columns")
            assert (info.field.size[axis], info.field.start[axis]) == (hi - lo + 1, (lo + hi) / 2), where
            jumps = ref.jumps(node_id, axis)
            assert info.field.jump[axis] == max(jumps), where
            assert {j for j, _, _ in a.groups()} == jumps, where
        n_rows, n_cols = info.shape[1:]
        units = ([(r, c) for r in range(n_rows) for c in range(n_cols)] if every_unit
                 else [(0, 0), (n_rows - 1, n_cols - 1)])
        for r, c in units:
            w = unit_window(node_id, info.field, r, c)
            rows, cols = ref.deps(node_id, 0, r), ref.deps(node_id, 1, c)
            assert (w.top, w.bottom, w.left, w.right) == (
                min(rows), max(rows) + 1, min(cols), max(cols) + 1), (node_id, (r, c))
        checked += 1
    return checked


# ----------------------------------------------------------------- the issue's design

@pytest.mark.parametrize("pool", ["MaxPool2d", "AvgPool2d"])
def test_the_issues_merge_of_unequal_jumps(pool):
    a = Analysis(issue_design(pool))
    f = a.info("pool").field
    # before: extended with the largest jump, 10×7 starting at (4.5, 3.0)
    assert f.as_dict() == {"size": [8, 6], "jump": [6, 6], "start": [3.5, 2.5]}
    assert a.info("add").field.as_dict() == {"size": [7, 4], "jump": [3, 3], "start": [3.0, 1.5]}
    # unit (1, 1): rows [0, 7] + 2 and [0, 3] + 6 (the paths of jumps 2 and 6) → 2 … 9;
    # columns [0, 5] + 4 and [0, 3] + 6 → 4 … 9
    assert f.rows.paths == ((2, 0, 7), (6, 0, 3)) and f.cols.paths == ((4, 0, 5), (6, 0, 3))
    w = unit_window("pool", f, 1, 1)
    assert (w.top, w.bottom, w.left, w.right) == (2, 10, 4, 10)
    check_against_reference(issue_design(pool))


@pytest.mark.parametrize("pool", ["MaxPool2d", "AvgPool2d"])
def test_the_issues_field_is_where_the_gradient_reaches(pool):
    """The effective field of pool unit (0, 0), over several inputs (a max pool passes the
    gradient to one winner per window): rows 0–7, columns 0–5, the window itself."""
    design = issue_design(pool)
    net = designer.build(design, seed=1)
    rng = np.random.default_rng(0)
    reached = np.zeros((10, 10), dtype=bool)
    for _ in range(40 if pool == "MaxPool2d" else 1):
        x = rng.standard_normal((1, 1, 10, 10)).astype(np.float32)
        reached |= net.input_gradient(x, "pool", (0, 0))[0] != 0
    rows, cols = np.nonzero(reached)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 7, 0, 5)
    f = Analysis(design).info("pool").field
    assert f.size == (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert f.start == ((rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2)


def test_concat_keeps_paths_apart_too_and_a_later_layer_moves_each_by_its_jump():
    design = graph([("input", "Input", {"channels": 1, "height": 12, "width": 12}),
                    ("s", "MaxPool2d", {"kernel_size": 1, "stride": 2}),
                    ("t", "Conv2d", {"out_channels": 1, "kernel_size": 7, "padding": 0}),
                    ("cat", "Concat", {}),
                    ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1,
                                     "stride": 2})],
                   [("input", "s"), ("input", "t"), ("s", "cat"), ("t", "cat"), ("cat", "c")])
    a = Analysis(design)
    assert a.info("cat").shape == (2, 6, 6)
    # cat's unit 0: [0, 0] (jump 2) and [0, 6] (jump 1); c reads cat's units −1 … 1:
    # jump 2: [−2, 2], jump 1: [−1, 7] → hull [−2, 7]
    assert a.info("c").field.as_dict() == {"size": [10, 10], "jump": [4, 4], "start": [2.5, 2.5]}
    check_against_reference(design)


def test_equal_jumps_merge_as_before():
    """A ResNet-style block (both paths jump 2): one hull, no path list, the same numbers as the
    plain recurrence."""
    design = graph([("input", "Input", {"channels": 1, "height": 16, "width": 16}),
                    ("c1", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 2,
                                      "padding": 1}),
                    ("c2", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
                    ("down", "Conv2d", {"out_channels": 1, "kernel_size": 1, "stride": 2}),
                    ("add", "Add", {})],
                   [("input", "c1"), ("c1", "c2"), ("input", "down"), ("c2", "add"),
                    ("down", "add")])
    f = Analysis(design).info("add").field
    # c2's unit 0 reads c1's units −1 … 1, each [−1, 1] + 2u: [−3, 3]; the shortcut's is [0, 0]
    assert f.rows.paths == () and f.as_dict() == {"size": [7, 7], "jump": [2, 2],
                                                  "start": [0.0, 0.0]}
    check_against_reference(design)


def test_field_path_goes_to_the_nearest_unit_below_a_merge():
    design = issue_design()
    a = Analysis(design)
    infos = a.infos_by_id()
    sources = {n: design.sources(n) for n in design.node_ids}
    path = field_path("pool", (1, 1), sources, infos)
    assert [w.node_ids for w in path] == [("b",), ("add",), ("pool",)]
    # pool unit (1, 1) spans rows 2 … 9 (centre 5.5): add's units span [0, 6], [1, 7], [2, 8],
    # [3, 9] (centres 3, 4, 5, 6; not 3 + 3i: the paths move by 1 and by 3) → 5 and 6 tie, the
    # later is taken; columns 4 … 9 (6.5) against [0, 3], [2, 5], [4, 7], [6, 9] → 5.5 and 7.5
    assert path[1].unit == (3, 3)
    # and every unit of every layer on the way is the nearest one there is
    f_add = infos["add"].field
    for r in range(2):
        for c in range(2):
            target = unit_window("pool", infos["pool"].field, r, c)
            centre = (target.top + (target.height - 1) / 2, target.left + (target.width - 1) / 2)
            got = field_path("pool", (r, c), sources, infos)[1].unit
            for axis, a in enumerate(f_add):
                centres = [sum(a.window(i)) / 2 for i in range(4)]
                best = min(abs(x - centre[axis]) for x in centres)
                assert abs(centres[got[axis]] - centre[axis]) == best


# ----------------------------------------------------------------- random designs

def _random_design(rng: random.Random):
    """Random small DAGs with branches of unequal strides merged (Add or Concat) and window
    layers above and below the merges (padding, dilation, 'same', LayerNorm now and then)."""
    n = rng.randint(8, 16)
    nodes = [("input", "Input", {"channels": 2, "height": n, "width": rng.randint(8, 16)})]
    edges = []
    shapes = {"input": (2, nodes[0][2]["height"], nodes[0][2]["width"])}
    counter = [0]

    def new_id(kind):
        counter[0] += 1
        return f"{kind}{counter[0]}"

    def window(src, kind=None):
        """A window layer on src that fits; None if none does."""
        _, h, w = shapes[src]
        kind = kind or rng.choice(WINDOWED)
        for _ in range(20):
            k = [rng.randint(1, 4), rng.randint(1, 4)]
            s = [rng.randint(1, 3), rng.randint(1, 3)]
            d = [1, 1] if kind == "AvgPool2d" or rng.random() < 0.7 else [rng.randint(1, 2)] * 2
            p = [rng.randint(0, k[i] // 2 if kind != "Conv2d" else k[i]) for i in (0, 1)]
            params = {"kernel_size": k, "stride": s, "padding": p}
            if kind != "AvgPool2d":
                params["dilation"] = d
            if kind == "Conv2d":
                params["out_channels"] = 2
                if s == [1, 1] and rng.random() < 0.2:
                    params["padding"] = "same"
                    p = [d[i] * (k[i] - 1) // 2 for i in (0, 1)]
                    p_hi = [d[i] * (k[i] - 1) - p[i] for i in (0, 1)]
                else:
                    p_hi = p
            else:
                p_hi = p
            out = [(x + p[i] + p_hi[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1
                   for i, x in enumerate((h, w))]
            if min(out) >= 2:
                node_id = new_id(kind[0].lower())
                nodes.append((node_id, kind, params))
                edges.append((src, node_id))
                shapes[node_id] = (shapes[src][0], *out)
                return node_id
        return None

    def matching_branch(src, target_hw):
        """A stride-1 Conv2d on src whose output is target_hw (a kernel that fits), or None."""
        _, h, w = shapes[src]
        k = [x - t + 1 for x, t in zip((h, w), target_hw)]
        if min(k) < 1:
            return None
        node_id = new_id("m")
        nodes.append((node_id, "Conv2d", {"out_channels": 2, "kernel_size": k}))
        edges.append((src, node_id))
        shapes[node_id] = (2, *target_hw)
        return node_id

    tips = ["input"]
    for _ in range(rng.randint(2, 5)):
        src = rng.choice(tips)
        if rng.random() < 0.6:  # a strided branch and a matching unstrided one, merged
            a = window(src, "Conv2d" if rng.random() < 0.5 else None)
            if a is None:
                continue
            b = matching_branch(src, shapes[a][1:])
            if b is None:
                continue
            parts = [a, b]
            extra = window(src)  # sometimes a third path, if its size happens to match
            if extra is not None and shapes[extra][1:] == shapes[a][1:]:
                parts.append(extra)
            rng.shuffle(parts)
            kind = "Add" if all(shapes[x] == shapes[a] for x in parts) and rng.random() < 0.6 \
                else "Concat"
            m = new_id(kind.lower())
            nodes.append((m, kind, {}))
            edges += [(x, m) for x in parts]
            shapes[m] = (sum(shapes[x][0] for x in parts) if kind == "Concat" else 2,
                         *shapes[a][1:])
            tips.append(m)
        else:
            t = window(src)
            if t is not None:
                if rng.random() < 0.1:
                    ln = new_id("ln")
                    nodes.append((ln, "LayerNorm", {}))
                    edges.append((t, ln))
                    shapes[ln] = shapes[t]
                    t = ln
                tips.append(t)
    return graph(nodes, edges)


@pytest.mark.parametrize("seed", range(60))
def test_random_designs_with_merges_match_the_index_set_reference(seed):
    rng = random.Random(seed)
    design = _random_design(rng)
    assert check_against_reference(design) >= 1


def test_random_designs_exercise_unequal_jumps():
    """The generator above really makes the case under test (paths of several jumps)."""
    several = 0
    for seed in range(60):
        a = Analysis(_random_design(random.Random(seed)))
        several += any(i.field is not None and (i.field.rows.paths or i.field.cols.paths)
                       for i in a.infos())
    assert several >= 20


# ----------------------------------------------------------------- the bound on paths

def test_more_jumps_than_the_bound_fold_into_a_field_that_still_holds_every_window():
    n = 9
    fields = [ReceptiveField(AxisField(2 * j + 1, j, float(j)), AxisField(1, 1, 0.0))
              for j in range(1, MAX_PATH_JUMPS + 4)]
    merged = merge_fields(fields, (n, n))
    rows = merged.rows
    assert len(rows.paths) == MAX_PATH_JUMPS
    assert rows.jump == MAX_PATH_JUMPS + 3
    for i in range(n):  # every unit's window holds every path's
        lo, hi = rows.window(i)
        for f in fields:
            centre, half = f.rows.start + i * f.rows.jump, (f.rows.size - 1) / 2
            assert lo <= centre - half and centre + half <= hi
    assert merged.cols == AxisField(1, 1, 0.0)
