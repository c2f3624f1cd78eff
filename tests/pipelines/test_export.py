"""bioimage.io export: each shipped model that fits one tensor in → one out passes bioimageio.core's own test
and predicts what microsr predicts; rDL SIM is refused with the reason."""

import json
import zipfile

import numpy as np
import pytest
import torch
from helpers import run_cli

from microsr.models.shipped import model_folder

pytest.importorskip("bioimageio.core")

from bioimageio.core import load_model_description, predict  # noqa: E402
from bioimageio.core import test_model as run_bioimageio_checks  # noqa: E402 (not collected as a test)


def _prediction(package, array):
    sample = predict(model=load_model_description(package), inputs=array[None, None].astype(np.float32))
    return next(iter(sample.members.values())).data.values[0, 0]


@pytest.mark.slow
def test_the_shipped_sfsrm_exports_passes_bioimageio_and_predicts_as_microsr(tmp_path, capsys):
    from microsr.pipelines.sfsrm import SFSRM
    from microsr.synthetic.widefield import widefield_pair

    code, out, err = run_cli(["export", "bioimageio", "filaments-x4", "-o", tmp_path / "sfsrm.zip"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["weights"] == ["pytorch_state_dict", "torchscript"]
    assert run_bioimageio_checks(tmp_path / "sfsrm.zip").status == "passed"
    rdf = zipfile.ZipFile(tmp_path / "sfsrm.zip").read("rdf.yaml").decode()
    for expected in ("10.1038/s41467-023-38452-2", "nanometer", "scale: 100.0", "scale: 25.0", "MIT", "cover.png"):
        assert expected in rdf, expected
    # Another field, another (non-square) size than the test tensor: the package predicts what microsr predicts.
    field = widefield_pair("er", lr_patch_px=64, fwhm_nm=260.0, snr=12.0, haze=0.8, seed=21).noisy[:48]
    ours = SFSRM.from_pretrained("filaments-x4", device="cpu").predict(field, pixel_size_nm=100.0, check_range=False).sr
    np.testing.assert_allclose(_prediction(tmp_path / "sfsrm.zip", field), ours, atol=1e-4 * np.ptp(ours))


@pytest.mark.slow
def test_the_shipped_tis_denoiser_exports_and_predicts_as_microsr(tmp_path, capsys):
    from microsr.pipelines.selfsup import SelfSupDenoiser
    from microsr.synthetic.llsm import simulate_llsm

    code, out, err = run_cli(["export", "bioimageio", "llsm-vesicles-tis", "-o", tmp_path / "tis.zip"], capsys)
    assert code == 0, err
    assert run_bioimageio_checks(tmp_path / "tis.zip").status == "passed"
    volume = simulate_llsm(shape=(1, 8, 40, 56), specimen="mixed", photons=20, seed=9).noisy[0].astype(np.float32)
    saved = torch.load(model_folder("llsm-vesicles-tis", "selfsup") / "model.pt", weights_only=True)
    normalization = saved["normalization"]  # the package scales inputs as the training recording was scaled
    ours = SelfSupDenoiser.from_pretrained("llsm-vesicles-tis", device="cpu").denoise_volume(
        volume, background=normalization["background"], scale=normalization["scale"])
    np.testing.assert_allclose(_prediction(tmp_path / "tis.zip", volume), ours, atol=1e-4 * np.ptp(ours))


def test_rdl_sim_is_refused_with_the_reason_and_nothing_is_written(tmp_path, capsys):
    code, out, err = run_cli(["export", "bioimageio", "tirf-sim-3x3", "-o", tmp_path / "rdl.zip"], capsys)
    assert code == 2 and "pattern" in err and not (tmp_path / "rdl.zip").exists()
