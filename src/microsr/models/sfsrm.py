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

import functools
import warnings
from pathlib import Path

import numpy as np
import torch

from microsr.device import resolve_device
from microsr.edges import edge_map_torch
from microsr.errors import InputError
from microsr.io import check_finite
from microsr.metrics.image_stats import image_statistics
from microsr.models.checks import AcquisitionWarning, check_pixel_size
from microsr.models.serialize import load_network, save_network
from microsr.models.shipped import model_folder
from microsr.nets import RRDBNet
from microsr.synthetic import training_pair

#: The networks of an SFSRM model folder, by file name.
NETWORK_FILES = {"srn": "srn.pt", "sen": "sen.pt"}

#: More SRNs of an ensemble in a model folder: srn_1.pt, srn_2.pt, … (trained like srn.pt, other seeds).
ENSEMBLE_FILES = "srn_[0-9]*.pt"

#: The shipped model ``from_pretrained`` loads when given no name.
DEFAULT_MODEL = "filaments-x4"


#: How :meth:`SFSRMModel.check_range` names each measured quantity to a user.
RANGE_WORDS = {"psf_fwhm_nm": "apparent PSF width (nm, from its spectrum)", "snr": "signal-to-noise ratio",
               "haze": "share of out-of-focus haze", "density": "signal density (fraction of pixels with structure)"}


def _range_slack(quantity: str, low: float, high: float) -> tuple[float, float]:
    """Margin below and above a measured training range before an input is outside it: PSF ±15 % (the
    spectrum reads a clean field ~10 % sharper than a hazy one of the same PSF), SNR 10 % below, density and
    haze 0.05 above. More signal than trained, a sparser field or less haze is no risk (less to remove, less
    to guess): nothing bounds them. The haze measure of a haze-free field depends on its structure (sparse
    filaments ~0.14, a dense network more), so a lower bound measured on a mix would flag clean inputs."""
    if quantity == "psf_fwhm_nm":
        return 0.15 * low, 0.15 * high
    if quantity == "snr":
        return 0.1 * low, float("inf")
    if quantity in ("density", "haze"):
        return float("inf"), 0.05
    return 0.05, 0.05


def measured_range(images, pixel_size_nm: float) -> dict:
    """``{quantity: [2nd, 98th percentile]}`` of :func:`~microsr.metrics.image_stats.image_statistics` over images
    (nearly all of what training showed, without one odd sample setting the range)."""
    rows = [image_statistics(image, pixel_size_nm) for image in images]
    return {quantity: [float(np.nanpercentile([row[quantity] for row in rows], 2)),
                       float(np.nanpercentile([row[quantity] for row in rows], 98))] for quantity in rows[0]}


@functools.lru_cache(maxsize=4)
def _legacy_training_range(pixel_size_nm: float) -> dict:
    """The range of a model file without one: SFSRM's filaments at ``pixel_size_nm``, PSF 200 nm, SNR 3–20."""
    rng = np.random.default_rng(20231)
    images = [training_pair("filaments", scale=1, lr_patch_px=128, lr_pixel_nm=pixel_size_nm, fwhm_nm=200.0,
                            snr=float(np.exp(rng.uniform(np.log(3.0), np.log(20.0)))), seed=rng)[0] for _ in range(24)]
    return {"source": "simulator", "classes": ["filaments"], "fwhm_nm": [200.0, 200.0], "snr": [3.0, 20.0],
            "haze": [0.0, 0.0], "measured": measured_range(images, pixel_size_nm)}


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

    def __init__(self, srn, srn_info: dict, sen=None, sen_info: dict | None = None, device: str = "auto",
                 members: list | None = None):
        self.device = resolve_device(device)
        self.srn = srn.to(self.device)
        self.sen = sen.to(self.device) if sen is not None else None
        self.srn_info = srn_info
        self.sen_info = sen_info or {}
        #: more SRNs trained like ``srn`` from other seeds (``srn_1.pt``, …): the ensemble whose spread is
        #: the prediction's uncertainty (paper 003, Fig. 4b)
        self.members = [member.to(self.device) for member in members or []]

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
        members = []
        for member_path in sorted(path.glob(ENSEMBLE_FILES), key=lambda p: int(p.stem.split("_")[1])):
            member, info = load_generator(member_path, "srn")
            if info["model"] != srn_info["model"] or info.get("lr_pixel_nm") != srn_info.get("lr_pixel_nm"):
                raise InputError(f"{member_path} is not trained like {path / NETWORK_FILES['srn']} (another size or "
                                 "pixel size): an ensemble's members must differ only in their seed")
            members.append(member)
        return cls(srn, srn_info, sen, sen_info, device, members)

    @property
    def scale(self) -> float:
        """Output pixels per input pixel along each axis."""
        return self.srn_info["model"]["scale"] * self.srn_info.get("pre_upsample", 1.0)

    @property
    def pixel_size_nm(self) -> float:
        """The widefield pixel size the model was trained at."""
        return float(self.srn_info["lr_pixel_nm"])

    @property
    def training_range(self) -> dict:
        """What the model's first network (SEN if there is one, else SRN; an SRN fine-tuned on a user's pairs
        always) was trained on, as saved in its file: ``measured`` holds the range ``[low, high]`` (2nd–98th percentile over training inputs) of each
        of :func:`~microsr.metrics.image_stats.image_statistics`' numbers. Files without one (microsr 0.1)
        were trained on SFSRM's filaments (PSF 200 nm, SNR 3–20, no haze): that range is measured here,
        once, on the same simulation."""
        srn_range = self.srn_info.get("training_range") or {}
        # An SRN fine-tuned on a user's pairs was measured on the user's widefield images: that range rules.
        first = srn_range if srn_range.get("source") == "folder" or self.sen is None else self.sen_info.get("training_range")
        if first and "measured" in first:
            return first
        return _legacy_training_range(self.pixel_size_nm)

    def check_range(self, image, pixel_size_nm: float | None) -> list[dict]:
        """Each way an input lies outside what the model was trained on: ``{"quantity", "value", "range"}``
        (empty when it fits), each also warned (:class:`~microsr.models.checks.AcquisitionWarning`).

        A network shown another blur, more haze, a denser specimen or more noise than it learned invents
        structure (paper 003's discussion): the user must hear it before looking at the output.
        """
        measured = self.training_range.get("measured", {})
        if not measured:
            return []
        pixel = float(pixel_size_nm or self.pixel_size_nm)
        statistics = image_statistics(np.asarray(image, dtype=np.float32), pixel)
        findings = []
        for quantity, (low, high) in measured.items():
            value = statistics.get(quantity)
            if value is None or not np.isfinite(value):
                continue
            slack_low, slack_high = _range_slack(quantity, low, high)
            if value < low - slack_low or value > high + slack_high:
                findings.append({"quantity": quantity, "value": round(float(value), 3),
                                 "range": [round(float(low), 3), round(float(high), 3)]})
        for finding in findings:
            low, high = finding["range"]
            warnings.warn(f"the input's {RANGE_WORDS[finding['quantity']]} is {finding['value']:g}, outside the "
                          f"{low:g}–{high:g} the model was trained on: it may invent structure; compare with the "
                          "widefield image and the disagreement map, or fine-tune on your data ('microsr sfsrm "
                          "finetune')", AcquisitionWarning, stacklevel=2)
        return findings

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
