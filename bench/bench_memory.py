"""Peak memory of a block of work, for the benchmarks' tables (Linux /proc)."""

from __future__ import annotations

import threading
import time


class PeakRSS:
    """Peak anonymous resident memory above the level at entry, sampled every 2 ms.

    Anonymous memory is what the process allocated (NumPy, torch); pages of memory-mapped input
    files are left out: the kernel drops them whenever it needs the room.
    """

    def __enter__(self):
        _release_freed_memory()
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise), so the next row starts level."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the rows then measure growth above what earlier rows left
        pass
