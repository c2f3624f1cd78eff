"""Known answers of the confidence metrics: HAWKMAN, SQUIRREL, ensemble and temporal agreement."""

import numpy as np
import pytest
from scipy import ndimage

from microsr.errors import InputError
from microsr.metrics.confidence import (
    ensemble_disagreement,
    hawkman,
    squirrel,
    temporal_agreement,
)


def _filaments(shape=(128, 128), count=6, seed=0, width_px=1.5):
    """Random straight filaments (lines across the field) blurred to ``width_px``: a microtubule-like GT."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(count):
        angle = rng.uniform(0, np.pi)
        centre = rng.uniform(0.2, 0.8, size=2) * np.array(shape)
        distance = np.abs((yy - centre[0]) * np.cos(angle) - (xx - centre[1]) * np.sin(angle))
        image = np.maximum(image, np.exp(-0.5 * (distance / width_px) ** 2))
    return image


def _dots(shape=(128, 128), count=40, seed=1):
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    image[rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)] = rng.uniform(0.5, 1.0, count)
    return image


def test_hawkman_identical_images_score_one_and_map_trusted():
    reference = _filaments()
    result = hawkman(reference, reference)
    assert result.score == pytest.approx(1.0, abs=1e-6)
    assert result.confidence_map.shape == reference.shape
    assert result.confidence_map.min() >= 0.85


def test_hawkman_shifted_copy_scores_lower():
    reference = _filaments()
    shifted = np.roll(reference, (3, 3), axis=(0, 1))
    result = hawkman(shifted, reference)
    assert result.score < 0.8
    assert 0.0 <= result.confidence_map.min() and result.confidence_map.max() <= 1.0


def test_hawkman_tolerates_mild_noise():
    reference = _filaments()
    noisy = reference + 0.05 * np.random.default_rng(5).standard_normal(reference.shape)
    assert hawkman(noisy, reference).score > 0.9


def test_hawkman_deleted_region_scores_lower_inside_it():
    reference = _filaments()
    deleted = reference.copy()
    region = (slice(40, 88), slice(40, 88))
    deleted[region] = 0.0
    result = hawkman(deleted, reference)
    assert result.score < 0.95
    inside = result.confidence_map[region][8:-8, 8:-8]  # away from the region's border
    outside = np.ones(reference.shape, bool)
    outside[30:98, 30:98] = False
    assert inside.mean() < 0.85
    assert inside.mean() < result.confidence_map[outside].mean() - 0.2


def test_hawkman_rejects_bad_inputs():
    reference = _filaments(shape=(64, 64))
    with pytest.raises(InputError):
        hawkman(reference[:32], reference)
    with pytest.raises(InputError):
        hawkman(np.full_like(reference, np.nan), reference)
    with pytest.raises(InputError):
        hawkman(reference, np.ones_like(reference))


@pytest.mark.parametrize("factor", [2, 4])
def test_squirrel_recovers_blur_gain_and_offset(factor):
    sr_pixel_nm, sigma_nm, alpha, beta = 20.0, 100.0, 3.0, 5.0
    sr = _filaments(shape=(128, 128), count=5, seed=2, width_px=1.0) + _dots(shape=(128, 128))
    blurred = ndimage.gaussian_filter(sr, sigma_nm / sr_pixel_nm, mode="reflect")
    widefield = alpha * blurred.reshape(128 // factor, factor, 128 // factor, factor).mean(axis=(1, 3)) + beta
    result = squirrel(sr, widefield, sr_pixel_size_nm=sr_pixel_nm,
                      widefield_pixel_size_nm=sr_pixel_nm * factor)
    assert result.sigma_nm == pytest.approx(sigma_nm, rel=0.10)
    assert result.alpha == pytest.approx(alpha, rel=0.02)
    assert result.beta == pytest.approx(beta, abs=0.02)
    assert result.error_map.shape == widefield.shape
    assert result.error_map.max() < 1e-3 * np.ptp(widefield)
    assert result.rsp > 0.999


def test_squirrel_rejects_mismatched_sizes():
    sr = _filaments(shape=(64, 64))
    widefield = sr.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    with pytest.raises(InputError, match="pixel sizes do not match"):
        squirrel(sr, widefield, sr_pixel_size_nm=20.0, widefield_pixel_size_nm=50.0)
    with pytest.raises(InputError):
        squirrel(sr[:60], widefield, sr_pixel_size_nm=20.0, widefield_pixel_size_nm=40.0)
    with pytest.raises(InputError):
        squirrel(sr, np.full_like(widefield, np.nan), sr_pixel_size_nm=20.0, widefield_pixel_size_nm=40.0)


def test_ensemble_of_identical_images_has_zero_disagreement():
    image = _filaments(shape=(64, 64))
    assert ensemble_disagreement([image, image, image]).max() < 1e-12
    # a gain difference alone is not disagreement: each member is normalized first
    assert ensemble_disagreement([image, 2.0 * image]).max() < 1e-6


def test_ensemble_disagreement_marks_differing_structure():
    image = _filaments(shape=(64, 64))
    other = image.copy()
    other[10:20, 10:20] = 1.0
    disagreement = ensemble_disagreement(np.stack([image, other]))
    assert disagreement[12:18, 12:18].mean() > 10 * disagreement[40:, 40:].mean() + 0.1


def test_ensemble_disagreement_rejects_bad_inputs():
    image = _filaments(shape=(64, 64))
    with pytest.raises(InputError):
        ensemble_disagreement([image])
    with pytest.raises(InputError):
        ensemble_disagreement([image, image[:32]])
    with pytest.raises(InputError):
        ensemble_disagreement([image, np.full_like(image, np.nan)])


def test_temporal_agreement_static_stack_is_one():
    static = np.repeat(_filaments(shape=(48, 48))[None], 7, axis=0)
    agreement = temporal_agreement(static, window=5)
    assert agreement.shape == static.shape
    assert np.all(agreement == 1.0)


def test_temporal_agreement_drops_where_an_object_moves():
    frames = 9
    stack = np.repeat(_filaments(shape=(48, 48), count=3)[None], frames, axis=0)
    for t in range(frames):
        stack[t, 20:26, 2 + 4 * t: 8 + 4 * t] = 1.0  # a bright vesicle crossing the field
    agreement = temporal_agreement(stack, window=5)
    assert agreement.min() >= 0.0 and agreement.max() <= 1.0
    assert agreement[4, 20:26, 18:24].mean() < 0.7  # where the vesicle is in frame 4
    assert agreement[:, 40:, :].min() == pytest.approx(1.0)  # far from its path nothing changes


def test_temporal_agreement_two_frame_window_at_the_ends():
    stack = np.zeros((3, 4, 4))
    stack[0] = 1.0  # frame 0 differs from frame 1: its clipped window still compares 2 frames
    agreement = temporal_agreement(stack, window=2)
    assert np.all(agreement[0] == 0.0) and np.all(agreement[2] == 1.0)


def test_temporal_agreement_rejects_short_stack():
    with pytest.raises(InputError):
        temporal_agreement(np.ones((1, 8, 8)))
    with pytest.raises(InputError):
        temporal_agreement(np.ones((8, 8)))
