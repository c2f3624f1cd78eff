"""RRDBNet: the ESRGAN generator (residual-in-residual dense blocks), used by SFSRM as SEN (x1) and SRN (x4).

References
----------
.. [1] X. Wang et al., "ESRGAN: Enhanced super-resolution generative adversarial networks",
       ECCV Workshops (2018), section 3.1 (RRDB, no batch normalization) and 3.3 (residual scaling
       and smaller initialization).
.. [2] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular
       dynamics imaging" (SFSRM), Nat. Commun. 14, 2854 (2023), Methods, "Network architecture":
       single-channel (SEN) or image + edge-map (SRN) input, 23 RRDBs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from microsr.nets.blocks import check_sizes, conv3

__all__ = ["RRDBNet", "ResidualDenseBlock", "RRDB"]

# ESRGAN section 3.3: scaling each residual branch by 0.2 before adding it keeps a deep trunk without
# batch normalization stable.
_RESIDUAL_SCALE = 0.2
# ESRGAN section 3.3: He initialization scaled by 0.1 makes every dense block start close to identity.
_INIT_SCALE = 0.1
_LEAKY_SLOPE = 0.2
_DENSE_CONVS = 5
_DENSE_BLOCKS_PER_RRDB = 3


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3 x 3 convolutions whose output, scaled by 0.2, is added to the input.

    Parameters
    ----------
    features : int
        Channels in and out of the block.
    growth : int
        Channels added by each of the first four convolutions (the dense "growth rate").
    """

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(
            conv3(features + index * growth, growth if index < _DENSE_CONVS - 1 else features)
            for index in range(_DENSE_CONVS)
        )
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(_INIT_SCALE)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        collected = [x]
        for conv in self.convs[:-1]:
            collected.append(F.leaky_relu(conv(torch.cat(collected, dim=1)), _LEAKY_SLOPE))
        # The last convolution is linear: the block's output is a residual, which may be negative.
        return x + _RESIDUAL_SCALE * self.convs[-1](torch.cat(collected, dim=1))


class RRDB(nn.Module):
    """Three residual dense blocks in series with a second, outer residual connection (scaled by 0.2).

    Parameters
    ----------
    features : int
        Channels in and out.
    growth : int
        Growth rate of each dense block.
    """

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.dense_blocks = nn.Sequential(
            *(ResidualDenseBlock(features, growth) for _ in range(_DENSE_BLOCKS_PER_RRDB)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + _RESIDUAL_SCALE * self.dense_blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN generator: shallow conv, RRDB trunk with a long skip, nearest-neighbour upsampling, two output convs.

    Most of the computation happens at the input resolution; the image is enlarged only at the end by
    ``log2(scale)`` stages of nearest-neighbour x2 interpolation followed by a 3 x 3 convolution and
    LeakyReLU (ESRGAN's choice over transposed convolution, which leaves checkerboard artifacts). With
    ``scale=1`` there is no upsampling stage: this is the SFSRM signal-enhancement network (SEN).
    The network is fully convolutional and accepts any input height and width.

    Parameters
    ----------
    in_channels : int
        Input channels: 1 for the SEN (the image), 2 for the SRN (image and edge map).
    out_channels : int
        Output channels (1: a grayscale image).
    features : int
        Channels of the trunk (64 in ESRGAN and SFSRM; 32 is what a CPU can train).
    blocks : int
        Number of RRDBs in the trunk (23 in ESRGAN and SFSRM; 4-6 for a CPU model).
    growth : int
        Growth rate of the dense blocks (32 in ESRGAN).
    scale : int
        Enlargement, 1, 2 or 4. SFSRM reaches x5 or x10 by bicubic pre-interpolation of the input.

    Raises
    ------
    ValueError
        ``scale`` is not 1, 2 or 4, or a size is not positive.

    Examples
    --------
    >>> import torch
    >>> net = RRDBNet(in_channels=2, features=16, blocks=1, scale=4)
    >>> net(torch.zeros(1, 2, 8, 8)).shape
    torch.Size([1, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: int = 64, blocks: int = 23,
                 growth: int = 32, scale: int = 4):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"scale={scale}: RRDBNet upsamples by 1, 2 or 4; reach other factors by "
                             "interpolating the input first")
        check_sizes(positive={"in_channels": in_channels, "out_channels": out_channels, "features": features,
                              "growth": growth}, non_negative={"blocks": blocks})
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.blocks = blocks
        self.growth = growth
        self.scale = scale

        self.conv_first = conv3(in_channels, features)
        self.trunk = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_trunk = conv3(features, features)
        self.upsample_convs = nn.ModuleList(
            conv3(features, features) for _ in range(int(math.log2(scale))))
        self.conv_hr = conv3(features, features)
        self.conv_last = conv3(features, out_channels)

    @property
    def receptive_field_px(self) -> int:
        """Side of the square of input pixels that can influence one output pixel (an upper bound).

        Counted as one input pixel of reach per side for every 3 x 3 convolution on the longest path:
        ``conv_first``, the five convolutions of each of the ``3 * blocks`` dense blocks and
        ``conv_trunk`` at the input resolution, and each convolution after upsampling (an upsampled
        conv reaches 1/2 or 1/4 of an input pixel, but nearest-neighbour rounding can cost a whole
        one, so a whole one is counted). Hence ``receptive_field_px = 2 * halo + 1`` with
        ``halo = 2 + 15 * blocks + log2(scale) + 2``: 703 px for the paper's 23 blocks at x4.

        For tiled inference, an output pixel whose tile extends at least ``receptive_field_px // 2``
        input pixels beyond it on every side that is not an image border equals the whole-image
        result. The effective receptive field of a trained ESRGAN is much smaller than this
        theoretical bound, so smaller overlaps usually leave no visible seams, but only this one is
        guaranteed.
        """
        halo = 2 + _DENSE_CONVS * _DENSE_BLOCKS_PER_RRDB * self.blocks + len(self.upsample_convs) + 2
        return 2 * halo + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, scale * H, scale * W)``."""
        features = self.conv_first(x)
        features = features + self.conv_trunk(self.trunk(features))
        for conv in self.upsample_convs:
            features = F.interpolate(features, scale_factor=2, mode="nearest")
            features = F.leaky_relu(conv(features), _LEAKY_SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), _LEAKY_SLOPE))
