"""napari reader (TIFF/OME-TIFF, MRC, OME-Zarr and microsr's Zarr) and writer (OME-TIFF) with pixel sizes in nm."""

from __future__ import annotations

from pathlib import Path

from microsr.errors import MicrosrError
from microsr.io import read_image, write_image
from microsr.io.images import image_format
from microsr.napari_plugin._layers import image_layer


def get_reader(path):
    """napari's reader hook: a function for one path microsr reads, else None (another plugin may)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        image_format(path)
    except MicrosrError:
        return None
    return read_layers


def read_layers(path) -> list[tuple]:
    """One image layer, scaled in nm from the file's pixel size (and z-step)."""
    path = path[0] if isinstance(path, list) else path
    image = read_image(path, lazy=True)
    return [image_layer(image.array, image.pixel_size_nm, Path(str(path)).name, z_step_nm=image.z_step_nm,
                        metadata={"axes": image.axes, "source": str(path)})]


def write_ome_tiff(path: str, data, meta: dict) -> list[str]:
    """napari's writer hook for one image layer: an OME-TIFF whose pixel size is the layer's Y/X scale (nm)."""
    scale = meta.get("scale") or []
    units = [str(u) for u in (meta.get("units") or [])]
    pixel = None
    if scale and scale[-1] != 1.0 and (not units or units[-1] in ("nm", "nanometer")):
        pixel = float(scale[-1])
    pixel = pixel or (meta.get("metadata") or {}).get("pixel_size_nm")
    z_step = float(scale[-3]) if len(scale) >= 3 and scale[-3] != 1.0 else None
    axes = {2: "YX", 3: "ZYX" if z_step else "TYX"}.get(getattr(data, "ndim", 0))
    write_image(path, data, pixel_size_nm=pixel, axes=axes, z_step_nm=z_step, overwrite=True)
    return [path]
