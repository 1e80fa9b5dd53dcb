"""Running a design on an image in the app: load, run on the worker, see maps, pick a unit and get
its receptive field on the image, checked against the lecture's arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, QUrl, Qt, QMimeData
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QGraphicsRectItem

from designer.app.run.controller import CLASSIC, FILE, RANDOM
from designer.engine.network import build
from designer.io.design_file import load_design
from designer.io.images import read_image, save_png, to_input
from designer.io.samples import sample_images
from designer.io.templates import resources_dir

TEMPLATES = resources_dir() / "templates"
WAIT_MS = 30_000


def open_template(window, name: str) -> None:
    window.document.replace(load_design(TEMPLATES / name), None)


def run_and_wait(qtbot, window):
    """Run, and wait until the runner is idle: a run started by itself before (the auto re-run
    after an image is chosen) may finish first, and must not be taken for this one. A failure
    is reported as it comes, not after a timeout."""
    failures: list[str] = []
    window.runner.failed.connect(failures.append)
    try:
        assert window.runner.run()
        qtbot.waitUntil(lambda: bool(failures) or not window.runner.busy, timeout=WAIT_MS)
    finally:
        window.runner.failed.disconnect(failures.append)
    assert not failures, failures
    assert window.runner.result is not None
    return window.runner.result


def load_sample(window, title: str = "Checkerboard"):
    sample = next(s for s in sample_images() if s.title == title)
    assert window.run_panel.load_image(sample.path)
    return sample


def select(qtbot, window, node_id: str) -> None:
    """Select a card; the maps follow on the next turn of the event loop."""
    window.scene.select_node(node_id)
    qtbot.waitUntil(lambda: window.activations.node_id == node_id, timeout=5000)


def click_unit(qtbot, panel, channel: int, row: int, col: int, double: bool = False) -> None:
    """A real mouse click on one unit of the activation grid (or the map shown large)."""
    origin = panel.unit_origin(channel, row, col)
    scene_pos = panel.view.mapViewToScene(QPointF(origin.x() + 0.5, origin.y() + 0.5))
    pos = panel.plots.mapFromScene(scene_pos)
    viewport = panel.plots.viewport()
    for _ in range(2 if double else 1):  # a double-click is two clicks in quick succession
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)


def lecture_fields(design, node_id: str) -> tuple[int, int, float]:
    """(size, jump, start) of a node in a chain of convolutions, by the lecture's recurrence,
    written here independently of the app: r' = r + (k − 1)·j, j' = j·s, start' = start +
    ((k − 1)/2 − p)·j."""
    size, jump, start = 1, 1, 0.0
    at = "input"
    path = []
    while at != node_id:
        (at,) = design.targets(at)
        path.append(at)
    for n in path:
        node = design.node(n)
        if node.type == "Conv2d":
            k = node.params["kernel_size"]
            s = node.params.get("stride", 1)
            p = node.params.get("padding", 0)
            size, jump, start = size + (k - 1) * jump, jump * s, start + ((k - 1) / 2 - p) * jump
    return size, jump, start


def drawn_rects(panel) -> list[QRectF]:
    return [item.rect() for item in panel.rect_items if isinstance(item, QGraphicsRectItem)]


def test_load_run_select_click_draws_the_lecture_receptive_field(qtbot, window):
    open_template(window, "lecture-receptive-field.json")
    window.runner.auto_run = False
    window.runner.set_weights_mode(CLASSIC)  # conv1 finds the checkerboard's edges
    load_sample(window)
    result = run_and_wait(qtbot, window)
    # the input as the network sees it: the checkerboard as 1×15×15 grey
    pixels = read_image(next(s.path for s in sample_images() if s.title == "Checkerboard"))
    np.testing.assert_allclose(result.x, to_input(pixels, 1, 15, 15), atol=1e-6)
    assert window.run_panel.seen.image.shape[:2] == (15, 15)

    select(qtbot, window, "conv2")
    panel = window.activations
    assert panel.node_id == "conv2"
    np.testing.assert_array_equal(panel.values, result.activations["conv2"])
    assert panel.values.shape == (1, 11, 11)

    # a unit whose 3×3 window of relu1 is partly on, so that its gradient is not all zero
    on = result.activations["relu1"][0] > 0
    row, col = next((r, c) for r in range(3, 11) for c in range(3, 11) if on[r:r + 3, c:c + 3].any())
    with qtbot.waitSignal(window.runner.gradient_ready, timeout=WAIT_MS) as gradient:
        with qtbot.waitSignal(panel.unit_picked, timeout=5000) as picked:
            click_unit(qtbot, panel, 0, row, col)
    assert picked.args == ["conv2", 0, (row, col)]

    # two 3×3 convolutions: the conv2 unit sees 5×5 pixels, the conv1 unit below it 3×3
    design = result.design
    windows = window.run_panel.windows
    assert [w.node_ids[0] for w in windows] == ["conv1", "conv2"]
    size, jump, start = lecture_fields(design, "conv2")
    assert (size, jump, start) == (5, 1, 2.0)
    centre_r, centre_c = start + row * jump, start + col * jump
    expected = QRectF(centre_c - (size - 1) / 2, centre_r - (size - 1) / 2, size, size)
    assert QRectF(windows[-1].left, windows[-1].top, windows[-1].width, windows[-1].height) == expected
    assert expected in drawn_rects(window.run_panel)
    size1, _, start1 = lecture_fields(design, "conv1")
    inner = QRectF(centre_c - (size1 - 1) / 2, centre_r - (size1 - 1) / 2, size1, size1)
    assert inner in drawn_rects(window.run_panel)
    assert "field 5, jump 1, start 2" in window.run_panel.field_text.text()

    # the effective field arrives from the worker and lies inside the rectangle
    g = gradient.args[0]
    assert (g.node_id, g.unit) == ("conv2", (row, col))
    np.testing.assert_array_equal(g.gradient, result.network.input_gradient(result.x, "conv2", (row, col)))
    assert np.abs(g.gradient).sum() > 0
    heat = window.run_panel.heat.image
    assert heat is not None and heat.shape[:2] == (15, 15)
    alpha = heat[..., 3] > 0
    assert alpha.any()
    rows, cols = np.nonzero(alpha)
    assert rows.min() >= expected.top() and rows.max() < expected.bottom()
    assert cols.min() >= expected.left() and cols.max() < expected.right()


def test_field_in_the_padding_is_drawn_apart(qtbot, window):
    open_template(window, "cifar10-convnet.json")  # 5×5 convolutions with padding 2
    load_sample(window, "Shapes")
    run_and_wait(qtbot, window)
    select(qtbot, window, "conv1")
    panel = window.activations
    with qtbot.waitSignal(panel.unit_picked, timeout=5000):
        click_unit(qtbot, panel, 3, 0, 0)  # the corner unit: its 5×5 window hangs 2 pixels out
    (w,) = window.run_panel.windows
    assert (w.top, w.left, w.height, w.width) == (-2, -2, 5, 5)
    rects = drawn_rects(window.run_panel)
    assert QRectF(-2, -2, 5, 5) in rects  # the whole window, dashed
    assert QRectF(0, 0, 3, 3) in rects  # the part on the image, solid
    dashed = [i for i in window.run_panel.rect_items if isinstance(i, QGraphicsRectItem)
              and i.rect() == QRectF(-2, -2, 5, 5)]
    assert dashed[0].pen().style() == Qt.PenStyle.DashLine
    assert "reaches into the padding" in window.run_panel.field_text.text()


def test_grid_shows_every_map_hover_value_and_double_click_enlarges(qtbot, window):
    open_template(window, "cifar10-convnet.json")
    load_sample(window, "Scene")
    result = run_and_wait(qtbot, window)
    select(qtbot, window, "conv2")
    panel = window.activations
    acts = result.activations["conv2"]
    c, h, w = acts.shape
    # every map is in the grid, each unit where locate() says it is
    for channel in (0, c // 2, c - 1):
        for row, col in ((0, 0), (h - 1, w - 1), (h // 2, 3)):
            origin = panel.unit_origin(channel, row, col)
            assert panel.locate(QPointF(origin.x() + 0.5, origin.y() + 0.5)) == (channel, row, col)
    # hovering reads out (channel, row, column) = value
    origin = panel.unit_origin(5, 2, 3)
    panel._hover(panel.view.mapViewToScene(QPointF(origin.x() + 0.5, origin.y() + 0.5)))
    assert panel.readout.text().startswith(f"(5, 2, 3) = {acts[5, 2, 3]:.4g}")
    # statistics per map, against a direct computation
    stats = panel.stats_model.stats
    np.testing.assert_allclose(stats[7], [acts[7].min(), acts[7].max(), acts[7].mean(),
                                          np.mean(acts[7] == 0)], rtol=1e-5, atol=1e-7)
    click_unit(qtbot, panel, 6, 1, 2, double=True)
    assert panel.channel == 6
    assert panel.image.image.shape[:2] == (h, w)
    assert "channel 6" in panel.title.text()
    panel.back.click()
    assert panel.channel is None


def test_maps_follow_a_burst_of_selections_once(qtbot, window):
    open_template(window, "cifar10-convnet.json")
    load_sample(window, "Scene")
    run_and_wait(qtbot, window)
    shown = []
    real = window.activations.show_node
    window.activations.show_node = lambda node: (shown.append(node), real(node))
    for node in ("conv1", "relu1", "pool1", "conv2"):  # as a quick series of clicks would
        window.scene.select_node(node)
    assert window.inspector.node_id == "conv2"  # the inspector follows at once
    qtbot.waitUntil(lambda: window.activations.node_id == "conv2", timeout=5000)
    qtbot.wait(20)
    assert shown == ["conv2"]  # the maps once, for the last one


def test_flat_outputs_are_bars_and_softmax_lists_top_classes(qtbot, window):
    open_template(window, "cifar10-convnet.json")
    load_sample(window, "Digits")
    result = run_and_wait(qtbot, window)
    softmax = next(n for n in result.design.node_ids if result.design.node(n).type == "Softmax")
    select(qtbot, window, softmax)
    panel = window.activations
    probs = result.activations[softmax]
    assert panel.stack.currentWidget() is panel.chart
    np.testing.assert_array_equal(panel.bars.opts["height"], probs)
    best = int(np.argmax(probs))
    # the design names its classes (contract §2): the top classes are listed by name
    assert f"{result.design.classes[best]} ({probs[best]:.3f})" in panel.title.text()


def test_stale_after_edit_then_auto_rerun(qtbot, window):
    open_template(window, "cifar10-convnet.json")
    load_sample(window, "Shapes")
    first = run_and_wait(qtbot, window)
    window.run_panel.auto.setChecked(False)
    with qtbot.waitSignal(window.runner.stale_changed, timeout=5000) as blocker:
        window.document.set_param("conv1", "out_channels", 8)
    assert blocker.args == [True]
    select(qtbot, window, "conv1")
    assert window.activations.stale.isVisibleTo(window.activations)
    assert window.activations.values.shape[0] == 16  # still the old result, marked stale
    # a card move changes nothing that runs: not stale
    window.document.undo_stack.undo()
    qtbot.waitUntil(lambda: not window.runner.stale, timeout=5000)
    window.document.set_param("conv1", "out_channels", 8)
    qtbot.waitUntil(lambda: window.runner.stale, timeout=5000)
    with qtbot.waitSignal(window.runner.finished, timeout=WAIT_MS) as blocker:
        window.run_panel.auto.setChecked(True)  # small design: runs again by itself
    assert blocker.args[0] is not first
    assert not window.runner.stale
    assert window.activations.values.shape[0] == 8


def test_cancel_stops_a_long_run_and_keeps_the_app_usable(qtbot, window):
    open_template(window, "alexnet.json")
    load_sample(window, "Scene")
    runner = window.runner
    runner.progress.connect(lambda f, text: runner.cancel())
    with qtbot.waitSignal(runner.cancelled, timeout=WAIT_MS):
        runner.run()
    assert runner.result is None and not runner.busy
    assert "Cancelled" in window.run_panel.status.text()


def test_run_refuses_clearly_without_image_or_with_errors(qtbot, window):
    open_template(window, "cifar10-convnet.json")
    with qtbot.waitSignal(window.runner.failed, timeout=5000) as blocker:
        window.runner.run()
    assert "load an image" in blocker.args[0]
    load_sample(window)
    window.document.set_param("conv1", "kernel_size", 40)  # larger than the 32×32 input
    with qtbot.waitSignal(window.runner.failed, timeout=5000) as blocker:
        window.runner.run()
    assert "errors" in blocker.args[0]


def test_broken_image_is_explained_and_the_old_one_kept(qtbot, window, tmp_path):
    load_sample(window, "Digits")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert not window.run_panel.load_image(broken)
    assert "broken.png" in window.run_panel.status.text()
    assert window.runner.image.name == "digits.png"


def test_dropping_an_image_file_on_the_window_loads_it(qtbot, window, tmp_path):
    path = tmp_path / "red.png"
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[..., 0] = 255
    save_png(pixels, path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    viewport = window.view.viewport()
    pos = QPointF(viewport.rect().center())
    for kind in (QDropEvent,):
        event = kind(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier)
        window.view.dropEvent(event)
    assert window.runner.image is not None and window.runner.image.name == "red.png"
    np.testing.assert_array_equal(window.runner.image.pixels, pixels)


def test_classic_filters_shown_and_weights_round_trip(qtbot, window, tmp_path):
    open_template(window, "cifar10-convnet.json")
    load_sample(window, "Gradients")
    window.runner.auto_run = False
    window.runner.set_weights_mode(CLASSIC)
    result = run_and_wait(qtbot, window)
    assert result.classic["node"] == "conv1"
    assert "vertical edge" in window.run_panel.filters_label.text()
    shown = window.run_panel.filters.image
    assert shown is not None and shown.ndim == 3 and shown.shape[2] == 3
    path = tmp_path / "w.npz"
    result.network.save_weights(path)
    window.runner.load_weights(path)
    assert window.runner.weights_mode == FILE
    again = run_and_wait(qtbot, window)
    for key, value in result.network.weights.items():
        np.testing.assert_array_equal(again.network.weights[key], value)
    assert again.notes == []
    window.runner.set_weights_mode(RANDOM)
    plain = run_and_wait(qtbot, window)
    assert not np.array_equal(plain.network.weights["conv1.weight"], result.network.weights["conv1.weight"])


def test_the_worker_hands_the_interpreter_back_quickly(window):
    """The GUI thread waits at most about this long for Python's lock while a run is working."""
    import sys

    from designer.app.run.controller import GIL_SWITCH_S
    assert GIL_SWITCH_S <= 0.002
    assert sys.getswitchinterval() <= GIL_SWITCH_S


def test_a_run_leaves_one_core_to_the_window(qtbot):
    """While the worker runs, BLAS uses all cores but one (and all of them again afterwards)."""
    from threadpoolctl import threadpool_info

    from designer.app.document import Document
    from designer.app.run.controller import RUN_BLAS_THREADS, RunController, _Job

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    runner = RunController(Document())  # a job's outcome comes back as gradient_ready's
    before = blas_threads()
    with qtbot.waitSignal(runner.gradient_ready, timeout=WAIT_MS) as seen:
        runner._submit(_Job("probe", lambda job: blas_threads()))
    runner.shutdown()
    assert seen.args[0] and all(n <= RUN_BLAS_THREADS for n in seen.args[0])
    assert blas_threads() == before


def test_weights_from_a_file_on_the_very_first_run(qtbot, window, tmp_path):
    """No seeded tensor drawn yet: every tensor comes from the file."""
    open_template(window, "cifar10-convnet.json")
    window.runner.auto_run = False
    load_sample(window, "Shapes")
    path = tmp_path / "w.npz"
    saved = build(window.document.design, seed=7)
    saved.save_weights(path)
    window.runner.load_weights(path)
    result = run_and_wait(qtbot, window)
    assert result.notes == []
    for key, value in saved.weights.items():
        np.testing.assert_array_equal(result.network.weights[key], value)
