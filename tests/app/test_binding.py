"""The Qt binding must keep Python's reference counts intact in the calls the canvas makes on every
edit (PySide6 6.12.0 on Python < 3.12 released None once per void call and aborted the app)."""
from __future__ import annotations

import sys

from designer.app.canvas import NodeItem
from designer.core.design import Node


def test_canvas_item_calls_keep_none_alive(qtbot):
    item = NodeItem(Node("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}))
    before = sys.getrefcount(None)
    for i in range(2000):
        item.setPos(float(i), 0.0)
        item.setToolTip("conv1")
        item.update()
    assert sys.getrefcount(None) - before > -100
