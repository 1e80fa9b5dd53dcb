"""Design files (contract §2 and §5): round trips, atomic saving, and one clear message naming the
place for anything that is not a design."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import designer
from designer import Design, DesignError, load_design, save_design
from designer.io.design_file import design_from_json, design_to_json, parse_design
from tests.helpers import SEED

TEMPLATES = Path(__file__).resolve().parents[2] / "resources" / "templates"
TEMPLATE_FILES = sorted(p for p in TEMPLATES.glob("*.json") if p.name != "index.json")
TEMPLATE_DATA = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in TEMPLATE_FILES}



def seed(**changes):
    data = copy.deepcopy(SEED)
    data.update(changes)
    return data


def write(tmp_path: Path, data, name: str = "design.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def refused(tmp_path: Path, data, *fragments: str) -> str:
    """Load ``data`` from a file: it must be refused with a message holding every fragment."""
    path = write(tmp_path, data)
    with pytest.raises(DesignError) as caught:
        load_design(path)
    message = str(caught.value)
    assert "Traceback" not in message
    assert message.strip(), "the message must say something"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------- round trips

def test_there_are_templates_to_round_trip():
    assert len(TEMPLATE_FILES) >= 10


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_round_trips_through_text_and_file(path, tmp_path):
    original = json.loads(path.read_text(encoding="utf-8"))
    design = load_design(path)
    assert isinstance(design, Design)
    assert json.loads(design_to_json(design)) == original
    out = tmp_path / path.name
    save_design(design, out)
    assert json.loads(out.read_text(encoding="utf-8")) == original
    # and once more: loading the saved file gives the same again
    assert json.loads(design_to_json(load_design(out))) == original


HAND_WRITTEN = {
    "format": "cnn-designer",
    "version": 1,
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 1, "height": 28, "width": 28},
         "position": [10, -20]},
        {"id": "conv", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": [3, 5]}},
        {"id": "act", "type": "ReLU"},
        {"id": "pool", "type": "MaxPool2d", "params": {"kernel_size": 2}, "position": [12.5, 300.25]},
        {"id": "flat", "type": "Flatten", "params": {}},
        {"id": "fc", "type": "Linear", "params": {"out_features": 10, "bias": False}, "position": [0, 0]},
        {"id": "soft", "type": "Softmax"},
    ],
    "edges": [["input", "conv"], ["conv", "act"], ["act", "pool"], ["pool", "flat"],
              ["flat", "fc"], ["fc", "soft"]],
}


def test_hand_written_design_round_trips_exactly(tmp_path):
    path = write(tmp_path, HAND_WRITTEN, "hand.json")
    design = load_design(path)
    assert design.name is None
    text = design_to_json(design)
    assert json.loads(text) == HAND_WRITTEN
    # no key was added: no "name", no "params" on the nodes that had none, no "position" where absent
    back = json.loads(text)
    assert "name" not in back
    assert "params" not in back["nodes"][2] and "params" not in back["nodes"][6]
    assert back["nodes"][4]["params"] == {}
    assert "position" not in back["nodes"][1]
    # integer positions stay integers
    assert back["nodes"][0]["position"] == [10, -20]
    assert all(type(v) is int for v in back["nodes"][0]["position"])
    out = tmp_path / "saved.json"
    save_design(design, out)
    assert json.loads(out.read_text(encoding="utf-8")) == HAND_WRITTEN


def test_empty_design_round_trips():
    data = {"format": "cnn-designer", "version": 1, "name": "", "nodes": [], "edges": []}
    assert json.loads(design_to_json(parse_design(data))) == data


def test_unicode_names_and_ids_round_trip(tmp_path):
    data = seed(name="Réseau ✓ 网络")
    data["nodes"][1]["id"] = "conv-é"
    data["edges"] = [["input", "conv-é"]]
    path = tmp_path / "u.json"
    save_design(load_design(data), path)
    assert json.loads(path.read_text(encoding="utf-8")) == data


@pytest.mark.parametrize("place, change", [
    ('nodes[1].id', lambda d: (d["nodes"][1].update(id="in\ud800"),
                              d["edges"].__setitem__(0, ["input", "in\ud800"]))),
    ("name", lambda d: d.update(name="net \udcff")),
    ("nodes[1].params.padding", lambda d: d["nodes"][1]["params"].update(padding="\ud800same")),
    ("nodes[1].type", lambda d: d["nodes"][1].update(type="Conv\udfff2d")),
])
def test_text_that_utf8_cannot_write_is_refused_with_its_place(tmp_path, place, change):
    data = seed()
    change(data)
    # as a JSON file with \ud800-style escapes, as a hostile or broken file holds them
    path = write(tmp_path, json.dumps(data, ensure_ascii=True))
    for source in (path, data):
        with pytest.raises(DesignError) as caught:
            load_design(source)
        message = str(caught.value)
        assert f"{place}:" in message and "plain text" in message
        message.encode("utf-8")  # the message itself can be printed and shown


def test_a_key_that_utf8_cannot_write_is_refused_and_shown_escaped():
    data = seed()
    data["nodes"][1]["params"]["pad\ud800"] = 1
    with pytest.raises(DesignError, match=r"nodes\[1\]\.params\.pad\\ud800: the key's"):
        load_design(data)


def test_saving_text_utf8_cannot_write_is_a_message_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.json"
    save_design(load_design(seed()), path)
    before = path.read_bytes()
    design = load_design(seed())
    design.node("conv1").params["padding"] = "\ud800"  # got in past the model's checks
    with pytest.raises(DesignError, match="can't save to .*U\\+D800"):
        save_design(design, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


# ----------------------------------------------------------------------- loading: kinds of source

def test_load_from_dict_str_and_path(tmp_path):
    path = write(tmp_path, SEED)
    for source in (copy.deepcopy(SEED), str(path), path):
        design = load_design(source)
        assert isinstance(design, Design)
        assert design.node_ids == ["input", "conv1"]
        assert design.edges == [("input", "conv1")]
        assert design.name == "Seed example"
        summary = designer.summarize(design)
        assert summary["valid"] is True
        assert summary["total_params"] == 10 * (5 * 5 * 3 + 1)


def test_load_from_dict_does_not_change_the_dict():
    data = copy.deepcopy(SEED)
    load_design(data)
    assert data == SEED


def test_load_from_an_invalid_dict_raises_design_error():
    with pytest.raises(DesignError, match="format"):
        load_design({"nodes": [], "edges": []})


def test_load_from_something_else_raises_design_error():
    with pytest.raises(DesignError):
        load_design(42)  # type: ignore[arg-type]


def test_load_from_dict_holding_a_non_json_value_raises_design_error():
    """Contract §5: load_design accepts the dict and raises designer.DesignError for a
    non-design, whatever the dict holds."""
    with pytest.raises(DesignError):
        load_design({"format": {1, 2}, "version": 1, "nodes": [], "edges": []})


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + json.dumps(SEED).encode("utf-8"))
    assert load_design(path).node_ids == ["input", "conv1"]


# ------------------------------------------------------------------------------ atomic saving

def test_failed_replace_leaves_the_good_file_untouched(tmp_path, monkeypatch):
    path = write(tmp_path, SEED, "good.json")
    before = path.read_bytes()
    design = load_design(path)
    design.set_param("conv1", "out_channels", 99)

    def broken_replace(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(DesignError) as caught:
        save_design(design, path)
    assert "good.json" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_save_replaces_an_existing_file(tmp_path):
    path = write(tmp_path, SEED, "good.json")
    design = load_design(path)
    design.set_param("conv1", "out_channels", 99)
    save_design(design, path)
    assert json.loads(path.read_text(encoding="utf-8"))["nodes"][1]["params"]["out_channels"] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_save_into_a_missing_folder(tmp_path):
    target = tmp_path / "no-such-folder" / "x.json"
    with pytest.raises(DesignError) as caught:
        save_design(load_design(SEED), target)
    message = str(caught.value)
    assert "no-such-folder" in message
    assert "not exist" in message or "no such" in message.lower()
    assert not (tmp_path / "no-such-folder").exists()


def test_save_onto_a_folder_is_refused(tmp_path):
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(DesignError, match="folder"):
        save_design(load_design(SEED), folder)
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json"]


def test_save_refuses_nan_and_writes_nothing(tmp_path):
    design = load_design(SEED)
    design.set_param("conv1", "padding", float("nan"))
    target = tmp_path / "x.json"
    with pytest.raises(DesignError):
        save_design(design, target)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_nan_without_touching_an_existing_file(tmp_path):
    path = write(tmp_path, SEED, "good.json")
    before = path.read_bytes()
    design = load_design(path)
    design.set_param("conv1", "padding", float("inf"))
    with pytest.raises(DesignError):
        save_design(design, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


# ----------------------------------------------------------------------------------- versions

def test_newer_version_is_refused_saying_so(tmp_path):
    message = refused(tmp_path, seed(version=3), "newer")
    assert "3" in message and "up to 2" in message


def test_classes_make_a_version_2_file_and_round_trip(tmp_path):
    data = seed(version=2, classes=[f"c{i}" for i in range(10)])
    path = tmp_path / "classes.json"
    design = load_design(data)
    assert design.classes == tuple(data["classes"])
    save_design(design, path)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == data and written["version"] == 2
    assert list(written) == ["format", "version", "name", "classes", "nodes", "edges"]


def test_version_1_files_load_unchanged_and_save_as_version_1(tmp_path):
    design = load_design(seed())
    assert design.classes is None
    assert json.loads(design_to_json(design)) == seed()
    design.set_classes(["a", "b"])
    assert json.loads(design_to_json(design))["version"] == 2
    design.set_classes(None)
    assert json.loads(design_to_json(design)) == seed()


@pytest.mark.parametrize("classes, words", [
    ("cat", "list of names"), (["cat", ""], "classes[1] must be a non-empty string"),
    (["cat", 3], "classes[1]"), (["cat", "cat"], "appears twice"),
    (["in\ud800"], "plain text")])
def test_bad_classes_are_refused_naming_the_place(tmp_path, classes, words):
    refused(tmp_path, seed(version=2, classes=classes), words)


@pytest.mark.parametrize("version", [0, -1, "1", True, 1.0, None, [1]], ids=repr)
def test_bad_versions_are_refused(tmp_path, version):
    message = refused(tmp_path, seed(version=version), "version")
    assert "newer" not in message


def test_missing_version_is_refused(tmp_path):
    data = seed()
    del data["version"]
    refused(tmp_path, data, "version")


# ---------------------------------------------------------------------------- broken files

def test_not_json_gives_line_and_column(tmp_path):
    text = '{\n  "format": "cnn-designer",\n  "version": 1,\n  "nodes": [,\n'
    message = refused(tmp_path, text, "design.json", "line 4", "column 13")
    assert "JSON" in message


def test_empty_file_is_refused(tmp_path):
    refused(tmp_path, "", "design.json", "the file is empty")
    refused(tmp_path, "  \n\n", "design.json", "the file is empty")


@pytest.mark.parametrize("text", ["[]", '"design"', "3", "null", "true"])
def test_top_level_not_an_object(tmp_path, text):
    refused(tmp_path, text, "design.json", "object")


def test_unknown_top_level_key(tmp_path):
    refused(tmp_path, seed(author="me"), '"author"', "top level")


def test_missing_format(tmp_path):
    data = seed()
    del data["format"]
    refused(tmp_path, data, '"format"')


def test_wrong_format(tmp_path):
    refused(tmp_path, seed(format="keras"), '"format"', "keras")


@pytest.mark.parametrize("key", ["nodes", "edges"])
def test_missing_nodes_or_edges(tmp_path, key):
    data = seed()
    del data[key]
    refused(tmp_path, data, f'"{key}"', "missing")


@pytest.mark.parametrize("key", ["nodes", "edges"])
def test_nodes_or_edges_not_a_list(tmp_path, key):
    refused(tmp_path, seed(**{key: {"a": 1}}), f'"{key}"', "list")


def test_name_not_a_string(tmp_path):
    refused(tmp_path, seed(name=5), '"name"')


def test_duplicate_node_ids(tmp_path):
    data = seed()
    data["nodes"].append({"id": "conv1", "type": "ReLU"})
    refused(tmp_path, data, "nodes[2]", "conv1", "nodes[1]")


def test_edge_naming_an_unknown_node(tmp_path):
    data = seed()
    data["edges"].append(["conv1", "relu9"])
    refused(tmp_path, data, "edges[1]", "relu9")


@pytest.mark.parametrize("edge", [["input"], ["input", "conv1", "conv1"], "input->conv1",
                                  {"source": "input", "target": "conv1"}, ["input", 3], None],
                         ids=repr)
def test_edge_not_a_pair(tmp_path, edge):
    data = seed()
    data["edges"].insert(0, edge)
    refused(tmp_path, data, "edges[0]", "pair")


def test_repeated_edge(tmp_path):
    data = seed()
    data["edges"].append(["input", "conv1"])
    refused(tmp_path, data, "edges[1]", "edges[0]")


@pytest.mark.parametrize("node", [["input", "Input"], "conv", 3, None], ids=repr)
def test_node_not_an_object(tmp_path, node):
    data = seed()
    data["nodes"].insert(1, node)
    refused(tmp_path, data, "nodes[1]", "object")


@pytest.mark.parametrize("node_id", ["", 7, None, ["a"]], ids=repr)
def test_node_id_not_a_non_empty_string(tmp_path, node_id):
    data = seed()
    data["nodes"][1]["id"] = node_id
    refused(tmp_path, data, "nodes[1]", '"id"')


def test_node_without_id(tmp_path):
    data = seed()
    del data["nodes"][1]["id"]
    refused(tmp_path, data, "nodes[1]", '"id"')


def test_node_type_not_a_string(tmp_path):
    data = seed()
    data["nodes"][1]["type"] = 3
    refused(tmp_path, data, "nodes[1]", '"type"')


def test_unknown_key_in_a_node(tmp_path):
    data = seed()
    data["nodes"][1]["colour"] = "red"
    refused(tmp_path, data, "nodes[1]", '"colour"')


@pytest.mark.parametrize("params", [[1, 2], "x", 3, None], ids=repr)
def test_params_not_an_object(tmp_path, params):
    data = seed()
    data["nodes"][1]["params"] = params
    refused(tmp_path, data, "nodes[1]", '"params"')


@pytest.mark.parametrize("position", [[1], [1, 2, 3], "0,0", [None, 1], [True, 0], {"x": 0, "y": 0},
                                      None], ids=repr)
def test_bad_position(tmp_path, position):
    data = seed()
    data["nodes"][1]["position"] = position
    refused(tmp_path, data, "nodes[1]", '"position"')


def test_position_with_a_huge_integer_is_refused_cleanly(tmp_path):
    """A 400-digit integer is valid JSON but no float: the file must be refused with a
    DesignError naming the node, not crash with OverflowError."""
    big = "1" + "0" * 400
    text = json.dumps(SEED).replace("[0, 120]", f"[{big}, 120]")
    assert big in text
    refused(tmp_path, text, "nodes[1]", '"position"')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_the_text_are_refused_naming_the_place(tmp_path, constant):
    text = json.dumps(SEED, indent=2).replace('"padding": 2', f'"padding": {constant}')
    assert constant in text
    line = next(i for i, s in enumerate(text.splitlines(), 1) if constant in s)
    message = refused(tmp_path, text, "design.json")
    assert constant in message or "finite" in message
    # the place: the line of the text, or the node and parameter
    assert f"line {line}" in message or ("nodes[1]" in message and "padding" in message), message


def test_nan_in_a_dict_is_refused_naming_the_place():
    data = seed()
    data["nodes"][1]["params"]["padding"] = float("nan")
    with pytest.raises(DesignError) as caught:
        load_design(data)
    assert "nodes[1]" in str(caught.value) and "padding" in str(caught.value)


def test_duplicate_key_inside_one_object(tmp_path):
    text = json.dumps(SEED).replace('"type": "Conv2d"', '"type": "Conv2d", "type": "ReLU"')
    refused(tmp_path, text, '"type"', "twice")


def test_duplicate_top_level_key(tmp_path):
    text = json.dumps(SEED).replace('"version": 1', '"version": 1, "version": 1')
    refused(tmp_path, text, '"version"')


def test_binary_file(tmp_path):
    refused(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80", "design.json", "UTF-8")


def test_missing_file(tmp_path):
    path = tmp_path / "missing.json"
    with pytest.raises(DesignError) as caught:
        load_design(path)
    assert "missing.json" in str(caught.value)
    assert "no such file" in str(caught.value).lower()


def test_directory(tmp_path):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(DesignError) as caught:
        load_design(folder)
    assert "folder.json" in str(caught.value)
    assert "folder" in str(caught.value).replace("folder.json", "")


def test_nested_too_deep(tmp_path):
    refused(tmp_path, "[" * 100000, "design.json", "deep")


def test_nested_too_deep_inside_a_node(tmp_path):
    text = json.dumps(SEED).replace('"padding": 2', '"padding": ' + "[" * 100000 + "]" * 100000)
    refused(tmp_path, text, "design.json")


def _deepest_loadable(depth_from: int = 1000):
    """The most deeply nested kernel_size that still loads (the limit depends on the stack)."""
    for depth in range(depth_from, 0, -10):
        text = json.dumps(SEED).replace('"kernel_size": 5',
                                        '"kernel_size": ' + "[" * depth + "]" * depth)
        try:
            return depth, design_from_json(text)
        except DesignError:
            continue
    raise AssertionError("nothing loads")


def _from_deeper_stack(frames: int, fn, *args):
    if frames:
        return _from_deeper_stack(frames - 1, fn, *args)
    return fn(*args)


def test_deeply_nested_parameter_that_loads_also_saves(tmp_path):
    """Contract §2: loading then saving gives back equal JSON; save_design promises DesignError
    on failure. An app saves from a deeper call stack than it loaded from (event loop, undo
    stack, ...): 40 more frames must not turn saving into a RecursionError."""
    depth, design = _deepest_loadable()
    assert depth > 100
    target = tmp_path / "deep.json"
    try:
        _from_deeper_stack(40, save_design, design, target)
    except DesignError:
        assert not target.exists()  # a clear refusal is acceptable
    else:
        assert json.loads(target.read_text(encoding="utf-8"))["nodes"][1]["params"]["kernel_size"]


@pytest.mark.parametrize("depth", [300, 600])
def test_deeply_nested_parameter_value_is_a_design_error_not_a_crash(depth):
    """A file that loads is analysed: summarize must report an error on the node, not raise."""
    text = json.dumps(SEED).replace('"kernel_size": 5', '"kernel_size": ' + "[" * depth + "]" * depth)
    design = design_from_json(text)
    summary = designer.summarize(design)
    assert summary["valid"] is False
    conv = next(n for n in summary["nodes"] if n["id"] == "conv1")
    assert any("kernel_size" in e for e in conv["errors"])


def test_file_messages_name_the_file(tmp_path):
    message = refused(tmp_path, seed(nodes=3), "design.json")
    assert message.startswith("design.json") or "design.json" in message.split(":")[0]


# --------------------------------------------- design-level problems are not file errors

def _load_and_summarize(tmp_path, data):
    design = load_design(write(tmp_path, data))
    summary = designer.summarize(design)
    return design, summary


def test_unknown_layer_type_loads_and_is_reported(tmp_path):
    data = seed()
    data["nodes"][1]["type"] = "Conv3d"
    design, summary = _load_and_summarize(tmp_path, data)
    assert design.node("conv1").type == "Conv3d"
    assert summary["valid"] is False
    conv = next(n for n in summary["nodes"] if n["id"] == "conv1")
    assert conv["errors"] and "Conv3d" in conv["errors"][0]


@pytest.mark.parametrize("params", [{"out_channels": 0, "kernel_size": 5},
                                    {"out_channels": "ten", "kernel_size": 5},
                                    {"out_channels": 10},
                                    {"out_channels": 10, "kernel_size": 5, "stride": 2,
                                     "padding": "same"},
                                    {"out_channels": 10, "kernel_size": 5, "colour": "red"}],
                         ids=["zero", "string", "missing", "same-stride", "unknown-param"])
def test_wrong_parameter_loads_and_is_reported(tmp_path, params):
    data = seed()
    data["nodes"][1]["params"] = params
    design, summary = _load_and_summarize(tmp_path, data)
    assert design.node("conv1").params == params
    assert summary["valid"] is False
    conv = next(n for n in summary["nodes"] if n["id"] == "conv1")
    assert conv["errors"]
    assert all(e.startswith("conv1") for e in conv["errors"])


def test_cycle_loads_and_is_reported(tmp_path):
    data = seed()
    data["nodes"] += [{"id": "a", "type": "ReLU"}, {"id": "b", "type": "ReLU"}]
    data["edges"] += [["conv1", "a"], ["a", "b"], ["b", "a"]]
    design, summary = _load_and_summarize(tmp_path, data)
    assert ("b", "a") in design.edges
    assert summary["valid"] is False
    by_id = {n["id"]: n for n in summary["nodes"]}
    assert any("cycle" in e for e in by_id["a"]["errors"])
    assert any("cycle" in e for e in by_id["b"]["errors"])


def test_self_loop_loads_and_is_reported(tmp_path):
    data = seed()
    data["edges"].append(["conv1", "conv1"])
    design, summary = _load_and_summarize(tmp_path, data)
    assert summary["valid"] is False
    assert json.loads(design_to_json(design)) == data


def test_wrong_number_of_inputs_loads_and_is_reported(tmp_path):
    data = seed()
    data["nodes"].append({"id": "add", "type": "Add"})
    data["edges"].append(["conv1", "add"])
    _, summary = _load_and_summarize(tmp_path, data)
    assert summary["valid"] is False


def test_a_real_parameter_holding_a_huge_integer_is_reported_not_a_crash(tmp_path):
    """A 400-digit integer parses (Python ints are unbounded): the analysis must report it, not
    raise OverflowError."""
    data = seed()
    data["nodes"].append({"id": "act", "type": "LeakyReLU", "params": {"negative_slope": 10 ** 400}})
    data["edges"].append(["conv1", "act"])
    design = load_design(write(tmp_path, data))
    summary = designer.summarize(design)
    assert isinstance(summary["valid"], bool)


# --------------------------------------------------------------------------------- hypothesis

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=5),
    max_leaves=25)

# for designs that get analysed: numbers small enough that sizes stay sane
small_scalars = (st.none() | st.booleans() | st.integers(-50, 10_000)
                 | st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from(["same", "valid", "", "Conv2d"])
                 | st.text(max_size=8))
small_values = st.recursive(
    small_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=12)

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _only_design_or_design_error(fn, *args):
    try:
        result = fn(*args)
    except DesignError as exc:
        assert "Traceback" not in str(exc)
        return None
    assert isinstance(result, Design)
    return result


def _check_summary(design: Design) -> None:
    summary = designer.summarize(design)
    assert isinstance(summary["valid"], bool)
    ids = [n["id"] for n in summary["nodes"]]
    assert sorted(ids) == sorted(design.node_ids)
    assert len(ids) == len(set(ids))
    json.dumps(summary, allow_nan=False)  # the CLI prints it


@FUZZ
@given(json_values)
def test_arbitrary_json_is_a_design_or_a_design_error(value):
    _only_design_or_design_error(parse_design, value)
    _only_design_or_design_error(design_from_json, json.dumps(value))


@FUZZ
@given(json_values)
def test_arbitrary_json_under_the_design_keys(value):
    for key in ("format", "version", "name", "nodes", "edges"):
        data = seed(**{key: value})
        _only_design_or_design_error(parse_design, data)
        _only_design_or_design_error(design_from_json, json.dumps(data))


node_strategy = st.fixed_dictionaries(
    {"id": st.sampled_from(["input", "a", "b", "c", "d"]),
     "type": st.sampled_from(["Input", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                              "BatchNorm2d", "LayerNorm", "Linear", "Flatten", "ReLU", "LeakyReLU",
                              "Softmax", "Dropout", "Add", "Concat", "Bogus"])},
    optional={"params": st.dictionaries(
        st.sampled_from(["channels", "height", "width", "out_channels", "kernel_size", "stride",
                         "padding", "dilation", "groups", "bias", "output_size", "out_features",
                         "eps", "momentum", "p", "negative_slope", "ceil_mode", "x"]),
        small_values, max_size=5),
        "position": st.lists(st.integers(-1000, 1000) | st.floats(-1e6, 1e6), min_size=2, max_size=2)})


@FUZZ
@given(st.lists(node_strategy, max_size=6),
       st.lists(st.lists(st.sampled_from(["input", "a", "b", "c", "d", "e"]), min_size=2, max_size=2),
                max_size=8))
def test_random_graphs_load_or_are_refused_and_always_summarize(nodes, edges):
    data = {"format": "cnn-designer", "version": 1, "nodes": nodes, "edges": edges}
    design = _only_design_or_design_error(design_from_json, json.dumps(data))
    if design is not None:
        _check_summary(design)
        assert json.loads(design_to_json(design)) == data


def _paths(value, prefix=()):
    """Every (path to a container, key) below ``value``."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix, k
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield prefix, i
            yield from _paths(v, prefix + (i,))


def _at(value, path):
    for k in path:
        value = value[k]
    return value


MUTATIONS = ["delete", "replace", "truncate", "swap", "duplicate"]


@FUZZ
@given(st.sampled_from(sorted(TEMPLATE_DATA)), st.sampled_from(MUTATIONS), st.data())
def test_mutated_templates_load_or_are_refused_and_always_summarize(name, mutation, data):
    doc = copy.deepcopy(TEMPLATE_DATA[name])
    nodes = doc["nodes"]
    if mutation == "truncate":
        text = json.dumps(doc, indent=2)
        text = text[:data.draw(st.integers(0, len(text) - 1), label="cut")]
    else:
        if mutation == "delete":
            places = list(_paths(doc))
            parent, key = places[data.draw(st.integers(0, len(places) - 1), label="place")]
            del _at(doc, parent)[key]
        elif mutation == "replace":
            places = list(_paths(doc))
            parent, key = places[data.draw(st.integers(0, len(places) - 1), label="place")]
            _at(doc, parent)[key] = data.draw(small_values, label="value")
        elif mutation == "swap":
            i = data.draw(st.integers(0, len(nodes) - 1), label="i")
            j = data.draw(st.integers(0, len(nodes) - 1), label="j")
            nodes[i], nodes[j] = nodes[j], nodes[i]
        elif mutation == "duplicate":
            i = data.draw(st.integers(0, len(nodes) - 1), label="i")
            nodes.insert(data.draw(st.integers(0, len(nodes)), label="at"), copy.deepcopy(nodes[i]))
        text = json.dumps(doc)
    design = _only_design_or_design_error(design_from_json, text)
    if mutation == "duplicate":
        assert design is None, "a duplicated node repeats an id"
    if mutation == "swap":
        assert design is not None, "node order is free"
        assert designer.summarize(design)["valid"] is True
    if design is not None:
        _check_summary(design)
        written, given = json.loads(design_to_json(design)), json.loads(text)
        if isinstance(given, dict) and "classes" not in given and given.get("version") == 2:
            # a design without class names is written as version 1 (contract §2)
            assert written.pop("version") == 1
            given.pop("version")
        assert written == given


# ------------------------------------------------------------------------------ a large design

def test_thousand_node_design_loads_and_round_trips(tmp_path):
    nodes = [{"id": "input", "type": "Input", "params": {"channels": 8, "height": 16, "width": 16},
              "position": [0, 0]}]
    kinds = [("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
             ("BatchNorm2d", {}), ("ReLU", {})]
    for i in range(1, 1000):
        t, p = kinds[i % 3]
        nodes.append({"id": f"n{i}", "type": t, "params": dict(p), "position": [i * 10, i * 2.5]})
    edges = [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])]
    data = {"format": "cnn-designer", "version": 1, "name": "big", "nodes": nodes, "edges": edges}
    path = write(tmp_path, data, "big.json")
    design = load_design(path)
    assert len(design) == 1000
    assert len(design.edges) == 999
    out = tmp_path / "big-saved.json"
    save_design(design, out)
    assert json.loads(out.read_text(encoding="utf-8")) == data
    summary = designer.summarize(design)
    assert summary["valid"] is True
    assert len(summary["nodes"]) == 1000
    n_conv = sum(1 for i in range(1, 1000) if i % 3 == 1)
    n_bn = sum(1 for i in range(1, 1000) if i % 3 == 2)
    assert summary["total_params"] == n_conv * (8 * 8 * 9 + 8) + n_bn * 2 * 8


@pytest.mark.parametrize("name", ["bad\x00name.json", "bad\ud800.json"])
def test_a_path_no_file_system_can_hold_is_a_message(name):
    with pytest.raises(DesignError, match="not a usable file name"):
        load_design(name)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(DesignError, match=r"not a regular file \(a named pipe \(FIFO\)\); "
                                          r"give a design file"):
        load_design(fifo)
    with pytest.raises(DesignError, match="is a folder, not a design file"):
        load_design(tmp_path)
