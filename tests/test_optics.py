"""Optics: ideal OTF shape and measured OTF files."""

import numpy as np
import pytest
from helpers import shared_otf_path

from microsr.errors import InputError
from microsr.optics import circular_pupil_otf_profile, ideal_otf, load_otf_mrc, otf_cutoff_per_um


def test_cutoff_is_2na_over_lambda():
    assert otf_cutoff_per_um(1.35, 500.0) == pytest.approx(5.4)


def test_ideal_profile_is_one_at_zero_and_zero_at_cutoff():
    assert circular_pupil_otf_profile(np.array(0.0)) == pytest.approx(1.0)
    assert circular_pupil_otf_profile(np.array(1.0)) == pytest.approx(0.0, abs=1e-12)
    values = circular_pupil_otf_profile(np.linspace(0, 1, 50))
    assert np.all(np.diff(values) < 0)


def test_ideal_otf_on_grid_is_symmetric_and_band_limited():
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=62.6)
    grid = otf.on_grid((64, 64), 62.6)
    assert grid[0, 0] == pytest.approx(1.0)
    assert np.allclose(grid, np.roll(grid[::-1, ::-1], 1, axis=(0, 1)))
    ky = np.fft.fftfreq(64, 0.0626)[:, None]
    kx = np.fft.fftfreq(64, 0.0626)[None, :]
    assert np.all(grid[np.hypot(ky, kx) >= otf.cutoff_per_um] == 0)


def test_pixel_integration_lowers_high_frequencies():
    with_pixel = ideal_otf(1.35, 525.0, camera_pixel_nm=62.6)
    without = ideal_otf(1.35, 525.0)
    k = np.array(4.0)
    assert with_pixel(np.array(0.0), k) < without(np.array(0.0), k)


def test_measured_otf_file_loads_with_its_frequency_step():
    otf = load_otf_mrc(shared_otf_path())
    # Values quoted in the file's README: OTF(4 µm⁻¹) ≈ 0.054, OTF(5 µm⁻¹) ≈ 0.009.
    assert otf.profile(np.array(4.0)) == pytest.approx(0.054, abs=0.003)
    assert otf.profile(np.array(5.0)) == pytest.approx(0.009, abs=0.002)
    assert 5.0 < otf.cutoff_per_um < 7.0
    grid = otf.on_grid((128, 128), 62.6)
    assert grid[0, 0] == pytest.approx(1.0) and grid.min() >= 0


def test_missing_or_corrupt_otf_file_is_a_user_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_otf_mrc(tmp_path / "nope.mrc")
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"not an mrc file at all")
    with pytest.raises(InputError, match="cannot read"):
        load_otf_mrc(bad)
