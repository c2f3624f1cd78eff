"""Widefield images like real ones, with their in-focus truth: four specimen classes, out-of-focus haze, optics and camera drawn from ranges.

SFSRM's own simulation (:mod:`~microsr.synthetic.specimens`) is sparse filaments in a perfect focal
plane. Real widefield images are not: an ER network is dense tubules with sheets, mitochondria are
thick short tubules, vesicles are puncta, and everything above and below the focal plane adds a haze
that no super-resolution network may sharpen. Here each field is

- a specimen class on a fine grid (:data:`CLASSES`): sparse filaments (microtubules), a dense tubular
  network with sheets (ER), elongated tubules (mitochondria), puncta;
- the same class out of focus above and below (the field turned and shifted, blurred by a defocus of
  0.8–2 µm on top of the PSF) at a chosen fraction of the in-focus signal: the haze;
- a Gaussian PSF of 200–350 nm FWHM, camera pixels of 65–160 nm, an SNR of 3–50, background and the
  sCMOS defects of :class:`~microsr.synthetic.defects.AcquisitionDefects` (no stuck pixels: a single
  frame cannot tell them from specimen).

The super-resolution target is the in-focus specimen only, on the model's grid: a network trained on
it learns to leave the haze out rather than to sharpen it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from microsr.errors import InputError
from microsr.synthetic.defects import AcquisitionDefects, camera_defects
# The blur, binning, SNR scaling and noise of SFSRM's own pairs: one physics for both simulations.
from microsr.synthetic.specimens import (_FWHM_PER_SIGMA, _add_noise, _binned_crop, _blur_and_bin_crop, _photon_scale,
                                         _training_gt_pixel, polymer_chains, worm_like_chain)

#: Specimen classes, in the order a mixed training draws them.
CLASSES = ("filaments", "er", "mitochondria", "puncta")

#: Camera offset the simulated counts sit on (ADU); removed again before the image is returned.
_OFFSET_ADU = 100.0


def _normalized_line_image(points_nm: list[np.ndarray], shape: tuple[int, int], pixel_nm: float,
                           width_nm: float) -> np.ndarray:
    """Lines through ``points_nm`` (each ``(N, 2)``, y and x in nm) of ``width_nm`` FWHM, crest ≈ 1."""
    image = np.zeros(shape, dtype=np.float64)
    for points in points_nm:
        rows, cols = np.round(points[:, 0] / pixel_nm).astype(int), np.round(points[:, 1] / pixel_nm).astype(int)
        inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        np.add.at(image, (rows[inside], cols[inside]), 1.0)
    sigma = width_nm / _FWHM_PER_SIGMA / pixel_nm
    image = ndimage.gaussian_filter(image, sigma)
    # one point per third of a pixel along a line, blurred across by σ: crest 3 / (√(2π) σ)
    return image / (3.0 / (np.sqrt(2.0 * np.pi) * max(sigma, 0.5)))


def _chains(rng: np.random.Generator, count: int, field_nm: float, pixel_nm: float, lengths_nm: tuple[float, float],
            persistence_nm: float) -> list[np.ndarray]:
    return [worm_like_chain(rng, rng.uniform(0, field_nm, 2), float(rng.uniform(*lengths_nm)), persistence_nm,
                            pixel_nm / 3.0) for _ in range(count)]


def specimen(kind: str, field_um: float, gt_pixel_nm: float, rng: np.random.Generator) -> np.ndarray:
    """Fluorophore density of one field of a specimen class on a ``gt_pixel_nm`` grid (a crest of about 1).

    - ``filaments``: SFSRM's sparse polymer chains (50 per 100 µm²), 20 nm wide (microtubules);
    - ``er``: a dense network of curved 60-nm tubules (6× as many chains, persistence 0.8 µm) with flat
      sheets (ellipses of 0.3–0.9 µm, 40 % of a tubule's brightness);
    - ``mitochondria``: tubules 1–4 µm long and 250 nm wide;
    - ``puncta``: spots of 80 nm, 2 per µm², brightness 0.5–1.5.

    Examples
    --------
    >>> specimen("er", 2.0, 20.0, np.random.default_rng(0)).shape
    (100, 100)
    """
    if kind not in CLASSES:
        raise InputError(f"unknown specimen class {kind!r}: use one of {', '.join(CLASSES)}")
    n = int(round(field_um * 1000.0 / gt_pixel_nm))
    field_nm = n * gt_pixel_nm
    area = field_um ** 2
    if kind == "filaments":
        return polymer_chains(n * gt_pixel_nm / 1000.0, gt_pixel_nm, seed=rng)[:n, :n].astype(np.float64)
    if kind == "er":
        count = max(2, int(round(6 * 0.5 * area)))
        tubules = _normalized_line_image(_chains(rng, count, field_nm, gt_pixel_nm, (0.3 * field_nm, field_nm), 800.0),
                                         (n, n), gt_pixel_nm, 60.0)
        sheets = np.zeros((n, n))
        for _ in range(max(1, int(round(0.15 * area)))):
            cy, cx = rng.uniform(0, field_nm, 2)
            ry, rx = rng.uniform(300, 900, 2)
            angle = rng.uniform(0, np.pi)
            # only the pixels within the ellipse's reach (its larger semi-axis) are tested: a sheet is < 2 µm
            # across, a field with its haze margin up to ~10 µm
            reach = max(ry, rx) + gt_pixel_nm
            rows = slice(max(0, int((cy - reach) / gt_pixel_nm)), min(n, int((cy + reach) / gt_pixel_nm) + 1))
            cols = slice(max(0, int((cx - reach) / gt_pixel_nm)), min(n, int((cx + reach) / gt_pixel_nm) + 1))
            y, x = (np.mgrid[rows, cols] + 0.5) * gt_pixel_nm
            u = (y - cy) * np.cos(angle) + (x - cx) * np.sin(angle)
            v = -(y - cy) * np.sin(angle) + (x - cx) * np.cos(angle)
            np.maximum(sheets[rows, cols], ((u / ry) ** 2 + (v / rx) ** 2 <= 1) * 0.4, out=sheets[rows, cols])
        return tubules + ndimage.gaussian_filter(sheets, 30.0 / gt_pixel_nm)
    if kind == "mitochondria":
        count = max(1, int(round(0.6 * area)))
        return _normalized_line_image(_chains(rng, count, field_nm, gt_pixel_nm, (1000.0, 4000.0), 2000.0),
                                      (n, n), gt_pixel_nm, 250.0)
    image = np.zeros((n, n))
    count = max(1, int(rng.poisson(2.0 * area)))
    rows, cols = rng.integers(0, n, count), rng.integers(0, n, count)
    np.add.at(image, (rows, cols), rng.uniform(0.5, 1.5, count))
    sigma = 80.0 / _FWHM_PER_SIGMA / gt_pixel_nm
    return ndimage.gaussian_filter(image, sigma) * (2 * np.pi * sigma ** 2)


@dataclass
class WidefieldPair:
    """One simulated field: the noisy widefield image, its clean twin, and the in-focus truth on the SR grid."""

    noisy: np.ndarray      #: (P, P) widefield image, photoelectrons above the camera offset, every defect on
    clean: np.ndarray      #: (P, P) the same image without noise or camera defects (haze kept): a denoiser's target
    target: np.ndarray     #: (scale·P, scale·P) in-focus specimen on the SR grid, max 1 (haze left out)
    instrument: dict       #: what was drawn: kind, fwhm_nm, lr_pixel_nm, snr, haze, defocus_nm


def _snr_scale(expected: np.ndarray, snr: float, background_photons: float, read_noise_e: float) -> float:
    """Photons per unit of ``expected`` for ``snr`` (:func:`~microsr.synthetic.specimens.degrade`'s definition);
    a field with no background pixels left (dense, hazy) falls back to the SNR of its mean signal."""
    try:
        return _photon_scale(expected, snr, background_photons, read_noise_e)
    except InputError:
        mean = float(expected.mean())
        c = background_photons + read_noise_e ** 2
        # snr = a·m / sqrt(a·m + c)  →  (a·m)² − snr²·(a·m) − snr²·c = 0
        signal = (snr ** 2 + np.sqrt(snr ** 4 + 4 * snr ** 2 * c)) / 2
        return signal / max(mean, 1e-12)


def widefield_pair(kind: str, *, scale: int = 4, lr_patch_px: int = 32, lr_pixel_nm: float = 100.0,
                   fwhm_nm: float = 250.0, snr: float = 10.0, haze: float = 0.0, defocus_nm: float = 1200.0,
                   defects: AcquisitionDefects | None = None, background_photons: float = 10.0,
                   read_noise_e: float = 1.5, seed: int | np.random.Generator = 0) -> WidefieldPair:
    """One widefield field of ``kind`` with haze and camera defects, its clean twin and its in-focus SR target.

    ``haze`` is the out-of-focus signal as a fraction of the in-focus signal (0: a perfect section, 1:
    as much light from above and below as from the plane; a thick cell in widefield gives 1–3),
    blurred by ``defocus_nm`` (FWHM) on top of the PSF.

    Examples
    --------
    >>> pair = widefield_pair("er", lr_patch_px=16, haze=1.0, seed=0)
    >>> pair.noisy.shape, pair.target.shape, float(pair.target.max())
    ((16, 16), (64, 64), 1.0)
    """
    for name, value in (("fwhm_nm", fwhm_nm), ("lr_pixel_nm", lr_pixel_nm), ("snr", snr), ("defocus_nm", defocus_nm)):
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be positive, got {value}")
    if not np.isfinite(haze) or haze < 0:
        raise InputError(f"haze must be a fraction ≥ 0 of the in-focus signal, got {haze}")
    rng = np.random.default_rng(seed)
    gt_pixel_nm, k = _training_gt_pixel(lr_pixel_nm, scale)
    ratio = scale * k
    margin = max(3, int(np.ceil(defocus_nm / lr_pixel_nm)))  # the haze reaches in from outside the patch
    field_lr = lr_patch_px + 2 * margin
    field_um = field_lr * lr_pixel_nm / 1000.0
    for _ in range(20):  # an empty patch (everything in the margin) is drawn again
        in_focus = specimen(kind, field_um, gt_pixel_nm, rng)[:field_lr * ratio, :field_lr * ratio]
        target = _binned_crop(in_focus, margin, lr_patch_px, scale, k)
        if target.max() > 0:
            break
    else:
        raise InputError("could not draw a non-empty patch; use a larger lr_patch_px")
    psf_sigma = fwhm_nm / _FWHM_PER_SIGMA / gt_pixel_nm
    expected = _blur_and_bin_crop(in_focus, psf_sigma, ratio, margin, lr_patch_px)
    if haze > 0:
        # The planes above and below hold the same kind of structure, not the same structures: the field
        # turned and shifted (cheaper than drawing another, and as different once defocused).
        above = np.roll(np.rot90(in_focus, int(rng.integers(1, 4))), tuple(rng.integers(0, in_focus.shape[0], 2)),
                        axis=(0, 1))
        above = above * (haze * in_focus.sum() / max(float(above.sum()), 1e-12))
        defocused = np.hypot(fwhm_nm, defocus_nm) / _FWHM_PER_SIGMA / gt_pixel_nm
        expected = expected + _blur_and_bin_crop(above, defocused, ratio, margin, lr_patch_px)
    photons = _snr_scale(expected, snr, background_photons, read_noise_e)
    counts = _add_noise(expected, photons, background_photons, read_noise_e, rng) + np.float32(_OFFSET_ADU)
    if defects is not None:
        camera = AcquisitionDefects(**{**defects.to_dict(), "hot_pixel_fraction": 0.0, "dead_pixel_fraction": 0.0})
        counts, _ = camera_defects(counts, camera, rng, offset_adu=_OFFSET_ADU)
    clean = (expected * photons + background_photons).astype(np.float32)
    return WidefieldPair(noisy=(counts - np.float32(_OFFSET_ADU)).astype(np.float32), clean=clean,
                         target=(target / target.max()).astype(np.float32),
                         instrument={"kind": kind, "fwhm_nm": float(fwhm_nm), "lr_pixel_nm": float(lr_pixel_nm),
                                     "snr": float(snr), "haze": float(haze), "defocus_nm": float(defocus_nm)})
