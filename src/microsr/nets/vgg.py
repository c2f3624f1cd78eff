"""VGG19Features: the VGG-19 convolutional layers up to conv5_4, returning the feature maps a perceptual loss compares.

References
----------
.. [1] K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image recognition",
       ICLR (2015), table 1, configuration E.
.. [2] X. Wang et al., "ESRGAN: Enhanced super-resolution generative adversarial networks",
       ECCV Workshops (2018), section 3.4: features before activation (conv5_4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import skip_init

__all__ = ["VGG19Features", "VGG19_LAYER_NAMES"]

# Configuration E of Simonyan & Zisserman: channels of each 3 x 3 conv, "M" a 2 x 2 max-pool.
_CONFIGURATION = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                  512, 512, 512, 512)
# ImageNet statistics (RGB): weights trained on ImageNet expect inputs standardized by them.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> tuple[str, ...]:
    names, block, conv = [], 1, 1
    for item in _CONFIGURATION:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


#: Names of the outputs of ``VGG19Features.layers``, in order: ``conv1_1``, ``relu1_1``, ... ``relu5_4``.
VGG19_LAYER_NAMES = _layer_names()


class VGG19Features(nn.Module):
    """VGG-19 (configuration E) convolutional part up to ``relu5_4``, on 1-channel images replicated to RGB.

    ``layers`` is an ``nn.Sequential`` laid out exactly like ``torchvision.models.vgg19().features``
    (index 0 = conv1_1, ..., 34 = conv5_4, 35 = relu5_4), so a state dict of torchvision's
    ``features`` loads into it unchanged. A grayscale input is repeated to three channels (SFSRM feeds
    the VGG "duplicated grayscale images") and standardized with the ImageNet mean and standard
    deviation, which is what ImageNet-trained weights expect; the input is assumed to be in 0-1.

    The constructor draws the weights from a fixed generator (seed 0, He-normal, zero bias), so two
    instances are identical without touching the global random stream; load trained weights with
    ``load_state_dict``.

    Examples
    --------
    >>> import torch
    >>> net = VGG19Features()
    >>> [tuple(f.shape) for f in net(torch.zeros(1, 1, 32, 32), ["relu1_2", "conv5_4"])]
    [(1, 64, 32, 32), (1, 512, 2, 2)]
    """

    def __init__(self):
        super().__init__()
        modules, in_channels = [], 3
        for item in _CONFIGURATION:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                # skip_init: the default initialization would draw from (and shift) the caller's global
                # random stream, e.g. a seeded training run, and is overwritten below anyway.
                modules += [skip_init(nn.Conv2d, in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = item
        self.layers = nn.Sequential(*modules)
        # Not persistent: the state dict holds only conv weights, matching torchvision's layout.
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.reset_parameters(seed=0)

    def reset_parameters(self, seed: int = 0) -> None:
        """Draw He-normal weights (fan-in, so activations keep their scale through 16 layers) from ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.layers:
                if isinstance(module, nn.Conv2d):
                    fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                    weight = torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                    module.weight.copy_(weight)
                    module.bias.zero_()

    def forward(self, x: torch.Tensor, layers: Sequence[str] = ("conv5_4",)) -> list[torch.Tensor]:
        """Feature maps after the named layers (see :data:`VGG19_LAYER_NAMES`), in the order asked.

        Parameters
        ----------
        x : torch.Tensor, shape (N, 1, H, W) or (N, 3, H, W)
            Images in 0-1; one channel is replicated to three.
        layers : sequence of str
            Names such as ``"conv5_4"`` (before its ReLU) or ``"relu2_2"``; the network runs only as
            deep as the deepest one.
        """
        unknown = [name for name in layers if name not in VGG19_LAYER_NAMES]
        if unknown or not layers:
            raise ValueError(f"layers={list(layers)}: choose one or more of {', '.join(VGG19_LAYER_NAMES)}")
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"x has shape {tuple(x.shape)}: give an (N, 1, H, W) or (N, 3, H, W) batch")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        wanted = {VGG19_LAYER_NAMES.index(name): name for name in layers}
        found = {}
        for index, module in enumerate(self.layers[:max(wanted) + 1]):
            x = module(x)
            if index in wanted:
                found[wanted[index]] = x
        return [found[name] for name in layers]
