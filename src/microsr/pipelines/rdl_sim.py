"""rDL SIM prediction: noisy raw frames → SR estimate → pattern-modulated images → denoised raw → Wiener SIM."""

from __future__ import annotations

import functools
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from microsr.errors import EstimationError, InputError
from microsr.io import StackWriter
from microsr.io.atomic import check_writable
from microsr.metrics import residual_pattern_index
from microsr.models.rdl import RDLModel, estimated_modulated_images, normalize_raw, phase_order
from microsr.models.shipped import model_signature
from microsr.optics import OTF, load_otf_mrc
from microsr.pipelines.sim import SIMReconstructor, open_raw, resolve_background
from microsr.sim.estimate import repair_pixels, stuck_pixels
from microsr.sim.parameters import SIMParameters
from microsr.sim.reconstruct import ReconstructionSettings
from microsr.tiling import predict_tiled


#: How much more of the pattern (log10, residual-pattern index) the rDL SIM image may keep than the
#: conventional SIM image of the same frames before prediction warns (issue 16's acceptance margin).
PATTERN_MARGIN = 0.2


class PatternWarning(UserWarning):
    """The rDL SIM image keeps more of the illumination pattern than conventional SIM of the same frames."""


@dataclass
class RDLResult:
    """An rDL SIM prediction: the SIM image, the denoised raw frames, and what led to them."""
    sim: np.ndarray           #: (2Y, 2X) rDL SIM image (Wiener reconstruction of the denoised frames)
    denoised: np.ndarray      #: (A, P, Y, X) denoised raw frames, background-free photon units
    sr_estimate: np.ndarray   #: (2Y, 2X) the SR network's estimate, normalized 0–1
    params: SIMParameters     #: the pattern parameters used
    #: residual-pattern index (log10) of this image and of conventional SIM of the same frames, same pattern
    artifact_index: dict | None = None


class RDLSIM(RDLModel):
    """A trained rDL SIM model: SR-estimate network (DFCAN) and rDL denoiser, applied with the SIM physics.

    The denoiser only cleans the raw frames; resolution comes from the Wiener reconstruction that
    follows, with the pattern estimated from the data — so a network cannot put structure into the
    SIM image that the raw frames do not support through the physics (paper 000).
    """

    @classmethod
    def from_folder(cls, folder: str | Path, otf: OTF | None = None, device: str = "auto") -> "RDLSIM":
        """Deprecated name of :meth:`from_pretrained`, kept for scripts written against microsr 0.1."""
        warnings.warn("RDLSIM.from_folder is now RDLSIM.from_pretrained", DeprecationWarning, stacklevel=2)
        return cls.from_pretrained(folder, device, otf=otf)

    @torch.no_grad()
    def predict(self, raw, *, background: float = 0.0, params: SIMParameters | None = None,
                pixel_size_nm: float | None = None, prior=None, wiener_weight: float = 0.05,
                tile_px: int | None = None, overlap_px: int = 16, phase_orders: str = "all") -> RDLResult:
        """Denoise one raw SIM set with the pattern in the loop and reconstruct it; see :class:`RDLResult`.

        ``phase_orders``: "all" denoises each orientation with its phases taken in every order (each
        start, both directions: :func:`~microsr.models.rdl.relabel_phases`) and averages, so a brightness
        the network ties to one output channel cannot reach the Wiener step as a pattern; "one" takes
        the acquisition's order only (2P× faster, for a network known to be free of that bias).
        """
        if phase_orders not in ("all", "one"):
            raise InputError(f"phase_orders {phase_orders!r}: use 'all' or 'one'")
        frames = self.check_raw(raw, pixel_size_nm)
        # Stuck camera pixels (hot, dead) are no specimen: the networks never saw them, and the Wiener step would ring.
        frames = repair_pixels(frames, stuck_pixels(frames)).astype(np.float32, copy=False)
        pixel = pixel_size_nm or self.acquisition["pixel_size_nm"]
        angles, phases = frames.shape[:2]
        sim = SIMReconstructor(self.otf, pixel, ReconstructionSettings(wiener_weight=wiener_weight), prior,
                               device=str(self.device))
        if params is None:
            try:
                params = sim.estimate(frames, background=background)
            except EstimationError as exc:
                raise EstimationError(f"{exc}; pass a prior (angles and spacing from a calibration) with "
                                      "--prior-angles-deg/--prior-spacing-nm, or parameters with --params") from None
        self.check_pattern(params)
        normalized, scale = normalize_raw(frames, background)
        sr_estimate, modulated = estimated_modulated_images(self.sr_network, normalized, params, pixel, self.otf,
                                                            device=self.device, tile_px=tile_px,
                                                            overlap_px=overlap_px)
        denoised = np.empty_like(normalized)

        def both_branches(stacked: torch.Tensor) -> torch.Tensor:
            return self.denoiser(stacked[:, :phases], stacked[:, phases:])

        orders = ([phase_order(phases, shift, reverse) for reverse in (False, True) for shift in range(phases)]
                  if phase_orders == "all" else [np.arange(phases)])
        for a in range(angles):
            total = np.zeros_like(normalized[a])
            for order in orders:
                stacked = np.concatenate([modulated[a][order], normalized[a][order]])
                total[order] += predict_tiled(both_branches, stacked, scale=1, tile_px=tile_px,
                                              overlap_px=overlap_px, device=self.device, channels=2 * phases)
            denoised[a] = total / len(orders)
        denoised_photons = denoised * scale
        # The denoised frames are background-free photons: reconstructed with a background of 0.
        image = sim.reconstruct(denoised_photons, params)
        return RDLResult(sim=image, denoised=denoised_photons, sr_estimate=sr_estimate, params=params,
                         artifact_index=compare_artifacts(image, sim.reconstruct(frames - np.float32(background), params),
                                                          params, pixel / 2))


def compare_artifacts(rdl_image: np.ndarray, conventional_image: np.ndarray, params: SIMParameters,
                      sr_pixel_size_nm: float) -> dict:
    """Residual-pattern index of an rDL SIM image and of conventional SIM of the same frames; warns
    (:class:`PatternWarning`) when the network kept more of the pattern than the physics alone does.

    A denoiser that learned another instrument paints the pattern into the frames (a honeycomb in
    the SIM image); no reference is needed to see it, so every prediction is checked.
    """
    try:
        rdl = residual_pattern_index(rdl_image, params, sr_pixel_size_nm).index
        conventional = residual_pattern_index(conventional_image, params, sr_pixel_size_nm).index
    except InputError:  # a pattern beyond the SIM image's Nyquist frequency: nothing to measure there
        return {"rdl_sim": None, "conventional_sim": None}
    if rdl > conventional + PATTERN_MARGIN:
        warnings.warn(f"the rDL SIM image keeps more of the illumination pattern than conventional SIM of the same "
                      f"frames (residual-pattern index {rdl:.2f} vs {conventional:.2f}): the model does not fit this "
                      "acquisition; compare with 'microsr sim reconstruct', or train on your instrument's data",
                      PatternWarning, stacklevel=3)
    return {"rdl_sim": rdl, "conventional_sim": conventional}


@torch.no_grad()
def care_sim(care, raw: np.ndarray, params: SIMParameters, pixel_size_nm: float, otf: OTF, *,
             background: float = 0.0, wiener_weight: float = 0.05, device: str = "cpu") -> np.ndarray:
    """The CARE baseline: denoise each orientation's raw frames with a U-Net (no pattern), then Wiener SIM."""
    normalized, scale = normalize_raw(np.asarray(raw, dtype=np.float32), background)
    care = care.to(device)
    denoised = np.stack([predict_tiled(care, frames, scale=1, device=device, channels=frames.shape[0])
                         for frames in normalized])
    sim = SIMReconstructor(otf, pixel_size_nm, ReconstructionSettings(wiener_weight=wiener_weight), device=device)
    return sim.reconstruct(denoised * scale, params)


def predict_rdl_stack(model: RDLSIM, raw_path: str | Path, output: str | Path, *,
                      denoised_output: str | Path | None = None, background: str | float = "auto",
                      params: SIMParameters | None = None, pixel_size_nm: float | None = None,
                      overwrite: bool = False, progress: bool = True, **kwargs) -> dict:
    """rDL SIM of every time point of a raw file, streamed: SIM to ``output`` (T, 2Y, 2X), denoised frames optional.

    The pattern is estimated once, from the first time point (or given as ``params``), and used for
    all: it does not change during an acquisition, and a per-frame estimate at low light would be
    noisier than the physics needs. Only one frame set is in memory at a time.
    """
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
    worst = {"rdl_sim": None, "conventional_sim": None}
    with sim_writer, (denoised_writer or nullcontext()):
        for t in tqdm(range(count), unit="set", desc="rDL SIM", disable=not progress):
            result = first if t == 0 else model.predict(np.asarray(stack[t], dtype=np.float32),
                                                        background=background, params=first.params,
                                                        pixel_size_nm=pixel, **kwargs)
            for key, value in (result.artifact_index or {}).items():
                if value is not None and (worst[key] is None or value > worst[key]):
                    worst[key] = value
            sim_writer.write(result.sim[None])
            if denoised_writer is not None:
                denoised_writer.write(result.denoised.reshape(angles * phases, height, width) + background)
    return {"output": str(output), "time_points": count, "sim_pixel_size_nm": pixel / 2,
            "denoised_output": str(denoised_output) if denoised_output else None,
            "residual_pattern_index": worst, "params": first.params.to_dict()}


def loaded_model(model: str, device: str, otf: str | None, na: float | None, wavelength_nm: float | None) -> RDLSIM:
    """An rDL SIM model with its optics, loaded once per process (a batch's worker loads it for its first file
    only) and again only when its files change."""
    return _load_cached(str(model), device, otf, na, wavelength_nm, model_signature(model, "rdl"))


@functools.lru_cache(maxsize=4)
def _load_cached(model: str, device: str, otf: str | None, na: float | None, wavelength_nm: float | None,
                 signature: tuple) -> RDLSIM:
    rdl = RDLSIM.from_pretrained(model, device, otf=load_otf_mrc(otf) if otf else None)
    rdl.use_optics(na=na, wavelength_nm=wavelength_nm)
    return rdl


def predict_file_task(raw: str | Path, output: str | Path, *, model: str = "tirf-sim-3x3", device: str = "auto",
                      otf: str | None = None, na: float | None = None, wavelength_nm: float | None = None,
                      **options) -> dict:
    """:func:`predict_rdl_stack` with the model named, not loaded: what ``rdl predict`` runs per file, here or on a
    Dask worker (:mod:`microsr.pipelines.batch`), where the model is loaded once per process."""
    return predict_rdl_stack(loaded_model(str(model), device, str(otf) if otf else None, na, wavelength_nm), raw, output,
                             **options)
