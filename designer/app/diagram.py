"""The design's diagram as a file: the canvas's drawing of the whole design (every card with its
text, every connection along its route) as SVG, PDF or PNG (contract §8).

The drawing is made by the canvas's own scene (``CanvasScene`` over a private ``Document``), built
offscreen and never shown: no view, no selection, no hover. It works without a display
(``QT_QPA_PLATFORM=offscreen``); a ``QApplication`` is made if there is none yet.

SVG and PDF keep the cards' text as text (searchable, selectable, sharp at any zoom); PNG is drawn
at ``scale`` pixels per canvas unit on white."""
from __future__ import annotations

import errno
import math
import os
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication

from designer.core.atomic import describe_os_error, write_atomic
from designer.core.design import Design
from designer.engine.memory import NotEnoughMemory, available_memory, mib
from designer.io.images import image_png_bytes

#: the file types, by extension
FORMATS = (".svg", ".pdf", ".png")
#: room around the drawing (canvas units)
MARGIN = 24.0
#: the canvas's resolution: its 9 pt card text is this many dots per inch of canvas units, so the
#: text sits in the cards as it does on screen
CANVAS_DPI = 96
#: a PNG is refused beyond this many pixels a side (image viewers and Qt's own limits)
MAX_PNG_SIDE = 20000
#: what a PNG needs while it is made: the image (4 bytes a pixel) and its encoding
_PNG_BYTES_PER_PIXEL = 6
_SCALE_RANGE = (0.05, 20.0)

_app: QApplication | None = None  # made here when the caller had none


class DiagramWriteError(OSError):
    """The diagram could not be written to the file; the message names it and says why."""


def _application() -> QApplication:
    global _app
    app = QApplication.instance()
    if app is None:
        if (sys.platform.startswith(("linux", "freebsd")) and not os.environ.get("QT_QPA_PLATFORM")
                and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display: none is needed
        _app = app = QApplication(["cnn-designer"])
    if not isinstance(app, QApplication):
        raise RuntimeError("drawing the diagram needs a QApplication (the running application is a "
                           f"{type(app).__name__})")
    return app


def _check_path(path: Path) -> str:
    kind = path.suffix.lower()
    if kind not in FORMATS:
        what = f'"{path.suffix}"' if path.suffix else "no extension"
        raise ValueError(f"{path.name}: a diagram is saved as .svg, .pdf or .png, not {what}; "
                         "end the file name with one of those")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():  # said before drawing
        raise DiagramWriteError(describe_os_error(
            FileNotFoundError(errno.ENOENT, "no such folder", str(path)), path))
    if path.is_dir():
        raise DiagramWriteError(describe_os_error(
            IsADirectoryError(errno.EISDIR, "it is a folder", str(path)), path))
    return kind


def _check_scale(scale: float) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"the diagram's scale must be a number, not {scale!r}") from None
    low, high = _SCALE_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"the diagram's scale must be between {low:g} and {high:g}, not {scale!r}")
    return value


def _drawing(design: Design):
    """A scene drawing a copy of ``design`` (the caller's design is not touched or listened to)
    and the rectangle around it, margin included. Returns the document too, which must be closed."""
    from designer.app.canvas.scene import CanvasScene
    from designer.app.document import Document

    document = Document(design.copy())
    scene = CanvasScene(document)
    scene.flush_routes()
    scene.setBackgroundBrush(QColor("white"))
    scene.clearSelection()
    rect = scene.itemsBoundingRect()
    if rect.isEmpty():
        rect = QRectF(0, 0, 200, 100)
    return document, scene, rect.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)


def _whole_ids(scene, font: QFont) -> None:
    """Cards whose title ("Conv2d  layer2.0.downsample.0") is too long for them: on the canvas
    the id is cut short (its tooltip has it whole); a diagram has no tooltips, so the type is
    shortened instead and the id kept whole. Done through the cards' title cache (the text they
    draw for a given type, id and font)."""
    from designer.app.canvas.items import TEXT_RECT, _CardStyle

    style = _CardStyle.get(font)
    metrics, width = style.metrics, int(TEXT_RECT.width())
    for node_id, item in scene.nodes.items():
        info = item.info
        type_name = info.type if info is not None else ""
        full = f"{type_name}  {node_id}"
        if metrics.horizontalAdvance(full) <= width:
            continue
        room = width - metrics.horizontalAdvance(f"  {node_id}")
        short = metrics.elidedText(type_name, Qt.TextElideMode.ElideRight, room) if room > 0 else ""
        if short and short != "\u2026":
            title = f"{short}  {node_id}"
        else:  # the id alone fills the card
            title = metrics.elidedText(node_id, Qt.TextElideMode.ElideMiddle, width)
        item._title = ((type_name, node_id, style.key), title)


def _render(scene, device, source: QRectF, target: QRectF) -> None:
    painter = QPainter()
    if not painter.begin(device):
        raise RuntimeError("could not start drawing the diagram")
    try:
        font = QFont(QApplication.font())  # as the canvas's view paints with
        # no ligatures: a PDF's "fl" would otherwise be one glyph (U+FB02), and a search for
        # "flatten" would miss it
        font.setFeature(QFont.Tag("liga"), 0)
        painter.setFont(font)
        _whole_ids(scene, painter.font())
        painter.setRenderHints(QPainter.RenderHint.Antialiasing
                               | QPainter.RenderHint.TextAntialiasing
                               | QPainter.RenderHint.SmoothPixmapTransform)
        scene.render(painter, target, source, Qt.AspectRatioMode.IgnoreAspectRatio)
    finally:
        painter.end()


def png_size(width: float, height: float, scale: float) -> tuple[int, int]:
    """A drawing's PNG size in pixels at ``scale``."""
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _check_png(design: Design, width: int, height: int, scale: float) -> None:
    if max(width, height) > MAX_PNG_SIDE:
        raise ValueError(
            f'the diagram of "{design.name or "the design"}" at scale {scale:g} would be '
            f"{width:,} × {height:,} pixels, but a PNG is limited to {MAX_PNG_SIDE:,} pixels a side; "
            "use a smaller scale, or export SVG or PDF (they have no size limit)")
    need = width * height * _PNG_BYTES_PER_PIXEL
    free = available_memory()
    if free is not None and need > free:
        raise NotEnoughMemory(
            f"the diagram as a {width:,} × {height:,} PNG needs about {mib(need)}, but only "
            f"{mib(free)} is free; use a smaller scale, or export SVG or PDF")


def _svg(scene, source: QRectF, title: str) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    size = QSize(math.ceil(source.width()), math.ceil(source.height()))
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setResolution(CANVAS_DPI)
    generator.setTitle(title)
    generator.setDescription("drawn by CNN Designer")
    _render(scene, generator, source, QRectF(0, 0, size.width(), size.height()))
    buffer.close()
    return bytes(data.data())


def _pdf(scene, source: QRectF, title: str) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(CANVAS_DPI)
    writer.setTitle(title)
    writer.setCreator("CNN Designer")
    points = QSizeF(source.width() * 72 / CANVAS_DPI, source.height() * 72 / CANVAS_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(points, QPageSize.Unit.Point, "diagram",
                                               QPageSize.SizeMatchPolicy.ExactMatch),
                                     QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    page = QRectF(0, 0, source.width(), source.height())
    _render(scene, writer, source, page)
    del writer  # finishes the file
    buffer.close()
    return bytes(data.data())


def _png(scene, source: QRectF, width: int, height: int) -> bytes:
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    if image.isNull():
        raise NotEnoughMemory(f"could not make a {width:,} × {height:,} image for the diagram; "
                              "use a smaller scale")
    dots_per_metre = round(CANVAS_DPI / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    image.fill(QColor("white"))
    _render(scene, image, source, QRectF(0, 0, width, height))
    return image_png_bytes(image)


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a failed write leaves an existing file as it was."""
    try:
        write_atomic(path, lambda handle: handle.write(data))
    except OSError as error:
        raise DiagramWriteError(describe_os_error(error, path)) from error


def export_diagram(design: Design, path: str | os.PathLike, scale: float = 1.0) -> None:
    """Save the canvas's drawing of ``design`` to ``path``: SVG, PDF or PNG by its extension.
    ``scale`` is the PNG's pixels per canvas unit (SVG and PDF are drawn at the canvas's size).

    Raises ValueError for an unknown extension, a scale out of range or a PNG larger than
    ``MAX_PNG_SIDE`` a side; NotEnoughMemory (a MemoryError) for a PNG the free memory can't
    hold; DiagramWriteError (an OSError) when the file can't be written."""
    path = Path(path)
    kind = _check_path(path)
    scale = _check_scale(scale)
    _application()
    document, scene, source = _drawing(design)
    try:
        title = design.name or path.stem
        if kind == ".svg":
            data = _svg(scene, source, title)
        elif kind == ".pdf":
            data = _pdf(scene, source, title)
        else:
            width, height = png_size(source.width(), source.height(), scale)
            _check_png(design, width, height, scale)
            data = _png(scene, source, width, height)
    finally:
        scene.clear()
        document.analysis.close()
    _write(path, data)
