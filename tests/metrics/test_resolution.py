"""Tests of microsr.metrics.resolution: decorrelation analysis and Fourier ring correlation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from microsr.errors import InputError
from microsr.metrics.resolution import (
    DecorrelationResult,
    FRCResult,
    decorrelation_resolution,
    fourier_ring_correlation,
)

PIXEL_SIZE_NM = 25.0
FWHMS_NM = (150.0, 200.0, 250.0, 300.0, 375.0)
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
PHOTONS_PER_PIXEL_OF_FILAMENT = 300.0
BACKGROUND_PHOTONS = 5.0


def _filaments(size_px: int = 512, count: int = 20, seed: int = 0) -> np.ndarray:
    """Thin random curved lines, one unit of intensity per pixel of length, splatted bilinearly."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size_px, size_px))
    samples_per_px = 8
    t = np.linspace(0.0, 1.0, samples_per_px * size_px)
    for _ in range(count):
        x0, y0 = rng.uniform(0, size_px, 2)
        angle = rng.uniform(0, 2 * np.pi)
        along = (t - 0.5) * rng.uniform(0.5, 1.2) * size_px
        across = sum(rng.normal(0, 0.08 * size_px / k) * np.sin(2 * np.pi * k * t + rng.uniform(0, 2 * np.pi))
                     for k in (1, 2, 3))
        x = x0 + along * np.cos(angle) - across * np.sin(angle)
        y = y0 + along * np.sin(angle) + across * np.cos(angle)
        inside = (x >= 0) & (x < size_px - 1) & (y >= 0) & (y < size_px - 1)
        x, y = x[inside], y[inside]
        ix, iy = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - ix, y - iy
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                          (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            np.add.at(image, (iy + dy, ix + dx), w)
    return image / samples_per_px


@pytest.fixture(scope="module")
def blurred_filament_resolutions() -> dict[float, DecorrelationResult]:
    specimen = _filaments()
    rng = np.random.default_rng(1)
    results = {}
    for fwhm_nm in FWHMS_NM:
        sigma_px = fwhm_nm / FWHM_PER_SIGMA / PIXEL_SIZE_NM
        expected = gaussian_filter(specimen, sigma_px) * PHOTONS_PER_PIXEL_OF_FILAMENT + BACKGROUND_PHOTONS
        results[fwhm_nm] = decorrelation_resolution(rng.poisson(expected).astype(float), PIXEL_SIZE_NM)
    return results


def test_decorrelation_resolution_grows_with_blur(blurred_filament_resolutions):
    resolutions = [blurred_filament_resolutions[f].resolution_nm for f in FWHMS_NM]

    assert all(r is not None for r in resolutions)
    assert np.all(np.diff(resolutions) > 0), resolutions
    # Same photon level: the noise floor is the same, so k_c scales nearly as 1/FWHM (ratio 2.5).
    assert 1.8 <= resolutions[-1] / resolutions[0] <= 3.2, resolutions


def test_decorrelation_resolution_is_near_the_blur(blurred_filament_resolutions):
    # At a few tens of photons per pixel the cut-off lies a little below the Gaussian FWHM's frequency.
    for fwhm_nm in FWHMS_NM:
        assert 0.8 * fwhm_nm <= blurred_filament_resolutions[fwhm_nm].resolution_nm <= 2.0 * fwhm_nm


def test_decorrelation_result_is_consistent(blurred_filament_resolutions):
    result = blurred_filament_resolutions[200.0]

    assert result.curves.shape == (len(result.peaks), len(result.radii))
    assert result.curves.shape[0] == len(result.highpass_sigma_px)
    assert np.all(np.diff(result.radii) > 0) and result.radii[0] >= 0 and result.radii[-1] <= 1
    assert result.resolution_nm == pytest.approx(2 * PIXEL_SIZE_NM / result.cutoff)
    assert result.cutoff == pytest.approx(max(r for r, a in result.peaks if np.isfinite(r) and a >= 0.05))


def test_decorrelation_without_refinement_agrees_within_15_percent():
    specimen = _filaments(256, 10, seed=3)
    image = np.random.default_rng(4).poisson(gaussian_filter(specimen, 3.0) * 300 + 5).astype(float)

    coarse = decorrelation_resolution(image, PIXEL_SIZE_NM, refine=False)
    fine = decorrelation_resolution(image, PIXEL_SIZE_NM, refine=True)

    assert coarse.curves.shape == (11, 50)
    assert coarse.resolution_nm == pytest.approx(fine.resolution_nm, rel=0.15)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(32, 32), (64, 100), (256, 256)])
def test_decorrelation_of_pure_noise_is_undefined(seed, shape):
    rng = np.random.default_rng(seed)

    for noise in (rng.poisson(10.0, shape).astype(float), rng.normal(size=shape)):
        assert decorrelation_resolution(noise, 20.0).resolution_nm is None


def test_decorrelation_of_constant_image_is_undefined():
    result = decorrelation_resolution(np.full((64, 64), 7.0), 20.0)

    assert result.resolution_nm is None and result.cutoff is None


def _band_limited_pair(size_px: int, cutoff_per_px: float, noise_sd: float, seed: int):
    rng = np.random.default_rng(seed)
    frequency = np.hypot(np.fft.fftfreq(size_px)[:, None], np.fft.fftfreq(size_px)[None, :])
    specimen = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size_px, size_px))) * (frequency < cutoff_per_px)).real
    specimen = 50.0 + 10.0 * specimen / specimen.std()
    return (specimen + rng.normal(0, noise_sd, specimen.shape),
            specimen + rng.normal(0, noise_sd, specimen.shape))


@pytest.mark.parametrize("cutoff_per_px, threshold", [(0.2, "1/7"), (0.3, "1/7"), (0.2, "half-bit")])
def test_frc_finds_the_band_limit(cutoff_per_px, threshold):
    pixel_size_nm = 20.0
    first, second = _band_limited_pair(256, cutoff_per_px, noise_sd=10.0, seed=3)

    result = fourier_ring_correlation(first, second, pixel_size_nm, threshold=threshold)

    cutoff_per_um = cutoff_per_px / pixel_size_nm * 1000.0
    assert isinstance(result, FRCResult)
    assert 1000.0 / result.resolution_nm == pytest.approx(cutoff_per_um, rel=0.10)
    assert result.frequencies_per_um[-1] == pytest.approx(0.5 / pixel_size_nm * 1000.0, rel=0.01)
    assert result.correlation.shape == result.threshold_curve.shape == result.frequencies_per_um.shape


def test_frc_of_identical_images_never_crosses():
    image, _ = _band_limited_pair(64, 0.3, noise_sd=10.0, seed=0)

    assert fourier_ring_correlation(image, image, 20.0).resolution_nm is None


def test_frc_half_bit_threshold_follows_ring_size():
    first, second = _band_limited_pair(128, 0.2, noise_sd=10.0, seed=1)

    threshold = fourier_ring_correlation(first, second, 20.0, threshold="half-bit").threshold_curve

    # The outermost ring (radius 64 px) holds about 2π·64 pixels; smaller rings lie higher, all above
    # van Heel & Schatz's asymptote 0.2071 / 1.2071.
    n_outer = 2 * np.pi * 64
    expected_outer = (0.2071 + 1.9102 / np.sqrt(n_outer)) / (1.2071 + 0.9102 / np.sqrt(n_outer))
    assert threshold[-1] == pytest.approx(expected_outer, abs=0.01)
    assert threshold[1] > threshold[-1]
    assert np.all(threshold > 0.2071 / 1.2071)


GOOD = np.random.default_rng(0).normal(size=(64, 64))


@pytest.mark.parametrize("image, pixel_size_nm", [
    (np.zeros((4, 64, 64)), 20.0),
    (np.zeros(64), 20.0),
    (np.zeros((16, 64)), 20.0),
    (np.where(np.eye(64) > 0, np.nan, 1.0), 20.0),
    (np.where(np.eye(64) > 0, np.inf, 1.0), 20.0),
    (GOOD, 0.0),
    (GOOD, -5.0),
    (GOOD, float("nan")),
])
def test_bad_inputs_raise_input_error(image, pixel_size_nm):
    with pytest.raises(InputError):
        decorrelation_resolution(image, pixel_size_nm)
    with pytest.raises(InputError):
        fourier_ring_correlation(image, image, pixel_size_nm)


def test_frc_rejects_mismatched_shapes_and_unknown_threshold():
    with pytest.raises(InputError):
        fourier_ring_correlation(GOOD, GOOD[:48], 20.0)
    with pytest.raises(InputError):
        fourier_ring_correlation(GOOD, GOOD, 20.0, threshold="3-sigma")
