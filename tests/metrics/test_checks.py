"""Arrays given to a metric are checked up front; an RGB(A) colour image is named as such."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.metrics.checks import as_image
from microsr.metrics.resolution import decorrelation_resolution


@pytest.mark.parametrize("shape,colour", [((256, 256, 3), "RGB"), ((256, 256, 4), "RGBA"),
                                          ((256, 3), "RGB"), ((256, 4), "RGBA")])
def test_colour_image_is_named(shape, colour):
    # (256, 3) is the first "frame" of a (256, 256, 3) RGB file read as a (T, Y, X) stack
    with pytest.raises(InputError, match=rf"^image of shape \({shape[0]}, .*looks like an {colour} colour "
                                         "image.*give single-channel fluorescence frames"):
        as_image(np.ones(shape), "image", min_size_px=32)


def test_colour_stack_is_named():
    with pytest.raises(InputError, match="stack of shape .*looks like an RGB colour image"):
        as_image(np.ones((64, 64, 3)), "stack", ndim=3)


def test_metric_names_rgb_frame_instead_of_size():
    with pytest.raises(InputError, match="looks like an RGB colour image") as caught:
        decorrelation_resolution(np.ones((256, 3)), 30.0)
    assert "needs at least" not in str(caught.value)


@pytest.mark.parametrize("shape", [(64, 64), (4, 4), (16, 2)])
def test_grey_images_pass(shape):
    image = as_image(np.ones(shape, np.uint16), "image")
    assert image.dtype == np.float64 and image.shape == shape


def test_small_grey_image_still_says_its_size():
    with pytest.raises(InputError, match=r"image is 20×20 px; this measure needs at least 32×32 px"):
        as_image(np.ones((20, 20)), "image", min_size_px=32)
