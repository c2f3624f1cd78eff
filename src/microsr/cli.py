"""The ``microsr`` command line: each command parses its flags and calls one public function of the package."""

from __future__ import annotations

import gc
import importlib
import json
import signal
import sys
import threading
import warnings
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from microsr.errors import MicrosrError
from microsr.io.atomic import terminate_as_interrupt

# The rest of the package is imported inside each command, not here: torch, Lightning and the networks take ~6 s
# to import (measured on the 2-core machines), and `microsr --help` or a mistyped flag should answer at once.


def _bare_flags(params: list) -> list:
    # typer 0.29 with click 8.5 labels a flag "<bool>" in --help, as if it took a value: show flags bare.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx) -> list:
        return _bare_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx) -> list:
        return _bare_flags(super().get_params(ctx))


def _typer(help: str) -> typer.Typer:
    return typer.Typer(no_args_is_help=True, help=help, cls=_Group)


# -h as well as --help, on every command: subcommands inherit the root's help option names.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=_Group,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Super-resolution microscopy that can be checked against the physics.")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("microsr")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from microsr import __version__ as number
        typer.echo(f"microsr {number}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print microsr's version and exit."),
          threads: Optional[int] = typer.Option(None, "--threads", min=1, help=(
              "CPU threads for the numerical work (default: MICROSR_THREADS, else OMP_NUM_THREADS, else the "
              "cores that other programs leave idle right now). Put it before the command: microsr --threads 1 "
              "sim reconstruct …"))) -> None:
    """Super-resolution microscopy that can be checked against the physics."""
    from microsr.threads import use_threads

    use_threads(threads)
simulate_app = _typer("Make synthetic data with known ground truth.")
sim_app = _typer("Structured illumination: estimate patterns, reconstruct.")
app.add_typer(simulate_app, name="simulate")
app.add_typer(sim_app, name="sim")
sfsrm_app = _typer("Single-frame super-resolution (SFSRM): train, predict.")
app.add_typer(sfsrm_app, name="sfsrm")
rdl_app = _typer("rDL SIM: pattern-informed denoising of raw SIM frames.")
app.add_typer(rdl_app, name="rdl")
selfsup_app = _typer("Self-supervised rDL for lattice light-sheet stacks (TiS / SiS), no clean data.")
app.add_typer(selfsup_app, name="selfsup")
export_app = _typer("Export a model to another tool's format.")
app.add_typer(export_app, name="export")


def _run_files(inputs: List[Path], output: Path, task, options: dict, *, workers: int, scheduler: Optional[str],
               overwrite: bool, single_file_only: dict, **plan) -> Optional[dict]:
    """One input: run ``task`` here and return its summary for the command to print. Several inputs (files,
    globs, folders): ``output`` is a folder; run them all (Dask with ``workers`` > 1 or a ``scheduler``),
    print the table on stderr and the items as JSON on stdout, exit 1 if any failed; return None."""
    from microsr.errors import InputError
    from microsr.pipelines.batch import batch_table, plan_jobs, run_batch

    jobs, single = plan_jobs(inputs, output, **plan)
    if single:
        return task(jobs[0][0], jobs[0][1], overwrite=overwrite, progress=sys.stderr.isatty(), **options)
    for flag, value in single_file_only.items():
        if value:
            raise InputError(f"{flag} names one file, and {len(jobs)} inputs were given: leave it out, or run the files "
                             "one by one")
    items = run_batch(task, jobs, workers=workers, scheduler=scheduler, overwrite=overwrite,
                      show_progress=sys.stderr.isatty(), **options)
    typer.echo(batch_table(items), err=True)
    typer.echo(json.dumps([item.as_dict() for item in items]))
    if any(item.status == "failed" for item in items):
        raise typer.Exit(1)
    return None


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


DEVICE = typer.Option(Device.auto, "--device", help="Where the networks run: auto (a GPU if there is one), cpu "
                                                      "or cuda.")
SEED = typer.Option(0, "--seed", help="Random seed: the same seed gives the same data.")


class LRSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


class PhaseSteps(str, Enum):
    equal = "equal"
    free = "free"


PHASE_STEPS = typer.Option(PhaseSteps.equal, "--phase-steps",
                           help="equal: one offset, steps of 2π/P (robust); free: a phase per frame "
                                "(for phase shifters known to be off).")


class Apodization(str, Enum):
    otf = "otf"
    cosine = "cosine"
    none = "none"


ANGLES = typer.Option(3, "--angles", min=1, help="Pattern orientations per time point.")
PHASES = typer.Option(3, "--phases", min=3, help="Phase steps per orientation (3 or 5).")
PIXEL = typer.Option(None, "--pixel-size-nm", help="Camera pixel size in the sample (nm); default: from the file.")
NA = typer.Option(1.35, "--na", help="Numerical aperture of the objective.")
WAVELENGTH = typer.Option(525.0, "--wavelength-nm", help="Emission wavelength (nm).")
OTF_FILE = typer.Option(None, "--otf", help="Measured radial OTF (.mrc); overrides --na/--wavelength-nm.")
BACKGROUND = typer.Option("auto", "--background",
                          help="Camera offset to subtract (counts), or 'auto' (a low percentile).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace outputs that exist.")
RAW_FRAMES = typer.Argument(..., help="Raw SIM frames (TIFF, OME-TIFF, MRC, Zarr).")
WORKERS = typer.Option(1, "--workers", min=1, help="With several inputs: run them on a local Dask cluster of N "
                                                   "processes (the cores shared among them); 1: one after another.")
SCHEDULER = typer.Option(None, "--scheduler", help="With several inputs: the address of a running Dask scheduler "
                                                   "(tcp://host:8786) whose workers run them.")
PARAMS_FILE = typer.Option(None, "--params", help="Parameters from 'sim estimate'; estimated from the data if not given.")


def _warn(messages: list[str]) -> None:
    for message in messages:
        typer.secho(f"warning: {message}", fg="yellow", err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A warning of the package (a pixel size read by a rule, an acquisition outside a model's range) is
    # one line for the user, as errors are; Python's default adds a file name and a source line.
    _warn([str(message)])


@simulate_app.command("sim", cls=_Command, epilog="Example: microsr simulate sim sim_data --size 256 --photons 30 --modulation 0.7")
def simulate_sim_command(
    outdir: Path = typer.Argument(..., help="Folder for raw.tif, ground_truth.tif, widefield.tif, truth.json."),
    size: int = typer.Option(256, "--size", min=32, help="Raw frame size (pixels, square)."),
    pixel_size_nm: float = typer.Option(62.6, "--pixel-size-nm", help="Camera pixel size in the sample (nm). 62.6: the rDL TIRF-SIM."),
    na: float = NA,
    wavelength_nm: float = WAVELENGTH,
    angles: int = ANGLES,
    phases: int = PHASES,
    photons: float = typer.Option(30.0, "--photons", help="Peak photons per pixel of the widefield image."),
    pattern_fraction: float = typer.Option(0.92, "--pattern-fraction",
                                           help="Pattern frequency / OTF cut-off."),
    modulation: float = typer.Option(0.8, "--modulation", min=0.0, max=1.0,
                                     help="Pattern modulation depth m, 0–1 (real TIRF-SIM: 0.5–0.9)."),
    angle_deg: Optional[float] = typer.Option(None, "--angle-deg", help="Base angle; random if not given."),
    phase_jitter_rad: float = typer.Option(0.0, "--phase-jitter-rad",
                                           help="Standard deviation of each frame's phase error (radians)."),
    time_points: int = typer.Option(1, "--time-points", min=1,
                                    help="Raw sets to simulate (a movie of the same field, with bleaching)."),
    otf: Optional[Path] = OTF_FILE,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
):
    """Simulate a raw 2-D SIM acquisition (filaments and dots) with its ground truth."""
    import math

    from microsr.optics import load_otf_mrc
    from microsr.pipelines.simulate import write_simulation
    from microsr.synthetic import simulate_sim

    data = simulate_sim(shape=(size, size), pixel_size_nm=pixel_size_nm, na=na, wavelength_nm=wavelength_nm,
                        pattern_fraction_of_cutoff=pattern_fraction, angles=angles, phases=phases,
                        modulation=modulation, photons=photons, time_points=time_points,
                        angle_rad=math.radians(angle_deg) if angle_deg is not None else None,
                        phase_jitter_rad=phase_jitter_rad,
                        otf=load_otf_mrc(otf) if otf else None, seed=seed)
    written = write_simulation(data, outdir, overwrite)
    typer.echo(f"wrote {len(written)} files to {outdir} (camera offset {data.camera.offset_adu:g}, "
               f"background {data.camera.background_photons:g} photons)")


class Specimen(str, Enum):
    filaments = "filaments"
    line_pairs = "line-pairs"
    dot_pairs = "dot-pairs"
    rings = "rings"


def _simulate_command(kind: str):
    def command(outdir: Path = typer.Argument(..., help="Folder for ground_truth.tif, widefield.tif, truth.json."),
                field_um: float = typer.Option(10.0, "--field-um", help="Field of view (µm, square)."),
                gt_pixel_nm: float = typer.Option(10.0, "--gt-pixel-nm", help="Ground-truth pixel size."),
                lr_pixel_nm: float = typer.Option(100.0, "--pixel-size-nm", help="Widefield pixel size."),
                fwhm_nm: Optional[float] = typer.Option(None, "--fwhm-nm",
                                                        help="PSF FWHM; default 200 (lines) or 280 (pairs, rings)."),
                snr: float = typer.Option(15.0, "--snr", help="SNR of the widefield image (paper 003)."),
                density: Optional[float] = typer.Option(None, "--density", help="Signal density (filaments)."),
                count: Optional[int] = typer.Option(None, "--count", min=1,
                                                    help="Number of chains, pairs or rings (default: the paper's)."),
                seed: int = SEED,
                overwrite: bool = OVERWRITE):
        from microsr.pipelines.simulate import write_widefield_simulation

        write_widefield_simulation(kind, outdir, field_um=field_um, gt_pixel_nm=gt_pixel_nm, lr_pixel_nm=lr_pixel_nm,
                                   fwhm_nm=fwhm_nm, snr=snr, density=density, count=count, seed=seed,
                                   overwrite=overwrite)
        typer.echo(f"wrote ground_truth.tif ({gt_pixel_nm:g} nm), widefield.tif ({lr_pixel_nm:g} nm) and truth.json "
                   f"to {outdir}")

    command.__doc__ = f"Simulate {kind} as in paper 003: ground truth and noisy widefield image."
    return command


for _specimen in Specimen:
    simulate_app.command(_specimen.value, cls=_Command,
                         epilog=f"Example: microsr simulate {_specimen.value} fil --pixel-size-nm 100")(_simulate_command(_specimen.value))


@sim_app.command("estimate", cls=_Command, epilog="Example: microsr sim estimate sim_data/raw.tif --json params.json --pixel-size-nm 62.6")
def sim_estimate_command(
    raw: Path = RAW_FRAMES,
    json_out: Path = typer.Option(..., "--json", help="Where to write the parameters (JSON)."),
    pixel_size_nm: Optional[float] = PIXEL,
    na: float = NA,
    wavelength_nm: float = WAVELENGTH,
    otf: Optional[Path] = OTF_FILE,
    background: str = BACKGROUND,
    angles: int = ANGLES,
    phases: int = PHASES,
    average: int = typer.Option(1, "--average", min=0,
                                help="Average the first N time points before estimating (0 = all)."),
    prior_angles_deg: Optional[str] = typer.Option(None, "--prior-angles-deg",
                                                   help="Calibrated angles, e.g. '10.5,70.4,130.6' or one base angle."),
    prior_spacing_nm: Optional[float] = typer.Option(None, "--prior-spacing-nm", help="Calibrated pattern spacing."),
    prior_window_deg: float = typer.Option(3.0, "--prior-window-deg", help="Angle search half-width around the prior."),
    prior_window_percent: float = typer.Option(5.0, "--prior-window-percent",
                                               help="Spacing search half-width around the prior (%)."),
    phase_steps: PhaseSteps = PHASE_STEPS,
    figure: Optional[Path] = typer.Option(None, "--figure", help="Quality figure (PNG); default next to the JSON."),
    overwrite: bool = OVERWRITE,
):
    """Estimate pattern angle, spacing, phases and modulation of each orientation."""
    from microsr.pipelines.sim import Optics, estimate_file, parse_prior

    params = estimate_file(raw, json_out, optics=Optics(na, wavelength_nm, str(otf) if otf else None), angles=angles,
                           phases=phases, pixel_size_nm=pixel_size_nm, background=background,
                           average_time_points=average,
                           prior=parse_prior(prior_angles_deg, prior_spacing_nm, prior_window_deg, prior_window_percent),
                           phase_steps=phase_steps.value, figure=figure, overwrite=overwrite)
    for a, o in enumerate(params.orientations):
        typer.echo(f"orientation {a}: angle {o.to_dict()['angle_deg']:.3f}°, spacing {o.spacing_nm:.2f} nm, "
                   f"modulation {o.modulation:.2f}, phases "
                   + ", ".join(f"{p:.2f}" for p in o.phases_rad) + " rad")
    typer.echo(f"wrote {json_out} and {figure or json_out.with_suffix('.png')}")


@sim_app.command("reconstruct", cls=_Command, epilog="Example: microsr sim reconstruct sim_data/raw.tif -o sim.tif --params params.json")
def sim_reconstruct_command(
    raw: List[Path] = typer.Argument(..., help="Raw SIM frames (TIFF, OME-TIFF, MRC, Zarr); several files, globs or "
                                               "folders: each is reconstructed into the folder -o."),
    output: Path = typer.Option(..., "-o", "--output", help="SR image or stack (.tif, .ome.tif, .zarr); with several "
                                                            "inputs, a folder."),
    params_file: Optional[Path] = PARAMS_FILE,
    pixel_size_nm: Optional[float] = PIXEL,
    na: float = NA,
    wavelength_nm: float = WAVELENGTH,
    otf: Optional[Path] = OTF_FILE,
    background: str = BACKGROUND,
    angles: int = ANGLES,
    phases: int = PHASES,
    wiener: float = typer.Option(0.05, "--wiener", min=0.0, help="Wiener parameter w (larger: smoother)."),
    apodization: Apodization = typer.Option(Apodization.otf, "--apodization",
                                            help="Final spectrum shaping: otf (the extended OTF, no ringing), "
                                                 "cosine (a cosine bell to the cut-off) or none."),
    apodization_cutoff: float = typer.Option(1.0, "--apodization-cutoff", min=0.1,
                                             help="Apodization radius as a fraction of the SIM cut-off."),
    average: int = typer.Option(1, "--average", min=0, help="Time points averaged for estimation (0 = all)."),
    phase_steps: PhaseSteps = PHASE_STEPS,
    widefield: Optional[Path] = typer.Option(None, "--widefield", help="Also write the widefield image here."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Write a widefield-vs-SIM figure (PNG)."),
    device: Device = DEVICE,
    batch_size: int = typer.Option(0, "--batch-size", min=0,
                                   help="Frame sets per batch; 0 = auto (1 on CPU, where batching only "
                                        "costs cache, 8 on a GPU)."),
    workers: int = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    overwrite: bool = OVERWRITE,
):
    """Wiener-reconstruct raw SIM frames onto a 2× grid (every time point of a stack)."""
    from microsr.pipelines.sim import Optics, reconstruct_file_task
    from microsr.sim.parameters import SIMParameters

    options = dict(optics=Optics(na, wavelength_nm, str(otf) if otf else None), angles=angles, phases=phases,
                   pixel_size_nm=pixel_size_nm, background=background,
                   params=SIMParameters.load(params_file) if params_file else None, average_time_points=average,
                   phase_steps=phase_steps.value, wiener_weight=wiener, apodization=apodization.value,
                   apodization_cutoff=apodization_cutoff, widefield_output=widefield, figure=figure,
                   device=device.value, batch_size=batch_size)
    summary = _run_files(raw, output, reconstruct_file_task, options, workers=workers, scheduler=scheduler,
                         overwrite=overwrite, single_file_only={"--widefield": widefield, "--figure": figure})
    if summary is not None:
        typer.echo(json.dumps(summary))


@sim_app.command("check", cls=_Command, epilog="Example: microsr sim check sim_data/raw.tif --out qc")
def sim_check_command(
    raw: Path = RAW_FRAMES,
    out: Path = typer.Option(Path("sim_check"), "--out", help="Folder for qc.json and qc.png."),
    params_file: Optional[Path] = PARAMS_FILE,
    pixel_size_nm: Optional[float] = PIXEL,
    na: float = NA,
    wavelength_nm: float = WAVELENGTH,
    otf: Optional[Path] = OTF_FILE,
    background: str = BACKGROUND,
    angles: int = ANGLES,
    phases: int = PHASES,
    overwrite: bool = OVERWRITE,
):
    """Check raw SIM data and its reconstruction (SIMcheck's tests): camera, bleaching, excitation, pattern, artifacts."""
    from microsr.pipelines.sim import Optics, check_file
    from microsr.sim.parameters import SIMParameters

    report = check_file(raw, out, optics=Optics(na, wavelength_nm, str(otf) if otf else None), angles=angles,
                        phases=phases, pixel_size_nm=pixel_size_nm, background=background,
                        params=SIMParameters.load(params_file) if params_file else None, overwrite=overwrite)
    for flag in report["flags"]:
        typer.secho(f"flag: {flag}", fg="yellow", err=True)
    typer.echo(json.dumps({key: report[key] for key in ("flags", "stuck_pixels", "camera_stripes",
                                                          "bleaching_per_frame", "excitation_fluctuation",
                                                          "modulation_contrast_median", "residual_pattern_index",
                                                          "json", "figure")}))


class Normalization(str, Enum):
    percentile = "percentile"
    linear_fit = "linear_fit"


@app.command("evaluate", cls=_Command, epilog="Example: microsr evaluate sr.tif --reference storm.tif --widefield widefield.tif --out eval")
def evaluate_command(
    sr: Path = typer.Argument(..., help="Super-resolution image (2-D, or a (T, Y, X) stack: see --frame)."),
    out: Path = typer.Option(..., "--out", help="Folder for metrics.json and report.png."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Ground truth or trusted SR image."),
    widefield: Optional[Path] = typer.Option(None, "--widefield", help="Widefield image of the same field."),
    frc_pair: Optional[Path] = typer.Option(None, "--frc-pair",
                                            help="An independent second SR image (other noise) for FRC."),
    ensemble: Optional[List[Path]] = typer.Option(None, "--ensemble",
                                                  help="Other models' outputs for the same input (repeatable)."),
    pixel_size_nm: Optional[float] = typer.Option(None, "--pixel-size-nm", help="SR pixel size; default: from the file."),
    reference_pixel_size_nm: Optional[float] = typer.Option(None, "--reference-pixel-size-nm", help=(
        "Reference pixel size (nm); default: from the file, or the SR grid for a reference of the SR's shape.")),
    widefield_pixel_size_nm: Optional[float] = typer.Option(None, "--widefield-pixel-size-nm",
                                                            help="Widefield pixel size (nm); default: from the file."),
    frame: int = typer.Option(0, "--frame", min=0, help="Frame of an SR stack to evaluate."),
    normalization: Normalization = typer.Option(Normalization.percentile, "--normalization",
                                                help="How SR is normalized against the reference."),
    params: Optional[Path] = typer.Option(None, "--params", help="Pattern parameters of the raw frames ('microsr sim "
                                                                 "estimate'): adds the residual-pattern artifact index."),
    overwrite: bool = OVERWRITE,
):
    """Measure fidelity, resolution and confidence of an SR image: metrics.json and report.png."""
    from microsr.pipelines.evaluate import evaluate_files

    result = evaluate_files(sr, out, reference=reference, widefield=widefield, frc_pair=frc_pair, ensemble=ensemble,
                            pixel_size_nm=pixel_size_nm, reference_pixel_size_nm=reference_pixel_size_nm,
                            widefield_pixel_size_nm=widefield_pixel_size_nm, frame=frame,
                            normalization=normalization.value, params=params, overwrite=overwrite)
    typer.echo(json.dumps({k: v for k, v in result.metrics.items() if not isinstance(v, (list, dict))}))
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'report.png'}")


def _lightning_overrides(devices: Optional[str], strategy: Optional[str], accelerator: Optional[str]) -> dict:
    """Command-line flags that replace the config's Lightning settings."""
    return {k: v for k, v in (("devices", int(devices) if devices and devices.isdigit() else devices),
                              ("strategy", strategy), ("accelerator", accelerator)) if v is not None}


def _train(settings, train, devices: Optional[str] = None, strategy: Optional[str] = None,
           accelerator: Optional[str] = None) -> None:
    """Run ``train(settings)`` with the Lightning flags applied and say what it wrote."""
    settings = settings.model_copy(update=_lightning_overrides(devices, strategy, accelerator))
    model_path = train(settings, progress=sys.stderr.isatty())
    if model_path is None:  # another rank of a DDP run: the first one exports and says so
        return
    typer.echo(f"wrote {model_path} and {settings.output_dir / 'loss.png'}")


DEVICES = typer.Option(None, "--devices", help="Lightning devices (e.g. 1, 4, auto).")
STRATEGY = typer.Option(None, "--strategy", help="Lightning strategy (e.g. ddp).")
ACCELERATOR = typer.Option(None, "--accelerator", help="cpu, gpu or auto.")


def _train_command(trainer: str, load: str, train: str, config_help: str, doc: str):
    """A ``train`` command: read the YAML configuration with ``trainer.load``, run ``trainer.train``."""
    def command(config: Path = typer.Argument(..., help=config_help), devices: Optional[str] = DEVICES,
                strategy: Optional[str] = STRATEGY, accelerator: Optional[str] = ACCELERATOR):
        module = importlib.import_module(trainer)
        _train(getattr(module, load)(config), getattr(module, train), devices, strategy, accelerator)

    command.__doc__ = doc
    return command


sfsrm_app.command("train", cls=_Command, epilog="Example: microsr sfsrm train examples/sfsrm_srn_realistic_x4.yaml")(_train_command(
    "microsr.train.sfsrm", "load_sfsrm_config", "train_sfsrm",
    "YAML training configuration (see examples/sfsrm_*.yaml).",
    "Train (or resume) an SEN or SRN; writes model.pt, loss.png and checkpoints into output_dir."))
rdl_app.command("train", cls=_Command, epilog="Example: microsr rdl train examples/rdl_denoise_tirf.yaml")(_train_command(
    "microsr.train.rdl", "load_rdl_config", "train_rdl",
    "YAML configuration: task sr (DFCAN) or denoise (rDL denoiser).",
    "Train (or resume) one rDL network; copy model.pt to MODEL/sr.pt or MODEL/denoiser.pt."))


@sfsrm_app.command("finetune", cls=_Command, epilog="Example: microsr sfsrm finetune my_pairs --from filaments-x4 -o my_model")
def sfsrm_finetune_command(
    pairs_dir: Path = typer.Argument(..., help="Folder with widefield/NAME.tif and sr/NAME.tif (STORM, SIM, … of "
                                                "the same fields)."),
    base: str = typer.Option("filaments-x4", "--from", help="Model to start from: a shipped name or a model folder."),
    output: Path = typer.Option(..., "-o", "--output", help="New model folder (srn.pt, srn_1.pt, …, sen.pt, "
                                                            "finetune.json)."),
    iterations: int = typer.Option(300, "--iterations", min=1, help="Training iterations (batches of 8 patches) "
                                                                    "of each SRN."),
    members: Optional[int] = typer.Option(None, "--members", min=1, help="Fine-tune only the first N SRNs of the "
                                          "ensemble (faster; 1: no disagreement map); default: all."),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", min=0.0, help="Adam's step size."),
    widefield_pixel_size_nm: Optional[float] = typer.Option(None, "--widefield-pixel-size-nm",
                                                            help="Widefield pixel size; default: from the files."),
    sr_pixel_size_nm: Optional[float] = typer.Option(None, "--sr-pixel-size-nm",
                                                     help="SR pixel size; default: from the files."),
    overwrite: bool = OVERWRITE,
):
    """Fine-tune an SFSRM model on your registered widefield/SR pairs (each pair is checked for registration first)."""
    from microsr.train.sfsrm_finetune import finetune

    summary = finetune(pairs_dir, base, output, iterations=iterations, learning_rate=learning_rate,
                       widefield_pixel_nm=widefield_pixel_size_nm, sr_pixel_nm=sr_pixel_size_nm,
                       members=members, overwrite=overwrite, progress=sys.stderr.isatty())
    for record in summary["pairs"]:
        typer.echo(f"{record['name']}: widefield ×{record['widefield_factor']:g}, SR ×{record['sr_factor']:g} to the "
                   f"model's grid; registration correlation {record['correlation']:.2f}", err=True)
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "pairs"}))


@sfsrm_app.command("predict", cls=_Command, epilog="Example: microsr sfsrm predict widefield.tif -o sr.tif")
def sfsrm_predict_command(
    image: List[Path] = typer.Argument(..., help="Widefield frame (Y, X) or movie (T, Y, X): TIFF, MRC, Zarr; several "
                                                 "files, globs or folders: each is super-resolved into the folder -o."),
    output: Path = typer.Option(..., "-o", "--output", help="SR image or stack (.tif, .zarr); with several inputs, a "
                                                            "folder."),
    model: str = typer.Option("filaments-x4", "--model", help="Shipped model name or a folder with srn.pt/sen.pt."),
    pixel_size_nm: Optional[float] = typer.Option(None, "--pixel-size-nm", help="Input pixel size; default: from the file."),
    ensemble: Optional[List[str]] = typer.Option(None, "--ensemble", help="More models: average and disagreement map."),
    confidence: Optional[Path] = typer.Option(None, "--confidence",
                                              help="Write the disagreement (ensemble) or temporal agreement (movie) map."),
    tile_px: Optional[int] = typer.Option(None, "--tile-px", min=32, help="Tile size; default from free memory."),
    disagreement: bool = typer.Option(True, "--disagreement/--no-disagreement", help=(
        "With an ensemble (a model with srn_1.pt, … or --ensemble): write the members' disagreement map beside "
        "the output (NAME_disagreement.tif) and summarize it on stderr. --no-disagreement: the first SRN only.")),
    device: Device = DEVICE,
    workers: int = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    overwrite: bool = OVERWRITE,
):
    """Super-resolve widefield frames with a trained SFSRM (SEN → edge map → SRN); one movie's frames in parallel
    with --workers."""
    from microsr.errors import InputError
    from microsr.pipelines.sfsrm import is_movie, loaded_model, predict_file_task, predict_movie_parallel

    names = (model, *(ensemble or []))
    for name in names:  # a wrong model name is one error now, not one per file later
        loaded_model(name, device.value)
    if len(image) == 1 and (workers > 1 or scheduler) and is_movie(image[0]):
        # One movie, several workers: its frames in parallel (a Dask array), straight into an OME-Zarr output.
        if confidence or ensemble:
            raise InputError("--confidence (temporal agreement) and --ensemble need the frames in order on one "
                             "worker: leave out --workers/--scheduler, or those flags")
        typer.echo(json.dumps(predict_movie_parallel(model, image[0], output, pixel_size_nm=pixel_size_nm,
                                                     device=device.value, workers=workers, scheduler=scheduler,
                                                     tile_px=tile_px, overwrite=overwrite)))
        return
    options = dict(models=names, device=device.value, pixel_size_nm=pixel_size_nm, confidence=confidence,
                   tile_px=tile_px, disagreement=disagreement)
    summary = _run_files(image, output, predict_file_task, options, workers=workers, scheduler=scheduler,
                         overwrite=overwrite, single_file_only={"--confidence": confidence})
    if summary is None:
        return
    if summary.get("disagreement"):
        spread = summary["disagreement"]
        typer.echo(f"disagreement of the ensemble (0–1 scale): mean {spread['mean']:.3f}, 99th percentile "
                   f"{spread['p99']:.3f}, per unit of signal {spread['relative']:.2f} (~0.15 on specimens like the "
                   f"training data); bright in {summary['confidence']} = structure the members do not agree on: do "
                   "not trust it", err=True)
    typer.echo(json.dumps(summary))


class PhaseOrders(str, Enum):
    all = "all"
    one = "one"


@rdl_app.command("predict", cls=_Command, epilog="Example: microsr rdl predict raw.tif -o rdl.tif")
def rdl_predict_command(
    raw: List[Path] = typer.Argument(..., help="Raw SIM frames: (A·P, Y, X) or a time series, TIFF/MRC/Zarr; several "
                                               "files, globs or folders: each goes to the folder -o."),
    output: Path = typer.Option(..., "-o", "--output", help="rDL SIM image stack (T, 2Y, 2X): .tif or .zarr; with "
                                                            "several inputs, a folder."),
    model: str = typer.Option("tirf-sim-3x3", "--model",
                              help="Shipped model name, or a folder with sr.pt and denoiser.pt ('microsr rdl train')."),
    denoised_out: Optional[Path] = typer.Option(None, "--denoised-out", help="Also write the denoised raw frames."),
    background: str = typer.Option("auto", "--background", help="Camera offset + background, or 'auto'."),
    params: Optional[Path] = typer.Option(None, "--params", help="Pattern parameters JSON ('microsr sim estimate')."),
    pixel_size_nm: Optional[float] = typer.Option(None, "--pixel-size-nm", help="Default: from the file."),
    otf: Optional[Path] = typer.Option(None, "--otf", help="Measured OTF (.mrc); default: ideal, from the model."),
    na: Optional[float] = typer.Option(None, "--na", help="Numerical aperture; default: the model's acquisition."),
    wavelength_nm: Optional[float] = typer.Option(None, "--wavelength-nm",
                                                  help="Emission wavelength (nm); default: the model's acquisition."),
    prior_angles_deg: Optional[str] = typer.Option(None, "--prior-angles-deg",
                                                   help="Calibrated pattern angles, comma-separated (degrees)."),
    prior_spacing_nm: Optional[float] = typer.Option(None, "--prior-spacing-nm", help="Calibrated pattern spacing."),
    phase_orders: PhaseOrders = typer.Option(PhaseOrders.all, "--phase-orders", help=(
        "all: denoise each orientation with its phases in every order and average (no brightness tied to a "
        "network channel reaches the image as a pattern); one: the acquisition's order only, 2P× faster.")),
    device: Device = DEVICE,
    workers: int = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    overwrite: bool = OVERWRITE,
):
    """Denoise raw SIM frames with the pattern in the loop, then reconstruct them (rDL SIM)."""
    from microsr.pipelines.rdl_sim import loaded_model, predict_file_task
    from microsr.pipelines.sim import parse_prior
    from microsr.sim.parameters import SIMParameters

    # Loaded here first, so that a wrong model, OTF or optics is one error, not one per file.
    loaded_model(model, device.value, str(otf) if otf else None, na, wavelength_nm)
    options = dict(model=model, device=device.value, otf=str(otf) if otf else None, na=na, wavelength_nm=wavelength_nm,
                   denoised_output=denoised_out, background=background,
                   params=SIMParameters.load(params) if params else None, pixel_size_nm=pixel_size_nm,
                   prior=parse_prior(prior_angles_deg, prior_spacing_nm), phase_orders=phase_orders.value)
    summary = _run_files(raw, output, predict_file_task, options, workers=workers, scheduler=scheduler,
                         overwrite=overwrite, single_file_only={"--denoised-out": denoised_out})
    if summary is not None:
        typer.echo(json.dumps(summary))


class SelfSupMode(str, Enum):
    tis = "tis"
    sis = "sis"


@selfsup_app.command("train", cls=_Command, epilog="Example: microsr selfsup train stack.zarr --mode tis -o tis_run")
def selfsup_train_command(
    stack: Path = typer.Argument(..., help="Noisy (T, Z, Y, X) stack: Zarr, or a folder of TIFF volumes."),
    mode: SelfSupMode = typer.Option(..., "--mode", help="tis: time points 2k ↔ 2k+1; sis: odd ↔ even z-slices."),
    output_dir: Optional[Path] = typer.Option(None, "-o", "--output-dir", help="Run folder (checkpoints, model.pt)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with any SelfSupConfig keys."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1,
                                             help="Training iterations; default: the config's (1000)."),
    gar_weight: Optional[float] = typer.Option(None, "--gar-weight", help=(
        "Gap-amending regularization, 0 to < 1 (default 0.5): how far the target moves from the "
        "neighbouring planes (SiS) or time point (TiS) towards the input's own. 0 turns it off.")),
    lr_schedule: Optional[LRSchedule] = typer.Option(None, "--lr-schedule", help=(
        "constant, or cosine: the learning rate falls along a half cosine to 1 % by the last iteration.")),
    devices: Optional[str] = DEVICES,
    strategy: Optional[str] = STRATEGY,
    accelerator: Optional[str] = ACCELERATOR,
):
    """Train (or resume) a 3-D RCAN denoiser on the noisy stack itself; a killed run resumes from its folder."""
    from microsr.train.selfsup import load_selfsup_config, train_selfsup

    settings = load_selfsup_config(config, stack=stack, mode=mode.value, iterations=iterations, gar_weight=gar_weight,
                                   lr_schedule=lr_schedule.value if lr_schedule else None,
                                   output_dir=output_dir or (None if config else Path("runs") / f"selfsup_{mode.value}"),
                                   **_lightning_overrides(devices, strategy, accelerator))
    _train(settings, train_selfsup)


@selfsup_app.command("predict", cls=_Command, epilog="Example: microsr selfsup predict stack.zarr -o denoised.zarr --model tis_run/model.pt")
def selfsup_predict_command(
    stack: List[Path] = typer.Argument(..., help="Noisy (T, Z, Y, X) stack: Zarr, or a folder of TIFF volumes; several "
                                                 "stacks (or a glob): each is denoised into the folder -o."),
    output: Path = typer.Option(..., "-o", "--output", help="Denoised stack (.zarr, OME-Zarr); with "
                                                            "several stacks, a folder."),
    model: Path = typer.Option(..., "--model", help="model.pt of 'microsr selfsup train' (or its run folder), "
                                                    "or a shipped model (llsm-vesicles-tis)."),
    memory_mb: float = typer.Option(2048.0, "--memory-mb", min=1.0,
                                    help="Memory for tiles, activations and output buffers; sets the tile size."),
    device: Device = DEVICE,
    tta: bool = typer.Option(False, "--tta", help="Average over the 8 lateral rotations and flips of each tile: "
                                                  "less noise, 8 times the time."),
    workers: int = WORKERS,
    scheduler: Optional[str] = SCHEDULER,
    overwrite: bool = OVERWRITE,
):
    """Denoise every volume with a TiS/SiS-rDL model, tile by tile; a killed run, started again, skips finished volumes."""
    from microsr.pipelines.selfsup import SelfSupDenoiser, predict_file_task

    SelfSupDenoiser.from_pretrained(model, device.value, tta=tta)  # a wrong model is one error, not one per stack
    options = dict(model=str(model), device=device.value, tta=tta, memory_mb=memory_mb)
    # A folder is one stack here (a folder of TIFF volumes), never a folder of inputs.
    summary = _run_files(stack, output, predict_file_task, options, workers=workers, scheduler=scheduler,
                         overwrite=overwrite, single_file_only={}, folders_are_inputs=True, suffix=".zarr")
    if summary is not None:
        typer.echo(json.dumps(summary))


@export_app.command("bioimageio", cls=_Command,
                    epilog="Example: microsr export bioimageio filaments-x4 -o sfsrm_filaments_x4.zip")
def export_bioimageio_command(
    model: str = typer.Argument(..., help="A shipped model name ('microsr models') or a model folder."),
    output: Path = typer.Option(..., "-o", "--output", help="The bioimage.io model package to write (.zip)."),
    overwrite: bool = OVERWRITE,
):
    """Write a bioimage.io model (format 0.5) that Fiji, napari, ilastik and bioimageio.core run (SFSRM, TiS/SiS)."""
    from microsr.pipelines.export import export_bioimageio

    typer.echo(json.dumps(export_bioimageio(model, output, overwrite=overwrite)))


@app.command("models", cls=_Command, epilog="Example: microsr models --json")
def models_command(
    as_json: bool = typer.Option(False, "--json", help="One JSON list on stdout instead of the table."),
):
    """List the shipped models: name, method, what each is for, size, what it was trained on, its model card."""
    from microsr.models.shipped import shipped_model_summaries

    summaries = shipped_model_summaries()
    if as_json:
        typer.echo(json.dumps(summaries))
        return
    width = max((len(m["name"]) for m in summaries), default=4)
    for summary in summaries:
        indent = " " * (width + 24)
        typer.echo(f"{summary['name']:<{width}}  {summary['method']:<20}  {summary['description']}")
        trained = {k: v for k, v in summary["trained_on"].items() if k != "measured"}
        typer.echo(f"{indent}{summary['parameters'] / 1e6:.2f} M parameters, {summary['size_mb']:g} MB; trained for "
                   + ", ".join(f"{k} {v}" for k, v in trained.items()))
        for quantity, (low, high) in summary["trained_on"].get("measured", {}).items():
            typer.echo(f"{indent}inputs' {quantity}: {low:g}–{high:g}")
        typer.echo(f"{indent}card: {summary['card']}")


@app.command("demo", cls=_Command, epilog="Example: microsr demo demo_out")
def demo_command(
    outdir: Path = typer.Argument(Path("demo_out"), help="Folder for the demo's files."),
    overwrite: bool = typer.Option(True, "--overwrite/--no-overwrite", help="Replace the files of an earlier demo."),
):
    """SIM: simulate, estimate, reconstruct; SFSRM, rDL SIM, TiS-rDL: the shipped models on held-out data. Figures as PNG."""
    from microsr.pipelines.demo import run_all_demos

    for line in run_all_demos(outdir, overwrite=overwrite):
        typer.echo(line)


def main() -> None:
    """Entry point: user errors print one line and exit 2; Ctrl-C or SIGTERM print "aborted" and exit 130 after
    every output being written is removed; bugs keep their traceback."""
    # SIGTERM unwinds like Ctrl-C, so writers remove their partial outputs (signals reach the main thread only)
    previous = terminate_as_interrupt() if threading.current_thread() is threading.main_thread() else False
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with warnings.catch_warnings():
            # Each run says each of the package's warnings once (not once per frame of a stack), even one said
            # in an earlier run in this process: changing the filters clears what was said.
            warnings.filterwarnings("default", module=r"microsr\.")
            code = app(standalone_mode=False)
    except MicrosrError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except Exception as exc:
        # Usage errors (missing argument, bad number) come from the click that typer bundles;
        # recognize them by their interface rather than a private import path.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code or 2)
        raise
    finally:
        warnings.showwarning = shown
        if previous is not False:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    # Without standalone mode, typer turns an interrupt inside a command into a returned exit code (130)
    # instead of raising it: that code must still reach the shell.
    if code == 130:
        typer.echo("aborted", err=True)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``microsr`` program: :func:`main` in a process of its own, which it leaves without a last walk over
    every object it made."""
    try:
        main()
    finally:
        # At exit the interpreter's collector walks every object still alive: torch's import alone leaves
        # ~10^5, 0.5-0.7 s of a command's time on the 2-core machines. Frozen, they are skipped; whatever they
        # hold goes back to the system with the process. Not in main(): a process that calls main() again (the
        # tests, a notebook) would keep its cyclic garbage forever.
        gc.freeze()


if __name__ == "__main__":
    run()
