"""Estimation on acquisitions with a real instrument's defects: never an impossible modulation, geometry kept."""

import math

import numpy as np
import pytest
from helpers import shared_otf_path

from microsr.optics import edge_taper, load_otf_mrc
from microsr.pipelines.sim import SIMReconstructor
from microsr.sim.estimate import bound_modulations, fixed_pattern_stripes, repair_pixels, stuck_pixels
from microsr.sim.parameters import Orientation
from microsr.synthetic import simulate_sim
from microsr.synthetic.defects import AcquisitionDefects

MODULATIONS = (0.5, 0.7, 0.9)  # different per orientation, as on real instruments


@pytest.fixture(scope="module")
def measured_otf():
    return load_otf_mrc(shared_otf_path())


def _acquisition(otf, photons, seed, defects=AcquisitionDefects.realistic()):
    return simulate_sim(shape=(256, 256), photons=photons, seed=seed, otf=otf, pattern_fraction_of_cutoff=0.95,
                        modulation=MODULATIONS, defects=defects)


def _errors(params, truth):
    angle = max(abs((f.angle_rad - t.angle_rad + math.pi / 2) % math.pi - math.pi / 2)
                for f, t in zip(params.orientations, truth.orientations))
    spacing = max(abs(f.spacing_nm / t.spacing_nm - 1) for f, t in zip(params.orientations, truth.orientations))
    modulation = max(abs(f.modulation - t.modulation) for f, t in zip(params.orientations, truth.orientations))
    return angle, spacing, modulation


@pytest.mark.slow
@pytest.mark.parametrize("photons", [5, 15, 50])
def test_no_modulation_is_ever_outside_0_1_with_every_defect_on(measured_otf, photons):
    for seed in range(5):
        data = _acquisition(measured_otf, photons, seed)
        params = SIMReconstructor(measured_otf, 62.6).estimate(data.raw[0], background="auto")
        assert all(0 < o.modulation <= 1 for o in params.orientations), (seed, params.quality["warnings"])
        for item in params.quality.get("modulation_substituted", []):
            assert item["reason"] in params.quality["warnings"] and not params.quality["reliable"]


@pytest.mark.slow
def test_geometry_and_modulation_at_30_photons_with_every_defect_on(measured_otf):
    # Measured (AcquisitionDefects.realistic: a factory-corrected sCMOS): angle ≤ 1.3 mrad, spacing ≤ 0.15 %
    # and modulation ≤ 0.099 off at 30 photons. The first order sits where this OTF is ~0.01: the
    # modulation is the estimate's least certain number.
    for seed in range(5):
        data = _acquisition(measured_otf, 30, seed)
        params = SIMReconstructor(measured_otf, 62.6).estimate(data.raw[0], background="auto")
        angle, spacing, modulation = _errors(params, data.params)
        assert angle <= 5e-3 and spacing <= 5e-3 and modulation <= 0.1, (seed, angle, spacing, modulation)
        assert params.quality["pixels_repaired"] == int((data.camera_defects["hot"] | data.camera_defects["dead"]).sum())


@pytest.mark.slow
def test_modulation_at_50_photons_with_an_uncorrected_camera(measured_otf):
    # Offsets of 2 e⁻ per pixel and 1 e⁻ per row and column, never corrected: ≤ 0.085 off at 50 photons
    # (at 30 photons up to 0.39 off: an uncorrected camera needs more light, or --average).
    for seed in range(5):
        data = _acquisition(measured_otf, 50, seed, AcquisitionDefects.uncorrected())
        params = SIMReconstructor(measured_otf, 62.6).estimate(data.raw[0], background="auto")
        assert _errors(params, data.params)[2] <= 0.1, (seed, [o.modulation for o in params.orientations])


def test_stuck_pixels_are_found_and_repaired_and_live_ones_left_alone():
    data = simulate_sim(shape=(64, 64), photons=50, seed=2,
                        defects=AcquisitionDefects(hot_pixel_fraction=0.01, dead_pixel_fraction=0.01))
    raw = data.raw[0]
    defective = data.camera_defects["hot"] | data.camera_defects["dead"]
    assert np.array_equal(stuck_pixels(raw), defective) and defective.sum() > 40
    repaired = repair_pixels(raw, defective)
    assert repaired[..., defective].max() < 1000 and np.array_equal(repaired[..., ~defective], raw[..., ~defective])
    assert not stuck_pixels(simulate_sim(shape=(64, 64), seed=2).raw[0]).any()


def test_a_camera_row_and_column_pattern_is_detected_only_when_there():
    def spectrum_and_outside(data):
        # tapered as the estimation tapers it: an untapered field's edges put a cross on the axes too
        widefield = (data.raw[0].mean(axis=(0, 1)) - 100) * edge_taper((64, 64))
        ky, kx = np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij")
        return np.fft.fft2(widefield), np.hypot(ky, kx) > 0.3  # beyond this OTF's support (0.21/pixel)
    striped = simulate_sim(shape=(64, 64), seed=5, defects=AcquisitionDefects(row_noise_adu=1.0, column_noise_adu=1.0))
    assert fixed_pattern_stripes(*spectrum_and_outside(striped))
    assert not fixed_pattern_stripes(*spectrum_and_outside(simulate_sim(shape=(64, 64), seed=5)))


def test_an_impossible_modulation_is_replaced_and_the_record_says_by_what():
    def orientations(*depths):
        return [Orientation(a, 200.0, (0.0, 2.1, 4.2), m) for a, m in enumerate(depths)]
    fixed, record = bound_modulations(orientations(2.23, 0.35, 0.69))
    assert [o.modulation for o in fixed] == [pytest.approx(0.52), 0.35, 0.69]
    assert record[0]["measured"] == 2.23 and "outside (0, 1]" in record[0]["reason"]
    from microsr.sim.estimate import FALLBACK_MODULATION, PatternPrior
    fixed, record = bound_modulations(orientations(1.7, 1.2, 0.0), PatternPrior(modulation=0.8))
    assert [o.modulation for o in fixed] == [0.8, 0.8, 0.8] and {r["source"] for r in record} == {"prior"}
    fixed, _ = bound_modulations(orientations(1.7, 1.2, 1.1))
    assert [o.modulation for o in fixed] == [FALLBACK_MODULATION] * 3
