"""Tests of the simulated lattice light-sheet series in microsr.synthetic.llsm: camera, PSF, motion, units."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.synthetic.llsm import SPECIMENS, LLSMData, llsm_time_subsample, simulate_llsm


def _pearson(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _psnr_db(data):
    """PSNR of the offset-corrected noisy series against the clean one, peak = brightest signal."""
    peak = float(data.clean.max()) - data.background_photons
    mse = float(np.mean((data.noisy - data.offset_adu - data.clean) ** 2))
    return 10.0 * np.log10(peak ** 2 / mse)


def _fwhm_nm(profile, spacing_nm):
    """FWHM of a single peak, half-maximum crossings interpolated linearly between samples."""
    top = int(np.argmax(profile))
    half = profile[top] / 2.0
    left, right = top, top
    while profile[left - 1] > half:
        left -= 1
    while profile[right + 1] > half:
        right += 1
    # Crossing positions, in samples, between the last sample above half and the first below.
    lo = left - (profile[left] - half) / (profile[left] - profile[left - 1])
    hi = right + (profile[right] - half) / (profile[right] - profile[right + 1])
    return (hi - lo) * spacing_nm


def test_arrays_have_the_asked_shape_float32_and_the_settings_used():
    data = simulate_llsm(shape=(3, 8, 32, 24), specimen="mixed", seed=2)
    assert isinstance(data, LLSMData)
    for array in (data.noisy, data.clean, data.ground_truth):
        assert array.shape == (3, 8, 32, 24) and array.dtype == np.float32
    assert data.voxel_size_nm == (200.0, 92.6, 92.6) and data.time_step_s == 0.1
    assert data.clean.min() >= data.background_photons - 1e-4      # signal ≥ 0 on top of background
    assert data.ground_truth.min() >= 0.0 and data.ground_truth.max() > 0.0
    assert data.settings["specimen"] == "mixed" and data.settings["seed"] == 2
    assert data.settings["shape"] == [3, 8, 32, 24] and data.settings["photons"] == 30.0
    assert data.psf_fwhm_nm[0] == pytest.approx(2.5 * data.psf_fwhm_nm[1])
    assert data.psf_fwhm_nm[1] == pytest.approx(0.51 * 525.0 / 1.1)


def test_the_same_seed_gives_the_same_series_and_another_seed_another():
    first = simulate_llsm(shape=(2, 6, 24, 24), specimen="mixed", seed=5)
    again = simulate_llsm(shape=(2, 6, 24, 24), specimen="mixed", seed=5)
    other = simulate_llsm(shape=(2, 6, 24, 24), specimen="mixed", seed=6)
    for name in ("noisy", "clean", "ground_truth"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.allclose(first.clean, other.clean)


def test_noisy_counts_are_clean_photons_plus_offset_with_shot_and_read_noise():
    data = simulate_llsm(shape=(4, 16, 64, 64), photons=30.0, background_photons=5.0, read_noise_e=1.5,
                         offset_adu=100.0, seed=0)
    residual = data.noisy - data.offset_adu - data.clean
    # The mean of 262 144 voxels has a standard error of ~0.007 counts.
    assert abs(float(data.noisy.mean()) - float(data.clean.mean()) - 100.0) < 0.05
    # Poisson variance equals the expected photons; read noise adds 1.5².
    assert float(residual.var()) == pytest.approx(float(data.clean.mean()) + 1.5 ** 2, rel=0.03)


def test_snr_rises_with_the_photon_budget():
    psnrs = [_psnr_db(simulate_llsm(shape=(2, 8, 48, 48), photons=p, seed=1)) for p in (5.0, 30.0, 200.0)]
    assert psnrs[0] < psnrs[1] < psnrs[2]
    assert psnrs[2] - psnrs[0] > 10.0   # 40× the photons: shot-noise-limited SNR grows ~√40 (16 dB)


def test_peak_photons_set_the_brightness_of_a_bead():
    beads = simulate_llsm(shape=(1, 16, 64, 64), specimen="beads", photons=50.0, background_photons=0.0,
                          seed=0)
    # A 100-nm bead off the voxel centre by up to half a voxel peaks at 60–100 % of the photons asked.
    assert 0.6 * 50.0 < float(beads.clean.max()) <= 50.0 * 1.001


def test_consecutive_volumes_are_highly_correlated_and_far_apart_ones_less():
    data = simulate_llsm(shape=(8, 16, 64, 64), specimen="vesicles", seed=0)
    steps = [_pearson(data.clean[t], data.clean[t + 1]) for t in range(7)]
    assert min(steps) > 0.8
    assert _pearson(data.clean[0], data.clean[7]) < min(steps) - 0.2

    slow = llsm_time_subsample(data, 3)
    assert slow.clean.shape == (3, 16, 64, 64) and slow.time_step_s == pytest.approx(0.3)
    assert slow.settings["time_subsample"] == 3 and slow.settings["shape"] == [3, 16, 64, 64]
    np.testing.assert_array_equal(slow.noisy, data.noisy[::3])
    # Three times farther between kept volumes: less alike.
    assert _pearson(slow.clean[0], slow.clean[1]) < min(steps) - 0.05


def test_axial_psf_is_wider_than_lateral_on_a_bead():
    beads = simulate_llsm(shape=(1, 40, 64, 64), voxel_size_nm=(100.0, 92.6, 92.6), specimen="beads",
                          photons=100.0, background_photons=0.0, seed=0)
    volume = beads.clean[0]
    z, y, x = np.unravel_index(np.argmax(volume), volume.shape)
    axial = _fwhm_nm(volume[:, y, x], 100.0)
    lateral = _fwhm_nm(volume[z, y, :], 92.6)
    # PSF 608 × 243 nm, widened by the 100-nm bead and, laterally, by the 92.6-nm pixels (~256 nm).
    assert axial == pytest.approx(beads.psf_fwhm_nm[0], rel=0.15)
    assert lateral == pytest.approx(256.0, rel=0.15)
    assert 2.0 < axial / lateral < 2.8


def test_the_specimen_stays_in_physical_units_whatever_the_z_step():
    fine = simulate_llsm(shape=(2, 16, 48, 48), voxel_size_nm=(200.0, 92.6, 92.6), specimen="mixed", seed=4)
    coarse = simulate_llsm(shape=(2, 8, 48, 48), voxel_size_nm=(400.0, 92.6, 92.6), specimen="mixed", seed=4)
    # Planes sample depth: every other 200-nm plane is a 400-nm plane, up to float32 rounding.
    peak = float(fine.clean.max())
    assert np.abs(coarse.clean - fine.clean[:, ::2]).max() < 1e-4 * peak
    # Signal (clean) and dye (ground truth) per µm³ of the same 3.2 × 4.4 × 4.4 µm³ field agree.
    signal = [float((d.clean - d.background_photons).mean()) for d in (fine, coarse)]
    dye = [float(d.ground_truth.mean()) for d in (fine, coarse)]
    assert signal[1] == pytest.approx(signal[0], rel=0.05)
    assert dye[1] == pytest.approx(dye[0], rel=0.05)


def test_a_larger_field_or_longer_series_extends_the_same_specimen():
    base = simulate_llsm(shape=(2, 8, 32, 32), specimen="mixed", seed=7)
    larger = simulate_llsm(shape=(3, 8, 40, 48), specimen="mixed", seed=7)
    np.testing.assert_allclose(larger.clean[:2, :, :32, :32], base.clean, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(larger.ground_truth[:2, :, :32, :32], base.ground_truth, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=(8, 16, 64)), "4 integers"),
    (dict(shape=(8, 16, 64, 0)), "4 integers"),
    (dict(shape=(8, 16.0, 64, 64)), "4 integers"),
    (dict(photons=0.0), "photons"),
    (dict(photons=-3.0), "photons"),
    (dict(photons=float("nan")), "photons"),
    (dict(specimen="cells"), "vesicles, membranes, mixed"),
    (dict(voxel_size_nm=(200.0, 0.0, 92.6)), "voxel_size_nm"),
    (dict(voxel_size_nm=(200.0, 92.6)), "voxel_size_nm"),
    (dict(background_photons=-1.0), "background_photons"),
    (dict(read_noise_e=-1.0), "read_noise_e"),
    (dict(na=0.0), "na"),
    (dict(time_step_s=0.0), "time_step_s"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_llsm(**{"shape": (1, 2, 8, 8), **kwargs})


def test_bad_subsampling_raises_input_error():
    data = simulate_llsm(shape=(3, 2, 8, 8), seed=0)
    for factor, start in ((0, 0), (1.5, 0), (2, 3)):
        with pytest.raises(InputError):
            llsm_time_subsample(data, factor, start=start)


def test_every_specimen_has_signal():
    for specimen in SPECIMENS:
        data = simulate_llsm(shape=(1, 8, 48, 48), specimen=specimen, seed=0)
        assert float(data.ground_truth.sum()) > 0.0, specimen
