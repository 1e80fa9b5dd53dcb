"""Automatic top-down layered layout: each node on the row of its longest path from a source,
rows ordered to reduce edge crossings (barycentre sweeps), rows centred on one axis."""
from __future__ import annotations

from designer.core.design import Design

COLUMN = 240.0  # horizontal distance between neighbouring nodes
ROW = 130.0  # vertical distance between layers


def layered_positions(design: Design, column: float = COLUMN, row: float = ROW
                      ) -> dict[str, tuple[float, float]]:
    """A position for every node: ``{id: (x, y)}``. Cycles are broken by node order."""
    ids = design.node_ids
    index = {n: i for i, n in enumerate(ids)}
    depth: dict[str, int] = {}
    # longest path layering over a DFS order that ignores edges closing a cycle
    state: dict[str, int] = {}
    order: list[str] = []
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(design.targets(root)))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            for t in it:
                if t not in state:
                    state[t] = 1
                    stack.append((t, iter(design.targets(t))))
                    break
            else:
                state[node] = 2
                order.append(node)
                stack.pop()
    order.reverse()  # a topological order where there are no cycles
    rank_in_order = {n: i for i, n in enumerate(order)}
    for n in order:
        preds = [s for s in design.sources(n) if rank_in_order[s] < rank_in_order[n]]
        depth[n] = 1 + max((depth[s] for s in preds), default=-1)
    layers: dict[int, list[str]] = {}
    for n in ids:
        layers.setdefault(depth[n], []).append(n)
    # barycentre sweeps, down then up, keeping file order for ties
    position = {n: float(i) for layer in layers.values() for i, n in enumerate(layer)}
    levels = sorted(layers)
    for sweep in range(4):
        sequence = levels[1:] if sweep % 2 == 0 else list(reversed(levels[:-1]))
        for level in sequence:
            layer = layers[level]

            def centre(n: str) -> float:
                near = design.sources(n) if sweep % 2 == 0 else design.targets(n)
                near = [m for m in near if m in position and depth[m] != level]
                return sum(position[m] for m in near) / len(near) if near else position[n]
            layer.sort(key=lambda n: (centre(n), index[n]))
            for i, n in enumerate(layer):
                position[n] = float(i)
    out = {}
    for level, layer in layers.items():
        offset = (len(layer) - 1) / 2
        for i, n in enumerate(layer):
            out[n] = ((i - offset) * column, level * row)
    return out
