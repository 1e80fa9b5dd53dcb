"""What a finished training run hands on: its weights to the Run panel, the data's class names
to the design (one undo step), and the weights to a file."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PySide6.QtGui import QUndoCommand

from designer.core.design import Design
from designer.engine.weights import save_weights_file

_folder: tempfile.TemporaryDirectory | None = None


class SetClassesCommand(QUndoCommand):
    """Name the output's classes (``Design.set_classes``) as one undo step; undo puts the old
    names (or none) back."""

    def __init__(self, design: Design, classes: list[str] | None,
                 text: str = "Name the classes") -> None:
        super().__init__(text)
        self.design = design
        self.classes = tuple(classes) if classes is not None else None
        self.old: tuple[str, ...] | None = None

    def redo(self) -> None:
        self.old = self.design.set_classes(self.classes)

    def undo(self) -> None:
        self.design.set_classes(self.old)


def weights_label(source: str, epochs: int) -> str:
    """A short name for trained weights, fit for a file name: ``trained-digits-3ep``."""
    stem = source.split(":", 1)[1] if source.startswith("builtin:") else Path(source).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "data"
    return f"trained-{stem}-{epochs}ep"


def hand_weights_to_run(runner: Any, weights: Mapping[str, np.ndarray], label: str) -> None:
    """Make ``weights`` the Run panel's weights, as if loaded from a file called ``label``;
    the user goes back by choosing other weights there.

    Through ``runner.use_weights(weights, label)`` where the Run controller has it; until then
    through its public ``load_weights`` on a copy written to a private temporary folder (the
    Run panel then says ``From <label>.npz``)."""
    use = getattr(runner, "use_weights", None)
    if callable(use):
        use(dict(weights), label)
        return
    global _folder
    if _folder is None:
        _folder = tempfile.TemporaryDirectory(prefix="cnn-designer-trained-")
    path = Path(_folder.name) / f"{label}.npz"
    save_weights_file(weights, path)
    runner.load_weights(path)


def save_weights(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write trained weights (contract §3) atomically (raises WeightsError)."""
    save_weights_file(weights, path)
