"""The project's own stroke glyphs for the digits (and the letters C and N), in a unit box.

Each glyph is a list of drawing operations in the unit square (x right, y down; angles in
degrees counter-clockwise from 3 o'clock, as Qt measures them), shared by two painters:

- ``resources/samples/generate.py`` replays them on a ``QPainterPath`` (the sample image
  ``digits.png``), one Qt call per operation;
- :func:`polylines` samples them into point lists with NumPy only, from which the built-in
  digits data set (``designer.data.builtin``) is drawn, identically on every machine.

Operations: ``("move", x, y)``, ``("line", x, y)``, ``("cubic", x1, y1, x2, y2, x, y)`` (from
the current point), ``("arc", x, y, w, h, start, sweep)`` (a new subpath along the ellipse in
the box (x, y, w, h)) and ``("ellipse", x, y, w, h)`` (a closed subpath).
"""
from __future__ import annotations

import numpy as np

Op = tuple

GLYPHS: dict[str, list[Op]] = {
    "0": [("ellipse", 0.0, 0.0, 1.0, 1.0)],
    "1": [("move", 0.2, 0.22), ("line", 0.58, 0.0), ("line", 0.58, 1.0),
          ("move", 0.22, 1.0), ("line", 0.92, 1.0)],
    "2": [("arc", 0.02, 0.0, 0.96, 0.56, 165, -165),
          ("cubic", 0.98, 0.55, 0.4, 0.72, 0.0, 1.0),
          ("line", 1.0, 1.0)],
    "3": [("arc", 0.08, 0.0, 0.84, 0.48, 150, -240),
          ("arc", 0.0, 0.48, 1.0, 0.52, 90, -250)],
    "4": [("move", 0.74, 1.0), ("line", 0.74, 0.0), ("line", 0.0, 0.7), ("line", 1.0, 0.7)],
    "5": [("move", 0.95, 0.0), ("line", 0.15, 0.0), ("line", 0.08, 0.46),
          ("cubic", 0.45, 0.3, 1.0, 0.4, 1.0, 0.7),
          ("cubic", 1.0, 1.06, 0.28, 1.08, 0.0, 0.86)],
    "6": [("move", 0.86, 0.04), ("cubic", 0.35, -0.06, 0.0, 0.3, 0.02, 0.7),
          ("ellipse", 0.02, 0.42, 0.96, 0.58)],
    "7": [("move", 0.0, 0.0), ("line", 1.0, 0.0), ("line", 0.34, 1.0)],
    "8": [("ellipse", 0.1, 0.0, 0.8, 0.46), ("ellipse", 0.0, 0.46, 1.0, 0.54)],
    "9": [("ellipse", 0.02, 0.0, 0.96, 0.58), ("move", 0.98, 0.3),
          ("cubic", 1.0, 0.7, 0.65, 1.06, 0.14, 0.96)],
    "C": [("arc", 0.0, 0.0, 1.0, 1.0, 45, 270)],
    "N": [("move", 0.0, 1.0), ("line", 0.0, 0.0), ("line", 1.0, 1.0), ("line", 1.0, 0.0)],
}

DIGITS = "0123456789"


def _ellipse_points(x: float, y: float, w: float, h: float, start: float, sweep: float,
                    step_degrees: float) -> np.ndarray:
    n = max(2, int(np.ceil(abs(sweep) / step_degrees)) + 1)
    a = np.deg2rad(start + sweep * np.linspace(0.0, 1.0, n))
    # rounded to 2^-30 so that a last-bit difference in a platform's sin or cos changes nothing
    c, s = np.round(np.cos(a) * 2**30) / 2**30, np.round(np.sin(a) * 2**30) / 2**30
    return np.stack([x + w / 2 * (1 + c), y + h / 2 * (1 - s)], axis=1)


def polylines(char: str, step_degrees: float = 6.0, cubic_points: int = 24) -> list[np.ndarray]:
    """The glyph for ``char`` as (k, 2) float64 arrays of (x, y) points in the unit box, one per
    subpath (curves sampled every ``step_degrees`` or at ``cubic_points`` points)."""
    paths: list[list[np.ndarray]] = []
    current: list[np.ndarray] | None = None

    def start(point: np.ndarray) -> list[np.ndarray]:
        paths.append([point[None]])
        return paths[-1]

    for op in GLYPHS[char]:
        kind, args = op[0], op[1:]
        if kind == "move":
            current = start(np.array(args, float))
        elif kind == "line":
            assert current is not None
            current.append(np.array([args], float))
        elif kind == "cubic":
            assert current is not None
            p0 = current[-1][-1]
            p1, p2, p3 = (np.array(args[i:i + 2], float) for i in (0, 2, 4))
            t = np.linspace(0.0, 1.0, cubic_points)[1:, None]
            u = 1 - t
            current.append(u**3 * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t**3 * p3)
        elif kind == "arc":
            points = _ellipse_points(*args, step_degrees=step_degrees)
            current = start(points[0])
            current.append(points[1:])
        elif kind == "ellipse":
            points = _ellipse_points(*args, 0.0, 360.0, step_degrees)
            current = start(points[0])
            current.append(points[1:])
        else:  # pragma: no cover - the table above is all there is
            raise ValueError(f"unknown stroke operation {kind!r}")
    return [np.concatenate(parts) for parts in paths]
