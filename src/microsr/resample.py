"""Bicubic upsampling on pixel-area-aligned grids, shared by network inputs, baselines and figures."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def bicubic_upsample(image: np.ndarray, factor: float) -> np.ndarray:
    """Upsample a 2-D image by ``factor`` so that each output pixel lies inside the input pixel it came from.

    ``scipy.ndimage.zoom``'s default aligns the corner pixels' centres instead, which shifts the image
    by up to half an input pixel towards the far edge: a networks's target would then move relative to
    its input across the field. ``grid_mode=True`` keeps input pixel ``i`` covering output pixels
    ``i·factor … (i+1)·factor``, the same convention as the simulator's binning.
    """
    if factor == 1.0:
        return np.asarray(image, dtype=np.float32)
    return ndimage.zoom(np.asarray(image, dtype=np.float32), factor, order=3, grid_mode=True,
                        mode="reflect").astype(np.float32)
