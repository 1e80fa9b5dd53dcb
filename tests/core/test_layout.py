"""The automatic layout (contract §7): cards never overlap, every edge is a polyline from the
bottom centre of its source's card to the top centre of its target's, and no polyline passes
through a card other than its own two ends. Checked geometrically, with a margin, on every
template and on random designs (hypothesis), broken ones included."""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import designer
from designer.core.design import Design, Node
from designer.core.layout import (CARD_H, CARD_W, CROSSING, LANE, LANE_CLEARANCE,
                                  ROUTE_CLEARANCE, ROW, STRAIGHT, STUB, Layout, layered_positions,
                                  layout, route, route_crosses)
from designer.io.templates import find_template, list_templates

MARGIN = 6.0  # a polyline keeps at least this far from every card it doesn't start or end at


def design_of(n: int, edges, name: str = "random") -> Design:
    nodes = [Node(f"n{i}", "ReLU") for i in range(n)]
    return Design.from_parts(name, nodes, [(f"n{s}", f"n{t}") for s, t in edges])


def segment_hits_box(p, q, box, margin: float) -> bool:
    """Whether the segment p–q enters the open rectangle ``box`` grown by ``margin`` (Liang–
    Barsky clipping)."""
    x, y, w, h = box
    left, right, top, bottom = x - margin, x + w + margin, y - margin, y + h + margin
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for step, room in ((-dx, p[0] - left), (dx, right - p[0]), (-dy, p[1] - top),
                       (dy, bottom - p[1])):
        if step == 0:
            if room <= 0:
                return False
            continue
        t = room / step
        if step < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 >= t1:
            return False
    return True


def test_the_clipping_helper_itself():
    box = (0, 0, 10, 10)
    assert segment_hits_box((-5, 5), (15, 5), box, 0)  # straight through
    assert segment_hits_box((5, 5), (5, 6), box, 0)  # inside
    assert not segment_hits_box((-5, -1), (15, -1), box, 0)  # above it
    assert segment_hits_box((-5, -1), (15, -1), box, 2)  # … but within the margin
    assert not segment_hits_box((-5, 0), (0, -5), box, 0)  # a diagonal past the corner
    assert not segment_hits_box((0, 10), (10, 10), box, 0)  # along an edge: not inside


def check(design: Design, lay: Layout) -> None:
    """Every §7 property, geometrically."""
    ids = design.node_ids
    assert set(lay.cards) == set(ids)
    for x, y, w, h in lay.cards.values():
        assert (w, h) == (CARD_W, CARD_H)
    # no two cards overlap (sorted by left edge: only nearby ones can)
    boxes = sorted(lay.cards.items(), key=lambda item: item[1][0])
    for i, (a, (ax, ay, aw, ah)) in enumerate(boxes):
        for b, (bx, by, bw, bh) in boxes[i + 1:]:
            if bx >= ax + aw:
                break
            assert ay + ah <= by or by + bh <= ay, f"cards {a} and {b} overlap"
    assert set(lay.edges) == set(design.edges)
    by_row: dict[int, list[str]] = {}  # cards by the rows of ROW they overlap (a quick index)
    for node_id, (x, y, w, h) in lay.cards.items():
        for r in range(int((y - MARGIN) // ROW), int((y + h + MARGIN) // ROW) + 1):
            by_row.setdefault(r, []).append(node_id)
    for (s, t), points in lay.edges.items():
        sx, sy, sw, sh = lay.cards[s]
        tx, ty, tw, th = lay.cards[t]
        assert points[0] == (sx + sw / 2, sy + sh), f"{s} → {t} doesn't leave {s}'s bottom centre"
        assert points[-1] == (tx + tw / 2, ty), f"{s} → {t} doesn't enter {t}'s top centre"
        assert len(points) >= 2
        segments = list(zip(points, points[1:]))
        low = min(p[1] for p in points) - MARGIN
        high = max(p[1] for p in points) + MARGIN
        near = {n for r in range(int(low // ROW), int(high // ROW) + 1) for n in by_row.get(r, ())}
        for node_id in near | {s, t}:
            box = lay.cards[node_id]
            if node_id in (s, t):
                # its own cards: only the first piece (out of the source) and the last (into
                # the target) may touch them
                inner = segments[1:-1]
                if node_id == s and s != t:
                    inner = segments[1:]
                if node_id == t and s != t:
                    inner = segments[:-1]
                if s == t:
                    inner = segments[1:-1]
                for p, q in inner:
                    assert not segment_hits_box(p, q, box, -0.5), \
                        f"{s} → {t} runs back through its own card {node_id}"
                continue
            for p, q in segments:
                assert not segment_hits_box(p, q, box, MARGIN), \
                    f"{s} → {t} passes through {node_id} ({p} → {q})"
        # pieces are vertical, or lie in the band between two rows (where the canvas may
        # smooth them without touching a card)
        for (x0, y0), (x1, y1) in segments:
            if x0 != x1:
                low, high = min(y0, y1), max(y0, y1)
                row = (low - CARD_H) // ROW
                assert row * ROW + CARD_H + STUB - 1e-9 <= low and high <= (row + 1) * ROW - STUB \
                    + 1e-9, f"{s} → {t} bends outside the gap between rows: {(x0, y0)}, {(x1, y1)}"


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_every_template(template):
    design = template.load()
    lay = layout(design)
    check(design, lay)
    # long edges run straight down one lane: at most two bends at each end
    for points in lay.edges.values():
        assert len(points) <= 6, points


def test_inception_branches_side_by_side_in_edge_order():
    design = find_template("inception-block").load()
    lay = layout(design)
    x = {n: c[0] for n, c in lay.cards.items()}
    firsts = [t for s, t in design.edges if s == "input"]
    assert [x[n] for n in firsts] == sorted(x[n] for n in firsts)
    assert len({x[n] for n in firsts}) == 4
    lasts = design.sources("concat")
    assert [x[n] for n in lasts] == sorted(x[n] for n in lasts)
    # each branch is a straight column, the Input and the Concat centred over the four
    for branch in "1234":
        column = {x[n] for n in design.node_ids if n.startswith(f"branch{branch}")}
        assert len(column) == 1
    centre = (x[firsts[0]] + x[firsts[-1]]) / 2
    assert x["input"] == x["concat"] == centre


def test_resnet_main_path_is_one_column_and_every_shortcut_has_a_lane():
    design = find_template("resnet18").load()
    lay = layout(design)
    main = [n for n in design.node_ids if "downsample" not in n and n not in ("avgpool", "flatten")]
    assert len({lay.cards[n][0] for n in main}) == 1
    column = lay.cards["input"][0] + CARD_W / 2
    adds = [n for n in design.node_ids if n.endswith(".add")]
    assert len(adds) == 8
    for add in adds:
        shortcut = [s for s in design.sources(add) if not s.endswith("bn2")]
        assert len(shortcut) == 1
        points = lay.edges[(shortcut[0], add)]
        # it leaves the column and comes back, never along it (where it would hide behind cards)
        assert max(p[0] for p in points) > column + CARD_W / 2


def test_several_inputs_loose_nodes_cycles_and_self_loops():
    nodes = [Node("a", "Input"), Node("b", "ReLU"), Node("c", "ReLU"), Node("d", "Add"),
             Node("e", "Input"), Node("loose", "ReLU"), Node("x", "ReLU"), Node("y", "ReLU"),
             Node("self", "ReLU")]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("e", "d"), ("c", "b"),  # a cycle b → c → b
             ("x", "y"), ("y", "x"),  # a cycle nothing feeds
             ("self", "self"), ("d", "a")]  # a loop on itself, and back to an Input
    design = Design.from_parts("broken", nodes, edges)
    lay = layout(design)
    check(design, lay)
    rows = lay.rows
    assert rows["e"] == rows["d"] - 1  # the second Input sits just above where it is used
    assert rows["a"] == 0


def test_empty_and_single():
    assert layout(Design("empty")).cards == {}
    assert layout(Design("empty")).bounds() == (0.0, 0.0, 0.0, 0.0)
    one = design_of(1, [])
    lay = layout(one)
    assert lay.cards == {"n0": (-CARD_W / 2, 0.0, CARD_W, CARD_H)}
    assert layered_positions(one) == {"n0": (0.0, 0.0)}


def test_deterministic_and_the_public_api():
    design = find_template("resnet18").load()
    first = layout(design)
    assert layout(design.copy()) == first
    via_api = designer.layout(find_template("resnet18").path)
    assert via_api.cards == first.cards and via_api.edges == first.edges
    assert layered_positions(design) == first.positions()


@st.composite
def random_designs(draw, broken: bool):
    n = draw(st.integers(1, 14))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    raw = draw(st.lists(pairs, max_size=3 * n))
    edges = []
    for s, t in raw:
        if not broken:
            if s == t:
                continue
            s, t = min(s, t), max(s, t)
        if (s, t) not in edges:
            edges.append((s, t))
    return design_of(n, edges)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_designs(broken=False))
def test_random_dags(design):
    check(design, layout(design))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_designs(broken=True))
def test_random_broken_graphs(design):
    check(design, layout(design))


def test_a_long_chain_with_skips_and_a_wide_fan_out():
    rng = random.Random(3)
    edges = [(i, i + 1) for i in range(59)]
    edges += [(i, i + rng.randint(2, 9)) for i in range(0, 50, 3)]
    edges += [(60, 61 + i) for i in range(12)] + [(61 + i, 73) for i in range(12)]
    edges.append((59, 60))
    edges = list(dict.fromkeys(edges))
    design = design_of(74, edges)
    check(design, layout(design))


def residual(blocks: int) -> Design:
    """A ResNet-50-like stack: bottleneck blocks with identity shortcuts, a projection shortcut
    at each stage."""
    nodes, edges, last = [Node("input", "Input")], [], "input"
    for b in range(blocks):
        names = [f"b{b}.{part}" for part in ("c1", "n1", "r1", "c2", "n2", "r2", "c3", "n3")]
        nodes += [Node(n, "ReLU") for n in names]
        edges += list(zip([last] + names[:-1], names))
        shortcut = last
        if b % 4 == 0:
            nodes += [Node(f"b{b}.down", "ReLU"), Node(f"b{b}.dn", "ReLU")]
            edges += [(last, f"b{b}.down"), (f"b{b}.down", f"b{b}.dn")]
            shortcut = f"b{b}.dn"
        nodes += [Node(f"b{b}.add", "Add"), Node(f"b{b}.out", "ReLU")]
        edges += [(names[-1], f"b{b}.add"), (shortcut, f"b{b}.add"), (f"b{b}.add", f"b{b}.out")]
        last = f"b{b}.out"
    return Design.from_parts("residual", nodes, edges)


def test_a_thousand_nodes_lay_out_in_well_under_a_second():
    design = residual(96)
    assert len(design) > 1000
    t0 = time.perf_counter()
    lay = layout(design)
    elapsed = time.perf_counter() - t0
    check(design, lay)
    assert elapsed < 0.5, f"{elapsed:.2f} s"
    # the main path is one column
    main = [n for n in design.node_ids if not n.endswith(("down", "dn"))]
    assert len({lay.cards[n][0] for n in main}) == 1


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_templates_are_saved_with_the_layouts_positions(template):
    """resources/templates/relayout.py keeps them so: a template opens as the layout draws it,
    every connection on its route."""
    design = template.load()
    assert {n.id: n.position for n in design.nodes} == layout(design).positions()


# ------------------------------------------------------------------ the router for moved cards


@st.composite
def scattered_cards(draw):
    """Cards on free positions (no two overlapping), two of them to connect."""
    n = draw(st.integers(2, 12))
    spots = draw(st.lists(st.tuples(st.integers(-6, 6), st.integers(0, 8)), min_size=n,
                          max_size=n, unique=True))
    jitter = draw(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40)), min_size=n,
                           max_size=n))
    cards = [(x * 270.0 + dx - CARD_W / 2, y * 140.0 + dy, CARD_W, CARD_H)
             for (x, y), (dx, dy) in zip(spots, jitter)]
    s, t = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    return cards, s, t


@settings(max_examples=300, deadline=None)
@given(scattered_cards())
def test_routes_around_cards_avoid_them(case):
    cards, s, t = case
    sx, sy, sw, sh = cards[s]
    tx, ty, tw, th = cards[t]
    start, end = (sx + sw / 2, sy + sh), (tx + tw / 2, ty)

    def cards_in(box):
        return cards
    points, how = route(start, end, cards_in)
    assert points[0] == start and points[-1] == end
    assert how in (STRAIGHT, LANE, CROSSING)
    if how == CROSSING:
        return
    for i, card in enumerate(cards):
        pieces = list(zip(points, points[1:]))
        if i in (s, t):  # its own cards: only where it leaves and enters them
            pieces = pieces[1:-1]
        assert not any(route_crosses([p, q], card, ROUTE_CLEARANCE - 1e-9) for p, q in pieces), \
            (i, points)


def test_route_goes_straight_when_clear_and_around_a_card_in_the_way():
    source, target = (-108.0, 0.0, CARD_W, CARD_H), (-108.0, 2 * ROW, CARD_W, CARD_H)
    middle = (-108.0, ROW, CARD_W, CARD_H)
    start, end = (0.0, CARD_H), (0.0, 2 * ROW)
    points, how = route(start, end, lambda box: [source, target])
    assert how == STRAIGHT and points == [start, end]
    points, how = route(start, end, lambda box: [source, middle, target])
    assert how == LANE
    assert not route_crosses(points, middle)
    # the lane is beside the card in the way, a little off its side
    assert {p[0] for p in points[1:-1]} & {108.0 + LANE_CLEARANCE, -108.0 - LANE_CLEARANCE}
    # walled in: drawn straight, and said so
    wall = [(x, ROW - 40, CARD_W, CARD_H + 80) for x in range(-5000, 5000, 200)]
    points, how = route(start, end, lambda box: [source, target] + wall)
    assert how == CROSSING and points == [start, end]
