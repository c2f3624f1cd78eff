"""Read and write images (TIFF, OME-TIFF, MRC, Zarr, NumPy) with their pixel size and axes kept."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from microsr.errors import InputError
from microsr.io.atomic import PartialOutput, check_writable
from microsr.io.ome_zarr import create_multiscale, read_multiscale, write_whole

SUPPORTED = "TIFF/OME-TIFF (.tif, .tiff, .ome.tif), MRC (.mrc), Zarr (.zarr) or NumPy (.npy)"
FORMAT_NAMES = {"tiff": "TIFF", "mrc": "MRC", "zarr": "Zarr", "npy": "NumPy"}
# Classic TIFF offsets are 32-bit; tifffile's own switch is at 4 GB, but several readers (ImageJ's
# plain opener among them) fail well before that, so go BigTIFF from ~2 GB with room for metadata.
BIGTIFF_BYTES = 2**31 - 2**25
# Keys are lower case; ImageJ writes micrometres as "micron" or the escaped "\u00B5m".
_UNIT_TO_NM = {"nm": 1.0, "nanometer": 1.0, "µm": 1e3, "μm": 1e3, "um": 1e3, "micron": 1e3,
               "microns": 1e3, "micrometer": 1e3, "\\u00b5m": 1e3, "mm": 1e6, "å": 0.1, "angstrom": 0.1,
               "pm": 1e-3}


@dataclass
class ImageData:
    """An array with what a microscopist needs to interpret it.

    Attributes
    ----------
    array : numpy.ndarray or array-like
        The pixels; with ``lazy=True`` a ``numpy.memmap`` or a Zarr array read when indexed.
    pixel_size_nm : float or None
        Lateral (X, Y) pixel size in nm; None when the file does not say.
    axes : str or None
        Axis letters as the file states them ("YX", "TYX", "ZYX", ...); None when unknown.
    z_step_nm : float or None
        Distance between planes (Z) in nm, where the file states one (OME ``PhysicalSizeZ``, the Zarr
        attribute ``voxel_size_nm``): the light-sheet z-step.
    pixel_size_note : str or None
        How the file's pixel size was read when it was not as the format says: a rule applied (an MRC
        header in µm) or a value refused as physically implausible (then ``pixel_size_nm`` is None).
        :func:`pixel_size_of` turns it into a warning or an error where the pixel size is needed.
    """

    array: Any
    pixel_size_nm: float | None = None
    axes: str | None = None
    pixel_size_note: str | None = None
    z_step_nm: float | None = None


def image_format(path: str | Path) -> str:
    """File kind from the name: ``"tiff"``, ``"mrc"``, ``"zarr"`` or ``"npy"``.

    Raises
    ------
    InputError
        For any other suffix, listing the supported formats.
    """
    name = str(path).lower().rstrip("/\\")
    for suffixes, kind in (((".tif", ".tiff"), "tiff"), ((".mrc",), "mrc"), ((".zarr",), "zarr"),
                           ((".npy",), "npy")):
        if name.endswith(suffixes):
            return kind
    raise InputError(f"{path}: unknown file type; use {SUPPORTED}")


# Fiji's menu paths, since that is where most users open and convert their images
SINGLE_CHANNEL_ADVICE = ("give single-channel fluorescence frames (in Fiji: Image > Type > 8-bit, or "
                         "Image > Color > Split Channels and save one channel)")


def colour_channels(shape) -> str | None:
    """``"RGB"`` or ``"RGBA"`` when the last axis of ``shape`` looks like colour channels, else None.

    A last axis of 3 or 4 beside an axis of at least 16 pixels is read as colour: no microscope
    frame is 3 or 4 pixels wide, but every RGB(A) TIFF (photographs, figures, images exported
    "as shown" from a viewer) is laid out so.

    Examples
    --------
    >>> colour_channels((512, 512, 3)), colour_channels((10, 256, 4)), colour_channels((9, 64, 64))
    ('RGB', 'RGBA', None)
    """
    shape = tuple(int(size) for size in shape)
    if len(shape) >= 2 and shape[-1] in (3, 4) and shape[-2] >= 16:
        return "RGB" if shape[-1] == 3 else "RGBA"
    return None


def check_finite(array, name: str = "image") -> None:
    """Refuse NaN or infinite values, which make every later number meaningless.

    Lazy arrays are checked a block of frames at a time, so a large stack is never loaded whole.

    Parameters
    ----------
    array : array-like
        Pixels to check; integer data are always finite and pass at once.
    name : str
        What the array is, for the message (e.g. "raw frames of time point 3").

    Raises
    ------
    InputError
        Saying how many values are NaN and how many infinite.
    """
    if not hasattr(array, "dtype"):
        array = np.asarray(array)
    if np.dtype(array.dtype).kind not in "fc":
        return
    nan = inf = 0
    for block in _blocks(array):
        not_finite = int(block.size - np.count_nonzero(np.isfinite(block)))
        if not_finite:
            nan_here = int(np.count_nonzero(np.isnan(block)))
            nan, inf = nan + nan_here, inf + not_finite - nan_here
    if nan or inf:
        raise InputError(f"{name} contains {nan} NaN and {inf} infinite value(s): replace them (e.g. with "
                         "the background level) or crop them away before processing")


def _blocks(array, block_bytes: int = 2**26):
    if isinstance(array, np.ndarray) and not isinstance(array, np.memmap) or np.ndim(array) < 3:
        yield np.asarray(array)
        return
    frame_bytes = max(1, math.prod(array.shape[1:]) * np.dtype(array.dtype).itemsize)
    step = max(1, block_bytes // frame_bytes)
    for start in range(0, array.shape[0], step):
        yield np.asarray(array[start:start + step])


def read_image(path: str | Path, *, lazy: bool = False) -> ImageData:
    """Read an image or stack with its pixel size; ``lazy=True`` leaves the pixels on disk.

    Parameters
    ----------
    path : str or Path
        A TIFF/OME-TIFF, MRC, Zarr array (a ``.zarr`` folder) or ``.npy`` file.
    lazy : bool
        Return a memory map (uncompressed TIFF, MRC, NumPy) or a Zarr array (Zarr, compressed
        TIFF), so that a stack of thousands of frames is read frame by frame. The file stays open
        as long as the array is referenced.

    Returns
    -------
    ImageData
        The array, the pixel size in nm (TIFF: OME ``PhysicalSizeX``, else ImageJ unit and
        resolution tags; MRC: voxel size; Zarr: attribute ``pixel_size_nm``; NumPy: None) and the
        axes where the file states them.

    Raises
    ------
    InputError
        If the file is missing, of an unknown type, unreadable, or holds no pixels.

    Examples
    --------
    >>> image = read_image("raw.tif", lazy=True)  # doctest: +SKIP
    >>> first_frame = np.asarray(image.array[0])  # doctest: +SKIP
    """
    path = Path(path)
    kind = image_format(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path")
    readers = {"tiff": _read_tiff, "mrc": _read_mrc, "zarr": _read_zarr, "npy": _read_npy}
    label = FORMAT_NAMES[kind]
    try:
        image = readers[kind](path, lazy)
    except InputError:
        raise
    except Exception as exc:  # each library raises its own kinds on damaged files
        reason = str(exc).splitlines()[0][:100] if str(exc).strip() else "damaged file"
        raise InputError(f"cannot read {path} as {label} ({type(exc).__name__}: {reason}): check that it "
                         f"is a complete {label} file, or export it again") from None
    if image.array.size == 0:
        raise InputError(f"{path} holds no pixels (shape {tuple(image.array.shape)}): check the "
                         "acquisition or the export that wrote it")
    if image.pixel_size_nm is not None and not _plausible(image.pixel_size_nm):
        image = dataclasses.replace(image, pixel_size_nm=None, pixel_size_note=(
            f"{path} states a pixel size of {image.pixel_size_nm:g} nm, outside what any microscope image has "
            f"({PLAUSIBLE_PIXEL_NM[0]:g} nm to {PLAUSIBLE_PIXEL_NM[1] / 1000:g} µm; a unit written wrong?): "
            "pass --pixel-size-nm"))
    if image.z_step_nm is not None and not _plausible(image.z_step_nm):
        image = dataclasses.replace(image, z_step_nm=None, pixel_size_note=image.pixel_size_note or (
            f"{path} states a z-step of {image.z_step_nm:g} nm, outside what any microscope stack has "
            f"({PLAUSIBLE_PIXEL_NM[0]:g} nm to {PLAUSIBLE_PIXEL_NM[1] / 1000:g} µm; a unit written wrong?): it is "
            "not used"))
    return image


#: Pixel sizes (nm, in the sample) any image may have: from a finely rendered localization image to a
#: coarse light-sheet plane step. A file value outside is a unit error, never used.
PLAUSIBLE_PIXEL_NM = (1.0, 5000.0)

#: Pixel sizes (nm) of a camera in the sample plane: 100× to 20× objectives on 6.5–13 µm camera pixels,
#: with binning. A raw frame outside was read or typed in the wrong unit.
CAMERA_PIXEL_NM = (20.0, 500.0)


def _plausible(pixel_size_nm: float, bounds: tuple[float, float] = PLAUSIBLE_PIXEL_NM) -> bool:
    return bounds[0] <= pixel_size_nm <= bounds[1]


def mrc_pixel_size_nm(header_value: float) -> tuple[float | None, str | None]:
    """The pixel size (nm) an MRC header's voxel size means, and a note when a rule other than the standard's applied.

    The MRC standard gives the voxel size in Å. Some writers (the rDL SIM authors' files among them) put
    the pixel size in µm there: 0.0626 means 62.6 nm, which read as Å would be 0.00626 nm. The rule:
    take Å when that gives a plausible image pixel (:data:`PLAUSIBLE_PIXEL_NM`); else take µm when that
    does, and say so; else the value is refused (``None`` with a note). 0 is the format's "not set".

    Examples
    --------
    >>> mrc_pixel_size_nm(626.0)
    (62.6, None)
    >>> value, note = mrc_pixel_size_nm(0.0626)
    >>> round(value, 3), note.split(":")[0]
    (62.6, 'the MRC header gives 0.0626 as the voxel size')
    >>> mrc_pixel_size_nm(0.0)
    (None, None)
    """
    if not header_value > 0:
        return None, None
    as_angstrom, as_micrometre = header_value / 10.0, header_value * 1000.0
    if _plausible(as_angstrom):
        return as_angstrom, None
    if _plausible(as_micrometre):
        return as_micrometre, (f"the MRC header gives {header_value:g} as the voxel size: read as µm "
                               f"({as_micrometre:g} nm), since the standard's Å would mean {as_angstrom:g} nm, "
                               "which no microscope image has; pass --pixel-size-nm if that is wrong")
    return None, (f"the MRC header's voxel size {header_value:g} fits no unit (Å: {as_angstrom:g} nm, µm: "
                  f"{as_micrometre:g} nm): pass --pixel-size-nm")


def pixel_size_of(image: ImageData, given_nm: float | None, path, *, camera: bool = False) -> float | None:
    """The pixel size to use: ``given_nm`` (a flag) wins; else the file's, with its note as a warning, or the
    note as the error when the file's value was refused.

    With ``camera=True`` the value must be a camera pixel in the sample (:data:`CAMERA_PIXEL_NM`), as raw
    SIM frames and widefield inputs are: anything else was typed or stored in the wrong unit.

    Raises
    ------
    InputError
        A refused file value (and no flag), or a camera pixel size outside :data:`CAMERA_PIXEL_NM`.
    """
    if given_nm is not None:
        pixel, origin = float(given_nm), "--pixel-size-nm"
    else:
        if image.pixel_size_nm is None and image.pixel_size_note:
            raise InputError(image.pixel_size_note)
        if image.pixel_size_note:
            warnings.warn(image.pixel_size_note, PixelSizeWarning, stacklevel=2)
        pixel, origin = image.pixel_size_nm, f"the pixel size read from {path}"
    if pixel is not None and camera and not _plausible(pixel, CAMERA_PIXEL_NM):
        raise InputError(f"{origin}, {pixel:g} nm, is not a camera pixel in the sample (those are "
                         f"{CAMERA_PIXEL_NM[0]:g}–{CAMERA_PIXEL_NM[1]:g} nm): give --pixel-size-nm in nm "
                         "(e.g. 62.6 for a 6.5-µm camera pixel behind a 100× objective and 1.04× relay)")
    return pixel


class PixelSizeWarning(UserWarning):
    """A pixel size was read from a file by a rule other than the format's: worth a look."""


def _read_tiff(path: Path, lazy: bool) -> ImageData:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        pixel_size_nm, note = _tiff_pixel_size_nm(tif)
        z_step_nm = ome_physical_sizes_nm(tif.ome_metadata).get("z")
        array = None if lazy else series.asarray()
    if lazy:
        try:
            array = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or scattered strips cannot be mapped; Zarr decodes per chunk
            import zarr

            array = zarr.open_array(tifffile.imread(path, aszarr=True), mode="r")
    return ImageData(array, pixel_size_nm, axes, z_step_nm=z_step_nm, pixel_size_note=note)


def ome_physical_sizes_nm(ome_metadata: str | None) -> dict:
    """``{"x", "y", "z"}`` physical sizes in nm of the first image of OME-XML (those it states; µm when no
    unit is given, as OME says), parsed by tifffile; a unit that is no length is left out.

    Examples
    --------
    >>> ome_physical_sizes_nm('<OME><Image><Pixels PhysicalSizeX="0.065" PhysicalSizeY="0.065" '
    ...                       'PhysicalSizeZ="200" PhysicalSizeZUnit="nm"/></Image></OME>')
    {'x': 65.0, 'y': 65.0, 'z': 200.0}
    """
    if not ome_metadata:
        return {}
    try:
        ome = tifffile.xml2dict(ome_metadata).get("OME", {})
    except Exception:  # noqa: BLE001 — malformed OME-XML: no sizes, as if there were none
        return {}
    image = ome.get("Image", {})
    image = image[0] if isinstance(image, list) else image
    pixels = image.get("Pixels", {}) if isinstance(image, dict) else {}
    sizes = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        scale = _UNIT_TO_NM.get(str(pixels.get(f"PhysicalSize{axis}Unit", "µm")).strip().lower())
        if value is not None and scale:
            sizes[axis.lower()] = float(value) * scale
    return sizes


def _tiff_pixel_size_nm(tif) -> tuple[float | None, str | None]:
    """Pixel size from OME metadata (X, else Y; a note when they differ), else from ImageJ's unit with the
    resolution tag, else None."""
    sizes = ome_physical_sizes_nm(tif.ome_metadata)
    if "x" in sizes or "y" in sizes:
        x, y = sizes.get("x", sizes.get("y")), sizes.get("y", sizes.get("x"))
        note = None
        if abs(x / y - 1.0) > 0.01:
            note = (f"the OME metadata gives rectangular pixels (X {x:g} nm, Y {y:g} nm): microsr assumes square "
                    f"pixels and uses X; resample the image to square pixels if Y matters")
        return x, note
    unit_nm = _UNIT_TO_NM.get(str((tif.imagej_metadata or {}).get("unit", "")).strip().lower())
    resolution = tif.pages[0].tags.get("XResolution")
    if unit_nm and resolution is not None and resolution.value[0]:
        pixels_per_unit = resolution.value[0] / resolution.value[1]
        return unit_nm / pixels_per_unit, None
    return None, None


def _read_mrc(path: Path, lazy: bool) -> ImageData:
    import mrcfile  # on first use: ~0.09 s of every command's start-up, and most runs read no MRC file

    with warnings.catch_warnings():
        # Files from the rDL-SIM release lack the MRC2014 map ID and machine stamp; permissive mode
        # reads them and would otherwise warn on every open.
        warnings.simplefilter("ignore")
        if lazy:
            mrc = mrcfile.mmap(path, mode="r", permissive=True)  # stays open: the map is the data
            array, voxel_a = mrc.data, float(mrc.voxel_size.x)
        else:
            with mrcfile.open(path, permissive=True) as mrc:
                array = None if mrc.data is None else np.array(mrc.data)
                voxel_a = float(mrc.voxel_size.x)
    if array is None:
        raise InputError(f"{path} has an MRC header but no readable data: the file is truncated; copy or "
                         "export it again")
    pixel, note = mrc_pixel_size_nm(voxel_a)
    return ImageData(array, pixel, None, note)


def _read_zarr(path: Path, lazy: bool) -> ImageData:
    # Imported for Zarr input only: zarr takes ~0.8 s to import (measured on the 2-core machines), which
    # every TIFF job would otherwise pay.
    import zarr

    node = zarr.open(str(path), mode="r")
    if not isinstance(node, zarr.Array):
        try:
            array, axes, pixel, z_step, note = read_multiscale(node)
        except (KeyError, IndexError, TypeError):
            raise InputError(f"{path} is a Zarr group, not an array nor an OME-Zarr image: give the path of the array "
                             f"inside it (e.g. {path / '0'})") from None
        return ImageData(array if lazy else array[...], pixel, axes, z_step_nm=z_step, pixel_size_note=note)
    attrs = dict(node.attrs)
    pixel_size_nm = attrs.get("pixel_size_nm")
    voxel = attrs.get("voxel_size_nm")
    z_step = float(voxel[0]) if isinstance(voxel, (list, tuple)) and len(voxel) == 3 else None
    if pixel_size_nm is None and z_step is not None:
        pixel_size_nm = voxel[-1]
    return ImageData(node if lazy else node[...], None if pixel_size_nm is None else float(pixel_size_nm),
                     attrs.get("axes"), z_step_nm=z_step)


def _read_npy(path: Path, lazy: bool) -> ImageData:
    return ImageData(np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False), None, None)


def check_pixel_size(pixel_size_nm: float | None) -> float | None:
    """``pixel_size_nm`` as a float, or None; zero, negative or non-finite sizes are refused."""
    if pixel_size_nm is None:
        return None
    value = float(pixel_size_nm)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"pixel size {pixel_size_nm} nm is not a positive number: pass the camera pixel "
                         "size in the sample in nm (e.g. 62.6)")
    return value


#: the namespace of the map annotation that holds a written image's notes (:func:`write_image`)
NOTES_NAMESPACE = "microsr"


def tiff_metadata(axes: str | None, pixel_size_nm: float | None, ndim: int, z_step_nm: float | None = None,
                  notes: dict | None = None) -> dict:
    """OME metadata for tifffile: axes, the physical pixel size (and z-step) in nm, and ``notes`` as an OME
    map annotation (key–value pairs that OMERO, Fiji's OME reader and ``tifffile`` show; values as JSON)."""
    metadata: dict = {}
    if notes:
        metadata["MapAnnotation"] = {"Namespace": NOTES_NAMESPACE,
                                     **{key: json.dumps(value) for key, value in notes.items()}}
    if axes:
        metadata["axes"] = axes
    elif ndim <= 4:
        # ImageJ's convention for an unlabelled stack; tifffile alone would call a 3-D stack channels
        metadata["axes"] = "TZYX"[-ndim:]
    if pixel_size_nm:
        metadata.update(PhysicalSizeX=float(pixel_size_nm), PhysicalSizeXUnit="nm",
                        PhysicalSizeY=float(pixel_size_nm), PhysicalSizeYUnit="nm")
    if z_step_nm:
        metadata.update(PhysicalSizeZ=float(z_step_nm), PhysicalSizeZUnit="nm")
    return metadata


def zarr_attributes(axes: str | None, pixel_size_nm: float | None, z_step_nm: float | None = None,
                    notes: dict | None = None) -> dict:
    """microsr's own attributes of a Zarr image, beside the NGFF metadata: what readers of plain Zarr arrays
    (microsr before OME-Zarr) look for, and the notes."""
    return {"pixel_size_nm": pixel_size_nm, "axes": axes,
            **({"voxel_size_nm": [z_step_nm, pixel_size_nm, pixel_size_nm]} if z_step_nm and pixel_size_nm else {}),
            **({"microsr": notes} if notes else {})}


def tiff_resolution(pixel_size_nm: float | None) -> dict:
    """Baseline TIFF resolution tags (pixels per cm), for readers that ignore OME metadata."""
    if not pixel_size_nm:
        return {}
    return {"resolution": (1e7 / pixel_size_nm, 1e7 / pixel_size_nm), "resolutionunit": "CENTIMETER"}


def _check_axes(axes: str | None, ndim: int) -> None:
    if axes is not None and len(axes) != ndim:
        raise ValueError(f"axes {axes!r} name {len(axes)} axes but the array has {ndim}")


# mrcfile stores only int8, int16, uint8, uint16, float16, float32 and complex64.
_MRC_DTYPES = {np.dtype(np.float64): np.float32, np.dtype(np.complex128): np.complex64,
               np.dtype(np.bool_): np.uint8, np.dtype(np.int32): np.float32, np.dtype(np.uint32): np.float32,
               np.dtype(np.int64): np.float32, np.dtype(np.uint64): np.float32}


def write_image(path: str | Path, array, *, pixel_size_nm: float | None = None, axes: str | None = None,
                overwrite: bool = False, dtype=None, z_step_nm: float | None = None,
                notes: dict | None = None) -> Path:
    """Write an array with its pixel size, atomically.

    The data go to a hidden ``.<name>.<host>-<pid>-<random>.partial`` sibling that is renamed
    onto ``path`` only when complete, so a crash never leaves a half-written file under the real
    name; an exception deletes it, and stale ones left by killed writers are deleted first (see
    :class:`microsr.io.atomic.PartialOutput`).

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``/``.ome.tif`` (always written as OME-TIFF, BigTIFF beyond ~2 GB),
        ``.mrc`` (at most 3-D; pixel size as voxel size in Å; float64 and wide integers are stored
        as float32), ``.zarr`` (OME-Zarr, NGFF 0.5: a pyramid halved in-plane down to 512 px, axes with
        types and nm units, one chunk per plane; see :mod:`microsr.io.ome_zarr`) or
        ``.npy`` (no metadata). Missing parent folders are created when writing starts, and
        removed again if writing fails.
    array : array-like
        The pixels; a lazy array is loaded whole (stream large stacks with
        :class:`microsr.io.StackWriter`).
    pixel_size_nm : float, optional
        Lateral pixel size in nm.
    axes : str, optional
        One letter per axis, e.g. "TYX"; unlabelled TIFF stacks are written as "ZYX".
    overwrite : bool
        Replace an existing ``path``; otherwise that is an error.
    dtype : numpy dtype, optional
        Convert to this type before writing.
    z_step_nm : float, optional
        Distance between the planes of a Z axis, in nm: OME ``PhysicalSizeZ``; in Zarr the attribute
        ``voxel_size_nm`` (z, y, x) beside ``pixel_size_nm``.
    notes : dict, optional
        What a reader of the image must know about how it was made (e.g. an input check's findings),
        JSON-serializable: an OME map annotation (namespace :data:`NOTES_NAMESPACE`, values as JSON) in
        TIFF, the attribute ``microsr`` in Zarr; MRC and NPY cannot hold them.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    InputError
        For an unknown suffix, a non-positive pixel size, or more than 3 dimensions for MRC.
    """
    kind = image_format(path)
    pixel_size_nm = check_pixel_size(pixel_size_nm)
    z_step_nm = check_pixel_size(z_step_nm)
    array = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    _check_axes(axes, array.ndim)
    if kind == "mrc" and array.ndim > 3:
        raise InputError(f"{path}: MRC holds at most 3-D data, this array is {array.ndim}-D "
                         f"{array.shape}: write .tif or .zarr instead")
    path = check_writable(path, overwrite)
    with PartialOutput(path, directory=kind == "zarr") as partial:
        temp = partial.temp
        if kind == "tiff":
            tifffile.imwrite(temp, array, ome=True, bigtiff=array.nbytes > BIGTIFF_BYTES,
                             metadata=tiff_metadata(axes, pixel_size_nm, array.ndim, z_step_nm, notes),
                             **tiff_resolution(pixel_size_nm))
        elif kind == "mrc":
            import mrcfile

            with mrcfile.new(temp, overwrite=True) as mrc:
                mrc.set_data(np.ascontiguousarray(array, dtype=_MRC_DTYPES.get(array.dtype, array.dtype)))
                if pixel_size_nm:
                    mrc.voxel_size = pixel_size_nm * 10.0
        elif kind == "zarr":
            levels = create_multiscale(temp, array.shape, array.dtype, axes, pixel_size_nm=pixel_size_nm,
                                       z_step_nm=z_step_nm,
                                       attributes=zarr_attributes(axes, pixel_size_nm, z_step_nm, notes))
            write_whole(levels, array)
        else:
            with open(temp, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
        partial.publish()
    return path


def image_notes(path: str | Path) -> dict:
    """The notes :func:`write_image` or :class:`~microsr.io.StackWriter` stored with an image (``{}`` if none).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "sr.tif"
    >>> _ = write_image(path, np.zeros((4, 4), np.float32), notes={"input_check": []})
    >>> image_notes(path)
    {'input_check': []}
    """
    path = Path(path)
    kind = image_format(path)
    if kind == "zarr":
        import zarr

        return dict(zarr.open(str(path), mode="r").attrs.get("microsr") or {})
    if kind != "tiff":
        return {}
    import xml.etree.ElementTree as ElementTree

    with tifffile.TiffFile(path) as tif:
        ome = tif.ome_metadata
    if not ome:
        return {}
    notes = {}
    for annotation in ElementTree.fromstring(ome).iter():
        if annotation.tag.endswith("MapAnnotation") and annotation.get("Namespace") == NOTES_NAMESPACE:
            for entry in annotation.iter():
                if entry.tag.endswith("}M") or entry.tag == "M":
                    notes[entry.get("K")] = json.loads(entry.text or "null")
    return notes
