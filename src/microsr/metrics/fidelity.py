"""Fidelity of an image against a reference (PSNR, SSIM, MS-SSIM, NRMSE, Pearson), each after explicit normalization.

Every score depends on how the two images were brought onto a common intensity scale, so each function
here normalizes explicitly and says how (``normalization=``):

- ``"percentile"`` (default): each image is scaled on its own so that its ``low``-th percentile maps to
  0 and its ``high``-th percentile to 1 (no clipping).
- ``"linear_fit"``: the reference is percentile-normalized, then the test image is replaced by the
  least-squares line ``a * image + b`` that best matches it, the normalization the rDL SIM authors use
  so that a reconstruction is not penalised for an arbitrary gain and offset.
- ``"none"``: both arrays are compared as given (the caller has already normalized them).

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
       visibility to structural similarity", IEEE Trans. Image Process. 13, 600-612 (2004).
.. [2] Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality
       assessment", Proc. 37th Asilomar Conf. Signals, Systems and Computers, 1398-1402 (2003).
.. [3] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
       dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, "Multiscale structure
       similarity (MS-SSIM)", eq. 13-17.
.. [4] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes", Nat. Biotechnol. 41, 367-377 (2023): the linear-fit
       normalization before PSNR and SSIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from microsr.errors import InputError
from microsr.losses import MS_SSIM_WEIGHTS, SSIM_K1 as _K1, SSIM_K2 as _K2, check_ssim_window, ms_ssim_exponents
from microsr.metrics.checks import as_image
from microsr.metrics.cosine import transform_threads

__all__ = ["normalize", "psnr", "ssim", "ms_ssim", "nrmse", "pearson", "MS_SSIM_WEIGHTS"]

_METHODS = ("percentile", "linear_fit", "none")


# ---------------------------------------------------------------------------------------------------------
# input checks


def _as_pair(image, reference) -> tuple[np.ndarray, np.ndarray]:
    image = as_image(image, "image")
    reference = as_image(reference, "reference")
    if image.shape != reference.shape:
        raise InputError(f"image has shape {image.shape} but reference has shape {reference.shape}: "
                         "crop or resample them to the same grid before scoring")
    return image, reference


# ---------------------------------------------------------------------------------------------------------
# normalization


def normalize(image, reference=None, method: str = "percentile", low: float = 0.1,
              high: float = 99.9) -> np.ndarray:
    """Bring an image onto a unit intensity scale so that fidelity scores compare structure, not gain.

    Parameters
    ----------
    image : array_like, 2-D
        Image to normalize; any real numeric dtype.
    reference : array_like, 2-D, optional
        Reference image of the same shape; required for ``method="linear_fit"``, ignored otherwise.
    method : {"percentile", "linear_fit", "none"}
        ``"percentile"``: ``(image - p_low) / (p_high - p_low)`` with the image's own percentiles;
        values outside the percentiles are kept (not clipped), so a few hot pixels stay visible to
        the metrics. ``"linear_fit"``: ``a * image + b`` with ``a, b`` the least-squares fit to the
        percentile-normalized reference (the rDL SIM authors' normalization). ``"none"``: unchanged.
    low, high : float
        Percentiles (0-100) mapped to 0 and 1; used by ``"percentile"`` and for the reference in
        ``"linear_fit"``.

    Returns
    -------
    numpy.ndarray of float64
        The normalized image, same shape.

    Raises
    ------
    InputError
        Unknown method, bad percentiles, missing reference, or (``"percentile"``) an image whose two
        percentiles coincide: a constant image has no scale to normalize.

    References
    ----------
    .. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained
           live imaging of rapid subcellular processes", Nat. Biotechnol. 41, 367-377 (2023): the
           linear-fit normalization used before computing PSNR and SSIM.

    Examples
    --------
    >>> import numpy as np
    >>> normalize(np.array([[0.0, 5.0], [5.0, 10.0]]), low=0, high=100)
    array([[0. , 0.5],
           [0.5, 1. ]])
    """
    if method not in _METHODS:
        raise InputError(f"unknown normalization {method!r}: use one of {', '.join(_METHODS)}")
    if not 0.0 <= low < high <= 100.0:
        raise InputError(f"percentiles low={low}, high={high}: need 0 <= low < high <= 100")
    if method == "linear_fit":
        if reference is None:
            raise InputError("normalization 'linear_fit' needs a reference image to fit to: pass reference=")
        image, reference = _as_pair(image, reference)
        target = _percentile_normalize(reference, low, high, "reference")
        return _linear_fit(image, target)
    image = as_image(image, "image")
    if method == "none":
        return image
    return _percentile_normalize(image, low, high, "image")


def _percentile_normalize(image: np.ndarray, low: float, high: float, name: str) -> np.ndarray:
    p_low, p_high = np.percentile(image, [low, high])
    if not p_high > p_low:
        raise InputError(f"constant image: nothing to normalize ({name}'s {low}th and {high}th percentiles "
                         f"are both {p_low:g}); pass a non-constant image or normalization='none'")
    return (image - p_low) / (p_high - p_low)


def _linear_fit(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    # Closed-form least squares on centred data: better conditioned than lstsq on raw camera counts.
    image_centred = image - image.mean()
    variance = float(np.sum(image_centred * image_centred))
    # A constant image has no gain to fit; its best match is the reference's mean level.
    gain = float(np.sum(image_centred * (target - target.mean()))) / variance if variance > 0 else 0.0
    return gain * image_centred + target.mean()


def _normalized_pair(image, reference, normalization: str) -> tuple[np.ndarray, np.ndarray]:
    image, reference = _as_pair(image, reference)
    if normalization not in _METHODS:
        raise InputError(f"unknown normalization {normalization!r}: use one of {', '.join(_METHODS)}")
    if normalization == "none":
        return image, reference
    return (normalize(image, reference, method=normalization),
            normalize(reference, method="percentile"))


def _data_range(reference: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(reference.max() - reference.min())
        if data_range <= 0:
            raise InputError("constant reference: its intensity range is 0, so the score is undefined; "
                             "pass data_range= or a non-constant reference")
    elif not np.isfinite(data_range) or data_range <= 0:
        raise InputError(f"data_range={data_range}: give a positive, finite intensity range")
    return float(data_range)


# ---------------------------------------------------------------------------------------------------------
# scores


def psnr(image, reference, *, normalization: str = "percentile",
         data_range: float | None = None) -> float | None:
    """Peak signal-to-noise ratio of ``image`` against ``reference``, in dB.

    ``PSNR = 10 log10(data_range**2 / MSE)`` after normalization (see the module docstring).

    Parameters
    ----------
    image, reference : array_like, 2-D, same shape
        Test image and ground truth; any real numeric dtype, no NaN or inf.
    normalization : {"percentile", "linear_fit", "none"}
        How ``image`` is normalized; ``reference`` is percentile-normalized unless this is ``"none"``.
    data_range : float, optional
        Peak-to-peak intensity of the signal; default: range (max - min) of the normalized reference.

    Returns
    -------
    float or None
        PSNR in dB; ``None`` when the normalized images are identical (MSE 0, PSNR infinite), so
        that averages and tables never silently absorb an ``inf``.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, "Mean squared error: love it or leave it?", IEEE Signal Process.
           Mag. 26, 98-117 (2009).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.arange(64.0).reshape(8, 8)
    >>> psnr(truth, truth) is None
    True
    """
    # imported on first use: skimage.metrics pulls in scipy.stats (~0.6 s of start-up, measured)
    from skimage.metrics import peak_signal_noise_ratio

    image, reference = _normalized_pair(image, reference, normalization)
    data_range = _data_range(reference, data_range)
    if np.array_equal(image, reference):
        return None
    return float(peak_signal_noise_ratio(reference, image, data_range=data_range))


def ssim(image, reference, *, normalization: str = "percentile", win_size: int = 7,
         data_range: float | None = None) -> float:
    """Mean structural similarity (SSIM) of ``image`` against ``reference``.

    Computed by :func:`skimage.metrics.structural_similarity` with its default uniform
    ``win_size`` x ``win_size`` window and sample (N-1) covariances, ``K1 = 0.01``, ``K2 = 0.03``;
    the border ``(win_size - 1) / 2`` pixels are left out of the mean. The uniform window (rather
    than Wang's 11-px Gaussian) keeps SSIM meaningful on small patches; :func:`ms_ssim` uses the
    Gaussian window of its paper.

    Parameters
    ----------
    image, reference : array_like, 2-D, same shape
        Test image and ground truth; any real numeric dtype, no NaN or inf.
    normalization : {"percentile", "linear_fit", "none"}
        How ``image`` is normalized; ``reference`` is percentile-normalized unless this is ``"none"``.
    win_size : int
        Side of the square window in pixels, odd, at most the image's smaller side.
    data_range : float, optional
        ``L`` of the constants ``C1 = (K1 L)**2``, ``C2 = (K2 L)**2``; default: range of the
        normalized reference.

    Returns
    -------
    float
        Mean SSIM, 1 for identical images.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
           visibility to structural similarity", IEEE Trans. Image Process. 13, 600-612 (2004).
    .. [2] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
           dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, eq. 13-16.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.random.default_rng(0).random((32, 32))
    >>> round(ssim(truth, truth), 6)
    1.0
    """
    image, reference = _normalized_pair(image, reference, normalization)
    check_ssim_window(win_size, image.shape)
    data_range = _data_range(reference, data_range)
    return _strip_mean_ssim(reference, image, int(win_size), data_range)


def ms_ssim(image, reference, *, normalization: str = "percentile", win_size: int = 7,
            sigma: float = 1.5, weights: Sequence[float] | None = None,
            data_range: float | None = None) -> float:
    """Multi-scale structural similarity (MS-SSIM) of ``image`` against ``reference``.

    The float64 NumPy twin of :func:`microsr.losses.ms_ssim_torch` (a test holds them equal to 1e-12):
    see it for the algorithm, including how many scales are used on small images. SciPy's float64 filters
    run the blurs ~5× faster on CPU than torch's float64 convolution (4096²: 28 s → 4 s, measured), and
    strips of rows keep the memory bounded.

    Parameters
    ----------
    image, reference : array_like, 2-D, same shape
        Test image and ground truth; any real numeric dtype, no NaN or inf.
    normalization : {"percentile", "linear_fit", "none"}
        How ``image`` is normalized; ``reference`` is percentile-normalized unless this is ``"none"``.
    win_size : int
        Side of the Gaussian window in pixels (odd). 7 lets a 64-px image keep 4 scales.
    sigma : float
        Standard deviation of the Gaussian window, pixels.
    weights : sequence of float, optional
        Per-scale exponents, finest first; default :data:`MS_SSIM_WEIGHTS` (Wang et al. 2003).
    data_range : float, optional
        ``L`` of the SSIM constants; default: range of the normalized reference.

    Returns
    -------
    float
        MS-SSIM, 1 for identical images, 0 when the structure is anti-correlated at some scale.

    References
    ----------
    .. [1] Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality
           assessment", Proc. 37th Asilomar Conf. Signals, Systems and Computers, 1398-1402 (2003).
    .. [2] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
           dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, "Multiscale structure
           similarity (MS-SSIM)", eq. 17.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.random.default_rng(0).random((64, 64))
    >>> round(ms_ssim(truth, truth), 6)
    1.0
    """
    image, reference = _normalized_pair(image, reference, normalization)
    data_range = _data_range(reference, data_range)
    return _ms_ssim_float64(image, reference, data_range=data_range, win_size=win_size, sigma=sigma,
                            weights=weights)


# Pixels per strip of the SSIM maps: a 4096² pair then needs ~100 MB per thread, not 2 GB.
_STRIP_PIXELS = 2**20


def _row_strips(rows: int, columns: int, minimum_rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of strips of rows covering ``rows``, each at least ``minimum_rows`` high, and at
    least one per thread."""
    height = max(minimum_rows, min(_STRIP_PIXELS // max(columns, 1), -(-rows // transform_threads())))
    edges = list(range(0, rows, height)) + [rows]
    if len(edges) > 2 and edges[-1] - edges[-2] < minimum_rows:
        del edges[-2]  # a short last strip joins the one before
    return list(zip(edges[:-1], edges[1:]))


def _thread_map(function, items):
    """``map`` over two threads where the thread count allows (SciPy's filters release the GIL)."""
    items = list(items)
    threads = min(transform_threads(), len(items))
    if threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(function, items))


def _strip_mean_ssim(reference: np.ndarray, image: np.ndarray, win_size: int, data_range: float) -> float:
    """``skimage.metrics.structural_similarity`` (uniform window, sample covariance), strip by strip.

    Each strip is read with the window's reach above and below, so its SSIM map is the whole image's
    there; the mean over the map less its border (as scikit-image takes it) is summed strip by strip.
    """
    from skimage.metrics import structural_similarity

    rows, columns = image.shape
    pad = (win_size - 1) // 2

    def strip_sum(bounds):
        start, stop = bounds
        low, high = max(0, start - pad), min(rows, stop + pad)
        _, ssim_map = structural_similarity(reference[low:high], image[low:high], win_size=win_size,
                                            data_range=data_range, K1=_K1, K2=_K2, full=True)
        first, last = max(start, pad), min(stop, rows - pad)
        if last <= first:
            return 0.0
        return float(ssim_map[first - low:last - low, pad:columns - pad].sum(dtype=np.float64))

    total = sum(_thread_map(strip_sum, _row_strips(rows, columns, win_size)))
    return total / ((rows - 2 * pad) * (columns - 2 * pad))


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, window: np.ndarray, c1: float, c2: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of one scale, with valid (unpadded) separable Gaussian
    blurs as in :func:`ms_ssim_torch`, strip by strip."""
    from scipy import ndimage

    size = len(window)
    centre = size // 2
    rows, columns = x.shape[0] - size + 1, x.shape[1] - size + 1

    def blur(image):
        along_rows = ndimage.correlate1d(image, window, axis=1)[:, centre:centre + columns]
        return ndimage.correlate1d(along_rows, window, axis=0)[centre:-centre or None]

    def strip_sums(bounds):
        start, stop = bounds
        xs, ys = x[start:stop + size - 1], y[start:stop + size - 1]
        mu_x, mu_y = blur(xs), blur(ys)
        var_x = blur(xs * xs) - mu_x**2
        var_y = blur(ys * ys) - mu_y**2
        cov_xy = blur(xs * ys) - mu_x * mu_y
        cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
        luminance_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        return float(np.sum(luminance_map * cs_map)), float(np.sum(cs_map))

    sums = _thread_map(strip_sums, _row_strips(rows, x.shape[1], 1))
    count = rows * columns
    return sum(s for s, _ in sums) / count, sum(c for _, c in sums) / count


def _ms_ssim_float64(x: np.ndarray, y: np.ndarray, *, data_range: float, win_size: int, sigma: float,
                     weights: Sequence[float] | None) -> float:
    """:func:`ms_ssim_torch` of two 2-D float64 images, computed with NumPy and SciPy (same checks, same steps)."""
    exponents = ms_ssim_exponents(x.shape, win_size, sigma, weights)
    scales = len(exponents)
    coords = np.arange(win_size, dtype=np.float64) - win_size // 2
    profile = np.exp(-(coords**2) / (2 * sigma**2))
    window = profile / profile.sum()
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    factors = []
    for scale in range(scales):
        ssim_value, cs_value = _ssim_and_cs(x, y, window, c1, c2)
        if scale < scales - 1:
            factors.append(cs_value)
            # 2 × 2 average pooling; an odd trailing row or column is dropped
            rows, columns = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:rows, :columns].reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3))
            y = y[:rows, :columns].reshape(rows // 2, 2, columns // 2, 2).mean(axis=(1, 3))
        else:
            factors.append(ssim_value)
    # negative contrast-structure (anti-correlated structure) counts as 0, as in ms_ssim_torch
    return float(np.prod([factor**exponent if factor > 0 else 0.0 for factor, exponent in zip(factors, exponents)]))


def nrmse(image, reference, *, normalization: str = "percentile") -> float:
    """Root-mean-square error of ``image`` against ``reference``, divided by the reference's range.

    ``NRMSE = sqrt(mean((image - reference)**2)) / (max(reference) - min(reference))`` after
    normalization (see the module docstring); with percentile normalization the denominator is
    about 1 plus the reference's tails beyond its percentiles.

    Parameters
    ----------
    image, reference : array_like, 2-D, same shape
        Test image and ground truth; any real numeric dtype, no NaN or inf.
    normalization : {"percentile", "linear_fit", "none"}
        How ``image`` is normalized; ``reference`` is percentile-normalized unless this is ``"none"``.

    Returns
    -------
    float
        NRMSE, 0 for identical images.

    References
    ----------
    .. [1] J. R. Fienup, "Invariant error metrics for image reconstruction", Appl. Opt. 36,
           8352-8357 (1997).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.arange(64.0).reshape(8, 8)
    >>> nrmse(truth, truth)
    0.0
    """
    from skimage.metrics import normalized_root_mse

    image, reference = _normalized_pair(image, reference, normalization)
    _data_range(reference, None)
    return float(normalized_root_mse(reference, image, normalization="min-max"))


def pearson(image, reference) -> float | None:
    """Pearson correlation coefficient of the pixel values of ``image`` and ``reference``.

    Invariant to gain and offset of either image, so no normalization is applied.

    Parameters
    ----------
    image, reference : array_like, 2-D, same shape
        Test image and ground truth; any real numeric dtype, no NaN or inf.

    Returns
    -------
    float or None
        Correlation in [-1, 1]; ``None`` when either image is constant (zero variance: the
        correlation is undefined).

    References
    ----------
    .. [1] K. Pearson, "Notes on regression and inheritance in the case of two parents",
           Proc. R. Soc. Lond. 58, 240-242 (1895).

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.arange(64.0).reshape(8, 8)
    >>> round(pearson(3 * truth + 7, truth), 12)
    1.0
    """
    image, reference = _as_pair(image, reference)
    image = image - image.mean()
    reference = reference - reference.mean()
    norm = np.sqrt(np.sum(image * image) * np.sum(reference * reference))
    if norm == 0:
        return None
    return float(np.clip(np.sum(image * reference) / norm, -1.0, 1.0))
