"""The Lightning module that trains one SFSRM network (SEN or SRN) through the paper's loss stages."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import torch

from microsr.train.config import TrainConfig


def network_inputs(images: torch.Tensor, network: str) -> torch.Tensor:
    """SEN sees the image; SRN sees the image and its radial-symmetry edge map (paper 003, Fig. 1a)."""
    if network == "sen":
        return images
    from microsr.edges import edge_map_torch

    return torch.cat([images, edge_map_torch(images)], dim=1)


class SFSRMTraining(L.LightningModule):
    """Generator (+ discriminator when a stage asks for the adversarial loss), trained stage by stage.

    Optimization is manual: a GAN step updates two networks, and the learning rate and loss
    weights change at stage boundaries counted in generator iterations (kept in ``iteration``,
    which is saved with every checkpoint so that a killed run resumes where it stopped).
    """

    def __init__(self, config: TrainConfig):
        super().__init__()
        from microsr.losses import FrequencyLoss, MSSSIML1Loss, PerceptualLoss
        from microsr.nets import RRDBNet, UNetDiscriminator

        self.config = config
        self.save_hyperparameters({"config": config.model_dump(mode="json")})
        self.automatic_optimization = False
        model = config.model
        self.generator = RRDBNet(1 if config.network == "sen" else 2, 1, model.features, model.blocks,
                                 model.growth, model.scale)
        weights = {name for stage in config.stages for name, w in stage.losses.items() if w > 0}
        self.discriminator = UNetDiscriminator(1, max(16, model.features)) if "adversarial" in weights else None
        self.content_loss = MSSSIML1Loss(alpha=0.84)
        # Kept out of the module's registry: its 20 M fixed VGG weights would add ~80 MB to every checkpoint.
        self._frozen = [PerceptualLoss(config.perceptual_weights)] if "perceptual" in weights else []
        self.frequency_loss = FrequencyLoss("full") if "frequency" in weights else None
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.validation: tuple[torch.Tensor, torch.Tensor] | None = None

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
        from microsr.losses import discriminator_loss, generator_adversarial_loss

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

    @torch.no_grad()
    def _validate(self, step: int) -> None:
        from microsr.metrics.fidelity import ms_ssim_torch

        if self.validation is None:
            return
        images, targets = (t.to(self.device) for t in self.validation)
        self.generator.eval()
        output = self(images).clamp(0, 1)
        self.generator.train()
        ms_ssim = float(ms_ssim_torch(output, targets.clamp(0, 1)))
        mse = float(torch.mean((output - targets.clamp(0, 1)) ** 2))
        psnr = 10 * math.log10(1.0 / max(mse, 1e-12))
        self.log_dict({"val_ms_ssim": ms_ssim, "val_psnr": psnr}, prog_bar=True)
        record_losses(self, step, "validation", float("nan"), {"val_ms_ssim": ms_ssim, "val_psnr": psnr})



def finish_step(module, step: int, stage: str, loss: torch.Tensor, terms: dict) -> None:
    """What every trainer does after training step ``step``: log the loss, keep it and its ``terms``
    (tensors) in ``losses.csv``, call ``module._validate(step)`` when due, and stop after the last one."""
    module.log("loss", loss.detach(), prog_bar=True)
    record_losses(module, step, stage, float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()})
    if step % module.config.validate_every == 0 or step == module.config.total_iterations:
        module._validate(step)
    if step >= module.config.total_iterations:
        module.trainer.should_stop = True


def record_losses(module, step: int, stage: str, loss: float, terms: dict) -> None:
    """Append one step of a training module to its run's ``losses.csv`` (only the main process writes)."""
    if module.trainer is not None and module.trainer.is_global_zero:
        append_losses(Path(module.config.output_dir) / "losses.csv", step, stage, loss, terms)


def append_losses(path: Path, step: int, stage: str, loss: float, terms: dict) -> None:
    """Append to ``losses.csv``: a file, so the history survives a killed and resumed run."""
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["iteration", "stage", "loss", "term", "value"])
        for name, value in terms.items():
            writer.writerow([step, stage, loss, name, value])
