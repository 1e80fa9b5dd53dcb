"""Undo commands. Each touches only the model; the canvas and panels follow the model's events."""
from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from designer.core.design import Design, Node

MOVE_ID = 1  # consecutive moves of the same nodes merge into one undo step


class MoveNodesCommand(QUndoCommand):
    def __init__(self, design: Design, moves: dict[str, tuple[tuple[float, float] | None,
                                                               tuple[float, float]]],
                 text: str = "Move") -> None:
        super().__init__(text)
        self.design = design
        self.moves = dict(moves)  # id -> (old position, new position)

    def id(self) -> int:
        return MOVE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodesCommand) or set(other.moves) != set(self.moves):
            return False
        for node_id, (_, new) in other.moves.items():
            self.moves[node_id] = (self.moves[node_id][0], new)
        return True

    def redo(self) -> None:
        for node_id, (_, new) in self.moves.items():
            self.design.move_node(node_id, new)

    def undo(self) -> None:
        for node_id, (old, _) in self.moves.items():
            self.design.move_node(node_id, old)


class ConnectCommand(QUndoCommand):
    def __init__(self, design: Design, source: str, target: str, index: int | None = None) -> None:
        super().__init__(f"Connect {source} → {target}")
        self.design, self.edge, self.index = design, (source, target), index

    def redo(self) -> None:
        self.index = self.design.connect(*self.edge, self.index)

    def undo(self) -> None:
        self.design.disconnect(*self.edge)


class DisconnectCommand(QUndoCommand):
    """Remove one connection; undo puts it back at its index even where a new connection would
    be refused (into an Input, or closing a cycle: a file may hold such connections)."""

    def __init__(self, design: Design, source: str, target: str) -> None:
        super().__init__(f"Disconnect {source} → {target}")
        self.design, self.edge, self.index = design, (source, target), None

    def redo(self) -> None:
        self.index = self.design.disconnect(*self.edge)

    def undo(self) -> None:
        self.design.connect(*self.edge, self.index, allow_cycle=True)


class AddNodeCommand(QUndoCommand):
    def __init__(self, design: Design, node: Node, index: int | None = None) -> None:
        super().__init__(f"Add {node.id}")
        self.design, self.node, self.index = design, node, index

    def redo(self) -> None:
        self.index = self.design.insert_node(self.node, self.index)

    def undo(self) -> None:
        self.design.remove_node(self.node.id)


class RemoveNodeCommand(QUndoCommand):
    """Remove one node; its edges must already be gone (see ``delete_command``)."""

    def __init__(self, design: Design, node_id: str) -> None:
        super().__init__(f"Delete {node_id}")
        self.design, self.node_id = design, node_id
        self.node: Node | None = None
        self.index = 0

    def redo(self) -> None:
        self.node, self.index = self.design.remove_node(self.node_id)

    def undo(self) -> None:
        self.design.insert_node(self.node, self.index)


class MacroCommand(QUndoCommand):
    """Several commands as one undo step. The children are kept and run from Python (Qt-parented
    child commands can lose their Python side and crash when the stack calls them)."""

    def __init__(self, text: str, children: list[QUndoCommand]) -> None:
        super().__init__(text)
        self.children = children

    def redo(self) -> None:
        for child in self.children:
            child.redo()

    def undo(self) -> None:
        for child in reversed(self.children):
            child.undo()


def delete_command(design: Design, node_ids: list[str], edges: list[tuple[str, str]]) -> QUndoCommand:
    """One undo step deleting nodes (with every edge touching them) and extra edges. Edges are
    removed from last to first, so undo puts each back at its original index, in order."""
    doomed, extra = set(node_ids), set(edges)
    all_edges = [e for e in design.edges if e[0] in doomed or e[1] in doomed or e in extra]
    names = ", ".join(node_ids) if node_ids else f"{len(all_edges)} connection(s)"
    children: list[QUndoCommand] = [DisconnectCommand(design, s, t) for s, t in reversed(all_edges)]
    children += [RemoveNodeCommand(design, node_id) for node_id in node_ids]
    return MacroCommand(f"Delete {names}", children)


class SetParamCommand(QUndoCommand):
    def __init__(self, design: Design, node_id: str, name: str, value: Any) -> None:
        super().__init__(f"Set {node_id}.{name}")
        self.design, self.node_id, self.name, self.value = design, node_id, name, value
        self.old: Any = None

    def redo(self) -> None:
        self.old = self.design.set_param(self.node_id, self.name, self.value)

    def undo(self) -> None:
        self.design.set_param(self.node_id, self.name, self.old)


class RenameCommand(QUndoCommand):
    def __init__(self, design: Design, old: str, new: str) -> None:
        super().__init__(f"Rename {old} to {new}")
        self.design, self.old, self.new = design, old, new

    def redo(self) -> None:
        self.design.rename_node(self.old, self.new)

    def undo(self) -> None:
        self.design.rename_node(self.new, self.old)


class LayoutCommand(MoveNodesCommand):
    """Automatic layout as one undoable step (never merged with moves)."""

    def __init__(self, design: Design, positions: dict[str, tuple[float, float]]) -> None:
        super().__init__(design, {n: (design.node(n).position, p) for n, p in positions.items()},
                         "Automatic layout")

    def id(self) -> int:
        return -1


class SetClassesCommand(QUndoCommand):
    """Name the output's classes (``Design.set_classes``) as one undo step; undo puts the old
    names (or none) back."""

    def __init__(self, design: Design, classes: list[str] | None,
                 text: str = "Name the classes") -> None:
        super().__init__(text)
        self.design = design
        self.classes = tuple(classes) if classes is not None else None
        self.old: tuple[str, ...] | None = None

    def redo(self) -> None:
        self.old = self.design.set_classes(self.classes)

    def undo(self) -> None:
        self.design.set_classes(self.old)
