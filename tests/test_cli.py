"""The command line: the SIM chain end to end on files, and one clear line for every user error."""

import json
import numpy as np
import pytest
from helpers import run_cli

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


def test_reconstruct_without_params_estimates_first(simulated_dir, tmp_path, capsys):
    code, out, err = run(["sim", "reconstruct", simulated_dir / "raw.tif", "-o", tmp_path / "sr.tif",
                          "--background", "102"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "sr.tif").array.shape == (3, 256, 256)


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
