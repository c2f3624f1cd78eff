"""SFSRM prediction: widefield frame → SEN (denoise) → edge map → SRN (super-resolve), tiled, on images and movies."""

from __future__ import annotations

import functools
import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from microsr.errors import InputError
from microsr.io import StackWriter, read_image, write_image
from microsr.io.atomic import PartialOutput, check_writable
from microsr.io.images import PixelSizeWarning, image_format, pixel_size_of, zarr_attributes
from microsr.io.ome_zarr import bin_plane, create_multiscale
from microsr.metrics.confidence import ensemble_disagreement, relative_disagreement, temporal_agreement
from microsr.models.sfsrm import SFSRMModel, network_inputs, normalize_input
from microsr.models.shipped import model_signature, shipped_models  # noqa: F401 (shipped_models: API since 0.1)
from microsr.resample import bicubic_upsample
from microsr.tiling import balanced_tile_px, predict_tiled, tile_count

#: Largest tile side on the CPU, in input pixels. SFSRM's networks run fastest per pixel on tiles of ~200–290 px
#: (measured with the shipped SRN on one thread: 28–29 µs per input pixel from 203 to 288 px, 31 at 320, 41 at
#: 512, where the trunk's activations outgrow the caches and are mapped afresh at every layer); tiles are made
#: equal (:func:`~microsr.tiling.balanced_tile_px`): a 512² frame runs as four tiles of 280², not nine of 256².
CPU_TILE_PX = 288


@dataclass
class SFSRMResult:
    """A prediction: the SR image, the denoised input, and the pixel size of the SR grid."""
    sr: np.ndarray
    denoised: np.ndarray
    pixel_size_nm: float | None
    #: each way the input lies outside the model's training range (:meth:`SFSRMModel.check_range`); empty: it fits
    input_check: list = field(default_factory=list)
    #: with an ensemble model: the members' per-pixel disagreement (:func:`~microsr.metrics.ensemble_disagreement`)
    disagreement: np.ndarray | None = None


class SFSRM(SFSRMModel):
    """A trained SFSRM pair (:class:`microsr.models.sfsrm.SFSRMModel`) applied tile by tile on any device.

    Examples
    --------
    >>> model = SFSRM.from_pretrained("filaments-x4", device="cpu")
    >>> model.predict(np.random.default_rng(0).random((32, 32)), pixel_size_nm=100).sr.shape
    (128, 128)
    """

    @torch.inference_mode()
    def predict(self, image, *, pixel_size_nm: float | None = None, tile_px: int | None = None,
                overlap_px: int = 24, check_range: bool = True, ensemble: bool = True,
                progress: bool | None = None) -> SFSRMResult:
        """Super-resolve one widefield frame; see :class:`SFSRMResult`. ``check_range`` measures the input
        against the model's training range first (a movie needs it on its first frame only). A model with
        ensemble members returns their mean and their disagreement unless ``ensemble`` is False (then
        the first SRN alone: faster, no uncertainty). ``progress``: a bar over the tiles of all networks on
        stderr; ``None`` shows it for a frame of more than one tile, on a terminal."""
        outputs, denoised, input_check = self.srn_outputs(image, pixel_size_nm=pixel_size_nm, tile_px=tile_px,
                                                          overlap_px=overlap_px, check_range=check_range,
                                                          ensemble=ensemble, progress=progress)
        sr = outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0).astype(np.float32)
        disagreement = ensemble_disagreement(outputs) if len(outputs) > 1 else None
        return SFSRMResult(sr, denoised, pixel_size_nm / self.scale if pixel_size_nm else None, input_check,
                           disagreement)

    @torch.inference_mode()
    def srn_outputs(self, image, *, pixel_size_nm: float | None = None, tile_px: int | None = None,
                    overlap_px: int = 24, check_range: bool = True, ensemble: bool = True,
                    progress: bool | None = None) -> tuple[list[np.ndarray], np.ndarray, list]:
        """Each SRN's image of one frame (the first SRN's only unless ``ensemble``), the SEN's output they
        share, and the input check: the SEN and the edge map are made once for all members. ``progress`` as
        in :meth:`predict`."""
        checked = self.check_input(image, pixel_size_nm)
        input_check = self.check_range(checked, pixel_size_nm) if check_range else []
        frame = normalize_input(checked)
        pre = float(self.srn_info.get("pre_upsample", 1.0))
        scale = int(self.srn_info["model"]["scale"])
        networks = [self.srn, *self.members] if ensemble else [self.srn]
        # Member k sees the field turned by k quarter turns and its output is turned back. A quarter turn is
        # the same physics (round PSF, square pixels), but no network is exactly rotation-equivariant: the
        # turn decorrelates the members' errors, so their mean is better (held-out filaments, SNR 10: MS-SSIM
        # 0.846 vs 0.835 unturned) and their spread also shows what depends on the orientation of the
        # structure, at no extra cost.
        srn_shape = tuple(int(round(length * pre)) for length in frame.shape)  # bicubic_upsample's (zoom's) size
        shapes = [srn_shape[::-1] if index % 2 else srn_shape for index in range(len(networks))]
        srn_tiles = [self._tiles(shape, tile_px, overlap_px) for shape in shapes]
        counts = [tile_count(*shape, tile_px=tiles, overlap_px=overlap_px, scale=scale, device=self.device)
                  for shape, tiles in zip(shapes, srn_tiles)]
        sen_tiles = self._tiles(frame.shape, tile_px, overlap_px)
        if self.sen is not None:
            counts.append(tile_count(*frame.shape, tile_px=sen_tiles, overlap_px=overlap_px, device=self.device))
        with tqdm(total=sum(counts), unit="tile", desc="SFSRM tiles", leave=False,
                  disable=(None if max(counts) > 1 else True) if progress is None else not progress) as bar:
            if self.sen is not None:
                frame = predict_tiled(self.sen, frame, scale=1, tile_px=sen_tiles, overlap_px=overlap_px,
                                      device=self.device, progress=bar)
            denoised = frame
            if pre != 1.0:
                frame = bicubic_upsample(frame, pre)
            # The edge map is made once for the whole frame: it is normalized by its maximum, so a map
            # made tile by tile would differ from tile to tile and leave seams.
            inputs = network_inputs(torch.from_numpy(frame)[None, None], "srn")[0].numpy()
            outputs = []
            for index, network in enumerate(networks):
                turns = index % 4
                turned = np.ascontiguousarray(np.rot90(inputs, turns, axes=(-2, -1)))
                output = predict_tiled(network, turned, scale=scale, tile_px=srn_tiles[index], overlap_px=overlap_px,
                                       device=self.device, progress=bar)[0]
                outputs.append(np.ascontiguousarray(np.rot90(output, -turns)))
        return outputs, denoised, input_check

    def _tiles(self, shape: tuple[int, int], tile_px: int | None, overlap_px: int):
        """The tile of each axis: as asked; on the CPU the fewest equal tiles of at most :data:`CPU_TILE_PX`;
        elsewhere from free memory (:func:`~microsr.tiling.predict_tiled`)."""
        if tile_px is not None or self.device.type != "cpu":
            return tile_px
        # an axis no longer than the tile runs whole, whatever the tile's side
        return tuple(balanced_tile_px(int(length), CPU_TILE_PX, overlap_px) if length > CPU_TILE_PX else CPU_TILE_PX
                     for length in shape)


def predict_ensemble(models: list[SFSRM], image, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Mean SR image of several models and their per-pixel disagreement (paper 003's network ensemble);
    each model's own ensemble members are members too."""
    outputs = []
    for index, model in enumerate(models):
        options = {**kwargs, "check_range": index == 0 and kwargs.get("check_range", True), "ensemble": True}
        outputs += model.srn_outputs(image, **options)[0]
    if len({o.shape for o in outputs}) != 1:
        raise InputError("ensemble models give outputs of different sizes: use models of one scale")
    return np.mean(outputs, axis=0), ensemble_disagreement(outputs)


def predict_stack(model: SFSRM, stack, output: str | Path, *, pixel_size_nm: float | None, overwrite: bool = False,
                  agreement_output: str | Path | None = None, progress: bool = True, **kwargs) -> dict:
    """Super-resolve a (T, Y, X) movie frame by frame into a TIFF or Zarr stack; optional temporal agreement.

    Only one frame (and, for the agreement map, the last five SR frames) is in memory at a time; the
    agreement of frame t is therefore measured over frames t−4…t (a causal window of 5, paper 003).
    """

    count = stack.shape[0]
    # one bar for the movie, over its frames: none over the tiles of each frame
    first_result = model.predict(np.asarray(stack[0]), pixel_size_nm=pixel_size_nm, progress=False, **kwargs)
    first = first_result.sr
    shape = (count, *first.shape)
    sr_pixel = pixel_size_nm / model.scale if pixel_size_nm else None
    # The input check goes into the output's metadata too: whoever opens the file later must see it.
    notes = {"input_check": first_result.input_check}
    writer = StackWriter(output, shape, "float32", pixel_size_nm=sr_pixel, axes="TYX", overwrite=overwrite,
                         notes=notes)
    agreement = (StackWriter(agreement_output, shape, "float32", pixel_size_nm=sr_pixel, axes="TYX",
                             overwrite=overwrite) if agreement_output else None)
    recent: list[np.ndarray] = []
    with writer, (agreement or nullcontext()):
        for t in tqdm(range(count), unit="frame", desc="SFSRM", disable=not progress):
            sr = first if t == 0 else model.predict(np.asarray(stack[t]), pixel_size_nm=pixel_size_nm,
                                                    check_range=False, progress=False, **kwargs).sr
            writer.write(sr[None])
            if agreement is not None:
                recent = (recent + [sr])[-5:]
                if len(recent) >= 2:
                    agreement.write(temporal_agreement(np.stack(recent), window=5)[-1][None])
                else:
                    agreement.write(np.ones_like(sr)[None])
    return {"output": str(output), "frames": count, "sr_pixel_size_nm": sr_pixel,
            "input_check": first_result.input_check}


def disagreement_path(output: str | Path) -> Path:
    """Where an ensemble's disagreement map goes by default: beside ``output``, named after it.

    Examples
    --------
    >>> disagreement_path("results/cell1_sr.ome.tif").as_posix()
    'results/cell1_sr_disagreement.ome.tif'
    """
    output = Path(output)
    name = output.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".zarr", ".npy"):
        if name.lower().endswith(suffix):
            return output.with_name(name[:-len(suffix)] + "_disagreement" + name[-len(suffix):])
    return output.with_name(name + "_disagreement.tif")


def predict_file(models: list[SFSRM], image: str | Path, output: str | Path, *, pixel_size_nm: float | None = None,
                 confidence: str | Path | None = None, tile_px: int | None = None, overwrite: bool = False,
                 progress: bool = True, disagreement: bool = True) -> dict:
    """Super-resolve a widefield file with one model or an ensemble: what ``microsr sfsrm predict`` does.

    - A movie ``(T, Y, X)`` streams frame by frame (:func:`predict_stack`) with each model's first SRN;
      ``confidence`` then receives the temporal agreement map. An ensemble is refused on movies.
    - A single frame with an ensemble — several models, or one model with ensemble members (the
      shipped ones have them) — writes their mean and, unless ``disagreement`` is False, their
      disagreement map (paper 003's uncertainty) to ``confidence`` or, by default, to
      :func:`disagreement_path` beside the output. With ``disagreement`` False no map is written, and
      one model uses its first SRN alone.

    The pixel size comes from ``pixel_size_nm`` or the file; a file without one is taken at the model's pixel
    size, with a warning and ``pixel_size_assumed`` in the summary. Returns a summary (``output``,
    ``sr_pixel_size_nm``, ``shape`` or ``frames``, ``input_check`` (:meth:`SFSRMModel.check_range`), and
    ``confidence`` with ``disagreement`` (its mean, 99th percentile and :func:`relative_disagreement`) when a
    map was written). The input
    check is also stored in each written image's metadata (:func:`microsr.io.image_notes`).
    """
    check_writable(output, overwrite)
    data = read_image(image, lazy=True)
    pixel = pixel_size_of(data, pixel_size_nm, image, camera=True)
    assumed = pixel is None
    if assumed:  # never silently: the output's pixel size and the input check both rest on this value
        pixel = models[0].pixel_size_nm
        warnings.warn(f"{image} carries no pixel size: taken as the model's {pixel:g} nm; pass --pixel-size-nm if "
                      "it is not (the output's pixel size and the input check depend on it)", PixelSizeWarning,
                      stacklevel=2)
    array = data.array
    movie = array.ndim == 3 and array.shape[-1] not in (3, 4) and array.shape[0] > 1
    if movie and len(models) > 1:
        raise InputError("--ensemble works on single frames; run each model on the movie instead")
    ensemble = not movie and (len(models) > 1 or (disagreement and bool(models[0].members)))
    write_map = ensemble and disagreement
    if write_map and confidence is None:
        confidence = disagreement_path(output)
    if confidence and (movie or write_map):
        check_writable(confidence, overwrite)
    if movie:
        summary = predict_stack(models[0], array, output, pixel_size_nm=pixel, overwrite=overwrite,
                                agreement_output=confidence, progress=progress, tile_px=tile_px, ensemble=False)
        return {**summary, **({"confidence": str(confidence)} if confidence else {}),
                **({"pixel_size_assumed": True} if assumed else {})}
    frame = np.asarray(array[0] if array.ndim == 3 and array.shape[0] == 1 else array)
    sr_pixel = pixel / models[0].scale if pixel else None
    input_check = models[0].check_range(models[0].check_input(frame, pixel), pixel)
    tiles_bar = None if progress else False  # with progress: a bar over the tiles of a frame too large for one
    if len(models) > 1 and ensemble:
        sr, spread = predict_ensemble(models, frame, pixel_size_nm=pixel, tile_px=tile_px, check_range=False,
                                      progress=tiles_bar)
    else:
        result = models[0].predict(frame, pixel_size_nm=pixel, tile_px=tile_px, check_range=False, ensemble=ensemble,
                                   progress=tiles_bar)
        sr, spread = result.sr, result.disagreement
    summary = {"output": str(output), "sr_pixel_size_nm": sr_pixel, "shape": list(sr.shape)}
    # The input check goes into the outputs' metadata too: whoever opens the files later must see it.
    notes = {"input_check": input_check}
    if write_map and spread is not None:
        write_image(confidence, spread, pixel_size_nm=sr_pixel, axes="YX", overwrite=overwrite, notes=notes)
        summary.update(confidence=str(confidence), disagreement={"mean": round(float(spread.mean()), 4),
                                                                 "p99": round(float(np.percentile(spread, 99)), 4),
                                                                 "relative": round(relative_disagreement(spread, sr), 4)})
    write_image(output, sr, pixel_size_nm=sr_pixel, axes="YX", overwrite=overwrite, notes=notes)
    return {**summary, "input_check": input_check, **({"pixel_size_assumed": True} if assumed else {})}


def loaded_model(name: str, device: str) -> SFSRM:
    """A model by name or folder, loaded once per process (a batch's worker loads it for its first file only)
    and again only when its files change."""
    return _load_cached(str(name), device, model_signature(name, "sfsrm"))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, device: str, signature: tuple) -> SFSRM:
    return SFSRM.from_pretrained(name, device=device)


def predict_file_task(image: str | Path, output: str | Path, *, models: tuple[str, ...] = ("filaments-x4",),
                      device: str = "auto", **options) -> dict:
    """:func:`predict_file` with the models named, not loaded: what ``sfsrm predict`` runs per file, here or on
    a Dask worker (:mod:`microsr.pipelines.batch`), where each model is loaded once per process."""
    return predict_file([loaded_model(str(name), device) for name in models], image, output, **options)


def is_movie(path: str | Path) -> bool:
    """Whether a file holds a ``(T, Y, X)`` movie of more than one frame (not RGB), read lazily."""
    try:
        shape = tuple(read_image(path, lazy=True).array.shape)
    except InputError:
        return False
    return len(shape) == 3 and shape[-1] not in (3, 4) and shape[0] > 1


def _predict_frames(indices: np.ndarray, *, movie: str, model: str, device: str, pixel_size_nm: float | None,
                    tile_px: int | None, threads: int | None) -> np.ndarray:
    """SR frames ``indices`` of ``movie``, read and predicted on a Dask worker (no frame travels over the wire)."""
    if threads:
        torch.set_num_threads(threads)
    frames = read_image(movie, lazy=True).array
    sfsrm = loaded_model(model, device)
    return np.stack([sfsrm.predict(np.asarray(frames[int(i)]), pixel_size_nm=pixel_size_nm, tile_px=tile_px,
                                   check_range=False, ensemble=False, progress=False).sr for i in np.ravel(indices)])


def predict_movie_parallel(model: str, movie: str | Path, output: str | Path, *, pixel_size_nm: float | None = None,
                           device: str = "auto", workers: int = 2, scheduler: str | None = None,
                           tile_px: int | None = None, overwrite: bool = False) -> dict:
    """Super-resolve the frames of one ``(T, Y, X)`` movie in parallel on Dask into an OME-Zarr ``output``.

    For a movie larger than memory on several cores or machines: the frames are a Dask array of one frame per
    block, each worker reads and predicts its own frames (first SRN, as :func:`predict_stack`), and every level
    of the output pyramid is stored straight from the workers. The input check runs once, on frame 0, here.
    Returns :func:`predict_stack`'s summary (without the temporal agreement map, which needs frames in order).
    """
    import dask.array as da
    from distributed import Client, LocalCluster

    if image_format(output) != "zarr":
        raise InputError(f"{output}: frames predicted in parallel are written to Zarr (.zarr), whose chunks "
                         "workers can write at once: name the output *.zarr")
    check_writable(output, overwrite)
    data = read_image(movie, lazy=True)
    pixel = pixel_size_of(data, pixel_size_nm, movie, camera=True)
    if pixel is None:  # as predict_file: never silently
        pixel = loaded_model(model, device).pixel_size_nm
        warnings.warn(f"{movie} carries no pixel size: taken as the model's {pixel:g} nm; pass --pixel-size-nm if "
                      "it is not", PixelSizeWarning, stacklevel=2)
    sfsrm = loaded_model(model, device)
    # The input check on frame 0 here; the frames themselves are predicted on the workers only.
    input_check = sfsrm.check_range(sfsrm.check_input(np.asarray(data.array[0]), pixel), pixel)
    count, height, width = (int(n) for n in data.array.shape)
    shape = (count, int(round(height * sfsrm.scale)), int(round(width * sfsrm.scale)))
    threads = None if scheduler else max(1, (os.cpu_count() or 1) // workers)
    indices = da.arange(count, chunks=1)
    sr = indices.map_blocks(_predict_frames, movie=str(movie), model=str(model), device=device, pixel_size_nm=pixel,
                            tile_px=tile_px, threads=threads, dtype=np.float32, new_axis=[1, 2],
                            chunks=((1,) * count, (shape[1],), (shape[2],)))
    sr_pixel = pixel / sfsrm.scale
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    try:
        with Client(scheduler or cluster), PartialOutput(Path(output), directory=True) as partial:
            levels = create_multiscale(partial.temp, shape, "float32", "TYX", pixel_size_nm=sr_pixel,
                                       attributes=zarr_attributes("TYX", sr_pixel,
                                                                  notes={"input_check": input_check}))
            sources = [sr]
            for array in levels[1:]:  # each level binned once from the one above, as write_region does
                sources.append(sources[-1].map_blocks(bin_plane, 1, dtype=np.float32,
                                                      chunks=((1,) * count, (array.shape[1],), (array.shape[2],))))
            da.store(sources, levels, lock=False)
            partial.publish()
    finally:
        if cluster is not None:
            cluster.close()
    return {"output": str(output), "frames": count, "sr_pixel_size_nm": sr_pixel, "input_check": input_check,
            "workers": workers if not scheduler else scheduler}
