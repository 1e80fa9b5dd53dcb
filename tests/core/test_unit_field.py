"""Where one unit looks in the input (designer.core.unit_field): the unit's window against an
independent implementation of the lecture's receptive-field recurrence, and against a brute-force
propagation of pixel index sets through the layers; the layer-by-layer path of windows; and the
in-image part / padding tests at the borders."""
from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest

from designer.core.analysis import Analysis
from designer.core.layers import AxisField, ReceptiveField
from designer.core.unit_field import UnitWindow, field_path, unit_window
from designer.io.design_file import design_from_json

# ----------------------------------------------------------------- building designs

SPATIAL_SAME = ("ReLU", "BatchNorm2d", "Tanh", "Sigmoid", "Dropout")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def make_design(input_chw, layers, edges=None):
    """A design from JSON text: Input then ``(id, type, params)``; a chain unless ``edges``."""
    c, h, w = input_chw
    nodes = [{"id": "input", "type": "Input", "params": {"channels": c, "height": h, "width": w}}]
    nodes += [{"id": i, "type": t, "params": dict(p)} for i, t, p in layers]
    if edges is None:
        ids = [n["id"] for n in nodes]
        edges = [[a, b] for a, b in zip(ids, ids[1:])]
    text = json.dumps({"format": "cnn-designer", "version": 1, "name": "unit field test",
                       "nodes": nodes, "edges": [list(e) for e in edges]})
    return design_from_json(text)


def analyse(design):
    infos = Analysis(design).infos_by_id()
    sources = {n: design.sources(n) for n in design.node_ids}
    return infos, sources


# ----------------------------------------------------------------- the independent reference

def layer_geometry(layer_type, params):
    """(kernel, stride, padding, dilation) pairs of a windowed layer, defaults as in PyTorch."""
    k = _pair(params["kernel_size"])
    default_stride = k if layer_type in ("MaxPool2d", "AvgPool2d") else (1, 1)
    s = _pair(params["stride"]) if params.get("stride") is not None else default_stride
    p = _pair(params.get("padding", 0))
    d = _pair(params.get("dilation", 1))
    return k, s, p, d


def reference_chain(input_hw, layers):
    """Per layer id: ((size, jump, start) per axis as Fractions, (H, W)), by the lecture's
    recurrence: k_eff = d(k−1)+1, size' = size + (k_eff−1)·jump, jump' = jump·stride,
    start' = start + ((k_eff−1)/2 − pad)·jump; output n' = ⌊(n + 2p − k_eff)/s⌋ + 1."""
    axes = [(Fraction(1), Fraction(1), Fraction(0)), (Fraction(1), Fraction(1), Fraction(0))]
    hw = list(input_hw)
    out = {}
    for node_id, t, params in layers:
        if t in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            k, s, p, d = layer_geometry(t, params)
            new_axes, new_hw = [], []
            for a in (0, 1):
                size, jump, start = axes[a]
                eff = d[a] * (k[a] - 1) + 1
                new_axes.append((size + (eff - 1) * jump, jump * s[a],
                                 start + (Fraction(eff - 1, 2) - p[a]) * jump))
                new_hw.append((hw[a] + 2 * p[a] - eff) // s[a] + 1)
            axes, hw = new_axes, new_hw
        else:
            assert t in SPATIAL_SAME, t
        out[node_id] = (tuple(axes), tuple(hw))
    return out


def reference_window(axes, row, col):
    """(top, left, bottom, right) of unit (row, col): the window of ``size`` pixels centred on
    start + i·jump spans [centre − (size − 1)/2, that + size)."""
    (rs, rj, r0), (cs, cj, c0) = axes
    top = r0 + row * rj - (rs - 1) / 2
    left = c0 + col * cj - (cs - 1) / 2
    return top, left, top + rs, left + cs


def assert_window(w: UnitWindow, expected):
    top, left, bottom, right = expected
    assert w.top == pytest.approx(float(top), abs=1e-9)
    assert w.left == pytest.approx(float(left), abs=1e-9)
    assert w.bottom == pytest.approx(float(bottom), abs=1e-9)
    assert w.right == pytest.approx(float(right), abs=1e-9)
    assert w.height == pytest.approx(float(bottom - top), abs=1e-9)
    assert w.width == pytest.approx(float(right - left), abs=1e-9)


def influence(input_hw, layers, upto, unit, clip=True):
    """Brute force: the set of input pixels (r, c) that unit ``unit`` of layer ``upto`` depends
    on, propagating index sets back layer by layer. Output o of a window layer reads input
    positions o·s − p + j·d, j = 0 … k−1; positions outside the previous layer's map are padding
    and are dropped when ``clip`` (without it the layers are taken as infinite planes)."""
    hws = [tuple(input_hw)]
    geometry = []
    for node_id, t, params in layers:
        if t in ("Conv2d", "MaxPool2d", "AvgPool2d"):
            k, s, p, d = layer_geometry(t, params)
            geometry.append((k, s, p, d))
            hws.append(tuple((hws[-1][a] + 2 * p[a] - (d[a] * (k[a] - 1) + 1)) // s[a] + 1
                             for a in (0, 1)))
        else:
            geometry.append(None)
            hws.append(hws[-1])
        if node_id == upto:
            break
    units = {tuple(unit)}
    for level in range(len(geometry) - 1, -1, -1):
        g = geometry[level]
        if g is None:
            continue
        (kr, kc), (sr, sc), (pr, pc), (dr, dc) = g
        h, w = hws[level]
        below = set()
        for orow, ocol in units:
            for j in range(kr):
                r = orow * sr - pr + j * dr
                if clip and not 0 <= r < h:
                    continue
                for m in range(kc):
                    c = ocol * sc - pc + m * dc
                    if clip and not 0 <= c < w:
                        continue
                    below.add((r, c))
        units = below
    return units


def bounding_box(pixels):
    rows = [r for r, _ in pixels]
    cols = [c for _, c in pixels]
    return (min(rows), min(cols), max(rows) + 1, max(cols) + 1)


# ----------------------------------------------------------------- unit_window by hand

def test_unit_window_from_axis_fields_by_hand():
    field = ReceptiveField(AxisField(5, 2, 1.5), AxisField(3, 1, -1.0))
    w = unit_window("x", field, 2, 4)
    # rows: centre 1.5 + 2·2 = 5.5, 5 wide → [3.5, 8.5); cols: centre −1 + 4 = 3 → [2, 5)
    assert (w.top, w.height, w.bottom) == (3.5, 5, 8.5)
    assert (w.left, w.width, w.right) == (2.0, 3, 5.0)
    assert w.node_ids == ("x",)
    assert w.unit == (2, 4)
    assert w.field == field


def test_input_pixel_is_its_own_one_pixel_window():
    field = ReceptiveField(AxisField(1, 1, 0.0), AxisField(1, 1, 0.0))
    w = unit_window("input", field, 3, 7)
    assert (w.top, w.left, w.bottom, w.right) == (3, 7, 4, 8)


# ----------------------------------------------------------------- the lecture's cases

def test_two_3x3_convolutions_see_5x5():
    layers = [("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3}),
              ("conv2", "Conv2d", {"out_channels": 1, "kernel_size": 3})]
    infos, _ = analyse(make_design((1, 15, 15), layers))
    w = unit_window("conv2", infos["conv2"].field, 0, 0)
    assert (w.top, w.left, w.height, w.width) == (0, 0, 5, 5)
    w = unit_window("conv2", infos["conv2"].field, 3, 8)
    assert (w.top, w.left, w.bottom, w.right) == (3, 8, 8, 13)
    assert infos["conv2"].shape == (1, 11, 11)


def test_three_3x3_convolutions_see_7x7_lecture_template():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "resources/templates/"
            "lecture-receptive-field.json").read_text()
    design = design_from_json(text)
    infos, _ = analyse(design)
    assert infos["conv3"].shape == (1, 9, 9)
    for r, c in [(0, 0), (4, 4), (8, 8), (2, 7)]:
        w = unit_window("conv3", infos["conv3"].field, r, c)
        assert (w.top, w.left, w.height, w.width) == (r, c, 7, 7)
        assert not w.reaches_padding(15, 15)
    # and the layers before it: 3 and 5
    assert unit_window("conv1", infos["conv1"].field, 0, 0).height == 3
    assert unit_window("relu2", infos["relu2"].field, 0, 0).height == 5


CHAINS = {
    "two 3x3": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
                ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3})],
    "three 3x3 padded": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
                         ("r1", "ReLU", {}),
                         ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
                         ("c3", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1})],
    "stride 2": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2}),
                 ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1}),
                 ("c3", "Conv2d", {"out_channels": 2, "kernel_size": 3})],
    "conv pool conv pool": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 5, "padding": 2}),
                            ("p1", "MaxPool2d", {"kernel_size": 2}),
                            ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
                            ("p2", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                            ("c3", "Conv2d", {"out_channels": 2, "kernel_size": 1})],
    "avg pool overlapping": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
                             ("p1", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                             ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 2})],
    "dilated": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 2}),
                ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "dilation": 3,
                                  "padding": 2}),
                ("p1", "MaxPool2d", {"kernel_size": 3, "stride": 1, "dilation": 2})],
    "rectangular 3x5": [("c1", "Conv2d", {"out_channels": 2, "kernel_size": [3, 5],
                                          "stride": [1, 2], "padding": [1, 0]}),
                        ("c2", "Conv2d", {"out_channels": 2, "kernel_size": [3, 5],
                                          "stride": [2, 1], "padding": [0, 2],
                                          "dilation": [1, 2]}),
                        ("p1", "MaxPool2d", {"kernel_size": [2, 3], "stride": [2, 1]})],
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_unit_window_matches_the_recurrence_on_every_layer_and_unit(name):
    layers = CHAINS[name]
    design = make_design((2, 37, 41), layers)
    infos, _ = analyse(design)
    expected = reference_chain((37, 41), layers)
    for node_id, _, _ in layers:
        info = infos[node_id]
        axes, hw = expected[node_id]
        assert not info.errors, info.errors
        assert info.shape[1:] == hw, node_id
        h, w = hw
        for r in range(h):
            for c in range(w):
                win = unit_window(node_id, info.field, r, c)
                assert_window(win, reference_window(axes, r, c))
                assert win.unit == (r, c) and win.node_ids == (node_id,)


def test_rectangular_kernel_gives_different_row_and_column_windows():
    layers = [("c", "Conv2d", {"out_channels": 1, "kernel_size": [3, 5]})]
    infos, _ = analyse(make_design((1, 9, 9), layers))
    w = unit_window("c", infos["c"].field, 2, 2)
    assert (w.top, w.bottom) == (2, 5)  # 3 rows
    assert (w.left, w.right) == (2, 7)  # 5 columns
    layers = CHAINS["rectangular 3x5"]
    infos, _ = analyse(make_design((1, 37, 41), layers))
    axes, _ = reference_chain((37, 41), layers)["p1"]
    assert axes[0] != axes[1]
    w = unit_window("p1", infos["p1"].field, 1, 1)
    assert w.height != w.width
    assert_window(w, reference_window(axes, 1, 1))


def test_stride_and_pooling_by_hand():
    # 3x3 stride 2: field 3, jump 2; then 2x2 pool: 3 + 1·2 = 5, jump 4, start 1 + 0.5·2 = 2
    layers = [("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 2}),
              ("p", "MaxPool2d", {"kernel_size": 2})]
    infos, _ = analyse(make_design((1, 17, 17), layers))
    w = unit_window("c", infos["c"].field, 1, 2)
    assert (w.top, w.left, w.height) == (2, 4, 3)
    w = unit_window("p", infos["p"].field, 1, 3)
    # centre 2 + 4·1 = 6 → [4, 9) rows; 2 + 4·3 = 14 → [12, 17) cols
    assert (w.top, w.bottom, w.left, w.right) == (4, 9, 12, 17)


# ----------------------------------------------------------------- brute force

def _random_chain(rng: random.Random, nice: bool):
    """A random chain of Conv2d / MaxPool2d / AvgPool2d (and a ReLU now and then) with the
    output sizes it gives, or None if it shrank to nothing. ``nice``: stride ≤ kernel,
    dilation 1, padding < kernel and whole output sizes, where the theoretical window is exact
    on the image too."""
    hw = [rng.randint(6, 18), rng.randint(6, 18)]
    input_hw = tuple(hw)
    layers = []
    for i in range(rng.randint(1, 4)):
        if rng.random() < 0.2:
            layers.append((f"r{i}", "ReLU", {}))
            continue
        t = rng.choice(["Conv2d", "Conv2d", "MaxPool2d", "AvgPool2d"])
        for _ in range(50):
            k = [rng.randint(1, 5), rng.randint(1, 5)]
            d = [1, 1] if nice or t == "AvgPool2d" else [rng.randint(1, 3), rng.randint(1, 3)]
            s = [rng.randint(1, k[a] if nice else 3) for a in (0, 1)]
            pmax = [(k[a] // 2) if t != "Conv2d" else (k[a] - 1 if nice else d[a] * (k[a] - 1) + 1)
                    for a in (0, 1)]
            p = [rng.randint(0, pmax[a]) for a in (0, 1)]
            eff = [d[a] * (k[a] - 1) + 1 for a in (0, 1)]
            room = [hw[a] + 2 * p[a] - eff[a] for a in (0, 1)]
            if min(room) < 0:
                continue
            if nice and any(room[a] % s[a] for a in (0, 1)):
                continue
            break
        else:
            return None
        params = {"kernel_size": k, "stride": s, "padding": p}
        if t == "Conv2d":
            params["out_channels"] = 1
        if t != "AvgPool2d":
            params["dilation"] = d
        layers.append((f"l{i}", t, params))
        hw = [room[a] // s[a] + 1 for a in (0, 1)]
    return input_hw, layers


def _chains(nice: bool, count: int):
    rng = random.Random(1234 if nice else 4321)
    found = []
    while len(found) < count:
        chain = _random_chain(rng, nice)
        if chain is not None:
            found.append(chain)
    return found


def _units_to_check(h, w, rng):
    corners = {(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)}
    corners |= {(rng.randrange(h), rng.randrange(w)) for _ in range(3)}
    return sorted(corners)


@pytest.mark.parametrize("index", range(30))
def test_window_is_the_bounding_box_of_the_unclipped_index_set(index):
    """On infinite planes every configuration (dilation, stride > kernel, ragged sizes) gives
    an influence set whose bounding box is the theoretical window exactly."""
    input_hw, layers = _chains(nice=False, count=30)[index]
    infos, _ = analyse(make_design((1, *input_hw), layers))
    rng = random.Random(index)
    for node_id, _, _ in layers:
        info = infos[node_id]
        assert not info.errors, info.errors
        _, h, w = info.shape
        for r, c in _units_to_check(h, w, rng):
            win = unit_window(node_id, info.field, r, c)
            box = bounding_box(influence(input_hw, layers, node_id, (r, c), clip=False))
            assert (win.top, win.left, win.bottom, win.right) == box, (layers, node_id, (r, c))


@pytest.mark.parametrize("index", range(30))
def test_in_image_part_contains_the_clipped_index_set(index):
    """With padding dropped the pixels a unit really reads always lie inside its window's
    in-image part (holes from dilation or stride may leave its border unread)."""
    input_hw, layers = _chains(nice=False, count=30)[index]
    infos, _ = analyse(make_design((1, *input_hw), layers))
    rng = random.Random(index)
    rows, cols = input_hw
    for node_id, _, _ in layers:
        info = infos[node_id]
        _, h, w = info.shape
        for r, c in _units_to_check(h, w, rng):
            win = unit_window(node_id, info.field, r, c)
            pixels = influence(input_hw, layers, node_id, (r, c))
            part = win.inside(rows, cols)
            if not pixels:
                continue  # a unit that reads only padding
            assert part is not None
            top, left, bottom, right = bounding_box(pixels)
            assert part[0] <= top and part[1] <= left and bottom <= part[2] and right <= part[3]


@pytest.mark.parametrize("index", range(40))
def test_in_image_part_is_the_bounding_box_of_the_pixels_read(index):
    """Stride ≤ kernel, no dilation, whole output sizes: the in-image part of the window is
    exactly the bounding box of the input pixels the unit reads (padding dropped)."""
    input_hw, layers = _chains(nice=True, count=40)[index]
    infos, _ = analyse(make_design((1, *input_hw), layers))
    rng = random.Random(100 + index)
    rows, cols = input_hw
    for node_id, _, _ in layers:
        info = infos[node_id]
        assert not info.errors and not info.warnings, (info.errors, info.warnings)
        _, h, w = info.shape
        for r, c in _units_to_check(h, w, rng):
            win = unit_window(node_id, info.field, r, c)
            pixels = influence(input_hw, layers, node_id, (r, c))
            assert pixels, (layers, node_id, (r, c))
            assert win.inside(rows, cols) == bounding_box(pixels), (layers, node_id, (r, c))
            reads_padding = len(influence(input_hw, layers, node_id, (r, c), clip=False)) \
                > len(pixels)
            assert win.reaches_padding(rows, cols) == reads_padding


def test_brute_force_two_3x3_padded_corner_by_hand():
    layers = [("a", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
              ("b", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1})]
    # the helper itself, checked by hand: unit (0, 0) of b reads rows/cols 0..2 of the input
    assert influence((8, 8), layers, "b", (0, 0)) == {(r, c) for r in range(3) for c in range(3)}
    assert bounding_box(influence((8, 8), layers, "b", (0, 0), clip=False)) == (-2, -2, 3, 3)


# ----------------------------------------------------------------- inside / reaches_padding

def test_corner_unit_hangs_out_by_the_padding():
    layers = [("c", "Conv2d", {"out_channels": 1, "kernel_size": 5, "padding": 2})]
    infos, _ = analyse(make_design((1, 10, 12), layers))
    f = infos["c"].field
    w = unit_window("c", f, 0, 0)
    assert (w.top, w.left) == (-2, -2)
    assert w.reaches_padding(10, 12)
    assert w.inside(10, 12) == (0, 0, 3, 3)
    w = unit_window("c", f, 9, 11)  # bottom-right corner
    assert (w.bottom, w.right) == (12, 14)
    assert w.reaches_padding(10, 12)
    assert w.inside(10, 12) == (7, 9, 10, 12)
    w = unit_window("c", f, 0, 5)  # top edge only
    assert w.reaches_padding(10, 12)
    assert w.inside(10, 12) == (0, 3, 3, 8)
    w = unit_window("c", f, 2, 2)  # just inside: touches the border, not the padding
    assert (w.top, w.left) == (0, 0)
    assert not w.reaches_padding(10, 12)
    assert w.inside(10, 12) == (0, 0, 5, 5)
    w = unit_window("c", f, 7, 9)  # bottom == rows, right == cols: still no padding
    assert (w.bottom, w.right) == (10, 12)
    assert not w.reaches_padding(10, 12)


def test_two_padded_layers_hang_out_by_both_paddings():
    layers = [("a", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
              ("b", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1})]
    infos, _ = analyse(make_design((1, 8, 8), layers))
    w = unit_window("b", infos["b"].field, 0, 0)
    assert (w.top, w.left, w.height, w.width) == (-2, -2, 5, 5)
    assert w.inside(8, 8) == (0, 0, 3, 3)
    assert w.reaches_padding(8, 8)


def test_window_all_in_padding_has_no_inside():
    # a 1×1 conv with padding 3 on 4×4: units 0..2 read only padding
    layers = [("c", "Conv2d", {"out_channels": 1, "kernel_size": 1, "padding": 3})]
    infos, _ = analyse(make_design((1, 4, 4), layers))
    assert infos["c"].shape == (1, 10, 10)
    w = unit_window("c", infos["c"].field, 0, 5)
    assert (w.top, w.bottom) == (-3, -2)
    assert w.inside(4, 4) is None
    assert w.reaches_padding(4, 4)
    w = unit_window("c", infos["c"].field, 5, 9)  # column 9 → pixel 6, off the right
    assert w.inside(4, 4) is None
    w = unit_window("c", infos["c"].field, 3, 3)  # pixel (0, 0) itself
    assert w.inside(4, 4) == (0, 0, 1, 1)
    assert not w.reaches_padding(4, 4)


def test_inside_and_reaches_padding_on_hand_made_windows():
    f = ReceptiveField(AxisField(1, 1, 0.0), AxisField(1, 1, 0.0))
    w = UnitWindow(("x",), (0, 0), top=-0.5, left=3.0, height=2.0, width=1.5, field=f)
    assert w.inside(5, 5) == (0.0, 3.0, 1.5, 4.5)
    assert w.reaches_padding(5, 5)
    w = UnitWindow(("x",), (0, 0), top=4.0, left=4.5, height=1.0, width=0.5, field=f)
    assert w.inside(5, 5) == (4.0, 4.5, 5.0, 5.0)
    assert not w.reaches_padding(5, 5)
    # touching the image only along an edge is not being on it
    w = UnitWindow(("x",), (0, 0), top=5.0, left=0.0, height=2.0, width=2.0, field=f)
    assert w.inside(5, 5) is None
    w = UnitWindow(("x",), (0, 0), top=0.0, left=-2.0, height=2.0, width=2.0, field=f)
    assert w.inside(5, 5) is None


# ----------------------------------------------------------------- field_path

def _nearest_reference(axes, hw, centre):
    """Every unit (row, col) whose window centre is nearest ``centre`` (ties allowed)."""
    best = []
    for a in (0, 1):
        size, jump, start = axes[a]
        dist = [abs(start + i * jump - Fraction(centre[a])) for i in range(hw[a])]
        m = min(dist)
        best.append({i for i, x in enumerate(dist) if x == m})
    return best


def _check_path(path, layers, input_hw, node_id, unit, expected_groups):
    """``path`` against the reference: groups of ids in order, each window that of the unit of
    its first layer nearest the target's centre."""
    assert [w.node_ids for w in path] == expected_groups
    ref = reference_chain(input_hw, layers)
    target_axes, _ = ref[node_id]
    centre = (target_axes[0][2] + unit[0] * target_axes[0][1],
              target_axes[1][2] + unit[1] * target_axes[1][1])
    for w in path:
        axes, hw = ref[w.node_ids[0]]
        rows_ok, cols_ok = _nearest_reference(axes, hw, centre)
        assert w.unit[0] in rows_ok and w.unit[1] in cols_ok, (w.node_ids, w.unit)
        assert_window(w, reference_window(axes, *w.unit))
        for other in w.node_ids[1:]:  # every merged layer has this very window
            o_axes, o_hw = ref[other]
            assert_window(w, reference_window(o_axes, *w.unit))
    assert node_id in path[-1].node_ids


def test_field_path_of_the_lecture_chain_merges_activations():
    layers = [("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3}),
              ("relu1", "ReLU", {}),
              ("conv2", "Conv2d", {"out_channels": 1, "kernel_size": 3}),
              ("relu2", "ReLU", {}),
              ("conv3", "Conv2d", {"out_channels": 1, "kernel_size": 3})]
    infos, sources = analyse(make_design((1, 15, 15), layers))
    path = field_path("conv3", (4, 4), sources, infos)
    assert [w.node_ids for w in path] == [("conv1", "relu1"), ("conv2", "relu2"), ("conv3",)]
    # all centred on input pixel (7, 7), growing 3, 5, 7
    assert [(w.top, w.left, w.height) for w in path] == [(6, 6, 3), (5, 5, 5), (4, 4, 7)]
    assert [w.unit for w in path] == [(6, 6), (5, 5), (4, 4)]
    _check_path(path, layers, (15, 15), "conv3", (4, 4),
                [("conv1", "relu1"), ("conv2", "relu2"), ("conv3",)])


def test_field_path_of_an_activation_ends_in_its_layers_entry():
    layers = [("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
              ("bn1", "BatchNorm2d", {}),
              ("relu1", "ReLU", {}),
              ("conv2", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
              ("relu2", "ReLU", {})]
    infos, sources = analyse(make_design((1, 9, 9), layers))
    path = field_path("relu2", (0, 8), sources, infos)
    _check_path(path, layers, (9, 9), "relu2", (0, 8),
                [("conv1", "bn1", "relu1"), ("conv2", "relu2")])
    assert path[-1].unit == (0, 8)
    assert (path[-1].top, path[-1].left, path[-1].height) == (-2, 6, 5)


@pytest.mark.parametrize("unit", [(0, 0), (3, 5), (6, 6), (2, 0)])
def test_field_path_through_strides_and_pools(unit):
    layers = [("conv1", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
              ("relu1", "ReLU", {}),
              ("pool1", "MaxPool2d", {"kernel_size": 2}),
              ("conv2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2,
                                   "padding": 1}),
              ("relu2", "ReLU", {}),
              ("conv3", "Conv2d", {"out_channels": 2, "kernel_size": [3, 1]})]
    design = make_design((3, 30, 30), layers)
    infos, sources = analyse(design)
    assert infos["conv3"].shape == (2, 6, 8)
    unit = (min(unit[0], 5), unit[1])
    path = field_path("conv3", unit, sources, infos)
    _check_path(path, layers, (30, 30), "conv3", unit,
                [("conv1", "relu1"), ("pool1",), ("conv2", "relu2"), ("conv3",)])


def test_field_path_merges_a_1x1_convolution_with_the_layer_before():
    layers = [("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
              ("relu1", "ReLU", {}),
              ("mix", "Conv2d", {"out_channels": 2, "kernel_size": 1})]
    infos, sources = analyse(make_design((1, 8, 8), layers))
    path = field_path("mix", (2, 3), sources, infos)
    assert [w.node_ids for w in path] == [("conv1", "relu1", "mix")]
    assert (path[0].top, path[0].left, path[0].height, path[0].width) == (2, 3, 3, 3)


def _residual(shortcut_first: bool):
    nodes = [("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("relu1", "ReLU", {}),
             ("conv2", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("relu2", "ReLU", {}),
             ("conv3", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("add", "Add", {}),
             ("relu3", "ReLU", {})]
    into_add = [["relu1", "add"], ["conv3", "add"]]
    if not shortcut_first:
        into_add.reverse()
    edges = [["input", "conv1"], ["conv1", "relu1"], ["relu1", "conv2"], ["conv2", "relu2"],
             ["relu2", "conv3"], *into_add, ["add", "relu3"]]
    return nodes, make_design((4, 12, 12), nodes, edges)


@pytest.mark.parametrize("shortcut_first", [True, False])
def test_field_path_of_a_residual_block_follows_the_larger_field(shortcut_first):
    nodes, design = _residual(shortcut_first)
    infos, sources = analyse(design)
    assert set(sources["add"]) == {"relu1", "conv3"}
    assert sources["add"][0] == ("relu1" if shortcut_first else "conv3")
    path = field_path("relu3", (5, 7), sources, infos)
    assert [w.node_ids for w in path] == [("conv1", "relu1"), ("conv2", "relu2"),
                                          ("conv3", "add", "relu3")]
    assert [(w.height, w.width) for w in path] == [(3, 3), (5, 5), (7, 7)]
    # all centred on the unit itself (padding 1 keeps positions)
    for w in path:
        assert (w.top + (w.height - 1) / 2, w.left + (w.width - 1) / 2) == (5, 7)
        assert w.unit == (5, 7)


def test_field_path_follows_the_shortcut_when_it_sees_more():
    # the shortcut holds a 7×7 conv, the main path a 3×3 one
    nodes = [("stem", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
             ("small", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
             ("big", "Conv2d", {"out_channels": 2, "kernel_size": 7, "padding": 3}),
             ("add", "Add", {})]
    for order in (["small", "big"], ["big", "small"]):
        edges = [["input", "stem"], ["stem", "small"], ["stem", "big"],
                 [order[0], "add"], [order[1], "add"]]
        infos, sources = analyse(make_design((1, 16, 16), nodes, edges))
        path = field_path("add", (4, 9), sources, infos)
        assert [w.node_ids for w in path] == [("stem",), ("big", "add")]
        assert (path[-1].top, path[-1].left, path[-1].height) == (1, 6, 7)
        assert (path[0].top, path[0].left, path[0].height) == (4, 9, 1)


def test_field_path_of_a_resnet_template_stays_on_maps():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "resources/templates/resnet18.json").read_text()
    design = design_from_json(text)
    infos, sources = analyse(design)
    _, h, w = infos["layer2.0.add"].shape
    path = field_path("layer2.0.add", (h - 1, 0), sources, infos)
    ids = [i for win in path for i in win.node_ids]
    assert ids[-1] == "layer2.0.add"
    assert "input" not in ids and "layer2.0.downsample.0" not in ids  # the 1×1 shortcut is smaller
    assert "layer2.0.conv2" in ids and "conv1" in ids
    heights = [win.height for win in path]
    assert heights == sorted(heights) and len(set(heights)) == len(heights)
    # neighbours in the list never have the same window
    for a, b in zip(path, path[1:]):
        assert (a.top, a.left, a.height, a.width) != (b.top, b.left, b.height, b.width)


@pytest.mark.parametrize("node", ["flat", "fc", "soft"])
def test_field_path_of_flat_nodes_is_empty(node):
    layers = [("conv1", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
              ("flat", "Flatten", {}),
              ("fc", "Linear", {"out_features": 3}),
              ("soft", "Softmax", {})]
    infos, sources = analyse(make_design((1, 6, 6), layers))
    assert len(infos[node].shape) == 1
    assert field_path(node, (0, 0), sources, infos) == []
    assert field_path("conv1", (0, 0), sources, infos) != []


def test_field_path_of_the_input_is_empty():
    layers = [("conv1", "Conv2d", {"out_channels": 2, "kernel_size": 3})]
    infos, sources = analyse(make_design((1, 6, 6), layers))
    assert field_path("input", (2, 2), sources, infos) == []
    path = field_path("conv1", (2, 2), sources, infos)
    assert [w.node_ids for w in path] == [("conv1",)]  # no entry for the Input


def test_field_path_clamps_to_the_map_of_earlier_layers():
    """A unit of a padded layer whose centre lies in the padding: earlier layers give the
    nearest unit they have, the border one."""
    layers = [("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3}),
              ("conv2", "Conv2d", {"out_channels": 1, "kernel_size": 1, "padding": 2})]
    infos, sources = analyse(make_design((1, 8, 8), layers))
    # conv2 unit 0 is centred on −1 (padding); conv1's units are centred on 1 … 6
    path = field_path("conv2", (0, 9), sources, infos)
    assert [w.node_ids for w in path] == [("conv1",), ("conv2",)]
    assert path[0].unit == (0, 5)
    assert path[1].unit == (0, 9)
    assert (path[1].top, path[1].left) == (-2, 7)


def test_field_path_picks_the_nearest_unit_not_the_one_below():
    """``infos`` may be any objects with ``shape`` and ``field``: hand-made fields whose centres
    don't line up (as after a merge or adaptive pooling) must give the nearest unit, rounding
    up or down."""
    from types import SimpleNamespace as NS

    def field(size, jump, start):
        return ReceptiveField(AxisField(size, jump, start), AxisField(size, jump, start))

    infos = {"input": NS(shape=(1, 20, 20), field=field(1, 1, 0.0)),
             "a": NS(shape=(1, 20, 20), field=field(3, 1, 0.0)),
             "b": NS(shape=(1, 6, 6), field=field(6, 3, 0.8))}
    sources = {"input": [], "a": ["input"], "b": ["a"]}
    # b's unit (2, 1) is centred on (6.8, 3.8): a's nearest units are 7 and 4 (not 6 and 3)
    path = field_path("b", (2, 1), sources, infos)
    assert [w.node_ids for w in path] == [("a",), ("b",)]
    assert path[0].unit == (7, 4)
    assert (path[0].top, path[0].left) == (6, 3)
    # and (0, 0), centred on 0.8 → unit 1; (5, 5) centred on 15.8 → 16
    assert field_path("b", (0, 5), sources, infos)[0].unit == (1, 16)
