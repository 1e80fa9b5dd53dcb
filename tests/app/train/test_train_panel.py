"""The Train panel in the window: a short run to the end (curves, confusion matrix, filters,
weights handed to the Run panel, class names), Pause/Resume/Stop, edits while it trains, and
bad data or an unfit design said in plain words."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, Qt

from designer.app.run.controller import FILE
from designer.app.train import controller as train_controller
from designer.app.train.controller import IDLE, PAUSED, RUNNING
from tests.app.conftest import send_mouse
from tests.helpers import chain
from tests.train.test_loop import stripes


def tiny_design(classes=2):
    return chain((1, 8, 8), ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                 ("relu", "ReLU", {}), ("pool", "MaxPool2d", {"kernel_size": 2}),
                 ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": classes}),
                 name="tiny")


@pytest.fixture
def stripes_file(tmp_path):
    x, y = stripes(300, 1)
    xv, yv = stripes(60, 2)
    path = tmp_path / "stripes.npz"
    np.savez(path, x=x, y=y, x_val=xv, y_val=yv, classes=np.array(["vertical", "horizontal"]))
    return str(path)


@pytest.fixture
def trainable(window, qtbot, stripes_file):
    """The window on the tiny design, with the stripes loaded in the Train panel."""
    window.document.replace(tiny_design(), None)
    panel = window.train_panel
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=20000):
        panel.choose_source(stripes_file)
    return window


def settle(qtbot, window):
    qtbot.waitUntil(lambda: window.trainer.state == IDLE and not window.trainer.busy,
                    timeout=60000)


def test_a_short_run_fills_the_curves_and_matrix_and_hands_on_its_weights(trainable, qtbot):
    window = trainable
    panel, trainer = window.train_panel, window.trainer
    assert "2 classes · 300 training + 60 validation images" in panel.data_note.text()
    assert panel.preview.classes == ["vertical", "horizontal"]
    assert panel.preview.counts == np.bincount(stripes(300, 1)[1]).tolist()
    assert window.document.design.classes is None
    panel.epochs.setValue(3)
    panel.batch_size.setValue(16)
    panel.lr.setValue(0.01)
    with qtbot.waitSignal(trainer.finished, timeout=60000) as done:
        assert window.start_training_action.isEnabled()
        window.start_training_action.trigger()  # F6
        assert window.training_note.isVisibleTo(window)
    result = done.args[0]
    settle(qtbot, window)
    assert not result.stopped and len(result.history.rows) == 3
    assert result.history.rows[-1]["val_accuracy"] >= 0.8
    # curves: every training step (300 / 16 → 19 a epoch) and the three validations
    qtbot.waitUntil(lambda: panel.curves.point_count()["loss"] == 57, timeout=5000)
    counts = panel.curves.point_count()
    assert counts["loss_smooth"] == 57 and counts["val_loss"] == 3 and counts["val_accuracy"] == 3
    # confusion matrix of the last epoch: counts in the cells, the classes on the axes
    matrix = panel.confusion.confusion
    assert matrix.sum() == 60 and np.trace(matrix) / 60 == pytest.approx(
        result.history.rows[-1]["val_accuracy"])
    np.testing.assert_array_equal(matrix, result.history.confusion)
    conf = panel.confusion
    assert conf.classes == ["vertical", "horizontal"] and "epoch 3" in conf.title
    image = conf.grab().toImage()
    rect, cell, _ = conf.geometry_of()
    assert cell >= conf.MIN_TEXT_CELL  # big enough for the counts to be written

    def colour(r, c):  # a corner of the cell, away from its count
        return image.pixelColor(int(rect.left() + (c + 0.1) * cell),
                                int(rect.top() + (r + 0.1) * cell))
    # coloured by the share of the row: the diagonal (mostly right) darker than the rest
    assert colour(0, 0).lightness() < colour(0, 1).lightness() - 40
    assert colour(1, 1).lightness() < colour(1, 0).lightness() - 40
    middle = QPoint(int(rect.left() + 1.5 * cell), int(rect.top() + 0.5 * cell))
    send_mouse(conf, QEvent.Type.MouseMove, middle, Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    assert conf.toolTip().startswith(f"{matrix[0, 1]} of the {matrix[0].sum()} validation "
                                     f"images of vertical were taken for horizontal")
    # the first convolution's filters: 4 filters of 3×3 drawn as one image
    assert panel.filters.shape is not None and "conv" in panel.filters.label.text
    # the weights went to the Run panel, and the design took the data's class names
    runner = window.runner
    label = getattr(runner, "weights_label", None) or runner.weights_file.name
    assert runner.weights_mode == FILE and label.startswith("trained-stripes-3ep")
    for key, tensor in result.weights.items():
        np.testing.assert_array_equal(runner._file_weights[key], tensor)
    assert window.document.design.classes == ("vertical", "horizontal")
    assert "Trained after 3 epochs" in panel.status.text()
    window.undo_action.trigger()  # the classes are one undo step
    assert window.document.design.classes is None
    window.redo_action.trigger()
    assert window.document.design.classes == ("vertical", "horizontal")
    assert not window.training_note.isVisibleTo(window)


def test_trained_weights_save_to_a_weights_file(trainable, qtbot, tmp_path):
    import designer
    window = trainable
    panel = window.train_panel
    panel.epochs.setValue(1)
    with qtbot.waitSignal(window.trainer.finished, timeout=60000) as done:
        panel.start()
    settle(qtbot, window)
    assert panel.save_button.isEnabled()
    target = tmp_path / "out" / "w.npz"
    target.parent.mkdir()
    assert panel.save_to(target)
    net = designer.build(window.document.design, weights=str(target))
    for key, tensor in done.args[0].weights.items():
        np.testing.assert_array_equal(net.weights[key], tensor)
    assert not panel.save_to(tmp_path / "missing-folder" / "w.npz")
    assert "Can't save the weights" in panel.status.text()


@pytest.fixture
def slow_steps(monkeypatch):
    """Training slowed to a step every 20 ms, so a test can act while it runs."""
    real = train_controller.train

    def slowed(*args, progress=None, **kwargs):
        def slow(event):
            time.sleep(0.02)
            return progress(event)
        return real(*args, progress=slow, **kwargs)

    monkeypatch.setattr(train_controller, "train", slowed)


def test_pause_resume_and_stop(trainable, qtbot, slow_steps):
    window = trainable
    panel, trainer = window.train_panel, window.trainer
    panel.epochs.setValue(100)
    panel.batch_size.setValue(16)
    with qtbot.waitSignal(trainer.steps, timeout=30000):
        panel.start()
    assert trainer.state == RUNNING and panel.pause_button.text() == "Pause"
    assert not panel.start_button.isEnabled()
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert trainer.state == PAUSED and panel.pause_button.text() == "Resume"
    # only Pause/Resume goes on: Start, still called Start, waits for the run to end
    assert panel.start_button.text() == "Start" and not panel.start_button.isEnabled()
    assert not window.start_training_action.isEnabled()
    qtbot.wait(300)  # the batch under way ends and reports
    seen = []
    trainer.steps.connect(seen.append)
    qtbot.wait(500)
    assert seen == []  # paused: no steps
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)  # resume
    assert trainer.state == RUNNING
    qtbot.waitUntil(lambda: len(seen) > 0, timeout=10000)
    with qtbot.waitSignal(trainer.finished, timeout=30000) as done:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    settle(qtbot, window)
    assert result.stopped and len(result.history.rows) < 100
    assert window.runner.weights_mode == FILE  # stopped runs hand on what they learnt too
    assert panel.status.text().startswith("Stopped ")


def test_stop_while_paused_ends_at_once(trainable, qtbot, slow_steps):
    window = trainable
    trainer = window.trainer
    window.train_panel.epochs.setValue(100)
    with qtbot.waitSignal(trainer.steps, timeout=30000):
        window.train_panel.start()
    trainer.pause()
    with qtbot.waitSignal(trainer.finished, timeout=10000) as done:
        window.stop_training_action.trigger()
    assert done.args[0].stopped


def test_editing_while_training_asks_and_keeps_training_when_told(trainable, qtbot,
                                                                    slow_steps):
    window = trainable
    trainer, lock = window.trainer, window.edit_lock
    window.train_panel.epochs.setValue(100)
    with qtbot.waitSignal(trainer.steps, timeout=30000):
        window.train_panel.start()
    asked = []
    lock.ask = lambda text: asked.append(text) or False
    window.document.set_param("conv", "out_channels", 8)
    assert asked == ["Set conv.out_channels"]
    assert window.document.design.node("conv").params["out_channels"] == 4
    assert trainer.training and trainer.state == RUNNING
    assert "can't be edited while it trains" in window.statusBar().currentMessage()
    # moving a card changes no layer: it goes on without asking
    window.document.move_nodes({"conv": (window.document.design.node("conv").position,
                                         (300.0, 300.0))})
    assert window.document.design.node("conv").position == (300.0, 300.0)
    assert len(asked) == 1
    # undo of a structural edit asks too (the move is undone without asking)
    window.undo_action.trigger()
    assert len(asked) == 1
    window.document.delete(["relu"], [])
    assert len(asked) == 2 and "relu" in window.document.design
    # told to stop: the training stops (its weights handed on), then the edit is made
    lock.ask = lambda text: asked.append(text) or True
    with qtbot.waitSignal(trainer.finished, timeout=30000) as done:
        window.document.set_param("fc", "bias", False)
    assert window.document.design.node("fc").params["bias"] is False
    assert done.args[0].stopped and not trainer.training
    settle(qtbot, window)
    window.document.set_param("conv", "out_channels", 8)  # not training: no question
    assert len(asked) == 3


def test_bad_data_is_said_in_plain_words(window, qtbot, tmp_path):
    window.document.replace(tiny_design(), None)
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 1, 8, 8), np.float32))
    panel = window.train_panel
    with qtbot.waitSignal(window.trainer.data_failed, timeout=20000):
        panel.choose_source(str(bad))
    text = panel.data_note.text()
    assert text.startswith("Can't use this data:") and "'images'" in text and "x, y" in text
    assert panel.preview.classes == []


def test_an_unfit_design_is_refused_before_starting_with_the_fix(window, qtbot, stripes_file):
    window.document.replace(tiny_design(classes=3), None)
    panel = window.train_panel
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=20000):
        panel.choose_source(stripes_file)
    assert panel.problem.isVisibleTo(panel)
    assert "fc" in panel.problem.text() and "set fc's out_features to 2" in panel.problem.text()
    failures = []
    window.trainer.failed.connect(failures.append)
    assert not panel.start()
    assert failures and "out_features to 2" in failures[0]
    assert not window.trainer.training
    window.document.set_param("fc", "out_features", 2)  # fixed: the note goes
    assert not panel.problem.isVisibleTo(panel)


def test_clicking_a_wrong_image_opens_it_in_the_run_panel(trainable, qtbot):
    window = trainable
    panel = window.train_panel
    panel.epochs.setValue(1)
    panel.lr.setValue(0.0001)  # one slow epoch: plenty of mistakes to show
    with qtbot.waitSignal(window.trainer.epoch_done, timeout=60000):
        panel.start()
    settle(qtbot, window)
    assert panel.wrong.count() > 0
    item = panel.wrong.item(0)
    wrong = item.data(Qt.ItemDataRole.UserRole)
    assert wrong.confidence >= max(panel.wrong.item(i).data(Qt.ItemDataRole.UserRole).confidence
                                   for i in range(panel.wrong.count()))
    rect = panel.wrong.visualItemRect(item)
    qtbot.mouseClick(panel.wrong.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    image = window.runner.image
    assert image is not None and f"validation image {wrong.index}" in image.name
    assert image.pixels.shape == (8, 8, 3)
    assert image.class_name == ["vertical", "horizontal"][wrong.true]
    assert image.data.endswith("stripes.npz")
    np.testing.assert_array_equal(image.pixels[..., 0],
                                  np.rint(window.trainer.data.val[0][wrong.index, 0] * 255))


def test_an_inspector_edit_refused_while_training_shows_the_design_again(trainable, qtbot,
                                                                         slow_steps):
    from PySide6.QtWidgets import QCheckBox
    window = trainable
    window.train_panel.epochs.setValue(100)
    with qtbot.waitSignal(window.trainer.steps, timeout=30000):
        window.train_panel.start()
    window.edit_lock.ask = lambda text: False
    window.scene.select_node("fc")
    box = window.inspector.form_host.findChildren(QCheckBox)[0]  # Linear's bias
    assert box.isChecked()
    box.click()  # as a click on it does (toggled, then the inspector's edit)
    assert window.document.design.node("fc").params.get("bias", True) is True
    assert box.isChecked()  # the editor shows the design as it is, not the refused edit
    assert window.edit_lock.refused == 1
    with qtbot.waitSignal(window.trainer.finished, timeout=30000):
        window.trainer.stop()
    settle(qtbot, window)


def test_a_changed_input_loads_the_data_again_for_it(trainable, qtbot):
    window = trainable
    trainer = window.trainer
    assert trainer.data.train[0].shape[1:] == (1, 8, 8)
    window.document.set_param("input", "height", 16)
    window.document.set_param("input", "width", 16)
    window.train_panel.epochs.setValue(1)
    with qtbot.waitSignal(trainer.finished, timeout=60000) as done:
        window.train_panel.start()
        assert trainer.state == "loading"
    assert trainer.data.train[0].shape[1:] == (1, 16, 16)  # converted to the new Input
    assert "as 1×16×16 for the Input" in window.train_panel.data_note.text()
    assert done.args[0].weights["fc.weight"].shape == (2, 4 * 8 * 8)


def test_opening_another_design_stops_the_training_and_keeps_its_weights_apart(
        trainable, qtbot, slow_steps):
    window = trainable
    trainer, runner = window.trainer, window.runner
    window.train_panel.epochs.setValue(100)
    with qtbot.waitSignal(trainer.steps, timeout=30000):
        window.train_panel.start()
    mode = runner.weights_mode
    with qtbot.waitSignal(trainer.finished, timeout=30000):
        window.document.replace(tiny_design(classes=3), None)
    settle(qtbot, window)
    assert runner.weights_mode == mode  # not handed to a design it wasn't trained for
    assert window.document.design.classes is None
    assert "previous design" in window.statusBar().currentMessage()


def test_stop_while_the_data_loads_says_nothing_was_learnt(window, qtbot, stripes_file,
                                                           monkeypatch):
    import threading
    window.document.replace(tiny_design(), None)
    release = threading.Event()
    real = train_controller.load_dataset

    def slow_load(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_controller, "load_dataset", slow_load)
    window.trainer.settings.source = stripes_file
    finished = []
    window.trainer.finished.connect(finished.append)
    assert window.train_panel.start()
    assert window.trainer.state == "loading" and window.trainer.training
    window.trainer.stop()
    assert window.trainer.state == "stopping"
    with qtbot.waitSignal(window.trainer.cancelled, timeout=20000):
        release.set()
    assert finished == [] and window.trainer.state == IDLE
    assert "nothing was learnt" in window.train_panel.status.text()


def test_the_panel_first_shown_loads_the_built_in_data_that_suit_the_input(window, qtbot):
    window.document.replace(chain((3, 16, 16), ("flat", "Flatten", {}),
                                  ("fc", "Linear", {"out_features": 10})), None)
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=60000) as loaded:
        window.show_train_panel()  # Ctrl+T
    assert loaded.args[0].source == "builtin:shapes"
    assert window.train_panel.source.currentData() == "builtin:shapes"
    assert len(window.train_panel.preview.rows) == 10
    assert not window.train_panel.problem.isVisibleTo(window.train_panel)


def test_a_second_run_can_go_on_from_the_first_runs_weights(trainable, qtbot):
    window = trainable
    panel, trainer = window.train_panel, window.trainer
    panel.epochs.setValue(1)
    panel.lr.setValue(0.01)
    assert not panel.resume_weights.isEnabled()
    with qtbot.waitSignal(trainer.finished, timeout=60000) as first:
        panel.start()
    settle(qtbot, window)
    assert panel.resume_weights.isEnabled()
    panel.resume_weights.setChecked(True)
    panel.lr.setValue(1e-5)  # steps so small that the weights stay near where they were
    with qtbot.waitSignal(trainer.finished, timeout=60000) as second:
        panel.start()
    settle(qtbot, window)
    a, b = first.args[0].weights["fc.weight"], second.args[0].weights["fc.weight"]
    assert np.abs(b - a).max() < 0.01  # went on from there, not from new random weights
    assert second.args[0].history.rows[0]["val_accuracy"] >= first.args[0].history.rows[0][
        "val_accuracy"] - 0.05


def test_start_on_a_colour_design_trains_on_shapes_until_the_user_picks(window, qtbot,
                                                                         monkeypatch):
    """F6 on a colour template before the panel was ever seen: the data follow the design."""
    loaded = []
    monkeypatch.setattr(train_controller, "load_dataset",
                        lambda source, *a, **k: loaded.append(source) or (_ for _ in ()).throw(
                            train_controller.DataError("stop here")))
    window.document.replace(chain((3, 8, 8), ("flat", "Flatten", {}),
                                  ("fc", "Linear", {"out_features": 10})), None)
    with qtbot.waitSignal(window.trainer.failed, timeout=20000):
        window.start_training_action.trigger()
    assert loaded[-1] == "builtin:shapes"
    assert window.train_panel.source.currentData() == "builtin:shapes"
    settle(qtbot, window)
    window.document.replace(chain((1, 8, 8), ("flat", "Flatten", {}),
                                  ("fc", "Linear", {"out_features": 10})), None)
    assert window.trainer.settings.source == "builtin:digits"  # a grey design: digits


def test_the_documents_guard_refuses_an_edit_and_lets_moves_through(qtbot):
    """Document.guard is asked before every push: False leaves the undo stack as it was."""
    from designer.app.commands import MoveNodesCommand, SetClassesCommand
    from designer.app.document import Document
    from designer.core.design import Design
    document = Document(Design("guarded"))
    asked = []
    document.guard = lambda command: asked.append(command.text()) or isinstance(
        command, MoveNodesCommand)
    document.push(SetClassesCommand(document.design, ["a", "b"]))
    assert document.undo_stack.count() == 0 and document.design.classes is None
    assert asked == ["Name the classes"]
    document.guard = None
    document.push(SetClassesCommand(document.design, ["a", "b"]))
    assert list(document.design.classes) == ["a", "b"] and document.undo_stack.count() == 1
    document.undo_stack.undo()
    assert document.design.classes is None
