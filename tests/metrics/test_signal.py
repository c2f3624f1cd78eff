"""Known answers of signal density and SNR."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.metrics.signal import signal_density, signal_to_noise


def test_signal_density_of_half_filled_binary_image():
    image = np.zeros((64, 64))
    image[:, :32] = 1.0
    assert signal_density(image) == pytest.approx(0.5, abs=1e-12)


def test_signal_density_with_explicit_threshold():
    image = np.linspace(0.0, 1.0, 100).reshape(10, 10)
    assert signal_density(image, threshold=0.745) == pytest.approx(0.25, abs=0.011)


def test_signal_density_rejects_bad_inputs():
    with pytest.raises(InputError):
        signal_density(np.ones((8, 8)))
    with pytest.raises(InputError):
        signal_density(np.full((8, 8), np.nan))


def _poisson_scene(photons, seed=0):
    """Signal square of ``photons`` on a background of 0.2 * ``photons`` (both scale with exposure)."""
    truth = np.full((128, 128), 0.2)
    truth[32:96, 48:80] += 1.0
    mask = truth > 0.5
    return np.random.default_rng(seed).poisson(photons * truth).astype(float), mask


def test_snr_of_poisson_image_matches_theory_and_grows_as_sqrt_photons():
    snrs = []
    for photons in (25.0, 100.0, 400.0):
        image, mask = _poisson_scene(photons)
        snr = signal_to_noise(image, signal_mask=mask)
        # S = photons, background variance = 0.2 * photons (Poisson)
        assert snr == pytest.approx(photons / np.sqrt(1.2 * photons), rel=0.05)
        snrs.append(snr)
    assert snrs[1] / snrs[0] == pytest.approx(2.0, rel=0.1)
    assert snrs[2] / snrs[1] == pytest.approx(2.0, rel=0.1)


def test_snr_with_default_mask_and_known_background():
    image, mask = _poisson_scene(100.0, seed=3)
    expected = 100.0 / np.sqrt(120.0)
    assert signal_to_noise(image) == pytest.approx(expected, rel=0.1)
    assert signal_to_noise(image, background=20.0, signal_mask=mask) == pytest.approx(expected, rel=0.05)


def test_snr_rejects_bad_inputs():
    image, mask = _poisson_scene(100.0)
    with pytest.raises(InputError):
        signal_to_noise(np.full((16, 16), 5.0))
    with pytest.raises(InputError):
        signal_to_noise(np.where(mask, np.nan, image))
    with pytest.raises(InputError):
        signal_to_noise(image, signal_mask=mask[:64])
    with pytest.raises(InputError):
        signal_to_noise(image, signal_mask=np.ones_like(mask))
    with pytest.raises(InputError):
        signal_to_noise(image, background=1e6, signal_mask=mask)
