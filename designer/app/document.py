"""The open document: the design, its live analysis, the undo stack and the file it came from."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from designer.app.messages import id_problem
from designer.app.commands import (AddNodeCommand, ConnectCommand, DisconnectCommand,
                                   LayoutCommand, MacroCommand, MoveNodesCommand, RenameCommand,
                                   SetParamCommand, delete_command)
from designer.core.analysis import Analysis
from designer.core.design import Design, Edge, GraphError, Node
from designer.core.layout import ROW, layered_positions
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
        if any(n.position is None for n in self.design.nodes):
            for node_id, position in layered_positions(self.design).items():
                if self.design.node(node_id).position is None:
                    self.design.move_node(node_id, position)

    # ------------------------------------------------------------------ edits (undoable)

    def push(self, command: QUndoCommand) -> None:
        self.undo_stack.push(command)

    def move_nodes(self, moves) -> None:
        self.push(MoveNodesCommand(self.design, moves))

    def delete(self, node_ids: list[str], edges: list[tuple[str, str]]) -> None:
        if node_ids or edges:
            self.push(delete_command(self.design, node_ids, edges))

    def connect(self, source: str, target: str) -> None:
        self.push(ConnectCommand(self.design, source, target))

    def add_node(self, node, after: str | None = None) -> None:
        """Add a node (and connect it after ``after`` if given) as one undo step."""
        children = [AddNodeCommand(self.design, node)]
        if after is not None:
            children.append(ConnectCommand(self.design, after, node.id))
        self.push(MacroCommand(f"Add {node.id}", children))

    def set_param(self, node_id: str, name: str, value) -> None:
        if self.design.node(node_id).params.get(name, _ABSENT) != value:
            self.push(SetParamCommand(self.design, node_id, name, value))

    def auto_layout(self) -> None:
        self.push(LayoutCommand(self.design, layered_positions(self.design)))

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
            room = above[1] + 2 * ROW - below[1]
            if room > 0:
                moves = {}
                for n in design.downstream(target):
                    old = design.node(n).position
                    if old is not None:
                        moves[n] = (old, (old[0], old[1] + room))
                children.append(MoveNodesCommand(design, moves, "Make room"))
        children += [AddNodeCommand(design, node),
                     DisconnectCommand(design, source, target),
                     ConnectCommand(design, source, node.id),
                     ConnectCommand(design, node.id, target, index)]
        self.push(MacroCommand(f"Insert {node.id}", children))
