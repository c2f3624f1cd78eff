"""Widefield images like real ones: four specimen classes, haze from other planes, camera defects, in-focus truth."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.metrics.image_stats import image_statistics
from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.widefield import CLASSES, specimen, widefield_pair


def test_each_class_has_its_own_density_and_shape():
    rng = np.random.default_rng(0)
    fields = {kind: specimen(kind, 4.0, 20.0, rng) for kind in CLASSES}
    covered = {kind: float(np.mean(field > 0.2 * field.max())) for kind, field in fields.items()}
    assert covered["er"] > 2 * covered["filaments"] and covered["puncta"] < covered["filaments"]
    assert covered["mitochondria"] > covered["filaments"]  # 250-nm tubules against 20-nm filaments
    with pytest.raises(InputError, match="unknown specimen class"):
        specimen("nuclei", 4.0, 20.0, rng)


def test_haze_is_added_to_the_image_and_left_out_of_the_target():
    sharp = widefield_pair("er", lr_patch_px=64, haze=0.0, snr=30.0, seed=4)
    hazy = widefield_pair("er", lr_patch_px=64, haze=2.0, snr=30.0, seed=4)
    np.testing.assert_array_equal(sharp.target, hazy.target)
    assert hazy.clean.mean() > 1.5 * sharp.clean.mean()
    assert image_statistics(hazy.noisy, 100.0)["haze"] > image_statistics(sharp.noisy, 100.0)["haze"] + 0.1
    assert hazy.instrument["haze"] == 2.0 and hazy.target.shape == (256, 256) and hazy.target.max() == 1.0


def test_camera_defects_are_in_the_noisy_image_only_and_no_pixel_is_stuck():
    plain = widefield_pair("filaments", lr_patch_px=64, seed=2)
    camera = widefield_pair("filaments", lr_patch_px=64, seed=2, defects=AcquisitionDefects.uncorrected())
    np.testing.assert_array_equal(plain.clean, camera.clean)
    assert not np.array_equal(plain.noisy, camera.noisy)
    assert camera.noisy.max() < 10_000  # hot pixels: a single frame cannot tell them from specimen
    with pytest.raises(InputError, match="haze"):
        widefield_pair("filaments", haze=-1.0)


def test_sfsrm_training_draws_realistic_pairs_from_its_config():
    from microsr.train.sfsrm_config import DataConfig
    from microsr.train.sfsrm_data import simulated_pair

    config = DataConfig(realistic={"classes": ["er", "puncta"]}, lr_patch_px=16)
    low, high = simulated_pair(config, 4, "srn", seed=3)
    assert low.shape == (16, 16) and high.shape == (64, 64) and high.max() == 1.0
    noisy, clean = simulated_pair(config, 1, "sen", seed=3)
    assert noisy.shape == clean.shape == (16, 16) and not np.array_equal(noisy, clean)


@pytest.mark.parametrize("shape, sigma_px, ratio, start, count", [
    ((96, 96), 6.5, 4, 5, 12),     # a PSF
    ((120, 96), 23.0, 4, 3, 10),   # a defocused haze wider than the patch, a field not square
    ((64, 64), 0.0, 8, 1, 6),      # no blur: binning alone
])
def test_a_patch_blurred_and_binned_alone_equals_the_crop_of_the_whole_field(shape, sigma_px, ratio, start, count):
    from microsr.synthetic.specimens import _blur_and_bin, _blur_and_bin_crop

    field = np.random.default_rng(0).random(shape) ** 8  # sparse bright specks, as specimens are
    whole = _blur_and_bin(field, sigma_px, ratio)[start:start + count, start:start + count]
    patch = _blur_and_bin_crop(field, sigma_px, ratio, start, count)
    assert patch.shape == (count, count)
    assert np.max(np.abs(patch - whole)) <= 1e-12 * np.max(whole)
