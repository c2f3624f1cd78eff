"""Self-supervised LLSM training: 2 iterations + resume in both modes, from a Zarr stack, through the CLI."""

import pytest
import torch

from microsr.synthetic.llsm import simulate_llsm
from microsr.train.selfsup import load_selfsup_config, train_selfsup

TINY = {"model": {"features": 4, "groups": 1, "blocks": 1, "reduction": 2}, "patch_size": (4, 16, 16),
        "batch_size": 1, "validation_patches": 1, "checkpoint_every": 1, "validate_every": 2}


@pytest.fixture(scope="module")
def zarr_stack(tmp_path_factory):
    import zarr

    path = tmp_path_factory.mktemp("llsm") / "noisy.zarr"
    data = simulate_llsm(shape=(4, 8, 32, 32), specimen="mixed", photons=30, seed=3)
    array = zarr.open_array(str(path), mode="w", shape=data.noisy.shape, chunks=(1, 8, 32, 32), dtype="float32")
    array[:] = data.noisy
    array.attrs["voxel_size_nm"] = list(data.voxel_size_nm)
    return path


@pytest.mark.parametrize("mode", ["tis", "sis"])
def test_two_iterations_then_resume(zarr_stack, tmp_path, mode):
    config = load_selfsup_config(None, stack=zarr_stack, mode=mode, iterations=2, output_dir=tmp_path / mode, **TINY)
    first = torch.load(train_selfsup(config, progress=False), weights_only=True)
    assert first["iterations"] == 2 and first["mode"] == mode and "val_loss" in first["validation"]
    assert first["normalization"]["scale"] > 0  # kept for reference beside the weights
    assert first["voxel_size_nm"] == pytest.approx([200.0, 92.6, 92.6])  # the training stack's, for the check
    more = config.model_copy(update={"iterations": 3})
    assert torch.load(train_selfsup(more, progress=False), weights_only=True)["iterations"] == 3
    assert (tmp_path / mode / "loss.png").exists()
    rows = (tmp_path / mode / "losses.csv").read_text().splitlines()
    assert any(row.startswith("1,train,") and f",{mode}," in row for row in rows)  # the training loss is kept


def test_cli_trains_and_refuses_bad_input(zarr_stack, tmp_path, capsys):
    import yaml
    from helpers import run_cli

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "patch_size": list(TINY["patch_size"])}))
    code, out, err = run_cli(["selfsup", "train", str(zarr_stack), "--mode", "sis", "--config", str(config),
                              "--iterations", "1", "-o", str(tmp_path / "run"), "--gar-weight", "0.5",
                              "--lr-schedule", "cosine"], capsys)
    assert code == 0, err
    assert (tmp_path / "run" / "model.pt").exists()
    code, _, err = run_cli(["selfsup", "train", str(zarr_stack), "--mode", "tis", "--lr-schedule", "linear",
                            "-o", str(tmp_path / "bad_schedule")], capsys)
    # A choice of the command line now: the parser names the flag and its choices, as for any bad option.
    assert code == 2 and "Traceback" not in err and "--lr-schedule" in err and "'constant', 'cosine'" in err
    assert not (tmp_path / "bad_schedule").exists()
    code, _, err = run_cli(["selfsup", "train", str(tmp_path / "absent.zarr"), "--mode", "tis",
                            "-o", str(tmp_path / "bad")], capsys)
    assert code == 2 and "Traceback" not in err and "absent.zarr" in err


def _at_iterations(module, method: str, iterations) -> list[float]:
    """``module.method()`` with the module's iteration count set to each of ``iterations``."""
    values = []
    for iteration in iterations:
        module.iteration.fill_(iteration)
        values.append(getattr(module, method)())
    return values


def test_gar_is_ramped_in_over_the_first_half_of_training(zarr_stack, tmp_path):
    from microsr.train.selfsup import SelfSupTraining

    config = load_selfsup_config(None, stack=zarr_stack, mode="sis", iterations=100, gar_weight=0.6,
                                 output_dir=tmp_path / "run")
    weights = _at_iterations(SelfSupTraining(config), "gar_weight", (0, 25, 50, 100))
    assert weights == pytest.approx([0.0, 0.3, 0.6, 0.6])
    with pytest.raises(Exception, match="gar_weight"):
        load_selfsup_config(None, stack=zarr_stack, mode="sis", gar_weight=1.0, output_dir=tmp_path / "r")


def test_cosine_schedule_falls_from_the_learning_rate_to_one_percent_and_survives_resume(zarr_stack, tmp_path):
    from microsr.train.selfsup import FINAL_LR_FRACTION, SelfSupTraining

    config = load_selfsup_config(None, stack=zarr_stack, mode="tis", iterations=100, lr_schedule="cosine",
                                 output_dir=tmp_path / "run")
    factors = _at_iterations(SelfSupTraining(config), "learning_rate_factor", (0, 50, 100, 150))
    assert factors == pytest.approx([1.0, 0.5 + FINAL_LR_FRACTION / 2, FINAL_LR_FRACTION, FINAL_LR_FRACTION])
    assert SelfSupTraining(config.model_copy(update={"lr_schedule": "constant"})).learning_rate_factor() == 1.0
    # Through a real run: 2 iterations, then resumed to 4; the optimizer's rate follows the module's count.
    short = load_selfsup_config(None, stack=zarr_stack, mode="tis", iterations=4, lr_schedule="cosine",
                                learning_rate=1e-3, output_dir=tmp_path / "short", **TINY)
    train_selfsup(short.model_copy(update={"iterations": 2}), progress=False)
    train_selfsup(short, progress=False)
    saved = torch.load(tmp_path / "short" / "checkpoints" / "last.ckpt", weights_only=False)
    assert int(saved["state_dict"]["iteration"]) == 4
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-3 * FINAL_LR_FRACTION)
