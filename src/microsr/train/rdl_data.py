"""Training pairs for rDL SIM: noisy and clean raw SIM frame sets, their SIM target and pattern-modulated images.

Two sources give the same samples. :class:`RawPairStream` simulates them on the fly
(:func:`microsr.synthetic.sim_raw.simulate_sim`); :class:`FolderRawPairs` reads registered low- and
high-SNR raw stacks. Both yield, per sample,

- task ``"sr"`` (the DFCAN that makes the first SR estimate): ``(noisy (A·P, h, w), sim_target (1, 2h, 2w))``;
- task ``"denoise"`` (the rDL denoiser, one orientation at a time):
  ``(modulated (P, h, w), noisy (P, h, w), clean (P, h, w))``.

Raw frames are never flipped or rotated: that would turn the illumination pattern to angles that the
pattern parameters, and the microscope, do not have, so the pattern-modulated images would no longer
match the frames. Simulated fields draw a random pattern angle each, which gives the variety
augmentation would. The one augmentation is a relabelling of each orientation's phases
(:func:`relabel_phases`): it is exact physics, and without it a small denoiser learns a different
brightness per output channel, which the Wiener step turns into a honeycomb at the pattern's frequency.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from microsr.errors import EstimationError, InputError
from microsr.io import read_image, to_tapyx
from microsr.models.rdl import MIN_SCALE, estimated_modulated_images, load_network, normalize_raw, relabel_phases
from microsr.optics import OTF, ideal_otf, load_otf_mrc
from microsr.sim.estimate import (PatternPrior, estimate_background, estimate_parameters, repair_pixels,
                                  stuck_pixels)
from microsr.sim.modulated import modulated_images
from microsr.sim.parameters import SIMParameters
from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.sim_raw import SPECIMENS, sim_resolution_fwhm_nm, sim_target, simulate_sim
from microsr.train.streams import stream_rng, worker_indices

#: What a sample trains: the SR network's (raw frames → SIM image) or the denoiser's (one orientation).
TASKS = ("sr", "denoise")

#: Subfolders of a training folder: low-SNR stacks and their high-SNR partners, same file names.
FOLDER_LAYOUT = {"train": ("train", "train_gt"), "val": ("val", "val_gt")}

#: Raw stack files the folder reader takes.
RAW_SUFFIXES = (".tif", ".tiff", ".mrc")

# Training and validation seeds differ in parity, so no training seed can ever be a validation seed.
_SEED_STRIDE = 1_000_003
_OFFSET_STRIDE = 7919


@dataclass
class RawPair:
    """A noisy raw SIM set with everything its training targets need, all in one normalization.

    Attributes
    ----------
    noisy : ndarray, float32, shape (A, P, Y, X)
        Noisy raw frames, background-free, divided by ``scale`` (:func:`microsr.models.rdl.normalize_raw`).
    clean : ndarray, float32, shape (A, P, Y, X)
        Noise-free (simulated) or high-SNR (measured, exposure-matched) frames of the same specimen,
        divided by the same ``scale``: the denoiser's target.
    sim_target : ndarray, float32, shape (2Y, 2X)
        The SIM image the SR network should produce, max 1: the ground truth blurred to SIM
        resolution (simulated) or the Wiener reconstruction of the high-SNR stack (measured).
    modulated : ndarray, float32, shape (A, P, Y, X), or None
        Pattern-modulated images of the specimen under the pattern parameters, in the units of
        ``noisy``: the denoiser's MPE-branch input. Simulated, they equal ``clean`` except in the
        outer ~4 pixels, which lack the light of structures just outside the field, as any SR
        estimate's do. None where a stream for task "sr" skipped them.
    params : SIMParameters
        Pattern parameters (true for simulations, estimated from the high-SNR stack otherwise).
    photons : float or None
        Expected photons at the brightest widefield pixel (simulations); None for measured data.
    specimen : str
        Specimen kind (simulations) or ``file name[time point]`` (measured data).
    scale : float
        Photons (ADU above background) per normalized unit of ``noisy``, ``clean`` and ``modulated``.
    pixel_size_nm : float
        Camera pixel size; ``sim_target`` has half of it.
    otf : OTF or None
        The detection OTF the frames were made (or are reconstructed) with; None: the ideal one.
    """

    noisy: np.ndarray
    clean: np.ndarray
    sim_target: np.ndarray
    modulated: np.ndarray | None
    params: SIMParameters
    photons: float | None
    specimen: str
    scale: float
    pixel_size_nm: float
    otf: OTF | None = None


@dataclass(frozen=True)
class Randomization:
    """What varies between simulated training fields besides specimen, photons and pattern angle: the
    instruments a model is meant for (domain randomization).

    ``otfs`` names the detection OTFs to draw from: ``"ideal"`` (from NA and wavelength) and measured
    ones (:data:`microsr.optics.SHIPPED_OTFS` names or ``.mrc`` paths); the pattern lies at a fraction of
    the drawn OTF's cut-off drawn in ``pattern_fraction``; each orientation's modulation is drawn in
    ``modulation``; with ``defects``, each field gets a real camera and laser
    (:class:`~microsr.synthetic.defects.AcquisitionDefects`) at strengths drawn between none and 1.5 times
    :meth:`~microsr.synthetic.defects.AcquisitionDefects.uncorrected` (a camera without offset correction).
    """

    otfs: tuple[str, ...] = ("ideal",)
    pattern_fraction: tuple[float, float] = (0.92, 0.92)
    modulation: tuple[float, float] = (0.8, 0.8)
    defects: bool = False

    def draw(self, rng: np.random.Generator, na: float, wavelength_nm: float, pixel_size_nm: float) -> dict:
        """One field's instrument: ``otf``, ``pattern_fraction``, ``modulation`` (per orientation), ``defects``."""
        source = self.otfs[int(rng.integers(len(self.otfs)))]
        otf = (ideal_otf(na, wavelength_nm, camera_pixel_nm=pixel_size_nm) if source == "ideal"
               else _measured_otf(source))
        fraction = float(rng.uniform(*self.pattern_fraction))
        modulation = tuple(float(m) for m in rng.uniform(*self.modulation, size=3))
        defects = None
        if self.defects:
            typical = AcquisitionDefects.uncorrected()
            strength = rng.uniform(0, 1.5, size=8)
            defects = AcquisitionDefects(
                offset_spread_adu=typical.offset_spread_adu * strength[0], gain_spread=typical.gain_spread * strength[1],
                row_noise_adu=typical.row_noise_adu * strength[2], column_noise_adu=typical.column_noise_adu * strength[3],
                hot_pixel_fraction=typical.hot_pixel_fraction * strength[4],
                dead_pixel_fraction=typical.dead_pixel_fraction * strength[4],
                excitation_fluctuation=min(0.05, typical.excitation_fluctuation * strength[5]),
                bleaching_per_frame=typical.bleaching_per_frame * strength[6],
                grey_levels=None if strength[7] < 1 else int(rng.integers(200, 1000)))
        return {"otf": otf, "pattern_fraction": fraction, "modulation": modulation, "defects": defects}


@functools.lru_cache(maxsize=8)
def _measured_otf(name_or_path: str) -> OTF:
    return load_otf_mrc(name_or_path)


def _check_specimen(specimen: str) -> None:
    if specimen not in SPECIMENS:
        raise InputError(f"unknown specimen {specimen!r}: use one of {', '.join(SPECIMENS)}")


def _simulated_pair(*, specimen: str, photons: float, shape: tuple[int, int], angles: int, phases: int,
                    pixel_size_nm: float, na: float, wavelength_nm: float, seed: int,
                    with_modulated: bool = True, instrument: dict | None = None) -> RawPair:
    """:func:`simulated_raw_pair`, skipping the pattern-modulated images where a task does not use them;
    ``instrument`` (:meth:`Randomization.draw`) sets the OTF, pattern fraction, modulations and defects."""
    _check_specimen(specimen)
    instrument = instrument or {}
    otf = instrument.get("otf") or ideal_otf(na, wavelength_nm, camera_pixel_nm=pixel_size_nm)
    fraction = instrument.get("pattern_fraction", 0.92)
    data = simulate_sim(shape=tuple(shape), pixel_size_nm=pixel_size_nm, na=na, wavelength_nm=wavelength_nm,
                        angles=angles, phases=phases, photons=photons, time_points=1, otf=otf, seed=seed,
                        specimen=specimen, pattern_fraction_of_cutoff=fraction,
                        modulation=instrument.get("modulation", 0.8)[:angles] if "modulation" in instrument else 0.8,
                        defects=instrument.get("defects"))
    background = data.camera.offset_adu + data.camera.background_photons
    # As at prediction: stuck camera pixels are replaced by their neighbourhood before anything else.
    raw = repair_pixels(data.raw[0], stuck_pixels(data.raw[0]))
    noisy, scale = normalize_raw(raw, background)
    clean = (data.raw_clean / np.float32(scale)).astype(np.float32)
    modulated = None
    if with_modulated:
        # The truth is the specimen in photons on the 2× grid, so its modulated images are the
        # noise-free frames up to the field's borders: dividing by the same scale keeps the units.
        modulated = (modulated_images(data.ground_truth, data.params, pixel_size_nm, otf)
                     / np.float32(scale)).astype(np.float32)
    # The SIM resolution of the drawn optics: the Airy FWHM of this OTF's cut-off (NA/λ = cut-off / 2),
    # narrowed by the pattern.
    fwhm = (sim_resolution_fwhm_nm(otf.cutoff_per_um / 2, 1000.0, fraction) if instrument.get("otf") else
            sim_resolution_fwhm_nm(na, wavelength_nm, data.settings["pattern_fraction_of_cutoff"]))
    target = sim_target(data.ground_truth, pixel_size_nm / 2, fwhm)
    return RawPair(noisy=noisy, clean=clean, sim_target=target, modulated=modulated, params=data.params,
                   photons=float(photons), specimen=specimen, scale=scale, pixel_size_nm=float(pixel_size_nm),
                   otf=otf if instrument.get("otf") else None)


@functools.lru_cache(maxsize=4)
def _sr_network(path: str) -> torch.nn.Module:
    """A trained SR network (``microsr rdl train``, task sr), loaded once per process."""
    return load_network(path, "sr")[0]


def with_estimated_modulation(pair: RawPair, sr_model: str | Path, otf: OTF) -> RawPair:
    """``pair`` with its pattern-modulated images made from an SR network's estimate of its noisy frames.

    This is how the denoiser meets them at prediction (:func:`microsr.models.rdl.estimated_modulated_images`).
    Trained on modulated images of the ground truth instead, a denoiser learns to copy them, and at
    prediction copies the SR estimate's errors into the raw frames.
    """
    _, modulated = estimated_modulated_images(_sr_network(str(sr_model)), pair.noisy, pair.params,
                                              pair.pixel_size_nm, pair.otf or otf)
    return dataclasses.replace(pair, modulated=modulated)


def simulated_raw_pair(*, specimen: str = "filaments", photons: float, shape: tuple[int, int] = (128, 128),
                       angles: int = 3, phases: int = 3, pixel_size_nm: float = 62.6, na: float = 1.35,
                       wavelength_nm: float = 525.0, seed: int) -> RawPair:
    """One simulated raw SIM set with its clean twin, SIM target and pattern-modulated images.

    Parameters
    ----------
    specimen : {"filaments", "pits", "network"}
        Specimen kind (:func:`microsr.synthetic.sim_raw.simulate_sim`).
    photons : float
        Expected photons at the brightest pixel of the noise-free widefield image: sets the SNR.
    shape : (int, int)
        Raw frame size (camera pixels).
    angles, phases : int
        Orientations and phase steps.
    pixel_size_nm, na, wavelength_nm : float
        Camera pixel size, numerical aperture and emission wavelength.
    seed : int
        Specimen, pattern and noise all follow from it.

    Returns
    -------
    RawPair
        ``sim_target`` is the ground truth blurred by a Gaussian of :func:`sim_resolution_fwhm_nm`
        (103 nm at the defaults), max 1.

    Raises
    ------
    InputError
        An unknown specimen.

    Examples
    --------
    >>> pair = simulated_raw_pair(specimen="pits", photons=50, shape=(64, 64), seed=0)
    >>> pair.noisy.shape, pair.sim_target.shape
    ((3, 3, 64, 64), (128, 128))
    """
    return _simulated_pair(specimen=specimen, photons=photons, shape=shape, angles=angles, phases=phases,
                           pixel_size_nm=pixel_size_nm, na=na, wavelength_nm=wavelength_nm, seed=seed)


def training_seed(seed: int, seed_offset: int, index: int) -> int:
    """Simulation seed of the ``index``-th field of a training stream: always even."""
    return 2 * (seed * _SEED_STRIDE + seed_offset * _OFFSET_STRIDE + index)


def validation_seed(seed: int, index: int) -> int:
    """Simulation seed of the ``index``-th validation field: always odd, so never a training seed."""
    return 2 * (seed * _SEED_STRIDE + index) + 1


def crop_sample(pair: RawPair, task: str, patch_px: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """A random ``patch_px`` patch of a pair as the tensors of ``task`` (see the module docstring).

    The SIM target is cut at twice the raw position: fine pixel ``2j`` lies on camera pixel ``j``.
    For ``"denoise"`` one orientation is drawn at random. Each orientation's phases are relabelled at
    random (:func:`relabel_phases`), the same way in every array of the sample.
    """
    angles, phases, ny, nx = pair.noisy.shape
    if patch_px > min(ny, nx):
        raise InputError(f"patch of {patch_px} px does not fit raw frames of {ny}×{nx}: use a smaller patch_px")
    y = int(rng.integers(ny - patch_px + 1))
    x = int(rng.integers(nx - patch_px + 1))
    window = (slice(y, y + patch_px), slice(x, x + patch_px))
    shift, reverse = int(rng.integers(phases)), bool(rng.integers(2))
    if task == "sr":
        noisy = relabel_phases(pair.noisy[..., window[0], window[1]], shift, reverse)
        noisy = noisy.reshape(angles * phases, patch_px, patch_px)
        target = pair.sim_target[2 * y:2 * (y + patch_px), 2 * x:2 * (x + patch_px)][None]
        arrays = (noisy, target)
    else:
        a = int(rng.integers(angles))
        arrays = tuple(relabel_phases(frames[a, :, window[0], window[1]], shift, reverse)
                       for frames in (pair.modulated, pair.noisy, pair.clean))
    return tuple(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) for array in arrays)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}: use 'sr' (raw frames → SIM image) or 'denoise' (rDL denoiser)")


@dataclass(frozen=True)
class _Simulation:
    """What a simulated sample depends on besides its seed."""

    specimens: tuple[str, ...]
    photons: tuple[float, float]
    field_px: int
    patch_px: int
    angles: int
    phases: int
    task: str
    pixel_size_nm: float
    na: float
    wavelength_nm: float
    sr_model: str | None = None
    randomization: Randomization | None = None

    def __post_init__(self):
        if not self.specimens:
            raise InputError(f"no specimens given: use some of {', '.join(SPECIMENS)}")
        for specimen in self.specimens:
            _check_specimen(specimen)
        low, high = self.photons
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise InputError(f"photon range {self.photons} must be (low, high) with 0 < low ≤ high, "
                             "e.g. (10, 200)")
        _check_task(self.task)
        if not 1 <= self.patch_px <= self.field_px:
            raise InputError(f"patch_px {self.patch_px} must be ≥ 1 and ≤ field_px {self.field_px}")
        if self.field_px < 16:
            raise InputError(f"field_px {self.field_px} is too small to simulate: use at least 16")

    def field(self, seed: int) -> RawPair:
        """The simulated field of ``seed``: specimen and photons drawn from it, log-uniform photons."""
        # A second generator from the same seed, so these draws do not repeat the simulator's own.
        rng = np.random.default_rng((seed, 1))
        specimen = self.specimens[int(rng.integers(len(self.specimens)))]
        low, high = self.photons
        photons = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        instrument = (self.randomization.draw(np.random.default_rng((seed, 3)), self.na, self.wavelength_nm,
                                              self.pixel_size_nm) if self.randomization else None)
        pair = _simulated_pair(specimen=specimen, photons=photons, shape=(self.field_px, self.field_px),
                               angles=self.angles, phases=self.phases, pixel_size_nm=self.pixel_size_nm,
                               na=self.na, wavelength_nm=self.wavelength_nm, seed=seed,
                               with_modulated=self.task == "denoise" and self.sr_model is None,
                               instrument=instrument)
        if self.task == "denoise" and self.sr_model is not None:
            otf = ideal_otf(self.na, self.wavelength_nm, camera_pixel_nm=self.pixel_size_nm)
            pair = with_estimated_modulation(pair, self.sr_model, otf)
        return pair

    def samples(self, seed: int, count: int) -> list[tuple[torch.Tensor, ...]]:
        pair = self.field(seed)
        rng = np.random.default_rng((seed, 2))
        return [crop_sample(pair, self.task, self.patch_px, rng) for _ in range(count)]


class RawPairStream(IterableDataset):
    """An endless stream of simulated rDL SIM samples; every worker and every run start draws its own seeds.

    Each field draws a specimen from ``specimens`` and a photon level log-uniformly in ``photons``,
    is simulated at ``field_px`` × ``field_px`` (a fresh pattern angle and phase each time), and gives
    ``patches_per_field`` random patches. Frames are not flipped or rotated (see the module docstring).

    Parameters
    ----------
    specimens : sequence of str
        Specimen kinds to mix ("filaments", "pits", "network").
    photons : (float, float)
        Range of the expected photons at the brightest widefield pixel; low-light live-cell SIM is ~10–100.
    patch_px : int
        Patch size in raw pixels (the SIM target is twice that).
    field_px : int
        Simulated field size, ≥ ``patch_px``.
    angles, phases : int
        Orientations and phase steps (3×3 or 3×5).
    task : {"sr", "denoise"}
        ``"sr"`` yields ``(noisy (A·P, h, w), sim_target (1, 2h, 2w))``; ``"denoise"`` yields
        ``(modulated (P, h, w), noisy (P, h, w), clean (P, h, w))`` of one random orientation.
    patches_per_field : int
        Patches cut from each simulated field: more is faster, fewer is more varied.
    pixel_size_nm, na, wavelength_nm : float
        Camera pixel size, numerical aperture and emission wavelength.
    seed, seed_offset : int
        Non-negative; the stream draws :func:`training_seed` ``(seed, seed_offset, i)``, which is never
        a :func:`validation_seed`. A resumed run passes a new ``seed_offset`` to see new fields.
    sr_model : path, optional
        A trained SR network (``model.pt`` of task "sr"): for "denoise", the modulated images are made
        from its estimate of the noisy frames, as at prediction (:func:`with_estimated_modulation`).
        Without it they are made from the ground truth.

    Raises
    ------
    InputError
        Unknown specimens or task, an empty or reversed photon range, a patch larger than the field,
        or negative seeds.

    Examples
    --------
    >>> stream = RawPairStream(patch_px=32, field_px=64, task="denoise")
    >>> modulated, noisy, clean = next(iter(stream))
    >>> tuple(noisy.shape)
    (3, 32, 32)
    """

    def __init__(self, specimens=SPECIMENS, photons: tuple[float, float] = (10.0, 200.0), patch_px: int = 64,
                 field_px: int = 128, angles: int = 3, phases: int = 3, task: str = "sr",
                 patches_per_field: int = 1, pixel_size_nm: float = 62.6, na: float = 1.35,
                 wavelength_nm: float = 525.0, seed: int = 0, seed_offset: int = 0,
                 sr_model: str | Path | None = None, randomization: Randomization | None = None):
        self.simulation = _Simulation(tuple(specimens), (float(photons[0]), float(photons[1])), int(field_px),
                                      int(patch_px), int(angles), int(phases), task, float(pixel_size_nm),
                                      float(na), float(wavelength_nm), str(sr_model) if sr_model else None,
                                      randomization)
        if seed < 0 or seed_offset < 0:
            raise InputError(f"seed ({seed}) and seed_offset ({seed_offset}) must be ≥ 0: negative seeds are "
                             "left to validation")
        if patches_per_field < 1:
            raise InputError(f"patches_per_field must be ≥ 1, got {patches_per_field}")
        self.patches_per_field = int(patches_per_field)
        self.seed = int(seed)
        self.seed_offset = int(seed_offset)

    def seed_for(self, index: int) -> int:
        """Simulation seed of this stream's ``index``-th field."""
        return training_seed(self.seed, self.seed_offset, index)

    def __iter__(self):
        for index in worker_indices():
            yield from self.simulation.samples(self.seed_for(index), self.patches_per_field)


def _read_stack(path: Path, angles: int, phases: int) -> tuple[np.ndarray, float | None]:
    """A raw stack as float32 ``(T, A, P, Y, X)`` and its pixel size; layout errors name the file."""
    image = read_image(path)
    try:
        stack = to_tapyx(np.asarray(image.array, dtype=np.float32), angles, phases)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return np.asarray(stack), image.pixel_size_nm


def raw_pairs_from_files(noisy_path: str | Path, gt_path: str | Path, *, angles: int = 3, phases: int = 3,
                         pixel_size_nm: float | None = None, otf: OTF | None = None, na: float = 1.35,
                         wavelength_nm: float = 525.0, background: float | str = "auto",
                         prior: PatternPrior | None = None, allow_unreliable: bool = False) -> list[RawPair]:
    """Training pairs, one per time point, from a low-SNR raw stack and its high-SNR partner.

    The pattern parameters are estimated from the high-SNR stack (all its time points together).
    The high-SNR stack was taken with a longer exposure or more light, so after background
    subtraction it is scaled to the low-SNR set's mean and then divided by the low-SNR set's
    :func:`microsr.models.rdl.normalize_raw` scale: ``clean`` and ``noisy`` share units. The SIM target is the Wiener
    reconstruction of the high-SNR stack (max 1); the pattern-modulated images are that
    reconstruction under the estimated patterns, each orientation scaled to the mean of its
    ``clean`` frames (the Wiener filter's gain is not exactly 1, and real orientations differ in
    brightness).

    Parameters
    ----------
    noisy_path, gt_path : path
        TIFF or MRC raw stacks in a layout :func:`microsr.io.to_tapyx` accepts. The high-SNR stack holds
        as many time points as the low-SNR one, or one set for all of them.
    angles, phases : int
        Orientations and phase steps per time point.
    pixel_size_nm : float, optional
        Camera pixel size; default the low-SNR file's.
    otf : OTF, optional
        Detection OTF; default the ideal OTF of ``na`` and ``wavelength_nm`` with pixel integration.
    background : float or "auto"
        Camera offset (+ background) subtracted from both stacks; "auto" estimates each stack's own
        (:func:`microsr.sim.estimate.estimate_background`), which follows a change of exposure.
    prior : PatternPrior, optional
        Calibrated angles and spacing for the estimation (:class:`microsr.sim.estimate.PatternPrior`).
    allow_unreliable : bool
        Use an estimate whose quality check warns instead of refusing it.

    Returns
    -------
    list of RawPair

    Raises
    ------
    InputError
        Unreadable files, wrong frame counts, stacks that do not match, no signal above the
        background, no pixel size, or a failed or unreliable pattern estimation.
    """
    noisy_path, gt_path = Path(noisy_path), Path(gt_path)
    noisy, file_pixel = _read_stack(noisy_path, angles, phases)
    gt, _ = _read_stack(gt_path, angles, phases)
    if noisy.shape[1:] != gt.shape[1:]:
        raise InputError(f"{noisy_path.name}: low-SNR frames {noisy.shape[1:]} and high-SNR frames "
                         f"{gt.shape[1:]} (A, P, Y, X) differ: pairs must be the same field and layout")
    if len(gt) not in (1, len(noisy)):
        raise InputError(f"{noisy_path.name}: {len(noisy)} time points in {noisy_path.parent.name}/ but "
                         f"{len(gt)} in {gt_path.parent.name}/: the high-SNR stack needs as many or one")
    pixel = pixel_size_nm or file_pixel
    if not pixel:
        raise InputError(f"{noisy_path} carries no pixel size: pass pixel_size_nm (62.6 for the rDL TIRF-SIM "
                         "data)")
    otf = otf or ideal_otf(na, wavelength_nm, camera_pixel_nm=pixel)
    if background == "auto":
        noisy_bg, gt_bg = estimate_background(noisy), estimate_background(gt)
    else:
        noisy_bg = gt_bg = float(background)
    try:
        params = estimate_parameters(gt, pixel, otf, background=gt_bg, prior=prior)
    except (EstimationError, InputError) as exc:
        raise InputError(f"pattern estimation failed on {gt_path} ({exc}); pass prior=microsr.sim.estimate."
                         "PatternPrior(angles_rad=..., spacing_nm=...) from a calibration") from None
    if not params.quality.get("reliable", True) and not allow_unreliable:
        raise InputError(f"pattern estimate of {gt_path} is unreliable ({params.quality['warnings'][0]}); pass "
                         "prior=microsr.sim.estimate.PatternPrior(angles_rad=..., spacing_nm=...) from a "
                         "calibration, or allow_unreliable=True")
    recon = reconstruct(gt, params, pixel, otf, ReconstructionSettings(background=gt_bg), device="cpu")
    modulated = [modulated_images(image, params, pixel, otf) for image in recon]
    pairs = []
    for t in range(len(noisy)):
        g = 0 if len(gt) == 1 else t
        frames, scale = normalize_raw(noisy[t], noisy_bg)
        noisy_mean = float(frames.mean()) * scale
        high = gt[g].astype(np.float64) - gt_bg
        if noisy_mean <= 0 or high.mean() <= 0:
            raise InputError(f"{noisy_path.name} time point {t}: no signal above the background "
                             f"({noisy_bg:.1f} / {gt_bg:.1f} ADU): pass a smaller background (the camera offset)")
        clean = (high * (noisy_mean / high.mean()) / scale).astype(np.float32)
        pattern = modulated[g].astype(np.float64)
        gain = clean.mean(axis=(1, 2, 3), keepdims=True) / np.maximum(pattern.mean(axis=(1, 2, 3), keepdims=True),
                                                                     MIN_SCALE)
        target = (recon[g] / max(float(recon[g].max()), MIN_SCALE)).astype(np.float32)
        pairs.append(RawPair(noisy=frames, clean=clean, sim_target=target,
                             modulated=(pattern * gain).astype(np.float32), params=params, photons=None,
                             specimen=f"{noisy_path.name}[{t}]", scale=scale, pixel_size_nm=float(pixel)))
    return pairs


class FolderRawPairs(IterableDataset):
    """Random patches from a folder of registered low- and high-SNR raw SIM stacks.

    The folder holds ``train/`` and ``train_gt/`` (and ``val/``, ``val_gt/`` for validation): low-SNR
    stacks in the first, their high-SNR partners under the same file names in the second, TIFF or MRC
    (:data:`RAW_SUFFIXES`). Each pair is turned into :class:`RawPair` s by :func:`raw_pairs_from_files`
    when the dataset is built, so a bad file fails before training starts. Patches are not flipped or
    rotated (see the module docstring).

    Parameters
    ----------
    folder : path
        The folder holding the subfolders.
    split : {"train", "val"}
        Which pair of subfolders to read.
    task : {"sr", "denoise"}
        What to yield, as :class:`RawPairStream` does.
    patch_px : int
        Patch size in raw pixels.
    angles, phases, pixel_size_nm, otf, na, wavelength_nm, background, prior, allow_unreliable
        As for :func:`raw_pairs_from_files`.
    seed, seed_offset : int
        Patch positions follow from them (and the worker).
    sr_model : path, optional
        As for :class:`RawPairStream`: modulated images from a trained SR network's estimate.

    Raises
    ------
    InputError
        A missing subfolder, no stacks, a file without its partner, or any error of
        :func:`raw_pairs_from_files`, naming the file.
    """

    def __init__(self, folder: str | Path, *, split: str = "train", task: str = "sr", patch_px: int = 64,
                 angles: int = 3, phases: int = 3, pixel_size_nm: float | None = None, otf: OTF | None = None,
                 na: float = 1.35, wavelength_nm: float = 525.0, background: float | str = "auto",
                 prior: PatternPrior | None = None, allow_unreliable: bool = False, seed: int = 0,
                 seed_offset: int = 0, sr_model: str | Path | None = None):
        _check_task(task)
        if split not in FOLDER_LAYOUT:
            raise InputError(f"unknown split {split!r}: use 'train' or 'val'")
        folder = Path(folder)
        noisy_dir, gt_dir = (folder / name for name in FOLDER_LAYOUT[split])
        for directory in (noisy_dir, gt_dir):
            if not directory.is_dir():
                raise InputError(f"{directory} is missing: a training folder holds train/, train_gt/, val/ and "
                                 "val_gt/ with low-SNR stacks in the first and high-SNR ones in the _gt partner")
        names = _stack_names(noisy_dir)
        if not names:
            raise InputError(f"no raw stacks ({', '.join(RAW_SUFFIXES)}) in {noisy_dir}: put the low-SNR stacks there")
        partners = _stack_names(gt_dir)
        for name in names:
            if name not in partners:
                raise InputError(f"{name} is in {noisy_dir} but has no partner in {gt_dir}: the high-SNR stack "
                                 "needs the same file name")
        for name in partners:
            if name not in names:
                raise InputError(f"{name} is in {gt_dir} but has no partner in {noisy_dir}: the low-SNR stack "
                                 "needs the same file name")
        self.pairs = [pair for name in names for pair in raw_pairs_from_files(
            noisy_dir / name, gt_dir / name, angles=angles, phases=phases, pixel_size_nm=pixel_size_nm, otf=otf,
            na=na, wavelength_nm=wavelength_nm, background=background, prior=prior,
            allow_unreliable=allow_unreliable)]
        if task == "denoise" and sr_model is not None:
            pixel = self.pairs[0].pixel_size_nm
            otf = otf or ideal_otf(na, wavelength_nm, camera_pixel_nm=pixel)
            self.pairs = [with_estimated_modulation(pair, sr_model, otf) for pair in self.pairs]
        smallest = min(min(pair.noisy.shape[-2:]) for pair in self.pairs)
        if patch_px > smallest:
            raise InputError(f"patch_px {patch_px} is larger than the smallest raw frame in {noisy_dir} "
                             f"({smallest} px): use a smaller patch")
        self.task = task
        self.patch_px = int(patch_px)
        self.seed = int(seed)
        self.seed_offset = int(seed_offset)

    def samples(self, count: int, rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        """``count`` patches from randomly drawn pairs."""
        return [crop_sample(self.pairs[int(rng.integers(len(self.pairs)))], self.task, self.patch_px, rng)
                for _ in range(count)]

    def __iter__(self):
        rng = stream_rng(self.seed, self.seed_offset)
        while True:
            yield from self.samples(1, rng)


def _stack_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.name.lower().endswith(RAW_SUFFIXES)
                  and not p.name.startswith("."))


def validation_raw_pairs(count: int = 8, *, specimens=SPECIMENS, photons: tuple[float, float] = (10.0, 200.0),
                         patch_px: int = 64, field_px: int = 128, angles: int = 3, phases: int = 3,
                         task: str = "sr", pixel_size_nm: float = 62.6, na: float = 1.35,
                         wavelength_nm: float = 525.0, seed: int = 0, folder: str | Path | None = None,
                         sr_model: str | Path | None = None, randomization: Randomization | None = None,
                         **folder_options) -> tuple[torch.Tensor, ...]:
    """A fixed validation batch: simulated from seeds no training stream draws, or cut from ``folder/val``.

    Simulated fields use :func:`validation_seed` (odd; :func:`training_seed` is always even), one
    patch per field, drawn exactly as :class:`RawPairStream` draws its own. With ``folder``, the
    patches come from ``val/`` and ``val_gt/`` (:class:`FolderRawPairs`, ``folder_options`` passed on)
    at fixed positions. ``sr_model`` makes the modulated images as :class:`RawPairStream` does.

    Returns
    -------
    tuple of torch.Tensor
        The stream's tuple stacked over ``count`` samples: ``(noisy (N, A·P, h, w), sim_target
        (N, 1, 2h, 2w))`` for "sr", ``(modulated, noisy, clean)``, each ``(N, P, h, w)``, for "denoise".

    Raises
    ------
    InputError
        As for :class:`RawPairStream` or :class:`FolderRawPairs`, or ``count`` < 1.
    """
    if count < 1:
        raise InputError(f"count must be ≥ 1 validation samples, got {count}")
    if folder is not None:
        reader = FolderRawPairs(folder, split="val", task=task, patch_px=patch_px, angles=angles, phases=phases,
                                seed=seed, sr_model=sr_model, **folder_options)
        samples = reader.samples(count, np.random.default_rng((seed, 999_983)))
    else:
        if seed < 0:
            raise InputError(f"seed must be ≥ 0, got {seed}")
        simulation = _Simulation(tuple(specimens), (float(photons[0]), float(photons[1])), int(field_px),
                                 int(patch_px), int(angles), int(phases), task, float(pixel_size_nm), float(na),
                                 float(wavelength_nm), str(sr_model) if sr_model else None, randomization)
        samples = [simulation.samples(validation_seed(seed, i), 1)[0] for i in range(count)]
    return tuple(torch.stack(column) for column in zip(*samples))
