"""Autosave and recovery after a crash: a copy is offered back only when its instance is gone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QMessageBox

from designer.app import autosave
from designer.app.autosave import Autosaver, find_recoverable
from designer.io.design_file import load_design
from designer.app.main_window import MainWindow
from designer.io.design_file import design_to_dict
from designer.io.templates import find_template


@pytest.fixture(autouse=True)
def private_app_data(tmp_path, monkeypatch):
    QStandardPaths.setTestModeEnabled(True)  # Qt's own test locations, not the user's
    monkeypatch.setattr(autosave, "autosave_dir", lambda: tmp_path / "autosave")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield
    QStandardPaths.setTestModeEnabled(False)


def make_window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    return w


def test_unsaved_work_is_autosaved_and_offered_back_after_a_crash(qtbot, monkeypatch, tmp_path):
    first = make_window(qtbot)
    first.new_from_template(find_template("lenet5"))
    first.document.set_param("conv1", "out_channels", 8)
    assert first.autosaver.save_now()
    assert not first.autosaver.save_now()  # nothing new since: no rewrite
    edited = design_to_dict(first.document.design)
    assert find_recoverable() == []  # its own instance runs (and holds the copy's lock)
    # a crash: the owner's lock goes with its process (the subprocess tests below kill a real one)
    _vanish(first.autosaver)
    found = find_recoverable()
    assert len(found) == 1 and found[0].name == "LeNet-5"
    found[0].release()

    second = make_window(qtbot)
    monkeypatch.setattr(QMessageBox, "exec", lambda box: _click(box, "Recover"))
    assert second.offer_recovery()
    assert design_to_dict(second.document.design) == edited
    assert second.document.modified  # recovered work is unsaved work
    assert not first.autosaver.design_path.exists()  # the old copy is gone...
    # ...once the work is in this instance's own copy, locked by it
    assert second.autosaver.locked
    assert design_to_dict(load_design(second.autosaver.design_path)) == edited
    assert find_recoverable() == []


def _vanish(saver: Autosaver) -> None:
    """What a killed instance leaves: its copy, and no live owner of its lock."""
    saver._lock.unlock()
    saver._lock = None
    saver.timer.stop()


def _click(box, text):
    """Stand-in for the user pressing a button of a modal message box."""
    for button in box.buttons():
        if button.text() == text:
            button.click()
    return 0


def test_saving_or_closing_cleanly_leaves_nothing_to_recover(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot)
    w.new_from_template(find_template("lecture-conv-layer"))
    w.document.set_param("conv1", "padding", 1)
    assert w.autosaver.save_now() and w.autosaver.design_path.exists()
    monkeypatch.setattr("designer.app.files.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "saved.json"), ""))
    assert w.save()
    assert not w.autosaver.design_path.exists()
    w.document.set_param("conv1", "padding", 2)
    assert w.autosaver.save_now()
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: QMessageBox.StandardButton.Discard)
    assert w.close()
    assert not w.autosaver.design_path.exists()


def test_a_clean_document_is_not_autosaved(qtbot):
    w = make_window(qtbot)
    w.new_from_template(find_template("lecture-conv-layer"))
    assert not w.autosaver.save_now()
    assert isinstance(w.autosaver, Autosaver)


# ---------------------------------------------------------------- another running instance

OWNER = Path(__file__).with_name("autosave_owner.py")


def _start_owner(folder: Path) -> tuple[subprocess.Popen, Path]:
    """A second process (another instance) with unsaved work autosaved into ``folder``."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, str(OWNER), str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).parents[2])
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if not line or not line[0].strip():
        proc.kill()
        pytest.fail(f"the other instance didn't start: {proc.stderr.read()}")
    return proc, Path(line[0].strip())


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)  # reaped: a zombie's PID would still count as running


def test_work_of_a_running_instance_is_never_offered_nor_deleted_and_is_offered_once_it_dies(
        qtbot, monkeypatch, tmp_path):
    proc, copy = _start_owner(tmp_path / "autosave")
    try:
        assert copy.exists() and copy.with_suffix(".lock").exists()
        assert find_recoverable() == []  # A is alive: its work is not B's to offer
        b = make_window(qtbot)
        asked = []
        monkeypatch.setattr(QMessageBox, "exec",
                            lambda box: asked.append(box.text()) or _click(box, "Discard"))
        assert not b.offer_recovery()
        assert asked == []  # nothing was even offered...
        assert copy.exists()  # ...and A's copy is untouched
    finally:
        _kill(proc)
    found = find_recoverable()  # A is gone: its work is offered now
    assert [f.design_path for f in found] == [copy]
    assert load_design(copy).node("conv1").params["out_channels"] == 9
    found[0].release()
    assert not b.offer_recovery() and len(asked) == 1  # offered, and B chose Discard
    assert not copy.exists() and not copy.with_suffix(".meta").exists()
    assert not copy.with_suffix(".lock").exists()
    assert find_recoverable() == []


def test_a_copy_on_offer_is_locked_so_two_new_instances_never_both_take_it(qtbot):
    a = make_window(qtbot)
    a.new_from_template(find_template("lenet5"))
    a.document.set_param("conv1", "out_channels", 8)
    assert a.autosaver.save_now()
    _vanish(a.autosaver)
    first = find_recoverable()
    assert len(first) == 1
    assert find_recoverable() == []  # while one instance asks about it, no other sees it
    first[0].release()  # "Not now": offered again next time
    again = find_recoverable()
    assert len(again) == 1 and again[0].design_path.exists()
    again[0].release()


def test_leftovers_of_gone_instances_are_cleaned_up_and_live_ones_kept(qtbot, tmp_path):
    folder = tmp_path / "autosave"
    live = make_window(qtbot)
    live.new_from_template(find_template("lecture-conv-layer"))
    live.document.set_param("conv1", "padding", 1)
    assert live.autosaver.save_now()
    key = live.autosaver.key
    gone = "0123456789abcdef0123456789abcdef"
    lonely = "fedcba9876543210fedcba9876543210"
    files = {
        "live": [folder / f".{key}.json.a1b2c3.tmp", folder / f".{key}.meta.d4e5f6.tmp"],
        "gone": [folder / f".{gone}.json.x1y2z3.tmp", folder / f".{gone}.meta.q9w8e7.tmp",
                 folder / f"{gone}.meta"],
        "lonely lock": [folder / f"{lonely}.lock"],
        "not ours": [folder / "notes.txt"],
    }
    for paths in files.values():
        for path in paths:
            path.write_text("{}")
    # a lock file as Qt writes it, of a process that no longer runs
    (folder / f"{lonely}.lock").write_text("2147483646\npython\n\n")
    assert find_recoverable() == []  # the gone instance left no design, only leftovers
    assert all(p.exists() for p in files["live"] + files["not ours"])
    assert not any(p.exists() for p in files["gone"] + files["lonely lock"])
    assert live.autosaver.design_path.exists()


def test_a_copy_whose_meta_file_is_missing_is_still_recoverable(qtbot):
    a = make_window(qtbot)
    a.new_from_template(find_template("lenet5"))
    a.document.set_param("conv1", "out_channels", 7)
    assert a.autosaver.save_now()
    a.autosaver.design_path.with_suffix(".meta").write_text("not json")
    _vanish(a.autosaver)
    (found,) = find_recoverable()
    assert found.name == "Untitled" and found.original is None
    found.release()


def test_a_lock_file_naming_no_owner_is_taken_over_only_once_it_is_old(tmp_path):
    folder = tmp_path / "autosave"
    folder.mkdir()
    key = "00000000000000000000000000000001"
    (folder / f"{key}.json").write_text("{}")
    lock = folder / f"{key}.lock"
    lock.write_text("")  # its writer was killed between creating it and writing its owner
    assert find_recoverable() == []
    old = time.time() - 2 * autosave.UNREADABLE_LOCK_S
    os.utime(lock, (old, old))
    (found,) = find_recoverable()
    found.release()


def test_an_autosave_that_fails_says_so_once_and_never_raises(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot)
    w.new_from_template(find_template("lecture-conv-layer"))
    said = []
    w.autosaver.problem.connect(said.append)
    # text no UTF-8 file can hold (a lone surrogate), got in by a way the model doesn't check
    w.document.set_param("conv1", "padding", "same\ud800")
    w.document.set_param("conv1", "padding", 1)
    w.document.set_param("conv1", "padding", "same\ud800")
    assert not w.autosaver.save_now()
    w.document.set_param("conv1", "padding", "valid\ud800")
    assert not w.autosaver.save_now()
    assert len(said) == 1 and "UTF-8" in said[0] and "rename" in said[0]
    assert w.autosave_warning.isVisibleTo(w) and "UTF-8" in w.autosave_warning.toolTip()
    assert not w.autosaver.design_path.exists()
    w.document.set_param("conv1", "padding", 3)
    assert w.autosaver.save_now()
    assert said[-1] == "" and not w.autosave_warning.isVisibleTo(w)
    # a folder that can't be made: an OS error, also said once
    blocked = w.autosaver.design_path / "x"  # under a file
    monkeypatch.setattr(autosave, "autosave_dir", lambda: blocked)
    w.document.set_param("conv1", "padding", 4)
    assert not w.autosaver.save_now()
    assert len(said) == 3 and said[-1].startswith("Autosave failed:")
