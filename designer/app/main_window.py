"""The main window: the canvas in the middle; the palette on the left; the inspector and the Run
panel on the right; the summary, problems and activation maps docked below.

The first window fits the screen it opens on (``initial_geometry``: the whole available area of
a screen up to 1920×1200, most of a larger one) with the docks sized from the window (``dock_sizes``) so
the canvas gets most of it; later windows reopen where and as they were left, clamped to the
screen they open on (``clamp_geometry``)."""
from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QByteArray, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QCursor, QGuiApplication, QKeySequence, QScreen
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow,
                               QMessageBox, QScrollArea, QSplitter, QToolButton)

from designer.app.run.activations import ActivationPanel
from designer.app.autosave import APP_NAME, Autosaver, find_recoverable, recover
from designer.app.commands import SetClassesCommand
from designer.app.canvas import CanvasScene, CanvasView, local_files, type_accepts_input
from designer.app.document import Document
from designer.app.files import FileCommands
from designer.app.help import GettingStartedDialog, ShortcutsDialog, show_about
from designer.app.icon import set_application_icon
from designer.app.guard import install_guard
from designer.app.panels.inspector import InspectorPanel
from designer.app.panels.palette import ID_STEMS, PalettePanel
from designer.app.panels.tables import ProblemsPanel, SummaryPanel
from designer.app.run.controller import RunController
from designer.app.run.panel import RunPanel
from designer.app.run.controller import InputImage
from designer.app.train.controller import TrainController
from designer.app.train.handoff import hand_weights_to_run, trained_note, weights_label
from designer.app.train.lock import LOCKED, EditLock
from designer.app.train.panel import TrainPanel
from designer.core.catalog import default_params
from designer.core.design import Design, GraphError, Node
from designer.engine.memory import release_freed_memory
from designer.core.fragment import extract, placed, top_left
from designer.io.design_file import DesignError, design_from_json, design_to_json
from designer.io.images import supported_formats


FOLLOW_UP_MS = 40  # after a run, the first layer's maps follow the results this much later


def settle_memory() -> None:
    """After a design is loaded and drawn: move the long-lived objects (the design, its analysis,
    the canvas items) out of the cyclic garbage collector's way. Python's full collections, which
    it runs every few hundred edits, then scan only what edits create, instead of stalling a frame
    for ~26 ms on a 1,000-node design. Objects frozen with an earlier design are released first.
    The memory the engine kept from the last design's passes goes back to the system."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    release_freed_memory()




#: screens up to this size get a window filling their whole available area
LAPTOP = QSize(1920, 1200)
#: on larger screens the first window takes this share of the available area, centred
LARGE_SHARE = 0.9
#: the docks below the canvas take this share of the window's height when maps are first shown
MAPS_SHARE = 0.45
#: the Train panel takes this share of the window's height when training first starts (the
#: design can't be edited while it trains: the canvas needs little room then)
TRAIN_SHARE = 0.62


def configure_application(app: QApplication) -> None:
    """The names Qt derives the app's folders from. Only the application name is set: with
    the organization named the same, the data folder was ``CNN Designer/CNN Designer``
    (autosaves there are still found: ``autosave.legacy_autosave_dirs``)."""
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("")
    app.setApplicationDisplayName(APP_NAME)
    set_application_icon(app)  # every window's, and the About box's


def initial_geometry(available: QRect) -> tuple[QRect, bool]:
    """The first window's geometry on a screen whose available area (without panels and
    docks) is ``available``, and whether to maximize it: a screen up to 1920×1200 (laptops,
    common desktops) gets all of it, maximized (so the window manager's frame fits too); a
    larger one ``LARGE_SHARE`` of each side, centred."""
    if available.width() <= LAPTOP.width() or available.height() <= LAPTOP.height():
        return QRect(available), True
    width = round(available.width() * LARGE_SHARE)
    height = round(available.height() * LARGE_SHARE)
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect, False


def clamp_geometry(rect: QRect, available: QRect) -> QRect:
    """A remembered window geometry made to fit ``available`` (another, smaller screen than
    the one it was saved on, or a screen that is gone): no larger than the area, and moved
    inside it."""
    width = max(1, min(rect.width(), available.width()))
    height = max(1, min(rect.height(), available.height()))
    x = min(max(rect.x(), available.left()), available.left() + available.width() - width)
    y = min(max(rect.y(), available.top()), available.top() + available.height() - height)
    return QRect(x, y, width, height)


class DockSizes(NamedTuple):
    palette: int  # width of the Layers dock
    right: int  # width of the right column (Inspector above Run on an image)
    inspector: int  # height of the Inspector within the right column
    bottom: int  # height of the Summary / Problems / Activations docks


def dock_sizes(window: QSize, palette_width: int = 200, right_width: int = 300) -> DockSizes:
    """Dock sizes for a window of this size: the canvas keeps most of the room (half the
    width and more than half the height on 1280×800); the palette is as wide as its entries
    need, the right column as the Run panel's controls need (``right_width``), each within
    a share of the window."""
    right = max(300, min(round(window.width() * 0.34), max(right_width,
                                                              round(window.width() * 0.24))))
    palette = max(150, min(palette_width, round(window.width() * 0.18)))
    bottom = max(160, min(320, round(window.height() * 0.26)))
    inspector = max(220, round((window.height() - 80) * 0.45))
    return DockSizes(palette, right, inspector, bottom)


def focus_height(window: QSize) -> int:
    """The height of the maps while they are focused: all but a strip of canvas (and the
    menu and status bars)."""
    return max(200, window.height() - 200)


class MainWindow(FileCommands, QMainWindow):
    def __init__(self, document: Document | None = None) -> None:
        super().__init__()
        self.document = document or Document()
        self.scene = CanvasScene(self.document)
        self.scene.setParent(self)
        self.view = CanvasView(self.scene)
        self.setCentralWidget(self.view)
        self.summary = SummaryPanel(self.document)
        self.problems = ProblemsPanel(self.document)
        self.summary_dock = self._dock("Summary", self.summary, "summary")
        self.problems_dock = self._dock("Problems", self.problems, "problems")
        self.tabifyDockWidget(self.summary_dock, self.problems_dock)
        self.summary_dock.raise_()
        self.palette = PalettePanel()
        self.palette_dock = self._dock("Layers", self.palette, "palette",
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector = InspectorPanel(self.document)
        self.inspector_dock = self._dock("Inspector", self.inspector, "inspector",
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.runner = RunController(self.document, self)
        self.activations = ActivationPanel(self.runner)
        self.run_panel = RunPanel(self.runner)
        inspect = QSplitter()  # the image with the fields beside the maps that are clicked
        inspect.addWidget(self.run_panel.pictures)
        inspect.addWidget(self.activations)
        inspect.setStretchFactor(0, 2)
        inspect.setStretchFactor(1, 5)
        inspect.setSizes([420, 780])
        self.activations_dock = self._dock("Activations", inspect, "activations")
        self.tabifyDockWidget(self.problems_dock, self.activations_dock)
        self.summary_dock.raise_()
        scroll = QScrollArea()  # the panel keeps its size; a short window scrolls it
        scroll.setWidget(self.run_panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_dock = self._dock("Run on an image", scroll, "run",
                                   Qt.DockWidgetArea.RightDockWidgetArea)
        # the right column runs the full height; the maps below get the canvas's width
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.trainer = TrainController(self.document, self)
        self.train_panel = TrainPanel(self.trainer)
        self.train_dock = self._dock("Train", self.train_panel, "train")
        self.tabifyDockWidget(self.activations_dock, self.train_dock)
        self.summary_dock.raise_()
        self.edit_lock = EditLock(self.document, self.trainer, self,
                                  say=lambda text: self.statusBar().showMessage(text, 8000))
        self._training_design: Design | None = None  # the design object a run was started on
        self._train_grown = False
        self._quiet_run = False  # the run under way follows a training: it raises no tab
        self.training_note = QLabel("● Training: the design is locked")
        self.training_note.setStyleSheet("color: #c06000")
        self.training_note.setToolTip(LOCKED)
        self.training_note.hide()
        self.statusBar().addPermanentWidget(self.training_note)
        self.trainer.started.connect(self._training_started)
        self.trainer.state_changed.connect(self._training_state)
        self.trainer.finished.connect(self._training_finished)
        self.train_panel.message.connect(self.statusBar().showMessage)
        self.train_panel.start_allowed.connect(self._start_allowed)
        self.train_panel.app_settings = self._settings
        self.train_panel.wrong_chosen.connect(self.open_wrong_image)
        self.train_dock.visibilityChanged.connect(
            lambda visible: visible and QTimer.singleShot(0, self, self._train_panel_seen))
        self.activations.unit_picked.connect(
            lambda node, channel, unit: self.run_panel.show_unit(node, unit))
        self.run_panel.message.connect(self.statusBar().showMessage)
        self.runner.finished.connect(self._run_finished)
        self.runner.image_changed.connect(self._show_activations)
        self.view.files_dropped.connect(self.open_dropped)
        self.setAcceptDrops(True)
        self.palette.add_requested.connect(self.add_after_selection)
        self.view.layer_dropped.connect(self.add_at)
        self._maps_for: str | None = None
        self._follow_selection = QTimer(self, singleShot=True, interval=0)
        self._follow_selection.timeout.connect(self._show_maps)
        self.scene.selectionChanged.connect(self._selection_changed)
        self.document.refreshed.connect(self.inspector.refresh)
        self.document.design_replaced.connect(self._selection_changed)
        self.scene.hint.connect(self._show_hint)
        self.summary.node_clicked.connect(self.scene.select_node)
        self.problems.node_clicked.connect(self.scene.select_node)
        self.document.setParent(self)
        self.document.refreshed.connect(self._after_change)
        self.document.design_replaced.connect(self._after_change)
        self.document.design_replaced.connect(settle_memory)
        self.document.path_changed.connect(self._update_title)
        self.document.undo_stack.cleanChanged.connect(self._update_title)
        self.autosaver = Autosaver(self.document)
        self.autosave_warning = QLabel("⚠ Autosave failing")
        self.autosave_warning.setStyleSheet("color: #c82020")
        self.autosave_warning.hide()
        self.statusBar().addPermanentWidget(self.autosave_warning)
        self.autosaver.problem.connect(self._autosave_problem)
        self._closed = False
        self._focus_state: QByteArray | None = None  # the docks before the maps were focused
        self._maps_grown = False  # the maps were given room once (see _give_maps_room)
        self._saved_fingerprint: tuple | None = None  # the design as last saved or opened
        self.document.design_replaced.connect(self._remember_saved_state)
        self.document.path_changed.connect(self._remember_saved_state)
        self.activations.maps_shown.connect(self._give_maps_room)
        self._build_actions()
        # in sight while maps are shown: the way to give them the canvas's room
        self.maps_button = QToolButton()
        self.maps_button.setDefaultAction(self.focus_maps_action)
        self.maps_button.setAutoRaise(True)
        self.maps_button.hide()
        self.statusBar().addPermanentWidget(self.maps_button)
        self.resize(1280, 760)
        self.arrange_docks()
        self._after_change()
        self._update_title()
        self._remember_saved_state()
        settle_memory()

    # ------------------------------------------------------------------ window and docks

    def arrange_docks(self, size: QSize | None = None) -> DockSizes:
        """The default arrangement for the window's size (or ``size``): palette on the left,
        inspector above the Run panel on the right, the tables below, the canvas the rest."""
        size = size or self.size()
        sizes = dock_sizes(size, self.palette.preferred_width(), self._right_width())
        self.resizeDocks([self.summary_dock], [sizes.bottom], Qt.Orientation.Vertical)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [sizes.palette, sizes.right],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.inspector_dock, self.run_dock],
                         [sizes.inspector, max(200, size.height() - sizes.inspector)],
                         Qt.Orientation.Vertical)
        return sizes

    def _right_width(self) -> int:
        """What the right column needs: the Run panel's controls whole, beside a scroll bar."""
        scroll = self.run_dock.widget()
        bar = scroll.verticalScrollBar().sizeHint().width() if isinstance(scroll, QScrollArea) else 0
        return self.run_panel.minimumSizeHint().width() + bar + 12

    def place_on_screen(self, screen: QScreen | None = None) -> None:
        """Size and place the window before it is first shown: as it was left (clamped to this
        screen) if remembered, else to fit the screen (``initial_geometry``)."""
        screen = screen or self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        available = screen.availableGeometry()
        settings = self._settings()
        saved = settings.value("window/geometry")
        maximized = _as_bool(settings.value("window/maximized", False))
        rect = saved if isinstance(saved, QRect) and saved.isValid() else None
        if rect is not None:
            fitted = clamp_geometry(rect, available)
            self.setGeometry(fitted)
            state = settings.value("window/docks")
            if fitted.size() == rect.size() and isinstance(state, QByteArray):
                self.restoreState(state)  # the docks as they were, when the window is too
            else:
                self.arrange_docks(fitted.size())
        else:
            rect, maximized = initial_geometry(available)
            self.setGeometry(rect)
            self.arrange_docks(rect.size())
        if maximized:
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    def remember_window(self) -> None:
        """Keep the window's geometry and docks for the next start (on closing)."""
        settings = self._settings()
        maximized = self.isMaximized()
        rect = self.normalGeometry() if maximized else self.geometry()
        settings.setValue("window/geometry", rect)
        settings.setValue("window/maximized", maximized)
        settings.setValue("window/docks", self._focus_state or self.saveState())

    def maps_focused(self) -> bool:
        return self._focus_state is not None

    def focus_maps(self, on: bool) -> None:
        """Give the activation maps the canvas's room (on), or put the docks back (off): the
        palette and the other tables hide, the maps take all but a strip of the canvas."""
        if on == self.maps_focused():
            self.focus_maps_action.setChecked(on)
            return
        if on:
            self._focus_state = self.saveState()
            self.palette_dock.hide()
            self.activations_dock.show()
            self.activations_dock.raise_()
            self.resizeDocks([self.activations_dock], [focus_height(self.size())],
                             Qt.Orientation.Vertical)
        else:
            state, self._focus_state = self._focus_state, None
            self.restoreState(state)
        self.focus_maps_action.setChecked(on)

    def _give_maps_room(self, node_id: str = "", count: int = 0) -> None:
        """A layer's maps are shown: the first time in this window, the docks below grow to
        ``MAPS_SHARE`` of the window's height, so a grid of maps isn't a strip. The user's own
        resizing is kept after that."""
        if self._maps_grown or self.maps_focused():
            return
        self._maps_grown = True
        # once the dock raised just now has its place in the layout
        QTimer.singleShot(0, self._grow_maps)

    def _grow_maps(self) -> None:
        want = round(self.height() * MAPS_SHARE)
        if self.activations_dock.isVisible() and self.activations_dock.height() < want:
            self.resizeDocks([self.activations_dock], [want], Qt.Orientation.Vertical)

    def _dock(self, title: str, widget, name: str,
              area: Qt.DockWidgetArea = Qt.DockWidgetArea.BottomDockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # ------------------------------------------------------------------ actions

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&New…", self.new_dialog, keys.New,
                     "Start a blank design or one from the template gallery")
        self._action(file_menu, "&Open…", self.open_dialog, keys.Open,
                     "Open a design file, or an ONNX model with its weights")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._action(file_menu, "&Import ONNX model…", self.import_dialog, "Ctrl+Shift+O",
                     "Read an ONNX model (.onnx) as a design; the Run panel uses its weights")
        self._action(file_menu, "&Save", self.save, keys.Save, "Save the design")
        self._action(file_menu, "Save &as…", self.save_as, keys.SaveAs, "Save under a new name")
        self._action(file_menu, "Export &diagram…", self.export_diagram_dialog, None,
                     "Save the canvas's drawing of the whole design as SVG, PDF or PNG")
        self._action(file_menu, "Export as &PyTorch code…", self.export_code_dialog, None,
                     "Write the design as a PyTorch module (.py)")
        self._action(file_menu, "Export as &ONNX…", self.export_onnx_dialog, None,
                     "Write the design and the Run panel's weights as an ONNX model (.onnx)")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, keys.Quit)
        edit = bar.addMenu("&Edit")
        # Undo and Redo go through the edit lock: while the design trains, undoing an edit asks
        # to stop the training first, as the edit itself would
        stack = self.document.undo_stack
        undo = QAction("&Undo", self)
        undo.setShortcut(keys.Undo)
        undo.setEnabled(stack.canUndo())
        stack.canUndoChanged.connect(undo.setEnabled)
        stack.undoTextChanged.connect(lambda text: undo.setText(f"&Undo {text}".strip()))
        undo.triggered.connect(self.edit_lock.undo)
        redo = QAction("&Redo", self)
        redo.setEnabled(stack.canRedo())
        stack.canRedoChanged.connect(redo.setEnabled)
        stack.redoTextChanged.connect(lambda text: redo.setText(f"&Redo {text}".strip()))
        redo.triggered.connect(self.edit_lock.redo)
        self.undo_action, self.redo_action = undo, redo
        bindings = QKeySequence.keyBindings(keys.Redo)
        for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):  # both habits work on every platform
            if QKeySequence(extra) not in bindings:
                bindings.append(QKeySequence(extra))
        redo.setShortcuts(bindings)
        # after the stack's own handler: has the user undone (or redone) back to the saved design?
        undo.triggered.connect(self._check_saved_state)
        redo.triggered.connect(self._check_saved_state)
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        self._action(edit, "Cu&t", self.cut, keys.Cut, "Copy the selected layers, then delete them")
        self._action(edit, "&Copy", self.copy, keys.Copy,
                     "Copy the selected layers and the connections among them")
        self._action(edit, "&Paste", self.paste, keys.Paste,
                     "Paste layers (at the mouse pointer when it is over the canvas)")
        self._action(edit, "D&uplicate", self.duplicate, "Ctrl+D",
                     "Copy and paste the selected layers in one go")
        self._action(edit, "&Delete", self.delete_selection, keys.Delete,
                     "Delete the selected layers and connections")
        self._action(edit, "Re&name…", self.rename_selected, "F2",
                     "Give the selected layer a new id (in the inspector)")
        self._action(edit, "Select &all", self.select_all, keys.SelectAll)
        edit.addSeparator()
        self._action(edit, "&Find a layer type…", self.find_layer_type, keys.Find,
                     "Type a layer type's name in the Layers search box; Enter adds it")
        view = bar.addMenu("&View")
        self._action(view, "Zoom &in", lambda: self.view.zoom(1.25), keys.ZoomIn)
        self._action(view, "Zoom &out", lambda: self.view.zoom(0.8), keys.ZoomOut)
        self._action(view, "&Fit to window", self.view.fit_all, "Ctrl+0",
                     "Show the whole design, however small")
        self._action(view, "&Readable size", self.view.show_top, "Ctrl+1",
                     "Zoom so that card text is readable, showing the top of the design")
        self._action(view, "Automatic &layout", self.auto_layout, "Ctrl+L",
                     "Arrange the layers top-down (undoable)")
        overview = self._action(view, "&Overview", self.view.minimap.set_wanted, None,
                                "A small map of the whole design in the canvas's corner, "
                                "while the design doesn't fit in the window")
        overview.setCheckable(True)
        overview.setChecked(True)
        self.overview_action = overview
        view.addSeparator()
        self.focus_maps_action = self._action(
            view, "&Maps large", self.focus_maps, "Ctrl+M",
            "Give the activation maps the canvas's room (again to put the panels back)")
        self.focus_maps_action.setCheckable(True)
        self.focus_maps_action.setToolTip("Maps large (Ctrl+M): give the activation maps the "
                                          "canvas's room; again to put the panels back")
        view.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.summary_dock, self.problems_dock,
                     self.run_dock, self.activations_dock, self.train_dock):
            view.addAction(dock.toggleViewAction())
        run = bar.addMenu("&Run")
        self._action(run, "&Run on the image", self.runner.run, "F5",
                     "Run the design on the image in the Run panel")
        cancel = self._action(run, "&Cancel", self.runner.cancel, "Ctrl+.",
                              "Stop the run in progress")
        cancel.setEnabled(False)
        self.runner.busy_changed.connect(cancel.setEnabled)
        run.addSeparator()
        self._action(run, "Open &image…", self.open_image_dialog, "Ctrl+I",
                     "Load an image to run the design on")
        self._action(run, "&Load weights…", self.run_panel.load_weights_dialog, None,
                     "Use weights from a file (.npz)")
        self._action(run, "&Save weights…", self.run_panel.save_weights_dialog, None,
                     "Save the weights of the last run (.npz)")
        train = bar.addMenu("&Train")
        self._action(train, "Train &panel", self.show_train_panel, "Ctrl+T",
                     "Show the Train panel: the data, the optimizer, the live curves")
        self.start_training_action = self._action(
            train, "&Start training", self.start_training, "F6",
            "Train the design on the data chosen in the Train panel")
        self.pause_training_action = self._action(
            train, "&Pause / resume training", self.train_panel.toggle_pause, "F7",
            "Pause the training after the current batch, or go on")
        self.stop_training_action = self._action(
            train, "S&top training", lambda: self.trainer.stop(), "Shift+F6",
            "Stop after the current batch, keeping what was learnt")
        train.addSeparator()
        self._action(train, "Save &trained weights…", self.train_panel.save_weights_dialog, None,
                     "Save the weights of the last training (.npz)")
        self._training_state(self.trainer.state)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Getting started", self.show_getting_started, keys.HelpContents,
                     "Build the lecture's first example in five steps")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/",
                     "Every keyboard shortcut, and what the mouse does")
        help_menu.addSeparator()
        self._action(help_menu, "&About CNN Designer", lambda: show_about(self), None,
                     "The version")
        self._update_recent_menu()

    # ------------------------------------------------------------------ training

    def show_train_panel(self) -> None:
        self.train_dock.show()
        self.train_dock.raise_()

    def _train_panel_seen(self) -> None:
        """The Train tab in view (a tab behind another is "visible" too: its region is empty)."""
        if not self.train_panel.visibleRegion().isEmpty():
            self.train_panel.offer_data()

    def start_training(self) -> bool:
        self.show_train_panel()
        return self.train_panel.start()

    def _training_started(self, settings) -> None:
        self._training_design = self.document.design
        self.show_train_panel()
        if not self._train_grown and not self.maps_focused():
            self._train_grown = True  # once: the user's own resizing is kept after that
            QTimer.singleShot(0, self._grow_train)

    def _grow_train(self) -> None:
        want = round(self.height() * TRAIN_SHARE)
        if self.train_dock.isVisible() and self.train_dock.height() < want:
            self.resizeDocks([self.train_dock], [want], Qt.Orientation.Vertical)

    def _start_allowed(self, on: bool) -> None:
        action = getattr(self, "start_training_action", None)
        if action is not None:
            action.setEnabled(on)

    def _training_state(self, state: str) -> None:
        training = self.trainer.training
        self.training_note.setVisible(training)
        self.start_training_action.setEnabled(self.train_panel.start_button.isEnabled())
        self.pause_training_action.setEnabled(state in ("running", "paused"))
        self.stop_training_action.setEnabled(training and state != "stopping")

    def _training_finished(self, result) -> None:
        """A run ended (finished or stopped): its weights become the Run panel's, and the design
        takes the data's class names (one undo step), if it is still the design trained."""
        if self.document.design is not self._training_design:
            self.statusBar().showMessage(
                "The training of the previous design stopped; its weights are kept in the Train "
                "panel (Save weights…)", 8000)
            return
        label = weights_label(result.source, len(result.history.rows))
        try:
            hand_weights_to_run(self.runner, result.weights, label,
                                trained_note(result.source, result.history.rows,
                                             result.history.partial))
            # the run on the new weights updates the Run panel behind the Train tab: the final
            # curves stay in front
            self._quiet_run = self.runner.busy
        except Exception as exc:  # a file the Run panel can't take: said, not lost
            self.statusBar().showMessage(f"Can't hand the trained weights to the Run panel: "
                                         f"{exc}", 10000)
        classes = list(result.classes)
        analysis = self.document.analysis
        out = analysis.output if analysis.valid else None
        shape = analysis.info(out).shape if out is not None else None
        if (shape is not None and tuple(shape) == (len(classes),)
                and self.document.design.classes != tuple(classes)):
            self.document.push(SetClassesCommand(self.document.design, classes,
                                                 "Name the classes after the training data"))

    def open_wrong_image(self, wrong) -> None:
        """A misclassified validation image clicked in the Train panel: run the design on it."""
        self._quiet_run = False
        classes = self.trainer.preview.classes if self.trainer.preview is not None else []
        true = classes[wrong.true] if wrong.true < len(classes) else str(wrong.true)
        self.runner.set_image(InputImage(wrong.pixels.copy(),
                                         f"validation image {wrong.index} ({true})",
                                         class_name=true,
                                         data=getattr(self.trainer.preview, "source", None)))
        self.run_dock.show()
        self.run_dock.raise_()
        self.statusBar().showMessage(f"Validation image {wrong.index} (a {true}) is in the Run "
                                     f"panel", 5000)

    # ------------------------------------------------------------------ help

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_getting_started(self) -> GettingStartedDialog:
        if getattr(self, "_getting_started", None) is None:
            self._getting_started = GettingStartedDialog(self)
        self._getting_started.show()
        self._getting_started.raise_()
        return self._getting_started

    def find_layer_type(self) -> None:
        """Ctrl+F: the Layers search box, ready to type in."""
        self.palette_dock.show()
        self.palette_dock.raise_()
        self.palette.focus_search()

    # ------------------------------------------------------------------ state shown

    def _after_change(self, changed: set[str] | None = None) -> None:
        self.summary.reload(changed if isinstance(changed, set) else None)
        self.problems.reload()
        self._update_status()

    def _update_status(self) -> None:
        """The status bar: layers, totals, and whether the design is valid."""
        errors, warnings = self.problems.counts()
        t = self.document.analysis.totals()
        state = ("valid" if self.document.analysis.valid else
                 f"{errors} error{'s' if errors != 1 else ''}")
        if not len(self.document.design):
            state = "empty: drag an Input from the Layers panel onto the canvas to start"
        if warnings:
            state += f", {warnings} warning{'s' if warnings != 1 else ''}"
        title = f"Problems ({errors + warnings})"
        if self.problems_dock.windowTitle() != title:  # a new title re-lays out the dock's tabs
            self.problems_dock.setWindowTitle(title)
        self.statusBar().showMessage(
            f"{len(self.document.design)} layers  ·  {t['params']:,} parameters  ·  "
            f"{t['macs'] / 1e6:,.1f} M mult-adds  ·  {state}")

    def _show_hint(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text)
        else:
            self._update_status()

    def _autosave_problem(self, text: str) -> None:
        """Autosave failed (said once, and kept in sight until it works again) or works again."""
        self.autosave_warning.setToolTip(text)
        self.autosave_warning.setVisible(bool(text))
        if text:
            self.statusBar().showMessage(text, 15000)

    def _update_title(self, clean: object = None) -> None:
        self.setWindowTitle(f"{self.document.title}[*] — CNN Designer")
        self.setWindowModified(self.document.modified)

    def _remember_saved_state(self) -> None:
        """The design as it is in its file (or as it was opened), while the undo stack says so:
        after a save, an open, a new design."""
        if self.document.undo_stack.isClean():
            self._saved_fingerprint = _fingerprint(self.document.design)

    def _check_saved_state(self, *args) -> None:
        """After the user's Undo and Redo: a design that is back as it was saved is not
        modified, even where the stack's clean index can't say so (the saved state was reached
        by an edit made again after undoing past the save, or by a move back that merged with
        the move away); the stack's clean state moves here, and the title loses its mark."""
        stack = self.document.undo_stack
        if stack.isClean() or self._saved_fingerprint is None:
            return
        if _fingerprint(self.document.design) == self._saved_fingerprint:
            stack.setClean()

    # ------------------------------------------------------------------ editing

    def _new_node(self, type_name: str, position: tuple[float, float]) -> Node:
        node_id = self.document.design.unique_id(ID_STEMS.get(type_name, type_name.lower()))
        return Node(node_id, type_name, default_params(type_name), position)

    def auto_layout(self) -> None:
        """Ctrl+L: lay the design out (one undo step), then show its top at a readable zoom."""
        self.document.auto_layout()
        self.view.show_top()

    def add_at(self, type_name: str, position) -> None:
        """A palette entry dropped on the canvas: a new layer there (one undo step); dropped on a
        connection, it is inserted into it."""
        node = self._new_node(type_name, (round(position.x(), 1), round(position.y(), 1)))
        edge = self.scene.edge_at(position)
        if edge is not None and type_accepts_input(type_name):
            self.document.insert_on_edge(node, edge)
        else:
            self.document.add_node(node)
        # selected where it was dropped, in sight already: the view doesn't move (select_node
        # would scroll a card dropped near the edge into the middle, and the next drag miss)
        self.scene.clearSelection()
        item = self.scene.nodes.get(node.id)
        if item is not None:
            item.setSelected(True)

    def add_after_selection(self, type_name: str) -> None:
        """Double-click in the palette: a new layer below the selected one, connected to it."""
        selected = self.scene.selected_node_ids()
        after = selected[-1] if len(selected) == 1 else None
        if after is not None:
            x, y = self.document.design.node(after).position or (0.0, 0.0)
            position = (x, y + 130.0)
        else:
            rect = self.scene.itemsBoundingRect()
            position = (rect.center().x(), rect.bottom() + 60.0) if self.scene.nodes else (0.0, 0.0)
        node = self._new_node(type_name, position)
        connect = after if after is not None and type_name != "Input" else None
        self.document.add_node(node, after=connect)
        self.scene.select_node(node.id)

    def _selection_changed(self) -> None:
        selected = self.scene.selected_node_ids()
        node = selected[0] if len(selected) == 1 else None
        self.inspector.show_node(node)
        if node is not None or not selected:
            # the maps follow on the next turn of the event loop: the card and the inspector are
            # painted first, and a rubber band sweeping over cards redraws the maps once
            self._maps_for = node
            self._follow_selection.start()

    def _show_maps(self) -> None:
        self.activations.show_node(self._maps_for)

    # ------------------------------------------------------------------ running on images

    def _run_finished(self, result) -> None:
        quiet, self._quiet_run = self._quiet_run, False
        if quiet and not self.train_panel.visibleRegion().isEmpty():
            self.maps_button.show()
        else:
            self._show_activations()
        if result.nonfinite is not None:  # the numbers went bad: say where, until the next edit
            message = result.nonfinite.message
            self.statusBar().showMessage(f"⚠ {message[:1].upper()}{message[1:]}")
        # show something right away: the first layer's maps, its card selected so it says whose
        # maps these are; a moment later, once the window has painted the panels' own update, so
        # that the two are short stalls apart rather than one long one
        # (with the window as context: a window closed in between gets no call)
        QTimer.singleShot(FOLLOW_UP_MS, self, lambda: self._select_first_map(result))

    def _select_first_map(self, result) -> None:
        if result is self.runner.result and not self.scene.selected_node_ids():
            first = _first_map(result)
            if first is not None and first in self.document.design:
                self.scene.select_node(first)
        # what the run left behind (its network, the views' new objects) is long-lived too:
        # keep the collector from scanning it in a full collection during the next run (without
        # collecting first, which would itself stall; settle_memory cleans up on the next design)
        gc.freeze()

    def _show_activations(self) -> None:
        """Bring the image and maps into view (when an image is chosen: the run then ends
        without re-laying out the window)."""
        if not self.activations_dock.isVisible() or self.activations.visibleRegion().isEmpty():
            self.activations_dock.show()
            self.activations_dock.raise_()
        self.maps_button.show()
        self._give_maps_room()

    def open_image_dialog(self) -> None:
        self.run_dock.show()
        self.run_panel.open_image_dialog()

    def open_dropped(self, paths: list[str]) -> None:
        """Files dropped on the window: an image becomes the input, a .json design opens, an
        .onnx model is imported."""
        images = {f".{f}" for f in supported_formats()}
        for path in paths:
            suffix = Path(path).suffix.lower()
            if suffix in (".json", ".onnx"):
                if self.maybe_save():
                    self.open_path(path)
                return
            if suffix in images:
                self.run_dock.show()
                self.run_dock.raise_()
                if self.run_panel.load_image(path):
                    self.statusBar().showMessage(f"Image {Path(path).name} loaded", 4000)
                return
        self.statusBar().showMessage(
            "Drop an image (" + ", ".join(sorted(supported_formats())) + ") to run the design on "
            "it, or a .json design or .onnx model to open it", 8000)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_dropped(paths)

    # ------------------------------------------------------------------ clipboard

    def copy(self) -> bool:
        """Put the selected layers (and the edges among them) on the clipboard as a design file,
        so they paste here, in another window, or into a text editor as JSON."""
        selected = self.scene.selected_node_ids()
        if not selected:
            self.statusBar().showMessage("Select the layers to copy first", 4000)
            return False
        # plain text (the contract's JSON): a QMimeData handed to the clipboard from Python
        # crashes the interpreter at exit when the clipboard still owns it
        QGuiApplication.clipboard().setText(design_to_json(extract(self.document.design,
                                                                   selected)))
        self.statusBar().showMessage(f"Copied {len(selected)} layer(s)", 3000)
        return True

    def cut(self) -> None:
        if self.copy():
            self.delete_selection()

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        if not text.strip():
            self.statusBar().showMessage("Nothing to paste: copy some layers first", 4000)
            return
        try:
            fragment = design_from_json(text, "the clipboard")
        except DesignError as exc:
            self.statusBar().showMessage(f"Can't paste: {exc}", 8000)
            return
        self._place(fragment, "Paste", self._paste_target(fragment))

    def duplicate(self) -> None:
        selected = self.scene.selected_node_ids()
        if selected:
            self._place(extract(self.document.design, selected), "Duplicate", (40.0, 40.0))

    def _paste_target(self, fragment) -> tuple[float, float]:
        """Under the mouse pointer if it is over the canvas, else beside the originals."""
        corner = top_left(fragment)
        viewport = self.view.viewport()
        local = viewport.mapFromGlobal(QCursor.pos())
        if corner is None or not viewport.rect().contains(local):
            return (40.0, 40.0)
        where = self.view.mapToScene(local)
        return (where.x() - corner[0], where.y() - corner[1])

    def _place(self, fragment, text: str, offset: tuple[float, float]) -> None:
        nodes, edges = placed(fragment, self.document.design, offset)
        for node in nodes:
            if node.position is None:
                node.position = offset
        try:
            self.document.paste(nodes, edges, text)
        except GraphError as exc:
            self.statusBar().showMessage(f"Can't {text.lower()}: {exc}", 8000)
            return
        self.scene.clearSelection()
        for node in nodes:
            self.scene.nodes[node.id].setSelected(True)

    def rename_selected(self) -> None:
        selected = self.scene.selected_node_ids()
        if len(selected) != 1:
            self.statusBar().showMessage("Select one layer to rename", 4000)
            return
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        self.inspector.id_edit.setFocus()
        self.inspector.id_edit.selectAll()

    def delete_selection(self) -> None:
        self.document.delete(self.scene.selected_node_ids(), self.scene.selected_edges())

    def select_all(self) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.maybe_save():
            if not self._closed:
                # the scene clears its selection while it is torn down: stop listening first
                self.scene.selectionChanged.disconnect(self._selection_changed)
                self._closed = True
            self.autosaver.discard()  # a clean exit: nothing to recover next time
            self.remember_window()
            self.trainer.shutdown()
            self.runner.shutdown()
            self.activations.tiler.shutdown()
            event.accept()
        else:
            event.ignore()


    def offer_recovery(self) -> bool:
        """After a crash or kill: offer the newest autosaved design of an instance that is gone
        back. True if recovered. Work of instances still running is never offered; the copy
        offered stays locked by this instance until the question is answered."""
        items = find_recoverable()
        if not items:
            return False
        item = items[0]
        for other in items[1:]:  # offered at a later start
            other.release()
        try:
            return self._ask_recovery(item, len(items) - 1)
        finally:
            item.release()

    def _ask_recovery(self, item, others: int) -> bool:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.saved_at))
        more = (f"\n\n{others} more unsaved design{'s are' if others != 1 else ' is'} offered "
                f"at the next start." if others else "")
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                          f"CNN Designer was closed without saving “{item.name}” "
                          f"(last autosaved {when}). Recover it?{more}", parent=self)
        recover_button = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard_button = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is recover_button:
            try:
                recover(self.document, item, self.autosaver)
            except DesignError as exc:
                self._error("Can't recover", str(exc))
                return False
            self._saved_fingerprint = None  # recovered work matches no saved file
            self.view.show_top()
            return True
        if box.clickedButton() is discard_button:
            item.discard()
        return False


def run_app(path: str | None = None) -> int:
    """Open the desktop app (on ``path`` if given). An error nothing foresaw becomes a message
    (designer.app.guard), and the app keeps running."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_application(app)
    windows: list[MainWindow] = []
    guard = install_guard(lambda: windows[0] if windows else None)
    try:
        window = MainWindow()
        windows.append(window)
        window.place_on_screen()
        window.show()
        if not window.offer_recovery():
            if path is not None:
                window.open_path(path)
            else:
                window.view.show_top()
        return app.exec()
    finally:
        guard.uninstall()


def _fingerprint(design: Design) -> tuple:
    """Everything a design file holds of a design, cheaply (a 1,000-node design in well under a
    millisecond): its name, nodes (id, type, parameters, position) in order, and edges."""
    return (design.name,
            tuple((n.id, n.type, tuple(sorted(n.params.items(), key=lambda kv: kv[0])),
                   tuple(n.position) if n.position is not None else None)
                  for n in design.nodes),
            tuple(design.edges))


def _as_bool(value: object) -> bool:
    """A QSettings flag as read back (INI files give "true"/"false")."""
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _first_map(result) -> str | None:
    """The first layer after the Input with image-shaped output, to show after a first run."""
    for node_id in result.analysis.order:
        info = result.analysis.info(node_id)
        if info.type != "Input" and info.shape is not None and len(info.shape) == 3:
            return node_id
    return None
