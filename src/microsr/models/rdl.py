"""rDL SIM's model: the SR-estimate DFCAN and the rDL denoiser, their file format, normalization and acquisition check.

An rDL SIM model is a folder with ``sr.pt`` (DFCAN: raw frames → first SR estimate) and
``denoiser.pt`` (the two-branch denoiser fed the pattern-modulated images of that estimate), both
trained for one acquisition (orientations, phases, pixel size, NA, wavelength), and optionally
``care.pt``, the CARE-style U-Net baseline. Training (:mod:`microsr.train.rdl`) writes these files
with :func:`save_network`; prediction (:class:`microsr.pipelines.rdl_sim.RDLSIM`) loads them with
:meth:`RDLModel.from_pretrained`. :func:`normalize_raw` and :func:`estimated_modulated_images` are
shared by both, so the denoiser learns on exactly what prediction gives it.

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from microsr.device import resolve_device
from microsr.errors import InputError
from microsr.io import check_finite
from microsr.models import serialize
from microsr.models.checks import AcquisitionWarning, check_pixel_size
from microsr.models.shipped import model_folder
from microsr.nets import DFCAN, RDLDenoiser, UNet
from microsr.optics import OTF, ideal_otf
from microsr.sim.modulated import modulated_images
from microsr.sim.parameters import SIMParameters
from microsr.tiling import predict_tiled

#: The networks of an rDL model folder, by file name (care.pt, the baseline, is optional).
NETWORK_FILES = {"sr": "sr.pt", "denoiser": "denoiser.pt", "care": "care.pt"}

#: The shipped model ``from_pretrained`` loads when given no name.
DEFAULT_MODEL = "tirf-sim-3x3"

#: Relative difference of NA or wavelength from the model's training beyond which prediction warns.
OPTICS_TOLERANCE = 0.05

#: Floor of the normalization scale: keeps an empty (all-background) set from dividing by zero.
MIN_SCALE = 1e-6


def build_network(kind: str, hyper: dict) -> torch.nn.Module:
    """An untrained network of ``kind`` from its hyper-parameters.

    "sr": DFCAN (raw frames → SR estimate); "denoiser": the rDL denoiser; "care": the CARE-style
    U-Net baseline that denoises one orientation's frames without being told the pattern.
    """
    if kind == "sr":
        return DFCAN(**hyper)
    if kind == "denoiser":
        return RDLDenoiser(**hyper)
    if kind == "care":
        return UNet(**hyper)
    raise InputError(f"unknown rDL network kind {kind!r}: use 'sr', 'denoiser' or 'care'")


def save_network(path: str | Path, kind: str, network: torch.nn.Module, hyper: dict, acquisition: dict,
                 **info) -> Path:
    """Export one rDL network with what a user needs to apply it: hyper-parameters and the acquisition."""
    return serialize.save_network(path, "rdl", network, network=kind, model=dict(hyper), acquisition=dict(acquisition),
                                  **info)


def load_network(path: str | Path, kind: str) -> tuple[torch.nn.Module, dict]:
    """An exported rDL network as (module in eval mode, its info), or one clear InputError."""
    network, info = serialize.load_network(path, "rdl", lambda saved: build_network(saved["network"], saved["model"]),
                                           missing_hint="train one with 'microsr rdl train'")
    if info["network"] != kind:
        raise InputError(f"{path} holds an rDL {info['network']} network, not the {kind} network")
    return network, info


def normalize_raw(raw: np.ndarray, background: float) -> tuple[np.ndarray, float]:
    """Background-free raw frames divided by one scale for the whole set, and that scale.

    The scale is the 99.9th percentile of the widefield image (the mean of all frames) after the
    background is subtracted, floored at :data:`MIN_SCALE`. One scale for all frames keeps the
    phase-to-phase and orientation-to-orientation intensity differences that band separation relies
    on; using the noisy set's scale for its clean target too means a denoiser learns intensities a
    Wiener reconstruction can use, and ``normalized · scale`` puts a prediction back into photons.

    Parameters
    ----------
    raw : ndarray, shape (A, P, Y, X) or (..., Y, X)
        Raw frames of one set (camera counts); all frames share the scale.
    background : float
        Camera offset plus background photons (ADU), subtracted from every frame.

    Returns
    -------
    normalized : ndarray, float32, same shape as ``raw``
        ``(raw − background) / scale``: the widefield image's 99.9th percentile is 1.
    scale : float
        Photons (ADU above background) per normalized unit.

    Raises
    ------
    InputError
        Fewer than 3 dimensions, a non-finite background, or non-finite pixels.

    Examples
    --------
    >>> frames, scale = normalize_raw(np.full((3, 3, 32, 32), 110.0), background=100.0)
    >>> scale, float(frames.max())
    (10.0, 1.0)
    """
    frames = np.asarray(raw, dtype=np.float32)
    if frames.ndim < 3:
        raise InputError(f"raw frames of shape {frames.shape} are not a set of frames: give (A, P, Y, X)")
    background = float(background)
    if not math.isfinite(background):
        raise InputError(f"background {background} is not a number: give the camera offset plus background "
                         "(ADU), e.g. from microsr.sim.estimate.estimate_background")
    if not np.isfinite(frames).all():
        raise InputError("raw frames contain NaN or inf: check the file or the acquisition")
    signal = frames - np.float32(background)
    widefield = signal.reshape(-1, *signal.shape[-2:]).mean(axis=0)
    scale = max(float(np.percentile(widefield, 99.9)), MIN_SCALE)
    return (signal / np.float32(scale)).astype(np.float32), scale


def relabel_phases(frames: np.ndarray, shift: int, reverse: bool) -> np.ndarray:
    """Frames ``(..., P, Y, X)`` with their phases taken in another order: started ``shift`` steps later,
    and stepped the other way round when ``reverse``.

    Both are the same specimen under the same pattern: starting later is another phase offset, and
    stepping backwards is the pattern's wave vector taken as −k. Training draws every order, so a network
    cannot tie a brightness to a channel; prediction averages over the orders
    (:meth:`microsr.pipelines.rdl_sim.RDLSIM.predict`), so what a network still ties to one is averaged out.

    Examples
    --------
    >>> frames = np.arange(3)[:, None, None] * np.ones((3, 2, 2))
    >>> relabel_phases(frames, 1, False)[:, 0, 0].tolist(), relabel_phases(frames, 1, True)[:, 0, 0].tolist()
    ([1.0, 2.0, 0.0], [0.0, 2.0, 1.0])
    """
    return frames[..., phase_order(frames.shape[-3], shift, reverse), :, :]


def phase_order(phases: int, shift: int, reverse: bool) -> np.ndarray:
    """The frame indices :func:`relabel_phases` takes, in its order; ``np.argsort`` of it undoes it."""
    order = np.roll(np.arange(phases), -shift)
    return order[::-1].copy() if reverse else order


@torch.no_grad()
def estimated_modulated_images(sr_network, normalized: np.ndarray, params: SIMParameters, pixel_size_nm: float,
                               otf: OTF, *, device="cpu", tile_px: int | None = None,
                               overlap_px: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The SR network's estimate of normalized raw frames ``(A, P, Y, X)`` and its pattern-modulated images.

    Returns ``(sr_estimate (2Y, 2X), modulated (A, P, Y, X))``. The SR estimate is 0–1 with an unknown
    gain, so the modulated images are matched to the noisy frames' intensity by least squares: both
    branches of the denoiser then see the same units. Prediction and denoiser training both call this,
    so the denoiser learns on exactly the modulated images it will be given.
    """
    angles, phases = normalized.shape[:2]
    flat = normalized.reshape(angles * phases, *normalized.shape[2:])
    sr_estimate = predict_tiled(sr_network, flat, scale=2, tile_px=tile_px, overlap_px=overlap_px, device=device,
                                channels=angles * phases)[0]
    modulated = modulated_images(sr_estimate, params, pixel_size_nm, otf)
    gain = float(np.sum(modulated * normalized) / max(float(np.sum(modulated * modulated)), 1e-12))
    return sr_estimate, (modulated * gain).astype(np.float32)


class RDLModel:
    """A trained rDL SIM model: SR-estimate network (DFCAN) and rDL denoiser on a device, with their acquisition.

    Parameters
    ----------
    sr_network, denoiser : torch.nn.Module
        The two networks (:func:`build_network` "sr" and "denoiser").
    info : dict
        What the denoiser's file says besides the weights; ``info["acquisition"]`` holds ``angles``,
        ``phases``, ``pixel_size_nm``, ``na`` and ``wavelength_nm``.
    otf : OTF
        The OTF prediction reconstructs with (a measured one, or the ideal one of the acquisition).
    device : str
        "auto", "cpu" or "cuda".
    """

    def __init__(self, sr_network, denoiser, info: dict, otf: OTF, device: str = "auto"):
        self.device = resolve_device(device)
        self.sr_network = sr_network.to(self.device)
        self.denoiser = denoiser.to(self.device)
        self.info = info
        self.otf = otf

    @property
    def acquisition(self) -> dict:
        """Orientations, phases, pixel size, NA and wavelength the networks were trained for."""
        return self.info["acquisition"]

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, device: str = "auto", otf: OTF | None = None):
        """A shipped model by name (e.g. "tirf-sim-3x3"), or a folder with ``sr.pt`` and ``denoiser.pt``.

        The OTF defaults to the ideal one of the acquisition the model was trained for.

        Examples
        --------
        >>> model = RDLModel.from_pretrained("tirf-sim-3x3", device="cpu")
        >>> model.acquisition["angles"], model.acquisition["phases"], model.acquisition["pixel_size_nm"]
        (3, 3, 62.6)
        """
        if isinstance(device, OTF):  # microsr 0.1's order was (name_or_path, otf, device)
            warnings.warn("RDLSIM.from_pretrained(name, otf, device) is now (name, device, otf=...): pass otf by "
                          "keyword", DeprecationWarning, stacklevel=2)
            device, otf = (otf if isinstance(otf, str) else "auto"), device
        folder = model_folder(name_or_path, "rdl")
        if not folder.is_dir():
            raise InputError(f"rDL model folder {folder} is not a folder: give a folder with sr.pt and denoiser.pt")
        sr_network, sr_info = load_network(folder / NETWORK_FILES["sr"], "sr")
        denoiser, info = load_network(folder / NETWORK_FILES["denoiser"], "denoiser")
        if sr_info["acquisition"] != info["acquisition"]:
            raise InputError(f"{folder}: sr.pt and denoiser.pt were trained for different acquisitions "
                             f"({sr_info['acquisition']} vs {info['acquisition']})")
        acquisition = info["acquisition"]
        otf = otf or ideal_otf(acquisition["na"], acquisition["wavelength_nm"],
                               camera_pixel_nm=acquisition["pixel_size_nm"])
        return cls(sr_network, denoiser, info, otf, device)

    def use_optics(self, *, na: float | None = None, wavelength_nm: float | None = None) -> None:
        """Reconstruct with the ideal OTF of another NA or emission wavelength (a measured OTF given to
        :meth:`from_pretrained` is kept unless one of them is given), warning when it lies outside what
        the networks were trained on (:data:`OPTICS_TOLERANCE`)."""
        if na is None and wavelength_nm is None:
            return
        acquisition = self.acquisition
        na = float(na if na is not None else acquisition["na"])
        wavelength_nm = float(wavelength_nm if wavelength_nm is not None else acquisition["wavelength_nm"])
        for name, given, trained in (("NA", na, acquisition["na"]), ("emission wavelength", wavelength_nm,
                                                                    acquisition["wavelength_nm"])):
            if abs(given / trained - 1) > OPTICS_TOLERANCE:
                warnings.warn(f"{name} {given:g} differs from the {trained:g} the model was trained for: its SR "
                              "estimate and denoiser learned another OTF; expect artifacts, or train a model for "
                              "these optics", AcquisitionWarning, stacklevel=2)
        self.otf = ideal_otf(na, wavelength_nm, camera_pixel_nm=acquisition["pixel_size_nm"])

    @property
    def training_range(self) -> dict:
        """What the networks were trained on (OTFs, pattern fraction of the cut-off, modulations, defects,
        photons); files of microsr 0.1 did not record it: the ideal OTF, 0.92, 0.8, no defects."""
        return self.info.get("training_range") or {"otfs": ["ideal"], "pattern_fraction": [0.92, 0.92],
                                                   "modulation": [0.8, 0.8], "defects": False}

    def check_pattern(self, params: SIMParameters) -> None:
        """Warn when an acquisition's pattern lies outside what the networks were trained on: a pattern
        frequency (as a fraction of the OTF's cut-off) or a modulation out of the training range, or a
        measured OTF for a model that only saw the ideal one."""
        trained = self.training_range
        messages = []
        if self.otf.source.startswith("measured") and set(trained["otfs"]) == {"ideal"}:
            messages.append("the model was trained on the ideal OTF only and is given a measured one")
        fraction = float(np.median([o.k_cycles_per_um for o in params.orientations])) / self.otf.cutoff_per_um
        low, high = trained["pattern_fraction"]
        if not low - 0.03 <= fraction <= high + 0.03:
            messages.append(f"the pattern lies at {fraction:.2f} of the OTF cut-off; the model was trained at "
                            f"{low:g}–{high:g}")
        depths = [o.modulation for o in params.orientations]
        low, high = trained["modulation"]
        if min(depths) < low - 0.05 or max(depths) > high + 0.05:
            messages.append(f"modulations {', '.join(f'{m:.2f}' for m in depths)} lie outside the training range "
                            f"{low:g}–{high:g}")
        for message in messages:
            warnings.warn(f"{message}: rDL SIM may paint the pattern into the image; compare with 'microsr sim "
                          "reconstruct' and check with 'microsr sim check'", AcquisitionWarning, stacklevel=2)

    def check_raw(self, raw, pixel_size_nm: float | None) -> np.ndarray:
        """Raw frames as (A, P, Y, X) float32 for this model, or a clear error; the pixel size is checked
        by :func:`~microsr.models.checks.check_pixel_size`."""
        angles, phases = self.acquisition["angles"], self.acquisition["phases"]
        array = np.asarray(raw, dtype=np.float32)
        if array.ndim == 3 and array.shape[0] == angles * phases:
            array = array.reshape(angles, phases, *array.shape[1:])
        if array.ndim != 4 or array.shape[:2] != (angles, phases):
            raise InputError(f"raw frames of shape {np.shape(raw)} do not fit this model, trained for "
                             f"{angles} orientations × {phases} phases: give ({angles * phases}, Y, X) or "
                             f"({angles}, {phases}, Y, X)")
        check_finite(array, "raw frames")
        check_pixel_size(pixel_size_nm, self.acquisition["pixel_size_nm"], "the raw frames")
        return array
