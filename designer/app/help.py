"""The Help menu's pages: the keyboard shortcuts (read from the window's own actions, so the list
is never out of date), getting started (the lecture's first example in five steps), and About."""
from __future__ import annotations

import platform

import PySide6
from PySide6.QtCore import QSize, Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QMainWindow, QMenu, QMessageBox,
                               QTextBrowser, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

import designer
from designer.app.icon import app_icon

#: the icon's side in the About box, in device-independent pixels
ABOUT_ICON = 96

#: what the mouse does on the canvas (not actions, so listed here)
MOUSE = (
    ("Add a layer", "Drag it from Layers onto the canvas, or double-click it"),
    ("Insert a layer into a connection", "Drop it on the connection"),
    ("Connect two layers", "Drag from a card's bottom port onto another card"),
    ("Move layers", "Drag a card (several: select them with a rubber band first)"),
    ("Zoom", "Mouse wheel"),
    ("Pan", "Middle-button drag, or click or drag in the overview"),
    ("See a map large", "Double-click it in Activations"),
    ("Pick a unit (its receptive field)", "Click it in an activation map"),
)

GETTING_STARTED = """
<h2>Getting started: one convolutional layer</h2>
<p>The lecture's first example: a 32×32 colour image (32×32×3) and ten 5×5 filters. Five
steps:</p>
<ol>
<li><b>The image.</b> Drag <i>Input</i> from <i>Layers</i> (on the left) onto the canvas. It is a
32×32×3 image already: its card reads <code>3×32×32</code> (channels first, as in PyTorch).
Select it to change channels, height or width in the <i>Inspector</i>.</li>
<li><b>A convolution.</b> With the Input selected, double-click <i>Conv2d</i> in Layers (or press
Ctrl+F, type <code>conv</code> and press Enter). It is added below the Input and connected to
it.</li>
<li><b>Ten 5×5 filters.</b> In the Inspector set <i>out_channels</i> to 10, <i>kernel_size</i> to
5 and <i>padding</i> to 0 (stride stays 1).</li>
<li><b>Read the card.</b> It says <code>10 × 5×5, s1, p0</code> and <code>10×28×28</code>:
(32 − 5 + 2·0)/1 + 1 = 28, so each filter slides to 28×28 positions and gives one 28×28
activation map. The layer has 760 parameters: 10·(5·5·3 + 1), each filter spanning all three
input channels plus a bias. The Inspector shows the arithmetic; try padding 2 to keep
32×32.</li>
<li><b>Look inside.</b> In <i>Run on an image</i> pick a sample image and press F5 (Run): the
<i>Activations</i> tab shows the ten maps. Click a unit in a map to see its 5×5 receptive field
on the image. Save your design with Ctrl+S.</li>
</ol>
<p>Larger networks: Ctrl+N opens the template gallery (LeNet-5, AlexNet, VGG-16, ResNet-18, …).
LeNet-5, the CIFAR-10 ConvNet and Tiny VGG open with weights trained on the built-in digits or
shapes: run a <i>Digit</i> or <i>Shape</i> sample to see what the network predicts, and
<i>Why this prediction?</i> for the pixels and regions behind it.</p>
<p><b>Train your own.</b> Train ▸ Train panel (Ctrl+T): pick the data (built-in digits or shapes,
a folder with one sub-folder of images per class, or an .npz), then Start (F6). Watch the loss
fall and the first layer's filters change; when it ends, the Run panel uses the new weights.
Help ▸ Keyboard shortcuts lists every key.</p>
"""


def plain(text: str) -> str:
    """A menu text without its mnemonic marks and trailing dots ("Save &as…" → "Save as")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").rstrip(".")


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action of the menu bar (and of the window itself) that
    has a shortcut, in menu order; keys as the platform writes them."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def add(where: str, action: QAction) -> None:
        if id(action) in seen or action.isSeparator():
            return
        seen.add(id(action))
        name = plain(action.text())
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()
                if not k.isEmpty()]
        keys = [k for k in keys if k != name]  # a key of that name (Redo, Undo, Copy …)
        if keys:
            rows.append((where, name, ", ".join(keys)))

    def walk(menu: QMenu, where: str) -> None:
        for action in menu.actions():
            sub = action.menu()
            if isinstance(sub, QMenu):
                walk(sub, f"{where} ▸ {plain(action.text())}")
            else:
                add(where, action)

    for action in window.menuBar().actions():
        if isinstance(action.menu(), QMenu):
            walk(action.menu(), plain(action.text()))
    for action in window.actions():
        add("Window", action)
    return rows


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut, by menu, and what the mouse does on the canvas."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        groups: dict[str, QTreeWidgetItem] = {}
        for where, text, keys in shortcut_rows(window):
            group = groups.get(where)
            if group is None:
                group = groups[where] = QTreeWidgetItem([where])
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                self.tree.addTopLevelItem(group)
            group.addChild(QTreeWidgetItem([text, keys]))
        mouse = QTreeWidgetItem(["Mouse, on the canvas"])
        font = mouse.font(0)
        font.setBold(True)
        mouse.setFont(0, font)
        self.tree.addTopLevelItem(mouse)
        for text, how in MOUSE:
            mouse.addChild(QTreeWidgetItem([text, how]))
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        self.tree.resizeColumnToContents(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        width = self.tree.columnWidth(0) + self.tree.columnWidth(1) + 60
        self.resize(min(max(width, 480), 900), 560)

    def rows(self) -> list[tuple[str, str, str]]:
        """What the dialog lists: (group, action, keys)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                child = group.child(j)
                out.append((group.text(0), child.text(0), child.text(1)))
        return out


class GettingStartedDialog(QDialog):
    """A short page: the lecture's 32×32×3 → ten 5×5 filters example in five steps. Not modal:
    it stays open beside the window while the steps are followed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Getting started")
        self.setModal(False)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(GETTING_STARTED)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(560, 600)


def about_text() -> str:
    return (f"<h3>CNN Designer {designer.__version__}</h3>"
            "<p>Design convolutional neural networks and look inside them: every layer's output "
            "shape, parameters, mult-adds and receptive field as you build, every mistake "
            "explained with its arithmetic, and activation maps of a design run on an "
            "image.</p>"
            f"<p>Python {platform.python_version()}, Qt {qVersion()}, "
            f"PySide6 {PySide6.__version__}</p>")


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "About CNN Designer", about_text(),
                      QMessageBox.StandardButton.Close, parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    ratio = parent.devicePixelRatioF() if parent is not None else 1.0
    box.setIconPixmap(app_icon().pixmap(QSize(ABOUT_ICON, ABOUT_ICON), ratio))
    box.open()  # not blocking: tests and users both carry on
    return box
