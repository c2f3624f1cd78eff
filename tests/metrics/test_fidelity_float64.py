"""The NumPy MS-SSIM equals the differentiable torch one, and SSIM in strips equals scikit-image's on the whole."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

import microsr.metrics.fidelity as fidelity
from microsr.errors import InputError
from microsr.losses import ms_ssim_torch


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    truth = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return truth + 0.05 * rng.standard_normal(shape), truth


@pytest.mark.parametrize("shape", [(64, 64), (131, 97), (40, 200)])
@pytest.mark.parametrize("options", [{}, {"win_size": 11, "sigma": 2.0}, {"weights": [0.6, 0.4]}])
def test_ms_ssim_equals_ms_ssim_torch(shape, options):
    image, truth = _pair(shape, 0)
    if min(shape) < options.get("win_size", 7):
        pytest.skip("window larger than the image")
    expected = float(ms_ssim_torch(torch.from_numpy(image)[None, None], torch.from_numpy(truth)[None, None],
                                   data_range=float(np.ptp(truth)), **options))
    value = fidelity.ms_ssim(image, truth, normalization="none", data_range=float(np.ptp(truth)), **options)
    assert value == pytest.approx(expected, abs=1e-12)


def test_ms_ssim_rejects_what_the_torch_version_rejects():
    image, truth = _pair((64, 64), 1)
    for options in ({"sigma": 0.0}, {"weights": []}, {"weights": [0.5, -0.1]}, {"win_size": 8}, {"win_size": 71}):
        with pytest.raises(InputError):
            fidelity.ms_ssim(image, truth, **options)


@pytest.mark.parametrize("win_size", [3, 7])
def test_ssim_in_strips_equals_scikit_image_on_the_whole_image(monkeypatch, win_size):
    image, truth = _pair((150, 64), 2)
    expected = structural_similarity(truth, image, win_size=win_size, data_range=float(np.ptp(truth)),
                                     K1=0.01, K2=0.03)
    monkeypatch.setattr(fidelity, "_STRIP_PIXELS", 64 * 20)  # strips of 20 rows (a short last one joins)
    assert len(fidelity._row_strips(150, 64, win_size)) > 5
    value = fidelity.ssim(image, truth, normalization="none", win_size=win_size, data_range=float(np.ptp(truth)))
    assert value == pytest.approx(expected, abs=1e-12)
