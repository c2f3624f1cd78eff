"""SFSRM's input check: an input outside what the model was trained on is named, with its value and the range."""

import warnings

import pytest

from microsr.errors import InputError
from microsr.metrics.image_stats import apparent_psf_fwhm_nm, image_statistics
from microsr.models.checks import AcquisitionWarning
from microsr.models.sfsrm import SFSRMModel
from microsr.synthetic import training_pair
from microsr.synthetic.widefield import CLASSES, widefield_pair


@pytest.fixture(scope="module")
def sparse_file(tmp_path_factory):
    """A model trained on SFSRM's sparse filaments (PSF 200 nm, SNR 3–20, no haze): its file records the
    range of those training inputs, as `microsr sfsrm train` exports it (the weights do not matter here)."""
    from microsr.models.sfsrm import build_generator, save_generator
    from microsr.train.sfsrm import training_range
    from microsr.train.sfsrm_config import DataConfig

    path = tmp_path_factory.mktemp("sparse") / "srn.pt"
    hyper = {"features": 8, "blocks": 1, "growth": 4, "scale": 4}
    save_generator(path, "srn", build_generator("srn", hyper), hyper, lr_pixel_nm=100.0, fwhm_nm=200.0,
                   training_range=training_range(DataConfig(kind="filaments", fwhm_nm=200.0, snr=(3.0, 20.0))))
    return path


@pytest.fixture(scope="module")
def sparse_model(sparse_file):
    return SFSRMModel.from_pretrained(sparse_file, device="cpu")


def test_the_shipped_model_records_its_training_range_and_takes_hazy_dense_images():
    model = SFSRMModel.from_pretrained("filaments-x4", device="cpu")
    assert set(model.training_range["classes"]) == set(CLASSES) and len(model.members) >= 2
    image = widefield_pair("er", lr_patch_px=128, fwhm_nm=260.0, snr=10.0, haze=1.0, seed=11).noisy
    assert _quiet(model, image) == []


def _quiet(model, image, pixel=100.0):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AcquisitionWarning)
        return model.check_range(image, pixel)


@pytest.mark.parametrize("seed,snr", [(5, 10.0), (6, 4.0), (7, 18.0)])
def test_inputs_like_the_training_data_pass_quietly(sparse_model, seed, snr):
    image, _ = training_pair("filaments", scale=1, lr_patch_px=128, snr=snr, seed=seed)
    assert _quiet(sparse_model, image) == []


def test_a_psf_one_and_a_half_times_wider_is_named_with_its_value_and_the_range(sparse_model):
    image, _ = training_pair("filaments", scale=1, lr_patch_px=128, snr=10.0, fwhm_nm=300.0, seed=7)
    with pytest.warns(AcquisitionWarning, match="apparent PSF width"):
        findings = sparse_model.check_range(image, 100.0)
    assert [f["quantity"] for f in findings] == ["psf_fwhm_nm"]
    low, high = findings[0]["range"]
    assert findings[0]["value"] == pytest.approx(300, rel=0.1) and high < 260


@pytest.mark.parametrize("kind", ["filaments", "er"])
def test_strong_haze_is_named_for_a_model_trained_without(sparse_model, kind):
    image = widefield_pair(kind, lr_patch_px=128, fwhm_nm=200.0, snr=10.0, haze=2.0, seed=8).noisy
    with pytest.warns(AcquisitionWarning, match="haze"):
        findings = sparse_model.check_range(image, 100.0)
    assert "haze" in [f["quantity"] for f in findings]


def test_a_pixel_size_one_and_a_half_times_off_is_refused(sparse_model):
    image, _ = training_pair("filaments", scale=1, lr_patch_px=64, snr=10.0, seed=1)
    with pytest.raises(InputError, match="150 nm pixels"):
        sparse_model.check_input(image, 150.0)


@pytest.mark.parametrize("fwhm", [200.0, 300.0, 400.0])
def test_the_apparent_psf_is_read_from_the_spectrum(fwhm):
    for kind in ("filaments", "er", "puncta"):
        image = widefield_pair(kind, lr_patch_px=128, fwhm_nm=fwhm, snr=20.0, seed=3).noisy
        assert apparent_psf_fwhm_nm(image, 100.0) == pytest.approx(fwhm, rel=0.2), kind  # 200 nm reads 5–18 % high


def test_the_statistics_do_not_depend_on_the_cameras_gain_and_offset():
    image = widefield_pair("mitochondria", lr_patch_px=96, haze=1.0, seed=2).noisy
    plain, scaled = image_statistics(image, 100.0), image_statistics(2.5 * image + 100.0, 100.0)
    for quantity in plain:
        assert scaled[quantity] == pytest.approx(plain[quantity], rel=1e-6, abs=1e-9), quantity
    assert set(CLASSES) == {"filaments", "er", "mitochondria", "puncta"}


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_the_input_check_is_kept_in_the_output_files_metadata(sparse_file, tmp_path, suffix):
    from microsr.io import image_notes, write_image
    from microsr.pipelines.sfsrm import SFSRM, predict_file

    hazy = widefield_pair("er", lr_patch_px=128, fwhm_nm=200.0, snr=10.0, haze=2.0, seed=8).noisy
    write_image(tmp_path / "wf.tif", hazy, pixel_size_nm=100.0, axes="YX")
    with pytest.warns(AcquisitionWarning):
        summary = predict_file([SFSRM.from_pretrained(sparse_file, device="cpu")], tmp_path / "wf.tif",
                               tmp_path / f"sr{suffix}", progress=False)
    stored = image_notes(tmp_path / f"sr{suffix}")["input_check"]
    assert stored == summary["input_check"] and "haze" in [finding["quantity"] for finding in stored]
