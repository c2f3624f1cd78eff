"""Validation of the arrays given to a metric: shape, dtype, size and finiteness, one message each."""

from __future__ import annotations

import numpy as np

from microsr.errors import InputError
from microsr.io import check_finite
from microsr.io.images import SINGLE_CHANNEL_ADVICE, colour_channels


def as_image(array, name: str, *, ndim: int = 2, min_size_px: int = 1) -> np.ndarray:
    """``array`` as finite float64 with ``ndim`` axes and at least ``min_size_px`` pixels a side.

    Raises
    ------
    InputError
        Naming ``name`` and saying what to pass instead; an RGB(A) colour image (colour channels
        last, or one frame cut from such an image, ``(height, 3 or 4)``) is named as such.
    """
    image = np.asarray(array)
    kind = "2-D image (height, width)" if ndim == 2 else f"{ndim}-D stack (frames, height, width)"
    # (Y, X, 3) given whole, or its first "frame" (X, 3) taken by code that read it as (T, Y, X)
    colour = colour_channels(image.shape) if image.ndim in (ndim, ndim + 1) else None
    if colour:
        raise InputError(f"{name} of shape {image.shape} looks like an {colour} colour image (colour channels "
                         f"last): {SINGLE_CHANNEL_ADVICE}")
    if image.ndim != ndim:
        raise InputError(f"{name} has shape {image.shape}: give a single {kind}")
    if image.size == 0:
        raise InputError(f"{name} is empty: give a {kind} with pixels")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise InputError(f"{name} has dtype {image.dtype}: give a real-valued numeric image")
    if min(image.shape[-2:]) < min_size_px:
        raise InputError(f"{name} is {image.shape[-2]}×{image.shape[-1]} px; this measure needs at least "
                         f"{min_size_px}×{min_size_px} px: use a larger field of view")
    image = image.astype(np.float64, copy=False)  # no copy of a float64 image: metrics do not write to it
    check_finite(image, name)
    return image
