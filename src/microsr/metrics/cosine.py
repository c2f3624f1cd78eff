"""Gaussian blurs and block means as products in the cosine-transform domain, equal to SciPy's reflect-mode filters.

``scipy.ndimage.gaussian_filter`` (mode ``"reflect"``) extends an image by mirroring it about its edges,
``d c b a | a b c d | d c b a``: the even, period-``2N`` extension that the type-II discrete cosine
transform (DCT) assumes. A symmetric kernel acting on that extension multiplies every cosine coefficient
``k`` by ``H(k) = Σ_j w_j cos(π k j / N)``, so the blur is exact (to rounding) in the DCT domain, kernel
truncation at 4 σ and kernels longer than the image included. A metric that blurs one image at many
widths pays one forward transform and one inverse transform per width, and a blur of a blur is one
product. Block means (a camera pixel that integrates ``f × f`` finer pixels) fold the coefficients onto
the coarse grid's, so a blur followed by binning never needs the fine image at all.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["transform_threads", "gaussian_kernel", "gaussian_transfer", "cosine_spectrum", "inverse_cosine_spectrum", "from_cosine_spectrum",
           "blur_at", "binned_spectrum"]

#: SciPy's default truncation of the Gaussian kernel, in standard deviations.
TRUNCATE = 4.0


def transform_threads() -> int:
    """Threads a metric's transforms and filters may use: torch's count, which
    :func:`microsr.threads.use_threads` sets for every library."""
    import torch  # already loaded wherever the metrics are (the package imports the losses)

    return max(1, torch.get_num_threads())


def gaussian_kernel(sigma_px: float, truncate: float = TRUNCATE) -> np.ndarray:
    """The normalized 1-D Gaussian kernel SciPy's ``gaussian_filter`` uses (radius ``int(truncate σ + 0.5)``)."""
    radius = int(truncate * float(sigma_px) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / float(sigma_px) ** 2 * offsets.astype(np.float64) ** 2)
    return weights / weights.sum()


def _kernel_transfer(weights: np.ndarray, length: int) -> np.ndarray:
    """``H(k) = Σ_j w_j cos(π k j / length)`` for a symmetric kernel centred in ``weights``, k = 0 … length − 1.

    The kernel is wrapped onto the period ``2 · length`` of the mirrored image first, which is what SciPy's
    reflect mode does for kernels longer than the image.
    """
    radius = (len(weights) - 1) // 2
    period = 2 * length
    wrapped = np.bincount(np.arange(-radius, radius + 1) % period, weights=weights, minlength=period)
    return np.fft.rfft(wrapped).real[:length]


@functools.lru_cache(maxsize=256)
def _cached_transfer(sigma_px: float, length: int, truncate: float) -> np.ndarray:
    transfer = _kernel_transfer(gaussian_kernel(sigma_px, truncate), length)
    transfer.flags.writeable = False
    return transfer


def gaussian_transfer(sigma_px: float, length: int, truncate: float = TRUNCATE) -> np.ndarray:
    """Cosine transfer function of SciPy's truncated Gaussian of ``sigma_px`` along an axis of ``length`` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> image = np.random.default_rng(0).random((40, 50))
    >>> blurred = from_cosine_spectrum(cosine_spectrum(image), gaussian_transfer(3.0, 40),
    ...                                gaussian_transfer(3.0, 50))
    >>> bool(np.abs(blurred - ndimage.gaussian_filter(image, 3.0)).max() < 1e-12)
    True
    """
    if not sigma_px > 1e-15:  # SciPy leaves an axis with a zero width untouched
        return np.ones(length)
    return _cached_transfer(float(sigma_px), int(length), float(truncate))


def cosine_spectrum(image: np.ndarray, dtype=np.float64, workers: int = 1) -> np.ndarray:
    """Orthonormal 2-D DCT-II of ``image`` in ``dtype`` (float32 halves the time where 1e-7 of the range will do)."""
    import scipy.fft  # imported on first use: scipy's array-API layer costs ~0.3 s of start-up

    return scipy.fft.dctn(np.asarray(image, dtype=dtype), type=2, norm="ortho", workers=workers)


def inverse_cosine_spectrum(spectrum: np.ndarray, workers: int = 1) -> np.ndarray:
    """The image whose orthonormal DCT-II is ``spectrum``."""
    import scipy.fft

    return scipy.fft.idctn(spectrum, type=2, norm="ortho", workers=workers)


def from_cosine_spectrum(spectrum: np.ndarray, transfer_y: np.ndarray, transfer_x: np.ndarray,
                         workers: int = 1) -> np.ndarray:
    """The image whose spectrum is ``spectrum`` filtered by ``transfer_y ⊗ transfer_x`` (the blurred image)."""
    import scipy.fft

    dtype = spectrum.dtype
    product = spectrum * transfer_y.astype(dtype, copy=False)[:, None]
    product *= transfer_x.astype(dtype, copy=False)[None, :]
    return scipy.fft.idctn(product, type=2, norm="ortho", workers=workers, overwrite_x=True)


def _mirror(index: np.ndarray, length: int) -> np.ndarray:
    """Pixel of a reflect-extended axis (period ``2 · length``) that an index beyond the edge reads."""
    folded = np.mod(index, 2 * length)
    return np.where(folded >= length, 2 * length - 1 - folded, folded)


def blur_at(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
            chunk_values: int = 4_000_000) -> np.ndarray:
    """Exact float64 values of the reflect-mode blur of ``image`` by ``weights ⊗ weights`` at a few pixels.

    Used where a float32 transform leaves a threshold decision within its rounding error: the decision is
    then taken on these values, as the float64 filter would. ``image`` may be anything with a ``shape``
    that gives arrays when indexed (an image computed block by block).
    """
    if not hasattr(image, "shape"):
        image = np.asarray(image)
    rows, cols = np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)
    radius = (len(weights) - 1) // 2
    width = 2 * radius + 1
    values = np.empty(rows.shape, dtype=np.float64)
    step = max(1, chunk_values // width**2)
    inside = ((rows >= radius) & (rows < image.shape[0] - radius)
              & (cols >= radius) & (cols < image.shape[1] - radius))
    for index in np.flatnonzero(inside):
        # away from the edges a window is a view of the image: two small products, nothing copied
        row, col = rows[index], cols[index]
        values[index] = weights @ image[row - radius:row + radius + 1, col - radius:col + radius + 1] @ weights
    offsets = np.arange(-radius, radius + 1)
    edge = np.flatnonzero(~inside)
    for start in range(0, len(edge), step):
        part = edge[start:start + step]
        window_rows = _mirror(rows[part, None] + offsets, image.shape[0])
        window_cols = _mirror(cols[part, None] + offsets, image.shape[1])
        windows = image[window_rows[:, :, None], window_cols[:, None, :]].astype(np.float64)
        values[part] = np.einsum("pab,a,b->p", windows, weights, weights)
    return values


@functools.lru_cache(maxsize=16)
def _fold_weights(fine: int, factor: int) -> np.ndarray:
    """Weight of each fine cosine coefficient on the coarse grid's, for block means of ``factor`` pixels.

    The mean of ``factor`` consecutive samples of the fine basis function ``k`` is
    ``sin(πk/2n) / (f sin(πk/2N)) · cos(πk(2m+1)/2n)`` (``N = f n``), a coarse basis function whose index
    aliases: ``k = 2nq + ρ`` lands on ``ρ`` with sign ``(-1)^q`` for ``ρ < n``, on ``2n − ρ`` with the
    opposite sign for ``ρ > n``, and vanishes for ``ρ = n``.
    """
    coarse = fine // factor
    k = np.arange(fine)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.sin(np.pi * k / (2 * coarse)) / (factor * np.sin(np.pi * k / (2 * fine)))
    gain[0] = 1.0
    q, rho = np.divmod(k, 2 * coarse)
    sign = np.where(q % 2 == 0, 1.0, -1.0)
    target = np.where(rho < coarse, rho, 2 * coarse - rho)
    sign = np.where(rho < coarse, sign, -sign)
    sign[rho == coarse] = 0.0
    target[rho == coarse] = 0
    # orthonormal scale factors of the fine (sqrt(2/N), DC sqrt(1/N)) and coarse bases
    fine_scale = np.where(k == 0, np.sqrt(1.0 / fine), np.sqrt(2.0 / fine))
    coarse_scale = np.where(target == 0, np.sqrt(1.0 / coarse), np.sqrt(2.0 / coarse))
    weight = sign * gain * fine_scale / coarse_scale
    weight.flags.writeable = False
    return weight


def _fold_axis(values: np.ndarray, weight: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Fold the weighted fine coefficients along ``axis`` onto the coarse ones, run by run of the aliasing
    pattern: even runs ascend (``k = 2nq + ρ`` lands on ``ρ``), odd runs descend (``ρ = n + i`` lands on
    ``n − i``; ``i = 0`` vanishes)."""
    def along(index):
        return (slice(None),) * axis + (index,)

    coarse = values.shape[axis] // factor
    weight = weight.reshape((-1,) + (1,) * (values.ndim - 1 - axis))
    folded = values[along(slice(0, coarse))] * weight[:coarse]
    term = np.empty_like(folded)
    for run in range(1, factor):
        start = run * coarse
        np.multiply(values[along(slice(start, start + coarse))], weight[start:start + coarse], out=term)
        if run % 2 == 0:
            folded += term
        else:
            folded[along(slice(coarse - 1, 0, -1))] += term[along(slice(1, None))]
    return folded


def binned_spectrum(spectrum: np.ndarray, factor: int, transfer_y: np.ndarray | None = None,
                    transfer_x: np.ndarray | None = None) -> np.ndarray:
    """Cosine spectrum of the ``factor × factor`` block means of the image whose spectrum is ``spectrum``
    (first filtered by ``transfer_y ⊗ transfer_x`` when given, at no extra pass).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((12, 18))
    >>> coarse = inverse_cosine_spectrum(binned_spectrum(cosine_spectrum(image), 3))
    >>> bool(np.allclose(coarse, image.reshape(4, 3, 6, 3).mean(axis=(1, 3))))
    True
    """
    result = spectrum
    for axis, transfer in ((1, transfer_x), (0, transfer_y)):
        fine = spectrum.shape[axis]
        weight = _fold_weights(fine, factor)
        if transfer is not None:
            weight = weight * transfer
        result = _fold_axis(result, weight, factor, axis)
    return result
