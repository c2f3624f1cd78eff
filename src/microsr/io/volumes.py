"""Lazy (T, Z, Y, X) volume time series: Zarr arrays, folders of TIFF volumes, 4-D files; stacks being written.

Stacks being written
--------------------
Training on a stack that another program is still filling would read half-written volumes.
:func:`open_volume_stack` therefore refuses a stack that carries the *writing marker*:

- a Zarr array whose attributes hold ``"microsr_writing": true`` (``.zattrs`` in Zarr v2,
  ``zarr.json`` in v3), or
- a folder (a folder of TIFF volumes, or a Zarr store) holding a file named ``.writing``.

An acquisition or conversion script sets the marker before its first volume and removes it after the
last. (:class:`microsr.io.StackWriter` needs none: it writes to a hidden ``.partial`` sibling and
renames the finished stack into place.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import tifffile

from microsr.errors import InputError
from microsr.io.stack import open_stack

#: Axes of every stack this module opens: time points, planes, rows, columns.
AXES = "TZYX"

#: Zarr attribute that marks a stack as still being written (see the module docstring).
WRITING_ATTRIBUTE = "microsr_writing"

#: File whose presence in a folder marks its stack as still being written.
WRITING_FILE = ".writing"

#: Volume files a folder stack is made of, one (Z, Y, X) volume per time point.
TIFF_SUFFIXES = (".tif", ".tiff")

_OPEN_VOLUMES = 8


def _natural_key(name: str):
    # Time points are often numbered without zero padding ("t2", "t10"): compare numbers as numbers.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class TiffVolumeSeries:
    """A folder of TIFF volumes, one ``(Z, Y, X)`` file per time point, seen as one ``(T, Z, Y, X)`` array.

    Only the headers are read when the series is made; a volume's pixels are read when indexed, and
    only the indexed region of it where the file allows (uncompressed TIFFs are memory-mapped).

    Parameters
    ----------
    files : sequence of Path
        The volumes in time order, all of one shape and type (checked by :func:`open_volume_stack`).
    shape : (int, int, int, int)
        ``(T, Z, Y, X)``.
    dtype : numpy dtype
        Type of the pixels on disk.
    """

    ndim = 4

    def __init__(self, files, shape: tuple[int, int, int, int], dtype):
        self.files = tuple(Path(f) for f in files)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def volume(self, t: int):
        """The lazy ``(Z, Y, X)`` array of time point ``t``."""
        if t not in self._open:
            if len(self._open) >= _OPEN_VOLUMES:
                # Each open volume holds a file handle or map; a long series would exhaust them.
                self._open.pop(next(iter(self._open)))
            self._open[t] = open_stack(self.files[t]).array
        return self._open[t]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, slice):
            volumes = [np.asarray(self.volume(t)[rest]) for t in range(*first.indices(self.shape[0]))]
            if not volumes:
                raise IndexError(f"time slice {first} selects no time point of a series of {self.shape[0]}")
            return np.stack(volumes)
        t = int(first)
        if not -self.shape[0] <= t < self.shape[0]:
            raise IndexError(f"time point {t} is outside a series of {self.shape[0]}")
        return np.asarray(self.volume(t % self.shape[0])[rest])

    def __array__(self, dtype=None, copy=None):
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def __getstate__(self):
        # Open maps and file handles stay in the process that opened them; a worker reopens its own.
        return {**self.__dict__, "_open": {}}


def _check_not_being_written(path: Path, attrs=None) -> None:
    marked = (path / WRITING_FILE).exists() if path.is_dir() else False
    if attrs is not None and bool(attrs.get(WRITING_ATTRIBUTE, False)):
        marked = True
    # Read from the metadata files themselves, before the store is opened: a store being written may
    # not open yet. Zarr v2 keeps attributes in .zattrs, v3 under "attributes" in zarr.json.
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        if marked or not (path / name).is_file():
            continue
        try:
            metadata = json.loads((path / name).read_text())
            attributes = metadata.get(key, {}) if key else metadata
            marked = bool(attributes.get(WRITING_ATTRIBUTE, False))
        except (OSError, ValueError, AttributeError):
            pass
    if marked:
        raise InputError(f"{path} is marked as being written (attribute {WRITING_ATTRIBUTE!r} = true or a "
                         f"{WRITING_FILE!r} file): wait until the acquisition or conversion has finished and "
                         "removed the marker, or train on a finished copy")


def check_volume_axes(shape, where: Path, axes: str | None = None) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        hint = (" A single volume (Z, Y, X) has no time axis: save the time series as one 4-D stack or a "
                "folder of volumes." if len(shape) == 3 else "")
        raise InputError(f"{where}: stack of shape {shape} is not 4-D: expected axes (T, Z, Y, X), time "
                         f"points, planes, rows, columns.{hint}")
    if axes and sorted(axes.upper()) == sorted(AXES) and axes.upper() != AXES:
        raise InputError(f"{where}: stack of shape {shape} has axes {axes!r}: expected axes (T, Z, Y, X); "
                         "transpose it to that order before training")
    if min(shape) < 1:
        raise InputError(f"{where}: stack of shape {shape} is empty along an axis: expected (T, Z, Y, X) "
                         "with at least one of each")
    return shape


def _tiff_folder(folder: Path) -> TiffVolumeSeries:
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(TIFF_SUFFIXES)
                    and not p.name.startswith(".")), key=lambda p: _natural_key(p.name))
    if not files:
        raise InputError(f"{folder} holds no TIFF volumes ({', '.join(TIFF_SUFFIXES)}): give a Zarr store or a "
                         "folder with one (Z, Y, X) TIFF per time point")
    shapes, dtypes = [], []
    for file in files:
        try:
            with tifffile.TiffFile(file) as tif:
                series = tif.series[0]
                shapes.append(tuple(int(s) for s in series.shape))
                dtypes.append(np.dtype(series.dtype))
        except Exception as exc:  # tifffile raises its own kinds on damaged files
            reason = str(exc).splitlines()[0][:100] if str(exc).strip() else "damaged file"
            raise InputError(f"cannot read {file} as TIFF ({type(exc).__name__}: {reason}): check that it is "
                             "a complete TIFF volume, or export it again") from None
    for file, shape in zip(files, shapes):
        if len(shape) != 3:
            raise InputError(f"{file}: volume of shape {shape} is not 3-D: each file of a folder holds one "
                             "(Z, Y, X) volume, so that the folder is a (T, Z, Y, X) stack")
    for file, shape in zip(files, shapes):
        if shape != shapes[0]:
            raise InputError(f"TIFF volumes in {folder} differ in shape: {files[0].name} is {shapes[0]} but "
                             f"{file.name} is {shape} (Z, Y, X); every time point needs the same volume size")
    dtype = np.result_type(*dtypes)
    return TiffVolumeSeries(files, (len(files), *shapes[0]), dtype)


def open_volume_stack(path: str | Path):
    """Open a lattice light-sheet time series as a lazy ``(T, Z, Y, X)`` array, reading no pixels yet.

    Parameters
    ----------
    path : str or Path
        A Zarr array (a ``.zarr`` folder, or any folder holding ``zarr.json`` or ``.zarray``); a folder
        of TIFF volumes, one ``(Z, Y, X)`` file per time point, in time order when sorted by name
        (numbers compared as numbers: ``t2`` before ``t10``); or one 4-D file that
        :func:`microsr.io.read_image` reads (TIFF, MRC, NumPy).

    Returns
    -------
    array-like
        Indexable like a NumPy array and with ``.shape`` ``(T, Z, Y, X)``: a Zarr array, a memory map,
        or a :class:`TiffVolumeSeries`. Indexing reads only what is asked for.

    Raises
    ------
    InputError
        A path that does not exist; a stack marked as being written (see the module docstring); a stack
        that is not 4-D or whose stated axes are not in (T, Z, Y, X) order (the message shows the
        shape); a folder without TIFFs or with TIFFs of different shapes; an unreadable file.

    Examples
    --------
    >>> stack = open_volume_stack("golgi.zarr")  # doctest: +SKIP
    >>> stack.shape, stack[3, 10:14, :64, :64].shape  # doctest: +SKIP
    ((200, 101, 512, 512), (4, 64, 64))
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path")
    if path.is_dir():
        _check_not_being_written(path)
        is_zarr = path.name.lower().rstrip("/").endswith(".zarr") or (path / "zarr.json").is_file() \
            or (path / ".zarray").is_file()
        if not is_zarr:
            series = _tiff_folder(path)
            return series
        if path.name.lower().endswith(".zarr"):
            image = open_stack(path)
            array, axes = image.array, image.axes
        else:
            import zarr

            try:
                array = zarr.open_array(str(path), mode="r")
            except Exception as exc:  # zarr raises its own kinds on damaged stores
                raise InputError(f"cannot read {path} as a Zarr array ({type(exc).__name__}): check that it is "
                                 "a complete Zarr array, not a group") from None
            axes = dict(array.attrs).get("axes")
        _check_not_being_written(path, getattr(array, "attrs", None))
    else:
        image = open_stack(path)
        array, axes = image.array, image.axes
    check_volume_axes(array.shape, path, axes if isinstance(axes, str) else None)
    return array


def stack_metadata(stack) -> dict:
    """What a stack opened by :func:`open_volume_stack` states about its sampling: ``voxel_size_nm`` (z, y, x),
    ``pixel_size_nm`` and ``time_step_s``, those it has (Zarr attributes, or the first TIFF volume's pixel size)."""
    attrs = dict(getattr(stack, "attrs", {}) or {})
    found = {key: attrs[key] for key in ("voxel_size_nm", "pixel_size_nm", "time_step_s") if key in attrs}
    if not found and hasattr(stack, "files"):
        pixel = open_stack(stack.files[0]).pixel_size_nm
        if pixel:
            found["pixel_size_nm"] = pixel
    return found


def stated_sampling_nm(metadata: dict) -> tuple[float | None, float | None]:
    """(z-step, lateral pixel) in nm from :func:`stack_metadata`, each ``None`` where the stack does not say it
    in a form that can be trusted.

    ``voxel_size_nm`` counts only as three positive numbers (z, y, x); otherwise ``pixel_size_nm`` gives the
    lateral pixel. Attributes written by other programs come in many forms (a scalar, a dict, two
    numbers): one that is not understood is ignored here rather than read wrongly.

    Examples
    --------
    >>> stated_sampling_nm({"voxel_size_nm": [200, 92.6, 92.6]})
    (200.0, 92.6)
    >>> stated_sampling_nm({"voxel_size_nm": {"z": 200}, "pixel_size_nm": 92.6})
    (None, 92.6)
    """
    def positive(value) -> float | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if number > 0 and number == number and number != float("inf") else None

    voxel = metadata.get("voxel_size_nm")
    if isinstance(voxel, (list, tuple)) and len(voxel) == 3 and all(positive(v) for v in voxel):
        return positive(voxel[0]), positive(voxel[1])
    return None, positive(metadata.get("pixel_size_nm"))
