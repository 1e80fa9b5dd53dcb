"""The executor: whole designs against compositions of the slow references, weights (seeded init,
NPZ files and their error messages), input checks, progress and cancellation, memory refusal."""
from __future__ import annotations

import math

import numpy as np
import pytest

import designer
from designer.engine import network as network_module
from designer.engine.network import (Cancelled, InputError, InvalidDesign, Network,
                                     NotEnoughMemory, build)
from designer.engine.weights import WeightsError, expected_tensors
from designer.core.analysis import Analysis
from designer.io.templates import list_templates
from tests.engine.test_ops import adaptive_ref, conv_ref, pool_ref
from tests.helpers import chain, graph


def small_net():
    return chain((3, 8, 8),
                 ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                 ("bn", "BatchNorm2d", {}),
                 ("relu", "ReLU", {}),
                 ("pool", "MaxPool2d", {"kernel_size": 2}),
                 ("flat", "Flatten", {}),
                 ("fc", "Linear", {"out_features": 5}),
                 ("soft", "Softmax", {}))


def test_forward_equals_composition_of_slow_references():
    d = small_net()
    rng = np.random.default_rng(0)
    net = build(d, seed=3)
    w = dict(net.weights)
    w["bn.running_mean"] = rng.standard_normal(4).astype(np.float32)
    w["bn.running_var"] = rng.random(4).astype(np.float32) + 0.5
    w["bn.weight"] = rng.standard_normal(4).astype(np.float32)
    w["conv.bias"] = rng.standard_normal(4).astype(np.float32)
    net = build(d, weights=w)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    acts = net.forward(x)

    y = conv_ref(x, w["conv.weight"], w["conv.bias"], (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    y = ((y - w["bn.running_mean"][None, :, None, None])
         / np.sqrt(w["bn.running_var"][None, :, None, None] + 1e-5)
         * w["bn.weight"][None, :, None, None] + w["bn.bias"][None, :, None, None])
    y = np.maximum(y, 0)
    y = pool_ref(y, "max", (2, 2), (2, 2), (0, 0))
    y = y.reshape(2, -1)
    y = y @ w["fc.weight"].T.astype(np.float64) + w["fc.bias"]
    e = np.exp(y - y.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(acts["soft"], y, rtol=1e-4, atol=1e-5)
    assert set(acts) == set(d.node_ids)
    assert acts["input"].shape == (2, 3, 8, 8)


def test_branches_add_and_concat():
    d = graph([("input", "Input", {"channels": 2, "height": 6, "width": 6}),
               ("a", "Conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 1}),
               ("b", "AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1,
                                   "count_include_pad": False}),
               ("b2", "Conv2d", {"out_channels": 3, "kernel_size": 1, "bias": False}),
               ("sum", "Add", {}), ("cat", "Concat", {}),
               ("gap", "AdaptiveAvgPool2d", {"output_size": [4, 5]})],
              [("input", "a"), ("input", "b"), ("b", "b2"), ("a", "sum"), ("b2", "sum"),
               ("b2", "cat"), ("sum", "cat"), ("input", "cat"), ("cat", "gap")])
    net = build(d, seed=1)
    w = net.weights
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)
    acts = net.forward(x)
    a = conv_ref(x, w["a.weight"], w["a.bias"], (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    b = pool_ref(x, "avg", (3, 3), (1, 1), (1, 1), count_include_pad=False)
    b2 = conv_ref(b, w["b2.weight"], None, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    cat = np.concatenate([b2, a + b2, x], axis=1)  # operand order = edge order
    np.testing.assert_allclose(acts["cat"], cat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(acts["gap"], adaptive_ref(cat, 4, 5), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("template", [t.id for t in list_templates()])
def test_every_template_runs_with_the_shapes_inference_predicts(template):
    d = designer.load_design(next(t.path for t in list_templates() if t.id == template))
    analysis = Analysis(d)
    net = build(d)
    c, h, w = net.input_shape
    acts = net.forward(np.random.default_rng(0).random((1, c, h, w), dtype=np.float32))
    for info in analysis.infos():
        assert acts[info.id].shape == (1,) + info.shape, info.id
        assert np.isfinite(acts[info.id]).all(), info.id
    assert sum(int(np.prod(v.shape)) for v in net.weights.values()) == analysis.totals()["params"] \
        + sum(2 * info.shape[0] for info in analysis.infos() if info.type == "BatchNorm2d")


def test_expected_tensors_follow_pytorch_layouts():
    d = chain((6, 8, 8), ("c", "Conv2d", {"out_channels": 4, "kernel_size": [3, 2], "groups": 2}),
              ("bn", "BatchNorm2d", {"affine": False}), ("ln", "LayerNorm", {}),
              ("f", "Flatten", {}), ("fc", "Linear", {"out_features": 3, "bias": False}))
    assert expected_tensors(Analysis(d)) == {
        "c.weight": (4, 3, 3, 2), "c.bias": (4,),
        "bn.running_mean": (4,), "bn.running_var": (4,),
        "ln.weight": (4, 6, 7), "ln.bias": (4, 6, 7),
        "fc.weight": (3, 168)}


def test_seeded_initialization():
    d = small_net()
    a, b, c = build(d, seed=0).weights, build(d, seed=0).weights, build(d, seed=1).weights
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv.weight"], c["conv.weight"])
    big = build(chain((64, 3, 3), ("c", "Conv2d", {"out_channels": 256, "kernel_size": 3})),
                seed=0).weights["c.weight"]
    assert big.std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)  # He
    assert abs(big.mean()) < 0.01
    assert np.array_equal(a["bn.running_var"], np.ones(4)) and not a["bn.running_mean"].any()
    assert not a["conv.bias"].any()
    assert all(v.dtype == np.float32 for v in a.values())


def test_adding_a_layer_keeps_the_other_layers_weights():
    d = small_net()
    before = build(d, seed=5).weights
    d2 = chain((3, 8, 8), ("extra", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
               ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}))
    assert np.array_equal(build(d2, seed=5).weights["conv.weight"], before["conv.weight"])


def test_weights_file_round_trip(tmp_path):
    d = small_net()
    net = build(d, seed=9)
    path = tmp_path / "w.npz"
    net.save_weights(path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(net.weights)
    again = build(d, weights=path)
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x)["soft"], again.forward(x)["soft"])
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_weights_problems_name_the_key_and_both_shapes(tmp_path):
    d = small_net()
    good = build(d).weights
    missing = {k: v for k, v in good.items() if k != "conv.bias"}
    with pytest.raises(WeightsError, match=r"conv\.bias is missing \(expected shape \(4,\)\)"):
        build(d, weights=missing)
    with pytest.raises(WeightsError, match=r"conv9\.weight is not a tensor of this design"):
        build(d, weights={**good, "conv9.weight": np.zeros(3)})
    bad = {**good, "fc.weight": np.zeros((5, 63), np.float32)}
    with pytest.raises(WeightsError, match=r"fc\.weight has shape \(5, 63\), but this design needs "
                                           r"\(5, 64\)"):
        build(d, weights=bad)
    with pytest.raises(WeightsError, match="NaN"):
        build(d, weights={**good, "conv.bias": np.full(4, np.nan, np.float32)})
    pickled = tmp_path / "p.npz"
    np.savez(pickled, **{**good, "conv.bias": np.array([object()] * 4, dtype=object)})
    with pytest.raises(WeightsError, match="Python objects"):
        build(d, weights=pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        build(d, weights=junk)
    with pytest.raises(WeightsError, match="no such file"):
        build(d, weights=tmp_path / "absent.npz")


def test_invalid_design_is_refused_with_its_errors():
    d = chain((3, 7, 7), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 9}))
    with pytest.raises(InvalidDesign, match=r"c: output height and width \(7 − 9"):
        build(d)


def test_input_checks():
    net = build(small_net())
    with pytest.raises(InputError, match=r"\(N, 3, 8, 8\)"):
        net.forward(np.zeros((1, 3, 8, 9), np.float32))
    with pytest.raises(InputError, match="not numbers"):
        net.forward(np.array([["a"]]))
    assert net.forward(np.zeros((3, 8, 8)))["soft"].shape == (1, 5)  # one image without batch


def test_progress_is_monotone_and_cancel_stops():
    d = chain((3, 32, 32), *[(f"c{i}", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1})
                             for i in range(4)])
    net = build(d, scratch_bytes=4096)  # small bands: progress inside each convolution too
    seen = []
    net.forward(np.zeros((1, 3, 32, 32), np.float32), progress=lambda f, n: seen.append((f, n)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(seen) > 20 and {n for _, n in seen} >= {"c0", "c3"}

    def stop_at_c2(fraction, node_id):
        return node_id != "c2"
    with pytest.raises(Cancelled, match="c2"):
        net.forward(np.zeros((1, 3, 32, 32), np.float32), progress=stop_at_c2)


def test_memory_estimate_and_refusal(monkeypatch):
    net = build(small_net())
    need = net.estimate_bytes(batch=10)
    assert need > 10 * 4 * sum(int(np.prod(i.shape)) for i in Analysis(small_net()).infos())
    monkeypatch.setattr(network_module, "available_memory", lambda: 1000)
    with pytest.raises(NotEnoughMemory, match=r"needs about .* MiB .* but only 0 MiB is free"):
        net.forward(np.zeros((10, 3, 8, 8), np.float32))


def test_scratch_cap_does_not_change_results():
    d = chain((3, 20, 20), ("c", "Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": 2,
                                           "stride": 2}))
    x = np.random.default_rng(4).random((2, 3, 20, 20), dtype=np.float32)
    big = build(d).forward(x)["c"]
    tiny = build(d, scratch_bytes=1).forward(x)["c"]
    np.testing.assert_allclose(big, tiny, rtol=1e-6, atol=1e-6)


def test_pytorch_state_dicts_load_despite_num_batches_tracked():
    d = chain((3, 8, 8), ("bn1", "BatchNorm2d", {}))
    weights = dict(build(d).weights)
    weights["bn1.num_batches_tracked"] = np.array(123)  # PyTorch's training-step counter
    assert set(build(d, weights=weights).weights) == set(expected_tensors(Analysis(d)))
    with pytest.raises(WeightsError, match="conv9.num_batches_tracked is not a tensor"):
        build(d, weights={**weights, "conv9.num_batches_tracked": np.array(1)})


def test_api_takes_paths_and_dicts_and_names_bad_arguments(tmp_path):
    path = next(t.path for t in list_templates() if t.id == "lecture-conv-layer")
    assert designer.summarize(str(path))["total_params"] == 760
    assert designer.build(path).forward(np.zeros((1, 3, 32, 32)))["conv1"].shape == (1, 10, 32, 32)
    with pytest.raises(WeightsError, match="not int"):
        designer.build(path, weights=42)
    with pytest.raises(TypeError, match="seed must be a whole number"):
        designer.build(path, seed="a")
    with pytest.raises(designer.DesignError):
        designer.build({"format": "nope"})


def test_weights_are_copied_unless_the_caller_says_it_never_changes_them():
    d = small_net()
    given = build(d, seed=4).weights
    copied = Network(d, given)
    shared = Network(d, given, copy_weights=False)
    key = "conv.weight"
    assert not np.shares_memory(copied.weights[key], given[key])
    assert np.shares_memory(shared.weights[key], given[key])
    x = np.random.default_rng(2).standard_normal((1,) + tuple(copied.input_shape)).astype(np.float32)
    a, b = copied.forward(x), shared.forward(x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    given[key][:] = 0  # the caller breaks its promise: only the sharing network sees it
    assert copied.weights[key].any() and not shared.weights[key].any()


def test_large_tensors_drawn_in_blocks_equal_one_draw():
    """Big weights are drawn a block of rows at a time; the values are those of one draw from
    the tensor's own generator, scaled by He's sqrt(2 / fan_in)."""
    import zlib

    from designer.engine.weights import BLOCK_VALUES, init_weights
    shape = (7, 3 * BLOCK_VALUES // 20 + 1)  # several blocks, the last one short
    key = "fc.weight"
    got = init_weights({key: shape}, seed=3)[key]
    rng = np.random.default_rng([3, zlib.crc32(key.encode("utf-8"))])
    expected = rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2 / shape[1]))
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, expected)
