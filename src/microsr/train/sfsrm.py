"""SFSRM training: the Lightning module that trains one network (SEN or SRN) through the paper's loss stages, and the run."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from microsr.losses import (FrequencyLoss, MSSSIML1Loss, PerceptualLoss, discriminator_loss,
                            generator_adversarial_loss, ms_ssim_torch)
from microsr.errors import InputError
from microsr.models.sfsrm import (NETWORK_FILES, build_generator, load_generator, measured_range, network_inputs,
                                   save_generator)
from microsr.models.shipped import network_file
from microsr.nets import UNetDiscriminator
from microsr.train.config import load_config
from microsr.train.fit import NetworkTraining, finish_step, last_validation, log, run_training
from microsr.train.sfsrm_config import TrainConfig
from microsr.train.sfsrm_data import FolderPatches, SimulatorPatches, training_inputs, validation_pairs


class SFSRMTraining(NetworkTraining):
    """Generator (+ discriminator when a stage asks for the adversarial loss), trained stage by stage.

    Optimization is manual: a GAN step updates two networks, and the learning rate and loss
    weights change at stage boundaries counted in generator iterations (kept in ``iteration``,
    which is saved with every checkpoint so that a killed run resumes where it stopped).
    """

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.automatic_optimization = False
        model = config.model
        self.generator = build_generator(config.network, model.model_dump())
        weights = {name for stage in config.stages for name, w in stage.losses.items() if w > 0}
        self.discriminator = UNetDiscriminator(1, max(16, model.features)) if "adversarial" in weights else None
        self.content_loss = MSSSIML1Loss(alpha=0.84)
        # Kept out of the module's registry: its 20 M fixed VGG weights would add ~80 MB to every checkpoint.
        self._frozen = [PerceptualLoss(config.perceptual_weights)] if "perceptual" in weights else []
        self.frequency_loss = FrequencyLoss("full") if "frequency" in weights else None

    @property
    def perceptual_loss(self):
        return self._frozen[0] if self._frozen else None

    def on_fit_start(self) -> None:
        for loss in self._frozen:
            loss.to(self.device)

    def configure_optimizers(self):
        first = self.config.stages[0].learning_rate
        generator = torch.optim.Adam(self.generator.parameters(), lr=first, betas=(0.9, 0.99))
        if self.discriminator is None:
            return generator
        return generator, torch.optim.Adam(self.discriminator.parameters(), lr=first, betas=(0.9, 0.99))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(network_inputs(images, self.config.network))

    def training_step(self, batch, batch_index):
        step = int(self.iteration)
        stage = self.config.stage_at(step)
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = stage.learning_rate
        images, targets = batch
        output = self(images)
        weights = stage.losses
        # No clamp here: a clamped output has no gradient where it is out of range, and a generator
        # whose output once dips below 0 everywhere (easy on sparse targets) would never recover.
        terms = {"msssim_l1": self.content_loss(output, targets)}
        if weights.get("perceptual", 0) > 0:
            terms["perceptual"] = self.perceptual_loss(output, targets)
        if weights.get("frequency", 0) > 0:
            terms["frequency"] = self.frequency_loss(output, targets)
        adversarial = weights.get("adversarial", 0) > 0 and self.discriminator is not None
        if adversarial:
            fake_global, fake_pixel = self.discriminator(output)
            terms["adversarial"] = generator_adversarial_loss(fake_global, fake_pixel)
        loss = sum(weights.get(name, 0.0) * value for name, value in terms.items())
        optimizers[0].zero_grad()
        self.manual_backward(loss)
        optimizers[0].step()
        if adversarial:
            real_global, real_pixel = self.discriminator(targets)
            fake_global, fake_pixel = self.discriminator(output.detach())
            d_loss = discriminator_loss(real_global, real_pixel, fake_global, fake_pixel)
            optimizers[1].zero_grad()
            self.manual_backward(d_loss)
            optimizers[1].step()
            terms["discriminator"] = d_loss
        self.iteration += 1
        finish_step(self, step + 1, stage.name, loss, terms)
        return loss

    def trained_network(self) -> torch.nn.Module:
        return self.generator

    def validation_metrics(self, batch) -> dict[str, float]:
        images, targets = batch
        output = self(images).clamp(0, 1)
        ms_ssim = float(ms_ssim_torch(output, targets.clamp(0, 1)))
        mse = float(torch.mean((output - targets.clamp(0, 1)) ** 2))
        return {"val_ms_ssim": ms_ssim, "val_psnr": 10 * math.log10(1.0 / max(mse, 1e-12))}


def load_sfsrm_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML SFSRM training configuration; any problem is one clear InputError."""
    return load_config(path, TrainConfig)


def _loader(config: TrainConfig, seed_offset: int) -> DataLoader:
    scale = config.model.scale
    dataset = (FolderPatches(config.data, scale, seed_offset) if config.data.source == "folder"
               else SimulatorPatches(config.data, scale, config.network, seed_offset))
    return DataLoader(dataset, batch_size=config.data.batch_size, num_workers=0)


def starting_weights(config: TrainConfig) -> dict | None:
    """The state dict ``config.init_from`` names (None without one), checked to fit the generator to train."""
    if config.init_from is None:
        return None
    path = network_file(config.init_from, "sfsrm", NETWORK_FILES[config.network])
    generator, info = load_generator(path, config.network)
    if info["model"] != config.model.model_dump():
        raise InputError(f"init_from {path} is an {config.network.upper()} of another size ({info['model']}) than "
                         f"this run's ({config.model.model_dump()}): give the same model settings")
    return generator.state_dict()


def _build(config: TrainConfig) -> SFSRMTraining:
    module = SFSRMTraining(config)
    weights = starting_weights(config)
    if weights is not None:  # a resumed run's checkpoint replaces these, as it should
        module.generator.load_state_dict(weights)
    if module.perceptual_loss is not None:
        log.warning("perceptual loss features: %s", module.perceptual_loss.source)
        (Path(config.output_dir) / "perceptual_features.txt").write_text(module.perceptual_loss.source + "\n")
    module.validation = validation_pairs(config.data, config.model.scale, config.network)
    return module


def training_range(data) -> dict:
    """What a model saw in training, saved in its file and checked against every input
    (:meth:`microsr.models.sfsrm.SFSRMModel.check_range`): pixel size, PSF FWHM, SNR, haze, specimen classes."""
    measured = measured_range(training_inputs(data), data.lr_pixel_nm)
    if data.source == "folder":
        return {"source": "folder", "pixel_size_nm": [data.lr_pixel_nm, data.lr_pixel_nm], "measured": measured}
    realistic = data.realistic
    return {"source": "simulator", "pixel_size_nm": [data.lr_pixel_nm, data.lr_pixel_nm],
            "fwhm_nm": list(realistic.fwhm_nm) if realistic else [data.fwhm_nm, data.fwhm_nm],
            "snr": list(data.snr), "haze": list(realistic.haze) if realistic else [0.0, 0.0],
            "classes": list(realistic.classes) if realistic else [data.kind], "measured": measured}


def _export(module: SFSRMTraining, output: Path) -> Path:
    """The generator and what a user needs to apply it correctly (small: no optimizer state)."""
    config = module.config
    return save_generator(output / "model.pt", config.network, module.generator, config.model.model_dump(),
                          lr_pixel_nm=config.data.lr_pixel_nm, fwhm_nm=config.data.fwhm_nm,
                          pre_upsample=config.data.pre_upsample, iterations=int(module.iteration),
                          training_range=training_range(config.data),
                          validation=last_validation(output / "losses.csv"))


def train_sfsrm(config: TrainConfig, *, progress: bool = True) -> Path:
    """Train (or resume) the run in ``config.output_dir``; returns the exported ``model.pt``.

    A run killed at any point resumes from ``checkpoints/last.ckpt`` when started again with the
    same configuration. ``devices``/``accelerator``/``strategy`` go to Lightning unchanged, so
    ``strategy: ddp`` with several devices scales across GPUs.
    """
    return run_training(config, lambda: _build(config), lambda resumes: _loader(config, seed_offset=resumes),
                        _export, progress=progress)
