"""SIM illumination patterns and the forward model from a specimen to raw SIM frames."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microsr.optics import OTF
from microsr.sim.parameters import Orientation, SIMParameters


def pixel_positions_nm(n: int, pixel_size_nm: float, centre_index: float) -> np.ndarray:
    """Positions (nm) of ``n`` pixels relative to the pattern's phase reference ``centre_index``."""
    return (np.arange(n) - centre_index) * pixel_size_nm


def illumination(shape: tuple[int, int], pixel_size_nm: float, orientation: Orientation,
                 phase_rad: float, centre_index: tuple[float, float] | None = None) -> np.ndarray:
    """Illumination ``1 + m cos(2π k·(r − c) + φ)`` on a grid of ``pixel_size_nm``.

    ``centre_index`` is the phase reference ``c`` in this grid's pixels; by default the centre pixel
    ``(Y//2, X//2)``, the convention of :class:`~microsr.sim.parameters.Orientation`.
    """
    cy, cx = centre_index if centre_index is not None else (shape[0] // 2, shape[1] // 2)
    y = pixel_positions_nm(shape[0], pixel_size_nm, cy)[:, None]
    x = pixel_positions_nm(shape[1], pixel_size_nm, cx)[None, :]
    k = 1.0 / orientation.spacing_nm
    ky, kx = k * math.sin(orientation.angle_rad), k * math.cos(orientation.angle_rad)
    return 1.0 + orientation.modulation * np.cos(2 * np.pi * (kx * x + ky * y) + phase_rad)


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


def forward_model(specimen: np.ndarray, specimen_pixel_nm: float, oversample: int, otf: OTF,
                  params: SIMParameters, margin: int = 16) -> np.ndarray:
    """Noise-free raw SIM frames ``(A, P, Y, X)`` of a specimen given on a grid ``oversample``× finer.

    Each frame is the specimen times its illumination, blurred by the OTF (which includes the
    camera pixel integration), sampled at the camera pixel centres: fine pixel ``b·j`` is camera
    pixel ``j``, so the ground truth lies on the same grid as a ``b``× reconstruction. The outer
    ``margin`` camera pixels are cut off: the FFT blur wraps around the field, and a pattern that
    is not periodic over it would otherwise leave a seam a real microscope does not have.
    """
    fine_shape = specimen.shape
    camera_shape = (fine_shape[0] // oversample - 2 * margin, fine_shape[1] // oversample - 2 * margin)
    centre = (oversample * (margin + camera_shape[0] // 2), oversample * (margin + camera_shape[1] // 2))
    transfer = otf.on_grid(fine_shape, specimen_pixel_nm)
    patterns = illumination_stack(fine_shape, specimen_pixel_nm, params, centre)
    emitted = np.fft.fft2(specimen[None, None] * patterns)
    blurred = np.fft.ifft2(emitted * transfer).real[..., ::oversample, ::oversample]
    return blurred[..., margin:margin + camera_shape[0], margin:margin + camera_shape[1]].astype(np.float32)


def widefield_model(specimen: np.ndarray, specimen_pixel_nm: float, oversample: int, otf: OTF,
                    margin: int = 16) -> np.ndarray:
    """Noise-free widefield image (uniform illumination) on the camera grid, margin cut as above."""
    blurred = np.fft.ifft2(np.fft.fft2(specimen) * otf.on_grid(specimen.shape, specimen_pixel_nm)).real
    camera = blurred[::oversample, ::oversample]
    return camera[margin:camera.shape[0] - margin, margin:camera.shape[1] - margin].astype(np.float32)


def add_camera_noise(expected_photons: np.ndarray, camera: Camera, rng: np.random.Generator,
                     ) -> np.ndarray:
    """Poisson shot noise on signal + background, Gaussian read noise, offset: camera counts (float32)."""
    photons = rng.poisson(np.clip(expected_photons + camera.background_photons, 0, None))
    counts = photons + rng.normal(0.0, camera.read_noise_e, size=photons.shape) + camera.offset_adu
    return counts.astype(np.float32)
