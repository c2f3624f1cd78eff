"""How far a super-resolution image can be trusted: HAWKMAN, SQUIRREL, ensemble and temporal agreement.

These are the quality checks of SFSRM (Chen et al., Nat. Commun. 2023, Methods eq. 18 and Supplementary
Note 2): HAWKMAN compares an SR image with a reference of higher fidelity; SQUIRREL compares it with the
widefield image it came from; ensemble disagreement and temporal agreement need no reference at all.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize
from skimage.morphology import skeletonize

from microsr.errors import InputError
from microsr.metrics.checks import as_image

__all__ = [
    "HawkmanResult",
    "SquirrelResult",
    "hawkman",
    "squirrel",
    "ensemble_disagreement",
    "temporal_agreement",
]

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


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


def _pearson(a, b):
    """Pearson correlation; 0 where one image is flat (nothing correlates with a flat image)."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denominator == 0:
        return 0.0
    return float(np.dot(a, b) / denominator)


def _local_pearson(a, b, window_sigma_px):
    """Gaussian-windowed Pearson correlation at every pixel.

    Where neither image varies inside the window both show the same (empty) scene, which counts as
    agreement (1); where only one varies, the structure is missing from the other (0).
    """
    mean_a = ndimage.gaussian_filter(a, window_sigma_px)
    mean_b = ndimage.gaussian_filter(b, window_sigma_px)
    var_a = np.maximum(ndimage.gaussian_filter(a * a, window_sigma_px) - mean_a**2, 0.0)
    var_b = np.maximum(ndimage.gaussian_filter(b * b, window_sigma_px) - mean_b**2, 0.0)
    cov = ndimage.gaussian_filter(a * b, window_sigma_px) - mean_a * mean_b
    # Gaussian tails make exact zeros rare; variance below 1e-6 of the peak is numerical dust.
    floor = 1e-6 * max(var_a.max(), var_b.max(), np.finfo(float).tiny)
    has_a, has_b = var_a > floor, var_b > floor
    pcc = np.zeros_like(a)
    both = has_a & has_b
    pcc[both] = cov[both] / np.sqrt(var_a[both] * var_b[both])
    pcc[~has_a & ~has_b] = 1.0
    return np.clip(pcc, -1.0, 1.0)


def _eq18(pcc_sharp, pcc_structure, threshold):
    """SFSRM eq. 18; negative correlations count as no agreement, so the score stays in [0, 1]."""
    return (0.5 * np.clip(pcc_sharp / threshold, 0.0, 1.0)
            + 0.5 * np.clip(pcc_structure / threshold, 0.0, 1.0))


def _normalize_unit(image):
    """Scale to [0, 1] by the 0.1–99.9 percentile range so that single hot pixels do not set the scale."""
    low, high = np.percentile(image, [0.1, 99.9])
    if high <= low:
        low, high = image.min(), image.max()
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def _hawkman_features(image, scale_px):
    """Sharpening and structure images of one normalized image at one scale (Marsh et al. 2018)."""
    sigma = scale_px / _FWHM_PER_SIGMA
    blurred = ndimage.gaussian_filter(image, sigma)
    peak = blurred.max()
    if peak > 0:
        blurred = blurred / peak
    # Local threshold: a neighbourhood three times the feature scale sets the local level; a margin of
    # 10 % of the peak keeps noisy background (blurred ~ its local mean) out of the feature mask.
    local_level = ndimage.gaussian_filter(blurred, 3.0 * sigma + 1.0)
    sharpening = (blurred > local_level + 0.1).astype(np.float64)
    # Structure: blur and flatten (saturate) the mask, keep only its confident core at a higher
    # threshold, then thin it to its skeleton so that width differences no longer count.
    flattened = np.minimum(ndimage.gaussian_filter(sharpening, sigma) / 0.5, 1.0)
    core = flattened > 0.75
    skeleton = skeletonize(core).astype(np.float64)
    structure = ndimage.gaussian_filter(skeleton, sigma)
    return sharpening, structure


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

    test, reference = _normalize_unit(test), _normalize_unit(reference)
    best = None
    for scale_px in range(min_scale_px, max_scale_px + 1):
        sharp_test, structure_test = _hawkman_features(test, scale_px)
        sharp_reference, structure_reference = _hawkman_features(reference, scale_px)
        if not sharp_reference.any():
            continue  # the reference has no feature at this scale: nothing to judge against
        pcc_sharp = _pearson(sharp_test, sharp_reference)
        pcc_structure = _pearson(structure_test, structure_reference)
        score = float(_eq18(pcc_sharp, pcc_structure, threshold))
        if best is None or score < best[0]:
            best = (score, scale_px, pcc_sharp, pcc_structure,
                    sharp_test, sharp_reference, structure_test, structure_reference)
    if best is None:
        raise InputError("the reference image shows no structure at any scale up to "
                         f"{max_scale_px} px; pass a reference with features or a larger max_scale_px")

    score, scale_px, pcc_sharp, pcc_structure, *features = best
    sharp_test, sharp_reference, structure_test, structure_reference = features
    window_sigma_px = max(2.0, float(scale_px))
    confidence_map = _eq18(_local_pearson(sharp_test, sharp_reference, window_sigma_px),
                           _local_pearson(structure_test, structure_reference, window_sigma_px),
                           threshold)
    return HawkmanResult(score=score, confidence_map=confidence_map.astype(np.float32),
                         pcc_sharpening=pcc_sharp, pcc_structure=pcc_structure, scale_px=scale_px)


def _bin(image, factor):
    """Mean over ``factor`` x ``factor`` blocks: what a camera pixel that size integrates."""
    if factor == 1:
        return image
    y, x = image.shape
    return image.reshape(y // factor, factor, x // factor, factor).mean(axis=(1, 3))


def _fit_gain_offset(scaled, widefield):
    """Least-squares alpha, beta of ``alpha * scaled + beta ≈ widefield`` and the residual sum."""
    design = np.stack([scaled.ravel(), np.ones(scaled.size)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, widefield.ravel(), rcond=None)
    residual = alpha * scaled + beta - widefield
    return float(alpha), float(beta), float(np.sum(residual**2))


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

    def residual(sigma_px):
        scaled = _bin(ndimage.gaussian_filter(sr, sigma_px, mode="reflect"), factor)
        return _fit_gain_offset(scaled, widefield)[2]

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

    scaled = _bin(ndimage.gaussian_filter(sr, sigma_px, mode="reflect"), factor)
    alpha, beta, _ = _fit_gain_offset(scaled, widefield)
    resolution_scaled = alpha * scaled + beta
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
