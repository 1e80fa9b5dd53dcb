"""Node ids and design names are text that can be saved: the model refuses anything else."""
from __future__ import annotations

import pytest

from designer.core.design import Design, GraphError, Node, check_id


@pytest.mark.parametrize("bad", ["", None, 3, "in\ud800", "\udcff"])
def test_check_id_refuses_what_cannot_be_an_id(bad):
    with pytest.raises(GraphError, match="node id must be"):
        check_id(bad)


@pytest.mark.parametrize("good", ["conv1", "layer2.0.add", "réseau ✓", "网络", "a b"])
def test_check_id_accepts_text(good):
    check_id(good)


def test_insert_rename_and_name_refuse_lone_surrogates():
    design = Design("net")
    design.insert_node(Node("input", "Input", {"channels": 1, "height": 4, "width": 4}))
    with pytest.raises(GraphError, match="U\\+D800"):
        design.insert_node(Node("x\ud800", "ReLU"))
    with pytest.raises(GraphError, match="plain text"):
        design.rename_node("input", "in\udc80")
    with pytest.raises(GraphError, match="name must be plain text"):
        design.set_name("bad \ud800")
    assert design.node_ids == ["input"] and design.name == "net"
    design.rename_node("input", "entrée")
    design.set_name(None)
    assert design.node_ids == ["entrée"] and design.name is None


def test_classes_that_do_not_match_the_output_are_a_warning_on_the_output():
    from designer.core.analysis import Analysis
    from tests.helpers import chain

    design = chain((1, 4, 4), ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))
    analysis = Analysis(design)
    assert not analysis.info("fc").warnings
    design.set_classes(["a", "b"])
    (warning,) = analysis.info("fc").warnings
    assert warning.code == "classes" and "names 2 classes" in warning.text and "3 values" in warning.text
    assert analysis.valid  # a warning, not an error
    design.set_param("fc", "out_features", 2)
    assert not analysis.info("fc").warnings
    design.set_param("fc", "out_features", 5)
    assert [w.code for w in analysis.info("fc").warnings] == ["classes"]
    # a new output takes the check over; the old one loses it
    from designer.core.design import Node
    design.insert_node(Node("relu", "ReLU"))
    design.connect("fc", "relu")
    assert not analysis.info("fc").warnings
    assert [w.code for w in analysis.info("relu").warnings] == ["classes"]
    design.set_classes(None)
    assert not analysis.info("relu").warnings
    with pytest.raises(GraphError, match="appears twice"):
        design.set_classes(["a", "a"])
