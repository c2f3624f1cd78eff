"""The SIM illumination parameters of one acquisition and their JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microsr.errors import InputError
from microsr.io.atomic import atomic_write_text

PHASE_CONVENTION = ("I(r) = 1 + m cos(2π k·(r − c) + φ_p); r = (x, y) pixel position in nm, x along "
                    "columns, y along rows; c = pixel (X//2, Y//2); angle of k from +x towards +y")


@dataclass(frozen=True)
class Orientation:
    """One illumination orientation: its wave vector, the phase of each frame and the modulation depth.

    The illumination is ``I(r) = 1 + m cos(2π k·(r − c) + φ_p)`` with ``k = (cos θ, sin θ) / spacing``,
    ``θ`` measured from the +x (column) axis towards the +y (row) axis, and ``c`` the centre pixel
    ``(X//2, Y//2)``: referring the phase to the centre makes it robust to a small error in ``k``.
    """

    angle_rad: float
    spacing_nm: float
    phases_rad: tuple[float, ...]
    modulation: float

    @property
    def k_cycles_per_um(self) -> float:
        """Pattern frequency |k| in cycles/µm."""
        return 1000.0 / self.spacing_nm

    def wave_vector_per_pixel(self, pixel_size_nm: float) -> tuple[float, float]:
        """Wave vector ``(ky, kx)`` in cycles per pixel of a grid of ``pixel_size_nm``."""
        k = pixel_size_nm / self.spacing_nm
        return k * math.sin(self.angle_rad), k * math.cos(self.angle_rad)

    def to_dict(self) -> dict:
        return {"angle_rad": float(self.angle_rad), "angle_deg": math.degrees(self.angle_rad),
                "spacing_nm": float(self.spacing_nm), "k_cycles_per_um": self.k_cycles_per_um,
                "phases_rad": [float(p) for p in self.phases_rad], "modulation": float(self.modulation)}


@dataclass
class SIMParameters:
    """Pattern parameters of all orientations of a 2-D SIM acquisition (angle-major frame order)."""

    orientations: list[Orientation]
    quality: dict = field(default_factory=dict)

    @property
    def angles(self) -> int:
        return len(self.orientations)

    @property
    def phases(self) -> int:
        return len(self.orientations[0].phases_rad)

    def to_dict(self) -> dict:
        return {"orientations": [o.to_dict() for o in self.orientations],
                "quality": self.quality, "convention": PHASE_CONVENTION}

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> "SIMParameters":
        try:
            orientations = [Orientation(float(o["angle_rad"]), float(o["spacing_nm"]),
                                        tuple(float(p) for p in o["phases_rad"]),
                                        float(o["modulation"]))
                            for o in data["orientations"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"pattern parameters lack or mangle {exc}: expected "
                             "{'orientations': [{'angle_rad', 'spacing_nm', 'phases_rad', "
                             "'modulation'}, ...]} as written by 'microsr sim estimate'") from None
        if not orientations or len({len(o.phases_rad) for o in orientations}) != 1:
            raise InputError("pattern parameters need at least one orientation and the same number "
                             "of phases for every orientation")
        return cls(orientations, dict(data.get("quality", {})))

    @classmethod
    def load(cls, path: str | Path) -> "SIMParameters":
        path = Path(path)
        if not path.exists():
            raise InputError(f"parameter file {path} does not exist: run 'microsr sim estimate' "
                             "first or check the path")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read parameter file {path} as JSON ({exc})") from None
        return cls.from_dict(data)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"not JSON serializable: {type(value)}")
