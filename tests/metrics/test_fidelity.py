"""Tests for microsr.metrics.fidelity: known answers, agreement with skimage and pytorch-msssim, bad inputs."""

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference_ms_ssim
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from microsr.errors import InputError
from microsr.losses import ms_ssim_torch
from microsr.metrics.fidelity import ms_ssim, normalize, nrmse, pearson, psnr, ssim


def specimen(size=64, seed=0):
    """Smooth blobs on a dim background in 0..1: structure at several scales, like a fluorescence image."""
    rng = np.random.default_rng(seed)
    image = gaussian_filter(rng.random((size, size)), 2.0) + 0.5 * gaussian_filter(rng.random((size, size)), 6.0)
    image -= image.min()
    return image / image.max()


def noisy(image, sigma, seed=1):
    return image + sigma * np.random.default_rng(seed).standard_normal(image.shape)


# --- known answers ------------------------------------------------------------------------------------------


def test_identical_images_score_perfectly():
    truth = (specimen() * 4000).astype(np.uint16)  # camera counts: any numeric dtype is accepted

    assert ssim(truth, truth) == pytest.approx(1.0, abs=1e-9)
    assert ms_ssim(truth, truth) == pytest.approx(1.0, abs=1e-9)
    assert psnr(truth, truth) is None  # infinite PSNR is reported as None, not inf
    assert nrmse(truth, truth) == pytest.approx(0.0, abs=1e-12)
    assert pearson(truth, truth) == pytest.approx(1.0, abs=1e-12)


def test_percentile_normalization_maps_percentiles_to_0_and_1_without_clipping():
    image = np.arange(1001.0).reshape(7, 143)  # values 0..1000 spread uniformly

    result = normalize(image, low=10, high=90)

    assert np.percentile(result, 10) == pytest.approx(0.0, abs=1e-12)
    assert np.percentile(result, 90) == pytest.approx(1.0, abs=1e-12)
    assert result.min() < -0.1 and result.max() > 1.1  # tails kept, not clipped
    assert result.dtype == np.float64


def test_linear_fit_makes_gain_and_offset_invisible():
    truth = specimen()
    test = noisy(truth, 0.05)

    plain = psnr(test, truth, normalization="linear_fit")
    scaled = psnr(3 * test + 7, truth, normalization="linear_fit")

    assert scaled == pytest.approx(plain, rel=1e-9)
    assert ssim(3 * test + 7, truth, normalization="linear_fit") == pytest.approx(
        ssim(test, truth, normalization="linear_fit"), abs=1e-9)
    assert np.allclose(normalize(3 * truth + 7, truth, method="linear_fit"), normalize(truth), atol=1e-9)


def test_pearson_is_gain_invariant_and_none_for_constant_image():
    truth = specimen()

    assert pearson(3 * truth + 7, truth) == pytest.approx(1.0, abs=1e-12)
    assert pearson(-truth, truth) == pytest.approx(-1.0, abs=1e-12)
    assert pearson(np.full_like(truth, 5.0), truth) is None


# --- agreement with the reference implementations ---------------------------------------------------------


def test_psnr_equals_skimage_on_the_same_normalized_inputs():
    truth = specimen()
    test = noisy(truth, 0.1)

    ours = psnr(test, truth)
    theirs = peak_signal_noise_ratio(normalize(truth), normalize(test), data_range=np.ptp(normalize(truth)))

    assert ours == pytest.approx(theirs, abs=1e-3)


def test_ssim_equals_skimage_on_the_same_inputs():
    truth = specimen()
    test = noisy(truth, 0.1)

    ours = ssim(test, truth, normalization="none", win_size=7, data_range=1.0)
    theirs = structural_similarity(truth, test, win_size=7, data_range=1.0)

    assert ours == pytest.approx(theirs, abs=1e-3)


def test_nrmse_is_rmse_over_reference_range():
    truth = specimen()
    test = noisy(truth, 0.1)

    expected = np.sqrt(np.mean((truth - test) ** 2)) / np.ptp(truth)

    assert nrmse(test, truth, normalization="none") == pytest.approx(expected, rel=1e-9)


def test_ms_ssim_equals_pytorch_msssim_with_five_scales():
    truth = specimen(256)
    test = noisy(truth, 0.1)
    x = torch.from_numpy(test)[None, None]
    y = torch.from_numpy(truth)[None, None]

    ours = ms_ssim(test, truth, normalization="none", win_size=11, data_range=1.0)
    theirs = float(reference_ms_ssim(x, y, data_range=1.0, win_size=11, size_average=True))

    assert 0.3 < theirs < 0.99  # a regime where a wrong scale or weight would show
    assert ours == pytest.approx(theirs, abs=1e-3)


# --- small images, noise and gradients --------------------------------------------------------------------


def test_ms_ssim_on_64_px_falls_monotonically_with_noise():
    truth = specimen(64)

    scores = [ms_ssim(noisy(truth, sigma), truth, normalization="none", data_range=1.0)
              for sigma in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]

    assert scores[0] == pytest.approx(1.0, abs=1e-9)
    assert all(later < earlier for earlier, later in zip(scores, scores[1:]))


def test_ms_ssim_torch_is_differentiable():
    truth = torch.from_numpy(specimen(64)).float()[None, None]
    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    test = (truth + 0.1 * noise).requires_grad_(True)

    loss = 1 - ms_ssim_torch(test, truth)
    loss.backward()

    assert test.grad is not None
    assert torch.isfinite(test.grad).all() and test.grad.abs().sum() > 0


def test_ms_ssim_torch_gradient_stays_finite_for_anticorrelated_images():
    truth = torch.from_numpy(specimen(64)).float()[None, None]
    test = (1 - truth).clone().requires_grad_(True)  # negative contrast-structure: clamped to 0

    value = ms_ssim_torch(test, truth)
    value.backward()

    assert float(value.detach()) == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(test.grad).all()


# --- bad inputs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [psnr, ssim, ms_ssim, nrmse, pearson])
def test_shape_mismatch_raises_input_error_naming_both_shapes(score):
    with pytest.raises(InputError, match=r"\(64, 64\).*\(32, 32\)"):
        score(specimen(64), specimen(32))


@pytest.mark.parametrize("score", [psnr, ssim, ms_ssim, nrmse, pearson])
def test_nan_raises_input_error(score):
    image = specimen()
    image[3, 5] = np.nan

    with pytest.raises(InputError, match="NaN"):
        score(image, specimen())


def test_inf_raises_input_error():
    image = specimen()
    image[0, 0] = np.inf

    with pytest.raises(InputError, match="infinite"):
        psnr(specimen(), image)


@pytest.mark.parametrize("score", [psnr, ssim, ms_ssim, nrmse])
def test_constant_image_with_percentile_normalization_raises_input_error(score):
    with pytest.raises(InputError, match="constant image"):
        score(np.full((64, 64), 3.0), specimen())


def test_three_dimensional_input_raises_input_error():
    with pytest.raises(InputError, match="2-D"):
        ssim(np.zeros((2, 64, 64)), np.zeros((2, 64, 64)))


def test_unknown_normalization_and_missing_reference_raise_input_error():
    with pytest.raises(InputError, match="unknown normalization"):
        psnr(specimen(), specimen(), normalization="zscore")
    with pytest.raises(InputError, match="reference"):
        normalize(specimen(), method="linear_fit")


def test_image_smaller_than_window_raises_input_error():
    with pytest.raises(InputError, match="window"):
        ms_ssim(specimen(5), specimen(5))
