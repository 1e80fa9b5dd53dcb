"""The engine's single-threaded BLAS sections give the control of the BLAS's threads back, so
that a limit set later in another thread (the app's run worker leaves a core to the window)
takes effect."""
from __future__ import annotations

import threading

from threadpoolctl import threadpool_info, threadpool_limits

from designer.engine import ops


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_a_limit_set_in_another_thread_after_a_section_takes_effect():
    before = blas_threads()
    assert before, "no BLAS found through threadpoolctl"
    with ops.BLAS.single():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
    target = 1 if max(before) > 1 else 2
    seen: list[list[int]] = []

    def worker() -> None:
        with threadpool_limits(limits=target, user_api="blas"):
            seen.append(blas_threads())
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [[target] * len(before)]
    assert blas_threads() == before


def test_a_section_in_a_thread_that_lives_on_lets_go_too():
    """The engine's worker threads live as long as the process: one that ran a section must
    not keep the control."""
    done, finish = threading.Event(), threading.Event()

    def section() -> None:
        with ops.BLAS.single():
            pass
        done.set()
        finish.wait(10)  # alive while the main thread sets a limit
    thread = threading.Thread(target=section)
    thread.start()
    try:
        assert done.wait(10)
        before = blas_threads()
        target = 1 if max(before) > 1 else 2
        with threadpool_limits(limits=target, user_api="blas"):
            assert blas_threads() == [target] * len(before)
        assert blas_threads() == before
    finally:
        finish.set()
        thread.join()
