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
    from scipy import ndimage  # imported on first use: it costs start-up time every import would pay

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
    """How steady the excitation was and how fast the dye bleached, from each frame's specimen signal.

    Returns ``frame_means`` (T·A·P, in acquisition order: each frame's mean above ``background``),
    ``bleaching_per_frame`` (fraction lost per frame, from a fit of the log of each frame's signal, the
    brightest quarter of the field minus the darkest, which no additive background changes; ± ``bleaching_error``), and ``fluctuation``: the relative scatter
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
    from scipy import ndimage  # imported on first use: it costs start-up time every import would pay

    frames = repaired(_as_tapyx(raw))
    means = frames.mean(axis=(-2, -1)) - background
    if np.any(means <= 0):
        raise InputError("a frame has no signal above the background: pass the camera offset as --background")
    # The fit reads the specimen's signal as the brightest quarter of the field minus the darkest quarter:
    # an additive background (camera offset, background photons) cancels, whatever the estimate of it. With
    # the mean above an estimated background, a background estimated 1–2 ADU low (an sCMOS offset spread
    # makes the low percentile lower) dilutes bleaching and fluctuation by the specimen's few ADU of signal.
    # Quarters chosen on the smoothed widefield image: chosen pixel by pixel, they would pick the pixels a camera's
    # offset and gain spread make bright, a constant added to every frame's signal that dilutes the fit again.
    widefield = ndimage.gaussian_filter(frames.mean(axis=(0, 1, 2)), 2.0)
    bright, dark = widefield >= np.percentile(widefield, 75), widefield <= np.percentile(widefield, 25)
    contrast = frames[..., bright].mean(axis=-1) - frames[..., dark].mean(axis=-1)
    # A uniform field (a dye layer, as for calibration) has no such contrast: there the mean above background is all.
    signal = contrast if np.all(contrast > 0.1 * means) else means
    count, angles, phases = signal.shape
    order = np.arange(signal.size, dtype=float)
    # log(signal) = level of the frame's kind + slope · frame number. The kind is (orientation, phase) across
    # time points; within one set the phases share a level, since nothing else tells them apart.
    kinds = (np.arange(angles * phases) if count > 1 else np.repeat(np.arange(angles), phases))
    kinds = np.tile(kinds, count)
    design = np.zeros((signal.size, kinds.max() + 2))
    design[np.arange(signal.size), kinds] = 1.0
    design[:, -1] = order
    solution, *_ = np.linalg.lstsq(design, np.log(signal.ravel()), rcond=None)
    slope = float(solution[-1])
    residual = np.log(signal.ravel()) - design @ solution
    dof = max(1, signal.size - design.shape[1])
    scatter = float(np.sqrt(np.sum(residual ** 2) / dof))
    covariance = np.linalg.pinv(design.T @ design)
    error = scatter * float(np.sqrt(max(covariance[-1, -1], 0.0)))
    fluctuation = None
    if count > 1:
        # What shot and read noise alone give a frame's signal, from the same frame kind at the next time
        # point (their difference is noise only, whatever the camera's gain): only the excess is the laser's.
        # (each frame scaled to one level first, so that bleaching between time points is not counted as noise)
        scaled = frames * (signal.mean() / signal)[..., None, None]
        pixel_variance = float(np.mean(np.var(np.diff(scaled, axis=0), axis=(-2, -1)))) / 2
        # the signal is the difference of two means over a quarter of the pixels each
        pixels = 1 / (1 / bright.sum() + 1 / dark.sum()) if signal is contrast else frames.shape[-1] * frames.shape[-2]
        expected = float(np.sqrt(pixel_variance / pixels) / np.mean(signal))
        fluctuation = float(np.sqrt(max(scatter ** 2 - expected ** 2, 0.0)))
    return {"frame_means": means.ravel().tolist(), "bleaching_per_frame": float(1.0 - np.exp(slope)),
            "bleaching_error": float(error), "fluctuation": fluctuation}
