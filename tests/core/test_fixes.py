"""Fix-its that are checked: every kind of fix, applied to a copy, removes its problem and adds no
error; a fix that would break the design is neither offered nor advised; the incremental checker
agrees with checking on fresh copies, edit after edit."""
from __future__ import annotations

import random

import pytest

from designer.core.analysis import Analysis
from designer.core.design import Node
from designer.core.fixes import FixChecker, apply_edits, check_fixes
from designer.core.problems import InsertLayer, RemoveEdge, SetParam
from designer.io.design_file import load_design
from designer.io.templates import list_templates
from tests.helpers import chain, graph

INPUT = ("input", "Input", {"channels": 3, "height": 8, "width": 8})


def the_problem(design, node_id, code):
    found = [p for p in Analysis(design).problems() if (p.node_id, p.code) == (node_id, code)]
    assert len(found) == 1, [str(p) for p in Analysis(design).problems()]
    return found[0]


def errors(design):
    return sorted((p.node_id, p.code) for p in Analysis(design).problems() if p.severity == "error")


def applied(design, fix):
    """A copy of ``design`` with ``fix`` applied (the original is left alone)."""
    trial = design.copy()
    apply_edits(trial, fix.edits)
    return trial


def assert_fixes(design, node_id, code, labels):
    """The problem's fixes that are offered are exactly ``labels``, each of them, applied to a
    copy, removes the problem and adds no error, and the message advises just those."""
    problem = the_problem(design, node_id, code)
    checker = Analysis(design).fix_checker()
    offered = checker.fixes(problem)
    assert [f.label for f in offered] == labels
    assert check_fixes(design, problem) == offered  # the plain reference agrees
    before = errors(design)
    for fix in offered:
        trial = applied(design, fix)
        after = Analysis(trial)
        assert not [p for p in after.info(node_id).problems if p.code == code], fix
        assert set(errors(trial)) <= set(before) - {(node_id, code)}, (fix, errors(trial))
        if problem.severity == "warning":
            assert all(not info.warnings for info in after.infos()
                       if info.id == node_id), fix
    text = checker.text(problem)
    assert text == problem.advice.render(offered)
    advice = text[len(problem.advice.head):]
    for fix in problem.fixes:
        assert (fix.phrase in advice) == (fix in offered), (fix.phrase, text)
    return problem, checker


# ---------------------------------------------------------------- each kind of fix


def test_fractional_output_padding_and_stride_the_contract_example():
    d = chain((1, 7, 7), ("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 3}))
    p, checker = assert_fixes(d, "conv1", "fractional-output", ["set padding to 1", "set stride to 2"])
    assert p.fixes[0].edits == (SetParam("conv1", "padding", 1),)
    assert checker.describe(p) == str(p)  # every suggestion works: the contract's text
    assert str(p).endswith("try padding 1 or stride 2")


def test_fractional_output_of_one_axis_changes_only_that_axis():
    # 9 rows are whole with stride 2; 7 columns with stride 3 leave the last one out
    d = chain((1, 9, 7), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": [2, 3]}))
    p, _ = assert_fixes(d, "c", "fractional-output", ["set padding to [0, 1]",
                                                       "set stride to 2"])
    trial = applied(d, p.fixes[0])
    assert trial.node("c").params["padding"] == [0, 1]  # written as the file writes pairs
    assert Analysis(trial).info("c").shape == (1, 4, 3)


def test_pooling_fraction_ceil_mode():
    d = chain((1, 7, 7), ("p", "MaxPool2d", {"kernel_size": 2}))
    p, _ = assert_fixes(d, "p", "fractional-output", ["set stride to 1", "set ceil_mode to true"])
    assert Analysis(applied(d, p.fixes[1])).info("p").shape == (1, 4, 4)


def test_output_too_small_kernel_or_padding_on_every_axis_too_small():
    d = chain((3, 7, 5), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 9}))
    assert_fixes(d, "c", "output-too-small", ["set kernel_size to [7, 5]",
                                              "set padding to [1, 2]"])


def test_groups():
    d = chain((12, 8, 8), ("c", "Conv2d", {"out_channels": 8, "kernel_size": 1, "groups": 3}))
    p, checker = assert_fixes(d, "c", "groups", ["set groups to 1", "set groups to 2",
                                                 "set groups to 4"])
    assert checker.text(p).endswith("try groups 1, 2, 4")


def test_same_padding_with_stride():
    d = chain((3, 8, 8), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 5, "stride": 2,
                                         "padding": "same"}))
    p, checker = assert_fixes(d, "c", "same-stride", ["set padding to 2", "set stride to 1"])
    assert checker.text(p).endswith("use padding 2 instead, or stride 1")


def test_pool_padding_over_half_the_kernel_on_both_axes():
    d = chain((3, 7, 7), ("p", "MaxPool2d", {"kernel_size": [3, 5], "padding": [2, 3]}))
    p, _ = assert_fixes(d, "p", "pool-padding", ["set padding to [1, 2]"])


def test_linear_on_a_map_inserts_a_flatten():
    d = chain((16, 5, 5), ("relu", "ReLU", {}), ("fc", "Linear", {"out_features": 10}))
    p, _ = assert_fixes(d, "fc", "spatial-input", ["insert a Flatten between relu and fc"])
    assert p.fixes[0].edits == (InsertLayer("relu", "fc", "Flatten"),)
    trial = applied(d, p.fixes[0])
    # the new layer's connection to fc takes the old one's place (as the app inserts)
    assert trial.edges == [("input", "relu"), ("flatten1", "fc"), ("relu", "flatten1")]
    assert Analysis(trial).info("fc").params == 10 * 401


def add_of(a_params, b_params, size=8):
    return graph([("input", "Input", {"channels": 4, "height": size, "width": size}),
                  ("a", "Conv2d", a_params), ("b", "Conv2d", b_params), ("add", "Add", {})],
                 [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add")])


def test_add_of_unequal_channels_inserts_a_1x1_projection():
    d = add_of({"out_channels": 4, "kernel_size": 1}, {"out_channels": 8, "kernel_size": 1})
    p, checker = assert_fixes(d, "add", "add-shapes", ["insert a 1×1 Conv2d to [8, 8, 8] after a"])
    assert p.fixes[0].edits == (InsertLayer("a", "add", "Conv2d",
                                            (("out_channels", 8), ("kernel_size", 1))),)
    assert checker.text(p).endswith("use Concat to stack them, or a 1×1 Conv2d to change one's "
                                    "channels")


def test_add_of_unequal_sizes_inserts_a_strided_projection_keeping_the_operand_order():
    # ResNet's shortcut left out: the block's own path halves the map and doubles the channels
    d = add_of({"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1},
               {"out_channels": 4, "kernel_size": 1}, size=7)
    p, _ = assert_fixes(d, "add", "add-shapes", ["insert a 1×1 Conv2d to [8, 4, 4] after b"])
    trial = applied(d, p.fixes[0])
    assert trial.sources("add") == ["a", "conv1"]  # the new layer takes b's place
    assert trial.node("conv1").params == {"out_channels": 8, "kernel_size": 1, "stride": 2}


def test_input_with_inputs_removes_them():
    d = graph([INPUT, ("a", "ReLU", {}), ("b", "ReLU", {})],
              [("input", "a"), ("a", "b"), ("b", "input")])
    p, _ = assert_fixes(d, "input", "input-count", ["remove the connection from b"])
    assert p.fixes[0].edits == (RemoveEdge("b", "input"),)


def test_a_layer_feeding_itself_loses_that_connection():
    d = graph([INPUT, ("r", "ReLU", {}), ("out", "ReLU", {})],
              [("input", "r"), ("r", "r"), ("r", "out")])
    assert_fixes(d, "r", "cycle", ["remove the connection r → r"])


# ---------------------------------------------------------------- fixes that don't work


def test_a_fix_that_would_break_an_add_below_is_neither_offered_nor_advised():
    # c's fixes: padding 2 (2 → 4 rows) or stride 1 (→ 6). Below it a 2×2 pool and a 1×1 stride-3
    # convolution meet in an Add: 1 and 1 now, 2 and 2 with padding 2, but 3 and 2 with stride 1
    d = graph([("input", "Input", {"channels": 1, "height": 8, "width": 8}),
               ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 3}),
               ("a", "MaxPool2d", {"kernel_size": 2}),
               ("b", "Conv2d", {"out_channels": 4, "kernel_size": 1, "stride": 3}),
               ("add", "Add", {})],
              [("input", "c"), ("c", "a"), ("c", "b"), ("a", "add"), ("b", "add")])
    assert Analysis(d).valid
    p = the_problem(d, "c", "fractional-output")
    assert p.text.endswith("try padding 2 or stride 1")  # the rule suggests both
    assert errors(applied(d, p.fixes[1])) == [("add", "add-shapes")]  # stride 1 breaks the Add
    p, checker = assert_fixes(d, "c", "fractional-output", ["set padding to 2"])
    assert checker.text(p).endswith("(PyTorch floors this to 2); try padding 2")


def test_when_no_fix_works_the_message_keeps_only_advice_that_is_no_edit():
    # the pool's only fix (ceil mode or stride 1) would change its size, which the Add below needs
    d = graph([("input", "Input", {"channels": 1, "height": 7, "width": 7}),
               ("p", "MaxPool2d", {"kernel_size": 2}),
               ("q", "AdaptiveAvgPool2d", {"output_size": 3}), ("add", "Add", {})],
              [("input", "p"), ("input", "q"), ("p", "add"), ("q", "add")])
    p, checker = assert_fixes(d, "p", "fractional-output", [])
    assert checker.text(p).endswith("(PyTorch floors this to 3); try another kernel size, "
                                    "stride or padding")
    assert "ceil_mode" not in checker.text(p)


def test_an_error_only_one_fix_reveals_below_the_problem_counts_against_it():
    # "same" padding with stride 2 is an error: nothing below it was checked. Both fixes mend it;
    # stride 1 then gives 8 rows where the Add's other input has 4, padding 2 gives 4
    d = graph([INPUT, ("c", "Conv2d", {"out_channels": 2, "kernel_size": 5, "stride": 2,
                                        "padding": "same"}),
               ("r", "ReLU", {}), ("s", "Conv2d", {"out_channels": 2, "kernel_size": 1,
                                                   "stride": 2}), ("add", "Add", {})],
              [("input", "c"), ("c", "r"), ("input", "s"), ("r", "add"), ("s", "add")])
    p, checker = assert_fixes(d, "c", "same-stride", ["set padding to 2"])
    assert checker.text(p).endswith("but stride is 2; use padding 2 instead")


def test_an_error_every_fix_reveals_was_there_all_along():
    # the Linear on a map is only found once the groups error above it is mended, by any fix
    d = chain((12, 4, 4), ("c", "Conv2d", {"out_channels": 8, "kernel_size": 1, "groups": 3}),
              ("fc", "Linear", {"out_features": 10}))
    assert not Analysis(d).info("fc").errors
    p = the_problem(d, "c", "groups")
    offered = Analysis(d).fix_checker().fixes(p)
    assert [f.label for f in offered] == ["set groups to 1", "set groups to 2", "set groups to 4"]
    assert [e.code for e in Analysis(applied(d, offered[0])).info("fc").errors] == ["spatial-input"]


def test_a_fix_that_adds_a_warning_does_not_fix_a_warning():
    # a 2×2 pool on 5 rows gives 2 and leaves one out: ceil mode gives 3, "stride 1" gives 4;
    # the 2×2 stride-3 convolution below reads 2 rows whole, 3 with one skipped like those between
    # its windows, but 4 with two left: a new warning there
    d = chain((1, 5, 5), ("p", "MaxPool2d", {"kernel_size": 2}),
              ("c", "Conv2d", {"out_channels": 1, "kernel_size": 2, "stride": 3}))
    assert not Analysis(d).info("c").warnings
    stride = the_problem(d, "p", "fractional-output").fixes[0]
    assert stride.label == "set stride to 1"
    assert Analysis(applied(d, stride)).info("c").warnings
    assert_fixes(d, "p", "fractional-output", ["set ceil_mode to true"])


def test_a_fix_whose_edit_cannot_be_made_is_not_offered():
    # the problem was found before its connection went: inserting on it is refused
    d = chain((16, 5, 5), ("relu", "ReLU", {}), ("fc", "Linear", {"out_features": 10}))
    p = the_problem(d, "fc", "spatial-input")
    analysis = Analysis(d)
    checker = analysis.fix_checker()
    d.disconnect("relu", "fc")  # the problem is stale: its connection is gone
    assert checker.fixes(p) == ()
    assert checker.text(p) == ("Linear needs a flat input [F], but its input from relu is "
                               "[16, 5, 5]")


# ---------------------------------------------------------------- templates, laziness, agreement


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_every_templates_problems_fixes_verify(template):
    design = load_design(template.path)
    analysis = Analysis(design)
    checker = analysis.fix_checker()
    for problem in analysis.problems():
        assert checker.fixes(problem) == problem.fixes == check_fixes(design, problem)
        assert checker.text(problem) == problem.text


def test_checking_is_lazy_and_incremental():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_inference import residual_design
    design = residual_design()
    analysis = Analysis(design)
    checker = analysis.fix_checker()
    design.set_param("fc", "out_features", 11)
    design.set_param("b3.conv1", "stride", 3)  # the block's Add gets unequal shapes
    analysis.refresh()
    assert checker.work == 0 and checker._scratch is None  # nothing checked while editing
    [p] = analysis.problems()
    assert [f.label for f in checker.fixes(p)] == ["insert a 1×1 Conv2d to [64, 75, 75] after "
                                                   "b2.out"]
    built = len(design)
    assert built <= checker.work <= built + 2 * 1000
    # asked again: kept; after an edit far below: checked again, recomputing little
    done = checker.work
    assert len(checker.fixes(p)) == 1 and checker.work == done
    design.set_param("fc", "out_features", 12)
    analysis.refresh()
    assert checker.checked(p) is None
    checker.fixes(p)
    assert checker.work - done < 2 * 1000


def _random_edit(design, rng):
    node = rng.choice([n for n in design.nodes if n.type in ("Conv2d", "MaxPool2d", "Linear")])
    if node.type == "Linear":
        if design.sources(node.id) and rng.random() < 0.5:
            source = design.sources(node.id)[0]
            upstream = design.sources(source)
            if upstream:  # skip the Flatten before it
                design.disconnect(source, node.id)
                design.connect(upstream[0], node.id)
        return
    name, value = rng.choice([("stride", rng.choice([1, 2, 3, [2, 3]])),
                              ("padding", rng.choice([0, 1, 2, "same", [1, 0]])),
                              ("kernel_size", rng.choice([1, 2, 3, 5, 40])),
                              ("groups", rng.choice([1, 2, 3])) if node.type == "Conv2d"
                              else ("ceil_mode", rng.choice([True, False]))])
    design.set_param(node.id, name, value)


@pytest.mark.parametrize("template_id", ["lenet5", "resnet18", "inception-block"])
def test_the_checker_agrees_with_fresh_copies_edit_after_edit(template_id):
    """The checker's scratch copy follows every edit (parameters, connections, renames, added and
    removed layers); what it offers must equal checking each fix on a fresh copy."""
    rng = random.Random(template_id)
    design = load_design(next(t for t in list_templates() if t.id == template_id).path)
    analysis = Analysis(design)
    checker = analysis.fix_checker()
    checked = 0
    for step in range(25):
        _random_edit(design, rng)
        if step % 7 == 3:
            design.rename_node(design.node_ids[-1], f"renamed{step}")
        if step % 9 == 4:
            extra = Node(f"extra{step}", "ReLU", {})
            design.insert_node(extra)
            design.connect(design.node_ids[0], extra.id)
            design.disconnect(design.node_ids[0], extra.id)
            design.remove_node(extra.id)
        for problem in analysis.problems():
            if problem.advice is not None:
                assert checker.fixes(problem) == check_fixes(design, problem), str(problem)
                checked += 1
    assert checked >= 5
    # the scratch copy is still the design itself
    assert checker._scratch.edges == design.edges
    assert [(n.id, n.type, n.params) for n in checker._scratch.nodes] == \
        [(n.id, n.type, n.params) for n in design.nodes]


def test_closing_the_analysis_stops_the_checker():
    d = chain((1, 7, 7), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 3}))
    analysis = Analysis(d)
    checker = analysis.fix_checker()
    assert isinstance(checker, FixChecker) and analysis.fix_checker() is checker
    checker.fixes(analysis.problems()[0])
    analysis.close()
    d.set_param("c", "stride", 2)  # no longer followed: nothing breaks
    assert checker._scratch is None


# ---------------------------------------------------------------- the summary's wording


def _broken_below():
    """c's "stride 1" would break the Add below it (see above); its "padding 2" works."""
    return graph([("input", "Input", {"channels": 1, "height": 8, "width": 8}),
                  ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 3}),
                  ("a", "MaxPool2d", {"kernel_size": 2}),
                  ("b", "Conv2d", {"out_channels": 4, "kernel_size": 1, "stride": 3}),
                  ("add", "Add", {})],
                 [("input", "c"), ("c", "a"), ("c", "b"), ("a", "add"), ("b", "add")])


def test_the_summary_advises_only_fixes_that_work():
    from designer.core.summary import format_table, summarize
    d = _broken_below()
    table = format_table(d)
    assert "floors this to 2); try padding 2\n" in table + "\n" and "stride 1" not in table
    [c] = [n for n in summarize(d)["nodes"] if n["id"] == "c"]
    assert c["warnings"][0].endswith("floors this to 2); try padding 2")


def test_past_its_budget_the_summary_leaves_fixes_out_instead_of_checking_them(monkeypatch):
    from designer.core import summary
    monkeypatch.setattr(summary, "CHECK_WORK", -10**9)  # nothing may be checked
    d = _broken_below()
    table = summary.format_table(d)
    assert "floors this to 2); try another kernel size, stride or padding" in table
    assert "padding 2" not in table and "stride 1" not in table
    assert ("(The fixes suggested for 1 of these problems were not checked, the design being "
            "this large, and are left out.)") in table
