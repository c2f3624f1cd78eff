"""What every training configuration shares (output folder, checkpoints, Lightning devices) and its YAML loading."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from microsr.errors import InputError
from microsr.io.config_files import read_yaml, validation_message


def check_range(name: str, bounds: tuple[float, float]) -> None:
    """A (low, high) range of a positive quantity (photons, SNR) to draw from, or a ValueError naming it."""
    if bounds[0] <= 0 or bounds[1] < bounds[0]:
        raise ValueError(f"{name} {bounds} must be a range (low, high) with 0 < low <= high")


class Strict(BaseModel):
    """A configuration section that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")  # a typo in a key fails up front, not after hours


class RunSettings(Strict):
    """What every training run has, whatever it trains: where it writes, how often it checkpoints and
    validates, and what Lightning runs it on (see :func:`microsr.train.fit.fit`)."""

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


def load_config(path: str | Path | None, schema: type[BaseModel], overrides: dict | None = None):
    """Read and validate a YAML training configuration against ``schema``.

    ``overrides`` (e.g. from command-line flags; ``None`` values ignored) replace top-level keys, and
    ``path=None`` builds the configuration from them alone. Any problem is one clear InputError: broken
    YAML with its line, unknown keys named first (with the nearest known key), then the rest.
    """
    data = read_yaml(path) if path is not None else {}
    data = {**data, **{key: value for key, value in (overrides or {}).items() if value is not None}}
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_message(exc, path if path is not None else "from the command line",
                                            schema)) from None
