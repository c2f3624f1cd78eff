"""microsr evaluate: metrics of SIM outputs, matched by pixel size, with clear errors."""

import json
import sys

import numpy as np
import pytest
from helpers import figure_panels, run_cli

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
    assert metrics["sr_pixel_size_nm"] == pytest.approx(31.3) and metrics["widefield_pixel_size_nm"] == pytest.approx(62.6)
    # Neither image beats its physics: widefield λ/2NA = 194 nm, SIM with the pattern at 0.92 of the
    # cut-off 194/1.92 = 101 nm (measured 233 and 118 nm).
    assert metrics["widefield_resolution_nm"] > 0.95 * 194.4
    assert 0.95 * 101.3 < metrics["resolution_nm"] < 150
    # The SIM image blurred back to widefield explains the widefield image (measured RSP 0.962), and it
    # matches the ground truth (measured Pearson 0.709, MS-SSIM 0.900, PSNR 29.2 dB).
    assert metrics["squirrel_rsp"] > 0.9
    assert metrics["pearson"] > 0.6 and metrics["ms_ssim"] > 0.8 and metrics["psnr"] > 25
    # The report decodes: a 3 × 3 grid (4.3 × 4.1 in per panel at 110 dpi) whose top row shows
    # the three images (SR, reference, widefield).
    image, _, _ = figure_panels(tmp_path / "eval" / "report.png")
    assert image.shape[0] == pytest.approx(3 * 4.1 * 110, rel=0.05)
    assert image.shape[1] == pytest.approx(3 * 4.3 * 110, rel=0.05)
    _, rows, columns = figure_panels(image[: image.shape[0] // 3])
    assert len(rows) == 1 and len(columns) == 3


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
    # Two reconstructions with independent noise correlate up to the SIM resolution, past the widefield
    # limit λ/2NA = 194 nm and not past the SIM limit 194/1.92 = 101 nm (measured 118 nm; 113–120 nm
    # over seeds 22–25).
    assert 0.95 * 101.3 < metrics["frc_resolution_nm"] < 0.75 * 194.4


def _band_limited_pair(size_px, cutoff_per_px, noise_sd, seed):
    """Two noisy images of one random specimen that holds no frequency above ``cutoff_per_px``."""
    rng = np.random.default_rng(seed)
    frequency = np.hypot(np.fft.fftfreq(size_px)[:, None], np.fft.fftfreq(size_px)[None, :])
    specimen = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size_px, size_px))) * (frequency < cutoff_per_px)).real
    specimen = 50.0 + 10.0 * specimen / specimen.std()
    return [(specimen + rng.normal(0, noise_sd, specimen.shape)).astype(np.float32) for _ in range(2)]


def test_frc_finds_the_band_limit_of_a_known_pair(tmp_path, capsys):
    # A specimen band-limited to 0.2 cycles/px at 20 nm pixels has no detail finer than 100 nm: FRC
    # must report 100 nm (the metric's own test finds it within 10 %).
    for name, image in zip(("a", "b"), _band_limited_pair(256, 0.2, noise_sd=10.0, seed=3)):
        write_image(tmp_path / f"{name}.tif", image, pixel_size_nm=20.0)
    code, out, err = run(["evaluate", tmp_path / "a.tif", "--frc-pair", tmp_path / "b.tif",
                          "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["frc_resolution_nm"] == pytest.approx(100.0, rel=0.10)


def test_frc_of_an_image_with_itself_has_no_resolution(tmp_path, capsys):
    # Identical images correlate at every frequency (no independent noise): there is no crossing, and
    # metrics.json says null rather than a number.
    image, _ = _band_limited_pair(128, 0.3, noise_sd=10.0, seed=0)
    write_image(tmp_path / "a.tif", image, pixel_size_nm=20.0)
    code, out, err = run(["evaluate", tmp_path / "a.tif", "--frc-pair", tmp_path / "a.tif",
                          "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "frc_resolution_nm" in metrics and metrics["frc_resolution_nm"] is None


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


def test_an_sr_images_resolution_is_called_apparent_and_its_disagreement_map_is_reported(tmp_path, capsys):
    rng = np.random.default_rng(3)
    sr = rng.random((64, 64)).astype(np.float32)
    finding = {"quantity": "haze", "value": 0.8, "range": [0.0, 0.1]}  # as sfsrm predict stores it
    write_image(tmp_path / "sr.tif", sr, pixel_size_nm=25.0, axes="YX", notes={"input_check": [finding]})
    write_image(tmp_path / "sr_disagreement.tif", np.full((64, 64), 0.05, np.float32), pixel_size_nm=25.0, axes="YX")
    code, out, err = run_cli(["evaluate", tmp_path / "sr.tif", "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["resolution_kind"].startswith("apparent")
    assert metrics["ensemble_disagreement_mean"] == pytest.approx(0.05)
    assert metrics["input_check"] == [finding]  # the model was shown an unfamiliar input: the report keeps it


def test_a_same_shape_reference_without_a_pixel_size_is_taken_on_the_sr_grid_and_said(tmp_path, capsys):
    sr = np.random.default_rng(4).random((64, 64)).astype(np.float32)
    write_image(tmp_path / "sr.tif", sr, pixel_size_nm=30.0, axes="YX")
    np.save(tmp_path / "truth.npy", sr)  # .npy holds no pixel size
    code, out, err = run_cli(["evaluate", tmp_path / "sr.tif", "--reference", tmp_path / "truth.npy",
                              "--out", tmp_path / "eval"], capsys)
    assert code == 0, err
    assert "carries no pixel size" in err and "taken on its grid (30 nm)" in err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["pearson"] == pytest.approx(1.0)
    np.save(tmp_path / "small.npy", sr[:32, :32])  # another shape: no guess, the flag is asked for
    code, out, err = run_cli(["evaluate", tmp_path / "sr.tif", "--reference", tmp_path / "small.npy",
                              "--out", tmp_path / "eval2"], capsys)
    assert code == 2 and "--reference-pixel-size-nm" in err
