"""Tests of the SFSRM simulation recipes in microsr.synthetic: specimens, degradation, training pairs."""

import numpy as np
import pytest
from scipy import ndimage

from microsr.errors import InputError
from microsr.metrics.signal import signal_density, signal_to_noise
from microsr.synthetic import (DotPair, LinePair, degrade, dot_pairs, line_pairs, polymer_chains, rings,
                               training_pair)


def _peak_distance_nm(gt, pixel_nm, first_nm, second_nm, along, length_nm):
    """Distance between the two highest maxima of a profile from one member of a pair to the other."""
    first, second = np.asarray(first_nm), np.asarray(second_nm)
    axis = (second - first) / np.hypot(*(second - first))
    centre = 0.5 * (first + second)
    t = np.arange(-60.0, 60.0 + 1e-9, 0.25 * pixel_nm)  # nm across the pair
    # Averaging profiles along the line evens out the sub-pixel splatting of the lines.
    offsets = np.linspace(-0.3, 0.3, 7) * length_nm if length_nm else np.zeros(1)
    profile = np.zeros_like(t)
    for offset in offsets:
        points = centre[None, :] + t[:, None] * axis[None, :] + offset * np.asarray(along)[None, :]
        profile += ndimage.map_coordinates(gt.astype(float), (points / pixel_nm).T, order=1)
    maxima = np.flatnonzero((profile[1:-1] > profile[:-2]) & (profile[1:-1] >= profile[2:])) + 1
    assert maxima.size >= 2, "the pair shows fewer than two peaks"
    top = maxima[np.argsort(profile[maxima])[-2:]]
    return abs(t[top[1]] - t[top[0]])


def test_ground_truth_grids_follow_field_and_pixel_size():
    chains = polymer_chains(2.0, 10.0, n_chains=3, seed=0)
    pairs_gt, pairs = line_pairs(1.5, 5.0, n_pairs=2, length_nm=300.0, seed=0)
    dots_gt, dots = dot_pairs(1.0, 10.0, n_pairs=3, seed=0)
    rings_gt, found = rings(1.0, 10.0, n_rings=3, seed=0)
    assert chains.shape == (200, 200) and chains.dtype == np.float32
    assert pairs_gt.shape == (300, 300) and all(isinstance(p, LinePair) for p in pairs)
    assert dots_gt.shape == (100, 100) and all(isinstance(p, DotPair) for p in dots)
    assert rings_gt.shape == (100, 100) and all(50.0 <= r.diameter_nm <= 160.0 for r in found)
    lr = degrade(chains, 10.0, lr_pixel_nm=100.0, seed=0)
    assert lr.shape == (20, 20) and lr.dtype == np.float32


@pytest.mark.parametrize("target", [0.1, 0.25])
def test_density_control_reaches_the_target(target):
    gt = polymer_chains(5.0, 10.0, density=target, seed=3)
    assert signal_density(gt) == pytest.approx(target, abs=0.05)


@pytest.mark.parametrize("snr", [5.0, 15.0, 30.0])
@pytest.mark.parametrize("specimen", ["dots", "chain"])
def test_degrade_gives_the_asked_snr(snr, specimen):
    # Sparse specimens: signal_to_noise's background pixels then hold noise, not structure.
    if specimen == "dots":
        gt = dot_pairs(10.0, 10.0, n_pairs=10, seed=1)[0]
    else:
        gt = polymer_chains(10.0, 10.0, n_chains=1, seed=1)
    lr = degrade(gt, 10.0, lr_pixel_nm=100.0, fwhm_nm=200.0, snr=snr, seed=2)
    assert signal_to_noise(lr) == pytest.approx(snr, rel=0.15)


def test_line_pair_separations_match_their_metadata():
    separations = (10.0, 20.0, 30.0, 40.0, 50.0)
    pixel_nm = 2.0
    gt, pairs = line_pairs(2.0, pixel_nm, separations_nm=separations, n_pairs=5, length_nm=300.0,
                           gt_blur_fwhm_nm=0.0, seed=4)
    assert sorted(p.separation_nm for p in pairs) == list(separations)
    for pair in pairs:
        along = (np.sin(pair.direction_rad), np.cos(pair.direction_rad))
        measured = _peak_distance_nm(gt, pixel_nm, *pair.centres_nm, along, pair.length_nm)
        assert measured == pytest.approx(pair.separation_nm, abs=pixel_nm)
        assert np.hypot(*np.subtract(*pair.centres_nm)) == pytest.approx(pair.separation_nm)


def test_blurred_line_pairs_and_dot_pairs_keep_their_separation_on_10_nm_pixels():
    # 20-nm blur (SFSRM's GT): pairs ≥ 40 nm apart keep two peaks at their separation, ±1 GT pixel.
    gt, pairs = line_pairs(3.0, 10.0, separations_nm=(40.0, 50.0), n_pairs=4, length_nm=400.0, seed=5)
    for pair in pairs:
        along = (np.sin(pair.direction_rad), np.cos(pair.direction_rad))
        measured = _peak_distance_nm(gt, 10.0, *pair.centres_nm, along, pair.length_nm)
        assert measured == pytest.approx(pair.separation_nm, abs=10.0)
    gt, dots = dot_pairs(2.0, 10.0, separations_nm=(40.0, 50.0), n_pairs=4, seed=6)
    for pair in dots:
        measured = _peak_distance_nm(gt, 10.0, *pair.centres_nm, (0.0, 0.0), 0.0)
        assert measured == pytest.approx(pair.separation_nm, abs=10.0)


@pytest.mark.parametrize("kind", ["filaments", "line-pairs", "dot-pairs", "rings"])
@pytest.mark.parametrize("scale", [4, 10])
def test_training_pair_shapes_and_reproducibility(kind, scale):
    lr, hr = training_pair(kind, scale=scale, lr_patch_px=32, seed=7)
    again_lr, again_hr = training_pair(kind, scale=scale, lr_patch_px=32, seed=7)
    other_lr, _ = training_pair(kind, scale=scale, lr_patch_px=32, seed=8)
    assert lr.shape == (32, 32) and hr.shape == (32 * scale, 32 * scale)
    assert lr.dtype == np.float32 and hr.dtype == np.float32
    assert hr.min() >= 0.0 and hr.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(lr, again_lr)
    np.testing.assert_array_equal(hr, again_hr)
    assert not np.array_equal(lr, other_lr)


def test_training_pair_lr_is_the_blurred_hr():
    # The LR patch is the HR target seen through the PSF: binned, they correlate strongly.
    lr, hr = training_pair("filaments", scale=4, snr=30.0, seed=9)
    binned = hr.reshape(32, 4, 32, 4).sum(axis=(1, 3))
    blurred = ndimage.gaussian_filter(binned, 200.0 / 2.3548 / 100.0)
    assert np.corrcoef(blurred.ravel(), lr.ravel())[0, 1] > 0.8


def test_bad_arguments_raise_input_error():
    gt = polymer_chains(1.2, 10.0, n_chains=2, seed=0)
    with pytest.raises(InputError, match="integer multiple"):
        degrade(gt, 30.0, lr_pixel_nm=100.0)
    for snr in (0.0, -3.0):
        with pytest.raises(InputError, match="snr"):
            degrade(gt, 10.0, snr=snr)
    with pytest.raises(InputError, match="multiple of the pixel ratio"):
        degrade(gt[:115, :115], 10.0)
    with pytest.raises(InputError, match="either"):
        polymer_chains(1.0, 10.0, n_chains=3, density=0.2)
    with pytest.raises(InputError, match="density"):
        polymer_chains(1.0, 10.0, density=1.5)
    with pytest.raises(InputError, match="scale"):
        training_pair(scale=2.5)
    with pytest.raises(InputError, match="kind"):
        training_pair("mitochondria")
    with pytest.raises(InputError, match="snr"):
        training_pair(snr=0.0)
    with pytest.raises(InputError, match="fit|place"):
        line_pairs(2.0, 10.0, n_pairs=50)
