"""Pattern parameters from raw SIM frames: wave vector, phase of each frame and modulation depth.

Method (Gustafsson 2000; Wicker 2013; fairSIM, Müller et al. 2016), adapted for first orders near the
OTF edge at low SNR, where real TIRF-SIM sits:

1. Per orientation, the +1 band is separated assuming equal phase steps and cross-correlated with the
   widefield band of *all* frames, both OTF-weighted (a matched filter: the overlap where both bands
   carry signal is a thin crescent, and an overlap-normalized correlation would be ruled by its rim).
2. Coarse wave vectors come from a joint search over base angle and spacing that sums the evidence
   of all orientations (they are ``π/A`` apart and share one spacing), tolerant to a degree or two of
   deviation, optionally inside a calibration prior's window.
3. Each wave vector is refined to ~0.001 spectral pixel by zooming the discrete-time Fourier transform
   of the band product (a matrix product, no interpolation).
4. Phase and modulation come from the complex linear regression of the separated +1 band onto the
   widefield spectrum shifted by the wave vector (Gustafsson's regression), with the noise power of
   the reference removed so low SNR does not bias the modulation down. By default the phase steps
   are taken as equal (2π/P) and one offset is fitted; per-frame phases are an option (see
   ``PHASE_STEP_MODELS``) and are always reported as deviations from equal steps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from microsr.errors import EstimationError, InputError
from microsr.optics import OTF, edge_taper, frequency_grid
from microsr.sim.parameters import Orientation, SIMParameters
from microsr.sim.reconstruct import equalize_frame_means

#: Where 2-D SIM puts the pattern, as a fraction of the detection OTF's cut-off: TIRF/GI-SIM at 0.8–1.0 (a
#: measured OTF's cut-off, read at a noise threshold, may lie a little inside the true support). An estimate
#: outside says that the pixel size or the optics given are wrong (a pixel 1.6× too large puts a pattern
#: at 0.92 of the cut-off at 0.58), and is flagged.
PATTERN_FRACTION_RANGE = (0.6, 1.15)

#: Modulation used for an orientation whose value is impossible when no other orientation and no prior
#: gives one: the middle of what TIRF-SIM instruments show (0.3–0.9), stated in the warnings.
FALLBACK_MODULATION = 0.5

#: Peak-over-background ratio of the correlation map below which an estimate is not trusted.
#: Noise alone gives a maximum of about 20 over the ~10⁵ samples of a search.
MIN_PEAK_CONTRAST = 30.0

#: Phase-step models. "equal": one phase offset per orientation with steps of 2π/P, fitted on the
#: separated +1 band, where the −1 band cancels exactly: unbiased and robust at low light. "free": a
#: phase per frame, for phase shifters known to be off; a single frame's phase is biased by the
#: specimen's own spectrum at 2k (measured: 0.05–0.3 rad on simulated filaments at 92 % of the
#: cut-off, whatever the light), so it only pays where steps are off by more than that.
PHASE_STEP_MODELS = ("equal", "free")

#: Deviation from equal steps (of the per-frame estimate) above which the quality check warns.
PHASE_STEP_WARNING_RAD = 0.5


class EstimationWarning(UserWarning):
    """An estimate the data do not fully support (see its ``quality["warnings"]``): worth a look before use."""


@dataclass(frozen=True)
class PatternPrior:
    """Approximate pattern geometry from a calibration (bead slide, earlier data), refined in a window.

    ``angles_rad`` holds either one angle per orientation or a single base angle (the others are
    then ``π/A`` apart); either may be ``None``. Windows are half-widths. ``modulation``, if given, is
    used for an orientation whose modulation cannot be measured (:func:`bound_modulations`).
    """

    angles_rad: tuple[float, ...] | None = None
    spacing_nm: float | None = None
    angle_window_rad: float = math.radians(3.0)
    spacing_window_fraction: float = 0.05
    modulation: float | None = None

    def __post_init__(self):
        if self.modulation is not None and not 0 < self.modulation <= 1:
            raise InputError(f"prior modulation {self.modulation} is impossible: a modulation depth lies in (0, 1]")


def estimate_background(raw: np.ndarray) -> float:
    """Camera offset plus unmodulated background: a low percentile of the smoothed widefield image."""
    widefield = np.asarray(raw, dtype=np.float32).reshape(-1, *raw.shape[-2:]).mean(axis=0)
    return float(np.percentile(ndimage.gaussian_filter(widefield, 2.0), 0.5))


def stuck_pixels(raw: np.ndarray) -> np.ndarray:
    """Pixels stuck at one value in every frame and far from their neighbours: dead (0) or hot (saturated).

    A live pixel's value changes from frame to frame (shot and read noise); a stuck one does not, and a
    stuck value that also stands out from its 3 × 3 neighbourhood by more than 8 robust standard
    deviations is a camera defect, not specimen. Left in, it is a delta in every frame: a flat spectrum
    that drowns the weak first-order peak near the OTF edge.

    Parameters
    ----------
    raw : ndarray, shape (..., Y, X)
        All frames of a set (or of several time points).

    Returns
    -------
    ndarray of bool, shape (Y, X)
    """
    frames = np.asarray(raw, dtype=np.float32).reshape(-1, *np.shape(raw)[-2:])
    constant = np.ptp(frames, axis=0) == 0
    if frames.shape[0] < 2 or not constant.any():
        return np.zeros(frames.shape[-2:], dtype=bool)
    mean = frames.mean(axis=0)
    residual = mean - ndimage.median_filter(mean, size=3, mode="reflect")
    sigma = 1.4826 * float(np.median(np.abs(residual))) + 1e-6
    return constant & (np.abs(residual) > 8 * sigma)


def repair_pixels(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``raw`` (..., Y, X) with the pixels of ``mask`` replaced, in every frame, by their 3 × 3 local median
    (float64); ``raw`` itself, not a copy, when there is nothing to repair (the usual case, on every frame set)."""
    if not mask.any():
        return np.asarray(raw)
    frames = np.asarray(raw, dtype=np.float64)
    flat = frames.reshape(-1, *frames.shape[-2:]).copy()
    for frame in flat:
        frame[mask] = ndimage.median_filter(frame, size=3, mode="reflect")[mask]
    return flat.reshape(frames.shape)


def prepare_frames(raw: np.ndarray, background: float | str = "auto") -> tuple[np.ndarray, float]:
    """Background-subtracted frames ``(A, P, Y, X)`` float64, each frame scaled to its orientation's mean
    (:func:`~microsr.sim.reconstruct.equalize_frame_means`) and each orientation to the common mean.

    Real microscopes deliver the orientations with different brightness (~30 % on a TIRF-SIM);
    the rDL reference code equalizes them the same way. Within an orientation the laser fluctuates
    and bleaches from phase to phase; left in, that leaks the widefield band into the +1 band the
    modulation is measured on.
    """
    frames = np.asarray(raw, dtype=np.float64)
    if frames.ndim == 5:
        frames = frames.mean(axis=0)
    bg = estimate_background(frames) if background == "auto" else float(background)
    frames = equalize_frame_means(frames - bg)
    orientation_mean = frames.mean(axis=(1, 2, 3), keepdims=True)
    if np.any(orientation_mean <= 0):
        raise InputError(f"after subtracting the background ({bg:.1f}) an orientation has no signal "
                         "left: pass a smaller --background (the camera offset)")
    frames *= orientation_mean.mean() / orientation_mean
    return frames, bg


def zoom_dtft(image: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
    """Fourier transform of ``image`` at the grid ``ky × kx`` (cycles/pixel), phase referred to the centre.

    Two matrix products give any sub-pixel grid exactly, which is what peak refinement needs.
    """
    ny, nx = image.shape
    y = np.arange(ny) - ny // 2
    x = np.arange(nx) - nx // 2
    row_kernel = np.exp(-2j * np.pi * np.outer(ky, y))
    col_kernel = np.exp(-2j * np.pi * np.outer(x, kx))
    return row_kernel @ image @ col_kernel


def _refine_wave_vector(band_plus: np.ndarray, widefield_spectrum: np.ndarray, k_start: np.ndarray,
                        otf: OTF, pixel_size_nm: float) -> tuple[np.ndarray, float]:
    """Refine ``k`` (cycles/pixel, ``(ky, kx)``) to the maximum of the band cross-correlation.

    The +1 band is weighted by the OTF at the 0 band's place and the 0 band by the OTF at the +1
    band's place, both at the current ``k``: the two then share one transfer function, and the
    correlation peak is not pulled towards the steep side of the OTF. Two passes update the weights.
    Returns ``k`` and the correlation magnitude there.
    """
    shape = widefield_spectrum.shape
    k = np.array(k_start, dtype=float)
    inside = otf.on_grid(shape, pixel_size_nm) > 0
    k_per_um = lambda kv: tuple(kv / (pixel_size_nm / 1000.0))  # noqa: E731
    for half_widths in ((1.0, 0.1, 0.01), (0.05, 0.005, 0.0005)):
        weight_plus = otf.on_grid(shape, pixel_size_nm, shift_per_um=k_per_um(k)) * inside
        weight_zero = otf.on_grid(shape, pixel_size_nm, shift_per_um=k_per_um(-k)) * inside
        product = np.fft.ifft2(band_plus * weight_plus) * np.conj(np.fft.ifft2(widefield_spectrum * weight_zero))
        for half_width in half_widths:
            offsets = np.linspace(-half_width, half_width, 21)
            ky = k[0] + offsets / shape[0]
            kx = k[1] + offsets / shape[1]
            power = np.abs(zoom_dtft(product, ky, kx))
            iy, ix = np.unravel_index(np.argmax(power), power.shape)
            k = np.array([ky[iy], kx[ix]])
    return k, float(power[iy, ix])


def _centred_power_map(product: np.ndarray) -> np.ndarray:
    """``|FFT|²`` of the band product on a 2× zero-padded grid, centred, symmetrized over ±k."""
    ny, nx = product.shape
    spectrum = np.fft.fftshift(np.fft.fft2(product, s=(2 * ny, 2 * nx)))
    power = np.abs(spectrum) ** 2
    # The pattern's sign is unknown (phase steps may run either way): sum the power at k and −k.
    mirrored = np.roll(power[::-1, ::-1], shift=(1, 1), axis=(0, 1))
    return power + mirrored


def _radially_normalized(power: np.ndarray) -> np.ndarray:
    """Divide by the median power at each radius: the low-frequency background must not win."""
    ny, nx = power.shape
    yy = (np.arange(ny) - ny // 2)[:, None] / ny
    xx = (np.arange(nx) - nx // 2)[None, :] / nx
    radius_bin = np.round(np.hypot(yy, xx) * min(ny, nx)).astype(int)
    medians = ndimage.median(power, labels=radius_bin, index=np.arange(radius_bin.max() + 1))
    medians = np.maximum(np.asarray(medians), np.finfo(float).tiny)
    return power / medians[radius_bin]


def _polar_samples(maps: np.ndarray, thetas: np.ndarray, k_values: np.ndarray) -> np.ndarray:
    """Sample centred maps ``(A, 2Y, 2X)`` at polar points; k in cycles/pixel. Returns ``(A, θ, k)``."""
    _, my, mx = maps.shape
    rows = my // 2 + np.sin(thetas)[:, None] * k_values[None, :] * my
    cols = mx // 2 + np.cos(thetas)[:, None] * k_values[None, :] * mx
    return np.stack([ndimage.map_coordinates(m, [rows, cols], order=1, mode="nearest") for m in maps])


def _coarse_wave_vectors(maps: np.ndarray, k_range: tuple[float, float], prior: PatternPrior | None,
                         angles: int) -> tuple[list[tuple[float, float]], list[float]]:
    """Joint search over base angle and spacing; returns per-orientation ``(θ, |k|)`` and peak contrast."""
    _, my, mx = maps.shape
    k_step = 0.5 / max(my, mx)
    k_values = np.arange(k_range[0], k_range[1] + k_step, k_step)
    steps_per_orientation = max(8, int(math.ceil(math.pi / angles * k_range[1] * max(my, mx) * 2)))
    n_theta = angles * steps_per_orientation
    thetas = np.arange(n_theta) * math.pi / n_theta
    polar = _polar_samples(maps, thetas, k_values)
    theta_step = math.pi / n_theta
    tolerance = prior.angle_window_rad if prior and prior.angles_rad else math.radians(1.5)
    spread = max(1, int(round(tolerance / theta_step)))
    # Real orientations deviate from π/A by up to a degree or two: let each one float in the joint sum.
    tolerant = ndimage.maximum_filter1d(polar, size=2 * spread + 1, axis=1, mode="wrap")

    if prior and prior.angles_rad:
        given = list(prior.angles_rad)
        if len(given) == 1:
            given = [given[0] + a * math.pi / angles for a in range(angles)]
        if len(given) != angles:
            raise InputError(f"the prior gives {len(given)} angles for {angles} orientations: give one "
                             "angle per orientation or a single base angle")
        centres = [int(round((g % math.pi) / theta_step)) % n_theta for g in given]
        score = sum(tolerant[a, c] for a, c in enumerate(centres))
        k_index = int(np.argmax(score))
    else:
        best = (-np.inf, 0, 0, 1)
        for direction in (1, -1):
            score = sum(np.roll(tolerant[a], -direction * a * steps_per_orientation, axis=0)
                        for a in range(angles))
            i_theta, k_index = np.unravel_index(np.argmax(score), score.shape)
            if score[i_theta, k_index] > best[0]:
                best = (score[i_theta, k_index], i_theta, k_index, direction)
        _, base, k_index, direction = best
        centres = [(base + direction * a * steps_per_orientation) % n_theta for a in range(angles)]

    results, contrasts = [], []
    k_spread = max(2, int(round(0.03 * k_values[k_index] / k_step)))
    for a, centre in enumerate(centres):
        theta_idx = (centre + np.arange(-spread, spread + 1)) % n_theta
        k_idx = np.arange(max(0, k_index - k_spread), min(len(k_values), k_index + k_spread + 1))
        window = polar[a][np.ix_(theta_idx, k_idx)]
        it, ik = np.unravel_index(np.argmax(window), window.shape)
        results.append((float(thetas[theta_idx[it]]), float(k_values[k_idx[ik]])))
        contrasts.append(float(window[it, ik]))
    return results, contrasts


def _regress_amplitudes(modulated_spectra: np.ndarray, widefield_tapered: np.ndarray,
                        k_per_pixel: np.ndarray, otf: OTF, pixel_size_nm: float,
                        noise_power: float | None, skip_axes: bool = False) -> np.ndarray:
    """Complex amplitudes ``(m/2) e^{iφ}`` of spectra ``(N, Y, X)`` holding the +k band, ``(N,)``.

    Gustafsson's regression of each spectrum onto the widefield spectrum shifted by ``k``, both
    weighted by the OTF at the other band's position so that they share one transfer function.
    ``skip_axes`` leaves out the lines where the widefield's kx = 0 and ky = 0 axes land: a camera's
    row and column offsets put power there that no band ±1 has, and in the thin overlap crescent near
    the OTF edge it would dilute the regression and pull the modulation down (measured: −0.3 on
    average with 1-ADU row/column noise at 50 photons).
    """
    ny, nx = widefield_tapered.shape
    pixel_um = pixel_size_nm / 1000.0
    k_per_um = k_per_pixel / pixel_um
    y = (np.arange(ny) - ny // 2)[:, None]
    x = (np.arange(nx) - nx // 2)[None, :]
    ramp = np.exp(2j * np.pi * (k_per_pixel[0] * y + k_per_pixel[1] * x))
    otf_here = otf.on_grid((ny, nx), pixel_size_nm)
    otf_shifted = otf.on_grid((ny, nx), pixel_size_nm, shift_per_um=tuple(k_per_um))
    reference = np.fft.fft2(widefield_tapered * ramp) * otf_here
    ky, kx = frequency_grid((ny, nx), pixel_size_nm)
    k_abs = np.hypot(ky, kx)
    k_shifted = np.hypot(ky - k_per_um[0], kx - k_per_um[1])
    cutoff = otf.cutoff_per_um
    # |k| small is where unequal phase steps leak the huge zero-order band: keep out.
    overlap = (k_abs < cutoff) & (k_shifted < cutoff) & (k_abs > 0.15 * cutoff)
    if skip_axes:
        step = 1.5 / (min(ny, nx) * pixel_um)
        overlap &= (np.abs(ky - k_per_um[0]) > step) & (np.abs(kx - k_per_um[1]) > step)
    if overlap.sum() < 8:
        raise EstimationError("the pattern frequency lies beyond twice the OTF cut-off: no band "
                              "overlap to measure phases on; check --na, --wavelength-nm and --pixel-size-nm")
    denominator = np.sum(np.abs(reference[overlap]) ** 2)
    if noise_power is not None:
        denominator -= noise_power * np.sum(otf_here[overlap] ** 2)
    denominator = max(denominator, 1e-12 * np.sum(np.abs(reference[overlap]) ** 2))
    weighted = modulated_spectra[:, overlap] * otf_shifted[overlap]
    return (weighted @ np.conj(reference[overlap])) / denominator


def fixed_pattern_stripes(spectrum: np.ndarray, outside: np.ndarray, threshold: float = 3.0) -> bool:
    """Whether a widefield spectrum (unshifted FFT) shows a camera's row or column pattern.

    Beyond the OTF support (``outside``) a spectrum holds noise only, spread evenly; row and column
    offsets fixed in the camera put extra power on the ky = 0 and kx = 0 axes there. Their mean power
    above ``threshold`` times that of the rest of the outside region says the camera has them.
    """
    ny, nx = spectrum.shape
    axes = np.zeros((ny, nx), dtype=bool)
    axes[0, :] = axes[:, 0] = True
    on_axes, off_axes = outside & axes, outside & ~axes
    if on_axes.sum() < 8 or off_axes.sum() < 8:
        return False
    power = np.abs(spectrum) ** 2
    return bool(np.mean(power[on_axes]) > threshold * np.mean(power[off_axes]))


def estimate_parameters(raw: np.ndarray, pixel_size_nm: float, otf: OTF, *,
                        background: float | str = "auto", prior: PatternPrior | None = None,
                        phase_steps: str = "equal", diagnostics: dict | None = None) -> SIMParameters:
    """Estimate the illumination of every orientation from raw SIM frames.

    Parameters
    ----------
    raw : ndarray, shape ``(A, P, Y, X)`` or ``(T, A, P, Y, X)``
        Raw frames, angle-major. Several time points are averaged first: the pattern repeats while
        the noise does not, which is how live-cell data at low light are estimated reliably.
    pixel_size_nm : float
        Camera pixel size in the sample plane.
    otf : OTF
        Detection OTF (ideal or measured).
    background : float or "auto"
        Camera offset (+ unmodulated background) to subtract; "auto" takes a low percentile of the
        smoothed widefield image.
    prior : PatternPrior, optional
        Calibrated angles / spacing to search around instead of the whole annulus.
    phase_steps : {"equal", "free"}
        Fit one phase offset with equal steps of 2π/P (robust; default), or a phase per frame (for
        phase shifters known to be off by more than ~0.3 rad; see ``PHASE_STEP_MODELS``).
    diagnostics : dict, optional
        Filled with ``correlation_maps`` (``(A, 2Y, 2X)``, peak over background, centred) and
        ``peaks_per_pixel`` (the wave vectors found) for a quality figure.

    Returns
    -------
    SIMParameters
        One :class:`Orientation` per angle and a ``quality`` dict: peak-over-background of each
        correlation peak, angle steps, spacing spread, and ``warnings`` when the estimate is
        physically implausible.

    References
    ----------
    Gustafsson, J. Microsc. 198, 82 (2000); Wicker et al., Opt. Express 21, 2032 (2013);
    Müller et al., Nat. Commun. 7, 10980 (2016); Qiao et al., Nat. Biotechnol. 41, 367 (2023).
    """
    if phase_steps not in PHASE_STEP_MODELS:
        raise InputError(f"unknown phase-step model {phase_steps!r}: use one of {', '.join(PHASE_STEP_MODELS)}")
    stuck = stuck_pixels(raw)
    frames, bg = prepare_frames(repair_pixels(raw, stuck), background)
    angles, phases, ny, nx = frames.shape
    if phases < 3:
        raise InputError(f"{phases} phases per orientation cannot separate the 3 bands: need ≥ 3")
    pixel_um = pixel_size_nm / 1000.0
    cutoff_per_pixel = otf.cutoff_per_um * pixel_um
    taper = edge_taper((ny, nx))
    tapered = frames * taper
    spectra = np.fft.fft2(tapered, axes=(-2, -1))
    widefield = tapered.mean(axis=(0, 1))
    widefield_spectrum = np.fft.fft2(widefield)

    ky, kx = frequency_grid((ny, nx), pixel_size_nm)
    k_abs = np.hypot(ky, kx)
    outside = k_abs > 1.15 * otf.cutoff_per_um
    stripes = fixed_pattern_stripes(widefield_spectrum, outside)
    if stripes:  # the regression leaves the axes out (see _regress_amplitudes): so must the noise floor
        outside = outside & (ky != 0) & (kx != 0)
    noise_power = float(np.mean(np.abs(widefield_spectrum[outside]) ** 2)) if outside.mean() > 0.01 else None

    otf_weight = otf.on_grid((ny, nx), pixel_size_nm) * (k_abs < otf.cutoff_per_um)
    widefield_filtered = np.fft.ifft2(widefield_spectrum * otf_weight)
    step_phasors = np.exp(-2j * np.pi * np.arange(phases) / phases)
    maps, bands_plus = [], []
    for a in range(angles):
        band_plus = np.tensordot(step_phasors, spectra[a], axes=(0, 0)) / phases
        product = np.fft.ifft2(band_plus * otf_weight) * np.conj(widefield_filtered)
        bands_plus.append(band_plus)
        maps.append(_radially_normalized(_centred_power_map(product)))
    maps = np.stack(maps)

    nyquist = 0.5
    if prior and prior.spacing_nm:
        k_prior = pixel_size_nm / prior.spacing_nm
        k_range = (k_prior * (1 - prior.spacing_window_fraction), k_prior * (1 + prior.spacing_window_fraction))
    else:
        # TIRF-SIM puts the pattern at 0.8–1.1 of the detection cut-off, 3-D SIM near 0.5.
        k_range = (0.35 * cutoff_per_pixel, min(1.3 * cutoff_per_pixel, 0.95 * nyquist))
    if not 0 < k_range[0] < k_range[1] <= nyquist:
        raise EstimationError(
            f"with {pixel_size_nm:g} nm pixels the OTF cut-off ({otf.cutoff_per_um:.2f} cycles/µm) lies at "
            f"{cutoff_per_pixel:.2f} cycles/pixel, so a pattern near it cannot be sampled (Nyquist: 0.5): check "
            "--pixel-size-nm (in nm), --na and --wavelength-nm" + (", and the prior's spacing" if prior else ""))
    coarse, contrasts = _coarse_wave_vectors(maps, k_range, prior, angles)

    orientations, step_deviation = [], []
    for a, (theta, k_len) in enumerate(coarse):
        start = np.array([k_len * math.sin(theta), k_len * math.cos(theta)])
        candidates = [_refine_wave_vector(bands_plus[a], widefield_spectrum, sign * start, otf,
                                          pixel_size_nm) for sign in (1, -1)]
        k_vec = max(candidates, key=lambda c: c[1])[0]
        angle = math.atan2(k_vec[0], k_vec[1])
        if not 0 <= angle < math.pi:
            k_vec = -k_vec
            angle = math.atan2(k_vec[0], k_vec[1]) % math.pi
        phases_rad, modulation, deviation = _phases_and_modulation(
            spectra[a], widefield, k_vec, otf, pixel_size_nm, noise_power, phase_steps, stripes)
        orientations.append(Orientation(angle, pixel_size_nm / float(np.hypot(*k_vec)),
                                        phases_rad, modulation))
        step_deviation.append(deviation)

    orientations, substituted = bound_modulations(orientations, prior)
    if diagnostics is not None:
        diagnostics["substituted"] = substituted
        diagnostics["correlation_maps"] = maps
        diagnostics["peaks_per_pixel"] = [np.array(o.wave_vector_per_pixel(pixel_size_nm))
                                          for o in orientations]
        diagnostics["cutoff_per_pixel"] = cutoff_per_pixel
    params = SIMParameters(orientations)
    params.quality = assess_quality(params, contrasts, bg, otf, step_deviation, phase_steps)
    params.quality["pixels_repaired"] = int(stuck.sum())
    if substituted:
        params.quality["modulation_substituted"] = substituted
        params.quality["warnings"] = [item["reason"] for item in substituted] + params.quality["warnings"]
        params.quality["reliable"] = False
    return params


def bound_modulations(orientations: list[Orientation], prior: PatternPrior | None = None,
                      ) -> tuple[list[Orientation], list[dict]]:
    """Orientations whose modulation is physically possible, and a record of each value replaced.

    A modulation depth lies in (0, 1]: a value above 1 was not measured but made by noise or by an OTF
    that does not fit the data (at the OTF edge the band overlap is a thin crescent, and a ratio of weak
    bands easily exceeds 1). Such an orientation takes the median of the orientations measured in range,
    else the prior's modulation, else :data:`FALLBACK_MODULATION`; the record names the value measured,
    the one used and why, for the warnings and the parameters' JSON.

    Examples
    --------
    >>> fixed, record = bound_modulations([Orientation(0.1, 200.0, (0.0, 2.1, 4.2), 2.23),
    ...                                    Orientation(1.1, 200.0, (0.0, 2.1, 4.2), 0.6),
    ...                                    Orientation(2.1, 200.0, (0.0, 2.1, 4.2), 0.7)])
    >>> [round(o.modulation, 3) for o in fixed], record[0]["source"]
    ([0.65, 0.6, 0.7], 'other orientations')
    """
    measured = [o.modulation for o in orientations]
    in_range = [m for m in measured if 0 < m <= 1]
    fixed, record = [], []
    for a, (orientation, value) in enumerate(zip(orientations, measured)):
        if 0 < value <= 1:
            fixed.append(orientation)
            continue
        if in_range:
            used, source = float(np.median(in_range)), "other orientations"
        elif prior is not None and prior.modulation is not None:
            used, source = float(prior.modulation), "prior"
        else:
            used, source = FALLBACK_MODULATION, "fallback"
        what = {"other orientations": "the median of the orientations measured in (0, 1]",
                "prior": "the prior's modulation", "fallback": "a typical TIRF-SIM value"}[source]
        reason = (f"orientation {a}: modulation measured {value:.2f}, outside (0, 1] (impossible: noise or an OTF "
                  f"that does not fit the data); used {used:.2f}, {what}; pass --otf with a measured OTF, "
                  "--average more time points, or --params")
        record.append({"orientation": a, "measured": float(value), "used": used, "source": source, "reason": reason})
        fixed.append(dataclasses.replace(orientation, modulation=used))
    return fixed, record


def _circle_centre(points: np.ndarray) -> complex:
    """Least-squares centre of a circle through complex ``points`` (exact for three)."""
    design = np.stack([2 * points.real, 2 * points.imag, np.ones(points.size)], axis=1)
    solution = np.linalg.lstsq(design, np.abs(points) ** 2, rcond=None)[0]
    return complex(solution[0], solution[1])


def _phases_and_modulation(spectra: np.ndarray, widefield: np.ndarray, k_vec: np.ndarray, otf: OTF,
                           pixel_size_nm: float, noise_power: float | None, phase_steps: str,
                           skip_axes: bool = False) -> tuple[tuple[float, ...], float, list[float]]:
    """Phase of each frame and modulation of one orientation; also each frame's deviation from equal steps.

    Equal-step model: the +1 band separated with steps of 2π/P is regressed as a whole. Per-frame
    model: each frame minus the orientation's mean is regressed, giving ``a_p − ā``; all frames share
    one modulation, so the ``a_p`` lie on a circle around 0 and ``−ā`` is the centre of the circle
    through the estimates.
    """
    phases = spectra.shape[0]
    steps = 2 * np.pi * np.arange(phases) / phases
    best = None
    for direction in (1, -1):
        band_plus = np.tensordot(np.exp(-1j * direction * steps), spectra, axes=(0, 0))[None] / phases
        common = _regress_amplitudes(band_plus, widefield, k_vec, otf, pixel_size_nm, noise_power, skip_axes)[0]
        if best is None or abs(common) > abs(best[0]):
            best = (common, direction)
    common, direction = best
    equal_steps = np.angle(common) + direction * steps

    relative = _regress_amplitudes(spectra - spectra.mean(axis=0, keepdims=True), widefield, k_vec,
                                   otf, pixel_size_nm, noise_power, skip_axes)
    per_frame = relative - _circle_centre(relative)
    frame_phases = np.angle(per_frame)
    deviation = np.angle(np.exp(1j * (frame_phases - equal_steps)))
    if phase_steps == "equal":
        chosen, modulation = equal_steps, 2 * abs(common)
    else:
        chosen, modulation = frame_phases, 2 * float(np.mean(np.abs(per_frame)))
    return (tuple(float(p % (2 * np.pi)) for p in chosen), float(modulation),
            [float(d) for d in deviation])


def assess_quality(params: SIMParameters, peak_contrast: list[float], background: float, otf: OTF,
                   phase_step_deviation: list[list[float]], phase_steps: str) -> dict:
    """Physical plausibility of an estimate; ``warnings`` lists what a user must look at."""
    warnings = []
    worst_step = max(max(abs(d) for d in deviation) for deviation in phase_step_deviation)
    if phase_steps == "equal" and worst_step > PHASE_STEP_WARNING_RAD:
        warnings.append(f"per-frame phases deviate from equal steps by up to {worst_step:.2f} rad: if the "
                        "phase shifter is known to be inaccurate, estimate with --phase-steps free")
    angles = [o.angle_rad for o in params.orientations]
    count = len(angles)
    steps = []
    for a in range(count - 1):
        step = (angles[a + 1] - angles[a]) % math.pi
        expected = math.pi / count
        deviation = min(abs(step - expected), abs(step - (math.pi - expected)))
        steps.append(math.degrees(step))
        if deviation > math.radians(3.0):
            warnings.append(f"orientations {a} and {a + 1} are {math.degrees(step):.1f}° apart, not "
                            f"{180 / count:.0f}°: an orientation was probably mis-estimated; pass a prior")
    spacings = np.array([o.spacing_nm for o in params.orientations])
    spread = float((spacings.max() - spacings.min()) / spacings.mean() * 100)
    if spread > 2.0:
        warnings.append(f"pattern spacings differ by {spread:.1f} % between orientations "
                        f"({', '.join(f'{s:.1f}' for s in spacings)} nm): expected one spacing")
    for a, o in enumerate(params.orientations):
        if o.modulation < 0.15:
            warnings.append(f"orientation {a} has modulation {o.modulation:.2f} ≈ 0: no usable pattern")
        if peak_contrast[a] < MIN_PEAK_CONTRAST:
            warnings.append(f"orientation {a}: correlation peak only {peak_contrast[a]:.0f}× the "
                            "background: weak evidence; average more time points or pass a prior")
    k_fraction = [o.k_cycles_per_um / otf.cutoff_per_um for o in params.orientations]
    found = float(np.median(k_fraction))
    if found < PATTERN_FRACTION_RANGE[0]:
        warnings.append(f"the pattern lies at {found:.2f} of the OTF cut-off, far inside it (2-D SIM puts it at "
                        f"{PATTERN_FRACTION_RANGE[0]:g}–{PATTERN_FRACTION_RANGE[1]:g}): the pixel size may be too "
                        "large or the NA/wavelength wrong; check --pixel-size-nm, --na, --wavelength-nm")
    elif found > PATTERN_FRACTION_RANGE[1]:
        warnings.append(f"the pattern lies at {found:.2f} of the OTF cut-off, beyond the detection support: the "
                        "pixel size may be too small or the NA/wavelength wrong; check --pixel-size-nm, --na, "
                        "--wavelength-nm")
    return {"peak_contrast": peak_contrast, "angle_steps_deg": steps,
            "spacing_spread_percent": spread, "k_fraction_of_cutoff": k_fraction,
            "background_subtracted": background, "otf": otf.source, "phase_steps": phase_steps,
            "phase_step_deviation_rad": phase_step_deviation, "warnings": warnings,
            "reliable": not warnings}
