"""The README's tour runs as written: every command of it, in order, prints the keys and numbers the README shows.

The commands are read from README.md itself (the fenced ``bash`` and ``python`` blocks of its tour), so a
flag, a file name, a printed key or a quoted number that drifts from the package fails here. A ``# ...``
line under a command is what the README says it prints: its JSON keys must be printed, and its numbers
must be what is printed (exactly, at the README's rounding) or, where the test runs smaller inputs than
the README, lie in the range stated below together with the printed value.
"""

import json
import math
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOUR_HEADING = "## A 5-minute tour"

# Smaller inputs than the README's, so that the whole tour runs in about a minute on 2 cores: each is a
# textual substitution of the README's own text, and a substitution that no longer matches fails the
# test (the README changed: update it here).
SMALLER_COMMANDS = {
    # 128² raw frames instead of 256²: estimation and the metrics below take a quarter of the time.
    "simulate sim sim_data --size 256": "simulate sim sim_data --size 128",
    # 3 frames of the widefield movie instead of 5.
    "simulate sim movie --pixel-size-nm 100 --size 64 --time-points 5":
        "simulate sim movie --pixel-size-nm 100 --size 64 --time-points 3",
    # TiS-rDL: a few iterations prove the command, not the denoiser (tests/train covers that).
    "--iterations 300": "--iterations 2",
}
SMALLER_PYTHON = {
    # a (2, 8, 32, 32) LLSM stack instead of (4, 16, 64, 64): the smallest TiS pair of one patch.
    "shape=(4, 16, 64, 64)": "shape=(2, 8, 32, 32)",
}
# The training configs of examples/ run for 1 iteration per stage, on 2 validation pairs of batch 2.
SMALLER_CONFIG = ((r"iterations: \d+", "iterations: 1"), (r"validation_pairs: \d+", "validation_pairs: 2"),
                  (r"batch_size: \d+", "batch_size: 2"))
# Printed values that follow the sizes above, by the command's first words: their key must be printed, with
# a value of the README's type.
SIZE_DEPENDENT = {"sfsrm predict movie/": {"frames"}, "selfsup predict": {"shape", "volumes_written"}}

# Ranges for the README's numbers that the smaller inputs change (and that vary with the noise): both the
# README's value and the printed one must lie in them. Keyed by the command's first words.
RANGES = {
    # The README's 256² SIM: resolution 114 / 246 nm, PSNR 27.3, SSIM 0.54; the test's 128²: 118 / 237, 30.0, 0.78.
    "evaluate sim.tif": {
        "resolution_nm": (100, 135), "widefield_resolution_nm": (220, 270), "psnr": (25, 33), "ssim": (0.45, 0.85),
        "ms_ssim": (0.75, 0.92), "nrmse": (0.02, 0.06), "pearson": (0.6, 0.8), "hawkman": (0.75, 0.9),
        "squirrel_rse": (1.0, 2.2), "squirrel_rsp": (0.88, 0.98)},
    "evaluate sr.tif": {  # SFSRM on the README's own 100-nm field (not made smaller)
        "resolution_nm": (40, 90), "widefield_resolution_nm": (220, 280), "psnr": (20, 25), "ssim": (0.08, 0.3),
        "ms_ssim": (0.75, 0.9), "pearson": (0.4, 0.65), "hawkman": (0.3, 0.6)},
}
# `sim estimate` at 128² against the README's 256²: the pattern within these of the README's line.
ESTIMATE_TOLERANCE = {"angle": 0.2, "spacing": 1.0, "phases": 0.25}  # degrees, nm, rad
MODULATION_RANGE = (0.7, 0.9)  # the simulation's modulation is 0.8


def tour_text() -> str:
    text = README.read_text()
    start = text.index(TOUR_HEADING)
    end = text.find("\n## ", start + len(TOUR_HEADING))
    return text[start:end if end >= 0 else None]


def tour_steps(text: str) -> list[dict]:
    """The tour's blocks in order: ``shell`` commands with the ``# ...`` lines under each, ``python`` code,
    and ``json`` (the README's excerpt of ``params.json``)."""
    steps = []
    for language, body in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S):
        if language != "bash":
            steps.append({"kind": language, "text": body})
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if line.startswith("#"):
                steps[-1]["printed"].append(line[1:].strip())
            elif line.strip():
                steps.append({"kind": "shell", "text": re.sub(r"\s+#\s.*$", "", line).strip(), "printed": []})
    return steps


def smaller(text: str, substitutions: dict) -> str:
    for old, new in substitutions.items():
        text = text.replace(old, new)
    return text


def printed_json_lines(printed: list[str]) -> str | None:
    """The README's JSON (one or more ``# {...`` lines) under a command, or None."""
    lines = [line for line in printed if line.startswith("{") or line.startswith('"')]
    return " ".join(lines) if lines else None


def quoted_values(text: str) -> dict:
    """Key → value of the README's JSON excerpt (which may hold ``...``): numbers as (float, decimals),
    strings, null/true/false, lists of those, ``dict`` for ``{...}``, and ``...`` for a key whose value
    the excerpt shows only in part (only that the key is printed is checked)."""
    values = dict.fromkeys(re.findall(r'"(\w+)":', text), ...)
    pattern = r'"(\w+)":\s*("[^"]*"|-?\d+(?:\.\d+)?|null|true|false|\[[^\]\[{]*\]|\{\.\.\.\})'
    for key, raw in re.findall(pattern, text):
        if raw == "{...}":
            values[key] = dict
        elif raw[0] in '"[' or raw in ("null", "true", "false"):
            values[key] = json.loads(raw)
        else:
            values[key] = (float(raw), len(raw.split(".")[1]) if "." in raw else 0)
    return values


def check_printed_json(command: str, readme_json: str, stdout: str) -> None:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"{command!r} printed no JSON line:\n{stdout}"
    printed = json.loads(lines[-1])
    ranges = next((r for prefix, r in RANGES.items() if command.startswith(prefix)), {})
    size_dependent = next((k for prefix, k in SIZE_DEPENDENT.items() if command.startswith(prefix)), set())
    for key, quoted in quoted_values(readme_json).items():
        assert key in printed, f"{command!r}: the README shows {key!r}, the command does not print it"
        value = printed[key]
        if quoted is ...:
            continue
        if quoted is dict:
            assert isinstance(value, dict), (command, key, value)
        elif isinstance(quoted, tuple):
            number, decimals = quoted
            if key in ranges:
                low, high = ranges[key]
                assert low <= number <= high, f"{command!r}: the README's {key} {number} is outside {ranges[key]}"
                assert low <= value <= high, f"{command!r}: printed {key} {value} is outside {ranges[key]}"
            elif key in size_dependent:
                assert isinstance(value, (int, float)), (command, key, value)
            else:
                assert round(value, decimals) == pytest.approx(number), \
                    f"{command!r}: the README shows {key} {number}, the command printed {value}"
        elif key in size_dependent:
            assert type(value) is type(quoted), (command, key, value)
        else:
            assert value == quoted, f"{command!r}: the README shows {key} {quoted!r}, the command printed {value!r}"


ORIENTATION = re.compile(r"orientation (\d): angle ([\d.]+)°, spacing ([\d.]+) nm, modulation ([\d.]+), "
                         r"phases ([\d., ]+) rad")


def check_orientation_line(readme_line: str, stdout: str) -> None:
    number, angle, spacing, modulation, phases = ORIENTATION.fullmatch(readme_line).groups()
    found = [m for m in ORIENTATION.finditer(stdout) if m.group(1) == number]
    assert found, f"no line for orientation {number} in:\n{stdout}"
    _, p_angle, p_spacing, p_modulation, p_phases = found[0].groups()
    assert abs(float(p_angle) - float(angle)) < ESTIMATE_TOLERANCE["angle"], (readme_line, found[0].group(0))
    assert abs(float(p_spacing) - float(spacing)) < ESTIMATE_TOLERANCE["spacing"], (readme_line, found[0].group(0))
    for m in (modulation, p_modulation):
        assert MODULATION_RANGE[0] <= float(m) <= MODULATION_RANGE[1], (readme_line, found[0].group(0))
    for quoted, got in zip(phases.split(","), p_phases.split(",")):
        difference = (float(got) - float(quoted) + math.pi) % (2 * math.pi) - math.pi
        assert abs(difference) < ESTIMATE_TOLERANCE["phases"], (readme_line, found[0].group(0))


def check_printed(command: str, printed: list[str], stdout: str) -> None:
    readme_json = printed_json_lines(printed)
    if readme_json is not None:
        check_printed_json(command, readme_json, stdout)
    for line in printed:
        if line.startswith("orientation "):
            check_orientation_line(line, stdout)
        elif line.startswith("wrote "):
            assert line in stdout.splitlines(), f"{command!r}: the README shows {line!r}, it printed:\n{stdout}"


def check_params_json(readme_json: str, path: Path) -> None:
    """The README's excerpt of params.json: its keys are the file's, its numbers those of the estimate."""
    params = json.loads(path.read_text())
    first, quality = params["orientations"][0], params["quality"]
    for key, quoted in quoted_values(readme_json).items():
        assert key in first or key in quality or key in params, f"params.json has no {key!r}"
        if quoted is ...:
            continue
        if key == "modulation":
            assert MODULATION_RANGE[0] <= quoted[0] <= MODULATION_RANGE[1]
            assert MODULATION_RANGE[0] <= first[key] <= MODULATION_RANGE[1]
        elif key in ("angle_deg", "angle_rad"):
            tolerance = ESTIMATE_TOLERANCE["angle"] * (1 if key == "angle_deg" else math.pi / 180)
            assert abs(first[key] - quoted[0]) < tolerance, (key, first[key], quoted)
        elif key in ("spacing_nm", "k_cycles_per_um"):
            assert first[key] == pytest.approx(quoted[0], rel=0.005), (key, first[key], quoted)
        elif key in ("warnings", "reliable"):
            assert quality[key] == quoted, (key, quality[key], quoted)


def small_examples(folder: Path) -> None:
    """The repository's training configs, made small (SMALLER_CONFIG), under ``folder/examples``."""
    (folder / "examples").mkdir()
    for config in (REPO / "examples").glob("*.yaml"):
        text = config.read_text()
        for pattern, replacement in SMALLER_CONFIG:
            text = re.sub(pattern, replacement, text)
        (folder / "examples" / config.name).write_text(text)


def run_shell(command: str, printed: list[str], folder: Path, capsys) -> None:
    if command.startswith(".venv/bin/microsr "):
        code, out, err = run_cli(shlex.split(command)[1:], capsys)
        assert code == 0, f"{command!r} exited {code}:\n{out}\n{err}"
        check_printed(command.removeprefix(".venv/bin/microsr "), printed, out)
    elif command.startswith("mkdir ") and " && cp " in command:
        subprocess.run(["bash", "-c", command], cwd=folder, check=True)
    elif command.startswith(".venv/bin/python bench/"):
        # The held-out bench takes ~100 s; `make shipped-model` runs it, and tests/pipelines/test_sfsrm.py
        # checks the shipped model's margin. Here: that the script the README names exists.
        assert (REPO / shlex.split(command)[1]).is_file(), command
    else:
        pytest.fail(f"the README's tour has a command this test does not know how to run: {command!r}")


@pytest.mark.slow
def test_every_command_of_the_tour_runs_and_prints_what_the_readme_says(tmp_path, monkeypatch, capsys):
    text = tour_text()
    for old in [*SMALLER_COMMANDS, *SMALLER_PYTHON]:
        assert old in text, f"the tour no longer has {old!r}: update SMALLER_* in this test"
    steps = tour_steps(text)
    commands = [step["text"] for step in steps if step["kind"] == "shell"]
    assert len(commands) >= 20 and all(c.startswith((".venv/bin/", "mkdir ")) for c in commands), commands
    small_examples(tmp_path)
    monkeypatch.chdir(tmp_path)  # the tour starts in a folder with nothing of its own in it
    for step in steps:
        if step["kind"] == "shell":
            run_shell(smaller(step["text"], SMALLER_COMMANDS), step["printed"], tmp_path, capsys)
        elif step["kind"] == "python":
            exec(compile(smaller(step["text"], SMALLER_PYTHON), "README.md (tour)", "exec"), {})
        elif step["kind"] == "json":
            check_params_json(step["text"], tmp_path / "params.json")
        else:
            pytest.fail(f"a {step['kind']} block in the tour: teach this test what to do with it")

    # What the tour's outputs are, beyond what they print: SIM and SFSRM resolve finer than the widefield
    # image (decorrelation analysis, evaluate's metrics.json); the ensemble's disagreement map lies beside
    # its output; the movie's agreement map has a frame per SR frame.
    for folder, ratio in (("eval", 0.6), ("eval_sr", 0.4)):
        metrics = json.loads((tmp_path / folder / "metrics.json").read_text())
        assert metrics["resolution_nm"] < ratio * metrics["widefield_resolution_nm"], (folder, metrics)
    assert (tmp_path / "sr_ensemble_disagreement.tif").is_file()
    agreement = zarr.open_array(str(tmp_path / "agreement.zarr" / "0"), mode="r")  # OME-Zarr: level 0 of the pyramid
    assert agreement.shape == zarr.open_array(str(tmp_path / "sr_movie.zarr" / "0"), mode="r").shape
    assert np.isfinite(np.asarray(agreement)).all()
