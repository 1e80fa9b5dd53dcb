"""The open document: the design, its live analysis, the undo stack and the file it came from."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from designer.app.messages import id_problem
from designer.app.commands import (AddNodeCommand, ConnectCommand, DisconnectCommand,
                                   LayoutCommand, MacroCommand, MoveNodesCommand, RenameCommand,
                                   SetParamCommand, delete_command)
from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.core.design import Design, Edge, GraphError, Node
from designer.core.layout import ROW, Layout, layout
from designer.io.design_file import load_design, save_design
from designer.io.templates import resources_dir


_ABSENT = object()


def is_builtin(path: str | Path) -> bool:
    """Whether a file is one of the app's own resources (templates)."""
    try:
        Path(path).resolve().relative_to(resources_dir().resolve())
    except ValueError:
        return False
    return True


class Document(QObject):
    """Owns the model. Views listen to the design's events and to ``refreshed``."""

    design_replaced = Signal()  # a new design was loaded or created: views rebuild
    refreshed = Signal(object)  # set of node ids whose derived figures changed
    path_changed = Signal()
    node_renamed = Signal(str, str)  # old id, new id (by an edit or its undo)

    def __init__(self, design: Design | None = None, path: Path | None = None) -> None:
        super().__init__()
        self.undo_stack = QUndoStack(self)
        self.undo_stack.indexChanged.connect(self.refresh)
        self.design = design or Design("Untitled")
        self.design.node_renamed.connect(self.node_renamed.emit)
        self.analysis = Analysis(self.design)
        self.path = path
        #: the latest automatic layout (opening a design, Ctrl+L): the canvas draws connections
        #: along its routes while the cards are where it put them
        self.last_layout: Layout | None = None
        #: asked before every edit goes on the undo stack: returns False to refuse it (the
        #: Train panel's lock while a design trains); None lets every edit through
        self.guard: Callable[[QUndoCommand], bool] | None = None
        self._place_unpositioned()

    # ------------------------------------------------------------------ state

    @property
    def title(self) -> str:
        if self.path is not None:
            return self.path.name
        return self.design.name or "Untitled"

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_modified(self) -> None:
        """Treat the current design as unsaved work (e.g. recovered after a crash)."""
        self.undo_stack.resetClean()

    def refresh(self, index: object = None) -> None:
        """After every edit: the nodes whose figures changed (possibly none, e.g. when a node was
        removed: views still follow, the summary loses a row)."""
        self.refreshed.emit(self.analysis.refresh())

    # ------------------------------------------------------------------ files

    def replace(self, design: Design, path: Path | None) -> None:
        self.analysis.close()
        self.design.node_renamed.disconnect(self.node_renamed.emit)
        self.design = design
        design.node_renamed.connect(self.node_renamed.emit)
        self.analysis = Analysis(design)
        self.path = path
        self._place_unpositioned()
        self.undo_stack.clear()
        self.design_replaced.emit()
        self.path_changed.emit()
        self.refresh()

    def open(self, path: str | Path) -> None:
        """Load a design file (raises DesignError; the current design is kept then). A built-in
        template opens as an untitled copy, so saving never overwrites it."""
        design = load_design(path)
        self.replace(design, None if is_builtin(path) else Path(path))

    def save(self, path: str | Path | None = None) -> None:
        """Save atomically (raises DesignError; the old file is untouched then)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name yet: use save with a path")
        save_design(self.design, target)
        self.path = target
        self.undo_stack.setClean()
        self.path_changed.emit()

    def _place_unpositioned(self) -> None:
        """Files without positions get the automatic layout (part of opening, not an edit)."""
        self.last_layout = layout(self.design)
        if any(n.position is None for n in self.design.nodes):
            for node_id, position in self.last_layout.positions().items():
                if self.design.node(node_id).position is None:
                    self.design.move_node(node_id, position)

    # ------------------------------------------------------------------ edits (undoable)

    def push(self, command: QUndoCommand) -> None:
        if self.guard is not None and not self.guard(command):
            return
        self.undo_stack.push(command)

    def move_nodes(self, moves) -> None:
        self.push(MoveNodesCommand(self.design, moves))

    def delete(self, node_ids: list[str], edges: list[tuple[str, str]]) -> None:
        if node_ids or edges:
            self.push(delete_command(self.design, node_ids, edges))

    def connect(self, source: str, target: str) -> None:
        self.push(ConnectCommand(self.design, source, target))

    def add_node(self, node, after: str | None = None) -> None:
        """Add a node as one undo step. With ``after``: fed by that node, one row below it; if
        ``after`` already feeds layers, the new one goes in between: it feeds them instead,
        each in the place ``after`` had among its inputs (Concat's operand order is kept), and
        they and everything below them move down a row where they have to."""
        design = self.design
        children: list[QUndoCommand] = []
        layer = LAYER_TYPES.get(node.type)
        takes_input = layer is None or layer.max_inputs != 0
        targets = design.targets(after) if after is not None and takes_input else []
        if after is not None and takes_input:
            above = design.node(after).position
            if above is not None:
                x = node.position[0] if node.position is not None else above[0]
                node.position = (x, above[1] + ROW)
                children += self._make_room(targets, above[1] + 2 * ROW)
        children.append(AddNodeCommand(design, node))
        edges = design.edges
        for target in targets:  # each edge after → target becomes node → target, in place
            index = edges.index((after, target))
            children += [DisconnectCommand(design, after, target),
                         ConnectCommand(design, node.id, target, index)]
            edges[index] = (node.id, target)
        if after is not None and takes_input:
            children.append(ConnectCommand(design, after, node.id))
        verb = "Insert" if targets else "Add"
        self.push(MacroCommand(f"{verb} {node.id}", children))

    def _make_room(self, below: list[str], top: float) -> list[QUndoCommand]:
        """Move ``below`` and everything they feed down, so that they start at ``top`` at the
        highest (nothing if they already do)."""
        design = self.design
        ys = [design.node(n).position[1] for n in below if design.node(n).position is not None]
        room = top - min(ys) if ys else 0.0
        if room <= 0:
            return []
        moves = {}
        for start in below:
            for n in design.downstream(start):
                old = design.node(n).position
                if old is not None and n not in moves:
                    moves[n] = (old, (old[0], old[1] + room))
        return [MoveNodesCommand(design, moves, "Make room")]

    def set_param(self, node_id: str, name: str, value) -> None:
        if self.design.node(node_id).params.get(name, _ABSENT) != value:
            self.push(SetParamCommand(self.design, node_id, name, value))

    def auto_layout(self) -> None:
        """Ctrl+L: every card where ``designer.layout`` puts it (one undo step)."""
        self.last_layout = layout(self.design)
        self.push(LayoutCommand(self.design, self.last_layout.positions()))

    def rename(self, old: str, new: str) -> None:
        """Give a node a new id (raises GraphError saying why not; nothing changes then)."""
        new = new.strip()
        if new == old:
            return
        wrong = id_problem(new)
        if wrong is not None:  # refused before the edit: a command must not fail halfway
            raise GraphError(wrong)
        if new in self.design:
            raise GraphError(f"there is already a node {new!r}: ids must be unique")
        self.push(RenameCommand(self.design, old, new))

    def paste(self, nodes: list[Node], edges: list[Edge], text: str = "Paste") -> None:
        """Add nodes (ids already unique here) and the edges among them as one undo step
        (raises GraphError, changing nothing, if an id can't be a layer's id)."""
        for node in nodes:
            wrong = id_problem(node.id)
            if wrong is not None:
                raise GraphError(wrong)
        if nodes:
            children = [AddNodeCommand(self.design, node) for node in nodes]
            children += [ConnectCommand(self.design, s, t) for s, t in edges]
            self.push(MacroCommand(f"{text} {len(nodes)} layer{'s' if len(nodes) != 1 else ''}",
                                   children))

    def insert_on_edge(self, node: Node, edge: Edge) -> None:
        """Add ``node`` in the middle of ``source → target`` as one undo step. The new node takes
        the old edge's place among the target's inputs (Concat's operand order is kept); it goes
        one row below the source, and the target and everything below it move down to make room
        if they have to."""
        source, target = edge
        design = self.design
        index = design.edges.index(edge)
        children: list[QUndoCommand] = []
        above, below = design.node(source).position, design.node(target).position
        if above is not None and below is not None:
            x = node.position[0] if node.position is not None else above[0]
            node.position = (x, above[1] + ROW)
            children += self._make_room([target], above[1] + 2 * ROW)
        children += [AddNodeCommand(design, node),
                     DisconnectCommand(design, source, target),
                     ConnectCommand(design, source, node.id),
                     ConnectCommand(design, node.id, target, index)]
        self.push(MacroCommand(f"Insert {node.id}", children))
