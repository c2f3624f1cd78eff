"""Denoise lattice light-sheet stacks with a trained TiS-rDL / SiS-rDL network, volume by volume, in bounded memory.

A recording of 10 000 volumes does not fit in memory, and one large volume may not either. Prediction
therefore streams at two levels:

- **Volumes**: one time point at a time is read from the lazily opened stack (Zarr, or a folder of TIFF
  volumes) and written to the output Zarr. The output is written to a hidden ``.<name>.partial``
  sibling that records how many volumes are finished (attribute ``volumes_done``); a killed run started
  again with the same input and model skips those and goes on. When every volume is written, the
  partial store is renamed onto the output, so nothing half-written ever bears the output's name.
- **Tiles**: each volume is denoised in overlapping 3-D tiles, blended with the raised-cosine windows of
  :mod:`microsr.tiling` (zero over the outer half of each overlap, where zero padding has damaged the
  network's output). Tiles are visited slab by slab along z; a slab's planes are final, and written,
  as soon as no later tile reaches them, so only ``tile_z`` planes of output are ever held.

The tile size follows from a memory budget (``memory_mb``); see :func:`plan_tiles`.

SiS-rDL was trained on odd ↔ even planes, i.e. on volumes of twice the z-step, but it denoises the
whole volume at once, all planes together, as TiS-rDL does. Splitting each volume into its odd and
even planes and denoising each half at the z-step the network learned was measured to be worse at
every step (``bench/selfsup_compare.py``, vesicles and membranes: 36.97 vs 38.22 dB at 100-nm planes,
29.71 vs 34.47 dB at 300 nm, 23.70 vs 24.42 dB at 600 nm): what the network learned is to predict the
neighbouring half's planes, and on the halves that puts its output a whole half-step away.

Intensities: the input is normalized as in training (:func:`microsr.models.selfsup.probe_normalization`,
measured on the input stack with the model's patch shape, so the training stack gets exactly its
training numbers) and the output is mapped back, so denoised volumes are in the input's counts.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm.auto import tqdm

from microsr.errors import InputError, MicrosrError
from microsr.io.atomic import check_writable, move_into_place, remove_partial
from microsr.io.ome_zarr import CHUNK_PX, create_multiscale, pyramid_shapes, write_region
from microsr.io.volumes import WRITING_ATTRIBUTE, open_volume_stack, stack_metadata
from microsr.models.selfsup import SelfSupModel, sis_split
from microsr.models.shipped import model_signature
from microsr.tiling import axis_tiles, axis_weights

#: Default memory budget of one prediction (tiles, their activations, the output slab, output chunks).
DEFAULT_MEMORY_MB = 2048

#: Bytes one voxel of a tile costs per network feature while the network runs on the CPU: about six
#: float32 activations alive at once, plus the unfolded 3 x 3 x 3 neighbourhoods (27 floats per
#: feature) that the CPU's 3-D convolution builds for small inputs. Measured (peak resident growth of
#: one RCAN3D forward pass, 8 and 16 features): 130-140 bytes per voxel and feature for tiles up to
#: 16 x 64 x 64, 25-30 for tiles of 24 x 128 x 128 and more, so this is an upper bound.
BYTES_PER_VOXEL_FEATURE = 4 * (6 + 27)

#: Bytes one voxel of a tile costs whatever the features: the single-channel ends of the network, i.e.
#: the tile read, its normalized tensor, the output, and the first convolution's unfolded 3 x 3 x 3
#: neighbourhoods of its one input channel. Small next to the features' share for real networks (16-64
#: features), but a network of 4 features was measured 15 % over the feature count alone.
BYTES_PER_VOXEL = 4 * (3 + 27)

#: Default overlap (z, y, x) between tiles, in voxels of the input.
DEFAULT_OVERLAP = (4, 16, 16)

#: Smallest tile core (tile minus both overlaps) along z and along y, x.
_MIN_CORE = (4, 16)

_ATTR_JOB = "microsr_job"
_ATTR_DONE = "volumes_done"


@dataclass(frozen=True)
class TilePlan:
    """Tile shape and overlap (z, y, x) for one volume shape, and the memory they need (MB)."""
    tile: tuple[int, int, int]
    overlap: tuple[int, int, int]
    memory_mb: float


def plan_tiles(volume_shape, features: int, *, memory_mb: float = DEFAULT_MEMORY_MB,
               overlap=DEFAULT_OVERLAP, chunk_bytes: int = 0, tta: bool = False) -> TilePlan:
    """The largest 3-D tile whose prediction fits ``memory_mb``.

    Memory counted: the tile's activations (:data:`BYTES_PER_VOXEL_FEATURE` × ``features`` +
    :data:`BYTES_PER_VOXEL` per voxel),
    the output slab (``tile_z`` whole planes, float32) and two output chunks (``chunk_bytes`` each:
    Zarr reads, modifies and re-encodes a chunk that a slab only partly covers). The tile starts as
    the whole volume and its longest side (y, x before z) shrinks by a fifth at a time until it fits;
    an axis no longer than the tile is not cut.

    Parameters
    ----------
    volume_shape : (int, int, int)
        (Z, Y, X) of one volume.
    features : int
        The network's trunk features.
    memory_mb : float
        Budget in MiB.
    overlap : (int, int, int)
        Overlap on each side of a tile; along an axis cut into tiles the tile keeps at least a
        4-plane (z) or 16-voxel (y, x) core.
    chunk_bytes : int
        Bytes of one output chunk.
    tta : bool
        Test-time augmentation: 4 more float32 per voxel (the rotated input, the network's output, its
        rotation back, the running mean).

    Raises
    ------
    InputError
        Even the smallest tile does not fit: the message gives the budget that would.
    """
    shape = tuple(int(s) for s in volume_shape)
    overlap = tuple(int(o) for o in overlap)
    budget = float(memory_mb) * 2**20
    per_voxel = BYTES_PER_VOXEL_FEATURE * int(features) + BYTES_PER_VOXEL + (4 * 4 if tta else 0)
    minimum = tuple(min(s, 2 * o + _MIN_CORE[0 if axis == 0 else 1])
                    for axis, (s, o) in enumerate(zip(shape, overlap)))

    def need(tile) -> float:
        return math.prod(tile) * per_voxel + tile[0] * shape[1] * shape[2] * 4 + 2 * chunk_bytes

    tile = list(shape)
    while need(tile) > budget:
        # Shrink y and x first: z is the short axis of a light-sheet volume, and cutting it most
        # multiplies the overlapping planes the slab keeps.
        axis = max((1, 2, 0), key=lambda a: (tile[a] - minimum[a]) / (1 if a else 2))
        if tile[axis] <= minimum[axis]:
            floor = need(minimum) / 2**20
            raise InputError(f"memory budget {memory_mb:g} MB is too small for volumes of (Z, Y, X) = {shape} "
                             f"with {features} features: the smallest tile {minimum} needs {floor:.0f} MB; "
                             "raise --memory-mb or use a smaller overlap")
        tile[axis] = max(minimum[axis], int(tile[axis] * 0.8))
    tile = tuple(tile)
    used_overlap = tuple(o if t < s else 0 for o, t, s in zip(overlap, tile, shape))
    return TilePlan(tile, used_overlap, need(tile) / 2**20)


def lateral_views(square: bool = True) -> list[tuple[Callable, Callable]]:
    """``(forward, back)`` pairs over the last two axes of a tensor: the 8 rotations and flips of a square
    (4 flips of a non-square), each with its inverse, the identity first."""
    views = []
    for turns in ((0, 1, 2, 3) if square else (0, 2)):
        for flip in (False, True):
            def forward(x, turns=turns, flip=flip):
                x = torch.rot90(x, turns, dims=(-2, -1))
                return torch.flip(x, dims=(-1,)) if flip else x

            def back(y, turns=turns, flip=flip):
                y = torch.flip(y, dims=(-1,)) if flip else y
                return torch.rot90(y, -turns, dims=(-2, -1))

            views.append((forward, back))
    return views


class SelfSupDenoiser(SelfSupModel):
    """A trained TiS-rDL or SiS-rDL model (:class:`microsr.models.selfsup.SelfSupModel`) and how to apply it:
    to one volume, tile by tile in bounded memory, or to a whole stack (:func:`predict_selfsup_stack`).

    Examples
    --------
    >>> denoiser = SelfSupDenoiser.from_pretrained("llsm-vesicles-tis", device="cpu")
    >>> denoiser.denoise_volume(np.zeros((4, 16, 16), np.float32)).shape
    (4, 16, 16)
    """

    @classmethod
    def from_file(cls, path: str | Path, *, device="auto", tta: bool = False) -> SelfSupDenoiser:
        """Deprecated name of :meth:`from_pretrained`, kept for scripts written against microsr 0.1."""
        warnings.warn("SelfSupDenoiser.from_file is now SelfSupDenoiser.from_pretrained", DeprecationWarning,
                      stacklevel=2)
        return cls.from_pretrained(path, device=device, tta=tta)

    def plan(self, volume_shape, *, memory_mb: float = DEFAULT_MEMORY_MB, overlap=DEFAULT_OVERLAP,
             chunk_bytes: int = 0) -> TilePlan:
        """:func:`plan_tiles` for this network."""
        return plan_tiles(volume_shape, self.features, memory_mb=memory_mb, overlap=overlap,
                          chunk_bytes=chunk_bytes, tta=self.tta)

    @torch.no_grad()
    def _apply(self, tile: np.ndarray, background: float, scale: float) -> np.ndarray:
        x = torch.from_numpy((np.asarray(tile, dtype=np.float32) - np.float32(background)) / np.float32(scale))
        x = x.to(self.device)[None, None]
        if self.tta:
            y = torch.zeros_like(x)
            views = lateral_views(x.shape[-2] == x.shape[-1])
            for forward, back in views:
                # One view at a time, not a batch of them: the memory plan counts one tile's activations.
                y += back(self.network(forward(x)))
            y /= len(views)
        else:
            y = self.network(x)
        return y[0, 0].float().cpu().numpy() * np.float32(scale) + np.float32(background)

    def slabs(self, read: Callable[[tuple[slice, slice, slice]], np.ndarray], volume_shape, *,
              background: float, scale: float, plan: TilePlan) -> Iterator[tuple[int, int, np.ndarray]]:
        """Denoise one volume tile by tile; yields ``(z0, z1, planes)`` as soon as planes are final.

        ``read(region)`` returns the input voxels of a ``(z, y, x)`` slice region. The slabs come in z
        order and together cover the volume once; each is a view, valid until the next is asked for.
        """
        shape = tuple(int(s) for s in volume_shape)
        starts, extents, weights = [], [], []
        for length, tile, overlap in zip(shape, plan.tile, plan.overlap):
            axis_starts, extent = axis_tiles(length, tile, overlap)
            starts.append(axis_starts)
            extents.append(extent)
            weights.append(axis_weights(length, axis_starts, extent, overlap, 1))
        ez, ey, ex = extents
        slab = np.zeros((ez, shape[1], shape[2]), dtype=np.float32)
        slab_z0 = 0
        z_starts = starts[0]
        for index, z0 in enumerate(z_starts):
            if z0 > slab_z0:  # keep the planes still to be finished, start the rest afresh
                kept = slab[z0 - slab_z0:].copy()
                slab[:] = 0
                slab[:len(kept)] = kept
                slab_z0 = z0
            wz = weights[0][index].astype(np.float32)
            for iy, y0 in enumerate(starts[1]):
                wy = weights[1][iy].astype(np.float32)
                for ix, x0 in enumerate(starts[2]):
                    region = (slice(z0, z0 + ez), slice(y0, y0 + ey), slice(x0, x0 + ex))
                    denoised = self._apply(read(region), background, scale)
                    window = wz[:, None, None] * wy[None, :, None] * weights[2][ix].astype(np.float32)[None, None]
                    slab[z0 - slab_z0:z0 - slab_z0 + ez, y0:y0 + ey, x0:x0 + ex] += denoised * window
            final_end = z_starts[index + 1] if index + 1 < len(z_starts) else shape[0]
            yield slab_z0, final_end, slab[:final_end - slab_z0]

    def denoise_volume(self, volume, *, background: float | None = None, scale: float | None = None,
                       memory_mb: float = DEFAULT_MEMORY_MB, overlap=DEFAULT_OVERLAP) -> np.ndarray:
        """Denoise one ``(Z, Y, X)`` volume (any array-like; read tile by tile); float32 counts out.

        ``background`` and ``scale`` default to the volume's own measure (:meth:`measure`); pass the
        stack's for volumes of one recording, so that all are normalized alike.
        """
        shape = tuple(volume.shape)
        if len(shape) != 3:
            raise InputError(f"volume of shape {shape}: expected axes (Z, Y, X)")
        if background is None or scale is None:
            measured = self.measure(_OneVolume(volume))
            background = measured[0] if background is None else background
            scale = measured[1] if scale is None else scale
        plan = self.plan(shape, memory_mb=memory_mb, overlap=overlap)
        out = np.empty(shape, dtype=np.float32)
        for z0, z1, planes in self.slabs(lambda region: volume[region], shape, background=background,
                                         scale=scale, plan=plan):
            out[z0:z1] = planes
        return out


class _OneVolume:
    """A ``(Z, Y, X)`` array seen as a stack of one time point (for :func:`probe_normalization`)."""
    def __init__(self, volume):
        self.volume = volume
        self.shape = (1, *volume.shape)

    def __getitem__(self, key):
        return self.volume[key[1:]]


def partial_path(output: Path) -> Path:
    """Where an unfinished prediction to ``output`` lives (hidden, beside it)."""
    return output.with_name(f".{output.name}.partial")


def predict_selfsup_stack(denoiser: SelfSupDenoiser, stack_path: str | Path, output: str | Path, *,
                          memory_mb: float = DEFAULT_MEMORY_MB, overlap=DEFAULT_OVERLAP,
                          background: float | None = None, scale: float | None = None,
                          overwrite: bool = False, progress: bool = False) -> dict:
    """Denoise every volume of a ``(T, Z, Y, X)`` stack into ``output`` (a ``.zarr``), restartably.

    Parameters
    ----------
    denoiser : SelfSupDenoiser
        The trained model.
    stack_path : str or Path
        Zarr, folder of TIFF volumes, or one 4-D file (:func:`microsr.io.volumes.open_volume_stack`).
    output : str or Path
        A ``.zarr`` path: OME-Zarr (:mod:`microsr.io.ome_zarr`; level 0 at ``output/0``, one chunk per plane,
        the pyramid filled volume by volume), float32 counts, with the input's voxel size as each level's
        scale and as attributes, ``axes`` "TZYX" and the normalization used.
    memory_mb : float
        Budget for tiles, the output slab and output chunks (:func:`plan_tiles`). The input is read
        per tile; nothing else grows with the stack.
    overlap : (int, int, int)
        Tile overlap (z, y, x).
    background, scale : float, optional
        Normalization; default measured on the input as training measured its stack.
    overwrite : bool
        Replace an existing ``output`` (once the new one is complete).
    progress : bool
        A bar over volumes with rate and ETA.

    Returns
    -------
    dict
        ``output``, ``shape``, ``volumes_written``, ``volumes_skipped`` (done by an earlier, killed run),
        ``tile``, ``overlap``, ``memory_mb`` (planned), ``background``, ``scale``, ``seconds``.

    Raises
    ------
    InputError
        The errors of ``open_volume_stack`` (a stack being written, wrong axes); an output that is not
        ``.zarr``; a budget too small for one tile; SiS on volumes of fewer than 2 planes; a voxel size
        far from the training stack's (:meth:`~microsr.models.selfsup.SelfSupModel.check_sampling`).
    OutputExistsError
        ``output`` exists and not ``overwrite``.
    """
    started = time.perf_counter()
    stack_path, output = Path(stack_path), Path(output)
    if not output.name.lower().endswith(".zarr"):
        raise InputError(f"{output}: denoised stacks are written as Zarr (a .zarr folder), which can be "
                         "written volume by volume and resumed: name the output *.zarr")
    check_writable(output, overwrite)
    stack = open_volume_stack(stack_path)
    metadata = stack_metadata(stack)
    denoiser.check_sampling(metadata)
    shape = tuple(int(s) for s in stack.shape)
    if denoiser.mode == "sis" and shape[1] < 2:
        sis_split(np.empty((shape[1], 1, 1)))  # raises its message on too few planes
    if background is None or scale is None:
        measured = denoiser.measure(stack)
        background = measured[0] if background is None else float(background)
        scale = measured[1] if scale is None else float(scale)
    # The output is OME-Zarr, one chunk per plane; zarr encodes the chunks of a slab concurrently, so the plan
    # reserves up to 16 planes' worth of them, and 0.5 MB for the encoders' own buffers (measured: a 12 MB
    # budget grew 1.1 MB more with plane chunks than with one chunk per volume).
    chunk_bytes = 4 * min(shape[1], 16) * min(shape[2], CHUNK_PX) * min(shape[3], CHUNK_PX) + 2**19
    plan = denoiser.plan(shape[1:], memory_mb=memory_mb, overlap=overlap, chunk_bytes=chunk_bytes)
    job = {"input": str(stack_path.resolve()), "shape": list(shape), "model": denoiser.fingerprint,
           "mode": denoiser.mode, "tta": denoiser.tta, "background": background, "scale": scale}
    partial = partial_path(output)
    voxel = metadata.get("voxel_size_nm") or [None, None, None]
    done = 0
    if partial.exists():
        try:
            previous = zarr.open_group(str(partial), mode="r+")
            if dict(previous.attrs).get(_ATTR_JOB) == job:
                done = int(previous.attrs.get(_ATTR_DONE, 0))
        except Exception:  # an unreadable leftover is started over, like one from another job
            done = 0
    if done:
        group = zarr.open_group(str(partial), mode="r+")
        levels = [group[str(level)] for level in range(len(pyramid_shapes(shape)))]
    else:
        remove_partial(partial)
        # OME-Zarr like every Zarr output; the job and progress markers ride on its group until it is done.
        levels = create_multiscale(partial, shape, "float32", "TZYX",
                                   pixel_size_nm=metadata.get("pixel_size_nm") or voxel[-1], z_step_nm=voxel[0],
                                   attributes={"axes": "TZYX", **metadata, _ATTR_JOB: job, _ATTR_DONE: 0,
                                               WRITING_ATTRIBUTE: True,
                                               "normalization": {"background": background, "scale": scale},
                                               "denoiser": denoiser.mode, "tta": denoiser.tta})
        group = zarr.open_group(str(partial), mode="r+")
    bar = tqdm(total=shape[0], initial=done, unit="volume", desc=f"{denoiser.mode.upper()}-rDL",
               disable=not progress)
    # zarr encodes the chunks of one write concurrently (10 at a time by default); 4 keep their buffers small
    # beside the tiles the plan counts, at no measurable cost in time.
    concurrency = zarr.config.set({"async.concurrency": 4})
    try:
        for t in range(done, shape[0]):
            for z0, z1, planes in denoiser.slabs(lambda region, t=t: stack[(t, *region)], shape[1:],
                                                 background=background, scale=scale, plan=plan):
                write_region(levels, (t, slice(z0, z1)), planes)
            group.attrs[_ATTR_DONE] = t + 1
            bar.update(1)
    finally:
        bar.close()
        concurrency.__exit__(None, None, None)
    for node in (group, levels[0]):
        attrs = dict(node.attrs)
        for key in (_ATTR_JOB, _ATTR_DONE, WRITING_ATTRIBUTE):
            attrs.pop(key, None)
        node.attrs.put(attrs)
    del levels, group
    if output.exists() and not overwrite:  # appeared while we worked
        raise MicrosrError(f"{output} appeared while predicting: the result is kept in {partial}; move it "
                           "by hand or rerun with --overwrite")
    move_into_place(partial, output)
    return {"output": str(output), "shape": list(shape), "volumes_written": shape[0] - done,
            "volumes_skipped": done, "tile": list(plan.tile), "overlap": list(plan.overlap),
            "memory_mb": round(plan.memory_mb, 1), "background": background, "scale": scale,
            "seconds": round(time.perf_counter() - started, 2)}


@functools.lru_cache(maxsize=4)
def _load_cached(model: str, device: str, tta: bool, signature: tuple) -> SelfSupDenoiser:
    return SelfSupDenoiser.from_pretrained(model, device, tta=tta)


def predict_file_task(stack: str | Path, output: str | Path, *, model: str = "llsm-vesicles-tis", device: str = "auto",
                      tta: bool = False, **options) -> dict:
    """:func:`predict_selfsup_stack` with the model named, not loaded: what ``selfsup predict`` runs per stack, here
    or on a Dask worker (:mod:`microsr.pipelines.batch`), loading the model once per process."""
    denoiser = _load_cached(str(model), device, bool(tta), model_signature(model, "selfsup"))
    return predict_selfsup_stack(denoiser, stack, output, **options)
