"""What a finished training run hands on: its weights to the Run panel, the data's class names
to the design (one undo step: commands.SetClassesCommand), and the weights to a file."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from designer.engine.weights import save_weights_file


def weights_label(source: str, epochs: int) -> str:
    """A short name for trained weights, fit for a file name: ``trained-digits-3ep``."""
    stem = source.split(":", 1)[1] if source.startswith("builtin:") else Path(source).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "data"
    return f"trained-{stem}-{epochs}ep"


def trained_note(source: str, rows: list[dict[str, float]], partial: bool = False) -> str:
    """What the Run panel says of weights trained here: ``trained in the app on
    builtin:shapes — 2 epochs, 71.3 % validation accuracy``."""
    text = f"trained in the app on {source}"
    if not rows:
        return text
    n = len(rows)
    epochs = f"{n} epoch{'s' if n != 1 else ''}" + (" (the last cut short)" if partial else "")
    return f"{text} — {epochs}, {100 * rows[-1]['val_accuracy']:.1f} % validation accuracy"


def hand_weights_to_run(runner: Any, weights: Mapping[str, np.ndarray], label: str,
                        note: str | None = None) -> None:
    """Make ``weights`` the Run panel's weights, as if loaded from a file called ``label``
    (``note``: what they are, for its weights line); the user goes back by choosing other
    weights there."""
    runner.use_weights(dict(weights), label, note)


def save_weights(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write trained weights (contract §3) atomically (raises WeightsError)."""
    save_weights_file(weights, path)
