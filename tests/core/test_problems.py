"""Every error and warning of the contract: on the right node, in plain words, with the numbers."""
from __future__ import annotations

import pytest

from designer.core.analysis import Analysis
from tests.helpers import chain, graph

INPUT = ("input", "Input", {"channels": 3, "height": 7, "width": 7})


def problems(design, node_id, severity="error"):
    info = Analysis(design).info(node_id)
    return info.errors if severity == "error" else info.warnings


def only(design, node_id, code, severity="error"):
    """The single problem of ``code`` on ``node_id`` (and the design's validity agrees)."""
    found = [p for p in problems(design, node_id, severity) if p.code == code]
    assert len(found) == 1, [str(p) for p in problems(design, node_id, severity)]
    assert found[0].node_id == node_id
    assert str(found[0]).startswith(f"{node_id}: ")
    if severity == "error":
        assert not Analysis(design).valid
    return str(found[0])


def test_contract_example_message_for_a_fractional_width():
    d = chain((1, 6, 7), ("conv1", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 3}))
    text = only(d, "conv1", "fractional-output", "warning")
    assert text == ("conv1: output width (7 − 3 + 2·0)/3 + 1 = 2.33 is not a whole number: the last "
                    "column of the input is never covered (PyTorch floors this to 2); "
                    "try padding 1 or stride 2")
    assert Analysis(d).valid  # a warning does not make the design invalid


def test_fraction_with_only_padding_left_over_is_not_a_warning():
    # ResNet's 3×3 stride-2 padding-1 on 56: (56 − 3 + 2)/2 + 1 = 28.5, the extra is padding only
    d = chain((1, 56, 56), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 2,
                                           "padding": 1}))
    info = Analysis(d).info("c")
    assert info.shape == (1, 28, 28)
    assert not info.warnings
    assert "only padding is left over" in dict(info.derivations)["output height and width"]


def test_pooling_fraction_suggests_ceil_mode():
    d = chain((1, 7, 7), ("p", "MaxPool2d", {"kernel_size": 2}))
    text = only(d, "p", "fractional-output", "warning")
    assert "(7 − 2 + 2·0)/2 + 1 = 3.5" in text and "ceil_mode true" in text


def test_unknown_type_suggests_the_closest():
    d = chain((1, 8, 8), ("c", "Conv3d", {}))
    assert "did you mean Conv2d?" in only(d, "c", "unknown-type")


@pytest.mark.parametrize("params, words", [
    ({"kernel_size": 3}, "needs out_channels"),
    ({"out_channels": "8", "kernel_size": 3}, 'out_channels must be a whole number, but it is "8"'),
    ({"out_channels": 8.0, "kernel_size": 3}, "out_channels must be a whole number"),
    ({"out_channels": True, "kernel_size": 3}, "out_channels must be a whole number, but it is true"),
    ({"out_channels": 0, "kernel_size": 3}, "out_channels must be at least 1, but it is 0"),
    ({"out_channels": 8, "kernel_size": [3, 3, 3]}, "kernel_size must be a whole number or a pair"),
    ({"out_channels": 8, "kernel_size": 3, "stride": 0}, "stride must be at least 1"),
    ({"out_channels": 8, "kernel_size": 3, "padding": -1}, "padding must be at least 0"),
    ({"out_channels": 8, "kernel_size": 3, "padding": "full"}, '"same" or "valid"'),
    ({"out_channels": 8, "kernel_size": 3, "bias": 1}, "bias must be true or false"),
    ({"out_channels": 8, "kernel_size": 3, "kernal": 3}, 'no parameter "kernal"'),
])
def test_bad_parameters(params, words):
    d = chain((3, 8, 8), ("c", "Conv2d", params))
    info = Analysis(d).info("c")
    assert any(words in str(e) for e in info.errors), [str(e) for e in info.errors]
    assert info.shape is None


@pytest.mark.parametrize("layer, params, words", [
    ("Dropout", {"p": 1.5}, "p must be at least 0 and at most 1, but it is 1.5"),
    ("BatchNorm2d", {"eps": 0}, "eps must be above 0"),
    ("LeakyReLU", {"negative_slope": "x"}, "negative_slope must be a number"),
    ("AdaptiveAvgPool2d", {"output_size": 0}, "output_size must be at least 1"),
    ("ReLU", {"inplace": True}, "it takes no parameters"),
])
def test_out_of_range_parameters_of_other_layers(layer, params, words):
    d = chain((3, 8, 8), ("n", layer, params))
    assert any(words in str(e) for e in Analysis(d).info("n").errors)


def test_wrong_number_of_inputs():
    d = graph([INPUT, ("c", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
               ("r", "ReLU", {}), ("add", "Add", {}), ("lonely", "ReLU", {})],
              [("input", "c"), ("input", "r"), ("c", "r"), ("c", "add"), ("r", "input")])
    assert "takes exactly one input, but it has 2 (from input, c)" in only(d, "r", "input-count")
    assert "needs two or more inputs to merge, but it has only 1" in only(d, "add", "input-count")
    assert "Input takes no inputs" in only(d, "input", "input-count")
    assert "has no input" in only(d, "lonely", "input-count")


def test_cycle_names_its_path_on_its_first_node_and_the_others_point_there():
    d = graph([INPUT, ("a", "ReLU", {}), ("b", "ReLU", {}), ("c", "ReLU", {}), ("add", "Add", {})],
              [("input", "add"), ("c", "add"), ("add", "a"), ("a", "b"), ("b", "c")])
    assert ("part of a cycle of 4 layers (a → b → c → add → a): data must flow one way"
            in only(d, "a", "cycle"))
    for n in ("b", "c", "add"):
        assert only(d, n, "cycle") == (f"{n}: is on the cycle reported at a: data must flow one "
                                       f"way; remove one of its connections")


def test_self_loop_is_a_cycle():
    d = graph([INPUT, ("a", "Add", {})], [("input", "a"), ("a", "a")])
    assert "feeds itself (a → a)" in only(d, "a", "cycle")


def test_no_input_and_two_inputs():
    d = graph([("r", "ReLU", {}), ("s", "ReLU", {})], [("r", "s")])
    assert "no Input node" in only(d, "s", "not-fed")
    d = graph([INPUT, ("in2", "Input", {"channels": 1, "height": 4, "width": 4})], [])
    for n in ("input", "in2"):
        assert "2 Input nodes (input, in2)" in only(d, n, "input-count-design")
    empty = graph([], [])
    assert not Analysis(empty).valid
    assert Analysis(empty).design_problems()


def test_node_not_fed_from_the_input():
    d = graph([INPUT, ("a", "ReLU", {}), ("b", "ReLU", {}), ("c", "ReLU", {})],
              [("a", "b"), ("b", "c")])
    assert "trace back to a, which has no input" in only(d, "c", "not-fed")
    assert Analysis(d).info("c").shape is None


def test_output_size_below_one():
    d = chain((3, 7, 7), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 9}))
    text = only(d, "c", "output-too-small")
    assert "(7 − 9 + 2·0)/1 + 1 = −1 is below 1" in text
    assert "at most 7" in text and "padding of at least 1" in text


def test_pooling_padding_over_half_the_kernel():
    d = chain((3, 7, 7), ("p", "MaxPool2d", {"kernel_size": 3, "padding": 2}))
    assert "padding 2 is more than half the kernel size 3 (at most 1)" in only(d, "p", "pool-padding")


def test_same_padding_with_stride():
    d = chain((3, 8, 8), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 5, "stride": 2,
                                         "padding": "same"}))
    text = only(d, "c", "same-stride")
    assert "stride is 2" in text and "use padding 2 instead" in text


def test_groups_must_divide_both_channel_counts():
    d = chain((3, 8, 8), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 1, "groups": 2}))
    text = only(d, "c", "groups")
    assert "input channels (3)" in text and "3/2 = 1.5" in text and "try groups 1" in text


@pytest.mark.parametrize("layer, params", [
    ("Conv2d", {"out_channels": 2, "kernel_size": 1}), ("MaxPool2d", {"kernel_size": 2}),
    ("AvgPool2d", {"kernel_size": 2}), ("AdaptiveAvgPool2d", {"output_size": 1}),
    ("BatchNorm2d", {}),
])
def test_spatial_layer_on_flat_input(layer, params):
    d = chain((3, 8, 8), ("f", "Flatten", {}), ("x", layer, params))
    assert "its input from f is flat [192]" in only(d, "x", "flat-input")


def test_linear_on_spatial_input_names_flatten():
    d = chain((256, 6, 6), ("fc", "Linear", {"out_features": 4096}))
    text = only(d, "fc", "spatial-input")
    assert "insert a Flatten" in text and "[9216]" in text and "37,752,832" in text


def test_add_of_unequal_shapes():
    d = graph([INPUT, ("a", "Conv2d", {"out_channels": 4, "kernel_size": 1}),
               ("b", "Conv2d", {"out_channels": 8, "kernel_size": 1}), ("add", "Add", {})],
              [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add")])
    text = only(d, "add", "add-shapes")
    assert "[4, 7, 7] from a, [8, 7, 7] from b" in text and "Concat" in text


def test_concat_of_unequal_height_or_width():
    d = graph([INPUT, ("a", "Conv2d", {"out_channels": 4, "kernel_size": 1}),
               ("b", "MaxPool2d", {"kernel_size": 2}), ("cat", "Concat", {})],
              [("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat")])
    assert "[4, 7, 7] from a, [3, 3, 3] from b" in only(d, "cat", "concat-sizes")


def test_more_than_one_output_warns_on_the_dead_ends():
    d = graph([INPUT, ("a", "ReLU", {}), ("b", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
               ("c", "ReLU", {})],
              [("input", "a"), ("input", "b"), ("b", "c")])
    text = only(d, "a", "dead-end", "warning")
    assert "the network's output is c" in text
    assert not Analysis(d).info("c").warnings
    assert Analysis(d).output == "c"
    assert Analysis(d).valid


def test_errors_do_not_cascade_downstream():
    d = chain((3, 7, 7), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 9}),
              ("r", "ReLU", {}), ("f", "Flatten", {}))
    a = Analysis(d)
    assert a.info("c").errors
    for n in ("r", "f"):
        assert a.info(n).shape is None and not a.info(n).errors


def test_strided_1x1_shortcut_is_subsampling_not_a_warning():
    # ResNet's downsampling shortcut: a 1×1 window every 2 rows reads rows 0, 2, …, 54 of 56 on
    # purpose; row 55 is skipped like every odd row, so nothing invites "stride 1"
    d = chain((64, 56, 56), ("down", "Conv2d", {"out_channels": 128, "kernel_size": 1,
                                               "stride": 2, "bias": False}))
    info = Analysis(d).info("down")
    assert info.shape == (128, 28, 28) and not info.warnings and not info.errors
    note = dict(info.derivations)["output height and width"]
    assert note.startswith("(56 − 1 + 2·0)/2 + 1 = 28.5 → 28: it keeps every 2nd row and column")
    assert "ResNet" in note and "the last row and column are skipped the same way" in note
    # on an odd size the arithmetic is whole: no note needed
    d = chain((64, 7, 7), ("down", "Conv2d", {"out_channels": 8, "kernel_size": 1, "stride": 2}))
    info = Analysis(d).info("down")
    assert info.shape == (8, 4, 4) and not info.warnings
    assert dict(info.derivations)["output height and width"] == "(7 − 1 + 2·0)/2 + 1 = 4"


@pytest.mark.parametrize("n, k, s, warns", [
    (8, 1, 3, False),   # rows 0, 3, 6 read; 7 skipped like 1, 2, 4, 5
    (8, 2, 3, False),   # windows 0–1, 3–4, 6–7: whole
    (7, 2, 3, True),    # windows 0–1, 3–4; rows 5, 6 left: more than the 1 skipped between
    (9, 2, 4, True),    # windows 0–1, 4–5; rows 6, 7, 8 left: one more than the 2 between
    (8, 2, 4, False),   # windows 0–1, 4–5; rows 6, 7 left, as many as between
    (7, 1, 4, False),   # rows 0, 4; 5, 6 skipped like 1, 2, 3
])
def test_subsampling_windows_warn_only_for_rows_beyond_their_own_gaps(n, k, s, warns):
    """A window narrower than its stride (a subsampling layer) skips ``s − k`` rows between
    windows; rows left at the end are a warning only when there are more of them than that.
    Checked against the windows themselves, listed."""
    d = chain((1, n, 1), ("c", "MaxPool2d", {"kernel_size": [k, 1], "stride": [s, 1]}))
    info = Analysis(d).info("c")
    size = (n - k) // s + 1
    read = {r for i in range(size) for r in range(i * s, i * s + k)}
    trailing = n - 1 - max(read)
    assert trailing == (n - k) % s
    assert bool(info.warnings) == warns == (trailing > max(s - k, 0))
    assert info.shape == (1, size, 1)


def test_the_quick_path_and_the_explained_path_agree_on_window_warnings():
    """Every edit infers without worked arithmetic; the inspector infers with it. Both must give
    the same shape and the same problems, subsampling layers and padding included."""
    import itertools

    from designer.core.catalog import LAYER_TYPES, resolve_params
    from designer.core.layers import INPUT_FIELD, Upstream, infer_layer
    for n, k, s, p, dil, ceil in itertools.product((1, 2, 5, 7, 8), (1, 2, 3), (1, 2, 3, 5),
                                                  (0, 1), (1, 2), (False, True)):
        for t, extra in (("Conv2d", {"out_channels": 1, "dilation": dil}),
                         ("MaxPool2d", {"ceil_mode": ceil, "dilation": dil})):
            raw = {"kernel_size": [k, 1], "stride": [s, 1], "padding": [p, 0], **extra}
            layer, values, errors = resolve_params("x", t, raw)
            ups = [Upstream("input", (1, n, 3), INPUT_FIELD)]
            quick = infer_layer("x", LAYER_TYPES[t], values, ups, explain=False)
            full = infer_layer("x", LAYER_TYPES[t], values, ups, explain=True)
            assert (quick.shape, quick.problems) == (full.shape, full.problems), (t, raw, n)


def test_templates_warn_only_where_the_lecture_means_them_to():
    """ResNet-18's strided 1×1 shortcuts are no warning (following a "try stride 1" broke its
    Adds); the only warnings of the built-in designs are the stride lecture's own examples."""
    from designer.io.templates import list_templates
    from designer.io.design_file import load_design
    warnings = {}
    for template in list_templates():
        analysis = Analysis(load_design(template.path))
        assert analysis.valid, template.id
        warnings[template.id] = sorted((p.node_id, p.code) for p in analysis.problems())
    assert warnings.pop("resnet18") == []
    assert warnings.pop("lecture-strides") == [("conv_stride1", "dead-end"),
                                               ("conv_stride2", "dead-end"),
                                               ("conv_stride3", "fractional-output")]
    assert all(found == [] for found in warnings.values()), warnings
