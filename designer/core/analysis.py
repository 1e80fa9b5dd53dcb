"""Live inference over a whole design: every node's output shape, parameter count, mult-adds,
activation size, receptive field, errors and warnings.

``Analysis`` listens to a ``Design`` and recomputes, on ``refresh()``, only the nodes downstream
of what changed, and stops early where a node's output comes out the same as before.
"""
from __future__ import annotations

import gc
import heapq
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field as dc_field, replace
from math import prod
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from designer.core.catalog import LayerType, resolve_params
from designer.core.design import Design, Edge, Node, Signal
from designer.core.layers import (PASS_THROUGH, ReceptiveField, Upstream, check_input_count,
                                  infer_layer)
from designer.core.problems import (ERROR, WARNING, Advice, Fix, Problem, RemoveEdge, advised,
                                    name_list, short_id)

BYTES_PER_VALUE = 4  # float32

#: from how many nodes on the garbage collector waits for the end of an analysis
PAUSE_COLLECTOR_FROM = 5_000


@contextmanager
def collector_paused(work: int) -> Iterator[None]:
    """Python's cyclic garbage collector paused while ``work`` nodes' worth of objects are made
    (at least :data:`PAUSE_COLLECTOR_FROM`). The analysis makes no reference cycles, so the
    collector would find nothing, but on a 100,000-node design its repeated scans of everything
    made so far cost as much as the analysis itself."""
    if work < PAUSE_COLLECTOR_FROM or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(slots=True)
class NodeInfo:
    """Everything derived about one node."""

    id: str
    type: str
    shape: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    field: ReceptiveField | None = None
    fc_equivalent: int | None = None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    values: dict[str, Any] | None = None  # resolved parameters (defaults filled), None if invalid
    # what this node hands on to the nodes it feeds (None: its output is unknown)
    out: Upstream | None = dc_field(default=None, compare=False, repr=False)
    # the layer and inputs its rule ran on (None: it did not run), to explain it on demand
    _rule: tuple[LayerType, list[Upstream]] | None = dc_field(default=None, compare=False,
                                                              repr=False)
    _derivations: list[tuple[str, str]] | None = dc_field(default=None, compare=False, repr=False)

    @property
    def derivations(self) -> list[tuple[str, str]]:
        """The worked arithmetic, ``[(label, text)]``, e.g. ``("parameters", "10·(5·5·3 + 1) =
        760")``. Built on first use: formatting it for every node on every edit would cost more
        than the inference itself."""
        if self._derivations is None:
            if self._rule is None or self.values is None:
                self._derivations = []
            else:
                layer, ups = self._rule
                self._derivations = list(infer_layer(self.id, layer, self.values, ups,
                                                     explain=True).derivations)
        return self._derivations

    @property
    def activation_bytes(self) -> int:
        return 0 if self.shape is None else prod(self.shape) * BYTES_PER_VALUE

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.errors + self.warnings


def _split(problems: list[Problem] | tuple[Problem, ...]
           ) -> tuple[tuple[Problem, ...], tuple[Problem, ...]]:
    """Errors and warnings, each in the order given. A tuple of one kind is returned as it is
    (a broken 100,000-node design shares each node's graph problems, no copy per node)."""
    if len(problems) == 1:  # the common case (e.g. every node of a cycle): no scan
        p = problems[0]
        if type(problems) is tuple:
            return (problems, ()) if p.severity == ERROR else ((), problems)
        return ((p,), ()) if p.severity == ERROR else ((), (p,))
    errors = tuple(p for p in problems if p.severity == ERROR)
    if len(errors) == len(problems) and type(problems) is tuple:
        return problems, ()
    return errors, tuple(p for p in problems if p.severity == WARNING)


class Analysis:
    """Incremental inference for a design. Call ``refresh()`` after edits (``info`` does it too)."""

    def __init__(self, design: Design) -> None:
        self.design = design
        self.updated = Signal()  # (set of node ids whose info changed), after a refresh
        self._resolved: dict[str, tuple] = {}  # node id -> resolve_params result
        # node id -> (type, layer, values, sources, graph problems) for nodes whose rule can run
        self._plans: dict[str, tuple] = {}
        self._info: dict[str, NodeInfo] = {}
        self._graph_problems: dict[str, tuple[Problem, ...]] = {}
        self._fed: dict[str, bool] = {}
        self._cyclic: set[str] = set()
        self._order: list[str] = []
        self._output: str | None = None
        self._classes_on: str | None = None  # the node that carries the class-count check
        self._totals: dict[str, int] | None = None
        self._problems: list[Problem] | None = None
        self._dirty: set[str] = set(design.node_ids)
        self._structure_dirty = True
        self._checker: Any = None  # the FixChecker, made when first asked for
        self._subscriptions = [
            (design.node_added, self._on_node_added), (design.node_removed, self._on_node_removed),
            (design.param_changed, self._on_param_changed),
            (design.node_renamed, self._on_node_renamed),
            (design.edge_added, self._on_edge_changed), (design.edge_removed, self._on_edge_changed),
            (design.classes_changed, self._on_classes_changed)]
        for signal, slot in self._subscriptions:
            signal.connect(slot)

    def close(self) -> None:
        """Stop listening to the design."""
        for signal, slot in self._subscriptions:
            signal.disconnect(slot)
        if self._checker is not None:
            self._checker.close()
            self._checker = None

    def fix_checker(self) -> Any:
        """The :class:`~designer.core.fixes.FixChecker` of this design: which of a problem's
        fixes work, and its message worded with only those (made on first use; it keeps a
        scratch copy of the design in step with every edit from then on)."""
        if self._checker is None:
            from designer.core.fixes import FixChecker  # it analyses copies: a cycle of imports
            self._checker = FixChecker(self)
        return self._checker

    def copy_onto(self, design: Design) -> "Analysis":
        """An analysis of ``design``, a copy of this one's design (the same ids, types,
        parameters and connections), that starts from this analysis' results instead of working
        them out again; it follows ``design``'s edits from there."""
        self.refresh()
        other = Analysis(design)
        other._resolved = dict(self._resolved)
        other._plans = dict(self._plans)
        other._info = dict(self._info)
        other._graph_problems = dict(self._graph_problems)
        other._fed = dict(self._fed)
        other._cyclic = set(self._cyclic)
        other._order = list(self._order)
        other._output = self._output
        other._classes_on = self._classes_on
        other._dirty = set()
        other._structure_dirty = False
        return other

    # ------------------------------------------------------------------ events

    def _on_classes_changed(self, old: Any, new: Any) -> None:
        if self._output is not None:
            self._dirty.add(self._output)

    def _on_node_added(self, node: Node, index: int) -> None:
        self._structure_dirty = True
        self._dirty.add(node.id)

    def _on_node_removed(self, node: Node, index: int) -> None:
        self._structure_dirty = True
        for table in (self._resolved, self._info, self._graph_problems, self._fed):
            table.pop(node.id, None)
        self._dirty.discard(node.id)

    def _on_param_changed(self, node_id: str, name: str, old: Any, new: Any) -> None:
        self._resolved.pop(node_id, None)
        self._plans.pop(node_id, None)
        self._dirty.add(node_id)

    def _on_node_renamed(self, old: str, new: str) -> None:
        self._structure_dirty = True
        for table in (self._resolved, self._info, self._graph_problems, self._fed):
            table.pop(old, None)
        self._dirty.add(new)  # no cached result under the new id: its targets follow it

    def _on_edge_changed(self, edge: Edge, index: int) -> None:
        self._structure_dirty = True
        self._dirty.add(edge[1])

    # ------------------------------------------------------------------ reading

    def info(self, node_id: str) -> NodeInfo:
        self.refresh()
        return self._info[node_id]

    def infos_by_id(self) -> Mapping[str, NodeInfo]:
        """Every node's info by id (a read-only view, current until the next edit)."""
        self.refresh()
        return MappingProxyType(self._info)

    def infos(self) -> list[NodeInfo]:
        """Every node's info in topological order (nodes on or after a cycle last)."""
        self.refresh()
        return [self._info[n] for n in self._order]

    @property
    def order(self) -> list[str]:
        self.refresh()
        return list(self._order)

    @property
    def output(self) -> str | None:
        """The node taken as the network's output (the last one nothing else uses)."""
        self.refresh()
        return self._output

    @property
    def valid(self) -> bool:
        self.refresh()
        if not self._order:
            return False
        problems = self.problems()
        return not problems or problems[0].severity != ERROR  # errors come first

    def problems(self) -> list[Problem]:
        """Every error, then every warning, in topological order (kept until the next change:
        the panels and the status bar all ask after every edit)."""
        self.refresh()
        if self._problems is None:
            infos = [self._info[n] for n in self._order]
            self._problems = ([p for i in infos if i.errors for p in i.errors]
                              + [p for i in infos if i.warnings for p in i.warnings])
        return list(self._problems)

    def design_problems(self) -> list[str]:
        """Problems of the design as a whole that no node can carry (an empty design)."""
        self.refresh()
        return [] if self._order else ["the design is empty: add an Input node to start"]

    def totals(self) -> dict[str, int]:
        """Parameters, mult-adds and memory of the whole design (kept until the next change)."""
        self.refresh()
        if self._totals is None:
            params = macs = input_values = values = 0
            for info in self._info.values():
                params += info.params
                macs += info.macs
                if info.shape is not None:
                    if info.type == "Input":
                        input_values += prod(info.shape)
                    else:
                        values += prod(info.shape)
            self._totals = {"params": params, "macs": macs,
                            "param_bytes": params * BYTES_PER_VALUE,
                            "input_bytes": input_values * BYTES_PER_VALUE,
                            "activation_bytes": values * BYTES_PER_VALUE}
        return dict(self._totals)

    # ------------------------------------------------------------------ computing

    def refresh(self) -> set[str]:
        """Bring every node's info up to date; returns the ids whose info changed."""
        if not self._dirty and not self._structure_dirty:
            return set()
        work = len(self.design._nodes) if self._structure_dirty else len(self._dirty)
        with collector_paused(work):
            return self._refresh()

    def _refresh(self) -> set[str]:
        self._totals = self._problems = None
        if self._structure_dirty:
            self._analyse_structure()
            self._plans.clear()
            self._structure_dirty = False
        dirty = self._dirty
        # the output carries the check of the classes' count: a new output (or none) is redone
        classes_on = self._output if self.design.classes is not None else None
        if classes_on != self._classes_on:
            dirty.update(n for n in (self._classes_on, classes_on)
                         if n is not None and n in self.design._nodes)
        changed: set[str] = set()
        nodes, targets = self.design._nodes, self.design._targets  # read-only, in the hot loop
        info, plans, plan_for = self._info, self._plans, self._plan
        for node_id in self._order:
            if node_id not in dirty:
                continue
            before = info.get(node_id)
            plan = plans.get(node_id) or plan_for(nodes[node_id])
            if type(plan) is NodeInfo:  # its rule can't run
                now = plan
            else:  # the hot path, inline: it runs for every node downstream of an edit
                node_type, layer, values, sources, graph = plan
                try:
                    ups = [info[s].out for s in sources]
                except KeyError:
                    ups = [None]
                if None in ups:  # an input is unknown: so is this node's output
                    errors, warnings = _split(graph)
                    now = NodeInfo(node_id, node_type, errors=errors, warnings=warnings,
                                   values=values)
                elif node_type in PASS_THROUGH and not graph:  # ReLU and the like: no rule to run
                    shape, field = ups[0].shape, ups[0].field
                    now = NodeInfo(node_id, node_type, shape, 0, 0, field, None, (), (), values,
                                   Upstream(node_id, shape, field), (layer, ups))
                else:
                    inf = infer_layer(node_id, layer, values, ups, explain=False)
                    shape, field = inf.shape, inf.field
                    errors = warnings = ()
                    if inf.problems or graph:
                        errors, warnings = _split([*inf.problems, *graph])
                    now = NodeInfo(node_id, node_type, shape, inf.params, inf.macs, field,
                                   inf.fc_equivalent, errors, warnings, values,
                                   Upstream(node_id, shape, field) if shape is not None else None,
                                   (layer, ups))
            info[node_id] = now
            changed.add(node_id)
            if before is None or before.out != now.out:
                dirty.update(targets[node_id])
        dirty.clear()
        self._classes_on = classes_on
        if classes_on is not None and classes_on in changed:
            self._check_classes(classes_on)
        if changed:
            self.updated.emit(changed)
        return changed

    def _check_classes(self, node_id: str) -> None:
        """Warn on the output node when the design's class names don't match its size."""
        now = self._info[node_id]
        names = self.design.classes
        if now.shape is None:
            return
        if len(now.shape) == 1 and now.shape[0] == len(names):
            return
        size = (f"{now.shape[0]} values" if len(now.shape) == 1
                else f"maps of shape {'×'.join(str(d) for d in now.shape)}, not a flat vector")
        text = (f"the design names {len(names)} classes, but its output gives {size}; "
                f"make the last layer's out_features {len(names)}, or name "
                f"{now.shape[0] if len(now.shape) == 1 else 'as many'} classes")
        self._info[node_id] = replace(now, warnings=now.warnings + (
            Problem(node_id, WARNING, "classes", text),))

    def _plan(self, node: Node) -> tuple | NodeInfo:
        """What a node's rule runs on, ``(type, layer, values, sources, graph problems)``, kept
        until its parameters or the graph change; or, if the rule can't run (unknown type, wrong
        parameters or number of inputs, not fed from the Input), the node's info."""
        node_id = node.id
        resolved = self._resolved.get(node_id)
        if resolved is None:
            resolved = self._resolved[node_id] = resolve_params(node_id, node.type, node.params)
        layer, values, param_errors = resolved
        graph = self._graph_problems.get(node_id)
        if layer is None:
            return self._not_run(node, values, param_errors, None, graph)
        sources = self.design._sources[node_id]
        n = len(sources)
        if n < layer.min_inputs or (layer.max_inputs is not None and n > layer.max_inputs):
            return self._not_run(node, values, param_errors,
                                 check_input_count(node_id, layer, sources), graph)
        if values is None or node_id in self._cyclic or not self._fed.get(node_id):
            return self._not_run(node, values, param_errors, None, graph)
        # valid values come with no parameter errors
        plan = self._plans[node_id] = (node.type, layer, values, tuple(sources),
                                       tuple(graph or ()))
        return plan

    @staticmethod
    def _not_run(node: Node, values: dict[str, Any] | None, param_errors: list[Problem],
                 input_error: Problem | None, graph: tuple[Problem, ...] | None) -> NodeInfo:
        """The info of a node whose rule could not run: its output is unknown."""
        if graph and not param_errors and input_error is None:  # e.g. on a cycle: shared
            errors, warnings = _split(graph)
            return NodeInfo(node.id, node.type, None, 0, 0, None, None, errors, warnings, values)
        problems = [*param_errors]
        if input_error is not None:
            problems.append(input_error)
        if graph:
            problems += graph
        errors, warnings = _split(problems) if problems else ((), ())
        return NodeInfo(node.id, node.type, None, 0, 0, None, None, errors, warnings, values)

    def _analyse_structure(self) -> None:
        """Topological order, cycles, reachability from the Input, outputs: the graph-wide checks.
        Marks nodes whose standing or graph-wide problems changed as dirty."""
        design = self.design
        ids = design.node_ids
        # read-only views of the design's own tables: this runs after every structural edit
        sources, targets = design._sources, design._targets
        types = {n: node.type for n, node in design._nodes.items()}
        # Kahn's algorithm, ties broken by node order
        pending = {n: len(sources[n]) for n in ids}
        order: list[str] = []
        position = {n: i for i, n in enumerate(ids)}
        heap = [(i, n) for i, n in enumerate(ids) if not pending[n]]  # sorted: already a heap
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for t in targets[n]:
                pending[t] -= 1
                if not pending[t]:
                    heapq.heappush(heap, (position[t], t))
        if len(order) == len(ids):
            leftover: list[str] = []
        else:
            placed = set(order)
            leftover = [n for n in ids if n not in placed]
        cycles = _cycles(leftover, targets) if leftover else []
        cyclic = {n for component in cycles for n in component}

        inputs = [n for n in ids if types[n] == "Input"]
        fed: dict[str, bool] = {}
        for n in order:
            ins = sources[n]
            if types[n] == "Input":
                fed[n] = not ins
            elif not ins:
                fed[n] = False
            else:
                ok = True
                for m in ins:
                    if not fed.get(m, False):
                        ok = False
                        break
                fed[n] = ok
        for n in leftover:
            fed[n] = False

        graph_problems: dict[str, list[Problem]] = defaultdict(list)
        # a message repeated on many nodes is one string, shared (not a copy per node)
        if len(inputs) > 1:
            text = (f"the design has {len(inputs):,} Input nodes ({name_list(inputs)}); it needs "
                    f"exactly one: delete the extra ones")
            for n in inputs:
                graph_problems[n].append(Problem(n, ERROR, "input-count-design", text))
        # one message per cycle, on its first node in file order; the others point to it (a
        # message spelling the cycle out on each of its nodes would grow with its length squared)
        for component in cycles:
            first = min(component, key=position.__getitem__)
            graph_problems[first].append(Problem(first, ERROR, "cycle",
                                                 *_cycle_message(first, component, targets)))
            if len(component) > 1:
                pointer = (f"is on the cycle reported at {short_id(first)}: data must flow one "
                           f"way; remove one of its connections")
                for n in component:
                    if n != first:
                        graph_problems[n].append(Problem(n, ERROR, "cycle", pointer))
        # where each cut-off node's inputs are cut, as the end of its message (shared along a
        # chain: a node whose first cut-off input is known takes that input's answer)
        roots: dict[str, str] = {}
        traced: dict[str, str] = {}  # the message for each place a chain is cut, made once
        for n in ids:
            if fed[n] or n in cyclic:
                continue
            ins = sources[n]
            if not ins or types[n] == "Input":
                continue  # reported as a wrong number of inputs
            if not inputs:
                text = "is not fed from an Input: the design has no Input node; add one and connect it"
            else:
                root = None
                for m in ins:
                    if not fed[m]:
                        root = roots.get(m)
                        break
                if root is None:
                    root = _root_of(n, sources, fed, cyclic, roots)
                else:
                    roots[n] = root
                text = traced.get(root)
                if text is None:
                    text = traced[root] = ("is not fed from the Input: its inputs trace back to "
                                           + root)
            graph_problems[n].append(Problem(n, ERROR, "not-fed", text))
        depth: dict[str, int] = {}
        for n in order:  # longest path from a source, in edges
            d = 0
            for m in sources[n]:
                if depth[m] >= d:
                    d = depth[m] + 1
            depth[n] = d
        sinks = [n for n in order if not targets[n]]
        # the output: the deepest sink fed from the Input (a lone Input only if nothing else is)
        candidates = ([n for n in sinks if fed[n] and sources[n]] or [n for n in sinks if fed[n]]
                      or sinks)
        output = max(reversed(candidates), key=lambda n: depth[n]) if candidates else None
        if output is not None and len(sinks) > 1:
            text = (f"is a dead end: nothing uses its output, and the network's output is "
                    f"{short_id(output)} ({len(sinks):,} nodes have no consumer); connect it "
                    f"onward or delete it")
            for n in sinks:
                if n != output and fed[n]:
                    graph_problems[n].append(Problem(n, WARNING, "dead-end", text))

        # what changed
        graph_problems = {n: tuple(found) for n, found in graph_problems.items()}
        old = self._graph_problems
        if not self._info:  # the first analysis: everything is to do
            self._dirty.update(ids)
        else:
            present = design._nodes
            self._dirty.update(n for n in graph_problems.keys() | old.keys()
                               if n in present and graph_problems.get(n) != old.get(n))
            old_fed, old_cyclic = self._fed, self._cyclic
            for n in ids:
                if fed[n] != old_fed.get(n) or (n in cyclic) != (n in old_cyclic):
                    self._dirty.add(n)
        self._graph_problems = graph_problems
        self._fed = fed
        self._cyclic = cyclic
        self._order = order + leftover
        self._output = output
        self._dirty.update(n for n in ids if n not in self._info)


def _cycles(nodes: list[str], targets: dict[str, list[str]]) -> list[list[str]]:
    """The nodes caught in cycles, one list per strongly connected component (Tarjan's algorithm,
    iterative, on the nodes Kahn's algorithm could not place, numbered; a node feeding itself is
    a component on its own)."""
    number = {n: i for i, n in enumerate(nodes)}
    adjacent = [[number[t] for t in targets[n] if t in number] for n in nodes]
    index = [-1] * len(nodes)
    low = [0] * len(nodes)
    on_stack = [False] * len(nodes)
    stack: list[int] = []
    result: list[list[str]] = []
    counter = 0
    for root in range(len(nodes)):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]  # (node, how many of its edges are done)
        while work:
            v, k = work[-1]
            edges = adjacent[v]
            descended = False
            while k < len(edges):
                w = edges[k]
                k += 1
                if index[w] < 0:
                    work[-1] = (v, k)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                    descended = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    component.append(nodes[w])
                    if w == v:
                        break
                if len(component) > 1 or v in edges:
                    result.append(component)
    return result


#: a cycle longer than this is shown by its first few nodes and its last: ``a → b → c → … → z → a``
CYCLE_SHOWN = 6


def _cycle_message(start: str, component: list[str], targets: dict[str, list[str]]
                   ) -> tuple[str, Advice | None]:
    """The one message of a cycle, for its node ``start``: the shortest cycle through it (its
    length, and its nodes, the middle left out when it is long) and how many nodes the knot
    holds in all when several cycles share nodes. Its size does not grow with the cycle. A
    node feeding itself comes with the fix (remove that connection)."""
    if len(component) == 1:
        fix = Fix(f"remove the connection {short_id(start)} → {short_id(start)}",
                  "remove this connection", (RemoveEdge(start, start),))
        return advised(f"feeds itself ({short_id(start)} → {short_id(start)}): data must flow "
                       f"one way, from the Input to the output", [fix])
    path = _cycle_through(start, component, targets)
    if len(path) <= CYCLE_SHOWN:
        shown = [short_id(n) for n in path]
    else:
        shown = [short_id(n) for n in path[:CYCLE_SHOWN - 2]] + ["…", short_id(path[-1])]
    text = " → ".join(shown + [short_id(start)])
    knot = (f", one of the cycles among {len(component):,} layers"
            if len(component) > len(path) else "")
    return (f"is part of a cycle of {len(path):,} layers ({text}){knot}: data must flow one way, "
            f"from the Input to the output; remove one of these connections"), None


def _cycle_through(start: str, component: list[str], targets: dict[str, list[str]]) -> list[str]:
    """The shortest cycle from ``start`` back to it inside its strongly connected component, as
    its nodes in order (``start`` first, not repeated); breadth-first, linear in the component."""
    members = set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    found = None
    while frontier and found is None:
        nxt = []
        for v in frontier:
            for w in targets[v]:
                if w not in members:
                    continue
                if w == start:
                    found = v
                    break
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
            if found is not None:
                break
        frontier = nxt
    path = []
    v = found
    while v is not None and v != start:
        path.append(v)
        v = parents.get(v)
    path.append(start)
    path.reverse()
    return path


def _root_of(node_id: str, sources: dict[str, list[str]], fed: dict[str, bool],
             cyclic: set[str], memo: dict[str, str]) -> str:
    """Follow unfed inputs back to where the chain is cut, for the not-fed message. ``memo``
    keeps the answer for every node passed on the way, so a long cut-off chain is walked once,
    not once per node."""
    path: list[str] = []
    on_path: set[str] = set()
    n = node_id
    while True:
        known = memo.get(n)
        if known is not None:
            text = known
            break
        path.append(n)
        on_path.add(n)
        s = next((s for s in sources[n] if not fed.get(s)), None)
        if s is None:
            text = f"{short_id(n)}, which has no input"
            break
        if s in cyclic:
            text = f"{short_id(s)}, which is part of a cycle"
            break
        if s in on_path:
            text = short_id(s)
            break
        n = s
    for n in path:
        memo[n] = text
    return text
