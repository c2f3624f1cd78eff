"""Training configurations (pydantic), validated before any work starts; read from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from microsr.errors import InputError

LOSS_NAMES = ("msssim_l1", "perceptual", "adversarial", "frequency")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a key fails up front, not after hours


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
    seed: int = 0

    @model_validator(mode="after")
    def _folder_given(self):
        if self.source == "folder" and self.folder is None:
            raise ValueError("data.source is 'folder' but data.folder (lr_dir, hr_dir) is missing")
        if self.snr[0] <= 0 or self.snr[1] < self.snr[0]:
            raise ValueError(f"data.snr {self.snr} must be a range (low, high) with 0 < low <= high")
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


class RunSettings(Strict):
    """What every training run has, whatever it trains: where it writes, how often it checkpoints and
    validates, and what Lightning runs it on (see :func:`microsr.train.run.fit`)."""

    output_dir: Path
    checkpoint_every: int = Field(100, ge=1)
    validate_every: int = Field(200, ge=1)
    devices: int | str = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    seed: int = 0


class NetworkRun(RunSettings):
    """A run that trains one network for ``iterations``; ``build()`` makes it, and a config whose network
    cannot be built is refused when loaded, not at the first step."""

    iterations: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _network_builds(self):
        try:
            self.build()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model: {exc}") from None
        return self

    @property
    def total_iterations(self) -> int:
        return self.iterations

    def build(self):
        raise NotImplementedError


class TrainConfig(RunSettings):
    """A whole training run of one network of SFSRM (SEN: denoise, ×1; SRN: super-resolve)."""

    network: Literal["sen", "srn"]
    model: NetworkConfig = NetworkConfig()
    data: DataConfig = DataConfig()
    stages: list[StageConfig]
    perceptual_weights: Path | None = None

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


def load_config(path: str | Path | None, schema: type[BaseModel] = TrainConfig, overrides: dict | None = None):
    """Read and validate a YAML training configuration (SFSRM's ``TrainConfig`` unless ``schema``);
    ``overrides`` (e.g. from command-line flags; ``None`` values ignored) replace top-level keys, and
    ``path=None`` builds the configuration from them alone. Any problem is one clear InputError."""
    import yaml

    data = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise InputError(f"config {path} does not exist: check the path")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    data = {**data, **{key: value for key, value in (overrides or {}).items() if value is not None}}
    path = path if path is not None else "from the command line"
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise InputError(f"config {path}: {where}: {first['msg']} "
                         f"({exc.error_count()} problem(s) in all)") from None
