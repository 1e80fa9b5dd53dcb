"""The built-in data sets (contract §6), drawn by the project with NumPy alone.

``builtin:digits``: the ten digits, 28×28 grey, stroked with the project's own glyphs
(:mod:`designer.data.strokes`) at varying stroke width, slant, rotation, scale, aspect and
position, over a varying background, with clutter (stray strokes) and pixel noise.

``builtin:shapes``: ten kinds of coloured geometric shape, 64×64 RGB, at varying size, rotation
and position, in a random colour on a random two-colour gradient background, half of them partly
hidden by a disc of another colour, with pixel noise.

Each has 10,000 training and 1,000 validation images (exactly a tenth of each per class, in a
shuffled order): the split is fixed, the two parts are drawn from separate random streams.

Identical on every machine: random numbers come only from PCG64's uniform doubles (a stable
stream), the drawing uses only IEEE-exact arithmetic (+ − × ÷ √, floor, comparisons) on float64,
and the few sines and cosines (glyph arcs, rotations, shape outlines) are rounded to 2^-30, so a
last-bit difference between platforms' maths libraries can't change a pixel. No Qt painting,
no fonts. Each shape and glyph is drawn from a distance field: the exact distance to the glyph's
strokes (or the signed distance to the shape's outline) on a fine grid, computed once, looked up
bilinearly through each image's transform at each pixel's centre; a pixel's ink is the area of
it that distance implies lies inside the stroke or shape (anti-aliasing without supersampling:
as smooth as 4×4 supersampling at a sixteenth of its cost; per-pixel work in float32).

Drawn once per version and seed, then cached as uint8 in the platform's cache folder
(``cache_folder()``), written atomically; a cache file that can't be read or doesn't hold what
it should is drawn again.
"""
from __future__ import annotations

import os
import sys
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from designer.core.atomic import write_atomic
from designer.data.strokes import DIGITS, polylines

#: bump when the drawing changes: the cache is keyed by it
VERSION = 1
TRAIN_SIZE = 10_000
VAL_SIZE = 1_000

DIGIT_CLASSES = list(DIGITS)
SHAPE_CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "hexagon", "diamond",
                 "arrow", "heart"]


class Spec(NamedTuple):
    classes: list[str]
    shape: tuple[int, int, int]  # native (C, H, W)
    flip: bool  # a horizontal mirror image is still of its class
    turn: bool  # so is a quarter turn (the set is drawn at every angle)


SETS: dict[str, Spec] = {
    "digits": Spec(DIGIT_CLASSES, (1, 28, 28), False, False),
    "shapes": Spec(SHAPE_CLASSES, (3, 64, 64), True, True),
}

#: images drawn at a time (bounds the temporaries to some tens of MB)
_CHUNK = 500
#: the distance fields: GRID × GRID samples over [−EXTENT, EXTENT]² (canonical units)
_GRID = 256
_EXTENT = 1.6
#: glyph width over height in the canonical frame (the sample image's 34 × 58 boxes)
_ASPECT = 0.6


def _rounded(values: np.ndarray) -> np.ndarray:
    """Sines and cosines rounded to 2^-30: the same on every platform's maths library."""
    return np.round(values * 2.0**30) / 2.0**30


def _stream(name: str, seed: int, part: int) -> np.random.Generator:
    kind = list(SETS).index(name)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([VERSION, kind, seed, part])))


def _labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    """n labels, exactly n / classes of each, in a shuffled order."""
    labels = np.repeat(np.arange(classes, dtype=np.int64), n // classes)
    return labels[np.argsort(rng.random(n), kind="stable")]


# ------------------------------------------------------------------------- distance fields

def _grid_points() -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(-_EXTENT, _EXTENT, _GRID)
    v, u = np.meshgrid(t, t, indexing="ij")
    return u.reshape(-1), v.reshape(-1)


def _segment_distance(px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray,
                      bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Distance from each point (px, py) (…, 1) to each segment a→b (…, S): (…, S)."""
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
    ex, ey = px - ax - t * dx, py - ay - t * dy
    return np.sqrt(ex * ex + ey * ey)


def _min_distance(u: np.ndarray, v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(u.shape)
    for i in range(0, u.size, 4096):
        d = _segment_distance(u[i:i + 4096, None], v[i:i + 4096, None],
                              a[None, :, 0], a[None, :, 1], b[None, :, 0], b[None, :, 1])
        out[i:i + 4096] = d.min(axis=1)
    return out


@lru_cache(maxsize=1)
def glyph_fields() -> np.ndarray:
    """(10, GRID, GRID): distance to each digit's strokes, in glyph heights, the glyph centred."""
    u, v = _grid_points()
    fields = []
    for char in DIGITS:
        starts, ends = [], []
        for line in polylines(char, step_degrees=10.0, cubic_points=16):
            points = np.stack([(line[:, 0] - 0.5) * _ASPECT, line[:, 1] - 0.5], axis=1)
            starts.append(points[:-1])
            ends.append(points[1:])
        fields.append(_min_distance(u, v, np.concatenate(starts), np.concatenate(ends)))
    return np.stack(fields).reshape(10, _GRID, _GRID).astype(np.float32)


def _circle(radius: float, n: int = 64, turn: float = 0.0) -> np.ndarray:
    a = 2 * np.pi * (np.arange(n) / n + turn)
    return radius * np.stack([_rounded(np.cos(a)), _rounded(np.sin(a))], axis=1)


def _star() -> np.ndarray:
    a = 2 * np.pi * (np.arange(10) / 10 - 0.25)
    r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    return np.stack([r * _rounded(np.cos(a)), r * _rounded(np.sin(a)) + 0.08], axis=1)


def _heart() -> np.ndarray:
    t = 2 * np.pi * np.arange(64) / 64
    s, c = _rounded(np.sin(t)), _rounded(np.cos(t))
    c2, c3, c4 = 2 * c * c - 1, 4 * c**3 - 3 * c, 8 * c**4 - 8 * c * c + 1  # cos 2t, 3t, 4t
    x, y = 16 * s**3, -(13 * c - 5 * c2 - 2 * c3 - c4)
    return np.stack([x, y - 2.5], axis=1) / 16.5


def shape_outlines() -> list[list[np.ndarray]]:
    """Each shape's closed outlines (filled even-odd), about a unit circle around the origin."""
    return [
        [_circle(0.9)],
        [np.array([[-0.7, -0.7], [0.7, -0.7], [0.7, 0.7], [-0.7, 0.7]])],
        [_circle(1.0, 3, -0.25) + [0.0, 0.15]],
        [_star()],
        [np.array([[-0.3, -0.95], [0.3, -0.95], [0.3, -0.3], [0.95, -0.3], [0.95, 0.3],
                   [0.3, 0.3], [0.3, 0.95], [-0.3, 0.95], [-0.3, 0.3], [-0.95, 0.3],
                   [-0.95, -0.3], [-0.3, -0.3]])],
        [_circle(0.92), _circle(0.5)],
        [_circle(0.95, 6)],
        [np.array([[0.0, -1.0], [0.58, 0.0], [0.0, 1.0], [-0.58, 0.0]])],
        [np.array([[-0.95, -0.2], [0.15, -0.2], [0.15, -0.6], [0.95, 0.0], [0.15, 0.6],
                   [0.15, 0.2], [-0.95, 0.2]])],
        [_heart()],
    ]


@lru_cache(maxsize=1)
def shape_fields() -> np.ndarray:
    """(10, GRID, GRID): signed distance to each shape's outline (negative inside)."""
    u, v = _grid_points()
    fields = []
    for outlines in shape_outlines():
        a = np.concatenate(outlines)
        b = np.concatenate([np.roll(o, -1, axis=0) for o in outlines])
        distance = _min_distance(u, v, a, b)
        inside = np.zeros(u.size, bool)
        for i in range(0, u.size, 4096):  # even-odd rule: crossings of a ray to the right
            pu, pv = u[i:i + 4096, None], v[i:i + 4096, None]
            ax, ay, bx, by = a[None, :, 0], a[None, :, 1], b[None, :, 0], b[None, :, 1]
            straddles = (ay > pv) != (by > pv)
            with np.errstate(divide="ignore", invalid="ignore"):
                cross = ax + (pv - ay) * (bx - ax) / (by - ay)
            inside[i:i + 4096] = ((straddles & (pu < cross)).sum(axis=1) % 2) == 1
        fields.append(np.where(inside, -distance, distance))
    return np.stack(fields).reshape(10, _GRID, _GRID).astype(np.float32)


def _grid_coordinates(cos: np.ndarray, sin: np.ndarray, scale: np.ndarray, cx: np.ndarray,
                      cy: np.ndarray, slant: np.ndarray | None = None,
                      aspect: np.ndarray | None = None) -> np.ndarray:
    """Per image, the affine map from a pixel's (x, y) to the distance field's grid coordinates
    (gx, gy): undo the translation, rotation and scale (then the shear and the aspect). (n, 6)
    float32 coefficients (gx = a·x + b·y + c, gy = d·x + e·y + f)."""
    # canonical x1, y1 = rotation⁻¹ · ((x, y) − centre) / scale
    ax, bx, cx1 = cos / scale, sin / scale, -(cos * cx + sin * cy) / scale
    ay, by, cy1 = -sin / scale, cos / scale, (sin * cx - cos * cy) / scale
    if slant is not None and aspect is not None:  # u = (x1 + slant · y1) / aspect
        ax, bx, cx1 = ((ax + slant * ay) / aspect, (bx + slant * by) / aspect,
                       (cx1 + slant * cy1) / aspect)
    g = (_GRID - 1) / (2 * _EXTENT)
    return np.stack([ax * g, bx * g, (cx1 + _EXTENT) * g,
                     ay * g, by * g, (cy1 + _EXTENT) * g], axis=1).astype(np.float32)


def _lookup(fields: np.ndarray, labels: np.ndarray, map_: np.ndarray, x: np.ndarray,
            y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of fields[label] (float32) at each pixel (x, y) (1, P) through each image's
    grid map (n, 6): (n, P) float32. Outside the grid the edge's value is used (far from every
    glyph and shape)."""
    top_index = np.float32(_GRID - 1.001)
    gx = map_[:, 0:1] * x + (map_[:, 1:2] * y + map_[:, 2:3])
    gy = map_[:, 3:4] * x + (map_[:, 4:5] * y + map_[:, 5:6])
    np.clip(gx, 0, top_index, out=gx)
    np.clip(gy, 0, top_index, out=gy)
    fx, fy = np.floor(gx), np.floor(gy)
    base = fy.astype(np.int32)
    base *= np.int32(_GRID)
    base += fx.astype(np.int32)
    base += (labels.astype(np.int32) * np.int32(_GRID * _GRID))[:, None]
    gx -= fx  # the fractions
    gy -= fy
    flat = fields.reshape(-1)
    f00, f01 = np.take(flat, base), np.take(flat, base + np.int32(1))
    base += np.int32(_GRID)
    f10, f11 = np.take(flat, base), np.take(flat, base + np.int32(1))
    top = f00 + (f01 - f00) * gx
    bottom = f10 + (f11 - f10) * gx
    return top + (bottom - top) * gy


def _pixels(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of each pixel's centre, (1, size·size) float32: pixel j spans [j, j+1)."""
    t = np.arange(size, dtype=np.float32) + np.float32(0.5)
    y, x = np.meshgrid(t, t, indexing="ij")
    return x.reshape(1, -1), y.reshape(1, -1)


def _coverage(inside: np.ndarray) -> np.ndarray:
    """A pixel's ink from how far (in pixels) its centre lies inside an edge: the area of the
    pixel on the inner side of a straight edge at that distance, to a good approximation."""
    inside += np.float32(0.5)
    return np.clip(inside, 0, 1, out=inside)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    values = np.clip(values, 0, 1) * np.float32(255)
    values += np.float32(0.5)
    return np.floor(values).astype(np.uint8)


def _f32(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.astype(np.float32) for a in arrays]


# ------------------------------------------------------------------------------ drawing

def _draw_digits(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    size = 28
    n = labels.size
    p = rng.random((n, 12))
    height = 14.0 + 8.0 * p[:, 0]           # glyph height in pixels
    aspect = 0.75 + 0.5 * p[:, 1]           # extra width factor
    slant = -0.35 + 0.7 * p[:, 2]           # shear: the top moves right when positive
    angle = np.deg2rad(-12.0 + 24.0 * p[:, 3])
    cos, sin = _rounded(np.cos(angle)), _rounded(np.sin(angle))
    cx = size / 2 - 3.0 + 6.0 * p[:, 5]
    cy = size / 2 - 2.5 + 5.0 * p[:, 6]
    grid_map = _grid_coordinates(cos, sin, height, cx, cy, slant, aspect)
    half_width, to_pixels, ink, paper, noise = _f32(
        (1.3 + 2.0 * p[:, 4]) / 2,          # stroke width in pixels, halved
        height * np.sqrt(aspect),           # glyph heights to pixels (about)
        0.7 + 0.3 * p[:, 7], 0.15 * p[:, 8] ** 2, 0.24 * p[:, 9])
    # clutter: up to two stray strokes, each there with probability 0.35
    c = rng.random((n, 2, 7))
    ax, ay = 1.0 + 26.0 * c[:, :, 1], 1.0 + 26.0 * c[:, :, 2]
    direction = 2 * np.pi * c[:, :, 3]
    length = 2.0 + 6.0 * c[:, :, 4]
    bx = ax + length * _rounded(np.cos(direction))
    by = ay + length * _rounded(np.sin(direction))
    stray_half, stray_ink = _f32((0.8 + 1.2 * c[:, :, 5]) / 2,
                                 np.where(c[:, :, 0] < 0.35, 0.4 + 0.6 * c[:, :, 6], 0.0))
    ax, ay, bx, by = _f32(ax, ay, bx, by)

    fields = glyph_fields()
    x, y = _pixels(size)
    out = np.empty((n, 1, size, size), np.uint8)
    for i in range(0, n, _CHUNK):
        k = slice(i, i + _CHUNK)
        distance = _lookup(fields, labels[k], grid_map[k], x, y) * to_pixels[k, None]
        cover = _coverage(half_width[k, None] - distance)
        for s in range(2):
            d = _segment_distance(x, y, ax[k, s, None], ay[k, s, None], bx[k, s, None],
                                  by[k, s, None])
            stray = _coverage(stray_half[k, s, None] - d) * (stray_ink[k, s, None] / ink[k, None])
            np.maximum(cover, stray, out=cover)
        image = paper[k, None] + (ink - paper)[k, None] * np.minimum(cover, 1)
        grain = rng.random(image.shape, dtype=np.float32) - np.float32(0.5)
        image += noise[k, None] * grain
        out[k, 0] = _to_uint8(image).reshape(-1, size, size)
    return out


def _draw_shapes(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    size = 64
    n = labels.size
    p = rng.random((n, 8))
    radius = 11.0 + 16.0 * p[:, 0]
    angle = 2 * np.pi * p[:, 1]
    margin = 0.85 * radius
    cx = margin + (size - 2 * margin) * p[:, 2]
    cy = margin + (size - 2 * margin) * p[:, 3]
    cos, sin = _rounded(np.cos(angle)), _rounded(np.sin(angle))
    grid_map = _grid_coordinates(cos, sin, radius, cx, cy)
    # background: a gradient between two colours along a random direction
    colours = rng.random((n, 6, 3))
    back0 = colours[:, 0]
    back1 = np.clip(back0 + 0.6 * (colours[:, 1] - 0.5), 0.0, 1.0)
    ramp = 2 * np.pi * p[:, 5]
    rx, ry = _rounded(np.cos(ramp)) / (0.7 * size), _rounded(np.sin(ramp)) / (0.7 * size)
    ramp_map = np.stack([rx, ry, 0.5 - (rx + ry) * size / 2], axis=1).astype(np.float32)
    # the shape's colour: of three candidates, the one farthest from the background's middle
    middle = (back0 + back1) / 2
    candidates = colours[:, 2:5]
    far = ((candidates - middle[:, None]) ** 2).sum(axis=2).argmax(axis=1)
    fill = candidates[np.arange(n), far]
    # an occluding disc of another colour over part of the shape, in half the images
    o = rng.random((n, 3))
    o_angle = 2 * np.pi * o[:, 0]
    o_far = radius * (0.6 + 0.4 * o[:, 1])
    ox = cx + o_far * _rounded(np.cos(o_angle))
    oy = cy + o_far * _rounded(np.sin(o_angle))
    o_radius = np.where(p[:, 6] < 0.5, radius * (0.25 + 0.2 * o[:, 2]), 0.0)
    to_pixels, ox, oy, o_radius, noise = _f32(radius, ox, oy, o_radius, 0.12 * p[:, 4])
    back0, back1, fill, o_colour = _f32(back0, back1, fill, colours[:, 5])

    fields = shape_fields()
    x, y = _pixels(size)
    out = np.empty((n, 3, size, size), np.uint8)
    for i in range(0, n, _CHUNK):
        k = slice(i, i + _CHUNK)
        cover = _coverage(_lookup(fields, labels[k], grid_map[k], x, y) * -to_pixels[k, None])
        ex, ey = x - ox[k, None], y - oy[k, None]
        hide = _coverage(o_radius[k, None] - np.sqrt(ex * ex + ey * ey))
        t = np.clip(ramp_map[k, 0:1] * x + (ramp_map[k, 1:2] * y + ramp_map[k, 2:3]), 0, 1)
        grain = rng.random(t.shape, dtype=np.float32) - np.float32(0.5)
        grain *= noise[k, None]  # the same in the three channels: brightness noise
        for ch in range(3):
            b0 = back0[k, ch, None]
            image = b0 + (back1[k, ch, None] - b0) * t
            image += (fill[k, ch, None] - image) * cover
            image += (o_colour[k, ch, None] - image) * hide
            image += grain
            out[k, ch] = _to_uint8(image).reshape(-1, size, size)
    return out


_DRAW = {"digits": _draw_digits, "shapes": _draw_shapes}


class Drawn(NamedTuple):
    x_train: np.ndarray  # uint8 (N, C, H, W)
    y_train: np.ndarray  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray


def draw(name: str, seed: int = 0, train_size: int | None = None,
         val_size: int | None = None) -> Drawn:
    """Draw a built-in set (no cache): TRAIN_SIZE and VAL_SIZE images unless told. Sizes must
    be multiples of 10 (balanced classes); a smaller draw is not the start of a larger one."""
    sizes = (TRAIN_SIZE if train_size is None else train_size,
             VAL_SIZE if val_size is None else val_size)
    parts = []
    for part, n in enumerate(sizes):
        rng = _stream(name, seed, part)
        labels = _labels(rng, n, 10)
        parts += [_DRAW[name](rng, labels), labels]
    return Drawn(*parts)


# -------------------------------------------------------------------------------- cache

def cache_folder() -> Path:
    """Where drawn sets are kept: $CNN_DESIGNER_CACHE if set; else the platform's cache folder
    (Linux: $XDG_CACHE_HOME or ~/.cache; macOS: ~/Library/Caches; Windows: %LOCALAPPDATA%),
    in ``cnn-designer``."""
    explicit = os.environ.get("CNN_DESIGNER_CACHE")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "cnn-designer" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "cnn-designer"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "cnn-designer"


def cache_path(name: str, seed: int) -> Path:
    return cache_folder() / f"builtin-{name}-v{VERSION}-seed{seed}.npz"


def _read_cache(path: Path, name: str, seed: int) -> Drawn | None:
    """The cached set, or None if the file is missing, damaged or not what it should be."""
    c, h, w = SETS[name].shape
    try:
        with np.load(path, allow_pickle=False) as archive:
            if sorted(archive.files) != ["seed", "version", "x_train", "x_val", "y_train", "y_val"]:
                return None
            if int(archive["version"]) != VERSION or int(archive["seed"]) != seed:
                return None
            drawn = Drawn(archive["x_train"], archive["y_train"], archive["x_val"], archive["y_val"])
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile):
        return None
    for x, y, n in ((drawn.x_train, drawn.y_train, TRAIN_SIZE), (drawn.x_val, drawn.y_val, VAL_SIZE)):
        if x.dtype != np.uint8 or x.shape != (n, c, h, w) or y.dtype != np.int64 or y.shape != (n,):
            return None
        if y.min() < 0 or y.max() > 9 or (np.bincount(y, minlength=10) != n // 10).any():
            return None
    return drawn


def load(name: str, seed: int = 0) -> Drawn:
    """A built-in set from the cache, or drawn (and cached, if the cache folder is writable)."""
    path = cache_path(name, seed)
    cached = _read_cache(path, name, seed)
    if cached is not None:
        return cached
    drawn = draw(name, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda handle: np.savez(
            handle, x_train=drawn.x_train, y_train=drawn.y_train, x_val=drawn.x_val,
            y_val=drawn.y_val, version=np.int64(VERSION), seed=np.int64(seed)))
    except OSError:
        pass  # no cache: drawn again next time
    return drawn
