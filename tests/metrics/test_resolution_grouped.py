"""Decorrelation curves summed per distinct radius equal the curves summed pixel by pixel; FRC on half planes
equals FRC on full planes."""

import numpy as np
import pytest
from scipy import ndimage

from microsr.metrics import resolution
from microsr.metrics.resolution import _apodize, _SortedSpectrum


def _pixel_by_pixel_curve(image, sigma_px, radii):
    """d(r) straight from its definition over every pixel of the full Fourier plane."""
    spectrum = np.fft.fft2(_apodize(image - image.mean()))
    radius = 2.0 * np.hypot(np.fft.fftfreq(image.shape[0])[:, None], np.fft.fftfreq(image.shape[1])[None, :])
    amplitude = np.abs(spectrum)
    highpass = 1.0 if sigma_px is None else -np.expm1(-2.0 * np.pi**2 * sigma_px**2 * (radius / 2) ** 2)
    keep = (radius > 0) & (radius < 1.0) & (amplitude > 0)
    norm = np.sqrt(np.sum((amplitude * highpass)[keep] ** 2))
    curve = []
    for r in radii:
        inside = keep & (radius < r)
        count = inside.sum()
        curve.append(0.0 if count == 0 else np.sum((amplitude * highpass)[inside]) / (norm * np.sqrt(count)))
    return np.array(curve)


@pytest.mark.parametrize("shape", [(64, 64), (50, 71), (64, 33)])
@pytest.mark.parametrize("sigma_px", [None, 1.5])
def test_curves_summed_per_radius_equal_pixel_by_pixel(shape, sigma_px):
    image = ndimage.gaussian_filter(np.random.default_rng(0).random(shape), 1.0)
    radii = np.linspace(0.0, 1.0, 37)
    spectrum = _SortedSpectrum(np.fft.rfft2(_apodize(image - image.mean())), shape)
    curve, _ = spectrum.curve(sigma_px, radii)
    assert np.abs(curve - _pixel_by_pixel_curve(image, sigma_px, radii)).max() < 1e-12


@pytest.mark.parametrize("shape", [(64, 64), (60, 45)])
def test_frc_on_half_planes_equals_full_planes(shape):
    rng = np.random.default_rng(1)
    specimen = ndimage.gaussian_filter(rng.random(shape), 2.0) * 1000
    first, second = rng.poisson(specimen).astype(float), rng.poisson(specimen).astype(float)
    result = resolution.fourier_ring_correlation(first, second, 20.0, threshold="half-bit")
    edge = max(20, int(min(shape) / 8))
    f1 = np.fft.fft2(_apodize(first - first.mean(), edge))
    f2 = np.fft.fft2(_apodize(second - second.mean(), edge))
    frequency = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :])
    ring = np.rint(frequency / (1.0 / min(shape))).astype(int).ravel()  # as the metric rounds
    n = int(np.floor(0.5 * min(shape))) + 1
    inside = ring < n
    cross = np.bincount(ring[inside], (f1 * np.conj(f2)).real.ravel()[inside], n)
    power = [np.bincount(ring[inside], (np.abs(f) ** 2).ravel()[inside], n) for f in (f1, f2)]
    assert np.abs(result.correlation - cross / np.sqrt(power[0] * power[1])).max() < 1e-12
