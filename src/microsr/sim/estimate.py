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
   of the band product (exact: no interpolation of a sampled spectrum).
4. Phase and modulation come from the complex linear regression of the separated +1 band onto the
   widefield spectrum shifted by the wave vector (Gustafsson's regression), with the noise power of
   the reference removed so low SNR does not bias the modulation down. By default the phase steps
   are taken as equal (2π/P) and one offset is fitted; per-frame phases are an option (see
   ``PHASE_STEP_MODELS``) and are always reported as deviations from equal steps.

Cost: time and memory grow with the pixels (2048² frames: ~0.65 GB). Each frame is transformed once
(real FFT, single precision: the estimate needs 1e-4, float32 gives 1e-7) and only its half spectrum
is kept; the frame-sized complex arrays are two work arrays transformed in place; the correlation maps
are kept as their half ky ≥ 0 (they are point-symmetric); the joint search scores first the spacings
whose bound (each map's largest value near that radius) can win, which with a pattern is a few; the
refinement reduces the band product once per pass to a few Chebyshev moments, from which every point
of its zooms follows; only the OTF's support is weighted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import fft as scipy_fft
from scipy import ndimage, special

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

# Samples of the joint search's polar grid evaluated at once: its memory (~60 bytes a sample) stays in
# the caches and the same whatever the frame size.
_POLAR_BLOCK_SAMPLES = 1 << 18

# Bound on the Jacobi–Anger terms of the refinement's moments: J_n(a) < (a/2)^n / n!, kept below 1e-16.
_ZOOM_PRECISION = 1e-16


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


def _fft_workers() -> int:
    """Threads of the FFTs: as many as torch was given (``--threads``): a busy machine is not oversubscribed."""
    return max(1, torch.get_num_threads())


def _background_of_widefield(widefield: np.ndarray) -> float:
    return float(np.percentile(ndimage.gaussian_filter(np.asarray(widefield, dtype=np.float32), 2.0), 0.5))


def estimate_background(raw: np.ndarray) -> float:
    """Camera offset plus unmodulated background: a low percentile of the smoothed widefield image."""
    widefield = np.asarray(raw, dtype=np.float32).reshape(-1, *raw.shape[-2:]).mean(axis=0)
    return _background_of_widefield(widefield)


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


def _repaired(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    frame = np.array(frame, dtype=np.float64)
    frame[mask] = ndimage.median_filter(frame, size=3, mode="reflect")[mask]
    return frame


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


def _brightness_factors(frame_means: np.ndarray, background: float) -> np.ndarray:
    """Factors ``(A, P)`` that give each frame its orientation's mean and each orientation the common mean,
    from the frames' means before the background ``background`` is subtracted (see :func:`prepare_frames`)."""
    means = np.asarray(frame_means, dtype=np.float64) - background
    equalized = equalize_frame_means(means[..., None, None])[..., 0, 0]
    # equalize_frame_means leaves a frame it cannot correct as it is: factor 1, also for a zero mean
    factors = np.divide(equalized, means, out=np.ones_like(means), where=means != 0)
    orientation_mean = equalized.mean(axis=1, keepdims=True)
    if np.any(orientation_mean <= 0):
        raise InputError(f"after subtracting the background ({background:.1f}) an orientation has no signal "
                         "left: pass a smaller --background (the camera offset)")
    return factors * (orientation_mean.mean() / orientation_mean)


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
    factors = _brightness_factors(frames.mean(axis=(-2, -1)), bg)
    return (frames - bg) * factors[..., None, None], bg


def _frame_reader(raw: np.ndarray, stuck: np.ndarray):
    """``(A, P, Y, X)`` shape and a function giving frame ``(a, p)``, time points averaged and stuck pixels
    repaired, one at a time: no copy of the whole stack in double precision is ever made."""
    raw = np.asarray(raw)
    if raw.ndim not in (4, 5):
        raise InputError(f"raw SIM frames have shape {raw.shape}: expected (A, P, Y, X) or (T, A, P, Y, X)")
    stack = raw if raw.ndim == 5 else raw[None]
    if stuck.any():  # rare (a camera with defects): repair once, keep the averages (4 bytes a pixel a frame)
        stack = np.stack([np.mean([_repaired(f, stuck) for f in stack[:, a, p]], axis=0).astype(np.float32)
                          for a in range(stack.shape[1]) for p in range(stack.shape[2])])
        stack = stack.reshape(1, *raw.shape[-4:])

    def frame(a: int, p: int) -> np.ndarray:
        if stack.shape[0] == 1:
            return stack[0, a, p]
        return stack[:, a, p].mean(axis=0, dtype=np.float64)

    return stack.shape[1:], frame


@dataclass(frozen=True)
class _DiscSpectra:
    """The frames' half spectra ``(A, P, rows, columns)`` in double precision on the rows and columns that cross
    the cut-off circle (``rows``, columns 0 … n−1 of the half spectrum): all the regression ever reads."""

    values: np.ndarray
    rows: np.ndarray
    row_position: np.ndarray  # the values' row of each frame row, −1 for rows outside


def _tapered_spectra(raw: np.ndarray, stuck: np.ndarray, background: float | str, otf: OTF, pixel_size_nm: float,
                     ) -> tuple[np.ndarray, _DiscSpectra, np.ndarray, float]:
    """Half spectra ``(A, P, Y, X//2+1)`` complex64 of the prepared, edge-tapered frames (:func:`prepare_frames`,
    transformed in double precision), their double-precision values within the cut-off circle
    (:class:`_DiscSpectra`), their mean (the tapered widefield image, float64) and the background.

    The search and the refinement only need single precision; the regression keeps double precision, so
    phases and modulations are those a double-precision estimate gives (to ~1e-12).
    """
    (angles, phases, ny, nx), frame = _frame_reader(raw, stuck)
    means = np.empty((angles, phases))
    widefield = np.zeros((ny, nx))
    for a in range(angles):
        for p in range(phases):
            image = frame(a, p)
            means[a, p] = np.mean(image, dtype=np.float64)
            np.add(widefield, image, out=widefield)
    bg = _background_of_widefield(widefield / (angles * phases)) if background == "auto" else float(background)
    factors = _brightness_factors(means, bg)
    taper = edge_taper((ny, nx))
    # The same frequencies as frequency_grid (cycles/µm), so the regression's pixels are all found here.
    ky, _ = frequency_grid((ny, nx), pixel_size_nm)
    disc_rows = np.flatnonzero(np.abs(ky[:, 0]) < otf.cutoff_per_um)
    disc_columns = int(np.count_nonzero(np.fft.rfftfreq(nx, d=pixel_size_nm / 1000.0) < otf.cutoff_per_um))
    row_position = np.full(ny, -1, dtype=np.intp)
    row_position[disc_rows] = np.arange(disc_rows.size)
    spectra = np.empty((angles, phases, ny, nx // 2 + 1), dtype=np.complex64)
    disc = np.empty((angles, phases, disc_rows.size, disc_columns), dtype=np.complex128)
    tapered = np.empty((ny, nx))
    widefield[:] = 0.0
    for a in range(angles):
        for p in range(phases):
            np.subtract(frame(a, p), bg, out=tapered)
            tapered *= factors[a, p]
            tapered *= taper
            widefield += tapered
            spectrum = scipy_fft.rfft2(tapered, workers=_fft_workers())
            spectra[a, p] = spectrum
            disc[a, p] = spectrum[disc_rows, :disc_columns]
    return spectra, _DiscSpectra(disc, disc_rows, row_position), widefield / (angles * phases), bg


def _full_band(half_spectra: np.ndarray, weights: np.ndarray, nx: int, out: np.ndarray | None = None) -> np.ndarray:
    """Full spectrum ``(Y, X)`` complex64 of ``Σ_p w_p F_p`` from the half spectra ``(P, Y, X//2+1)`` of real frames.

    The negative-kx half follows from the Hermitian symmetry of each frame's spectrum:
    ``Σ w_p F_p(−k) = conj(Σ conj(w_p) F_p(k))``.
    """
    ny, half = half_spectra.shape[-2:]
    weights = np.asarray(weights, dtype=np.complex64)
    full = np.empty((ny, nx), dtype=np.complex64) if out is None else out
    np.multiply(half_spectra[0], weights[0], out=full[:, :half])
    for spectrum, weight in zip(half_spectra[1:], weights[1:]):
        full[:, :half] += spectrum * weight
    if nx > half:
        mirrored = sum(spectrum[:, nx - half:0:-1] * np.conj(weight) for spectrum, weight in zip(half_spectra, weights))
        full[:, half:] = np.conj(mirrored[(-np.arange(ny)) % ny])
    return full


def _half_to_full_gather(half_spectra: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int],
                         row_position: np.ndarray | None = None) -> np.ndarray:
    """Values ``(..., len(rows))`` of the full spectra ``shape`` of real frames at pixels ``(rows, cols)``, from
    their halves (or from some of the halves' rows: ``row_position`` gives each frame row's place there)."""
    ny, nx = shape
    half = nx // 2 + 1
    mirror = cols >= half
    rows_in = np.where(mirror, (-rows) % ny, rows)
    cols_in = np.where(mirror, (nx - cols) % nx, cols)
    if row_position is not None:
        rows_in = row_position[rows_in]
        if np.any(rows_in < 0) or np.any(cols_in >= half_spectra.shape[-1]):
            raise RuntimeError("a regression pixel lies outside the stored part of the spectra")
    values = half_spectra[..., rows_in, cols_in]
    values[..., mirror] = np.conj(values[..., mirror])
    return values


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


def _chebyshev_basis(n: int, terms: int) -> np.ndarray:
    """``T_j(u)`` ``(terms, n)`` at the centred pixel positions ``u = (i − n//2) / (n/2)`` ∈ [−1, 1]."""
    u = (np.arange(n) - n // 2) / (n / 2)
    basis = np.empty((terms, n))
    basis[0] = 1.0
    if terms > 1:
        basis[1] = u
    for j in range(2, terms):
        basis[j] = 2 * u * basis[j - 1] - basis[j - 2]
    return basis


def _jacobi_anger(offsets_per_pixel: np.ndarray, n: int, terms: int) -> np.ndarray:
    """Coefficients ``(len(offsets), terms)`` with ``exp(−2πi δ (i − n//2)) = Σ_j c_j(δ) T_j(u)`` (Jacobi–Anger)."""
    a = 2 * np.pi * np.asarray(offsets_per_pixel, dtype=float)[:, None] * (n / 2)
    order = np.arange(terms)[None, :]
    weight = np.where(order == 0, 1.0, 2.0) * (-1j) ** order
    return weight * special.jv(order, a)


class _DTFTZoom:
    """The band product's Fourier transform anywhere within ~1 spectral pixel of ``k_centre``.

    ``zoom_dtft`` costs ``21 × Y × X`` per 21 × 21 grid; here ``e^{-2πi (k + δ)·r} = e^{-2πi k·r} e^{-2πi δ·r}``
    and the second factor is expanded in Chebyshev polynomials of the position (Jacobi–Anger), so one
    reduction of the product to ``terms × terms`` moments gives every zoom of a pass. The series is exact
    to 1e-16; the reduction over rows runs in the product's own single precision (Chebyshev terms are at
    most 1: no cancellation), the rest in double.
    """

    def __init__(self, product: np.ndarray, k_centre: np.ndarray, reach_pixels: float):
        ny, nx = product.shape
        self.k_centre = np.asarray(k_centre, dtype=float)
        self.shape = (ny, nx)
        # Within ``reach_pixels`` spectral pixels the phase across the field stays below π·reach.
        phase, self.terms = math.pi * reach_pixels, 1
        while (phase / 2) ** self.terms / math.factorial(self.terms) > _ZOOM_PRECISION:
            self.terms += 1
        self.terms += 1
        y = np.arange(ny) - ny // 2
        x = np.arange(nx) - nx // 2
        rows = _chebyshev_basis(ny, self.terms) * np.exp(-2j * np.pi * self.k_centre[0] * y)
        cols = _chebyshev_basis(nx, self.terms) * np.exp(-2j * np.pi * self.k_centre[1] * x)
        self.moments = (rows.astype(np.complex64) @ product).astype(np.complex128) @ cols.T

    def __call__(self, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        """``zoom_dtft(product, ky, kx)``."""
        row_weights = _jacobi_anger(np.asarray(ky) - self.k_centre[0], self.shape[0], self.terms)
        col_weights = _jacobi_anger(np.asarray(kx) - self.k_centre[1], self.shape[1], self.terms)
        return row_weights @ self.moments @ col_weights.T


class _Spectra:
    """What the search and the refinement share: the widefield spectrum, frequency grids, the OTF and its
    support, and two frame-sized complex work arrays.

    Every full-frame complex array of the estimate is one of those two, transformed in place: allocated anew,
    one of 2048² (33.5 MB) is past the C library's largest heap block and comes from the kernel page by page,
    which costs more than the FFT on it (measured: 10 ms to allocate and fill, 1.6 ms to refill).
    """

    def __init__(self, widefield_spectrum: np.ndarray, otf: OTF, pixel_size_nm: float):
        self.widefield_spectrum = widefield_spectrum
        self.shape = widefield_spectrum.shape
        self.otf = otf
        self.pixel_size_nm = pixel_size_nm
        self.pixel_um = pixel_size_nm / 1000.0
        ky, kx = frequency_grid(self.shape, pixel_size_nm)
        self.ky, self.kx = ky.astype(np.float32), kx.astype(np.float32)
        self.k_abs = np.hypot(self.ky, self.kx)
        self.otf_here = self.otf_at((0.0, 0.0))
        self.inside = self.otf_here > 0
        # The rows and columns that cross the OTF's support: a weight OTF(k − k₀) · [OTF(k) > 0] is 0 elsewhere.
        self.support = np.ix_(np.flatnonzero(self.inside.any(axis=1)), np.flatnonzero(self.inside.any(axis=0)))
        self.work = (np.empty(self.shape, dtype=np.complex64), np.empty(self.shape, dtype=np.complex64))

    def otf_at(self, shift_per_um, where: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """OTF at ``k − shift`` on the grid (or on its rows and columns ``where``), float32: ``OTF.on_grid`` in
        single precision, 2–3× faster."""
        ky, kx = (self.ky, self.kx) if where is None else (self.ky[where[0][:, 0]], self.kx[:, where[1][0]])
        return np.asarray(self.otf(ky - np.float32(shift_per_um[0]), kx - np.float32(shift_per_um[1])),
                          dtype=np.float32)

    def support_weight(self, shift_per_um) -> np.ndarray:
        """``OTF(k − shift) · [OTF(k) > 0]`` on the support's rows and columns."""
        weight = self.otf_at(shift_per_um, self.support)
        weight *= self.inside[self.support]
        return weight

    def filtered(self, spectrum_on_support: np.ndarray, weight: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Inverse FFT, in ``out``, of a spectrum given on the support's rows and columns times ``weight``,
        0 elsewhere."""
        out.fill(0)
        out[self.support] = spectrum_on_support * weight
        return self.ifft2(out, in_place=True)

    def fft2(self, array: np.ndarray, in_place: bool = False) -> np.ndarray:
        return scipy_fft.fft2(array, workers=_fft_workers(), overwrite_x=in_place)

    def ifft2(self, array: np.ndarray, in_place: bool = False) -> np.ndarray:
        return scipy_fft.ifft2(array, workers=_fft_workers(), overwrite_x=in_place)


def _refine_pass(band_plus: np.ndarray, spectra: _Spectra, k_start: np.ndarray,
                 weight_plus: np.ndarray, weight_zero: np.ndarray,
                 half_widths: tuple[float, ...]) -> tuple[np.ndarray, float]:
    """One pass of :func:`_refine_wave_vector` with the OTF weights of its start: nested 21 × 21 zooms."""
    ny, nx = spectra.shape
    product = spectra.filtered(band_plus, weight_plus, spectra.work[0])
    zero_band = spectra.filtered(spectra.widefield_spectrum[spectra.support], weight_zero, spectra.work[1])
    product *= np.conjugate(zero_band, out=zero_band)
    zoom = _DTFTZoom(product, k_start, 1.01 * sum(half_widths))
    k = np.array(k_start, dtype=float)
    for half_width in half_widths:
        offsets = np.linspace(-half_width, half_width, 21)
        ky = k[0] + offsets / ny
        kx = k[1] + offsets / nx
        power = np.abs(zoom(ky, kx))
        iy, ix = np.unravel_index(np.argmax(power), power.shape)
        k = np.array([ky[iy], kx[ix]])
    return k, float(power[iy, ix])


def _pattern_sign(product: np.ndarray, k: np.ndarray) -> int:
    """+1 if the band product's correlation is stronger at ``k`` than at ``−k`` (cycles/pixel), else −1.

    The coarse search sums the power at ±k (the phase steps may run either way); the separated +1 band
    correlates with the widefield band at one of them, and at the other only through what unequal steps
    leak of the −1 band (measured on simulated and defect-laden acquisitions: 2.6–800× weaker, the same
    choice as refining both signs and keeping the stronger, which costs two more transforms).
    """
    ny, nx = product.shape
    y, x = np.arange(ny) - ny // 2, np.arange(nx) - nx // 2
    strength = [abs(np.exp(-2j * np.pi * sign * k[0] * y).astype(np.complex64) @ product
                    @ np.exp(-2j * np.pi * sign * k[1] * x).astype(np.complex64)) for sign in (1, -1)]
    return -1 if strength[1] > strength[0] else 1


def _refine_wave_vector(band_plus: np.ndarray, spectra: _Spectra, k_start: np.ndarray) -> np.ndarray:
    """Refine ``k`` (cycles/pixel, ``(ky, kx)``, its sign known) to the maximum of the band cross-correlation.

    The +1 band is weighted by the OTF at the 0 band's place and the 0 band by the OTF at the +1
    band's place, both at the current ``k``: the two then share one transfer function, and the
    correlation peak is not pulled towards the steep side of the OTF. Two passes update the weights.
    ``band_plus`` is given on the support's rows and columns (:attr:`_Spectra.support`).
    """
    per_um = 1.0 / spectra.pixel_um
    k = np.asarray(k_start, dtype=float)
    for half_widths in ((1.0, 0.1, 0.01), (0.05, 0.005, 0.0005)):
        k = _refine_pass(band_plus, spectra, k, spectra.support_weight(tuple(k * per_um)),
                         spectra.support_weight(tuple(-k * per_um)), half_widths)[0]
    return k


def _mirror_roll_segments(n: int, d: int, shift: int, keep: tuple[int, int] | None = None,
                          ) -> list[tuple[slice, slice, slice]]:
    """Pieces ``(destination, source, mirror source)`` of one axis: index m goes to ``(m + shift) mod n`` and
    its mirror is ``(−m − d) mod n``; every piece is a plain slice, so no index array is needed. With ``keep``
    only destinations in ``[keep[0], keep[1])`` are given, counted from ``keep[0]``."""
    low, high = keep if keep is not None else (0, n)
    cuts = sorted({0, n, n - shift if 0 < shift < n else 0, 1 if d == 0 and n > 1 else 0})
    pieces = []
    for start, stop in zip(cuts[:-1], cuts[1:]):
        destination = (start + shift) % n
        skip, end = max(0, low - destination), min(stop - start, high - destination)
        if end <= skip:
            continue
        first_source, length = start + skip, end - skip
        first_mirror = (-first_source - d) % n  # the mirror runs backwards from here
        last_mirror = first_mirror - length
        pieces.append((slice(destination + skip - low, destination + skip - low + length),
                       slice(first_source, first_source + length),
                       slice(first_mirror, last_mirror if last_mirror >= 0 else None, -1)))
    return pieces


def _centred_power_map(product: np.ndarray, spectra: _Spectra, out: np.ndarray | None = None) -> np.ndarray:
    """``|FFT|²`` (float32) of the band product on a 2× zero-padded grid, centred, symmetrized over ±k: its rows
    ``ky ≥ 0`` and then its Nyquist row, ``(Y + 1, 2X)`` (a symmetrized map is the point mirror of that).

    The padded transform is taken as its four interleaved sub-grids (each an FFT of the product times a
    half-pixel phase ramp), so no array four times the frame is ever complex. ``product`` is overwritten
    (the last sub-grid is transformed in place); the others go through ``spectra.work[1]``.
    """
    ny, nx = product.shape
    power = np.empty((ny + 1, 2 * nx), dtype=np.float32) if out is None else out
    ramp_y = np.exp(-1j * np.pi * np.arange(ny) / ny).astype(np.complex64)[:, None]
    ramp_x = np.exp(-1j * np.pi * np.arange(nx) / nx).astype(np.complex64)[None, :]
    work = spectra.work[1]
    for dy, dx in ((1, 1), (1, 0), (0, 1), (0, 0)):
        if dy or dx:
            np.multiply(product, ramp_y if dy else ramp_x, out=work)
            if dy and dx:
                work *= ramp_x
        sub = spectra.fft2(work if dy or dx else product, in_place=True).view(np.float32)
        np.square(sub, out=sub)
        sub_power = sub[:, 0::2] + sub[:, 1::2]
        del sub
        # Centring moves padded index i to i + n (mod 2n): sub-grid d lands on parity (d + n) % 2, its
        # index m on (m + shift) mod n. And the pattern's sign is unknown (phase steps may run either
        # way): the power at k and −k is summed; padded index 2m + d mirrors to −2m − d, on the same
        # sub-grid (m → −m − d).
        ey, ex = (dy + ny) % 2, (dx + nx) % 2
        shift_y, shift_x = (dy + ny - ey) // 2, (dx + nx - ex) // 2
        first_kept = (ny - ey + 1) // 2  # the first centred row 2m + e at or below the centre
        columns = _mirror_roll_segments(nx, dx, shift_x)
        targets = [(power[2 * first_kept + ey - ny:ny:2, ex::2], (first_kept, ny))]
        if ey == 0:  # centred row 0, the Nyquist row, is this sub-grid's row 0
            targets.append((power[ny:, ex::2], (0, 1)))
        for target, keep in targets:
            for rows_to, rows_from, rows_mirror in _mirror_roll_segments(ny, dy, shift_y, keep):
                for cols_to, cols_from, cols_mirror in columns:
                    np.add(sub_power[rows_from, cols_from], sub_power[rows_mirror, cols_mirror],
                           out=target[rows_to, cols_to])
    return power


def _full_map(half: np.ndarray) -> np.ndarray:
    """The whole centred map ``(2Y, 2X)`` from its rows ``ky ≥ 0`` and Nyquist row (:func:`_centred_power_map`)."""
    ny = half.shape[0] - 1
    mx = half.shape[1]
    full = np.empty((2 * ny, mx), dtype=half.dtype)
    full[ny:] = half[:ny]
    full[0] = half[ny]
    full[1:ny] = half[ny - 1:0:-1][:, (-np.arange(mx)) % mx]
    return full


class _RadialBins:
    """Radius bins of a centred ``(2Y, 2X)`` map, one map pixel wide, for the median power at each radius; on
    the map's rows ``ky ≥ 0`` and its Nyquist row (:func:`_centred_power_map`).

    A map symmetrized over ±k holds every value twice, at k and −k, but for the four points that are their
    own mirror (k = 0 and the Nyquist corners). So each ring's median is that of one member of every pair
    plus those points: half the values to sort, the same median. ``radius_bins`` (first, last) limits the
    work to the rings a search looks at; the others are left as they are.
    """

    def __init__(self, shape: tuple[int, int], radius_bins: tuple[int, int] | None = None):
        my, mx = shape
        cy, cx = my // 2, mx // 2
        # The bin depends on |offset| only: a quarter's worth of radii (in double precision, a block of rows
        # at a time: no ring straddles a rounding boundary by less than 1/(8·radius)), spread out.
        largest = round(math.hypot(cy / my, cx / mx) * min(my, mx))
        quarter = np.empty((cy + 1, cx + 1), dtype=np.int16 if largest < np.iinfo(np.int16).max else np.int32)
        across = (np.arange(cx + 1) / mx)[None, :]
        rows = max(1, (1 << 18) // (cx + 1))
        for start in range(0, cy + 1, rows):
            down = (np.arange(start, min(cy + 1, start + rows)) / my)[:, None]
            quarter[start:start + rows] = np.round(np.hypot(down, across) * min(my, mx))
        self.bins = quarter[:, np.abs(np.arange(mx) - cx)]  # row r is |ky| = r: the rows ky ≥ 0, then Nyquist
        count = int(quarter.max()) + 1
        first, last = radius_bins if radius_bins is not None else (0, count - 1)
        self.bin_range = (max(0, first), min(count - 1, last))
        cells = np.flatnonzero((quarter >= self.bin_range[0]) & (quarter <= self.bin_range[1])).astype(np.int32)
        cell_bins = quarter.ravel()[cells]
        order = np.argsort(cell_bins, kind="stable")  # radix sort for 16-bit bins: linear time
        cells, cell_bins = cells[order], cell_bins[order]
        # One of each ±k pair: in the rows below the centre both x = ±|x|; in the centre row and the Nyquist
        # row (each its own mirror image) only x > 0.
        abs_y, abs_x = np.divmod(cells, cx + 1)
        middle_row = (abs_y > 0) & (abs_y < cy)
        plus = np.where((abs_x < cx) & (middle_row | (abs_x > 0)), abs_y * mx + cx + abs_x, -1)
        minus = np.where(middle_row & (abs_x > 0), abs_y * mx + cx - abs_x, -1)
        members = np.stack([plus, minus], axis=1).ravel()
        self.members = members[members >= 0].astype(np.intp)
        per_cell = (plus >= 0).astype(np.int64) + (minus >= 0)
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(cell_bins, weights=per_cell, minlength=count))
                                      .astype(np.int64)])
        self.self_mirrored = [(cy, 0), (cy, cx), (0, 0), (0, cx)]

    def normalize(self, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Divide (in place) by the median power at each radius: the low-frequency background must not win.

        Returns the map and the largest value it then holds in each ring (+inf outside ``radius_bins``).
        """
        values = power.ravel().take(self.members)
        singles: dict[int, list[float]] = {}
        for point in self.self_mirrored:
            singles.setdefault(int(self.bins[point]), []).append(float(power[point]))
        medians = np.ones(len(self.starts) - 1)
        largest = np.full(len(self.starts) - 1, np.inf, dtype=np.float32)
        first, last = self.bin_range
        for b in range(first, last + 1):
            ring = values[self.starts[b]:self.starts[b + 1]]
            if b in singles:  # the pairs' values count twice beside a point that is its own mirror
                ring = np.concatenate([ring, ring, np.asarray(singles[b], dtype=ring.dtype)])
            if ring.size:
                middle = ((ring.size - 1) // 2, ring.size // 2)
                ring = np.partition(ring, middle)
                medians[b] = 0.5 * (float(ring[middle[0]]) + float(ring[middle[1]]))
                largest[b] = ring[middle[1]:].max()
        medians = np.maximum(medians, np.finfo(np.float32).tiny).astype(np.float32)
        largest /= medians  # a division by one positive number keeps the largest the largest
        rows = max(1, (1 << 20) // power.shape[1])  # in blocks of rows: no second map-sized array
        for start in range(0, power.shape[0], rows):
            power[start:start + rows] /= medians[self.bins[start:start + rows]]
        return power, largest


class _PolarSampler:
    """Bilinear samples ``(k, θ)`` of centred ``(2Y, 2X)`` maps at polar points (k in cycles/pixel, θ in [0, π)),
    the same points for every map: positions and weights are worked out once (``ndimage.map_coordinates``,
    order 1, per map). The maps are given as their rows ``ky ≥ 0`` (:func:`_centred_power_map`): θ < π
    never reaches above the centre."""

    def __init__(self, shape: tuple[int, int], sin_theta: np.ndarray, cos_theta: np.ndarray, k_values: np.ndarray):
        my, mx = shape
        rows = my // 2 + sin_theta[None, :] * k_values[:, None] * my
        cols = mx // 2 + cos_theta[None, :] * k_values[:, None] * mx
        # Clipped to the map as mode="nearest" does: a point on or beyond the last row takes that row.
        top, left = np.clip(np.floor(rows), my // 2, my - 2), np.clip(np.floor(cols), 0, mx - 2)
        self.down = np.clip(rows - top, 0, 1).astype(np.float32)
        self.right = np.clip(cols - left, 0, 1).astype(np.float32)
        self.index = ((top - my // 2) * mx + left).astype(np.intp)
        self.width = mx

    def __call__(self, correlation_map: np.ndarray) -> np.ndarray:
        flat = correlation_map.ravel()
        upper = flat.take(self.index)
        upper_right = flat[1:].take(self.index)
        upper_right -= upper
        upper_right *= self.right
        upper += upper_right
        lower = flat[self.width:].take(self.index)
        lower_right = flat[self.width + 1:].take(self.index)
        lower_right -= lower
        lower_right *= self.right
        lower += lower_right
        lower -= upper
        lower *= self.down
        upper += lower
        return upper


def _circular_maximum(values: np.ndarray, spread: int) -> np.ndarray:
    """``maximum_filter1d(values, 2·spread + 1, axis=-1, mode="wrap")`` by doubling windows: log₂ passes of
    ``np.maximum``, a few times faster than the filter's per-line queue along a short window."""
    n = values.shape[-1]
    size = 2 * spread + 1
    if size >= n:
        return np.broadcast_to(values.max(axis=-1, keepdims=True), values.shape).copy()
    window = np.concatenate([values[..., n - spread:], values, values[..., :spread]], axis=-1)
    width = 1
    while 2 * width <= size:
        window = np.maximum(window[..., :-width], window[..., width:])
        width *= 2
    return np.maximum(window[..., :n], window[..., size - width:size - width + n])


@dataclass(frozen=True)
class _PolarGrid:
    """The joint search's polar grid: spacings ``k_values`` (cycles/pixel) × ``n_theta`` angles in [0, π), on
    maps of ``shape`` (centred, 2× padded); ``steps`` angles between orientations, ``spread`` the tolerance."""

    shape: tuple[int, int]
    k_values: np.ndarray
    n_theta: int
    steps: int
    spread: int

    def sampler(self, theta_idx: np.ndarray | slice, k_idx: np.ndarray | slice) -> _PolarSampler:
        thetas = (np.arange(self.n_theta) * math.pi / self.n_theta)[theta_idx]
        return _PolarSampler(self.shape, np.sin(thetas), np.cos(thetas), self.k_values[k_idx])


def _better(candidate: tuple[float, int, int], best: tuple[float, int, int]) -> bool:
    """A higher score, or the same at a lower θ then lower k index: ``np.argmax`` over a whole (θ, k) array."""
    return candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1:] < best[1:])


def _best_in(score: np.ndarray, k_indices: np.ndarray) -> tuple[float, int, int]:
    """Highest entry of ``(k, θ)`` scores as ``(score, θ index, k index)`` (rows are the spacings
    ``k_indices``), ties broken as above."""
    top = float(score.max())
    k_rows, theta_cols = np.nonzero(score == top)
    if k_rows.size == 0:  # NaN: never better than anything
        return (-np.inf, 0, 0)
    first = np.lexsort((k_indices[k_rows], theta_cols))[0]
    return (top, int(theta_cols[first]), int(k_indices[k_rows[first]]))


def _joint_best(maps: np.ndarray, grid: _PolarGrid, ring_bounds: np.ndarray | None = None,
                ) -> dict[int, tuple[float, int, int]]:
    """Per direction of the orientations' order (±1): the best joint score with its θ and k index, as an
    ``argmax`` over the whole polar grid gives it, walked in blocks of spacings (the angle filters run along
    θ; memory a few MB at any size).

    ``ring_bounds`` ``(K,)``, if given, bounds the joint score at each spacing (the sum over orientations of
    the largest map value within reach of that ring): spacings are scored in order of their bound until it
    falls below the best score found, which with a real pattern is the few rings around its peaks. The
    answer is the same, so far as direction +1's best goes and whether direction −1 beats it.
    """
    angles = len(maps)
    best = {1: (-np.inf, 0, 0), -1: (-np.inf, 0, 0)}
    block = max(1, _POLAR_BLOCK_SAMPLES // grid.n_theta)
    if ring_bounds is None or not np.all(ring_bounds > -np.inf):
        order, bounds = np.arange(len(grid.k_values)), None
    else:
        order = np.argsort(-ring_bounds, kind="stable")
        bounds = ring_bounds[order]
    done = 0
    while done < len(order):
        # Rings whose bound reaches the best joint score yet (direction +1's decides; see above), the first
        # few alone: with a pattern, its rings come first and the rest is skipped at once.
        count = block
        if bounds is not None:
            count = int(min(block if done else 16, np.count_nonzero(bounds[done:] >= best[1][0])))
        if count == 0:
            break
        k_indices = np.sort(order[done:done + count])
        done += count
        polar = grid.sampler(slice(None), k_indices)
        # Real orientations deviate from π/A by up to a degree or two: let each one float in the joint sum.
        tolerant = [_circular_maximum(polar(maps[a]), grid.spread) for a in range(angles)]
        del polar
        for direction in (1, -1):
            score = tolerant[0].copy()
            for a in range(1, angles):
                score += np.roll(tolerant[a], -direction * a * grid.steps, axis=1)
            candidate = _best_in(score, k_indices)
            if _better(candidate, best[direction]):
                best[direction] = candidate
    return best


def _ring_bounds(ring_maxima: list[np.ndarray], grid: _PolarGrid) -> np.ndarray:
    """Upper bound of the joint score at each spacing of ``grid`` from each map's largest value per radius bin.

    A polar sample at spacing k is a bilinear mix of pixels at most √2 pixels further in or out, one more at
    the map's edge (clipped): radius bins within ±3 of k·min(2Y, 2X) hold them all.
    """
    my, mx = grid.shape
    centre = np.round(grid.k_values * min(my, mx)).astype(np.intp)
    total = np.zeros(len(grid.k_values))
    for largest in ring_maxima:
        padded = np.concatenate([np.full(3, np.inf, np.float32), largest, np.full(4, np.inf, np.float32)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, 7)
        total += windows[np.clip(centre, 0, len(largest) - 1)].max(axis=1)
    # A bilinear mix can round one float32 step above its largest pixel, and the scores are sums of three.
    return total * (1 + 1e-5)


def _coarse_wave_vectors(maps: np.ndarray, k_range: tuple[float, float], prior: PatternPrior | None,
                         angles: int, ring_maxima: list[np.ndarray] | None = None,
                         ) -> tuple[list[tuple[float, float]], list[float]]:
    """Joint search over base angle and spacing; returns per-orientation ``(θ, |k|)`` and peak contrast.

    ``maps`` are the correlation maps' rows ky ≥ 0 and Nyquist row (:func:`_centred_power_map`);
    ``ring_maxima``, each map's largest value per radius bin (:meth:`_RadialBins.normalize`), let the search
    skip the spacings that cannot hold the answer.
    """
    _, half_rows, mx = maps.shape
    my = 2 * (half_rows - 1)
    k_step = 0.5 / max(my, mx)
    k_values = np.arange(k_range[0], k_range[1] + k_step, k_step)
    steps_per_orientation = max(8, int(math.ceil(math.pi / angles * k_range[1] * max(my, mx) * 2)))
    n_theta = angles * steps_per_orientation
    thetas = np.arange(n_theta) * math.pi / n_theta
    theta_step = math.pi / n_theta
    tolerance = prior.angle_window_rad if prior and prior.angles_rad else math.radians(1.5)
    spread = max(1, int(round(tolerance / theta_step)))
    window_theta = np.arange(-spread, spread + 1)
    grid = _PolarGrid((my, mx), k_values, n_theta, steps_per_orientation, spread)

    if prior and prior.angles_rad:
        given = list(prior.angles_rad)
        if len(given) == 1:
            given = [given[0] + a * math.pi / angles for a in range(angles)]
        if len(given) != angles:
            raise InputError(f"the prior gives {len(given)} angles for {angles} orientations: give one "
                             "angle per orientation or a single base angle")
        centres = [int(round((g % math.pi) / theta_step)) % n_theta for g in given]
        # Real orientations deviate from π/A by up to a degree or two: let each one float in the joint sum.
        score = sum(grid.sampler((c + window_theta) % n_theta, slice(None))(maps[a]).max(axis=1)
                    for a, c in enumerate(centres))
        k_index = int(np.argmax(score))
    else:
        best = _joint_best(maps, grid, _ring_bounds(ring_maxima, grid) if ring_maxima else None)
        direction = -1 if best[-1][0] > best[1][0] else 1
        _, base, k_index = best[direction]
        centres = [(base + direction * a * steps_per_orientation) % n_theta for a in range(angles)]

    results, contrasts = [], []
    k_spread = max(2, int(round(0.03 * k_values[k_index] / k_step)))
    k_idx = np.arange(max(0, k_index - k_spread), min(len(k_values), k_index + k_spread + 1))
    for a, centre in enumerate(centres):
        theta_idx = (centre + window_theta) % n_theta
        window = grid.sampler(theta_idx, k_idx)(maps[a]).T  # (θ, k), as the ties of argmax were broken before
        it, ik = np.unravel_index(np.argmax(window), window.shape)
        results.append((float(thetas[theta_idx[it]]), float(k_values[k_idx[ik]])))
        contrasts.append(float(window[it, ik]))
    return results, contrasts


@dataclass(frozen=True)
class _BandOverlap:
    """Where the +1 band and the widefield band shifted by ``k`` overlap, with what the regression needs there."""

    rows: np.ndarray
    cols: np.ndarray
    otf_shifted: np.ndarray   # OTF at k − k_pattern: the +1 band's own transfer, weighting the reference's
    reference: np.ndarray     # widefield spectrum shifted by k_pattern, times the OTF at k (the +1 band's weight)
    denominator: float


def _band_overlap(widefield: np.ndarray, k_per_pixel: np.ndarray, otf: OTF, pixel_size_nm: float,
                  noise_power: float | None, skip_axes: bool = False) -> _BandOverlap:
    """The overlap and reference of Gustafsson's regression for one wave vector (see :func:`_regress_amplitudes`),
    in double precision from the tapered widefield image (float64).

    ``skip_axes`` leaves out the lines where the widefield's kx = 0 and ky = 0 axes land: a camera's
    row and column offsets put power there that no band ±1 has, and in the thin overlap crescent near
    the OTF edge it would dilute the regression and pull the modulation down (measured: −0.3 on
    average with 1-ADU row/column noise at 50 photons).
    """
    ny, nx = widefield.shape
    pixel_um = pixel_size_nm / 1000.0
    k_per_um = np.asarray(k_per_pixel, dtype=float) / pixel_um
    ramp_y = np.exp(2j * np.pi * k_per_pixel[0] * (np.arange(ny) - ny // 2))
    ramp_x = np.exp(2j * np.pi * k_per_pixel[1] * (np.arange(nx) - nx // 2))
    shifted = widefield * ramp_y[:, None]
    shifted *= ramp_x[None, :]
    shifted = scipy_fft.fft2(shifted, workers=_fft_workers(), overwrite_x=True)
    ky, kx = frequency_grid((ny, nx), pixel_size_nm)
    cutoff = otf.cutoff_per_um
    # The overlap lies inside the cut-off circle: only the rows and columns that cross it are looked at.
    disc_rows, disc_cols = np.flatnonzero(np.abs(ky[:, 0]) < cutoff), np.flatnonzero(np.abs(kx[0]) < cutoff)
    ky, kx = ky[disc_rows], kx[:, disc_cols]
    k_abs = np.hypot(ky, kx)
    k_shifted = np.hypot(ky - k_per_um[0], kx - k_per_um[1])
    # |k| small is where unequal phase steps leak the huge zero-order band: keep out.
    overlap = (k_abs < cutoff) & (k_shifted < cutoff) & (k_abs > 0.15 * cutoff)
    if skip_axes:
        step = 1.5 / (min(ny, nx) * pixel_um)
        overlap &= (np.abs(ky - k_per_um[0]) > step) & (np.abs(kx - k_per_um[1]) > step)
    sub_rows, sub_cols = np.nonzero(overlap)
    if sub_rows.size < 8:
        raise EstimationError("the pattern frequency lies beyond twice the OTF cut-off: no band "
                              "overlap to measure phases on; check --na, --wavelength-nm and --pixel-size-nm")
    rows, cols = disc_rows[sub_rows], disc_cols[sub_cols]
    ky, kx = ky[sub_rows, 0], kx[0, sub_cols]
    # The OTF rounded to single precision, as OTF.on_grid gives it.
    otf_here = np.asarray(otf(ky, kx), dtype=np.float32)
    otf_shifted = np.asarray(otf(ky - k_per_um[0], kx - k_per_um[1]), dtype=np.float32)
    reference = shifted[rows, cols] * otf_here
    reference_power = np.sum(np.abs(reference) ** 2)
    denominator = reference_power
    if noise_power is not None:
        denominator -= noise_power * np.sum(otf_here ** 2)
    return _BandOverlap(rows, cols, otf_shifted, reference, float(max(denominator, 1e-12 * reference_power)))


def _regress_amplitudes(modulated: np.ndarray, overlap: _BandOverlap) -> np.ndarray:
    """Complex amplitudes ``(m/2) e^{iφ}`` of spectra holding the +k band, given at the overlap ``(N, n)``: ``(N,)``.

    Gustafsson's regression of each spectrum onto the widefield spectrum shifted by ``k``, both
    weighted by the OTF at the other band's position so that they share one transfer function.
    """
    return ((modulated * overlap.otf_shifted) @ np.conj(overlap.reference)) / overlap.denominator


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
    pixel_um = pixel_size_nm / 1000.0
    cutoff_per_pixel = otf.cutoff_per_um * pixel_um
    stuck = stuck_pixels(raw)
    half_spectra, disc_spectra, widefield, bg = _tapered_spectra(raw, stuck, background, otf, pixel_size_nm)
    angles, phases, ny, nx = (*half_spectra.shape[:2], *widefield.shape)
    if phases < 3:
        raise InputError(f"{phases} phases per orientation cannot separate the 3 bands: need ≥ 3")
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
    widefield_spectrum = scipy_fft.fft2(widefield, workers=_fft_workers())
    ky, kx = frequency_grid((ny, nx), pixel_size_nm)
    outside = np.hypot(ky, kx) > 1.15 * otf.cutoff_per_um
    stripes = fixed_pattern_stripes(widefield_spectrum, outside)
    if stripes:  # the regression leaves the axes out (see _band_overlap): so must the noise floor
        outside = outside & (ky != 0) & (kx != 0)
    noise_power = float(np.mean(np.abs(widefield_spectrum[outside]) ** 2)) if outside.mean() > 0.01 else None
    del outside
    spectra = _Spectra(widefield_spectrum.astype(np.complex64), otf, pixel_size_nm)
    widefield_spectrum = spectra.widefield_spectrum

    otf_weight = spectra.otf_here * (spectra.k_abs < otf.cutoff_per_um)
    # A real image filtered by a real, even weight stays real: half the inverse transform, and a real factor.
    half = nx // 2 + 1
    widefield_filtered = scipy_fft.irfft2(widefield_spectrum[:, :half] * otf_weight[:, :half], s=(ny, nx),
                                          workers=_fft_workers())
    band_weights = np.exp(-2j * np.pi * np.arange(phases) / phases) / phases
    # The search reads the rings of k_range only (bilinear: ±1.5 map pixels); the figure wants every ring.
    ring_size = min(2 * ny, 2 * nx)
    bins = _RadialBins((2 * ny, 2 * nx), None if diagnostics is not None else
                       (int(k_range[0] * ring_size) - 3, int(math.ceil(k_range[1] * ring_size)) + 3))
    maps = np.empty((angles, ny + 1, 2 * nx), dtype=np.float32)  # rows ky ≥ 0 and the Nyquist row
    products, ring_maxima = [], []  # kept for the pattern's sign (_pattern_sign) and the search's pruning
    for a in range(angles):
        product = _full_band(half_spectra[a], band_weights, nx, out=spectra.work[0])
        product *= otf_weight
        product = spectra.ifft2(product, in_place=True)
        product *= widefield_filtered
        products.append(product.copy())
        ring_maxima.append(bins.normalize(_centred_power_map(product, spectra, out=maps[a]))[1])
    del bins, product, otf_weight, widefield_filtered

    coarse, contrasts = _coarse_wave_vectors(maps, k_range, prior, angles, ring_maxima)
    if diagnostics is None:
        del maps

    orientations, step_deviation = [], []
    for a, (theta, k_len) in enumerate(coarse):
        start = np.array([k_len * math.sin(theta), k_len * math.cos(theta)])
        start *= _pattern_sign(products[a], start)
        products[a] = None
        k_vec = _refine_wave_vector(_full_band(half_spectra[a], band_weights, nx)[spectra.support], spectra, start)
        angle = math.atan2(k_vec[0], k_vec[1])
        if not 0 <= angle < math.pi:
            k_vec = -k_vec
            angle = math.atan2(k_vec[0], k_vec[1]) % math.pi
        overlap = _band_overlap(widefield, k_vec, otf, pixel_size_nm, noise_power, stripes)
        frames_at_overlap = _half_to_full_gather(disc_spectra.values[a], overlap.rows, overlap.cols, (ny, nx),
                                                 disc_spectra.row_position)
        phases_rad, modulation, deviation = _phases_and_modulation(frames_at_overlap, overlap, phase_steps)
        orientations.append(Orientation(angle, pixel_size_nm / float(np.hypot(*k_vec)),
                                        phases_rad, modulation))
        step_deviation.append(deviation)

    orientations, substituted = bound_modulations(orientations, prior)
    if diagnostics is not None:
        diagnostics["substituted"] = substituted
        diagnostics["correlation_maps"] = np.stack([_full_map(half) for half in maps])
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


def _phases_and_modulation(spectra: np.ndarray, overlap: _BandOverlap, phase_steps: str,
                           ) -> tuple[tuple[float, ...], float, list[float]]:
    """Phase of each frame and modulation of one orientation; also each frame's deviation from equal steps.

    ``spectra`` ``(P, n)`` are the orientation's frame spectra at the band overlap. Equal-step model:
    the +1 band separated with steps of 2π/P is regressed as a whole. Per-frame model: each frame minus
    the orientation's mean is regressed, giving ``a_p − ā``; all frames share one modulation, so the
    ``a_p`` lie on a circle around 0 and ``−ā`` is the centre of the circle through the estimates.
    """
    phases = spectra.shape[0]
    steps = 2 * np.pi * np.arange(phases) / phases
    best = None
    for direction in (1, -1):
        band_plus = np.tensordot(np.exp(-1j * direction * steps), spectra, axes=(0, 0))[None] / phases
        common = _regress_amplitudes(band_plus, overlap)[0]
        if best is None or abs(common) > abs(best[0]):
            best = (common, direction)
    common, direction = best
    equal_steps = np.angle(common) + direction * steps

    relative = _regress_amplitudes(spectra - spectra.mean(axis=0, keepdims=True), overlap)
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
