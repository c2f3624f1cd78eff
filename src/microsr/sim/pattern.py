"""SIM illumination patterns and the forward model from a specimen to raw SIM frames."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import fft as scipy_fft

from microsr.optics import OTF, frequency_grid
from microsr.sim.parameters import Orientation, SIMParameters

# Rows of a fine-grid frame made at once: the pattern's double-precision products stay a few MB.
_ROW_BLOCK_PIXELS = 1 << 20


def pixel_positions_nm(n: int, pixel_size_nm: float, centre_index: float) -> np.ndarray:
    """Positions (nm) of ``n`` pixels relative to the pattern's phase reference ``centre_index``."""
    return (np.arange(n) - centre_index) * pixel_size_nm


def illumination(shape: tuple[int, int], pixel_size_nm: float, orientation: Orientation,
                 phase_rad: float, centre_index: tuple[float, float] | None = None) -> np.ndarray:
    """Illumination ``1 + m cos(2π k·(r − c) + φ)`` on a grid of ``pixel_size_nm``.

    ``centre_index`` is the phase reference ``c`` in this grid's pixels; by default the centre pixel
    ``(Y//2, X//2)``, the convention of :class:`~microsr.sim.parameters.Orientation`.
    """
    cos_y, sin_y, cos_x, sin_x = _pattern_factors(shape, pixel_size_nm, orientation, phase_rad, centre_index)
    return 1.0 + orientation.modulation * (cos_y[:, None] * cos_x[None, :] - sin_y[:, None] * sin_x[None, :])


def _pattern_factors(shape: tuple[int, int], pixel_size_nm: float, orientation: Orientation, phase_rad: float,
                     centre_index: tuple[float, float] | None) -> tuple[np.ndarray, ...]:
    """``cos``/``sin`` of the pattern's phase along y (with φ) and along x: a plane wave is separable,
    ``cos(a + b) = cos a cos b − sin a sin b``, so a frame costs two products instead of a cosine per pixel."""
    cy, cx = centre_index if centre_index is not None else (shape[0] // 2, shape[1] // 2)
    y = pixel_positions_nm(shape[0], pixel_size_nm, cy)
    x = pixel_positions_nm(shape[1], pixel_size_nm, cx)
    k = 1.0 / orientation.spacing_nm
    ky, kx = k * math.sin(orientation.angle_rad), k * math.cos(orientation.angle_rad)
    along_y = 2 * np.pi * ky * y + phase_rad
    along_x = 2 * np.pi * kx * x
    return np.cos(along_y), np.sin(along_y), np.cos(along_x), np.sin(along_x)


def illumination_stack(shape: tuple[int, int], pixel_size_nm: float, params: SIMParameters,
                       centre_index: tuple[float, float] | None = None) -> np.ndarray:
    """All patterns of an acquisition, ``(A, P, Y, X)`` float32, angle-major."""
    return np.stack([np.stack([illumination(shape, pixel_size_nm, o, p, centre_index)
                               for p in o.phases_rad]) for o in params.orientations]).astype(np.float32)


def equally_spaced_phases(phases: int, offset_rad: float = 0.0) -> tuple[float, ...]:
    """Phases ``offset + 2π p / P`` of a standard phase-stepped acquisition."""
    return tuple(float((offset_rad + 2 * np.pi * p / phases) % (2 * np.pi)) for p in range(phases))


def random_parameters(rng: np.random.Generator, *, angles: int = 3, phases: int = 3,
                      spacing_nm: float, modulation: float | Sequence[float] = 0.8, angle_rad: float | None = None,
                      phase_jitter_rad: float = 0.0) -> SIMParameters:
    """Pattern parameters with orientations ``π/A`` apart, a random base angle and random phases.

    ``modulation`` is one depth for all orientations or one per orientation (real instruments differ
    between orientations: polarization, beam alignment).
    """
    depths = [float(modulation)] * angles if np.ndim(modulation) == 0 else [float(m) for m in modulation]
    if len(depths) != angles:
        raise ValueError(f"{len(depths)} modulation depths for {angles} orientations: give one or one per orientation")
    base = rng.uniform(0, np.pi / angles) if angle_rad is None else angle_rad
    orientations = []
    for a, modulation in enumerate(depths):
        offset = rng.uniform(0, 2 * np.pi)
        steps = np.array(equally_spaced_phases(phases, offset)) + rng.normal(0, phase_jitter_rad, phases)
        orientations.append(Orientation(float((base + a * np.pi / angles) % np.pi), spacing_nm,
                                        tuple(float(p % (2 * np.pi)) for p in steps), modulation))
    return SIMParameters(orientations)


@dataclass(frozen=True)
class Camera:
    """Camera model: background photons, read noise (e⁻ rms), offset (ADU), gain 1 ADU/e⁻."""

    background_photons: float = 2.0
    read_noise_e: float = 1.5
    offset_adu: float = 100.0


def _fft_workers() -> int:
    """Threads of the FFTs: as many as torch was given (``--threads``): a busy machine is not oversubscribed."""
    return max(1, torch.get_num_threads())


def _blur_and_sample(emitted: np.ndarray, transfer_half: np.ndarray, support_columns: int,
                     oversample: int) -> np.ndarray:
    """``ifft2(fft2(emitted) · OTF).real[::b, ::b]`` of a real fine-grid image, at a fraction of the cost.

    Only the ``support_columns`` columns of the half spectrum where the OTF is not 0 are transformed along y
    and kept; sampling every ``b``-th pixel folds the spectrum onto a grid ``b``× smaller (the aliases of a
    band-limited image add up), so the inverse transform is ``b²``× smaller. Exact to rounding, in the
    image's precision.
    """
    ny, nx = emitted.shape
    out_y, out_x = ny // oversample, nx // oversample
    workers = _fft_workers()
    spectrum = scipy_fft.rfft(emitted, axis=1, workers=workers)[:, :support_columns]
    spectrum = scipy_fft.fft(spectrum, axis=0, workers=workers, overwrite_x=True)
    spectrum *= transfer_half[:, :support_columns]
    rows = scipy_fft.ifft(spectrum.reshape(oversample, out_y, support_columns).sum(axis=0), axis=0,
                          workers=workers, overwrite_x=True)
    del spectrum
    # Each sampled row is real: its x spectrum beyond Nyquist is the mirror image of the half kept.
    half_out = out_x // 2 + 1
    folded = np.zeros((out_y, half_out), dtype=rows.dtype)
    for alias in range(oversample):
        index = np.arange(half_out) + alias * out_x
        mirrored = index > nx // 2
        source = np.where(mirrored, nx - index, index)
        usable = (source < support_columns) & (index < nx)
        direct, conjugate = usable & ~mirrored, usable & mirrored
        folded[:, direct] += rows[:, source[direct]]
        folded[:, conjugate] += np.conj(rows[:, source[conjugate]])
    sampled = scipy_fft.irfft(folded, n=out_x, axis=1, workers=workers)
    sampled /= oversample * oversample
    return sampled


def _sampled_frames(images, fine_shape: tuple[int, int], specimen_pixel_nm: float, oversample: int, otf: OTF):
    """Yield the fine-grid images ``images`` yields, blurred by the OTF and sampled at every ``oversample``-th pixel."""
    ky, _ = frequency_grid(fine_shape, specimen_pixel_nm)
    kx = np.fft.rfftfreq(fine_shape[1], d=specimen_pixel_nm / 1000.0)[None, :]
    transfer = np.asarray(otf(ky, kx), dtype=np.float32)  # as OTF.on_grid gives it, on the half spectrum
    nonzero = np.flatnonzero(transfer.any(axis=0))
    columns = int(nonzero[-1]) + 1 if nonzero.size else 1  # beyond the cut-off there is nothing to transform
    for image in images:
        if fine_shape[0] % oversample or fine_shape[1] % oversample:  # no exact fold: sample the full blur
            spectrum = scipy_fft.rfft2(image, workers=_fft_workers()) * transfer
            yield scipy_fft.irfft2(spectrum, s=fine_shape, workers=_fft_workers())[::oversample, ::oversample]
        else:
            yield _blur_and_sample(image, transfer, columns, oversample)


def forward_model(specimen: np.ndarray, specimen_pixel_nm: float, oversample: int, otf: OTF,
                  params: SIMParameters, margin: int = 16) -> np.ndarray:
    """Noise-free raw SIM frames ``(A, P, Y, X)`` of a specimen given on a grid ``oversample``× finer.

    Each frame is the specimen times its illumination, blurred by the OTF (which includes the
    camera pixel integration), sampled at the camera pixel centres: fine pixel ``b·j`` is camera
    pixel ``j``, so the ground truth lies on the same grid as a ``b``× reconstruction. The outer
    ``margin`` camera pixels are cut off: the FFT blur wraps around the field, and a pattern that
    is not periodic over it would otherwise leave a seam a real microscope does not have.
    Frames are made one at a time (memory: a few fine-grid images, whatever the number of frames),
    in the precision of ``specimen × float32 pattern``.
    """
    fine_shape = specimen.shape
    camera_shape = (fine_shape[0] // oversample - 2 * margin, fine_shape[1] // oversample - 2 * margin)
    centre = (oversample * (margin + camera_shape[0] // 2), oversample * (margin + camera_shape[1] // 2))
    dtype = np.result_type(specimen.dtype, np.float32)

    def emitted():
        for orientation in params.orientations:
            for phase in orientation.phases_rad:
                factors = _pattern_factors(fine_shape, specimen_pixel_nm, orientation, phase, centre)
                yield _modulated(specimen, orientation.modulation, dtype, *factors)

    frames = [frame[margin:margin + camera_shape[0], margin:margin + camera_shape[1]].astype(np.float32)
              for frame in _sampled_frames(emitted(), fine_shape, specimen_pixel_nm, oversample, otf)]
    return np.stack(frames).reshape(params.angles, params.phases, *camera_shape)


def _modulated(specimen: np.ndarray, modulation: float, dtype: np.dtype, cos_y: np.ndarray, sin_y: np.ndarray,
               cos_x: np.ndarray, sin_x: np.ndarray) -> np.ndarray:
    """``specimen × illumination`` in ``dtype``, the illumination rounded to float32 as ``illumination_stack``
    gives it, made a block of rows at a time."""
    out = np.empty(specimen.shape, dtype=dtype)
    rows = max(1, _ROW_BLOCK_PIXELS // specimen.shape[1])
    for start in range(0, specimen.shape[0], rows):
        block = slice(start, start + rows)
        pattern = 1.0 + modulation * (cos_y[block, None] * cos_x[None, :] - sin_y[block, None] * sin_x[None, :])
        np.multiply(specimen[block], pattern.astype(np.float32), out=out[block])
    return out


def widefield_model(specimen: np.ndarray, specimen_pixel_nm: float, oversample: int, otf: OTF,
                    margin: int = 16) -> np.ndarray:
    """Noise-free widefield image (uniform illumination) on the camera grid, margin cut as above."""
    image = np.asarray(specimen, dtype=np.result_type(specimen.dtype, np.float32))
    camera = next(_sampled_frames([image], image.shape, specimen_pixel_nm, oversample, otf))
    return camera[margin:camera.shape[0] - margin, margin:camera.shape[1] - margin].astype(np.float32)


def add_camera_noise(expected_photons: np.ndarray, camera: Camera, rng: np.random.Generator,
                     ) -> np.ndarray:
    """Poisson shot noise on signal + background, Gaussian read noise, offset: camera counts (float32).

    Drawn in blocks (memory: a few MB of double-precision noise, whatever the stack), all shot noise first and
    then all read noise, so a seed gives the same counts as drawing the whole stack at once.
    """
    expected = np.asarray(expected_photons).reshape(-1)
    counts = np.empty(expected.shape, dtype=np.float32)
    block = _ROW_BLOCK_PIXELS
    for start in range(0, expected.size, block):
        counts[start:start + block] = rng.poisson(np.clip(expected[start:start + block] + camera.background_photons,
                                                          0, None))
    for start in range(0, expected.size, block):
        photons = counts[start:start + block]
        read = rng.normal(0.0, camera.read_noise_e, size=photons.size)
        counts[start:start + block] = photons.astype(np.float64) + read + camera.offset_adu
    return counts.reshape(np.shape(expected_photons))
