"""Save weights points beside the design (or into the documents folder); the window icon."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from designer.app.main_window import configure_application
from designer.app.run.panel import suggested_weights_path


class _Doc:
    def __init__(self, path, title):
        self.path, self.title = path, title


def test_save_weights_points_beside_the_design(tmp_path):
    assert suggested_weights_path(_Doc(tmp_path / "lenet5.json", "lenet5.json")) == \
        str(tmp_path / "lenet5.npz")


def test_an_unsaved_design_saves_its_weights_in_documents_named_after_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    got = Path(suggested_weights_path(_Doc(None, "My net: v2/final")))
    assert got.name == "My-net--v2-final.npz"
    assert got.parent.is_absolute() and str(got.parent) != "."


def test_the_application_has_the_icon(qapp):
    configure_application(qapp)
    assert not QApplication.windowIcon().isNull()


def test_opening_another_design_hands_the_engines_kept_memory_back():
    import numpy as np

    from designer.app.main_window import settle_memory
    from designer.engine import memory
    from tests.engine.test_kept_memory import resident

    assert memory.keep_freed_memory(), "glibc's malloc controls are expected on this platform"
    arrays = [np.ones(4 * 2**20 // 8) for _ in range(40)]  # 160 MiB in 4 MiB arrays, from the heap
    del arrays
    held = resident()  # the freed arrays' pages are kept for the next pass
    settle_memory()
    assert held - resident() >= 100 * 2**20
