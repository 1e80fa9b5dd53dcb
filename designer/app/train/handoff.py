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


def hand_weights_to_run(runner: Any, weights: Mapping[str, np.ndarray], label: str) -> None:
    """Make ``weights`` the Run panel's weights, as if loaded from a file called ``label``;
    the user goes back by choosing other weights there."""
    runner.use_weights(dict(weights), label)


def save_weights(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    """Write trained weights (contract §3) atomically (raises WeightsError)."""
    save_weights_file(weights, path)
