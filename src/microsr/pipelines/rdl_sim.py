"""rDL SIM prediction: noisy raw frames → SR estimate → pattern-modulated images → denoised raw → Wiener SIM."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from microsr.errors import EstimationError, InputError
from microsr.optics import OTF
from microsr.sim.parameters import SIMParameters

#: Format tag of an exported rDL network (``torch.save`` dict); bump it when the layout changes.
RDL_MODEL_FORMAT = "microsr-rdl-1"

#: The networks of an rDL model folder, by file name (care.pt, the baseline, is optional).
NETWORK_FILES = {"sr": "sr.pt", "denoiser": "denoiser.pt", "care": "care.pt"}


def resolve_model_folder(name_or_path: str | Path) -> Path:
    """A folder as given, or the folder of a shipped rDL model (:func:`microsr.pipelines.shipped.shipped_models`)."""
    from microsr.pipelines.shipped import model_folder

    return model_folder(name_or_path, "rdl")


def build_network(kind: str, hyper: dict) -> torch.nn.Module:
    """An untrained network of ``kind`` from its hyper-parameters.

    "sr": DFCAN (raw frames → SR estimate); "denoiser": the rDL denoiser; "care": the CARE-style
    U-Net baseline that denoises one orientation's frames without being told the pattern.
    """
    from microsr.nets import DFCAN, RDLDenoiser, UNet

    if kind == "sr":
        return DFCAN(**hyper)
    if kind == "denoiser":
        return RDLDenoiser(**hyper)
    if kind == "care":
        return UNet(**hyper)
    raise InputError(f"unknown rDL network kind {kind!r}: use 'sr', 'denoiser' or 'care'")


def save_network(path: str | Path, kind: str, network: torch.nn.Module, hyper: dict, acquisition: dict,
                 **extra) -> Path:
    """Export one rDL network with what a user needs to apply it: hyper-parameters and the acquisition."""
    path = Path(path)
    torch.save({"format": RDL_MODEL_FORMAT, "network": kind, "model": hyper, "acquisition": acquisition,
                **extra, "state_dict": network.state_dict()}, path)
    return path


def load_network(path: str | Path, kind: str) -> tuple[torch.nn.Module, dict]:
    """An exported rDL network as (module in eval mode, its info), or one clear InputError."""
    from microsr.nets.saved import load_saved_network

    network, info = load_saved_network(path, RDL_MODEL_FORMAT, lambda saved: build_network(saved["network"],
                                                                                          saved["model"]),
                                       what="rDL model", missing_hint="train one with 'microsr rdl train'")
    if info["network"] != kind:
        raise InputError(f"{path} holds an rDL {info['network']} network, not the {kind} network")
    return network, info


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
    from microsr.sim.modulated import modulated_images
    from microsr.tiling import predict_tiled

    angles, phases = normalized.shape[:2]
    flat = normalized.reshape(angles * phases, *normalized.shape[2:])
    sr_estimate = predict_tiled(sr_network, flat, scale=2, tile_px=tile_px, overlap_px=overlap_px, device=device,
                                channels=angles * phases)[0]
    modulated = modulated_images(sr_estimate, params, pixel_size_nm, otf)
    gain = float(np.sum(modulated * normalized) / max(float(np.sum(modulated * modulated)), 1e-12))
    return sr_estimate, (modulated * gain).astype(np.float32)


@dataclass
class RDLResult:
    """An rDL SIM prediction: the SIM image, the denoised raw frames, and what led to them."""

    sim: np.ndarray           #: (2Y, 2X) rDL SIM image (Wiener reconstruction of the denoised frames)
    denoised: np.ndarray      #: (A, P, Y, X) denoised raw frames, background-free photon units
    sr_estimate: np.ndarray   #: (2Y, 2X) the SR network's estimate, normalized 0–1
    params: SIMParameters     #: the pattern parameters used


class RDLSIM:
    """A trained rDL SIM model: SR-estimate network (DFCAN) and rDL denoiser, applied with the SIM physics.

    The denoiser only cleans the raw frames; resolution comes from the Wiener reconstruction that
    follows, with the pattern estimated from the data — so a network cannot put structure into the
    SIM image that the raw frames do not support through the physics (paper 000).
    """

    def __init__(self, sr_network, denoiser, info: dict, otf: OTF, device: str = "auto"):
        from microsr.sim.reconstruct import resolve_device

        self.device = resolve_device(device)
        self.sr_network = sr_network.to(self.device)
        self.denoiser = denoiser.to(self.device)
        self.info = info
        self.otf = otf

    @property
    def acquisition(self) -> dict:
        return self.info["acquisition"]

    @classmethod
    def from_folder(cls, folder: str | Path, otf: OTF | None = None, device: str = "auto") -> "RDLSIM":
        """Load ``sr.pt`` and ``denoiser.pt`` from a folder or a shipped model's name (e.g. "tirf-sim-3x3");
        the OTF defaults to the ideal one of the acquisition."""
        from microsr.optics import ideal_otf

        folder = resolve_model_folder(folder)
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

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "tirf-sim-3x3", otf: OTF | None = None,
                        device: str = "auto") -> "RDLSIM":
        """A shipped model by name, or a folder (as :meth:`from_folder`); like ``SFSRM.from_pretrained``.

        >>> model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")          # doctest: +SKIP
        >>> result = model.predict(raw, background=100.0)                          # doctest: +SKIP
        """
        return cls.from_folder(name_or_path, otf, device)

    def check_raw(self, raw, pixel_size_nm: float | None) -> np.ndarray:
        """Raw frames as (A, P, Y, X) float32 for this model, or a clear error; a pixel-size mismatch warns."""
        import warnings

        from microsr.io import check_finite

        angles, phases = self.acquisition["angles"], self.acquisition["phases"]
        array = np.asarray(raw, dtype=np.float32)
        if array.ndim == 3 and array.shape[0] == angles * phases:
            array = array.reshape(angles, phases, *array.shape[1:])
        if array.ndim != 4 or array.shape[:2] != (angles, phases):
            raise InputError(f"raw frames of shape {np.shape(raw)} do not fit this model, trained for "
                             f"{angles} orientations × {phases} phases: give ({angles * phases}, Y, X) or "
                             f"({angles}, {phases}, Y, X)")
        check_finite(array, "raw frames")
        trained = self.acquisition["pixel_size_nm"]
        if pixel_size_nm is not None and abs(pixel_size_nm / trained - 1) > 0.1:
            warnings.warn(f"the raw frames have {pixel_size_nm:g} nm pixels but the model was trained at "
                          f"{trained:g} nm: the pattern and OTF it learned do not match; expect artifacts",
                          stacklevel=2)
        return array

    @torch.no_grad()
    def predict(self, raw, *, background: float = 0.0, params: SIMParameters | None = None,
                pixel_size_nm: float | None = None, prior=None, wiener_weight: float = 0.05,
                tile_px: int | None = None, overlap_px: int = 16) -> RDLResult:
        """Denoise one raw SIM set with the pattern in the loop and reconstruct it; see :class:`RDLResult`."""
        from microsr.sim.estimate import estimate_parameters
        from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
        from microsr.tiling import predict_tiled
        from microsr.train.rdl_data import normalize_raw

        frames = self.check_raw(raw, pixel_size_nm)
        pixel = pixel_size_nm or self.acquisition["pixel_size_nm"]
        angles, phases = frames.shape[:2]
        if params is None:
            try:
                params = estimate_parameters(frames, pixel, self.otf, background=background, prior=prior)
            except EstimationError as exc:
                raise EstimationError(f"{exc}; pass a prior (angles and spacing from a calibration) with "
                                      "--prior-angles-deg/--prior-spacing-nm, or parameters with --params") from None
        normalized, scale = normalize_raw(frames, background)
        sr_estimate, modulated = estimated_modulated_images(self.sr_network, normalized, params, pixel, self.otf,
                                                            device=self.device, tile_px=tile_px,
                                                            overlap_px=overlap_px)
        denoised = np.empty_like(normalized)

        def both_branches(stacked: torch.Tensor) -> torch.Tensor:
            return self.denoiser(stacked[:, :phases], stacked[:, phases:])

        for a in range(angles):
            stacked = np.concatenate([modulated[a], normalized[a]])
            denoised[a] = predict_tiled(both_branches, stacked, scale=1, tile_px=tile_px, overlap_px=overlap_px,
                                        device=self.device, channels=2 * phases)
        denoised_photons = denoised * scale
        settings = ReconstructionSettings(wiener_weight=wiener_weight)
        sim = reconstruct(denoised_photons, params, pixel, self.otf, settings, device=str(self.device))[0]
        return RDLResult(sim=sim, denoised=denoised_photons, sr_estimate=sr_estimate, params=params)


@torch.no_grad()
def care_sim(care, raw: np.ndarray, params: SIMParameters, pixel_size_nm: float, otf: OTF, *,
             background: float = 0.0, wiener_weight: float = 0.05, device: str = "cpu") -> np.ndarray:
    """The CARE baseline: denoise each orientation's raw frames with a U-Net (no pattern), then Wiener SIM."""
    from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
    from microsr.tiling import predict_tiled
    from microsr.train.rdl_data import normalize_raw

    normalized, scale = normalize_raw(np.asarray(raw, dtype=np.float32), background)
    care = care.to(device)
    denoised = np.stack([predict_tiled(care, frames, scale=1, device=device, channels=frames.shape[0])
                         for frames in normalized])
    return reconstruct(denoised * scale, params, pixel_size_nm, otf, ReconstructionSettings(wiener_weight=wiener_weight),
                       device=device)[0]


def predict_rdl_stack(model: RDLSIM, raw_path: str | Path, output: str | Path, *,
                      denoised_output: str | Path | None = None, background: str | float = "auto",
                      params: SIMParameters | None = None, pixel_size_nm: float | None = None,
                      overwrite: bool = False, progress: bool = True, **kwargs) -> dict:
    """rDL SIM of every time point of a raw file, streamed: SIM to ``output`` (T, 2Y, 2X), denoised frames optional.

    The pattern is estimated once, from the first time point (or given as ``params``), and used for
    all: it does not change during an acquisition, and a per-frame estimate at low light would be
    noisier than the physics needs. Only one frame set is in memory at a time.
    """
    from tqdm import tqdm

    from microsr.io import StackWriter
    from microsr.io.atomic import check_writable
    from microsr.pipelines.sim import open_raw, resolve_background

    check_writable(output, overwrite)
    if denoised_output:
        check_writable(denoised_output, overwrite)
    acquisition = model.acquisition
    stack, pixel = open_raw(raw_path, acquisition["angles"], acquisition["phases"], pixel_size_nm)
    background = resolve_background(stack, background)
    count, angles, phases, height, width = stack.shape
    first = model.predict(np.asarray(stack[0], dtype=np.float32), background=background, params=params,
                          pixel_size_nm=pixel, **kwargs)
    sim_writer = StackWriter(output, (count, 2 * height, 2 * width), "float32", pixel_size_nm=pixel / 2,
                             axes="TYX", overwrite=overwrite)
    denoised_writer = (StackWriter(denoised_output, (count * angles * phases, height, width), "float32",
                                   pixel_size_nm=pixel, axes="QYX", overwrite=overwrite)
                       if denoised_output else None)
    with sim_writer, (denoised_writer or nullcontext()):
        for t in tqdm(range(count), unit="set", desc="rDL SIM", disable=not progress):
            result = first if t == 0 else model.predict(np.asarray(stack[t], dtype=np.float32),
                                                        background=background, params=first.params,
                                                        pixel_size_nm=pixel, **kwargs)
            sim_writer.write(result.sim[None])
            if denoised_writer is not None:
                denoised_writer.write(result.denoised.reshape(angles * phases, height, width) + background)
    return {"output": str(output), "time_points": count, "sim_pixel_size_nm": pixel / 2,
            "denoised_output": str(denoised_output) if denoised_output else None,
            "params": first.params.to_dict()}
