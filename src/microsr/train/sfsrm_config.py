"""SFSRM training configuration (pydantic): network size, data source, loss stages; validated before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from microsr.train.config import RunSettings, Strict, check_range

LOSS_NAMES = ("msssim_l1", "perceptual", "adversarial", "frequency")


class NetworkConfig(Strict):
    """RRDB generator size: the paper's is 23 blocks × 64 features; CPUs train ~4 × 32."""

    features: int = Field(32, ge=4)
    blocks: int = Field(4, ge=1)
    growth: int = Field(16, ge=4)
    scale: Literal[1, 2, 4] = 4


class FolderData(Strict):
    """Registered pairs: files of the same name in ``lr_dir`` and ``hr_dir`` (HR = scale × LR)."""

    lr_dir: Path
    hr_dir: Path


class RealisticData(Strict):
    """Widefield images like real ones (:mod:`microsr.synthetic.widefield`): per sample a specimen class, a PSF
    width, a haze and a defocus drawn from these ranges, and an sCMOS camera's defects."""

    classes: list[Literal["filaments", "er", "mitochondria", "puncta"]] = ["filaments", "er", "mitochondria", "puncta"]
    fwhm_nm: tuple[float, float] = (200.0, 350.0)
    haze: tuple[float, float] = (0.0, 2.0)
    defocus_nm: tuple[float, float] = (800.0, 2000.0)
    camera_defects: bool = True

    @model_validator(mode="after")
    def _ranges(self):
        for name in ("fwhm_nm", "defocus_nm"):
            check_range(f"data.realistic.{name}", getattr(self, name))
        low, high = self.haze
        if not 0 <= low <= high:
            raise ValueError(f"data.realistic.haze {self.haze} must be a range (low, high) with 0 ≤ low ≤ high")
        if not self.classes:
            raise ValueError("data.realistic.classes is empty: give at least one specimen class")
        return self


class DataConfig(Strict):
    """Where patches come from: the simulator (on the fly) or folders of TIFF pairs."""

    source: Literal["simulator", "folder"] = "simulator"
    kind: Literal["filaments", "line-pairs", "dot-pairs", "rings"] = "filaments"
    lr_patch_px: int = Field(32, ge=16)
    lr_pixel_nm: float = Field(100.0, gt=0)
    fwhm_nm: float = Field(200.0, gt=0)
    snr: tuple[float, float] = (5.0, 20.0)
    density: float | None = Field(None, gt=0, lt=1)
    pre_upsample: float = Field(1.0, ge=1.0, description="bicubic pre-interpolation (paper: 1.25 for ×5/×10)")
    batch_size: int = Field(8, ge=1)
    validation_pairs: int = Field(16, ge=1)
    folder: FolderData | None = None
    #: With it, the simulator makes realistic widefield fields (classes, haze, PSF range, camera defects)
    #: instead of ``kind`` in a perfect focal plane; ``fwhm_nm`` and ``kind`` are then not used.
    realistic: RealisticData | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _folder_given(self):
        if self.source == "folder" and self.folder is None:
            raise ValueError("data.source is 'folder' but data.folder (lr_dir, hr_dir) is missing")
        check_range("data.snr", self.snr)
        return self


class StageConfig(Strict):
    """One training stage: iterations, learning rate and loss weights (paper 003, Methods)."""

    name: str
    iterations: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    losses: dict[str, float]

    @model_validator(mode="after")
    def _known_losses(self):
        unknown = set(self.losses) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"stage {self.name}: unknown loss(es) {sorted(unknown)}; use {list(LOSS_NAMES)}")
        if not any(weight > 0 for weight in self.losses.values()):
            raise ValueError(f"stage {self.name}: give at least one loss a positive weight")
        return self


class TrainConfig(RunSettings):
    """A whole training run of one network of SFSRM (SEN: denoise, ×1; SRN: super-resolve)."""

    network: Literal["sen", "srn"]
    model: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    stages: list[StageConfig]
    perceptual_weights: Path | None = None
    #: Start from trained weights (fine-tuning): a shipped model's name, a model folder, or a generator
    #: ``model.pt``; the network of this run's kind is taken, and must have this run's model settings.
    init_from: str | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.network == "sen" and self.model.scale != 1:
            raise ValueError("network 'sen' denoises at the input's resolution: model.scale must be 1")
        if self.network == "srn" and self.model.scale == 1 and self.data.pre_upsample == 1.0:
            raise ValueError("network 'srn' with model.scale 1 and no data.pre_upsample does not super-resolve")
        if self.network == "sen" and self.data.pre_upsample != 1.0:
            raise ValueError("network 'sen' works on the camera's grid: data.pre_upsample must be 1")
        pre = self.data.pre_upsample
        for name, value in (("model.scale", self.model.scale), ("data.lr_patch_px", self.data.lr_patch_px)):
            if abs(value * pre - round(value * pre)) > 1e-6:
                raise ValueError(f"data.pre_upsample {pre:g} × {name} {value} is not a whole number of pixels: "
                                 "choose them so that it is (e.g. 2.5 with a patch of 32 and scale 4 → ×10)")
        if self.perceptual_weights is not None and not Path(self.perceptual_weights).exists():
            raise ValueError(f"perceptual_weights {self.perceptual_weights} does not exist")
        return self

    @property
    def total_iterations(self) -> int:
        return sum(stage.iterations for stage in self.stages)

    def stage_at(self, step: int) -> StageConfig:
        """The stage that iteration ``step`` (0-based) belongs to."""
        for stage in self.stages:
            if step < stage.iterations:
                return stage
            step -= stage.iterations
        return self.stages[-1]
