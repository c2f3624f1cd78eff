"""Raw SIM layouts all map to (T, A, P, Y, X); wrong ones say what is wrong."""

import numpy as np
import pytest
import zarr

from microsr.errors import InputError
from microsr.io import LazySIMStack, to_tapyx, write_image


def frames(t, a=3, p=3, y=16, x=20):
    return np.arange(t * a * p * y * x, dtype=np.float32).reshape(t * a * p, y, x)


LAYOUTS = {"flat": lambda f: f, "set": lambda f: f.reshape(4, 9, 16, 20),
           "tap": lambda f: f.reshape(4, 3, 3, 16, 20), "single": lambda f: f[:9]}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("lazy", [False, True])
def test_layouts_agree(layout, lazy):
    flat = frames(4)
    array = LAYOUTS[layout](flat)
    if lazy:
        array = zarr.array(array)
    stack = to_tapyx(array, 3, 3)
    assert isinstance(stack, LazySIMStack if lazy else np.ndarray)
    expected_t = 1 if layout == "single" else 4
    assert stack.shape == (expected_t, 3, 3, 16, 20) and len(stack) == expected_t
    t = expected_t - 1
    # angle-major: frame a·P + p of time point t
    np.testing.assert_array_equal(stack[t][2, 1], flat[t * 9 + 2 * 3 + 1])


def test_memory_map_stays_a_view(tmp_path):
    write_image(tmp_path / "raw.npy", frames(2))
    mapped = np.load(tmp_path / "raw.npy", mmap_mode="r")
    stack = to_tapyx(mapped, 3, 3)
    assert isinstance(stack, np.memmap) and np.shares_memory(stack, mapped)


def test_lazy_time_point_is_float32_and_bounded():
    stack = to_tapyx(zarr.array(frames(2).astype(np.uint16)), 3, 3)
    assert stack[-1].dtype == np.float32 and stack[-1].shape == (3, 3, 16, 20)
    with pytest.raises(IndexError):
        stack[2]


def test_five_phases():
    assert to_tapyx(frames(2, 3, 5), 3, 5).shape == (2, 3, 5, 16, 20)


@pytest.mark.parametrize("array,match", [
    (np.zeros((10, 16, 16)), "raw stack has 10 frames, not a multiple of 3 angles × 3 phases = 9: check "
                             "--angles/--phases or the file"),
    (np.zeros((16, 16)), "one image of shape"),
    (np.zeros((2, 8, 16, 16)), r"\(T, A·P, Y, X\) with A·P = 3 × 3 = 9"),
    (np.zeros((2, 3, 5, 16, 16)), r"\(T, 3, 3, Y, X\).*--angles/--phases"),
    (np.zeros((9, 8, 16)), "too small"),
    (np.zeros((9, 16, 15)), "too small"),
    (np.zeros((1, 1, 9, 1, 16, 16)), "not a known layout"),
    (np.zeros((0, 16, 16)), "holds no frames"),
])
def test_wrong_layouts(array, match):
    with pytest.raises(InputError, match=match):
        to_tapyx(array, 3, 3)


def test_too_few_phases():
    with pytest.raises(InputError, match="at least 1 angle and 3 phases"):
        to_tapyx(frames(1), 9, 1)


@pytest.mark.parametrize("shape,colour", [((256, 256, 3), "RGB"), ((256, 256, 4), "RGBA"),
                                          ((9, 256, 256, 3), "RGB")])
def test_colour_image_is_named(shape, colour):
    with pytest.raises(InputError, match=rf"shape \({shape[0]}, .*look like an {colour} colour image.*"
                                         "single-channel fluorescence frames.*9 per time point"):
        to_tapyx(np.zeros(shape, np.uint8), 3, 3)


def test_colour_check_spares_real_frames():
    assert to_tapyx(np.zeros((9, 256, 256)), 3, 3).shape == (1, 3, 3, 256, 256)
