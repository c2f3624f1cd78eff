"""Train the two networks of rDL SIM: the SR-estimate DFCAN (raw frames → SIM image) and the rDL denoiser."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch.utils.data import DataLoader

from microsr.losses import rdl_loss_terms
from microsr.errors import InputError
from microsr.models.rdl import NETWORK_FILES, build_network, load_network, save_network
from microsr.models.shipped import network_file
from microsr.train.config import NetworkRun, Strict, check_range, load_config
from microsr.train.fit import NetworkTraining, finish_step, last_validation, run_training
from microsr.train.rdl_data import FolderRawPairs, Randomization, RawPairStream, validation_raw_pairs

#: Network each task trains (see :func:`microsr.models.rdl.build_network`); "care" is the
#: U-Net baseline trained on the same noisy → clean frames as the denoiser, without the pattern.
NETWORK_OF_TASK = {"sr": "sr", "denoise": "denoiser", "care": "care"}

#: Samples each task trains on (the CARE baseline shares the denoiser's).
SAMPLES_OF_TASK = {"sr": "sr", "denoise": "denoise", "care": "denoise"}


class RDLDataConfig(Strict):
    """Where samples come from (the simulator, or a folder with train/ train_gt/ val/ val_gt/) and the acquisition."""

    source: Literal["simulator", "folder"] = "simulator"
    folder: Path | None = None
    specimens: list[Literal["filaments", "pits", "network"]] = ["filaments", "pits", "network"]
    photons: tuple[float, float] = (5.0, 200.0)
    patch_px: int = Field(64, ge=16)
    field_px: int = Field(128, ge=16)
    angles: int = Field(3, ge=1)
    phases: int = Field(3, ge=3)
    pixel_size_nm: float = Field(62.6, gt=0)
    na: float = Field(1.35, gt=0)
    wavelength_nm: float = Field(525.0, gt=0)
    background: float | Literal["auto"] = "auto"
    batch_size: int = Field(4, ge=1)
    validation_pairs: int = Field(4, ge=1)
    seed: int = Field(0, ge=0)
    #: Domain randomization (simulator only): detection OTFs to draw from ("ideal" and measured OTFs: TIRF488,
    #: TIRF560, TIRF647 or .mrc paths), the pattern's fraction of the drawn OTF's cut-off, each orientation's
    #: modulation, and a real camera and laser (defects).
    otfs: list[str] = ["ideal"]
    pattern_fraction: tuple[float, float] = (0.92, 0.92)
    modulation: tuple[float, float] = (0.8, 0.8)
    defects: bool = False
    #: Trained SR network (task "sr" model.pt) whose estimates make the denoiser's modulated images, as at
    #: prediction; without it they come from the ground truth, and the denoiser learns to trust them too much.
    sr_model: Path | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.source == "folder" and self.folder is None:
            raise ValueError("data.source is 'folder' but data.folder is missing")
        check_range("data.photons", self.photons)
        if self.sr_model is not None and not self.sr_model.is_file():
            raise ValueError(f"data.sr_model {self.sr_model} does not exist: train the SR network first "
                             "(task: sr) and give its model.pt")
        if not 0 < self.modulation[0] <= self.modulation[1] <= 1:
            raise ValueError(f"data.modulation {self.modulation} must be a range (low, high) within (0, 1]")
        if not 0 < self.pattern_fraction[0] <= self.pattern_fraction[1] <= 1.3:
            raise ValueError(f"data.pattern_fraction {self.pattern_fraction} must be a range within (0, 1.3] of "
                             "the OTF cut-off")
        if self.field_px < self.patch_px:
            raise ValueError(f"data.field_px {self.field_px} is smaller than data.patch_px {self.patch_px}")
        return self

    @property
    def randomization(self) -> Randomization:
        return Randomization(tuple(self.otfs), tuple(self.pattern_fraction), tuple(self.modulation), self.defects)

    @property
    def acquisition(self) -> dict:
        """What a trained model is valid for; saved with it and checked against the user's data."""
        return {"angles": self.angles, "phases": self.phases, "pixel_size_nm": self.pixel_size_nm,
                "na": self.na, "wavelength_nm": self.wavelength_nm}


class RDLTrainConfig(NetworkRun):
    """One rDL training run: task "sr" (DFCAN), "denoise" (rDL denoiser) or "care" (U-Net baseline);
    loss MSE + ssim_weight·(1 − SSIM)."""

    task: Literal["sr", "denoise", "care"]
    model: dict[str, int | float] = {}
    data: RDLDataConfig = RDLDataConfig()
    iterations: int = Field(ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    ssim_weight: float = Field(0.1, ge=0)
    #: Start from trained weights instead of random ones (fine-tuning): a ``model.pt`` of this task's network,
    #: or an rDL model folder or shipped name (e.g. "tirf-sim-3x3"), whose network of this task is taken.
    init_from: str | None = None

    def hyper(self) -> dict:
        """Network hyper-parameters: the config's ``model`` with the acquisition's frame counts filled in."""
        phases = self.data.phases
        frames = {"sr": {"in_channels": self.data.angles * phases}, "denoise": {"phases": phases},
                  "care": {"in_channels": phases, "out_channels": phases}}[self.task]
        return {**self.model, **frames}

    def build(self) -> torch.nn.Module:
        return build_network(NETWORK_OF_TASK[self.task], self.hyper())


def load_rdl_config(path: str | Path) -> RDLTrainConfig:
    """Read and validate a YAML rDL training configuration; any problem is one clear InputError."""
    return load_config(path, RDLTrainConfig)


def _samples(config: RDLTrainConfig, seed_offset: int):
    data = config.data
    common = dict(task=SAMPLES_OF_TASK[config.task], patch_px=data.patch_px, angles=data.angles, phases=data.phases,
                  seed=data.seed, seed_offset=seed_offset, sr_model=data.sr_model)
    if data.source == "folder":
        return FolderRawPairs(data.folder, split="train", pixel_size_nm=data.pixel_size_nm, na=data.na,
                              wavelength_nm=data.wavelength_nm, background=data.background, **common)
    return RawPairStream(specimens=data.specimens, photons=data.photons, field_px=data.field_px,
                         pixel_size_nm=data.pixel_size_nm, na=data.na, wavelength_nm=data.wavelength_nm,
                         randomization=data.randomization, **common)


def _validation(config: RDLTrainConfig) -> tuple[torch.Tensor, ...]:
    data = config.data
    options = dict(count=data.validation_pairs, patch_px=data.patch_px, angles=data.angles, phases=data.phases,
                   task=SAMPLES_OF_TASK[config.task], pixel_size_nm=data.pixel_size_nm, na=data.na,
                   wavelength_nm=data.wavelength_nm, seed=data.seed, sr_model=data.sr_model)
    if data.source == "folder":
        return validation_raw_pairs(folder=data.folder, background=data.background, **options)
    return validation_raw_pairs(specimens=data.specimens, photons=data.photons, field_px=data.field_px,
                                randomization=data.randomization, **options)


class RDLTraining(NetworkTraining):
    """The network of one rDL task, trained with MSE + ``ssim_weight``·(1 − SSIM) (paper 000's loss)."""

    def __init__(self, config: RDLTrainConfig):
        super().__init__(config)
        self.network = config.build()

    def forward(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if self.config.task == "sr":
            return self.network(batch[0])
        if self.config.task == "care":
            return self.network(batch[1])  # the noisy frames only: CARE is not told the pattern
        return self.network(batch[0], batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate, betas=(0.9, 0.999))

    def training_step(self, batch, batch_index):
        terms = rdl_loss_terms(self(batch), batch[-1])
        loss = terms["mse"] + self.config.ssim_weight * (1.0 - terms["ssim"])
        self.iteration += 1
        finish_step(self, int(self.iteration), "train", loss, terms)
        return loss

    def trained_network(self) -> torch.nn.Module:
        return self.network

    def validation_metrics(self, batch) -> dict[str, float]:
        terms = rdl_loss_terms(self(batch), batch[-1])
        return {"val_psnr": 10 * math.log10(1.0 / max(float(terms["mse"]), 1e-12)), "val_ssim": float(terms["ssim"])}


def starting_weights(config: RDLTrainConfig) -> dict | None:
    """The state dict ``config.init_from`` names (None without one), checked to fit the network to train."""
    if config.init_from is None:
        return None
    kind = NETWORK_OF_TASK[config.task]
    path = network_file(config.init_from, "rdl", NETWORK_FILES[kind])
    network, info = load_network(path, kind)
    if info["model"] != config.hyper():
        raise InputError(f"init_from {path} is a {kind} network of another shape ({info['model']}) than this run's "
                         f"({config.hyper()}): give the same model settings, or leave init_from out")
    return network.state_dict()


def _build(config: RDLTrainConfig) -> RDLTraining:
    module = RDLTraining(config)
    weights = starting_weights(config)
    if weights is not None:  # a resumed run's checkpoint replaces these, as it should
        module.network.load_state_dict(weights)
    module.validation = _validation(config)
    return module


def _export(module: RDLTraining, output: Path) -> Path:
    config = module.config
    return save_network(output / "model.pt", NETWORK_OF_TASK[config.task], module.network, config.hyper(),
                        config.data.acquisition, iterations=int(module.iteration), init_from=config.init_from,
                        training_range={"otfs": list(config.data.otfs), "pattern_fraction": list(config.data.pattern_fraction),
                                        "modulation": list(config.data.modulation), "defects": config.data.defects,
                                        "photons": list(config.data.photons)},
                        validation=last_validation(output / "losses.csv"))


def train_rdl(config: RDLTrainConfig, *, progress: bool = True) -> Path:
    """Train (or resume) one rDL network; returns the exported ``model.pt`` (copy it to sr.pt or denoiser.pt)."""
    return run_training(config, lambda: _build(config),
                        lambda resumes: DataLoader(_samples(config, resumes), batch_size=config.data.batch_size,
                                                   num_workers=0),
                        _export, progress=progress)
