"""SFSRM prediction: a model folder, tiled prediction on any size, stacks, and clear errors."""

import json

import numpy as np
import pytest
import torch
from helpers import assert_figure_panels, run_cli

from microsr.errors import InputError
from microsr.io import read_image, write_image
from microsr.metrics import normalize, relative_disagreement
from microsr.synthetic import training_pair
from microsr.models.sfsrm import build_generator, save_generator
from microsr.pipelines.sfsrm import SFSRM


def save_network(path, network, scale, seed):
    # Through the real export path, as `microsr sfsrm train` writes it.
    torch.manual_seed(seed)
    hyper = {"features": 8, "blocks": 1, "growth": 4, "scale": scale}
    save_generator(path, network, build_generator(network, hyper), hyper, lr_pixel_nm=100.0, fwhm_nm=200.0,
                   iterations=0, validation={})


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    save_network(folder / "sen.pt", "sen", 1, 0)
    save_network(folder / "srn.pt", "srn", 4, 1)
    return folder


def test_predict_gives_four_times_the_grid(model_folder):
    model = SFSRM.from_pretrained(model_folder, device="cpu")
    frame = np.random.default_rng(0).poisson(20, (40, 52)).astype(np.float32)
    result = model.predict(frame, pixel_size_nm=100)
    assert result.sr.shape == (160, 208) and result.pixel_size_nm == pytest.approx(25)
    assert np.all(np.isfinite(result.sr))


def test_tiles_do_not_change_the_result(model_folder):
    model = SFSRM.from_pretrained(model_folder, device="cpu")
    frame = np.random.default_rng(1).poisson(20, (150, 170)).astype(np.float32)
    whole = model.predict(frame, tile_px=512).sr
    receptive = model.srn.receptive_field_px
    tiled = model.predict(frame, tile_px=2 * receptive + 16, overlap_px=receptive).sr
    assert np.max(np.abs(whole - tiled)) <= 1e-3 * (whole.max() - whole.min())


def test_bad_inputs(model_folder, tmp_path):
    model = SFSRM.from_pretrained(model_folder, device="cpu")
    with pytest.raises(InputError, match="RGB"):
        model.predict(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(InputError, match="2-D frame"):
        model.predict(np.zeros((2, 32, 32, 2), np.float32))
    with pytest.raises(InputError, match="trained at 100 nm"):
        model.predict(np.ones((32, 32), np.float32), pixel_size_nm=65)
    nan = np.ones((32, 32), np.float32)
    nan[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.predict(nan)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "srn.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="corrupt"):
        SFSRM.from_pretrained(tmp_path / "corrupt")
    with pytest.raises(InputError, match="no model"):
        SFSRM.from_pretrained("no-such-model")


def test_cli_predicts_frames_and_movies(model_folder, tmp_path, capsys):
    movie = np.random.default_rng(2).poisson(20, (3, 32, 32)).astype(np.float32)
    write_image(tmp_path / "movie.tif", movie, pixel_size_nm=100, axes="TYX")
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "movie.tif", "-o", tmp_path / "sr.zarr",
                              "--model", model_folder, "--confidence", tmp_path / "agree.zarr"], capsys)
    assert code == 0, err
    sr = read_image(tmp_path / "sr.zarr")
    assert sr.array.shape == (3, 128, 128) and sr.pixel_size_nm == pytest.approx(25)
    assert read_image(tmp_path / "agree.zarr").array.shape == (3, 128, 128)
    # Each SR frame is the model's prediction of that frame; the temporal agreement of the first frame
    # (nothing before it to disagree with) is 1, and agreement lies in [0, 1].
    model = SFSRM.from_pretrained(model_folder, device="cpu")
    expected = model.predict(movie[2], pixel_size_nm=100).sr
    np.testing.assert_allclose(sr.array[2], expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    agreement = read_image(tmp_path / "agree.zarr").array
    assert np.all(agreement[0] == 1) and agreement.min() >= 0 and agreement.max() <= 1
    assert agreement[2].min() < 0.8  # independent noise in each frame: their SR images differ (min 0.53)
    write_image(tmp_path / "frame.tif", movie[0], pixel_size_nm=100)
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "frame.tif", "-o", tmp_path / "sr.tif",
                              "--model", model_folder, "--ensemble", str(model_folder),
                              "--confidence", tmp_path / "spread.tif"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "spread.tif").array.max() == pytest.approx(0, abs=1e-6)  # same model twice
    code, _, err = run_cli(["sfsrm", "predict", tmp_path / "frame.tif", "-o", tmp_path / "o.tif",
                            "--model", model_folder, "--pixel-size-nm", "160"], capsys)
    assert code == 2 and "trained at 100 nm" in err


def test_demo_figure_with_a_model_folder(model_folder, tmp_path):
    from microsr.pipelines.demo import run_sfsrm_demo

    lines = run_sfsrm_demo(tmp_path, model_name=str(model_folder), size_px=32)
    assert "MS-SSIM" in lines[0] and (tmp_path / "sfsrm.png").stat().st_size > 10_000
    sfsrm, bicubic, rsp = _demo_scores(lines[0])
    # Bicubic does not depend on the (untrained) model: on this held-out frame it keeps the coarse
    # structure of the truth (measured MS-SSIM 0.522, PSNR 15.95 dB).
    assert bicubic["MS-SSIM"] > 0.4 and bicubic["PSNR"] > 13.0
    assert all(np.isfinite(list(sfsrm.values()))) and -1 <= rsp <= 1
    # The SR image written is the model's prediction of the widefield frame written beside it.
    widefield = read_image(tmp_path / "sfsrm_widefield.tif")
    sr = read_image(tmp_path / "sfsrm.tif")
    assert widefield.pixel_size_nm == pytest.approx(100) and sr.pixel_size_nm == pytest.approx(25)
    expected = SFSRM.from_pretrained(model_folder, device="cpu").predict(widefield.array, pixel_size_nm=100).sr
    np.testing.assert_allclose(sr.array, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # Widefield, bicubic, SFSRM, truth, then the HAWKMAN and SQUIRREL maps: 6 panels, none blank.
    assert_figure_panels(tmp_path / "sfsrm.png", 1, 6)


def test_demo_with_the_shipped_model_beats_bicubic(tmp_path):
    from microsr.pipelines.demo import run_sfsrm_demo

    lines = run_sfsrm_demo(tmp_path, size_px=32)
    sfsrm, bicubic, rsp = _demo_scores(lines[0])
    # What the demo tells a user, checked (measured: MS-SSIM 0.802 vs 0.522, PSNR 19.65 vs 15.95 dB,
    # HAWKMAN 0.60 vs 0.25, SQUIRREL RSP 0.969: the SR image re-blurred explains the widefield frame).
    assert sfsrm["MS-SSIM"] > bicubic["MS-SSIM"] + 0.15
    assert sfsrm["PSNR"] > bicubic["PSNR"] + 2.0
    assert sfsrm["HAWKMAN"] > bicubic["HAWKMAN"] + 0.15
    assert rsp > 0.9
    assert_figure_panels(tmp_path / "sfsrm.png", 1, 6)


def _demo_scores(line):
    """({metric: SFSRM value}, {metric: bicubic value}, SQUIRREL RSP) parsed from the SFSRM demo's summary."""
    import re

    pairs = re.findall(r"(MS-SSIM|PSNR|HAWKMAN) (-?[\d.]+)(?: dB)? \(bicubic (-?[\d.]+)", line)
    assert [name for name, _, _ in pairs] == ["MS-SSIM", "PSNR", "HAWKMAN"], line
    rsp = float(re.search(r"SQUIRREL RSP (-?[\d.]+)", line).group(1))
    return {n: float(a) for n, a, _ in pairs}, {n: float(b) for n, _, b in pairs}, rsp


def test_shipped_model_beats_bicubic_and_richardson_lucy_on_held_out_filaments():
    from scipy import ndimage
    from skimage.restoration import richardson_lucy

    from microsr.metrics import ms_ssim, psnr
    from microsr.pipelines.sfsrm import shipped_models
    from microsr.resample import bicubic_upsample
    from microsr.synthetic import training_pair
    from microsr.models.sfsrm import normalize_input

    assert "filaments-x4" in shipped_models()
    model = SFSRM.from_pretrained("filaments-x4", device="cpu")
    assert model.scale == 4 and model.pixel_size_nm == 100.0
    # A seed the training streams never draw (they stay far below 10**9), at the paper's SNR ≈ 15.
    lr, truth = training_pair("filaments", scale=4, lr_patch_px=48, snr=15.0, seed=10**9 + 123)
    sr = model.predict(lr, pixel_size_nm=100.0).sr
    bicubic = bicubic_upsample(normalize_input(lr), 4)
    sigma = 2.0 / 2.3548  # the 200 nm FWHM PSF on 100 nm pixels
    psf = np.zeros((9, 9))
    psf[4, 4] = 1.0
    psf = ndimage.gaussian_filter(psf, sigma)
    deconvolved = bicubic_upsample(richardson_lucy(normalize_input(lr).clip(0, None), psf, num_iter=20), 4)
    assert sr.shape == truth.shape
    for baseline in (bicubic, deconvolved):
        assert ms_ssim(sr, truth) > ms_ssim(baseline, truth) + 0.05
        assert psnr(sr, truth) > psnr(baseline, truth) + 1.0


def test_a_model_with_ensemble_members_writes_its_disagreement_beside_the_output(model_folder, tmp_path, capsys):
    for member, seed in ((1, 11), (2, 12)):
        save_network(model_folder / f"srn_{member}.pt", "srn", 4, seed)
    model = SFSRM.from_pretrained(model_folder, device="cpu")
    assert len(model.members) == 2
    frame = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    result = model.predict(frame, pixel_size_nm=100.0, check_range=False)
    alone = model.predict(frame, pixel_size_nm=100.0, check_range=False, ensemble=False)
    assert result.disagreement.shape == result.sr.shape and result.disagreement.max() > 0
    assert alone.disagreement is None and not np.allclose(alone.sr, result.sr)
    # Members see the field turned by quarter turns and turn their outputs back: a non-square field too.
    wide = model.predict(np.random.default_rng(1).random((32, 48)), pixel_size_nm=100.0, check_range=False)
    assert wide.sr.shape == wide.disagreement.shape == (128, 192)
    write_image(tmp_path / "wf.tif", frame * 100, pixel_size_nm=100.0, axes="YX")
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "wf.tif", "-o", tmp_path / "sr.tif",
                              "--model", model_folder], capsys)
    assert code == 0 and (tmp_path / "sr_disagreement.tif").exists() and "disagreement of the ensemble" in err
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "wf.tif", "-o", tmp_path / "one.tif",
                              "--model", model_folder, "--no-disagreement"], capsys)
    assert code == 0 and not (tmp_path / "one_disagreement.tif").exists()
    np.testing.assert_allclose(read_image(tmp_path / "one.tif").array, alone.sr, atol=1e-5)
    save_network(model_folder / "srn_3.pt", "srn", 2, 13)  # a member of another scale is no member
    with pytest.raises(InputError, match="must differ only in their seed"):
        SFSRM.from_pretrained(model_folder, device="cpu")


def _held_out_prediction(model, kind, seed, snr=15.0):
    lr, truth = training_pair(kind, scale=4, lr_patch_px=48, snr=snr, fwhm_nm=250.0, seed=2 * 10**9 + seed)
    return model.predict(lr, pixel_size_nm=100.0, check_range=False), truth


def test_the_shipped_ensembles_disagreement_follows_its_error_and_is_higher_on_a_class_it_never_saw():
    model = SFSRM.from_pretrained("filaments-x4", device="cpu")
    # Pixel by pixel, where the members disagree the mean is wrong (issue 17 asks Pearson ≥ 0.3 on held-out
    # simulations; hazy dense ER networks reach only ~0.17, see the README).
    result, truth = _held_out_prediction(model, "filaments", 0, snr=10.0)
    error = np.abs(normalize(result.sr) - normalize(truth))
    assert np.corrcoef(result.disagreement.ravel(), error.ravel())[0, 1] > 0.3
    # Pairs of dots 20–50 nm apart, a class it never saw and cannot resolve: more spread per unit of signal.
    spread = {kind: np.mean([relative_disagreement(r.disagreement, r.sr)
                             for r, _ in (_held_out_prediction(model, kind, seed) for seed in range(3))])
              for kind in ("filaments", "dot-pairs")}
    assert spread["dot-pairs"] > 1.3 * spread["filaments"], spread


def test_a_frame_without_a_pixel_size_is_taken_at_the_models_and_said(tmp_path, capsys):
    np.save(tmp_path / "wf.npy", np.random.default_rng(2).random((32, 32)).astype(np.float32) * 100)
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "wf.npy", "-o", tmp_path / "sr.tif", "--no-disagreement"],
                             capsys)
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and "carries no pixel size: taken as the model's 100 nm" in err
    assert summary["pixel_size_assumed"] is True and read_image(tmp_path / "sr.tif").pixel_size_nm == pytest.approx(25.0)
