"""Autosave and crash recovery. While a design has unsaved changes, it is written every few seconds
to the platform's app-data folder (QStandardPaths); a clean exit removes the copy, so a copy found
at start-up means the app was killed or crashed, and the user is offered the work back."""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from designer.app.document import Document
from designer.core.atomic import write_atomic
from designer.io.design_file import DesignError, design_to_json, load_design

INTERVAL_MS = 5000


def autosave_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".cnn-designer") / "autosave"


@dataclass
class Recoverable:
    design_path: Path  # the autosaved design
    original: Path | None  # the file it was opened from, if any
    saved_at: float
    name: str

    def discard(self) -> None:
        for path in (self.design_path, self.design_path.with_suffix(".meta")):
            try:
                path.unlink()
            except OSError:
                pass


def find_recoverable() -> list[Recoverable]:
    """Autosaved designs left behind by a session that did not end cleanly, newest first."""
    found = []
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    for meta_path in folder.glob("*.meta"):
        design_path = meta_path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("pid") == os.getpid() or not design_path.exists():
                continue
            original = Path(meta["original"]) if meta.get("original") else None
            found.append(Recoverable(design_path, original, float(meta.get("saved_at", 0)),
                                     str(meta.get("name") or design_path.stem)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


class Autosaver(QObject):
    """Writes the document's design to the autosave folder while it has unsaved changes."""

    def __init__(self, document: Document, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(document)
        self.document = document
        self.key = uuid.uuid4().hex
        self._last_index: int | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()
        document.undo_stack.cleanChanged.connect(self._clean_changed)

    @property
    def design_path(self) -> Path:
        return autosave_dir() / f"{self.key}.json"

    def save_now(self) -> bool:
        """Write the copy if there is unsaved work that isn't in it yet; True if written."""
        stack = self.document.undo_stack
        if not self.document.modified or stack.index() == self._last_index:
            return False
        try:
            autosave_dir().mkdir(parents=True, exist_ok=True)
            text = design_to_json(self.document.design)
            write_atomic(self.design_path, lambda h: h.write(text.encode("utf-8")))
            meta = {"original": str(self.document.path) if self.document.path else None,
                    "name": self.document.title, "saved_at": time.time(), "pid": os.getpid()}
            write_atomic(self.design_path.with_suffix(".meta"),
                         lambda h: h.write(json.dumps(meta).encode("utf-8")))
        except (OSError, DesignError):
            return False  # autosave is a safety net: never interrupt the user over it
        self._last_index = stack.index()
        return True

    def _clean_changed(self, clean: bool) -> None:
        if clean:  # saved (or undone back to the saved state): the copy is no longer needed
            self.discard()

    def discard(self) -> None:
        Recoverable(self.design_path, None, 0, "").discard()
        self._last_index = None


def recover(document: Document, item: Recoverable) -> None:
    """Load an autosaved design as unsaved work (its original file, if any, stays as it was)."""
    design = load_design(item.design_path)
    document.replace(design, item.original)
    document.mark_modified()
    item.discard()
