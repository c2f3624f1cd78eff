"""RDLDenoiser: the rDL SIM denoiser, cleaning the raw frames of one orientation guided by pattern-modulated images.

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023):
       two-branch denoiser, an MPE branch for the pattern-modulated images and a PFE branch for the
       noisy raw frames, merged and decoded into denoised raw frames.
.. [2] Y. Zhang et al., "Image super-resolution using very deep residual channel attention
       networks" (RCAN), ECCV (2018): channel attention, RCAB, residual groups with long skips.
.. [3] J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR (2018).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from microsr.nets.blocks import RCAB, ChannelAttention, ResidualGroup, check_sizes, conv3

__all__ = ["RCAB", "ChannelAttention", "RDLDenoiser", "ResidualGroup"]  # the blocks: re-exported from nets.blocks


class _Branch(nn.Module):
    """Lift frames to features with a 3 x 3 conv, refine them by residual groups under one more long skip."""

    def __init__(self, in_channels: int, features: int, groups: int, blocks: int, reduction: int):
        super().__init__()
        self.conv_first = conv3(in_channels, features)
        self.groups = nn.Sequential(*(ResidualGroup(features, blocks, reduction) for _ in range(groups)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv_first(x)
        return features + self.groups(features)


class RDLDenoiser(nn.Module):
    """rDL SIM denoiser: noisy raw frames of one orientation and their pattern-modulated images in, clean frames out.

    Two branches read the two inputs. The MPE branch reads the pattern-modulated images: the first SR
    estimate multiplied by each phase's illumination pattern, blurred by the OTF and sampled on the
    camera's grid, i.e. what a noise-free camera should have recorded. They carry the known pattern
    (wave vector, phase, modulation) into the network, so it need not guess the stripes from noise.
    The PFE branch reads the noisy raw frames themselves, which hold the specimen's detail that the SR
    estimate may lack or invent. Each branch is a 3 x 3 conv to ``features`` channels and residual
    groups of RCABs under a long skip (2 groups for MPE, 5 for PFE). The branch features are added,
    refined by ``merged_groups`` more residual groups under a long skip, and decoded by a head
    (3 x 3 conv, ReLU, channel attention, 3 x 3 conv) into ``phases`` denoised frames. The head is
    linear, not clamped: the frames are in normalized intensity units and may legitimately dip below
    zero where the background was subtracted. The network is fully convolutional and accepts any
    height and width.

    Parameters
    ----------
    phases : int
        Phase-shifted frames per orientation (3 usual, 5 allowed); channels of both inputs and the
        output.
    features : int
        Channels of both branches and the merged trunk (64 in the paper).
    mpe_groups : int
        Residual groups of the MPE (pattern-modulated) branch (2 in the paper).
    pfe_groups : int
        Residual groups of the PFE (noisy raw) branch (5 in the paper).
    merged_groups : int
        Residual groups after the branches are added (5 in the paper).
    blocks : int
        RCABs per residual group (5 in the paper).
    reduction : int
        Channel reduction of every channel attention (16 in the paper).

    Raises
    ------
    ValueError
        A size is not positive, or a count of groups or blocks is negative.

    Notes
    -----
    Channel attention pools over the whole input, so each output pixel depends on every input pixel;
    tiled inference is a close approximation, not an exact copy, of whole-image inference.

    Examples
    --------
    >>> import torch
    >>> net = RDLDenoiser(phases=3, features=16, mpe_groups=1, pfe_groups=1, merged_groups=1, blocks=2)
    >>> modulated, noisy = torch.rand(2, 3, 12, 9), torch.rand(2, 3, 12, 9)
    >>> net(modulated, noisy).shape
    torch.Size([2, 3, 12, 9])
    """

    def __init__(self, phases: int = 3, features: int = 64, mpe_groups: int = 2, pfe_groups: int = 5,
                 merged_groups: int = 5, blocks: int = 5, reduction: int = 16):
        super().__init__()
        check_sizes(positive={"phases": phases, "features": features, "reduction": reduction},
                    non_negative={"mpe_groups": mpe_groups, "pfe_groups": pfe_groups,
                                  "merged_groups": merged_groups, "blocks": blocks})
        self.phases = phases
        self.features = features
        self.mpe_groups = mpe_groups
        self.pfe_groups = pfe_groups
        self.merged_groups = merged_groups
        self.blocks = blocks
        self.reduction = reduction

        self.mpe_branch = _Branch(phases, features, mpe_groups, blocks, reduction)
        self.pfe_branch = _Branch(phases, features, pfe_groups, blocks, reduction)
        self.merged = nn.Sequential(
            *(ResidualGroup(features, blocks, reduction) for _ in range(merged_groups)))
        self.conv_head = conv3(features, features)
        self.head_attention = ChannelAttention(features, reduction)
        self.conv_last = conv3(features, phases)

    def forward(self, modulated: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """Denoise one orientation.

        Parameters
        ----------
        modulated : torch.Tensor, shape (N, phases, H, W)
            Pattern-modulated images of the SR estimate, one per phase, at the raw frames' pixel size.
        noisy : torch.Tensor, shape (N, phases, H, W)
            Noisy raw frames of the same orientation, in the same phase order.

        Returns
        -------
        torch.Tensor, shape (N, phases, H, W)
            Denoised raw frames, in the normalized intensity units of the training targets.
        """
        expected = f"(N, {self.phases}, H, W)"
        for name, frames in (("modulated", modulated), ("noisy", noisy)):
            if frames.ndim != 4 or frames.shape[1] != self.phases:
                raise ValueError(f"{name} has shape {tuple(frames.shape)}: give an {expected} batch, "
                                 "the phases of one orientation stacked as channels")
        if modulated.shape != noisy.shape:
            raise ValueError(f"modulated {tuple(modulated.shape)} and noisy {tuple(noisy.shape)} differ: "
                             "give the pattern-modulated images and raw frames of the same field of view")
        merged = self.mpe_branch(modulated) + self.pfe_branch(noisy)
        merged = merged + self.merged(merged)
        head = self.head_attention(F.relu(self.conv_head(merged)))
        return self.conv_last(head)
