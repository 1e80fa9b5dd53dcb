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
