#!/usr/bin/env python3
"""Render resources/icons/cnn-designer.svg to the PNG sizes the desktop and the app use.

    .venv/bin/python packaging/make_icons.py          # writes resources/icons/cnn-designer-<N>.png
    .venv/bin/python packaging/make_icons.py --check  # exit 1 if a committed PNG differs from a fresh render

Deterministic: the same SVG and Qt give the same bytes (no randomness, no time stamps in the PNGs).
The check allows the small differences another Qt version's antialiasing makes (TOLERANCE), not a
changed drawing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "cnn-designer.svg"
#: the sizes of the freedesktop hicolor theme a launcher asks for (and the About box's 64)
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
#: --check: the largest difference in any channel of any pixel (0-255), and the largest mean
TOLERANCE = (48, 1.5)


def png_path(size: int) -> Path:
    return ICONS / f"cnn-designer-{size}.png"


def render(size: int):
    """The icon drawn at ``size``×``size`` pixels, as a QImage (premultiplied ARGB)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def _close(a, b) -> bool:
    """Whether two ARGB32 images of one size differ by at most TOLERANCE."""
    import numpy as np

    def pixels(image):
        return np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).astype(np.int16)

    diff = np.abs(pixels(a) - pixels(b))
    return int(diff.max()) <= TOLERANCE[0] and float(diff.mean()) <= TOLERANCE[1]


def main(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication, QImage

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (fonts, image plugins)
    check = "--check" in argv
    stale = []
    for size in SIZES:
        image = render(size)
        path = png_path(size)
        if check:
            old = QImage(str(path)).convertToFormat(QImage.Format.Format_ARGB32)
            if old.isNull() or old.size() != image.size() or not _close(old, image):
                stale.append(path.name)
        elif not image.save(str(path), "PNG"):
            raise SystemExit(f"could not write {path}")
    if stale:
        print(f"out of date (run packaging/make_icons.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    if not check:
        print(f"wrote {len(SIZES)} PNGs to {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
