"""How far a super-resolution image can be trusted: HAWKMAN, SQUIRREL, ensemble and temporal agreement.

These are the quality checks of SFSRM (Chen et al., Nat. Commun. 2023, Methods eq. 18 and Supplementary
Note 2): HAWKMAN compares an SR image with a reference of higher fidelity; SQUIRREL compares it with the
widefield image it came from; ensemble disagreement and temporal agreement need no reference at all.

HAWKMAN and SQUIRREL blur one image at many widths. Both do it in the cosine-transform domain
(:mod:`microsr.metrics.cosine`), where a blur is one product and the result is SciPy's reflect-mode
Gaussian filter, so that they are cheap enough to run on every output.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from microsr.errors import InputError
from microsr.metrics.banded import gaussian_filter64
from microsr.metrics.checks import as_image
from microsr.metrics.cosine import (binned_spectrum, blur_at, cosine_spectrum, from_cosine_spectrum, gaussian_kernel,
                                    gaussian_transfer, inverse_cosine_spectrum, transform_threads)
from microsr.threads import blas_threads

__all__ = [
    "HawkmanResult",
    "SquirrelResult",
    "hawkman",
    "squirrel",
    "ensemble_disagreement",
    "temporal_agreement",
]

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

# HAWKMAN's search over scales runs its blurs in float32, whose cosine transforms of an image scaled to
# [0, 1] stay within 3e-7 of float64 (measured at 1024² and 4096²). A threshold decision closer than this
# margin to its threshold is taken again on float64 values, so the masks are those float64 filters give.
_FLOAT32_MARGIN = 1e-5


@dataclass(frozen=True)
class HawkmanResult:
    """Outcome of :func:`hawkman`.

    Attributes
    ----------
    score : float
        HAWKMAN score in [0, 1] (eq. 18 of SFSRM) at the least favourable scale; 1 = fully trusted.
    confidence_map : numpy.ndarray
        Local score in [0, 1], same shape as the images; below ``threshold`` = untrusted structure.
    pcc_sharpening : float
        Pearson correlation of the sharpening (locally binarized) images at ``scale_px``.
    pcc_structure : float
        Pearson correlation of the structure (re-blurred skeleton) images at ``scale_px``.
    scale_px : int
        Blur scale (Gaussian FWHM, pixels) at which the score is lowest; reported values belong to it.
    """

    score: float
    confidence_map: np.ndarray
    pcc_sharpening: float
    pcc_structure: float
    scale_px: int


@dataclass(frozen=True)
class SquirrelResult:
    """Outcome of :func:`squirrel`.

    Attributes
    ----------
    error_map : numpy.ndarray
        ``|G_sigma * (alpha SR + beta) - WF|`` on the widefield grid, in widefield intensity units.
    rse : float
        Resolution-scaled error: root mean square of the error map.
    rsp : float
        Resolution-scaled Pearson coefficient of the resolution-scaled SR image and the widefield image.
    sigma_nm : float
        Standard deviation of the Gaussian resolution-scaling function, in nm.
    alpha, beta : float
        Intensity gain and offset that map the SR image onto widefield intensities.
    """

    error_map: np.ndarray
    rse: float
    rsp: float
    sigma_nm: float
    alpha: float
    beta: float


def _require_not_constant(array, name):
    if np.ptp(array) == 0:
        raise InputError(f"{name} is constant, so it has no structure to compare; pass a real image")


def _dot(a, b) -> float:
    """Sum of products in float64. NumPy's own loop rather than BLAS: a BLAS thread pool on a busy machine
    spends ~40 ms waking up for a 65 k-element dot (measured)."""
    return float(np.einsum("i,i->", a.ravel(), b.ravel(), dtype=np.float64))


def _pearson(a, b):
    """Pearson correlation; 0 where one image is flat (nothing correlates with a flat image)."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denominator = np.sqrt(_dot(a, a) * _dot(b, b))
    if denominator == 0:
        return 0.0
    return float(_dot(a, b) / denominator)


def _mask_pearson(count_a: int, count_b: int, count_both: int, size: int) -> float:
    """Pearson correlation of two binary masks from their pixel counts (exact integers; 0 if one is flat)."""
    covariance = size * count_both - count_a * count_b
    denominator = (size * count_a - count_a**2) * (size * count_b - count_b**2)
    if denominator == 0:
        return 0.0
    return float(covariance / np.sqrt(float(denominator)))


def _count_ones(bits: np.ndarray) -> int:
    """Set bits in packed bytes (``np.packbits`` pads with zeros)."""
    if hasattr(np, "bitwise_count"):  # NumPy 2
        return int(np.bitwise_count(bits).sum())
    return int(np.unpackbits(bits).sum())


def _spectral_pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images given by their orthonormal cosine spectra with the mean (DC) removed:
    the transform keeps inner products, so no inverse transform is needed."""
    denominator = np.sqrt(_dot(a, a) * _dot(b, b))
    if denominator == 0:
        return 0.0
    return _dot(a, b) / denominator


def _eq18(pcc_sharp, pcc_structure, threshold):
    """SFSRM eq. 18; negative correlations count as no agreement, so the score stays in [0, 1]."""
    if np.ndim(pcc_sharp) == 0:
        return (0.5 * np.clip(pcc_sharp / threshold, 0.0, 1.0)
                + 0.5 * np.clip(pcc_structure / threshold, 0.0, 1.0))
    # maps: the same, in place (a 4096² map is 64 MB a copy)
    score = np.divide(pcc_sharp, threshold)
    term = np.divide(pcc_structure, threshold)
    for part in (score, term):
        np.maximum(part, 0.0, out=part)
        np.minimum(part, 1.0, out=part)
        part *= 0.5
    score += term
    return score


def _unit_range(image):
    """The intensities :func:`_normalize_unit` maps to 0 and 1 (the 0.1 and 99.9 percentiles, else the extremes),
    or None for a constant image."""
    low, high = np.percentile(image, [0.1, 99.9])
    if high <= low:
        low, high = image.min(), image.max()
    return None if high <= low else (low, high)


def _to_unit(values, low, high):
    scaled = np.subtract(values, low)
    np.divide(scaled, high - low, out=scaled)
    np.maximum(scaled, 0.0, out=scaled)
    return np.minimum(scaled, 1.0, out=scaled)


def _normalize_unit(image):
    """Scale to [0, 1] by the 0.1–99.9 percentile range so that single hot pixels do not set the scale."""
    unit_range = _unit_range(image)
    return np.zeros_like(image) if unit_range is None else _to_unit(image, *unit_range)


class _UnitScaled:
    """An image as :func:`_normalize_unit` scales it, read block by block: the exact float64 values that a
    threshold decision may need, without keeping a second full-size copy of a large image."""

    #: Up to this many pixels the scaled image is made once (float64, 32 MB): each retaken decision then reads a
    #: view of it, instead of scaling its window again (~50 µs a window, thousands of windows per image).
    WHOLE_UP_TO_PIXELS = 2**22

    def __init__(self, image: np.ndarray):
        self.image, self.shape = image, image.shape
        self.unit_range = _unit_range(image)
        self.whole = self[...] if image.size <= self.WHOLE_UP_TO_PIXELS else None

    def __getitem__(self, key):
        if getattr(self, "whole", None) is not None:
            return self.whole[key]
        values = self.image[key]
        return np.zeros_like(values) if self.unit_range is None else _to_unit(values, *self.unit_range)


def _above(values32: np.ndarray, threshold: float, margin: float, exact) -> np.ndarray:
    """``values32 > threshold``, the decisions within ``margin`` of it taken again by ``exact(flat_indices)``."""
    above = values32 > threshold
    unsure = np.flatnonzero((values32 >= np.float32(threshold - margin)) & (values32 <= np.float32(threshold + margin)))
    if unsure.size:
        above.flat[unsure] = exact(unsure)
    return above


class _HawkmanImage:
    """One image scaled to [0, 1] and its float32 cosine spectrum, from which its features at every scale
    are made (Marsh et al. 2018): sharpening = locally binarized blur, structure = re-blurred skeleton."""

    def __init__(self, image: np.ndarray):
        self.shape = image.shape
        self.image = _UnitScaled(image)
        self.spectrum = cosine_spectrum(self.image[...], np.float32)

    def release(self):
        """Drop what only the sharpening images need (the structure images start from those)."""
        self.image = self.spectrum = None

    def _transfers(self, sigma_px):
        return gaussian_transfer(sigma_px, self.shape[0]), gaussian_transfer(sigma_px, self.shape[1])

    def _exact_blur(self, image, kernel):
        columns = image.shape[1]
        return lambda flat: blur_at(image, flat // columns, flat % columns, kernel)

    def sharpening(self, scale_px: int) -> np.ndarray:
        """The blurred image scaled to a maximum of 1, above its local level plus 10 % of the peak."""
        sigma = scale_px / _FWHM_PER_SIGMA
        # Local threshold: a neighbourhood three times the feature scale sets the local level; a margin of
        # 10 % of the peak keeps noisy background (blurred ~ its local mean) out of the feature mask.
        local_sigma = 3.0 * sigma + 1.0
        transfer_y, transfer_x = self._transfers(sigma)
        local_y, local_x = self._transfers(local_sigma)
        blurred = from_cosine_spectrum(self.spectrum, transfer_y, transfer_x)
        # The local level of the blurred image is a blur of a blur: one product of transfer functions.
        level = from_cosine_spectrum(self.spectrum, transfer_y * local_y, transfer_x * local_x)
        kernel = gaussian_kernel(sigma)
        level_kernel = np.convolve(kernel, gaussian_kernel(local_sigma))
        exact_blurred, exact_level = self._exact_blur(self.image, kernel), self._exact_blur(self.image, level_kernel)

        top = np.flatnonzero(blurred >= blurred.max() - 2 * _FLOAT32_MARGIN)
        peak = float(exact_blurred(top).max())
        scale = peak if peak > 0 else 1.0
        blurred -= level
        del level

        def exact(flat):
            return exact_blurred(flat) / scale > exact_level(flat) / scale + 0.1

        # blurred - level > 0.1 peak  <=>  blurred / peak > (local level of blurred / peak) + 0.1
        return _above(blurred, 0.1 * scale, 2 * _FLOAT32_MARGIN, exact)

    def structure(self, sharpening: np.ndarray, scale_px: int) -> tuple[np.ndarray, np.ndarray]:
        """Skeleton of the mask's confident core, and the cosine spectrum (mean removed) of its re-blur."""
        from skimage.morphology import skeletonize

        sigma = scale_px / _FWHM_PER_SIGMA
        transfer_y, transfer_x = self._transfers(sigma)
        smoothed = from_cosine_spectrum(cosine_spectrum(sharpening, np.float32), transfer_y, transfer_x)
        # Blur and flatten (saturate) the mask, keep its confident core at a higher threshold:
        # min(blur / 0.5, 1) > 0.75, i.e. blur > 0.375; then thin it to its skeleton so that width
        # differences no longer count.
        exact_smoothed = self._exact_blur(sharpening, gaussian_kernel(sigma))
        core = _above(smoothed, 0.375, _FLOAT32_MARGIN, lambda flat: exact_smoothed(flat) > 0.375)
        del smoothed
        skeleton = skeletonize(core)
        spectrum = cosine_spectrum(skeleton, np.float32)
        spectrum *= transfer_y.astype(np.float32)[:, None]
        spectrum *= transfer_x.astype(np.float32)[None, :]
        spectrum[0, 0] = 0.0
        return skeleton, spectrum


# The windowed variance of an image with values in [0, 1] is at most 1/4, so the floor below which a
# window counts as empty (1e-6 of the largest variance) is at most this much.
_LARGEST_FLOOR = 1e-6 * 0.25 * (1 + 1e-9)


class _LocalPearson:
    """Gaussian-windowed Pearson correlation of two images with values in [0, 1], strip by strip.

    Where neither image varies inside the window both show the same (empty) scene, which counts as
    agreement (1); where only one varies, the structure is missing from the other (0). "Varies" means a
    variance above 1e-6 of the largest over the whole image (Gaussian tails make exact zeros rare;
    below that is numerical dust), which is known only when every strip is done: pixels whose variance
    lies between 0 and the largest possible floor are decided at the end.
    """

    def __init__(self, shape, window_sigma_px):
        self.window_sigma_px = window_sigma_px
        self.correlation = np.empty(shape, dtype=np.float32)
        self.largest_variance = np.finfo(float).tiny
        self.undecided = []
        self._lock = threading.Lock()  # strips are added from two threads

    def add(self, a, b, rows: slice, inside: slice, binary: bool = False):
        """Correlate strips ``a``, ``b`` (read with margins); keep the rows ``inside`` as image rows ``rows``.
        ``binary``: the strips hold only 0 and 1, so a * a is a and its windowed mean is already known."""
        def windowed(image):
            return gaussian_filter64(image, self.window_sigma_px)[inside]

        def variance(mean, image):
            # max(G(x²) − G(x)², 0), in place
            spread = mean.copy() if binary else windowed(image * image)
            spread -= mean**2
            return np.maximum(spread, 0.0, out=spread)

        mean_a, mean_b = windowed(a), windowed(b)
        var_a, var_b = variance(mean_a, a), variance(mean_b, b)
        cov = windowed(a * b)
        mean_a *= mean_b
        cov -= mean_a
        del mean_a, mean_b
        both = (var_a > 0) & (var_b > 0)
        ratio = np.zeros_like(cov)
        np.divide(cov, np.sqrt(var_a * var_b), out=ratio, where=both)
        del cov
        np.maximum(ratio, -1.0, out=ratio)
        np.minimum(ratio, 1.0, out=ratio)
        sure_a, sure_b = var_a > _LARGEST_FLOOR, var_b > _LARGEST_FLOOR
        sure_a_flat, sure_b_flat = var_a == 0, var_b == 0
        # both vary: the correlation; neither: 1; one only: 0
        self.correlation[rows] = np.where(sure_a & sure_b, ratio, sure_a_flat & sure_b_flat)
        undecided = np.flatnonzero(~(sure_a | sure_a_flat) | ~(sure_b | sure_b_flat))
        with self._lock:
            self.largest_variance = max(self.largest_variance, float(var_a.max()), float(var_b.max()))
            if undecided.size:
                self.undecided.append((undecided + rows.start * var_a.shape[1], var_a.flat[undecided],
                                       var_b.flat[undecided], ratio.flat[undecided]))
        return self

    def result(self) -> np.ndarray:
        floor = 1e-6 * self.largest_variance
        for flat, var_a, var_b, ratio in self.undecided:
            has_a, has_b = var_a > floor, var_b > floor
            self.correlation.flat[flat] = np.where(has_a & has_b, ratio, (~has_a & ~has_b).astype(ratio.dtype))
        return self.correlation


# Pixels per strip of the confidence map (with its margins): ~12 float64 strips of this size per thread,
# ~100 MB.
_MAP_STRIP_PIXELS = 2**20


def _confidence_map(sharp_test, sharp_reference, skeleton_test, skeleton_reference, scale_px, threshold,
                    pool) -> np.ndarray:
    """Eq. 18 applied to Gaussian-windowed local correlations (window σ = max(2, scale) pixels).

    SciPy's float64 filters (as banded matrix products, :mod:`microsr.metrics.banded`), as the local
    variances are compared with a floor of 1e-6 of their peak that float32 cannot resolve; in strips of
    rows, each read with the margin its filters reach, so that memory stays bounded on large images and two
    threads share the work. The values are those of the whole image filtered at once.
    """
    rows, columns = sharp_test.shape
    window_sigma_px = max(2.0, float(scale_px))
    sigma = scale_px / _FWHM_PER_SIGMA
    # rows a strip's values depend on: the window's reach plus the structure blur's
    margin = int(4.0 * window_sigma_px + 0.5) + int(4.0 * sigma + 0.5)
    height = max(8 * margin, _MAP_STRIP_PIXELS // columns - 2 * margin)
    height = min(height, -(-rows // 2))  # at least two strips: one per thread
    sharp = _LocalPearson((rows, columns), window_sigma_px)
    structure = _LocalPearson((rows, columns), window_sigma_px)

    def strip(start):
        stop = min(rows, start + height)
        low, high = max(0, start - margin), min(rows, stop + margin)
        inside, image_rows = slice(start - low, stop - low), slice(start, stop)
        sharp.add(sharp_test[low:high].astype(np.float64), sharp_reference[low:high].astype(np.float64),
                  image_rows, inside, binary=True)
        structure.add(gaussian_filter64(skeleton_test[low:high], sigma),
                      gaussian_filter64(skeleton_reference[low:high], sigma),
                      image_rows, inside)

    with blas_threads(1):  # the strips already run in the pool's threads
        list(pool.map(strip, range(0, rows, max(1, height))))
    return _eq18(sharp.result(), structure.result(), np.float32(threshold))


class _SerialPool:
    """The executor interface without threads, for a thread count of 1."""

    @staticmethod
    def map(function, items):
        return [function(item) for item in items]


def hawkman(test, reference, *, max_scale_px=10, threshold=0.85, min_scale_px=1):
    """Structural agreement of a test image with a reference image (HAWKMAN), with a confidence map.

    Both images are normalized to [0, 1]; at each blur scale (Gaussian FWHM ``min_scale_px`` …
    ``max_scale_px`` pixels) they are blurred and scaled to a maximum of 1, binarized by a local
    threshold (sharpening images), blurred, flattened, re-binarized at a higher threshold and
    skeletonized, and re-blurred at the same FWHM (structure images). The Pearson correlations of the
    test and reference sharpening and structure images give the score of eq. 18,
    ``½ min(1, PCC_sharp / 0.85) + ½ min(1, PCC_str / 0.85)``. The confidence map is the same formula
    applied to Gaussian-windowed local correlations (window σ = max(2, scale) pixels).

    The scale reported is the one with the lowest score: an artifact shows at the scale where the
    images disagree most, and averaging over scales would hide it (our choice; HAWKMAN reports the
    score as a function of scale).

    Parameters
    ----------
    test : array_like, shape (Y, X)
        Image to be judged, e.g. an SFSRM reconstruction.
    reference : array_like, shape (Y, X)
        Trusted image of the same field on the same grid, e.g. STORM or the simulated ground truth.
    max_scale_px : int, optional
        Largest blur scale (Gaussian FWHM in pixels) examined.
    threshold : float, optional
        PCC at which a structure counts as fully trusted (0.85 in SFSRM and HAWKMAN).
    min_scale_px : int, optional
        Smallest blur scale examined; raise it to ignore disagreement finer than the reference's
        own resolution.

    Returns
    -------
    HawkmanResult
        ``score``, ``confidence_map`` (local score in [0, 1]; below ``threshold`` = untrusted),
        ``pcc_sharpening``, ``pcc_structure`` and ``scale_px``.

    Notes
    -----
    The blurs are products in the cosine-transform domain (equal to SciPy's reflect-mode filters), in
    float32 with every threshold decision near its threshold retaken in float64, so the masks are those of
    float64 filters; the two images are worked on in two threads where
    :func:`~microsr.metrics.cosine.transform_threads` allows. The score of a scale is at least
    ``½ min(1, PCC_sharp / threshold)``, so the skeletons, the costly part, are only made at scales whose
    sharpening correlation leaves them a chance to be the lowest.

    References
    ----------
    R. F. Marsh et al., "Artifact-free high-density localization microscopy analysis",
    Nat. Methods 15, 689 (2018).
    SFSRM (paper 003 of this project), Methods, eq. 18.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((64, 64)); image[20:44, 31:33] = 1.0
    >>> round(hawkman(image, image).score, 6)
    1.0
    """
    test = as_image(test, "test image")
    reference = as_image(reference, "reference image")
    if test.shape != reference.shape:
        raise InputError(f"test image {test.shape} and reference {reference.shape} differ in shape; "
                         "register them onto the same pixel grid first")
    _require_not_constant(test, "test image")
    _require_not_constant(reference, "reference image")
    if not (0 < threshold <= 1):
        raise InputError(f"threshold must lie in (0, 1], got {threshold}")
    min_scale_px, max_scale_px = int(min_scale_px), int(max_scale_px)
    if not (1 <= min_scale_px <= max_scale_px):
        raise InputError(f"scales must satisfy 1 <= min_scale_px <= max_scale_px, "
                         f"got {min_scale_px} and {max_scale_px}")

    from skimage.morphology import skeletonize  # noqa: F401  (imported once here, not first in two threads at once)

    scales = range(min_scale_px, max_scale_px + 1)
    threads = min(2, transform_threads())
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext(_SerialPool()) as pool:
        images = list(pool.map(_HawkmanImage, (test, reference)))

        def sharpenings(image):
            # packed bits: ten scales of a 4096² pair stay at 40 MB
            return [(np.packbits(mask), int(np.count_nonzero(mask))) for mask in map(image.sharpening, scales)]

        packed_test, packed_reference = pool.map(sharpenings, images)
        for image in images:
            image.release()
        size = test.size
        candidates = []
        for scale_px, (bits_t, count_t), (bits_r, count_r) in zip(scales, packed_test, packed_reference):
            if count_r == 0:
                continue  # the reference has no feature at this scale: nothing to judge against
            pcc_sharp = _mask_pearson(count_t, count_r, _count_ones(bits_t & bits_r), size)
            lowest_possible = float(_eq18(pcc_sharp, 0.0, threshold))
            candidates.append((lowest_possible, scale_px, pcc_sharp))
        if not candidates:
            raise InputError("the reference image shows no structure at any scale up to "
                             f"{max_scale_px} px; pass a reference with features or a larger max_scale_px")

        def unpack(bits):
            return np.unpackbits(bits, count=size).reshape(test.shape).view(bool)

        best = None
        for lowest_possible, scale_px, pcc_sharp in sorted(candidates):
            if best is not None and lowest_possible > best[0]:
                break  # this and every later scale score above the lowest found
            sharp = [unpack(packed_test[scale_px - min_scale_px][0]),
                     unpack(packed_reference[scale_px - min_scale_px][0])]
            (skeleton_t, spectrum_t), (skeleton_r, spectrum_r) = pool.map(
                lambda pair: pair[0].structure(pair[1], scale_px), zip(images, sharp))
            pcc_structure = _spectral_pearson(spectrum_t, spectrum_r)
            del spectrum_t, spectrum_r
            score = float(_eq18(pcc_sharp, pcc_structure, threshold))
            # lowest score wins; among equal scores the smallest scale, as a scan from fine to coarse finds
            if best is None or (score, scale_px) < (best[0], best[1]):
                best = (score, scale_px, pcc_sharp, pcc_structure, sharp, (skeleton_t, skeleton_r))
        del packed_test, packed_reference, images

        score, scale_px, pcc_sharp, pcc_structure, sharp, skeletons = best
        confidence_map = _confidence_map(*sharp, *skeletons, scale_px, threshold, pool)
    return HawkmanResult(score=score, confidence_map=confidence_map.astype(np.float32),
                         pcc_sharpening=pcc_sharp, pcc_structure=pcc_structure, scale_px=scale_px)


def _fit_gain_offset(scaled_spectrum: np.ndarray, widefield_spectrum: np.ndarray):
    """Least-squares ``alpha, beta`` of ``alpha * scaled + beta ≈ widefield`` and the residual sum of squares,
    from the two images' orthonormal cosine spectra (the transform keeps sums of squares and products; the
    DC coefficient carries the mean, so the other coefficients are the images less their means)."""
    size = scaled_spectrum.size
    scaled, widefield = scaled_spectrum.ravel()[1:], widefield_spectrum.ravel()[1:]
    scaled_mean = scaled_spectrum.flat[0] / np.sqrt(size)
    widefield_mean = widefield_spectrum.flat[0] / np.sqrt(size)
    spread = _dot(scaled, scaled)
    if spread > 0:
        alpha = _dot(scaled, widefield) / spread
        beta = widefield_mean - alpha * scaled_mean
    else:  # a flat scaled image: the minimum-norm solution, as a least-squares solver gives it
        alpha = scaled_mean * widefield_mean / (scaled_mean**2 + 1.0)
        beta = widefield_mean / (scaled_mean**2 + 1.0)
    residual = alpha * scaled - widefield
    return float(alpha), float(beta), _dot(residual, residual)


def squirrel(sr, widefield, *, sr_pixel_size_nm, widefield_pixel_size_nm):
    """Resolution-scaled error map of an SR image against its widefield image (SQUIRREL).

    The SR image is convolved with a Gaussian resolution-scaling function of standard deviation σ,
    binned onto the widefield grid (mean over the pixels each camera pixel covers), and mapped onto
    widefield intensities by a gain α and offset β. For each σ, α and β come from linear least
    squares; σ minimizes the residual (coarse log-spaced search, then bounded Brent refinement).

    Parameters
    ----------
    sr : array_like, shape (Y * r, X * r)
        Super-resolution image on a grid ``r`` times finer than the widefield grid.
    widefield : array_like, shape (Y, X)
        Diffraction-limited image of the same field, e.g. the input of the network.
    sr_pixel_size_nm : float
        SR pixel size in nm.
    widefield_pixel_size_nm : float
        Widefield pixel size in nm; must be an integer multiple ``r`` of ``sr_pixel_size_nm``
        (within 1 %).

    Returns
    -------
    SquirrelResult
        ``error_map`` = ``|G_σ * (α SR + β) − WF|`` on the widefield grid, ``rse`` (its root mean
        square), ``rsp`` (Pearson coefficient of the resolution-scaled SR and the widefield image),
        ``sigma_nm``, ``alpha``, ``beta``.

    Notes
    -----
    Blur (SciPy's reflect-mode Gaussian) and binning are both linear, so each σ tried costs one product
    and one fold of the SR image's cosine spectrum onto the widefield grid
    (:func:`microsr.metrics.cosine.binned_spectrum`), and the fit is made on the coarse spectra: the
    SR image is transformed once, not blurred once per σ.

    References
    ----------
    S. Culley et al., "Quantitative mapping and minimization of super-resolution optical imaging
    artifacts", Nat. Methods 15, 263 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> sr = np.zeros((64, 64)); sr[10:54, 30:32] = 1.0
    >>> wf = ndimage.gaussian_filter(sr, 4.0).reshape(32, 2, 32, 2).mean(axis=(1, 3))
    >>> result = squirrel(sr, wf, sr_pixel_size_nm=25.0, widefield_pixel_size_nm=50.0)
    >>> round(result.sigma_nm)
    100
    """
    from scipy import optimize

    sr = as_image(sr, "SR image")
    widefield = as_image(widefield, "widefield image")
    if not (sr_pixel_size_nm > 0 and widefield_pixel_size_nm > 0):
        raise InputError("pixel sizes must be positive numbers of nm; pass the calibrated sizes")
    ratio = widefield_pixel_size_nm / sr_pixel_size_nm
    factor = int(round(ratio))
    if factor < 1 or abs(ratio - factor) > 0.01 * factor:
        raise InputError(f"the pixel sizes do not match: widefield {widefield_pixel_size_nm} nm is not "
                         f"an integer multiple of SR {sr_pixel_size_nm} nm; resample the SR image first")
    expected = (widefield.shape[0] * factor, widefield.shape[1] * factor)
    if sr.shape != expected:
        raise InputError(f"SR image shape {sr.shape} does not cover the widefield image {widefield.shape} "
                         f"at {factor}x; expected {expected}, crop or pad the SR image to match")
    _require_not_constant(widefield, "widefield image")
    _require_not_constant(sr, "SR image")

    sr_spectrum = cosine_spectrum(sr, workers=transform_threads())
    widefield_spectrum = cosine_spectrum(widefield)

    def scaled_spectrum(sigma_px):
        return binned_spectrum(sr_spectrum, factor, gaussian_transfer(sigma_px, sr.shape[0]),
                               gaussian_transfer(sigma_px, sr.shape[1]))

    def residual(sigma_px):
        return _fit_gain_offset(scaled_spectrum(sigma_px), widefield_spectrum)[2]

    # The residual over sigma can have shallow side minima; a coarse grid finds the right basin
    # before Brent's bounded search refines it. Upper bound: blur wider than 1/4 of the field.
    low, high = 0.05, max(0.25 * min(sr.shape), 2.0 * factor)
    grid = np.geomspace(low, high, 24)
    values = [residual(s) for s in grid]
    best = int(np.argmin(values))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)])
    refined = optimize.minimize_scalar(residual, bounds=bracket, method="bounded",
                                       options={"xatol": 1e-4})
    sigma_px = float(refined.x) if refined.fun <= values[best] else float(grid[best])

    spectrum = scaled_spectrum(sigma_px)
    alpha, beta, _ = _fit_gain_offset(spectrum, widefield_spectrum)
    resolution_scaled = alpha * inverse_cosine_spectrum(spectrum) + beta
    error_map = np.abs(resolution_scaled - widefield)
    return SquirrelResult(error_map=error_map.astype(np.float32),
                          rse=float(np.sqrt(np.mean(error_map**2))),
                          rsp=_pearson(resolution_scaled, widefield),
                          sigma_nm=sigma_px * sr_pixel_size_nm, alpha=alpha, beta=beta)


def ensemble_disagreement(images):
    """Per-pixel spread of several reconstructions of one field (model or noise ensemble).

    Each image is first scaled to [0, 1] by its own 0.1–99.9 percentile range, so that models that
    differ only in overall gain do not disagree; the map is then the sample standard deviation
    (ddof = 1) over the ensemble at every pixel. High values mark structure the ensemble does not
    agree on.

    Parameters
    ----------
    images : sequence of array_like of shape (Y, X), or array_like of shape (N, Y, X)
        At least two reconstructions on the same grid.

    Returns
    -------
    numpy.ndarray, shape (Y, X), float32
        Disagreement map in normalized intensity units (0 = identical).

    References
    ----------
    SFSRM (paper 003 of this project), Fig. 4b and Supplementary Note 2, Section II; rDL SIM
    (paper 000), the standard deviation over independently trained models.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((8, 8))
    >>> float(ensemble_disagreement([image, image]).max())
    0.0
    """
    arrays = [as_image(image, f"ensemble image {index}") for index, image in enumerate(images)]
    if len(arrays) < 2:
        raise InputError(f"ensemble disagreement needs at least 2 images, got {len(arrays)}")
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1:
        raise InputError(f"ensemble images differ in shape {sorted(shapes)}; "
                         "pass reconstructions of one field")
    for index, array in enumerate(arrays):
        _require_not_constant(array, f"ensemble image {index}")
    stack = np.stack([_normalize_unit(array) for array in arrays])
    return np.std(stack, axis=0, ddof=1).astype(np.float32)


def relative_disagreement(disagreement, sr) -> float:
    """The ensemble's spread per unit of reconstructed signal: the disagreement map's sum over the SR image's
    (scaled to [0, 1] as :func:`ensemble_disagreement` scales each member).

    The map's plain mean grows with how much of the field holds structure; this ratio does not, so it
    compares fields of different density. Held out on the shipped ``filaments-x4`` (PSF 250 nm, 48² px):
    ~0.15 on filaments, a class it was trained on, and 0.23–0.27 on 20–50 nm dot pairs, a class it never
    saw and cannot resolve — where its members guess, they guess differently.

    Examples
    --------
    >>> import numpy as np
    >>> sr = np.zeros((8, 8)); sr[2:6, 2:6] = 1.0
    >>> round(relative_disagreement(np.full((8, 8), 0.01), sr), 3)
    0.04
    """
    spread = as_image(disagreement, "disagreement map")
    signal = _normalize_unit(as_image(sr, "SR image"))
    if spread.shape != signal.shape:
        raise InputError(f"disagreement map {spread.shape} and SR image {signal.shape} differ in shape")
    total = float(signal.sum())
    return float(spread.sum() / total) if total > 0 else float("nan")


def temporal_agreement(stack, window=5):
    """Per-frame, per-pixel agreement of a time series with its adjacent frames.

    The stack is scaled to [0, 1] by its 0.1–99.9 percentile range (clipped). For frame ``t`` the
    window holds frames ``t - window // 2`` … ``t + window // 2``, clipped at the ends of the stack;
    the agreement is ``1 − 2 · std`` of the pixel over the window (population std). Values in [0, 1]
    have a std of at most 0.5, so the score lies in [0, 1]: 1 = the pixel does not change over the
    window, 0 = it flips between black and full brightness. Fast real motion also lowers it, so read
    the map against the expected speed of the specimen.

    Parameters
    ----------
    stack : array_like, shape (T, Y, X)
        Time series of reconstructions, T ≥ 2.
    window : int, optional
        Number of adjacent frames compared (5 in SFSRM); odd values centre the window on the frame.

    Returns
    -------
    numpy.ndarray, shape (T, Y, X), float32
        Agreement of each frame with its window, in [0, 1].

    References
    ----------
    SFSRM (paper 003 of this project), Supplementary Note 2, Section II: agreement of 5 adjacent
    frames of a live-cell sequence.

    Examples
    --------
    >>> import numpy as np
    >>> static = np.ones((4, 8, 8))
    >>> float(temporal_agreement(static).min())
    1.0
    """
    stack = as_image(stack, "stack", ndim=3)
    if stack.shape[0] < 2:
        raise InputError(f"temporal agreement needs at least 2 frames, got {stack.shape[0]}; "
                         "pass a time series (T, Y, X)")
    window = int(window)
    if window < 2:
        raise InputError(f"window must hold at least 2 frames, got {window}")
    normalized = _normalize_unit(stack)
    half = window // 2
    frames = stack.shape[0]
    agreement = np.empty(stack.shape, dtype=np.float32)
    for t in range(frames):
        start, stop = max(0, t - half), min(frames, t - half + window)
        # Clipped at the ends: a window near the start may not reach `window` frames; keep at least 2.
        if stop - start < 2:
            start, stop = (0, 2) if start == 0 else (frames - 2, frames)
        spread = np.std(normalized[start:stop], axis=0)
        agreement[t] = np.clip(1.0 - 2.0 * spread, 0.0, 1.0)
    return agreement
