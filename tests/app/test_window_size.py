"""The window fits the screen: the first window's geometry from the available area (1280×800 and
1366×768 included), the docks sized so the canvas keeps most of the room, the status bar in
sight, a remembered geometry clamped to a smaller screen, and the maps given the canvas's room."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from designer.app import files
from designer.app.main_window import (MainWindow, clamp_geometry, dock_sizes, focus_height,
                                      initial_geometry)
from designer.core.design import Design, Node
from designer.io.templates import find_template

SCREENS = [QRect(0, 0, 1280, 800), QRect(0, 0, 1366, 768), QRect(0, 0, 1920, 1080),
           QRect(0, 0, 2560, 1440), QRect(0, 0, 3840, 2160),
           QRect(1920, 0, 1280, 800),  # a second monitor to the right
           QRect(0, 32, 1366, 736),  # a panel along the top
           QRect(-1440, 100, 1440, 900)]  # a monitor to the left, lower




def make_window(qtbot, size: QSize | None = None) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    if size is not None:
        w.resize(size)
        w.arrange_docks(size)
    return w


@pytest.mark.parametrize("available", SCREENS, ids=lambda r: f"{r.width()}x{r.height()}@{r.x()},{r.y()}")
def test_the_first_window_lies_inside_the_available_area(available):
    rect, maximized = initial_geometry(available)
    assert available.contains(rect)
    if available.width() <= 1920 and available.height() <= 1200:
        assert maximized and rect == available  # laptops and common desktops: all of it
    else:
        assert not maximized
        assert rect.width() >= 0.85 * available.width()
        assert rect.height() >= 0.85 * available.height()
        assert abs(rect.center().x() - available.center().x()) <= 1  # centred


def test_a_remembered_geometry_is_clamped_to_a_smaller_screen():
    big = QRect(200, 150, 1800, 1000)  # saved on a 2560×1440 screen
    for available in SCREENS[:2] + SCREENS[5:]:
        fitted = clamp_geometry(big, available)
        assert available.contains(fitted)
        assert fitted.width() == min(1800, available.width())
        assert fitted.height() == min(1000, available.height())
    # a screen that is gone: the window comes back onto the one there is
    fitted = clamp_geometry(QRect(5000, 3000, 800, 600), QRect(0, 0, 1280, 800))
    assert fitted == QRect(480, 200, 800, 600)
    # a window that fits stays where it was
    assert clamp_geometry(QRect(100, 80, 900, 600), QRect(0, 0, 1280, 800)) == QRect(100, 80, 900, 600)


@pytest.mark.parametrize("size", [QSize(1280, 800), QSize(1366, 768), QSize(1920, 1080)])
def test_dock_sizes_leave_most_of_the_room_to_the_canvas(size):
    sizes = dock_sizes(size, palette_width=215, right_width=420)
    canvas_width = size.width() - sizes.palette - sizes.right
    canvas_height = size.height() - 50 - sizes.bottom  # menu and status bars about 50 px
    assert canvas_width >= 0.47 * size.width()
    assert canvas_height >= 0.6 * size.height()
    assert sizes.right >= 420 or sizes.right >= 0.34 * size.width() - 1  # the Run panel whole
    assert sizes.palette == 215 or sizes.palette >= 0.18 * size.width() - 1
    assert focus_height(size) >= size.height() - 200


@pytest.mark.parametrize("screen", [QSize(1280, 800), QSize(1366, 768)])
def test_on_a_laptop_screen_the_window_fits_with_its_status_bar(qtbot, settings_home, screen):
    """The real window at the size a 1280×800 (1366×768) screen gives it: nothing sticks out,
    the status bar (the hint on a blank design) is in sight, the canvas keeps the most room,
    and the Run panel's controls are whole."""
    w = make_window(qtbot)
    rect, _ = initial_geometry(QRect(QPoint(0, 0), screen))
    w.setGeometry(rect)
    w.arrange_docks(rect.size())
    w.show()
    qtbot.waitExposed(w)
    QApplication.processEvents()
    assert w.size().width() <= screen.width() and w.size().height() <= screen.height()
    assert w.minimumSizeHint().width() <= screen.width()
    assert w.minimumSizeHint().height() <= screen.height()
    bar = w.statusBar()
    assert bar.isVisible()
    assert w.rect().contains(QRect(bar.mapTo(w, QPoint(0, 0)), bar.size()))
    assert "drag an Input" in bar.currentMessage()
    canvas = w.view.viewport()
    area = canvas.width() * canvas.height()
    for dock in (w.palette_dock, w.inspector_dock, w.run_dock, w.summary_dock):
        assert area > dock.width() * dock.height()  # the canvas is the largest part
    assert canvas.width() >= 0.47 * screen.width()
    assert canvas.height() >= 0.55 * screen.height()
    # the Run panel's buttons are whole: its scroll area never has to cut them
    scroll = w.run_dock.widget()
    assert scroll.viewport().width() >= w.run_panel.minimumSizeHint().width()
    # the palette shows the longest layer name whole
    tree = w.palette.tree
    item = tree.items["AdaptiveAvgPool2d"]
    text = tree.fontMetrics().horizontalAdvance("AdaptiveAvgPool2d")
    assert tree.visualItemRect(item).width() >= text + tree.iconSize().width()
    assert tree.visualItemRect(item).right() <= tree.viewport().width()


def test_the_window_comes_back_as_it_was_left_clamped_to_the_screen(qtbot, settings_home):
    first = make_window(qtbot, QSize(1000, 700))
    first.move(40, 30)
    first.show()
    qtbot.waitExposed(first)
    first.palette_dock.hide()  # a dock the user closed stays closed
    first.close()
    settings = files.app_settings()
    assert isinstance(settings.value("window/geometry"), QRect)

    second = make_window(qtbot)
    screen = second.screen() or QApplication.primaryScreen()
    second.place_on_screen(screen)
    available = screen.availableGeometry()
    expected = clamp_geometry(QRect(first.geometry()), available)
    assert second.geometry().size() == expected.size()
    second.show()
    qtbot.waitExposed(second)
    if expected.size() == QSize(1000, 700):
        assert not second.palette_dock.isVisible()  # the docks as they were too

    # saved on a screen larger than this one: clamped, and the docks arranged afresh
    settings.setValue("window/geometry", QRect(-300, -200, available.width() + 900,
                                               available.height() + 600))
    third = make_window(qtbot)
    third.place_on_screen(screen)
    assert available.contains(third.geometry())
    assert third.geometry().size() == available.size()


def test_the_first_window_on_this_screen_fits_it(qtbot, settings_home):
    w = make_window(qtbot)
    screen = w.screen() or QApplication.primaryScreen()
    w.place_on_screen(screen)
    assert screen.availableGeometry().contains(w.geometry())


def sixty_four_maps() -> Design:
    """An RGB 224×224 input and a convolution with 64 maps (VGG's first layer, small)."""
    design = Design("64 maps")
    design.insert_node(Node("input", "Input", {"channels": 3, "height": 224, "width": 224},
                            (0.0, 0.0)))
    design.insert_node(Node("conv", "Conv2d", {"out_channels": 64, "kernel_size": 3,
                                               "padding": 1}, (0.0, 130.0)))
    design.connect("input", "conv")
    return design


def test_maps_large_gives_64_maps_at_least_48_pixels_on_1920x1080(qtbot, settings_home, tmp_path):
    """Ctrl+M: the maps take the canvas's room; on a 1920×1080 screen 64 maps get 48 px or
    more each. Ctrl+M again puts the panels back as they were."""
    rect, _ = initial_geometry(QRect(0, 0, 1920, 1080))
    w = make_window(qtbot)
    w.setGeometry(rect)
    w.arrange_docks(rect.size())
    with qtbot.waitActive(w):  # key presses reach the window's shortcuts
        w.show()
        w.activateWindow()
    w.document.replace(sixty_four_maps(), None)
    image = np.linspace(0, 255, 224 * 224 * 3).reshape(224, 224, 3).astype(np.uint8)
    from PySide6.QtGui import QImage
    path = tmp_path / "ramp.png"
    QImage(image.tobytes(), 224, 224, 3 * 224, QImage.Format.Format_RGB888).save(str(path))
    assert w.run_panel.load_image(path)
    qtbot.waitUntil(lambda: w.runner.result is not None and not w.runner.busy, timeout=30_000)
    w.scene.select_node("conv")
    qtbot.waitUntil(lambda: w.activations.node_id == "conv", timeout=5_000)
    QApplication.processEvents()
    docks = (w.palette_dock, w.activations_dock, w.inspector_dock, w.run_dock)
    before = {d.objectName(): (d.isVisible(), d.size()) for d in docks}
    canvas_before = w.view.viewport().size()

    QTest.keyClick(w, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert w.maps_focused() and w.focus_maps_action.isChecked()
    assert w.activations_dock.isVisible() and not w.palette_dock.isVisible()
    qtbot.waitUntil(lambda: w.activations_dock.height() >= 0.7 * w.height(), timeout=2_000)
    assert w.view.viewport().height() < canvas_before.height()  # the canvas gave its room
    qtbot.waitUntil(lambda: not w.activations.drawing, timeout=10_000)
    qtbot.wait(200)  # the grid is laid out again once the room stops changing
    qtbot.waitUntil(lambda: not w.activations.drawing, timeout=10_000)
    assert w.activations.map_pixels() >= 48

    QTest.keyClick(w, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert not w.maps_focused() and not w.focus_maps_action.isChecked()
    qtbot.waitUntil(lambda: w.palette_dock.isVisible(), timeout=2_000)
    qtbot.wait(50)
    after = {d.objectName(): (d.isVisible(), d.size()) for d in docks}
    for name, (visible, size) in before.items():
        assert after[name][0] == visible
        assert abs(after[name][1].height() - size.height()) <= 2, name
        assert abs(after[name][1].width() - size.width()) <= 2, name


def test_maps_get_room_when_first_shown(qtbot, settings_home, tmp_path):
    """The first maps shown in a window grow the docks below to 45% of its height."""
    w = make_window(qtbot, QSize(1280, 800))
    w.show()
    qtbot.waitExposed(w)
    low = w.activations_dock.height()
    assert low < 0.4 * w.height()
    w.new_from_template(find_template("lecture-conv-layer"))
    assert w.run_panel.load_image(find_sample())
    qtbot.waitUntil(lambda: w.runner.result is not None and not w.runner.busy, timeout=30_000)
    # the tab group (the dock and its tab bar) takes MAPS_SHARE of the height
    qtbot.waitUntil(lambda: w.activations_dock.height() >= 0.4 * w.height(), timeout=5_000)
    assert w.maps_button.isVisible() and w.maps_button.defaultAction() is w.focus_maps_action


def find_sample():
    from designer.io.templates import resources_dir
    return resources_dir() / "samples" / "shapes.png"
