"""Dock panels: the torchinfo-like summary table and the list of problems (with their fixes)."""
from __future__ import annotations

import csv
import io
import time
from typing import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QContextMenuEvent, QFontMetrics, QGuiApplication, QKeySequence,
                           QShortcut)
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QMenu, QPushButton, QSizePolicy,
                               QStyle, QTableView, QVBoxLayout, QWidget)

from designer.app.commands import DisconnectCommand
from designer.app.panels import roles
from designer.app.document import Document
from designer.core.design import Node
from designer.core.fixes import file_value, new_node_id
from designer.core.problems import ERROR, Fix, InsertLayer, Problem, RemoveEdge, SetParam
from designer.core.summary import TABLE_HEADER, format_table, table_row

RIGHT = {3, 4, 6, 7}
_ERROR_TEXT, _WARNING_TEXT = QColor("#d32f2f"), QColor("#b45309")
#: fitting columns to their contents looks at this many rows (all of them would cost ~100 ms on a
#: 1,000-layer design; the widest cells are nearly always among the first rows)
RESIZE_PRECISION = 200


def _text_widths(metrics: QFontMetrics, most: int = 4096) -> Callable[[str], int]:
    """``metrics.horizontalAdvance`` remembering its answers (cells repeat: "--", "ReLU",
    "[64, 56, 56]"), forgetting them all past ``most``."""
    known: dict[str, int] = {}
    advance = metrics.horizontalAdvance

    def width(text: str) -> int:
        found = known.get(text)
        if found is None:
            if len(known) >= most:
                known.clear()
            found = known[text] = advance(text)
        return found
    return width


class SummaryModel(QAbstractTableModel):
    """One row per node in topological order. An edit that keeps the order rewrites only the rows
    of the nodes whose figures changed; anything else resets the table."""

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.ids: list[str] = []
        self._rows: list[list[str] | None] = []
        #: measures a cell's text in pixels (set by the view's panel); each row is measured once
        #: when it is formatted, i.e. when it is first shown after a change
        self.measure: Callable[[str], int] | None = None
        self.widest = [0] * len(TABLE_HEADER)  # the widest text measured in each column
        self.grew: Callable[[], None] | None = None  # called when a column's widest text grows
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self.ids = self.document.analysis.order
        self._row_of = {node_id: row for row, node_id in enumerate(self.ids)}
        self._rows = [None] * len(self.ids)
        self.endResetModel()

    def row(self, index: int) -> list[str]:
        """A row's cells, formatted on first use (a view asks only for the rows it shows)."""
        cells = self._rows[index]
        if cells is None:
            cells = self._rows[index] = table_row(self.document.analysis.info(self.ids[index]))
            if self.measure is not None:
                widest, grown = self.widest, False
                for column, text in enumerate(cells):
                    width = self.measure(text)
                    if width > widest[column]:
                        widest[column] = width
                        grown = True
                if grown and self.grew is not None:
                    self.grew()
        return cells

    @property
    def rows(self) -> list[list[str]]:
        return [self.row(i) for i in range(len(self.ids))]

    def update(self, changed: set[str] | None = None) -> bool:
        """Follow an edit; True if the table was reset (rows added, removed or reordered)."""
        analysis = self.document.analysis
        if changed is None or analysis.order != self.ids:
            self.reload()
            return True
        if len(changed) >= len(self.ids):  # every row (an edit at the top): one signal
            self._rows = [None] * len(self.ids)
            if self.ids:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(self.ids) - 1, len(TABLE_HEADER) - 1))
            return False
        position = self._row_of
        rows = sorted(position[n] for n in changed if n in position)
        for row in rows:
            self._rows[row] = None  # formatted again when shown (or copied)
        # one signal per run of consecutive rows
        start = 0
        while start < len(rows):
            end = start
            while end + 1 < len(rows) and rows[end + 1] == rows[end] + 1:
                end += 1
            self.dataChanged.emit(self.index(rows[start], 0),
                                  self.index(rows[end], len(TABLE_HEADER) - 1))
            start = end + 1
        return False

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(TABLE_HEADER)

    def data(self, index: QModelIndex, role: int = roles.DISPLAY):
        if role == roles.DISPLAY:
            return self.row(index.row())[index.column()] if index.isValid() else None
        if role == roles.ALIGNMENT:
            return roles.ALIGN_RIGHT if index.column() in RIGHT else None
        if role == roles.FOREGROUND and index.column() == 0 and index.isValid():
            text = self.row(index.row())[0]
            if text.endswith("✗"):
                return _ERROR_TEXT
            if text.endswith("⚠"):
                return _WARNING_TEXT
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return TABLE_HEADER[section]
        return None


class SummaryPanel(QWidget):
    """Every layer's output shape, parameters, mult-adds and receptive field, with totals."""

    node_clicked = Signal(str)

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.model = SummaryModel(document)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(RESIZE_PRECISION)
        # cells wider than their column widen it, once the rows shown have been formatted
        self._padding = 2 * (self.table.style().pixelMetric(
            QStyle.PixelMetric.PM_FocusFrameHMargin) + 1) + 4  # cell margins and a grid line
        self._grow = QTimer(self, singleShot=True, interval=0)
        self._grow.timeout.connect(self._grow_columns)
        self.model.measure = _text_widths(QFontMetrics(self.table.font()))
        self.model.grew = self._grow.start
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.clicked.connect(lambda index: self.node_clicked.emit(self.model.ids[index.row()]))
        # its text changes with every edit: a read-only line edit, unlike a label, doesn't ask the
        # window to lay itself out again each time (its size doesn't depend on its text)
        self.totals = QLineEdit()
        self.totals.setReadOnly(True)
        self.totals.setFrame(False)
        self.totals.setStyleSheet("background: transparent")
        self.totals.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        copy_text = QPushButton("Copy as text")
        copy_text.clicked.connect(self.copy_text)
        copy_csv = QPushButton("Copy as CSV")
        copy_csv.clicked.connect(self.copy_csv)
        bar = QHBoxLayout()
        bar.addWidget(self.totals, 1)
        bar.addWidget(copy_text)
        bar.addWidget(copy_csv)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addLayout(bar)
        self.reload()

    def reload(self, changed: set[str] | None = None) -> None:
        """Follow an edit (``changed``: the nodes whose figures changed; None: everything)."""
        if self.model.update(changed):
            if changed is None:  # a new design; edits keep the user's widths
                self.model.widest = [0] * len(TABLE_HEADER)
                self.table.resizeColumnsToContents()
        t = self.document.analysis.totals()
        memory = (t["input_bytes"] + t["activation_bytes"] + t["param_bytes"]) / 1e6
        text = (f"Total params: {t['params']:,}   ·   Mult-adds: {t['macs']:,}   ·   "
                f"Memory (forward, float32): {memory:,.2f} MB")
        if text != self.totals.text():
            self.totals.setText(text)
            self.totals.setToolTip(text)  # the whole line, where the panel is too narrow for it
            self.totals.setCursorPosition(0)  # its start shows first

    def _grow_columns(self) -> None:
        """Widen every column whose widest text measured so far no longer fits (a design started
        empty has columns as wide as their titles; an id, a shape or a count added later must
        not show as ``inp…``). Only the rows shown are formatted and measured, so this costs
        nothing on the rows of a 1,000-layer design out of sight; a column the user made wider
        is left so."""
        header = self.table.horizontalHeader()
        for column, width in enumerate(self.model.widest):
            wanted = width + self._padding
            if header.sectionSize(column) < wanted:
                header.resizeSection(column, wanted)

    def as_text(self) -> str:
        return format_table(self.document.design, self.document.analysis)

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(TABLE_HEADER)
        for row in self.model.rows:
            writer.writerow([cell.rstrip(" ✗⚠") if i == 0 else cell.replace(",", "")
                             if i in (3, 4) else cell for i, cell in enumerate(row)])
        return out.getvalue()

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.as_text())

    def copy_csv(self) -> None:
        QGuiApplication.clipboard().setText(self.as_csv())


def apply_fix(document: Document, node_id: str, fix: Fix) -> None:
    """Carry out a fix's edits on the document as one undo step (undo restores the design
    exactly, redo applies the fix again)."""
    stack = document.undo_stack
    stack.beginMacro(f"Fix {node_id}: {fix.label}")
    try:
        for edit in fix.edits:
            if isinstance(edit, SetParam):
                document.set_param(edit.node_id, edit.name, file_value(edit.value))
            elif isinstance(edit, InsertLayer):
                node = Node(new_node_id(document.design, edit.type), edit.type,
                            {name: file_value(value) for name, value in edit.params})
                document.insert_on_edge(node, (edit.source, edit.target))
            elif isinstance(edit, RemoveEdge):
                document.push(DisconnectCommand(document.design, edit.source, edit.target))
    finally:
        stack.endMacro()


#: how long one round of checking fixes may take before the panel lets the app breathe (the
#: rest is checked in further rounds, as soon as the event loop is idle)
CHECK_SLICE_SECONDS = 0.025


def fix_list(fixes: tuple[Fix, ...]) -> str:
    """Fixes in a few words: ``set padding to 1  ·  set stride to 2``, and several values of one
    parameter together: ``set groups to 1, 2, 4 or 8``."""
    first = fixes[0].label.rsplit(" to ", 1)[0] + " to "
    if len(fixes) > 1 and all(f.label.startswith(first) and f.label.startswith("set ")
                              and " " not in f.label[len(first):] for f in fixes):
        values = [f.label[len(first):] for f in fixes]
        return first + ", ".join(values[:-1]) + " or " + values[-1]
    return "  ·  ".join(f.label for f in fixes)


class _ProblemList(QListWidget):
    """The list itself: a context menu on its rows (mouse or the keyboard's menu key)."""

    menu_requested = Signal(int, QPoint)  # row, global position

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 (Qt's name)
        if event.reason() == QContextMenuEvent.Reason.Mouse:
            item = self.itemAt(event.pos())
            if item is not None:
                self.setCurrentItem(item)
            pos = event.globalPos()
        else:
            item = self.currentItem()
            pos = self.viewport().mapToGlobal(self.visualItemRect(item).bottomLeft()
                                              if item is not None else QPoint(0, 0))
        if item is not None:
            self.menu_requested.emit(self.row(item), pos)


class ProblemsPanel(QWidget):
    """Every error and warning; clicking one selects its node. A problem whose suggested fixes
    work (each is checked on a copy of the design first) says so on its row, and the selected
    one can be fixed with one click: *Apply fix* below the list, its context menu, or
    Ctrl+Enter; each fix is one undo step.

    Fixes are checked when the list shows their problem, a slice of time at a time: rows not
    checked yet show their message without suggestions until they are (a message never advises
    a fix that was not checked)."""

    node_clicked = Signal(str)

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.list = _ProblemList()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.itemClicked.connect(self._clicked)
        self.list.currentRowChanged.connect(self._show_fixes)
        self.list.menu_requested.connect(self._menu)
        self.fix_choice = QComboBox()
        self.fix_choice.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.fix_choice.setMinimumContentsLength(12)
        self.fix_choice.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.apply_button = QPushButton("Apply fix")
        self.apply_button.setToolTip("Apply the chosen fix to the selected problem "
                                     "(Ctrl+Enter in the list; Ctrl+Z undoes it)")
        self.apply_button.clicked.connect(lambda: self.apply_fix())
        self.fix_label = QLabel("Fix:")
        self.fix_label.setBuddy(self.fix_choice)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.fix_label)
        bar.addWidget(self.fix_choice, 1)
        bar.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.list, 1)
        layout.addLayout(bar)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self.list)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(lambda: self.apply_fix())
        self._rows: list[Problem | None] = []  # the problem on each row (None: design-wide)
        self._pending: list[int] = []  # rows whose fixes are not checked yet
        self._shown: tuple | None = None
        self._more = QTimer(self, singleShot=True, interval=0)
        self._more.timeout.connect(self._check_some)
        self.reload()

    # ------------------------------------------------------------------ the list's API

    def count(self) -> int:
        return self.list.count()

    def item(self, row: int) -> QListWidgetItem:
        return self.list.item(row)

    @property
    def itemClicked(self):  # noqa: N802 (the list's signal, as a QListWidget has it)
        return self.list.itemClicked

    # ------------------------------------------------------------------ following the design

    def reload(self) -> None:
        """Follow an edit: rebuild the list if the problems changed (most edits change none),
        and check the shown problems' fixes again (an edit anywhere may change whether a fix
        works)."""
        analysis = self.document.analysis
        problems = analysis.problems()
        design_problems = analysis.design_problems()
        current = (tuple(design_problems), tuple(problems))
        if current != self._shown:
            self._shown = current
            self._rebuild(design_problems, problems)
        elif not any(p is not None and p.advice is not None for p in self._rows):
            return
        self._pending = [row for row, p in enumerate(self._rows)
                         if p is not None and p.advice is not None]
        self._check_some()
        if self._pending:  # until their turn, rows checked before this edit advise nothing
            checker = self.document.analysis.fix_checker()
            for row in self._pending:
                problem = self._rows[row]
                self._word(row, problem, (), checker.text(problem, check=False))

    def _rebuild(self, design_problems: list[str], problems: list[Problem]) -> None:
        selected = self._current()
        key = None if selected is None else (selected.node_id, selected.severity, selected.code)
        was_row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        self._rows = []
        for text in design_problems:
            item = QListWidgetItem(f"✗  {text}")
            item.setForeground(_ERROR_TEXT)
            self.list.addItem(item)
            self._rows.append(None)
        checker = self.document.analysis.fix_checker() if any(
            p.advice is not None for p in problems) else None
        restore = -1
        for problem in problems:
            error = problem.severity == ERROR
            text = str(problem) if checker is None else checker.describe(problem, check=False)
            item = QListWidgetItem(f"{'✗' if error else '⚠'}  {text}")
            item.setForeground(_ERROR_TEXT if error else _WARNING_TEXT)
            item.setData(Qt.ItemDataRole.UserRole, problem.node_id)
            item.setToolTip(text)
            self.list.addItem(item)
            if restore < 0 and (problem.node_id, problem.severity, problem.code) == key:
                restore = len(self._rows)
            self._rows.append(problem)
        if self.list.count() == 0:
            item = QListWidgetItem("No errors or warnings.")
            item.setForeground(QColor("#2e7d32"))
            self.list.addItem(item)
            self._rows.append(None)
        if restore < 0 and selected is not None and any(p is not None for p in self._rows):
            # its problem is gone (fixed): the one now in its place, so the next can be fixed
            restore = min(was_row, len(self._rows) - 1)
        if restore >= 0:
            self.list.setCurrentRow(restore)
        self.list.blockSignals(False)
        self._show_fixes(self.list.currentRow())

    def _check_some(self) -> None:
        """Check the fixes of pending rows for a slice of time; the rest in another round."""
        if not self._pending:
            return
        checker = self.document.analysis.fix_checker()
        start = time.perf_counter()
        current = self.list.currentRow()
        while self._pending:
            row = self._pending.pop(0)
            problem = self._rows[row]
            self._word(row, problem, checker.fixes(problem), checker.text(problem))
            if row == current:
                self._show_fixes(current)
            if time.perf_counter() - start > CHECK_SLICE_SECONDS:
                break
        if self._pending:
            self._more.start()

    def _word(self, row: int, problem: Problem, fixes: tuple[Fix, ...], text: str) -> None:
        mark = "✗" if problem.severity == ERROR else "⚠"
        words = f"{mark}  {problem.node_id}: {text}"
        tip = f"{problem.node_id}: {text}"
        if fixes:
            words += "\n      Fix: " + fix_list(fixes)
            tip += ("\n\nSelect it and press Apply fix (or Ctrl+Enter, or right-click) to "
                    "apply a fix; Ctrl+Z undoes it.")
        item = self.list.item(row)
        if item.text() != words:
            item.setText(words)
            item.setToolTip(tip)

    # ------------------------------------------------------------------ fixes

    def _current(self) -> Problem | None:
        row = self.list.currentRow()
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def fixes(self, row: int | None = None) -> tuple[Fix, ...]:
        """The fixes that work for the problem on ``row`` (default: the selected one)."""
        row = self.list.currentRow() if row is None else row
        problem = self._rows[row] if 0 <= row < len(self._rows) else None
        if problem is None or problem.advice is None:
            return ()
        return self.document.analysis.fix_checker().fixes(problem)

    def _show_fixes(self, row: int) -> None:
        fixes = self.fixes(row)
        self.fix_choice.clear()
        for fix in fixes:
            self.fix_choice.addItem(fix.label)
            self.fix_choice.setItemData(self.fix_choice.count() - 1, fix.label,
                                        Qt.ItemDataRole.ToolTipRole)
        if not fixes:
            problem = self._rows[row] if 0 <= row < len(self._rows) else None
            self.fix_choice.addItem("select a problem to see its fixes" if problem is None
                                    else "no automatic fix for this problem")
        self.fix_choice.setEnabled(bool(fixes))
        self.apply_button.setEnabled(bool(fixes))
        self.fix_label.setEnabled(bool(fixes))

    def apply_fix(self, choice: int | None = None) -> bool:
        """Apply a fix of the selected problem (``choice``: its index among the fixes that
        work; default: the one chosen below the list) as one undo step. False if there is
        none."""
        problem = self._current()
        fixes = self.fixes()
        index = self.fix_choice.currentIndex() if choice is None else choice
        if problem is None or not 0 <= index < len(fixes):
            return False
        apply_fix(self.document, problem.node_id, fixes[index])
        self.list.setFocus()  # the button goes grey with its problem: keep the keyboard here
        return True

    def _menu(self, row: int, pos: QPoint) -> None:
        problem = self._rows[row] if 0 <= row < len(self._rows) else None
        if problem is None:
            return
        menu = QMenu(self)
        for index, fix in enumerate(self.fixes(row)):
            action = menu.addAction(f"Apply fix: {fix.label}")
            action.triggered.connect(lambda checked=False, i=index: self.apply_fix(i))
        if menu.isEmpty():
            menu.addAction("No automatic fix for this problem").setEnabled(False)
        menu.addSeparator()
        menu.addAction(f"Select {problem.node_id}").triggered.connect(
            lambda checked=False, n=problem.node_id: self.node_clicked.emit(n))
        menu.popup(pos)
        self._open_menu = menu  # kept for tests and so it isn't collected while shown

    def _clicked(self, item: QListWidgetItem) -> None:
        node_id = item.data(Qt.ItemDataRole.UserRole)
        if node_id is not None:
            self.node_clicked.emit(node_id)

    def counts(self) -> tuple[int, int]:
        problems = self.document.analysis.problems()
        errors = sum(p.severity == ERROR for p in problems)
        return errors, len(problems) - errors
