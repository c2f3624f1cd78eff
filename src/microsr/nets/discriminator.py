"""UNetDiscriminator: a spectrally normalized U-Net that judges a whole image (encoder) and each pixel (decoder).

References
----------
.. [1] E. Schönfeld, B. Schiele, A. Khoreva, "A U-Net based discriminator for generative adversarial
       networks", CVPR (2020): global decision from the encoder, per-pixel decision from the decoder.
.. [2] X. Wang, L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: Training real-world blind super-resolution
       with pure synthetic data", ICCV Workshops (2021), section 3.3: U-Net discriminator with
       spectral normalization for super-resolution.
.. [3] T. Miyato et al., "Spectral normalization for generative adversarial networks", ICLR (2018).
.. [4] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
       dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, "Loss functions", eq. 5-8.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from microsr.nets.blocks import check_sizes

__all__ = ["UNetDiscriminator"]

_LEAKY_SLOPE = 0.2
_LEVELS = 3  # three stride-2 stages: inputs must be multiples of 2**3 = 8


def _sn_conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Module:
    # padding 1 keeps the size for 3 x 3 / stride 1 and halves it exactly for 4 x 4 / stride 2
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=1))


class UNetDiscriminator(nn.Module):
    """U-Net discriminator: an image-level logit from the encoder and a pixel-level logit map from the decoder.

    The encoder halves the image three times with 4 x 4 stride-2 convolutions (``features`` to
    ``8 * features`` channels); its bottleneck is average-pooled to one vector per image and a linear
    layer gives the global logit (the paper's "convolved by the encoder to one pixel"; pooling makes it
    independent of the patch size). The decoder doubles the resolution three times by bilinear
    interpolation and a 3 x 3 convolution, adding the encoder features of the same size (skip
    connections), and ends in a one-channel logit map of the input size. Every convolution and the
    linear layer are spectrally normalized, which bounds the discriminator's Lipschitz constant and
    keeps the adversarial game stable without batch normalization (Real-ESRGAN).

    Outputs are logits (before the sigmoid): the losses in :mod:`microsr.losses` apply the sigmoid
    inside a numerically stable binary cross-entropy.

    Parameters
    ----------
    in_channels : int
        Channels of the judged images (1: grayscale).
    features : int
        Channels after the first convolution; the encoder doubles them at each of its three stages.

    Notes
    -----
    Height and width that are not multiples of 8 are padded at the bottom and right by edge
    replication to the next multiple, and the pixel logit map is cropped back to the input size;
    the padded rows take part in the global decision.

    Examples
    --------
    >>> import torch
    >>> global_logits, pixel_logits = UNetDiscriminator(features=8)(torch.zeros(2, 1, 32, 32))
    >>> tuple(global_logits.shape), tuple(pixel_logits.shape)
    ((2,), (2, 1, 32, 32))
    """

    def __init__(self, in_channels: int = 1, features: int = 64):
        super().__init__()
        check_sizes(positive={"in_channels": in_channels, "features": features})
        self.in_channels = in_channels
        self.features = features
        widths = [features * 2 ** level for level in range(_LEVELS + 1)]  # f, 2f, 4f, 8f

        self.conv_in = _sn_conv(in_channels, widths[0])
        self.down = nn.ModuleList(
            _sn_conv(widths[level], widths[level + 1], kernel_size=4, stride=2) for level in range(_LEVELS))
        self.global_conv = _sn_conv(widths[-1], widths[-1])
        self.global_linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.up = nn.ModuleList(
            _sn_conv(widths[level + 1], widths[level]) for level in reversed(range(_LEVELS)))
        self.refine = nn.ModuleList(_sn_conv(widths[0], widths[0]) for _ in range(2))
        self.conv_out = _sn_conv(widths[0], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Judge a batch ``(N, in_channels, H, W)``.

        Returns
        -------
        global_logits : torch.Tensor, shape (N,)
            One real-versus-fake logit per image (encoder decision).
        pixel_logits : torch.Tensor, shape (N, 1, H, W)
            One real-versus-fake logit per pixel (decoder decision).
        """
        if x.ndim != 4:
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, C, H, W) batch")
        height, width = x.shape[-2:]
        multiple = 2 ** _LEVELS
        pad_bottom, pad_right = -height % multiple, -width % multiple
        if pad_bottom or pad_right:
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")

        skips = [F.leaky_relu(self.conv_in(x), _LEAKY_SLOPE)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), _LEAKY_SLOPE))

        bottleneck = F.leaky_relu(self.global_conv(skips[-1]), _LEAKY_SLOPE)
        global_logits = self.global_linear(bottleneck.mean(dim=(-2, -1))).squeeze(-1)

        decoded = skips[-1]
        for conv, skip in zip(self.up, reversed(skips[:-1])):
            decoded = F.interpolate(decoded, scale_factor=2, mode="bilinear", align_corners=False)
            decoded = F.leaky_relu(conv(decoded), _LEAKY_SLOPE) + skip
        for conv in self.refine:
            decoded = F.leaky_relu(conv(decoded), _LEAKY_SLOPE)
        pixel_logits = self.conv_out(decoded)[..., :height, :width]
        return global_logits, pixel_logits
