"""Raw SIM frame layouts: any accepted arrangement of frames to ``(T, A, P, Y, X)``, lazily."""

from __future__ import annotations

import numpy as np

from microsr.errors import InputError

MIN_FRAME_SIZE = 16


class LazySIMStack:
    """A raw SIM stack seen as ``(T, A, P, Y, X)`` whose time points are read only when indexed.

    Wraps any array-like of shape ``(N, Y, X)`` with ``N = T·A·P`` frames in angle-major order
    (frame ``t·A·P + a·P + p``), e.g. a memory-mapped TIFF or a Zarr array.
    """

    def __init__(self, frames, angles: int, phases: int):
        self.frames = frames
        self.angles = angles
        self.phases = phases
        per_set = angles * phases
        self.shape = (frames.shape[0] // per_set, angles, phases, *frames.shape[-2:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> np.ndarray:
        if not -len(self) <= t < len(self):
            raise IndexError(f"time point {t} of {len(self)}")
        t %= len(self)
        per_set = self.angles * self.phases
        block = np.asarray(self.frames[t * per_set:(t + 1) * per_set], dtype=np.float32)
        return block.reshape(self.angles, self.phases, *block.shape[-2:])


def to_tapyx(array, angles: int = 3, phases: int = 3) -> LazySIMStack:
    """View raw SIM frames as ``(T, A, P, Y, X)``.

    Accepted layouts (frames angle-major: index ``a·P + p`` within a time point): ``(A·P, Y, X)``,
    ``(T·A·P, Y, X)``, ``(T, A·P, Y, X)`` and ``(T, A, P, Y, X)``. Nothing is read until a time
    point is indexed, so a stack of thousands of frame sets streams from disk.
    """
    shape = tuple(array.shape)
    per_set = angles * phases
    if angles < 1 or phases < 3:
        raise InputError(f"{angles} angles × {phases} phases cannot be reconstructed: need ≥ 1 angle and "
                         "≥ 3 phases (3 × 3 or 3 × 5 usual)")
    if len(shape) < 3:
        raise InputError(f"raw SIM data must hold several frames; got one image of shape {shape}: "
                         f"expected (frames, Y, X) with {per_set} frames per time point")
    if min(shape[-2:]) < MIN_FRAME_SIZE:
        raise InputError(f"raw frames of {shape[-2]}×{shape[-1]} pixels are too small (< {MIN_FRAME_SIZE}): "
                         "check the axis order (frames first, then Y, X)")
    if len(shape) == 3:
        frames = array
    elif len(shape) == 4:
        if shape[1] != per_set:
            raise InputError(f"a 4-D raw stack must be (T, A·P, Y, X) with A·P = {per_set}; got {shape}: "
                             "check --angles/--phases or the axis order")
        frames = _Flatten(array)
    elif len(shape) == 5:
        if shape[1:3] != (angles, phases):
            raise InputError(f"a 5-D raw stack must be (T, A, P, Y, X) = (T, {angles}, {phases}, Y, X); got "
                             f"{shape}: check --angles/--phases")
        frames = _Flatten(array)
    else:
        raise InputError(f"raw SIM data of shape {shape} ({len(shape)}-D) are not a known layout: use "
                         "(A·P, Y, X), (T·A·P, Y, X), (T, A·P, Y, X) or (T, A, P, Y, X)")
    count = frames.shape[0]
    if count % per_set:
        raise InputError(f"raw stack has {count} frames, not a multiple of {angles} angles × {phases} phases "
                         f"= {per_set}: check --angles/--phases or the file")
    return LazySIMStack(frames, angles, phases)


class _Flatten:
    """``(T, ..., Y, X)`` seen as ``(N, Y, X)`` frames without reading it."""

    def __init__(self, array):
        self.array = array
        self.per_time = int(np.prod(array.shape[1:-2]))
        self.shape = (array.shape[0] * self.per_time, *array.shape[-2:])

    def __getitem__(self, item: slice) -> np.ndarray:
        start, stop, _ = item.indices(self.shape[0])
        first, last = start // self.per_time, (stop - 1) // self.per_time + 1
        block = np.asarray(self.array[first:last]).reshape(-1, *self.shape[-2:])
        offset = first * self.per_time
        return block[start - offset:stop - offset]
