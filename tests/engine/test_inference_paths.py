"""The inference pass's own ways through a convolution (depthwise taps, 1×1 as one matrix
product, the im2col copy spread over threads), conv weights kept once in the engine's layout,
and the parallel helpers: each against the slow loop reference or the general path."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import designer
from designer.engine import ops
from designer.engine.activations import ACTIVATIONS
from designer.engine.network import build
from designer.engine.weights import engine_layout, in_engine_layout
from tests.engine.test_memory import traced
from tests.engine.test_ops import conv_ref

TOL = dict(rtol=1e-4, atol=1e-4)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def channels_last(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def general(x, weight, bias, stride, padding, dilation, groups):
    """The im2col path (windows given), which the fast paths must agree with."""
    windows, _ = ops.patch_windows(x, weight.shape[2:], stride, padding, dilation, groups)
    return ops.conv2d(x, weight, bias, stride, padding, dilation, groups, windows=windows)


@pytest.mark.parametrize("c, m, k, stride, padding, dilation, size", [
    (5, 1, 3, (1, 1), (1, 1), (1, 1), (9, 11)),
    (4, 2, 3, (2, 2), (1, 1), (1, 1), (10, 9)),      # channel multiplier 2, strided
    (6, 1, 7, (1, 1), (3, 3), (1, 1), (20, 18)),     # 7×7
    (3, 3, (3, 5), (2, 1), (2, 0), (2, 1), (13, 12)),  # rectangular, dilated, uneven padding
    (8, 1, 3, (1, 1), "same", (1, 1), (7, 7)),
    (4, 1, 3, (1, 1), (0, 0), (1, 1), (9, 9)),       # no padding: no padded copy
    (5, 1, 3, (2, 2), (1, 1), (1, 1), (11, 10)),     # strided: the padded copy in phases
    (3, 1, 3, (1, 3), (0, 2), (1, 2), (8, 17)),      # three phases, dilated, uneven widths
    (4, 1, (3, 5), (2, 2), (0, 0), (1, 1), (9, 12)),  # no padding, an even kernel width
    (2, 1, 3, (2, 2), (3, 4), (1, 1), (5, 6)),       # padding wider than the kernel's reach
])
@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_depthwise_taps_match_the_loops(c, m, k, stride, padding, dilation, size, parts, layout,
                                        monkeypatch):
    monkeypatch.setattr(ops, "DEPTHWISE_VALUES", 64)  # many blocks of a few rows
    monkeypatch.setattr(ops, "PARALLEL_VALUES", 1)  # small maps on several threads too
    rng = np.random.default_rng(c * 10 + m)
    kernel = k if isinstance(k, tuple) else (k, k)
    x = rand(rng, 2, c, *size)
    if layout == "nhwc":
        x = channels_last(x)
    weight, bias = rand(rng, c * m, 1, *kernel), rand(rng, c * m)
    assert ops.conv_kind(c, weight.shape, c, padding, dilation) == "depthwise"
    got = ops.conv2d(x, weight, bias, stride, padding, dilation, c, parts=parts)
    pads = ops.pad_amounts(padding, kernel, dilation)
    np.testing.assert_allclose(got, conv_ref(x, weight, bias, stride, pads, dilation, c), **TOL)
    assert got.dtype == np.float32 and ops.channels_last(got)


@pytest.mark.parametrize("c, kernel, stride, padding, size", [
    (3, (5, 5), (1, 1), (2, 2), (19, 37)),
    (2, (7, 7), (1, 1), (3, 3), (16, 16)),
    (4, (5, 7), (1, 1), (1, 4), (11, 9)),      # rectangular, uneven padding
    (2, (5, 5), (1, 1), (0, 0), (12, 21)),
    (3, (7, 5), (1, 1), "same", (10, 13)),
    (3, (7, 7), (2, 2), (3, 3), (17, 20)),     # strided: the padded copy in kw planes
    (2, (5, 5), (3, 2), (2, 1), (14, 15))])
@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_large_depthwise_kernels_match_the_loops(monkeypatch, c, kernel, stride, padding, size,
                                                 parts, layout):
    monkeypatch.setattr(ops, "DEPTHWISE_VALUES", 40)  # blocks of one or a few rows
    monkeypatch.setattr(ops, "PARALLEL_VALUES", 1)
    rng = np.random.default_rng(c + kernel[0])
    x = rand(rng, 2, c, *size)
    if layout == "nhwc":
        x = channels_last(x)
    weight, bias = rand(rng, c, 1, *kernel), rand(rng, c)
    got = ops.conv2d(x, weight, bias, stride, padding, (1, 1), c, parts=parts)
    pads = ops.pad_amounts(padding, kernel, (1, 1))
    np.testing.assert_allclose(got, conv_ref(x, weight, bias, stride, pads, (1, 1), c), **TOL)
    assert got.dtype == np.float32


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("layout", ["nchw", "nhwc", "odd"])
@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_is_one_matrix_product_over_any_layout(stride, layout, bias):
    rng = np.random.default_rng(7)
    x = rand(rng, 3, 6, 9, 8)
    if layout == "nhwc":
        x = channels_last(x)
    elif layout == "odd":  # neither NCHW nor channels-last memory
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    weight = rand(rng, 5, 6, 1, 1)
    b = rand(rng, 5) if bias else None
    assert ops.conv_kind(6, weight.shape, 1, (0, 0), (1, 1)) == "pointwise"
    got = ops.conv2d(x, weight, b, stride, (0, 0), (1, 1), 1, parts=2)
    np.testing.assert_allclose(got, conv_ref(x, weight, b, stride, ((0, 0), (0, 0)), (1, 1), 1),
                               **TOL)
    assert got.dtype == np.float32


def test_pointwise_reports_progress_between_blocks(monkeypatch):
    monkeypatch.setattr(ops, "POINTWISE_MACS", 64 * 6)  # 64 pixels a block
    rng = np.random.default_rng(0)
    seen = []
    x, weight = rand(rng, 1, 2, 16, 16), rand(rng, 3, 2, 1, 1)
    got = ops.conv2d(x, weight, None, (1, 1), (0, 0), (1, 1), 1, hook=seen.append)
    assert seen == sorted(seen) and len(seen) == 3 and 0 < seen[0] < 1  # four blocks
    np.testing.assert_allclose(got, general(x, weight, None, (1, 1), (0, 0), (1, 1), 1), **TOL)


@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 3])
def test_im2col_copy_over_threads_gives_the_one_thread_result(groups, n, monkeypatch):
    monkeypatch.setattr(ops, "PARALLEL_VALUES", 1)  # every block's copy split
    calls = []
    real = ops.run_parallel
    monkeypatch.setattr(ops, "run_parallel", lambda tasks: calls.append(len(tasks)) or real(tasks))
    rng = np.random.default_rng(groups)
    x = rand(rng, n, 6, 40, 33)
    weight, bias = rand(rng, 6, 6 // groups, 3, 3), rand(rng, 6)
    scratch = 40 * 1024  # several blocks, each copied on two threads
    one = ops.conv2d(x, weight, bias, (1, 1), (1, 1), (1, 1), groups, scratch, parts=1)
    two = ops.conv2d(x, weight, bias, (1, 1), (1, 1), (1, 1), groups, scratch, parts=2)
    np.testing.assert_array_equal(one, two)
    assert calls and set(calls) == {2}
    want = conv_ref(x[:1], weight, bias, (1, 1), ((1, 1), (1, 1)), (1, 1), groups)
    np.testing.assert_allclose(two[:1], want, **TOL)


def test_grouped_convolution_in_one_batched_product_matches_the_loops():
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 8, 9, 10)
    weight, bias = rand(rng, 12, 2, 3, 3), rand(rng, 12)  # 4 groups of 2 in, 3 out
    got = ops.conv2d(x, weight, bias, (2, 1), (1, 2), (1, 1), 4)
    np.testing.assert_allclose(got, conv_ref(x, weight, bias, (2, 1), ((1, 1), (2, 2)), (1, 1),
                                             4), **TOL)


def test_a_hook_that_cancels_stops_every_part():
    done = []
    lock = threading.Lock()

    def work(block, part):
        with lock:
            done.append((block, part))

    def hook(fraction):
        raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        ops.run_blocks(list(range(200)), 2, work, hook)
    assert len(done) < 200  # the second part stopped too
    assert [b for b, p in done if p == 0] == [0]


def test_run_blocks_does_every_block_once_in_order_per_part():
    seen = []
    lock = threading.Lock()

    def work(block, part):
        with lock:
            seen.append((part, block))

    fractions = []
    ops.run_blocks(list(range(11)), 2, work, fractions.append, weights=[1.0] * 11)
    assert sorted(b for _, b in seen) == list(range(11))
    for part in (0, 1):
        mine = [b for p, b in seen if p == part]
        assert mine == sorted(mine) and mine
    assert fractions == sorted(fractions) and all(0 < f < 1 for f in fractions)


def test_parallel_tasks_keep_the_callers_numpy_error_handling():
    big = np.full(4, 3e38, np.float32)

    def overflow():
        return big * np.float32(10)

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            ops.run_parallel([lambda: None, overflow])
    with np.errstate(over="ignore"):
        results = ops.run_parallel([lambda: None, overflow])
    assert np.isinf(results[1]).all()


def test_parallel_map_covers_every_value_once_in_any_layout():
    rng = np.random.default_rng(0)
    for x in (rand(rng, 3, 4, 50, 7), channels_last(rand(rng, 1, 16, 300, 70)),
              rand(rng, 5, 1000)):
        for planes in (False, True):
            out = np.zeros_like(x)
            ops.parallel_map(x.shape, lambda i: np.add(out[i], x[i] + 1, out=out[i]), parts=2,
                             values=500, planes=planes)
            np.testing.assert_array_equal(out, x + 1)
    blocks = ops.map_blocks((2, 6, 10, 10), 200, planes=True)  # two planes a block
    assert blocks[0] == (slice(0, 1), slice(0, 2)) and len(blocks) == 6


# ------------------------------------------------------------------ the weights, once

def resnetish():
    return designer.load_design({
        "format": "cnn-designer", "version": 1, "name": "t",
        "nodes": [{"id": "input", "type": "Input", "params": {"channels": 3, "height": 12,
                                                              "width": 12}},
                  {"id": "c1", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                             "padding": 1}},
                  {"id": "dw", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                             "padding": 1, "groups": 4}},
                  {"id": "pw", "type": "Conv2d", "params": {"out_channels": 6,
                                                             "kernel_size": 1, "stride": 2}},
                  {"id": "add", "type": "Add", "params": {}},
                  {"id": "pw2", "type": "Conv2d", "params": {"out_channels": 6,
                                                              "kernel_size": 1}}],
        "edges": [["input", "c1"], ["c1", "dw"], ["dw", "pw"], ["c1", "add"], ["dw", "add"],
                  ["add", "pw2"]]})


def test_conv_weights_are_kept_once_in_the_engines_layout():
    net = build(resnetish(), seed=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    acts = net.forward(x)
    for key in ("c1.weight", "dw.weight", "pw.weight", "pw2.weight"):
        assert in_engine_layout(net.weights[key])
    assert net._matrices == {}  # every matrix was a view of its weight: no second copy
    w = net.weights
    want = conv_ref(x, w["c1.weight"], w["c1.bias"], (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    np.testing.assert_allclose(acts["c1"], want, **TOL)
    want = conv_ref(acts["add"], w["pw2.weight"], w["pw2.bias"], (1, 1), ((0, 0), (0, 0)),
                    (1, 1), 1)
    np.testing.assert_allclose(acts["pw2"], want, **TOL)
    # the same network from weights in PyTorch's plain layout gives the same activations
    plain = {k: np.ascontiguousarray(v) for k, v in w.items()}
    shared = designer.engine.network.Network(resnetish(), plain, copy_weights=False)
    assert not in_engine_layout(shared.weights["c1.weight"])
    other = shared.forward(x)
    for k in acts:
        np.testing.assert_allclose(other[k], acts[k], rtol=1e-6, atol=1e-6)


def test_engine_layout_keeps_shape_and_values_and_is_a_copy():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    b = engine_layout(a)
    assert b.shape == a.shape and b.dtype == np.float32 and in_engine_layout(b)
    np.testing.assert_array_equal(b, a)
    assert not np.shares_memory(engine_layout(b), b)


def test_weights_loaded_from_a_file_are_in_the_engines_layout(tmp_path):
    net = build(resnetish(), seed=2)
    path = tmp_path / "w.npz"
    net.save_weights(path)
    loaded = build(resnetish(), str(path))
    assert in_engine_layout(loaded.weights["c1.weight"])
    for key, value in net.weights.items():
        np.testing.assert_array_equal(loaded.weights[key], value)


def test_the_estimate_still_bounds_a_pass_with_fast_paths():
    net = build(resnetish(), seed=0)
    assert net.estimate_bytes(2) > 0
    assert net._matrix_need() == 0  # weights will be drawn in the engine's layout
    plain = {k: np.ascontiguousarray(v) for k, v in net.weights.items()}
    shared = designer.engine.network.Network(resnetish(), plain, copy_weights=False)
    assert shared._matrix_need(inference=True) == 4 * 4 * 3 * 3 * 3  # only c1 makes a matrix


# ------------------------------------------------------------------ elementwise ops and pooling

@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred values, spread over threads from any size: many blocks, both
    threads busy, even on the small maps of a test."""
    monkeypatch.setattr(ops, "PARALLEL_VALUES", 1)
    monkeypatch.setattr(ops, "ELEMENTWISE_VALUES", 1)
    real = ops.parallel_map
    monkeypatch.setattr(ops, "parallel_map", lambda shape, work, parts=None, values=300,
                        planes=False: real(shape, work, parts, 300, planes))


POOLS = [("max", (3, 3), (2, 2), (1, 1), (1, 1), False),
         ("max", (2, 3), (1, 2), (1, 0), (2, 1), True),
         ("max", (2, 2), (2, 2), (0, 0), (1, 1), False),
         ("avg", (3, 3), (2, 2), (1, 1), (1, 1), True),
         ("avg", (3, 2), (1, 2), (1, 1), (1, 1), False),
         ("avg", (2, 2), (2, 2), (0, 0), (1, 1), False)]


@pytest.mark.parametrize("kind, kernel, stride, padding, dilation, ceil", POOLS)
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("include", [True, False])
def test_pooling_in_blocks_over_threads_matches_the_loops(small_blocks, kind, kernel, stride,
                                                          padding, dilation, ceil, layout,
                                                          include):
    from tests.engine.test_ops import pool_ref
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 3, 23, 19)
    if layout == "nhwc":
        x = channels_last(x)
    if kind == "max":
        got = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil, parts=2)
        want = pool_ref(x, "max", kernel, stride, padding, dilation, ceil)
    else:
        got = ops.avg_pool2d(x, kernel, stride, padding, ceil, include, parts=2)
        want = pool_ref(x, "avg", kernel, stride, padding, (1, 1), ceil, include)
    np.testing.assert_allclose(got, want, **TOL)
    assert got.dtype == np.float32 and ops.channels_last(got) == (layout == "nhwc")


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("row", [8192, 14])  # 14: rows of 4 pixels, 2 left over
def test_batch_norm_relu_and_add_over_threads_match_their_formulas(small_blocks, layout, row,
                                                                   monkeypatch):
    monkeypatch.setattr(ops, "TILED_ROW", row)
    rng = np.random.default_rng(6)
    x, y, z = (rand(rng, 2, 3, 17, 9) for _ in range(3))
    if layout == "nhwc":
        x, y = channels_last(x), channels_last(y)
    mean, var = rand(rng, 3), rng.random(3).astype(np.float32) + 0.5
    weight, bias = rand(rng, 3), rand(rng, 3)
    got = ops.batch_norm(x, mean, var, weight, bias, 1e-5, parts=2)
    for c in range(3):
        expected = (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-5) * weight[c] + bias[c]
        np.testing.assert_allclose(got[:, c], expected, **TOL)
    assert ops.channels_last(got) == (layout == "nhwc")
    np.testing.assert_array_equal(ops.relu(x, parts=2), np.maximum(x, 0))
    np.testing.assert_array_equal(ops.relu(x[:, :, 0, :].copy(), parts=2),
                                  np.maximum(x[:, :, 0, :], 0))
    np.testing.assert_array_equal(ops.add([x, y, z], parts=2), x + y + z)
    assert ops.add([x, y], parts=2).dtype == np.float32


@pytest.mark.parametrize("parts", [1, 2])
def test_relu_keeps_nan_and_the_sign_of_zero_as_pytorch(parts):
    x = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -2.5, 3.5], np.float32)
    got = ops.relu(x, parts)
    np.testing.assert_array_equal(got, [0, 0, np.nan, 0, np.inf, 0, 3.5])
    assert np.signbit(got).tolist() == [True] + [False] * 6  # torch.relu(-0.0) is -0.0


def test_elementwise_map_over_threads_equals_one_thread():
    x = np.random.default_rng(0).standard_normal((3, 5, 190, 190)).astype(np.float32)
    assert x.size >= ops.ELEMENTWISE_VALUES
    one = ops._map(x, ops._sigmoid, parts=1)
    np.testing.assert_array_equal(ops._map(x, ops._sigmoid, parts=2), one)
    np.testing.assert_array_equal(ops.sigmoid(x), one)
    for maps in (x, channels_last(x)):  # ReLU over threads, in chunks of the memory's order
        got = ops.relu(maps, parts=2)
        np.testing.assert_array_equal(got, np.maximum(maps, 0))
        assert ops.channels_last(got) == ops.channels_last(maps)


def test_a_forward_pass_gives_what_one_thread_gives(monkeypatch):
    """The whole inference pass with its ops spread over threads equals the pass with one."""
    net = build(resnetish(), seed=1)
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(np.float32)
    monkeypatch.setattr(ops, "worker_count", lambda: 1)
    one = net.forward(x)
    monkeypatch.setattr(ops, "worker_count", lambda: 2)
    monkeypatch.setattr(ops, "PARALLEL_VALUES", 1)
    monkeypatch.setattr(ops, "ELEMENTWISE_VALUES", 1)
    two = net.forward(x)
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ Winograd F(2×2, 3×3)

@pytest.mark.parametrize("n, c, k, h, w, padding", [
    (2, 3, 4, 7, 9, (1, 1)), (1, 5, 6, 8, 8, (0, 0)), (2, 4, 3, 5, 6, "same"),
    (1, 2, 2, 3, 3, (2, 1)), (3, 3, 5, 12, 5, (1, 0))])
@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("tiles", [2, 7, 10**6])  # a row of tiles a block, blocks across
# samples' rows, every sample in one block
@pytest.mark.parametrize("piece", [1, 1 << 18])  # transformed a row of tiles at a time, or more
def test_winograd_matches_the_loops(monkeypatch, n, c, k, h, w, padding, parts, bias, tiles,
                                    piece):
    monkeypatch.setattr(ops, "WINOGRAD_TILES", tiles)
    monkeypatch.setattr(ops, "WINOGRAD_PIECE_VALUES", piece)
    rng = np.random.default_rng(n * 100 + c * 10 + k)
    x, weight = rand(rng, n, c, h, w), rand(rng, k, c, 3, 3)
    b = rand(rng, k) if bias else None
    got = ops.winograd_conv2d(x, weight, b, padding, parts=parts)
    pads = ops.pad_amounts(padding, (3, 3), (1, 1))
    np.testing.assert_allclose(got, conv_ref(x, weight, b, (1, 1), pads, (1, 1), 1), **TOL)
    assert got.dtype == np.float32 and ops.channels_last(got)


def test_winograd_weights_are_g_g_gt():
    rng = np.random.default_rng(0)
    weight = rand(rng, 5, 4, 3, 3)
    g = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    want = np.einsum("ai,kcij,bj->abkc", g, weight.astype(np.float64), g).reshape(16, 5, 4)
    np.testing.assert_allclose(ops.winograd_weights(weight), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.winograd_weights(engine_layout(weight)), want, rtol=1e-6,
                               atol=1e-6)


def test_winograd_only_for_3x3_stride_1_wide_layers_and_only_when_asked(monkeypatch):
    monkeypatch.setattr(ops, "WINOGRAD_CHANNELS", 96)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_TILES", 100)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_MACS", 1)
    big = (128, 128, 3, 3)
    assert ops.conv_kind(128, big, 1, (1, 1), (1, 1), (1, 1), (28, 28)) == "winograd"
    assert ops.conv_kind(128, big, 1, (1, 1), (1, 1), (2, 2), (28, 28)) == "im2col"
    assert ops.conv_kind(128, big, 1, (1, 1), (2, 2), (1, 1), (28, 28)) == "im2col"
    assert ops.conv_kind(128, big, 1, (1, 1), (1, 1), (1, 1), (14, 14)) == "im2col"
    assert ops.conv_kind(64, (64, 64, 3, 3), 1, (1, 1), (1, 1), (1, 1), (56, 56)) == "im2col"
    monkeypatch.setattr(ops, "WINOGRAD_MIN_MACS", 128 * 128 * 196 + 1)  # for 2 samples, not 1
    assert ops.conv_kind(128, big, 1, (1, 1), (1, 1), (1, 1), (28, 28)) == "winograd"
    assert not ops.winograd_suits(128, big, (1, 1), (1, 1), 1, 28, 28, 1)
    assert ops.winograd_suits(128, big, (1, 1), (1, 1), 1, 28, 28, 2)
    assert ops.conv_kind(128, big, 1, (1, 1), (1, 1)) == "im2col"  # no output size given
    monkeypatch.undo()
    for c, size in [(64, 56), (128, 28), (256, 14), (512, 28), (64, 448)]:
        assert ops.conv_kind(c, (c, c, 3, 3), 1, (1, 1), (1, 1), (1, 1), (size, size)) == (
            "winograd")
    for c, size in [(512, 7), (32, 112)]:  # few tiles, or narrow
        assert ops.conv_kind(c, (c, c, 3, 3), 1, (1, 1), (1, 1), (1, 1), (size, size)) == (
            "im2col")
    for c, size in [(64, 448), (512, 28)]:  # VGG-16's layers from one sample on
        assert ops.winograd_suits(c, (c, c, 3, 3), (1, 1), (1, 1), 1, size, size, 1)
    for c, size in [(64, 56), (128, 28), (256, 14)]:  # ResNet-18's for a batch of 8, not one
        assert ops.winograd_suits(c, (c, c, 3, 3), (1, 1), (1, 1), 1, size, size, 8)
        assert not ops.winograd_suits(c, (c, c, 3, 3), (1, 1), (1, 1), 1, size, size, 1)
    monkeypatch.setattr(ops, "WINOGRAD_CHANNELS", 96)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_MACS", 1)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_TILES", 1)
    rng = np.random.default_rng(1)
    x, weight = rand(rng, 1, 96, 16, 16), rand(rng, 96, 96, 3, 3) / 30
    plain = ops.conv2d(x, weight, None, (1, 1), (1, 1), (1, 1), 1)
    wino = ops.conv2d(x, weight, None, (1, 1), (1, 1), (1, 1), 1, winograd=True)
    np.testing.assert_array_equal(wino, ops.winograd_conv2d(x, weight, None, (1, 1)))
    assert not np.array_equal(wino, plain)  # another way of summing ...
    np.testing.assert_allclose(wino, plain, rtol=1e-4, atol=1e-5)  # ... the same sums


def wide():
    return designer.load_design({
        "format": "cnn-designer", "version": 1, "name": "wide",
        "nodes": [{"id": "input", "type": "Input", "params": {"channels": 96, "height": 17,
                                                              "width": 20}},
                  {"id": "a", "type": "Conv2d", "params": {"out_channels": 100,
                                                            "kernel_size": 3, "padding": 1}},
                  {"id": "r", "type": "ReLU", "params": {}},
                  {"id": "b", "type": "Conv2d", "params": {"out_channels": 96,
                                                            "kernel_size": 3, "padding": 1}}],
        "edges": [["input", "a"], ["a", "r"], ["r", "b"]]})


@pytest.fixture
def small_winograd(monkeypatch):
    """Winograd for the small layers of a test: 96 channels or more, any number of tiles."""
    monkeypatch.setattr(ops, "WINOGRAD_CHANNELS", 96)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_MACS", 1)
    monkeypatch.setattr(ops, "WINOGRAD_MIN_TILES", 1)


def test_a_pass_with_winograd_layers_matches_the_loops_and_its_estimate_bounds_it(
        small_winograd):
    net = build(wide(), seed=0)
    assert net._cost["a"].kind == net._cost["b"].kind == "winograd"
    x = np.random.default_rng(0).standard_normal((2, 96, 17, 20)).astype(np.float32)
    weights = net.weights
    acts, peak = traced(lambda: net.forward(x))
    assert peak <= net.estimate_bytes(2)
    w = weights  # against the im2col path (itself checked against the loops above)
    want = general(x, w["a.weight"], w["a.bias"], (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(acts["a"], want, rtol=1e-4, atol=1e-4)
    want = general(acts["r"], w["b.weight"], w["b.bias"], (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(acts["b"], want, rtol=1e-4, atol=1e-4)


def test_a_winograd_layer_keeps_its_transformed_weight_and_notices_a_changed_weight(
        small_winograd):
    net = build(wide(), seed=0)
    x = np.random.default_rng(0).standard_normal((1, 96, 17, 20)).astype(np.float32)
    net.forward(x)
    kept = dict(net._winograd)
    assert set(kept) == {"a", "b"}
    net.forward(x)
    assert all(net._winograd[n][1] is kept[n][1] for n in kept)  # made once
    assert net._held_bytes() >= sum(w.nbytes + u.nbytes for w, u in kept.values())
    weights = net.weights
    weights["a.weight"][:, :, 1, 1] *= -2  # changed in place, nobody told
    acts = net.forward(x)
    want = general(x, weights["a.weight"], weights["a.bias"], (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(acts["a"], want, rtol=1e-4, atol=1e-4)
    assert net._winograd["b"][1] is kept["b"][1]  # b's weight unchanged: kept
    net.weights_changed()
    assert net._winograd == {}


def test_a_winograd_layer_goes_by_im2col_for_a_batch_too_small(monkeypatch, small_winograd):
    monkeypatch.setattr(ops, "WINOGRAD_MIN_MACS", 2 * 90 * 96 * 100)  # a's: 2 samples of 90 tiles
    net = build(wide(), seed=0)
    assert net._cost["a"].kind == "winograd"
    calls = []
    real = ops.winograd_conv2d
    monkeypatch.setattr(ops, "winograd_conv2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.default_rng(0).standard_normal((4, 96, 17, 20)).astype(np.float32)
    for n in (1, 2, 4):
        # a and b for 2 samples (b: 96 × 100 too); a pass split into parts (see
        # test_split_pass.py) decides for each part's samples
        parts = net._pass_parts(net.order, n)
        by_winograd = 2 * parts if n // parts >= 2 else 0
        calls.clear()
        acts, peak = traced(lambda: net.forward(x[:n]))
        assert len(calls) == by_winograd and peak <= net.estimate_bytes(n)
        want = general(x[:n], net.weights["a.weight"], net.weights["a.bias"], (1, 1), (1, 1),
                       (1, 1), 1)
        np.testing.assert_allclose(acts["a"], want, rtol=1e-4, atol=1e-4)


def test_gradients_go_back_through_the_direct_sums_not_winograd(monkeypatch, small_winograd):
    """A gradient's forward pass does its Winograd layers by im2col: the ReLUs it goes back
    through then open where PyTorch's do, not where Winograd's rounding puts a unit near 0."""
    net = build(wide(), seed=0)
    assert net._cost["a"].kind == "winograd"
    x = np.random.default_rng(0).standard_normal((1, 96, 17, 20)).astype(np.float32)
    calls = []
    real = ops.winograd_conv2d
    monkeypatch.setattr(ops, "winograd_conv2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    net.forward(x)
    assert len(calls) == 2  # the forward pass: by Winograd
    got = net.input_gradient(x, "b", (3, 4))
    monkeypatch.setattr(ops, "WINOGRAD_CHANNELS", 10**6)
    direct = build(wide(), seed=0)
    assert direct._cost["a"].kind == "im2col"
    np.testing.assert_array_equal(got, direct.input_gradient(x, "b", (3, 4)))
    assert len(calls) == 2  # none in the gradient's forward pass


@pytest.mark.parametrize("kernel, stride", [(3, 1), (7, 1), (3, 2), (5, 3)])
def test_the_estimate_bounds_a_pass_with_a_depthwise_layer(kernel, stride):
    design = designer.load_design({
        "format": "cnn-designer", "version": 1, "name": "dw",
        "nodes": [{"id": "input", "type": "Input", "params": {"channels": 16, "height": 70,
                                                              "width": 90}},
                  {"id": "dw", "type": "Conv2d", "params": {"out_channels": 16,
                                                             "kernel_size": kernel,
                                                             "padding": kernel // 2,
                                                             "stride": stride,
                                                             "groups": 16}}],
        "edges": [["input", "dw"]]})
    net = build(design, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 16, 70, 90)).astype(np.float32)
    weights = net.weights
    acts, peak = traced(lambda: net.forward(x))
    assert peak <= net.estimate_bytes(2)
    w = weights["dw.weight"]
    want = general(x, w, weights["dw.bias"], (stride, stride), (kernel // 2,) * 2, (1, 1), 16)
    np.testing.assert_allclose(acts["dw"], want, rtol=1e-4, atol=1e-4)


def test_a_block_of_few_pixels_and_many_channels_multiplied_transposed_matches_the_loops(
        monkeypatch):
    rng = np.random.default_rng(9)
    x, weight, bias = rand(rng, 1, 5, 4, 4), rand(rng, 24, 5, 3, 3), rand(rng, 24)
    calls = []
    real = np.matmul
    monkeypatch.setattr(np, "matmul", lambda a, b, **kw: calls.append(a.shape) or real(a, b, **kw))
    got = ops.conv2d(x, weight, bias, (1, 1), (0, 0), (1, 1), 1)  # 2 × 2 pixels, 24 channels
    monkeypatch.undo()
    assert calls and calls[0][0] == 24  # weights first
    np.testing.assert_allclose(got, conv_ref(x, weight, bias, (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
                               **TOL)


# ------------------------------------------------------------------ results written into a given array

def test_each_op_writes_its_result_into_a_given_array_or_says_why_not():
    """What a split pass hands its layers (see test_split_pass.py): the same values, in the
    given memory."""
    rng = np.random.default_rng(5)
    x = channels_last(rand(rng, 2, 8, 9, 10))
    cases = {
        "im2col": lambda out: ops.conv2d(x, rand(rng, 6, 8, 3, 3), None, (1, 1), (1, 1),
                                         (1, 1), 1, out=out),
        "depthwise": lambda out: ops.conv2d(x, rand(rng, 8, 1, 3, 3), None, (1, 1), (1, 1),
                                            (1, 1), 8, out=out),
        "pointwise": lambda out: ops.conv2d(x, rand(rng, 6, 8, 1, 1), None, (1, 1), (0, 0),
                                            (1, 1), 1, out=out),
        "winograd": lambda out: ops.winograd_conv2d(x, rand(rng, 6, 8, 3, 3), None, (1, 1),
                                                    out=out)}
    for name, conv in cases.items():
        state = rng.bit_generator.state
        want = conv(None)
        rng.bit_generator.state = state  # the same weights again
        k, h, w = want.shape[1:]
        out = np.full((2, h, w, k), np.nan, np.float32)
        got = conv(out)
        assert np.shares_memory(got, out), name
        np.testing.assert_array_equal(got, want, err_msg=name)
        with pytest.raises(ValueError, match="float32 array of shape"):
            rng.bit_generator.state = state
            conv(np.empty((2, h, w, k + 1), np.float32))
    mean, var = rand(rng, 8), np.abs(rand(rng, 8)) + 0.5
    for layout in (x, np.ascontiguousarray(x)):  # channels-last and NCHW maps
        elementwise = {
            "batch_norm": lambda out: ops.batch_norm(layout, mean, var, None, None, 1e-5,
                                                     out=out),
            "relu": lambda out: ops.relu(layout, out=out),
            "relu on threads": lambda out: ops.relu(layout, parts=2, out=out),
            "add": lambda out: ops.add([layout, layout * 2], out=out),
            **{t: lambda out, f=a.forward: f(layout, out) for t, a in ACTIVATIONS.items()},
            "max_pool": lambda out: ops.max_pool2d(layout, (3, 3), (2, 2), (1, 1), (1, 1),
                                                   False, out=out)}
        for name, op in elementwise.items():
            want = op(None)
            out = np.empty_like(want)
            got = op(out)
            assert got is out, name
            np.testing.assert_array_equal(got, want, err_msg=name)
    # laid out otherwise than x: BatchNorm makes its own, with the same values
    other = np.empty(x.shape, np.float32)
    got = ops.batch_norm(x, mean, var, None, None, 1e-5, out=other)
    assert got is not other
    np.testing.assert_array_equal(got, ops.batch_norm(x, mean, var, None, None, 1e-5))
