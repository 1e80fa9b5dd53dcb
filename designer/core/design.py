"""The design model: a graph of layer nodes and edges, the single source of truth.

Views listen to its events; every mutation has an exact inverse (so undo commands are one-liners):

=========================================  ============================================
mutation                                   inverse
=========================================  ============================================
``insert_node(node, index)``               ``remove_node(node.id)`` (returns node, index)
``set_param(id, name, value)`` → old       ``set_param(id, name, old)`` (``MISSING`` deletes)
``move_node(id, position)`` → old          ``move_node(id, old)``
``rename_node(old, new)``                  ``rename_node(new, old)``
``connect(src, dst, index)`` → index       ``disconnect(src, dst)`` (returns index)
``set_name(name)`` → old                   ``set_name(old)``
=========================================  ============================================

A node can only be removed once it has no edges: a view deleting a node first disconnects its
edges (``edges_of``) so that undo can restore them in their original order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from designer.core.catalog import LAYER_TYPES

Edge = tuple[str, str]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a parameter that is absent (its default applies)


class GraphError(ValueError):
    """A mutation that the model refuses (unknown id, duplicate edge, ...). The text says why."""


def text_problem(text: str) -> str | None:
    """Why ``text`` can't be written to a file as UTF-8 (a lone surrogate, which JSON's
    ``\\ud800`` escapes and some clipboards can produce), or None if it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"character {exc.start + 1} (U+{ord(text[exc.start]):04X}) is half of a "
                f"character pair, not text that can be saved")
    return None


def classes_problem(classes: object) -> str | None:
    """Why ``classes`` can't name a network's output classes, or None if it can: a list of
    non-empty strings that can be saved, none repeated."""
    if not isinstance(classes, (list, tuple)):
        return "classes must be a list of names"
    seen: set[str] = set()
    for i, name in enumerate(classes):
        if not isinstance(name, str) or not name:
            return f"classes[{i}] must be a non-empty string"
        wrong = text_problem(name)
        if wrong is not None:
            return f"classes[{i}] must be plain text: {wrong}"
        if name in seen:
            return f'classes[{i}]: the name "{name}" appears twice; each class needs its own name'
        seen.add(name)
    return None


def check_id(node_id: object) -> None:
    """Raise GraphError unless ``node_id`` can be a node id: a non-empty string that can be
    saved (weights files and exported code name tensors after it)."""
    if not isinstance(node_id, str) or not node_id:
        raise GraphError("a node id must be a non-empty string")
    wrong = text_problem(node_id)
    if wrong is not None:
        raise GraphError(f"a node id must be plain text: {wrong}")


class Signal:
    """A minimal Qt-free signal: ``connect(callable)``, ``emit(*args)``."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)


@dataclass
class Node:
    """One layer. ``params`` holds only what the user set (defaults may be absent)."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] | None = None
    #: the file this node came from had no "params" key: saving leaves it out again while empty
    params_omitted: bool = field(default=False, compare=False)

    def copy(self) -> "Node":
        return Node(self.id, self.type, copy.deepcopy(self.params), self.position,
                    self.params_omitted)


class Design:
    """A named graph of nodes (in file order) and edges (in file order: Concat's operand order)."""

    def __init__(self, name: str | None = None) -> None:
        self._name = name
        self._classes: tuple[str, ...] | None = None  # the output's class names (file version 2)
        self._nodes: dict[str, Node] = {}
        self._edges: list[Edge] = []
        self._sources: dict[str, list[str]] = {}
        self._targets: dict[str, list[str]] = {}
        # events (past tense): views and the analysis listen to these
        self.node_added = Signal()  # (node, index)
        self.node_removed = Signal()  # (node, index)
        self.param_changed = Signal()  # (node_id, name, old, new)
        self.node_moved = Signal()  # (node_id, old, new)
        self.node_renamed = Signal()  # (old_id, new_id)
        self.edge_added = Signal()  # (edge, index)
        self.edge_removed = Signal()  # (edge, index)
        self.name_changed = Signal()  # (old, new)
        self.classes_changed = Signal()  # (old, new)

    # ------------------------------------------------------------------ reading

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The names of the network's output classes, in output order, or None (contract §2)."""
        return self._classes

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    @property
    def node_ids(self) -> list[str]:
        return list(self._nodes)

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges)

    def node(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise GraphError(f"there is no node {node_id!r}") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def sources(self, node_id: str) -> list[str]:
        """The nodes feeding ``node_id``, in edge order."""
        return list(self._sources[node_id])

    def targets(self, node_id: str) -> list[str]:
        return list(self._targets[node_id])

    def edges_of(self, node_id: str) -> list[tuple[int, Edge]]:
        """Every edge touching the node, with its index, in edge order."""
        return [(i, e) for i, e in enumerate(self._edges) if node_id in e]

    def index_of(self, node_id: str) -> int:
        return list(self._nodes).index(node_id)

    def unique_id(self, stem: str) -> str:
        """A fresh id like ``conv3`` for a new node."""
        stem = stem or "node"
        n = 1
        while f"{stem}{n}" in self._nodes:
            n += 1
        return f"{stem}{n}"

    # ------------------------------------------------------------------ mutations

    def insert_node(self, node: Node, index: int | None = None) -> int:
        check_id(node.id)
        if node.id in self._nodes:
            raise GraphError(f"there is already a node {node.id!r}")
        items = list(self._nodes.items())
        index = len(items) if index is None else max(0, min(index, len(items)))
        items.insert(index, (node.id, node))
        self._nodes = dict(items)
        self._sources[node.id] = []
        self._targets[node.id] = []
        self.node_added.emit(node, index)
        return index

    def remove_node(self, node_id: str) -> tuple[Node, int]:
        node = self.node(node_id)
        if self._sources[node_id] or self._targets[node_id]:
            raise GraphError(f"{node_id} still has connections; disconnect them first")
        index = self.index_of(node_id)
        del self._nodes[node_id], self._sources[node_id], self._targets[node_id]
        self.node_removed.emit(node, index)
        return node, index

    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        """Set (or with ``MISSING``, remove) one parameter; returns the old value or MISSING."""
        node = self.node(node_id)
        old = node.params.get(name, MISSING)
        if value is MISSING:
            node.params.pop(name, None)
        else:
            node.params[name] = value
        self.param_changed.emit(node_id, name, old, value)
        return old

    def move_node(self, node_id: str, position: tuple[float, float] | None) -> tuple[float, float] | None:
        node = self.node(node_id)
        old = node.position
        node.position = None if position is None else (float(position[0]), float(position[1]))
        self.node_moved.emit(node_id, old, node.position)
        return old

    def rename_node(self, old_id: str, new_id: str) -> None:
        node = self.node(old_id)
        check_id(new_id)
        if new_id == old_id:
            return
        if new_id in self._nodes:
            raise GraphError(f"there is already a node {new_id!r}")
        node.id = new_id
        self._nodes = {(new_id if k == old_id else k): v for k, v in self._nodes.items()}
        self._edges = [tuple(new_id if x == old_id else x for x in e) for e in self._edges]  # type: ignore[misc]
        for table in (self._sources, self._targets):
            table[new_id] = table.pop(old_id)
            for lst in table.values():
                lst[:] = [new_id if x == old_id else x for x in lst]
        self.node_renamed.emit(old_id, new_id)

    def check_connect(self, source: str, target: str) -> None:
        """Raise GraphError saying why the edge can't be added (for hover feedback on the canvas)."""
        self.node(source)
        self.node(target)
        if source == target:
            raise GraphError(f"{source} can't feed itself")
        if (source, target) in self._edges:
            raise GraphError(f"{source} already feeds {target}")
        layer = LAYER_TYPES.get(self._nodes[target].type)
        if layer is not None and layer.max_inputs == 0:
            raise GraphError(f"{target} is an Input: nothing can feed it")
        if layer is not None and layer.max_inputs == 1 and self._sources[target]:
            raise GraphError(f"{target} already has its input (from {self._sources[target][0]}); "
                             f"a {layer.name} takes exactly one: merge the two with Add or Concat "
                             f"first")
        if self._reaches(target, source):
            raise GraphError(f"{target} already feeds {source}, so this would make a cycle")

    def can_connect(self, source: str, target: str) -> bool:
        try:
            self.check_connect(source, target)
        except GraphError:
            return False
        return True

    def connect(self, source: str, target: str, index: int | None = None, *,
                allow_cycle: bool = False) -> int:
        """Add the edge ``source → target`` at ``index`` (default: last)."""
        if allow_cycle:  # loading a file: cycles are reported as design errors, not refused
            self.node(source), self.node(target)
            if (source, target) in self._edges:
                raise GraphError(f"{source} already feeds {target}")
        else:
            self.check_connect(source, target)
        index = len(self._edges) if index is None else max(0, min(index, len(self._edges)))
        self._edges.insert(index, (source, target))
        self._reindex(source, target)
        self.edge_added.emit((source, target), index)
        return index

    def disconnect(self, source: str, target: str) -> int:
        try:
            index = self._edges.index((source, target))
        except ValueError:
            raise GraphError(f"{source} does not feed {target}") from None
        del self._edges[index]
        self._reindex(source, target)
        self.edge_removed.emit((source, target), index)
        return index

    def set_classes(self, classes: Iterable[str] | None) -> tuple[str, ...] | None:
        """Name the output's classes (None: unnamed); returns the old names. Each must be a
        non-empty string that can be saved, and no name may repeat."""
        if classes is not None:
            classes = tuple(classes)
            problem = classes_problem(classes)
            if problem is not None:
                raise GraphError(problem)
        old, self._classes = self._classes, classes
        self.classes_changed.emit(old, classes)
        return old

    def set_name(self, name: str | None) -> str | None:
        if name is not None:
            wrong = text_problem(name) if isinstance(name, str) else "it is not a string"
            if wrong is not None:
                raise GraphError(f"a design's name must be plain text: {wrong}")
        old, self._name = self._name, name
        self.name_changed.emit(old, name)
        return old

    # ------------------------------------------------------------------ helpers

    def _reindex(self, source: str, target: str) -> None:
        self._sources[target] = [s for s, t in self._edges if t == target]
        self._targets[source] = [t for s, t in self._edges if s == source]

    def downstream(self, node_id: str) -> list[str]:
        """``node_id`` and every node it feeds, directly or not (in design order)."""
        return self._closure(node_id, self._targets)

    def upstream(self, node_id: str) -> list[str]:
        """``node_id`` and every node feeding it, directly or not (in design order)."""
        return self._closure(node_id, self._sources)

    def _closure(self, node_id: str, links: dict[str, list[str]]) -> list[str]:
        seen, stack = {node_id}, [node_id]
        while stack:
            for n in links[stack.pop()]:
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        return [n for n in self._nodes if n in seen]

    def _reaches(self, start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            for t in self._targets[n]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return False

    @classmethod
    def from_parts(cls, name: str | None, nodes: Iterable[Node], edges: Iterable[Edge]) -> "Design":
        """Build a design in one go (file loading): no events, cycles allowed."""
        design = cls(name)
        table, sources, targets = design._nodes, design._sources, design._targets
        for node in nodes:
            node_id = node.id
            if node_id in table:
                raise GraphError(f"there is already a node {node_id!r}")
            table[node_id] = node
            sources[node_id] = []
            targets[node_id] = []
        seen: set[Edge] = set()
        in_order = design._edges
        for s, t in edges:
            edge = (s, t)
            if edge in seen or s not in table or t not in table:
                if edge in seen:
                    raise GraphError(f"{s} already feeds {t}")
                raise GraphError(f"edge {s!r} → {t!r} names an unknown node")
            seen.add(edge)
            in_order.append(edge)
            sources[t].append(s)
            targets[s].append(t)
        return design

    def copy(self) -> "Design":
        design = Design.from_parts(self._name, (n.copy() for n in self._nodes.values()),
                                   self._edges)
        design._classes = self._classes
        return design
