"""Quality of raw SIM data before any reconstruction (SIMcheck's raw-data checks): modulation, intensity, camera.

Whether an acquisition can give a clean SIM image at all shows in the raw frames [1]_: how strongly
the pattern modulates the specimen where it is (the modulation contrast map), whether the excitation
was steady from frame to frame and how much the dye bleached, and whether the camera adds a fixed
pattern of its own. Each function takes frames as a NumPy array and returns numbers or a map.

References
----------
.. [1] G. Ball et al., "SIMcheck: a toolbox for successful super-resolution structured illumination
       microscopy", Sci. Rep. 5, 15915 (2015).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from microsr.errors import InputError
from microsr.sim.estimate import repair_pixels, stuck_pixels


def _as_tapyx(raw) -> np.ndarray:
    frames = np.asarray(raw, dtype=np.float64)
    if frames.ndim == 4:
        frames = frames[None]
    if frames.ndim != 5:
        raise InputError(f"raw frames of shape {frames.shape}: give (A, P, Y, X) or (T, A, P, Y, X)")
    return frames


def modulation_contrast_map(raw, background: float, *, sigma_px: float = 2.0) -> np.ndarray:
    """Per-pixel modulation contrast of the raw data, averaged over orientations: ``2|F₁| / F₀`` over the phases.

    ``F₀`` is the mean over a pixel's phase steps, ``|F₁|`` the amplitude of their first harmonic; both
    are smoothed over ``sigma_px`` (the amplitude, not the complex harmonic, whose phase turns with the
    pattern). ≈ the local modulation depth where the specimen is bright; shot noise adds a positive
    bias where it is dim. NaN where there is no signal (F₀ below 5 % of its 99th percentile).

    Examples
    --------
    >>> phases = np.arange(3) * 2 * np.pi / 3
    >>> raw = 100 + 50 * (1 + 0.6 * np.cos(phases))[None, :, None, None] * np.ones((3, 3, 16, 16))
    >>> float(np.nanmean(modulation_contrast_map(raw, 100.0)).round(2))
    0.6
    """
    frames = repaired(_as_tapyx(raw)).mean(axis=0) - background
    phases = frames.shape[1]
    steps = np.exp(-2j * np.pi * np.arange(phases) / phases)
    contrast = []
    for orientation in frames:
        f0 = ndimage.gaussian_filter(orientation.mean(axis=0), sigma_px)
        f1 = ndimage.gaussian_filter(np.abs(np.tensordot(steps, orientation, axes=(0, 0)) / phases), sigma_px)
        bright = f0 > 0.05 * np.percentile(f0, 99)
        contrast.append(np.where(bright, 2 * f1 / np.where(bright, f0, 1.0), np.nan))
    stacked = np.stack(contrast)
    if not np.isfinite(stacked).any():
        return np.full(frames.shape[-2:], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel dark in every orientation stays NaN
        return np.nanmean(stacked, axis=0)


def repaired(frames: np.ndarray) -> np.ndarray:
    """Frames with stuck camera pixels (hot, dead) replaced by their local median: they are not specimen."""
    return repair_pixels(frames, stuck_pixels(frames))


def frame_intensities(raw, background: float) -> dict:
    """How steady the excitation was and how fast the dye bleached, from each frame's mean above background.

    Returns ``frame_means`` (T·A·P, in acquisition order), ``bleaching_per_frame`` (fraction lost per
    frame, from a fit of the log means; ± ``bleaching_error``), and ``fluctuation``: the relative scatter
    of the frames about that fit beyond what shot and read noise give, measured between time points on
    frames of the same orientation and phase (within one set, a frame's mean also carries the specimen's
    overlap with its own pattern phase, a few % on sparse specimens, which is not the laser's doing).
    ``fluctuation`` is None for a single time point.

    Examples
    --------
    >>> raw = 100 + 50 * 0.99 ** np.arange(18).reshape(2, 3, 3, 1, 1) * np.ones((2, 3, 3, 4, 4))
    >>> round(frame_intensities(raw, 100.0)["bleaching_per_frame"], 4)
    0.01
    """
    frames = repaired(_as_tapyx(raw))
    means = frames.mean(axis=(-2, -1)) - background
    if np.any(means <= 0):
        raise InputError("a frame has no signal above the background: pass the camera offset as --background")
    count, angles, phases = means.shape
    order = np.arange(means.size, dtype=float)
    # log(mean) = level of the frame's kind + slope · frame number. The kind is (orientation, phase) across
    # time points; within one set the phases share a level, since nothing else tells them apart.
    kinds = (np.arange(angles * phases) if count > 1 else np.repeat(np.arange(angles), phases))
    kinds = np.tile(kinds, count)
    design = np.zeros((means.size, kinds.max() + 2))
    design[np.arange(means.size), kinds] = 1.0
    design[:, -1] = order
    solution, *_ = np.linalg.lstsq(design, np.log(means.ravel()), rcond=None)
    slope = float(solution[-1])
    residual = np.log(means.ravel()) - design @ solution
    dof = max(1, means.size - design.shape[1])
    scatter = float(np.sqrt(np.sum(residual ** 2) / dof))
    covariance = np.linalg.pinv(design.T @ design)
    error = scatter * float(np.sqrt(max(covariance[-1, -1], 0.0)))
    fluctuation = None
    if count > 1:
        # What shot and read noise alone give a frame's mean, from the same frame kind at the next time
        # point (their difference is noise only, whatever the camera's gain): only the excess is the laser's.
        # (each frame scaled to one mean first, so that bleaching between time points is not counted as noise)
        level = means + background
        scaled = frames * (level.mean() / level)[..., None, None]
        pixel_variance = float(np.mean(np.var(np.diff(scaled, axis=0), axis=(-2, -1)))) / 2
        expected = float(np.sqrt(pixel_variance / (frames.shape[-1] * frames.shape[-2])) / np.mean(means))
        fluctuation = float(np.sqrt(max(scatter ** 2 - expected ** 2, 0.0)))
    return {"frame_means": means.ravel().tolist(), "bleaching_per_frame": float(1.0 - np.exp(slope)),
            "bleaching_error": float(error), "fluctuation": fluctuation}
