"""Read and write images (TIFF, OME-TIFF, MRC, Zarr, NumPy) with their pixel size and axes kept."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microsr.errors import InputError
from microsr.io.atomic import check_writable

TIFF_SUFFIXES = (".tif", ".tiff")
SUPPORTED = "TIFF/OME-TIFF (.tif, .tiff), MRC (.mrc), Zarr (.zarr) or NumPy (.npy)"
_UNIT_TO_NM = {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "micron": 1000.0, "\\u00B5m": 1000.0,
               "mm": 1e6, "Å": 0.1, "A": 0.1, "pm": 1e-3}
BIGTIFF_BYTES = 2**31


@dataclass
class ImageData:
    """An array with what a microscopist needs to interpret it."""

    array: np.ndarray
    pixel_size_nm: float | None = None
    axes: str | None = None


def image_format(path: str | Path) -> str:
    """``tiff``, ``mrc``, ``zarr`` or ``npy`` from the file name; an unknown suffix is a user error."""
    name = str(path).lower().rstrip("/")
    if name.endswith(TIFF_SUFFIXES):
        return "tiff"
    for suffix, kind in ((".mrc", "mrc"), (".zarr", "zarr"), (".npy", "npy")):
        if name.endswith(suffix):
            return kind
    raise InputError(f"{path}: unknown file type; use {SUPPORTED}")


def check_finite(array: np.ndarray, name: str = "image") -> None:
    """NaN or infinite values make every later number meaningless: refuse them up front."""
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise InputError(f"{name} contains {bad} NaN or infinite value(s): replace them (e.g. with the "
                         "background level) before processing")


def read_image(path: str | Path, *, lazy: bool = False) -> ImageData:
    """Read an image or stack; ``lazy=True`` maps it from disk instead of loading it.

    Parameters
    ----------
    path : path
        A TIFF/OME-TIFF, MRC, Zarr array or ``.npy`` file.
    lazy : bool
        Return a memory map (TIFF, MRC, NumPy) or a Zarr array, so that a stack of thousands of
        frames is read frame by frame. Compressed TIFFs are read whole.

    Returns
    -------
    ImageData
        The array, the pixel size in nm (None when the file has none) and the axes when known.
    """
    path = Path(path)
    kind = image_format(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path")
    try:
        image = {"tiff": _read_tiff, "mrc": _read_mrc, "zarr": _read_zarr, "npy": _read_npy}[kind](path, lazy)
    except InputError:
        raise
    except Exception as exc:  # each library raises its own kinds on corrupt files
        raise InputError(f"cannot read {path} as {kind.upper()} ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0][:120] if str(exc) else 'corrupt file'})") from None
    if image.array.size == 0:
        raise InputError(f"{path} holds no pixels (shape {tuple(image.array.shape)})")
    return image


def _read_tiff(path: Path, lazy: bool) -> ImageData:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        pixel = _tiff_pixel_size_nm(tif)
        array = None
        if lazy:
            try:
                array = tifffile.memmap(path, mode="r")
            except ValueError:  # compressed or non-contiguous: no memory map possible
                array = None
        if array is None:
            array = series.asarray()
    return ImageData(array, pixel, axes)


def _tiff_pixel_size_nm(tif) -> float | None:
    if tif.ome_metadata:
        match = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata)
        if match:
            unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', tif.ome_metadata)
            return float(match.group(1)) * _UNIT_TO_NM.get(unit.group(1) if unit else "µm", 1000.0)
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is not None:
        numerator, denominator = tag.value
        if numerator:
            per_unit = numerator / denominator
            unit = (tif.imagej_metadata or {}).get("unit", "")
            scale = _UNIT_TO_NM.get(unit) or {2: 2.54e7, 3: 1e7}.get(int(page.tags["ResolutionUnit"].value)
                                                                   if "ResolutionUnit" in page.tags else 0)
            if scale and per_unit > 0 and (tif.imagej_metadata or "ResolutionUnit" in page.tags):
                value = scale / per_unit
                if 0.1 < value < 1e5:  # a 72-dpi default is not a microscope's pixel
                    return value
    return None


def _read_mrc(path: Path, lazy: bool) -> ImageData:
    import mrcfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rDL data lack the MRC2014 map ID; permissive reads them
        if lazy:
            mrc = mrcfile.mmap(path, mode="r", permissive=True)  # stays open: the map is the data
            array, voxel = mrc.data, float(mrc.voxel_size.x)
        else:
            with mrcfile.open(path, permissive=True) as mrc:
                array, voxel = np.array(mrc.data), float(mrc.voxel_size.x)
    if array is None:
        raise InputError(f"{path} has an MRC header but no data")
    return ImageData(array, voxel / 10.0 if voxel > 0 else None, None)  # MRC voxel size is in Å


def _read_zarr(path: Path, lazy: bool) -> ImageData:
    import zarr

    array = zarr.open_array(str(path), mode="r")
    attrs = dict(array.attrs)
    return ImageData(array if lazy else array[...], attrs.get("pixel_size_nm"), attrs.get("axes"))


def _read_npy(path: Path, lazy: bool) -> ImageData:
    return ImageData(np.load(path, mmap_mode="r" if lazy else None), None, None)


def _temporary_sibling(path: Path, directory: bool = False) -> Path:
    # A hidden sibling on the same file system, so the final rename is atomic.
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(handle)
    return Path(name)


def _move_into_place(temp: Path, path: Path) -> None:
    if temp.is_dir():
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(temp, path)
    else:
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(temp, path)


def _remove(temp: Path) -> None:
    if temp.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        temp.unlink(missing_ok=True)


def tiff_metadata(axes: str | None, pixel_size_nm: float | None, ndim: int) -> dict:
    """OME metadata (axes, physical pixel size in nm) for tifffile."""
    metadata: dict = {"axes": axes or "TZYX"[4 - min(ndim, 4):] if ndim <= 4 else None}
    if axes:
        metadata["axes"] = axes
    if pixel_size_nm:
        metadata.update(PhysicalSizeX=float(pixel_size_nm), PhysicalSizeXUnit="nm",
                        PhysicalSizeY=float(pixel_size_nm), PhysicalSizeYUnit="nm")
    return {k: v for k, v in metadata.items() if v is not None}


def tiff_resolution(pixel_size_nm: float | None) -> dict:
    """Baseline TIFF resolution tags (pixels per cm), which Fiji and others read."""
    if not pixel_size_nm:
        return {}
    return {"resolution": (1e7 / pixel_size_nm, 1e7 / pixel_size_nm), "resolutionunit": "CENTIMETER"}


def write_image(path: str | Path, array: np.ndarray, *, pixel_size_nm: float | None = None,
                axes: str | None = None, overwrite: bool = False, dtype=None) -> Path:
    """Write an array with its pixel size, atomically (a hidden sibling renamed into place).

    TIFF files are written as OME-TIFF (BigTIFF beyond 2 GB); MRC stores the pixel size in Å;
    Zarr in the attributes ``pixel_size_nm`` and ``axes``. An existing ``path`` is an error unless
    ``overwrite``.
    """
    path = check_writable(path, overwrite)
    kind = image_format(path)
    array = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    temp = _temporary_sibling(path, directory=kind == "zarr")
    try:
        if kind == "tiff":
            import tifffile

            tifffile.imwrite(temp, array, ome=True, bigtiff=array.nbytes > BIGTIFF_BYTES,
                             metadata=tiff_metadata(axes, pixel_size_nm, array.ndim),
                             **tiff_resolution(pixel_size_nm))
        elif kind == "mrc":
            import mrcfile

            with mrcfile.new(temp, overwrite=True) as mrc:
                mrc.set_data(np.ascontiguousarray(array.astype(np.float32) if array.dtype == np.float64
                                                  else array))
                if pixel_size_nm:
                    mrc.voxel_size = pixel_size_nm * 10.0
        elif kind == "zarr":
            import zarr

            chunks = (1, *array.shape[1:]) if array.ndim >= 3 else array.shape
            store = zarr.create_array(store=str(temp), shape=array.shape, chunks=chunks,
                                      dtype=array.dtype, overwrite=True)
            store[...] = array
            store.attrs.update({"pixel_size_nm": pixel_size_nm, "axes": axes})
        else:
            with open(temp, "wb") as handle:
                np.save(handle, array)
        _move_into_place(temp, path)
    except BaseException:
        _remove(temp)
        raise
    return path
