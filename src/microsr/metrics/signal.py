"""How much signal an image holds: signal density of a ground truth and SNR of a low-resolution image."""

import numpy as np

from microsr.errors import InputError
from microsr.metrics.checks import as_image

__all__ = ["signal_density", "signal_to_noise"]


def signal_density(ground_truth, *, threshold=None):
    """Fraction of the pixels of a ground-truth image that carry signal (SFSRM eq. 19).

    The image is binarized (pixel > ``threshold``), and the signal pixels are counted against all
    pixels.

    Parameters
    ----------
    ground_truth : array_like, shape (Y, X)
        Ground-truth (or high-resolution) image.
    threshold : float, optional
        Intensity above which a pixel carries signal; default Otsu's threshold of the image.

    Returns
    -------
    float
        Signal density in [0, 1].

    References
    ----------
    SFSRM (paper 003 of this project), Methods, eq. 19:
    signal density = Pixel_signal / Pixel_total.
    N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Syst. Man Cybern.
    9, 62 (1979).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((10, 10)); image[:5] = 1.0
    >>> signal_density(image)
    0.5
    """
    # imported on first use, as the other SciPy/scikit-image parts of the metrics: they cost start-up time
    from skimage.filters import threshold_otsu

    ground_truth = as_image(ground_truth, "ground truth")
    if threshold is None:
        if np.ptp(ground_truth) == 0:
            raise InputError("ground truth is constant, so signal and background cannot be told apart; "
                             "pass a threshold or a real image")
        threshold = threshold_otsu(ground_truth)
    return float(np.mean(ground_truth > threshold))


def signal_to_noise(image, *, background=None, signal_mask=None):
    """Signal-to-noise ratio of a low-resolution fluorescence image.

    ``SNR = S / sqrt(S + σ_bg²)`` with ``S`` the mean background-subtracted intensity over the signal
    pixels (its Poisson shot-noise variance equals ``S``) and ``σ_bg²`` the variance of the background
    pixels (background shot noise plus camera read noise). The image must therefore be in photons
    (photoelectrons): subtract the camera offset and divide by the gain first.

    SFSRM refers to its Supplementary Note 1 for the SNR estimate but the paper does not give the
    formula. This is our choice: the shot-noise camera SNR equation (signal shot noise plus the
    measured background noise), with the background noise measured from the image itself.

    Parameters
    ----------
    image : array_like, shape (Y, X)
        Low-resolution image in photons.
    background : float or array_like of shape (Y, X), optional
        Background level (photons) to subtract; default the median of the background pixels.
    signal_mask : array_like of bool, shape (Y, X), optional
        Pixels that carry signal; default Otsu's threshold of the image smoothed by a 1-pixel Gaussian
        (smoothing keeps single noisy pixels out of the mask). The remaining pixels are background.

    Returns
    -------
    float
        Signal-to-noise ratio.

    References
    ----------
    SFSRM (paper 003 of this project), Results and Supplementary Note 1 (SNR 1–20 of the LR images).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = np.full((64, 64), 10.0); truth[24:40, 24:40] += 100.0
    >>> snr = signal_to_noise(rng.poisson(truth).astype(float))
    >>> 9.0 < snr < 10.5
    True
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    image = as_image(image, "image")
    if signal_mask is None:
        smoothed = ndimage.gaussian_filter(image, 1.0)
        if np.ptp(smoothed) == 0:
            raise InputError("image is constant, so it has no signal to measure; pass a real image")
        signal_mask = smoothed > threshold_otsu(smoothed)
    else:
        signal_mask = np.asarray(signal_mask)
        if signal_mask.shape != image.shape:
            raise InputError(f"signal mask {signal_mask.shape} and image {image.shape} differ in shape; "
                             "pass a mask of the image's shape")
        signal_mask = signal_mask.astype(bool)
    background_mask = ~signal_mask
    if not signal_mask.any() or not background_mask.any():
        raise InputError("the signal mask must leave both signal and background pixels; "
                         "pass a mask with both")

    background_pixels = image[background_mask]
    if background is None:
        # The median resists the tails of structures that the mask missed.
        background_level = np.median(background_pixels)
        signal = image[signal_mask] - background_level
    else:
        background = np.asarray(background, dtype=np.float64)
        if background.ndim not in (0, 2) or (background.ndim == 2 and background.shape != image.shape):
            raise InputError(f"background must be a number or an image of shape {image.shape}, "
                             f"got shape {background.shape}")
        if not np.all(np.isfinite(background)):
            raise InputError("background contains NaN or infinite values; pass a finite background")
        background_image = np.broadcast_to(background, image.shape)
        signal = image[signal_mask] - background_image[signal_mask]
        background_pixels = background_pixels - background_image[background_mask]
    background_variance = np.var(background_pixels)
    mean_signal = float(np.mean(signal))
    if mean_signal <= 0:
        raise InputError("the signal pixels are not brighter than the background; "
                         "check the background level or the signal mask")
    return mean_signal / float(np.sqrt(mean_signal + background_variance))
