"""Model files: one format tag with a version for every method, saved atomically, read with weights_only=True."""

import pytest
import torch
from torch import nn

from microsr.errors import InputError
from microsr.models import serialize
from microsr.models.serialize import FORMAT_VERSIONS, format_tag, load_network, read_model_file, save_network


def _build(saved):
    return nn.Linear(saved["model"]["inputs"], 1)


def test_a_saved_network_loads_with_its_info_and_weights(tmp_path):
    torch.manual_seed(0)
    network = nn.Linear(3, 1)
    path = save_network(tmp_path / "model.pt", "sfsrm", network, model={"inputs": 3}, lr_pixel_nm=100.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # nothing left beside it
    loaded, info = load_network(path, "sfsrm", _build, missing_hint="train one")
    assert info == {"format": "microsr-sfsrm-1", "model": {"inputs": 3}, "lr_pixel_nm": 100.0}
    assert torch.equal(loaded.weight, network.weight) and not loaded.training


@pytest.mark.parametrize("method", sorted(FORMAT_VERSIONS))
def test_another_version_of_the_format_is_named_with_what_to_do(method, tmp_path, monkeypatch):
    path = save_network(tmp_path / "old.pt", method, nn.Linear(3, 1), model={"inputs": 3})
    monkeypatch.setitem(serialize.FORMAT_VERSIONS, method, FORMAT_VERSIONS[method] + 1)
    with pytest.raises(InputError, match=rf"format version 1 \(microsr-{method}-1\); this microsr reads version 2 "
                                         rf"\(microsr-{method}-2\): retrain"):
        read_model_file(path, method, missing_hint="")


def test_files_of_another_method_or_program_or_damaged_are_refused_in_one_line(tmp_path):
    other = save_network(tmp_path / "rdl.pt", "rdl", nn.Linear(3, 1), model={"inputs": 3})
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "another-program-3", "weights": torch.zeros(3)}, foreign)
    with pytest.raises(InputError, match="not a microsr SFSRM model .*'another-program-3'.*'microsr-sfsrm-1'.*train one"):
        read_model_file(foreign, "sfsrm", missing_hint="train one")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": format_tag("sfsrm"), "model": nn.Linear(3, 1)}, pickled)  # needs code to load
    with pytest.raises(InputError, match="corrupt or not a microsr SFSRM model"):
        read_model_file(pickled, "sfsrm", missing_hint="")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(other.read_bytes()[:100])
    with pytest.raises(InputError, match="UnpicklingError|corrupt"):
        read_model_file(truncated, "rdl", missing_hint="")
    with pytest.raises(InputError, match="does not exist: train one"):
        read_model_file(tmp_path / "absent.pt", "rdl", missing_hint="train one")


def test_weights_of_another_layout_are_refused(tmp_path):
    path = save_network(tmp_path / "model.pt", "selfsup", nn.Linear(3, 1), model={"inputs": 4})
    with pytest.raises(InputError, match="RuntimeError.*not a microsr self-supervised LLSM model"):
        load_network(path, "selfsup", _build, missing_hint="")


def test_a_model_of_another_method_is_named_with_the_command_that_takes_it(tmp_path):
    path = save_network(tmp_path / "sr.pt", "rdl", nn.Linear(3, 1), model={"inputs": 3})
    with pytest.raises(InputError, match=r"holds a model for rDL SIM, not for SFSRM: give it to 'microsr rdl predict', "
                                         r"or train one"):
        read_model_file(path, "sfsrm", missing_hint="train one")
