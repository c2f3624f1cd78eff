"""The command line: the SIM chain end to end on files, and one clear line for every user error."""

import json
import numpy as np
import pytest
from helpers import assert_figure_panels, run_cli
from scipy import ndimage

from microsr.io import read_image, write_image


def run(argv, capsys):
    return run_cli(argv, capsys)


@pytest.fixture(scope="module")
def simulated_dir(tmp_path_factory):
    from microsr.pipelines.simulate import write_simulation
    from microsr.synthetic.sim_raw import simulate_sim

    outdir = tmp_path_factory.mktemp("sim")
    write_simulation(simulate_sim(shape=(128, 128), photons=40, seed=3, time_points=3), outdir)
    return outdir


def test_simulate_writes_everything(tmp_path, capsys):
    code, out, _ = run(["simulate", "sim", tmp_path / "s", "--size", "64", "--photons", "20",
                        "--phases", "5"], capsys)
    assert code == 0
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    assert len(truth["orientations"]) == 3 and len(truth["orientations"][0]["phases_rad"]) == 5
    raw = read_image(tmp_path / "s" / "raw.tif")
    assert raw.array.shape == (15, 64, 64) and raw.pixel_size_nm == pytest.approx(62.6)
    assert read_image(tmp_path / "s" / "ground_truth.tif").pixel_size_nm == pytest.approx(31.3)


def test_estimate_then_reconstruct_a_stack(simulated_dir, tmp_path, capsys):
    truth = json.loads((simulated_dir / "truth.json").read_text())
    params = tmp_path / "params.json"
    code, out, err = run(["sim", "estimate", simulated_dir / "raw.tif", "--json", params,
                          "--background", "102", "--average", "0"], capsys)
    assert code == 0, err
    found = json.loads(params.read_text())
    assert set(found) >= {"orientations", "quality"}
    for o, t in zip(found["orientations"], truth["orientations"]):
        assert set(o) >= {"angle_rad", "spacing_nm", "k_cycles_per_um", "phases_rad", "modulation"}
        assert abs(np.remainder(o["angle_rad"] - t["angle_rad"] + np.pi / 2, np.pi) - np.pi / 2) < 0.005
        # Measured: spacing within 0.09 %, phases within 0.14 rad, modulation 0.71–0.82 (true 0.80).
        assert o["spacing_nm"] == pytest.approx(t["spacing_nm"], rel=0.005)
        phase_error = np.angle(np.exp(1j * (np.array(o["phases_rad"]) - np.array(t["phases_rad"]))))
        assert np.abs(phase_error).max() < 0.3
        assert abs(o["modulation"] - t["modulation"]) < 0.15
    assert (tmp_path / "params.png").exists()

    out_zarr = tmp_path / "sr.zarr"
    code, out, err = run(["sim", "reconstruct", simulated_dir / "raw.tif", "-o", out_zarr, "--params", params,
                          "--background", "102", "--batch-size", "2", "--device", "cpu",
                          "--widefield", tmp_path / "wf.tif", "--figure", tmp_path / "sr.png"], capsys)
    assert code == 0, err
    sr = read_image(out_zarr)
    assert sr.array.shape == (3, 256, 256) and sr.pixel_size_nm == pytest.approx(31.3)
    assert read_image(tmp_path / "wf.tif").array.shape == (3, 128, 128)
    assert (tmp_path / "sr.png").stat().st_size > 10_000
    # The widefield image is the mean of each time point's 9 frames less the background.
    widefield = read_image(tmp_path / "wf.tif")
    raw = read_image(simulated_dir / "raw.tif").array.reshape(3, 9, 128, 128)
    assert widefield.pixel_size_nm == pytest.approx(62.6)
    np.testing.assert_allclose(widefield.array, raw.mean(axis=1) - 102, rtol=0, atol=1e-3)
    # SIM resolves what widefield blurs: every time point correlates with the ground truth (smoothed to
    # 1 px of 31.3 nm) better than the upsampled widefield image (measured 0.947 vs 0.806).
    truth = ndimage.gaussian_filter(read_image(simulated_dir / "ground_truth.tif").array, 1.0)
    for t in range(3):
        assert pearson(sr.array[t], truth) > 0.92
        assert pearson(sr.array[t], truth) > pearson(ndimage.zoom(widefield.array[t], 2, order=3), truth) + 0.1
    # Widefield and SIM above their spectra: 2 × 2 panels, none blank.
    assert_figure_panels(tmp_path / "sr.png", 2, 2)


def test_reconstruct_without_params_estimates_first(simulated_dir, tmp_path, capsys):
    code, out, err = run(["sim", "reconstruct", simulated_dir / "raw.tif", "-o", tmp_path / "sr.tif",
                          "--background", "102"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "sr.tif").array.shape == (3, 256, 256)
    # The pattern it estimated is good enough for SIM: each time point matches the smoothed ground truth
    # (measured Pearson 0.947, as with the parameters from `sim estimate`).
    sr = read_image(tmp_path / "sr.tif")
    assert sr.pixel_size_nm == pytest.approx(31.3)
    truth = ndimage.gaussian_filter(read_image(simulated_dir / "ground_truth.tif").array, 1.0)
    assert all(pearson(frame, truth) > 0.92 for frame in sr.array)


def one_line_error(code, err):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_wrong_frame_count(tmp_path, capsys):
    write_image(tmp_path / "raw.tif", np.ones((10, 32, 32), np.uint16), pixel_size_nm=62.6)
    line = one_line_error(*run(["sim", "reconstruct", tmp_path / "raw.tif", "-o", tmp_path / "o.tif"],
                               capsys)[::2])
    assert "10 frames" in line and "--angles/--phases" in line
    assert not (tmp_path / "o.tif").exists()


def test_mismatched_parameters(simulated_dir, tmp_path, capsys):
    params = json.loads((simulated_dir / "truth.json").read_text())
    for o in params["orientations"]:
        o["phases_rad"] = o["phases_rad"] + [0.5, 1.5]  # five phases for three-phase data
    (tmp_path / "p.json").write_text(json.dumps(params))
    line = one_line_error(*run(["sim", "reconstruct", simulated_dir / "raw.tif", "-o", tmp_path / "o.tif",
                                "--params", tmp_path / "p.json"], capsys)[::2])
    assert "3 × 5" in line or "5 phases" in line or "3 angles × 5 phases" in line


def test_nan_in_raw(tmp_path, capsys):
    raw = np.full((9, 32, 32), 100.0, np.float32)
    raw[4, 3, 3] = np.nan
    write_image(tmp_path / "raw.tif", raw, pixel_size_nm=62.6)
    line = one_line_error(*run(["sim", "reconstruct", tmp_path / "raw.tif", "-o", tmp_path / "o.tif",
                                "--background", "0"], capsys)[::2])
    assert "NaN" in line
    assert list(p.name for p in tmp_path.iterdir()) == ["raw.tif"]


def test_unreadable_and_empty_files(tmp_path, capsys):
    (tmp_path / "bad.tif").write_bytes(b"nonsense")
    line = one_line_error(*run(["sim", "estimate", tmp_path / "bad.tif", "--json", tmp_path / "p.json"],
                               capsys)[::2])
    assert "cannot read" in line
    (tmp_path / "empty.tif").write_bytes(b"")
    one_line_error(*run(["sim", "estimate", tmp_path / "empty.tif", "--json", tmp_path / "p.json"], capsys)[::2])


def test_missing_otf_file(simulated_dir, tmp_path, capsys):
    line = one_line_error(*run(["sim", "estimate", simulated_dir / "raw.tif", "--json", tmp_path / "p.json",
                                "--otf", tmp_path / "nope.mrc"], capsys)[::2])
    assert "nope.mrc" in line and "does not exist" in line


def test_existing_output_needs_overwrite(simulated_dir, tmp_path, capsys):
    (tmp_path / "o.tif").write_bytes(b"keep me")
    line = one_line_error(*run(["sim", "reconstruct", simulated_dir / "raw.tif", "-o", tmp_path / "o.tif"],
                               capsys)[::2])
    assert "--overwrite" in line
    assert (tmp_path / "o.tif").read_bytes() == b"keep me"


def test_missing_pixel_size(tmp_path, capsys):
    np.save(tmp_path / "raw.npy", np.ones((9, 32, 32), np.float32))
    line = one_line_error(*run(["sim", "estimate", tmp_path / "raw.npy", "--json", tmp_path / "p.json"],
                               capsys)[::2])
    assert "--pixel-size-nm" in line


def test_usage_errors_exit_2_without_traceback(capsys):
    code, _, err = run(["sim", "reconstruct", "x.tif", "-o", "y.tif", "--wiener", "abc"], capsys)
    assert code == 2 and "--wiener" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["filaments", "line-pairs", "dot-pairs", "rings"])
def test_simulate_sfsrm_specimens(kind, tmp_path, capsys):
    code, _, err = run(["simulate", kind, tmp_path / kind, "--field-um", "3", "--snr", "10", "--count", "3"], capsys)
    assert code == 0, err
    truth = json.loads((tmp_path / kind / "truth.json").read_text())
    assert truth["kind"] == kind and (kind == "filaments" or truth["structures"])
    assert read_image(tmp_path / kind / "widefield.tif").array.shape == (30, 30)
    assert read_image(tmp_path / kind / "ground_truth.tif").pixel_size_nm == pytest.approx(10)
    assert truth["snr"] == 10 and truth["widefield_pixel_nm"] == 100 and truth["ground_truth_pixel_nm"] == 10
    # The widefield frame is the truth seen through the PSF truth.json names, binned 10 × 10 to 100 nm
    # pixels: it matches that blurred truth (measured 0.965–0.991) much better than the unblurred one
    # (0.626–0.782).
    widefield = read_image(tmp_path / kind / "widefield.tif")
    assert widefield.pixel_size_nm == pytest.approx(100)
    fine = read_image(tmp_path / kind / "ground_truth.tif").array.astype(np.float64)
    blurred = ndimage.gaussian_filter(fine, truth["psf_fwhm_nm"] / 2.3548 / 10)

    def binned(image):
        return image.reshape(30, 10, 30, 10).mean(axis=(1, 3))

    assert pearson(widefield.array, binned(blurred)) > 0.95
    assert pearson(widefield.array, binned(blurred)) > pearson(widefield.array, binned(fine)) + 0.1


def pearson(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_the_cli_tells_its_version_answers_dash_h_and_lists_the_shipped_models(capsys):
    import microsr

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"microsr {microsr.__version__}"
    code, out, _ = run_cli(["sfsrm", "predict", "-h"], capsys)
    assert code == 0 and "--disagreement" in out
    code, out, _ = run_cli(["models", "--json"], capsys)
    listed = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and {"filaments-x4", "tirf-sim-3x3", "llsm-vesicles-tis"} <= set(listed)
    assert listed["tirf-sim-3x3"]["method"] == "rDL SIM" and "62.6 nm" in listed["tirf-sim-3x3"]["description"]
    assert listed["tirf-sim-3x3"]["trained_on"]["pixel_size_nm"] == 62.6 and listed["tirf-sim-3x3"]["parameters"] > 0
    assert set(listed["filaments-x4"]["trained_on"]["measured"]) == {"psf_fwhm_nm", "snr", "haze", "density"}
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0 and "filaments-x4" in out and "MODEL_CARD.md" in out


def _leaf_commands(command=None, path=()):
    """``(path, command)`` of every command of the CLI that does something (not a group)."""
    if command is None:
        import typer

        from microsr.cli import app
        command = typer.main.get_command(app)
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaf_commands(sub, (*path, name))
    else:
        yield list(path), command


def test_every_option_of_every_command_says_what_it_does():
    silent = [f"{' '.join(path)} {param.opts[0]}" for path, command in _leaf_commands()
              for param in command.params if param.param_type_name == "option" and not param.help]
    assert silent == []


def test_every_command_shows_an_example_that_its_own_parser_accepts():
    import shlex

    for path, command in _leaf_commands():
        assert (command.epilog or "").startswith("Example: microsr " + " ".join(path)), path
        words = shlex.split(command.epilog.removeprefix("Example: "))[1 + len(path):]
        command.make_context(" ".join(path), words)  # raises on an unknown flag or a missing argument
