"""Fix-its that are checked: a problem's suggested fixes (``Problem.fixes``, data made by the
rule that found it) are tried on a copy of the design, and offered only if they work.

A fix **works** when, applied to a copy of the design and analysed there:

- the problem is gone: its node has fewer problems of its code than before (a node can have
  two of one code, one per axis, and a fix may mend only one);
- nothing new is wrong: no node has more errors of any code than it had, and no new layer has
  any. When the problem is a warning, no node gets a new warning either (trading one warning
  for another is no fix); fixing an error may leave a warning behind (e.g. a dead end).
- Nodes whose layer rule could not run before (an input's shape was unknown: they sit below
  an error) were never checked. What their rule finds once the shapes are known counts against
  a fix only if some other passing fix of the same problem avoids it: what every fix reveals
  was wrong all along (see :func:`choose`). Problems of the graph and the parameters on such
  nodes always count.

A message words its advice from its fixes (``Advice``), so a suggestion that does not work is
left out of the text as well; advice that is not an edit ("use Concat to stack them") stays.

**Cost.** Checking is lazy: nothing is checked while editing, only when a problem's text or
fixes are asked for (the Problems panel for the problems it shows, the summary, an inspector),
and the answer is kept until the design changes. :class:`FixChecker` keeps one scratch copy of
the design in step with the real one (every edit is mirrored, which costs a dictionary update)
and its own incremental analysis, started from a copy of the real analysis' results. A fix is
applied to the scratch copy, the scratch analysis recomputes only what the fix reaches (as the
real one does after an edit), the result is compared with the real analysis on those nodes,
and the fix is undone. So checking a fix costs about what the same edit costs the app, and
nothing is done for problems without fixes. ``work`` counts the nodes recomputed, so callers
with a large design can bound how much they check (see ``summary``). The scratch copy is made
the first time a fix is checked (a copy of the nodes and of the analysis' tables, linear in the
design) and kept, costing about the memory of the design and its analysis once more.
"""
from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Callable, Iterable

from designer.core.design import Design, GraphError, Node
from designer.core.layers import RULE_CODES
from designer.core.problems import (ERROR, WARNING, Edit, Fix, InsertLayer, Problem, RemoveEdge,
                                    SetParam)

#: stems of the ids of layers a fix inserts (as the palette names new layers: flatten1, conv3)
ID_STEMS = {"Flatten": "flatten", "Conv2d": "conv", "MaxPool2d": "pool", "Linear": "fc",
            "BatchNorm2d": "bn", "ReLU": "relu"}


def file_value(value: Any) -> Any:
    """A fix's parameter value as a design file holds it: pairs as lists."""
    return list(value) if isinstance(value, tuple) else value


def new_node_id(design: Design, type_name: str) -> str:
    """The id a layer inserted by a fix gets in ``design``."""
    return design.unique_id(ID_STEMS.get(type_name, type_name.lower()))


def apply_edits(design: Design, edits: Iterable[Edit]) -> tuple[list[str], list[Callable[[], Any]]]:
    """Apply a fix's edits to ``design`` (a copy: the app applies them through its undo stack).
    Returns the ids of the layers added and the steps that undo everything, last first. Raises
    GraphError if an edit can't be made (a node or connection is gone, a connection would make a
    cycle); whatever was done is undone then."""
    added: list[str] = []
    undo: list[Callable[[], Any]] = []
    try:
        for edit in edits:
            if isinstance(edit, SetParam):
                old = design.set_param(edit.node_id, edit.name, file_value(edit.value))
                undo.append(lambda e=edit, old=old: design.set_param(e.node_id, e.name, old))
            elif isinstance(edit, InsertLayer):
                source, target = edit.source, edit.target
                index = _edge_index(design, source, target)
                node = Node(new_node_id(design, edit.type), edit.type,
                            {name: file_value(v) for name, v in edit.params})
                design.insert_node(node)
                undo.append(lambda n=node.id: design.remove_node(n))
                design.disconnect(source, target)
                undo.append(lambda s=source, t=target, i=index: design.connect(s, t, i,
                                                                              allow_cycle=True))
                design.connect(source, node.id)
                undo.append(lambda s=source, n=node.id: design.disconnect(s, n))
                design.connect(node.id, target, index)
                undo.append(lambda n=node.id, t=target: design.disconnect(n, t))
                added.append(node.id)
            elif isinstance(edit, RemoveEdge):
                index = design.disconnect(edit.source, edit.target)
                undo.append(lambda e=edit, i=index: design.connect(e.source, e.target, i,
                                                                  allow_cycle=True))
            else:  # pragma: no cover - every kind of edit is handled above
                raise GraphError(f"unknown kind of edit {edit!r}")
    except GraphError:
        for step in reversed(undo):
            step()
        raise
    undo.reverse()
    return added, undo


def _edge_index(design: Design, source: str, target: str) -> int:
    design.node(source)
    design.node(target)
    try:
        return design._edges.index((source, target))
    except ValueError:
        raise GraphError(f"{source} does not feed {target}") from None


def assess(before: Any, after: Any, problem: Problem, touched: Iterable[str],
           added: Iterable[str]) -> tuple[bool, Counter]:
    """How a fix for ``problem`` fares: ``before`` and ``after`` are the analyses of the design
    without and with it, ``touched`` the nodes whose results may differ between them, ``added``
    the layers it inserted. Returns whether it passes (the problem gone, nothing new wrong on
    any node that was checked before) and what it revealed on nodes that were not: ``(node,
    severity, code)`` counted (see :func:`choose`)."""
    old, new = before.infos_by_id(), after.infos_by_id()
    revealed: Counter = Counter()
    fixed = problem.node_id
    if fixed in new:
        kind = problem.severity, problem.code
        was = sum(1 for p in old[fixed].problems if (p.severity, p.code) == kind)
        now = sum(1 for p in new[fixed].problems if (p.severity, p.code) == kind)
        if now >= was:
            return False, revealed
    severities = (ERROR, WARNING) if problem.severity == WARNING else (ERROR,)
    for node_id in set(touched) | set(added):
        now_info = new.get(node_id)
        if now_info is None:
            continue
        was_info = old.get(node_id)
        if was_info is None:  # a layer the fix added: nothing may be wrong with it
            if any(p.severity in severities for p in now_info.problems):
                return False, revealed
            continue
        # its rule could not run before (an input's shape was unknown): what the rule finds now
        # was not checked before the fix
        hidden = was_info._rule is None and node_id != fixed
        for severity in severities:
            now_codes = Counter(p.code for p in now_info.problems if p.severity == severity)
            if not now_codes:
                continue
            was_codes = Counter(p.code for p in was_info.problems if p.severity == severity)
            for code, n in now_codes.items():
                if n > was_codes[code]:
                    if hidden and code in RULE_CODES:
                        revealed[node_id, severity, code] += n - was_codes[code]
                    else:
                        return False, revealed
    return True, revealed


def choose(outcomes: list[tuple[Fix, bool, Counter]]) -> tuple[Fix, ...]:
    """The fixes that work, from each fix's :func:`assess`. A problem that stops the shapes
    (an error) hides what the layers below it would find; once fixed, they are checked again.
    What every passing fix reveals there was wrong all along, whichever fix is chosen: it does
    not count against them. What only some of them reveal is theirs: those are left out (e.g.
    "stride 1" for a strided "same" padding when "padding 2 instead" keeps the map size an Add
    below needs)."""
    passing = [(fix, revealed) for fix, ok, revealed in outcomes if ok]
    if not passing:
        return ()
    common = passing[0][1]
    for _, revealed in passing[1:]:
        common = common & revealed
    return tuple(fix for fix, revealed in passing if not revealed - common)


def check_fixes(design: Design, problem: Problem, before: Any = None) -> tuple[Fix, ...]:
    """The fixes of ``problem`` that work, the plain way: for each, a fresh copy of the design
    with the fix applied, analysed from scratch and compared node by node (the reference that
    :class:`FixChecker` must agree with)."""
    from designer.core.analysis import Analysis
    if before is None:
        before = Analysis(design)
    outcomes = []
    for fix in problem.fixes:
        trial = design.copy()
        try:
            added, _ = apply_edits(trial, fix.edits)
        except GraphError:
            continue
        after = Analysis(trial)
        try:
            outcomes.append((fix, *assess(before, after, problem, trial.node_ids, added)))
        finally:
            after.close()
    return choose(outcomes)


class FixChecker:
    """Checks problems' fixes for one design and its analysis, lazily, keeping the answers
    until the design changes (see the module's notes for how and at what cost)."""

    def __init__(self, analysis: Any) -> None:
        self.analysis = analysis
        self.design: Design = analysis.design
        self.work = 0  # nodes recomputed by checks so far
        self._results: dict[Problem, tuple[Fix, ...]] = {}
        self._scratch: Design | None = None
        self._differs: set[str] = set()  # nodes whose scratch results may differ from the real
        self._scratch_analysis: Any = None
        d = self.design
        self._subscriptions = [
            (d.node_added, self._on_node_added), (d.node_removed, self._on_node_removed),
            (d.param_changed, self._on_param_changed), (d.node_renamed, self._on_node_renamed),
            (d.edge_added, self._on_edge_added), (d.edge_removed, self._on_edge_removed)]
        for signal, slot in self._subscriptions:
            signal.connect(slot)

    def close(self) -> None:
        for signal, slot in self._subscriptions:
            signal.disconnect(slot)
        self._drop_scratch()

    # ------------------------------------------------------------------ asking

    def checked(self, problem: Problem) -> tuple[Fix, ...] | None:
        """The fixes of ``problem`` that work, if they have been checked since the last edit
        (None if not yet; ``()`` at once for a problem without fixes)."""
        if problem.advice is None:
            return ()
        return self._results.get(problem)

    def fixes(self, problem: Problem) -> tuple[Fix, ...]:
        """The fixes of ``problem`` that work (checked now if not since the last edit)."""
        if problem.advice is None:
            return ()
        found = self._results.get(problem)
        if found is None:
            outcomes = []
            for fix in problem.fixes:
                outcome = self._try(problem, fix)
                if outcome is not None:
                    outcomes.append((fix, *outcome))
            found = self._results[problem] = choose(outcomes)
        return found

    def text(self, problem: Problem, check: bool = True) -> str:
        """The problem's message advising only fixes that work. With ``check`` false a problem
        not checked yet is worded without any of its fixes (never with unchecked ones)."""
        if problem.advice is None:
            return problem.text
        found = self.fixes(problem) if check else (self._results.get(problem) or ())
        return problem.advice.render(found)

    def describe(self, problem: Problem, check: bool = True) -> str:
        """``str(problem)`` with :meth:`text`: ``node: message``."""
        return f"{problem.node_id}: {self.text(problem, check)}"

    # ------------------------------------------------------------------ checking

    def _try(self, problem: Problem, fix: Fix) -> tuple[bool, Counter] | None:
        """:func:`assess` of ``fix`` on the scratch copy (None if it can't be applied)."""
        real = self.analysis
        real.refresh()
        design, analysis = self._ensure_scratch()
        try:
            added, undo = apply_edits(design, fix.edits)
        except GraphError:
            return None
        try:
            touched = analysis.refresh()
            self.work += len(touched)
            # the scratch analysis recomputes only what differs from its last state, which may
            # be an earlier fix's: every node touched since it was made may differ from the real
            # design's (a node reached by no fix since equals it)
            self._differs |= touched
            return assess(real, analysis, problem, self._differs, added)
        finally:
            for step in undo:
                step()

    def _ensure_scratch(self) -> tuple[Design, Any]:
        if self._scratch is None:
            real = self.design
            self._scratch = Design.from_parts(
                real.name, [Node(n.id, n.type, dict(n.params)) for n in real._nodes.values()],
                real._edges)
            self._scratch_analysis = self.analysis.copy_onto(self._scratch)
            self._differs = set()
            self.work += len(real._nodes)
        return self._scratch, self._scratch_analysis

    def _drop_scratch(self) -> None:
        if self._scratch_analysis is not None:
            self._scratch_analysis.close()
        self._scratch = self._scratch_analysis = None

    # ------------------------------------------------------------------ following the design

    def _mirror(self, edit: Callable[[Design], Any]) -> None:
        """Every edit of the design forgets the answers and is made on the scratch copy too (if
        that fails, the copy is dropped and made again when next needed)."""
        self._results.clear()
        if self._scratch is not None:
            try:
                edit(self._scratch)
            except Exception:  # noqa: BLE001 - out of step: start again from the design
                self._drop_scratch()

    def _on_node_added(self, node: Node, index: int) -> None:
        self._mirror(lambda d: d.insert_node(Node(node.id, node.type, copy.deepcopy(node.params)),
                                             index))

    def _on_node_removed(self, node: Node, index: int) -> None:
        self._mirror(lambda d: d.remove_node(node.id))

    def _on_param_changed(self, node_id: str, name: str, old: Any, new: Any) -> None:
        self._mirror(lambda d: d.set_param(node_id, name, copy.deepcopy(new)))

    def _on_node_renamed(self, old: str, new: str) -> None:
        self._mirror(lambda d: d.rename_node(old, new))

    def _on_edge_added(self, edge: tuple[str, str], index: int) -> None:
        self._mirror(lambda d: d.connect(edge[0], edge[1], index, allow_cycle=True))

    def _on_edge_removed(self, edge: tuple[str, str], index: int) -> None:
        self._mirror(lambda d: d.disconnect(*edge))
