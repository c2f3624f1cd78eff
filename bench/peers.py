"""Benchmark: microsr beside its peers (napari-sim-processor, NanoPyx, pytorch-msssim) in one run; prints a table.

Usage: .venv-bench/bin/python bench/peers.py [--repeats 5] [--sizes 256 512] [--metrics-size 1024]
       [--metric-repeats 3] [--threads N] [--clock wall|cpu]

`make bench` runs it in the bench environment that `make bench-env` builds (.venv-bench: the project plus the peers
of bench/peers-requirements.txt); run anywhere else, a peer that is not installed gets a row that says so.

Each row times microsr and the peer on the same input in the same process, interleaved (microsr, peer, microsr,
peer, ...), and gives the medians, their ratio (peer / microsr: above 1, microsr is faster), the peak memory of one
warm call of each, and how far the results agree. The SIM raw frames (3 orientations x 3 phases) come from
microsr's own simulator, so the estimated parameters are compared with the truth, and the two reconstructions with
each other and with the specimen blurred to SIM resolution.

Acceptance (issue 19): SIM reconstruction >= 5x napari-sim-processor at 512² and within 1.5x of the FFT-only time
of the same set; the one-call reconstruct() >= 3x the peer; pattern estimation >= 1x the peer at 256² and 512².
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import io
import math
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable

import numpy as np
import torch

from microsr.threads import use_threads
from scipy import ndimage

from bench_memory import PeakRSS

from microsr.metrics import confidence, fidelity, resolution
from microsr.optics import ideal_otf
from microsr.sim.estimate import estimate_parameters
from microsr.sim.parameters import Orientation, SIMParameters
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor, reconstruct
from microsr.synthetic import filaments_and_dots, sim_resolution_fwhm_nm, sim_target, simulate_sim

PIXEL_NM = 62.6
NA = 1.35
WAVELENGTH_NM = 525.0
BACKGROUND = 102.0  # camera offset + background of the simulator's default camera
METRICS_PIXEL_NM = 30.0


@dataclasses.dataclass
class Row:
    """One line of the table: a task timed in both tools (a missing time is a tool that could not run)."""

    task: str
    size: str
    microsr_s: float | None = None
    peer_s: float | None = None
    microsr_mib: float | None = None
    peer_mib: float | None = None
    agreement: str = ""
    #: For an FFT-only row: the cached reconstruction's time over this one's, timed in the same turns.
    over_floor: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.microsr_s and self.peer_s:
            return self.peer_s / self.microsr_s
        return None


class PeerUnavailable(RuntimeError):
    """A peer that is not installed or cannot start here: its rows say why and the bench goes on."""


def reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 110 else text[:107] + "..."


# ---------------------------------------------------------------------------------------------------------
# timing


@dataclasses.dataclass(frozen=True)
class Timing:
    """How each row is timed: calls per tool and the clock.

    The wall clock is what a user waits. The process CPU clock counts only this process's work, so other jobs on
    the machine hardly move it; it equals the wall time only when every tool runs on one thread (``--threads 1``
    with ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``), and counts a spinning thread's waiting as work otherwise.
    """

    repeats: int
    clock: Callable[[], float] = time.perf_counter


#: A call slower than this is timed once, by its first call, and not repeated: NanoPyx's FRC takes a minute at 1024².
SLOW_SECONDS = 20.0


def peak_mib(function: Callable[[], object]) -> float | None:
    """Peak memory of one warm call above the level before it (measured apart from the timed calls: the
    sampling thread would otherwise take its share of the two cores)."""
    try:
        with PeakRSS() as memory:
            function()
        return memory.mib
    except Exception:  # noqa: BLE001 - its timing row already carries the reason
        return None


@dataclasses.dataclass
class Measured:
    """Medians, failures and peak memory of a group of functions timed in the same turns."""

    seconds: dict[str, float]
    failed: dict[str, str]
    mib: dict[str, float | None]
    once: set[str]

    def row(self, task: str, size: str, ours: str, theirs: str | None, agreement: str = "",
            peer_missing: str = "") -> Row:
        row = Row(task, size, self.seconds.get(ours), self.seconds.get(theirs) if theirs else None,
                  self.mib.get(ours), self.mib.get(theirs) if theirs else None)
        notes = [agreement]
        for who, name in (("microsr", ours), ("peer", theirs)):
            if name in self.failed:
                notes.append(f"{who} failed: {self.failed[name]}")
            elif name in self.once:
                notes.append(f"{who} timed by one call (> {SLOW_SECONDS:.0f} s)")
        if theirs is None:
            notes.append(peer_missing)
        row.agreement = "; ".join(filter(None, notes))
        return row


def measure(functions: dict[str, Callable[[], object] | None], timing: Timing) -> Measured:
    """Median seconds of each function (``None``: not run), timed in turns so that a busy machine slows every tool
    alike, and the peak memory of one more, warm call of each.

    The first call of each is a warm-up (FFT plans, allocations, a peer's first-call set-up); one that fails is
    dropped with its reason and the others go on. One whose first call took over :data:`SLOW_SECONDS` is timed by
    that call alone, its memory measured during it.
    """
    failed, fast, seconds, mib, once = {}, {}, {}, {}, set()
    for name, function in functions.items():
        if function is None:
            continue
        try:
            with PeakRSS() as memory:
                start = timing.clock()
                function()
                took = timing.clock() - start
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a row, not the end of the bench
            failed[name] = reason(exc)
            continue
        if took > SLOW_SECONDS:
            seconds[name], mib[name] = took, memory.mib
            once.add(name)
        else:
            fast[name] = function
    times: dict[str, list[float]] = {name: [] for name in fast}
    for _ in range(timing.repeats):
        for name, function in fast.items():
            start = timing.clock()
            function()
            times[name].append(timing.clock() - start)
    seconds.update({name: statistics.median(values) for name, values in times.items()})
    mib.update({name: peak_mib(function) for name, function in fast.items()})
    return Measured(seconds, failed, mib, once)


# ---------------------------------------------------------------------------------------------------------
# napari-sim-processor


def load_sim_peer():
    """napari-sim-processor's ConvSimProcessor (A angles x P phases), loaded without napari.

    The package's ``__init__`` imports its napari widget (Qt, a display); the processors themselves need only
    NumPy and SciPy (and use torch when it is importable), so the package is stood in for by an empty module
    whose path is the installed one, and only ``processors`` is imported.
    """
    spec = importlib.util.find_spec("napari_sim_processor")
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable("napari-sim-processor is not installed here (make bench-env)")
    if "napari_sim_processor" not in sys.modules:
        package = types.ModuleType("napari_sim_processor")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["napari_sim_processor"] = package
    with contextlib.redirect_stdout(io.StringIO()):  # it prints which accelerators it found
        base = importlib.import_module("napari_sim_processor.processors.baseSimProcessor")
        module = importlib.import_module("napari_sim_processor.processors.convSimProcessor")
    # OpenCV is not among its requirements (NanoPyx brings it into this environment): with it, calibration also
    # builds OpenCV copies of its filters that no path timed here uses, so the peer runs as its own install would.
    base.opencv = False
    return module.ConvSimProcessor, importlib.metadata.version("napari-sim-processor")


def peer_processor(processor_class):
    """A processor for microsr's simulated microscope (its lengths are µm, the pixel is camera pixel / M)."""
    processor = processor_class(3, 3)
    processor.debug = False
    processor.pixelsize = PIXEL_NM / 1000.0
    processor.magnification = 1.0
    processor.NA = NA
    processor.wavelength = WAVELENGTH_NM / 1000.0
    return processor


def peer_to_orientations(processor, phases: int) -> list[Orientation]:
    """The peer's carriers in microsr's convention.

    The peer measures the carrier ``k`` of the cross-correlation of band 0 with the conjugate +1 band, which
    lies at minus the pattern's wave vector, in units of NA/λ, and the phase of that product, minus the pattern's
    phase; both refer to the centre pixel as microsr's do. Its ``ampl`` is the modulation depth. microsr keeps
    angles in [0, π): flipping ``k`` there flips the phase's sign as well.
    """
    orientations = []
    for a in range(processor.kx.shape[0]):
        scale = processor.NA / processor.wavelength  # cycles/µm per peer unit
        kx, ky = -float(processor.kx[a, 0]) * scale, -float(processor.ky[a, 0]) * scale
        phase = -float(processor.p[a, 0])
        angle = math.atan2(ky, kx)
        if not 0 <= angle < math.pi:
            angle, phase = angle % math.pi, -phase
        phases_rad = tuple((phase + 2 * math.pi * p / phases) % (2 * math.pi) for p in range(phases))
        orientations.append(Orientation(angle, 1000.0 / math.hypot(kx, ky), phases_rad,
                                        float(processor.ampl[a, 0])))
    return orientations


def set_peer_carriers(processor, params: SIMParameters) -> None:
    """Give the peer known wave vectors (its "find carrier" unticked): calibration then only refines them."""
    scale = processor.wavelength / processor.NA  # peer units per cycle/µm
    for a, o in enumerate(params.orientations):
        k = o.k_cycles_per_um * scale
        processor.kx[a, 0] = -k * math.cos(o.angle_rad)
        processor.ky[a, 0] = -k * math.sin(o.angle_rad)


# ---------------------------------------------------------------------------------------------------------
# SIM rows


def parameter_errors(found: list[Orientation], truth: list[Orientation]) -> dict[str, float]:
    """Largest error over the orientations, each matched to the true one nearest in angle."""
    errors = {"angle_deg": 0.0, "spacing_nm": 0.0, "phase_rad": 0.0, "modulation": 0.0}
    for t in truth:
        f = min(found, key=lambda o: abs(math.remainder(o.angle_rad - t.angle_rad, math.pi)))
        errors["angle_deg"] = max(errors["angle_deg"], abs(math.degrees(math.remainder(f.angle_rad - t.angle_rad,
                                                                                       math.pi))))
        errors["spacing_nm"] = max(errors["spacing_nm"], abs(f.spacing_nm - t.spacing_nm))
        errors["phase_rad"] = max(errors["phase_rad"], abs(math.remainder(f.phases_rad[0] - t.phases_rad[0],
                                                                          2 * math.pi)))
        errors["modulation"] = max(errors["modulation"], abs(f.modulation - t.modulation))
    return errors


def describe_errors(errors: dict[str, float]) -> str:
    return (f"|Δθ| {errors['angle_deg']:.2f}°, |Δspacing| {errors['spacing_nm']:.2f} nm, "
            f"|Δφ| {errors['phase_rad']:.3f} rad, |Δm| {errors['modulation']:.3f}")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, ``b`` resampled onto ``a``'s grid when the two outputs differ in size."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        b = ndimage.zoom(b, (a.shape[0] / b.shape[0], a.shape[1] / b.shape[1]), order=1)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def fft_floor(frames: torch.Tensor, border_px: int) -> dict[str, Callable[[], object]]:
    """The Fourier transforms a 2× Wiener reconstruction of one set cannot do without, in torch as microsr.

    ``naive``: one real FFT per raw frame and one real inverse FFT of the 2× spectrum. ``bands``: the transforms
    microsr's own algorithm does (bands separated before the FFT, frames with their mirrored margin): one real FFT
    of band 0, one complex FFT per orientation's +1 band, one real inverse FFT of the half spectrum at 2×.
    """
    ny, nx = frames.shape[-2:]
    spectrum_2x = torch.zeros((2 * ny, nx + 1), dtype=torch.complex64)
    padded = (ny + 2 * border_px, nx + 2 * border_px)
    zero_band = torch.rand(padded)
    plus_bands = torch.complex(torch.rand((3, *padded)), torch.rand((3, *padded)))
    half_spectrum_padded_2x = torch.zeros((2 * padded[0], padded[1] + 1), dtype=torch.complex64)

    def naive():
        torch.fft.rfft2(frames)
        return torch.fft.irfft2(spectrum_2x, s=(2 * ny, 2 * nx))

    def bands():
        torch.fft.rfft2(zero_band)
        torch.fft.fft2(plus_bands)
        return torch.fft.irfft2(half_spectrum_padded_2x, s=(2 * padded[0], 2 * padded[1]))

    return {"naive": naive, "bands": bands}


def sim_rows(size: int, timing: Timing, peer, peer_missing: str, parameter_table: list) -> list[Row]:
    otf = ideal_otf(NA, WAVELENGTH_NM, camera_pixel_nm=PIXEL_NM)
    data = simulate_sim(shape=(size, size), pixel_size_nm=PIXEL_NM, na=NA, wavelength_nm=WAVELENGTH_NM,
                        photons=30, seed=1, time_points=1)
    raw = data.raw[0]  # (A, P, Y, X)
    truth = data.params.orientations
    # The peer has no background setting: it gets the frames with the same background already subtracted.
    frames = np.ascontiguousarray((raw - BACKGROUND).reshape(-1, size, size), dtype=np.float32)
    label = f"9×{size}²"
    peer_paths = ("NumPy", "torch") if peer is not None else ()
    rows = []

    # (a) pattern estimation, blind (the peer's "find carrier" ticked); its calibration also builds its filters
    found: dict[str, list[Orientation]] = {}

    def ours_estimate():
        found["microsr"] = estimate_parameters(raw, PIXEL_NM, otf, background=BACKGROUND).orientations

    def theirs_estimate(path: str):
        # One processor per path, calibrated again each call, as its widget does: it reallocates only on a new size.
        processor = peer_processor(peer)

        def run():
            processor.calibrate(frames) if path == "NumPy" else processor.calibrate_pytorch(frames)
            found[path] = peer_to_orientations(processor, 3)
        return run

    measured = measure({"microsr": ours_estimate, **{path: theirs_estimate(path) for path in peer_paths}}, timing)
    ours_text = f"microsr {describe_errors(parameter_errors(found['microsr'], truth))}" if "microsr" in found else ""
    for path in peer_paths or (None,):
        theirs_text = f"peer {describe_errors(parameter_errors(found[path], truth))}" if path in found else ""
        rows.append(measured.row(f"SIM estimation (peer: {path or 'none'})", label, "microsr", path,
                                 "; ".join(filter(None, [ours_text, theirs_text])), peer_missing))
    parameter_table.append((label, "truth", truth))
    parameter_table.extend((label, name if name == "microsr" else f"napari-sim-processor ({name})", orientations)
                           for name, orientations in found.items())

    # (b) reconstruction with the true parameters
    settings = ReconstructionSettings(background=BACKGROUND)
    recon = WienerReconstructor(data.params, (size, size), PIXEL_NM, otf, settings, "cpu")
    raw_tensor = torch.as_tensor(raw)
    ours_image = recon(raw_tensor)[0].numpy()
    target = sim_target(data.ground_truth, PIXEL_NM / 2,
                        sim_resolution_fwhm_nm(NA, WAVELENGTH_NM, data.settings["pattern_fraction_of_cutoff"]))

    def peer_set_up():
        processor = peer_processor(peer)
        set_peer_carriers(processor, data.params)
        processor.calibrate(frames, findCarrier=False)
        return processor

    processor, agreement, missing = None, f"vs truth: microsr r {pearson(target, ours_image):.3f}", peer_missing
    if peer is not None:
        try:
            processor = peer_set_up()
            theirs_image = processor.reconstruct_rfftw(frames)
            agreement = (f"r(microsr, peer) {pearson(ours_image, theirs_image):.3f}; {agreement}, "
                         f"peer r {pearson(target, theirs_image):.3f}")
        except Exception as exc:  # noqa: BLE001
            processor, missing = None, f"peer failed: {reason(exc)}"
    peer_paths = peer_paths if processor is not None else ()

    # One group, timed in the same turns: the two microsr calls, the peer's two paths and the FFT-only floors.
    floors = fft_floor(torch.as_tensor(frames), recon.border_px)
    functions = {"cached": lambda: recon(raw_tensor),
                 "one call": lambda: reconstruct(raw, data.params, PIXEL_NM, otf, settings, "cpu"),
                 "NumPy": (lambda: processor.reconstruct_rfftw(frames)) if processor else None,
                 "torch": (lambda: processor.reconstruct_pytorch(frames)) if processor else None,
                 **{f"floor {name}": function for name, function in floors.items()}}
    measured = measure(functions, timing)
    for path in peer_paths or (None,):
        rows.append(measured.row(f"SIM reconstruction, WienerReconstructor (peer: {path or 'none'})", label,
                                 "cached", path, agreement, missing))
    for path in peer_paths or (None,):
        rows.append(measured.row(f"SIM reconstruct() one call, cached (peer: {path or 'none'})", label,
                                 "one call", path, "", missing))
    for name, text in (("naive", "9 rfft2 + 1 irfft2 at 2×"),
                       ("bands", "microsr's own: rfft2 + 3 fft2 + 1 irfft2 at 2×, margin")):
        floor = measured.seconds.get(f"floor {name}")
        if floor and "cached" in measured.seconds:
            over = measured.seconds["cached"] / floor
            rows.append(Row(f"FFT-only time ({text})", label, floor, None, None, None,
                            f"WienerReconstructor = {over:.2f}× this (same turns)", over))

    # A copy of the OTF is another set-up key: every call builds its filters, as a first call does. The peer's
    # counterpart sets up from the given carriers too (it refines them: that is part of its set-up).
    measured = measure({"microsr": lambda: reconstruct(raw, data.params, PIXEL_NM, dataclasses.replace(otf),
                                                        settings, "cpu"),
                        "NumPy": (lambda: peer_set_up().reconstruct_rfftw(frames)) if processor else None}, timing)
    rows.append(measured.row(f"SIM reconstruct() set-up every call (peer: {'NumPy' if processor else 'none'})",
                             label, "microsr", "NumPy" if processor else None, "", missing))
    return rows


# ---------------------------------------------------------------------------------------------------------
# metric rows


def metric_rows(size: int, timing: Timing) -> list[Row]:
    rng = np.random.default_rng(0)
    truth = filaments_and_dots((size, size), METRICS_PIXEL_NM, n_filaments=size // 16, n_dots=size // 4, seed=0) * 100
    sr = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    second = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    widefield = ndimage.gaussian_filter(truth, 4.0).reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3))
    label = f"{size}²"

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # it warns about every accelerator (OpenCL, CUDA, Numba) it lacks
            from nanopyx.core.analysis.decorr import DecorrAnalysis
            from nanopyx.core.analysis.frc import FIRECalculator
            from nanopyx.core.transform.error_map import ErrorMap
        nanopyx = f"NanoPyx {importlib.metadata.version('nanopyx')}"
        nanopyx_missing = ""
    except Exception as exc:  # noqa: BLE001
        nanopyx, nanopyx_missing = "", f"NanoPyx unavailable: {reason(exc)}"
    try:
        import pytorch_msssim

        msssim, msssim_missing = f"pytorch-msssim {importlib.metadata.version('pytorch-msssim')}", ""
    except ImportError as exc:
        pytorch_msssim, msssim, msssim_missing = None, "", f"pytorch-msssim unavailable: {reason(exc)}"

    def nm(value) -> str:
        return "none" if value is None else f"{value:.1f} nm"

    def nanopyx_frc():
        return nm(float(FIRECalculator(pixel_size=METRICS_PIXEL_NM, units="nm").calculate_fire_number(sr, second)))

    def nanopyx_decorrelation():
        analysis = DecorrAnalysis(pixel_size=METRICS_PIXEL_NM, units="nm", rmin=0, rmax=1, n_r=50, n_g=10)
        analysis.run_analysis(sr.astype(np.float32))
        return nm(float(analysis.resolution))

    def microsr_squirrel():
        result = confidence.squirrel(sr, widefield, sr_pixel_size_nm=METRICS_PIXEL_NM,
                                     widefield_pixel_size_nm=4 * METRICS_PIXEL_NM)
        return f"σ {result.sigma_nm:.1f} nm, RSP {result.rsp:.4f}, RSE {result.rse:.3f}"

    def nanopyx_squirrel():
        # NanoPyx upsamples the widefield image to the SR grid (Catmull-Rom) and compares there; microsr bins the
        # blurred SR image onto the widefield grid: σ and RSP compare, RSE is on different grids.
        error_map = ErrorMap()
        error_map.optimise(widefield.astype(np.float32), sr.astype(np.float32))
        return (f"σ {error_map.get_sigma() * METRICS_PIXEL_NM:.1f} nm, RSP {error_map.getRSP():.4f}, "
                f"RSE {error_map.getRSE():.3f} (SR grid)")

    # Same settings on both sides: Wang's 11-px window and 5 scales, no normalization, the truth's range, float64.
    data_range = float(truth.max() - truth.min())
    x, y = torch.from_numpy(sr)[None, None], torch.from_numpy(truth.astype(np.float64))[None, None]

    def microsr_msssim():
        return f"{fidelity.ms_ssim(sr, truth, normalization='none', win_size=11, data_range=data_range):.6f}"

    def peer_msssim():
        return f"{float(pytorch_msssim.ms_ssim(x, y, data_range=data_range, win_size=11)):.6f}"

    tasks = [
        ("FRC resolution (1/7 threshold)", label,
         lambda: nm(resolution.fourier_ring_correlation(sr, second, METRICS_PIXEL_NM).resolution_nm),
         nanopyx_frc, nanopyx, nanopyx_missing),
        ("decorrelation resolution", label,
         lambda: nm(resolution.decorrelation_resolution(sr, METRICS_PIXEL_NM).resolution_nm),
         nanopyx_decorrelation, nanopyx, nanopyx_missing),
        ("SQUIRREL error map", f"{label} / {size // 4}²", microsr_squirrel, nanopyx_squirrel, nanopyx,
         nanopyx_missing),
        ("MS-SSIM (11-px window, 5 scales)", label, microsr_msssim, peer_msssim, msssim, msssim_missing),
    ]
    rows = []
    for task, size_label, ours, theirs, peer_name, missing in tasks:
        values: dict[str, str] = {}

        def keeping(name, function):
            def run():
                # NanoPyx prints which implementation it runs and warns, at its first calls, of the ones it lacks.
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values[name] = function()
            return run

        measured = measure({"microsr": keeping("microsr", ours),
                            "peer": keeping("peer", theirs) if not missing else None}, timing)
        text = "; ".join(filter(None, [f"microsr {values['microsr']}" if "microsr" in values else "",
                                       f"{peer_name} {values['peer']}" if "peer" in values else ""]))
        rows.append(measured.row(task, size_label, "microsr", None if missing else "peer", text, missing))
    return rows


# ---------------------------------------------------------------------------------------------------------
# output


def print_table(rows: list[Row]) -> None:
    def seconds(value):
        if value is None:
            return "—"
        return f"{value * 1000:.1f} ms" if value < 10 else f"{value:.1f} s"

    def mib(value):
        return "—" if value is None else f"{value:.0f} MiB"

    header = ("task", "size", "microsr", "peer", "peer/microsr", "microsr mem", "peer mem", "agreement / notes")
    lines = [(r.task, r.size, seconds(r.microsr_s), seconds(r.peer_s),
              "—" if r.ratio is None else f"{r.ratio:.2f}×", mib(r.microsr_mib), mib(r.peer_mib), r.agreement)
             for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header) - 1)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + f" | {header[-1]} |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|---|")
    for line in lines:
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("| " + " | ".join(cells) + f" | {line[-1]} |")


def print_parameters(table: list) -> None:
    print("\nSIM pattern parameters (microsr's convention: angle from +x towards +y, phase of frame 0 at the centre "
          "pixel)\n")
    print("| size      | source                        | angles (°)              | spacings (nm)           "
          "| phases (rad)         | modulations       |")
    print("|-----------|-------------------------------|-------------------------|-------------------------"
          "|----------------------|-------------------|")
    for size, name, orientations in table:
        ordered = sorted(orientations, key=lambda o: o.angle_rad)
        angles = " ".join(f"{math.degrees(o.angle_rad):7.2f}" for o in ordered)
        spacings = " ".join(f"{o.spacing_nm:7.2f}" for o in ordered)
        phases = " ".join(f"{o.phases_rad[0]:6.3f}" for o in ordered)
        modulations = " ".join(f"{o.modulation:5.3f}" for o in ordered)
        print(f"| {size:<9} | {name:<29} | {angles:<23} | {spacings:<23} | {phases:<20} | {modulations:<17} |")


def acceptance(rows: list[Row]) -> list[str]:
    """The issue's acceptance points, each judged against the peer's fastest path (the stricter test)."""
    def find(prefix: str, size: str) -> list[Row]:
        return [r for r in rows if r.task.startswith(prefix) and r.size == size and r.ratio is not None]

    lines = []
    recon = find("SIM reconstruction, WienerReconstructor", "9×512²")
    if recon:
        worst = min(recon, key=lambda r: r.ratio)
        lines.append(f"SIM reconstruction ≥ 5× napari-sim-processor at 512²: {worst.ratio:.2f}× against its "
                     f"fastest path — {'holds' if worst.ratio >= 5 else 'NOT met'}")
    for r in rows:
        if r.over_floor is not None and r.size == "9×512²":
            lines.append(f"within 1.5× of the {r.task} at 512²: {r.over_floor:.2f}× — "
                         f"{'holds' if r.over_floor <= 1.5 else 'NOT met'}")
    for size in ("9×256²", "9×512²"):
        one_call = find("SIM reconstruct() one call", size)
        if one_call:
            worst = min(one_call, key=lambda r: r.ratio)
            lines.append(f"one-call reconstruct() ≥ 3× the peer at {size}: {worst.ratio:.2f}× — "
                         f"{'holds' if worst.ratio >= 3 else 'NOT met'}")
        estimation = find("SIM estimation", size)
        if estimation:
            worst = min(estimation, key=lambda r: r.ratio)
            lines.append(f"estimation ≥ 1× the peer at {size}: {worst.ratio:.2f}× against its fastest path — "
                         f"{'holds' if worst.ratio >= 1 else 'NOT met'}")
    return lines


def load_average() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return handle.read().split()[0]
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each tool per row (interleaved)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="SIM raw frame sizes")
    parser.add_argument("--metrics-size", type=int, default=1024, help="image size of the metric rows (0: skip)")
    parser.add_argument("--metric-repeats", type=int, default=3, help="timed calls per metric row")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: what every microsr command chooses, the idle cores)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: what a user waits; cpu: this process's CPU time, steady on a busy machine but "
                             "equal to the wall time only with every tool on one thread (see Timing)")
    args = parser.parse_args()
    args.threads = use_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    try:
        peer, peer_version = load_sim_peer()
        peer_missing = ""
    except Exception as exc:  # noqa: BLE001
        peer, peer_version, peer_missing = None, "", f"napari-sim-processor unavailable: {reason(exc)}"

    rows, parameter_table = [], []
    load_before = load_average()
    for size in args.sizes:
        rows.extend(sim_rows(size, Timing(args.repeats, clock), peer, peer_missing, parameter_table))
    if args.metrics_size:
        rows.extend(metric_rows(args.metrics_size, Timing(args.metric_repeats, clock)))

    versions = [f"torch {torch.__version__}", f"NumPy {np.__version__}"]
    if peer_version:
        versions.append(f"napari-sim-processor {peer_version}")
    print(f"\nmicrosr beside its peers — {', '.join(versions)}; {args.threads} torch thread(s); medians of "
          f"{args.repeats} interleaved calls (metrics: {args.metric_repeats}), {args.clock} clock; load average "
          f"{load_before} at the start, {load_average()} at the end (above 2, other jobs share the 2 cores: wall "
          "times inflate)\n")
    print_table(rows)
    print_parameters(parameter_table)
    print("\nAcceptance (issue 19)\n")
    for line in acceptance(rows) or ["no peer rows at 256² or 512²: nothing to judge"]:
        print(f"- {line}")


if __name__ == "__main__":
    main()
