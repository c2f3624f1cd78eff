"""rDL SIM prediction end to end on a small simulated set, with tiny untrained networks; and its errors."""

import warnings

import numpy as np
import torch
import pytest
from helpers import assert_figure_panels

from microsr.errors import InputError
from microsr.io import read_image
from microsr.models.rdl import save_network
from microsr.nets import DFCAN, RDLDenoiser
from microsr.pipelines.rdl_sim import PATTERN_MARGIN, RDLSIM, PatternWarning
from microsr.pipelines.sim import SIMReconstructor, open_raw, resolve_background
from microsr.sim.reconstruct import ReconstructionSettings
from microsr.synthetic.sim_raw import simulate_sim

SR_HYPER = {"in_channels": 9, "features": 8, "groups": 1, "blocks_per_group": 1, "reduction": 4}
DENOISER_HYPER = {"phases": 3, "features": 8, "mpe_groups": 1, "pfe_groups": 1, "merged_groups": 1, "blocks": 1,
                  "reduction": 4}
ACQUISITION = {"angles": 3, "phases": 3, "pixel_size_nm": 62.6, "na": 1.35, "wavelength_nm": 525.0}


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "rdl_model"
    folder.mkdir()
    save_network(folder / "sr.pt", "sr", DFCAN(**SR_HYPER), SR_HYPER, ACQUISITION)
    save_network(folder / "denoiser.pt", "denoiser", RDLDenoiser(**DENOISER_HYPER), DENOISER_HYPER, ACQUISITION)
    return folder


def test_end_to_end_on_a_small_set(model_folder):
    data = simulate_sim(shape=(64, 64), photons=30, seed=2)
    model = RDLSIM.from_pretrained(model_folder, device="cpu")
    background = data.camera.offset_adu + data.camera.background_photons
    result = model.predict(data.raw[0], background=background, params=data.params)
    assert result.sim.shape == (128, 128) and result.sr_estimate.shape == (128, 128)
    assert result.denoised.shape == (3, 3, 64, 64)
    assert np.isfinite(result.sim).all() and np.isfinite(result.denoised).all()
    # Resolution comes from the physics, not the networks: the rDL SIM image is the Wiener
    # reconstruction (weight 0.05, no background) of its own denoised frames, with the given pattern.
    wiener = SIMReconstructor(model.otf, 62.6, ReconstructionSettings(wiener_weight=0.05), device="cpu")
    expected = wiener.reconstruct(result.denoised, data.params)
    np.testing.assert_allclose(result.sim, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    assert result.params is data.params
    # Flat (A·P, Y, X) input is the same set.
    flat = model.predict(data.raw[0].reshape(9, 64, 64), background=background, params=data.params)
    np.testing.assert_allclose(flat.sim, result.sim, rtol=1e-4, atol=1e-4)


def test_bad_inputs(model_folder, tmp_path):
    model = RDLSIM.from_pretrained(model_folder, device="cpu")
    with pytest.raises(InputError, match="3 orientations × 3 phases"):
        model.check_raw(np.zeros((15, 32, 32)), None)
    nan = np.ones((9, 32, 32))
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.check_raw(nan, None)
    with pytest.warns(UserWarning, match="trained at 62.6 nm"):  # one policy for every method (models.checks)
        model.check_raw(np.ones((9, 32, 32)), 70.0)
    with pytest.raises(InputError, match="trained at 62.6 nm"):
        model.check_raw(np.ones((9, 32, 32)), 100.0)
    (model_folder / "denoiser.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="corrupt"):
        RDLSIM.from_pretrained(model_folder)
    with pytest.raises(InputError, match="no model .*absent.* shipped rDL SIM model: tirf-sim-3x3"):
        RDLSIM.from_pretrained(tmp_path / "absent")


def test_cli_streams_a_time_series(model_folder, tmp_path, capsys):
    import json

    from helpers import run_cli

    from microsr.io import read_image
    from microsr.pipelines.simulate import write_simulation

    data = simulate_sim(shape=(64, 64), photons=30, time_points=2, seed=3)
    write_simulation(data, tmp_path / "sim")
    data.params.save(tmp_path / "params.json")
    code, out, _ = run_cli(["rdl", "predict", str(tmp_path / "sim" / "raw.tif"), "-o", str(tmp_path / "rdl.tif"),
                            "--model", str(model_folder), "--denoised-out", str(tmp_path / "dn.tif"),
                            "--params", str(tmp_path / "params.json"), "--device", "cpu"], capsys)
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["time_points"] == 2
    sim = read_image(tmp_path / "rdl.tif")
    assert sim.array.shape == (2, 128, 128) and abs(sim.pixel_size_nm - 31.3) < 0.01
    assert read_image(tmp_path / "dn.tif").array.shape == (18, 64, 64)
    # The given parameters are used as they are, and each time point's SIM image is the Wiener
    # reconstruction of the denoised frames written beside it (with the background added back).
    assert summary["sim_pixel_size_nm"] == pytest.approx(31.3)
    assert summary["params"]["orientations"] == data.params.to_dict()["orientations"]
    stack, _ = open_raw(tmp_path / "sim" / "raw.tif", 3, 3, None)
    wiener = SIMReconstructor(RDLSIM.from_pretrained(model_folder, device="cpu").otf, 62.6,
                              ReconstructionSettings(wiener_weight=0.05, background=resolve_background(stack, "auto")),
                              device="cpu")
    expected = wiener.reconstruct(read_image(tmp_path / "dn.tif").array.reshape(2, 3, 3, 64, 64), data.params)
    np.testing.assert_allclose(sim.array, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    # The output exists now: a second run without --overwrite refuses, with one line.
    code, _, err = run_cli(["rdl", "predict", str(tmp_path / "sim" / "raw.tif"), "-o", str(tmp_path / "rdl.tif"),
                            "--model", str(model_folder)], capsys)
    assert code == 2 and "exists" in err and "Traceback" not in err


def test_care_baseline_reconstructs():
    import torch

    from microsr.models.rdl import normalize_raw
    from microsr.nets import UNet
    from microsr.optics import ideal_otf
    from microsr.pipelines.rdl_sim import care_sim
    from microsr.pipelines.sim import SIMReconstructor
    from microsr.sim.reconstruct import ReconstructionSettings

    data = simulate_sim(shape=(64, 64), photons=30, seed=5)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=data.pixel_size_nm)
    background = data.camera.offset_adu + data.camera.background_photons
    care = UNet(3, 3, features=4, depth=1).eval()
    sim = care_sim(care, data.raw[0], data.params, data.pixel_size_nm, otf, background=background)
    assert sim.shape == (128, 128) and np.isfinite(sim).all()
    # What the baseline is: the U-Net applied to each orientation's normalized frames, put back into
    # photons with the set's one scale, then the Wiener reconstruction of those frames.
    normalized, scale = normalize_raw(data.raw[0].astype(np.float32), background)
    with torch.no_grad():
        denoised = care(torch.from_numpy(normalized)).numpy()  # the 3 orientations as a batch of 3
    expected = SIMReconstructor(otf, data.pixel_size_nm, ReconstructionSettings(wiener_weight=0.05),
                                device="cpu").reconstruct(denoised * scale, data.params)
    np.testing.assert_allclose(sim, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_care_baseline_with_an_identity_network_is_conventional_sim():
    import torch

    from microsr.optics import ideal_otf
    from microsr.pipelines.rdl_sim import care_sim
    from microsr.sim.reconstruct import ReconstructionSettings, reconstruct

    data = simulate_sim(shape=(64, 64), photons=30, seed=5)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=data.pixel_size_nm)
    background = data.camera.offset_adu + data.camera.background_photons
    # A denoiser that changes nothing: the baseline must give back the conventional Wiener SIM image of
    # the noisy frames, so background, scale and orientation order all survive the round trip.
    sim = care_sim(torch.nn.Identity(), data.raw[0], data.params, data.pixel_size_nm, otf, background=background)
    conventional = reconstruct(data.raw[0], data.params, data.pixel_size_nm, otf,
                               ReconstructionSettings(background=background, wiener_weight=0.05), device="cpu")[0]
    np.testing.assert_allclose(sim, conventional, rtol=0, atol=1e-4 * np.abs(conventional).max())  # 1e-7 measured


def _held_out_set(photons: float, seed: int):
    data = simulate_sim(shape=(96, 96), photons=photons, specimen="network", seed=seed)
    return data, data.camera.offset_adu + data.camera.background_photons


@pytest.mark.slow
def test_shipped_denoiser_keeps_the_phase_relationship():
    """Denoised frames of a clean input keep each frame's phase and reconstruct to the clean reconstruction."""
    from microsr.sim.estimate import estimate_parameters
    from microsr.sim.reconstruct import ReconstructionSettings, reconstruct

    model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    data, _ = _held_out_set(200.0, 10**9 + 3)
    clean = data.raw_clean  # noise-free frames, no background: photons
    result = model.predict(clean, background=0.0, params=data.params)
    reference = reconstruct(clean, data.params, data.pixel_size_nm, model.otf, ReconstructionSettings(), device="cpu")[0]
    inner = (slice(16, -16), slice(16, -16))
    # Measured with the shipped model: 0.969. The denoiser lowers the pattern contrast (modulation
    # 0.78 → 0.3–0.5, see the model card), which the Wiener filter reads as weaker side bands.
    assert np.corrcoef(result.sim[inner].ravel(), reference[inner].ravel())[0, 1] > 0.95
    # The phase of every frame, measured on the denoised frames, is the clean frames' (0.04–0.08 rad
    # measured); a swapped or shifted phase step would be off by 2π/3.
    found = estimate_parameters(result.denoised, data.pixel_size_nm, model.otf, background=0.0)
    truth = estimate_parameters(clean, data.pixel_size_nm, model.otf, background=0.0)
    for denoised, original in zip(found.orientations, truth.orientations):
        error = np.angle(np.exp(1j * (np.array(denoised.phases_rad) - np.array(original.phases_rad))))
        assert np.abs(error).max() < 0.2
    for a in range(3):
        for p in range(3):
            r = np.corrcoef(result.denoised[a, p][8:-8, 8:-8].ravel(), clean[a, p][8:-8, 8:-8].ravel())[0, 1]
            assert r > 0.97, (a, p, r)


@pytest.mark.slow
def test_shipped_model_beats_conventional_sim_at_low_light():
    from microsr.metrics import psnr
    from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
    from microsr.train.rdl_data import sim_resolution_fwhm_nm, sim_target

    model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    data, background = _held_out_set(5.0, 10**9 + 5)
    truth = sim_target(data.ground_truth, data.pixel_size_nm / 2, sim_resolution_fwhm_nm(1.35, 525.0, 0.92))
    result = model.predict(data.raw[0], background=background, params=data.params)
    conventional = reconstruct(data.raw[0], data.params, data.pixel_size_nm, model.otf,
                               ReconstructionSettings(background=background), device="cpu")[0]
    gain = psnr(result.sim, truth, normalization="linear_fit") - psnr(conventional, truth, normalization="linear_fit")
    assert gain > 2.0  # 2.8 dB on this field; bench/rdl_compare.py: +5 dB over 3 fields


def test_demo_panel_with_a_model_folder(model_folder, tmp_path):
    from microsr.pipelines.demo import run_rdl_demo

    lines = run_rdl_demo(tmp_path, model_name=str(model_folder), size_px=64, photons=50)
    assert (tmp_path / "rdl.png").stat().st_size > 10_000
    assert (tmp_path / "rdl_sim.tif").exists() and "conventional SIM PSNR" in lines[0]
    scores = _demo_scores(lines[0])
    # Conventional SIM does not depend on the (untrained) networks: at 50 photons it finds the truth
    # (measured 23.95 dB / SSIM 0.834); the untrained rDL SIM numbers are only numbers.
    assert scores["conventional SIM"][0] > 21.0 and scores["conventional SIM"][1] > 0.7
    assert np.isfinite(scores["rDL SIM"]).all() and -1 <= scores["rsp"] <= 1
    sim = read_image(tmp_path / "rdl_sim.tif")
    assert sim.array.shape == (128, 128) and sim.pixel_size_nm == pytest.approx(31.3)
    assert read_image(tmp_path / "rdl_denoised.tif").array.shape == (9, 64, 64)
    # Noisy raw, conventional SIM, denoised raw, rDL SIM, truth, then the two maps: 7 panels, none blank.
    assert_figure_panels(tmp_path / "rdl.png", 1, 7)


def test_demo_with_the_shipped_model_beats_conventional_sim(tmp_path):
    from microsr.pipelines.demo import run_rdl_demo

    lines = run_rdl_demo(tmp_path, size_px=64, photons=8)
    scores = _demo_scores(lines[0])
    conventional, rdl = scores["conventional SIM"], scores["rDL SIM"]
    # What the demo tells a user, checked: at 8 photons the shipped model beats conventional SIM against
    # the truth at SIM resolution (measured PSNR 21.36 vs 19.10 dB, SSIM 0.683 vs 0.464), and its
    # image re-blurred still explains the widefield image (SQUIRREL RSP 0.824).
    assert rdl[0] > conventional[0] + 1.0
    assert rdl[1] > conventional[1] + 0.1
    assert scores["rsp"] > 0.7
    assert_figure_panels(tmp_path / "rdl.png", 1, 7)


def _demo_scores(line):
    """{method: (PSNR dB, SSIM)} and the SQUIRREL RSP parsed from the rDL demo's summary line."""
    import re

    scores = {name: (float(p), float(q))
              for name, p, q in re.findall(r"(conventional SIM|rDL SIM) PSNR (-?[\d.]+) dB / SSIM (-?[\d.]+)", line)}
    assert set(scores) == {"conventional SIM", "rDL SIM"}, line
    scores["rsp"] = float(re.search(r"SQUIRREL RSP (-?[\d.]+)", line).group(1))
    return scores


class _ChannelBiasedDenoiser(torch.nn.Module):
    """Returns the noisy frames plus a brightness tied to each output channel: what a small denoiser can learn."""

    def forward(self, modulated, noisy):
        return noisy + torch.tensor([-0.1, 0.0, 0.1]).reshape(1, 3, 1, 1)


def test_every_phase_order_is_averaged_so_a_channel_bias_cannot_reach_the_wiener_step(model_folder):
    data = simulate_sim(shape=(64, 64), photons=30, seed=2)
    model = RDLSIM.from_pretrained(model_folder, device="cpu")
    model.denoiser = _ChannelBiasedDenoiser()
    background = data.camera.offset_adu + data.camera.background_photons
    with pytest.warns(PatternWarning, match="keeps more of the illumination pattern"):
        one = model.predict(data.raw[0], background=background, params=data.params, phase_orders="one")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PatternWarning)
        every = model.predict(data.raw[0], background=background, params=data.params, phase_orders="all")
    # Every prediction is checked against conventional SIM of the same frames, without a reference
    assert one.artifact_index["rdl_sim"] > one.artifact_index["conventional_sim"] + PATTERN_MARGIN
    assert every.artifact_index["rdl_sim"] == pytest.approx(every.artifact_index["conventional_sim"], abs=0.05)
    noisy = data.raw[0] - background
    # One order: each phase carries its channel's brightness; every order: the frames themselves come back
    assert np.ptp(one.denoised.mean(axis=(2, 3)) - noisy.mean(axis=(2, 3)), axis=1).min() > 0.1 * one.denoised.mean()
    np.testing.assert_allclose(every.denoised, noisy, atol=1e-3 * noisy.max())
    with pytest.raises(InputError, match="phase_orders"):
        model.predict(data.raw[0], background=background, params=data.params, phase_orders="some")
