"""Dock panels: the torchinfo-like summary table and the list of problems."""
from __future__ import annotations

import csv
import io

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSizePolicy, QTableView, QVBoxLayout, QWidget)

from designer.app.panels import roles
from designer.app.document import Document
from designer.core.problems import ERROR
from designer.core.summary import TABLE_HEADER, format_table, table_row

RIGHT = {3, 4, 6, 7}
_ERROR_TEXT, _WARNING_TEXT = QColor("#d32f2f"), QColor("#b45309")
#: fitting columns to their contents looks at this many rows (all of them would cost ~100 ms on a
#: 1,000-layer design; the widest cells are nearly always among the first rows)
RESIZE_PRECISION = 200


class SummaryModel(QAbstractTableModel):
    """One row per node in topological order. An edit that keeps the order rewrites only the rows
    of the nodes whose figures changed; anything else resets the table."""

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.ids: list[str] = []
        self._rows: list[list[str] | None] = []
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
        if self.model.update(changed) and changed is None:
            self.table.resizeColumnsToContents()  # a new design; edits keep the user's widths
        t = self.document.analysis.totals()
        memory = (t["input_bytes"] + t["activation_bytes"] + t["param_bytes"]) / 1e6
        self.totals.setText(f"Total params: {t['params']:,}   ·   Mult-adds: {t['macs']:,}   ·   "
                            f"Memory (forward, float32): {memory:,.2f} MB")

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


class ProblemsPanel(QListWidget):
    """Every error and warning; clicking one selects its node."""

    node_clicked = Signal(str)

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.itemClicked.connect(lambda item: self.node_clicked.emit(item.data(Qt.ItemDataRole.UserRole)))
        self._shown: tuple | None = None
        self.reload()

    def reload(self) -> None:
        """Rebuild the list if the problems changed (most edits change none)."""
        current = (tuple(self.document.analysis.design_problems()),
                   tuple((p.node_id, p.severity, str(p)) for p in self.document.analysis.problems()))
        if current == self._shown:
            return
        self._shown = current
        self.clear()
        for text in self.document.analysis.design_problems():
            item = QListWidgetItem(f"✗  {text}")
            item.setForeground(QColor("#d32f2f"))
            self.addItem(item)
        for problem in self.document.analysis.problems():
            error = problem.severity == ERROR
            item = QListWidgetItem(f"{'✗' if error else '⚠'}  {problem}")
            item.setForeground(QColor("#d32f2f" if error else "#b45309"))
            item.setData(Qt.ItemDataRole.UserRole, problem.node_id)
            item.setToolTip(str(problem))
            self.addItem(item)
        if self.count() == 0:
            item = QListWidgetItem("No errors or warnings.")
            item.setForeground(QColor("#2e7d32"))
            self.addItem(item)

    def counts(self) -> tuple[int, int]:
        problems = self.document.analysis.problems()
        errors = sum(p.severity == ERROR for p in problems)
        return errors, len(problems) - errors
