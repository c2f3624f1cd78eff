"""OME-Zarr (NGFF 0.5) images: a multiscale pyramid written level by level as frames arrive, and read back.

The metadata (axes with types and units, a scale and translation per level) is written by the
``ome-zarr`` package (:func:`ome_zarr.writer.write_multiscales_metadata`), so napari-ome-zarr,
Fiji/BigDataViewer and OMERO read the scale. The arrays themselves are created here with zarr, because
``ome-zarr`` writes a whole array at once and microsr streams stacks frame by frame: each block of frames
goes to level 0 and, binned 2 × 2 in-plane, to every lower level at once, so nothing is read back.
"""

from __future__ import annotations

import math

import numpy as np

from microsr.errors import InputError

#: A pyramid halves the plane until its larger side is at most this (issue 18: the size a viewer shows at once).
PYRAMID_TOP_PX = 512

#: In-plane chunk side: a plane of up to this size is one chunk (reading one plane is one read).
CHUNK_PX = 2048

#: NGFF axis types of microsr's axis letters; others get none (NGFF allows custom axes).
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}

#: Length units NGFF names, in nm.
UNIT_NM = {"nanometer": 1.0, "micrometer": 1000.0, "millimeter": 1e6, "angstrom": 0.1, "meter": 1e9,
           "centimeter": 1e7, "picometer": 1e-3}


def pyramid_shapes(shape: tuple[int, ...], top_px: int = PYRAMID_TOP_PX) -> list[tuple[int, ...]]:
    """Shapes of the pyramid levels: level 0 is ``shape``; each next one halves the last two axes (floor)
    while the larger of them exceeds ``top_px``.

    Examples
    --------
    >>> pyramid_shapes((5, 2048, 1500))
    [(5, 2048, 1500), (5, 1024, 750), (5, 512, 375)]
    >>> pyramid_shapes((300, 200))
    [(300, 200)]
    """
    shapes = [tuple(int(s) for s in shape)]
    while len(shapes[-1]) >= 2 and max(shapes[-1][-2:]) > top_px and min(shapes[-1][-2:]) >= 2:
        *rest, height, width = shapes[-1]
        shapes.append((*rest, height // 2, width // 2))
    return shapes


def bin_plane(block: np.ndarray, times: int) -> np.ndarray:
    """``block`` binned ``times`` times by 2 × 2 means in its last two axes (odd edges dropped, as the level's
    shape does); the dtype is kept (integers rounded)."""
    out = np.asarray(block)
    for _ in range(times):
        height, width = out.shape[-2] // 2 * 2, out.shape[-1] // 2 * 2
        trimmed = out[..., :height, :width].astype(np.float64)
        binned = trimmed.reshape(*trimmed.shape[:-2], height // 2, 2, width // 2, 2).mean(axis=(-3, -1))
        out = np.rint(binned).astype(block.dtype) if np.issubdtype(block.dtype, np.integer) else \
            binned.astype(block.dtype)
    return out


def _axis_dicts(axes: str) -> list[dict]:
    return [{"name": letter, **({"type": AXIS_TYPES[letter]} if letter in AXIS_TYPES else {})}
            for letter in axes.lower()]


def create_multiscale(path, shape: tuple[int, ...], dtype, axes: str | None, *, pixel_size_nm: float | None,
                      z_step_nm: float | None = None, attributes: dict | None = None) -> list:
    """Create an empty OME-Zarr image at ``path`` (a new folder) and return its level arrays, largest first.

    ``axes`` (one letter per axis, e.g. "TYX"; default: the last axes of "TZYX") are written with their NGFF
    types; Y and X get ``pixel_size_nm`` (times 2^level, with the half-pixel shift of 2 × 2 binning as a
    translation) and Z ``z_step_nm``, in nanometers. ``attributes`` (microsr's own: pixel size, notes) go on
    the group and, for readers of plain Zarr arrays, on level 0.
    """
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    axes = (axes or "TZYX"[-len(shape):]).upper()
    if len(axes) != len(shape) or len(set(axes)) != len(axes):
        raise InputError(f"axes {axes!r} do not name the {len(shape)} axes of shape {tuple(shape)} once each")
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    levels, datasets = [], []
    for level, level_shape in enumerate(pyramid_shapes(shape)):
        chunks = (1,) * (len(level_shape) - 2) + tuple(min(max(s, 1), CHUNK_PX) for s in level_shape[-2:]) \
            if len(level_shape) >= 2 else level_shape
        levels.append(group.create_array(str(level), shape=level_shape, chunks=chunks, dtype=dtype))
        factor = 2.0 ** level
        scale, translation = [], []
        for letter in axes:
            if letter in "YX" and pixel_size_nm:
                scale.append(float(pixel_size_nm) * factor)
                translation.append(float(pixel_size_nm) * (factor - 1) / 2)
            elif letter == "Z" and z_step_nm:
                scale.append(float(z_step_nm))
                translation.append(0.0)
            else:
                scale.append(factor if letter in "YX" else 1.0)
                translation.append((factor - 1) / 2 if letter in "YX" else 0.0)
        transforms = [{"type": "scale", "scale": scale}]
        if level:
            transforms.append({"type": "translation", "translation": translation})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    units = {letter.lower(): "nanometer" for letter in axes if (letter in "YX" and pixel_size_nm)
             or (letter == "Z" and z_step_nm)}
    write_multiscales_metadata(group, datasets, fmt=FormatV05(), axes=_axis_dicts(axes), axes_units=units or None,
                               name=str(path).rstrip("/").split("/")[-1])
    if attributes:
        group.attrs.update(attributes)
        levels[0].attrs.update(attributes)
    return levels


def write_region(levels: list, index: tuple, block: np.ndarray) -> None:
    """Write ``block`` (whole planes in its last two axes) at ``index`` (the leading axes: ints or slices) to
    level 0, and to each lower level binned once more from the level above (never binned twice over)."""
    binned = np.asarray(block)
    for level, array in enumerate(levels):
        if level:
            binned = bin_plane(binned, 1)
        array[index] = binned


def write_block(levels: list, start: int, block: np.ndarray) -> None:
    """Write frames ``start … start + len(block)`` (first axis) to every level of the pyramid."""
    block = np.asarray(block)
    write_region(levels, (slice(start, start + block.shape[0]),), block)


def write_whole(levels: list, array: np.ndarray) -> None:
    """Write a whole image to its levels (a 2-D image has no frames to stream)."""
    array = np.asarray(array)
    if array.ndim < 3:
        write_region(levels, (), array)
        return
    for start in range(array.shape[0]):
        write_block(levels, start, array[start:start + 1])


def read_multiscale(group) -> tuple:
    """``(level-0 array, axes, pixel size nm, z-step nm, note)`` of an OME-Zarr group; None sizes where the
    file has none (``note`` says why, e.g. an unknown unit)."""
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") or []
    if not multiscales:
        raise KeyError("multiscales")
    image = multiscales[0]
    dataset = image["datasets"][0]
    array = group[dataset["path"]]
    names = [axis["name"] if isinstance(axis, dict) else str(axis) for axis in image.get("axes", [])]
    units = [axis.get("unit") if isinstance(axis, dict) else None for axis in image.get("axes", [])]
    scale = next((t["scale"] for t in dataset.get("coordinateTransformations", []) if t.get("type") == "scale"), None)
    sizes, note = {}, None
    for name, unit, value in zip(names, units, scale or []):
        if name.lower() not in ("x", "y", "z") or unit is None:
            continue
        if unit not in UNIT_NM:
            note = f"axis {name} has the unit {unit!r}, not a length microsr knows ({', '.join(UNIT_NM)})"
            continue
        sizes[name.lower()] = float(value) * UNIT_NM[unit]
    pixel = sizes.get("x") or sizes.get("y")
    if pixel is not None and not math.isfinite(pixel):
        pixel = None
    axes = "".join(name.upper() for name in names) if names else None
    return array, axes, pixel, sizes.get("z"), note
