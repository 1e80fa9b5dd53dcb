"""Live inference: after any sequence of edits, the incremental analysis equals a fresh one, and
an edit recomputes only what lies downstream of it."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.core.design import MISSING, Node
from tests.helpers import chain

TYPES = sorted(LAYER_TYPES)
VALUES = st.one_of(st.integers(-1, 9), st.sampled_from(["same", "valid", None, True, [2, 3]]))
PARAM_NAMES = st.sampled_from(["out_channels", "kernel_size", "stride", "padding", "dilation",
                               "groups", "bias", "output_size", "out_features", "ceil_mode",
                               "channels", "height", "width", "p", "eps"])


def conv_chain(n):
    return chain((3, 32, 32), *[(f"c{i}", "Conv2d", {"out_channels": 4, "kernel_size": 1})
                                for i in range(n)])


def test_parameter_edit_recomputes_only_downstream_and_stops_when_nothing_changes():
    d = conv_chain(50)
    a = Analysis(d)
    a.refresh()
    d.set_param("c25", "out_channels", 8)
    # c26's parameter count changes, but its output shape does not: propagation stops there
    assert a.refresh() == {"c25", "c26"}
    assert a.info("c26").params == 4 * (8 + 1)
    d.set_param("c25", "kernel_size", 3)
    changed = a.refresh()
    assert changed == {f"c{i}" for i in range(25, 50)}
    assert a.info("c49").shape == (4, 30, 30)


def test_no_edit_no_work():
    d = conv_chain(5)
    a = Analysis(d)
    a.refresh()
    assert a.refresh() == set()
    d.move_node("c1", (5, 5))  # moving changes nothing derived
    assert a.refresh() == set()


def test_updated_signal_reports_changes():
    d = conv_chain(3)
    a = Analysis(d)
    a.refresh()
    seen = []
    a.updated.connect(seen.append)
    d.set_param("c2", "kernel_size", 3)
    a.refresh()
    assert seen == [{"c2"}]


def test_changing_the_input_reshapes_the_design():
    d = conv_chain(3)
    a = Analysis(d)
    assert a.info("c2").shape == (4, 32, 32)
    d.set_param("input", "height", 10)
    assert a.info("c2").shape == (4, 10, 32)
    assert a.info("c0").params == 4 * (3 + 1)
    d.set_param("input", "channels", 1)
    assert a.info("c0").params == 4 * (1 + 1)


def fresh(design):
    return {i.id: i for i in Analysis(design).infos()}


edit = st.tuples(st.integers(0, 6), st.integers(0, 10**6), st.sampled_from(TYPES), PARAM_NAMES,
                 VALUES)


@settings(max_examples=150, deadline=None)
@given(st.lists(edit, min_size=1, max_size=25))
def test_incremental_equals_fresh_after_random_edits(edits):
    d = chain((3, 16, 16), ("a", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
              ("b", "ReLU", {}), ("c", "MaxPool2d", {"kernel_size": 2}), ("f", "Flatten", {}),
              ("fc", "Linear", {"out_features": 10}))
    a = Analysis(d)
    a.refresh()
    for kind, pick, type_name, name, value in edits:
        ids = d.node_ids
        if kind == 0:
            d.insert_node(Node(d.unique_id("n"), type_name, {}), pick % (len(ids) + 1))
        elif kind == 1 and ids:
            n = ids[pick % len(ids)]
            for _, (s, t) in reversed(d.edges_of(n)):
                d.disconnect(s, t)
            d.remove_node(n)
        elif kind == 2 and ids:
            d.set_param(ids[pick % len(ids)], name, value)
        elif kind == 3 and ids:
            n = ids[pick % len(ids)]
            d.set_param(n, name, MISSING)
        elif kind == 4 and len(ids) > 1:
            s, t = ids[pick % len(ids)], ids[(pick // 7) % len(ids)]
            if d.can_connect(s, t):
                d.connect(s, t, pick % (len(d.edges) + 1))
        elif kind == 5 and d.edges:
            d.disconnect(*d.edges[pick % len(d.edges)])
        elif kind == 6 and ids:
            n = ids[pick % len(ids)]
            new = f"r{pick}"
            if new not in d:
                d.rename_node(n, new)
        if pick % 3 == 0:  # refresh at random points, as a view would
            a.refresh()
    incremental = {i.id: i for i in a.infos()}
    assert incremental == fresh(d)
    new = Analysis(d)
    assert a.valid == new.valid
    assert a.order == new.order
    assert a.problems() == new.problems()  # kept between edits: must follow every one
    assert a.totals() == new.totals()
    assert [i.derivations for i in a.infos()] == [i.derivations for i in new.infos()]


def test_renaming_a_node_updates_messages_that_name_it():
    d = chain((8, 4, 4), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
              ("fc", "Linear", {"out_features": 3}))
    a = Analysis(d)
    assert "its input from c is [2, 4, 4]" in str(a.info("fc").errors[0])
    d.rename_node("c", "conv1")
    assert "its input from conv1 is [2, 4, 4]" in str(a.info("fc").errors[0])
    assert a.info("conv1").shape == (2, 4, 4)


def test_pass_through_layers_skip_their_rule_with_the_same_result():
    """The analysis gives ReLU-like layers their input's shape and field without running their
    rule; that must be exactly what the rule itself gives, for maps and for flat inputs, after an
    edit as much as on the first pass."""
    from designer.core.catalog import resolve_params
    from designer.core.layers import PASS_THROUGH, Upstream, infer_layer
    assert {"ReLU", "Softmax", "Dropout"} <= PASS_THROUGH
    assert not PASS_THROUGH & {"Conv2d", "BatchNorm2d", "Add", "Linear", "Flatten"}
    for type_name in sorted(PASS_THROUGH):
        d = chain((3, 9, 9), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 2}),
                  ("a", type_name, {}), ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 5}),
                  ("b", type_name, {}))
        a = Analysis(d)
        for edit in (None, ("c", "kernel_size", 5), ("fc", "out_features", 7)):
            if edit is not None:
                d.set_param(*edit)
            for node_id, source in (("a", "c"), ("b", "fc")):
                got, before = a.info(node_id), a.info(source)
                layer, values, _ = resolve_params(node_id, type_name, {})
                ran = infer_layer(node_id, layer, values,
                                  [Upstream(source, before.shape, before.field)])
                assert (got.shape, got.field, got.params, got.macs, got.fc_equivalent) == \
                    (ran.shape, ran.field, ran.params, ran.macs, ran.fc_equivalent)
                assert got.problems == ran.problems == ()
                assert got.derivations == list(ran.derivations)
