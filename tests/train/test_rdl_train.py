"""rDL training: configs checked up front, 2 iterations + resume for both networks, an exported model that loads."""

import math

import matplotlib.image
import pytest
import torch

from microsr.errors import InputError
from microsr.models.rdl import load_network
from microsr.train.rdl import load_rdl_config, train_rdl

TINY = """
task: {task}
model: {model}
data: {{patch_px: 32, field_px: 48, batch_size: 2, validation_pairs: 1, specimens: [filaments], photons: [20, 50]}}
iterations: {iterations}
output_dir: {output}
checkpoint_every: 1
validate_every: 2
"""
MODELS = {"sr": "{features: 4, groups: 1, blocks_per_group: 1, reduction: 2}",
          "denoise": "{features: 4, mpe_groups: 1, pfe_groups: 1, merged_groups: 1, blocks: 1, reduction: 2}",
          "care": "{features: 4, depth: 1}"}


def write(folder, task, iterations, name="config.yaml"):
    path = folder / name
    path.write_text(TINY.format(task=task, model=MODELS[task], iterations=iterations, output=folder / task))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("task,kind", [("sr", "sr"), ("denoise", "denoiser"), ("care", "care")])
def test_two_iterations_then_resume(tmp_path, task, kind):
    model_path = train_rdl(load_rdl_config(write(tmp_path, task, 2)), progress=False)
    network, info = load_network(model_path, kind)
    assert info["iterations"] == 2 and info["acquisition"]["phases"] == 3 and "val_psnr" in info["validation"]
    assert (tmp_path / task / "loss.png").exists()
    # The validation the model file reports is the one logged at iteration 2, a finite PSNR.
    logged = [row.split(",") for row in (tmp_path / task / "losses.csv").read_text().splitlines()[1:]]
    val_psnr = [float(value) for iteration, stage, _, term, value in logged
                if (iteration, stage, term) == ("2", "validation", "val_psnr")]
    assert val_psnr == [pytest.approx(info["validation"]["val_psnr"])] and math.isfinite(val_psnr[0])
    # The loss figure decodes to the size it is drawn at (11 × 4 in at 110 dpi, trimmed to its content).
    figure = matplotlib.image.imread(tmp_path / task / "loss.png")
    assert figure.shape[1] == pytest.approx(11 * 110, rel=0.1) and figure.shape[0] == pytest.approx(4 * 110, rel=0.1)
    assert figure[..., :3].std() > 0.05
    resumed = train_rdl(load_rdl_config(write(tmp_path, task, 3, "more.yaml")), progress=False)
    assert torch.load(resumed, weights_only=True)["iterations"] == 3


def test_bad_configs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: sr\nmodel: {featurs: 4}\niterations: 1\noutput_dir: x\n")
    with pytest.raises(InputError, match="model"):
        load_rdl_config(path)
    path.write_text("task: denoise\niterations: 1\noutput_dir: x\ndata: {patch_px: 64, field_px: 32}\n")
    with pytest.raises(InputError, match="field_px"):
        load_rdl_config(path)
    path.write_text("task: denoise\niterations: 1\noutput_dir: x\ndata: {sr_model: missing/model.pt}\n")
    with pytest.raises(InputError, match="train the SR network first"):
        load_rdl_config(path)


def test_a_run_can_start_from_the_shipped_weights_of_its_network(tmp_path):
    from microsr.models.rdl import NETWORK_FILES
    from microsr.models.shipped import model_folder
    from microsr.train.rdl import starting_weights

    shipped, info = load_network(model_folder("tirf-sim-3x3", "rdl") / NETWORK_FILES["denoiser"], "denoiser")
    model = "{" + ", ".join(f"{k}: {v}" for k, v in info["model"].items() if k != "phases") + "}"
    path = tmp_path / "finetune.yaml"
    path.write_text(TINY.format(task="denoise", model=model, iterations=1, output=tmp_path / "run")
                    + "init_from: tirf-sim-3x3\n")
    weights = starting_weights(load_rdl_config(path))
    assert all(torch.equal(weights[name], value) for name, value in shipped.state_dict().items())
    path.write_text(TINY.format(task="denoise", model=MODELS["denoise"], iterations=1, output=tmp_path / "run")
                    + "init_from: tirf-sim-3x3\n")
    with pytest.raises(InputError, match="another shape"):
        starting_weights(load_rdl_config(path))
