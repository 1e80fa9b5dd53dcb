"""The Help menu: keyboard shortcuts read from the window's own actions, getting started (whose
figures are what the app shows when its steps are followed), and About with the version."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

import designer
from designer.app.help import GettingStartedDialog, ShortcutsDialog, shortcut_rows
from designer.core.notation import layer_notation, shape_notation


def menu_action(window, menu_title: str, text: str) -> QAction:
    """An action of the menu bar, found by the texts a user reads."""
    for top in window.menuBar().actions():
        if top.text().replace("&", "") == menu_title:
            for action in top.menu().actions():
                if action.text().replace("&", "").rstrip("…") == text:
                    return action
    raise AssertionError(f"no {menu_title} ▸ {text}")


def open_dialog(qtbot, window, cls):
    menu_title, text = {ShortcutsDialog: ("Help", "Keyboard shortcuts"),
                        GettingStartedDialog: ("Help", "Getting started")}[cls]
    menu_action(window, menu_title, text).trigger()
    dialogs = [d for d in window.findChildren(cls) if d.isVisible()]
    assert len(dialogs) == 1
    qtbot.addWidget(dialogs[0])
    return dialogs[0]


def test_the_shortcuts_dialog_lists_every_shortcut_of_the_menus(qtbot, window):
    dialog = open_dialog(qtbot, window, ShortcutsDialog)
    rows = dialog.rows()
    listed = {(action, keys) for _, action, keys in rows}
    # independently: every action in every menu that has a key
    expected = set()
    for top in window.menuBar().actions():
        stack = [top.menu()]
        while stack:
            menu = stack.pop()
            for action in menu.actions():
                if action.menu() is not None:
                    stack.append(action.menu())
                elif action.shortcut().toString():
                    expected.add(action.text().replace("&", "").rstrip("…"))
    assert {action for action, _ in listed} >= expected
    native = QKeySequence.SequenceFormat.NativeText
    for text, keys in [("Save", QKeySequence(QKeySequence.StandardKey.Save).toString(native)),
                       ("Automatic layout", "Ctrl+L"), ("Fit to window", "Ctrl+0"),
                       ("Find a layer type", QKeySequence("Ctrl+F").toString(native)),
                       ("Maps large", "Ctrl+M"), ("Run on the image", "F5")]:
        assert any(a == text and keys in k for a, k in listed), text
    redo = next(k for a, k in listed if a == "Redo")
    assert "Ctrl+Y" in redo and "Ctrl+Shift+Z" in redo  # every binding, not just the first
    assert "Redo" not in redo.split(", ")  # not the keyboard's own Redo key, read as a name
    assert any(group == "Mouse, on the canvas" for group, _, _ in rows)
    dialog.close()


def test_a_new_action_shows_up_without_touching_the_dialog(qtbot, window):
    """Generated from the actions: what is added to a menu is listed (it can't go stale)."""
    action = QAction("Frobnicate", window)
    action.setShortcut(QKeySequence("Ctrl+Shift+F9"))
    window.menuBar().actions()[0].menu().addAction(action)
    assert ("File", "Frobnicate", "Ctrl+Shift+F9") in shortcut_rows(window)
    action.setShortcut(QKeySequence("Ctrl+Shift+F8"))
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    assert ("File", "Frobnicate", "Ctrl+Shift+F8") in dialog.rows()


def test_getting_started_says_what_the_app_shows_when_followed(qtbot, window):
    """The five steps, done through the app as the page says (search box and Enter, the
    inspector's values), give the figures the page quotes."""
    dialog = open_dialog(qtbot, window, GettingStartedDialog)
    page = dialog.text.toPlainText()
    assert "32×32×3" in page and "ten 5×5 filters" in page
    assert dialog.text.toHtml().count("<li") == 5  # five steps
    # 1. the image
    window.palette.search.setFocus()
    qtbot.keyClicks(window.palette.search, "input")
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)
    analysis = window.document.analysis
    (input_id,) = window.document.design.node_ids
    assert shape_notation(analysis.info(input_id).shape) in page  # 3×32×32
    # 2. a convolution, below it and connected (Ctrl+F, "conv", Enter)
    window.palette.search.clear()
    qtbot.keyClicks(window.palette.search, "conv")
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)
    conv = window.scene.selected_node_ids()[0]
    assert (input_id, conv) in window.document.design.edges
    # 3. ten 5×5 filters, padding 0
    for name, value in (("out_channels", 10), ("kernel_size", 5), ("padding", 0)):
        window.document.set_param(conv, name, value)
    info = analysis.info(conv)
    # 4. what the card reads
    assert layer_notation(info.type, info.values) in page  # 10 × 5×5, s1, p0
    assert shape_notation(info.shape) in page  # 10×28×28
    assert f"{info.params} parameters" in page  # 760
    assert "10·(5·5·3 + 1)" in page
    window.document.set_param(conv, "padding", 2)
    assert shape_notation(analysis.info(conv).shape) == "10×32×32"  # "try padding 2 to keep 32×32"
    assert "padding 2 to keep\n32×32" in page or "padding 2 to keep 32×32" in page.replace("\n", " ")
    # 5. the keys it names are the window's
    rows = shortcut_rows(window)
    assert any(a == "Run on the image" and k == "F5" for _, a, k in rows) and "F5" in page
    assert "Ctrl+S" in page and "Ctrl+N" in page and "Ctrl+F" in page


def test_about_shows_the_version(qtbot, window):
    menu_action(window, "Help", "About CNN Designer").trigger()
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1
    assert f"CNN Designer {designer.__version__}" in boxes[0].text()
    boxes[0].close()


def test_help_menu_keys(qtbot, window):
    native = QKeySequence.SequenceFormat.NativeText
    assert menu_action(window, "Help", "Getting started").shortcut().toString(native) == \
        QKeySequence(QKeySequence.StandardKey.HelpContents).toString(native)
    assert menu_action(window, "Help", "Keyboard shortcuts").shortcut().toString() == "Ctrl+/"
    QApplication.processEvents()
