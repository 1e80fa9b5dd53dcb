"""An inference pass split over threads by samples (``Network._forward_split``)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from designer.engine import ops
from designer.engine.network import FIXED_BYTES, Cancelled, Network, build
from tests.engine.test_memory import traced
from tests.engine.test_threads import run_in_threads
from tests.helpers import graph


def branching():
    """Every kind of edge a split pass must keep track of: a skip connection read by two
    layers, a Concat, a layer whose output is its input (Dropout), a Flatten, a side branch
    no later layer reads, and layers that run over threads of their own when unsplit; a 1×1
    convolution of NCHW maps (the input's), which makes its own output."""
    return graph(
        [("input", "Input", {"channels": 3, "height": 20, "width": 18}),
         ("conv_a", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
         ("bn_a", "BatchNorm2d", {}), ("relu_a", "ReLU", {}),
         ("conv_b", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1,
                               "bias": False}),
         ("add", "Add", {}), ("relu_b", "ReLU", {}),
         ("dw", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8}),
         ("cat", "Concat", {}), ("pw", "Conv2d", {"out_channels": 12, "kernel_size": 1}),
         ("pool", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
         ("r6", "ReLU6", {}), ("drop", "Dropout", {}), ("flatten", "Flatten", {}),
         ("fc", "Linear", {"out_features": 5}), ("softmax", "Softmax", {}),
         ("side", "Conv2d", {"out_channels": 2, "kernel_size": 3})],
        [("input", "conv_a"), ("conv_a", "bn_a"), ("bn_a", "relu_a"), ("relu_a", "conv_b"),
         ("conv_b", "add"), ("relu_a", "add"), ("add", "relu_b"), ("relu_b", "dw"),
         ("relu_b", "cat"), ("dw", "cat"), ("cat", "pool"), ("input", "pw"), ("pool", "r6"), ("r6", "drop"),
         ("drop", "flatten"), ("flatten", "fc"), ("fc", "softmax"), ("relu_a", "side")])


def split_into(monkeypatch, parts):
    """Passes split into ``parts`` (at most the batch), whatever the machine's cores."""
    monkeypatch.setattr(Network, "_forward_parts", lambda self, batch: min(parts, batch))


def batch(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 20, 18)).astype(np.float32)


@pytest.mark.parametrize("parts", [2, 3])
def test_a_split_pass_gives_every_layer_what_one_pass_gives(monkeypatch, parts):
    net = build(branching(), seed=0)
    x = batch(7)
    whole = net.forward(x)
    split_into(monkeypatch, parts)
    calls = []
    real = Network._run
    monkeypatch.setattr(Network, "_run", lambda self, node_id, x, *a, **k: calls.append(
        (node_id, x.shape[0], threading.current_thread().name)) or real(self, node_id, x, *a,
                                                                         **k))
    got = net.forward(x)
    assert list(got) == list(whole) == net.order
    assert got["input"] is whole["input"] or np.array_equal(got["input"], x)
    for node_id in net.order:
        assert got[node_id].shape == whole[node_id].shape, node_id
        assert got[node_id].dtype == np.float32, node_id
        np.testing.assert_allclose(got[node_id], whole[node_id], rtol=1e-6, atol=1e-6,
                                   err_msg=node_id)
    assert got["drop"] is got["r6"]  # Dropout's output is its input, not a copy
    # every layer but the input ran once for each part's samples, the parts on threads of
    # their own
    sizes = [b - a for a, b in ops.sample_parts(7, parts)]
    ran = sorted((n, size) for n, size, _ in calls)
    assert ran == sorted((n, size) for n in net.order[1:] for size in sizes)
    assert len({name for _, _, name in calls}) == parts


def test_a_split_pass_reports_its_progress_in_order_and_ends_at_one(monkeypatch):
    net = build(branching(), seed=0)
    split_into(monkeypatch, 2)
    seen = []
    net.forward(batch(4), progress=lambda f, node_id: seen.append(
        (f, node_id, threading.current_thread().name)) or True)
    fractions = [f for f, _, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 0.1
    assert len({name for _, _, name in seen}) == 1  # one part speaks for the whole pass
    named = [n for _, n, _ in seen]
    assert [n for i, n in enumerate(named) if i == 0 or named[i - 1] != n] == net.order


def test_a_cancelled_split_pass_stops_every_part_and_the_next_pass_runs(monkeypatch):
    net = build(branching(), seed=0)
    split_into(monkeypatch, 2)
    threads = ops.BLAS.threads()
    x = batch(6)
    cancelled = threading.Event()
    other = []  # what the second part ran
    real = Network._run

    def run(self, node_id, x, *a, **k):
        if threading.current_thread() is not threading.main_thread():
            other.append(node_id)
            if node_id == "add":  # wait here until the first part has been cancelled
                cancelled.wait(10)
        return real(self, node_id, x, *a, **k)
    monkeypatch.setattr(Network, "_run", run)

    def progress(fraction, node_id):
        if node_id != "relu_b":
            return True
        threading.Timer(0.3, cancelled.set).start()
        return False
    with pytest.raises(Cancelled):
        net.forward(x, progress=progress)
    later = net.order[net.order.index("add") + 1:]
    assert other and not set(other) & set(later)  # the second part stopped too
    assert ops.BLAS.threads() == threads  # the BLAS has its threads back
    monkeypatch.setattr(Network, "_run", real)
    np.testing.assert_array_equal(net.forward(x)["softmax"], net.forward(x)["softmax"])


def test_an_error_in_any_part_reaches_the_caller(monkeypatch):
    net = build(branching(), seed=0)
    split_into(monkeypatch, 2)
    real = Network._run

    def failing(self, node_id, x, *a, **k):
        if node_id == "cat" and threading.current_thread() is not threading.main_thread():
            raise MemoryError("the second part ran out")
        return real(self, node_id, x, *a, **k)
    monkeypatch.setattr(Network, "_run", failing)
    threads = ops.BLAS.threads()
    with pytest.raises(MemoryError, match="second part"):
        net.forward(batch(4))
    assert ops.BLAS.threads() == threads
    monkeypatch.setattr(Network, "_run", real)
    assert net.forward(batch(4))["softmax"].shape == (4, 5)


@pytest.mark.parametrize("parts", [2, 3])
def test_the_estimate_bounds_a_split_pass(monkeypatch, parts):
    net = build(branching(), seed=0)
    split_into(monkeypatch, parts)
    x = batch(9)
    acts, peak = traced(lambda: net.forward(x))
    assert peak <= net.estimate_bytes(9)
    assert sum(a.nbytes for k, a in acts.items() if k not in ("input", "drop")) <= peak


@pytest.mark.parametrize("held", [True, False])
def test_the_estimate_counts_what_each_part_holds(monkeypatch, held):
    """Beside every layer's output for the batch, each part holds the outputs it made itself
    (Sigmoid, Tanh, Concat) until the layers that read them have run; what BatchNorm, ReLU,
    Add and pooling write straight into the batch's arrays it holds only as views."""
    if held:
        design = graph([("input", "Input", {"channels": 4, "height": 64, "width": 64}),
                        ("s", "Sigmoid", {}), ("t", "Tanh", {}), ("cat", "Concat", {}),
                        ("pool", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1})],
                       [("input", "s"), ("s", "t"), ("s", "cat"), ("t", "cat"),
                        ("cat", "pool")])
    else:
        design = graph([("input", "Input", {"channels": 4, "height": 64, "width": 64}),
                        ("r1", "ReLU", {}), ("bn", "BatchNorm2d", {}), ("r2", "ReLU", {}),
                        ("add", "Add", {}), ("pool", "MaxPool2d", {"kernel_size": 3,
                                                                    "stride": 2,
                                                                    "padding": 1})],
                       [("input", "r1"), ("r1", "bn"), ("bn", "r2"), ("r2", "add"),
                        ("r1", "add"), ("add", "pool")])
    net = build(design, seed=0)
    x = np.random.default_rng(0).standard_normal((9, 4, 64, 64)).astype(np.float32)
    for parts in (1, 2, 3):
        split_into(monkeypatch, parts)
        net.forward(x)
        _, peak = traced(lambda: net.forward(x))
        need = net.estimate_bytes(9) - FIXED_BYTES  # no elementwise temporaries here
        assert peak <= need, parts
        assert need <= 1.6 * peak, parts  # and not much more


def test_a_small_batch_or_a_small_network_is_not_split():
    net = build(branching(), seed=0)
    assert net._forward_parts(1) == 1
    assert net._forward_parts(10**4) <= ops.worker_count()
    assert net._forward_parts(2) == 1  # its convolutions are far too small for threads to pay


def test_each_part_writes_what_it_can_straight_into_the_batch_arrays(monkeypatch):
    net = build(branching(), seed=0)
    split_into(monkeypatch, 2)
    seen = []
    real = Network._run

    def run(self, node_id, x, inputs, *a, out=None, **k):
        y = real(self, node_id, x, inputs, *a, out=out, **k)
        seen.append((node_id, out is not None and np.shares_memory(y, out)))
        return y
    monkeypatch.setattr(Network, "_run", run)
    got = net.forward(batch(4))
    in_place = {n for n, done in seen if done}
    assert in_place == {"conv_a", "bn_a", "relu_a", "conv_b", "add", "relu_b", "dw", "pool",
                        "r6", "side"}  # not pw (NCHW maps in and out), nor the Concat, ...
    assert sorted(seen) == sorted((n, n in in_place) for n in net.order[1:] for _ in "ab")
    monkeypatch.setattr(Network, "_run", real)
    split_into(monkeypatch, 1)
    whole = net.forward(batch(4))
    for node_id in net.order:
        np.testing.assert_allclose(got[node_id], whole[node_id], rtol=1e-6, atol=1e-6)


def test_split_passes_from_four_threads_at_once_equal_one_thread(monkeypatch):
    """Callers on several threads share the engine's worker threads: each pass still gets
    its own parts' results, and the BLAS its threads back once all are done."""
    split_into(monkeypatch, 2)
    inputs = [batch(3, seed) for seed in range(4)]
    alone = build(branching(), seed=3)
    expected = [alone.forward(x) for x in inputs]
    shared = build(branching(), seed=3)
    threads = ops.BLAS.threads()

    def work(i):
        return [(j, shared.forward(inputs[j])) for j in ((i + s) % 4 for s in range(5))]
    results = run_in_threads(4, work)
    assert sum(len(r) for r in results) == 20
    for result in results:
        for j, acts in result:
            assert all(np.array_equal(acts[k], expected[j][k]) for k in shared.order)
    assert ops.BLAS.threads() == threads
