"""`microsr sfsrm finetune`: registered pairs teach a model a new specimen class; unregistered pairs are refused."""

import json

import numpy as np
import pytest
from helpers import run_cli

from microsr.io import write_image
from microsr.metrics import ms_ssim
from microsr.pipelines.sfsrm import SFSRM
from microsr.synthetic.widefield import widefield_pair


def _pairs(folder, seeds, sr_pixel_nm=25.0, transform=lambda sr: sr):
    for name in ("widefield", "sr"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        pair = widefield_pair("mitochondria", lr_patch_px=64, fwhm_nm=200.0, snr=20.0, seed=seed)
        write_image(folder / "widefield" / f"field{seed}.tif", pair.noisy, pixel_size_nm=100.0, axes="YX")
        sr = transform(pair.target)
        if sr_pixel_nm != 25.0:  # the same field on a finer grid, as another microscope would give it
            from scipy import ndimage
            sr = ndimage.zoom(sr, 25.0 / sr_pixel_nm, order=1, grid_mode=True, mode="nearest")
        write_image(folder / "sr" / f"field{seed}.tif", sr, pixel_size_nm=sr_pixel_nm, axes="YX")
    return folder


def _score(model, seeds):
    scores = []
    for seed in seeds:
        pair = widefield_pair("mitochondria", lr_patch_px=64, fwhm_nm=200.0, snr=20.0, seed=seed)
        scores.append(ms_ssim(model.predict(pair.noisy, pixel_size_nm=100.0, check_range=False).sr, pair.target))
    return float(np.mean(scores))


@pytest.mark.slow
def test_a_few_pairs_of_a_new_class_improve_the_model(tmp_path, capsys):
    pairs = _pairs(tmp_path / "pairs", seeds=range(4), sr_pixel_nm=12.5)
    code, out, err = run_cli(["sfsrm", "finetune", str(pairs), "--from", "filaments-x4", "-o", str(tmp_path / "mito"),
                              "--iterations", "60", "--members", "2"], capsys)
    assert code == 0, err
    assert "SR ×0.5 to the model's grid" in err  # the 12.5-nm SR images were resampled to 25 nm
    summary = json.loads(out.strip().splitlines()[-1])
    record = json.loads((tmp_path / "mito" / "finetune.json").read_text())
    assert summary["iterations"] == 60 and len(record["pairs"]) == 4
    # Each SRN fine-tuned from its own weights: the new model is still an ensemble with a disagreement map.
    assert summary["networks"] == ["srn.pt", "srn_1.pt"] and (tmp_path / "mito" / "sen.pt").is_file()
    assert all(p["correlation"] > 0.5 for p in record["pairs"])
    held_out = range(100, 103)
    before = _score(SFSRM.from_pretrained("filaments-x4", device="cpu"), held_out)
    tuned = SFSRM.from_pretrained(tmp_path / "mito", device="cpu")
    assert len(tuned.members) == 1 and tuned.training_range["source"] == "folder"
    after = _score(tuned, held_out)
    assert after > before + 0.02, (before, after)


@pytest.mark.parametrize("transform,says", [(lambda sr: np.roll(sr, 16, axis=1), "shifted by"),
                                            (lambda sr: sr[::-1], "flipped (up-down)"),
                                            (lambda sr: widefield_pair("mitochondria", lr_patch_px=64, seed=50).target,
                                             "does not show")])
def test_an_unregistered_pair_is_refused_before_training(tmp_path, capsys, transform, says):
    pairs = _pairs(tmp_path / "pairs", seeds=[0])
    _pairs(tmp_path / "pairs", seeds=[1], transform=transform)
    code, _, err = run_cli(["sfsrm", "finetune", str(pairs), "-o", str(tmp_path / "model"), "--iterations", "1"],
                           capsys)
    assert code == 2 and "field1.tif" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "model" / "srn.pt").exists()
