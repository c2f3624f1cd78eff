"""Tests of microsr.edges: radiality edge maps peak on line and spot centres, reproducibly."""

import math

import numpy as np
import pytest
import torch

from microsr.edges import edge_map, edge_map_torch
from microsr.errors import InputError


def gaussian_line(shape, centre_yx, angle_deg, sigma_px=1.2):
    """A straight line through ``centre_yx`` at ``angle_deg`` from the +x axis, Gaussian cross-section."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    angle = math.radians(angle_deg)
    across = -(x - centre_yx[1]) * math.sin(angle) + (y - centre_yx[0]) * math.cos(angle)
    return np.exp(-(across**2) / (2 * sigma_px**2))


def output_coordinate(index, magnification):
    """Input-pixel coordinate of an output pixel centre (the documented convention)."""
    return (index + 0.5) / magnification - 0.5


def peak_offsets_across_line(edges, magnification, centre_yx, angle_deg, margin_px=8, window_px=3):
    """Distance from the line centre to the edge map's maximum, in every row (or column) crossing it.

    Searched along rows for lines within 45° of vertical, along columns otherwise; that distance is
    never smaller than the perpendicular one.
    """
    angle = math.radians(angle_deg)
    along_rows = abs(math.cos(angle)) <= abs(math.sin(angle)) + 1e-9
    grid = edges if along_rows else edges.T
    # line: x = cx + (y − cy)·cot(angle) (rows) or y = cy + (x − cx)·tan(angle) (columns)
    start, slope = (centre_yx[1], 1 / math.tan(angle)) if along_rows else (centre_yx[0], math.tan(angle))
    origin = centre_yx[0] if along_rows else centre_yx[1]
    offsets = []
    n_in = grid.shape[0] // magnification
    for i in range(margin_px * magnification, (n_in - margin_px) * magnification):
        line_at = start + (output_coordinate(i, magnification) - origin) * slope
        coordinates = output_coordinate(np.arange(grid.shape[1]), magnification)
        near = np.abs(coordinates - line_at) <= window_px
        if not near.any() or not (margin_px <= line_at <= n_in - margin_px):
            continue
        best = coordinates[near][np.argmax(grid[i, near])]
        offsets.append(abs(best - line_at))
    return np.array(offsets)


@pytest.mark.parametrize(
    "angle_deg, offset_px, sigma_px",
    [(0.0, (0.0, 0.0), 1.2), (0.0, (0.5, 0.5), 0.85), (17.0, (0.31, -0.27), 1.2),
     (45.0, (0.5, 0.0), 2.0), (63.0, (0.0, 0.0), 1.2), (63.0, (-0.13, 0.42), 0.85),
     (90.0, (0.27, 0.31), 1.2), (128.0, (0.5, 0.5), 1.2), (151.0, (0.08, -0.44), 2.0)],
)
def test_line_peaks_on_its_centre(angle_deg, offset_px, sigma_px):
    centre = (24.0 + offset_px[0], 23.0 + offset_px[1])
    image = gaussian_line((48, 48), centre, angle_deg, sigma_px)

    edges = edge_map(image, magnification=4)

    offsets = peak_offsets_across_line(edges, 4, centre, angle_deg)
    assert len(offsets) > 60
    assert offsets.max() <= 0.5


@pytest.mark.parametrize("angle_deg", [0.0, 33.0, 101.0])
def test_line_peaks_on_its_centre_without_magnification(angle_deg):
    centre = (24.37, 23.81)
    image = 100.0 + 500.0 * gaussian_line((48, 48), centre, angle_deg, sigma_px=0.85)

    edges = edge_map(image, intensity_weighted=True)

    # one output pixel per input pixel: the nearest pixel is ≤ 0.5 px away, the next ≥ 0.5 px
    offsets = peak_offsets_across_line(edges, 1, centre, angle_deg)
    assert len(offsets) > 25
    assert offsets.max() <= 0.5 + 1e-9


def test_plain_mean_is_flat_topped_across_a_line():
    # why gradient weighting is the default: without it the 12-point mean cannot tell positions
    # within R/2 of a line's centre apart
    image = gaussian_line((32, 32), (16.0, 16.0), 0.0)

    plain = edge_map(image, magnification=4, gradient_weighted=False)
    weighted = edge_map(image, magnification=4)

    column = output_coordinate(np.arange(128), 4)
    near_centre = np.abs(column - 16.0) < 0.5
    assert np.ptp(plain[near_centre, 64]) < 1e-6
    profile = weighted[near_centre, 64]  # at 15.625, 15.875, 16.125, 16.375 px
    assert profile[1] > profile[0] and profile[2] > profile[3]


@pytest.mark.parametrize("centre_yx", [(16.0, 16.0), (15.62, 16.29), (17.5, 14.1)])
def test_spot_peaks_at_its_centre(centre_yx):
    y, x = np.mgrid[:32, :32]
    spot = 10.0 + 200.0 * np.exp(-((x - centre_yx[1]) ** 2 + (y - centre_yx[0]) ** 2) / (2 * 1.5**2))

    edges = edge_map(spot, magnification=4)

    i, j = np.unravel_index(np.argmax(edges), edges.shape)
    peak_yx = output_coordinate(np.array([i, j]), 4)
    assert np.hypot(*(peak_yx - centre_yx)) <= 0.5


def test_constant_image_gives_zeros():
    edges = edge_map(np.full((16, 20), 37.5), magnification=2)

    assert edges.shape == (32, 40)
    assert not edges.any()


@pytest.mark.parametrize("magnification", [1, 3, 4])
def test_shape_dtype_and_range(magnification):
    image = np.random.default_rng(1).random((20, 13))

    edges = edge_map(image, magnification=magnification)

    assert edges.shape == (20 * magnification, 13 * magnification)
    assert edges.dtype == np.float32
    assert edges.min() >= 0.0
    assert edges.max() == pytest.approx(1.0)


def test_deterministic():
    image = np.random.default_rng(2).normal(100.0, 10.0, (40, 40))

    first = edge_map(image, magnification=4, intensity_weighted=True)
    second = edge_map(image.copy(), magnification=4, intensity_weighted=True)

    assert np.array_equal(first, second)


def test_numpy_and_batched_torch_agree():
    rng = np.random.default_rng(3)
    images = [rng.random((24, 30)).astype(np.float32) * scale for scale in (1.0, 50.0, 1e3)]
    batch = torch.from_numpy(np.stack(images))[:, None]

    batched = edge_map_torch(batch, magnification=2, intensity_weighted=True)
    single = [edge_map(image, magnification=2, intensity_weighted=True) for image in images]

    assert batched.shape == (3, 1, 48, 60)
    for one, many in zip(single, batched[:, 0].numpy()):
        np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)


def _catmull_rom_at(field, y, x):
    """Catmull-Rom value of ``field`` at one point, edge replicated, written out directly."""
    def weights(t):
        return 0.5 * np.array([-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2,
                               -3 * t**3 + 4 * t**2 + t, t**3 - t**2])
    iy, ix = math.floor(y), math.floor(x)
    rows = np.clip(np.arange(iy - 1, iy + 3), 0, field.shape[0] - 1)
    cols = np.clip(np.arange(ix - 1, ix + 3), 0, field.shape[1] - 1)
    return weights(y - iy) @ field[np.ix_(rows, cols)] @ weights(x - ix)


def _reference_edge_map(image, magnification, radius, n_points, gradient_weighted, intensity_weighted):
    """The documented recipe, one output pixel and one ring point at a time."""
    padded = np.pad(image, 1, mode="edge")
    grad_x = (padded[1:-1, 2:] - padded[1:-1, :-2]) / 2
    grad_y = (padded[2:, 1:-1] - padded[:-2, 1:-1]) / 2
    floor = 1e-6 * np.hypot(grad_x, grad_y).max()
    weak = np.hypot(grad_x, grad_y) <= floor
    grad_x[weak], grad_y[weak] = 0.0, 0.0
    out = np.zeros((image.shape[0] * magnification, image.shape[1] * magnification))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            y, x = output_coordinate(i, magnification), output_coordinate(j, magnification)
            total = 0.0
            for k in range(n_points):
                o = radius * np.array([math.cos(2 * math.pi * k / n_points),
                                       math.sin(2 * math.pi * k / n_points)])
                g = np.array([_catmull_rom_at(grad_x, y + o[1], x + o[0]),
                              _catmull_rom_at(grad_y, y + o[1], x + o[0])])
                norm = np.hypot(*g)
                if norm <= floor:
                    continue
                distance = abs(o[0] * g[1] - o[1] * g[0]) / norm
                total += np.sign(-o @ g) * (1 - distance / radius) ** 2 * (norm if gradient_weighted else 1)
            out[i, j] = max(total / n_points, 0.0)
            if intensity_weighted:
                out[i, j] *= max(_catmull_rom_at(image - image.min(), y, x), 0.0)
    return out / out.max()


@pytest.mark.parametrize("gradient_weighted, intensity_weighted", [(True, False), (False, True)])
def test_matches_the_documented_recipe_point_by_point(gradient_weighted, intensity_weighted):
    image = np.random.default_rng(4).random((9, 8))
    expected = _reference_edge_map(image, 2, 1.3, 7, gradient_weighted, intensity_weighted)

    edges = edge_map_torch(torch.from_numpy(image)[None, None], magnification=2, ring_radius_px=1.3,
                           n_points=7, gradient_weighted=gradient_weighted,
                           intensity_weighted=intensity_weighted)

    assert edges.dtype == torch.float64
    np.testing.assert_allclose(edges[0, 0].numpy(), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "image, kwargs",
    [
        (np.zeros((16, 16, 3)), {}),  # RGB
        (np.zeros((4, 16, 16)), {}),  # a stack
        (np.zeros(16), {}),
        (np.zeros((7, 16)), {}),  # too small
        (np.where(np.eye(16) > 0, np.nan, 1.0), {}),
        (np.where(np.eye(16) > 0, np.inf, 1.0), {}),
        (np.zeros((16, 16), dtype=complex), {}),
        (np.zeros((16, 16)), {"magnification": 0}),
        (np.zeros((16, 16)), {"magnification": 2.5}),
        (np.zeros((16, 16)), {"magnification": True}),
        (np.zeros((16, 16)), {"ring_radius_px": 0.0}),
        (np.zeros((16, 16)), {"ring_radius_px": float("nan")}),
        (np.zeros((16, 16)), {"n_points": 2}),
    ],
)
def test_bad_inputs_raise_input_error(image, kwargs):
    with pytest.raises(InputError):
        edge_map(image, **kwargs)


@pytest.mark.parametrize("shape", [(16, 16), (1, 16, 16), (2, 3, 16, 16), (1, 1, 7, 16)])
def test_bad_tensor_shapes_raise_input_error(shape):
    with pytest.raises(InputError):
        edge_map_torch(torch.zeros(shape))
