"""Raw SIM frame layouts: every accepted arrangement of frames seen as ``(T, A, P, Y, X)``."""

from __future__ import annotations

import operator

import numpy as np

from microsr.errors import InputError
from microsr.io.images import SINGLE_CHANNEL_ADVICE, colour_channels

MIN_FRAME_SIZE = 16
LAYOUTS = "(A·P, Y, X), (T·A·P, Y, X), (T, A·P, Y, X) or (T, A, P, Y, X)"


class LazySIMStack:
    """A raw SIM stack seen as ``(T, A, P, Y, X)`` whose time points are read only when indexed.

    Parameters
    ----------
    array : array-like
        A Zarr array or other lazy array in one of the layouts accepted by :func:`to_tapyx`,
        already checked by it.
    angles, phases : int
        Pattern orientations and phase steps per time point.

    Examples
    --------
    >>> stack = to_tapyx(zarr.open_array("raw.zarr"), angles=3, phases=3)  # doctest: +SKIP
    >>> stack[0].shape  # (A, P, Y, X), float32, read from disk now  # doctest: +SKIP
    (3, 3, 512, 512)
    """

    dtype = np.dtype(np.float32)
    ndim = 5

    def __init__(self, array, angles: int, phases: int):
        self.array = array
        self.angles = angles
        self.phases = phases
        frames_per_time = 1 if len(array.shape) > 3 else angles * phases
        self.shape = (array.shape[0] // frames_per_time, angles, phases, *array.shape[-2:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t) -> np.ndarray:
        """Frames of time point ``t`` as a float32 ``(A, P, Y, X)`` array."""
        t = operator.index(t)
        if not -len(self) <= t < len(self):
            raise IndexError(f"time point {t} is outside the {len(self)} of this stack")
        t %= len(self)
        if len(self.array.shape) == 3:
            per_set = self.angles * self.phases
            block = self.array[t * per_set:(t + 1) * per_set]
        else:
            block = self.array[t]
        return np.asarray(block, dtype=np.float32).reshape(self.shape[1:])


def to_tapyx(array, angles: int = 3, phases: int = 3):
    """View raw SIM frames as ``(T, A, P, Y, X)`` without reading them.

    Within one time point frames are angle-major: frame ``a·P + p`` is angle ``a``, phase ``p``.

    Parameters
    ----------
    array : array-like
        ``(A·P, Y, X)``, ``(T·A·P, Y, X)``, ``(T, A·P, Y, X)`` or ``(T, A, P, Y, X)``.
    angles : int
        Pattern orientations per time point (A).
    phases : int
        Phase steps per orientation (P).

    Returns
    -------
    numpy.ndarray or LazySIMStack
        For a NumPy array (a memory map included) a reshaped array, a view where the memory
        layout allows, with the input's dtype; for a Zarr or other lazy array a
        :class:`LazySIMStack` that reads one time point per index. Both give ``(A, P, Y, X)``
        frames for ``stack[t]``.

    Raises
    ------
    InputError
        For a layout that does not match ``angles`` and ``phases``, an RGB(A) colour image, or
        frames smaller than 16 pixels.

    Examples
    --------
    >>> to_tapyx(np.zeros((18, 32, 32)), angles=3, phases=3).shape
    (2, 3, 3, 32, 32)
    """
    shape = tuple(int(size) for size in array.shape)
    per_set = angles * phases
    if angles < 1 or phases < 3:
        raise InputError(f"{angles} angles × {phases} phases cannot be reconstructed: need at least 1 angle "
                         "and 3 phases (3 × 3 or 3 × 5 are usual); check --angles/--phases")
    if len(shape) < 3:
        raise InputError(f"raw SIM data must hold several frames, got one image of shape {shape}: give the "
                         f"raw stack (frames, Y, X) with {per_set} frames per time point")
    if len(shape) > 5:
        raise InputError(f"raw SIM data of shape {shape} ({len(shape)}-D) are not a known layout: use "
                         f"{LAYOUTS}")
    colour = colour_channels(shape) if len(shape) in (3, 4) else None
    if colour:
        raise InputError(f"raw SIM data of shape {shape} look like an {colour} colour image (colour channels "
                         f"last), not raw camera frames: {SINGLE_CHANNEL_ADVICE}, {per_set} per time point")
    if min(shape[-2:]) < MIN_FRAME_SIZE:
        raise InputError(f"raw frames of {shape[-2]}×{shape[-1]} pixels are too small (< {MIN_FRAME_SIZE}): "
                         "check the axis order (frames first, then Y, X)")
    if len(shape) == 4 and shape[1] != per_set:
        raise InputError(f"a 4-D raw stack must be (T, A·P, Y, X) with A·P = {angles} × {phases} = {per_set}, "
                         f"got {shape}: check --angles/--phases or the axis order")
    if len(shape) == 5 and shape[1:3] != (angles, phases):
        raise InputError(f"a 5-D raw stack must be (T, A, P, Y, X) = (T, {angles}, {phases}, Y, X), got "
                         f"{shape}: check --angles/--phases or the axis order")
    if len(shape) == 3 and shape[0] % per_set:
        raise InputError(f"raw stack has {shape[0]} frames, not a multiple of {angles} angles × {phases} "
                         f"phases = {per_set}: check --angles/--phases or the file")
    if shape[0] == 0:
        raise InputError(f"raw stack of shape {shape} holds no frames: check the file")
    if isinstance(array, np.ndarray):
        return array.reshape(-1, angles, phases, *shape[-2:])
    return LazySIMStack(array, angles, phases)
