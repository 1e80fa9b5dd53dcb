"""Where one unit of a layer looks in the input image: its theoretical receptive field as a
rectangle, and the same for every layer on the way there, so the field can be seen growing.

Coordinates are image coordinates with pixel ``i`` covering ``[i, i + 1)``: a window of ``size``
pixels centred on pixel ``c`` spans ``[c − (size − 1)/2, c + (size − 1)/2 + 1)``. Parts outside
``[0, H) × [0, W)`` lie in the padding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from designer.core.layers import AxisField, ReceptiveField


@dataclass(frozen=True)
class UnitWindow:
    """One unit's receptive field in input pixels."""

    node_ids: tuple[str, ...]  # the layers on the path that share this window (e.g. conv, bn, relu)
    unit: tuple[int, int]  # (row, col) of the unit in the last of those layers' output

    top: float
    left: float
    height: float
    width: float
    field: ReceptiveField

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def inside(self, rows: int, cols: int) -> tuple[float, float, float, float] | None:
        """The part on the image, as (top, left, bottom, right); None if it is all padding."""
        top, left = max(self.top, 0.0), max(self.left, 0.0)
        bottom, right = min(self.bottom, float(rows)), min(self.right, float(cols))
        return (top, left, bottom, right) if bottom > top and right > left else None

    def reaches_padding(self, rows: int, cols: int) -> bool:
        return self.top < 0 or self.left < 0 or self.bottom > rows or self.right > cols


def _span(axis: AxisField, index: int) -> tuple[float, float]:
    """First position and extent of unit ``index``'s window along one axis. Below a merge of
    paths with different jumps the windows of units past the first are not unit 0's moved by
    one jump: :meth:`AxisField.window` takes the hull of every path's window."""
    first, last = axis.window(index)
    return float(first), float(last - first + 1)


def unit_window(node_id: str, field: ReceptiveField, row: int, col: int) -> UnitWindow:
    """The rectangle of input pixels unit (row, col) of a layer with ``field`` depends on."""
    top, height = _span(field.rows, row)
    left, width = _span(field.cols, col)
    return UnitWindow((node_id,), (row, col), top, left, height, width, field)


def _nearest(axis: AxisField, centre: float, n: int) -> int:
    """The unit along one axis whose window is centred nearest ``centre``."""
    if axis.jump == 0:
        return 0
    if not axis.paths:
        return min(max(round((centre - axis.start) / axis.jump), 0), n - 1)

    def middle(i: int) -> float:
        first, last = axis.window(i)
        return (first + last) / 2

    # window centres never decrease from unit to unit: the first unit centred at or past
    # ``centre``, or the one before it, whichever is nearer (a tie goes to the later one)
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if middle(mid) < centre:
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and centre - middle(lo - 1) < middle(lo) - centre:
        return lo - 1
    return lo


def field_path(node_id: str, unit: tuple[int, int], sources: Mapping[str, list[str]],
               infos: Mapping[str, object]) -> list[UnitWindow]:
    """The unit's window and, for each layer on the path back to the Input, the window of that
    layer's unit centred nearest the same place, from the input side to ``node_id``. Layers
    that keep the window (activations, norms) join the window before them. Where the path
    forks (Add, Concat) it follows the input with the largest field. ``infos`` maps ids to
    objects with ``shape`` and ``field`` (the analysis's NodeInfo)."""
    info = infos[node_id]
    if info.field is None or info.shape is None or len(info.shape) != 3:
        return []
    target = unit_window(node_id, info.field, *unit)
    centre_r = target.top + (target.height - 1) / 2
    centre_c = target.left + (target.width - 1) / 2
    path = [node_id]
    at = node_id
    while sources.get(at):
        candidates = [s for s in sources[at] if infos[s].field is not None]
        if not candidates:
            break
        at = max(candidates, key=lambda s: infos[s].field.rows.size * infos[s].field.cols.size)
        path.append(at)
    windows: list[UnitWindow] = []
    for n in reversed(path):
        i = infos[n]
        if i.shape is None or len(i.shape) != 3 or i.field is None or not sources.get(n):
            continue  # flat, unknown, or the Input itself (a 1×1 window per pixel)
        if n == node_id:
            w = target
        else:
            row = _nearest(i.field.rows, centre_r, i.shape[1])
            col = _nearest(i.field.cols, centre_c, i.shape[2])
            w = unit_window(n, i.field, row, col)
        if windows and (windows[-1].top, windows[-1].left, windows[-1].height,
                        windows[-1].width) == (w.top, w.left, w.height, w.width):
            # the same pixels: one entry naming both layers, described by the later one's unit
            last = windows[-1]
            windows[-1] = UnitWindow(last.node_ids + (n,), w.unit, last.top, last.left,
                                     last.height, last.width, w.field)
        else:
            windows.append(w)
    return windows
