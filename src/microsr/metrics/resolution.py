"""Image resolution from a single image (decorrelation analysis) or from two images (Fourier ring correlation).

Both metrics work in the 2-D Fourier domain of edge-apodized images. Decorrelation analysis
(Descloux et al. 2019) needs one image and reports the highest spatial frequency at which the image
still correlates with its own phase; Fourier ring correlation (FRC) needs two independent acquisitions of
the same specimen and reports where their correlation falls below a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from microsr.errors import InputError
from microsr.metrics.checks import as_image
from microsr.metrics.cosine import transform_threads

__all__ = [
    "DecorrelationResult",
    "FRCResult",
    "decorrelation_resolution",
    "fourier_ring_correlation",
]

# The smallest image either metric accepts: below this a ring or a radius holds too few pixels for a
# correlation coefficient to mean anything.
_MIN_SIZE_PX = 32

# Width of the cosine edge taper (Descloux et al. use 20 px); capped at a quarter of the image so that
# small images keep a flat centre.
_APODIZATION_EDGE_PX = 20

# FRC reads where the correlation drops, so spectral leakage of the window (a few rings wide) biases it
# towards higher frequencies; a wider taper, 1/8 of the image per side (a Tukey window with α = 1/4),
# halves that bias at high SNR while keeping most of the field.
_FRC_EDGE_FRACTION = 1.0 / 8.0

# Peak significance of the reference implementation: a local maximum must stand this far above the
# lowest later value of its curve, otherwise it is numerical noise (matters for post-processed data).
_PEAK_MIN_DROP = 1e-3

# A peak must also stand this many standard deviations of the curve's own sampling noise above the lowest
# later value. Descloux et al.'s fixed 1e-3 suffices for large images, but in a small image a disc of
# radius r holds few Fourier pixels and pure noise makes bumps far larger than 1e-3.
_PEAK_NOISE_SIGMAS = 3.0

# Relative standard deviation of the modulus of a complex Gaussian variable, sqrt(4/π − 1): the scatter
# of each |I| about its mean where the spectrum is noise.
_RAYLEIGH_SCATTER = float(np.sqrt(4.0 / np.pi - 1.0))

# Descloux et al. disregard peaks of amplitude below 0.05: such a weak correlation is what a curve made of
# noise alone reaches, so its position says nothing about the image content.
_PEAK_MIN_AMPLITUDE = 0.05

# The narrowest high-pass Gaussian of the reference sigma series, in pixels.
_SMALLEST_HIGHPASS_SIGMA_PX = 0.15

# Window of the refined radius sampling around the best peak, in normalized frequency
# (the reference implementation: 0.05 below, 0.3 above).
_REFINE_BELOW = 0.05
_REFINE_ABOVE = 0.3

# van Heel & Schatz (2005), eq. 17 with SNR = 0.4142 (sqrt(2) - 1): the half-bit information curve.
_HALF_BIT = (0.2071, 1.9102, 1.2071, 0.9102)

# The fixed 1/7 threshold (Rosenthal & Henderson 2003), as used for FRC by Nieuwenhuizen et al. 2013.
_ONE_SEVENTH = 1.0 / 7.0


@dataclass(frozen=True)
class DecorrelationResult:
    """Outcome of :func:`decorrelation_resolution`.

    Attributes
    ----------
    resolution_nm : float or None
        ``2 · pixel_size_nm / cutoff``. ``None`` when no curve has a significant peak (pure noise, a
        constant image): the resolution is then undefined, not infinite and not zero.
    cutoff : float or None
        Cut-off frequency ``k_c`` normalized to the Nyquist frequency (0..1); ``None`` with
        ``resolution_nm``.
    radii : numpy.ndarray
        Normalized frequencies (0..1, increasing) at which the curves are sampled.
    curves : numpy.ndarray
        Decorrelation functions ``d(r)``, shape ``(n_curves, len(radii))``. Row 0 is the unfiltered
        image; row ``i > 0`` is the image high-passed by a Gaussian of ``highpass_sigma_px[i]``.
    peaks : list of tuple of float
        ``(r_i, A_i)`` per row of ``curves``: position (normalized frequency) and amplitude of its local
        maximum; ``(nan, nan)`` where the curve has no significant peak.
    highpass_sigma_px : numpy.ndarray
        Standard deviation in pixels of the Gaussian subtracted for each row of ``curves``
        (``inf`` for row 0, meaning nothing is subtracted).
    """

    resolution_nm: float | None
    cutoff: float | None
    radii: np.ndarray
    curves: np.ndarray
    peaks: list[tuple[float, float]]
    highpass_sigma_px: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class FRCResult:
    """Outcome of :func:`fourier_ring_correlation`.

    Attributes
    ----------
    resolution_nm : float or None
        ``1 / f`` at the first crossing ``f`` of the correlation below the threshold; ``None`` when the
        curve never crosses (the images agree up to the Nyquist frequency, so the resolution is limited
        by the pixel size, not measured).
    frequencies_per_um : numpy.ndarray
        Spatial frequency of each ring in cycles per µm, from 0 to Nyquist.
    correlation : numpy.ndarray
        FRC value of each ring (−1..1).
    threshold_curve : numpy.ndarray
        Threshold of each ring (constant for "1/7", ring-size dependent for "half-bit").
    """

    resolution_nm: float | None
    frequencies_per_um: np.ndarray
    correlation: np.ndarray
    threshold_curve: np.ndarray


def decorrelation_resolution(image: np.ndarray, pixel_size_nm: float, *, n_radii: int = 50,
                             n_highpass: int = 10, refine: bool = True) -> DecorrelationResult:
    """Estimate the resolution of a single image by decorrelation analysis.

    The image is edge-apodized and Fourier transformed (``I``); its phase-only spectrum
    ``I_n = I / |I|`` is cross-correlated with ``I`` inside discs of normalized radius ``r``:

    ``d(r) = Σ Re(I · conj(I_n M_r)) / sqrt(Σ |I|² · Σ |I_n M_r|²)``,

    where ``M_r`` is the disc ``|k| < r · k_Nyquist`` without the zero frequency. While ``r`` is inside the
    band that carries signal, widening the disc adds correlated power and ``d`` grows; past the cut-off it
    only adds noise and ``d`` falls, so the position ``r_i`` of the local maximum of ``d`` marks the cut-off.
    The same curve is computed for the image high-passed by Gaussians of a geometric series of widths,
    which moves weight to high frequencies and reveals a cut-off that the strong low frequencies mask;
    ``k_c`` is the largest ``r_i`` over all curves whose peak amplitude is at least 0.05, and the
    resolution is ``2 · pixel_size_nm / k_c``.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image, at least 32 × 32 pixels, finite values.
    pixel_size_nm : float
        Pixel size in nm (> 0).
    n_radii : int, optional
        Number of radii sampling ``(0, 1]``, and again the refined window (at least 10). Default 50.
    n_highpass : int, optional
        Number of Gaussian high-pass filters per pass (at least 1). Default 10, as in the paper.
    refine : bool, optional
        Repeat the analysis with a second sigma series bracketing the best filter and with radii sampled
        ``n_radii`` times between 0.05 below and 0.3 above the best peak (the paper's refinement), and
        locate each peak between samples by a parabola through its three nearest samples, so that the
        result varies continuously with the image rather than in steps of the radius sampling.
        Default True.

    Returns
    -------
    DecorrelationResult
        Resolution in nm (``None`` if undefined), normalized cut-off, radii, curves and their peaks.

    Raises
    ------
    microsr.errors.InputError
        If the image is not 2-D, smaller than 32 px, holds NaN or inf, or the pixel size is not positive.

    Notes
    -----
    ``d(r)`` is computed for all radii at once from cumulative sums over the pixels sorted by radius, and
    the Gaussian high-pass ``1 − exp(−2π²σ²f²)`` is applied as a weight in Fourier space, so the whole
    analysis costs one FFT and one sort.

    References
    ----------
    .. [1] A. Descloux, K. S. Grußmayer and A. Radenovic, "Parameter-free image resolution estimation
       based on decorrelation analysis", Nature Methods 16, 918–924 (2019).
       https://doi.org/10.1038/s41592-019-0515-7

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> dots = (rng.random((128, 128)) > 0.98) * 2000.0
    >>> specimen = gaussian_filter(dots, 2.0)  # blur FWHM 2.355 · 2 px · 20 nm = 94 nm
    >>> result = decorrelation_resolution(rng.poisson(specimen + 5.0), pixel_size_nm=20.0)
    >>> 80.0 < result.resolution_nm < 160.0
    True
    """
    data = as_image(image, "image", min_size_px=_MIN_SIZE_PX)
    pixel_size_nm = _checked_pixel_size(pixel_size_nm)
    if int(n_radii) < 10:
        raise InputError(f"n_radii is {n_radii}; use at least 10 radii to sample the decorrelation curve")
    if int(n_highpass) < 1:
        raise InputError(f"n_highpass is {n_highpass}; use at least 1 high-pass filter")
    n_radii, n_highpass = int(n_radii), int(n_highpass)
    coarse_radii = np.linspace(0.0, 1.0, n_radii)

    centred = data - data.mean()
    if not np.any(centred):
        # A constant image has no spectrum to correlate: the resolution is undefined.
        return DecorrelationResult(None, None, coarse_radii, np.zeros((0, n_radii)), [], np.zeros(0))

    spectrum = _SortedSpectrum(_half_spectrum(_apodize(centred)), data.shape)
    if spectrum.total_weight == 0:
        return DecorrelationResult(None, None, coarse_radii, np.zeros((0, n_radii)), [], np.zeros(0))

    # First pass (coarse radii): the unfiltered curve sets the widest high-pass filter, 2 / r_0 pixels,
    # i.e. a Gaussian that only removes what lies below the first cut-off estimate.
    unfiltered_peak = _find_peak(coarse_radii, *spectrum.curve(None, coarse_radii), interpolate=False)
    widest_sigma_px = (2.0 / unfiltered_peak[0] if np.isfinite(unfiltered_peak[0]) and unfiltered_peak[0] > 0
                       else max(data.shape) / 2.0)
    sigmas_px = _sigma_series(widest_sigma_px, _SMALLEST_HIGHPASS_SIGMA_PX, n_highpass)
    radii = coarse_radii

    if refine:
        first_peaks = [_find_peak(coarse_radii, *spectrum.curve(s, coarse_radii), interpolate=False)
                       for s in sigmas_px]
        positions = np.array([p[0] if _significant(p) else 0.0 for p in first_peaks])
        amplitudes = np.array([p[1] if _significant(p) else 0.0 for p in first_peaks])
        if np.any(positions > 0):
            # The geometric mean sqrt(r_i A_i) balances resolution against contrast (Descloux et al.):
            # the second sigma series brackets the filters between the best-balanced and the
            # highest-resolution one; the radii zoom in around the best-balanced peak.
            best_balance = int(np.argmax(np.sqrt(positions * amplitudes)))
            best_cutoff = int(np.argmax(positions))
            low, high = sorted((best_balance, best_cutoff))
            high = min(high + 1, n_highpass - 1)
            refined_sigmas = _sigma_series(sigmas_px[low], sigmas_px[high], n_highpass)
            sigmas_px = np.unique(np.concatenate([sigmas_px, refined_sigmas]))[::-1]
            centre = positions[best_balance]
            fine_radii = np.linspace(max(centre - _REFINE_BELOW, 0.0), min(centre + _REFINE_ABOVE, 1.0), n_radii)
            radii = np.unique(np.concatenate([coarse_radii, fine_radii]))
        else:
            # No peak to zoom in on: sample (0, 1] uniformly as finely as the refined window would be.
            radii = np.linspace(0.0, 1.0, int(np.ceil(n_radii / (_REFINE_BELOW + _REFINE_ABOVE))))

    all_sigmas_px = np.concatenate([[np.inf], sigmas_px])
    curves_and_noise = [spectrum.curve(None if np.isinf(s) else s, radii) for s in all_sigmas_px]
    curves = np.stack([curve for curve, _ in curves_and_noise])
    peaks = [_find_peak(radii, curve, noise, interpolate=refine) for curve, noise in curves_and_noise]
    valid = [p[0] for p in peaks if _significant(p)]
    if not valid:
        return DecorrelationResult(None, None, radii, curves, peaks, all_sigmas_px)
    cutoff = float(max(valid))
    return DecorrelationResult(2.0 * pixel_size_nm / cutoff, cutoff, radii, curves, peaks, all_sigmas_px)


def fourier_ring_correlation(image1: np.ndarray, image2: np.ndarray, pixel_size_nm: float, *,
                             threshold: str = "1/7", ring_width_px: float = 1.0) -> FRCResult:
    """Estimate resolution from two independent images of the same specimen by Fourier ring correlation.

    Both images are edge-apodized and Fourier transformed (``F1``, ``F2``); for each ring of spatial
    frequencies ``R``,

    ``FRC(R) = Σ_R Re(F1 · conj(F2)) / sqrt(Σ_R |F1|² · Σ_R |F2|²)``.

    Where both images carry the specimen's signal the rings correlate; where only their independent noise
    remains the correlation drops to zero. The resolution is ``1 / f`` at the first frequency ``f`` where
    the curve falls below the threshold, interpolated linearly between rings.

    Parameters
    ----------
    image1, image2 : numpy.ndarray
        2-D images of the same shape (at least 32 × 32 px, finite values) with independent noise,
        e.g. two halves of an acquisition.
    pixel_size_nm : float
        Pixel size in nm (> 0).
    threshold : {"1/7", "half-bit"}, optional
        "1/7": the fixed threshold 0.143. "half-bit": van Heel & Schatz's information curve
        ``(0.2071 + 1.9102/√n) / (1.2071 + 0.9102/√n)`` with ``n`` the number of pixels of the ring.
        Default "1/7".
    ring_width_px : float, optional
        Ring width in Fourier pixels of the smaller image dimension (> 0). Default 1.

    Returns
    -------
    FRCResult
        Resolution in nm (``None`` if the curve never crosses), ring frequencies in cycles/µm, the curve
        and the threshold.

    Raises
    ------
    microsr.errors.InputError
        If an image is not 2-D, the shapes differ, an image is smaller than 32 px or holds NaN or inf, the
        pixel size or ring width is not positive, or the threshold is unknown.

    References
    ----------
    .. [1] R. P. J. Nieuwenhuizen et al., "Measuring image resolution in optical nanoscopy",
       Nature Methods 10, 557–562 (2013). https://doi.org/10.1038/nmeth.2448
    .. [2] M. van Heel and M. Schatz, "Fourier shell correlation threshold criteria",
       Journal of Structural Biology 151, 250–262 (2005). https://doi.org/10.1016/j.jsb.2005.05.009

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> specimen = gaussian_filter(rng.random((128, 128)), 3.0) * 1000.0
    >>> frc = fourier_ring_correlation(rng.poisson(specimen), rng.poisson(specimen), pixel_size_nm=20.0)
    >>> frc.resolution_nm is not None
    True
    """
    first = as_image(image1, "image1", min_size_px=_MIN_SIZE_PX)
    second = as_image(image2, "image2", min_size_px=_MIN_SIZE_PX)
    if first.shape != second.shape:
        raise InputError(f"image1 is {first.shape[0]}×{first.shape[1]} px but image2 is "
                         f"{second.shape[0]}×{second.shape[1]} px; pass two images of the same field and size")
    pixel_size_nm = _checked_pixel_size(pixel_size_nm)
    if threshold not in ("1/7", "half-bit"):
        raise InputError(f"unknown FRC threshold {threshold!r}; use '1/7' or 'half-bit'")
    if not np.isfinite(ring_width_px) or ring_width_px <= 0:
        raise InputError(f"ring_width_px is {ring_width_px}; use a positive ring width (1 is usual)")

    edge_px = max(_APODIZATION_EDGE_PX, int(min(first.shape) * _FRC_EDGE_FRACTION))
    # Half planes: the other half holds the complex conjugates, which correlate alike and lie on the same
    # rings, so each column but the first (and the Nyquist one of an even width) counts twice.
    f1 = _half_spectrum(_apodize(first - first.mean(), edge_px))
    f2 = _half_spectrum(_apodize(second - second.mean(), edge_px))
    frequency = np.hypot(np.fft.fftfreq(first.shape[0])[:, None], np.fft.rfftfreq(first.shape[1])[None, :])
    ring_step = ring_width_px / min(first.shape)  # cycles per pixel
    n_rings = int(np.floor(0.5 / ring_step)) + 1
    ring = np.rint(frequency / ring_step).astype(np.int64).ravel()
    # The corners beyond Nyquist of the smaller dimension are not full rings; leave them out.
    inside = ring < n_rings
    ring = ring[inside]
    weight = _conjugate_weight(f1.shape, first.shape[1]).ravel()[inside]

    def ring_sum(values):
        return np.bincount(ring, weight * values.ravel()[inside], n_rings)

    cross = ring_sum(f1.real * f2.real + f1.imag * f2.imag)
    power1 = ring_sum(f1.real**2 + f1.imag**2)
    power2 = ring_sum(f2.real**2 + f2.imag**2)
    n_pixels = np.bincount(ring, weight, n_rings)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = cross / np.sqrt(power1 * power2)
    correlation = np.where(np.isfinite(correlation), correlation, 0.0)

    if threshold == "1/7":
        threshold_curve = np.full(n_rings, _ONE_SEVENTH)
    else:
        a, b, c, e = _HALF_BIT
        root_n = np.sqrt(np.maximum(n_pixels, 1.0))
        threshold_curve = (a + b / root_n) / (c + e / root_n)

    frequencies_per_um = np.arange(n_rings) * ring_step / pixel_size_nm * 1000.0
    crossing = _first_crossing(frequencies_per_um, correlation - threshold_curve)
    resolution_nm = None if crossing is None else 1000.0 / crossing
    return FRCResult(resolution_nm, frequencies_per_um, correlation, threshold_curve)


class _SortedSpectrum:
    """Amplitudes of a half-plane (rfft2) spectrum inside the Nyquist disc, summed per radius, by radius.

    ``d(r)`` only needs, per radius, cumulative sums of (weighted) amplitudes and of pixel counts:
    ``Re(I conj(I/|I|)) = |I|`` and ``|I/|I||² = 1``. Sorting once turns every radius into a
    ``searchsorted`` and every curve into one cumulative sum. Pixels at one radius always fall on the
    same side of a sampled ``r`` and share the high-pass weight, so they are summed first: a square grid
    has ~8× fewer distinct radii than pixels, and each curve costs that much less.
    """

    def __init__(self, half_spectrum: np.ndarray, shape: tuple[int, int]) -> None:
        fy = np.fft.fftfreq(shape[0])[:, None]
        fx = np.fft.rfftfreq(shape[1])[None, :]
        radius = 2.0 * np.hypot(fy, fx)  # 1 at the Nyquist frequency
        amplitude = np.abs(half_spectrum)
        # The zero frequency is excluded ("remove the mean"), and so is the ring at and beyond Nyquist,
        # which is not sampled in every direction.
        keep = (radius > 0) & (radius < 1.0) & (amplitude > 0)
        weight = _conjugate_weight(half_spectrum.shape, shape[1])[keep]
        radius, amplitude = radius[keep], amplitude[keep]
        group, count = _radius_groups(keep, shape, radius)
        del keep

        def summed(values):
            return np.bincount(group, values, count)

        present = summed(weight) > 0
        # one radius per group: any member's (they differ at most by rounding)
        representative = np.zeros(count)
        representative[group] = radius
        self.radius = representative[present]
        del radius, representative
        self.frequency_px = self.radius / 2.0  # cycles per pixel
        self.weight = summed(weight)[present]
        self.weight_squared = summed(weight**2)[present]
        weighted = weight * amplitude
        del weight
        self.weighted_amplitude = summed(weighted)[present]
        weighted *= amplitude
        self.weighted_power = summed(weighted)[present]
        self.cumulative_count = np.concatenate([[0.0], np.cumsum(self.weight)])
        self.total_weight = float(self.cumulative_count[-1])

    def curve(self, sigma_px: float | None, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``d(r)`` at ``radii`` for the image minus its Gaussian blur of ``sigma_px`` (None: no filter).

        Also returns the standard deviation of ``d(r)`` expected if the spectrum inside ``r`` were noise
        (each ``|I|`` Rayleigh-distributed about its mean): ``0.52 · d · sqrt(Σ w²h²) / Σ wh``.
        """
        if sigma_px is None:
            highpass = np.ones_like(self.frequency_px)
        else:
            highpass = -np.expm1(-2.0 * np.pi**2 * sigma_px**2 * self.frequency_px**2)
        numerator = np.concatenate([[0.0], np.cumsum(self.weighted_amplitude * highpass)])
        spread = np.concatenate([[0.0], np.cumsum(self.weight_squared * highpass**2)])
        weight_sum = np.concatenate([[0.0], np.cumsum(self.weight * highpass)])
        norm = np.sqrt(np.sum(self.weighted_power * highpass**2))
        counts_below = np.searchsorted(self.radius, radii, side="left")
        with np.errstate(invalid="ignore", divide="ignore"):
            d = numerator[counts_below] / (norm * np.sqrt(self.cumulative_count[counts_below]))
            noise = _RAYLEIGH_SCATTER * d * np.sqrt(spread[counts_below]) / weight_sum[counts_below]
        return np.where(np.isfinite(d), d, 0.0), np.where(np.isfinite(noise), noise, 0.0)


def _half_spectrum(image: np.ndarray) -> np.ndarray:
    """rfft2 of ``image`` on the threads the metrics may use."""
    import scipy.fft  # imported on first use: scipy's array-API layer costs start-up time

    return scipy.fft.rfft2(image, workers=transform_threads())


def _conjugate_weight(half_shape: tuple[int, int], width: int) -> np.ndarray:
    """How many pixels of the full plane each pixel of an rfft2 half plane stands for (itself and its
    complex conjugate: 2, except the first column and, for even widths, the Nyquist column)."""
    weight = np.full(half_shape, 2.0)
    weight[:, 0] = 1.0
    if width % 2 == 0:
        weight[:, -1] = 1.0
    return weight


def _radius_groups(keep: np.ndarray, shape: tuple[int, int], radius: np.ndarray) -> tuple[np.ndarray, int]:
    """Group index (ascending with radius) of each kept half-plane pixel, and the number of groups.

    Pixels share a radius when ``ky² Nx² + kx² Ny²`` (integer frequencies) is equal: counting those
    integers needs no sort when they are few (square images: ``ky² + kx²``); otherwise the radii are sorted.
    """
    ky = np.rint(np.fft.fftfreq(shape[0]) * shape[0]).astype(np.int64)
    kx = np.rint(np.fft.rfftfreq(shape[1]) * shape[1]).astype(np.int64)
    common = np.gcd(shape[0] ** 2, shape[1] ** 2)
    scale_y, scale_x = shape[1] ** 2 // common, shape[0] ** 2 // common
    largest = int(np.abs(ky).max()) ** 2 * scale_y + int(kx.max()) ** 2 * scale_x
    if largest <= 4 * keep.size:
        key = (ky[:, None] ** 2 * scale_y + kx[None, :] ** 2 * scale_x)[keep]
        return key, largest + 1
    order = np.argsort(radius, kind="stable")
    new_radius = np.ones(radius.size, dtype=np.int64)
    new_radius[1:] = np.diff(radius[order]) != 0
    group = np.empty(radius.size, dtype=np.int64)
    group[order] = np.cumsum(new_radius) - 1
    return group, int(new_radius.sum())


def _find_peak(radii: np.ndarray, curve: np.ndarray, noise: np.ndarray, *,
               interpolate: bool) -> tuple[float, float]:
    """Highest local maximum ``(r, A)`` of a decorrelation curve; ``(nan, nan)`` if it has none.

    A sample counts as a maximum when it stands above the lowest later sample by more than
    ``_PEAK_MIN_DROP`` and more than ``_PEAK_NOISE_SIGMAS`` times its sampling noise, i.e. the curve truly
    falls after it (a curve still rising at ``r = 1`` has no cut-off inside the band). Among those, the
    highest wins, as in the reference implementation.
    """
    if len(curve) < 3:
        return (float("nan"), float("nan"))
    later_minimum = np.minimum.accumulate(curve[::-1])[::-1]
    margin = np.maximum(_PEAK_MIN_DROP, _PEAK_NOISE_SIGMAS * noise)
    candidate = (curve - later_minimum > margin) & (radii > 0)
    candidate[-1] = False
    if not np.any(candidate):
        return (float("nan"), float("nan"))
    index = int(np.flatnonzero(candidate)[np.argmax(curve[candidate])])
    position, amplitude = float(radii[index]), float(curve[index])
    if interpolate and 0 < index < len(curve) - 1:
        position, amplitude = _parabola_vertex(radii[index - 1:index + 2], curve[index - 1:index + 2],
                                               position, amplitude)
    return (position, amplitude)


def _parabola_vertex(x: np.ndarray, y: np.ndarray, x_peak: float, y_peak: float) -> tuple[float, float]:
    """Vertex of the parabola through three samples around a maximum, kept between the outer two."""
    x0, x1, x2 = (float(v) for v in x)
    y0, y1, y2 = (float(v) for v in y)
    denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
    if denominator == 0:
        return x_peak, y_peak
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denominator
    if a >= 0:
        return x_peak, y_peak
    vertex = float(np.clip(-b / (2.0 * a), x0, x2))
    c = y1 - a * x1**2 - b * x1
    return vertex, float(max(a * vertex**2 + b * vertex + c, y_peak))


def _significant(peak: tuple[float, float]) -> bool:
    return bool(np.isfinite(peak[0]) and peak[0] > 0 and peak[1] >= _PEAK_MIN_AMPLITUDE)


def _sigma_series(widest_px: float, narrowest_px: float, count: int) -> np.ndarray:
    """Geometric series of high-pass Gaussian widths from widest to narrowest, as in Descloux et al."""
    return np.exp(np.linspace(np.log(widest_px), np.log(narrowest_px), count))


def _first_crossing(x: np.ndarray, excess: np.ndarray) -> float | None:
    """First ``x`` (after the zero frequency) where ``excess`` goes from ≥ 0 to < 0, linearly interpolated."""
    below = np.flatnonzero(excess[1:] < 0) + 1
    if len(below) == 0:
        return None
    i = int(below[0])
    if i == 1 and excess[0] < 0:
        return float(x[1])
    drop = excess[i - 1] - excess[i]
    fraction = excess[i - 1] / drop if drop > 0 else 0.0
    crossing = float(x[i - 1] + fraction * (x[i] - x[i - 1]))
    return crossing if crossing > 0 else None


def _apodize(centred: np.ndarray, edge_px: int = _APODIZATION_EDGE_PX) -> np.ndarray:
    """Taper a mean-subtracted image to zero at its edges with a raised-cosine border, in place.

    Without it the jump between opposite edges of the periodic FFT adds a cross of spurious high
    frequencies that both metrics would read as resolution.
    """
    for axis in (0, 1):
        length = centred.shape[axis]
        width = max(1, min(edge_px, length // 4))
        ramp = np.sin(0.5 * np.pi * (np.arange(width) + 0.5) / width) ** 2
        shape = (-1, 1) if axis == 0 else (1, -1)
        # only the borders change: the profile is 1 inside
        centred[(slice(None),) * axis + (slice(0, width),)] *= ramp.reshape(shape)
        centred[(slice(None),) * axis + (slice(length - width, length),)] *= ramp[::-1].reshape(shape)
    return centred


def _checked_pixel_size(pixel_size_nm: float) -> float:
    try:
        value = float(pixel_size_nm)
    except (TypeError, ValueError):
        raise InputError(f"pixel_size_nm is {pixel_size_nm!r}; pass the pixel size in nm as a number") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"pixel_size_nm is {pixel_size_nm}; pass the positive pixel size in nm")
    return value
