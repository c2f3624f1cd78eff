"""Blurs and block means in the cosine-transform domain equal SciPy's reflect-mode filters and block averages."""

import numpy as np
import pytest
from scipy import ndimage

from microsr.metrics.cosine import (binned_spectrum, blur_at, cosine_spectrum, from_cosine_spectrum, gaussian_kernel,
                                    gaussian_transfer, inverse_cosine_spectrum)


@pytest.mark.parametrize("shape", [(64, 64), (37, 52)])
@pytest.mark.parametrize("sigma", [0.3, 1.7, 6.0, 40.0])  # 40 px: a kernel longer than the image
def test_blur_by_transfer_functions_equals_scipy(shape, sigma):
    image = np.random.default_rng(0).random(shape)
    blurred = from_cosine_spectrum(cosine_spectrum(image), gaussian_transfer(sigma, shape[0]),
                                   gaussian_transfer(sigma, shape[1]))
    assert np.abs(blurred - ndimage.gaussian_filter(image, sigma)).max() < 1e-12


def test_a_blur_of_a_blur_is_one_product_of_transfer_functions():
    image = np.random.default_rng(1).random((48, 40))
    twice = ndimage.gaussian_filter(ndimage.gaussian_filter(image, 1.3), 4.9)
    product = from_cosine_spectrum(cosine_spectrum(image), gaussian_transfer(1.3, 48) * gaussian_transfer(4.9, 48),
                                   gaussian_transfer(1.3, 40) * gaussian_transfer(4.9, 40))
    assert np.abs(product - twice).max() < 1e-12


def test_float32_blurs_stay_within_the_margin_the_metrics_allow():
    image = np.random.default_rng(2).random((256, 256))
    blurred = from_cosine_spectrum(cosine_spectrum(image, np.float32), gaussian_transfer(2.0, 256),
                                   gaussian_transfer(2.0, 256))
    assert blurred.dtype == np.float32
    assert np.abs(blurred - ndimage.gaussian_filter(image, 2.0)).max() < 1e-6  # HAWKMAN retakes decisions within 1e-5


@pytest.mark.parametrize("sigma", [0.8, 30.0])
def test_exact_values_at_a_few_pixels_include_the_edges(sigma):
    rng = np.random.default_rng(3)
    image = rng.random((40, 33))
    rows, cols = rng.integers(0, 40, 200), rng.integers(0, 33, 200)
    reference = ndimage.gaussian_filter(image, sigma)[rows, cols]
    assert np.abs(blur_at(image, rows, cols, gaussian_kernel(sigma)) - reference).max() < 1e-12
    mask = image > 0.5  # binary masks are read as 0 and 1
    assert np.abs(blur_at(mask, rows, cols, gaussian_kernel(sigma))
                  - ndimage.gaussian_filter(mask.astype(float), sigma)[rows, cols]).max() < 1e-12


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("sigma", [0.05, 2.5, 100.0])
def test_binned_spectrum_is_the_blurred_image_block_averaged(factor, sigma):
    shape = (12 * factor, 7 * factor)
    image = np.random.default_rng(factor).random(shape)
    coarse = inverse_cosine_spectrum(binned_spectrum(cosine_spectrum(image), factor, gaussian_transfer(sigma, shape[0]),
                                                     gaussian_transfer(sigma, shape[1])))
    expected = ndimage.gaussian_filter(image, sigma).reshape(12, factor, 7, factor).mean(axis=(1, 3))
    assert np.abs(coarse - expected).max() < 1e-12
