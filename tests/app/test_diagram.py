"""The diagram export (designer.app.diagram): every template as SVG, PDF and PNG, offscreen, with
the node ids as real text; the refusals."""
from __future__ import annotations

import html
import re
import zlib

import pytest
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from designer.app import diagram
from designer.app.diagram import DiagramWriteError, export_diagram
from designer.core.design import Design, Node
from designer.engine.memory import NotEnoughMemory
from designer.io.templates import find_template, list_templates

TEMPLATES = [t.id for t in list_templates()]


def _svg_texts(path) -> list[str]:
    svg = path.read_text(encoding="utf-8")
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg, re.S)]


def _pdf_texts(data: bytes) -> list[str]:
    """The text of a PDF written by Qt: each BT … ET block's glyph codes read back through its
    font's ToUnicode map (the font objects are found by reference)."""
    objects = {int(m.group(1)): m.group(2) for m in
               re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, re.S)}

    def stream(body: bytes) -> bytes:
        m = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S)
        raw = m.group(1)
        return zlib.decompress(raw) if b"/FlateDecode" in body else raw

    def cmap(number: int) -> dict[int, str]:
        text, table = stream(objects[number]).decode("latin-1"), {}
        for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
            for lo, hi, rest in re.findall(r"<(\w+)>\s*<(\w+)>\s*(\[[^\]]*\]|<\w+>)", block):
                lo, hi = int(lo, 16), int(hi, 16)
                if rest.startswith("["):
                    for i, code in enumerate(re.findall(r"<(\w+)>", rest)):
                        table[lo + i] = chr(int(code, 16))
                else:
                    start = int(rest[1:-1], 16)
                    for i in range(hi - lo + 1):
                        table[lo + i] = chr(start + i)
        for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
            for code, uni in re.findall(r"<(\w+)>\s*<(\w+)>", block):
                table[int(code, 16)] = chr(int(uni, 16))
        return table

    fonts: dict[str, dict[int, str]] = {}
    for body in objects.values():
        for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", body):
            m = re.search(rb"/ToUnicode (\d+) 0 R", objects[int(ref)])
            if m:
                fonts[name.decode()] = cmap(int(m.group(1)))
    texts = []
    for body in objects.values():
        if b"stream" not in body:
            continue
        try:
            content = stream(body).decode("latin-1")
        except (zlib.error, AttributeError):
            continue
        for block in re.findall(r"BT(.*?)ET", content, re.S):
            font = re.search(r"/(F\d+) [\d.]+ Tf", block)
            if font is None or font.group(1) not in fonts:
                continue
            table = fonts[font.group(1)]
            texts.append("".join(table.get(int(c, 16), "?")
                                 for c in re.findall(r"<(\w+)> Tj", block)))
    return texts


@pytest.mark.parametrize("template_id", TEMPLATES)
def test_every_template_exports_with_its_ids_as_text(qapp, tmp_path, template_id):
    design = find_template(template_id).load()
    ids = design.node_ids
    export_diagram(design, tmp_path / "d.svg")
    export_diagram(design, tmp_path / "d.pdf")
    export_diagram(design, tmp_path / "d.png")
    # SVG: every id is in a text element of its own card's title, whole (not cut short)
    words = {w for text in _svg_texts(tmp_path / "d.svg") for w in text.split()}
    assert [i for i in ids if i not in words] == []
    renderer = QSvgRenderer(str(tmp_path / "d.svg"))
    assert renderer.isValid()
    # PDF: one page, and the ids read back as text
    data = (tmp_path / "d.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 1
    words = {w for text in _pdf_texts(data) for w in text.split()}
    assert [i for i in ids if i not in words] == []
    image = QImage(str(tmp_path / "d.png"))
    assert not image.isNull() and image.width() > 200 and image.height() > 100
    assert design.node_ids == ids  # the caller's design is untouched


def test_png_size_follows_the_scale_and_the_corners_are_white(qapp, tmp_path):
    design = find_template("cifar10-convnet").load()
    export_diagram(design, tmp_path / "one.png", 1.0)
    export_diagram(design, tmp_path / "two.png", 2.0)
    one, two = QImage(str(tmp_path / "one.png")), QImage(str(tmp_path / "two.png"))
    assert abs(two.width() - 2 * one.width()) <= 1
    assert abs(two.height() - 2 * one.height()) <= 1
    assert one.pixelColor(0, 0) == QColor("white")
    assert one.pixelColor(one.width() - 1, one.height() - 1) == QColor("white")
    # the cards are drawn: the image is not all white
    assert any(one.pixelColor(one.width() // 2, y) != QColor("white")
               for y in range(0, one.height(), 5))


def test_svg_and_png_show_the_same_drawing(qapp, tmp_path):
    """The SVG rendered at the PNG's size looks like the PNG (same cards in the same places)."""
    design = find_template("lenet5").load()
    export_diagram(design, tmp_path / "d.svg")
    export_diagram(design, tmp_path / "d.png")
    png = QImage(str(tmp_path / "d.png")).convertToFormat(QImage.Format.Format_RGB32)
    svg = QImage(png.size(), QImage.Format.Format_RGB32)
    svg.fill(QColor("white"))
    painter = QPainter(svg)
    QSvgRenderer(str(tmp_path / "d.svg")).render(painter)
    painter.end()
    differ = sum(1 for y in range(0, png.height(), 4) for x in range(0, png.width(), 4)
                 if abs(png.pixelColor(x, y).lightness() - svg.pixelColor(x, y).lightness()) > 60)
    total = (png.height() // 4 + 1) * (png.width() // 4 + 1)
    assert differ < 0.03 * total


def test_a_long_id_is_kept_whole_and_the_type_shortened(qapp, tmp_path):
    design = Design("long")
    design.insert_node(Node("input", "Input", {}, position=(0.0, 0.0)))
    design.insert_node(Node("layer2.0.downsample.1", "BatchNorm2d", {}, position=(0.0, 120.0)))
    design.connect("input", "layer2.0.downsample.1")
    export_diagram(design, tmp_path / "d.svg")
    titles = [t for t in _svg_texts(tmp_path / "d.svg") if "layer2.0.downsample.1" in t]
    assert len(titles) == 1 and titles[0].startswith("B") and "…" in titles[0]


def test_unknown_extension_is_refused(qapp, tmp_path):
    design = find_template("lenet5").load()
    with pytest.raises(ValueError, match=r"\.svg, \.pdf or \.png"):
        export_diagram(design, tmp_path / "d.jpg")
    with pytest.raises(ValueError, match="no extension"):
        export_diagram(design, tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scale", [0, -1, float("nan"), 1000, "big"])
def test_bad_scale_is_refused(qapp, tmp_path, scale):
    with pytest.raises(ValueError, match="scale"):
        export_diagram(find_template("lenet5").load(), tmp_path / "d.png", scale)


def test_unwritable_places_are_refused_with_a_message(qapp, tmp_path):
    design = find_template("lenet5").load()
    with pytest.raises(DiagramWriteError, match="does not exist") as missing:
        export_diagram(design, tmp_path / "nowhere" / "d.svg")
    assert isinstance(missing.value, OSError)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(DiagramWriteError, match="it is a folder"):
        export_diagram(design, tmp_path / "folder.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os
        if os.access(locked, os.W_OK):  # running as root: a file in the way instead
            blocker = tmp_path / "file"
            blocker.write_text("x")
            target = blocker / "d.pdf"
        else:
            target = locked / "d.pdf"
        with pytest.raises(DiagramWriteError, match="can't save|not a folder|permission"):
            export_diagram(design, target)
    finally:
        locked.chmod(0o700)


def test_a_huge_png_is_refused_before_drawing(qapp, tmp_path, monkeypatch):
    design = find_template("resnet18").load()
    with pytest.raises(ValueError, match=r"20,000 pixels a side") as error:
        export_diagram(design, tmp_path / "d.png", 10)
    assert "×" in str(error.value) and "SVG or PDF" in str(error.value)
    monkeypatch.setattr(diagram, "available_memory", lambda: 50 * 2**20)
    with pytest.raises(NotEnoughMemory, match=r"needs about [\d,]+ MiB, but only 50 MiB is free"):
        export_diagram(design, tmp_path / "d.png", 2)
    assert not (tmp_path / "d.png").exists()
    export_diagram(design, tmp_path / "d.svg", 10)  # vector formats have no such limit
    assert (tmp_path / "d.svg").exists()


def test_file_menu_exports_the_diagram(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    window.document.replace(find_template("lenet5").load(), None)
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "Export &diagram…" in texts
    # the PNG 4× filter picked, no extension typed: a 4× PNG
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "net"), "PNG image, 4× (*.png)"))
    assert window.export_diagram_dialog()
    export_diagram(window.document.design, tmp_path / "one.png", 1.0)
    big, one = QImage(str(tmp_path / "net.png")), QImage(str(tmp_path / "one.png"))
    assert abs(big.width() - 4 * one.width()) <= 2
    assert "Exported the diagram" in window.statusBar().currentMessage()
    # a failure is said in a message box
    errors = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: errors.append(text))
    assert not window.export_diagram_to(tmp_path / "nowhere" / "d.pdf")
    assert len(errors) == 1 and "does not exist" in errors[0]


def test_pdf_page_is_the_drawing_size(qapp, tmp_path):
    design = find_template("inception-block").load()
    export_diagram(design, tmp_path / "d.svg")
    export_diagram(design, tmp_path / "d.pdf")
    box = re.search(r'viewBox="0 0 (\d+) (\d+)"', (tmp_path / "d.svg").read_text()).groups()
    media = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]",
                      (tmp_path / "d.pdf").read_bytes()).groups()
    for svg_units, points in zip(box, media):
        assert abs(float(points) - int(svg_units) * 72 / 96) < 1.5


def test_exports_without_a_display_or_an_application(tmp_path):
    """As the command line calls it: a fresh process, no QApplication, no display."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = ("import sys\n"
            "from designer.io.templates import find_template\n"
            "from designer.app.diagram import export_diagram\n"
            "export_diagram(find_template('lenet5').load(), sys.argv[1], 1.0)\n")
    out = tmp_path / "d.png"
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not QImage(str(out)).isNull()
