"""Every training loss: SFSRM (MS-SSIM-L1, perceptual, adversarial, frequency), rDL SIM (MSE + SSIM), TiS/SiS-rDL with GAR.

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
from microsr.nets.vgg import VGG19_LAYER_NAMES, VGG19Features

__all__ = ["ms_ssim_torch", "MS_SSIM_WEIGHTS", "rdl_loss_terms", "gap_amending_loss", "sis_loss", "tis_loss",
           "MSSSIML1Loss", "PerceptualLoss", "FrequencyLoss", "discriminator_loss",
           "generator_adversarial_loss", "SEEDED_FEATURES_SOURCE"]

#: What :attr:`PerceptualLoss.source` says when no weights file was given.
SEEDED_FEATURES_SOURCE = "seeded random features (no weights file given)"


#: Per-scale exponents of MS-SSIM (Wang, Simoncelli, Bovik 2003), finest scale first, fitted to human ratings.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# K1, K2 of SSIM (Wang et al. 2004): they keep the SSIM ratios finite where means or variances vanish.
SSIM_K1, SSIM_K2 = 0.01, 0.03


def check_ssim_window(win_size: int, shape: tuple[int, ...]) -> None:
    """An odd SSIM window of at least 3 px that fits in ``shape``, or one InputError saying what to give."""
    if int(win_size) != win_size or win_size < 3 or win_size % 2 == 0:
        raise InputError(f"win_size={win_size}: the window needs a centre pixel, give an odd integer >= 3")
    if min(shape) < win_size:
        raise InputError(f"image of shape {tuple(shape)} is smaller than the {win_size}-px window: "
                         "give a larger image or a smaller win_size")


def ms_ssim_torch(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, win_size: int = 7,
                  sigma: float = 1.5, weights: Sequence[float] | None = None) -> torch.Tensor:
    """Differentiable multi-scale SSIM of two batches of images, averaged over batch and channels.

    At scale ``j = 1 .. M`` the images are filtered by a separable Gaussian window (valid
    convolution, no padding) to get local means, variances and covariance; the contrast-structure
    term ``cs_j = mean((2 s_xy + C2) / (s_x^2 + s_y^2 + C2))`` is kept for ``j < M`` and the full SSIM
    ``mean(l * cs)`` at ``j = M``, with ``C1 = (0.01 L)**2``, ``C2 = (0.03 L)**2``. Between scales
    the images are 2 x 2 average-pooled (an odd trailing row or column is dropped). The result is
    ``prod_j cs_j**w_j`` with the last factor ``SSIM_M**w_M``.

    **Scales on small images.** Scale ``j`` needs an image of at least ``win_size`` pixels per side.
    When fewer than ``len(weights)`` scales fit, only the ``M`` that fit are used and their weights
    are rescaled to sum to 1, so the score stays on the same 0-1 scale; this is what lets 64-px
    training patches use MS-SSIM (4 scales with a 7-px window; Wang's 11-px window on 5 scales would
    need 176 px). With all scales fitting the weights are used as given, and the result then equals
    ``pytorch_msssim.ms_ssim`` (even image sizes).

    Negative ``cs_j`` (anti-correlated structure) are clamped to 0 before the power, as in
    ``pytorch_msssim``: a negative number to a fractional power is not real. The clamp is written so
    that its gradient stays finite (0) rather than NaN, which matters for the MS-SSIM-L1 loss.

    Parameters
    ----------
    x, y : torch.Tensor, shape (N, C, H, W)
        Batches to compare, same shape, floating point; channels are scored separately.
    data_range : float
        ``L``, the peak-to-peak intensity of the signal (1 for images normalized to 0-1).
    win_size : int
        Side of the Gaussian window in pixels, odd.
    sigma : float
        Standard deviation of the Gaussian window, pixels.
    weights : sequence of float, optional
        Per-scale exponents, finest first; default :data:`MS_SSIM_WEIGHTS`.

    Returns
    -------
    torch.Tensor
        0-d tensor: MS-SSIM averaged over batch and channels, differentiable in ``x`` and ``y``.

    Raises
    ------
    InputError
        Shapes differ or are not 4-D, the window is even, or the image is smaller than the window.

    References
    ----------
    .. [1] Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality
           assessment", Proc. 37th Asilomar Conf. Signals, Systems and Computers, 1398-1402 (2003).
    .. [2] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
           dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, eq. 13-17; its
           generator loss is ``0.84 (1 - MS-SSIM) + 0.16 L1``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 64, 64)
    >>> round(float(ms_ssim_torch(x, x)), 5)
    1.0
    """
    if x.ndim != 4 or x.shape != y.shape:
        raise InputError(f"x has shape {tuple(x.shape)} and y has shape {tuple(y.shape)}: "
                         "give two (N, C, H, W) batches of the same shape")
    exponents = x.new_tensor(ms_ssim_exponents(tuple(x.shape[-2:]), win_size, sigma, weights))
    scales = len(exponents)

    window = _gaussian_window(win_size, sigma, x.dtype, x.device).repeat(x.shape[1], 1, 1, 1)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    factors = []
    for scale in range(scales):
        ssim_value, cs_value = _ssim_and_cs(x, y, window, c1, c2)
        if scale < scales - 1:
            factors.append(cs_value)
            x = F.avg_pool2d(x, kernel_size=2)
            y = F.avg_pool2d(y, kernel_size=2)
        else:
            factors.append(ssim_value)
    factors = torch.stack(factors, dim=0)  # (scale, N, C)
    powered = _clamped_power(factors, exponents.view(-1, 1, 1))
    return torch.prod(powered, dim=0).mean()


def ms_ssim_exponents(shape: tuple[int, int], win_size: int, sigma: float,
                      weights: Sequence[float] | None) -> tuple[float, ...]:
    """The exponent of each scale MS-SSIM uses on images of ``shape`` (one per scale that fits, rescaled to sum
    to 1 when fewer than ``weights`` fit), after the checks of the window and the weights. Shared by
    :func:`ms_ssim_torch` and the metric's NumPy twin, so both score the same scales."""
    check_ssim_window(win_size, shape)
    if not sigma > 0:
        raise InputError(f"sigma={sigma}: give a positive Gaussian window width in pixels")
    weights = MS_SSIM_WEIGHTS if weights is None else tuple(float(w) for w in weights)
    if len(weights) == 0 or any(w < 0 for w in weights):
        raise InputError(f"weights={weights}: give one non-negative exponent per scale")
    scales, height, width = 1, shape[0], shape[1]
    while scales < len(weights) and min(height // 2, width // 2) >= win_size:
        height, width = height // 2, width // 2
        scales += 1
    if scales == len(weights):
        return tuple(weights)
    total = sum(weights[:scales])
    return tuple(w / total for w in weights[:scales])


def _gaussian_window(win_size: int, sigma: float, dtype, device) -> torch.Tensor:
    coords = torch.arange(win_size, dtype=dtype, device=device) - win_size // 2
    profile = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    return (profile / profile.sum())[None, None, None, :]  # (1, 1, 1, win): one row, one channel


def _blur(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    # Separable and valid: Wang's local statistics use only pixels inside the image, no padding.
    channels = image.shape[1]
    image = F.conv2d(image, window, groups=channels)
    return F.conv2d(image, window.transpose(-1, -2), groups=channels)


def _ssim_and_cs(x, y, window, c1, c2):
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x ** 2
    var_y = _blur(y * y, window) - mu_y ** 2
    cov_xy = _blur(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
    luminance_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    return (luminance_map * cs_map).mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))


def _clamped_power(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    # max(base, 0)**w has an infinite derivative at 0, and inf * 0 (the clamp's gradient) is NaN; the
    # inner clamp keeps the unused branch finite so the gradient of a clamped factor is exactly 0.
    positive = base > 0
    safe = torch.where(positive, base, torch.ones_like(base))
    return torch.where(positive, safe ** exponent, torch.zeros_like(base))


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.ndim != 4 or prediction.shape != target.shape:
        raise InputError(f"prediction has shape {tuple(prediction.shape)} and target has shape "
                         f"{tuple(target.shape)}: give two (N, C, H, W) batches of the same shape")


class MSSSIML1Loss(nn.Module):
    """``alpha * (1 - MS-SSIM) + (1 - alpha) * L1``, the SFSRM content loss (eq. 3).

    MS-SSIM keeps structure and local contrast at several scales but is blind to a uniform intensity
    offset; the mean absolute error pins the intensities. The MS-SSIM term is
    :func:`ms_ssim_torch`, which uses as many scales as fit the patch (4 for
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


def rdl_loss_terms(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The two terms of rDL SIM's loss (paper 000), ``mse`` and ``ssim``: the loss is ``mse + w · (1 − ssim)``.

    One scale (weights ``[1]``) of :func:`ms_ssim_torch` is the plain SSIM of the paper's loss; raw
    frames are ~0–1 after :func:`microsr.models.rdl.normalize_raw` and the SIM target is 0–1, hence
    ``data_range`` 1.
    """
    return {"mse": torch.mean((output - target) ** 2),
            "ssim": ms_ssim_torch(output, target, data_range=1.0, weights=[1.0])}


# Self-supervised LLSM denoising (TiS-rDL / SiS-rDL) and gap-amending regularization.

def _interleave(odd_slices: torch.Tensor, even_slices: torch.Tensor) -> torch.Tensor:
    """The full-resolution patch the two halves were split from: even slice ``j`` at plane ``2j``, odd at ``2j + 1``."""
    n_odd, n_even = odd_slices.shape[2], even_slices.shape[2]
    full = even_slices.new_empty((*even_slices.shape[:2], n_odd + n_even, *even_slices.shape[3:]))
    full[:, :, 0::2] = even_slices
    full[:, :, 1::2] = odd_slices
    return full


def _between(slices: torch.Tensor, count: int) -> torch.Tensor:
    """Mean of slices ``j`` and ``j + 1`` for ``j < count``: the plane midway between them."""
    return 0.5 * (slices[:, :, :count] + slices[:, :, 1:count + 1])


def _sis_terms(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, with_gap: bool):
    """Per direction: (prediction, target midway between its two neighbouring planes, network-estimated gap)."""
    if odd_slices.ndim != 5 or even_slices.ndim != 5:
        raise ValueError(f"odd and even slices must be (N, C, Z, Y, X) batches, got {tuple(odd_slices.shape)} "
                         f"and {tuple(even_slices.shape)}")
    n_odd, n_even = odd_slices.shape[2], even_slices.shape[2]
    if n_even not in (n_odd, n_odd + 1):
        raise ValueError(f"{n_odd} odd and {n_even} even slices are not the two halves of one stack")
    m = min(n_odd, n_even - 1)
    if m < 1:
        raise ValueError(f"no slice has a neighbour on both sides: {n_odd} odd and {n_even} even slices; "
                         "SiS pairs need at least 2 of each")
    # The network's own view of the full-resolution stack, split back into its halves: how each plane
    # differs there from the mean of its two neighbours is the gap between an input plane and its
    # targets. No gradient: it is an estimate that amends the target, not something to optimize.
    denoised_odd = denoised_even = None
    if with_gap:
        with torch.no_grad():
            denoised = network(_interleave(odd_slices, even_slices))
        denoised_odd, denoised_even = denoised[:, :, 1::2], denoised[:, :, 0::2]
    terms = []
    # Odd slice j lies between even slices j and j + 1; even slice j (j ≥ 1) between odd j − 1 and j.
    for source, target, own, other, first in ((odd_slices, even_slices, denoised_odd, denoised_even, 0),
                                              (even_slices, odd_slices, denoised_even, denoised_odd, 1)):
        prediction = network(source)[:, :, first:first + m]
        gap = None if own is None else own[:, :, first:first + m] - _between(other, m)
        terms.append((prediction, _between(target, m), gap))
    return terms


def _amendment(prediction: torch.Tensor, target: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    # ‖p − t − g‖² − ‖p − t‖², computed as g·(g − 2(p − t)) so that it is exactly 0 where g is 0.
    return torch.mean(gap * (gap - 2.0 * (prediction - target)))


def _sis_amendment(terms) -> torch.Tensor:
    return torch.stack([_amendment(*term) for term in terms]).mean()


def gap_amending_loss(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, *,
                      weight: float = 1.0) -> torch.Tensor:
    """Gap-amending regularization (GAR) of SiS-rDL: pulls each prediction from its neighbours' mean to its own plane.

    In a SiS pair the targets of input plane ``j`` are the planes one (original) step above and below
    it. Trained on them alone, a network learns their mean, i.e. the specimen blurred along z by the
    gap; at an axial step near the PSF's axial extent an in-focus vesicle all but vanishes from it.
    GAR estimates that gap with the network itself, in the manner of Neighbor2Neighbor's
    regularizer [2]_: ``F``, the network applied (without gradient) to the interleaved full stack,
    gives ``g_j = F(plane j) − ½ (F(plane j − 1) + F(plane j + 1))``, how much plane ``j`` differs
    from the mean of its neighbours. With ``p`` the prediction of plane ``j`` from its half and
    ``t = ½ (e_j + e_{j+1})`` the mean of its noisy neighbours,

    .. math::

        \\mathrm{GAR} = w \\, \\langle \\lVert p - t - g \\rVert^2 - \\lVert p - t \\rVert^2 \\rangle ,

    averaged over voxels, both directions (odd → even, even → odd) and the batch. Added to the data
    term ``⟨‖p − t‖²⟩`` it moves the optimum from ``t`` to ``t + w g``: with ``w = 1`` the amended
    target is the plane itself (``F``'s own plane j plus the noisy neighbours' deviation from
    ``F``'s), with ``w = 0`` the plain SiS target. ``w = 1`` is not a useful setting: the identity
    network then satisfies the loss exactly and noise is kept; ``w`` between 0.3 and 0.7 trades
    noise for the gap, and :class:`~microsr.train.selfsup.SelfSupTraining` ramps it in over the
    first half of training, while ``F`` is still poor.

    GAR is exactly zero where the estimated gap is zero: when neighbouring slices are identical (a
    volume constant along z) and the network keeps such a volume constant along z. That holds for
    any translation-equivariant network away from the patch's z-ends; at the ends zero padding makes
    a small gap of its own (replicate padding does not).

    Parameters
    ----------
    network : callable
        Maps a ``(N, C, Z, Y, X)`` tensor to one of the same shape (e.g. :class:`microsr.nets.RCAN3D`).
    odd_slices, even_slices : torch.Tensor, shape (N, C, Z, Y, X)
        The halves of SiS pairs in the order of :func:`microsr.models.selfsup.sis_split`: odd slice ``j`` between even slices
        ``j`` and ``j + 1``. :class:`SelfSupervisedPatches` in mode "sis" yields ``(input, target)``
        in that order, its reversed pairs flipped along z to keep it.
    weight : float
        ``w`` above.

    Returns
    -------
    torch.Tensor
        Scalar, of either sign (it is a change of the data term); differentiable with respect to the
        network's parameters through ``p`` only.

    Raises
    ------
    ValueError
        Tensors that are not 5-D, or so thin that no slice has a neighbour on both sides.

    Notes
    -----
    The paper names GAR (Extended Data Fig. 7f, g: SiS-rDL with and without it) but the text we have
    does not define it; this is our reading. An earlier reading, which only penalized a prediction
    leaning towards one neighbour more than the other, could not fix the blur: the mean of the two
    neighbours does not lean either way. It was measured useless (−0.1 to +0.3 dB).

    References
    ----------
    .. [2] T. Huang, S. Li, X. Jia, H. Lu & J. Liu, "Neighbor2Neighbor: self-supervised denoising from
           single noisy images", CVPR 2021, Eq. 5–6.

    Examples
    --------
    >>> volume = torch.ones(1, 1, 6, 8, 8)
    >>> network = torch.nn.Conv3d(1, 1, 3, padding=1, padding_mode="replicate")
    >>> gap_amending_loss(network, volume[:, :, 1::2], volume[:, :, ::2]).item()
    0.0
    """
    return float(weight) * _sis_amendment(_sis_terms(network, odd_slices, even_slices, with_gap=True))


def sis_loss(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, *,
             gar_weight: float = 0.5) -> torch.Tensor:
    """SiS-rDL training loss: each half's prediction against the mean of the other half's neighbouring planes, plus GAR.

    The data term is the mean squared error of the prediction from the odd slices against the mean
    of the two even slices around each, and of the prediction from the even slices against the mean
    of the two odd slices around each, averaged. ``gar_weight`` times :func:`gap_amending_loss` is
    added (0 trains without it); the network runs once per half, plus once without gradient over
    the full stack when GAR is on.

    Parameters
    ----------
    network : callable
        As for :func:`gap_amending_loss`.
    odd_slices, even_slices : torch.Tensor, shape (N, C, Z, Y, X)
        As for :func:`gap_amending_loss`.
    gar_weight : float
        Weight ``w`` of the gap-amending regularization.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    terms = _sis_terms(network, odd_slices, even_slices, with_gap=gar_weight != 0)
    data = torch.stack([torch.mean((prediction - target) ** 2) for prediction, target, _ in terms]).mean()
    if gar_weight == 0:
        return data
    return data + float(gar_weight) * _sis_amendment(terms)


def tis_loss(network, source: torch.Tensor, target: torch.Tensor, *, gar_weight: float = 0.5) -> torch.Tensor:
    """TiS-rDL training loss: the prediction from one time point against the other, plus an optional GAR.

    The data term is the mean squared error against the neighbouring time point. Its optimum is the
    *next* volume's signal: whatever moved between the two time points is blurred by the motion's
    spread. The same amendment as :func:`gap_amending_loss` estimates that temporal gap with the
    network itself, ``g = F(source) − F(target)`` (``F`` without gradient), and moves the optimum
    to ``target + w g``. ``gar_weight = 0`` is plain TiS-rDL.

    Parameters
    ----------
    network : callable
        Maps a ``(N, C, Z, Y, X)`` tensor to one of the same shape.
    source, target : torch.Tensor, shape (N, C, Z, Y, X)
        The same region at two neighbouring time points.
    gar_weight : float
        Weight ``w`` of the temporal gap amendment.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    prediction = network(source)
    data = torch.mean((prediction - target) ** 2)
    if gar_weight == 0:
        return data
    with torch.no_grad():
        gap = prediction.detach() - network(target)
    return data + float(gar_weight) * _amendment(prediction, target, gap)
