"""A run whose numbers overflow: the status says where it starts, and that layer's maps (and every
later layer's) say so, with inf and NaN drawn in colours of their own, never breaking the colour
scale, the statistics or the colour bar."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from designer.app.run.activations import PER_MAP, SHARED
from designer.app.run.pictures import NAN_RGB, POSINF_RGB
from designer.core.design import Design, Node
from designer.engine.network import build
from tests.app.test_run import WAIT_MS, load_sample, run_and_wait, select

DEPTH = 24  # 3×3 convolutions of 4 channels with large weights: float32 overflows near c18


def overflowing_design() -> Design:
    nodes = [Node("input", "Input", {"channels": 1, "height": 8, "width": 8}, (0.0, 0.0))]
    edges = []
    for i in range(1, DEPTH + 1):
        nodes.append(Node(f"c{i}", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1},
                          (0.0, 100.0 * i)))
        edges.append((nodes[-2].id, nodes[-1].id))
    nodes += [Node("flat", "Flatten", {}, (0.0, 100.0 * DEPTH + 100)),
              Node("fc", "Linear", {"out_features": 10}, (0.0, 100.0 * DEPTH + 200))]
    edges += [(f"c{DEPTH}", "flat"), ("flat", "fc")]
    return Design.from_parts("overflow", nodes, edges)


@pytest.fixture
def overflowed(qtbot, window, tmp_path):
    design = overflowing_design()
    rng = np.random.default_rng(0)
    shapes = {k: v.shape for k, v in build(design, seed=0).weights.items()}
    path = tmp_path / "large.npz"
    np.savez(path, **{k: (rng.normal(size=s) * 30).astype(np.float32) for k, s in shapes.items()})
    window.document.replace(design, None)
    window.runner.auto_run = False
    load_sample(window)
    window.runner.load_weights(path)
    return run_and_wait(qtbot, window)


def first_bad(result) -> str:
    """Independently of the engine: the first node in order whose output isn't all finite."""
    return next(n for n in result.analysis.order if not np.isfinite(result.activations[n]).all())


def test_the_status_and_the_maps_say_where_the_numbers_go_bad(qtbot, window, overflowed):
    result = overflowed
    bad = first_bad(result)
    assert result.nonfinite is not None and result.nonfinite.node_id == bad
    message = result.nonfinite.message
    said = "⚠ " + message[:1].upper() + message[1:]
    assert f"from {bad} on" in message
    assert window.statusBar().currentMessage() == said
    assert window.run_panel.status.text().startswith(said)
    panel = window.activations
    before = f"c{int(bad[1:]) - 1}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        select(qtbot, window, before)
        assert panel.warning.isHidden()  # still finite here
        select(qtbot, window, bad)
    values = result.activations[bad]
    n_bad = int((~np.isfinite(values.reshape(len(values), -1))).any(axis=1).sum())
    assert not panel.warning.isHidden()
    text = panel.warning.text()
    assert text.startswith(said)
    assert f"Here: {n_bad} of {len(values)} maps hold inf or NaN" in text
    assert "NaN magenta" in text
    # the colour scale spans the finite values only; the colour bar too
    lo, hi = panel._bar_shown[:2]
    finite = values[np.isfinite(values)]
    assert math.isfinite(lo) and math.isfinite(hi)
    if finite.size:
        assert (lo, hi) == (float(finite.min()), float(finite.max()))
    # inf and NaN are drawn in their own colours, where they are
    image = panel.image.image
    for (ch, r, c), colour in ((_where(values, np.isnan), NAN_RGB),
                               (_where(values, np.isposinf), POSINF_RGB)):
        if ch is None:
            continue
        origin = panel.unit_origin(ch, r, c)
        assert tuple(image[int(origin.y()), int(origin.x())]) == colour
    # the statistics show them as they are
    cells = [panel.stats_model.cells(ch) for ch in range(len(values))]
    assert any(cell in ("nan", "inf", "-inf") for row in cells for cell in row[1:4])


def _where(values, test):
    found = np.argwhere(test(values))
    return tuple(int(i) for i in found[0]) if len(found) else (None, None, None)


def test_later_layers_flat_outputs_and_other_views_say_it_too(qtbot, window, overflowed):
    result = overflowed
    bad = first_bad(result)
    panel = window.activations
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        select(qtbot, window, f"c{DEPTH}")
        what = "overflow" if result.nonfinite.kind == "overflow" else "NaN"
        assert panel.warning.text().startswith(f"⚠ {what} from {bad} on: this layer comes "
                                               f"after it")
        panel.scale.setCurrentText(PER_MAP)  # each map on the range of its finite values
        assert not panel.warning.isHidden()
        panel.show_channel(0)  # one map large
        assert panel.image.image.shape[:2] == result.activations[f"c{DEPTH}"].shape[1:]
        panel.show_grid()
        panel.scale.setCurrentText(SHARED)
        select(qtbot, window, "fc")  # a flat output: bars
        fc = result.activations["fc"]
    count = int((~np.isfinite(fc)).sum())
    assert f"Here: {count} of {len(fc)} values are inf or NaN" in panel.warning.text()
    assert "inf or NaN (drawn at 0)" in panel.title.text()
    assert np.isfinite(panel.bars.opts["height"]).all()
    select(qtbot, window, "input")
    assert panel.warning.isHidden()  # before it all was fine


def test_a_picked_unit_whose_gradient_overflows_draws_what_it_can(qtbot, window, overflowed):
    bad = first_bad(overflowed)
    select(qtbot, window, bad)
    with qtbot.waitSignal(window.runner.gradient_ready, timeout=WAIT_MS):
        window.activations.pick(0, 3, 3)
    qtbot.waitUntil(lambda: "computing" not in window.run_panel.field_text.text(), timeout=5000)
    text = window.run_panel.field_text.text()
    assert "Heat map" in text
    heat = window.run_panel.heat.image
    assert heat is None or heat.dtype == np.uint8


def test_a_finite_run_says_nothing_of_the_kind(qtbot, window):
    design = overflowing_design()
    window.document.replace(design, None)
    window.runner.auto_run = False
    load_sample(window)
    result = run_and_wait(qtbot, window)  # seeded weights: no overflow in 24 layers
    assert result.nonfinite is None and result.after_nonfinite == frozenset()
    assert "⚠" not in window.run_panel.status.text()
    select(qtbot, window, f"c{DEPTH}")
    assert window.activations.warning.isHidden()
