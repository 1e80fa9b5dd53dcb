"""The summary of a design: the contract's JSON object and a torchinfo-style text table."""
from __future__ import annotations

import json
from typing import Any, TextIO

from designer.core.analysis import Analysis, NodeInfo, collector_paused
from designer.core.design import Design
from designer.core.problems import Problem, num

#: how many node results checking suggested fixes may recompute for one summary, beyond making
#: the scratch copy (a fix is checked by analysing what it changes; on a huge design with many
#: fixable problems that would add up): past it, messages are printed without their fixes
CHECK_WORK = 100_000


class Wording:
    """Problems as a summary prints them: each message advising only fixes that work (checked
    on a copy of the design, see core/fixes.py). Checking stops once :data:`CHECK_WORK` node
    results have been recomputed; later messages leave their fixes out (``unchecked`` counts
    them) rather than advise what was not checked."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.unchecked = 0
        self._limit: int | None = None

    def __call__(self, problem: Problem) -> str:
        if problem.advice is None:
            return str(problem)
        checker = self.analysis.fix_checker()
        if self._limit is None:
            self._limit = checker.work + len(self.analysis.design) + CHECK_WORK
        check = checker.work < self._limit
        if not check and checker.checked(problem) is None:
            self.unchecked += 1
        return checker.describe(problem, check)


def summarize(design: Design, analysis: Analysis | None = None) -> dict[str, Any]:
    """The dict that ``cnn-designer summary --json`` prints (contract §4). Its
    ``receptive_field`` is unit (0, 0)'s: ``size`` the smallest window (padding included)
    holding every input position that can affect it over all paths, ``start`` that window's
    centre, ``jump`` the distance between neighbouring units' windows; below a merge of paths
    with different jumps (a strided and an unstrided branch added or concatenated) the windows
    of later units are no longer unit 0's moved by one jump, and ``jump`` is the largest of the
    paths' jumps (``core.unit_field`` gives any unit's window exactly)."""
    analysis = analysis or Analysis(design)
    infos = analysis.infos()
    totals = analysis.totals()
    words = Wording(analysis)
    with collector_paused(len(infos)):
        return {
            "valid": analysis.valid,
            "total_params": totals["params"],
            "total_macs": totals["macs"],
            "nodes": [_node_dict(i, words) for i in infos],
        }


def write_json(design: Design, out: TextIO, analysis: Analysis | None = None) -> None:
    """Write :func:`summarize`'s object to ``out`` as JSON (what ``summary --json`` prints): the
    totals first, then one node a line. Each node is encoded as it is written, so neither the
    whole text nor every node's dict is held at once (a 100,000-node design prints 30 MB)."""
    analysis = analysis or Analysis(design)
    infos = analysis.infos()
    totals = analysis.totals()
    words = Wording(analysis)
    out.write(f'{{\n  "valid": {"true" if analysis.valid else "false"},\n'
              f'  "total_params": {totals["params"]},\n'
              f'  "total_macs": {totals["macs"]},\n  "nodes": [')
    with collector_paused(len(infos)):
        sep = "\n    "
        for info in infos:
            out.write(sep + _node_json(info, words))
            sep = ",\n    "
    out.write("\n  ]\n}\n" if infos else "]\n}\n")


#: a string as JSON (ensure_ascii off), NumPy-free and in C where the json module has it
_text = json.encoder.encode_basestring


def _numbers(values: Any) -> str:
    """A list of ints and finite floats as JSON (``repr`` is what the json module writes)."""
    return "[" + ", ".join([repr(v) for v in values]) + "]"


def _node_json(info: NodeInfo, words: "Wording") -> str:
    """:func:`_node_dict` as JSON text, as ``json.dumps(..., ensure_ascii=False)`` writes it,
    without building the dict (a 100,000-node summary spent a fifth of its time there)."""
    field = info.field
    field_json = "null" if field is None else (
        f'{{"size": {_numbers(field.size)}, "jump": {_numbers(field.jump)}, '
        f'"start": {_numbers(field.start)}}}')
    errors = ", ".join([_text(words(p)) for p in info.errors]) if info.errors else ""
    warnings = ", ".join([_text(words(p)) for p in info.warnings]) if info.warnings else ""
    shape = "null" if info.shape is None else _numbers(info.shape)
    return (f'{{"id": {_text(info.id)}, "type": {_text(info.type)}, "output_shape": {shape}, '
            f'"params": {info.params}, "macs": {info.macs}, "receptive_field": {field_json}, '
            f'"errors": [{errors}], "warnings": [{warnings}]}}')


def _node_dict(info: NodeInfo, words: Wording) -> dict[str, Any]:
    return {
        "id": info.id,
        "type": info.type,
        "output_shape": list(info.shape) if info.shape is not None else None,
        "params": info.params,
        "macs": info.macs,
        "receptive_field": info.field.as_dict() if info.field is not None else None,
        "errors": [words(p) for p in info.errors] if info.errors else [],
        "warnings": [words(p) for p in info.warnings] if info.warnings else [],
    }


def _scaled(n: int, unit: int) -> str:
    """``n / unit`` to two decimals with separators, exact for integers of any size."""
    hundredths = (n * 100 + unit // 2) // unit
    return f"{hundredths // 100:,}.{hundredths % 100:02d}"


def _mb(n_bytes: int) -> str:
    return _scaled(n_bytes, 10**6)


def field_text(info: NodeInfo) -> tuple[str, str, str]:
    """Receptive field size, jump and start as short table cells."""
    f = info.field
    if f is None:
        return "--", "--", "--"
    size = f"{f.size[0]}×{f.size[1]}" if f.size[0] != f.size[1] else f"{f.size[0]}×{f.size[0]}"
    jump = num(f.jump[0]) if f.jump[0] == f.jump[1] else f"{num(f.jump[0])}, {num(f.jump[1])}"
    start = (num(f.start[0]) if f.start[0] == f.start[1]
             else f"{num(f.start[0])}, {num(f.start[1])}")
    return size, jump, start


def shape_cell(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def table_row(info: NodeInfo) -> list[str]:
    """Layer, type, output shape, params, mult-adds, RF size, RF jump, RF start."""
    mark = " ✗" if info.errors else (" ⚠" if info.warnings else "")
    size, jump, start = field_text(info)
    return [info.id + mark, info.type, shape_cell(info.shape),
            num(info.params) if info.params else "--",
            num(info.macs) if info.macs else "--", size, jump, start]


def table_rows(analysis: Analysis) -> list[list[str]]:
    """One row per node, in topological order."""
    return [table_row(info) for info in analysis.infos()]


TABLE_HEADER = ["Layer", "Type", "Output shape", "Param #", "Mult-Adds", "RF", "Jump", "Start"]
_RIGHT = {3, 4, 6, 7}


def format_table(design: Design, analysis: Analysis | None = None) -> str:
    """A torchinfo-like text summary: aligned columns, thousands separators, totals, memory,
    then every error and warning."""
    analysis = analysis or Analysis(design)
    rows = table_rows(analysis)
    widths = [max(len(r[c]) for r in rows + [TABLE_HEADER]) for c in range(len(TABLE_HEADER))]

    def line(cells: list[str]) -> str:
        out = []
        for c, cell in enumerate(cells):
            out.append(cell.rjust(widths[c]) if c in _RIGHT else cell.ljust(widths[c]))
        return "  ".join(out).rstrip()

    width = max(len(line(TABLE_HEADER)), 60)
    rule, thin = "=" * width, "-" * width
    totals = analysis.totals()
    out = []
    if design.name:
        out.append(design.name)
    out += [rule, line(TABLE_HEADER), rule]
    out += [line(r) for r in rows]
    if not rows:
        out.append("(no layers)")
    out += [rule,
            f"Total params: {num(totals['params'])}",
            (f"Total mult-adds (G): {_scaled(totals['macs'], 10**9)}" if totals["macs"] >= 10**9
             else f"Total mult-adds (M): {_scaled(totals['macs'], 10**6)}"),
            thin,
            f"Input size (MB): {_mb(totals['input_bytes'])}",
            f"Activations size (MB): {_mb(totals['activation_bytes'])}",
            f"Params size (MB): {_mb(totals['param_bytes'])}",
            f"Estimated total size (MB): "
            f"{_mb(totals['input_bytes'] + totals['activation_bytes'] + totals['param_bytes'])}",
            rule]
    problems = analysis.design_problems()
    words = Wording(analysis)
    errors = [words(p) for p in analysis.problems() if p.severity == "error"]
    warnings = [words(p) for p in analysis.problems() if p.severity == "warning"]
    if problems or errors:
        out.append(f"Errors ({len(problems) + len(errors)}): the design can't run until these are fixed")
        out += [f"  ✗ {p}" for p in problems + errors]
    if warnings:
        out.append(f"Warnings ({len(warnings)}):")
        out += [f"  ⚠ {p}" for p in warnings]
    if not (problems or errors or warnings):
        out.append("No errors or warnings.")
    if words.unchecked:
        out.append(f"(The fixes suggested for {words.unchecked:,} of these problems were not "
                   f"checked, the design being this large, and are left out.)")
    return "\n".join(out)
