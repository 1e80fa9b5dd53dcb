"""Predictions and why this prediction in the Run room (issue 14): the top classes by name with
their probabilities, the image's true class marked, a note when the weights are random;
saliency, Grad-CAM and occlusion made on the run's worker for the predicted class or any
other, drawn over the image, kept until the next run and made again after an edit."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

import designer

from designer.app.run import controller as run_module
from designer.app.run.controller import GRAD_CAM, OCCLUSION, RANDOM, SALIENCY
from designer.app.run.pictures import explain_scale, heat_picture, resize_bilinear
from designer.app.run.prediction import PREDICTED, UNTRAINED
from designer.engine import explain as engine_explain
from designer.io.templates import find_template
from tests.app.test_run import WAIT_MS, load_sample, run_and_wait, select
from tests.app.test_run_trained import open_design


@pytest.fixture
def lenet(qtbot, window):
    """LeNet-5 with its trained weights on the validation image of a 7."""
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    sample = load_sample(window, "Digit 7")
    result = run_and_wait(qtbot, window)
    return window, sample, result


def show_why(qtbot, window, kind: str, class_index: int = PREDICTED):
    """Open Why this prediction on ``kind`` for a class; wait for the explanation shown."""
    panel = window.run_panel
    panel.explain_class(class_index)
    panel.why.set_kind(kind)
    why = panel.why
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.kind == kind
                    and why.shown.result is window.runner.result
                    and (class_index == PREDICTED or why.shown.class_index == class_index),
                    timeout=WAIT_MS)
    return why.shown


def test_predictions_name_the_digit_and_mark_the_true_class(qtbot, lenet):
    window, sample, result = lenet
    assert sample.class_name == "7" and window.runner.image.class_name == "7"
    chart = window.run_panel.prediction
    assert chart.isVisible()
    p = result.probabilities
    np.testing.assert_allclose(p, result.network.predict(result.x[None])[0], rtol=1e-5,
                               atol=1e-7)
    assert chart.names == list(result.design.classes)
    assert chart.rows == list(np.argsort(-p, kind="stable")[:5])
    assert chart.names[chart.top] == "7"  # the shipped weights read the digit
    lines = chart.lines()
    assert lines[0] == f"Prediction: 7 ({p[7] * 100:.1f} %)"
    assert lines[1] == "true class: 7 ✓"
    assert lines[2].startswith("7: ") and lines[2].endswith("(true class)")
    assert not any(UNTRAINED in line for line in lines)
    assert not result.untrained
    # the activation panel says what the image shows and names the output's bars
    panel = window.activations
    assert panel.image_class.isVisibleTo(panel) and "7" in panel.image_class.text()
    select(qtbot, window, "fc2")
    assert panel.names == list(result.design.classes)
    ticks = panel.chart.getAxis("bottom")._tickLevels
    assert ticks == [list(enumerate(result.design.classes))]
    select(qtbot, window, "fc1")  # a hidden layer's values are no classes
    assert panel.names is None


def test_a_wrong_top_class_shows_the_true_one_and_its_rank(qtbot, window):
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    load_sample(window, "Digit 7")
    result = run_and_wait(qtbot, window)
    chart = window.run_panel.prediction
    p = result.probabilities.copy()
    p[7], p[1] = p[1], p[7]  # as if the network had read a 1
    p = p / p.sum()
    rank = int((p > p[7]).sum()) + 1
    chart.set_prediction(p, chart.names, "7")
    assert chart.lines()[1] == f"true class: 7 ✗ (ranked {rank})"
    assert chart.rows[0] == 1
    if rank > 5:
        assert chart.rows[-1] == 7 and len(chart.rows) == 6
    chart.set_prediction(p, chart.names, "star")
    assert chart.lines()[1] == "true class: star (not one of this design's classes)"
    assert chart.true_index is None


def test_random_weights_carry_the_untrained_note(qtbot, window):
    open_design(window, find_template("cifar10-convnet").load())
    window.runner.auto_run = False
    load_sample(window, "Shape: star")
    window.runner.set_weights_mode(RANDOM)
    result = run_and_wait(qtbot, window)
    assert result.untrained
    chart = window.run_panel.prediction
    assert chart.untrained
    assert chart.lines()[0] == f"{UNTRAINED} (the weights are random)"
    assert "true class: star" in chart.lines()[2]
    e = show_why(qtbot, window, SALIENCY)
    assert UNTRAINED in window.run_panel.why.caption.text()
    # the trained weights again: no note
    window.runner.set_weights_mode(run_module.TRAINED)
    result = run_and_wait(qtbot, window)
    assert not result.untrained and not chart.untrained
    assert e.result is not result


def assert_picture(e, result) -> None:
    """A picture of the input's size times the view's scale, with the heat visibly on it."""
    _, h, w = result.x.shape
    s = explain_scale(h, w)
    assert e.picture.shape == (h * s, w * s, 3) and e.picture.dtype == np.uint8
    plain = heat_picture(result.input_rgb, np.zeros((1, 1)))
    changed = np.abs(e.picture.astype(int) - plain).max(axis=2) > 20
    assert 0.01 < changed.mean() < 0.99  # heat on part of the image, not none, not all
    assert e.picture.std() > 10


def test_each_view_draws_its_explanation_over_the_image(qtbot, lenet):
    window, _, result = lenet
    why = window.run_panel.why
    net, x = result.network, result.x[None]
    e = show_why(qtbot, window, SALIENCY)
    assert window.run_panel.pictures.currentWidget() is why
    assert e.class_index == 7 and e.layer is None
    np.testing.assert_array_equal(e.values, engine_explain.saliency(net, x, 7))
    assert_picture(e, result)
    np.testing.assert_array_equal(why.image.image, e.picture)  # on screen
    assert "7" in why.caption.text() and "predicted" in why.caption.text()

    e = show_why(qtbot, window, GRAD_CAM)
    layer = engine_explain.default_cam_layer(net)
    assert e.layer == layer and why.layers.isVisible()
    assert why.layers.currentData() == layer
    np.testing.assert_array_equal(e.values, engine_explain.grad_cam(net, x, layer, 7))
    assert_picture(e, result)

    e = show_why(qtbot, window, OCCLUSION)
    assert not why.layers.isVisible()
    grey = np.float32(128 / 255)
    np.testing.assert_array_equal(e.values, engine_explain.occlusion(net, x, 7, fill=grey))
    assert_picture(e, result)
    assert e.peak == pytest.approx(np.abs(e.values).max())
    # a drop in probability is in percentage points, said so (not bare "points")
    assert f"up to {e.peak * 100:.1f} percentage points" in why.caption.text()


def test_grad_cam_at_a_chosen_layer_is_enlarged_smoothly(qtbot, lenet):
    window, _, result = lenet
    why = window.run_panel.why
    show_why(qtbot, window, GRAD_CAM)
    layers = [why.layers.itemData(i) for i in range(why.layers.count())]
    assert layers == ["conv1", "tanh1", "pool1", "conv2", "tanh2", "pool2"]  # maps, not 1×1
    item = why.layers.findData("conv2")
    why.layers.setCurrentIndex(item)
    why.layers.activated.emit(item)
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.layer == "conv2",
                    timeout=WAIT_MS)
    e = why.shown
    assert e.values.shape == (10, 10)
    np.testing.assert_array_equal(
        e.values, engine_explain.grad_cam(result.network, result.x[None], "conv2", 7))
    assert_picture(e, result)
    assert "conv2" in why.caption.text()


def test_resize_bilinear_matches_pixel_centre_interpolation():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    out = resize_bilinear(a, 4, 4)
    # centres of the 4 output pixels along an axis sit at -0.25, 0.25, 0.75, 1.25 of the input
    # (clamped to 0 … 1): weights 0, 0.25, 0.75, 1
    expected_row = np.array([0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[0], expected_row)
    np.testing.assert_allclose(out[:, 0], 2 * expected_row)
    np.testing.assert_allclose(out[3], 2 + expected_row)
    assert resize_bilinear(a, 2, 2).tolist() == a.tolist()


def test_another_class_is_explained_and_the_cache_answers_again(qtbot, lenet):
    window, _, result = lenet
    why = window.run_panel.why
    seven = show_why(qtbot, window, SALIENCY)
    item = why.classes.findData(3)
    assert why.classes.itemText(item).startswith("3 — ")
    why.classes.setCurrentIndex(item)
    why.classes.activated.emit(item)
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.class_index == 3,
                    timeout=WAIT_MS)
    three = why.shown
    np.testing.assert_array_equal(
        three.values, engine_explain.saliency(result.network, result.x[None], 3))
    assert not np.array_equal(three.values, seven.values)
    assert "predicted: 7" in why.caption.text()
    # back to the predicted class: from the cache, at once, with no work on the worker
    why.set_class(PREDICTED)
    assert why.shown is seven and not window.runner.busy
    assert set(window.runner.explanations) == {(SALIENCY, 7, None), (SALIENCY, 3, None)}
    # clicking a class in the chart explains that class
    rect = window.run_panel.prediction.row_rect(1)
    index = window.run_panel.prediction.rows[1]
    qtbot.mouseClick(window.run_panel.prediction, Qt.MouseButton.LeftButton,
                     pos=rect.center().toPoint())
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.class_index == index,
                    timeout=WAIT_MS)
    # a click on a unit's map brings the image with its field back
    select(qtbot, window, "conv1")
    window.activations.pick(0, 3, 3)
    assert window.run_panel.pictures.currentWidget() is window.run_panel.plots


def test_occlusion_shows_progress_and_cancel_stops_it(qtbot, lenet, monkeypatch):
    window, _, result = lenet
    gate = threading.Event()
    real = engine_explain.occlusion

    def held(net, x, c, patch=None, stride=None, fill=0.5, progress=None):
        def report(fraction, at):
            gate.wait(10)  # hold the work until the test has pressed Cancel
            return progress(fraction, at)
        return real(net, x, c, patch, stride, fill, report)

    monkeypatch.setattr(engine_explain, "occlusion", held)
    why = window.run_panel.why
    window.run_panel.explain_class(PREDICTED)
    why.set_kind(OCCLUSION)
    qtbot.waitUntil(lambda: why.working, timeout=WAIT_MS)  # the bar takes the caption's place
    assert window.runner.explaining and why.cancel_button.isEnabled()
    assert window.runner.running is False
    qtbot.mouseClick(why.cancel_button, Qt.MouseButton.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    assert why.shown is None and not why.working
    assert why.compute_button.isVisible() and "Stopped" in why.caption.text()
    assert (OCCLUSION, 7, None) not in window.runner.explanations
    assert window.runner.result is result  # the run's results stay
    qtbot.mouseClick(why.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.kind == OCCLUSION,
                    timeout=WAIT_MS)
    assert not why.compute_button.isVisible()
    assert (OCCLUSION, 7, None) in window.runner.explanations


def test_an_explanation_waits_for_a_run_and_never_cancels_it(qtbot, lenet):
    window, _, result = lenet
    runner = window.runner
    assert runner.run()
    assert runner.explain(SALIENCY, 7) is None  # a run is under way: nothing starts
    assert runner.running
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert runner.result is not result


def test_an_edit_makes_the_explanation_again_for_the_new_run(qtbot, lenet):
    window, _, result = lenet
    why = window.run_panel.why
    window.runner.auto_run = True
    first = show_why(qtbot, window, SALIENCY)
    assert first.result is result
    window.document.set_param("fc1", "out_features", 60)  # new layers: new (random) weights
    qtbot.waitUntil(lambda: window.runner.result is not result and not window.runner.busy,
                    timeout=WAIT_MS)
    new = window.runner.result
    assert all(e.result is new for e in window.runner.explanations.values())
    qtbot.waitUntil(lambda: why.shown is not None and why.shown.result is new, timeout=WAIT_MS)
    e = why.shown
    assert e.class_index == new.top_class
    assert window.runner.explanations == {e.key: e}
    np.testing.assert_array_equal(
        e.values, engine_explain.saliency(new.network, new.x[None], e.class_index))
    assert new.untrained and UNTRAINED in why.caption.text()
    # while the maps are out of date (auto re-run off), the explanation says so
    window.runner.auto_run = False
    window.run_panel.auto.setChecked(False)
    with qtbot.waitSignal(window.runner.stale_changed, timeout=5000):
        window.document.set_param("fc1", "out_features", 70)
    assert "before your last change" in why.caption.text()
    assert window.run_panel.prediction.stale


def test_an_output_with_maps_has_nothing_to_explain(qtbot, window):
    open_design(window, designer.load_design({
        "format": "cnn-designer", "version": 1, "name": "maps", "nodes": [
            {"id": "input", "type": "Input", "params": {"channels": 1, "height": 16,
                                                        "width": 16}},
            {"id": "conv", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 3}}],
        "edges": [["input", "conv"]]}))
    window.runner.auto_run = False
    load_sample(window, "Digit 7")
    result = run_and_wait(qtbot, window)
    assert result.probabilities is None
    assert not window.run_panel.prediction.isVisible()
    assert not window.run_panel.why_button.isVisible()
    window.run_panel.pictures.setCurrentWidget(window.run_panel.why)
    assert "Nothing to explain" in window.run_panel.why.caption.text()
    assert window.runner.explain(SALIENCY, 0) is None and not window.runner.busy


def test_a_validation_image_from_the_train_panel_brings_its_class(qtbot, window):
    from types import SimpleNamespace

    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    data = designer.load_dataset("builtin:digits", window.document.design)
    x, y = data.val
    index = int(np.flatnonzero(y == 4)[0])
    pixels = np.repeat(np.rint(x[index, 0] * 255).astype(np.uint8)[..., None], 3, axis=2)
    window.trainer.preview = SimpleNamespace(classes=list(data.classes))
    window.open_wrong_image(SimpleNamespace(pixels=pixels, index=index, true=4))
    assert window.runner.image.class_name == "4"
    run_and_wait(qtbot, window)
    chart = window.run_panel.prediction
    assert chart.true_name == "4" and chart.true_index == 4
    assert chart.lines()[1].startswith("true class: 4")
    assert "4" in window.activations.image_class.text()


def test_an_old_result_goes_once_nothing_shows_it(qtbot, window):
    """Explanations are kept by the controller, not on the result: the result they explain
    makes no reference cycle with them and is freed by reference counting alone (the window
    freezes the garbage collector after a run)."""
    import gc
    import weakref
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    load_sample(window, "Digit 7")
    gone = weakref.ref(run_and_wait(qtbot, window))
    show_why(qtbot, window, SALIENCY)
    window.run_panel.why.set_kind(OCCLUSION)  # (the view then shows another explanation)
    qtbot.waitUntil(lambda: window.run_panel.why.shown is not None
                    and window.run_panel.why.shown.kind == OCCLUSION, timeout=WAIT_MS)
    run_and_wait(qtbot, window)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    window.run_panel.why.set_kind(SALIENCY)
    qtbot.waitUntil(lambda: window.run_panel.why.shown is not None
                    and window.run_panel.why.shown.result is window.runner.result,
                    timeout=WAIT_MS)
    gc.disable()
    try:
        qtbot.waitUntil(lambda: gone() is None, timeout=5000)
    except Exception:
        holders = [type(r).__name__ for r in gc.get_referrers(gone())]
        raise AssertionError(f"the old result is still held by {holders}")
    finally:
        gc.enable()


def test_an_explanation_asked_for_as_a_run_ends_waits_for_the_job_queued_before(
        qtbot, window, monkeypatch):
    """A run that ends with a gradient queued behind it: the explanation the view asks for
    when the run's results arrive starts after the gradient, never beside it."""
    open_design(window, find_template("lenet5").load())
    runner = window.runner
    runner.auto_run = False
    load_sample(window, "Digit 7")
    run_and_wait(qtbot, window)
    window.run_panel.explain_class(PREDICTED)  # the Why tab in view: it asks after each run
    qtbot.waitUntil(lambda: window.run_panel.why.shown is not None, timeout=WAIT_MS)
    started, overlaps = [], []
    real_start = runner._start

    def start(job):
        if runner._job is not None or (runner._thread is not None
                                       and runner._thread.is_alive()):
            overlaps.append(job.kind)
        started.append(job.kind)
        real_start(job)

    monkeypatch.setattr(runner, "_start", start)
    hold = threading.Event()
    real_submit = runner._submit

    def submit(job):
        if job.kind == "run":  # the run's work is done before the gradient is asked for
            work = job.work
            job.work = lambda j: (work(j), hold.wait(10))[0]
        real_submit(job)

    monkeypatch.setattr(runner, "_submit", submit)
    assert runner.run()
    qtbot.waitUntil(lambda: runner._thread is not None and not hold.is_set(), timeout=WAIT_MS)
    qtbot.wait(50)
    gradients = []
    runner.gradient_ready.connect(gradients.append)
    assert runner.compute_gradient("conv1", (3, 3))  # queued behind the run
    hold.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert overlaps == []
    assert started == ["run", "gradient", "explain"]
    assert gradients and window.run_panel.why.shown.result is runner.result
