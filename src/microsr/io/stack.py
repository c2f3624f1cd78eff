"""Stream stacks: open them lazily, write them block by block, publish them atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from microsr.errors import InputError
from microsr.io.atomic import PartialOutput, check_writable
from microsr.io.images import (BIGTIFF_BYTES, ImageData, check_pixel_size, image_format, read_image, tiff_metadata,
                               tiff_resolution, zarr_attributes)
from microsr.io.ome_zarr import create_multiscale, write_block


def open_stack(path: str | Path) -> ImageData:
    """Open a stack without loading it: ``read_image(path, lazy=True)``.

    Returns
    -------
    ImageData
        A memory map (uncompressed TIFF, MRC, NumPy) or a Zarr array (Zarr, compressed TIFF);
        frames are read from disk when indexed.
    """
    return read_image(path, lazy=True)


class StackWriter:
    """Write a stack of known shape block by block to TIFF or Zarr, then rename it into place.

    Frames go to a hidden ``.<name>.<host>-<pid>-<random>.partial`` sibling (a
    :class:`microsr.io.atomic.PartialOutput`): a contiguous OME-TIFF (BigTIFF beyond ~2 GB) mapped
    into memory, or a Zarr array with one chunk per frame. Leaving the ``with`` block normally
    checks that every frame was written and renames the result onto ``path``; leaving it by an
    exception deletes the partial output and any folder made for it, so nothing half-written is
    left. Entering the block deletes stale partials of ``path`` left by killed writers, and a
    SIGTERM runs the same cleanup once :func:`microsr.io.atomic.terminate_as_interrupt` is called.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``/``.ome.tif`` or ``.zarr`` output.
    shape : tuple of int
        Shape of the whole stack, frames first, e.g. ``(T, Y, X)``.
    dtype : numpy dtype
        Type stored on disk; blocks are converted to it.
    pixel_size_nm : float, optional
        Lateral pixel size in nm, stored as OME ``PhysicalSizeX/Y`` or the Zarr attribute.
    axes : str, optional
        One letter per axis, e.g. "TYX".
    overwrite : bool
        Replace an existing ``path`` (only once the new stack is complete).

    Raises
    ------
    OutputExistsError
        In the constructor, before anything is created, if ``path`` exists and not ``overwrite``.
    InputError
        In the constructor, for a path that cannot be written (see
        :func:`microsr.io.atomic.check_writable`); missing folders are created on entering.

    Examples
    --------
    >>> with StackWriter("sr.zarr", (100, 512, 512), pixel_size_nm=31.3, axes="TYX") as out:  # doctest: +SKIP
    ...     for block in blocks:
    ...         out.write(block)
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype="float32", *,
                 pixel_size_nm: float | None = None, axes: str | None = None, overwrite: bool = False,
                 notes: dict | None = None):
        kind = image_format(path)
        if kind not in ("tiff", "zarr"):
            raise InputError(f"{path}: stacks are streamed to TIFF (.tif) or Zarr (.zarr), not "
                             f"{kind.upper()}: choose a .tif or .zarr output")
        self.shape = tuple(int(size) for size in shape)
        if not self.shape or min(self.shape) < 1:
            raise ValueError(f"stack shape {shape} must have at least one axis and no empty axis")
        if axes is not None and len(axes) != len(self.shape):
            raise ValueError(f"axes {axes!r} name {len(axes)} axes but the stack shape {self.shape} has "
                             f"{len(self.shape)}")
        self.pixel_size_nm = check_pixel_size(pixel_size_nm)
        self.path = check_writable(path, overwrite)
        self.kind = kind
        self.dtype = np.dtype(dtype)
        self.axes = axes
        self.notes = notes  # as write_image's: an OME map annotation in TIFF, the attribute "microsr" in Zarr
        self.frames_written = 0
        self._partial: PartialOutput | None = None
        self._frames = None
        self._levels: list = []

    def __enter__(self) -> StackWriter:
        self._partial = PartialOutput(self.path, directory=self.kind == "zarr")
        temp = self._partial.temp
        try:
            if self.kind == "zarr":
                self._levels = create_multiscale(temp, self.shape, self.dtype, self.axes,
                                                 pixel_size_nm=self.pixel_size_nm,
                                                 attributes=zarr_attributes(self.axes, self.pixel_size_nm,
                                                                            notes=self.notes))
                self._frames = self._levels[0]
            else:
                import tifffile

                nbytes = math.prod(self.shape) * self.dtype.itemsize
                # An empty contiguous TIFF mapped into memory: each block is copied straight to its
                # place in the file, and readers can memory-map the result the same way.
                self._frames = tifffile.memmap(temp, shape=self.shape, dtype=self.dtype, ome=True,
                                               bigtiff=nbytes > BIGTIFF_BYTES,
                                               metadata=tiff_metadata(self.axes, self.pixel_size_nm,
                                                                      len(self.shape), notes=self.notes),
                                               **tiff_resolution(self.pixel_size_nm))
        except BaseException:
            self._partial.discard()
            raise
        return self

    def write(self, block) -> None:
        """Append frames along the first axis.

        Parameters
        ----------
        block : array-like
            ``(n, *shape[1:])`` frames, or one frame of shape ``shape[1:]``.
        """
        if self._frames is None:
            raise RuntimeError("StackWriter.write called outside its `with` block")
        block = np.asarray(block, dtype=self.dtype)
        if block.shape == self.shape[1:]:
            block = block[np.newaxis]
        end = self.frames_written + block.shape[0]
        if block.shape[1:] != self.shape[1:] or end > self.shape[0]:
            raise ValueError(f"block of shape {block.shape} does not fit stack {self.shape} after "
                             f"{self.frames_written} frames")
        if self._levels:  # OME-Zarr: the block goes to every level of the pyramid at once
            write_block(self._levels, self.frames_written, block)
        else:
            self._frames[self.frames_written:end] = block
        self.frames_written = end

    def __exit__(self, exc_type, exc, traceback) -> bool:
        frames, self._frames, self._levels = self._frames, None, []
        try:
            if isinstance(frames, np.memmap):
                frames.flush()
            del frames  # closes the memory map before the rename
            if exc_type is None:
                if self.frames_written != self.shape[0]:
                    raise RuntimeError(f"stack {self.path} got {self.frames_written} of {self.shape[0]} "
                                       "frames; nothing was written")
                self._partial.publish()
                return False
        except BaseException:
            self._partial.discard()
            raise
        self._partial.discard()
        return False
