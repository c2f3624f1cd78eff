"""The SIM demo (`make demo`, first part): what its summary tells a user is checked against the truth."""

import re

import pytest
from helpers import assert_figure_panels

from microsr.io import read_image
from microsr.pipelines.demo import run_demo


def test_sim_demo_estimates_the_pattern_and_beats_widefield(tmp_path):
    lines = run_demo(tmp_path, size=128, photons=30)

    orientations = [re.search(r"angle error ([-+\d.]+) mrad, spacing error ([-+\d.]+) %, modulation ([\d.]+) "
                              r"\(true ([\d.]+)\), worst phase error ([\d.]+) rad", line)
                    for line in lines if line.startswith("orientation")]
    assert len(orientations) == 3 and all(orientations), lines
    for found in orientations:
        angle_mrad, spacing_percent, modulation, true_modulation, phase_rad = map(float, found.groups())
        # At 30 photons on 128² px, measured: angles within 4.4 mrad, spacings within 0.45 %, modulation
        # 0.76–0.81 (true 0.80), phases within 0.18 rad.
        assert abs(angle_mrad) < 10 and abs(spacing_percent) < 1.0
        assert abs(modulation - true_modulation) < 0.1 and phase_rad < 0.3
    correlation = next(line for line in lines if line.startswith("correlation"))
    sim, widefield = map(float, re.search(r"SIM ([\d.]+), upsampled widefield ([\d.]+)", correlation).groups())
    assert sim > 0.9 and sim > widefield + 0.1  # measured 0.944 vs 0.796

    image = read_image(tmp_path / "sim.tif")
    assert image.array.shape == (256, 256) and image.pixel_size_nm == pytest.approx(31.3)
    # Widefield, SIM and ground truth above their spectra; the three orientations' correlation maps.
    assert_figure_panels(tmp_path / "sim.png", 2, 3)
    assert_figure_panels(tmp_path / "estimation.png", 1, 3)
