"""SFSRM's model: the RRDB generators (SEN, SRN), their file format, input normalization and acquisition check.

An SFSRM model is a folder with ``srn.pt`` (the super-resolution network, fed the image and its
radial-symmetry edge map) and optionally ``sen.pt`` (the signal-enhancement network that denoises
the widefield frame first), or a single SRN file. Training (:mod:`microsr.train.sfsrm`) writes these
files with :func:`save_generator`; prediction (:class:`microsr.pipelines.sfsrm.SFSRM`) loads them
with :meth:`SFSRMModel.from_pretrained`.

References
----------
.. [1] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
       dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Fig. 1a and Methods.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from microsr.device import resolve_device
from microsr.edges import edge_map_torch
from microsr.errors import InputError
from microsr.io import check_finite
from microsr.models.checks import check_pixel_size
from microsr.models.serialize import load_network, save_network
from microsr.models.shipped import model_folder
from microsr.nets import RRDBNet

#: The networks of an SFSRM model folder, by file name.
NETWORK_FILES = {"srn": "srn.pt", "sen": "sen.pt"}

#: The shipped model ``from_pretrained`` loads when given no name.
DEFAULT_MODEL = "filaments-x4"


def build_generator(network: str, hyper: dict) -> RRDBNet:
    """An untrained SEN (image in) or SRN (image and edge map in) of the given RRDB sizes.

    ``hyper`` holds ``features``, ``blocks``, ``growth`` and ``scale``
    (:class:`microsr.train.sfsrm_config.NetworkConfig`).
    """
    if network not in NETWORK_FILES:
        raise InputError(f"unknown SFSRM network {network!r}: use 'sen' or 'srn'")
    return RRDBNet(1 if network == "sen" else 2, 1, hyper["features"], hyper["blocks"], hyper["growth"],
                   hyper["scale"])


def save_generator(path: str | Path, network: str, generator: torch.nn.Module, hyper: dict, *,
                   lr_pixel_nm: float, fwhm_nm: float, pre_upsample: float = 1.0, **info) -> Path:
    """Export one generator with what a user needs to apply it: sizes, the pixel size and PSF it learned."""
    return save_network(path, "sfsrm", generator, network=network, model=dict(hyper), lr_pixel_nm=float(lr_pixel_nm),
                        fwhm_nm=float(fwhm_nm), pre_upsample=float(pre_upsample), **info)


def load_generator(path: str | Path, expected: str | None = None) -> tuple[torch.nn.Module, dict]:
    """A generator exported by ``microsr sfsrm train`` as (module in eval mode, its info), or one InputError."""
    generator, info = load_network(path, "sfsrm", lambda saved: build_generator(saved["network"], saved["model"]),
                                   missing_hint="give a trained model (.pt) or a shipped model name")
    if expected and info["network"] != expected:
        raise InputError(f"{path} holds an {info['network'].upper()}, not an {expected.upper()}")
    return generator, info


def normalize_input(image: np.ndarray, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """Percentile min–max normalization of every network input, in training and prediction alike.

    Examples
    --------
    >>> image = normalize_input(np.arange(1001.0))   # 0.1th percentile → 0, 99.9th → 1
    >>> float(image[1].round(3)), float(image[-2].round(3))
    (0.0, 1.0)
    """
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def network_inputs(images: torch.Tensor, network: str) -> torch.Tensor:
    """SEN sees the image; SRN sees the image and its radial-symmetry edge map (paper 003, Fig. 1a).

    ``images`` is ``(N, 1, H, W)``; the SRN's input is ``(N, 2, H, W)``.
    """
    if network == "sen":
        return images
    return torch.cat([images, edge_map_torch(images)], dim=1)


class SFSRMModel:
    """A trained SFSRM pair: SRN and optional SEN on a device, with what they were trained on.

    Parameters
    ----------
    srn, sen : torch.nn.Module
        The generators (:func:`build_generator`); ``sen`` may be ``None``.
    srn_info, sen_info : dict
        What their files say besides the weights (sizes, ``lr_pixel_nm``, ``fwhm_nm``, ``pre_upsample``).
    device : str
        "auto", "cpu" or "cuda".
    """

    def __init__(self, srn, srn_info: dict, sen=None, sen_info: dict | None = None, device: str = "auto"):
        self.device = resolve_device(device)
        self.srn = srn.to(self.device)
        self.sen = sen.to(self.device) if sen is not None else None
        self.srn_info = srn_info
        self.sen_info = sen_info or {}

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, device: str = "auto"):
        """A shipped model by name, a folder holding ``srn.pt`` (and optionally ``sen.pt``), or one SRN file.

        Examples
        --------
        >>> model = SFSRMModel.from_pretrained("filaments-x4", device="cpu")
        >>> model.scale, model.pixel_size_nm
        (4.0, 100.0)
        """
        path = model_folder(name_or_path, "sfsrm")
        if path.is_file():
            srn, info = load_generator(path, "srn")
            return cls(srn, info, device=device)
        srn, srn_info = load_generator(path / NETWORK_FILES["srn"], "srn")
        sen_path = path / NETWORK_FILES["sen"]
        sen, sen_info = load_generator(sen_path, "sen") if sen_path.exists() else (None, None)
        return cls(srn, srn_info, sen, sen_info, device)

    @property
    def scale(self) -> float:
        """Output pixels per input pixel along each axis."""
        return self.srn_info["model"]["scale"] * self.srn_info.get("pre_upsample", 1.0)

    @property
    def pixel_size_nm(self) -> float:
        """The widefield pixel size the model was trained at."""
        return float(self.srn_info["lr_pixel_nm"])

    def check_input(self, image, pixel_size_nm: float | None) -> np.ndarray:
        """A 2-D finite frame at about the model's pixel size (:func:`~microsr.models.checks.check_pixel_size`)."""
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            raise InputError(f"image of shape {array.shape} looks like RGB: give a single-channel fluorescence frame")
        if array.ndim != 2:
            raise InputError(f"image of shape {array.shape} is not one 2-D frame: give a (Y, X) frame, or use "
                             "a stack with 'microsr sfsrm predict', which streams (T, Y, X)")
        check_finite(array, "input frame")
        check_pixel_size(pixel_size_nm, self.pixel_size_nm)
        return array.astype(np.float32)
