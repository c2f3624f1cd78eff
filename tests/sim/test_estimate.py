"""Pattern estimation against simulated acquisitions with known parameters."""

import math

import numpy as np
import pytest
from helpers import background_of, shared_otf_path, simulated

from microsr.optics import ideal_otf
from microsr.sim.estimate import PatternPrior, estimate_parameters

PIXEL_NM = 62.6


def angle_error(found, true):
    """Difference of two angles defined modulo π."""
    return abs((found - true + math.pi / 2) % math.pi - math.pi / 2)


def phase_error(found, true):
    return abs(math.remainder(found - true, 2 * math.pi))


def assert_matches_truth(params, truth, phase_tolerance=0.1):
    assert len(params.orientations) == len(truth.orientations)
    for found, true in zip(params.orientations, truth.orientations):
        assert angle_error(found.angle_rad, true.angle_rad) < 0.005
        assert found.spacing_nm == pytest.approx(true.spacing_nm, rel=0.005)
        assert found.modulation == pytest.approx(true.modulation, abs=0.1)
        for p_found, p_true in zip(found.phases_rad, true.phases_rad):
            assert phase_error(p_found, p_true) < phase_tolerance


@pytest.mark.parametrize("seed,photons", [(0, 30), (1, 30), (2, 30), (3, 30), (4, 20), (5, 20), (6, 15)])
def test_recovers_parameters_near_otf_edge_at_low_light(seed, photons, tirf_otf):
    data = simulated(seed=seed, photons=photons)  # 256², pattern at 92 % of the cut-off
    params = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data))
    assert_matches_truth(params, data.params)
    assert params.quality["reliable"], params.quality["warnings"]


def test_pattern_at_97_percent_of_cutoff(tirf_otf):
    data = simulated(seed=11, photons=30, fraction=0.97)
    params = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data))
    assert_matches_truth(params, data.params)


def test_five_phases(tirf_otf):
    data = simulated(seed=8, photons=30, phases=5)
    params = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data))
    assert params.phases == 5
    assert_matches_truth(params, data.params)


def all_phase_errors(params, truth):
    return [phase_error(f, t) for found, true in zip(params.orientations, truth.orientations)
            for f, t in zip(found.phases_rad, true.phases_rad)]


def test_unequal_phase_steps_are_measured_per_frame(tirf_otf):
    data = simulated(seed=9, photons=200, jitter=0.4)  # a phase shifter off by ~0.4 rad per step
    bg = background_of(data)
    free = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=bg, phase_steps="free")
    equal = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=bg)
    assert_matches_truth(free, data.params, phase_tolerance=0.2)
    assert np.mean(all_phase_errors(free, data.params)) < 0.08
    assert np.mean(all_phase_errors(equal, data.params)) > 0.2
    assert any("phase-steps free" in w for w in equal.quality["warnings"])


def test_averaging_time_points_rescues_very_low_light(tirf_otf):
    data = simulated(seed=10, photons=4, time_points=8)
    averaged = estimate_parameters(data.raw, PIXEL_NM, tirf_otf, background=background_of(data))
    assert_matches_truth(averaged, data.params, phase_tolerance=0.15)


def test_prior_restricts_the_search(tirf_otf):
    data = simulated(seed=2, photons=30)
    true = data.params.orientations
    prior = PatternPrior(angles_rad=(true[0].angle_rad + 0.01,), spacing_nm=true[0].spacing_nm * 1.01)
    params = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data),
                                 prior=prior)
    assert_matches_truth(params, data.params)


def test_pure_noise_is_flagged_not_trusted(tirf_otf):
    rng = np.random.default_rng(0)
    noise = rng.poisson(20.0, size=(3, 3, 128, 128)).astype(np.float32)
    params = estimate_parameters(noise, PIXEL_NM, tirf_otf, background=0.0)
    assert not params.quality["reliable"]
    assert any("background" in w or "≈ 0" in w for w in params.quality["warnings"])


def test_wrong_optics_gives_implausible_warning():
    data = simulated(seed=3, photons=30)
    # An OTF far too narrow for the data: the estimate lands on noise and says so.
    narrow = ideal_otf(0.5, 525.0, camera_pixel_nm=PIXEL_NM)
    params = estimate_parameters(data.raw[0], PIXEL_NM, narrow, background=background_of(data))
    assert params.quality["warnings"]


def test_estimation_uses_the_measured_otf_file():
    from microsr.optics import load_otf_mrc

    otf = load_otf_mrc(shared_otf_path())
    data = simulated(seed=12, photons=60, fraction=0.92)
    params = estimate_parameters(data.raw[0], PIXEL_NM, otf, background=background_of(data))
    for found, true in zip(params.orientations, data.params.orientations):
        assert angle_error(found.angle_rad, true.angle_rad) < 0.005
        assert found.spacing_nm == pytest.approx(true.spacing_nm, rel=0.005)


def test_the_search_limited_to_its_rings_gives_what_the_full_maps_give(tirf_otf):
    # Without diagnostics the maps are normalized on the search's rings only and the search skips the spacings
    # that cannot win; with them every ring is normalized for the figure. The estimate must not notice.
    data = simulated(seed=5, photons=20)
    diagnostics = {}
    with_maps = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data),
                                    diagnostics=diagnostics)
    without = estimate_parameters(data.raw[0], PIXEL_NM, tirf_otf, background=background_of(data))
    assert with_maps.to_dict() == without.to_dict()
    maps = diagnostics["correlation_maps"]
    assert maps.shape == (3, 512, 512)
    # symmetrized over ±k: the point mirror about the centre (256, 256) is the same map
    np.testing.assert_array_equal(maps[:, 1:, 1:], maps[:, :0:-1, :0:-1])
