"""microsr evaluate: metrics of SIM outputs, matched by pixel size, with clear errors."""

import json
import sys

import numpy as np
import pytest
from helpers import run_cli

from microsr.cli import main
from microsr.io import write_image


def run(argv, capsys):
    return run_cli(argv, capsys)


@pytest.fixture(scope="module")
def sim_outputs(tmp_path_factory):
    """A simulated acquisition reconstructed by the CLI: sim.tif, wf.tif, ground_truth.tif."""
    from microsr.pipelines.simulate import write_simulation
    from microsr.synthetic.sim_raw import simulate_sim

    folder = tmp_path_factory.mktemp("evaluate")
    write_simulation(simulate_sim(shape=(256, 256), photons=60, seed=21), folder)
    old = sys.argv
    sys.argv = ["microsr", "sim", "reconstruct", str(folder / "raw.tif"), "-o", str(folder / "sim.tif"),
                "--widefield", str(folder / "wf.tif"), "--background", "102"]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        sys.argv = old
    return folder


def test_sim_beats_widefield_resolution(sim_outputs, tmp_path, capsys):
    code, out, err = run(["evaluate", sim_outputs / "sim.tif", "--widefield", sim_outputs / "wf.tif",
                          "--reference", sim_outputs / "ground_truth.tif", "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in ("psnr", "ssim", "ms_ssim", "nrmse", "pearson", "resolution_nm", "hawkman",
                "squirrel_rse", "squirrel_rsp"):
        assert key in metrics, key
    assert metrics["resolution_nm"] is not None and metrics["widefield_resolution_nm"] is not None
    assert metrics["resolution_nm"] < 0.8 * metrics["widefield_resolution_nm"]
    assert (tmp_path / "eval" / "report.png").stat().st_size > 20_000


def test_frc_between_two_reconstructions(tmp_path, capsys):
    from microsr.optics import ideal_otf
    from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
    from microsr.synthetic.sim_raw import simulate_sim

    data = simulate_sim(shape=(128, 128), photons=60, seed=22, time_points=2)
    otf = ideal_otf(1.35, 525, camera_pixel_nm=62.6)
    images = reconstruct(data.raw, data.params, 62.6, otf, ReconstructionSettings(background=102))
    for t in range(2):
        write_image(tmp_path / f"sr{t}.tif", images[t], pixel_size_nm=31.3)
    code, out, err = run(["evaluate", tmp_path / "sr0.tif", "--frc-pair", tmp_path / "sr1.tif",
                          "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["frc_resolution_nm"] is None or 60 < metrics["frc_resolution_nm"] < 400


def test_pixel_sizes_that_do_not_match_are_an_error(sim_outputs, tmp_path, capsys):
    code, _, err = run(["evaluate", sim_outputs / "sim.tif", "--widefield", sim_outputs / "wf.tif",
                        "--widefield-pixel-size-nm", "50", "--out", tmp_path / "eval"], capsys)
    assert code == 2 and "error:" in err and "Traceback" not in err
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_reference_of_another_field_is_an_error(sim_outputs, tmp_path, capsys):
    write_image(tmp_path / "gt.tif", np.ones((100, 100), np.float32), pixel_size_nm=31.3)
    code, _, err = run(["evaluate", sim_outputs / "sim.tif", "--reference", tmp_path / "gt.tif",
                        "--out", tmp_path / "eval"], capsys)
    assert code == 2 and "same field of view" in err


def test_noise_has_no_resolution_and_nan_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "noise.tif", rng.normal(100, 10, (128, 128)).astype(np.float32), pixel_size_nm=30)
    code, _, err = run(["evaluate", tmp_path / "noise.tif", "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["resolution_nm"] is None
    bad = np.ones((64, 64), np.float32)
    bad[3, 3] = np.nan
    write_image(tmp_path / "nan.tif", bad, pixel_size_nm=30)
    code, _, err = run(["evaluate", tmp_path / "nan.tif", "--out", tmp_path / "eval2"], capsys)
    assert code == 2 and "NaN" in err
