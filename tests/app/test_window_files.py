"""Files and the window: Open recent across launches, Save As for templates (never into the
bundled templates), the unsaved mark after undoing back to the saved design, and where autosaves
go (and are still found)."""
from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QPointF, QStandardPaths, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from designer.app import autosave
from designer.app.autosave import find_recoverable
from designer.app import files
from designer.app.files import documents_folder
from designer.app.main_window import MainWindow, configure_application
from designer.io.design_file import design_to_dict, load_design
from designer.io.templates import find_template, resources_dir
from tests.app.conftest import drag

REAL_AUTOSAVE_DIR = autosave.autosave_dir  # before the fixtures point it at a test folder



def make_window(qtbot) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    return w


def shown(qtbot, w: MainWindow) -> MainWindow:
    """Shown and active: key presses reach the window's shortcuts."""
    w.resize(1300, 850)
    with qtbot.waitActive(w):
        w.show()
        w.activateWindow()
    return w


def copy_template(tmp_path: Path, name: str, file_name: str | None = None) -> Path:
    target = tmp_path / (file_name or f"{name}.json")
    shutil.copy(find_template(name).path, target)
    return target


def recent_entries(window) -> list[str]:
    return [a.text() for a in window.recent_menu.actions()]


def test_open_recent_keeps_whole_paths_from_the_second_launch(qtbot, settings_home, tmp_path):
    """QSettings reads a one-item list back as a plain string: the next file remembered must
    not turn it into one entry per character."""
    first_file = copy_template(tmp_path, "lenet5")
    second_file = copy_template(tmp_path, "alexnet")
    first = make_window(qtbot)
    assert first.open_path(first_file)
    settings = files.app_settings()
    settings.sync()
    # the file holds the one-item list as one plain value...
    ini = Path(settings.fileName()).read_text(encoding="utf-8")
    assert f"recent_files={first_file.resolve()}\n" in ini
    # ...which the next launch reads back as a string (this process keeps the list it wrote
    # in memory: set what a new process reads)
    settings.setValue("recent_files", str(first_file.resolve()))
    second = make_window(qtbot)
    assert recent_entries(second) == [str(first_file.resolve())]
    assert second.open_path(second_file)
    assert recent_entries(second) == [str(second_file.resolve()), str(first_file.resolve())]
    third = make_window(qtbot)
    assert recent_entries(third) == [str(second_file.resolve()), str(first_file.resolve())]
    # the menu entry opens its file
    third.recent_menu.actions()[1].trigger()
    assert third.document.path == first_file


def test_a_template_saves_first_into_the_documents_folder(qtbot, settings_home, monkeypatch):
    w = shown(qtbot, make_window(qtbot))
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda parent, caption, start, filters: asked.append(start) or ("", ""))
    assert w.open_path(find_template("vgg16").path)  # opened from the templates folder
    assert w.document.path is None  # an untitled copy
    QTest.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    w.new_from_template(find_template("resnet18"))  # from the gallery
    w.save_as()
    documents = Path(documents_folder())
    assert len(asked) == 2
    for start in asked:
        assert Path(start).parent == documents
        assert resources_dir().resolve() not in Path(start).resolve().parents
    assert Path(asked[0]).name == "VGG-16.cnnd.json"  # the desktop's type for CNN designs
    assert Path(asked[1]).name == "ResNet-18.cnnd.json"
    # the Open dialog doesn't start in the templates folder either
    assert not str(Path(w._last_folder()).resolve()).startswith(str(resources_dir().resolve()))


def test_saving_over_a_built_in_template_is_refused(qtbot, settings_home, monkeypatch):
    w = make_window(qtbot)
    w.open_path(find_template("lenet5").path)
    w.document.set_param("conv1", "out_channels", 9)
    target = find_template("lenet5").path
    before = target.read_bytes()
    shown = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(target), ""))
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    assert not w.save_as()
    assert target.read_bytes() == before
    assert len(shown) == 1 and "built-in template" in shown[0]
    assert shown[0].startswith("Can't save.")  # the title is in the text: never cut off
    assert w.document.modified


def test_undoing_back_to_the_saved_design_clears_the_mark(qtbot, settings_home, tmp_path):
    """Saved, undone past the save, the same edit made again by hand: the stack's clean index
    is gone, but the design is as saved. Undoing a later edit back to it clears the mark."""
    path = copy_template(tmp_path, "cifar10-convnet", "mine.json")
    w = shown(qtbot, make_window(qtbot))
    assert w.open_path(path)
    w.document.set_param("conv1", "out_channels", 8)
    QTest.keyClick(w, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not w.isWindowModified()
    assert w.windowTitle() == "mine.json[*] — CNN Designer"
    w.view.setFocus()
    QTest.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.isWindowModified()  # before the save: unsaved
    w.document.set_param("conv1", "out_channels", 8)  # the saved value, typed again
    w.document.set_param("conv2", "out_channels", 30)
    assert w.isWindowModified()
    QTest.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert design_to_dict(w.document.design) == design_to_dict(load_design(path))
    assert not w.isWindowModified()
    assert not w.document.modified  # nothing to ask about on closing
    QTest.keyClick(w.view, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo
    assert w.isWindowModified()
    QTest.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not w.isWindowModified()


def test_a_card_moved_back_where_it_was_is_not_a_change_after_undo(qtbot, settings_home,
                                                                   tmp_path):
    """A move back where the card was merges with the move away: one step that changes
    nothing, which the stack counts as a change. Undoing a later edit back to it: no mark."""
    path = copy_template(tmp_path, "lecture-conv-layer", "mine.json")
    w = shown(qtbot, make_window(qtbot))
    w.open_path(path)
    opened = design_to_dict(w.document.design)
    conv = w.scene.nodes["conv1"]
    start = conv.pos() + QPointF(0, 30)
    drag(w.view, start, start + QPointF(120, 40))  # away...
    drag(w.view, start + QPointF(120, 40), start)  # ...and back: merged into one step
    assert w.document.undo_stack.count() == 1
    assert design_to_dict(w.document.design) == opened
    w.document.set_param("conv1", "padding", 0)
    assert w.isWindowModified()
    w.view.setFocus()
    QTest.keyClick(w.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the padding
    assert design_to_dict(w.document.design) == opened
    assert not w.isWindowModified()


# ------------------------------------------------------------------------------ autosave folder

def test_the_data_folder_is_named_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = QApplication.instance()
    names = (app.applicationName(), app.organizationName(), app.applicationDisplayName())
    monkeypatch.setattr(autosave, "autosave_dir", REAL_AUTOSAVE_DIR)
    try:
        configure_application(app)
        folder = Path(QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppDataLocation))
        assert folder == tmp_path / "data" / "CNN Designer"
        assert autosave.autosave_dir() == folder / "autosave"
        assert autosave.legacy_autosave_dirs() == [folder / "CNN Designer" / "autosave"]
    finally:
        app.setApplicationName(names[0])
        app.setOrganizationName(names[1])
        app.setApplicationDisplayName(names[2])


def test_autosaves_left_in_the_old_folder_are_offered_back(qtbot, settings_home, tmp_path,
                                                           monkeypatch):
    """An instance of an earlier version, killed with unsaved work, left it in
    ``CNN Designer/CNN Designer/autosave``: the next start offers it, and the old folders go
    once they are empty."""
    new = tmp_path / "data" / "CNN Designer" / "autosave"
    monkeypatch.setattr(autosave, "autosave_dir", lambda: new)
    old = autosave.legacy_autosave_dirs()[0]
    assert old == tmp_path / "data" / "CNN Designer" / "CNN Designer" / "autosave"
    monkeypatch.setattr(autosave, "autosave_dir", lambda: old)  # where the old version wrote
    crashed = make_window(qtbot)
    crashed.new_from_template(find_template("lenet5"))
    crashed.document.set_param("conv1", "out_channels", 11)
    assert crashed.autosaver.save_now()
    edited = design_to_dict(crashed.document.design)
    crashed.autosaver._lock.unlock()  # killed: its lock goes with its process
    crashed.autosaver._lock = None
    crashed.autosaver.timer.stop()
    monkeypatch.setattr(autosave, "autosave_dir", lambda: new)  # this version

    found = find_recoverable()
    assert [item.design_path.parent for item in found] == [old]
    found[0].release()
    w = make_window(qtbot)
    monkeypatch.setattr(QMessageBox, "exec", lambda box: _click(box, "Recover"))
    assert w.offer_recovery()
    assert design_to_dict(w.document.design) == edited
    assert w.document.modified
    assert w.autosaver.design_path.parent == new  # kept in the new folder from now on
    assert not old.exists() and not old.parent.exists()  # the old folders are gone
    assert find_recoverable() == []


def _click(box, text):
    for button in box.buttons():
        if button.text() == text:
            button.click()
    return 0
