"""The inspector: typed editors for the selected layer's parameters, applied live (one undo step
per committed change), and below them the layer's figures with their worked arithmetic."""
from __future__ import annotations

import html
import math
import re
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QFrame, QLabel, QLineEdit, QScrollArea, QSizePolicy, QSpinBox,
                               QStackedWidget, QTextBrowser, QVBoxLayout, QWidget)

from designer.app.document import Document
from designer.core.catalog import (BOOL, CONV_PADDING, COUNT, LAYER_TYPES, MAX_INT, OPTIONAL_REAL,
                                   PAIR, POOL_STRIDE, REAL, LayerType, ParamSpec)
from designer.core.design import MISSING, GraphError
from designer.core.problems import Problem, num

#: a real number as it may stand while being typed (``1e``, ``-``, ``.``)
_REAL_PREFIX = re.compile(r"[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?")
REAL_DIGITS = 12  # significant digits shown, and kept by the arrows' steps


def real_text(value: float) -> str:
    """A real number as a user writes it: ``0.5``, ``1e-05``, ``0.001``, ``100`` (at most
    ``REAL_DIGITS`` significant digits, no trailing zeros)."""
    text = f"{value:.{REAL_DIGITS}g}"
    return "0" if text == "-0" else text


def problem_html(problem: Problem, text: str | None = None) -> str:
    """One problem as a sentence naming its layer: ``relu5 is a dead end: …`` or ``conv1:
    output width …`` (the texts leave the id out; some begin with their verb). ``text``: the
    message to show instead of the problem's own (worded with its checked fixes)."""
    name = f"<b>{html.escape(problem.node_id)}</b>"
    text = html.escape(problem.text if text is None else text)
    return f"{name} {text}" if text.startswith(("is ", "has ", "are ")) else f"{name}: {text}"


class _WheelWhenFocused:
    """An editor the mouse wheel changes only once it has been clicked into: otherwise the wheel
    scrolls the inspector, as a user scrolling past it expects, instead of editing the design."""

    def _init_wheel(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone doesn't focus it

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # handed on to the scroll area


class SpinBox(_WheelWhenFocused, QSpinBox):
    def __init__(self) -> None:
        super().__init__()
        self._init_wheel()


class DoubleSpinBox(_WheelWhenFocused, QDoubleSpinBox):
    """A real number written as a user writes it (``0.5``, ``1e-05``), not with a fixed number
    of decimals; typed in either form."""

    def __init__(self) -> None:
        super().__init__()
        self._init_wheel()
        self.setDecimals(323)  # Qt's most: the value is kept as given, not rounded to 6 places

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return real_text(value)

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt's name)
        try:
            return float(text.strip().replace("−", "-"))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        bare = text.strip().replace("−", "-")
        try:
            value = float(bare)
        except ValueError:
            state = (QValidator.State.Intermediate if _REAL_PREFIX.fullmatch(bare)
                     else QValidator.State.Invalid)
            return state, text, pos
        if not math.isfinite(value):
            return QValidator.State.Invalid, text, pos
        inside = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos

    def fixup(self, text: str) -> str:
        return real_text(self.value())

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt's name)
        """Steps keep the digits a user would write: 0.5 + 0.1 is 0.6, not 0.6000000000000001."""
        value = float(real_text(self.value() + steps * self.singleStep()))
        self.setValue(min(max(value, self.minimum()), self.maximum()))
        self.selectAll()


class ComboBox(_WheelWhenFocused, QComboBox):
    def __init__(self) -> None:
        super().__init__()
        self._init_wheel()


def _spin(minimum: int) -> QSpinBox:
    box = SpinBox()
    box.setRange(int(minimum), MAX_INT)
    box.setKeyboardTracking(False)  # apply when the user has finished typing
    box.setAccelerated(True)
    box.setMaximumWidth(84)
    return box


class PairEditor(QWidget):
    """``h × w`` as two spin boxes; written back as one number when square (PyTorch's int form)."""

    def __init__(self, minimum: int, changed: Callable[[], None]) -> None:
        super().__init__()
        self.h, self.w = _spin(minimum), _spin(minimum)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.h)
        layout.addWidget(QLabel("×"))
        layout.addWidget(self.w)
        layout.addStretch(1)
        for box in (self.h, self.w):
            box.valueChanged.connect(changed)

    def set_value(self, pair: tuple[int, int]) -> None:
        for box, v in ((self.h, pair[0]), (self.w, pair[1])):
            box.blockSignals(True)
            box.setValue(v)
            box.blockSignals(False)

    def value(self) -> Any:
        h, w = self.h.value(), self.w.value()
        return h if h == w else [h, w]


class FiguresView(QTextBrowser):
    """The derived figures as read-only, selectable rich text, as tall as its text (the inspector
    scrolls as a whole). Unlike a word-wrapped label, new text re-lays out the window only when
    its number of lines changes, not on every edit that reaches this node; and without a
    scroll bar of its own it never lays its text out twice as one comes and goes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOpenLinks(False)
        self.viewport().setAutoFillBackground(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._html = ""

    def _fit(self, size) -> None:
        height = math.ceil(size.height()) + 2 * self.frameWidth()
        if height != self.height():
            self.setFixedHeight(height)

    def setText(self, html: str) -> None:  # noqa: N802 (QLabel's name: the panel treats it as one)
        if html != self._html:
            self._html = html
            self.setHtml(html)

    def text(self) -> str:
        return self.toPlainText()


class InspectorPanel(QWidget):
    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.node_id: str | None = None
        self.editors: dict[str, Callable[[dict], None]] = {}  # name -> refresh from values
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("The layer's id: unique in the design, used in weights files "
                                "(\"<id>.weight\") and in messages. Press Enter to rename.")
        self.id_edit.editingFinished.connect(self._rename)
        self.id_error = QLabel()
        self.id_error.setWordWrap(True)
        self.id_error.setStyleSheet("color: #d32f2f")
        self.id_error.hide()
        id_row = QWidget()
        id_form = QFormLayout(id_row)
        id_form.setContentsMargins(0, 0, 0, 0)
        id_form.addRow("id", self.id_edit)
        id_form.addRow(self.id_error)
        self.id_row = id_row
        # one form of editors per layer type, built when first needed and kept: rebuilding the
        # editors on every selection would re-lay out the panel several times over
        self.forms = QStackedWidget()
        self._forms: dict[str, tuple[QWidget, dict[str, Callable[[dict], None]]]] = {}
        self._no_form = QWidget()
        self.forms.addWidget(self._no_form)
        self._preparing = QTimer(self, singleShot=True, interval=0)
        self._preparing.timeout.connect(self._prepare_forms)
        self.figures = FiguresView()
        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(self.title)
        column.addWidget(self.id_row)
        column.addWidget(self.forms)
        column.addWidget(self.figures)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # a scroll bar that comes and goes with another layer's form would change the width
        # of everything in the panel, and lay the figures out again
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        document.node_renamed.connect(self._follow_rename)
        document.design_replaced.connect(self._preparing.start)
        self.show_node(None)
        self._preparing.start()

    # ------------------------------------------------------------------ building

    @property
    def form_host(self) -> QWidget:
        """The widget holding the editors shown now."""
        return self.forms.currentWidget()

    def show_node(self, node_id: str | None) -> None:
        self.node_id = node_id if node_id in self.document.design else None
        self.id_error.hide()
        self.id_row.setVisible(self.node_id is not None)
        if self.node_id is None:
            self._show_form(self._no_form, {})
            self.title.setText("<i>Select a layer to see and edit its parameters.</i>")
            self.figures.setText("")
            return
        node = self.document.design.node(self.node_id)
        layer = LAYER_TYPES.get(node.type)
        self._shown_type = node.type
        self._set_title()
        self.id_edit.setText(self.node_id)
        if layer is None:
            self._show_form(self._no_form, {})
        else:
            self._show_form(*self._form_for(layer))
        self.refresh()

    def _build_form(self, layer: LayerType) -> tuple[QWidget, dict[str, Callable[[dict], None]]]:
        host = QWidget()
        form = QFormLayout(host)
        form.setContentsMargins(0, 0, 0, 0)
        editors: dict[str, Callable[[dict], None]] = {}
        for spec in layer.params:
            label = QLabel(spec.name)
            label.setToolTip(spec.help)
            editor = self._editor(spec, editors)
            editor.setToolTip(spec.help)
            form.addRow(label, editor)
        host.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.forms.addWidget(host)
        return host, editors

    def _form_for(self, layer: LayerType) -> tuple[QWidget, dict[str, Callable[[dict], None]]]:
        if layer.name not in self._forms:
            self._forms[layer.name] = self._build_form(layer)
        return self._forms[layer.name]

    def _prepare_forms(self) -> None:
        """Build the forms of the design's layer types while the app is idle, one per turn of
        the event loop, so that the first selection of each type is as quick as the next."""
        wanted = [LAYER_TYPES[t] for t in dict.fromkeys(n.type for n in self.document.design.nodes)
                  if t in LAYER_TYPES and t not in self._forms]
        if wanted:
            self._form_for(wanted[0])
            if len(wanted) > 1:
                self._preparing.start()

    def _show_form(self, host: QWidget, editors: dict[str, Callable[[dict], None]]) -> None:
        """Bring a form to the front. The stack sizes itself to the form shown: the others are
        set to be ignored in its size."""
        for i in range(self.forms.count()):
            page = self.forms.widget(i)
            policy = QSizePolicy.Policy.Preferred if page is host else QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)
        self.forms.setCurrentWidget(host)
        self.editors = editors

    def _set_title(self) -> None:
        node = self.document.design.node(self.node_id)
        layer = LAYER_TYPES.get(node.type)
        self.title.setText(f"<b>{node.type}</b> &nbsp; {self.node_id}"
                           + (f"<br><small>{layer.summary}</small>" if layer else ""))

    def _rename(self) -> None:
        if self.node_id is None:
            return
        new = self.id_edit.text()
        try:
            self.document.rename(self.node_id, new)
        except GraphError as exc:
            self.id_error.setText(f"Can't rename: {exc}")
            self.id_error.show()
            self.id_edit.setText(self.node_id)
        else:
            self.id_error.hide()

    def _follow_rename(self, old: str, new: str) -> None:
        if self.node_id == old:
            self.node_id = new
            self.id_edit.setText(new)
            self._set_title()

    def _commit(self, name: str, value: Any) -> None:
        if self.node_id is not None:
            self.document.set_param(self.node_id, name, value)

    def _editor(self, spec: ParamSpec, editors: dict[str, Callable[[dict], None]]) -> QWidget:
        """An editor for one parameter; how to refresh it from values goes into ``editors``."""
        name = spec.name
        if spec.kind == BOOL:
            box = QCheckBox()
            box.toggled.connect(lambda v: self._commit(name, bool(v)))
            editors[name] = lambda values: _quiet(box, box.setChecked, bool(values[name]))
            return box
        if spec.kind in (REAL, OPTIONAL_REAL):
            box = DoubleSpinBox()
            box.setMaximumWidth(140)  # room for 12 digits and an exponent
            box.setRange(spec.minimum if spec.minimum is not None else -1e9,
                         spec.maximum if spec.maximum is not None else 1e9)
            box.setSingleStep(0.01 if (spec.maximum or 10) <= 1 else 0.1)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda v: self._commit(name, float(v)))
            editors[name] = lambda values: _quiet(box, box.setValue,
                                                       values[name] if values[name] is not None else 0)
            return box
        if spec.kind == COUNT:
            box = _spin(spec.minimum)
            box.valueChanged.connect(lambda v: self._commit(name, int(v)))
            editors[name] = lambda values: _quiet(box, box.setValue, values[name])
            return box
        pair = PairEditor(int(spec.minimum or 0), lambda: self._commit(name, pair.value()))
        if spec.kind == PAIR:
            editors[name] = lambda values: pair.set_value(values[name])
            return pair
        # padding (a pair or "same"/"valid") and pooling stride (a pair or "= kernel")
        host = QWidget()
        row = QHBoxLayout(host)
        row.setContentsMargins(0, 0, 0, 0)
        mode = ComboBox()
        mode.setMaximumWidth(80)
        modes = ["size", "same", "valid"] if spec.kind == CONV_PADDING else ["size", "= kernel"]
        mode.addItems(modes)
        row.addWidget(mode)
        row.addWidget(pair, 1)

        def mode_changed(index: int) -> None:
            pair.setEnabled(index == 0)
            if index == 0:
                self._commit(name, pair.value())
            elif spec.kind == CONV_PADDING:
                self._commit(name, modes[index])
            else:
                self._commit(name, MISSING)  # stride omitted: defaults to the kernel size

        mode.currentIndexChanged.connect(mode_changed)

        def refresh(values: dict) -> None:
            raw = self.document.design.node(self.node_id).params.get(name)
            value = values[name]
            index = 0
            if spec.kind == CONV_PADDING and isinstance(value, str):
                index = modes.index(value)
            elif spec.kind == POOL_STRIDE and raw is None:
                index = 1
            _quiet(mode, mode.setCurrentIndex, index)
            pair.setEnabled(index == 0)
            if isinstance(value, tuple):
                pair.set_value(value)
        editors[name] = refresh
        return host

    # ------------------------------------------------------------------ following the model

    _shown_type: str | None = None  # the type whose editors are shown

    def refresh(self, changed: object = None) -> None:
        if self.node_id is None or self.node_id not in self.document.design:
            if self.node_id is not None:
                self.show_node(None)
            return
        if self.document.design.node(self.node_id).type != self._shown_type:
            # another design, whose node of this id is of another type: its own editors
            self.show_node(self.node_id)
            return
        info = self.document.analysis.info(self.node_id)
        if info.values is not None:
            for refresh_editor in self.editors.values():
                refresh_editor(info.values)
        lines = []
        checked = self.document.analysis.fix_checker().text  # advise only fixes that work
        for p in info.errors:
            lines.append(f"<p style='color:#d32f2f'>✗ {problem_html(p, checked(p))}</p>")
        for p in info.warnings:
            lines.append(f"<p style='color:#b45309'>⚠ {problem_html(p, checked(p))}</p>")
        rows = [(label, text) for label, text in info.derivations]
        if info.shape is not None:
            rows.append(("output shape", "×".join(str(s) for s in info.shape)))
            rows.append(("activation memory", f"{num(info.activation_bytes)} bytes (float32)"))
        if info.field is not None:
            f = info.field
            rows.append(("receptive field", f"{f.size[0]}×{f.size[1]}, jump {num(f.jump[0])}, "
                                            f"start {num(f.start[0])}"))
        if rows:
            lines.append("<table cellspacing='4'>" + "".join(
                f"<tr><td><i>{label}</i></td><td>{text}</td></tr>" for label, text in rows)
                + "</table>")
        self.figures.setText("".join(lines))


def _quiet(widget: QWidget, setter: Callable[[Any], None], value: Any) -> None:
    """Set an editor from the model without echoing the change back (no undo step, no loop)."""
    widget.blockSignals(True)
    setter(value)
    widget.blockSignals(False)
