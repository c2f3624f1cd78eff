"""The banded-matrix Gaussian filter equals SciPy's reflect-mode filter, edges and long kernels included."""

import numpy as np
import pytest
from scipy import ndimage

from microsr.metrics.banded import gaussian_filter64
from microsr.threads import blas_threads


@pytest.mark.parametrize("shape", [(1, 9), (5, 3), (37, 52), (130, 97)])
@pytest.mark.parametrize("sigma", [0.05, 0.42, 2.0, 10.0, 40.0])  # 0.05: a one-tap kernel; 40: longer than the image
def test_banded_filter_equals_scipy(shape, sigma):
    image = np.random.default_rng(0).random(shape)
    assert np.abs(gaussian_filter64(image, sigma) - ndimage.gaussian_filter(image, sigma)).max() < 1e-13


def test_binary_input_is_filtered_in_float64_and_empty_windows_stay_exactly_zero():
    mask = np.zeros((100, 80), dtype=bool)
    mask[40:45, 10:12] = True
    blurred = gaussian_filter64(mask, 2.0)
    assert blurred.dtype == np.float64
    assert np.abs(blurred - ndimage.gaussian_filter(mask.astype(np.float64), 2.0)).max() < 1e-15
    assert np.all(blurred[:20] == 0.0)  # farther than the kernel's reach: exact zeros, as SciPy's


def test_one_blas_thread_inside_the_context_and_the_limit_restored_after():
    from threadpoolctl import threadpool_info

    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    with blas_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == before
