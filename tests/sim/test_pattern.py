"""The forward model's fast paths (folded sampling, separable patterns, noise in blocks) against the direct way."""

import numpy as np
import pytest

from microsr.optics import ideal_otf
from microsr.sim.pattern import (Camera, add_camera_noise, forward_model, illumination, illumination_stack,
                                 random_parameters, widefield_model)

FINE_NM = 31.3


def direct_frames(specimen, oversample, otf, params, margin):
    """The forward model as written in its docstring: pattern × specimen, FFT blur, every b-th pixel, margin cut."""
    fine = specimen.shape
    camera = (fine[0] // oversample - 2 * margin, fine[1] // oversample - 2 * margin)
    centre = (oversample * (margin + camera[0] // 2), oversample * (margin + camera[1] // 2))
    patterns = illumination_stack(fine, FINE_NM, params, centre)
    blurred = np.fft.ifft2(np.fft.fft2(specimen * patterns) * otf.on_grid(fine, FINE_NM)).real
    return blurred[..., ::oversample, ::oversample][..., margin:margin + camera[0], margin:margin + camera[1]]


@pytest.mark.parametrize("shape,oversample", [((96, 128), 2), ((90, 90), 3), ((101, 99), 2)])
def test_forward_model_equals_the_direct_blur_and_sampling(shape, oversample):
    rng = np.random.default_rng(0)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=FINE_NM * oversample)
    params = random_parameters(rng, spacing_nm=200.0, modulation=(0.5, 0.7, 0.9))
    specimen = rng.random(shape)  # float64: the model then runs in double precision
    frames = forward_model(specimen, FINE_NM, oversample, otf, params, margin=8)
    expected = direct_frames(specimen, oversample, otf, params, 8)
    assert frames.shape == expected.shape and frames.dtype == np.float32
    np.testing.assert_allclose(frames, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_widefield_model_is_the_blurred_specimen_sampled():
    rng = np.random.default_rng(1)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=2 * FINE_NM)
    specimen = rng.random((120, 100))
    blurred = np.fft.ifft2(np.fft.fft2(specimen) * otf.on_grid(specimen.shape, FINE_NM)).real[::2, ::2]
    np.testing.assert_allclose(widefield_model(specimen, FINE_NM, 2, otf, margin=6), blurred[6:-6, 6:-6],
                               rtol=0, atol=1e-6 * blurred.max())


def test_separable_illumination_is_the_cosine_pattern():
    params = random_parameters(np.random.default_rng(2), spacing_nm=180.0)
    orientation = params.orientations[1]
    y, x = np.mgrid[0:40, 0:50]
    k = 1.0 / orientation.spacing_nm
    phase = 2 * np.pi * k * (np.cos(orientation.angle_rad) * (x - 25) + np.sin(orientation.angle_rad) * (y - 20)) * 62.6
    expected = 1 + orientation.modulation * np.cos(phase + 0.7)
    np.testing.assert_allclose(illumination((40, 50), 62.6, orientation, 0.7), expected, atol=1e-12)


def test_noise_drawn_in_blocks_is_the_noise_of_one_draw():
    expected = np.random.default_rng(3).random((3, 3, 700, 650)).astype(np.float32) * 40  # more than one block
    camera = Camera()
    rng = np.random.default_rng(4)
    photons = rng.poisson(np.clip(expected + camera.background_photons, 0, None))
    one_draw = photons + rng.normal(0.0, camera.read_noise_e, size=photons.shape) + camera.offset_adu
    one_draw = one_draw.astype(np.float32)
    np.testing.assert_array_equal(add_camera_noise(expected, camera, np.random.default_rng(4)), one_draw)
