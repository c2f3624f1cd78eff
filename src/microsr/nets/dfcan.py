"""DFCAN: the deep Fourier channel attention network, mapping raw SIM frames straight to a 2x super-resolved image.

DFGAN is the same generator trained with an adversarial term: DFCAN here, plus the
:class:`~microsr.nets.patch_discriminator.PatchDiscriminator` judging DFCAN's output against the SIM
ground truth, plus a binary cross-entropy adversarial loss added to DFCAN's pixel loss. No separate
generator class is needed, so none is defined.

References
----------
.. [1] C. Qiao et al., "Evaluation and development of deep neural networks for image super-resolution
       in optical microscopy", Nat. Methods 18, 194-202 (2021): DFCAN and DFGAN.
.. [2] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023), where
       DFCAN makes the first SR estimate that rDL turns into pattern-modulated images.
.. [3] Y. Zhang et al., "Image super-resolution using very deep residual channel attention
       networks" (RCAN), ECCV (2018): residual groups with long skips, squeeze-excite attention.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from microsr.nets.blocks import check_sizes, conv3

__all__ = ["DFCAN", "FCAB", "FourierChannelAttention", "FourierResidualGroup"]

# Keeps d/dx x**gamma = gamma * x**(gamma - 1) finite where a spectrum is exactly zero (a blank patch,
# zero padding); far below the amplitude of any frequency that carries signal.
_SPECTRUM_EPS = 1e-8


def _squeeze_excite(features: int, reduction: int) -> nn.Sequential:
    # At least one hidden channel, so narrow CPU models (features < reduction) still have attention.
    hidden = max(1, features // reduction)
    return nn.Sequential(nn.Conv2d(features, hidden, kernel_size=1), nn.ReLU(),
                         nn.Conv2d(hidden, features, kernel_size=1), nn.Sigmoid())


class FourierChannelAttention(nn.Module):
    """Rescale each feature channel by a weight learned from the power-law compressed amplitude of its spectrum.

    The descriptor of a channel is the mean over all frequencies of ``|FFT2(channel)| ** gamma``. A
    channel whose energy sits at high spatial frequencies (fine structure near and beyond the
    diffraction limit) gives a different descriptor from one dominated by the background, so the
    network can favour the channels that carry the resolution SIM is meant to recover. ``gamma < 1``
    compresses the huge dynamic range of a spectrum (the zero frequency is orders of magnitude above
    the rest) so the high frequencies count in the mean at all. A squeeze-excite MLP (1 x 1 conv,
    ReLU, 1 x 1 conv, sigmoid) turns the descriptors into weights in (0, 1).

    Parameters
    ----------
    features : int
        Channels in and out.
    reduction : int
        Channel reduction of the squeeze-excite MLP (its hidden layer has ``features // reduction``
        channels, at least one).
    gamma : float
        Power applied to the amplitude spectrum; the DFCAN paper uses 0.8, rDL SIM 0.1-0.8.

    Notes
    -----
    The FFT is orthonormal (``norm="ortho"``): the mean amplitude of white noise is then the same for a
    64-px training patch and a 1024-px field of view, so weights learned on patches transfer to whole
    images. Global average pooling does not care where the zero frequency is stored, so no
    ``fftshift`` is needed. The descriptor depends on the whole input, so a tiled prediction is not
    exactly the whole-image one.

    Examples
    --------
    >>> import torch
    >>> attention = FourierChannelAttention(16, reduction=4)
    >>> attention(torch.rand(2, 16, 9, 7)).shape
    torch.Size([2, 16, 9, 7])
    """

    def __init__(self, features: int, reduction: int = 16, gamma: float = 0.8):
        super().__init__()
        if features < 1 or reduction < 1:
            raise ValueError(f"features={features}, reduction={reduction}: both must be positive")
        if gamma <= 0:
            raise ValueError(f"gamma={gamma}: the spectrum's power must be positive (0.1-0.8 in rDL SIM)")
        self.features = features
        self.reduction = reduction
        self.gamma = gamma
        self.excite = _squeeze_excite(features, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weight the channels of ``(N, features, H, W)``; the shape is unchanged."""
        # FFTs of half-precision tensors are restricted to power-of-two sizes, hence float32.
        amplitude = torch.fft.fft2(x.float(), norm="ortho").abs()
        descriptor = (amplitude + _SPECTRUM_EPS).pow(self.gamma).mean(dim=(-2, -1), keepdim=True)
        return x * self.excite(descriptor.to(x.dtype))


class FCAB(nn.Module):
    """Fourier channel attention block: two 3 x 3 convs with GELU, Fourier channel attention, residual add.

    Parameters
    ----------
    features : int
        Channels in and out.
    reduction : int
        Channel reduction of the attention's squeeze-excite MLP.
    gamma : float
        Power applied to the amplitude spectrum by the attention.
    """

    def __init__(self, features: int = 64, reduction: int = 16, gamma: float = 0.8):
        super().__init__()
        self.body = nn.Sequential(conv3(features, features), nn.GELU(),
                                  conv3(features, features), nn.GELU(),
                                  FourierChannelAttention(features, reduction, gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FourierResidualGroup(nn.Module):
    """FCABs in series and a 3 x 3 conv, with a long skip from the group's input to its output.

    The long skip lets the low frequencies (most of the image) pass unchanged, so the blocks learn
    only the residual detail (RCAN's residual-in-residual design).

    Parameters
    ----------
    features : int
        Channels in and out.
    blocks : int
        Number of FCABs.
    reduction : int
        Channel reduction of each attention.
    gamma : float
        Power applied to the amplitude spectrum by each attention.
    """

    def __init__(self, features: int = 64, blocks: int = 4, reduction: int = 16, gamma: float = 0.8):
        super().__init__()
        self.body = nn.Sequential(*(FCAB(features, reduction, gamma) for _ in range(blocks)),
                                  conv3(features, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DFCAN(nn.Module):
    """Deep Fourier channel attention network: raw SIM frames in, one super-resolved image out.

    A 3 x 3 conv and GELU lift the stacked raw frames to ``features`` channels; ``groups`` residual
    groups of ``blocks_per_group`` FCABs refine them at the camera's pixel size; a conv to
    ``features * scale**2`` channels, GELU and a pixel shuffle rearrange them onto the ``scale`` times
    finer grid of the SIM image (sub-pixel convolution: the enlargement is learned, not interpolated);
    a last 3 x 3 conv gives the intensity. The paper ends with a sigmoid; here that is an option
    (``sigmoid_output``), off by default: SIM targets are sparse (mean ≈ 0.05 of their maximum), and a
    sigmoid network falls into putting out 0 everywhere, where its gradient vanishes and it never
    recovers (measured: a 16-feature DFCAN gave exactly the all-zero image's validation PSNR, 17.507 dB,
    from iteration 50 to 600, with pre-sigmoid values down to −112). A linear output keeps learning.
    The network is fully convolutional and accepts any height and width.

    DFGAN is this network trained with an adversarial term: DFCAN +
    :class:`~microsr.nets.patch_discriminator.PatchDiscriminator` + a binary cross-entropy adversarial
    loss.

    Parameters
    ----------
    in_channels : int
        Raw frames stacked as channels: 9 for 3 orientations x 3 phases (15 for 3 x 5).
    out_channels : int
        Output channels (1: the SIM image).
    features : int
        Channels of the trunk (64 in the paper; 16 is what a CPU can train).
    groups : int
        Number of residual groups (4 in the paper).
    blocks_per_group : int
        FCABs per residual group (4 in the paper).
    scale : int
        Enlargement, any integer >= 1: 2 for SIM, whose image is sampled on a grid twice as fine as
        the camera's.
    reduction : int
        Channel reduction of every Fourier channel attention (16 in the paper).
    gamma : float
        Power applied to the amplitude spectrum by every attention (0.8 in the DFCAN paper).
    sigmoid_output : bool
        End with a sigmoid as the paper does (output in (0, 1)); default linear (see above).

    Raises
    ------
    ValueError
        A size is not positive, or ``groups`` or ``blocks_per_group`` is negative.

    Notes
    -----
    The Fourier channel attention pools over the whole input, so each output pixel depends on every
    input pixel; tiled inference is a close approximation, not an exact copy, of whole-image inference.

    Examples
    --------
    >>> import torch
    >>> net = DFCAN(in_channels=9, features=16, groups=2, blocks_per_group=2, scale=2)
    >>> net(torch.rand(1, 9, 16, 12)).shape
    torch.Size([1, 1, 32, 24])
    """

    def __init__(self, in_channels: int = 9, out_channels: int = 1, features: int = 64, groups: int = 4,
                 blocks_per_group: int = 4, scale: int = 2, reduction: int = 16, gamma: float = 0.8,
                 sigmoid_output: bool = False):
        super().__init__()
        check_sizes(positive={"in_channels": in_channels, "out_channels": out_channels, "features": features,
                              "scale": scale, "reduction": reduction},
                    non_negative={"groups": groups, "blocks_per_group": blocks_per_group})
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.groups = groups
        self.blocks_per_group = blocks_per_group
        self.scale = scale
        self.reduction = reduction
        self.gamma = gamma
        self.sigmoid_output = bool(sigmoid_output)

        self.conv_first = conv3(in_channels, features)
        self.trunk = nn.Sequential(
            *(FourierResidualGroup(features, blocks_per_group, reduction, gamma) for _ in range(groups)))
        self.conv_upsample = conv3(features, features * scale ** 2)
        self.pixel_shuffle = nn.PixelShuffle(scale)
        self.conv_last = conv3(features, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` raw frames to ``(N, out_channels, scale * H, scale * W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, {self.in_channels}, H, W) batch "
                             "of raw frames stacked as channels")
        features = self.trunk(F.gelu(self.conv_first(x)))
        features = self.pixel_shuffle(F.gelu(self.conv_upsample(features)))
        output = self.conv_last(features)
        return torch.sigmoid(output) if self.sigmoid_output else output
