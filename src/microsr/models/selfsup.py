"""Self-supervised LLSM denoising's model: the 3-D RCAN of TiS-/SiS-rDL, its file format and intensity normalization.

A self-supervised model is one file, ``model.pt``, written by ``microsr selfsup train``
(:mod:`microsr.train.selfsup`, through :func:`save_network`): the RCAN3D weights and sizes, the mode
it was trained in (``"tis"``: neighbouring time points; ``"sis"``: odd and even z-slices), its patch
shape, and the training stack's normalization. Training and prediction measure a stack's intensities
the same way (:func:`probe_normalization`), so the network sees at prediction what it learned on.

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes", Nat. Biotechnol. 41, 367-377 (2023): Fig. 5 (TiS-rDL),
       Fig. 6 and Extended Data Fig. 7 (SiS-rDL).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch

from microsr.device import resolve_device
from microsr.errors import InputError
from microsr.io.volumes import stated_sampling_nm
from microsr.models import serialize
from microsr.models.checks import check_pixel_size
from microsr.models.shipped import model_folder
from microsr.nets import RCAN3D

#: The shipped model ``from_pretrained`` loads when given no name.
DEFAULT_MODEL = "llsm-vesicles-tis"

#: Training patch (z, y, x) of files that do not record one (the first CPU models).
DEFAULT_PATCH_SIZE = (8, 32, 32)

#: Ways a self-supervised pair is made: "tis" (neighbouring time points), "sis" (odd / even z-slices).
MODES = ("tis", "sis")

#: Floor of the normalization scale: keeps an all-background stack from dividing by zero.
MIN_SCALE = 1e-6

# The intensity probe is seeded apart from the training seed, so every run, worker and resumed run
# on a stack normalizes it identically, and prediction can repeat the same numbers.
_PROBE_SEED = 20_230_367
# Voxels kept from each probe patch for the percentiles: plenty for a 99.8th percentile, and bounded
# so that large patches do not make the probe slow.
_PROBE_VOXELS = 65_536


def probe_normalization(stack, region_shape, count: int = 16, *, background: float | None = None,
                        scale: float | None = None) -> tuple[float, float]:
    """Background and bright-structure scale of a ``(T, Z, Y, X)`` stack, from ``count`` probe regions.

    The regions (``region_shape`` ``(z, y, x)`` voxels, clipped to the volume) and their time points
    are drawn with a fixed seed, so the same stack and region shape always give the same numbers:
    training (:class:`SelfSupervisedPatches`) and prediction (:mod:`microsr.pipelines.selfsup`)
    normalize a stack identically. *Background*: the 10th percentile of the regions' medians (in
    sparse fluorescence many regions are mostly background, and a median ignores their few bright
    voxels). *Scale*: the 99.8th percentile of the probed voxels minus the background. A value given
    is kept; ``scale`` is floored at :data:`MIN_SCALE`.

    Raises
    ------
    InputError
        The stack (or a given value) holds NaN or inf.
    """
    if background is not None and scale is not None:
        return float(background), max(float(scale), MIN_SCALE)
    n_time, *volume_shape = (int(s) for s in stack.shape)
    region_shape = [min(int(r), v) for r, v in zip(region_shape, volume_shape)]
    rng = np.random.default_rng(_PROBE_SEED)
    medians, voxels = [], []
    for _ in range(count):
        t = int(rng.integers(n_time))
        corner = [int(rng.integers(v - r + 1)) for v, r in zip(volume_shape, region_shape)]
        region = tuple(slice(c, c + r) for c, r in zip(corner, region_shape))
        patch = np.asarray(stack[(t, *region)], dtype=np.float32).ravel()
        medians.append(float(np.median(patch)))
        voxels.append(patch[::max(1, patch.size // _PROBE_VOXELS)])
    if background is None:
        background = float(np.percentile(medians, 10))
    if not math.isfinite(float(background)):
        raise InputError(f"background {background} is not a number: give the camera offset plus background")
    if scale is None:
        scale = float(np.percentile(np.concatenate(voxels), 99.8)) - float(background)
    if not math.isfinite(float(scale)):
        raise InputError("the stack holds NaN or inf: check the file or the acquisition")
    return float(background), max(float(scale), MIN_SCALE)


def sis_split(volume):
    """Odd and even z-slices of one ``(Z, Y, X)`` volume: the two halves of a SiS-rDL pair.

    Odd slice ``j`` (plane ``2j + 1``) lies midway between even slices ``j`` and ``j + 1`` (planes
    ``2j`` and ``2j + 2``): :func:`gap_amending_loss` relies on that order. Either half is the input
    and the other the target, in turn.

    Parameters
    ----------
    volume : array-like, shape (Z, Y, X)
        One volume (NumPy, Zarr or torch; only sliced).

    Returns
    -------
    odd_slices, even_slices : array-like
        ``volume[1::2]`` (``Z // 2`` planes) and ``volume[0::2]`` (``(Z + 1) // 2`` planes).

    Raises
    ------
    InputError
        Not 3-D, or fewer than 2 slices.

    Examples
    --------
    >>> odd, even = sis_split(np.arange(5)[:, None, None] * np.ones((5, 2, 2)))
    >>> odd[:, 0, 0], even[:, 0, 0]
    (array([1., 3.]), array([0., 2., 4.]))
    """
    shape = tuple(volume.shape)
    if len(shape) != 3:
        raise InputError(f"SiS-rDL splits one volume of axes (Z, Y, X); got shape {shape}")
    if shape[0] < 2:
        raise InputError(f"SiS-rDL needs at least 2 z-slices to split into odd and even, the volume has "
                         f"{shape[0]} (shape {shape}): record a z-stack, or use TiS-rDL (mode 'tis')")
    return volume[1::2], volume[0::2]


def build_network(hyper: dict) -> RCAN3D:
    """An untrained RCAN3D of the given sizes (``features``, ``groups``, ``blocks``, ``reduction``)."""
    return RCAN3D(**hyper)


def save_network(path: str | Path, network: torch.nn.Module, *, mode: str, hyper: dict, patch_size,
                 normalization: dict, **info) -> Path:
    """Export a trained denoiser with its mode, sizes, patch shape and the training stack's normalization."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}: a self-supervised model is 'tis' or 'sis'")
    return serialize.save_network(path, "selfsup", network, network="rcan3d", mode=mode, model=dict(hyper),
                                  patch_size=[int(p) for p in patch_size],
                                  normalization={k: float(v) for k, v in normalization.items()}, **info)


def load_network(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """An exported self-supervised denoiser as (RCAN3D in eval mode, its info), or one clear InputError."""
    return serialize.load_network(path, "selfsup", lambda saved: build_network(saved["model"]),
                                  missing_hint="give the model.pt that 'microsr selfsup train' wrote (or its run "
                                               "folder), or a shipped model's name")


class SelfSupModel:
    """A trained TiS-rDL or SiS-rDL 3-D RCAN on a device, with how it was trained.

    Parameters
    ----------
    network : torch.nn.Module
        A :class:`microsr.nets.RCAN3D`.
    mode : {"tis", "sis"}
        How it was trained; both denoise whole volumes.
    patch_size : (int, int, int)
        Training patch (z, y, x), used to measure a stack's normalization as training did.
    device : str or torch.device
        "auto", "cpu" or "cuda".
    fingerprint : str
        Identifies the weights, so a restarted prediction resumes only with the same model.
    voxel_size_nm : (float, float, float), optional
        (z, y, x) sampling of the training stack, when it stated one: :meth:`check_sampling` compares it.
    tta : bool
        Test-time augmentation: average the network's outputs over the 8 lateral rotations and flips of
        each tile (4 flips where a tile is not square in y, x), each mapped back. The network was trained
        on all of them; its errors differ between them while the signal does not, so the mean is less
        noisy. 8 (or 4) times the compute; 4 more float32 per tile voxel, which the tile plan counts.
    """

    def __init__(self, network: torch.nn.Module, mode: str, patch_size=DEFAULT_PATCH_SIZE, *, device="auto",
                 fingerprint: str = "", tta: bool = False, voxel_size_nm=None):
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}: a self-supervised model is 'tis' or 'sis'")
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.mode = mode
        self.patch_size = tuple(int(p) for p in patch_size)
        self.features = int(getattr(network, "features", 64))
        self.fingerprint = fingerprint
        self.tta = bool(tta)
        self.voxel_size_nm = tuple(float(v) for v in voxel_size_nm) if voxel_size_nm else None

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, device="auto", *, tta: bool = False):
        """A shipped model by name, a ``model.pt`` written by ``microsr selfsup train``, or its run folder.

        Examples
        --------
        >>> model = SelfSupModel.from_pretrained("llsm-vesicles-tis", device="cpu")
        >>> model.mode, model.patch_size
        ('tis', (8, 32, 32))
        """
        path = model_folder(name_or_path, "selfsup")
        if path.is_dir():
            path = path / "model.pt"
        network, info = load_network(path)
        fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return cls(network, info["mode"], info.get("patch_size", DEFAULT_PATCH_SIZE), device=device,
                   fingerprint=fingerprint, tta=tta, voxel_size_nm=info.get("voxel_size_nm"))

    def check_sampling(self, metadata: dict) -> None:
        """The acquisition check: a stack's stated voxel size against the training stack's, by the shared
        policy (:func:`~microsr.models.checks.check_pixel_size`) for the lateral pixel and the z-step.

        Either side unknown (files of microsr 0.1, stacks without metadata) passes: there is nothing to
        compare. SiS-rDL learned the gap between planes, so its z-step matters as much as the pixel.
        """
        if self.voxel_size_nm is None:
            return
        z_step, pixel = stated_sampling_nm(metadata)
        check_pixel_size(pixel, self.voxel_size_nm[1], "the stack")
        check_pixel_size(z_step, self.voxel_size_nm[0], "the stack", sampling="z-steps")

    def measure(self, stack) -> tuple[float, float]:
        """(background, scale) of a ``(T, Z, Y, X)`` stack, measured as training measured its stack."""
        pz, py, px = self.patch_size
        return probe_normalization(stack, (2 * pz if self.mode == "sis" else pz, py, px))
