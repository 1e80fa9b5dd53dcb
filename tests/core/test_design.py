"""The graph model: events, mutations and their exact inverses (undo), refusals."""
from __future__ import annotations

import random

import pytest

from designer.core.design import MISSING, Design, GraphError, Node
from designer.io.design_file import design_to_dict
from tests.helpers import chain


def small():
    return chain((3, 8, 8), ("c1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                 ("r1", "ReLU", {}), ("p1", "MaxPool2d", {"kernel_size": 2}))


def record(design):
    log = []
    for name in ("node_added", "node_removed", "param_changed", "node_moved", "node_renamed",
                 "edge_added", "edge_removed", "name_changed"):
        getattr(design, name).connect(lambda *args, name=name: log.append((name,) + args))
    return log


def test_every_mutation_emits_its_event():
    d = small()
    log = record(d)
    node = Node("r2", "ReLU")
    d.insert_node(node, 1)
    d.connect("p1", "r2")
    d.set_param("c1", "stride", 2)
    d.move_node("c1", (10, 20))
    d.rename_node("r2", "relu2")
    d.disconnect("p1", "relu2")
    d.remove_node("relu2")
    d.set_name("new")
    assert [e[0] for e in log] == ["node_added", "edge_added", "param_changed", "node_moved",
                                   "node_renamed", "edge_removed", "node_removed", "name_changed"]
    assert log[0] == ("node_added", node, 1)
    assert log[2] == ("param_changed", "c1", "stride", MISSING, 2)
    assert log[3] == ("node_moved", "c1", None, (10.0, 20.0))


def test_insert_then_remove_restores_order():
    d = small()
    before = design_to_dict(d)
    d.insert_node(Node("x", "ReLU"), 2)
    assert d.node_ids == ["input", "c1", "x", "r1", "p1"]
    node, index = d.remove_node("x")
    assert (node.id, index) == ("x", 2)
    assert design_to_dict(d) == before


def test_remove_refuses_a_connected_node():
    d = small()
    with pytest.raises(GraphError, match="disconnect them first"):
        d.remove_node("r1")


def test_disconnect_and_reconnect_at_the_same_index_keeps_operand_order():
    d = chain((3, 8, 8), ("a", "ReLU", {}))
    d.insert_node(Node("b", "ReLU"))
    d.insert_node(Node("cat", "Concat"))
    d.connect("input", "b")
    d.connect("a", "cat")
    d.connect("b", "cat")
    assert d.sources("cat") == ["a", "b"]
    index = d.disconnect("a", "cat")
    assert d.sources("cat") == ["b"]
    d.connect("a", "cat", index)
    assert d.sources("cat") == ["a", "b"]


def test_set_param_and_its_inverse():
    d = small()
    old = d.set_param("c1", "padding", 1)
    assert old is MISSING and d.node("c1").params["padding"] == 1
    d.set_param("c1", "padding", old)
    assert "padding" not in d.node("c1").params
    old = d.set_param("c1", "out_channels", 9)
    d.set_param("c1", "out_channels", old)
    assert d.node("c1").params["out_channels"] == 4


def test_rename_updates_edges_and_is_reversible():
    d = small()
    before = design_to_dict(d)
    d.rename_node("r1", "relu")
    assert ("c1", "relu") in d.edges and d.sources("p1") == ["relu"]
    with pytest.raises(GraphError, match="already a node"):
        d.rename_node("relu", "c1")
    d.rename_node("relu", "r1")
    assert design_to_dict(d) == before


@pytest.mark.parametrize("source, target, words", [
    ("c1", "c1", "can't feed itself"),
    ("input", "c1", "already feeds"),
    ("p1", "c1", "c1 already has its input"),
    ("nope", "c1", "no node 'nope'"),
    ("c1", "input", "is an Input: nothing can feed it"),
    ("p1", "r1", "r1 already has its input \\(from c1\\)"),
])
def test_check_connect_says_why(source, target, words):
    d = small()
    with pytest.raises(GraphError, match=words):
        d.check_connect(source, target)
    assert not d.can_connect(source, target)


def test_check_connect_refuses_a_cycle():
    d = small()
    d.insert_node(Node("sum", "Add"))
    d.connect("p1", "sum")
    d.insert_node(Node("merge", "Add"))
    d.connect("sum", "merge")
    with pytest.raises(GraphError, match="sum already feeds merge, so this would make a cycle"):
        d.check_connect("merge", "sum")


def test_duplicate_ids_refused():
    d = small()
    with pytest.raises(GraphError):
        d.insert_node(Node("c1", "ReLU"))
    with pytest.raises(GraphError):
        d.insert_node(Node("", "ReLU"))


def test_unique_id():
    d = small()
    assert d.unique_id("c") == "c2"
    assert d.unique_id("conv") == "conv1"


def test_random_mutations_undone_in_reverse_restore_the_design():
    rng = random.Random(7)
    d = small()
    before = design_to_dict(d)
    undo = []
    for step in range(300):
        ids = d.node_ids
        choice = rng.randrange(6)
        if choice == 0:
            node = Node(d.unique_id("n"), rng.choice(["ReLU", "Conv2d", "Add"]))
            index = d.insert_node(node, rng.randrange(len(ids) + 1))
            undo.append(lambda node=node: d.remove_node(node.id))
        elif choice == 1:
            free = [n for n in ids if not d.edges_of(n)]
            if free:
                node, index = d.remove_node(rng.choice(free))
                undo.append(lambda node=node, index=index: d.insert_node(node, index))
        elif choice == 2 and ids:
            n, name = rng.choice(ids), rng.choice(["stride", "kernel_size", "p"])
            old = d.set_param(n, name, rng.randrange(5))
            undo.append(lambda n=n, name=name, old=old: d.set_param(n, name, old))
        elif choice == 3 and len(ids) > 1:
            s, t = rng.sample(ids, 2)
            if d.can_connect(s, t):
                index = d.connect(s, t, rng.randrange(len(d.edges) + 1))
                undo.append(lambda s=s, t=t: d.disconnect(s, t))
        elif choice == 4 and d.edges:
            s, t = rng.choice(d.edges)
            index = d.disconnect(s, t)
            undo.append(lambda s=s, t=t, index=index: d.connect(s, t, index))
        elif choice == 5 and ids:
            n = rng.choice(ids)
            old = d.move_node(n, (rng.random(), rng.random()))
            undo.append(lambda n=n, old=old: d.move_node(n, old))
    assert design_to_dict(d) != before
    for step in reversed(undo):
        step()
    assert design_to_dict(d) == before


def test_copy_is_independent():
    d = small()
    c = d.copy()
    c.set_param("c1", "out_channels", 99)
    assert d.node("c1").params["out_channels"] == 4
    assert isinstance(c, Design) and c.edges == d.edges


def test_downstream_follows_every_path():
    from designer.core.design import Design, Node
    nodes = [Node(n, "ReLU") for n in "abcde"]
    d = Design.from_parts("d", nodes, [("a", "b"), ("a", "c"), ("c", "d"), ("b", "d")])
    assert d.downstream("a") == ["a", "b", "c", "d"]
    assert d.downstream("c") == ["c", "d"]
    assert d.downstream("e") == ["e"]
    assert d.upstream("d") == ["a", "b", "c", "d"]
    assert d.upstream("c") == ["a", "c"]
