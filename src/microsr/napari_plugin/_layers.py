"""Image layers with their pixel size in nm, both ways: microsr arrays to napari layer data and back."""

from __future__ import annotations

import numpy as np


def image_layer(array, pixel_size_nm: float | None, name: str, *, z_step_nm: float | None = None,
                metadata: dict | None = None, **options) -> tuple:
    """A napari ``(data, kwargs, "image")`` tuple whose Y, X (and Z) scale is the physical size in nm."""
    array = np.asarray(array) if not hasattr(array, "shape") else array
    scale = [1.0] * array.ndim
    units = ["pixel"] * array.ndim
    if pixel_size_nm:
        scale[-2:] = [float(pixel_size_nm)] * 2
        units[-2:] = ["nm", "nm"]
    if z_step_nm and array.ndim >= 3:
        scale[-3], units[-3] = float(z_step_nm), "nm"
    return array, {"name": name, "scale": scale, "units": units,
                   "metadata": {"pixel_size_nm": pixel_size_nm, **(metadata or {})}, **options}, "image"


def layer_pixel_size_nm(layer) -> float | None:
    """The lateral pixel size of a layer in nm: its Y/X scale when that is in nm (a layer read by microsr or
    scaled by the user), else what its metadata says, else None (unknown)."""
    units = [str(u) for u in getattr(layer, "units", ())]
    scale = list(getattr(layer, "scale", ()))
    if scale and units and units[-1] in ("nm", "nanometer") and scale[-1] != 1.0:
        return float(scale[-1])
    if scale and units and units[-1] in ("um", "µm", "micrometer") and scale[-1] != 1.0:
        return float(scale[-1]) * 1000.0
    value = (getattr(layer, "metadata", {}) or {}).get("pixel_size_nm")
    return float(value) if value else None
