"""Stream stacks: open lazily, write frame blocks one after another, finish atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microsr.errors import InputError
from microsr.io.atomic import check_writable
from microsr.io.images import (ImageData, _move_into_place, _remove, _temporary_sibling, image_format,
                               read_image, tiff_metadata, tiff_resolution)


def open_stack(path: str | Path) -> ImageData:
    """A stack mapped from disk (TIFF, MRC, NumPy) or a Zarr array: frames are read when indexed."""
    return read_image(path, lazy=True)


class StackWriter:
    """Write a stack of known shape block by block to TIFF (BigTIFF) or Zarr; rename into place at the end.

    Use as a context manager. If the block loop raises, the temporary output is removed and the
    target is untouched: nothing is half-written.

    Examples
    --------
    >>> with StackWriter("out.zarr", (100, 512, 512), pixel_size_nm=31.3) as out:  # doctest: +SKIP
    ...     for block in blocks:
    ...         out.write(block)
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype="float32", *,
                 pixel_size_nm: float | None = None, axes: str | None = None, overwrite: bool = False):
        self.path = check_writable(path, overwrite)
        self.kind = image_format(self.path)
        if self.kind not in ("tiff", "zarr"):
            raise InputError(f"{self.path}: stacks stream to TIFF (.tif) or Zarr (.zarr), not {self.kind}")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.pixel_size_nm = pixel_size_nm
        self.axes = axes
        self.written = 0
        self._temp: Path | None = None
        self._handle = None

    def __enter__(self) -> "StackWriter":
        self._temp = _temporary_sibling(self.path, directory=self.kind == "zarr")
        if self.kind == "zarr":
            import zarr

            self._handle = zarr.create_array(store=str(self._temp), shape=self.shape,
                                             chunks=(1, *self.shape[1:]), dtype=self.dtype, overwrite=True)
            self._handle.attrs.update({"pixel_size_nm": self.pixel_size_nm, "axes": self.axes})
        else:
            import tifffile

            nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
            # An empty contiguous TIFF mapped into memory: blocks go straight to their place on disk.
            self._handle = tifffile.memmap(self._temp, shape=self.shape, dtype=self.dtype, ome=True,
                                           bigtiff=nbytes > 2**31 - 2**25,
                                           metadata=tiff_metadata(self.axes, self.pixel_size_nm, len(self.shape)),
                                           **tiff_resolution(self.pixel_size_nm))
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (shape ``(n, *shape[1:])``) along the first axis."""
        block = np.asarray(block, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:] or self.written + block.shape[0] > self.shape[0]:
            raise ValueError(f"block {block.shape} does not fit stack {self.shape} at frame {self.written}")
        self._handle[self.written:self.written + block.shape[0]] = block
        self.written += block.shape[0]

    def __exit__(self, exc_type, exc, traceback) -> bool:
        try:
            if self.kind == "tiff" and self._handle is not None:
                self._handle.flush()
                del self._handle
            if exc_type is None and self.written != self.shape[0]:
                raise RuntimeError(f"stack writer got {self.written} of {self.shape[0]} frames")
            if exc_type is None:
                _move_into_place(self._temp, self.path)
        except BaseException:
            _remove(self._temp)
            raise
        if exc_type is not None:
            _remove(self._temp)
        return False
