"""Fragments: part of a design taken out (copy) and put into a design (paste, duplicate).

A fragment is itself a ``Design``: the chosen nodes and only the edges among them, so it can be
written as a design file (the clipboard carries the contract's JSON) and read back.
"""
from __future__ import annotations

import re
from typing import Iterable

from designer.core.design import Design, Edge, Node

_TRAILING_NUMBER = re.compile(r"\d+$")


def extract(design: Design, node_ids: Iterable[str]) -> Design:
    """The chosen nodes (in design order, copied) and the edges between them (in edge order)."""
    chosen = set(node_ids)
    nodes = [n.copy() for n in design.nodes if n.id in chosen]
    edges = [e for e in design.edges if e[0] in chosen and e[1] in chosen]
    return Design.from_parts(design.name, nodes, edges)


def fresh_id(taken: set[str], node_id: str) -> str:
    """``node_id`` if free; else the same stem with the first free number (``conv3`` →
    ``conv4``, ``layer1.0.conv1`` → ``layer1.0.conv2``, ``fc`` → ``fc1``)."""
    if node_id not in taken:
        return node_id
    stem = _TRAILING_NUMBER.sub("", node_id) or "node"
    n = 1
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


def placed(fragment: Design, design: Design,
           offset: tuple[float, float]) -> tuple[list[Node], list[Edge]]:
    """The fragment's nodes and edges ready to add to ``design``: ids made unique there (edges
    follow), positions moved by ``offset``."""
    taken = set(design.node_ids)
    renames: dict[str, str] = {}
    nodes = []
    for node in fragment.nodes:
        new = node.copy()
        new.id = fresh_id(taken, node.id)
        taken.add(new.id)
        renames[node.id] = new.id
        if node.position is not None:
            new.position = (round(node.position[0] + offset[0], 1),
                            round(node.position[1] + offset[1], 1))
        nodes.append(new)
    edges = [(renames[s], renames[t]) for s, t in fragment.edges]
    return nodes, edges


def top_left(fragment: Design) -> tuple[float, float] | None:
    """The smallest x and y among the fragment's positions (None if nothing has one)."""
    positions = [n.position for n in fragment.nodes if n.position is not None]
    if not positions:
        return None
    return min(p[0] for p in positions), min(p[1] for p in positions)
