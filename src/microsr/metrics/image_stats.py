"""What a widefield image is like, measured on the image alone: apparent PSF width, SNR, haze, signal density.

A super-resolution network is only as good as the match between the images it was trained on and
the one it is given. These four numbers are what decides the match for SFSRM (paper 003's discussion:
it fails on structures, blur and noise it has not seen); they are measured the same way on the
training inputs (saved in the model file) and on every input (:meth:`microsr.models.sfsrm.SFSRMModel.check_range`).
All four are independent of the camera's gain and offset.
"""

from __future__ import annotations

import numpy as np

from microsr.metrics.checks import as_image

#: FWHM of a Gaussian per standard deviation.
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Radius (µm) of the structuring element whose grey opening is the haze: wider than any in-focus tubule or
#: spot, narrower than a defocused cell.
HAZE_RADIUS_UM = 0.6


def _radial_power(image: np.ndarray, pixel_size_nm: float, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the Hann-windowed image: ``(k in cycles/µm, power)``."""
    centred = image - image.mean()
    window = np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1]))
    power = np.abs(np.fft.fft2(centred * window)) ** 2
    pixel_um = pixel_size_nm / 1000.0
    k = np.hypot(np.fft.fftfreq(image.shape[0], pixel_um)[:, None], np.fft.fftfreq(image.shape[1], pixel_um)[None, :])
    edges = np.linspace(0, 0.5 / pixel_um, bins + 1)
    index = np.digitize(k.ravel(), edges)
    counts = np.bincount(index, minlength=bins + 2)[1:bins + 1]
    sums = np.bincount(index, weights=power.ravel(), minlength=bins + 2)[1:bins + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * (edges[1:] + edges[:-1]), sums / counts


def apparent_psf_fwhm_nm(image, pixel_size_nm: float) -> float:
    """FWHM (nm) of the Gaussian blur the image's spectrum shows; NaN where the spectrum shows none.

    The radial power spectrum above the noise floor (its top 15 % of frequencies) is fitted by
    ``a − 4π²σ²k² − γ log k``: the Gaussian OTF squared times a power-law specimen spectrum. On
    simulated fields of filaments, ER networks and puncta at 100 nm pixels it reads PSFs of 280–450 nm
    within ~10 % and 200 nm 5–18 % high (the structure then reaches the frequencies the noise floor
    is read at); wide structures (mitochondria, 250 nm) add their own width, as they do to what a
    network sees.

    Examples
    --------
    >>> from microsr.synthetic.widefield import widefield_pair
    >>> image = widefield_pair("filaments", lr_patch_px=128, fwhm_nm=300.0, snr=20.0, seed=0).noisy
    >>> 270 < apparent_psf_fwhm_nm(image, 100.0) < 330
    True
    """
    image = as_image(image, "image")
    k, power = _radial_power(image, pixel_size_nm)
    nyquist = 0.5 / (pixel_size_nm / 1000.0)
    noise = np.nanmedian(power[k > 0.85 * nyquist])
    signal = power - noise
    usable = (k > 0.08 * nyquist) & (signal > 3 * noise)
    if usable.sum() < 3:
        return float("nan")
    start = int(np.argmax(usable))
    stop = start + (int(np.argmax(~usable[start:])) if (~usable[start:]).any() else usable.size - start)
    if stop - start < 3:
        return float("nan")
    chosen = slice(start, stop)
    design = np.stack([np.ones(stop - start), -k[chosen] ** 2, -np.log(k[chosen])], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, np.log(signal[chosen]), rcond=None)
    if coefficients[1] <= 0:
        return float("nan")
    return float(_FWHM_PER_SIGMA * np.sqrt(coefficients[1]) / (2 * np.pi) * 1000.0)


def noise_sigma(image, pixel_size_nm: float) -> float:
    """Standard deviation of the image's noise: its power beyond 85 % of Nyquist, where a blurred image has
    no signal left (white noise has the same power at every frequency)."""
    image = as_image(image, "image")
    k, power = _radial_power(image, pixel_size_nm)
    window_energy = float(np.sum(np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1])) ** 2))
    return float(np.sqrt(np.nanmedian(power[k > 0.85 * k.max()]) / window_energy))


def image_statistics(image, pixel_size_nm: float) -> dict:
    """The four numbers an SFSRM model's training range is given in, for one widefield image.

    Returns ``psf_fwhm_nm`` (:func:`apparent_psf_fwhm_nm`), ``snr`` (the structures' brightness above
    the darkest 5 % over the noise, :func:`noise_sigma`: no gain needed),
    ``haze`` (the share of the signal that a grey opening of :data:`HAZE_RADIUS_UM` keeps: light
    spread over regions wider than any in-focus structure) and ``density`` (the fraction of pixels
    above Otsu's threshold of the smoothed image).
    """
    # imported on first use, as the other SciPy/scikit-image parts of the metrics: they cost start-up time
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    image = as_image(image, "image")
    floor = float(np.percentile(image, 5))
    noise = noise_sigma(image, pixel_size_nm)
    smoothed = ndimage.gaussian_filter(image, 1.0)
    peak = float(np.percentile(smoothed, 99.5))
    radius = max(1, int(round(HAZE_RADIUS_UM * 1000.0 / pixel_size_nm)))
    disk = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius
    haze = ndimage.grey_opening(smoothed, footprint=disk)
    above = max(float(np.mean(smoothed - floor)), 1e-12)
    density = float(np.mean(smoothed > threshold_otsu(smoothed))) if np.ptp(smoothed) > 0 else 0.0
    return {"psf_fwhm_nm": apparent_psf_fwhm_nm(image, pixel_size_nm),
            "snr": (peak - floor) / max(noise, 1e-12),
            "haze": float(np.clip(np.mean(haze - floor) / above, 0.0, 1.0)),
            "density": density}
