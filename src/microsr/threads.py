"""How many CPU threads the numerical libraries use: as asked, or the cores that are idle right now."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time

from microsr.errors import InputError

# The libraries that start their own thread pools read these when they load (torch through OpenMP,
# NumPy/SciPy through OpenBLAS or MKL); worker processes (Dask, DDP) inherit them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + waiting on I/O
    return sum(fields[:8]), idle


def busy_cores(sample_seconds: float = 0.05) -> float | None:
    """Cores kept busy by other programs, measured over ``sample_seconds`` while this process sleeps.

    Instantaneous rather than the load average: the 1-minute average still counts a job that ended
    seconds ago, and a pipeline of commands run one after another would each start with too few threads.
    """
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(sample_seconds)
    after = _cpu_times()
    total = after[0] - before[0]
    if total <= 0:
        return None
    return (1.0 - (after[1] - before[1]) / total) * (os.cpu_count() or 1)


def default_thread_count() -> int:
    """Threads for a machine shared with other work: the usable cores minus those other programs keep busy.

    OpenMP threads that share a core with another job wait on each other at every parallel region:
    measured on 2 cores with one busy, streaming a SIM stack took 94 s at 2 threads and 19 s at 1.
    """
    cores = usable_cores()
    busy = busy_cores()
    if busy is None:
        return cores
    return max(1, min(cores, round(cores - busy)))


def use_threads(threads: int | None = None) -> int:
    """Set the thread count of torch, OpenMP and BLAS.

    ``None`` takes ``MICROSR_THREADS``, else an ``OMP_NUM_THREADS`` the user set, else the idle cores.

    Returns the count used. Call it before the heavy work starts; torch takes it at once when loaded,
    and processes started afterwards (Dask workers, DDP ranks) inherit it.

    Examples
    --------
    >>> use_threads(2)  # the test suite's own count
    2
    """
    if threads is None and os.environ.get("MICROSR_THREADS"):
        try:
            threads = int(os.environ["MICROSR_THREADS"])
        except ValueError:
            raise InputError(f"MICROSR_THREADS={os.environ['MICROSR_THREADS']!r} is not a whole number: set it "
                             "to a thread count such as 2, or unset it") from None
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: the thread count must be at least 1")
    count = threads if threads is not None else default_thread_count()
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    torch = sys.modules.get("torch")  # already loaded: tell it directly; otherwise it reads OMP_NUM_THREADS
    if torch is not None:
        torch.set_num_threads(count)
    return count


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # imported on first use: it inspects every loaded library

    return ThreadpoolController()


_blas_lock = threading.Lock()
_blas_holders = {"count": 0, "limiter": None}


@contextlib.contextmanager
def blas_threads(count: int):
    """Context in which NumPy's and SciPy's BLAS use at most ``count`` threads; the previous limits come
    back when the last such context (from any thread) ends.

    For work that already runs in several threads of its own: each thread's small matrix products would
    otherwise wake the whole BLAS pool (measured: HAWKMAN's confidence map 112 ms with one BLAS thread,
    187 ms with two, in two threads of its own on 2 cores). Environment variables cannot do this: BLAS
    reads them once, when NumPy loads. Contexts that overlap (two metrics in two Dask threads) share one
    limit, the first one's, so the first to end cannot lift it under the other, nor the last leave it set.
    """
    with _blas_lock:
        if _blas_holders["count"] == 0:
            _blas_holders["limiter"] = _blas_controller().limit(limits=count, user_api="blas")
        _blas_holders["count"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders["count"] -= 1
            if _blas_holders["count"] == 0:
                _blas_holders["limiter"].restore_original_limits()
                _blas_holders["limiter"] = None
