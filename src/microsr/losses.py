"""Training losses of SFSRM: MS-SSIM-L1, perceptual (VGG features), adversarial (U-Net discriminator) and frequency.

The SFSRM generator loss (Methods, eq. 12) is

    L_G = L_MS-SSIM-L1 + 0.1 L_Percep + 0.001 L_Adv + 0.01 L_Freq

with ``L_MS-SSIM-L1 = 0.84 (1 - MS-SSIM) + 0.16 L1`` (eq. 1-3); each term is one object or function
here, and the weighting belongs to the training code.

References
----------
.. [1] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
       dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, "Loss functions", eq. 1-12.
.. [2] H. Zhao, O. Gallo, I. Frosio, J. Kautz, "Loss functions for image restoration with neural
       networks", IEEE Trans. Comput. Imaging 3, 47-57 (2017): the MS-SSIM + L1 mix, alpha = 0.84.
.. [3] X. Wang et al., "ESRGAN: Enhanced super-resolution generative adversarial networks",
       ECCV Workshops (2018), section 3.4: perceptual loss on VGG features before activation.
.. [4] E. Schönfeld, B. Schiele, A. Khoreva, "A U-Net based discriminator for generative adversarial
       networks", CVPR (2020): encoder and decoder losses.
"""

from __future__ import annotations

import functools
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from microsr.errors import InputError
from microsr.metrics.fidelity import ms_ssim_torch
from microsr.nets.vgg import VGG19_LAYER_NAMES, VGG19Features

__all__ = ["MSSSIML1Loss", "PerceptualLoss", "FrequencyLoss", "discriminator_loss",
           "generator_adversarial_loss", "SEEDED_FEATURES_SOURCE"]

#: What :attr:`PerceptualLoss.source` says when no weights file was given.
SEEDED_FEATURES_SOURCE = "seeded random features (no weights file given)"


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 4 or prediction.shape != target.shape:
        raise InputError(f"prediction has shape {tuple(prediction.shape)} and target has shape "
                         f"{tuple(target.shape)}: give two (N, C, H, W) batches of the same shape")


class MSSSIML1Loss(nn.Module):
    """``alpha * (1 - MS-SSIM) + (1 - alpha) * L1``, the SFSRM content loss (eq. 3).

    MS-SSIM keeps structure and local contrast at several scales but is blind to a uniform intensity
    offset; the mean absolute error pins the intensities. The MS-SSIM term is
    :func:`microsr.metrics.fidelity.ms_ssim_torch`, which uses as many scales as fit the patch (4 for
    a 64-px patch with the 7-px window), so the loss works on small training patches.

    Parameters
    ----------
    alpha : float
        Weight of the MS-SSIM term, 0-1 (0.84 in SFSRM, after Zhao et al.).
    win_size : int
        Side of the Gaussian MS-SSIM window, odd pixels (7 suits 64-px patches; Wang's is 11).
    data_range : float
        Peak-to-peak intensity of the images (1 for images normalized to 0-1).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 64, 64)
    >>> float(MSSSIML1Loss()(x, x)) < 1e-6
    True
    """

    def __init__(self, alpha: float = 0.84, win_size: int = 7, data_range: float = 1.0):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha={alpha}: the MS-SSIM weight must be between 0 and 1")
        self.alpha = alpha
        self.win_size = win_size
        self.data_range = data_range

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """0-d loss of a predicted batch ``(N, C, H, W)`` against its target."""
        _check_pair(prediction, target)
        ms_ssim = ms_ssim_torch(prediction, target, data_range=self.data_range, win_size=self.win_size)
        # L1 is divided by the data range so that both terms are on the same 0-1 scale.
        l1 = (prediction - target).abs().mean() / self.data_range
        return self.alpha * (1.0 - ms_ssim) + (1.0 - self.alpha) * l1


class FrequencyLoss(nn.Module):
    """Mean |FFT(prediction) - FFT(target)| over all or the central 75 % of frequencies (eq. 9).

    ``L_Freq = mean_(k in mask) |FFT(prediction)_k - FFT(target)_k|``: the L1 norm of a complex
    difference, so both amplitude and phase errors count (a shifted structure is penalized even though
    its amplitude spectrum is unchanged). The transform is orthonormal (``norm="ortho"``), so by
    Parseval the spectrum has the same energy as the image and the loss does not grow with the patch
    size. It is computed per image and channel and averaged over the batch.

    SFSRM penalizes spectral differences to suppress the high-frequency artifacts of perceptual and
    adversarial training. When the ground truth is itself noisy its highest frequencies are mostly
    noise, and matching them would teach the network to paint noise; the paper then compares "75 % of
    frequency components". Here that is the 75 % of components nearest the zero frequency: an
    isotropic disc in cycles per pixel (trimmed to the rectangle for non-square images), i.e. the
    outer band and the corners beyond about 0.49 cycles/pixel are left out, where a microscope's
    optical transfer function has no signal.

    Parameters
    ----------
    mask : {"full", "central75"}
        ``"full"`` for noise-free ground truth (simulations), ``"central75"`` for noisy ground truth
        (experimental images and some simulations).

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 1, 32, 32)
    >>> float(FrequencyLoss()(x, x))
    0.0
    """

    _CENTRAL_FRACTION = 0.75

    def __init__(self, mask: str = "full"):
        super().__init__()
        if mask not in ("full", "central75"):
            raise InputError(f"mask={mask!r}: choose 'full' (noise-free ground truth) or "
                             "'central75' (noisy ground truth)")
        self.mask = mask

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """0-d loss of a predicted batch ``(N, C, H, W)`` against its target."""
        _check_pair(prediction, target)
        difference = torch.fft.fft2(prediction - target, norm="ortho").abs()  # linear: FFT(a) - FFT(b)
        if self.mask == "full":
            return difference.mean()
        keep = _central_frequency_mask(tuple(prediction.shape[-2:]), self._CENTRAL_FRACTION)
        keep = keep.to(difference.device)
        return difference[..., keep].mean()


@functools.lru_cache(maxsize=32)
def _central_frequency_mask(shape: tuple[int, int], fraction: float) -> torch.Tensor:
    """Boolean (H, W) mask, in unshifted FFT order, of the ``fraction`` of frequencies nearest zero."""
    fy = torch.fft.fftfreq(shape[0], dtype=torch.float64)
    fx = torch.fft.fftfreq(shape[1], dtype=torch.float64)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    count = max(1, round(fraction * radius.numel()))
    threshold = radius.flatten().kthvalue(count).values
    return radius <= threshold


class PerceptualLoss(nn.Module):
    """Mean absolute difference between VGG-19 feature maps of prediction and target (eq. 4).

    By default the features are those of ``conv5_4`` before its activation, as in ESRGAN (features
    after the ReLU are sparse and carry less information about brightness). With several layers the
    per-layer mean absolute differences are averaged. The VGG network is frozen.

    No weights are ever downloaded. SFSRM uses a VGG trained for material recognition; give a
    state-dict file of such a network as ``weights_path`` (the layout of
    :class:`microsr.nets.vgg.VGG19Features`, which is that of ``torchvision.models.vgg19().features``;
    a state dict of the whole torchvision ``vgg19`` is accepted too: its ``features.`` prefix is
    stripped and its classifier ignored). Without a file the features come from the fixed seeded
    random network (seed 0): still a deterministic multi-scale comparison of local structure, but not
    the trained features of the paper. :attr:`source` says which, for the run log.

    Parameters
    ----------
    weights_path : str or Path, optional
        State-dict file (``torch.save``) of a VGG-19 feature network.
    layers : sequence of str
        Layer names from :data:`microsr.nets.vgg.VGG19_LAYER_NAMES`.

    Attributes
    ----------
    source : str
        ``"weights file <path>"`` or :data:`SEEDED_FEATURES_SOURCE`.

    Raises
    ------
    InputError
        The weights file is missing, cannot be read, or does not hold VGG-19 feature weights.
    """

    def __init__(self, weights_path: str | Path | None = None, layers: Sequence[str] = ("conv5_4",)):
        super().__init__()
        unknown = [name for name in layers if name not in VGG19_LAYER_NAMES]
        if unknown or not layers:
            raise InputError(f"perceptual layers {list(layers)}: choose one or more of "
                             f"{', '.join(VGG19_LAYER_NAMES)}")
        # An unreadable file fails before the 20 M-parameter network is built.
        state = None if weights_path is None else _read_state_dict(Path(weights_path))
        self.features = VGG19Features()
        self.layers = tuple(layers)
        if state is None:
            self.source = SEEDED_FEATURES_SOURCE
        else:
            self.features.layers.load_state_dict(_matched_to(self.features, state, Path(weights_path)))
            self.source = f"weights file {weights_path}"
        self.features.requires_grad_(False)
        self.features.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        # The feature network is a fixed measuring instrument: it stays in evaluation mode.
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """0-d loss of a predicted batch ``(N, C, H, W)`` (C = 1 or 3, values in 0-1) against its target."""
        _check_pair(prediction, target)
        predicted = self.features(prediction, self.layers)
        with torch.no_grad():
            wanted = self.features(target, self.layers)
        return torch.stack([F.l1_loss(p, t) for p, t in zip(predicted, wanted)]).mean()


_WEIGHTS_HINT = ("give a state dict of VGG-19 convolutional layers saved with torch.save "
                 "(torchvision vgg19().features layout), or no weights file for seeded random features")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"VGG weights file {path} does not exist: {_WEIGHTS_HINT}")
    try:
        # weights_only: a weights file from elsewhere must not be able to run code when unpickled.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise InputError(f"VGG weights file {path} cannot be read ({type(error).__name__}: {error}): "
                         f"{_WEIGHTS_HINT}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"VGG weights file {path} does not hold a state dict of tensors: {_WEIGHTS_HINT}")
    if any(key.startswith("features.") for key in state):
        # a whole torchvision vgg19: keep its convolutional part, drop the classifier
        state = {key.removeprefix("features."): value for key, value in state.items()
                 if key.startswith("features.")}
    return state


def _matched_to(network: VGG19Features, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    expected = network.layers.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InputError(f"VGG weights file {path} does not match VGG-19 up to conv5_4 (missing keys: "
                         f"{missing[:4]}{' ...' if len(missing) > 4 else ''}; unexpected keys: "
                         f"{unexpected[:4]}{' ...' if len(unexpected) > 4 else ''}): {_WEIGHTS_HINT}")
    wrong = [key for key in expected if state[key].shape != expected[key].shape]
    if wrong:
        key = wrong[0]
        raise InputError(f"VGG weights file {path}: {key} has shape {tuple(state[key].shape)}, VGG-19 "
                         f"needs {tuple(expected[key].shape)}: {_WEIGHTS_HINT}")
    return state


def _bce_with_logits(logits: torch.Tensor, real: bool, pixel_reduction: str) -> torch.Tensor:
    """``-E[log D]`` (``real``) or ``-E[log(1 - D)]`` with ``D = sigmoid(logits)``, E over the batch."""
    # log(sigmoid(z)) = -softplus(-z) and log(1 - sigmoid(z)) = -softplus(z), stable for any logit.
    per_element = F.softplus(-logits) if real else F.softplus(logits)
    if logits.ndim == 1 or pixel_reduction == "mean":
        return per_element.mean()
    return per_element.flatten(start_dim=1).sum(dim=1).mean()


def _check_reduction(pixel_reduction: str) -> None:
    if pixel_reduction not in ("mean", "sum"):
        raise ValueError(f"pixel_reduction={pixel_reduction!r}: choose 'mean' or 'sum'")


def discriminator_loss(real_global: torch.Tensor, real_pixel: torch.Tensor, fake_global: torch.Tensor,
                       fake_pixel: torch.Tensor, *, pixel_reduction: str = "mean") -> torch.Tensor:
    """Standard (non-relativistic) GAN loss of the U-Net discriminator: encoder plus decoder terms (eq. 5-7).

    ``L_D = L_enc + L_dec`` with ``L_enc = -E[log D_enc(y)] - E[log(1 - D_enc(G(x)))]`` and
    ``L_dec = -E[sum_ij log D_dec(y)_ij] - E[sum_ij log(1 - D_dec(G(x))_ij)]``, where ``D`` is the
    sigmoid of the discriminator's logits and E the mean over the minibatch.

    Parameters
    ----------
    real_global, fake_global : torch.Tensor, shape (N,)
        Encoder logits of ground-truth and generated images.
    real_pixel, fake_pixel : torch.Tensor, shape (N, 1, H, W)
        Decoder logit maps of ground-truth and generated images.
    pixel_reduction : {"mean", "sum"}
        How the decoder term pools pixels. Eq. 6 sums them (``"sum"``), which makes the decoder term
        ``H * W`` times the encoder term and ties the adversarial weight (0.001) to the patch size;
        ``"mean"`` (default, as the U-Net GAN and Real-ESRGAN implementations do) averages them, so
        both decisions weigh alike at any patch size.

    Returns
    -------
    torch.Tensor
        0-d loss; ``2 log 2`` (mean) when every logit is 0, and towards 0 as the discriminator becomes
        certain and right. Pass the generated images detached so that only the discriminator learns.
    """
    _check_reduction(pixel_reduction)
    encoder = _bce_with_logits(real_global, True, pixel_reduction) + _bce_with_logits(fake_global, False,
                                                                                      pixel_reduction)
    decoder = _bce_with_logits(real_pixel, True, pixel_reduction) + _bce_with_logits(fake_pixel, False,
                                                                                     pixel_reduction)
    return encoder + decoder


def generator_adversarial_loss(fake_global: torch.Tensor, fake_pixel: torch.Tensor,
                               real_global: torch.Tensor | None = None, real_pixel: torch.Tensor | None = None,
                               *, pixel_reduction: str = "mean") -> torch.Tensor:
    """Adversarial loss of the generator: ``-E[log D_enc(G(x))] - E[sum_ij log D_dec(G(x))_ij]`` (eq. 8).

    The non-saturating standard GAN loss on both discriminator decisions. It needs only the
    discriminator's view of the generated images: SFSRM's loss is not relativistic (unlike ESRGAN's),
    so the real images' logits do not enter.

    Parameters
    ----------
    fake_global : torch.Tensor, shape (N,)
        Encoder logits of generated images (not detached: the gradient reaches the generator).
    fake_pixel : torch.Tensor, shape (N, 1, H, W)
        Decoder logit maps of generated images.
    real_global, real_pixel : torch.Tensor, optional
        Accepted so that callers written for a relativistic loss keep working, and not used: eq. 8
        has no real-image term. Leave them out to save the discriminator pass on the real images.
    pixel_reduction : {"mean", "sum"}
        As in :func:`discriminator_loss`.

    Returns
    -------
    torch.Tensor
        0-d loss, towards 0 as the discriminator takes the generated images for real.
    """
    _check_reduction(pixel_reduction)
    return _bce_with_logits(fake_global, True, pixel_reduction) + _bce_with_logits(fake_pixel, True,
                                                                                   pixel_reduction)
