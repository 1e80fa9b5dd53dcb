"""The pure image-making functions of the activation and run panels, against slow loop references
written here: tiling channel maps into one viridis image (``tile``, ``grid_columns``,
``gap_for``), per-map statistics, the first convolution's filters as images and the network's
input as RGB. No widget is created, so no QApplication is needed."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from designer.app.run.pictures import (DEAD_RGB, GAP_RGB, LUT, NAN_RGB, NEGINF_RGB, POSINF_RGB,
                                   colour_map, display_rgb, filter_images, finite_range, gap_for,
                                   grid_columns, map_statistics, nonfinite_maps, shared_levels,
                                   tile)

F32 = np.float32


# ----------------------------------------------------------------- references

def ref_columns(count: int, h: int, w: int) -> int:
    """Columns of a near-square grid: the fewest (≥ 1, ≤ count) with cols·w ≥ rows·h for
    rows = count/cols, i.e. cols² · w ≥ count · h (integers only)."""
    cols = 1
    while cols < count and cols * cols * w < count * h:
        cols += 1
    return cols


def ref_index(v, lo, span) -> int:
    """Colour index of one value: ⌊(v − lo)/span · 255⌋ clipped to 0 … 255, in float32 as the
    panel computes it (one scalar at a time)."""
    t = (F32(v) - F32(lo)) / F32(span) * F32(255)
    assert isinstance(t, np.float32)
    if t <= 0:
        return 0
    if t >= 255:
        return 255
    return int(math.floor(float(t)))


def ref_tile(maps, levels, dead, gap, cols=None):
    """Slow tiling: map i at grid cell (i // cols, i % cols), ``gap`` pixels between the maps
    and around the grid, so map i's top-left pixel is at (gap + row·(h + gap), gap +
    column·(w + gap)); gaps GAP_RGB; a dead map's frame, the gap pixels on its four sides
    (corners included), DEAD_RGB (its own pixels keep their colours); unused cells all
    GAP_RGB."""
    c, h, w = maps.shape
    cols = ref_columns(c, h, w) if cols is None else cols
    rows = -(-c // cols)
    out = np.zeros((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), np.uint8)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = GAP_RGB
    for i in range(c):
        m = maps[i].astype(np.float32)
        if levels is None:
            lo = hi = F32(m[0, 0])
            for v in m.flat:
                lo, hi = min(lo, F32(v)), max(hi, F32(v))
        else:
            lo, hi = F32(levels[0]), F32(levels[1])
        span = hi - lo if hi > lo else F32(1)
        y0, x0 = gap + (i // cols) * (h + gap), gap + (i % cols) * (w + gap)
        for y in range(h):
            for x in range(w):
                out[y0 + y, x0 + x] = LUT[ref_index(m[y, x], lo, span)]
    for i in range(c):
        if dead[i]:
            y0, x0 = gap + (i // cols) * (h + gap), gap + (i % cols) * (w + gap)
            for y in range(y0 - gap, y0 + h + gap):
                for x in range(x0 - gap, x0 + w + gap):
                    if not (y0 <= y < y0 + h and x0 <= x < x0 + w):
                        out[y, x] = DEAD_RGB
    return out


def assert_rgb_close_to_rounding(actual, exact):
    """``actual`` (uint8) against exact values ``exact`` · 255 before rounding (float64): equal to
    the nearest integer, either neighbour allowed only on an exact .5 tie (within 1e-9)."""
    exact = np.asarray(exact, np.float64)
    assert actual.shape == exact.shape
    nearest = np.floor(exact + 0.5)
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-9
    ok = (actual == nearest) | (tie & (np.abs(actual.astype(np.float64) - exact) <= 0.5 + 1e-9))
    assert ok.all(), (actual[~ok][:10], exact[~ok][:10])


# ----------------------------------------------------------------- grid_columns, gap_for

@pytest.mark.parametrize("count, h, w, cols", [
    (1, 8, 8, 1), (4, 8, 8, 2), (10, 8, 8, 4), (16, 8, 8, 4), (17, 8, 8, 5), (64, 28, 28, 8),
    (96, 55, 55, 10), (10, 1, 100, 1), (10, 100, 1, 10), (3, 2, 8, 1), (8, 8, 2, 6)])
def test_grid_columns_by_hand(count, h, w, cols):
    assert grid_columns(count, h, w) == cols


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 2000), st.integers(1, 512), st.integers(1, 512))
def test_grid_columns_is_the_smallest_near_square_grid(count, h, w):
    cols = grid_columns(count, h, w)
    assert cols == ref_columns(count, h, w)
    assert 1 <= cols <= count
    rows = math.ceil(count / cols)
    assert rows * cols >= count


@pytest.mark.parametrize("h, w, gap", [(1, 1, 1), (3, 3, 1), (7, 7, 1), (14, 14, 1), (16, 16, 2),
                                       (28, 28, 3), (56, 56, 6), (112, 112, 11), (224, 224, 22),
                                       (4, 64, 6), (64, 4, 6)])
def test_gap_for_by_hand(h, w, gap):
    assert gap_for(h, w) == gap


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000))
def test_gap_is_about_a_tenth_of_the_longer_side(h, w):
    gap = gap_for(h, w)
    assert gap >= 1 and gap == gap_for(w, h)
    longest = max(h, w)
    if longest >= 5:
        assert abs(gap - longest / 10) <= 0.5
    else:
        assert gap == 1
    assert gap_for(longest + 1, 1) >= gap  # never shrinks as maps grow


# ----------------------------------------------------------------- tile: exact colours

def test_tile_shared_levels_exact_indices():
    """Values k/256 on levels (0, 1): every step is exact in float32, so the index is
    ⌊255·k/256⌋ (clipped) by integer arithmetic."""
    rng = np.random.default_rng(1)
    k = rng.integers(-60, 320, size=(5, 4, 6))
    k[0, 0, 0], k[1, 0, 0], k[2, 0, 0] = 0, 256, 255
    maps = (k / 256).astype(np.float32)
    out = tile(maps, (0.0, 1.0), np.zeros(5, bool), 2)
    expected_index = np.clip((255 * k) // 256, 0, 255)
    cols = ref_columns(5, 4, 6)
    assert cols == 2
    assert out.shape == (3 * (4 + 2) + 2, 2 * (6 + 2) + 2, 3)
    for i in range(5):
        y0, x0 = 2 + (i // cols) * 6, 2 + (i % cols) * 8
        for y in range(4):
            for x in range(6):
                assert tuple(out[y0 + y, x0 + x]) == tuple(LUT[expected_index[i, y, x]])
    assert tuple(out[2, 2]) == tuple(LUT[0])  # k = 0 → the lowest colour
    assert tuple(out[2, 10]) == tuple(LUT[255])  # k = 256 → the top colour
    assert tuple(out[8, 2]) == tuple(LUT[254])  # k = 255 → ⌊255·255/256⌋ = 254


def test_tile_shared_levels_clip_outside_values():
    maps = np.array([[[-5.0, 0.0], [1.0, 9.0]]], np.float32)
    out = tile(maps, (0.0, 1.0), np.zeros(1, bool), 1)
    assert out.shape == (4, 4, 3)
    assert [tuple(out[1, 1]), tuple(out[1, 2]), tuple(out[2, 1]), tuple(out[2, 2])] == \
        [tuple(LUT[0]), tuple(LUT[0]), tuple(LUT[255]), tuple(LUT[255])]


def test_tile_per_map_scaling_exact_indices():
    """Each map spans lo_i … lo_i + 2^m_i: per-map scaling puts its min at index 0, its max at
    255, and k/256 of the way at ⌊255·k/256⌋ — whatever the other maps hold."""
    rng = np.random.default_rng(2)
    c, h, w = 7, 3, 5
    k = rng.integers(0, 257, size=(c, h, w))
    k[:, 0, 0], k[:, 0, 1] = 0, 256  # each map reaches both ends
    lows = np.array([0.0, -3.0, 100.0, -0.5, 7.25, 1e-3 * 0, -1000.0])
    spans = 2.0 ** np.array([0, 3, -4, 1, 6, -10, 10])
    maps = (lows[:, None, None] + k / 256 * spans[:, None, None]).astype(np.float32)
    assert (maps.astype(np.float64) == lows[:, None, None] + k / 256 * spans[:, None, None]).all()
    out = tile(maps, None, np.zeros(c, bool), 1)
    cols = ref_columns(c, h, w)
    expected_index = (255 * k) // 256
    for i in range(c):
        y0, x0 = 1 + (i // cols) * (h + 1), 1 + (i % cols) * (w + 1)
        got = out[y0:y0 + h, x0:x0 + w]
        assert (got == LUT[expected_index[i]]).all(), i


def test_tile_constant_maps_do_not_divide_by_zero():
    maps = np.stack([np.full((4, 4), 3.5), np.zeros((4, 4)), np.full((4, 4), -2.0)]).astype(
        np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            per_map = tile(maps, None, np.array([False, True, False]), 1)
            shared = tile(maps[:1], (3.5, 3.5), np.zeros(1, bool), 1)
            nearly = tile(maps[:1], (3.5, 3.5 + 1e-12), np.zeros(1, bool), 1)  # equal in float32
    cols = ref_columns(3, 4, 4)
    for i in range(3):
        y0, x0 = 1 + (i // cols) * 5, 1 + (i % cols) * 5
        assert (per_map[y0:y0 + 4, x0:x0 + 4] == LUT[0]).all()
    assert (shared[1:5, 1:5] == LUT[0]).all()
    assert (nearly[1:5, 1:5] == LUT[0]).all()
    assert (per_map == ref_tile(maps, None, np.array([False, True, False]), 1)).all()


# ----------------------------------------------------------------- tile: layout and frames

def test_tile_layout_with_an_unfilled_last_row_and_a_dead_map():
    rng = np.random.default_rng(3)
    c, h, w, gap = 5, 2, 3, 1
    maps = rng.normal(size=(c, h, w)).astype(np.float32)
    maps[3] = 0
    dead = np.array([False, False, False, True, False])
    out = tile(maps, (-1.0, 1.0), dead, gap)
    # 5 maps of 2×3: cols = 2 (2² · 3 ≥ 5 · 2), rows = 3; cells 3 × 4 after a 1-pixel margin
    assert out.shape == (10, 9, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    gap_rgb, dead_rgb = np.array(GAP_RGB, np.uint8), np.array(DEAD_RGB, np.uint8)
    # the unused cell (grid row 2, col 1) is all gap
    assert (out[7:10, 5:9] == gap_rgb).all()
    # the margin around the grid is gap: the top row and the left column
    assert (out[0] == gap_rgb).all() and (out[:, 0] == gap_rgb).all()
    # map 3 sits at grid (1, 1): pixels rows 4–5, cols 5–7, framed on all four sides:
    # row 3 above, row 6 below, column 4 left, column 8 right (corners included)
    assert (out[4:6, 5:8] == LUT[127]).all()  # value 0 on (−1, 1) → ⌊0.5 · 255⌋ = 127
    assert (out[3, 4:9] == dead_rgb).all()
    assert (out[6, 4:9] == dead_rgb).all()
    assert (out[3:7, 4] == dead_rgb).all()
    assert (out[3:7, 8] == dead_rgb).all()
    # nothing else is red: the frame is one gap wide
    red = (out == dead_rgb).all(axis=2)
    assert red.sum() == 2 * 5 + 2 * 2
    assert (out == ref_tile(maps, (-1.0, 1.0), dead, gap)).all()


def test_every_dead_map_is_framed_on_four_sides_wherever_it_sits():
    """Each map alone dead in turn, in a 3×3 grid with a gap of 2: the two gap rows above and
    below it and the two gap columns left and right of it are red, the map itself is not."""
    c, h, w, gap = 9, 4, 5, 2
    maps = np.ones((c, h, w), np.float32)
    for i in range(c):
        dead = np.zeros(c, bool)
        dead[i] = True
        out = tile(maps, (0.0, 1.0), dead, gap, cols=3)
        y0, x0 = gap + (i // 3) * (h + gap), gap + (i % 3) * (w + gap)
        red = (out == np.array(DEAD_RGB, np.uint8)).all(axis=2)
        assert red[y0 - gap:y0, x0 - gap:x0 + w + gap].all(), ("top", i)
        assert red[y0 + h:y0 + h + gap, x0 - gap:x0 + w + gap].all(), ("bottom", i)
        assert red[y0:y0 + h, x0 - gap:x0].all(), ("left", i)
        assert red[y0:y0 + h, x0 + w:x0 + w + gap].all(), ("right", i)
        assert not red[y0:y0 + h, x0:x0 + w].any()
        assert red.sum() == (h + 2 * gap) * (w + 2 * gap) - h * w


@pytest.mark.parametrize("cols", [1, 2, 3, 5, 7, 9])
def test_tile_with_given_columns_matches_the_reference(cols):
    rng = np.random.default_rng(cols)
    maps = rng.normal(size=(7, 3, 4)).astype(np.float32)
    dead = np.array([True, False, False, True, False, False, True])
    maps[dead] = 0
    out = tile(maps, (-2.0, 2.0), dead, 1, cols=cols)
    assert (out == ref_tile(maps, (-2.0, 2.0), dead, 1, cols=min(cols, 7))).all()


@pytest.mark.parametrize("c, h, w, gap", [(1, 1, 1, 1), (1, 6, 4, 2), (2, 5, 5, 1), (3, 4, 9, 1),
                                          (7, 6, 6, 1), (10, 3, 3, 1), (17, 4, 2, 3),
                                          (24, 1, 7, 1), (13, 8, 1, 2)])
@pytest.mark.parametrize("shared", [True, False])
def test_tile_matches_the_slow_reference(c, h, w, gap, shared):
    rng = np.random.default_rng(c * 1000 + h * 100 + w * 10 + gap)
    maps = (rng.normal(size=(c, h, w)) * rng.uniform(0.1, 50, size=(c, 1, 1))
            + rng.normal(size=(c, 1, 1))).astype(np.float32)
    maps[rng.random(size=maps.shape) < 0.2] = 0  # some exact zeros, as after a ReLU
    dead = rng.random(c) < 0.3
    maps[dead] = 0
    if c > 2:
        maps[1] = 0.25  # a constant map that is not dead
    levels = (float(maps.min()), float(maps.max())) if shared else None
    out = tile(maps, levels, dead, gap)
    expected = ref_tile(maps, levels, dead, gap)
    assert out.shape == expected.shape
    assert out.dtype == np.uint8
    bad = np.argwhere((out != expected).any(axis=2))
    assert len(bad) == 0, bad[:5]


def test_tile_shared_extremes_and_float64_input():
    maps = np.array([[[0.0, 2.0]], [[4.0, 1.0]]])  # float64, shared levels from the data
    out = tile(maps, (0.0, 4.0), np.zeros(2, bool), 1)
    # 2 maps of 1×2: one column already holds them near-square (1² · 2 ≥ 2 · 1)
    assert ref_columns(2, 1, 2) == 1
    assert out.shape == (5, 4, 3)
    assert [tuple(out[1, 1]), tuple(out[1, 2]), tuple(out[3, 1]), tuple(out[3, 2])] == \
        [tuple(LUT[0]), tuple(LUT[127]), tuple(LUT[255]), tuple(LUT[63])]


# ----------------------------------------------------------------- map_statistics

def ref_statistics(maps):
    rows = []
    for m in maps:
        values = [float(v) for v in np.asarray(m).flat]
        lo = hi = values[0]
        zeros = 0
        for v in values:
            lo, hi = min(lo, v), max(hi, v)
            zeros += v == 0
        rows.append((lo, hi, math.fsum(values) / len(values), zeros / len(values)))
    return rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (16, 7, 7), (2, 1, 30)])
def test_map_statistics_against_loops(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    maps = (rng.normal(size=shape) * 3).astype(dtype)
    maps[rng.random(size=shape) < 0.3] = 0
    maps[0].flat[0] = -0.0  # negative zero counts as zero
    if shape[0] > 2:
        maps[2] = 0  # a dead map
    stats = map_statistics(maps)
    assert stats.shape == (shape[0], 4) and stats.dtype == np.float64
    for got, (lo, hi, mean, zeros) in zip(stats, ref_statistics(maps)):
        assert got[0] == lo and got[1] == hi
        assert got[2] == pytest.approx(mean, rel=1e-12, abs=1e-300)
        assert got[3] == zeros
    if shape[0] > 2:
        assert tuple(stats[2]) == (0.0, 0.0, 0.0, 1.0)


def test_map_statistics_mean_accumulates_in_float64():
    # a million float32 values of 0.1 plus one 1e4 spike: a float32 running sum drifts visibly
    maps = np.full((2, 1000, 1000), 0.1, np.float32)
    maps[1, 0, 0] = 1e4
    stats = map_statistics(maps)
    exact = float(np.float32(0.1))
    assert stats[0, 2] == pytest.approx(exact, rel=1e-12)
    assert stats[1, 2] == pytest.approx((exact * 999_999 + 1e4) / 1e6, rel=1e-12)
    assert stats[0, 3] == 0.0


def test_map_statistics_by_hand():
    maps = np.array([[[0.0, 1.0], [-2.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]]])
    assert map_statistics(maps).tolist() == [[-2.0, 1.0, -0.25, 0.5], [5.0, 5.0, 5.0, 0.0]]


# ----------------------------------------------------------------- filter_images

def ref_filter_images(weight):
    """Slow reference: filters in a near-square grid (cols = ⌈√k⌉) with a grey (40) gap of
    max(1, round(max(kh, kw)/5)) around and between them; each filter scaled by its own peak
    |w| so −peak → 0, 0 → 127.5, +peak → 255 (before rounding); RGB from 3 input channels,
    otherwise the mean over input channels as grey. Returns (grid with the exact values as
    float64, mask of filter pixels)."""
    k, c, kh, kw = weight.shape
    cols = 1
    while cols * cols < k:
        cols += 1
    rows = -(-k // cols)
    gap = max(1, (2 * max(kh, kw) + 5) // 10)  # round(x/5), no ties for integers
    grid = np.full((rows * (kh + gap) + gap, cols * (kw + gap) + gap, 3), 40.0)
    mask = np.zeros(grid.shape[:2], bool)
    for i in range(k):
        peak = max(abs(float(v)) for v in weight[i].flat)
        scale = peak if peak > 0 else 1.0
        y0 = gap + (i // cols) * (kh + gap)
        x0 = gap + (i % cols) * (kw + gap)
        for y in range(kh):
            for x in range(kw):
                scaled = [0.5 + 0.5 * float(weight[i, ch, y, x]) / scale for ch in range(c)]
                if c == 3:
                    value = scaled
                else:
                    grey = math.fsum(scaled) / c
                    value = [grey, grey, grey]
                grid[y0 + y, x0 + x] = [255 * v for v in value]
                mask[y0 + y, x0 + x] = True
    return grid, mask


@pytest.mark.parametrize("shape", [(1, 3, 3, 3), (6, 3, 5, 5), (10, 3, 7, 7), (16, 1, 3, 3),
                                   (5, 2, 1, 1), (3, 4, 11, 11), (64, 3, 11, 11), (7, 8, 3, 5)])
def test_filter_images_against_loops(shape):
    rng = np.random.default_rng(shape[0] * 31 + shape[2])
    weight = rng.normal(size=shape) * rng.uniform(0.01, 5, size=(shape[0], 1, 1, 1))
    out = filter_images(weight)
    exact, mask = ref_filter_images(weight)
    assert out.dtype == np.uint8
    assert out.shape == exact.shape
    assert (out[~mask] == 40).all()
    assert_rgb_close_to_rounding(out, exact)


def test_filter_images_layout_by_hand():
    weight = np.zeros((5, 1, 3, 2))
    weight[:, 0, 0, 0] = np.arange(1, 6)  # every filter: peak at its top-left pixel
    out = filter_images(weight)
    # 5 filters: 3 columns, 2 rows; gap 1 (3/5 rounds to 1) around and between
    assert out.shape == (2 * 4 + 1, 3 * 3 + 1, 3)
    for i in range(5):
        y0, x0 = 1 + (i // 3) * 4, 1 + (i % 3) * 3
        assert tuple(out[y0, x0]) == (255, 255, 255)
        assert (out[y0:y0 + 3, x0:x0 + 2].reshape(-1, 3)[1:] == 128).all()
    assert (out[5:9, 7:10] == 40).all()  # the unused sixth cell
    assert (out[0] == 40).all() and (out[:, 0] == 40).all()


def test_zero_weights_are_mid_grey():
    out = filter_images(np.zeros((4, 3, 3, 3)))  # all-zero filters: no division by zero
    exact, mask = ref_filter_images(np.zeros((4, 3, 3, 3)))
    assert (out[mask] == 128).all()  # 127.5 rounds half to even: 128
    assert (out[~mask] == 40).all()
    rng = np.random.default_rng(5)
    weight = rng.normal(size=(3, 1, 5, 5))
    weight[:, :, 2, :] = 0
    out = filter_images(weight)
    gap = 1
    for i in range(3):
        x0 = gap + i * (5 + gap) if i < 2 else gap
        y0 = gap if i < 2 else gap + 5 + gap
        assert (out[y0 + 2, x0:x0 + 5] == 128).all(), i


def test_filter_images_rgb_channels_follow_input_channels():
    weight = np.zeros((1, 3, 1, 3))
    weight[0, 0, 0, 0] = 2.0  # red input channel, positive, the peak
    weight[0, 1, 0, 1] = -2.0  # green input channel, negative
    weight[0, 2, 0, 2] = 1.0  # blue, half the peak
    out = filter_images(weight)
    assert out.shape == (3, 5, 3)
    assert tuple(out[1, 1]) == (255, 128, 128)
    assert tuple(out[1, 2]) == (128, 0, 128)
    assert tuple(out[1, 3]) == (128, 128, 191)  # 0.75 · 255 = 191.25


def test_filter_images_grey_is_the_channel_mean():
    weight = np.zeros((1, 2, 1, 3))
    weight[0, 0, 0, 0], weight[0, 1, 0, 0] = 4.0, -4.0  # cancel: mid grey
    weight[0, 0, 0, 1], weight[0, 1, 0, 1] = 4.0, 4.0  # both at the peak: white
    weight[0, 0, 0, 2], weight[0, 1, 0, 2] = 4.0, 0.0  # (1 + 0.5)/2 = 0.75
    out = filter_images(weight)
    assert [tuple(out[1, x]) for x in (1, 2, 3)] == [(128,) * 3, (255,) * 3, (191,) * 3]


@pytest.mark.parametrize("c", [1, 3, 4])
def test_filter_images_sign_symmetric(c):
    rng = np.random.default_rng(c)
    weight = rng.normal(size=(6, c, 5, 5))
    weight[0] = 0
    pos, neg = filter_images(weight), filter_images(-weight)
    _, mask = ref_filter_images(weight)
    assert (pos[~mask] == 40).all() and (neg[~mask] == 40).all()
    # w and −w sit symmetrically around 127.5; exact 0 is 128 both ways
    total = pos[mask].astype(int) + neg[mask].astype(int)
    zero = np.zeros(mask.shape, bool)
    zero[1:6, 1:6] = True  # filter 0, all zeros, at the grid's top-left (gap 1)
    assert (pos[zero] == 128).all() and (neg[zero] == 128).all()
    assert (total[~zero[mask]] == 255).all()


# ----------------------------------------------------------------- display_rgb

def ref_display_exact(x):
    lo = min(float(v) for v in x.flat)
    hi = max(float(v) for v in x.flat)
    scale = hi - lo if hi > lo else 1.0
    c, h, w = x.shape
    out = np.zeros((h, w, 3))
    for y in range(h):
        for q in range(w):
            scaled = [(float(x[ch, y, q]) - lo) / scale for ch in range(c)]
            if c == 3:
                out[y, q] = [255 * v for v in scaled]
            else:
                out[y, q] = [255 * math.fsum(scaled) / c] * 3
    return out


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 6, 6), (2, 3, 3), (4, 2, 7), (3, 1, 1)])
def test_display_rgb_against_loops(shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.normal(size=shape) * 2 - 0.4).astype(np.float32)
    out = display_rgb(x)
    assert out.dtype == np.uint8 and out.shape == (shape[1], shape[2], 3)
    assert_rgb_close_to_rounding(out, ref_display_exact(x))


def test_display_rgb_stretches_to_the_whole_range():
    x = np.zeros((3, 2, 2), np.float32)
    x[0, 0, 0] = -1.0  # the minimum, in the red channel
    x[2, 1, 1] = 3.0  # the maximum, in the blue channel
    out = display_rgb(x)
    assert tuple(out[0, 0]) == (0, 64, 64)  # 0 → (0 + 1)/4 · 255 = 63.75
    assert tuple(out[1, 1]) == (64, 64, 255)
    grey = display_rgb(np.array([[[0.0, 2.0]], [[2.0, 2.0]]]))  # 2 channels → mean, grey
    assert [tuple(p) for p in grey[0]] == [(128,) * 3, (255,) * 3]


def test_display_rgb_constant_image_is_black_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out = display_rgb(np.full((3, 4, 4), 0.7, np.float32))
    assert out.shape == (4, 4, 3) and (out == 0).all()


# ----------------------------------------------------------------- inf and NaN

def ref_nonfinite_tile(maps, levels, dead, gap):
    """Slow reference with inf and NaN: each map coloured as ``ref_tile`` does on the range of
    its finite values (per map) or the given levels, then +inf white, −inf black, NaN magenta."""
    if levels is None:  # the map's own range: of its finite values (0 … 0 if it has none)
        assert len(maps) == 1, "reference written for one map per call"
        out = ref_tile(np.where(np.isfinite(maps), maps, _finite_lo(maps[0])), None, dead, gap)
    else:
        out = ref_tile(np.where(np.isfinite(maps), maps, 0), levels, dead, gap)
    c, h, w = maps.shape
    cols = ref_columns(c, h, w)
    for i in range(c):
        y0, x0 = gap + (i // cols) * (h + gap), gap + (i % cols) * (w + gap)
        for y in range(h):
            for x in range(w):
                v = maps[i, y, x]
                if np.isnan(v):
                    out[y0 + y, x0 + x] = NAN_RGB
                elif v == np.inf:
                    out[y0 + y, x0 + x] = POSINF_RGB
                elif v == -np.inf:
                    out[y0 + y, x0 + x] = NEGINF_RGB
    return out


def _finite_lo(m):
    finite = m[np.isfinite(m)]
    return finite.min() if finite.size else 0.0


def nonfinite_maps_example(seed=5):
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(5, 6, 7)).astype(np.float32) * 100
    maps[1, 2, 3] = np.inf
    maps[1, 0, 0] = -np.inf
    maps[2, 4, 4] = np.nan
    maps[3] = np.nan  # nothing finite at all
    maps[4, :2] = np.inf
    return maps


def test_tile_gives_inf_and_nan_their_own_colours_without_warnings():
    maps = nonfinite_maps_example()
    dead = np.array([False, False, False, False, True])
    stats = map_statistics(maps)
    bad = nonfinite_maps(stats)
    assert bad.tolist() == [False, True, True, True, True]
    levels = shared_levels(maps, stats)
    finite = maps[np.isfinite(maps)]
    assert levels == (float(finite.min()), float(finite.max()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        shared = tile(maps, levels, dead, 1, bad)
        worked_out = tile(maps, levels, dead, 1)  # the same without being told which maps
        per_map = [tile(maps[i:i + 1], None, dead[i:i + 1], 1) for i in range(5)]
    expected = ref_nonfinite_tile(maps, levels, dead, 1)
    assert (shared == expected).all() and (worked_out == expected).all()
    for i in range(5):
        assert (per_map[i] == ref_nonfinite_tile(maps[i:i + 1], None, dead[i:i + 1], 1)).all(), i
    # the finite values of map 1 keep their full colour range: the inf doesn't squash them
    m1 = per_map[1][1:7, 1:8].reshape(-1, 3)
    assert any((m1 == LUT[0]).all(axis=1)) and any((m1 == LUT[255]).all(axis=1))


def test_a_span_too_wide_for_float32_is_still_a_colour_scale():
    maps = np.array([[[-3e38, 0.0, 3e38]]], np.float32)  # 3e38 − (−3e38) overflows float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tile(maps, None, np.zeros(1, bool), 1)
        shared = tile(maps, (-3e38, 3e38), np.zeros(1, bool), 1)
    assert (out[1, 1:4] == LUT[[0, 127, 255]]).all()
    assert (shared == out).all()


def test_colour_map_of_one_map_matches_the_grid():
    maps = nonfinite_maps_example(8)
    stats = map_statistics(maps)
    lo, hi = shared_levels(maps, stats)
    grid = tile(maps[1:2], (lo, hi), np.zeros(1, bool), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = colour_map(maps[1], lo, hi)
        none_finite = colour_map(maps[3], *(finite_range(maps[3]) or (0.0, 1.0)))
        bad_levels = colour_map(maps[0], float("nan"), float("inf"))
    assert (one == grid[1:7, 1:8]).all()
    assert (none_finite == NAN_RGB).all()
    assert bad_levels.shape == (6, 7, 3)


def test_statistics_of_maps_with_inf_and_nan_say_so_quietly():
    maps = nonfinite_maps_example()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = map_statistics(maps)
    assert stats[1, 0] == -np.inf and stats[1, 1] == np.inf and np.isnan(stats[1, 2])
    assert np.isnan(stats[2, 0]) and np.isnan(stats[3, 1])
    assert stats[4, 1] == np.inf and np.isfinite(stats[4, 0])
    assert np.isfinite(stats[0]).all()


def test_filters_and_input_with_inf_or_nan_are_still_pictures():
    weight = np.ones((2, 3, 3, 3), np.float32)
    weight[0, 0, 0, 0] = np.inf
    weight[1, 1, 1, 1] = np.nan
    x = np.zeros((3, 4, 4), np.float32)
    x[0, 0, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filters = filter_images(weight)
        rgb = display_rgb(x)
    assert filters.dtype == np.uint8 and rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
