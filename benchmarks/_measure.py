"""Shared by the benchmarks: wall time and peak resident memory of one call."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any


def rss() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak resident memory above the start in MiB) of one call of ``fn``.

    The peak is sampled every 2 ms by a thread, so very short spikes can be missed.
    """
    start = rss()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    return result, seconds, (max(peak[0], rss()) - start) / 2**20
