"""Tiled inference equals untiled inference, blends without seams, and backs off on out-of-memory."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from microsr.errors import InputError
from microsr.tiling import axis_tiles, balanced_tile_px, blend_window, predict_tiled, tile_count


class SmallNet(nn.Module):
    """Three 3x3 convs (receptive field 7 px), then optionally nearest x2 upsampling and a 3x3 conv."""

    def __init__(self, channels_in: int = 1, channels_out: int = 1, scale: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, 8, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(8, channels_out if scale == 1 else 8, 3, padding=1),
        )
        self.scale = scale
        self.tail = nn.Conv2d(8, channels_out, 3, padding=1) if scale > 1 else None

    def forward(self, x):
        x = self.body(x)
        if self.tail is not None:
            x = self.tail(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
        return x


def _net(seed=0, **kwargs):
    torch.manual_seed(seed)
    return SmallNet(**kwargs).eval()


def _untiled(model, chw):
    with torch.no_grad():
        return model(torch.from_numpy(chw[None]).float())[0].numpy()


@pytest.fixture
def image():
    return np.random.default_rng(1).random((203, 157), dtype=np.float32)


def test_blend_window_is_zero_outside_then_ramps_to_one_in_core():
    window = blend_window(64, 16)
    assert window.shape == (64,)
    np.testing.assert_array_equal(window[:8], 0.0)  # outer half of the overlap: damaged pixels
    np.testing.assert_array_equal(window[16:48], 1.0)  # core
    assert np.all(np.diff(window[:16]) >= 0) and 0 < window[8] < 0.1 and 0.9 < window[15] < 1
    np.testing.assert_allclose(window, window[::-1])


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_untiled_for_conv_net(image, scale):
    model = _net(scale=scale)
    calls = []

    def counting(x):
        calls.append(tuple(x.shape))
        return model(x)

    tiled = predict_tiled(counting, image, scale=scale, tile_px=64, overlap_px=16)
    expected = _untiled(model, image[None])[0]

    assert tiled.shape == (203 * scale, 157 * scale)
    assert all(shape[2:] == (64, 64) for shape in calls)  # every tile full size, borders shifted inward
    assert sum(shape[0] for shape in calls) > 1
    value_range = expected.max() - expected.min()
    assert np.abs(tiled - expected).max() <= 1e-3 * value_range


def test_too_small_overlap_shows_the_seams_it_would_hide(image):
    # the receptive field (7 px) exceeds overlap 2: proof the comparison above can fail
    model = _net()
    tiled = predict_tiled(model, image, tile_px=64, overlap_px=2)
    expected = _untiled(model, image[None])[0]
    assert np.abs(tiled - expected).max() > 1e-3 * (expected.max() - expected.min())


@pytest.mark.parametrize("tile_px, overlap_px", [(16, 0), (24, 4), (37, 7), (64, 16), (300, 16)])
def test_identity_model_reproduces_input(image, tile_px, overlap_px):
    result = predict_tiled(lambda x: x, image, tile_px=tile_px, overlap_px=overlap_px)
    np.testing.assert_allclose(result, image, atol=1e-6)


def test_identity_upsampling_model_reproduces_repeated_input(image):
    result = predict_tiled(
        lambda x: F.interpolate(x, scale_factor=3, mode="nearest"), image, scale=3, tile_px=40, overlap_px=8
    )
    np.testing.assert_allclose(result, image.repeat(3, 0).repeat(3, 1), atol=1e-6)


def test_image_smaller_than_tile_runs_whole():
    small = np.random.default_rng(2).random((30, 21), dtype=np.float32)
    model = _net(scale=2)
    shapes = []
    result = predict_tiled(lambda x: shapes.append(tuple(x.shape)) or model(x), small, scale=2, tile_px=64,
                           overlap_px=16)
    assert shapes == [(1, 1, 30, 21)]
    np.testing.assert_allclose(result, _untiled(model, small[None])[0], atol=1e-6)


def test_two_channel_input_and_output(image):
    chw = np.stack([image, image[::-1].copy()])
    model = _net(channels_in=2, channels_out=2, scale=2)
    result = predict_tiled(model, torch.from_numpy(chw), scale=2, tile_px=64, overlap_px=16)
    expected = _untiled(model, chw)
    assert result.shape == (2, 406, 314)
    assert np.abs(result - expected).max() <= 1e-3 * (expected.max() - expected.min())


def test_writes_into_preallocated_memmap(image, tmp_path):
    model = _net()
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(1, 203, 157))
    out[:] = 7.0  # stale content must not leak into the result
    returned = predict_tiled(model, image, tile_px=64, overlap_px=16, out=out)
    assert returned is out
    out.flush()
    expected = _untiled(model, image[None])
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() <= 1e-3 * np.ptp(expected)


def test_out_with_wrong_shape_or_dtype_is_refused(image):
    with pytest.raises(InputError, match="shape"):
        predict_tiled(lambda x: x, image, tile_px=64, overlap_px=16, out=np.zeros((203, 156), np.float32))
    with pytest.raises(InputError, match="floating"):
        predict_tiled(lambda x: x, image, tile_px=64, overlap_px=16, out=np.zeros((203, 157), np.uint16))


def test_backs_off_on_out_of_memory():
    image = np.random.default_rng(3).random((101, 87), dtype=np.float32)
    model = _net()
    sizes = []

    def fragile(x):
        sizes.append(tuple(x.shape[2:]))
        if max(x.shape[2:]) > 48:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return model(x)

    result = predict_tiled(fragile, image, tile_px=None, overlap_px=16)
    expected = _untiled(model, image[None])[0]
    assert sizes[0] == (101, 87)  # the automatic CPU tile (512 px) first tries the whole image
    assert sizes[-1] == (48, 48)  # halved down to the 2 * overlap + 16 floor
    assert np.abs(result - expected).max() <= 1e-3 * (expected.max() - expected.min())


def test_out_of_memory_at_smallest_tile_says_what_to_do(image):
    def hopeless(x):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(InputError, match="out of memory.*overlap_px"):
        predict_tiled(hopeless, image, tile_px=64, overlap_px=16)


def test_other_runtime_errors_are_not_swallowed(image):
    def broken(x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="mat1"):
        predict_tiled(broken, image, tile_px=64, overlap_px=16)


def test_nan_input_is_refused(image):
    image[5, 7] = np.nan
    with pytest.raises(InputError, match="NaN"):
        predict_tiled(lambda x: x, image, tile_px=64, overlap_px=16)


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ((9, 64, 64), {}, "one frame"),
        ((2, 3, 64, 64), {}, "one frame"),
        ((64, 64), {"tile_px": 40, "overlap_px": 16}, "at least"),
        ((64, 64), {"scale": 0}, "scale"),
    ],
)
def test_impossible_inputs_are_refused(shape, kwargs, match):
    with pytest.raises(InputError, match=match):
        predict_tiled(lambda x: x, np.zeros(shape, np.float32), **kwargs)


def test_scale_that_does_not_match_the_model_is_refused(image):
    with pytest.raises(InputError, match="scale=2"):
        predict_tiled(lambda x: x, image, scale=2, tile_px=64, overlap_px=16)


@pytest.mark.parametrize("length", [200, 256, 257, 300, 512, 700, 1024, 2048])
@pytest.mark.parametrize("max_tile_px, overlap_px", [(256, 24), (288, 24), (64, 16)])
def test_balanced_tiles_are_as_few_as_the_largest_tiles_and_compute_the_fewest_pixels(length, max_tile_px, overlap_px):
    side = balanced_tile_px(length, max_tile_px, overlap_px)
    starts, extent = axis_tiles(length, side, overlap_px)
    largest, _ = axis_tiles(length, max_tile_px, overlap_px)

    assert side <= max_tile_px and len(starts) == len(largest)
    assert len(starts) * extent <= len(largest) * min(max_tile_px, length)  # no more pixels computed
    # one pixel less per tile would need another tile (the fewest pixels for that many tiles)
    if len(starts) > 1:
        assert len(axis_tiles(length, side - 1, overlap_px)[0]) > len(starts)


def test_rows_and_columns_take_their_own_tile_sides(image):
    model = _net()
    shapes = []
    result = predict_tiled(lambda x: shapes.append(tuple(x.shape)) or model(x), image, tile_px=(120, 90),
                           overlap_px=16)

    assert {shape[2:] for shape in shapes} == {(120, 90)}
    assert sum(shape[0] for shape in shapes) == tile_count(203, 157, tile_px=(120, 90), overlap_px=16) == 2 * 3
    expected = _untiled(model, image[None])[0]
    assert np.abs(result - expected).max() <= 1e-3 * (expected.max() - expected.min())


class CountingBar:
    """What predict_tiled needs of a caller's tqdm bar."""

    def __init__(self, total):
        self.n, self.total = 0, total

    def update(self, count):
        self.n += count

    def refresh(self):
        pass


def test_a_shared_progress_bar_counts_every_tile_of_several_calls(image):
    per_call = tile_count(203, 157, tile_px=(120, 90), overlap_px=16)
    bar = CountingBar(3 * per_call)
    for _ in range(3):
        predict_tiled(lambda x: x, image, tile_px=(120, 90), overlap_px=16, progress=bar)
    assert bar.n == bar.total == 3 * per_call


def test_a_progress_bar_of_its_own_is_drawn_over_the_tiles_on_stderr(image, capsys):
    predict_tiled(lambda x: x, image, tile_px=64, overlap_px=16, progress=True)

    count = tile_count(203, 157, tile_px=64, overlap_px=16)
    assert f"{count}/{count}" in capsys.readouterr().err


def test_a_back_off_recounts_the_tiles_on_the_bar():
    image = np.random.default_rng(3).random((600, 600), dtype=np.float32)
    calls = []

    def fragile(x):  # 256-px tiles go one at a time on the CPU; the third fails
        calls.append(x.shape[0])
        if max(x.shape[2:]) > 200 and len(calls) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x

    bar = CountingBar(tile_count(600, 600, tile_px=256, overlap_px=16))
    predict_tiled(fragile, image, tile_px=256, overlap_px=16, progress=bar)
    assert bar.n == bar.total == tile_count(600, 600, tile_px=128, overlap_px=16)
