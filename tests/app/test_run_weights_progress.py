"""Seeded weights drawn by the app's runs: the engine's values exactly, in blocks, with progress
that moves (VGG-16's 138 million weights took 3 s at "drawing random weights — 0%") and Cancel
heard between blocks."""
from __future__ import annotations

import numpy as np
import pytest

from designer.app.run import controller as run_module
from designer.app.run.controller import RANDOM, _weights_for, draw_seeded
from designer.core.analysis import Analysis
from designer.core.design import Design
from designer.engine.network import Cancelled
from designer.engine.weights import expected_tensors, init_weights
from designer.io.design_file import load_design
from designer.io.samples import sample_images

WAIT_MS = 30_000


def flat_design(features: int, side: int = 16) -> Design:
    """Input 3×side×side → Conv2d → BatchNorm2d → Flatten → Linear(features): one large weight
    tensor after a few small ones."""
    nodes = [("input", "Input", {"channels": 3, "height": side, "width": side}),
             ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("bn", "BatchNorm2d", {}), ("flat", "Flatten", {}),
             ("fc", "Linear", {"out_features": features})]
    return load_design({
        "format": "cnn-designer", "version": 1,
        "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
        "edges": [[a[0], b[0]] for a, b in zip(nodes, nodes[1:])]})


@pytest.mark.parametrize("key, shape, block", [
    ("conv1.weight", (6, 3, 5, 5), 7),  # blocks that cut rows and channels anywhere
    ("conv1.weight", (6, 3, 5, 5), 10_000),  # one block
    ("fc.weight", (13, 257), 100),
    ("fc.weight", (3, 1), 1),
    ("features.0.weight", (64, 3, 3, 3), 1000),
    ("fc.bias", (13,), 4),
    ("bn.weight", (8,), 3),
    ("bn.bias", (8,), 3),
    ("bn.running_mean", (8,), 3),
    ("bn.running_var", (8,), 3),
    ("ln.weight", (4, 5, 5), 3),  # LayerNorm's weight is not a convolution's
])
@pytest.mark.parametrize("seed", [0, 7, -1])
def test_drawn_in_blocks_equals_the_engine(key, shape, block, seed):
    done: list[int] = []
    tensor = draw_seeded(key, shape, seed, done.append, block=block)
    expected = init_weights({key: shape}, seed)[key]
    assert tensor.dtype == np.float32 and tensor.shape == shape
    np.testing.assert_array_equal(tensor, expected)
    size = int(np.prod(shape))
    assert done[-1] == size and done == sorted(done) and len(set(done)) == len(done)


def test_progress_moves_through_the_drawing_and_ends_at_one(monkeypatch):
    analysis = Analysis(flat_design(300))  # fc: 300 × 1,024 = 307,200 values
    seen: list[tuple[float, str]] = []
    cache: dict[str, np.ndarray] = {}
    monkeypatch.setattr(run_module, "DRAW_BLOCK_VALUES", 10_000)
    weights, notes = _weights_for(analysis, RANDOM, None, cache,
                                  lambda f, key: seen.append((f, key)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    # fc alone reports every block of 10,000 values: about 30 steps, not one
    inside = [f for f, key in seen if key == "fc.weight" and 0 < f < 1]
    assert len(set(inside)) >= 20
    shapes = expected_tensors(analysis)
    reference = init_weights(shapes, 0)
    assert set(weights) == set(shapes) and notes == []
    for key, value in reference.items():
        np.testing.assert_array_equal(weights[key], value)


def test_cancel_between_blocks_keeps_no_half_drawn_tensor(monkeypatch):
    analysis = Analysis(flat_design(300))
    monkeypatch.setattr(run_module, "DRAW_BLOCK_VALUES", 10_000)
    cache: dict[str, np.ndarray] = {}
    seen = []

    def progress(fraction, key):
        seen.append(fraction)
        if key == "fc.weight" and fraction > 0.3:
            raise Cancelled("drawing random weights")

    with pytest.raises(Cancelled):
        _weights_for(analysis, RANDOM, None, cache, progress)
    assert "fc.weight" not in cache and max(seen) < 0.5
    assert "conv.weight" in cache  # what was drawn whole is kept for the next run


def test_a_run_reports_the_drawing_to_the_window(qtbot, window, monkeypatch):
    """The Run panel's bar goes through "drawing random weights" with rising percentages."""
    monkeypatch.setattr(run_module, "DRAW_BLOCK_VALUES", 20_000)
    monkeypatch.setattr(run_module, "PROGRESS_INTERVAL_S", 0.0)
    window.document.replace(flat_design(500), None)
    window.runner.auto_run = False
    assert window.run_panel.load_image(sample_images()[0].path)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    bars: list[str] = []
    window.runner.progress.connect(lambda f, text: bars.append(window.run_panel.bar.format()))
    assert window.runner.run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    assert window.runner.result is not None
    drawing = [b for b in bars if b.startswith("drawing random weights — ")]
    percents = [int(b.rsplit(" ", 1)[1].rstrip("%")) for b in drawing]
    assert len(set(p for p in percents if 0 < p < 100)) >= 5, drawing
    assert percents == sorted(percents)
