"""SciPy's reflect-mode Gaussian filter in float64, computed as banded matrix products.

``scipy.ndimage.gaussian_filter`` runs its 1-D passes at ~1.3 GMAC/s on this project's CPUs (a 17-tap
pass over a 1024² float64 image: ~10 ms along rows, ~17 ms down columns). A pass is also a product with
a banded matrix: cut the band into blocks of a few dozen output lines, and each block is one small dense
matrix product, which BLAS runs several times faster even though the blocks' zeros are multiplied too.
The values are SciPy's to rounding (~1e-15). This exists because HAWKMAN's confidence map needs eight
such float64 filters per image pair and no kept library offers a faster exact one (the cosine-transform
blurs of :mod:`microsr.metrics.cosine` are faster only in float32).
"""

from __future__ import annotations

import functools

import numpy as np

from microsr.metrics.cosine import _mirror as _reflected  # the same reflect mode as the cosine blurs
from microsr.metrics.cosine import gaussian_kernel

__all__ = ["gaussian_filter64"]

#: Output lines per block: small enough that a block's wasted zeros stay under ~3× the kernel's own
#: multiplications, large enough that BLAS runs at speed (32–64 measured fastest at 1024²).
_BLOCK = 32


@functools.lru_cache(maxsize=64)
def _pass_blocks(sigma_px: float, length: int) -> tuple:
    """The blocks of one 1-D pass along an axis of ``length`` pixels: ``(start, stop, low, high, matrix)``,
    output lines ``start:stop`` = ``matrix @ input[low:high]``. Interior blocks share one matrix."""
    weights = gaussian_kernel(sigma_px)
    radius = (len(weights) - 1) // 2
    block = max(_BLOCK, radius)
    interior = None
    blocks = []
    for start in range(0, length, block):
        stop = min(length, start + block)
        low, high = max(0, start - radius), min(length, stop + radius)
        if start - radius >= 0 and stop + radius <= length and stop - start == block:
            if interior is None:  # the same shifted kernel on every line, far from the edges
                interior = np.zeros((block, block + 2 * radius))
                for line in range(block):
                    interior[line, line:line + 2 * radius + 1] = weights
                interior.flags.writeable = False
            blocks.append((start, stop, low, high, interior))
            continue
        lines = np.arange(start, stop)
        reads = _reflected(lines[:, None] + np.arange(-radius, radius + 1)[None, :], length) - low
        matrix = np.zeros((stop - start, high - low))
        # a kernel longer than the image folds several taps onto one pixel: add them up
        np.add.at(matrix, (np.repeat(np.arange(stop - start), len(weights)), reads.ravel()),
                  np.tile(weights, stop - start))
        matrix.flags.writeable = False
        blocks.append((start, stop, low, high, matrix))
    return tuple(blocks)


def gaussian_filter64(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(image, sigma_px)`` (reflect mode, kernel truncated at 4 σ) in float64.

    Parameters
    ----------
    image : numpy.ndarray, shape (Y, X)
        Image to blur; converted to float64.
    sigma_px : float
        Standard deviation of the Gaussian in pixels, the same along both axes.

    Returns
    -------
    numpy.ndarray
        The blurred image, float64, same shape.

    Notes
    -----
    BLAS runs the blocks; call it with BLAS limited to one thread where the caller already runs
    several of these at once (:func:`microsr.threads.blas_threads`): a multi-threaded BLAS on tiny
    products spends more time waking its threads than multiplying.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> image = np.random.default_rng(0).random((70, 90))
    >>> bool(np.abs(gaussian_filter64(image, 2.0) - ndimage.gaussian_filter(image, 2.0)).max() < 1e-13)
    True
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"gaussian_filter64 blurs 2-D images, got shape {image.shape}")
    if not sigma_px > 1e-15:  # SciPy leaves a zero-width blur untouched
        return image.copy()
    sigma_px = float(sigma_px)
    down_columns = np.empty_like(image)
    for start, stop, low, high, matrix in _pass_blocks(sigma_px, image.shape[0]):
        np.matmul(matrix, image[low:high], out=down_columns[start:stop])
    blurred = np.empty_like(image)
    for start, stop, low, high, matrix in _pass_blocks(sigma_px, image.shape[1]):
        np.matmul(down_columns[:, low:high], matrix.T, out=blurred[:, start:stop])
    return blurred
