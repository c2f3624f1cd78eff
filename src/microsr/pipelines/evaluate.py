"""The evaluate job: every metric the given images allow, matched by pixel size, to metrics.json and report.png."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from microsr.errors import InputError
from microsr.io import check_finite, image_notes, read_image
from microsr.io.atomic import atomic_write_text, check_writable
from microsr.io.images import PixelSizeWarning, pixel_size_of
from microsr.metrics import confidence, fidelity, resolution
from microsr.metrics.artifacts import residual_pattern_index
from microsr.pipelines.sfsrm import disagreement_path
from microsr.report import evaluation_figure
from microsr.sim.parameters import SIMParameters

#: Pixel sizes of two images agree when they differ by less than this fraction.
PIXEL_TOLERANCE = 0.01


@dataclass
class Picture:
    """One 2-D image with its pixel size (nm) and where it came from."""

    name: str
    image: np.ndarray
    pixel_size_nm: float


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: numbers for metrics.json and arrays for the report."""

    metrics: dict
    pictures: dict[str, Picture]
    maps: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)  # name -> (map, pixel nm)
    curves: dict = field(default_factory=dict)


def load_picture(path: str | Path, name: str, pixel_size_nm: float | None, frame: int = 0, *,
                 same_grid_as: Picture | None = None) -> Picture:
    """A 2-D image from a file (frame ``frame`` of a stack); the flag's pixel size wins over the file's. An
    image without either that has ``same_grid_as``'s shape is taken on its grid, with a warning saying so
    (as every image-comparison tool does with two images of one shape)."""
    data = read_image(path, lazy=True)
    array = data.array
    if array.ndim == 3:
        if not 0 <= frame < array.shape[0]:
            raise InputError(f"{path} has {array.shape[0]} frames; --frame {frame} is out of range")
        array = array[frame]
    if array.ndim != 2:
        raise InputError(f"{path} has shape {tuple(data.array.shape)}: evaluate takes a 2-D image or a "
                         "(T, Y, X) stack")
    image = np.asarray(array, dtype=np.float64)
    check_finite(image, f"{name} image {path}")
    pixel = pixel_size_of(data, pixel_size_nm, path)
    if not pixel and same_grid_as is not None and image.shape == same_grid_as.image.shape:
        pixel = same_grid_as.pixel_size_nm
        warnings.warn(f"{path} carries no pixel size and has the {same_grid_as.name.upper()} image's shape "
                      f"{image.shape}: taken on its grid ({pixel:g} nm); pass --{name.replace('_', '-')}-pixel-size-nm "
                      "if it is not", PixelSizeWarning, stacklevel=2)
    if not pixel:
        raise InputError(f"{path} carries no pixel size: pass --{name.replace('_', '-')}-pixel-size-nm"
                         if name != "sr" else f"{path} carries no pixel size: pass --pixel-size-nm")
    return Picture(name, image, float(pixel))


def match_to(picture: Picture, target_pixel_nm: float, target_shape: tuple[int, int]) -> np.ndarray:
    """Bring ``picture`` onto a grid of ``target_pixel_nm`` covering the same field, by integer binning.

    Only whole-number pixel ratios are accepted: anything else would need interpolation, which
    changes the very resolution being measured.
    """
    ratio = target_pixel_nm / picture.pixel_size_nm
    whole = round(ratio)
    if whole < 1 or abs(ratio - whole) > PIXEL_TOLERANCE * ratio:
        raise InputError(f"{picture.name} pixel size {picture.pixel_size_nm:g} nm is not a whole fraction of "
                         f"{target_pixel_nm:g} nm: resample it, or fix the pixel sizes in the files")
    image = picture.image
    if whole > 1:
        ny, nx = (image.shape[0] // whole) * whole, (image.shape[1] // whole) * whole
        image = image[:ny, :nx].reshape(ny // whole, whole, nx // whole, whole).mean(axis=(1, 3))
    if image.shape != tuple(target_shape):
        raise InputError(f"{picture.name} covers {picture.image.shape[1] * picture.pixel_size_nm / 1000:.2f} × "
                         f"{picture.image.shape[0] * picture.pixel_size_nm / 1000:.2f} µm but the SR image "
                         f"{target_shape[1] * target_pixel_nm / 1000:.2f} × {target_shape[0] * target_pixel_nm / 1000:.2f}"
                         " µm: give images of the same field of view")
    return image


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _Steps:
    """A progress bar over an evaluation's steps (tqdm on stderr), each named while it runs."""

    def __init__(self, total: int, progress: bool | None):
        # None: shown when stderr is a terminal, as tqdm decides
        self.bar = tqdm(total=total, desc="evaluate", unit="step", disable=None if progress is None else not progress,
                        bar_format="{desc}: {n_fmt}/{total_fmt} steps |{bar}| {elapsed}, {postfix}")

    def __call__(self, name: str):
        self.bar.set_postfix_str(name, refresh=True)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.update()
        return False

    def close(self):
        self.bar.close()


def _step_count(*, reference: bool, widefield: bool, frc_pair: bool, params: bool) -> int:
    """How many steps :func:`evaluate` reports for the given inputs (the progress bar's length)."""
    return 1 + int(params) + 4 * int(reference) + 2 * int(widefield) + int(frc_pair)


def evaluate(sr: Picture, *, reference: Picture | None = None, widefield: Picture | None = None,
             frc_pair: Picture | None = None, ensemble: list[Picture] | None = None,
             disagreement_map: Picture | None = None,
             temporal_window: np.ndarray | None = None, frame_in_window: int = 0,
             normalization: str = "percentile", params: SIMParameters | None = None,
             progress: bool | None = False, steps: _Steps | None = None) -> Evaluation:
    """Compute every metric that the given images allow.

    Parameters
    ----------
    sr : Picture
        The super-resolution image under test.
    reference : Picture, optional
        Ground truth or a trusted SR image (STORM, high-SNR SIM): fidelity metrics and HAWKMAN.
        A finer reference is binned onto the SR grid (whole pixel ratios only).
    widefield : Picture, optional
        The diffraction-limited image of the same field: SQUIRREL and its own resolution.
    frc_pair : Picture, optional
        An independent second SR image of the same field (other noise): Fourier ring correlation.
    ensemble : list of Picture, optional
        Outputs of other models for the same input: the per-pixel disagreement map.
    disagreement_map : Picture, optional
        A disagreement map already made (``sfsrm predict`` writes one beside an ensemble's output): its
        mean and 99th percentile are reported instead.
    temporal_window : ndarray, optional
        Up to 5 adjacent frames ``(T, Y, X)`` of the time-lapse the SR image belongs to: temporal
        agreement, as paper 003 checks live-cell reconstructions.
    frame_in_window : int
        Which frame of ``temporal_window`` the SR image is.
    normalization : str
        How the SR image is normalized before fidelity metrics (``percentile`` or ``linear_fit``).
    params : SIMParameters, optional
        The pattern of the raw frames a SIM image was made from: the residual-pattern artifact index
        (:func:`microsr.metrics.artifacts.residual_pattern_index`).
    progress : bool or None
        Show a progress bar over the steps on stderr (None: when stderr is a terminal).
    steps : optional
        The progress bar of a caller that reports more steps (:func:`evaluate_files`); it is left open.
    """
    own_steps = steps is None
    if own_steps:
        steps = _Steps(_step_count(reference=reference is not None, widefield=widefield is not None,
                                   frc_pair=frc_pair is not None, params=params is not None), progress)
    try:
        return _evaluate(sr, reference, widefield, frc_pair, ensemble, disagreement_map, temporal_window,
                         frame_in_window, normalization, params, steps)
    finally:
        if own_steps:
            steps.close()


def _evaluate(sr, reference, widefield, frc_pair, ensemble, disagreement_map, temporal_window, frame_in_window,
              normalization, params, steps) -> Evaluation:
    metrics: dict = {"sr_pixel_size_nm": sr.pixel_size_nm, "normalization": normalization}
    result = Evaluation(metrics, {"sr": sr})
    with steps("resolution (SR)"):
        decorrelation = resolution.decorrelation_resolution(sr.image, sr.pixel_size_nm)
    metrics["resolution_nm"] = _finite_or_none(decorrelation.resolution_nm)
    # Decorrelation analysis of one image cannot tell real detail from invented texture (a network's
    # hallucinated filaments read as fine resolution): say so wherever the number goes.
    metrics["resolution_kind"] = "apparent"
    # Curves keep their pixel size: the report plots them on one axis of cycles/µm.
    result.curves["decorrelation"] = {"SR": (decorrelation, sr.pixel_size_nm)}
    if params is not None:
        with steps("residual pattern"):
            artifacts = residual_pattern_index(sr.image, params, sr.pixel_size_nm)
        metrics["residual_pattern_index"] = artifacts.index
        metrics["residual_pattern"] = artifacts.per_orientation

    if reference is not None:
        truth = match_to(reference, sr.pixel_size_nm, sr.image.shape)
        result.pictures["reference"] = Picture("reference", truth, sr.pixel_size_nm)
        with steps("PSNR, SSIM"):
            # normalized once for the four scores (each would find the same percentiles again); the ranges
            # the scores take by default are those of the normalized reference, as they are here
            if normalization == "none":
                image, normalized_truth = sr.image, truth
            else:
                image = fidelity.normalize(sr.image, truth, method=normalization)
                normalized_truth = fidelity.normalize(truth, method="percentile")
            metrics["psnr"] = _finite_or_none(fidelity.psnr(image, normalized_truth, normalization="none"))
            metrics["ssim"] = _finite_or_none(fidelity.ssim(image, normalized_truth, normalization="none"))
        with steps("MS-SSIM, NRMSE, Pearson"):
            metrics["ms_ssim"] = _finite_or_none(fidelity.ms_ssim(image, normalized_truth, normalization="none"))
            metrics["nrmse"] = _finite_or_none(fidelity.nrmse(image, normalized_truth, normalization="none"))
            metrics["pearson"] = _finite_or_none(fidelity.pearson(sr.image, truth))
        del image, normalized_truth
        with steps("HAWKMAN"):
            hawkman = confidence.hawkman(sr.image, truth)
        metrics["hawkman"] = _finite_or_none(hawkman.score)
        result.maps["HAWKMAN confidence"] = (hawkman.confidence_map, sr.pixel_size_nm)
        with steps("resolution (reference)"):
            reference_decorrelation = resolution.decorrelation_resolution(truth, sr.pixel_size_nm)
        metrics["reference_resolution_nm"] = _finite_or_none(reference_decorrelation.resolution_nm)
        result.curves["decorrelation"]["reference"] = (reference_decorrelation, sr.pixel_size_nm)

    if widefield is not None:
        result.pictures["widefield"] = widefield
        with steps("SQUIRREL"):
            squirrel = confidence.squirrel(sr.image, widefield.image, sr_pixel_size_nm=sr.pixel_size_nm,
                                           widefield_pixel_size_nm=widefield.pixel_size_nm)
        metrics.update(squirrel_rse=_finite_or_none(squirrel.rse), squirrel_rsp=_finite_or_none(squirrel.rsp),
                       squirrel_sigma_nm=_finite_or_none(squirrel.sigma_nm),
                       widefield_pixel_size_nm=widefield.pixel_size_nm)
        result.maps["SQUIRREL error"] = (squirrel.error_map, widefield.pixel_size_nm)
        with steps("resolution (widefield)"):
            widefield_decorrelation = resolution.decorrelation_resolution(widefield.image, widefield.pixel_size_nm)
        metrics["widefield_resolution_nm"] = _finite_or_none(widefield_decorrelation.resolution_nm)
        result.curves["decorrelation"]["widefield"] = (widefield_decorrelation, widefield.pixel_size_nm)

    if frc_pair is not None:
        second = match_to(frc_pair, sr.pixel_size_nm, sr.image.shape)
        with steps("FRC"):
            frc = resolution.fourier_ring_correlation(sr.image, second, sr.pixel_size_nm)
        metrics["frc_resolution_nm"] = _finite_or_none(frc.resolution_nm)
        result.curves["frc"] = frc

    if disagreement_map is not None:
        metrics["ensemble_disagreement_mean"] = _finite_or_none(np.mean(disagreement_map.image))
        metrics["ensemble_disagreement_p99"] = _finite_or_none(np.percentile(disagreement_map.image, 99))
        result.maps["ensemble disagreement"] = (disagreement_map.image, disagreement_map.pixel_size_nm)
    elif ensemble:
        members = [sr.image] + [match_to(p, sr.pixel_size_nm, sr.image.shape) for p in ensemble]
        disagreement = confidence.ensemble_disagreement(members)
        metrics["ensemble_disagreement_mean"] = _finite_or_none(np.mean(disagreement))
        result.maps["ensemble disagreement"] = (disagreement, sr.pixel_size_nm)

    if temporal_window is not None and temporal_window.shape[0] > 1:
        agreement = confidence.temporal_agreement(temporal_window, window=5)[frame_in_window]
        metrics["temporal_agreement_mean"] = _finite_or_none(np.mean(agreement))
        result.maps["temporal agreement"] = (agreement, sr.pixel_size_nm)
    return result


def write_evaluation(result: Evaluation, outdir: str | Path, overwrite: bool = False) -> dict[str, Path]:
    """Write ``metrics.json`` and ``report.png`` into ``outdir``."""
    outdir = Path(outdir)
    paths = {"metrics": outdir / "metrics.json", "report": outdir / "report.png"}
    for path in paths.values():
        check_writable(path, overwrite)
    atomic_write_text(paths["metrics"], json.dumps(result.metrics, indent=2) + "\n", overwrite)
    evaluation_figure(paths["report"], result, overwrite=overwrite)
    return paths


def evaluate_files(sr: str | Path, out: str | Path, *, reference: str | Path | None = None,
                   widefield: str | Path | None = None, frc_pair: str | Path | None = None,
                   ensemble: list[str | Path] | None = None, pixel_size_nm: float | None = None,
                   reference_pixel_size_nm: float | None = None, widefield_pixel_size_nm: float | None = None,
                   frame: int = 0, normalization: str = "percentile", params: str | Path | None = None,
                   overwrite: bool = False, progress: bool | None = None) -> Evaluation:
    """``microsr evaluate``: measure frame ``frame`` of an SR file against what is given; write ``metrics.json``
    and ``report.png`` into ``out``.

    For a stack, the temporal agreement of the frame is measured over the 5 frames around it (only
    those are read). The disagreement map ``sfsrm predict`` writes beside an ensemble's output
    (:func:`~microsr.pipelines.sfsrm.disagreement_path`) is reported when it is there, and so is the input
    check it stored in the SR file (``input_check``: each way the widefield input lay outside the model's
    training range).

    ``progress``: a progress bar over the steps (reading, each metric, the report) on stderr; by default
    when stderr is a terminal.
    """
    out = Path(out)
    for name in ("metrics.json", "report.png"):
        check_writable(out / name, overwrite)
    # evaluate's steps, and reading the images and drawing the report
    steps = _Steps(_step_count(reference=bool(reference), widefield=bool(widefield), frc_pair=bool(frc_pair),
                               params=bool(params)) + 2, progress)
    try:
        return _evaluate_files(sr, out, reference, widefield, frc_pair, ensemble, pixel_size_nm,
                               reference_pixel_size_nm, widefield_pixel_size_nm, frame, normalization, params,
                               overwrite, steps)
    finally:
        steps.close()


def _evaluate_files(sr, out, reference, widefield, frc_pair, ensemble, pixel_size_nm, reference_pixel_size_nm,
                    widefield_pixel_size_nm, frame, normalization, params, overwrite, steps) -> Evaluation:
    with steps("reading"):
        sr_picture = load_picture(sr, "sr", pixel_size_nm, frame)
        stack = read_image(sr, lazy=True).array
        window, frame_in_window = None, 0
        if stack.ndim == 3 and stack.shape[0] > 1:  # temporal agreement needs only 5 frames around this one
            first = max(0, min(frame - 2, stack.shape[0] - 5))
            window = np.asarray(stack[first:first + 5], dtype=np.float64)
            frame_in_window = frame - first
        same_grid = pixel_size_nm or sr_picture.pixel_size_nm
        beside = disagreement_path(sr)
        disagreement_map = (load_picture(beside, "disagreement", same_grid) if not ensemble and beside.exists()
                            and beside != Path(sr) else None)
        reference_picture = (load_picture(reference, "reference", reference_pixel_size_nm, same_grid_as=sr_picture)
                             if reference else None)
        widefield_picture = load_picture(widefield, "widefield", widefield_pixel_size_nm, frame) if widefield else None
        frc_picture = load_picture(frc_pair, "frc_pair", same_grid) if frc_pair else None
        ensemble_pictures = [load_picture(p, "ensemble", same_grid) for p in ensemble or []]
    result = evaluate(
        sr_picture, reference=reference_picture, widefield=widefield_picture, frc_pair=frc_picture,
        ensemble=ensemble_pictures, disagreement_map=disagreement_map,
        temporal_window=window, frame_in_window=frame_in_window, normalization=normalization,
        params=SIMParameters.load(params) if params else None, steps=steps)
    result.metrics["frame"] = frame
    # sfsrm predict stores its input check in the SR file: a report of that file must not drop it.
    notes = image_notes(sr)
    if "input_check" in notes:
        result.metrics["input_check"] = notes["input_check"]
    with steps("report"):
        write_evaluation(result, out, overwrite)
    return result
