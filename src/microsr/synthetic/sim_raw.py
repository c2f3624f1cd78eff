"""A complete simulated 2-D SIM acquisition with known truth (specimen, patterns, optics, camera) and its SIM-resolution target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from microsr.errors import InputError
from microsr.optics import OTF, ideal_otf
from microsr.sim.parameters import SIMParameters
from microsr.sim.pattern import Camera, add_camera_noise, forward_model, random_parameters, widefield_model
from microsr.synthetic.defects import AcquisitionDefects, camera_defects, illumination_defects
from microsr.synthetic.specimens import filaments_and_dots, polymer_chains, rings

#: Specimens :func:`simulate_sim` can image: microtubule-like filaments with vesicle-like dots,
#: clathrin-coated-pit-like hollow rings with dots, and a dense filament network.
SPECIMENS = ("filaments", "pits", "network")

# Clathrin-coated pits cover a TIRF footprint at roughly 0.5–1 per µm²; SFSRM's dense microtubule
# network is 50 chains of ~10 µm in 10 × 10 µm², i.e. 5 µm of filament per µm².
_PITS_PER_UM2 = 0.6
_NETWORK_UM_PER_UM2 = 5.0
_LINE_WIDTH_NM = 25.0  # microtubule and clathrin coat are both ~25 nm across

#: FWHM of the widefield (Airy) PSF in units of λ/NA.
AIRY_FWHM_PER_WAVELENGTH_OVER_NA = 0.51

# The defects' own random stream (with the seed): switching them on leaves every other draw as it was.
_DEFECT_STREAM = 0xDEFEC7

# Floor of the target's maximum: an empty field stays zero rather than dividing by zero.
_MIN_PEAK = 1e-6


@dataclass
class SimulatedSIM:
    """Raw frames and their truth. Arrays: raw ``(T, A, P, Y, X)`` counts; truth on the 2× grid."""

    raw: np.ndarray
    raw_clean: np.ndarray
    ground_truth: np.ndarray
    widefield: np.ndarray
    params: SIMParameters
    pixel_size_nm: float
    camera: Camera
    settings: dict = field(default_factory=dict)
    #: Where the camera's defects are (``hot``, ``dead`` masks and the fixed ``offset_map``), if any were simulated.
    camera_defects: dict = field(default_factory=dict)

    def truth_dict(self) -> dict:
        """Everything a test or a user needs to judge an estimate or a reconstruction."""
        truth = self.params.to_dict()
        truth.pop("quality", None)
        truth.update(self.settings)
        truth.update(pixel_size_nm=self.pixel_size_nm, ground_truth_pixel_size_nm=self.pixel_size_nm / 2,
                     camera_offset_adu=self.camera.offset_adu,
                     background_photons=self.camera.background_photons,
                     read_noise_e=self.camera.read_noise_e)
        return truth


def simulate_sim(*, shape: tuple[int, int] = (256, 256), pixel_size_nm: float = 62.6, na: float = 1.35,
                 wavelength_nm: float = 525.0, pattern_fraction_of_cutoff: float = 0.92,
                 angles: int = 3, phases: int = 3, modulation: float | Sequence[float] = 0.8,
                 angle_rad: float | None = None, phase_jitter_rad: float = 0.0,
                 photons: float = 30.0, time_points: int = 1, camera: Camera = Camera(),
                 n_filaments: int | None = None, n_dots: int | None = None, otf: OTF | None = None,
                 seed: int = 0, specimen: str = "filaments",
                 defects: AcquisitionDefects | None = None) -> SimulatedSIM:
    """Simulate raw SIM frames of a synthetic specimen with known pattern parameters.

    Parameters
    ----------
    shape : (int, int)
        Raw frame size (camera pixels).
    pixel_size_nm, na, wavelength_nm : float
        Camera pixel size (sample plane), numerical aperture and emission wavelength.
    pattern_fraction_of_cutoff : float
        Pattern frequency as a fraction of the OTF cut-off ``2NA/λ`` (TIRF-SIM: 0.9–1.0).
    angles, phases : int
        Orientations and phase steps (3×3 or 3×5).
    modulation : float or sequence of float
        Modulation depth ``m`` of ``1 + m cos(...)``, one for all orientations or one per orientation.
    angle_rad : float, optional
        Base angle; random in ``[0, π/A)`` when not given.
    phase_jitter_rad : float
        Standard deviation of random deviations from equal phase steps (real phase shifters drift).
    photons : float
        Expected photon count at the brightest pixel of the noise-free widefield image (signal only,
        background excluded). Sets the SNR: ~30 is low-light live-cell imaging.
    time_points : int
        Number of independent noise realizations of the same specimen and patterns.
    camera : Camera
        Background photons, read noise and offset.
    n_filaments, n_dots : int, optional
        Filaments ("filaments"), chains ("network") and dots ("filaments", "pits"); default a density
        that scales with the field's area.
    otf : OTF, optional
        Detection OTF; default the ideal OTF from NA and wavelength with camera pixel integration.
    seed : int
        Reproducibility: specimen, pattern and noise all follow from it.
    specimen : {"filaments", "pits", "network"}
        "filaments": microtubule-like filaments and vesicle-like dots (sparse); "pits": hollow rings of
        50–160 nm diameter like clathrin-coated pits, plus dots; "network": a dense network of
        worm-like filaments (SFSRM's 5 µm of filament per µm²).
    defects : AcquisitionDefects, optional
        A real instrument's camera, laser and bleaching (:mod:`microsr.synthetic.defects`), drawn from
        a generator of their own: the specimen, pattern and shot noise stay those of ``seed``.
        ``raw_clean`` stays the ideal frames; the defects are recorded in ``settings["defects"]`` and
        ``camera_defects``.

    Raises
    ------
    InputError
        An unknown ``specimen``.
    """
    if specimen not in SPECIMENS:
        raise InputError(f"unknown specimen {specimen!r}: use one of {', '.join(SPECIMENS)}")
    rng = np.random.default_rng(seed)
    otf = otf or ideal_otf(na, wavelength_nm, camera_pixel_nm=pixel_size_nm)
    spacing_nm = 1000.0 / (pattern_fraction_of_cutoff * otf.cutoff_per_um)
    params = random_parameters(rng, angles=angles, phases=phases, spacing_nm=spacing_nm,
                               modulation=modulation, angle_rad=angle_rad,
                               phase_jitter_rad=phase_jitter_rad)
    oversample = 2
    fine_pixel = pixel_size_nm / oversample
    area = shape[0] * shape[1] / (256 * 256)
    margin = 16
    padded = ((shape[0] + 2 * margin) * oversample, (shape[1] + 2 * margin) * oversample)
    n_dots = n_dots or max(1, int(round(40 * area)))
    if specimen == "filaments":
        density = filaments_and_dots(padded, fine_pixel,
                                     n_filaments=n_filaments or max(1, int(round(14 * area))),
                                     n_dots=n_dots, seed=rng)
    else:
        # The SFSRM generators draw square fields sized in µm; one a pixel larger than the padded
        # field, cropped, puts the specimen on exactly the simulation's fine grid.
        side_um = (max(padded) + 1) * fine_pixel / 1000.0
        field_um2 = padded[0] * padded[1] * (fine_pixel / 1000.0) ** 2
        if specimen == "pits":
            pits, _ = rings(side_um, fine_pixel, diameters_nm=(50.0, 160.0),
                            n_rings=max(1, int(round(_PITS_PER_UM2 * field_um2))),
                            gt_blur_fwhm_nm=_LINE_WIDTH_NM, seed=rng)
            dots = filaments_and_dots(padded, fine_pixel, n_filaments=0, n_dots=n_dots,
                                      filament_width_nm=_LINE_WIDTH_NM, seed=rng)
            density = pits[:padded[0], :padded[1]] + 0.5 * dots  # dimmer vesicles beside the pits
        else:
            # Chains are 0.5–1.5 field sides long (a side on average), so count = length density × side.
            chains = n_filaments or max(1, int(round(_NETWORK_UM_PER_UM2 * side_um)))
            density = polymer_chains(side_um, fine_pixel, n_chains=chains,
                                     gt_blur_fwhm_nm=_LINE_WIDTH_NM, seed=rng)[:padded[0], :padded[1]]
    widefield_clean = widefield_model(density, fine_pixel, oversample, otf, margin)
    scale = photons / max(float(widefield_clean.max()), 1e-12)
    density = density * scale
    raw_clean = forward_model(density, fine_pixel, oversample, otf, params, margin)
    inner = slice(margin * oversample, -margin * oversample)
    truth = density[inner, inner]
    record: dict = {}
    if defects is None:
        raw = np.stack([add_camera_noise(raw_clean, camera, rng) for _ in range(time_points)])
    else:
        defect_rng = np.random.default_rng((seed, _DEFECT_STREAM))
        expected, _ = illumination_defects(np.broadcast_to(raw_clean, (time_points, *raw_clean.shape)), defects,
                                           defect_rng)
        raw = np.stack([add_camera_noise(frames, camera, rng) for frames in expected])
        raw, record = camera_defects(raw, defects, defect_rng, offset_adu=camera.offset_adu)
    widefield = raw.mean(axis=(1, 2)) - camera.offset_adu - camera.background_photons
    settings = dict(na=na, wavelength_nm=wavelength_nm, photons=photons, seed=seed,
                    pattern_fraction_of_cutoff=pattern_fraction_of_cutoff, shape=list(shape),
                    angles=angles, phases=phases, time_points=time_points, specimen=specimen,
                    **({"defects": defects.to_dict()} if defects is not None else {}))
    return SimulatedSIM(raw=raw, raw_clean=raw_clean, ground_truth=truth.astype(np.float32),
                        widefield=widefield.astype(np.float32), params=params,
                        pixel_size_nm=pixel_size_nm, camera=camera, settings=settings, camera_defects=record)


def sim_resolution_fwhm_nm(na: float, wavelength_nm: float, pattern_fraction_of_cutoff: float) -> float:
    """FWHM of the PSF of an ideal linear SIM: the widefield Airy FWHM shrunk by the support extension.

    The SIM OTF reaches ``k_c + |k| = (1 + f) k_c`` for a pattern at ``f`` times the cut-off
    ``k_c = 2NA/λ``, so its PSF is the widefield PSF (FWHM ``0.51 λ/NA``) narrowed ``1 + f`` times:
    ``0.51 λ / (NA (1 + f))``, about ``λ / (2 · 2NA)``. For NA 1.35, 525 nm and ``f = 0.92``: 103 nm.
    """
    return AIRY_FWHM_PER_WAVELENGTH_OVER_NA * wavelength_nm / na / (1.0 + pattern_fraction_of_cutoff)


def sim_target(ground_truth: np.ndarray, pixel_size_nm: float, fwhm_nm: float) -> np.ndarray:
    """Ground truth blurred to what an ideal SIM resolves (Gaussian of ``fwhm_nm``), normalized to max 1.

    A Gaussian of the SIM PSF's FWHM (:func:`sim_resolution_fwhm_nm`) rather than the ideal SIM
    OTF itself: the target then has no ringing, and the SR network is asked for what SIM can
    deliver, not for detail beyond its support that it could only invent.
    """
    sigma_px = fwhm_nm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_size_nm
    blurred = ndimage.gaussian_filter(np.asarray(ground_truth, dtype=np.float64), sigma_px, mode="reflect")
    return (blurred / max(float(blurred.max()), _MIN_PEAK)).astype(np.float32)
