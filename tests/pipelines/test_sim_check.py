"""`microsr sim check`: each acquisition defect switched on is flagged, and none that is not."""

import dataclasses
import json
import warnings

import matplotlib.image
import pytest
from helpers import run_cli

from microsr.pipelines.sim import check_file
from microsr.pipelines.simulate import write_simulation
from microsr.sim.parameters import SIMParameters
from microsr.synthetic import simulate_sim
from microsr.synthetic.defects import AcquisitionDefects

DEFECTS = {
    "stuck": (AcquisitionDefects(hot_pixel_fraction=3e-4, dead_pixel_fraction=3e-4), "stuck camera pixel"),
    "stripes": (AcquisitionDefects(row_noise_adu=1.0, column_noise_adu=1.0), "row/column pattern"),
    "excitation": (AcquisitionDefects(excitation_fluctuation=0.03), "excitation fluctuates"),
    "bleaching": (AcquisitionDefects(bleaching_per_frame=0.003), "bleaching:"),
}


def _check(tmp_path, defects, seed=1, **options):
    data = simulate_sim(shape=(128, 128), photons=30, seed=seed, time_points=4, defects=defects)
    write_simulation(data, tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # estimation warnings are flags here, checked as such
        return data, check_file(tmp_path / "data" / "raw.tif", tmp_path / "check", **options)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_is_flagged_and_no_other(name, tmp_path):
    defects, says = DEFECTS[name]
    _, report = _check(tmp_path, defects)
    assert len(report["flags"]) == 1 and says in report["flags"][0], report["flags"]


@pytest.mark.parametrize("seed", [1, 2])
def test_an_ideal_acquisition_raises_no_flag_and_the_report_is_written(seed, tmp_path):
    _, report = _check(tmp_path, None, seed=seed)
    assert report["flags"] == [] and report["stuck_pixels"] == 0 and not report["camera_stripes"]
    assert report["residual_pattern_index"] < 1.0 and 0.3 < report["modulation_contrast_median"] < 1.0
    saved = json.loads((tmp_path / "check" / "qc.json").read_text())
    assert saved["flags"] == [] and len(saved["frame_means"]) == 4 * 9
    picture = matplotlib.image.imread(tmp_path / "check" / "qc.png")
    assert picture.shape[1] > 2 * picture.shape[0] and picture.std() > 0.05  # three panels side by side


def test_a_reconstruction_with_a_wrong_modulation_is_flagged_as_keeping_the_pattern(tmp_path, capsys):
    data, _ = _check(tmp_path, None)
    wrong = SIMParameters([dataclasses.replace(o, modulation=0.15 * o.modulation) if a == 1 else o
                           for a, o in enumerate(data.params.orientations)])
    wrong.save(tmp_path / "wrong.json")
    code, out, err = run_cli(["sim", "check", tmp_path / "data" / "raw.tif", "--out", tmp_path / "check2",
                              "--params", tmp_path / "wrong.json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["residual_pattern_index"] > 1.0
    assert any("keeps the pattern (orientation 1" in flag for flag in summary["flags"])
    assert "flag: the SIM image keeps the pattern" in err


@pytest.mark.parametrize("seed", [1, 2])
def test_with_every_defect_on_each_is_flagged_and_measured_near_its_value(seed, tmp_path):
    defects = AcquisitionDefects.realistic()  # bleaching 0.3 % per frame, excitation fluctuation 3 %
    _, report = _check(tmp_path, defects, seed=seed)
    for name, (_, says) in DEFECTS.items():
        assert sum(says in flag for flag in report["flags"]) == 1, (name, report["flags"])
    assert len(report["flags"]) == len(DEFECTS), report["flags"]
    # measured 0.28 / 0.32 % and 3.2 / 3.0 %: the signal is read free of the background (see frame_intensities)
    assert report["bleaching_per_frame"] == pytest.approx(defects.bleaching_per_frame, rel=0.25)
    assert report["excitation_fluctuation"] == pytest.approx(defects.excitation_fluctuation, rel=0.25)
