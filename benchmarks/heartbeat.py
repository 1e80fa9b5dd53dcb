"""The GUI benchmarks' clock: a 5 ms timer on the GUI thread whose gaps are the window's stalls,
and a wait for a signal that keeps the event loop turning."""
from __future__ import annotations

import time

from PySide6.QtCore import QEventLoop, QObject, QTimer


class Heartbeat(QObject):
    """A 5 ms timer on the GUI thread; the gaps between its ticks are the GUI's stalls."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.timer = QTimer(self, interval=5)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        return [(b - a) * 1000 for a, b in zip(self.ticks, self.ticks[1:])]


def wait_for(signal, timeout_ms: int = 600_000) -> list:
    loop, got = QEventLoop(), []
    signal.connect(lambda *args: (got.append(args), loop.quit()))
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    return got
