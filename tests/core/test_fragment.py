"""Fragments for copy, paste and duplicate."""
from __future__ import annotations

from designer.core.design import Design, Node
from designer.core.fragment import extract, fresh_id, placed, top_left


def small() -> Design:
    nodes = [Node("input", "Input", {"channels": 3, "height": 8, "width": 8}, (0.0, 0.0)),
             Node("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}, (0.0, 100.0)),
             Node("relu", "ReLU", {}, (10.0, 200.0))]
    return Design.from_parts("d", nodes, [("input", "conv1"), ("conv1", "relu")])


def test_extract_keeps_only_edges_among_the_chosen():
    design = small()
    fragment = extract(design, ["relu", "conv1"])
    assert fragment.node_ids == ["conv1", "relu"]  # design order, not selection order
    assert fragment.edges == [("conv1", "relu")]
    fragment.node("conv1").params["out_channels"] = 9
    assert design.node("conv1").params["out_channels"] == 4  # a copy


def test_fresh_ids_follow_the_stem():
    taken = {"conv1", "conv2", "fc", "layer1.0.conv1"}
    assert fresh_id(taken, "conv1") == "conv3"
    assert fresh_id(taken, "fc") == "fc1"
    assert fresh_id(taken, "layer1.0.conv1") == "layer1.0.conv2"
    assert fresh_id(taken, "pool") == "pool"
    assert fresh_id({"7"}, "7") == "node1"


def test_placed_renames_edges_and_moves_positions():
    design = small()
    fragment = extract(design, design.node_ids)
    nodes, edges = placed(fragment, design, (5.0, -10.0))
    assert [n.id for n in nodes] == ["input1", "conv2", "relu1"]
    assert edges == [("input1", "conv2"), ("conv2", "relu1")]
    assert nodes[2].position == (15.0, 190.0)
    assert top_left(fragment) == (0.0, 0.0)
    # the result really goes into the design
    for n in nodes:
        design.insert_node(n)
    for s, t in edges:
        design.connect(s, t)
    assert len(design) == 6
