"""Whether a widefield image and a super-resolution image (STORM, SIM, …) show the same field, registered.

A fine-tuning pair that is shifted, flipped or of another field teaches a network to invent: the check
comes before any training. The SR image is blurred to the widefield resolution and binned onto its
grid, then cross-correlated with it (zero-mean, normalized) over shifts and the four flips; a pair
passes when the best match is the unflipped image at (nearly) zero shift and correlates well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microsr.errors import InputError
from microsr.metrics.checks import as_image

#: Below this correlation at the best match the two images are taken for different fields (the real,
#: registered mitochondria pair of ../shared/data/sfsrm_real correlates 0.58; its unregistered pair 0.09).
MIN_CORRELATION = 0.3

#: The largest shift (widefield pixels) a pair may have and still count as registered.
MAX_SHIFT_PX = 1.0

#: Flips tried, by the name the refusal gives.
FLIPS = {"none": lambda a: a, "left-right": lambda a: a[:, ::-1], "up-down": lambda a: a[::-1],
         "rotated 180°": lambda a: a[::-1, ::-1]}


@dataclass
class Registration:
    """:func:`pair_registration`'s answer: ``problem`` is None for a registered pair, else one line saying what."""

    correlation: float            #: at the best shift of the best flip
    correlation_at_zero: float    #: unflipped, unshifted
    shift_px: tuple[float, float]  #: of the best match, widefield pixels (y, x)
    flip: str                     #: of the best match (a key of FLIPS)
    problem: str | None


def _normalized(image: np.ndarray) -> np.ndarray:
    centred = image - image.mean()
    return centred / max(float(np.sqrt(np.sum(centred ** 2))), 1e-12)


def _best_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Peak of the circular cross-correlation of two normalized images, and where it is."""
    correlation = np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b))).real
    index = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift = tuple(int((i + n // 2) % n - n // 2) for i, n in zip(index, correlation.shape))
    return float(correlation[index]), shift


def pair_registration(widefield, sr, scale: int, psf_fwhm_px: float) -> Registration:
    """Whether ``sr`` (``scale`` × the widefield grid) is the widefield image's field, registered.

    ``psf_fwhm_px`` is the widefield PSF's FWHM in widefield pixels: the SR image is blurred by it.

    Examples
    --------
    >>> from scipy import ndimage
    >>> rng = np.random.default_rng(0)
    >>> sr = ndimage.gaussian_filter(rng.random((256, 256)) ** 8, 2)
    >>> widefield = ndimage.gaussian_filter(sr, 10).reshape(64, 4, 64, 4).mean(axis=(1, 3))
    >>> pair_registration(widefield, sr, 4, 2.5).problem is None
    True
    >>> pair_registration(widefield, sr[:, ::-1], 4, 2.5).problem
    'the SR image is flipped (left-right) relative to the widefield image'
    """
    from scipy import ndimage  # imported on first use: it costs start-up time every import would pay

    widefield = as_image(widefield, "widefield image")
    sr = as_image(sr, "SR image")
    if sr.shape != (widefield.shape[0] * scale, widefield.shape[1] * scale):
        raise InputError(f"SR image {sr.shape} is not {scale} × the widefield image {widefield.shape}")
    sigma_sr = psf_fwhm_px * scale / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    target = _normalized(widefield)
    # Edges tapered: a field's borders would otherwise correlate by their own step at zero shift.
    taper = np.outer(np.hanning(widefield.shape[0]), np.hanning(widefield.shape[1])) ** 0.25
    target = _normalized(widefield * taper)
    results = {}
    for name, flip in FLIPS.items():
        blurred = ndimage.gaussian_filter(flip(sr), sigma_sr)
        binned = blurred.reshape(widefield.shape[0], scale, widefield.shape[1], scale).mean(axis=(1, 3))
        moving = _normalized(binned * taper)
        results[name] = (*_best_shift(target, moving), float(np.sum(target * moving)))
    flip = max(results, key=lambda key: results[key][0])
    correlation, shift, _ = results[flip]
    at_zero = results["none"][2]
    problem = None
    if correlation < MIN_CORRELATION:
        problem = (f"the SR image does not show the widefield image's field (correlation {correlation:.2f} at best, "
                   f"{MIN_CORRELATION} needed)")
    elif flip != "none":
        problem = f"the SR image is flipped ({flip}) relative to the widefield image"
    elif max(abs(s) for s in shift) > MAX_SHIFT_PX:
        problem = (f"the SR image is shifted by ({shift[0]}, {shift[1]}) widefield pixels relative to the widefield "
                   "image: register the pair first")
    return Registration(correlation, at_zero, (float(shift[0]), float(shift[1])), flip, problem)
