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


def map_statistics(maps: np.ndarray) -> np.ndarray:
    """Per map (first axis): min, max, mean and fraction of exact zeros, as (C, 4) float64."""
    flat = maps.reshape(maps.shape[0], -1)
    return np.column_stack([flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1, dtype=np.float64),
                            (flat == 0).mean(axis=1)]).astype(np.float64)


def grid_columns(count: int, h: int, w: int) -> int:
    """Columns for a near-square grid of ``count`` maps of h×w."""
    return max(1, min(count, math.ceil(math.sqrt(count * h / max(w, 1)))))


def gap_for(h: int, w: int) -> int:
    return max(1, round(max(h, w) / 10))


def tile(maps: np.ndarray, levels: tuple[float, float] | None, dead: np.ndarray,
         gap: int) -> np.ndarray:
    """(C, H, W) maps → one RGB image (rows, cols, 3) uint8: viridis on the shared ``levels``,
    or each map on its own range when ``levels`` is None; gaps grey, dead maps framed in red.

    Works one row of the grid at a time: NumPy holds Python's lock for each operation, so on a
    background thread small steps let the window keep running between them."""
    c, h, w = maps.shape
    cols = grid_columns(c, h, w)
    rows = math.ceil(c / cols)
    cell_h, cell_w = h + gap, w + gap
    out = np.empty((rows * cell_h, cols * cell_w, 3), np.uint8)
    out[:] = GAP_RGB
    if levels is not None:
        lo, hi = np.float32(levels[0]), np.float32(levels[1])
        span = hi - lo if hi > lo else np.float32(1)
    for r in range(rows):
        chunk = maps[r * cols:(r + 1) * cols]
        n = len(chunk)
        flat = chunk.reshape(n, -1).astype(np.float32)
        if levels is None:
            lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
            span = np.where(hi > lo, hi - lo, np.float32(1))
        index = np.clip((flat - lo) / span * 255, 0, 255).astype(np.uint8).reshape(n, h, w)
        band = out[r * cell_h:r * cell_h + h].reshape(h, cols, cell_w, 3)
        band[:, :n, :w] = LUT[index].transpose(1, 0, 2, 3)
    for i in np.flatnonzero(dead):  # frame dead maps: colour the gap to their right and below
        y, x = (i // cols) * cell_h, (i % cols) * cell_w
        out[y + h:y + cell_h, x:x + cell_w] = DEAD_RGB
        out[y:y + cell_h, x + w:x + cell_w] = DEAD_RGB
    return out


def filter_images(weight: np.ndarray) -> np.ndarray:
    """Filters (out, in, kh, kw) as one RGB grid image (rows, cols, 3) uint8: each filter on its
    own symmetric scale (0 is grey), RGB when it has 3 input channels, grey otherwise."""
    k, c, kh, kw = weight.shape
    peak = np.abs(weight).reshape(k, -1).max(axis=1)
    scaled = 0.5 + 0.5 * weight / np.where(peak > 0, peak, 1)[:, None, None, None]
    rgb = scaled.transpose(0, 2, 3, 1) if c == 3 else np.repeat(scaled.mean(axis=1)[..., None], 3, -1)
    cols = max(1, math.ceil(math.sqrt(k)))
    rows = math.ceil(k / cols)
    gap = max(1, round(max(kh, kw) / 5))
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
    lo, hi = float(x.min()), float(x.max())
    scaled = (x - lo) / (hi - lo if hi > lo else 1)
    rgb = scaled.transpose(1, 2, 0) if x.shape[0] == 3 else np.repeat(scaled.mean(0)[..., None], 3, -1)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
