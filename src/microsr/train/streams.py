"""Endless training streams shared among DataLoader workers: each worker draws its own sample indices."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def worker_indices() -> Iterator[int]:
    """Sample indices 0, 1, 2, … dealt out to the DataLoader workers: worker ``w`` of ``W`` gets ``w``, ``w + W``, …

    Without workers (or outside a DataLoader) every index is this process's. Streams seed their
    samples from the index, so no two workers ever draw the same sample.

    Examples
    --------
    >>> from itertools import islice
    >>> list(islice(worker_indices(), 3))
    [0, 1, 2]
    """
    info = torch.utils.data.get_worker_info()
    index, step = (info.id, info.num_workers) if info else (0, 1)
    while True:
        yield index
        index += step
