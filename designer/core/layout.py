"""Automatic top-down layered layout (contract §7), in the Sugiyama style:

1. layers: each node on the row of its longest path from a source (a source feeding only rows
   further down moves down to the row above its first target); edges that close a cycle are left
   out of this step (and drawn anyway, as back edges);
2. every edge spanning several rows is split into a chain of virtual nodes, one per row crossed,
   so that a skip connection gets a lane of its own between the cards; a back edge gets a lane
   from the row of its source up to the row of its target, beside both;
3. rows are ordered to reduce crossings (barycentre sweeps down and up, the best order kept); ties
   keep file order, and the targets of one node keep their edge order (a node's branches come
   out side by side, left to right, in the order of its edges; a merge's inputs in operand order);
4. x coordinates: vertical blocks of nodes aligned with one neighbour each (a lane's virtual
   nodes always, a node with its single or first real neighbour, the middle one of three or
   five), packed left to right, then each block moved towards the mean of its other neighbours
   as far as its neighbours in the rows allow (a fork of four comes out centred over its
   branches); lanes stay straight;
5. each edge becomes a polyline: down from the bottom centre of its source for ``STUB``, then
   from row gap to row gap through its lane, and down into the top centre of its target.
   Slanted pieces lie in the middle of the gaps between rows, vertical ones in lanes, so no
   polyline crosses a card other than its own two ends.

Pure arithmetic on ids and sizes (no Qt): the canvas, the template previews and the tests share
it. ``CARD_W`` and ``CARD_H`` are the canvas's card size.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from designer.core.design import Design

CARD_W, CARD_H = 216.0, 78.0  # a card's size in scene units (the canvas draws cards this size)
ROW = 130.0  # from the top of one row of cards to the top of the next
CARD_GAP = 40.0  # horizontal space between two neighbouring cards
LANE_GAP = 16.0  # between two lanes; a lane keeps (CARD_GAP + LANE_GAP) / 2 from a card
STUB = 13.0  # edges leave and enter cards vertically for this long
COLUMN = CARD_W + CARD_GAP  # from one card's centre to its neighbour's
ROW_GAP = ROW - CARD_H  # the free band between two rows of cards, where edges bend

#: how strongly a block is pulled towards a neighbour it is not aligned with, by the kinds of
#: the link's two ends (real or virtual): long edges pull hardest, so they bend the least
_PULL = {(False, False): 1.0, (False, True): 2.0, (True, False): 2.0, (True, True): 8.0}
_MAX_SWEEPS = 24  # crossing-reduction sweeps at most
_PATIENCE = 4  # sweeps without an improvement before giving up
_REFINE = 40  # coordinate refinement passes at most

Point = tuple[float, float]
Rect = tuple[float, float, float, float]


@dataclass
class Layout:
    """Where everything goes: ``cards`` ``{id: (x, y, width, height)}`` (scene coordinates, y
    down), ``edges`` ``{(source, target): [(x, y), …]}`` from the bottom centre of the source's
    card to the top centre of the target's; ``rows`` ``{id: row number}``."""

    cards: dict[str, Rect] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def positions(self) -> dict[str, Point]:
        """Each node's position as the design file keeps it: the top centre of its card."""
        return {n: (x + w / 2, y) for n, (x, y, w, h) in self.cards.items()}

    def bounds(self) -> Rect:
        """The rectangle around every card and polyline ((0, 0, 0, 0) for an empty design)."""
        xs = [v for x, y, w, h in self.cards.values() for v in (x, x + w)]
        ys = [v for x, y, w, h in self.cards.values() for v in (y, y + h)]
        for points in self.edges.values():
            xs += [p[0] for p in points]
            ys += [p[1] for p in points]
        if not xs:
            return (0.0, 0.0, 0.0, 0.0)
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def card_rect(position: Point) -> Rect:
    """The card of a node at ``position`` (its top centre)."""
    return (position[0] - CARD_W / 2, position[1], CARD_W, CARD_H)


def layered_positions(design: Design) -> dict[str, Point]:
    """A position (top centre of the card) for every node: ``layout(design).positions()``."""
    return layout(design).positions()


# ---------------------------------------------------------------------------------------- steps


def _break_cycles(n: int, ends: list[tuple[int, int]], outs: list[list[int]],
                  ins: list[list[int]], inputs: list[int]) -> tuple[set[int], list[int]]:
    """Depth-first search from the Inputs, then the other sources (file order), following
    edges in edge order: the edges into a node still on the search path close cycles (so an
    edge into an Input is the one left out). Returns those back edges and a topological order
    of the rest."""
    state = [0] * n  # 0 unseen, 1 on the path, 2 done
    back: set[int] = set()
    post: list[int] = []
    roots = inputs + [v for v in range(n) if not ins[v]] + list(range(n))
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(outs[root]))]
        while stack:
            v, it = stack[-1]
            for k in it:
                w = ends[k][1]
                if state[w] == 0:
                    state[w] = 1
                    stack.append((w, iter(outs[w])))
                    break
                if state[w] == 1:
                    back.add(k)
            else:
                state[v] = 2
                post.append(v)
                stack.pop()
    post.reverse()
    return back, post


def _levels(n: int, ends, outs, ins, back: set[int], order: list[int]) -> list[int]:
    """Longest path from a source; sources that feed only lower rows move down to the row
    above their highest target, so a second Input sits next to where it is used."""
    level = [0] * n
    for v in order:
        best = -1
        for k in ins[v]:
            if k not in back:
                u = ends[k][0]
                if level[u] > best:
                    best = level[u]
        level[v] = best + 1
    for v in range(n):
        if any(k not in back for k in ins[v]):
            continue
        below = [level[ends[k][1]] for k in outs[v] if k not in back]
        if below:
            level[v] = min(below) - 1
    return level


class _Graph:
    """The proper layered graph: real nodes 0 … n−1, then virtual ones; links join
    neighbouring rows only. ``up[x]`` / ``down[x]``: ``(neighbour, port)`` in edge order, where
    ``port`` (between −½ and ½) orders the links that share the neighbour."""

    def __init__(self, n: int, level: list[int]) -> None:
        self.n = n
        self.level = list(level)
        self.virtual = [False] * n
        self.up: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        self.down: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        self.anchor: dict[int, int] = {}  # a back edge's lane beside its source or target
        self.sticky: dict[int, list[int]] = {}  # anchor -> its lanes, in edge order

    def add_virtual(self, level: int, anchor: int | None = None) -> int:
        x = len(self.level)
        self.level.append(level)
        self.virtual.append(True)
        self.up.append([])
        self.down.append([])
        if anchor is not None:
            self.anchor[x] = anchor
            self.sticky.setdefault(anchor, []).append(x)
        return x

    def link(self, upper: int, lower: int, port_up: float = 0.0, port_down: float = 0.0) -> None:
        """``port_up``: where the link leaves ``upper`` (seen from below); ``port_down``: where
        it enters ``lower`` (seen from above)."""
        self.up[lower].append((upper, port_up))
        self.down[upper].append((lower, port_down))


def _port(rank: int, count: int) -> float:
    return (rank + 1) / (count + 1) - 0.5


def _build(n: int, ends, outs, ins, back: set[int], level: list[int]
           ) -> tuple[_Graph, list[list[int]]]:
    """The proper graph and, for every edge, the chain of nodes it passes through (forward: the
    source, its lane's virtual nodes top to bottom, the target; back: the lane bottom to top)."""
    g = _Graph(n, level)
    out_rank = {k: (i, len(outs[ends[k][0]])) for v in range(n) for i, k in enumerate(outs[v])}
    in_rank = {k: (i, len(ins[ends[k][1]])) for v in range(n) for i, k in enumerate(ins[v])}
    chains: list[list[int]] = []
    for k, (u, v) in enumerate(ends):
        lu, lv = level[u], level[v]
        if k not in back and lu < lv:
            port_up, port_down = _port(*out_rank[k]), _port(*in_rank[k])
            chain = [u] + [g.add_virtual(l) for l in range(lu + 1, lv)] + [v]
            for i in range(len(chain) - 1):
                g.link(chain[i], chain[i + 1], port_up if i == 0 else 0.0,
                       port_down if i == len(chain) - 2 else 0.0)
        else:  # a back edge (or a self-loop): a lane from the source's row up to the target's
            if lu == lv:
                chain = [g.add_virtual(lu, anchor=u)]
            else:
                top = g.add_virtual(lv, anchor=v)
                middle = [g.add_virtual(l) for l in range(lv + 1, lu)]
                bottom = g.add_virtual(lu, anchor=u)
                chain = [top] + middle + [bottom]
                for i in range(len(chain) - 1):
                    g.link(chain[i], chain[i + 1])
                chain.reverse()
        chains.append(chain)
    rows: list[list[int]] = [[] for _ in range(max(g.level, default=-1) + 1)]
    for x, l in enumerate(g.level):
        rows[l].append(x)
    return g, chains


def _with_sticky(g: _Graph, free: list[int]) -> list[int]:
    """A row in order: each back edge's lane right after the card it belongs to."""
    out = []
    for x in free:
        out.append(x)
        out.extend(g.sticky.get(x, ()))
    return out


def _crossings(g: _Graph, rows: list[list[int]], pos: list[int]) -> int:
    total = 0
    for upper, lower in zip(rows, rows[1:]):
        pairs = sorted((pos[x], pos[c]) for x in upper for c, _ in g.down[x])
        if len(pairs) < 2:
            continue
        size = len(lower)
        tree = [0] * (size + 1)
        seen = 0
        for _, b in pairs:
            # links seen so far that end to the right of b cross this one
            i, count = b + 1, 0
            while i > 0:
                count += tree[i]
                i -= i & -i
            total += seen - count
            seen += 1
            i = b + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
    return total


def _order(g: _Graph, nrows: int) -> list[list[int]]:
    """Rows ordered to reduce crossings."""
    pos = [0] * len(g.level)
    by_row: list[list[int]] = [[] for _ in range(nrows)]
    for x in range(len(g.level)):
        if x not in g.anchor:
            by_row[g.level[x]].append(x)
    inf = float("inf")
    rows: list[list[int]] = []
    for l in range(nrows):
        free = by_row[l]
        if l > 0:
            def key(x: int) -> tuple[float, int]:
                links = g.up[x]
                return (min(pos[p] + f for p, f in links) if links else inf, x)
            free.sort(key=key)
        row = _with_sticky(g, free)
        for i, x in enumerate(row):
            pos[x] = i
        rows.append(row)
    best, best_count = [list(r) for r in rows], _crossings(g, rows, pos)
    misses = 0
    for sweep in range(_MAX_SWEEPS):
        if best_count == 0 or misses >= _PATIENCE:
            break
        downward = sweep % 2 == 0
        sequence = range(1, nrows) if downward else range(nrows - 2, -1, -1)
        links = g.up if downward else g.down
        for l in sequence:
            row = rows[l]

            def centre(x: int) -> tuple[float, int]:
                near = links[x]
                if not near:
                    return (float(pos[x]), pos[x])
                return (sum(pos[p] + f for p, f in near) / len(near), pos[x])
            free = sorted((x for x in row if x not in g.anchor), key=centre)
            row = rows[l] = _with_sticky(g, free)
            for i, x in enumerate(row):
                pos[x] = i
        count = _crossings(g, rows, pos)
        if count < best_count:
            best, best_count, misses = [list(r) for r in rows], count, 0
        else:
            misses += 1
    return best


def _separation(g: _Graph, a: int, b: int) -> float:
    half_a = (CARD_W + CARD_GAP) / 2 if not g.virtual[a] else LANE_GAP / 2
    half_b = (CARD_W + CARD_GAP) / 2 if not g.virtual[b] else LANE_GAP / 2
    return half_a + half_b


def _preferred(g: _Graph, x: int, links: list[tuple[int, float]], pos: list[int]) -> int | None:
    """The neighbour (in one direction) that ``x`` would like to be aligned with."""
    if not links:
        return None
    if g.virtual[x]:
        return links[0][0]
    near = [p for p, _ in links]
    if len(near) == 2:  # a fork or a merge of two: the real one, else the first by edge order
        return next((p for p in near if not g.virtual[p]), near[0])
    if len(near) % 2:
        return sorted(near, key=pos.__getitem__)[len(near) // 2]  # the only one, the middle one
    return None  # an even fan: centred over it instead


def _blocks(g: _Graph, rows: list[list[int]], pos: list[int]) -> list[int]:
    """Vertical alignment: the root (top node) of every node's block."""
    size = len(g.level)
    want_up = [_preferred(g, x, g.up[x], pos) for x in range(size)]
    want_down = [_preferred(g, x, g.down[x], pos) for x in range(size)]
    below = [-1] * size
    has_above = [False] * size
    for lower in rows[1:]:
        pairs = [(x, p) for x in lower if (p := want_up[x]) is not None and want_down[p] == x]
        # lanes first (they must stay straight), then the rest where they cross nothing kept
        pairs.sort(key=lambda xp: (not (g.virtual[xp[0]] and g.virtual[xp[1]]), pos[xp[0]]))
        kept_lower: list[int] = []
        kept_upper: list[int] = []
        for x, p in pairs:
            i = bisect_left(kept_lower, pos[x])
            if (i > 0 and kept_upper[i - 1] >= pos[p]) or (i < len(kept_lower)
                                                            and kept_upper[i] <= pos[p]):
                continue
            kept_lower.insert(i, pos[x])
            kept_upper.insert(i, pos[p])
            below[p] = x
            has_above[x] = True
    root = list(range(size))
    for x in range(size):
        if not has_above[x]:
            y = below[x]
            while y >= 0:
                root[y] = x
                y = below[y]
    return root


def _coordinates(g: _Graph, rows: list[list[int]]) -> list[float]:
    size = len(g.level)
    pos = [0] * size
    for row in rows:
        for i, x in enumerate(row):
            pos[x] = i
    root = _blocks(g, rows, pos)
    # block graph: for two neighbours in a row, the left one's block keeps its distance
    right: dict[int, dict[int, float]] = {}
    left: dict[int, dict[int, float]] = {}
    for row in rows:
        for a, b in zip(row, row[1:]):
            ra, rb = root[a], root[b]
            sep = _separation(g, a, b)
            if right.setdefault(ra, {}).get(rb, -1.0) < sep:
                right[ra][rb] = sep
                left.setdefault(rb, {})[ra] = sep
    blocks = sorted(set(root), key=lambda r: (g.level[r], pos[r]))
    # pack left to right (longest path in the block graph, Kahn's order)
    pending = {b: len(left.get(b, ())) for b in blocks}
    ready = [b for b in blocks if pending[b] == 0]
    ready.reverse()
    x = {b: 0.0 for b in blocks}
    topo = []
    while ready:
        b = ready.pop()
        topo.append(b)
        for c, sep in right.get(b, {}).items():
            if x[b] + sep > x[c]:
                x[c] = x[b] + sep
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
    if len(topo) != len(blocks):  # not expected: alignments never cross; pack row by row then
        return _packed(g, rows)
    # pulls: links between different blocks (and a back edge's lane to its card)
    pulls: dict[int, list[tuple[int, float]]] = {}
    for a in range(size):
        ra = root[a]
        for c, _ in g.down[a]:
            rc = root[c]
            if rc != ra:
                w = _PULL[(g.virtual[a], g.virtual[c])]
                pulls.setdefault(ra, []).append((rc, w))
                pulls.setdefault(rc, []).append((ra, w))
    for lane, card in g.anchor.items():
        if root[lane] != root[card]:
            pulls.setdefault(root[lane], []).append((root[card], 4.0))
    for sweep in range(_REFINE):
        moved = False
        for b in (topo if sweep % 2 else reversed(topo)):
            near = pulls.get(b)
            if not near:
                continue
            weight = sum(w for _, w in near)
            target = float(round(sum(x[c] * w for c, w in near) / weight))
            low = max((x[a] + s for a, s in left.get(b, {}).items()), default=-float("inf"))
            high = min((x[c] - s for c, s in right.get(b, {}).items()), default=float("inf"))
            new = min(max(target, low), high)
            if new != x[b] and low <= high:
                x[b] = new
                moved = True
        if not moved:
            break
    return [x[root[v]] for v in range(size)]


def _packed(g: _Graph, rows: list[list[int]]) -> list[float]:
    xs = [0.0] * len(g.level)
    for row in rows:
        at = 0.0
        for i, v in enumerate(row):
            if i:
                at += _separation(g, row[i - 1], v)
            xs[v] = at
    return xs


def _simplify(points: list[Point]) -> list[Point]:
    """Drop repeated points and the middle of three on one vertical or horizontal line."""
    out: list[Point] = []
    for p in points:
        if out and out[-1] == p:
            continue
        if len(out) >= 2:
            a, b = out[-2], out[-1]
            if (a[0] == b[0] == p[0] and (b[1] - a[1]) * (p[1] - b[1]) > 0) or \
               (a[1] == b[1] == p[1] and (b[0] - a[0]) * (p[0] - b[0]) > 0):
                out[-1] = p
                continue
        out.append(p)
    return out


def layout(design: Design) -> Layout:
    """The automatic layout of a design (contract §7). Works for any design a file can hold:
    cycles, several Inputs, unconnected nodes, self-loops."""
    ids = design.node_ids
    n = len(ids)
    if n == 0:
        return Layout()
    index = {node_id: i for i, node_id in enumerate(ids)}
    edges = design.edges
    ends = [(index[s], index[t]) for s, t in edges]
    outs: list[list[int]] = [[] for _ in range(n)]
    ins: list[list[int]] = [[] for _ in range(n)]
    for k, (u, v) in enumerate(ends):
        outs[u].append(k)
        ins[v].append(k)
    inputs = [i for i, node in enumerate(design.nodes) if node.type == "Input"]
    back, order = _break_cycles(n, ends, outs, ins, inputs)
    level = _levels(n, ends, outs, ins, back, order)
    g, chains = _build(n, ends, outs, ins, back, level)
    rows = _order(g, max(level) + 1)
    xs = _coordinates(g, rows)
    # the first card of the top row at x = 0
    origin = next(xs[v] for v in rows[0] if not g.virtual[v])
    xs = [float(round(x - origin)) for x in xs]

    def top(l: int) -> float:
        return l * ROW

    def bottom(l: int) -> float:
        return l * ROW + CARD_H

    out = Layout()
    for v, node_id in enumerate(ids):
        out.cards[node_id] = (xs[v] - CARD_W / 2, top(level[v]), CARD_W, CARD_H)
        out.rows[node_id] = level[v]
    for k, (u, v) in enumerate(ends):
        chain = chains[k]
        lu, lv = level[u], level[v]
        start = (xs[u], bottom(lu))
        points = [start, (xs[u], bottom(lu) + STUB)]
        if k not in back and lu < lv:
            for d in chain[1:-1]:
                l = g.level[d]
                points += [(xs[d], top(l) - STUB), (xs[d], bottom(l) + STUB)]
        else:  # up through the lane beside the source, … , beside the target
            points.append((xs[chain[0]], bottom(lu) + STUB))
            for d in chain:
                l = g.level[d]
                points += [(xs[d], bottom(l) + STUB), (xs[d], top(l) - STUB)]
        points += [(xs[v], top(lv) - STUB), (xs[v], top(lv))]
        out.edges[edges[k]] = _simplify(points)
    return out


# ------------------------------------------------------------------------- routing around cards

ROUTE_CLEARANCE = 6.0  # a route keeps at least this far from every card
LANE_CLEARANCE = 20.0  # a lane beside a card runs this far from its side
_REACH = 3 * COLUMN  # lanes are looked for among the cards this far beside a route
_MAX_LANES = 48  # lanes tried at most before giving up


def _piece_box(p: Point, q: Point, margin: float) -> Rect:
    """The box a piece of a route is drawn in (a slanted piece is drawn as an S-curve that
    fills its box), grown by ``margin``."""
    x0, x1 = min(p[0], q[0]), max(p[0], q[0])
    y0, y1 = min(p[1], q[1]), max(p[1], q[1])
    return (x0 - margin, y0 - margin, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def route_crosses(points: list[Point], card: Rect, margin: float = ROUTE_CLEARANCE) -> bool:
    """Whether a route, as the canvas draws it, comes within ``margin`` of ``card``."""
    return any(_overlap(_piece_box(p, q, margin), card) for p, q in zip(points, points[1:]))


def route_box(points: list[Point]) -> Rect:
    """The box around a route."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


STRAIGHT, LANE, CROSSING = "straight", "lane", "crossing"


def route(start: Point, end: Point, cards_in) -> tuple[list[Point], str]:
    """A route for a connection between cards the user placed (a cheap router, for edits;
    ``layout`` gives the routes of a whole design). ``start``: the source's bottom centre,
    ``end``: the target's top centre; ``cards_in(rect)`` gives the cards ``(x, y, w, h)`` that
    may overlap ``rect`` (more is fine). Tried in turn: straight (an S-curve in the box between
    the ports) if that box is clear; else down, across to a lane, along it, across and down,
    the lane beside the source, beside the target, or beside a card in the way, the shortest
    first. Returns the points and how they go: ``STRAIGHT``, ``LANE`` (both clear of every
    card), or ``CROSSING`` (nothing was clear: the straight route, over cards)."""
    sx, sy = start
    tx, ty = end
    y_out, y_in = sy + STUB, ty - STUB
    margin = ROUTE_CLEARANCE

    def clear(p: Point, q: Point) -> bool:
        box = _piece_box(p, q, margin)
        return not any(_overlap(box, card) for card in cards_in(box))

    straight = _simplify([start, (sx, y_out), (tx, y_in), end])
    if y_in >= y_out and clear((sx, y_out), (tx, y_in)):
        return straight, STRAIGHT
    low, high = min(y_out, y_in), max(y_out, y_in)
    region = (min(sx, tx) - _REACH, low, abs(tx - sx) + 2 * _REACH, high - low)
    lanes = {sx, tx}
    for x, y, w, h in cards_in(region):
        lanes.add(x - LANE_CLEARANCE)
        lanes.add(x + w + LANE_CLEARANCE)
    for lane in sorted(lanes, key=lambda x: (abs(x - sx) + abs(x - tx), abs(x - sx), x))[:_MAX_LANES]:
        if clear((sx, y_out), (lane, y_out)) and clear((lane, y_out), (lane, y_in)) \
                and clear((lane, y_in), (tx, y_in)):
            return _simplify([start, (sx, y_out), (lane, y_out), (lane, y_in), (tx, y_in), end]), LANE
    return straight, CROSSING
