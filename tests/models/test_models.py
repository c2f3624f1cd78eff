"""The model layer: one from_pretrained for every method, shipped names and folders alike, one pixel-size policy."""

import dataclasses
import shutil

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.models import RDLModel, SelfSupModel, SFSRMModel, from_pretrained, method_of, shipped_models
from microsr.models.checks import AcquisitionWarning, check_pixel_size
from microsr.models.shipped import _weights_root
from microsr.pipelines.rdl_sim import RDLSIM
from microsr.pipelines.selfsup import SelfSupDenoiser
from microsr.pipelines.sfsrm import SFSRM

SHIPPED = {"filaments-x4": (SFSRMModel, SFSRM), "tirf-sim-3x3": (RDLModel, RDLSIM),
           "llsm-vesicles-tis": (SelfSupModel, SelfSupDenoiser)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_name_and_a_copy_of_its_folder_load_the_same_model(name, tmp_path):
    model_class, facade = SHIPPED[name]
    folder = tmp_path / "copy"
    shutil.copytree(_weights_root() / name, folder)
    for source in (name, folder, str(folder)):
        assert type(from_pretrained(source, device="cpu")) is model_class
        loaded = facade.from_pretrained(source, device="cpu")
        assert isinstance(loaded, model_class) and loaded.device.type == "cpu"
    assert method_of(name) == method_of(folder) == {SFSRMModel: "sfsrm", RDLModel: "rdl",
                                                     SelfSupModel: "selfsup"}[model_class]


def test_every_shipped_model_is_listed_by_its_method():
    assert shipped_models("sfsrm") == ["filaments-x4"] and shipped_models("rdl") == ["tirf-sim-3x3"]
    assert shipped_models("selfsup") == ["llsm-vesicles-tis"] and len(shipped_models()) == 3


def test_something_that_is_no_model_is_refused_naming_the_shipped_ones(tmp_path):
    with pytest.raises(InputError, match="no model 'nope'.*filaments-x4.*llsm-vesicles-tis.*tirf-sim-3x3"):
        from_pretrained("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a microsr model"):
        from_pretrained(tmp_path / "empty")
    with pytest.raises(InputError, match="no model 'nope': .*shipped SFSRM model: filaments-x4"):
        SFSRM.from_pretrained("nope")


def test_one_pixel_size_policy_silent_within_10_percent_warns_to_20_refuses_beyond():
    check_pixel_size(109.0, 100.0)
    check_pixel_size(None, 100.0)
    with pytest.warns(AcquisitionWarning, match="115 nm pixels but the model was trained at 100 nm .15 % off"):
        check_pixel_size(115.0, 100.0)
    with pytest.raises(InputError, match="79 nm pixels .*21 % off, more than 20 %.*resample the input to 100 nm"):
        check_pixel_size(79.0, 100.0)


def test_every_method_applies_the_same_policy():
    sfsrm = SFSRM.from_pretrained("filaments-x4", device="cpu")
    rdl = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    frame = np.ones((32, 32), np.float32)
    raw = np.ones((9, 32, 32), np.float32)
    with pytest.warns(AcquisitionWarning):
        sfsrm.check_input(frame, 115.0)
    with pytest.warns(AcquisitionWarning):
        rdl.check_raw(raw, 62.6 * 1.15)
    with pytest.raises(InputError, match="more than 20 %"):
        sfsrm.check_input(frame, 125.0)
    with pytest.raises(InputError, match="more than 20 %"):
        rdl.check_raw(raw, 62.6 * 1.25)


def test_a_self_supervised_model_checks_a_stack_against_its_training_sampling():
    model = SelfSupModel.from_pretrained("llsm-vesicles-tis", device="cpu")
    model.check_sampling({"voxel_size_nm": [1000.0, 500.0, 500.0]})  # the shipped file states none: nothing to check
    model.voxel_size_nm = (200.0, 92.6, 92.6)
    model.check_sampling({"voxel_size_nm": [200.0, 92.6, 92.6]})
    model.check_sampling({})  # a stack that states nothing
    with pytest.raises(InputError, match="400 nm z-steps but the model was trained at 200 nm"):
        model.check_sampling({"voxel_size_nm": [400.0, 92.6, 92.6]})
    with pytest.raises(InputError, match="160 nm pixels but the model was trained at 92.6 nm"):
        model.check_sampling({"voxel_size_nm": [200.0, 160.0, 160.0]})


def test_the_names_of_microsr_0_1_still_load_and_say_what_they_are_now():
    with pytest.warns(DeprecationWarning, match="from_pretrained"):
        assert isinstance(RDLSIM.from_folder("tirf-sim-3x3", device="cpu"), RDLSIM)
    with pytest.warns(DeprecationWarning, match="from_pretrained"):
        assert isinstance(SelfSupDenoiser.from_file("llsm-vesicles-tis", device="cpu"), SelfSupDenoiser)

    otf = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu").otf
    with pytest.warns(DeprecationWarning, match="pass otf by keyword"):
        old_order = RDLSIM.from_pretrained("tirf-sim-3x3", otf, "cpu")
    assert old_order.otf is otf and old_order.device.type == "cpu"


def test_rdl_takes_other_optics_and_warns_when_they_are_not_what_it_learned():
    model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    trained = model.otf.cutoff_per_um
    model.use_optics(na=1.35, wavelength_nm=530.0)  # within 5 %: silent
    with pytest.warns(AcquisitionWarning, match="NA 1.49 differs from the 1.35 the model was trained for"):
        model.use_optics(na=1.49)
    assert model.otf.cutoff_per_um == pytest.approx(trained * 1.49 / 1.35, rel=1e-6)


def test_rdl_warns_when_the_acquisition_lies_outside_its_training_range():
    from microsr.optics import load_otf_mrc
    from microsr.sim.parameters import Orientation, SIMParameters

    model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    assert model.training_range["otfs"] == ["ideal"]  # a file of 0.1: the defaults it was trained with
    k = 0.92 * model.otf.cutoff_per_um
    inside = SIMParameters([Orientation(a, 1000 / k, (0.0, 2.1, 4.2), 0.8) for a in (0.1, 1.1, 2.1)])
    model.check_pattern(inside)  # silent
    with pytest.warns(AcquisitionWarning, match="modulations 0.30, 0.30, 0.30 lie outside the training range 0.8"):
        model.check_pattern(SIMParameters([dataclasses.replace(o, modulation=0.3) for o in inside.orientations]))
    measured = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu", otf=load_otf_mrc("TIRF488"))
    with pytest.warns(AcquisitionWarning, match="trained on the ideal OTF only and is given a measured one"):
        measured.check_pattern(SIMParameters([dataclasses.replace(o, spacing_nm=1000 / (0.95 * 5.58))
                                              for o in inside.orientations]))
