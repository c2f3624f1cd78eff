"""Structured illumination on raw frames: the SIMReconstructor facade (optics → estimate → reconstruct) and SIM jobs on files."""

from __future__ import annotations

import json
import math
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from microsr.errors import InputError
from microsr.io import StackWriter, check_finite, read_image, to_tapyx, write_image
from microsr.io.atomic import atomic_write_text, check_writable
from microsr.io.images import pixel_size_of
from microsr.metrics.artifacts import residual_pattern_index
from microsr.metrics.raw_qc import frame_intensities, modulation_contrast_map
from microsr.optics import OTF, edge_taper, frequency_grid, ideal_otf, load_otf_mrc
from microsr.report import estimation_figure, qc_figure, sim_result_figure
from microsr.sim.estimate import (EstimationWarning, PatternPrior, estimate_background, estimate_parameters,
                                  fixed_pattern_stripes, repair_pixels, stuck_pixels)
from microsr.sim.parameters import SIMParameters
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor


@dataclass(frozen=True)
class Optics:
    """What the user tells about the microscope; a measured OTF file wins over NA and wavelength."""
    na: float = 1.35
    wavelength_nm: float = 525.0
    otf_path: str | None = None

    def otf(self, pixel_size_nm: float) -> OTF:
        """The detection OTF for camera pixels of ``pixel_size_nm``."""
        if self.otf_path:
            return load_otf_mrc(self.otf_path)
        return ideal_otf(self.na, self.wavelength_nm, camera_pixel_nm=pixel_size_nm)


@dataclass
class SIMReconstructor:
    """Conventional SIM for one microscope: pattern estimation and Wiener reconstruction with one OTF.

    The CLI (``sim estimate``, ``sim reconstruct``), the demo and rDL SIM all go through this object,
    so the pattern they estimate and the reconstruction they make are the same for the same raw frames.

    Parameters
    ----------
    otf : OTF
        Detection OTF (ideal or measured).
    pixel_size_nm : float
        Camera pixel size in the sample.
    settings : ReconstructionSettings
        Wiener weight, apodization and the background (camera offset) subtracted from raw frames.
    prior : PatternPrior, optional
        Calibrated angles / spacing the estimation searches around.
    phase_steps : {"equal", "free"}
        Phase model of the estimation.
    device : str
        Where the reconstruction runs: "auto", "cpu" or "cuda".

    Examples
    --------
    >>> from microsr.synthetic import simulate_sim
    >>> data = simulate_sim(shape=(64, 64), photons=200, seed=1)
    >>> sim = SIMReconstructor.from_settings(pixel_size_nm=data.pixel_size_nm,
    ...                                      background=data.camera.offset_adu + data.camera.background_photons)
    >>> params = sim.estimate(data.raw[0])
    >>> sim.reconstruct(data.raw[0], params).shape
    (128, 128)
    """

    otf: OTF
    pixel_size_nm: float
    settings: ReconstructionSettings = field(default_factory=ReconstructionSettings)
    prior: PatternPrior | None = None
    phase_steps: str = "equal"
    device: str = "auto"

    @classmethod
    def from_settings(cls, *, pixel_size_nm: float, na: float = 1.35, wavelength_nm: float = 525.0,
                      otf_path: str | Path | None = None, **options) -> SIMReconstructor:
        """A reconstructor from the microscope's settings; ``otf_path`` (a measured OTF) wins over NA and
        wavelength. ``options`` are the other fields, or :class:`ReconstructionSettings` fields
        (``wiener_weight``, ``apodization``, ``apodization_cutoff``, ``background``, ...)."""
        setting_names = set(ReconstructionSettings.__dataclass_fields__)
        settings = ReconstructionSettings(**{k: v for k, v in options.items() if k in setting_names})
        rest = {k: v for k, v in options.items() if k not in setting_names}
        optics = Optics(na, wavelength_nm, str(otf_path) if otf_path else None)
        return cls(optics.otf(pixel_size_nm), float(pixel_size_nm), settings, **rest)

    @property
    def background(self) -> float:
        """Camera offset (+ unmodulated background) subtracted from the raw frames."""
        return self.settings.background

    def estimate(self, raw: np.ndarray, *, background: float | None = None,
                 diagnostics: dict | None = None) -> SIMParameters:
        """Pattern parameters of raw frames ``(A, P, Y, X)`` (or ``(T, A, P, Y, X)``, averaged first).

        ``background`` overrides the settings' for this call; ``diagnostics``, if a dict, receives the
        correlation maps the estimation figure draws. Every warning of the estimate (an impossible
        modulation replaced, a weak peak, a pattern frequency that does not fit the optics) is also
        issued as an :class:`~microsr.sim.estimate.EstimationWarning`, so no caller uses it unawares;
        the CLI prints each as one line on stderr.
        """
        params = estimate_parameters(raw, self.pixel_size_nm, self.otf,
                                     background=self.background if background is None else background,
                                     prior=self.prior, phase_steps=self.phase_steps, diagnostics=diagnostics)
        for message in params.quality["warnings"]:
            warnings.warn(message, EstimationWarning, stacklevel=2)
        return params

    def reconstructor(self, params: SIMParameters, shape: tuple[int, int], *,
                      background: float | None = None) -> WienerReconstructor:
        """The Wiener filters for frames of ``shape``, built once, to be called on batches of frame sets."""
        settings = self.settings if background is None else replace(self.settings, background=background)
        return WienerReconstructor(params, shape, self.pixel_size_nm, self.otf, settings, self.device)

    def reconstruct(self, raw: np.ndarray, params: SIMParameters, *, background: float | None = None) -> np.ndarray:
        """The SIM image ``(2Y, 2X)`` of one frame set ``(A, P, Y, X)``, or ``(T, 2Y, 2X)`` of ``(T, A, P, Y, X)``.

        Stuck camera pixels (hot or dead, :func:`~microsr.sim.estimate.stuck_pixels`) are replaced by their
        local median first: left in, each would ring across the SIM image.
        """
        raw = np.asarray(raw, dtype=np.float32)
        raw = repair_pixels(raw, stuck_pixels(raw)).astype(np.float32, copy=False)
        images = self.reconstructor(params, raw.shape[-2:], background=background)(raw).cpu().numpy()
        return images[0] if raw.ndim == 4 else images


def open_raw(path: str | Path, angles: int, phases: int, pixel_size_nm: float | None):
    """Open a raw SIM file lazily as ``(T, A, P, Y, X)``; the pixel size comes from the flag or the file."""
    image = read_image(path, lazy=True)
    stack = to_tapyx(image.array, angles, phases)
    pixel = pixel_size_of(image, pixel_size_nm, path, camera=True)
    if not pixel:
        raise InputError(f"{path} carries no pixel size: pass --pixel-size-nm (e.g. 62.6 for the "
                         "rDL TIRF-SIM data)")
    return stack, float(pixel)


def _time_point(stack, t: int) -> np.ndarray:
    frames = np.asarray(stack[t], dtype=np.float32)
    check_finite(frames, f"raw frames of time point {t}")
    return frames


def resolve_background(stack, background: str | float) -> float:
    """A number, or ``auto``: a low percentile of the first time point's smoothed widefield image."""
    if isinstance(background, str) and background != "auto":
        try:
            return float(background)
        except ValueError:
            raise InputError(f"--background {background!r} is neither a number nor 'auto'") from None
    if background == "auto":
        return estimate_background(_time_point(stack, 0))
    return float(background)


def estimate_stack(sim: SIMReconstructor, stack, *, average_time_points: int = 1,
                   diagnostics: dict | None = None) -> SIMParameters:
    """``sim.estimate`` on the mean of the first ``average_time_points`` of a lazy ``(T, A, P, Y, X)`` stack (0 = all).

    The pattern repeats while the noise does not: averaging time points is how low-light live-cell
    data are estimated reliably, and streaming the mean keeps one frame set in memory.
    """
    count = len(stack) if average_time_points <= 0 else min(average_time_points, len(stack))
    mean = np.zeros(stack[0].shape, dtype=np.float64)
    for t in range(count):
        mean += _time_point(stack, t)
    params = sim.estimate(mean / count, diagnostics=diagnostics)
    params.quality["time_points_averaged"] = count
    return params


def reconstruct_stack(stack, params: SIMParameters, pixel_size_nm: float, otf: OTF, output: str | Path,
                      *, settings: ReconstructionSettings, widefield_output: str | Path | None = None,
                      device: str = "auto", batch_size: int = 0, overwrite: bool = False,
                      progress: bool = True, figure: str | Path | None = None, figure_title: str = "") -> dict:
    """Reconstruct every time point, streaming ``batch_size`` frame sets at a time to the output(s).

    Memory stays bounded by one batch, whatever the length of the stack; outputs appear only
    when complete (written beside, then renamed). ``batch_size`` 0 picks 1 on a CPU (measured:
    batching there only costs cache) and 8 on a GPU. ``figure``, if given, receives the first time
    point's widefield and SIM images with their spectra.
    """
    count, angles, phases, ny, nx = stack.shape
    if (angles, phases) != (params.angles, params.phases):
        raise InputError(f"the parameters describe {params.angles} angles × {params.phases} phases but "
                         f"the data were read as {angles} × {phases}: check --angles/--phases")
    recon = SIMReconstructor(otf, pixel_size_nm, settings, device=device).reconstructor(params, (ny, nx))
    batch_size = batch_size if batch_size > 0 else (1 if recon.device.type == "cpu" else 8)
    for path in (output, widefield_output, figure):
        if path:
            check_writable(path, overwrite)
    summary = {"output": str(output), "time_points": count,
               "output_pixel_size_nm": recon.output_pixel_size_nm,
               "widefield": str(widefield_output) if widefield_output else None}
    first: dict = {}
    # Stuck camera pixels, found on the first time point, are repaired in every frame set (see SIMReconstructor).
    stuck = stuck_pixels(_time_point(stack, 0))

    def frame_set(t: int) -> np.ndarray:
        return repair_pixels(_time_point(stack, t), stuck).astype(np.float32, copy=False)

    def keep_first(block: np.ndarray, sr: np.ndarray) -> None:
        if figure and not first:
            first["widefield"] = block[0].mean(axis=(0, 1)) - settings.background
            first["sim"] = sr[0]

    if count == 1:  # a single frame set: plain 2-D images, as a user expects
        block = frame_set(0)[None]
        sr = recon(block).cpu().numpy()
        keep_first(block, sr)
        write_image(output, sr[0], pixel_size_nm=recon.output_pixel_size_nm, axes="YX", overwrite=overwrite)
        if widefield_output:
            write_image(widefield_output, recon.widefield(block).cpu().numpy()[0],
                        pixel_size_nm=pixel_size_nm, axes="YX", overwrite=overwrite)
    else:
        sr_writer = StackWriter(output, (count, 2 * ny, 2 * nx), "float32",
                                pixel_size_nm=recon.output_pixel_size_nm, axes="TYX", overwrite=overwrite)
        wf_writer = (StackWriter(widefield_output, (count, ny, nx), "float32", pixel_size_nm=pixel_size_nm,
                                 axes="TYX", overwrite=overwrite) if widefield_output else None)
        with sr_writer, (wf_writer or nullcontext()):
            bar = tqdm(total=count, unit="frame set", desc="SIM reconstruction", disable=not progress)
            for start in range(0, count, batch_size):
                block = np.stack([frame_set(t) for t in range(start, min(count, start + batch_size))])
                sr = recon(block).cpu().numpy()
                keep_first(block, sr)
                sr_writer.write(sr)
                if wf_writer is not None:
                    wf_writer.write(recon.widefield(block).cpu().numpy())
                bar.update(len(block))
            bar.close()
    if figure:
        sim_result_figure(figure, first["widefield"], first["sim"], pixel_size_nm, cutoff_per_um=otf.cutoff_per_um,
                          title=figure_title, overwrite=overwrite)
    return summary


def parse_prior(angles_deg: str | None, spacing_nm: float | None, window_deg: float = 3.0,
                spacing_window_percent: float = 5.0) -> PatternPrior | None:
    """A :class:`PatternPrior` from CLI text such as ``"10.5,70.4,130.6"`` (or one base angle).

    Examples
    --------
    >>> parse_prior("10,70,130", 200.0).spacing_nm
    200.0
    >>> parse_prior(None, None) is None
    True
    """
    if not angles_deg and not spacing_nm:
        return None
    angles = None
    if angles_deg:
        try:
            angles = tuple(math.radians(float(v)) for v in angles_deg.split(","))
        except ValueError:
            raise InputError(f"--prior-angles-deg {angles_deg!r}: give comma-separated degrees, "
                             "e.g. 10.5,70.4,130.6") from None
    return PatternPrior(angles, spacing_nm, math.radians(window_deg), spacing_window_percent / 100)


def estimate_file(raw: str | Path, json_out: str | Path, *, optics: Optics = Optics(), angles: int = 3,
                  phases: int = 3, pixel_size_nm: float | None = None, background: str | float = "auto",
                  average_time_points: int = 1, prior: PatternPrior | None = None, phase_steps: str = "equal",
                  figure: str | Path | None = None, overwrite: bool = False) -> SIMParameters:
    """``microsr sim estimate``: the pattern of a raw file to JSON, and the estimation figure (PNG).

    The figure defaults to the JSON's path with ``.png``. The parameters' ``quality`` holds the pixel
    size used and the warnings of the estimation (unreliable modulation, peaks near the cut-off).
    """
    json_out = Path(json_out)
    figure = Path(figure) if figure else json_out.with_suffix(".png")
    check_writable(json_out, overwrite)
    check_writable(figure, overwrite)
    stack, pixel = open_raw(raw, angles, phases, pixel_size_nm)
    sim = SIMReconstructor(optics.otf(pixel), pixel, ReconstructionSettings(background=resolve_background(stack, background)),
                           prior, phase_steps)
    diagnostics: dict = {}
    params = estimate_stack(sim, stack, average_time_points=average_time_points, diagnostics=diagnostics)
    params.quality["pixel_size_nm"] = pixel
    params.save(json_out)
    estimation_figure(figure, diagnostics, params)
    return params


def reconstruct_file(raw: str | Path, output: str | Path, *, optics: Optics = Optics(), angles: int = 3,
                     phases: int = 3, pixel_size_nm: float | None = None, background: str | float = "auto",
                     params: SIMParameters | None = None, average_time_points: int = 1,
                     phase_steps: str = "equal", wiener_weight: float = 0.05, apodization: str = "otf",
                     apodization_cutoff: float = 1.0, widefield_output: str | Path | None = None,
                     figure: str | Path | None = None, device: str = "auto", batch_size: int = 0,
                     overwrite: bool = False, progress: bool = True) -> tuple[dict, SIMParameters]:
    """``microsr sim reconstruct``: Wiener SIM of every time point of a raw file, streamed to ``output``.

    The pattern is ``params`` (from ``sim estimate``) or estimated from the first
    ``average_time_points``; the estimate's warnings are issued as it is made, before the stack is
    reconstructed. Returns the summary printed by the CLI and the parameters used.
    """
    check_writable(output, overwrite)
    if figure:
        check_writable(figure, overwrite)
    stack, pixel = open_raw(raw, angles, phases, pixel_size_nm)
    settings = ReconstructionSettings(wiener_weight=wiener_weight, apodization=apodization,
                                      apodization_cutoff=apodization_cutoff,
                                      background=resolve_background(stack, background))
    sim = SIMReconstructor(optics.otf(pixel), pixel, settings, phase_steps=phase_steps, device=device)
    if params is None:
        params = estimate_stack(sim, stack, average_time_points=average_time_points)
    summary = reconstruct_stack(stack, params, pixel, sim.otf, output, settings=settings,
                                widefield_output=widefield_output, device=device, batch_size=batch_size,
                                overwrite=overwrite, progress=progress, figure=figure, figure_title=Path(raw).name)
    return summary, params


#: Thresholds of ``sim check``'s flags (see :func:`check_file`).
QC_LIMITS = {"fluctuation": 0.015, "bleaching_per_frame": 0.001, "residual_pattern_index": 1.0,
             "time_points": 20}


def check_file(raw: str | Path, out: str | Path, *, optics: Optics = Optics(), angles: int = 3, phases: int = 3,
               pixel_size_nm: float | None = None, background: str | float = "auto",
               params: SIMParameters | None = None, overwrite: bool = False) -> dict:
    """``microsr sim check``: raw-data and reconstruction QC of a SIM file (SIMcheck's tests), ``qc.json`` + ``qc.png``.

    Measured on the first :data:`QC_LIMITS` ``["time_points"]`` time points: stuck camera pixels, a camera
    row/column pattern, bleaching and excitation fluctuation (the latter needs ≥ 2 time points), the
    pattern estimate (peak contrast, modulations, substitutions) and the modulation contrast map of the
    raw data, and the residual-pattern artifact index of the conventional SIM image. ``flags`` lists
    each problem found, in words; the thresholds are :data:`QC_LIMITS`.
    """
    out = Path(out)
    paths = {"json": out / "qc.json", "figure": out / "qc.png"}
    for path in paths.values():
        check_writable(path, overwrite)
    stack, pixel = open_raw(raw, angles, phases, pixel_size_nm)
    count = min(len(stack), QC_LIMITS["time_points"])
    frames = np.stack([_time_point(stack, t) for t in range(count)])
    bg = resolve_background(stack, background)
    sim = SIMReconstructor(optics.otf(pixel), pixel, ReconstructionSettings(background=bg))
    flags = []
    stuck = stuck_pixels(frames)
    if stuck.any():
        flags.append(f"{int(stuck.sum())} stuck camera pixel(s) (hot or dead): repaired for the estimate")
    widefield = (repair_pixels(frames, stuck).mean(axis=(0, 1, 2)) - bg) * edge_taper(frames.shape[-2:])
    ky, kx = frequency_grid(frames.shape[-2:], pixel)
    outside = np.hypot(ky, kx) > 1.15 * sim.otf.cutoff_per_um
    stripes = bool(outside.mean() > 0.01 and fixed_pattern_stripes(np.fft.fft2(widefield), outside))
    if stripes:
        flags.append("the camera adds a row/column pattern (stripes on the spectrum's axes)")
    intensity = frame_intensities(frames, bg)
    if intensity["bleaching_per_frame"] > QC_LIMITS["bleaching_per_frame"] and \
            intensity["bleaching_per_frame"] > 3 * intensity["bleaching_error"]:
        flags.append(f"bleaching: {100 * intensity['bleaching_per_frame']:.2f} % of the signal lost per frame")
    if intensity["fluctuation"] is not None and intensity["fluctuation"] > QC_LIMITS["fluctuation"]:
        flags.append(f"the excitation fluctuates by {100 * intensity['fluctuation']:.1f} % from frame to frame")
    params = params or sim.estimate(frames.mean(axis=0))
    flags += [f"estimate: {warning}" for warning in params.quality.get("warnings", [])]
    contrast = modulation_contrast_map(frames, bg)
    sim_image = sim.reconstruct(frames[0], params)
    artifacts = residual_pattern_index(sim_image, params, pixel / 2)
    if artifacts.index > QC_LIMITS["residual_pattern_index"]:
        worst = max(artifacts.per_orientation, key=lambda r: r["index"])
        flags.append(f"the SIM image keeps the pattern (orientation {worst['orientation']}, "
                     f"{'±k' if worst['order'] == 1 else '±2k'}: 10^{worst['index']:.1f} × its surroundings)")
    report = {"raw": str(raw), "pixel_size_nm": pixel, "background": bg, "time_points_checked": count,
              "stuck_pixels": int(stuck.sum()), "camera_stripes": stripes,
              "bleaching_per_frame": intensity["bleaching_per_frame"], "bleaching_error": intensity["bleaching_error"],
              "excitation_fluctuation": intensity["fluctuation"], "frame_means": intensity["frame_means"],
              "modulation_contrast_median": float(np.nanmedian(contrast)) if np.isfinite(contrast).any() else None,
              "params": params.to_dict(), "residual_pattern_index": artifacts.index,
              "residual_pattern": artifacts.per_orientation, "flags": flags}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, default=float) + "\n", overwrite)
    pattern = [tuple(o.k_cycles_per_um * v for v in (math.sin(o.angle_rad), math.cos(o.angle_rad)))
               for o in params.orientations]
    qc_figure(paths["figure"], contrast, pixel, intensity["frame_means"], sim_image, pattern, flags,
              title=f"SIM check of {Path(raw).name}", overwrite=overwrite)
    return {**report, "json": str(paths["json"]), "figure": str(paths["figure"])}


def reconstruct_file_task(raw: str | Path, output: str | Path, **options) -> dict:
    """:func:`reconstruct_file`'s summary alone: what ``sim reconstruct`` runs per file, here or on a Dask worker
    (:mod:`microsr.pipelines.batch`)."""
    return reconstruct_file(raw, output, **options)[0]
