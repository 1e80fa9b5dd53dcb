"""Training mode (contract §6): BatchNorm2d's batch statistics and running-statistics updates
against a hand-written reference, Dropout's seeded mask and scaling, threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import designer
from designer.engine.training import (TrainingError, batch_norm_forward, dropout_backward,
                                      dropout_forward)
from tests.helpers import chain


def bn_design(momentum=0.1, affine=True):
    return chain((3, 4, 5), ("bn", "BatchNorm2d", {"momentum": momentum, "affine": affine}),
                 ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))


def hand_statistics(x):
    """Per channel, by loops over every value: mean, biased and unbiased variance."""
    c = x.shape[1]
    mean, biased, unbiased = np.zeros(c), np.zeros(c), np.zeros(c)
    for ch in range(c):
        values = [float(v) for v in x[:, ch].ravel()]
        m = sum(values) / len(values)
        ss = sum((v - m) ** 2 for v in values)
        mean[ch], biased[ch], unbiased[ch] = m, ss / len(values), ss / (len(values) - 1)
    return mean, biased, unbiased


def test_batch_norm_normalizes_with_the_batch_statistics():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 3, 4, 5)) * 3 + 7).astype(np.float32)
    weight, bias = np.array([1.0, 2.0, -0.5], np.float32), np.array([0.0, 1.0, 3.0], np.float32)
    out, _, mean, var = batch_norm_forward(x, weight, bias, 1e-5)
    m, biased, unbiased = hand_statistics(x)
    np.testing.assert_allclose(mean, m, rtol=1e-6)
    np.testing.assert_allclose(var, unbiased, rtol=1e-5)
    expected = ((x - m[None, :, None, None]) / np.sqrt(biased[None, :, None, None] + 1e-5)
                * weight[None, :, None, None] + bias[None, :, None, None])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_of_one_value_per_channel_is_refused():
    with pytest.raises(TrainingError, match="bn: .*more than one value per channel"):
        batch_norm_forward(np.zeros((1, 2, 1, 1), np.float32), None, None, 1e-5, "bn")


def test_running_statistics_move_with_momentum():
    net = designer.build(bn_design(momentum=0.3))
    rm = np.array([0.5, -1.0, 2.0], np.float32)
    rv = np.array([1.0, 2.0, 0.5], np.float32)
    net.weights["bn.running_mean"][:] = rm
    net.weights["bn.running_var"][:] = rv
    held_mean = net.weights["bn.running_mean"]
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 3, 4, 5)) * 2 + 1).astype(np.float32)
    _, grads = net.gradients(x, np.array([0, 1, 0]))
    m, _, unbiased = hand_statistics(x)
    np.testing.assert_allclose(net.weights["bn.running_mean"], 0.7 * rm + 0.3 * m, rtol=1e-5)
    np.testing.assert_allclose(net.weights["bn.running_var"], 0.7 * rv + 0.3 * unbiased,
                               rtol=1e-5)
    assert net.weights["bn.running_mean"] is held_mean  # updated in place
    assert not grads["bn.running_mean"].any() and not grads["bn.running_var"].any()
    assert net.batches_tracked == {"bn": 1}


def test_momentum_none_is_the_cumulative_average():
    net = designer.build(bn_design(momentum=None))
    rng = np.random.default_rng(2)
    batches = [(rng.standard_normal((2, 3, 4, 5)) + i).astype(np.float32) for i in range(3)]
    for x in batches:
        net.gradients(x, np.array([0, 1]))
    stats = [hand_statistics(x) for x in batches]
    np.testing.assert_allclose(net.weights["bn.running_mean"],
                               np.mean([s[0] for s in stats], axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.weights["bn.running_var"],
                               np.mean([s[2] for s in stats], axis=0), rtol=1e-5)
    assert net.batches_tracked == {"bn": 3}


def test_a_refused_pass_leaves_the_running_statistics_alone():
    net = designer.build(bn_design())
    before = {k: v.copy() for k, v in net.weights.items()}
    with pytest.raises(TrainingError):
        net.gradients(np.ones((2, 3, 4, 5), np.float32), np.array([0, 5]))
    for k, v in before.items():
        np.testing.assert_array_equal(net.weights[k], v)
    assert net.batches_tracked == {}


def test_eval_mode_forward_uses_the_running_statistics_not_the_batch():
    net = designer.build(bn_design())
    x = (np.random.default_rng(3).standard_normal((2, 3, 4, 5)) * 5 + 10).astype(np.float32)
    out = net.forward(x)["bn"]
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-5), rtol=1e-5)  # mean 0, var 1


# ------------------------------------------------------------ Dropout

def test_dropout_zeroes_with_probability_p_and_scales_the_rest():
    x = np.ones((200, 500), np.float32)
    out, keep = dropout_forward(x, 0.3, np.random.default_rng(0))
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.7)}
    assert abs((out == 0).mean() - 0.3) < 0.005  # 100,000 draws: 4 standard deviations
    np.testing.assert_array_equal(out != 0, keep)
    gy = np.full(x.shape, 2.0, np.float32)
    np.testing.assert_array_equal(dropout_backward(gy, keep, 0.3), np.where(keep, 2 / 0.7, 0)
                                  .astype(np.float32))


def test_dropout_edge_probabilities():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out, keep = dropout_forward(x, 0.0, np.random.default_rng(0))
    assert out is x and keep is None
    out, _ = dropout_forward(x, 1.0, np.random.default_rng(0))
    assert not out.any()


def dropout_net():
    design = chain((1, 4, 4), ("flat", "Flatten", {}), ("drop", "Dropout", {"p": 0.5}),
                   ("fc", "Linear", {"out_features": 3}))
    return designer.build(design, seed=5)


def test_dropout_masks_are_deterministic_from_the_seed():
    x = np.random.default_rng(0).standard_normal((8, 1, 4, 4)).astype(np.float32)
    y = np.arange(8) % 3
    a = dropout_net().gradients(x, y, rng=11)
    b = dropout_net().gradients(x, y, rng=np.random.default_rng(11))
    c = dropout_net().gradients(x, y, rng=12)
    assert a[0] == b[0] and a[0] != c[0]
    np.testing.assert_array_equal(a[1]["fc.weight"], b[1]["fc.weight"])
    # without rng: the network's own generator, from build's seed, moving on between calls
    n1, n2 = dropout_net(), dropout_net()
    first = [n1.gradients(x, y)[0] for _ in range(3)]
    assert first == [n2.gradients(x, y)[0] for _ in range(3)]
    assert len(set(first)) == 3


def test_dropout_gradient_only_flows_through_kept_units():
    net = dropout_net()
    x = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    _, grads = net.gradients(x, np.array([0, 1, 2, 0]), rng=3)
    keep = np.random.default_rng(3).random((4, 16), dtype=np.float32) >= np.float32(0.5)
    # d loss / d fc.weight[:, j] is zero where unit j was dropped for every sample
    dropped_everywhere = ~keep.any(axis=0)
    assert dropped_everywhere.any()
    assert not grads["fc.weight"][:, dropped_everywhere].any()
    assert grads["fc.weight"][:, ~dropped_everywhere].any()


# ------------------------------------------------------------ threads

def test_concurrent_passes_give_what_one_thread_gives():
    design = designer.load_design("resources/templates/lenet5.json")
    net = designer.build(design)
    rng = np.random.default_rng(0)
    xs = [rng.random((8, 1, 32, 32), dtype=np.float32) for _ in range(4)]
    ys = [rng.integers(0, 10, 8) for _ in range(4)]
    alone = [net.gradients(x, y) for x, y in zip(xs, ys)]
    results = [None] * 4

    def work(i):
        results[i] = net.gradients(xs[i], ys[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (la, ga), (lb, gb) in zip(alone, results):
        assert la == lb
        for k in ga:
            np.testing.assert_array_equal(ga[k], gb[k])
