"""The trained weights that ship in resources/trained/ (contract §6) and build(weights="trained")."""
from __future__ import annotations

import json

import numpy as np
import pytest

import designer
from designer.data import builtin
from designer.data.dataset import convert, input_shape
from designer.io.templates import find_template, list_templates
from designer.io.trained import FORMAT, find_trained, fingerprint, list_trained, trained_dir

VAL_IMAGES = 300


@pytest.fixture(scope="module")
def validation():
    """The built-in sets' validation parts as load_dataset draws them (the validation stream
    doesn't depend on the training part's size, so the training part isn't drawn)."""
    drawn = {}

    def get(source: str, design):
        name = source.removeprefix("builtin:")
        if name not in drawn:
            drawn[name] = builtin.draw(name, 0, train_size=0, val_size=builtin.VAL_SIZE)
        d = drawn[name]
        x = convert(d.x_val[:VAL_IMAGES], input_shape(design), source)
        return x, d.y_val[:VAL_IMAGES]
    return get


def test_the_index_lists_the_three_models_and_their_files():
    index = json.loads((trained_dir() / "index.json").read_text(encoding="utf-8"))
    assert index["format"] == FORMAT
    models = {m.template: m for m in list_trained()}
    assert set(models) == {"lenet5", "tiny-vgg", "cifar10-convnet"}
    assert models["lenet5"].data == "builtin:digits"
    assert models["tiny-vgg"].data == models["cifar10-convnet"].data == "builtin:shapes"
    assert models["lenet5"].val_accuracy >= 0.98
    for model in models.values():
        assert model.weights.is_file()
        assert model.weights.stat().st_size < 1_000_000
        assert len(model.classes) == 10 and len(set(model.classes)) == 10


@pytest.mark.parametrize("model", list_trained(), ids=lambda m: m.template)
def test_the_fingerprints_match_the_templates(model):
    design = find_template(model.template).load()
    assert fingerprint(design) == model.fingerprint, (
        f"{model.template}.json changed since its weights were trained; run "
        f"resources/trained/train_models.py --only {model.template}")
    assert find_trained(design) == model


def test_only_the_trained_templates_have_trained_weights():
    trained = {m.template for m in list_trained()}
    for template in list_templates():
        assert (find_trained(template.load()) is not None) == (template.id in trained)


@pytest.mark.parametrize("model", list_trained(), ids=lambda m: m.template)
def test_the_shipped_weights_give_the_recorded_accuracy(model, validation):
    design = find_template(model.template).load()
    net = designer.build(design, weights="trained")
    with np.load(model.weights, allow_pickle=False) as archive:
        for key, value in net.weights.items():
            np.testing.assert_array_equal(value, archive[key])
    x, y = validation(model.data, design)
    out = net.forward(x)[net.analysis.output]
    accuracy = float(np.mean(np.argmax(out, axis=1) == y))
    # 300 of the 1,000 validation images: within a few percent of the recorded figure
    assert abs(accuracy - model.val_accuracy) < 0.04, (accuracy, model.val_accuracy)
    # and well above chance (10 %), which is what seeded weights give
    seeded = designer.build(design, seed=0).forward(x)[net.analysis.output]
    assert accuracy > float(np.mean(np.argmax(seeded, axis=1) == y)) + 0.15


def test_the_fingerprint_ignores_name_positions_and_classes():
    design = find_template("lenet5").load()
    before = fingerprint(design)
    design.set_name("my copy")
    design.move_node("conv1", (123.0, 456.0))
    design.set_classes([f"c{i}" for i in range(10)])
    assert fingerprint(design) == before
    assert find_trained(design) is not None


def _lenet(change: str) -> dict:
    data = json.loads(find_template("lenet5").path.read_text(encoding="utf-8"))
    nodes = {n["id"]: n for n in data["nodes"]}
    if change == "param":
        nodes["conv1"]["params"]["out_channels"] = 8
    elif change == "type":  # same weight shapes, another computation
        nodes["tanh1"]["type"] = "ReLU"
    elif change == "pool":  # same weight shapes, another computation
        nodes["pool1"]["type"] = "MaxPool2d"
    elif change == "rename":
        nodes["fc2"]["id"] = "classifier"
        data["edges"] = [[s, "classifier" if t == "fc2" else t] for s, t in data["edges"]]
    elif change == "edge":  # tanh4 dropped: fc1 feeds fc2 directly
        data["nodes"] = [n for n in data["nodes"] if n["id"] != "tanh4"]
        data["edges"] = [e for e in data["edges"] if "tanh4" not in e] + [["fc1", "fc2"]]
    return data


@pytest.mark.parametrize("change", ["param", "type", "pool", "rename", "edge"])
def test_a_changed_design_is_refused_with_a_message(change):
    design = designer.load_design(_lenet(change))
    assert find_trained(design) is None
    with pytest.raises(designer.WeightsError) as info:
        designer.build(design, weights="trained")
    message = str(info.value)
    assert "no trained weights" in message and "LeNet-5" in message and "lenet5" in message
    assert "weights=None" in message


def test_a_design_file_path_or_dict_works_too(tmp_path):
    path = find_template("lenet5").path
    a = designer.build(str(path), weights="trained")
    b = designer.build(json.loads(path.read_text(encoding="utf-8")), weights="trained")
    for key in a.weights:
        np.testing.assert_array_equal(a.weights[key], b.weights[key])


@pytest.mark.parametrize("model", list_trained(), ids=lambda m: m.template)
def test_the_trained_templates_name_their_classes(model):
    design = find_template(model.template).load()
    assert design.classes == model.classes
    assert designer.summarize(design)["valid"]


def test_the_same_network_written_differently_finds_the_weights():
    """Defaults written out, a pair for a square size, nodes and edges in another order: the
    fingerprint differs, the network doesn't, and neither do its trained weights."""
    data = json.loads(find_template("lenet5").path.read_text(encoding="utf-8"))
    nodes = {n["id"]: n for n in data["nodes"]}
    nodes["conv1"]["params"].update({"stride": [1, 1], "padding": 0, "dilation": 1,
                                     "groups": 1, "bias": True, "kernel_size": [5, 5]})
    nodes["pool2"]["params"]["stride"] = 2  # a pool's stride defaults to its kernel size
    data["nodes"].reverse()
    data["edges"].reverse()
    design = designer.load_design(data)
    assert fingerprint(design) != fingerprint(find_template("lenet5").load())
    model = find_trained(design)
    assert model is not None and model.template == "lenet5"
    assert model.title == "LeNet-5"
    assert model.describe() == "trained on builtin:digits (validation accuracy 99.1 %)"


@pytest.mark.parametrize("change", [
    ("conv1", "stride", 2), ("conv1", "padding", 1), ("pool2", "stride", 1),
    ("conv1", "kernel_size", [5, 3]), ("fc1", "bias", False)])
def test_a_parameter_that_differs_from_its_default_is_another_network(change):
    design = find_template("lenet5").load()
    design.set_param(*change)
    assert find_trained(design) is None


def test_the_order_of_a_nodes_inputs_counts():
    """Concat of (a, b) is not Concat of (b, a): the structure keeps each node's inputs in
    order, while the order edges are listed in doesn't matter otherwise."""
    from designer.io.trained import structure
    base = {"format": "cnn-designer", "version": 1, "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 1, "height": 8, "width": 8}},
        {"id": "a", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 1}},
        {"id": "b", "type": "Conv2d", "params": {"out_channels": 3, "kernel_size": 1}},
        {"id": "cat", "type": "Concat", "params": {}}],
        "edges": [["input", "a"], ["input", "b"], ["a", "cat"], ["b", "cat"]]}
    listed = json.loads(json.dumps(base))
    listed["edges"] = [["a", "cat"], ["input", "b"], ["input", "a"], ["b", "cat"]]
    swapped = json.loads(json.dumps(base))
    swapped["edges"] = [["input", "a"], ["input", "b"], ["b", "cat"], ["a", "cat"]]
    one = structure(designer.load_design(base))
    assert structure(designer.load_design(listed)) == one
    assert structure(designer.load_design(swapped)) != one


def test_a_design_of_another_size_is_answered_without_hashing(monkeypatch):
    """Asked after every edit in the app: a design with another node count than every trained
    template is not hashed at all."""
    from designer.io import trained
    trained.find_trained(find_template("lenet5").load())  # the templates read once, first
    calls = []
    real = trained.fingerprint
    monkeypatch.setattr(trained, "fingerprint", lambda d: calls.append(1) or real(d))
    design = find_template("vgg16").load()
    assert trained.find_trained(design) is None
    assert calls == []
    assert trained.find_trained(find_template("lenet5").load()) is not None
    assert calls
