"""The built-in templates: listed, loadable, valid, and matching the published figures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import designer
from designer import DesignError
from designer.io.templates import find_template, list_templates

TEMPLATES = Path(__file__).resolve().parents[2] / "resources" / "templates"
INDEX = json.loads((TEMPLATES / "index.json").read_text(encoding="utf-8"))


def summary_of(template_id: str) -> dict:
    return designer.summarize(find_template(template_id).load())


def node(summary: dict, node_id: str) -> dict:
    matches = [n for n in summary["nodes"] if n["id"] == node_id]
    assert len(matches) == 1, node_id
    return matches[0]


# ------------------------------------------------------------------------------------ the list

def test_list_matches_the_index():
    templates = list_templates()
    assert [t.id for t in templates] == [e["id"] for e in INDEX]
    assert [t.title for t in templates] == [e["title"] for e in INDEX]
    assert [t.description for t in templates] == [e["description"] for e in INDEX]
    assert len({t.id for t in templates}) == len(templates)


def test_every_template_file_is_listed():
    files = {p.stem for p in TEMPLATES.glob("*.json") if p.name != "index.json"}
    assert files == {e["id"] for e in INDEX}


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["id"])
def test_template_exists_loads_and_is_valid(entry):
    template = find_template(entry["id"])
    assert template.path.is_file()
    assert template.path.name == f"{entry['id']}.json"
    design = template.load()
    assert isinstance(design, designer.Design)
    assert len(design) >= 2
    summary = designer.summarize(design)
    assert summary["valid"] is True
    assert all(n["errors"] == [] for n in summary["nodes"])
    # one Input, fed to everything
    assert sum(n["type"] == "Input" for n in summary["nodes"]) == 1
    assert all(n["output_shape"] is not None for n in summary["nodes"])


def test_find_template_unknown_lists_known_ids():
    with pytest.raises(DesignError) as caught:
        find_template("nope")
    message = str(caught.value)
    assert '"nope"' in message
    for entry in INDEX:
        assert entry["id"] in message


# ------------------------------------------------------------------- published parameter counts

@pytest.mark.parametrize("template_id, params", [
    ("vgg16", 138_357_544),      # torchvision / torchinfo
    ("alexnet", 61_100_840),     # torchvision / torchinfo
    ("resnet18", 11_689_512),    # torchvision / torchinfo
    ("lenet5", 156 + 2_416 + 48_120 + 10_164 + 850),  # 61,706: 6·26, 16·151, 120·401, 84·121, 10·85
    ("lecture-conv-layer", 10 * (5 * 5 * 3 + 1)),      # cs231n: 760
    ("lecture-1x1-conv", 32 * (64 + 1)),               # cs231n: 2,080
    ("inception-block", 192 * 64 + 64 + 192 * 96 + 96 + 96 * 9 * 128 + 128
     + 192 * 16 + 16 + 16 * 25 * 32 + 32 + 192 * 32 + 32),  # 163,696
])
def test_published_parameter_totals(template_id, params):
    summary = summary_of(template_id)
    assert summary["total_params"] == params
    assert sum(n["params"] for n in summary["nodes"]) == params


def test_lecture_conv_layer():
    summary = summary_of("lecture-conv-layer")
    conv = node(summary, "conv1")
    assert conv["output_shape"] == [10, 32, 32]
    assert conv["params"] == 760
    assert conv["macs"] == 760 * 32 * 32


def test_lecture_1x1_conv_keeps_the_size():
    summary = summary_of("lecture-1x1-conv")
    assert summary["nodes"][-1]["output_shape"] == [32, 56, 56]


def test_inception_block_output():
    summary = summary_of("inception-block")
    concat = node(summary, "concat")
    assert concat["output_shape"] == [64 + 128 + 32 + 32, 28, 28]
    assert concat["output_shape"] == [256, 28, 28]


def test_lenet5_conv3_acts_as_fully_connected():
    summary = summary_of("lenet5")
    assert node(summary, "conv3")["output_shape"] == [120, 1, 1]
    assert summary["nodes"][-1]["output_shape"] == [10]


# ------------------------------------------------------------------------------ output shapes

@pytest.mark.parametrize("template_id", ["vgg16", "alexnet", "resnet18"])
def test_imagenet_classifiers_end_in_1000(template_id):
    summary = summary_of(template_id)
    assert summary["nodes"][-1]["output_shape"] == [1000]
    assert summary["nodes"][0]["output_shape"] == [3, 224, 224]


def test_vgg16_last_pool():
    assert node(summary_of("vgg16"), "features.30")["output_shape"] == [512, 7, 7]


def test_resnet18_last_block():
    assert node(summary_of("resnet18"), "layer4.1.relu_out")["output_shape"] == [512, 7, 7]


def test_alexnet_feature_map_sizes():
    # torchvision AlexNet at 224: 55 → 27 → 27 → 13 → 13 → 13 → 6
    summary = summary_of("alexnet")
    assert node(summary, "features.0")["output_shape"] == [64, 55, 55]
    assert node(summary, "features.2")["output_shape"] == [64, 27, 27]
    assert node(summary, "features.5")["output_shape"] == [192, 13, 13]
    assert node(summary, "features.12")["output_shape"] == [256, 6, 6]


# --------------------------------------------------------------------------- receptive fields

def hand_field(layers):
    """The standard recurrence along one axis: r_out = r_in + (k − 1)·j_in, j_out = j_in·s,
    start_out = start_in + ((k − 1)/2 − p)·j_in. ``layers`` is a list of (kernel, stride, padding)."""
    r, j, start = 1, 1, 0.0
    for k, s, p in layers:
        r, j, start = r + (k - 1) * j, j * s, start + ((k - 1) / 2 - p) * j
    return r, j, start


CONV3 = (3, 1, 1)
POOL2 = (2, 2, 0)
VGG16_TO_FEATURES_28 = ([CONV3] * 2 + [POOL2] + [CONV3] * 2 + [POOL2] + [CONV3] * 3 + [POOL2]
                        + [CONV3] * 3 + [POOL2] + [CONV3] * 3)
ALEXNET_TO_FEATURES_12 = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1),
                          (3, 1, 1), (3, 2, 0)]


def test_vgg16_last_conv_receptive_field():
    r, j, start = hand_field(VGG16_TO_FEATURES_28)
    field = node(summary_of("vgg16"), "features.28")["receptive_field"]
    assert field["size"] == [r, r] == [196, 196]
    assert field["jump"] == [j, j] == [16, 16]
    assert field["start"] == [start, start]


def test_vgg16_last_pool_receptive_field():
    r, j, start = hand_field(VGG16_TO_FEATURES_28 + [POOL2])
    field = node(summary_of("vgg16"), "features.30")["receptive_field"]
    assert field["size"] == [r, r]
    assert field["jump"] == [j, j] == [32, 32]
    assert field["start"] == [start, start]


def test_alexnet_last_pool_receptive_field():
    r, j, start = hand_field(ALEXNET_TO_FEATURES_12)
    field = node(summary_of("alexnet"), "features.12")["receptive_field"]
    assert field["size"] == [r, r] == [195, 195]
    assert field["jump"] == [j, j] == [32, 32]
    assert field["start"] == [start, start]


def test_lecture_receptive_field_grows_3_5_7():
    summary = summary_of("lecture-receptive-field")
    convs = [n for n in summary["nodes"] if n["type"] == "Conv2d"]
    assert [n["receptive_field"]["size"] for n in convs] == [[3, 3], [5, 5], [7, 7]]
    assert [n["output_shape"][1:] for n in convs] == [[13, 13], [11, 11], [9, 9]]


def test_flat_outputs_have_no_receptive_field():
    summary = summary_of("vgg16")
    assert node(summary, "flatten")["receptive_field"] is None
    assert summary["nodes"][-1]["receptive_field"] is None


# -------------------------------------------------------------------------------- mult-adds

def test_resnet18_mult_adds_match_torchinfo():
    # torchinfo: "Total mult-adds (G): 1.81" for resnet18 at 1×3×224×224
    macs = summary_of("resnet18")["total_macs"]
    assert round(macs / 1e9, 2) == 1.81
    assert abs(macs - 1.81e9) <= 0.005 * 1.81e9


def test_vgg16_mult_adds_match_torchinfo():
    # torchinfo: "Total mult-adds (G): 15.48" for vgg16 at 1×3×224×224
    macs = summary_of("vgg16")["total_macs"]
    assert round(macs / 1e9, 2) == 15.48
    assert abs(macs - 15.48e9) <= 0.005 * 15.48e9


def test_vgg16_first_conv_mult_adds_by_hand():
    # (weight + bias elements) × output H × W
    assert node(summary_of("vgg16"), "features.0")["macs"] == (64 * 3 * 9 + 64) * 224 * 224
