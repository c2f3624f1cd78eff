"""SIM jobs on files: simulate an acquisition, estimate its pattern, reconstruct a stack frame-set by frame-set."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from microsr.errors import InputError
from microsr.io import StackWriter, check_finite, read_image, to_tapyx, write_image
from microsr.io.atomic import atomic_write_text, check_writable
from microsr.optics import OTF, ideal_otf, load_otf_mrc
from microsr.sim.estimate import PatternPrior, estimate_background, estimate_parameters
from microsr.sim.parameters import SIMParameters
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor
from microsr.sim.simulate import SimulatedSIM


@dataclass(frozen=True)
class Optics:
    """What the user tells about the microscope; a measured OTF file wins over NA and wavelength."""

    na: float = 1.35
    wavelength_nm: float = 525.0
    otf_path: str | None = None

    def otf(self, pixel_size_nm: float) -> OTF:
        if self.otf_path:
            return load_otf_mrc(self.otf_path)
        return ideal_otf(self.na, self.wavelength_nm, camera_pixel_nm=pixel_size_nm)


def write_simulation(data: SimulatedSIM, outdir: str | Path, overwrite: bool = False) -> dict:
    """Write ``raw.tif`` (uint16 camera counts), ``raw_clean.tif``, ``ground_truth.tif``,
    ``widefield.tif`` and ``truth.json``. Returns the paths written."""
    outdir = Path(outdir)
    names = ["raw.tif", "raw_clean.tif", "ground_truth.tif", "widefield.tif", "truth.json"]
    for name in names:
        check_writable(outdir / name, overwrite)
    t, a, p, y, x = data.raw.shape
    raw = np.clip(np.round(data.raw), 0, 65535).astype(np.uint16).reshape(t * a * p, y, x)
    pixel = data.pixel_size_nm
    write_image(outdir / "raw.tif", raw, pixel_size_nm=pixel, axes="QYX", overwrite=overwrite)
    write_image(outdir / "raw_clean.tif", data.raw_clean.reshape(a * p, y, x), pixel_size_nm=pixel,
                axes="QYX", overwrite=overwrite)
    write_image(outdir / "ground_truth.tif", data.ground_truth, pixel_size_nm=pixel / 2, axes="YX",
                overwrite=overwrite)
    write_image(outdir / "widefield.tif", data.widefield if t > 1 else data.widefield[0],
                pixel_size_nm=pixel, axes="TYX" if t > 1 else "YX", overwrite=overwrite)
    atomic_write_text(outdir / "truth.json", json.dumps(data.truth_dict(), indent=2) + "\n", overwrite)
    return {name: str(outdir / name) for name in names}


def open_raw(path: str | Path, angles: int, phases: int, pixel_size_nm: float | None):
    """Open a raw SIM file lazily as ``(T, A, P, Y, X)``; the pixel size comes from the flag or the file."""
    image = read_image(path, lazy=True)
    stack = to_tapyx(image.array, angles, phases)
    pixel = pixel_size_nm or image.pixel_size_nm
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


def estimate_from_stack(stack, pixel_size_nm: float, otf: OTF, *, background: float,
                        average_time_points: int = 1, prior: PatternPrior | None = None,
                        phase_steps: str = "equal", diagnostics: dict | None = None) -> SIMParameters:
    """Estimate pattern parameters from the mean of the first ``average_time_points`` (0 = all)."""
    count = len(stack) if average_time_points <= 0 else min(average_time_points, len(stack))
    mean = np.zeros(stack[0].shape, dtype=np.float64)
    for t in range(count):
        mean += _time_point(stack, t)
    params = estimate_parameters(mean / count, pixel_size_nm, otf, background=background,
                                 prior=prior, phase_steps=phase_steps, diagnostics=diagnostics)
    params.quality["time_points_averaged"] = count
    return params


def reconstruct_stack(stack, params: SIMParameters, pixel_size_nm: float, otf: OTF, output: str | Path,
                      *, settings: ReconstructionSettings, widefield_output: str | Path | None = None,
                      device: str = "auto", batch_size: int = 0, overwrite: bool = False,
                      progress: bool = True) -> dict:
    """Reconstruct every time point, streaming ``batch_size`` frame sets at a time to the output(s).

    Memory stays bounded by one batch, whatever the length of the stack; outputs appear only
    when complete (written beside, then renamed). ``batch_size`` 0 picks 1 on a CPU (measured:
    batching there only costs cache) and 8 on a GPU.
    """
    count, angles, phases, ny, nx = stack.shape
    if (angles, phases) != (params.angles, params.phases):
        raise InputError(f"the parameters describe {params.angles} angles × {params.phases} phases but "
                         f"the data were read as {angles} × {phases}: check --angles/--phases")
    recon = WienerReconstructor(params, (ny, nx), pixel_size_nm, otf, settings, device)
    batch_size = batch_size if batch_size > 0 else (1 if recon.device.type == "cpu" else 8)
    check_writable(output, overwrite)
    if widefield_output:
        check_writable(widefield_output, overwrite)
    summary = {"output": str(output), "time_points": count,
               "output_pixel_size_nm": recon.output_pixel_size_nm,
               "widefield": str(widefield_output) if widefield_output else None}
    if count == 1:  # a single frame set: plain 2-D images, as a user expects
        block = _time_point(stack, 0)[None]
        write_image(output, recon(block).cpu().numpy()[0], pixel_size_nm=recon.output_pixel_size_nm,
                    axes="YX", overwrite=overwrite)
        if widefield_output:
            write_image(widefield_output, recon.widefield(block).cpu().numpy()[0],
                        pixel_size_nm=pixel_size_nm, axes="YX", overwrite=overwrite)
        return summary
    sr_writer = StackWriter(output, (count, 2 * ny, 2 * nx), "float32",
                            pixel_size_nm=recon.output_pixel_size_nm, axes="TYX", overwrite=overwrite)
    wf_writer = (StackWriter(widefield_output, (count, ny, nx), "float32", pixel_size_nm=pixel_size_nm,
                             axes="TYX", overwrite=overwrite) if widefield_output else None)
    with sr_writer, (wf_writer or nullcontext()):
        bar = tqdm(total=count, unit="frame set", desc="SIM reconstruction", disable=not progress)
        for start in range(0, count, batch_size):
            block = np.stack([_time_point(stack, t) for t in range(start, min(count, start + batch_size))])
            sr_writer.write(recon(block).cpu().numpy())
            if wf_writer is not None:
                wf_writer.write(recon.widefield(block).cpu().numpy())
            bar.update(len(block))
        bar.close()
    return summary


def parse_prior(angles_deg: str | None, spacing_nm: float | None, window_deg: float,
                spacing_window_percent: float) -> PatternPrior | None:
    """A :class:`PatternPrior` from CLI text such as ``"10.5,70.4,130.6"`` (or one base angle)."""
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
