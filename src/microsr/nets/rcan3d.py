"""RCAN3D: a 3-D residual channel attention network that denoises lattice light-sheet volumes.

In rDL LLSM the denoiser is trained without clean data: TiS-rDL pairs interleaved time points of the
noisy recording (odd volume in, even volume as the target), SiS-rDL interleaved z-slices of one
volume (with a gap-amending regularization that pulls the target back onto the input's plane). Both train this one
network; the pairing and the regularization belong to the training code, not here.

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023):
       TiS-rDL and SiS-rDL self-supervised lattice light-sheet denoising with a 3-D RCAN.
.. [2] J. Chen et al., "Three-dimensional residual channel attention networks denoise and sharpen
       fluorescence microscopy image volumes", Nat. Methods 18, 678-687 (2021).
.. [3] Y. Zhang et al., "Image super-resolution using very deep residual channel attention
       networks" (RCAN), ECCV (2018): channel attention, RCAB, residual groups with long skips.
.. [4] J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR (2018).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import nn

from microsr.nets.blocks import ResidualGroup, check_residual, check_sizes, conv3

__all__ = ["CPU_SIZE", "PAPER_SIZE", "RCAN3D"]

# Read-only so that no caller can change the defaults every other caller sees; ``dict(PAPER_SIZE)``
# gives an editable copy. Unpack into the constructor: ``RCAN3D(**PAPER_SIZE)``.
PAPER_SIZE: Mapping[str, int] = MappingProxyType({"features": 64, "groups": 3, "blocks": 5, "reduction": 16})
"""The rDL LLSM denoiser: 3 residual groups of 5 blocks at 64 features, about 3.8 million parameters."""

CPU_SIZE: Mapping[str, int] = MappingProxyType({"features": 8, "groups": 1, "blocks": 2, "reduction": 4})
"""A network small enough to train and test on a laptop CPU: about 11 thousand parameters."""


class RCAN3D(nn.Module):
    """3-D residual channel attention network: a noisy light-sheet volume in, a denoised volume of the same size out.

    A 3 x 3 x 3 conv lifts the volume to ``features`` channels; ``groups`` residual groups of
    ``blocks`` 3-D RCABs refine them; one more 3 x 3 x 3 conv closes a long skip over the whole trunk;
    a last 3 x 3 x 3 conv gives ``out_channels`` intensities. With ``residual`` (the default) the
    input volume is added to that output, so the network learns only the correction that removes
    the noise, which is small next to the intensities themselves and easier to learn. There is no
    pooling or resampling: any Z, Y, X, odd or as thin as a single slice, comes back the size it went
    in. The output is linear, not clamped: normalized intensities may dip below zero where the
    background was subtracted.

    Sizes: the rDL LLSM paper uses 3 groups x 5 blocks at 64 features with reduction 16
    (:data:`PAPER_SIZE`, 3,774,525 parameters for one channel in and out). :data:`CPU_SIZE`
    (1 group x 2 blocks at 8 features, reduction 4; 10,941 parameters) trains on a CPU in minutes and
    is what the tests use.

    Parameters
    ----------
    in_channels : int
        Channels of the input volume (1: one fluorescence channel).
    out_channels : int
        Channels of the denoised volume.
    features : int
        Channels of the trunk (64 in the paper).
    groups : int
        Number of residual groups (3 in the paper).
    blocks : int
        3-D RCABs per residual group (5 in the paper).
    reduction : int
        Channel reduction of every channel attention (16 in the paper).
    residual : bool
        Add the input volume to the output, so the network learns the noise correction; needs
        ``in_channels == out_channels``.

    Raises
    ------
    ValueError
        A channel count, ``features`` or ``reduction`` is not positive; ``groups`` or ``blocks`` is
        negative; or ``residual`` is asked for with different input and output channel counts.

    Notes
    -----
    Channel attention pools over the whole input volume, so each output voxel depends on every input
    voxel; tiled inference is a close approximation, not an exact copy, of whole-volume inference.
    Lattice light-sheet stacks are usually sampled more coarsely in Z than in Y and X; the cubic
    3 x 3 x 3 kernels still fit, since the network learns how far along each axis to look.

    Examples
    --------
    >>> import torch
    >>> net = RCAN3D(**CPU_SIZE)
    >>> net(torch.rand(2, 1, 3, 17, 12)).shape
    torch.Size([2, 1, 3, 17, 12])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: int = 64, groups: int = 3,
                 blocks: int = 5, reduction: int = 16, residual: bool = True):
        super().__init__()
        check_sizes(positive={"in_channels": in_channels, "out_channels": out_channels, "features": features,
                              "reduction": reduction}, non_negative={"groups": groups, "blocks": blocks})
        check_residual(residual, in_channels, out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.features = features
        self.groups = groups
        self.blocks = blocks
        self.reduction = reduction
        self.residual = bool(residual)

        self.conv_first = conv3(in_channels, features, dims=3)
        self.trunk = nn.Sequential(*(ResidualGroup(features, blocks, reduction, dims=3) for _ in range(groups)),
                                   conv3(features, features, dims=3))
        self.conv_last = conv3(features, out_channels, dims=3)
        # Channels-last weights and activations let oneDNN run the 3-D convolutions: with the default
        # layout PyTorch falls back to a generic kernel for few channels (8 features, CPU_SIZE: 21 ms
        # against 2.2 ms per 3x3x3 convolution of a training batch on 2 cores, a training step 2.2x
        # faster). Loading a state dict copies into these parameters and keeps their layout.
        self.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch of volumes.

        Parameters
        ----------
        x : torch.Tensor, shape (N, in_channels, Z, Y, X)
            Noisy volumes, in normalized intensity units; any Z, Y, X of at least one voxel.

        Returns
        -------
        torch.Tensor, shape (N, out_channels, Z, Y, X)
            Denoised volumes, in the normalized intensity units of the training targets.

        Raises
        ------
        ValueError
            ``x`` is not a 5-D ``(N, in_channels, Z, Y, X)`` batch or has an empty axis.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, {self.in_channels}, Z, Y, X) batch "
                             "of volumes, channels before the Z, Y, X axes")
        if 0 in x.shape:
            raise ValueError(f"x has shape {tuple(x.shape)}: every axis needs at least one element")
        x = x.contiguous(memory_format=torch.channels_last_3d)
        features = self.conv_first(x)
        output = self.conv_last(features + self.trunk(features))
        return (x + output if self.residual else output).contiguous()
