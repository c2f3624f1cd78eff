"""Generalized-Wiener SIM reconstruction on a 2× grid, in torch: any device, batched over time points.

Gustafsson's reconstruction (J. Microsc. 198, 82, 2000) as fairSIM implements it (Müller et al.,
Nat. Commun. 7, 10980, 2016): separate the bands of each orientation by inverting the phase matrix,
move each side band to its place in a 2× larger spectrum, and combine them with the generalized
Wiener filter ``Σ_j H_j* D_j / (Σ_j |H_j|² + w²)`` times an apodization to the extended support.

The output is real, so only the half of its spectrum that an inverse real transform reads is assembled,
each side band together with its mirrored conjugate (the −1 band); the frame corrections, the band
separation and the mirrored margin are one matrix product over the raw frames and a list of margin pixels.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from microsr.device import resolve_device
from microsr.errors import InputError
from microsr.optics import OTF, circular_pupil_otf_profile
from microsr.sim.parameters import SIMParameters
from microsr.sim.pattern import illumination_stack

APODIZATIONS = ("otf", "cosine", "none")


def _margin_taper(shape: tuple[int, int], margin_px: int) -> np.ndarray:
    """1 inside, a raised cosine from 1 to 0 across the outer ``margin_px`` pixels of each side."""
    def taper(n: int) -> np.ndarray:
        window = np.ones(n)
        if margin_px:
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(margin_px) + 0.5) / margin_px)
            window[:margin_px], window[n - margin_px:] = ramp, ramp[::-1]
        return window
    return np.outer(taper(shape[0]), taper(shape[1]))


def _mirrored_source(n: int, border_px: int, pad: int) -> np.ndarray:
    """For each of ``n + 2·border`` padded positions, the position in ``[0, n)`` that _prepare()'s padding copies:
    a mirror (the edge not repeated) up to ``pad`` pixels out, the outermost one beyond."""
    position = np.clip(np.arange(n + 2 * border_px) - border_px, -pad, n - 1 + pad)
    return np.where(position < 0, -position, np.where(position > n - 1, 2 * (n - 1) - position, position))


#: Largest correction of one frame's brightness by :func:`equalize_frame_means` (factor and its inverse):
#: lasers fluctuate by a few %, bleaching over one set takes a few % more; a frame far outside is no
#: fluctuation (a shutter, a dropped frame) and is left as it is rather than amplified.
MAX_FRAME_CORRECTION = 1.5


def _smooth(n: int) -> bool:
    """Whether ``n`` has no prime factor above 7: the sizes pocketfft transforms fastest."""
    for prime in (2, 3, 5, 7):
        while n % prime == 0:
            n //= prime
    return n == 1


def fast_border(shape: tuple[int, ...], minimum_px: int) -> int:
    """The narrowest margin of at least ``minimum_px`` that makes every padded side a 7-smooth length.

    The margin only has to be wide enough to fade the wrap-around edge; a few more pixels that make the
    transform size a product of small primes cost less than the transform of an awkward size: 512 px
    frames padded by 20 px are 552 = 2³·3·23 px (an FFT ~1.7× slower than at 576 = 2⁶·3²).

    Examples
    --------
    >>> fast_border((512, 512), 20), fast_border((256, 256), 10)
    (24, 12)
    """
    for border in range(minimum_px, minimum_px + 64):
        if all(_smooth(n + 2 * border) for n in shape):
            return border
    return minimum_px


def equalize_frame_means(frames):
    """Background-free frames ``(..., P, Y, X)`` (NumPy or torch) scaled so that every phase of an orientation
    has the orientation's mean brightness.

    With equal phase steps the pattern averages out over a field of many periods, so the phases of
    one orientation differ in mean only by the laser: excitation fluctuation and bleaching. What is
    left of the specimen's own pattern-frequency content in a frame mean is one Fourier coefficient
    of a field of many thousand. SIMcheck reports these differences; fairSIM and the rDL reference
    code also correct orientations as a whole (``equalize_orientations``).

    Examples
    --------
    >>> frames = np.ones((3, 3, 8, 8)); frames[0, 1] *= 1.1
    >>> [round(float(m), 3) for m in equalize_frame_means(frames)[0].mean(axis=(1, 2))]
    [1.033, 1.033, 1.033]
    """
    is_torch = isinstance(frames, torch.Tensor)
    means = frames.mean(dim=(-2, -1), keepdim=True) if is_torch else frames.mean(axis=(-2, -1), keepdims=True)
    target = means.mean(dim=-3, keepdim=True) if is_torch else means.mean(axis=-3, keepdims=True)
    positive = (means > 0) & (target > 0)
    ratio = target / (means.clamp_min(1e-12) if is_torch else np.maximum(means, 1e-12))
    usable = positive & (ratio <= MAX_FRAME_CORRECTION) & (ratio >= 1 / MAX_FRAME_CORRECTION)
    factor = torch.where(usable, ratio, torch.ones_like(ratio)) if is_torch else np.where(usable, ratio, 1.0)
    return frames * factor


def band_separation_matrix(phases_rad: tuple[float, ...]) -> np.ndarray:
    """Least-squares inverse ``(3, P)`` of the phase matrix ``[1, e^{iφ_p}, e^{-iφ_p}]``.

    Works for 3 phases (exact inverse) and for 5 (least squares), equal steps or not.
    """
    phases = np.asarray(phases_rad, dtype=float)
    mixing = np.stack([np.ones_like(phases), np.exp(1j * phases), np.exp(-1j * phases)], axis=1)
    if np.linalg.cond(mixing) > 1e6:
        raise InputError(f"phases {np.round(phases, 3).tolist()} rad do not separate the bands "
                         "(two phases coincide): check the parameter file")
    return np.linalg.pinv(mixing)


def apodization_filter(k_abs: np.ndarray, support_per_um: float, kind: str = "otf",
                       bend: float = 1.0) -> np.ndarray:
    """Apodization to the extended SIM support: keeps ringing down where the Wiener filter is flat."""
    rho = k_abs / support_per_um
    if kind == "otf":
        return circular_pupil_otf_profile(rho) ** bend * (rho < 1)
    if kind == "cosine":
        return np.cos(0.5 * np.pi * np.clip(rho, 0, 1)) ** bend
    if kind == "none":
        return (rho < 1).astype(float)
    raise InputError(f"unknown apodization {kind!r}: use one of {', '.join(APODIZATIONS)}")


@dataclass(frozen=True)
class ReconstructionSettings:
    """Knobs of the Wiener reconstruction.

    ``wiener_weight`` is ``w`` in ``Σ|H|² + w²`` (larger: less noise, less resolution);
    ``apodization_cutoff`` scales the extended support ``k_c + |k|``; ``background`` is subtracted
    from every raw frame (camera offset); ``clip_negative`` sets negative output pixels to 0.
    ``border_px`` is the width of the mirrored margin added around the frames before the Fourier
    transforms (None: 4 % of the frame, at least 8 px): the FFT's wrap-around edge is faded out in
    that margin, so the field itself keeps its structure and background up to its border.
    ``equalize_frames`` scales each frame to its orientation's mean brightness before band separation
    (:func:`equalize_frame_means`): a laser that fluctuates or bleaches between phases otherwise leaks
    the widefield band into the shifted ones, a peak at the pattern frequency (stripes).
    """

    wiener_weight: float = 0.05
    apodization: str = "otf"
    apodization_cutoff: float = 1.0
    apodization_bend: float = 1.0
    background: float = 0.0
    equalize_orientations: bool = True
    equalize_frames: bool = True
    clip_negative: bool = True
    border_px: int | None = None


class WienerReconstructor:
    """Filters and band shifts for one geometry, built once; call it on batches of raw frame sets.

    Even padded frames (the usual case) take the half-plane path; odd ones the full plane, which gives the
    same image to float rounding (``HALF_PLANE = False`` forces it: the tests compare the two).

    Parameters
    ----------
    params : SIMParameters
        Pattern parameters (from :func:`microsr.sim.estimate.estimate_parameters` or a file).
    shape : (int, int)
        Raw frame size (Y, X); the output is ``(2Y, 2X)``.
    pixel_size_nm : float
        Raw pixel size; the output's is half of it.
    otf : OTF
        Detection OTF.
    settings : ReconstructionSettings
    device : str or torch.device
        ``auto``, ``cpu`` or ``cuda``.

    Examples
    --------
    >>> from microsr.synthetic.sim_raw import simulate_sim
    >>> from microsr.optics import ideal_otf
    >>> data = simulate_sim(shape=(64, 64), seed=0)
    >>> otf = ideal_otf(1.35, 525, camera_pixel_nm=62.6)
    >>> recon = WienerReconstructor(data.params, (64, 64), 62.6, otf,
    ...                             ReconstructionSettings(background=102.0))
    >>> recon(data.raw).shape
    torch.Size([1, 128, 128])
    """

    HALF_PLANE = True

    def __init__(self, params: SIMParameters, shape: tuple[int, int], pixel_size_nm: float, otf: OTF,
                 settings: ReconstructionSettings = ReconstructionSettings(),
                 device: str | torch.device = "auto"):
        self.params = params
        self.shape = tuple(int(s) for s in shape)
        self.pixel_size_nm = float(pixel_size_nm)
        self.settings = settings
        self.device = resolve_device(device)
        if settings.apodization not in APODIZATIONS:
            raise InputError(f"unknown apodization {settings.apodization!r}: use one of "
                             f"{', '.join(APODIZATIONS)}")
        # Filters are built for the frames with their mirrored margin; the output is cropped back.
        self.border_px = (fast_border(self.shape, max(8, int(round(0.04 * max(self.shape)))))
                          if settings.border_px is None else int(settings.border_px))
        ny, nx = (s + 2 * self.border_px for s in self.shape)
        angles = params.angles
        pixel_um = pixel_size_nm / 1000.0

        separation = np.stack([band_separation_matrix(o.phases_rad) for o in params.orientations])
        zero_band = separation[:, 0, :].real  # real for any phases: the ±1 columns are conjugates
        plus_band = separation[:, 1, :]

        # Spectra below are centred (fftshift order). The 2× grid shares the raw grid's frequency step.
        ky_sr = (np.arange(2 * ny) - ny)[:, None] / (ny * pixel_um)
        kx_sr = (np.arange(2 * nx) - nx)[None, :] / (nx * pixel_um)
        k_vectors = [np.array(o.wave_vector_per_pixel(pixel_size_nm)) for o in params.orientations]
        denominator = angles * otf(ky_sr, kx_sr) ** 2 + settings.wiener_weight ** 2
        for o, k in zip(params.orientations, k_vectors):
            k_um = k / pixel_um
            for sign in (1, -1):
                denominator += (o.modulation / 2) ** 2 * otf(ky_sr + sign * k_um[0], kx_sr + sign * k_um[1]) ** 2
        largest_k = max(o.k_cycles_per_um for o in params.orientations)
        support = settings.apodization_cutoff * (otf.cutoff_per_um + largest_k)
        apodization = apodization_filter(np.hypot(ky_sr, kx_sr), support, settings.apodization,
                                          settings.apodization_bend)
        common = apodization / denominator

        centre = (slice(ny - ny // 2, ny - ny // 2 + ny), slice(nx - nx // 2, nx - nx // 2 + nx))
        zero_weight = (otf(ky_sr, kx_sr) * common)[centre]
        y = np.arange(ny)[:, None]
        x = np.arange(nx)[None, :]
        centre_px = np.array([ny // 2, nx // 2])
        plus_weights, ramps, offsets = [], [], []
        for o, k in zip(params.orientations, k_vectors):
            k_um = k / pixel_um
            whole = np.round(k * np.array([ny, nx])).astype(int)  # integer part of the shift, spectral px
            if np.any(np.abs(whole) > np.array([ny, nx]) // 2):
                raise InputError(f"pattern frequency {o.k_cycles_per_um:.2f} cycles/µm lies beyond the "
                                 "raw Nyquist frequency: check --pixel-size-nm and the parameters")
            residual = k - whole / np.array([ny, nx])
            # The sub-pixel part of the shift is a phase ramp on the raw grid; the constant phase moves
            # the pattern's phase reference to the centre pixel, as the parameters define it.
            ramps.append(np.exp(-2j * np.pi * (residual[0] * y + residual[1] * x)
                                + 2j * np.pi * float(k @ centre_px)))
            offset = (ny - ny // 2 - whole[0], nx - nx // 2 - whole[1])
            offsets.append(offset)
            band_otf = (o.modulation / 2) * otf(ky_sr + k_um[0], kx_sr + k_um[1])
            # The -1 band is the mirrored conjugate of the +1 band: its share is the real part, hence 2×.
            plus_weights.append(2 * (band_otf * common)[offset[0]:offset[0] + ny, offset[1]:offset[1] + nx])

        to = dict(device=self.device)
        # Band separation of all orientations as one matrix product over the frames (one pass over them):
        # row 0 the widefield band of all orientations together, then the real and the imaginary part of
        # each orientation's +1 band.
        a, p = angles, params.phases
        separate = np.zeros((1 + 2 * a, a * p))
        separate[0] = zero_band.reshape(-1)
        for index in range(a):
            separate[1 + index, index * p:(index + 1) * p] = plus_band[index].real
            separate[1 + a + index, index * p:(index + 1) * p] = plus_band[index].imag
        # On even grids a checkerboard sign (-1)^(y+x) before a transform centres its spectrum, and after the
        # inverse transform it undoes the centring: fftshift's copies of every spectrum are never made.
        self._centred_by_sign = ny % 2 == 0 and nx % 2 == 0
        sign = np.where((y + x) % 2 == 0, 1.0, -1.0) if self._centred_by_sign else np.ones((ny, nx))
        self._sign = torch.as_tensor(sign, dtype=torch.float32, **to)
        self._ramps = torch.as_tensor(np.stack(ramps) * sign, dtype=torch.complex64, **to)
        self._offsets = offsets
        out_y, out_x = np.arange(2 * self.shape[0])[:, None], np.arange(2 * self.shape[1])[None, :]
        self._output_sign = torch.as_tensor(np.where((out_y + out_x) % 2 == 0, 4.0, -4.0), dtype=torch.float32, **to)
        # The margin continues each frame with its own pattern: the orientation's mirrored mean image times
        # the illumination of that frame, so band separation sees no seam at the field's border (a raw
        # frame mirrored as it is would reverse the pattern there and leave a ripple along every edge).
        border = self.border_px
        # The pattern's contrast in a raw frame is its modulation times the OTF at its frequency: that of
        # the specimen's smooth content, which is what the mirrored margin mostly holds.
        seen = SIMParameters([dataclasses.replace(o, modulation=o.modulation * float(otf(0.0, o.k_cycles_per_um)))
                              for o in params.orientations])
        patterns = (illumination_stack((ny, nx), pixel_size_nm, seen,
                                       (self.shape[0] // 2 + border, self.shape[1] // 2 + border)) if border else None)
        # The half-plane path (see _reconstruct_half_plane) needs the sign's centring and every side band away
        # from the spectrum's first row and column, where its mirror would wrap around; else the full plane.
        self._half_plane = (self.HALF_PLANE and self._centred_by_sign
                            and all(oy > 0 and ox > 0 for oy, ox in offsets))
        if self._half_plane:
            self._set_up_half_plane(separate, zero_weight, np.stack(plus_weights), patterns)
        else:
            self._separate = torch.as_tensor(separate, dtype=torch.float32, **to)
            self._zero_weight = torch.as_tensor(zero_weight, dtype=torch.float32, **to)
            self._plus_weights = torch.as_tensor(np.stack(plus_weights), dtype=torch.float32, **to)
            self._taper = torch.as_tensor(_margin_taper((ny, nx), border), dtype=torch.float32, **to)
            self._patterns = torch.as_tensor(patterns, dtype=torch.float32, **to) if border else None
            self._centre = centre

    def _set_up_half_plane(self, separate: np.ndarray, zero_weight: np.ndarray, plus_weights: np.ndarray,
                           patterns: np.ndarray | None) -> None:
        """What the half-plane path adds to the set-up: the margin as a list of pixels with their sources and
        band patterns, the zero band's weights on half a spectrum, the side bands' for the mirrored form."""
        a, p = self.params.angles, self.params.phases
        y, x = self.shape
        b = self.border_px
        ny, nx = y + 2 * b, x + 2 * b
        to = dict(dtype=torch.float32, device=self.device)
        # Rows of the one matrix product over the raw frames: the bands, then each orientation's mean image
        # (the margin continues it).
        self._separate_raw = np.concatenate([separate, np.kron(np.eye(a), np.full((1, p), 1.0 / p))])
        if b:
            # A margin frame is its orientation's mirrored mean image times the frame's illumination, so in the
            # margin a band is that mean image times the same combination of the illuminations, faded to the
            # band's mean by the taper (_prepare() fades each frame to its own mean).
            inside = np.zeros((ny, nx), bool)
            inside[b:b + y, b:b + x] = True
            margin = np.flatnonzero(~inside)
            pad = min(b, y - 1, x - 1)  # as _prepare() mirrors: one width for both axes
            source_y, source_x = _mirrored_source(y, b, pad), _mirrored_source(x, b, pad)
            patterns = patterns.reshape(a, p, ny * nx)[:, :, margin].astype(np.float64)
            taper = _margin_taper((ny, nx), b).reshape(-1)[margin]
            zero_patterns = np.einsum("ap,apm->am", separate[0].reshape(a, p), patterns)
            # side band r (real parts, then imaginary) belongs to orientation r mod A alone
            plus_patterns = np.stack([np.einsum("p,pm->m", separate[1 + r].reshape(a, p)[r % a], patterns[r % a])
                                      for r in range(2 * a)])
            self._margin = torch.as_tensor(margin, device=self.device)
            self._margin_source = torch.as_tensor(source_y[margin // nx] * x + source_x[margin % nx],
                                                  device=self.device)
            self._margin_zero = torch.as_tensor(zero_patterns * taper, **to)
            self._margin_plus = torch.as_tensor(plus_patterns * taper, **to)
            self._margin_fade = torch.as_tensor(1.0 - taper, **to)
        # The zero band from its real transform: the left half of its centred spectrum. Its first row and column
        # (the raw grid's Nyquist frequency, ±N/2 at once) count half here and half at the mirrored place, as the
        # real part of the full-plane inverse transform shares them.
        half_weight = zero_weight[:, :nx // 2 + 1].copy()
        half_weight[0, :] *= 0.5
        half_weight[1:, 0] *= 0.5
        # The Nyquist row's other half lies at +N/2, inside the half spectrum too: the mirrored conjugate of that
        # row, which (the band's spectrum being Hermitian) is the same raw values under the x-mirrored weights.
        # The weights are not x-symmetric (the side bands' terms in the Wiener denominator are not).
        nyquist_row = 0.5 * zero_weight[0, nx - np.arange(1, nx // 2 + 1)]  # for the band's columns 1 … nx/2
        self._nyquist_row_weight = torch.as_tensor(nyquist_row, dtype=torch.complex64, device=self.device)
        # The weights are kept complex: a real factor of a complex product is converted on every call (a copy as
        # large as the bands: ~0.5 ms at 256², measured).
        complex_to = dict(dtype=torch.complex64, device=self.device)
        self._zero_weight_half = torch.as_tensor(half_weight, **complex_to)
        # H = Z + P + conj(mirror(P)): the 2× factor of the full plane's real part is split between the two.
        self._plus_weights_half = torch.as_tensor(plus_weights / 2, **complex_to)

    def _frame_gains(self, raw: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame gains ``(T, A·P)`` of _prepare()'s equalizations and the equalized frames' means, from the
        frame means alone (NumPy float64: a few numbers, each torch operation would cost more than its work)."""
        settings = self.settings
        means = raw.mean(dim=(3, 4)).cpu().numpy().astype(np.float64) - settings.background
        gains = np.ones_like(means)
        if settings.equalize_frames:
            nonzero = np.where(means == 0, 1.0, means)
            gains = np.where(means == 0, 1.0, equalize_frame_means(means[..., None, None])[..., 0, 0] / nonzero)
        equalized = means * gains
        if settings.equalize_orientations:
            orientation_mean = equalized.mean(axis=2, keepdims=True)
            factor = orientation_mean.mean(axis=1, keepdims=True) / np.maximum(orientation_mean, 1e-6)
            gains, equalized = gains * factor, equalized * factor
        return gains.reshape(len(means), -1), equalized.reshape(len(means), -1)

    def _reconstruct_half_plane(self, raw: torch.Tensor) -> torch.Tensor:
        """The reconstruction with the fewest passes over memory; equal to the full-plane one to float rounding.

        The frames' background, brightness equalization and the margin's fade are per-frame affine maps, so
        they fold into one matrix product over the raw frames (band separation included); the margin is
        filled from a list of its pixels; the output, a real image, comes from the half of its spectrum that an
        inverse real transform reads (half the largest transform of the full-plane path).
        """
        batch, a, p = raw.shape[:3]
        y, x = self.shape
        b = self.border_px
        ny, nx = y + 2 * b, x + 2 * b
        rows = 1 + 2 * a
        gains, equalized = self._frame_gains(raw)
        matrix = self._separate_raw[None] * gains[:, None, :]                 # (T, rows + A, frames)
        offset = matrix.sum(axis=2) * self.settings.background              # what the background adds
        band_means = equalized @ self._separate_raw[:rows].T                 # (T, rows): what the margin fades to
        to = dict(dtype=torch.float32, device=self.device)
        separated = torch.bmm(torch.as_tensor(matrix, **to), raw.reshape(batch, a * p, y * x))
        separated = separated.view(batch, -1, y, x)
        offset = torch.as_tensor(offset, **to)[..., None, None]
        # The side bands are written straight into the real and imaginary parts of one complex array.
        zero_band = torch.empty((batch, 1, ny, nx), **to)
        plus = torch.empty((batch, a, ny, nx), dtype=torch.complex64, device=self.device)
        parts = torch.view_as_real(plus)
        inner = (slice(None), slice(None), slice(b, b + y), slice(b, b + x))
        torch.sub(separated[:, :1], offset[:, :1], out=zero_band[inner])
        torch.sub(separated[:, 1:1 + a], offset[:, 1:1 + a], out=parts[..., 0][inner])
        torch.sub(separated[:, 1 + a:rows], offset[:, 1 + a:rows], out=parts[..., 1][inner])
        if b:
            # gather, not index_select: the latter is ~20× slower along a last dimension (torch 2.13, CPU)
            means = separated[:, rows:].reshape(batch, a, y * x)
            means = torch.gather(means, 2, self._margin_source.expand(batch, a, -1))
            means.sub_(offset[:, rows:, :, 0])                                # (T, A, margin pixels)
            fade = torch.as_tensor(band_means, **to)[..., None]
            zero_margin = (means * self._margin_zero).sum(dim=1).addcmul_(fade[:, 0], self._margin_fade)
            plus_margin = means.repeat(1, 2, 1).mul_(self._margin_plus).addcmul_(fade[:, 1:], self._margin_fade)
            zero_band.view(batch, ny * nx).index_copy_(1, self._margin, zero_margin)
            flat = parts.view(batch, a, ny * nx, 2)
            flat[..., 0].index_copy_(2, self._margin, plus_margin[:, :a])
            flat[..., 1].index_copy_(2, self._margin, plus_margin[:, a:])
        zero = torch.fft.rfft2(zero_band[:, 0] * self._sign)                    # (T, ny, nx/2 + 1)
        plus = torch.fft.fft2(plus.mul_(self._ramps)).mul_(self._plus_weights_half)  # (T, A, ny, nx)
        half = torch.zeros((batch, 2 * ny, nx + 1), dtype=torch.complex64, device=self.device)
        top, left = ny - ny // 2, nx - nx // 2
        torch.mul(zero, self._zero_weight_half, out=half[:, top:top + ny, left:nx + 1])
        torch.mul(zero[:, 0, 1:], self._nyquist_row_weight, out=half[:, top + ny, left + 1:])  # its other half
        for index, (oy, ox) in enumerate(self._offsets):
            band = plus[:, index]
            half[:, oy:oy + ny, ox:] += band[..., :nx + 1 - ox]
            # the mirrored conjugate: position (-r, -c) of the 2× grid, read from the band's last ox columns
            half[:, ny + 1 - oy:2 * ny + 1 - oy, nx + 1 - ox:] += band[..., nx - ox:].flip((-2, -1)).conj()
        image = torch.fft.irfft2(half, s=(2 * ny, 2 * nx))
        image = image[:, 2 * b:2 * b + 2 * y, 2 * b:2 * b + 2 * x] * self._output_sign
        if self.settings.clip_negative:
            image.clamp_min_(0)
        return image

    def _centred(self, spectrum: torch.Tensor) -> torch.Tensor:
        """The spectrum of a band in centred order (the sign already did it on an even grid)."""
        return spectrum if self._centred_by_sign else torch.fft.fftshift(spectrum, dim=(-2, -1))

    @property
    def output_pixel_size_nm(self) -> float:
        return self.pixel_size_nm / 2

    def _prepare(self, raw: torch.Tensor) -> torch.Tensor:
        """Subtract the background, equalize orientations, mirror a margin around each frame and fade it
        to the frame's mean (the field itself is left as it is)."""
        frames = raw - self.settings.background
        if self.settings.equalize_frames:
            frames = equalize_frame_means(frames)
        if self.settings.equalize_orientations:
            orientation_mean = frames.mean(dim=(2, 3, 4), keepdim=True)
            frames = frames * (orientation_mean.mean(dim=1, keepdim=True)
                               / orientation_mean.clamp_min(1e-6))
        frame_mean = frames.mean(dim=(3, 4), keepdim=True)
        if self.border_px:
            t, a, p, ny, nx = frames.shape
            border, pad = self.border_px, min(self.border_px, ny - 1, nx - 1)
            mean_image = frames.mean(dim=2).reshape(t * a, 1, ny, nx)
            mean_image = torch.nn.functional.pad(mean_image, (pad,) * 4, mode="reflect")
            mean_image = torch.nn.functional.pad(mean_image, (border - pad,) * 4, mode="replicate")
            extended = mean_image.reshape(t, a, 1, *mean_image.shape[-2:]) * self._patterns
            extended[..., border:border + ny, border:border + nx] = frames
            frames = extended
        return frame_mean + (frames - frame_mean) * self._taper

    def widefield(self, raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Widefield image ``(T, Y, X)``: the background-subtracted mean of all frames."""
        raw = self._as_batch(raw)
        return raw.mean(dim=(1, 2)) - self.settings.background

    def _as_batch(self, raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        raw = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw)
        if raw.ndim == 4:
            raw = raw[None]
        expected = (self.params.angles, self.params.phases, *self.shape)
        if raw.ndim != 5 or tuple(raw.shape[1:]) != expected:
            raise InputError(f"raw frames of shape {tuple(raw.shape)} do not fit the reconstruction "
                             f"(expected (T, {', '.join(map(str, expected))}))")
        return raw.to(device=self.device, dtype=torch.float32)

    @torch.no_grad()
    def __call__(self, raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(T, A, P, Y, X)`` (or one ``(A, P, Y, X)`` set) into ``(T, 2Y, 2X)`` float32."""
        if self._half_plane:
            return self._reconstruct_half_plane(self._as_batch(raw))
        frames = self._prepare(self._as_batch(raw))
        batch, angles = frames.shape[:2]
        ny, nx = frames.shape[-2:]
        # Real combinations only: no complex copy of all raw frames.
        bands = torch.matmul(self._separate, frames.reshape(batch, -1, ny * nx)).reshape(batch, -1, ny, nx)
        spectrum = torch.zeros((batch, 2 * ny, 2 * nx), dtype=torch.complex64, device=self.device)
        zero_spectrum = self._centred(torch.fft.fft2(bands[:, 0] * self._sign))
        spectrum[:, self._centre[0], self._centre[1]] += zero_spectrum * self._zero_weight
        plus_band = torch.complex(bands[:, 1:1 + angles], bands[:, 1 + angles:])
        plus_spectrum = self._centred(torch.fft.fft2(plus_band * self._ramps)) * self._plus_weights
        for a, (oy, ox) in enumerate(self._offsets):
            spectrum[:, oy:oy + ny, ox:ox + nx] += plus_spectrum[:, a]
        # Zero-padding the spectrum interpolates by 2; the 4 restores intensity (ifft divides by 4YX).
        if self._centred_by_sign:
            image = torch.fft.ifft2(spectrum).real
        else:
            image = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real
        margin = 2 * self.border_px
        image = image[:, margin:image.shape[-2] - margin, margin:image.shape[-1] - margin]
        # The centring sign on the 2x grid, (-1)^(y+x) as the margin is even, and the factor 4.
        image = image * (self._output_sign if self._centred_by_sign else 4.0)
        if self.settings.clip_negative:
            image = image.clamp_min(0)
        return image


def reconstruct(raw: np.ndarray, params: SIMParameters, pixel_size_nm: float, otf: OTF,
                settings: ReconstructionSettings = ReconstructionSettings(),
                device: str = "auto") -> np.ndarray:
    """Reconstruct raw SIM frames ``(A, P, Y, X)`` or ``(T, A, P, Y, X)``; returns ``(T, 2Y, 2X)``.

    A convenience wrapper around :class:`WienerReconstructor` for arrays that fit in memory. The filters it
    builds are kept for the last :data:`SETUP_CACHE_SIZE` set-ups (parameters, frame shape, pixel size, OTF,
    settings, device), so a loop over frame sets of one acquisition builds them once (256²: ~95 ms per call
    without, the cached reconstructor's ~6 ms with; measured on 2 idle cores).
    """
    key = _setup_key(params, raw.shape[-2:], pixel_size_nm, otf, settings, device)
    recon, _ = _SETUPS.pop(key, (None, None))
    if recon is None:
        recon = WienerReconstructor(params, raw.shape[-2:], pixel_size_nm, otf, settings, device)
    # Most recently used last; the OTF is kept beside its set-up, so its id cannot be reused while cached.
    _SETUPS[key] = (recon, otf)
    while len(_SETUPS) > SETUP_CACHE_SIZE:
        _SETUPS.popitem(last=False)
    return recon(raw).cpu().numpy()


#: How many Wiener set-ups :func:`reconstruct` keeps (each holds its filters: ~30 MB for 512² frames).
SETUP_CACHE_SIZE = 2
_SETUPS: OrderedDict = OrderedDict()


def _setup_key(params: SIMParameters, shape, pixel_size_nm: float, otf: OTF, settings: ReconstructionSettings,
               device: str) -> tuple:
    """What a Wiener set-up depends on. The OTF enters by identity (it may hold a measured profile that does not
    compare by value): the same OTF object reuses the set-up, another one of equal values builds its own."""
    orientations = tuple((float(o.angle_rad), float(o.spacing_nm), tuple(float(p) for p in o.phases_rad),
                          float(o.modulation)) for o in params.orientations)
    return orientations, tuple(int(s) for s in shape), float(pixel_size_nm), id(otf), repr(settings), str(device)
