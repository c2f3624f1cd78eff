"""The acquisition-defects model: each defect does what a real camera or laser does, and only when switched on."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.synthetic import simulate_sim
from microsr.synthetic.defects import DEFECTS, AcquisitionDefects, camera_defects, illumination_defects


def test_without_defects_the_simulation_is_exactly_as_before_and_with_them_the_truth_is_kept():
    ideal = simulate_sim(shape=(64, 64), seed=4, time_points=2)
    same = simulate_sim(shape=(64, 64), seed=4, time_points=2, defects=AcquisitionDefects())
    real = simulate_sim(shape=(64, 64), seed=4, time_points=2, defects=AcquisitionDefects.realistic())
    assert np.allclose(same.raw, ideal.raw, atol=1e-4)  # all off: only the float32 round trip
    assert np.array_equal(real.raw_clean, ideal.raw_clean) and np.array_equal(real.ground_truth, ideal.ground_truth)
    assert real.params.to_dict() == ideal.params.to_dict()
    assert real.settings["defects"]["grey_levels"] == 400 and "defects" not in ideal.settings


def test_bleaching_and_excitation_act_on_each_frame_in_acquisition_order():
    photons = np.full((2, 3, 3, 8, 8), 100.0, np.float32)
    bleached, factors = illumination_defects(photons, AcquisitionDefects(bleaching_per_frame=0.01),
                                             np.random.default_rng(0))
    assert factors[0, 0, 0] == 1 and factors[1, 2, 2] == pytest.approx(0.99 ** 17)
    assert bleached[1, 2, 2].mean() == pytest.approx(100 * 0.99 ** 17, rel=1e-5)
    _, fluctuating = illumination_defects(photons, AcquisitionDefects(excitation_fluctuation=0.03),
                                          np.random.default_rng(0))
    assert 0.015 < np.std(fluctuating) < 0.05 and np.mean(fluctuating) == pytest.approx(1, abs=0.02)


def test_camera_defects_are_fixed_per_pixel_and_the_masks_say_where():
    counts = np.full((4, 64, 64), 500.0, np.float32)
    defects = AcquisitionDefects(offset_spread_adu=3.0, row_noise_adu=2.0, hot_pixel_fraction=0.01,
                                 dead_pixel_fraction=0.01)
    out, record = camera_defects(counts, defects, np.random.default_rng(1))
    assert np.all(out[:, record["hot"]] == defects.saturation_adu) and np.all(out[:, record["dead"]] == 0)
    good = ~(record["hot"] | record["dead"])
    assert np.array_equal(out[0][good], out[3][good])  # fixed pattern: the same in every frame
    np.testing.assert_allclose(out[0][good], 500 + record["offset_map"][good], atol=1e-3)
    assert np.std(np.median(out[0] - 500, axis=1)) > 1.0  # row offsets (σ 2 ADU) show as stripes
    assert 0.003 < record["hot"].mean() < 0.02 and 0.003 < record["dead"].mean() < 0.02


def test_grey_levels_quantize_and_gain_spread_scales_each_pixel():
    counts = np.random.default_rng(2).uniform(100, 600, (2, 32, 32)).astype(np.float32)
    out, _ = camera_defects(counts, AcquisitionDefects(grey_levels=50), np.random.default_rng(0))
    assert len(np.unique(out)) <= 50
    flat = np.full((2, 64, 64), 1000.0, np.float32)
    out, _ = camera_defects(flat, AcquisitionDefects(gain_spread=0.02), np.random.default_rng(0))
    assert np.std(out[0]) / 1000 == pytest.approx(0.02, rel=0.1)
    # the gain scales the signal above the camera's offset, not the offset itself
    out, _ = camera_defects(flat, AcquisitionDefects(gain_spread=0.02), np.random.default_rng(0), offset_adu=1000.0)
    assert np.all(out == 1000.0)


def test_every_defect_has_a_switch_and_impossible_values_are_refused():
    assert AcquisitionDefects().enabled() == []
    assert AcquisitionDefects.realistic().enabled() == list(DEFECTS)
    with pytest.raises(InputError, match="hot_pixel_fraction=1.5"):
        AcquisitionDefects(hot_pixel_fraction=1.5)
    with pytest.raises(InputError, match="gain_spread=-0.1"):
        AcquisitionDefects(gain_spread=-0.1)
    with pytest.raises(InputError, match="at least 2 levels"):
        AcquisitionDefects(grey_levels=1)


def test_modulation_can_differ_per_orientation():
    data = simulate_sim(shape=(64, 64), seed=1, modulation=(0.3, 0.6, 0.9))
    assert [o.modulation for o in data.params.orientations] == [0.3, 0.6, 0.9]
