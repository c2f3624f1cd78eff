"""Building blocks shared by the networks: 3 x 3 convolutions, channel attention, RCAB and residual groups in 2-D and 3-D.

The rDL SIM denoiser (2-D) and the rDL LLSM denoiser RCAN3D (3-D) are both residual channel attention
networks [1]_; one implementation serves both, chosen by ``dims``. Parameter names inside the blocks
(``excite``, ``body``) are those the shipped weights were saved with.

References
----------
.. [1] Y. Zhang et al., "Image super-resolution using very deep residual channel attention
       networks" (RCAN), ECCV (2018): channel attention, RCAB, residual groups with long skips.
.. [2] J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR (2018).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RCAB", "ChannelAttention", "ResidualGroup", "check_residual", "check_sizes", "conv3"]

_CONVS = {2: nn.Conv2d, 3: nn.Conv3d}


def check_sizes(*, positive: dict | None = None, non_negative: dict | None = None) -> None:
    """Refuse architecture sizes that cannot build a network, naming the first bad one.

    Examples
    --------
    >>> check_sizes(positive={"features": 0})
    Traceback (most recent call last):
    ...
    ValueError: features=0: must be a positive integer
    """
    for name, value in (positive or {}).items():
        if value < 1:
            raise ValueError(f"{name}={value}: must be a positive integer")
    for name, value in (non_negative or {}).items():
        if value < 0:
            raise ValueError(f"{name}={value}: must be zero or more")


def check_residual(residual: bool, in_channels: int, out_channels: int) -> None:
    """A network that adds its input to its output needs as many channels out as in."""
    if residual and in_channels != out_channels:
        raise ValueError(f"residual=True adds the input to the output, but in_channels={in_channels} "
                         f"differs from out_channels={out_channels}: make them equal or set residual=False")


def conv3(in_channels: int, out_channels: int, dims: int = 2) -> nn.Module:
    """A 3 x 3 (x 3) convolution with zero padding of one pixel: the image keeps its size, any size."""
    return _CONVS[dims](in_channels, out_channels, kernel_size=3, padding=1)


class ChannelAttention(nn.Module):
    """Squeeze-excite channel attention: each channel's mean over the image (or volume), through a small MLP,
    rescales the channel.

    The MLP (1 x 1 conv, ReLU, 1 x 1 conv, sigmoid) gives one weight in (0, 1) per channel: channels that
    respond to structure can be kept while those that mostly respond to shot and read noise are damped.

    Parameters
    ----------
    features : int
        Channels in and out.
    reduction : int
        Channel reduction of the MLP (its hidden layer has ``features // reduction`` channels, at
        least one, so narrow CPU models keep their attention).
    dims : {2, 3}
        Images ``(N, C, Y, X)`` or volumes ``(N, C, Z, Y, X)``.

    Raises
    ------
    ValueError
        ``features`` or ``reduction`` is not positive.

    Examples
    --------
    >>> ChannelAttention(16, reduction=4)(torch.rand(2, 16, 5, 7)).shape
    torch.Size([2, 16, 5, 7])
    >>> ChannelAttention(16, reduction=4, dims=3)(torch.rand(2, 16, 3, 5, 7)).shape
    torch.Size([2, 16, 3, 5, 7])
    """

    def __init__(self, features: int, reduction: int = 16, dims: int = 2):
        super().__init__()
        if features < 1 or reduction < 1:
            raise ValueError(f"features={features}, reduction={reduction}: both must be positive")
        conv = _CONVS[dims]
        hidden = max(1, features // reduction)
        self.dims = dims
        self.excite = nn.Sequential(conv(features, hidden, kernel_size=1), nn.ReLU(),
                                    conv(hidden, features, kernel_size=1), nn.Sigmoid())

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in (0, 1), shaped to broadcast over ``x``."""
        return self.excite(x.mean(dim=tuple(range(-self.dims, 0)), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class RCAB(nn.Module):
    """Residual channel attention block: conv, ReLU, conv, channel attention, residual add.

    Parameters
    ----------
    features : int
        Channels in and out.
    reduction : int
        Channel reduction of the attention.
    dims : {2, 3}
        Images or volumes.
    """

    def __init__(self, features: int = 64, reduction: int = 16, dims: int = 2):
        super().__init__()
        self.body = nn.Sequential(conv3(features, features, dims), nn.ReLU(), conv3(features, features, dims),
                                  ChannelAttention(features, reduction, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """RCABs in series and a conv, with a long skip from the group's input to its output.

    The long skip carries the smooth content past the group, so its blocks learn only a correction
    (RCAN's residual-in-residual design); it also keeps gradients alive through deep stacks.

    Parameters
    ----------
    features : int
        Channels in and out.
    blocks : int
        Number of RCABs (5 in rDL SIM and rDL LLSM).
    reduction : int
        Channel reduction of each attention.
    dims : {2, 3}
        Images or volumes.

    Raises
    ------
    ValueError
        ``blocks`` is negative.
    """

    def __init__(self, features: int = 64, blocks: int = 5, reduction: int = 16, dims: int = 2):
        super().__init__()
        if blocks < 0:
            raise ValueError(f"blocks={blocks}: must be zero or more RCABs")
        self.body = nn.Sequential(*(RCAB(features, reduction, dims) for _ in range(blocks)),
                                  conv3(features, features, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
