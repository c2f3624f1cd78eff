"""Synthetic specimens with known ground truth: filaments (worm-like chains) and point-like dots."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _splat(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
    """Deposit point intensities at sub-pixel positions by bilinear weights (in place)."""
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    fr = rows - r0
    fc = cols - c0
    ny, nx = image.shape
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr = r0 + dr
        cc = c0 + dc
        inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
        np.add.at(image, (rr[inside], cc[inside]), (weights * w)[inside])


def worm_like_chain(rng: np.random.Generator, start: np.ndarray, length_nm: float,
                    persistence_nm: float, step_nm: float) -> np.ndarray:
    """Points ``(N, 2)`` (y, x in nm) of a 2-D worm-like chain: direction diffuses with the persistence length."""
    steps = max(2, int(length_nm / step_nm))
    # A 2-D worm-like chain's tangent angle performs a random walk of variance step/persistence.
    turns = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), size=steps)
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(turns)
    path = np.cumsum(np.stack([np.sin(angle), np.cos(angle)], axis=1) * step_nm, axis=0)
    return start[None, :] + path


def filaments_and_dots(shape: tuple[int, int], pixel_size_nm: float, *, n_filaments: int = 12,
                       n_dots: int = 40, filament_width_nm: float = 25.0,
                       persistence_nm: float = 3000.0, seed: int | np.random.Generator = 0,
                       ) -> np.ndarray:
    """A fluorescent specimen of filaments (microtubule-like) and dots (vesicle-like), peak ≈ 1.

    Parameters
    ----------
    shape : (int, int)
        Image size (Y, X) in pixels of ``pixel_size_nm``.
    pixel_size_nm : float
        Pixel size of the ground-truth grid.
    n_filaments, n_dots : int
        Number of worm-like-chain filaments and of point-like dots.
    filament_width_nm : float
        FWHM of the filament cross-section (25 nm: a microtubule).
    persistence_nm : float
        Persistence length of the chains: stiffer filaments curve less.
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    ndarray, float32, shape ``shape``
        Fluorophore density, scaled so that a filament's crest is about 1.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    field_nm = np.array([ny, nx], dtype=float) * pixel_size_nm
    image = np.zeros(shape, dtype=np.float64)
    step_nm = pixel_size_nm / 3.0  # sub-pixel steps keep the line's brightness even
    for _ in range(n_filaments):
        length = rng.uniform(0.5, 1.5) * field_nm.max()
        start = rng.uniform(0.0, 1.0, size=2) * field_nm
        points = worm_like_chain(rng, start, length, persistence_nm, step_nm)
        brightness = rng.uniform(0.6, 1.0)
        _splat(image, points[:, 0] / pixel_size_nm, points[:, 1] / pixel_size_nm,
               np.full(len(points), brightness * step_nm / pixel_size_nm))
    dots = rng.uniform(0.0, 1.0, size=(n_dots, 2)) * np.array([ny, nx])
    _splat(image, dots[:, 0], dots[:, 1], rng.uniform(1.0, 3.0, size=n_dots))
    sigma_px = filament_width_nm / 2.3548 / pixel_size_nm
    image = ndimage.gaussian_filter(image, max(sigma_px, 0.3), mode="wrap")
    crest = np.percentile(image[image > 0], 99.5) if np.any(image > 0) else 1.0
    return (image / crest).astype(np.float32)
