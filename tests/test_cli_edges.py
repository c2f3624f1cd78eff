"""The CLI's edges, as a new user meets them: interrupted and killed runs, RGB files, broken configs, --help."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from helpers import background_of, run_cli, simulated

from microsr.io import write_image


@pytest.fixture(scope="module")
def long_acquisition(tmp_path_factory):
    """A raw SIM time series long enough to be interrupted while it is written, and its pattern."""
    folder = tmp_path_factory.mktemp("long")
    data = simulated(seed=2, size=64)
    frames = np.tile(data.raw[0].reshape(9, 64, 64), (1500, 1, 1))  # 1500 time points
    write_image(folder / "raw.tif", np.clip(frames, 0, 65535).astype(np.uint16), pixel_size_nm=62.6, axes="QYX")
    data.params.save(folder / "params.json")
    return folder, background_of(data)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_or_killed_run_says_aborted_exits_130_and_leaves_nothing(sig, long_acquisition, tmp_path):
    folder, background = long_acquisition
    output = tmp_path / "out" / "sim.zarr"
    # As a command in the foreground gets it: a shell without job control starts background jobs (CI run with
    # `&`) with SIGINT ignored, their children inherit that, and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen([sys.executable, "-m", "microsr.cli", "sim", "reconstruct", folder / "raw.tif", "-o",
                                output, "--params", folder / "params.json", "--background", str(background),
                                "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (output.parent.exists() and any(p.name.endswith(".partial") for p in output.parent.iterdir())):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no partial output appeared"
        time.sleep(0.02)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    # A shell reads 130 in both cases: exit(130), or (rarely seen in CI, SIGINT only) the interpreter ending
    # itself by the signal after main() returned, which the shell reports as 128 + 2.
    assert process.returncode in (130, -signal.SIGINT if sig == signal.SIGINT else 130), stderr
    assert stderr.strip().splitlines()[-1] == "aborted" and "Traceback" not in stderr
    assert not output.parent.exists(), sorted(p.name for p in output.parent.iterdir())  # not even the folder


def test_a_partial_left_by_a_hard_kill_is_removed_by_the_rerun(tmp_path, capsys):
    data = simulated(seed=2, size=64)
    raw = tmp_path / "raw.tif"
    write_image(raw, np.clip(data.raw[0].reshape(9, 64, 64), 0, 65535).astype(np.uint16), pixel_size_nm=62.6)
    data.params.save(tmp_path / "params.json")
    leftover = tmp_path / ".sim.zarr.k3j_9x2q.partial"  # tempfile's pattern, as a killed run of 0.1 left it
    leftover.mkdir()
    (leftover / "zarr.json").write_text("{}")
    code, out, err = run_cli(["sim", "reconstruct", raw, "-o", tmp_path / "sim.tif", "--params",
                              tmp_path / "params.json", "--background", str(background_of(data))], capsys)
    assert code == 0, err
    code, out, err = run_cli(["sim", "reconstruct", raw, "-o", tmp_path / "sim.zarr", "--params",
                              tmp_path / "params.json", "--background", str(background_of(data))], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.json", "raw.tif", "sim.tif", "sim.zarr"]


def test_a_failed_command_leaves_no_empty_folders(tmp_path, capsys):
    write_image(tmp_path / "sr.tif", np.full((64, 64), np.nan, np.float32), pixel_size_nm=30)
    code, _, err = run_cli(["evaluate", tmp_path / "sr.tif", "--out", tmp_path / "report" / "deep"], capsys)
    assert code == 2 and "NaN" in err
    code, _, err = run_cli(["sfsrm", "predict", tmp_path / "sr.tif", "-o", tmp_path / "new" / "o.tif"], capsys)
    assert code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"]


def test_an_rgb_file_is_named_as_rgb_by_every_command(tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 255, (256, 256, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # as a screenshot or a colour export is saved
    for argv in (["sim", "estimate", tmp_path / "rgb.tif", "--json", tmp_path / "p.json", "--pixel-size-nm", "62.6"],
                 ["sim", "reconstruct", tmp_path / "rgb.tif", "-o", tmp_path / "o.tif", "--pixel-size-nm", "62.6"],
                 ["evaluate", tmp_path / "rgb.tif", "--out", tmp_path / "ev", "--pixel-size-nm", "30"],
                 ["sfsrm", "predict", tmp_path / "rgb.tif", "-o", tmp_path / "sr.tif", "--pixel-size-nm", "100"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and "RGB" in err and "too small" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_a_config_with_a_typo_names_the_unknown_key_and_broken_yaml_its_line(tmp_path, capsys):
    config = (tmp_path / "rdl.yaml")
    config.write_text("task: sr\noutput_dir: run\niterations: 2\nlearning_rat: 0.001\n")
    code, _, err = run_cli(["rdl", "train", config], capsys)
    assert code == 2 and "unknown key 'learning_rat'" in err and "did you mean 'learning_rate'" in err, err
    config.write_text("task: sr\noutput_dir: run\niterations: [2\nssim_weight: 0.1\n")
    code, _, err = run_cli(["rdl", "train", config], capsys)
    assert code == 2 and "line 4" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_help_shows_flags_bare_and_every_option_of_a_command(capsys):
    code, out, _ = run_cli(["sim", "reconstruct", "--help"], capsys)
    assert code == 0 and "--overwrite" in out and "<bool>" not in out
    flags = [line for line in out.splitlines() if "--overwrite" in line]
    assert flags and all("bool" not in line for line in flags)


def test_rdl_predict_says_every_warning_on_stderr_as_one_line(tmp_path, capsys):
    data = simulated(seed=1, size=128)
    raw = tmp_path / "raw.tif"
    write_image(raw, np.clip(data.raw[0].reshape(9, 128, 128), 0, 65535).astype(np.uint16), pixel_size_nm=70.0)
    code, out, err = run_cli(["rdl", "predict", raw, "-o", tmp_path / "rdl.tif", "--background",
                              str(background_of(data)), "--device", "cpu"], capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert any(line.startswith("warning: the raw frames: 70 nm pixels but the model was trained at 62.6 nm")
               for line in lines), err
    assert "Warning:" not in err and ".py:" not in err  # one line each, not Python's format
