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


def _blas_counts():
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_blas_thread_inside_the_context_and_the_limit_restored_after():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):  # whatever the environment set at load, start from 2
        before = _blas_counts()
        with blas_threads(1):
            assert all(count == 1 for count in _blas_counts())
        assert _blas_counts() == before


def test_overlapping_blas_limits_end_with_the_last_context():
    """Two metrics in two threads: the first to finish neither lifts the limit under the other nor leaves it set."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        before = _blas_counts()
        outer, inner = blas_threads(1), blas_threads(1)
        outer.__enter__()
        inner.__enter__()
        outer.__exit__(None, None, None)
        assert all(count == 1 for count in _blas_counts())  # still held by the other context
        inner.__exit__(None, None, None)
        assert _blas_counts() == before
