"""The dip criterion: two known emitters are resolved in a sharp image, not in a blurred one."""

import numpy as np
import pytest

from microsr.metrics import pair_resolved, profile_through


def two_dots(first, second, sigma, size=64):
    y, x = np.mgrid[:size, :size]
    return sum(np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2)) for cy, cx in (first, second))


@pytest.mark.parametrize("angle", [0.0, 0.7, 2.0])
def test_sharp_pair_resolved_blurred_pair_not(angle):
    centre, half = np.array([32.0, 32.0]), 4.0 * np.array([np.sin(angle), np.cos(angle)])
    first, second = centre - half, centre + half  # 8 px apart
    step = 0.1
    for sigma, expected in ((1.5, True), (4.0, False)):
        values = profile_through(two_dots(first, second, sigma), first, second, step_px=step)
        assert pair_resolved(values, 8 / step, 16 / step) is expected


def test_one_blob_or_misplaced_peaks_do_not_count():
    x = np.arange(300.0)
    assert not pair_resolved(np.exp(-(x - 150) ** 2 / 800), 100, 200)                    # one blob
    misplaced = np.exp(-(x - 40) ** 2 / 50) + np.exp(-(x - 260) ** 2 / 50)             # far off both
    assert not pair_resolved(misplaced, 100, 200)
    shallow = np.exp(-(x - 100) ** 2 / 4000) + np.exp(-(x - 200) ** 2 / 4000)          # dip of ~4 %
    assert not pair_resolved(shallow, 100, 200) and pair_resolved(shallow, 100, 200, dip=0.01)
