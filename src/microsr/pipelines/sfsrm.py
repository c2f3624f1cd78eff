"""SFSRM prediction: widefield frame → SEN (denoise) → edge map → SRN (super-resolve), tiled, on images and movies."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from microsr.errors import InputError
from microsr.io import check_finite
from microsr.pipelines.shipped import model_folder, shipped_models  # noqa: F401 (shipped_models: API)

#: A widefield pixel size this far (fraction) from the model's makes its blur prior wrong.
PIXEL_SIZE_TOLERANCE = 0.2


def _load_network(path: Path, expected: str | None = None):
    """A generator exported by ``microsr sfsrm train`` (``.pt``), as (module, info)."""
    from microsr.nets import RRDBNet
    from microsr.nets.saved import load_saved_network
    from microsr.train.run import MODEL_FORMAT

    def build(saved: dict) -> torch.nn.Module:
        model = saved["model"]
        return RRDBNet(1 if saved["network"] == "sen" else 2, 1, model["features"], model["blocks"],
                       model["growth"], model["scale"])

    generator, info = load_saved_network(path, MODEL_FORMAT, build, what="SFSRM model",
                                         missing_hint="give a trained model (.pt) or a shipped model name")
    if expected and info["network"] != expected:
        raise InputError(f"{path} holds an {info['network'].upper()}, not an {expected.upper()}")
    return generator, info


@dataclass
class SFSRMResult:
    """A prediction: the SR image, the denoised input, and the pixel size of the SR grid."""

    sr: np.ndarray
    denoised: np.ndarray
    pixel_size_nm: float | None


class SFSRM:
    """A trained SFSRM pair: SEN (optional) and SRN, applied tile by tile on any device.

    Examples
    --------
    >>> model = SFSRM.from_pretrained("filaments-x4")                 # doctest: +SKIP
    >>> result = model.predict(widefield, pixel_size_nm=100)          # doctest: +SKIP
    """

    def __init__(self, srn, srn_info: dict, sen=None, sen_info: dict | None = None, device: str = "auto"):
        from microsr.sim.reconstruct import resolve_device

        self.device = resolve_device(device)
        self.srn = srn.to(self.device)
        self.sen = sen.to(self.device) if sen is not None else None
        self.srn_info = srn_info
        self.sen_info = sen_info or {}

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "filaments-x4", device: str = "auto") -> "SFSRM":
        """Load a shipped model by name, or a folder holding ``srn.pt`` and optionally ``sen.pt``."""
        folder = model_folder(name_or_path, "sfsrm")
        if folder.is_file():
            srn, info = _load_network(folder, "srn")
            return cls(srn, info, device=device)
        srn, srn_info = _load_network(folder / "srn.pt", "srn")
        sen, sen_info = _load_network(folder / "sen.pt", "sen") if (folder / "sen.pt").exists() else (None, None)
        return cls(srn, srn_info, sen, sen_info, device)

    @property
    def scale(self) -> float:
        return self.srn_info["model"]["scale"] * self.srn_info.get("pre_upsample", 1.0)

    @property
    def pixel_size_nm(self) -> float:
        return float(self.srn_info["lr_pixel_nm"])

    def check_input(self, image, pixel_size_nm: float | None) -> np.ndarray:
        """A 2-D finite frame at about the model's pixel size, or one clear error."""
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            raise InputError(f"image of shape {array.shape} looks like RGB: give a single-channel fluorescence frame")
        if array.ndim != 2:
            raise InputError(f"image of shape {array.shape} is not one 2-D frame: give a (Y, X) frame, or use "
                             "a stack with 'microsr sfsrm predict', which streams (T, Y, X)")
        check_finite(array, "input frame")
        if pixel_size_nm is not None:
            ratio = pixel_size_nm / self.pixel_size_nm
            if abs(ratio - 1) > PIXEL_SIZE_TOLERANCE:
                raise InputError(f"the image has {pixel_size_nm:g} nm pixels but the model was trained at "
                                 f"{self.pixel_size_nm:g} nm: resample the image or train a model for it")
        return array.astype(np.float32)

    @torch.no_grad()
    def predict(self, image, *, pixel_size_nm: float | None = None, tile_px: int | None = None,
                overlap_px: int = 24) -> SFSRMResult:
        """Super-resolve one widefield frame; see :class:`SFSRMResult`."""
        from microsr.resample import bicubic_upsample
        from microsr.tiling import predict_tiled
        from microsr.train.data import normalize_input
        from microsr.train.module import network_inputs

        frame = normalize_input(self.check_input(image, pixel_size_nm))
        if self.sen is not None:
            frame = predict_tiled(self.sen, frame, scale=1, tile_px=tile_px, overlap_px=overlap_px,
                                  device=self.device)
        denoised = frame
        pre = float(self.srn_info.get("pre_upsample", 1.0))
        if pre != 1.0:
            frame = bicubic_upsample(frame, pre)
        scale = int(self.srn_info["model"]["scale"])
        # The edge map is made once for the whole frame: it is normalized by its maximum, so a map
        # made tile by tile would differ from tile to tile and leave seams.
        inputs = network_inputs(torch.from_numpy(frame)[None, None], "srn")[0].numpy()
        sr = predict_tiled(self.srn, inputs, scale=scale, tile_px=tile_px, overlap_px=overlap_px,
                           device=self.device)[0]
        return SFSRMResult(sr, denoised, pixel_size_nm / self.scale if pixel_size_nm else None)


def predict_ensemble(models: list[SFSRM], image, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Mean SR image of several models and their per-pixel disagreement (paper 003's network ensemble)."""
    from microsr.metrics.confidence import ensemble_disagreement

    outputs = [model.predict(image, **kwargs).sr for model in models]
    if len({o.shape for o in outputs}) != 1:
        raise InputError("ensemble models give outputs of different sizes: use models of one scale")
    return np.mean(outputs, axis=0), ensemble_disagreement(outputs)


def predict_stack(model: SFSRM, stack, output: str | Path, *, pixel_size_nm: float | None, overwrite: bool = False,
                  agreement_output: str | Path | None = None, progress: bool = True, **kwargs) -> dict:
    """Super-resolve a (T, Y, X) movie frame by frame into a TIFF or Zarr stack; optional temporal agreement.

    Only one frame (and, for the agreement map, the last five SR frames) is in memory at a time; the
    agreement of frame t is therefore measured over frames t−4…t (a causal window of 5, paper 003).
    """
    from tqdm import tqdm

    from microsr.io import StackWriter
    from microsr.metrics.confidence import temporal_agreement

    count = stack.shape[0]
    first = model.predict(np.asarray(stack[0]), pixel_size_nm=pixel_size_nm, **kwargs).sr
    shape = (count, *first.shape)
    sr_pixel = pixel_size_nm / model.scale if pixel_size_nm else None
    writer = StackWriter(output, shape, "float32", pixel_size_nm=sr_pixel, axes="TYX", overwrite=overwrite)
    agreement = (StackWriter(agreement_output, shape, "float32", pixel_size_nm=sr_pixel, axes="TYX",
                             overwrite=overwrite) if agreement_output else None)
    recent: list[np.ndarray] = []
    with writer, (agreement or nullcontext()):
        for t in tqdm(range(count), unit="frame", desc="SFSRM", disable=not progress):
            sr = first if t == 0 else model.predict(np.asarray(stack[t]), pixel_size_nm=pixel_size_nm, **kwargs).sr
            writer.write(sr[None])
            if agreement is not None:
                recent = (recent + [sr])[-5:]
                if len(recent) >= 2:
                    agreement.write(temporal_agreement(np.stack(recent), window=5)[-1][None])
                else:
                    agreement.write(np.ones_like(sr)[None])
    return {"output": str(output), "frames": count, "sr_pixel_size_nm": sr_pixel}


