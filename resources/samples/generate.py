"""Draw the bundled sample images and their index.json: five 256×256 RGB pictures, and one
validation image of each class of the built-in data (28×28 grey digits, 64×64 RGB shapes).

Usage: python resources/samples/generate.py [OUTPUT_DIR]   (default: this script's folder)

Uses NumPy and PySide6's QtGui only (no widgets) and works headless (QT_QPA_PLATFORM=offscreen).
The output is deterministic: fixed layouts and a fixed noise seed. Text is drawn with the project's
stroke glyphs (designer/data/strokes.py, also used for the built-in digits data) rather than a
system font, so the pixels don't depend on a machine's fonts. The built-in data's images are the
first of each class in its validation part (seed 0: never trained on by the models that ship),
so that predictions can be checked by eye; their index entries name the class ("class") and the
data ("data").
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QConicalGradient, QGuiApplication, QImage,
                           QLinearGradient, QPainter, QPainterPath, QPen, QPolygonF,
                           QRadialGradient, QTransform)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))  # the checkout's designer
from designer.data import builtin  # noqa: E402
from designer.data.strokes import GLYPHS  # noqa: E402

SIZE = 256
SEED = 20240611

INDEX = [
    {"file": "scene.png", "title": "Scene",
     "description": "A photo-like landscape with sky, sun, hills, a house and a tree: edges, "
                    "textures and colours together, as in a real photo."},
    {"file": "shapes.png", "title": "Shapes",
     "description": "Saturated circles, squares, triangles and lines on a light background: "
                    "see edge, corner and colour detectors respond."},
    {"file": "checkerboard.png", "title": "Checkerboard",
     "description": "Black and white 32-pixel squares: see horizontal and vertical edge filters, "
                    "strides and receptive-field sizes."},
    {"file": "gradients.png", "title": "Gradients",
     "description": "Red, blue, radial and hue ramps with no edges inside them: see "
                    "colour-opponent and brightness filters."},
    {"file": "digits.png", "title": "Digits",
     "description": "Large dark digits 0–9 and the word CNN on white: see stroke and curve "
                    "detectors, as in LeNet."},
]


# --------------------------------------------------------------------------------- pixels

def to_array(image: QImage) -> np.ndarray:
    """A QImage as a (H, W, 3) uint8 RGB copy."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, :w * 3].reshape(h, w, 3).copy()


def from_array(pixels: np.ndarray) -> QImage:
    """A (H, W, 3) array (clipped to 0–255) as a QImage owning a copy of its pixels."""
    pixels = np.ascontiguousarray(np.clip(np.rint(pixels), 0, 255), dtype=np.uint8)
    h, w, _ = pixels.shape
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def canvas(background: str) -> QImage:
    image = QImage(SIZE, SIZE, QImage.Format.Format_RGB32)
    image.fill(QColor(background))
    return image


def painter_on(image: QImage) -> QPainter:
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    return painter


def smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """(SIZE, SIZE) value noise in [0, 1]: a cells×cells random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, SIZE, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)  # smoothstep hides the grid
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


# --------------------------------------------------------------------------------- shapes

def polygon(*points: tuple[float, float]) -> QPolygonF:
    return QPolygonF([QPointF(x, y) for x, y in points])


def draw_shapes() -> QImage:
    image = canvas("#f5f2ea")
    p = painter_on(image)
    for colour, width, (x1, y1, x2, y2) in [("#111111", 6, (14, 236, 242, 196)),
                                             ("#e6007e", 8, (20, 20, 120, 118)),
                                             ("#00a6d6", 5, (140, 238, 250, 120))]:
        p.setPen(QPen(QColor(colour), width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(QPointF(x1, y1), QPointF(x2, y2))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#e32119"))
    p.drawEllipse(QPointF(70, 70), 42, 42)
    p.setBrush(QColor("#1f4fe0"))
    p.drawEllipse(QPointF(200, 168), 30, 30)
    p.setBrush(QColor("#19a33b"))
    p.drawRect(QRectF(146, 22, 80, 80))
    p.setBrush(QColor("#ff8c00"))
    p.save()
    p.translate(64, 178)
    p.rotate(30)
    p.drawRect(QRectF(-30, -30, 60, 60))
    p.restore()
    p.setBrush(QColor("#8a2be2"))
    p.drawPolygon(polygon((128, 110), (176, 196), (80, 196)))
    p.setBrush(QColor("#ffd800"))
    p.drawPolygon(polygon((22, 118), (62, 108), (34, 146)))
    p.end()
    return image


def draw_checkerboard() -> QImage:
    """Black where (row // 32 + column // 32) is even, so the top-left square is black."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    white = ((y // 32 + x // 32) % 2).astype(np.float64) * 255
    return from_array(np.repeat(white[:, :, None], 3, axis=2))


# ------------------------------------------------------------------------------ gradients

def draw_gradients() -> QImage:
    """Four 128-pixel quadrants: red ramp, blue ramp, radial green, hue wheel."""
    image = canvas("#000000")
    p = painter_on(image)
    half = SIZE / 2

    red = QLinearGradient(0, 0, half, 0)
    red.setColorAt(0, QColor("#000000"))
    red.setColorAt(1, QColor("#ff0000"))
    p.fillRect(QRectF(0, 0, half, half), red)

    blue = QLinearGradient(0, 0, 0, half)
    blue.setColorAt(0, QColor("#ffffff"))
    blue.setColorAt(1, QColor("#0000ff"))
    p.fillRect(QRectF(half, 0, half, half), blue)

    radial = QRadialGradient(QPointF(half / 2, 1.5 * half), half / 2 * math.sqrt(2))
    radial.setColorAt(0, QColor("#fff8c0"))
    radial.setColorAt(0.5, QColor("#3cc83c"))
    radial.setColorAt(1, QColor("#003214"))
    p.fillRect(QRectF(0, half, half, half), radial)

    wheel = QConicalGradient(QPointF(1.5 * half, 1.5 * half), 0)
    for k in range(7):
        wheel.setColorAt(k / 6, QColor.fromHsvF((k % 6) / 6, 1.0, 1.0))
    p.fillRect(QRectF(half, half, half, half), wheel)
    p.end()
    return image


# --------------------------------------------------------------------------------- digits

def replay(path: QPainterPath, ops: list[tuple]) -> None:
    """Add a glyph's stroke operations (designer.data.strokes) to path, one Qt call each."""
    for kind, *args in ops:
        if kind == "move":
            path.moveTo(*args)
        elif kind == "line":
            path.lineTo(*args)
        elif kind == "cubic":
            path.cubicTo(*args)
        elif kind == "arc":  # a new subpath along the ellipse, from start sweeping sweep degrees
            x, y, w, h, start, sweep = args
            path.arcMoveTo(QRectF(x, y, w, h), start)
            path.arcTo(QRectF(x, y, w, h), start, sweep)
        elif kind == "ellipse":
            path.addEllipse(QRectF(*args))
        else:
            raise ValueError(f"unknown stroke operation {kind!r}")


def glyph_path(char: str, box: QRectF) -> QPainterPath:
    """The stroke glyph for char mapped from the unit box onto box (pen widths stay in pixels)."""
    unit = QPainterPath()
    replay(unit, GLYPHS[char])
    transform = QTransform()
    transform.translate(box.x(), box.y())
    transform.scale(box.width(), box.height())
    return transform.map(unit)


def draw_text(p: QPainter, pen: QPen, text: str, x: float, y: float, width: float,
              height: float, gap: float) -> None:
    """Stroke text left to right from (x, y), each glyph in a width × height box."""
    for k, char in enumerate(text):
        p.strokePath(glyph_path(char, QRectF(x + k * (width + gap), y, width, height)), pen)


def stroke_pen(colour: str, width: float) -> QPen:
    return QPen(QColor(colour), width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                Qt.PenJoinStyle.RoundJoin)


def draw_digits() -> QImage:
    """Two rows of digits and the word CNN, dark strokes on white."""
    image = canvas("#ffffff")
    p = painter_on(image)
    draw_text(p, stroke_pen("#1a1a1a", 7), "01234", 13, 18, 34, 58, 15)
    draw_text(p, stroke_pen("#1a1a1a", 7), "56789", 13, 96, 34, 58, 15)
    draw_text(p, stroke_pen("#202a60", 9), "CNN", 39, 178, 46, 58, 20)
    p.end()
    return image


# ---------------------------------------------------------------------------------- scene

def textured(rng: np.random.Generator, dark: tuple[int, int, int],
             light: tuple[int, int, int], cells: int) -> QBrush:
    """A brush blending dark and light by smooth noise plus grain: grass, leaves, earth."""
    t = 0.75 * smooth_noise(rng, cells) + 0.25 * rng.random((SIZE, SIZE))
    colour = np.array(dark, float) + t[:, :, None] * (np.array(light, float) - dark)
    return QBrush(from_array(colour))


def hill(points: list[tuple[float, float]]) -> QPainterPath:
    """A closed hill outline: a smooth curve through points, closed along the bottom."""
    path = QPainterPath(QPointF(*points[0]))
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        mid = (x0 + x1) / 2
        path.cubicTo(mid, y0, mid, y1, x1, y1)
    path.lineTo(SIZE, SIZE)
    path.lineTo(0, SIZE)
    path.closeSubpath()
    return path


def draw_sky(p: QPainter) -> None:
    sky = QLinearGradient(0, 0, 0, 170)
    sky.setColorAt(0, QColor("#2f6fc0"))
    sky.setColorAt(1, QColor("#d9ecf7"))
    p.fillRect(QRectF(0, 0, SIZE, SIZE), sky)
    glow = QRadialGradient(QPointF(196, 58), 70)
    glow.setColorAt(0, QColor(255, 240, 190, 200))
    glow.setColorAt(1, QColor(255, 240, 190, 0))
    p.fillRect(QRectF(0, 0, SIZE, SIZE), glow)
    sun = QRadialGradient(QPointF(192, 54), 20)
    sun.setColorAt(0, QColor("#fffbe6"))
    sun.setColorAt(1, QColor("#ffd451"))
    p.setBrush(sun)
    p.drawEllipse(QPointF(196, 58), 18, 18)
    for cx, cy, rx, ry in [(52, 46, 30, 11), (74, 40, 22, 12), (96, 50, 26, 9),
                           (150, 96, 24, 7), (168, 92, 18, 8)]:
        cloud = QRadialGradient(QPointF(cx, cy - ry / 2), rx)
        cloud.setColorAt(0, QColor(255, 255, 255, 235))
        cloud.setColorAt(1, QColor(255, 255, 255, 0))
        p.setBrush(cloud)
        p.drawEllipse(QPointF(cx, cy), rx, ry)


def draw_hills(p: QPainter, rng: np.random.Generator) -> None:
    p.setBrush(textured(rng, (92, 124, 120), (128, 158, 150), 8))
    p.drawPath(hill([(0, 132), (60, 112), (130, 138), (200, 116), (256, 130)]))
    p.setBrush(textured(rng, (70, 120, 40), (120, 170, 60), 16))
    p.drawPath(hill([(0, 168), (90, 146), (170, 162), (256, 150)]))
    p.setBrush(textured(rng, (46, 100, 30), (104, 156, 52), 24))
    p.drawPath(hill([(0, 214), (110, 196), (256, 222)]))
    shade = QLinearGradient(0, 150, 0, SIZE)
    shade.setColorAt(0, QColor(0, 0, 0, 0))
    shade.setColorAt(1, QColor(0, 20, 0, 70))
    p.fillRect(QRectF(0, 150, SIZE, SIZE - 150), shade)


def draw_house(p: QPainter) -> None:
    shadow = QRadialGradient(QPointF(100, 188), 46)
    shadow.setColorAt(0, QColor(0, 0, 0, 90))
    shadow.setColorAt(1, QColor(0, 0, 0, 0))
    p.setBrush(shadow)
    p.drawEllipse(QPointF(92, 190), 50, 10)
    wall = QLinearGradient(56, 0, 128, 0)
    wall.setColorAt(0, QColor("#c9b28e"))
    wall.setColorAt(1, QColor("#f2e3c4"))  # lit from the sun on the right
    p.setBrush(wall)
    p.drawRect(QRectF(56, 146, 72, 42))
    roof = QLinearGradient(0, 116, 0, 150)
    roof.setColorAt(0, QColor("#b33a2a"))
    roof.setColorAt(1, QColor("#7d2218"))
    p.setBrush(roof)
    p.drawPolygon(polygon((48, 148), (92, 116), (136, 148)))
    p.setBrush(QColor("#5a3a22"))
    p.drawRect(QRectF(84, 164, 14, 24))
    p.setBrush(QColor("#f7f3e0"))
    for x in (64, 106):
        p.drawRect(QRectF(x, 156, 14, 13))
    p.setBrush(QColor("#4f7fae"))
    for x in (66, 108):
        p.drawRect(QRectF(x, 158, 10, 9))


def draw_tree(p: QPainter, rng: np.random.Generator) -> None:
    shadow = QRadialGradient(QPointF(184, 200), 34)
    shadow.setColorAt(0, QColor(0, 0, 0, 90))
    shadow.setColorAt(1, QColor(0, 0, 0, 0))
    p.setBrush(shadow)
    p.drawEllipse(QPointF(176, 200), 36, 8)
    trunk = QLinearGradient(174, 0, 186, 0)
    trunk.setColorAt(0, QColor("#4a2f1a"))
    trunk.setColorAt(1, QColor("#7a5230"))
    p.setBrush(trunk)
    p.drawRect(QRectF(174, 150, 12, 50))
    leaves = textured(rng, (20, 70, 20), (70, 140, 50), 32)
    for cx, cy, r in [(166, 140, 22), (196, 138, 22), (180, 116, 26), (164, 120, 16),
                      (200, 118, 16)]:
        p.setBrush(leaves)
        p.drawEllipse(QPointF(cx, cy), r, r)
        light = QRadialGradient(QPointF(cx + r / 2, cy - r / 2), 1.4 * r)
        light.setColorAt(0, QColor(255, 255, 200, 60))
        light.setColorAt(0.6, QColor(0, 0, 0, 0))
        light.setColorAt(1, QColor(0, 20, 0, 90))
        p.setBrush(light)
        p.drawEllipse(QPointF(cx, cy), r, r)


def draw_scene() -> QImage:
    rng = np.random.default_rng(SEED)
    image = canvas("#ffffff")
    p = painter_on(image)
    draw_sky(p)
    draw_hills(p, rng)
    draw_house(p)
    draw_tree(p, rng)
    p.end()
    # a gentle vignette and sensor-like grain make it read as a photo
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
    vignette = 1.0 - 0.35 * (x * x + y * y)
    grain = rng.normal(0.0, 2.0, (SIZE, SIZE, 1))
    return from_array(to_array(image) * vignette[:, :, None] + grain)


# ---------------------------------------------------------------------------------- main

DRAWINGS: dict[str, Callable[[], QImage]] = {
    "scene.png": draw_scene,
    "shapes.png": draw_shapes,
    "checkerboard.png": draw_checkerboard,
    "gradients.png": draw_gradients,
    "digits.png": draw_digits,
}


#: the built-in data sets whose validation images are samples: name, title of one, file prefix
BUILTIN = [("digits", "Digit {}", "digit"), ("shapes", "Shape: {}", "shape")]
BUILTIN_FOLDER = "builtin"


def builtin_samples() -> list[tuple[dict, QImage]]:
    """One index entry and image per class of each built-in set: the first validation image of
    that class (seed 0), at the data's own size, grey for digits and RGB for shapes."""
    found = []
    for name, title, prefix in BUILTIN:
        drawn = builtin.draw(name, 0, train_size=0)
        classes = builtin.DIGIT_CLASSES if name == "digits" else builtin.SHAPE_CLASSES
        for label, class_name in enumerate(classes):
            index = int(np.flatnonzero(drawn.y_val == label)[0])
            pixels = np.ascontiguousarray(drawn.x_val[index].transpose(1, 2, 0))
            h, w, c = pixels.shape
            if c == 1:
                image = QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
            else:
                image = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            entry = {"file": f"{BUILTIN_FOLDER}/{prefix}-{class_name}.png",
                     "title": title.format(class_name),
                     "description": f"Validation image {index} of builtin:{name} (a "
                                    f"{class_name}, {w}×{h}), never trained on: check the "
                                    f"trained models' prediction by eye.",
                     "class": class_name, "data": f"builtin:{name}"}
            found.append((entry, image))
    return found


def generate(folder: Path) -> list[Path]:
    """Write every sample PNG and index.json into folder; the paths written."""
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (alive while painting)
    (folder / BUILTIN_FOLDER).mkdir(parents=True, exist_ok=True)
    written = []
    images = [(entry, DRAWINGS[entry["file"]]().convertToFormat(QImage.Format.Format_RGB888))
              for entry in INDEX]
    images += builtin_samples()
    for entry, image in images:
        path = folder / entry["file"]
        if not image.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        written.append(path)
    index = folder / "index.json"
    entries = [entry for entry, _ in images]
    index.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return written + [index]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path(__file__).resolve().parent,
                        help="where to write the PNGs and index.json (default: this folder)")
    for path in generate(parser.parse_args(argv).folder):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
