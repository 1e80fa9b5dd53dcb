"""Designs with absurd numbers (2³¹−1 channels, kernels, strides, sizes) open, show, and refuse to
run with a message saying why: no traceback, no freeze, nothing big allocated first."""
from __future__ import annotations

import json
import time

import pytest

from designer.app.run import controller as run_module
from designer.engine import network as network_module
from designer.io.templates import find_template
from tests.app.test_run import WAIT_MS, load_sample

BIG = 2**31 - 1
SMALL_INPUT = {"id": "input", "type": "Input", "params": {"channels": 3, "height": 7, "width": 7}}


def conv(**params):
    return {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                        **params}}


HOSTILE = {
    "out_channels": [SMALL_INPUT, conv(out_channels=BIG)],
    "kernel_size": [SMALL_INPUT, conv(kernel_size=BIG)],
    "stride": [SMALL_INPUT, conv(stride=BIG)],
    "padding": [SMALL_INPUT, conv(padding=BIG)],
    "dilation": [SMALL_INPUT, conv(dilation=BIG)],
    "groups": [dict(SMALL_INPUT, params={"channels": BIG, "height": 7, "width": 7}),
               conv(out_channels=BIG, groups=3)],
    "input size": [dict(SMALL_INPUT, params={"channels": 3, "height": 100_000,
                                              "width": 100_000}), conv()],
    "linear": [SMALL_INPUT, {"id": "flat", "type": "Flatten", "params": {}},
               {"id": "conv1", "type": "Linear", "params": {"out_features": BIG}}],
    "pooling": [SMALL_INPUT, {"id": "conv1", "type": "MaxPool2d",
                              "params": {"kernel_size": BIG, "stride": BIG, "padding": BIG}}],
    "adaptive": [SMALL_INPUT, {"id": "conv1", "type": "AdaptiveAvgPool2d",
                               "params": {"output_size": BIG}}],
    "too big for an int": [SMALL_INPUT, conv(out_channels=10**30)],
}


def write(tmp_path, name, nodes):
    edges = [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])]
    path = tmp_path / f"{name.replace(' ', '_')}.json"
    path.write_text(json.dumps({"format": "cnn-designer", "version": 1, "name": name,
                                "nodes": nodes, "edges": edges}))
    return path


def test_designs_with_absurd_numbers_open_show_and_refuse_to_run_with_a_message(
        qtbot, window, tmp_path):
    said = []
    window.runner.failed.connect(said.append)
    load_sample(window)
    for name, nodes in HOSTILE.items():
        path = write(tmp_path, name, nodes)
        said.clear()
        start = time.perf_counter()
        assert window.open_path(path), name
        for node_id in window.document.design.node_ids:  # inspector, summary, maps follow
            window.scene.select_node(node_id)
            qtbot.wait(1)
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)  # an auto re-run
        assert time.perf_counter() - start < 5, name  # nothing froze (load on the machine varies)
        said.clear()
        started = window.runner.run()
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
        text = window.run_panel.status.text()
        if not window.document.analysis.valid:
            assert text.startswith("Can't run: the design has errors"), name
        elif started and not said:
            assert text.startswith("Ran"), name  # small enough after all (a huge stride: 1×1)
        else:
            assert len(said) == 1 and text.startswith("Can't run:"), name
            assert "Traceback" not in text and "Unable to allocate" not in text, name


def test_a_run_that_wont_fit_is_refused_with_both_numbers_before_weights_are_drawn(
        qtbot, window, monkeypatch):
    window.document.replace(find_template("lenet5").load(), None)
    window.runner.auto_run = False
    load_sample(window)
    monkeypatch.setattr(network_module, "available_memory", lambda: 2**20)  # 1 MiB free
    drawn = []
    monkeypatch.setattr(run_module, "init_tensor",
                        lambda *a, **k: drawn.append(a) or pytest.fail("weights drawn"))
    said = []
    window.runner.failed.connect(said.append)
    assert window.runner.run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    assert len(said) == 1 and "needs about" in said[0] and "only 1 MiB is free" in said[0]
    assert drawn == [] and window.runner._weights_cache == {}


def test_weights_that_cant_be_drawn_are_a_message(qtbot, window, monkeypatch):
    window.document.replace(find_template("lenet5").load(), None)
    window.runner.auto_run = False
    window.runner.set_weights_mode(run_module.RANDOM)  # LeNet-5's trained weights aren't drawn
    load_sample(window)

    def fail(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(run_module, "init_tensor", fail)
    said = []
    window.runner.failed.connect(said.append)
    assert window.runner.run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    assert len(said) == 1 and said[0].startswith("the weights ") and "is free" in said[0]
