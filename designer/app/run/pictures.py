"""Pictures made from arrays, with NumPy only: channel maps tiled into one viridis image, per-map
statistics, the first convolution's filters as small images and the network's input as RGB.
Pure functions (no widgets), so the run's worker thread can make them too."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

COLORMAP = pg.colormap.get("viridis")
LUT = COLORMAP.getLookupTable(nPts=256, alpha=False)  # (256, 3) uint8
GAP_RGB = (40, 40, 40)
DEAD_RGB = (220, 40, 40)
#: values that are not numbers to colour: +inf white, −inf black, NaN magenta (none of them is a
#: viridis colour), so an overflow shows where it is instead of breaking the colour scale
POSINF_RGB = (255, 255, 255)
NEGINF_RGB = (0, 0, 0)
NAN_RGB = (230, 0, 230)
NONFINITE_LEGEND = "inf is drawn white, −inf black, NaN magenta"


def map_statistics(maps: np.ndarray) -> np.ndarray:
    """Per map (first axis): min, max, mean and fraction of exact zeros, as (C, 4) float64.
    A map holding inf or NaN shows it in its min and max (``nonfinite_maps``)."""
    flat = maps.reshape(maps.shape[0], -1)
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf in a mean: NaN, as it is
        return np.column_stack([flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1, dtype=np.float64),
                            (flat == 0).mean(axis=1)]).astype(np.float64)


def nonfinite_maps(stats: np.ndarray) -> np.ndarray:
    """Which maps hold inf or NaN, from their statistics (min and max are then not finite)."""
    if not len(stats):
        return np.zeros(0, bool)
    return ~(np.isfinite(stats[:, 0]) & np.isfinite(stats[:, 1]))


def finite_range(values: np.ndarray) -> tuple[float, float] | None:
    """Smallest and largest finite value of an array, or None if it has none."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    return float(finite.min()), float(finite.max())


def shared_levels(maps: np.ndarray, stats: np.ndarray) -> tuple[float, float]:
    """One colour scale for every map: the smallest and largest finite value of them all (maps
    holding inf or NaN are scanned for their finite values); (0, 1) if there is none."""
    bad = nonfinite_maps(stats)
    lows, highs = list(stats[~bad, 0]), list(stats[~bad, 1])
    for i in np.flatnonzero(bad):
        r = finite_range(maps[i])
        if r is not None:
            lows.append(r[0])
            highs.append(r[1])
    if not lows:
        return 0.0, 1.0
    return float(min(lows)), float(max(highs))


def grid_columns(count: int, h: int, w: int) -> int:
    """Columns for a near-square grid of ``count`` maps of h×w."""
    return max(1, min(count, math.ceil(math.sqrt(count * h / max(w, 1)))))


def best_columns(count: int, h: int, w: int, gap: int, width: float, height: float) -> int:
    """Columns that show ``count`` maps of h×w (``gap`` between them and around the grid, as
    ``tile`` lays them out) as large as they can be in an area of width × height pixels: the
    grid takes the area's shape, wide in a wide area, tall in a tall one. Among equally good
    counts, the fewest columns. Without an area (width or height ≤ 0), a near-square grid."""
    if count <= 1:
        return 1
    if not (width > 0 and height > 0):
        return grid_columns(count, h, w)
    cols = np.arange(1, count + 1, dtype=np.float64)
    rows = np.ceil(count / cols)
    scale = np.minimum(width / (cols * (w + gap) + gap), height / (rows * (h + gap) + gap))
    return int(np.argmax(scale)) + 1


def gap_for(h: int, w: int) -> int:
    return max(1, round(max(h, w) / 10))


def grid_shape(count: int, h: int, w: int, gap: int, cols: int | None = None
               ) -> tuple[int, int, int, int]:
    """(columns, rows, height, width) of ``tile``'s image for ``count`` maps of h×w."""
    cols = grid_columns(count, h, w) if cols is None else max(1, min(int(cols), max(count, 1)))
    rows = max(1, math.ceil(count / cols))
    return cols, rows, rows * (h + gap) + gap, cols * (w + gap) + gap


def tile(maps: np.ndarray, levels: tuple[float, float] | None, dead: np.ndarray,
         gap: int, nonfinite: np.ndarray | None = None, cols: int | None = None) -> np.ndarray:
    """(C, H, W) maps → one RGB image (rows, cols, 3) uint8: viridis on the shared ``levels``,
    or each map on its own range when ``levels`` is None; gaps grey, dead maps framed in red.
    Values that are not finite get their own colours (``POSINF_RGB``, ``NEGINF_RGB``,
    ``NAN_RGB``) and are left out of a map's own range; ``nonfinite`` says which maps hold any
    (from their statistics: ``nonfinite_maps``), else it is worked out.

    Map i sits in grid row i // cols, column i % cols (``cols`` columns, by default a
    near-square grid), at (gap + row·(h + gap), gap + column·(w + gap)): ``gap`` pixels
    between maps and around the grid, so a dead map's frame (the gap all round it) has four
    sides.

    Works one row of the grid at a time: NumPy holds Python's lock for each operation, so on a
    background thread small steps let the window keep running between them."""
    c, h, w = maps.shape
    cols, rows, height, width = grid_shape(c, h, w, gap, cols)
    cell_h, cell_w = h + gap, w + gap
    out = np.empty((height, width, 3), np.uint8)
    out[:] = GAP_RGB
    if levels is not None:
        if not (math.isfinite(levels[0]) and math.isfinite(levels[1])):
            levels = (0.0, 1.0)
        lo, hi = np.float32(levels[0]), np.float32(levels[1])
    for r in range(rows):
        chunk = maps[r * cols:(r + 1) * cols]
        n = len(chunk)
        if not n:
            break
        flat = chunk.reshape(n, -1).astype(np.float32)
        if levels is None:
            lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
            bad = ~(np.isfinite(lo[:, 0]) & np.isfinite(hi[:, 0]))
            for i in np.flatnonzero(bad):  # a map's own range: of its finite values
                found = finite_range(flat[i])
                lo[i, 0], hi[i, 0] = found if found is not None else (0.0, 0.0)
        elif nonfinite is not None:
            bad = np.asarray(nonfinite[r * cols:r * cols + n], bool)
        else:
            bad = ~(np.isfinite(flat.min(axis=1)) & np.isfinite(flat.max(axis=1)))
        index = _indices(flat, lo, hi, bad.any())
        top = gap + r * cell_h
        band = out[top:top + h, gap:gap + cols * cell_w].reshape(h, cols, cell_w, 3)
        rgb = LUT[index]
        for i in np.flatnonzero(bad):
            _paint_nonfinite(rgb[i], flat[i])
        band[:, :n, :w] = rgb.reshape(n, h, w, 3).transpose(1, 0, 2, 3)
    for i in np.flatnonzero(dead):  # frame dead maps: the gap on all four sides
        y, x = gap + (i // cols) * cell_h, gap + (i % cols) * cell_w
        out[y - gap:y, x - gap:x + w + gap] = DEAD_RGB  # above
        out[y + h:y + h + gap, x - gap:x + w + gap] = DEAD_RGB  # below
        out[y:y + h, x - gap:x] = DEAD_RGB  # left
        out[y:y + h, x + w:x + w + gap] = DEAD_RGB  # right
    return out


def _indices(flat: np.ndarray, lo, hi, nonfinite: bool) -> np.ndarray:
    """Colour indices ⌊(v − lo)/span · 255⌋ clipped to 0 … 255 (float32, span = hi − lo, or 1
    where hi ≤ lo); NaN goes to 0 (it is painted over), ±inf to the ends. A span too wide
    for float32 (finite values near ±3.4e38) is worked out in float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        span = np.where(hi > lo, hi - lo, np.float32(1))
        if np.isfinite(span).all():
            scaled = (flat - lo) / span * np.float32(255)
        else:
            lo64, hi64 = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
            span64 = np.where(hi64 > lo64, hi64 - lo64, 1.0)
            scaled = (flat.astype(np.float64) - lo64) / span64 * 255.0
            nonfinite = True
        if nonfinite:
            np.nan_to_num(scaled, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(scaled, 0, 255).astype(np.uint8)


def _paint_nonfinite(rgb: np.ndarray, values: np.ndarray) -> None:
    """Give inf, −inf and NaN their own colours in ``rgb`` (values, 3)."""
    rgb[np.isnan(values)] = NAN_RGB
    rgb[values == np.inf] = POSINF_RGB
    rgb[values == -np.inf] = NEGINF_RGB


def colour_map(m: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """One (H, W) map as RGB on levels (lo, hi), non-finite values in their own colours."""
    flat = m.reshape(1, -1).astype(np.float32)
    bad = not np.isfinite(flat).all()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    rgb = LUT[_indices(flat, np.float32(lo), np.float32(hi), bad)][0]
    if bad:
        _paint_nonfinite(rgb, flat[0])
    return rgb.reshape(m.shape + (3,))


def filter_gap(kh: int, kw: int) -> int:
    """Pixels between filters (and around them) in ``filter_images``."""
    return max(1, round(max(kh, kw) / 5))


def filter_images(weight: np.ndarray, cols: int | None = None) -> np.ndarray:
    """Filters (out, in, kh, kw) as one RGB grid image (rows, cols, 3) uint8: each filter on its
    own symmetric scale (0 is grey), RGB when it has 3 input channels, grey otherwise; ``cols``
    filters a row (by default a square grid)."""
    k, c, kh, kw = weight.shape
    if not np.isfinite(weight).all():  # a weights file may hold inf or NaN: drawn as 0 (grey)
        weight = np.nan_to_num(weight, nan=0.0, posinf=0.0, neginf=0.0)
    peak = np.abs(weight).reshape(k, -1).max(axis=1)
    scaled = 0.5 + 0.5 * weight / np.where(peak > 0, peak, 1)[:, None, None, None]
    rgb = scaled.transpose(0, 2, 3, 1) if c == 3 else np.repeat(scaled.mean(axis=1)[..., None], 3, -1)
    cols = max(1, math.ceil(math.sqrt(k))) if cols is None else max(1, min(int(cols), k))
    rows = max(1, math.ceil(k / cols))
    gap = filter_gap(kh, kw)
    grid = np.full((rows * (kh + gap) + gap, cols * (kw + gap) + gap, 3), 40, np.uint8)
    pixels = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    for i in range(k):
        r, q = divmod(i, cols)
        y, x = gap + r * (kh + gap), gap + q * (kw + gap)
        grid[y:y + kh, x:x + kw] = pixels[i]
    return grid


def display_rgb(x: np.ndarray) -> np.ndarray:
    """The network's input (C, H, W) as an RGB image: what it sees, stretched to its own range
    (after mean/std the values are no longer 0 – 1)."""
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(x.min()), float(x.max())
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (x - lo) / (hi - lo if np.isfinite(hi - lo) and hi > lo else 1)
    rgb = scaled.transpose(1, 2, 0) if x.shape[0] == 3 else np.repeat(scaled.mean(0)[..., None], 3, -1)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- why this prediction

#: heat for saliency and Grad-CAM: inferno (black → purple → orange → yellow), drawn with an
#: opacity that grows with the heat, so cold parts of the image stay visible
HEAT_LUT = pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=False)
#: occlusion: where hiding a patch lowers the class's probability red, where it raises it blue
DROP_RGB, RISE_RGB = (255, 48, 0), (0, 110, 255)
HEAT_OPACITY = 0.75  # the most a heat map covers the image
#: explanation pictures are drawn at least this many pixels on their longer side (small inputs
#: such as LeNet-5's 32×32 are enlarged by whole pixels, so a Grad-CAM map comes out smooth)
EXPLAIN_SIDE = 224


def class_names(classes, count: int) -> list[str]:
    """Names of ``count`` output classes: the design's (contract §2) where there are as many,
    else "class 0", "class 1", …"""
    if classes is not None and len(classes) == count:
        return [str(c) for c in classes]
    return [f"class {i}" for i in range(count)]


def resize_bilinear(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """An (h, w) map resized to (height, width) by bilinear interpolation with the pixel
    centres aligned (as ``torch.nn.functional.interpolate(..., align_corners=False)``),
    float64."""
    a = np.asarray(a, np.float64)
    h, w = a.shape

    def axis(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(out) + 0.5) * size / out - 0.5, 0, size - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, size - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis(h, height)
    c0, c1, fc = axis(w, width)
    top = a[r0][:, c0] * (1 - fc) + a[r0][:, c1] * fc
    bottom = a[r1][:, c0] * (1 - fc) + a[r1][:, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


def explain_scale(height: int, width: int) -> int:
    """Whole screen pixels per input pixel in an explanation picture."""
    return max(1, math.ceil(EXPLAIN_SIDE / max(height, width, 1)))


def grey_base(rgb: np.ndarray) -> np.ndarray:
    """The image under a heat map: grey and a little faded, so the heat's colours stand out,
    (H, W) float64 in 0 … 255."""
    grey = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return 40 + grey * 0.7


def heat_picture(rgb: np.ndarray, heat: np.ndarray, signed: bool = False,
                 smooth: bool = False) -> np.ndarray:
    """The network's input (``rgb``, (H, W, 3) uint8, as ``display_rgb`` draws it) with a heat
    map drawn over it: (H·s, W·s, 3) uint8, s = ``explain_scale``. ``heat`` is (h, w), any
    size: 0 … 1 (inferno, more opaque where hotter), or −1 … 1 when ``signed`` (red where
    positive, blue where negative). The image is enlarged by whole pixels; the heat too,
    unless ``smooth`` (bilinear: a coarse Grad-CAM map) or it isn't the image's size."""
    h, w = rgb.shape[:2]
    s = explain_scale(h, w)
    base = np.repeat(np.repeat(grey_base(rgb), s, axis=0), s, axis=1)
    heat = np.nan_to_num(np.asarray(heat, np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    if heat.shape == (h, w) and not smooth:
        big = np.repeat(np.repeat(heat, s, axis=0), s, axis=1)
    else:
        big = resize_bilinear(heat, h * s, w * s)
    big = np.clip(big, -1.0 if signed else 0.0, 1.0)
    if signed:
        colour = np.where(big[..., None] >= 0, np.array(DROP_RGB, np.float64),
                          np.array(RISE_RGB, np.float64))
        strength = np.abs(big)
    else:
        colour = HEAT_LUT[np.clip(np.rint(big * 255), 0, 255).astype(np.uint8)].astype(np.float64)
        strength = big
    alpha = (strength * HEAT_OPACITY)[..., None]
    out = base[..., None] * (1 - alpha) + colour * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def saliency_heat(gradient: np.ndarray) -> tuple[np.ndarray, float]:
    """(|d logit / d input| max over channels, scaled to 0 … 1 by its 99.5th percentile so a
    few extreme pixels don't wash the rest out; the largest value) for a (C, H, W) gradient.
    inf and NaN count as 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(np.asarray(gradient, np.float64)).max(axis=0)
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    peak = float(magnitude.max()) if magnitude.size else 0.0
    top = float(np.percentile(magnitude, 99.5)) if magnitude.size else 0.0
    top = top if top > 0 else peak
    return (np.clip(magnitude / top, 0, 1) if top > 0 else np.zeros_like(magnitude)), peak


def cam_heat(cam: np.ndarray) -> tuple[np.ndarray, float]:
    """(Grad-CAM scaled to 0 … 1 by its largest value, that value)."""
    cam = np.where(np.isfinite(cam), np.asarray(cam, np.float64), 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    return (cam / peak if peak > 0 else np.zeros_like(cam)), peak


def drop_heat(drop: np.ndarray) -> tuple[np.ndarray, float]:
    """(Occlusion's probability drop scaled to −1 … 1 by its largest magnitude, that
    magnitude); a drop is a probability difference, so it is drawn on its own scale but the
    magnitude is reported as it is."""
    drop = np.where(np.isfinite(drop), np.asarray(drop, np.float64), 0.0)
    peak = float(np.abs(drop).max()) if drop.size else 0.0
    return (drop / peak if peak > 0 else np.zeros_like(drop)), peak
