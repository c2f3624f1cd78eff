"""UNet: the CARE-style U-Net that denoises images without any knowledge of the optics (rDL's baseline).

References
----------
.. [1] M. Weigert et al., "Content-aware image restoration: pushing the limits of fluorescence
       microscopy" (CARE), Nat. Methods 15, 1090-1097 (2018): U-Net of depth 2, two 3 x 3 convs per
       level, residual prediction of the restored image.
.. [2] O. Ronneberger, P. Fischer, T. Brox, "U-Net: convolutional networks for biomedical image
       segmentation", MICCAI (2015).
.. [3] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023): CARE
       denoising of raw SIM frames as the baseline without the illumination pattern.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from microsr.nets.blocks import check_residual, check_sizes

__all__ = ["UNet"]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU(),
                         nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """CARE U-Net: two 3 x 3 convs per level, 2 x max-pool down, 2 x nearest upsampling and skip concatenation up.

    Level ``l`` (0 at full resolution) has ``features * 2**l`` channels; ``depth`` max-pools lead to a
    bottleneck of ``features * 2**depth`` channels. On the way up each level upsamples by nearest
    neighbour (no checkerboard artifacts, unlike transposed convolution), concatenates the encoder
    features of the same size, which carry the fine detail the bottleneck has lost, and applies two
    3 x 3 convs. A 1 x 1 conv gives the output. With ``residual=True`` the input is added to it, so
    the network learns only the correction to the noisy image, as in CARE; this needs as many output
    channels as input channels.

    Parameters
    ----------
    in_channels : int
        Channels of the input (1: one frame; 9: the raw frames of a 2D SIM acquisition).
    out_channels : int
        Channels of the output.
    features : int
        Channels of the first level (32 in CARE); doubled at each level down.
    depth : int
        Number of 2 x down-sampling steps (2 in CARE).
    residual : bool
        Add the input to the output (requires ``in_channels == out_channels``).

    Raises
    ------
    ValueError
        A size is not positive, ``depth`` is negative, or ``residual`` is asked for with different
        numbers of input and output channels.

    Notes
    -----
    Any height and width are accepted: the input is padded by reflection (by edge replication where it
    is too small to reflect) to the next multiple of ``2**depth``, split between the two sides, and the
    output is cropped back to the input size.

    Examples
    --------
    >>> import torch
    >>> net = UNet(features=8, depth=2)
    >>> net(torch.rand(2, 1, 13, 30)).shape
    torch.Size([2, 1, 13, 30])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: int = 32, depth: int = 2,
                 residual: bool = True):
        super().__init__()
        check_sizes(positive={"in_channels": in_channels, "out_channels": out_channels, "features": features},
                    non_negative={"depth": depth})
        check_residual(residual, in_channels, out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.depth = depth
        self.residual = residual
        widths = [features * 2 ** level for level in range(depth + 1)]

        self.down = nn.ModuleList(
            _double_conv(in_channels if level == 0 else widths[level - 1], widths[level])
            for level in range(depth))
        self.bottleneck = _double_conv(in_channels if depth == 0 else widths[depth - 1], widths[depth])
        self.up = nn.ModuleList(
            _double_conv(widths[level + 1] + widths[level], widths[level]) for level in reversed(range(depth)))
        self.conv_last = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        if residual:
            # Start as the identity: a random last layer adds noise of the input's own size to every output,
            # and the network spent its first ~1000 iterations only unlearning it (measured: a CARE U-Net on
            # raw SIM frames stayed at the noisy input's PSNR, 14.9 dB, after 600 iterations).
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, {self.in_channels}, H, W) batch")
        height, width = x.shape[-2:]
        multiple = 2 ** self.depth
        pad_height, pad_width = -height % multiple, -width % multiple
        top, left = pad_height // 2, pad_width // 2
        padding = (left, pad_width - left, top, pad_height - top)
        # Reflection continues the image's texture into the margin, which biases the border pixels
        # less than zeros would; it needs more rows than the padding, so tiny inputs are replicated.
        mode = "reflect" if pad_height < height and pad_width < width else "replicate"
        features = F.pad(x, padding, mode=mode) if pad_height or pad_width else x

        skips = []
        for block in self.down:
            features = block(features)
            skips.append(features)
            features = F.max_pool2d(features, kernel_size=2)
        features = self.bottleneck(features)
        for block, skip in zip(self.up, reversed(skips)):
            features = F.interpolate(features, scale_factor=2, mode="nearest")
            features = block(torch.cat((features, skip), dim=1))

        out = self.conv_last(features)[..., top:top + height, left:left + width]
        return out + x if self.residual else out
