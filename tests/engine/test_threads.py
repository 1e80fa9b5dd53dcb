"""One network, several threads: forward, input_gradient, find_nonfinite and the lazily drawn
weights give exactly what one thread gives (the im2col buffer is per thread, caches are made
under a lock)."""
from __future__ import annotations

import threading

import numpy as np

from designer.engine.network import build
from tests.helpers import graph


def branchy():
    """Convolutions of different band sizes on two branches, so that a shared band buffer
    would be resized and overwritten between threads."""
    return graph([("input", "Input", {"channels": 3, "height": 48, "width": 48}),
                  ("a", "Conv2d", {"out_channels": 8, "kernel_size": 5, "padding": 2}),
                  ("b", "Conv2d", {"out_channels": 8, "kernel_size": 1}),
                  ("a2", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1,
                                    "groups": 2}),
                  ("sum", "Add", {}), ("relu", "ReLU", {}),
                  ("pool", "MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                  ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                  ("gap", "AdaptiveAvgPool2d", {"output_size": [3, 2]}),
                  ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 5}),
                  ("soft", "Softmax", {})],
                 [("input", "a"), ("input", "b"), ("a", "a2"), ("a2", "sum"), ("b", "sum"),
                  ("sum", "relu"), ("relu", "pool"), ("pool", "c"), ("c", "gap"),
                  ("gap", "flat"), ("flat", "fc"), ("fc", "soft")])


def run_in_threads(count, work):
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_forward_and_gradients_from_four_threads_equal_one_thread():
    design = branchy()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((2, 3, 48, 48)).astype(np.float32) for _ in range(4)]
    units = [("c", (1, 2)), ("a", (5, 7)), ("fc", (3,)), ("pool", (0, 11))]
    # single-thread answers, from a network of their own
    alone = build(design, seed=5, scratch_bytes=3000)  # small bands: many per convolution
    expected_acts = [alone.forward(x) for x in inputs]
    expected_grads = [alone.input_gradient(x, *units[i]) for i, x in enumerate(inputs)]

    shared = build(design, seed=5, scratch_bytes=3000)  # its weights are drawn by the threads

    def work(i):
        out = []
        for step in range(6):
            j = (i + step) % 4
            acts = shared.forward(inputs[j])
            out.append(("forward", j, acts, shared.find_nonfinite(acts)))
            out.append(("gradient", j, shared.input_gradient(inputs[j], *units[j])))
        return out

    wrong = total = 0
    for result in run_in_threads(4, work):
        for entry in result:
            total += 1
            if entry[0] == "forward":
                _, j, acts, found = entry
                assert found is None
                wrong += any(not np.array_equal(acts[k], expected_acts[j][k]) for k in acts)
            else:
                _, j, grad = entry
                wrong += not np.array_equal(grad, expected_grads[j])
    assert total == 48 and wrong == 0


def test_lazy_weights_are_drawn_once_for_all_threads():
    net = build(branchy(), seed=2)
    seen = run_in_threads(4, lambda i: net.weights)
    assert all(w is seen[0] for w in seen)
    reference = build(branchy(), seed=2).weights
    assert all(np.array_equal(seen[0][k], reference[k]) for k in reference)
