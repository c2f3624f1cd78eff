"""Endless training streams shared among DataLoader workers and DDP ranks: each draws its own samples."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def stream_slot() -> tuple[int, int]:
    """``(slot, slots)``: which of all the streams feeding one training this one is — DataLoader worker ``w`` of
    ``W`` on DDP rank ``r`` of ``R`` is slot ``r·W + w`` of ``R·W``; ``(0, 1)`` alone.

    Without it every DDP rank would draw the same samples (the streams are seeded by the configuration) and
    several GPUs would learn no more than one.

    Examples
    --------
    >>> stream_slot()
    (0, 1)
    """
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, ranks = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    return rank * workers + worker, ranks * workers


def worker_indices() -> Iterator[int]:
    """Sample indices 0, 1, 2, … dealt out to every stream (:func:`stream_slot`): slot ``s`` of ``S`` gets
    ``s``, ``s + S``, …

    Streams seed their samples from the index, so no two workers or ranks ever draw the same sample.

    Examples
    --------
    >>> from itertools import islice
    >>> list(islice(worker_indices(), 3))
    [0, 1, 2]
    """
    index, step = stream_slot()
    while True:
        yield index
        index += step


def stream_rng(*seed: int) -> np.random.Generator:
    """A generator seeded by ``seed`` and this stream's slot (:func:`stream_slot`): its own draws in each worker
    and on each DDP rank."""
    return np.random.default_rng((*seed, stream_slot()[0]))
