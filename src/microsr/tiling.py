"""Tiled inference: run a network over an image too large for memory, tile by tile, without seams.

Three things go wrong with naive tiling, and each has its remedy here:

- **Seams.** A convolution near a cut tile edge sees padding instead of the neighbouring pixels, so the
  outermost ``receptive-field radius`` pixels of every tile are wrong. Tiles overlap by ``overlap_px`` on
  each side and are blended with a window that is exactly 0 over the outer half of the overlap (where
  the damage lives) and ramps up as a raised cosine over the inner half. When the network's receptive
  field (full width, in input pixels) is at most ``overlap_px``, no damaged pixel carries any weight,
  and the tiled result equals the untiled one up to float rounding.
- **Guessing tile sizes.** ``tile_px=None`` picks the tile from free GPU memory (or a fixed CPU budget).
  :func:`balanced_tile_px` spreads a frame over the fewest tiles of at most a given side, all of one size,
  so the overlaps (computed twice) cost as little as they can.
- **Out-of-memory crashes.** On an out-of-memory error the tile (and the batch) is halved and the whole
  prediction starts again, down to ``2 * overlap_px + 16`` pixels.

Only the output and one batch of tiles are held; the input is never moved to the device as a whole.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from microsr.errors import InputError

#: Pixels per batch on the CPU, where free memory says little about what a network may allocate.
#: Measured with the shipped SFSRM (SEN ×1 + SRN ×4, 2 threads) on a 1024² frame: 256-px tiles took
#: 95 s and 626 MiB, 512-px tiles 188 s and 1965 MiB (activations that no longer fit in the caches),
#: 128-px SRN tiles 174 s (the 24-px overlaps are then most of each tile).
CPU_BUDGET_PX = 256 * 256

#: Rough device bytes one input pixel costs during inference (float32, ~64 features, ~16 activations
#: alive at once, no gradients); times ``scale**2`` for the upsampled part. An over-estimate of the tile
#: is harmless: the out-of-memory back-off corrects it.
_BYTES_PER_PX = 4 * 64 * 16

#: Share of free GPU memory the tiles may use; the rest is left to the allocator's fragmentation and
#: to other processes on a shared card.
_GPU_MEMORY_SHARE = 0.5

#: Largest automatic tile: beyond this a bigger tile saves nothing measurable.
_MAX_AUTO_TILE_PX = 4096

#: Smallest core (tile minus both overlaps), so a backed-off tile still makes progress.
_MIN_CORE_PX = 16

#: More channels than this in a 3-D input are almost certainly a stack of frames, not colours.
_MAX_CHANNELS = 4


def blend_window(
    tile_px: int, overlap_px: int, *, ramp_start: bool = True, ramp_end: bool = True
) -> np.ndarray:
    """1-D blending weights of one tile: 0 in the outer half of the overlap, raised cosine, then 1.

    Parameters
    ----------
    tile_px : int
        Tile length in pixels (overlaps included).
    overlap_px : int
        Overlap on each side in pixels. The first ``overlap_px // 2`` pixels from a ramped end get weight
        exactly 0, the next ``overlap_px - overlap_px // 2`` rise from near 0 to near 1 as a raised cosine,
        and the core is 1.
    ramp_start, ramp_end : bool
        Whether that end borders another tile. An end at the image border is not ramped (weight 1), since
        no other tile covers those pixels and the border padding is the same as in an untiled run.

    Returns
    -------
    numpy.ndarray
        Float64 weights of length ``tile_px``, in ``[0, 1]``.

    Examples
    --------
    >>> blend_window(8, 4).round(2).tolist()
    [0.0, 0.0, 0.25, 0.75, 0.75, 0.25, 0.0, 0.0]
    >>> blend_window(6, 2, ramp_start=False).round(2).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    if overlap_px < 0 or tile_px < 1:
        raise ValueError(f"tile_px ({tile_px}) must be >= 1 and overlap_px ({overlap_px}) >= 0")
    if overlap_px * (int(ramp_start) + int(ramp_end)) > tile_px:
        raise ValueError(f"tile_px ({tile_px}) is too small for overlap_px ({overlap_px}) on each side")
    window = np.ones(tile_px)
    zero_px = overlap_px // 2
    ramp_px = overlap_px - zero_px
    # endpoints 0 and 1 left out so the ramp is strictly between the zero zone and the core
    ramp = 0.5 * (1.0 - np.cos(np.pi * np.arange(1, ramp_px + 1) / (ramp_px + 1)))
    edge = np.concatenate([np.zeros(zero_px), ramp])
    if ramp_start and overlap_px:
        window[:overlap_px] = edge
    if ramp_end and overlap_px:
        window[tile_px - overlap_px :] = np.minimum(window[tile_px - overlap_px :], edge[::-1])
    return window


def predict_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray | torch.Tensor,
    *,
    scale: int = 1,
    tile_px: int | tuple[int, int] | None = None,
    overlap_px: int = 32,
    device: str | torch.device = "cpu",
    out: np.ndarray | None = None,
    progress: bool | Any = False,
    channels: int | None = None,
) -> np.ndarray:
    """Apply ``model`` to ``image`` tile by tile and blend the tiles into one seamless output.

    Parameters
    ----------
    model : callable
        Maps a float batch ``(N, C, h, w)`` on ``device`` to ``(N, C_out, h * scale, w * scale)``.
        ``C_out`` is read from the first tile. Putting an ``nn.Module`` in eval mode is the caller's job;
        the calls run under ``torch.inference_mode()``. Models that look at the whole image (global
        normalisation, attention over all pixels) cannot be tiled exactly.
    image : numpy.ndarray or torch.Tensor
        One frame, ``(C, H, W)`` or ``(H, W)`` (then ``C = 1``); may be a memmap, only tiles are read.
    scale : int
        Output pixels per input pixel along each axis.
    tile_px : int, (int, int) or None
        Tile side in input pixels, overlaps included, or ``(rows, columns)``; at least
        ``2 * overlap_px + 16``. An axis shorter than the tile runs whole (:func:`balanced_tile_px`
        chooses sides that waste the least). ``None`` picks it from memory: on CUDA from
        ``torch.cuda.mem_get_info`` (half the free memory at ~16 KiB per pixel x ``scale**2``, up to
        4096 px), elsewhere a fixed 256 px (:data:`CPU_BUDGET_PX`). Either way an out-of-memory error
        halves the tile and starts again, down to ``2 * overlap_px + 16``.
    overlap_px : int
        Overlap on each side of a tile, in input pixels. The result is exact (equal to the untiled
        prediction up to float rounding) when the network's receptive field, full width in input
        pixels, is at most ``overlap_px``.
    device : str or torch.device
        Where the model runs; one batch of tiles at a time is moved there.
    out : numpy.ndarray or None
        Preallocated floating-point array (or memmap, or Zarr frame) of shape
        ``(C_out, H * scale, W * scale)``, or ``(H * scale, W * scale)`` when ``C_out == 1``. It is
        zeroed, accumulated into and returned. ``None`` allocates a float32 array.
    progress : bool or tqdm
        ``True``: a progress bar over the tiles (stderr). A ``tqdm`` bar (anything with ``update(n)``) is
        advanced by one per tile instead and left open: one bar over several calls, e.g. the networks of
        one frame.
    channels : int or None
        Channels the model takes. Without it, more than 4 channels are refused as a likely stack of
        frames; give it for models whose channels are frames (rDL: 9 raw SIM frames).

    Returns
    -------
    numpy.ndarray
        ``out`` if given, else float32 ``(C_out, H * scale, W * scale)``; 2-D ``(H * scale, W * scale)``
        when the input was 2-D and ``C_out == 1``.

    Raises
    ------
    InputError
        If the image has the wrong shape, NaN or infinite values, looks like a stack, the parameters are
        impossible, the model's output does not match ``scale``, ``out`` does not fit, or even the
        smallest tile runs out of memory.

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> up = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")
    >>> predict_tiled(up, np.ones((100, 90), np.float32), scale=2, tile_px=48, overlap_px=8).shape
    (200, 180)
    """
    chw, was_2d = _as_chw(image, channels)
    tiles_yx = (tile_px, tile_px) if tile_px is None or isinstance(tile_px, (int, np.integer)) else tuple(tile_px)
    for side in tiles_yx:
        _check_parameters(scale, side, overlap_px)
    min_tile = 2 * overlap_px + _MIN_CORE_PX
    device = torch.device(device)
    height, width = chw.shape[1:]

    auto_tile, budget_px = _memory_plan(device, scale, min_tile)
    tile_y, tile_x = (auto_tile if side is None else int(side) for side in tiles_yx)
    dtype = _model_dtype(model)
    bar = _progress_bar(progress)
    planned = None
    try:
        while True:
            extent_y, extent_x = min(tile_y, height), min(tile_x, width)
            batch_tiles = max(1, budget_px // (extent_y * extent_x))
            count = len(axis_tiles(height, tile_y, overlap_px)[0]) * len(axis_tiles(width, tile_x, overlap_px)[0])
            if bar is not None and (progress is True or planned is not None):
                # a bar of its own counts this layout's tiles; a caller's bar counted them, less after a back-off
                bar.total = (bar.total or 0) + count - (planned or 0)
                bar.refresh()
            planned = count
            try:
                return _predict_once(
                    model, chw, was_2d, scale=scale, tile_px=(tile_y, tile_x), overlap_px=overlap_px,
                    batch_tiles=batch_tiles, device=device, dtype=dtype, out=out, bar=bar,
                )
            except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
                if not _is_out_of_memory(err):
                    raise
                failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            # outside the except block, so the traceback's references to the failed batch are gone
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch_tiles == 1 and max(tile_y, tile_x) <= min_tile:
                raise InputError(
                    f"out of memory on {device} even with {extent_y}x{extent_x}-px tiles one at a time "
                    f"({failure}); free device memory (other processes), run on a larger device or on "
                    f"'cpu', or lower overlap_px ({overlap_px}) so smaller tiles are allowed"
                )
            tile_y, tile_x = max(min_tile, tile_y // 2), max(min_tile, tile_x // 2)
            budget_px = max(1, budget_px // 4)
    finally:
        if progress is True:
            bar.close()


def tile_count(height: int, width: int, *, tile_px: int | tuple[int, int] | None = None, overlap_px: int = 32,
               scale: int = 1, device: str | torch.device = "cpu") -> int:
    """How many tiles :func:`predict_tiled` runs for a ``height`` x ``width`` frame with these settings (before
    any out-of-memory back-off): the total of a progress bar shared by several calls.

    Examples
    --------
    >>> tile_count(512, 512, tile_px=256, overlap_px=24), tile_count(512, 512, tile_px=280, overlap_px=24)
    (9, 4)
    """
    auto_tile, _ = _memory_plan(torch.device(device), scale, 2 * overlap_px + _MIN_CORE_PX)
    sides = (tile_px, tile_px) if tile_px is None or isinstance(tile_px, (int, np.integer)) else tuple(tile_px)
    tile_y, tile_x = (auto_tile if side is None else int(side) for side in sides)
    return len(axis_tiles(height, tile_y, overlap_px)[0]) * len(axis_tiles(width, tile_x, overlap_px)[0])


def balanced_tile_px(length: int, max_tile_px: int, overlap_px: int) -> int:
    """The side of the fewest equal tiles of at most ``max_tile_px`` that cover ``length`` pixels.

    Each tile beyond the first costs ``2 * overlap_px`` pixels computed twice; tiles of the largest side
    leave a last one shifted far inward (more pixels computed twice). Equal tiles of the smallest side that
    keeps their number minimal compute the fewest pixels: for 512 px with 256-px tiles and 24-px overlaps,
    three tiles of 203 px (609 px computed) instead of three of 256 (768 px).

    Examples
    --------
    >>> balanced_tile_px(512, 256, 24), balanced_tile_px(512, 288, 24), balanced_tile_px(200, 256, 24)
    (203, 280, 200)
    """
    if length <= max_tile_px:
        return length
    count = math.ceil((length - 2 * overlap_px) / (max_tile_px - 2 * overlap_px))
    return min(max_tile_px, math.ceil((length + 2 * overlap_px * (count - 1)) / count))


def _predict_once(
    model: Callable[[torch.Tensor], torch.Tensor],
    chw: np.ndarray | torch.Tensor,
    was_2d: bool,
    *,
    scale: int,
    tile_px: tuple[int, int],
    overlap_px: int,
    batch_tiles: int,
    device: torch.device,
    dtype: torch.dtype,
    out: np.ndarray | None,
    bar: Any,
) -> np.ndarray:
    """One full pass at a fixed tile size; out-of-memory errors propagate to the caller's back-off."""
    _, height, width = chw.shape
    starts_y, extent_y = axis_tiles(height, tile_px[0], overlap_px)
    starts_x, extent_x = axis_tiles(width, tile_px[1], overlap_px)
    weights_y = axis_weights(height, starts_y, extent_y, overlap_px, scale)
    weights_x = axis_weights(width, starts_x, extent_x, overlap_px, scale)
    tiles = [(iy, ix) for iy in range(len(starts_y)) for ix in range(len(starts_x))]
    batches = [tiles[i : i + batch_tiles] for i in range(0, len(tiles), batch_tiles)]

    result = None
    done = 0
    try:
        for batch in batches:
            pieces = [
                chw[:, starts_y[iy] : starts_y[iy] + extent_y, starts_x[ix] : starts_x[ix] + extent_x]
                for iy, ix in batch
            ]
            if isinstance(chw, torch.Tensor):
                inputs = torch.stack(pieces).to(device=device, dtype=dtype)
            else:
                inputs = torch.from_numpy(np.stack(pieces)).to(device=device, dtype=dtype)
            with torch.inference_mode():
                predicted = model(inputs)
            expected = (len(batch), extent_y * scale, extent_x * scale)
            if (
                not isinstance(predicted, torch.Tensor)
                or predicted.ndim != 4
                or (predicted.shape[0], *predicted.shape[2:]) != expected
            ):
                got = tuple(predicted.shape) if isinstance(predicted, torch.Tensor) else type(predicted)
                raise InputError(
                    f"the model turned a tile batch {tuple(inputs.shape)} into {got}, not "
                    f"(N, C_out, {expected[1]}, {expected[2]}); check scale={scale}"
                )
            del inputs
            predicted = predicted.detach().to(device="cpu", dtype=torch.float32).numpy()
            if result is None:
                result = _prepare_output(out, predicted.shape[1], height * scale, width * scale)
            for k, (iy, ix) in enumerate(batch):
                rows = slice(starts_y[iy] * scale, (starts_y[iy] + extent_y) * scale)
                cols = slice(starts_x[ix] * scale, (starts_x[ix] + extent_x) * scale)
                # weights are pre-divided by their per-axis sums, so accumulation alone finishes the blend
                blended = predicted[k] * np.outer(weights_y[iy], weights_x[ix]).astype(np.float32)
                if result.ndim == 2:
                    result[rows, cols] += blended[0]
                else:
                    result[:, rows, cols] += blended
            done += len(batch)
            if bar is not None:
                bar.update(len(batch))
    except BaseException:
        if bar is not None and done:  # a back-off starts again: the tiles of this pass are done again
            bar.update(-done)
        raise

    if out is not None:
        return out
    if was_2d and result.shape[0] == 1:
        return result[0]
    return result


def axis_tiles(length: int, tile_px: int, overlap_px: int) -> tuple[list[int], int]:
    """Tile starts and extent along one axis: full-size tiles, the last one shifted inward."""
    if length <= tile_px:
        return [0], length
    # cores (tile minus both overlaps) abut, so every pixel is in some tile's weight-1 core
    step = tile_px - 2 * overlap_px
    starts = list(range(0, length - tile_px, step)) + [length - tile_px]
    return starts, tile_px


def axis_weights(
    length: int, starts: list[int], extent: int, overlap_px: int, scale: int
) -> list[np.ndarray]:
    """Per-tile output-resolution windows along one axis, divided by their sum over all tiles.

    The 2-D window of a tile is the outer product of its two axis windows and the tiles form a full grid,
    so the 2-D weight sum is the outer product of the two 1-D sums: normalising each axis normalises
    the blend, and no 2-D weight buffer is needed.
    """
    windows = [
        blend_window(
            extent * scale,
            overlap_px * scale,
            ramp_start=start > 0,
            ramp_end=start + extent < length,
        )
        for start in starts
    ]
    total = np.zeros(length * scale)
    for start, window in zip(starts, windows):
        total[start * scale : (start + extent) * scale] += window
    # every pixel lies in the weight-1 core of some tile, because adjacent cores abut or overlap
    assert total.min() >= 1.0 - 1e-9, "tile layout leaves pixels without weight"
    return [w / total[s * scale : (s + extent) * scale] for s, w in zip(starts, windows)]


def _prepare_output(out: np.ndarray | None, channels: int, height: int, width: int) -> np.ndarray:
    """Check a preallocated ``out`` (or allocate one) and zero it for accumulation."""
    if out is None:
        return np.zeros((channels, height, width), dtype=np.float32)
    shape = tuple(out.shape)
    allowed = [(channels, height, width)] + ([(height, width)] if channels == 1 else [])
    if shape not in allowed:
        raise InputError(
            f"out has shape {shape} but the prediction is {(channels, height, width)}; "
            f"allocate out with that shape" + (" or (H, W)" if channels == 1 else "")
        )
    if not np.issubdtype(np.dtype(out.dtype), np.floating):
        raise InputError(
            f"out has dtype {out.dtype}; tiles are blended by accumulation, so it must be floating point "
            f"(e.g. float32); convert after prediction if an integer file is needed"
        )
    out[...] = 0
    return out


def _as_chw(image: np.ndarray | torch.Tensor, expected_channels: int | None = None,
            ) -> tuple[np.ndarray | torch.Tensor, bool]:
    """Check one frame and view it as ``(C, H, W)``; also say whether it was 2-D."""
    if not isinstance(image, (np.ndarray, torch.Tensor)):
        image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InputError(
            f"image has shape {tuple(image.shape)}; pass one frame as (H, W) or (C, H, W)"
        )
    was_2d = image.ndim == 2
    chw = image[None] if was_2d else image
    channels, height, width = chw.shape
    if expected_channels is not None and channels != expected_channels:
        raise InputError(f"image has shape {tuple(image.shape)}: the model takes {expected_channels} channels")
    if expected_channels is None and channels > _MAX_CHANNELS:
        raise InputError(
            f"image has shape {tuple(image.shape)}: {channels} channels is probably a stack of frames; "
            f"pass one frame at a time, e.g. image[i]"
        )
    if channels == 0 or height == 0 or width == 0:
        raise InputError(f"image has shape {tuple(image.shape)}; it is empty")
    if isinstance(chw, torch.Tensor):
        finite = bool(torch.isfinite(chw).all()) if chw.is_floating_point() else True
    else:
        finite = bool(np.isfinite(chw).all()) if np.issubdtype(chw.dtype, np.inexact) else True
    if not finite:
        raise InputError(
            "image contains NaN or infinite values; replace them (e.g. np.nan_to_num) or crop them away"
        )
    return chw, was_2d


def _check_parameters(scale: int, tile_px: int | None, overlap_px: int) -> None:
    """Reject impossible tiling parameters before any work starts."""
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    if not isinstance(overlap_px, (int, np.integer)) or overlap_px < 0:
        raise InputError(f"overlap_px must be a non-negative integer, got {overlap_px!r}")
    if tile_px is not None:
        min_tile = 2 * overlap_px + _MIN_CORE_PX
        if not isinstance(tile_px, (int, np.integer)) or tile_px < min_tile:
            raise InputError(
                f"tile_px ({tile_px!r}) must be at least 2 * overlap_px + {_MIN_CORE_PX} = {min_tile}; "
                f"raise tile_px, lower overlap_px, or pass tile_px=None to choose from memory"
            )


def _memory_plan(device: torch.device, scale: int, min_tile: int) -> tuple[int, int]:
    """Automatic tile side and pixels per batch for ``device``."""
    if device.type == "cuda":
        free_bytes, _ = torch.cuda.mem_get_info(device)
        budget_px = int(free_bytes * _GPU_MEMORY_SHARE / (_BYTES_PER_PX * scale**2))
    else:
        budget_px = CPU_BUDGET_PX
    tile = min(_MAX_AUTO_TILE_PX, int(math.isqrt(max(budget_px, 1))) // 16 * 16)
    return max(tile, min_tile), max(budget_px, 1)


def _progress_bar(progress: bool | Any) -> Any:
    """A bar of its own for ``True`` (tiles counted once known), the caller's bar as it is, else ``None``."""
    if isinstance(progress, bool):
        if not progress:
            return None
        from tqdm import tqdm  # lazily: tiling is imported by every command, bars are shown by few

        return tqdm(total=0, unit="tile", desc="tiles")
    return progress


def _model_dtype(model: Callable[[torch.Tensor], torch.Tensor]) -> torch.dtype:
    """Floating dtype of the model's parameters (a half-precision model gets half tiles), else float32."""
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            if parameter.is_floating_point():
                return parameter.dtype
    return torch.float32


def _is_out_of_memory(err: RuntimeError) -> bool:
    """Whether ``err`` is an allocation failure (CUDA, MPS or CPU) rather than a bug."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    message = str(err).lower()
    return "out of memory" in message or "can't allocate memory" in message
