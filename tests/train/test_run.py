"""SFSRM training: configs checked up front, a 2-iteration run, a resume, an exported model."""

import textwrap

import pytest
import torch

from microsr.errors import InputError
from microsr.train.sfsrm import load_sfsrm_config as load_config
from microsr.train.sfsrm import train_sfsrm as train

TINY = """
network: {network}
model: {{features: 8, blocks: 1, growth: 4, scale: {scale}}}
data: {{lr_patch_px: 16, batch_size: 2, validation_pairs: 2}}
stages:
  - {{name: stage1, iterations: {first}, learning_rate: 3.0e-4, losses: {{msssim_l1: 1.0}}}}
  - {{name: stage2, iterations: {second}, learning_rate: 5.0e-5, losses: {losses}}}
output_dir: {output}
checkpoint_every: 1
validate_every: 2
"""


def write_config(folder, *, network="srn", scale=4, first=1, second=1, losses=None, name="config.yaml"):
    losses = losses or "{msssim_l1: 1.0, perceptual: 0.1, adversarial: 0.001, frequency: 0.01}"
    path = folder / name
    path.write_text(TINY.format(network=network, scale=scale, first=first, second=second, losses=losses,
                                output=folder / "run"))
    return path


@pytest.mark.slow
def test_two_iterations_then_resume(tmp_path):
    model_path = train(load_config(write_config(tmp_path)), progress=False)
    saved = torch.load(model_path, weights_only=True)
    assert saved["iterations"] == 2 and saved["network"] == "srn" and saved["model"]["scale"] == 4
    assert "val_ms_ssim" in saved["validation"]
    assert (tmp_path / "run" / "loss.png").exists() and (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    # The same run asked for two more iterations resumes from its checkpoint instead of starting over.
    resumed = train(load_config(write_config(tmp_path, second=3, name="more.yaml")), progress=False)
    assert torch.load(resumed, weights_only=True)["iterations"] == 4
    steps = [int(line.split(",")[0]) for line in (tmp_path / "run" / "losses.csv").read_text().splitlines()[1:]]
    assert sorted(set(steps)) == [1, 2, 3, 4]


@pytest.mark.slow
def test_denoiser_trains_at_scale_one(tmp_path):
    path = write_config(tmp_path, network="sen", scale=1, losses="{msssim_l1: 1.0, perceptual: 0.1}")
    saved = torch.load(train(load_config(path), progress=False), weights_only=True)
    assert saved["network"] == "sen" and saved["iterations"] == 2


def test_pre_upsampled_pairs_reach_ten_times_the_grid(tmp_path):
    from microsr.train.sfsrm_data import simulated_pair

    config = load_config(write_config(tmp_path)).data.model_copy(update={"pre_upsample": 2.5})
    image, target = simulated_pair(config, scale=4, network="srn", seed=3)
    assert image.shape == (40, 40) and target.shape == (160, 160)  # 16 px → 2.5× → ×4 = ×10


@pytest.mark.parametrize("text,match", [
    ("network: srn\nstages: []\noutput_dir: x\nmodel: {scale: 4}\nbogus: 1\n", "bogus"),
    (textwrap.dedent("""
        network: sen
        model: {scale: 4}
        stages: [{name: a, iterations: 1, learning_rate: 0.001, losses: {msssim_l1: 1}}]
        output_dir: x
        """), "scale must be 1"),
    (textwrap.dedent("""
        network: srn
        stages: [{name: a, iterations: 1, learning_rate: 0.001, losses: {l2: 1}}]
        output_dir: x
        """), "unknown loss"),
    ("network: [srn\n", "not valid YAML"),
    (textwrap.dedent("""
        network: srn
        data: {lr_patch_px: 17, pre_upsample: 2.5}
        stages: [{name: a, iterations: 1, learning_rate: 0.001, losses: {msssim_l1: 1}}]
        output_dir: x
        """), "whole number"),
])
def test_bad_configs_fail_before_any_work(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_config(path)


def test_missing_config(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
