"""PatchDiscriminator: a spectrally normalized strided conv stack giving one real-versus-fake logit per image (DFGAN).

References
----------
.. [1] C. Qiao et al., "Evaluation and development of deep neural networks for image super-resolution
       in optical microscopy", Nat. Methods 18, 194-202 (2021): DFGAN, DFCAN trained against a
       convolutional discriminator.
.. [2] P. Isola et al., "Image-to-image translation with conditional adversarial networks" (pix2pix),
       CVPR (2017), section 3.2.2: judging local patches, averaged over the image.
.. [3] T. Miyato et al., "Spectral normalization for generative adversarial networks", ICLR (2018).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from microsr.nets.blocks import check_sizes

__all__ = ["PatchDiscriminator"]

_LEAKY_SLOPE = 0.2
_STRIDED_STAGES = 4  # 32 px shrink to 2 x 2 patch logits, the fewest worth averaging
_MIN_SIZE_PX = 2 ** (_STRIDED_STAGES + 1)


def _sn_conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Module:
    # padding 1 keeps the size for 3 x 3 / stride 1 and halves it (rounding down) for 4 x 4 / stride 2
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=1))


class PatchDiscriminator(nn.Module):
    """Strided-conv discriminator: one logit per local patch, averaged into one logit per image.

    A 3 x 3 conv lifts the image to ``features`` channels; four 4 x 4 stride-2 convs halve the size
    and double the channels (up to ``8 * features``); a 3 x 3 conv gives a one-channel map of patch
    logits, each judging an 80 x 80 px neighbourhood of the input, and their mean is the image's
    logit. Averaging makes the decision independent of the image size, so training patches and whole
    fields of view are judged alike. LeakyReLU (slope 0.2) follows every conv but the last; every
    conv is spectrally normalized, which bounds the discriminator's Lipschitz constant and keeps the
    adversarial game stable without batch normalization.

    The output is a logit (before the sigmoid), for a numerically stable binary cross-entropy.

    Parameters
    ----------
    in_channels : int
        Channels of the judged images (1: a SIM image).
    features : int
        Channels after the first conv; doubled by each of the first three strided stages.

    Raises
    ------
    ValueError
        A size is not positive.

    Examples
    --------
    >>> import torch
    >>> PatchDiscriminator(features=8)(torch.zeros(2, 1, 32, 48)).shape
    torch.Size([2, 1])
    """

    def __init__(self, in_channels: int = 1, features: int = 32):
        super().__init__()
        check_sizes(positive={"in_channels": in_channels, "features": features})
        self.in_channels = in_channels
        self.features = features
        widths = [features * 2 ** min(stage, 3) for stage in range(_STRIDED_STAGES + 1)]  # f, 2f, 4f, 8f, 8f

        layers: list[nn.Module] = [_sn_conv(in_channels, widths[0]), nn.LeakyReLU(_LEAKY_SLOPE)]
        for stage in range(_STRIDED_STAGES):
            layers += [_sn_conv(widths[stage], widths[stage + 1], kernel_size=4, stride=2),
                       nn.LeakyReLU(_LEAKY_SLOPE)]
        layers.append(_sn_conv(widths[-1], 1))
        self.patch_logits = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Judge a batch ``(N, in_channels, H, W)`` with ``H, W >= 32``; return logits of shape ``(N, 1)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[-2:]) < _MIN_SIZE_PX:
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, {self.in_channels}, H, W) batch "
                             f"with H and W of at least {_MIN_SIZE_PX} px")
        return self.patch_logits(x).mean(dim=(-2, -1))
