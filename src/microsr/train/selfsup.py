"""Train the 3-D RCAN of TiS-rDL / SiS-rDL on a noisy lattice light-sheet stack itself (no clean data)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch.utils.data import DataLoader

from microsr.io.volumes import open_volume_stack, stack_metadata, stated_sampling_nm
from microsr.losses import sis_loss, tis_loss
from microsr.models.selfsup import build_network, save_network
from microsr.train.config import NetworkRun, load_config
from microsr.train.fit import NetworkTraining, finish_step, last_validation, run_training
from microsr.train.selfsup_data import SelfSupervisedPatches

#: Learning rate at the end of a cosine schedule, as a fraction of the starting one.
FINAL_LR_FRACTION = 0.01


class SelfSupConfig(NetworkRun):
    """One self-supervised run: ``mode`` "tis" (time points 2k ↔ 2k+1) or "sis" (odd ↔ even z-slices), each with GAR.

    ``model`` holds :class:`microsr.nets.RCAN3D` sizes (default the small CPU variant; the paper's is
    ``{features: 64, groups: 3, blocks: 5, reduction: 16}``). ``patch_size`` is ``(z, y, x)`` voxels.
    """

    mode: Literal["tis", "sis"]
    stack: Path
    model: dict[str, int] = {"features": 8, "groups": 1, "blocks": 2, "reduction": 4}
    patch_size: tuple[int, int, int] = (8, 32, 32)
    batch_size: int = Field(2, ge=1)
    iterations: int = Field(1000, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field("cosine", description=(
        "'cosine' lowers the learning rate along a half cosine to 1 % of learning_rate at the last "
        "iteration; 'constant' keeps it"))
    gar_weight: float = Field(0.5, ge=0, lt=1, description=(
        "weight w of the gap-amending regularization: the target is amended by w times the gap between "
        "input and target (planes for SiS, time points for TiS) as the network estimates it; 0 is off, "
        "ramped in over the first half of training"))
    min_foreground_fraction: float = Field(0.02, ge=0)
    validation_patches: int = Field(4, ge=1)

    def build(self) -> torch.nn.Module:
        return build_network(self.model)


def load_selfsup_config(path: str | Path | None, **overrides) -> SelfSupConfig:
    """A validated configuration from a YAML file (or none) and ``overrides`` (``None`` ignored); one InputError."""
    return load_config(path, SelfSupConfig, overrides)


class SelfSupTraining(NetworkTraining):
    """RCAN3D trained on interleaved pairs of the noisy stack: :func:`tis_loss` or :func:`sis_loss`, each with GAR."""

    def __init__(self, config: SelfSupConfig):
        super().__init__(config)
        self.network = config.build()

    def gar_weight(self) -> float:
        """GAR's weight now: ramped linearly from 0 over the first half of training, while the network's own
        estimate of the gap is still poor (as Neighbor2Neighbor ramps its regularizer), then ``config.gar_weight``."""
        ramp = max(1, self.config.total_iterations // 2)
        return self.config.gar_weight * min(1.0, int(self.iteration) / ramp)

    def loss(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.mode == "sis":
            return sis_loss(self.network, source, target, gar_weight=self.gar_weight())
        return tis_loss(self.network, source, target, gar_weight=self.gar_weight())

    def learning_rate_factor(self) -> float:
        """Factor on ``config.learning_rate`` now (1 for a constant schedule)."""
        if self.config.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, int(self.iteration) / max(1, self.config.total_iterations))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate)
        # The factor is read from the module's own iteration count, which checkpoints keep, so a
        # resumed run continues the schedule where the killed one stopped.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: self.learning_rate_factor())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch, batch_index):
        loss = self.loss(*batch)
        self.iteration += 1
        finish_step(self, int(self.iteration), "train", loss, {self.config.mode: loss})
        return loss

    def trained_network(self) -> torch.nn.Module:
        return self.network

    def validation_metrics(self, batch) -> dict[str, float]:
        return {"val_loss": float(self.loss(*batch))}


def _patches(config: SelfSupConfig, seed: int, seed_offset: int = 0):
    return SelfSupervisedPatches(config.stack, mode=config.mode, patch_size=config.patch_size,
                                 min_foreground_fraction=config.min_foreground_fraction, seed=seed,
                                 seed_offset=seed_offset)


def train_selfsup(config: SelfSupConfig, *, progress: bool = True, patches=None) -> Path:
    """Train (or resume) a self-supervised denoiser; returns the exported ``model.pt``.

    Validation is the same self-supervised loss on fixed patches drawn with another seed: without
    clean data there is nothing else to score, and a loss that stops falling is the signal to stop.

    ``patches(seed, seed_offset)``, if given, replaces the interleaved pairs of ``config.stack`` by
    another stream of ``(input, target)`` patches with ``background`` and ``scale`` attributes, e.g.
    noisy and clean volumes for a supervised baseline (``bench/selfsup_compare.py``). ``config.mode``
    then only chooses the loss: "tis" with ``gar_weight`` 0 is plain MSE.

    The exported file keeps the stack's normalization (``background``, ``scale``) for reference;
    prediction measures its own input the same way (:func:`microsr.models.selfsup.probe_normalization`).
    """
    custom = patches
    patches = patches or (lambda seed, seed_offset=0: _patches(config, seed, seed_offset))
    validation = patches(config.seed + 1_000_003, 0)

    def build() -> SelfSupTraining:
        module = SelfSupTraining(config)
        samples = [sample for sample, _ in zip(validation, range(config.validation_patches))]
        module.validation = tuple(torch.stack(column) for column in zip(*samples))
        return module

    def export(module: SelfSupTraining, output: Path) -> Path:
        # The training stack's sampling, when it states one, so prediction can check a stack against it.
        metadata = stack_metadata(open_volume_stack(config.stack)) if custom is None else {}
        z_step, pixel = stated_sampling_nm(metadata)
        return save_network(output / "model.pt", module.network, mode=config.mode, hyper=config.model,
                            patch_size=config.patch_size, iterations=int(module.iteration),
                            validation=last_validation(output / "losses.csv"),
                            normalization={"background": validation.background, "scale": validation.scale},
                            **({"voxel_size_nm": [z_step, pixel, pixel]} if z_step and pixel else {}))

    return run_training(config, build, lambda resumes: DataLoader(patches(config.seed, resumes),
                                                                  batch_size=config.batch_size, num_workers=0),
                        export, progress=progress)
