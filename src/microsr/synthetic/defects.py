"""Acquisition defects of real instruments, applied to any simulated raw stack: camera, illumination, bleaching.

A simulator that makes only ideal shot noise teaches nothing about the data users bring. Each defect
here is one that was measured on a real TIRF-SIM stack (DESIGN.md §2, real-data notes) or that an
sCMOS camera has by construction:

- **camera**: per-pixel offset and gain spread (sCMOS: every pixel has its own amplifier), row and
  column fixed-pattern offsets, hot (saturated) and dead (zero) pixels, and integer output rescaled to
  a few hundred grey levels (what an 8- or low-bit export, or a gain set too high, leaves);
- **illumination**: frame-to-frame excitation fluctuation (1–5 % on lasers with no power lock);
- **bleaching**: an exponential loss of signal across the frames of a set and across time points.

The illumination and bleaching act on the expected photons, before the shot noise
(:func:`illumination_defects`); the camera defects act on the counts the camera reports
(:func:`camera_defects`). Both draw from their own generator, so switching a defect on never changes
the specimen, the pattern or the shot noise of a simulation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from microsr.errors import InputError

#: Names of the defects, in the order of :class:`AcquisitionDefects`'s fields.
DEFECTS = ("offset_spread_adu", "gain_spread", "row_noise_adu", "column_noise_adu", "hot_pixel_fraction",
           "dead_pixel_fraction", "excitation_fluctuation", "bleaching_per_frame", "grey_levels")


@dataclass(frozen=True)
class AcquisitionDefects:
    """How far an acquisition departs from an ideal camera and a steady laser; every field 0 (or None) is off.

    Attributes
    ----------
    offset_spread_adu : float
        Standard deviation of the per-pixel camera offset (ADU; the simulator's camera gives 1 ADU per
        photoelectron, so this is the datasheet's DSNU in e⁻): ≤ 0.5 on sCMOS cameras with their factory
        correction, 1–2 uncorrected.
    gain_spread : float
        Relative standard deviation of the per-pixel gain (PRNU); sCMOS: 0.5–3 %.
    row_noise_adu, column_noise_adu : float
        Standard deviation of one offset per row / per column, the same in every frame (fixed pattern).
    hot_pixel_fraction, dead_pixel_fraction : float
        Fraction of pixels stuck at saturation / at zero.
    excitation_fluctuation : float
        Relative standard deviation of each frame's excitation (1–5 % on real instruments).
    bleaching_per_frame : float
        Fraction of the signal lost per frame, compounding across the frames of a set and time points.
    grey_levels : int or None
        Rescale the counts to this many integer levels over their range (None: keep the camera's).
    saturation_adu : float
        The value of a hot pixel and the top of the camera's range.
    """

    offset_spread_adu: float = 0.0
    gain_spread: float = 0.0
    row_noise_adu: float = 0.0
    column_noise_adu: float = 0.0
    hot_pixel_fraction: float = 0.0
    dead_pixel_fraction: float = 0.0
    excitation_fluctuation: float = 0.0
    bleaching_per_frame: float = 0.0
    grey_levels: int | None = None
    saturation_adu: float = 65535.0

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"acquisition defect {item.name}={value}: give a finite value >= 0")
        for name in ("hot_pixel_fraction", "dead_pixel_fraction", "excitation_fluctuation", "bleaching_per_frame"):
            if getattr(self, name) >= 1:
                raise InputError(f"acquisition defect {name}={getattr(self, name)}: give a fraction below 1")
        if self.grey_levels is not None and self.grey_levels < 2:
            raise InputError(f"grey_levels={self.grey_levels}: an image needs at least 2 levels")

    @classmethod
    def realistic(cls, **changes) -> AcquisitionDefects:
        """Every defect on, at values typical of an sCMOS TIRF-SIM (``changes`` override single ones).

        The camera is one with its factory offset correction, as cameras are delivered: DSNU 0.5 e⁻ and
        row/column offsets of 0.3 e⁻ (datasheets give DSNU below ~0.5 e⁻ for low-light sCMOS), PRNU 1 %.
        :meth:`uncorrected` is a camera without it.

        Examples
        --------
        >>> AcquisitionDefects.realistic().enabled() == list(DEFECTS)
        True
        """
        typical = dict(offset_spread_adu=0.5, gain_spread=0.01, row_noise_adu=0.3, column_noise_adu=0.3,
                       hot_pixel_fraction=2e-4, dead_pixel_fraction=2e-4, excitation_fluctuation=0.03,
                       bleaching_per_frame=0.003, grey_levels=400)
        return cls(**{**typical, **changes})

    @classmethod
    def uncorrected(cls, **changes) -> AcquisitionDefects:
        """:meth:`realistic` with a camera whose offsets were never corrected: DSNU 2 e⁻, row/column 1 e⁻, PRNU 2 %.

        Examples
        --------
        >>> AcquisitionDefects.uncorrected().offset_spread_adu > AcquisitionDefects.realistic().offset_spread_adu
        True
        """
        return cls.realistic(**{**dict(offset_spread_adu=2.0, gain_spread=0.02, row_noise_adu=1.0,
                                       column_noise_adu=1.0), **changes})

    def enabled(self) -> list[str]:
        """The defects switched on, in :data:`DEFECTS` order."""
        return [name for name in DEFECTS if getattr(self, name)]

    def to_dict(self) -> dict:
        return asdict(self)


def illumination_defects(expected_photons: np.ndarray, defects: AcquisitionDefects,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Expected photons ``(T, A, P, Y, X)`` with excitation fluctuation and bleaching, and the factor of each frame.

    Frames are bleached in acquisition order (time point, orientation, phase): frame ``i`` keeps
    ``(1 − b)^i`` of its signal. Returns ``(photons, factors (T, A, P))``.
    """
    photons = np.asarray(expected_photons, dtype=np.float32)
    if photons.ndim != 5:
        raise InputError(f"expected photons of shape {photons.shape}: give (T, A, P, Y, X)")
    frames = photons.shape[:3]
    order = np.arange(int(np.prod(frames))).reshape(frames)
    factors = (1.0 - defects.bleaching_per_frame) ** order
    if defects.excitation_fluctuation:
        factors = factors * np.clip(rng.normal(1.0, defects.excitation_fluctuation, frames), 0.5, 1.5)
    return (photons * factors[..., None, None]).astype(np.float32), factors.astype(np.float32)


def camera_defects(counts: np.ndarray, defects: AcquisitionDefects, rng: np.random.Generator, *,
                   offset_adu: float = 0.0) -> tuple[np.ndarray, dict]:
    """Camera counts ``(..., Y, X)`` as a real camera reports them, and where its defects are.

    Offset and gain spread and the row/column pattern are fixed per pixel (the same in every frame);
    hot and dead pixels too. The gain multiplies what the pixel converted, the counts above the
    camera's offset ``offset_adu``: a pixel's gain does not scale its own offset. Returns ``(counts, record)`` where ``record`` holds the masks
    ``hot`` and ``dead`` (Y, X) and the fixed offset map ``offset_map`` (Y, X) in ADU.
    """
    counts = np.asarray(counts, dtype=np.float32)
    height, width = counts.shape[-2:]
    gain = 1.0 + rng.normal(0.0, defects.gain_spread, (height, width)) if defects.gain_spread else 1.0
    offset = rng.normal(0.0, defects.offset_spread_adu, (height, width)) if defects.offset_spread_adu else 0.0
    offset = offset + (rng.normal(0.0, defects.row_noise_adu, (height, 1)) if defects.row_noise_adu else 0.0)
    offset = offset + (rng.normal(0.0, defects.column_noise_adu, (1, width)) if defects.column_noise_adu else 0.0)
    out = (counts - np.float32(offset_adu)) * np.asarray(gain, dtype=np.float32) + np.float32(offset_adu)
    out = out + np.asarray(offset, dtype=np.float32)
    hot = rng.random((height, width)) < defects.hot_pixel_fraction
    dead = (rng.random((height, width)) < defects.dead_pixel_fraction) & ~hot
    if defects.grey_levels:
        # An export rescaled to a few hundred levels over the data's range: steps of (max − min)/(levels − 1).
        low, high = float(out.min()), float(out.max())
        step = max(high - low, 1e-6) / (defects.grey_levels - 1)
        out = np.round((out - low) / step) * step + low
    out = np.clip(out, 0.0, defects.saturation_adu)
    out[..., hot] = defects.saturation_adu
    out[..., dead] = 0.0
    return out.astype(np.float32), {"hot": hot, "dead": dead,
                                    "offset_map": np.broadcast_to(np.asarray(offset, np.float32), (height, width))}
