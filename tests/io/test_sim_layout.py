"""Raw SIM layouts all map to (T, A, P, Y, X); wrong ones say what is wrong."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.io import to_tapyx


def frames(t, a=3, p=3, y=16, x=20):
    return np.arange(t * a * p * y * x, dtype=np.float32).reshape(t * a * p, y, x)


@pytest.mark.parametrize("layout", ["flat", "set", "tap", "single"])
def test_layouts_agree(layout):
    flat = frames(4)
    array = {"flat": flat, "set": flat.reshape(4, 9, 16, 20), "tap": flat.reshape(4, 3, 3, 16, 20),
             "single": flat[:9]}[layout]
    stack = to_tapyx(array, 3, 3)
    expected_t = 1 if layout == "single" else 4
    assert stack.shape == (expected_t, 3, 3, 16, 20)
    t = expected_t - 1
    # angle-major: frame a·P + p of time point t
    np.testing.assert_array_equal(stack[t][2, 1], flat[t * 9 + 2 * 3 + 1])


def test_five_phases():
    assert to_tapyx(frames(2, 3, 5), 3, 5).shape == (2, 3, 5, 16, 20)


@pytest.mark.parametrize("array,match", [
    (np.zeros((10, 16, 16)), "10 frames, not a multiple of 3 angles × 3 phases = 9"),
    (np.zeros((16, 16)), "one image"),
    (np.zeros((2, 8, 16, 16)), r"\(T, A·P, Y, X\)"),
    (np.zeros((2, 3, 5, 16, 16)), "--angles/--phases"),
    (np.zeros((9, 8, 8)), "too small"),
    (np.zeros((1, 1, 9, 1, 16, 16)), "not a known layout"),
])
def test_wrong_layouts(array, match):
    with pytest.raises(InputError, match=match):
        to_tapyx(array, 3, 3)
