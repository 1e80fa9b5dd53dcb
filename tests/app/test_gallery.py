"""File › New: the template gallery."""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor

from designer.app.panels.gallery import TemplateGallery, design_preview
from designer.io.templates import find_template, list_templates


def test_gallery_lists_blank_and_every_template_with_details(qtbot):
    gallery = TemplateGallery()
    qtbot.addWidget(gallery)
    titles = [gallery.list.item(i).text() for i in range(gallery.list.count())]
    assert titles == ["Blank design"] + [t.title for t in list_templates()]
    assert gallery.chosen is None  # blank is preselected
    row = 1 + [t.id for t in list_templates()].index("vgg16")
    gallery.list.setCurrentRow(row)
    assert gallery.chosen.id == "vgg16"
    assert "138,357,544 parameters" in gallery.details.text()
    assert "3×224×224" in gallery.details.text()


def test_preview_draws_the_graph(qtbot):
    image = design_preview(find_template("inception-block").load()).toImage()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 2)
               for y in range(0, image.height(), 2)}
    assert QColor("white").name() in colours and len(colours) > 5  # blocks and edges drawn


def test_new_from_the_gallery_replaces_the_design(window, qtbot):
    def choose():
        gallery = window.findChild(TemplateGallery)
        row = 1 + [t.id for t in list_templates()].index("lenet5")
        gallery.list.setCurrentRow(row)
        gallery.accept()

    QTimer.singleShot(0, choose)
    window.new_dialog()
    assert window.document.design.name == find_template("lenet5").load().name
    assert window.document.path is None and not window.isWindowModified()
