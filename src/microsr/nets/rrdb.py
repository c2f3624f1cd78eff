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

__all__ = ["RRDBNet", "ResidualDenseBlock", "RRDB", "upsampled_conv_kernels"]

# ESRGAN section 3.3: scaling each residual branch by 0.2 before adding it keeps a deep trunk without
# batch normalization stable.
_RESIDUAL_SCALE = 0.2
# ESRGAN section 3.3: He initialization scaled by 0.1 makes every dense block start close to identity.
_INIT_SCALE = 0.1
_LEAKY_SLOPE = 0.2
_DENSE_CONVS = 5
_DENSE_BLOCKS_PER_RRDB = 3
#: Input rows a strip of the upsampling tail reads beyond its own on each side: the tail's reach, one input
#: pixel for the first x2 convolution, 1/2 for the second, 1/4 for each of the two last ones, rounded up.
_TAIL_HALO = 2
#: Input pixels per strip of the tail on the CPU: 32 rows of a 256-px tile, whose x4 activations (16 MiB at 32
#: features) the allocator reuses from strip to strip, where those of a whole tile (128 MiB each) are mapped
#: afresh every time (page faults) and spill every cache. Measured with the shipped SRN on a 280-px tile, one
#: thread: 2.28 s and 142 MiB at 8192 px, 2.62 s and 469 MiB without strips; 4096 or 16384 px within 5 %.
TAIL_STRIP_PX = 8192


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
        #: input pixels per strip of the layers after the trunk in :meth:`predict` on the CPU; 0: no strips
        self.tail_strip_px = TAIL_STRIP_PX

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
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, scale * H, scale * W)``.

        Without gradients (prediction) the same function is computed faster (:meth:`predict`); with
        gradients (training) in the form of ESRGAN's definition, which autograd differentiates.
        """
        # A TorchScript trace (bioimage.io export) records the definition: the strips of predict() depend on
        # the input's size, which a trace would freeze.
        if not torch.is_grad_enabled() and not torch.jit.is_tracing():
            return self.predict(x)
        features = self.conv_first(x)
        features = features + self.conv_trunk(self.trunk(features))
        for conv in self.upsample_convs:
            features = F.interpolate(features, scale_factor=2, mode="nearest")
            features = F.leaky_relu(conv(features), _LEAKY_SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), _LEAKY_SLOPE))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for prediction: the same output up to float rounding, in less time and memory.

        Three reformulations, none of which changes the function:

        - On the CPU the features are stored pixel-major (``channels_last``), the layout oneDNN's
          convolutions run fastest on (~1.5x for these few-channel 3 x 3 convolutions).
        - A 3 x 3 convolution of nearest-neighbour x2 upsampled features equals, for each of the four
          output sub-pixel positions, a 2 x 2 convolution of the features before upsampling
          (:func:`upsampled_conv_kernels`): 16 instead of 36 multiplications per input pixel, and the
          upsampled copy is never made.
        - On the CPU the part after upsampling runs in strips of :attr:`tail_strip_px` input pixels
          (with :data:`_TAIL_HALO` rows of context), so its activations, ``scale**2`` times larger than
          the input, stay small enough to be cached and reused rather than allocated afresh.
        """
        cpu = x.device.type == "cpu"
        layout = torch.channels_last if cpu else torch.contiguous_format
        # (a one-channel input is laid out alike either way, so the layout is set on the features)
        features = self.conv_first(x).contiguous(memory_format=layout)
        features = self.conv_trunk(self.trunk(features)).add_(features)
        kernels = [upsampled_conv_kernels(conv) for conv in self.upsample_convs]
        height, width = features.shape[-2:]
        rows = max(1, self.tail_strip_px // width) if cpu and self.tail_strip_px else height
        if not kernels or rows + 2 * _TAIL_HALO >= height:
            return self._tail(features, kernels, layout)
        scale = self.scale
        out = features.new_empty(features.shape[0], self.out_channels, height * scale, width * scale)
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            first, last = max(0, top - _TAIL_HALO), min(height, bottom + _TAIL_HALO)
            strip = self._tail(features[:, :, first:last], kernels, layout)
            out[:, :, top * scale:bottom * scale] = strip[:, :, (top - first) * scale:(bottom - first) * scale]
        return out

    def _tail(self, features: torch.Tensor, kernels: list, layout: torch.memory_format) -> torch.Tensor:
        """The layers after the trunk, in :meth:`predict`'s form."""
        for weight, bias in kernels:
            features = _upsampled_conv(features, weight, bias, layout)
        features = F.leaky_relu_(self.conv_hr(features), _LEAKY_SLOPE)
        return _conv3_to_few_channels(features, self.conv_last)


def upsampled_conv_kernels(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2 x 2 kernels that apply ``conv`` (3 x 3) to nearest-neighbour x2 upsampled features.

    Output pixel ``(2i + a, 2j + b)`` of ``conv(upsample(x))`` sees upsampled rows ``2i + a - 1 … 2i + a + 1``,
    which are input rows ``i - 1, i, i`` for ``a = 0`` and ``i, i, i + 1`` for ``a = 1``: the kernel's rows
    that fall on the same input row add up, and so do its columns. Phase ``(a, b)`` is then a 2 x 2
    convolution of ``x``; the four phases are stacked as ``4 * C_out`` output channels, phase-major.

    Returns
    -------
    weight : torch.Tensor
        ``(4 * C_out, C_in, 2, 2)``, for a convolution with padding 1 whose output ``(H + 1, W + 1)`` holds
        phase ``(a, b)``'s pixel ``(i, j)`` at ``(i + a, j + b)``.
    bias : torch.Tensor
        ``(4 * C_out,)``.

    Examples
    --------
    >>> conv = nn.Conv2d(3, 2, 3, padding=1)
    >>> x = torch.rand(1, 3, 5, 4)
    >>> weight, bias = upsampled_conv_kernels(conv)
    >>> phases = F.conv2d(x, weight, bias, padding=1).view(1, 2, 2, 2, 6, 5)
    >>> direct = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    >>> torch.allclose(phases[:, 1, 0, :, 1:, :-1], direct[..., 1::2, ::2], atol=1e-6)
    True
    """
    weight = conv.weight.detach()
    rows = weight.new_tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])  # (phase, 2-tap, 3-tap)
    phases = torch.einsum("ayk,oikl,bxl->aboiyx", rows, weight, rows)
    return phases.reshape(4 * weight.shape[0], weight.shape[1], 2, 2), conv.bias.detach().repeat(4)


def _upsampled_conv(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                    layout: torch.memory_format) -> torch.Tensor:
    """LeakyReLU of a 3 x 3 convolution of nearest-neighbour x2 upsampled ``features``, from the phase kernels
    of :func:`upsampled_conv_kernels`."""
    n, _, height, width = features.shape
    channels = weight.shape[0] // 4
    phases = F.leaky_relu_(F.conv2d(features, weight, bias, padding=1), _LEAKY_SLOPE)
    # Phase (a, b) of output channel c at (i, j) sits at channel (2a + b) * C + c, position (i + a, j + b): one
    # strided view puts all four phases at their places, (N, C, H, 2, W, 2) -> (N, C, 2H, 2W), copied once.
    sn, sc, sy, sx = phases.stride()
    interleaved = phases.as_strided((n, channels, height, 2, width, 2),
                                    (sn, sc, sy, sy + 2 * channels * sc, sx, sx + channels * sc),
                                    phases.storage_offset())
    out = torch.empty((n, channels, 2 * height, 2 * width), dtype=features.dtype, device=features.device,
                      memory_format=layout)
    tn, tc, ty, tx = out.stride()
    out.as_strided((n, channels, height, 2, width, 2), (tn, tc, 2 * ty, ty, 2 * tx, tx)).copy_(interleaved)
    return out


def _conv3_to_few_channels(features: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv`` (3 x 3, padding 1) to one or a few output channels as one matrix product and nine shifted sums.

    oneDNN runs a 32 -> 1 channel convolution at ~6 GFLOP/s, a twentieth of its rate with more outputs;
    the product of the features with the nine taps' weights, ``(9 * C_out, C_in) @ (C_in, pixels)``, runs at
    the matrix-product rate, and adding the nine shifted tap images costs a few passes over the output.
    """
    n, channels, height, width = features.shape
    taps = conv.weight.detach().reshape(-1, channels, 9).permute(0, 2, 1).reshape(-1, channels)  # (O * 9, C)
    out = torch.empty((n, conv.out_channels, height, width), dtype=features.dtype, device=features.device)
    for index in range(n):
        tap_images = (taps @ features[index].reshape(channels, height * width)).view(-1, 9, height, width)
        target = out[index]
        torch.add(tap_images[:, 4], conv.bias.detach()[:, None, None], out=target)
        for tap in (0, 1, 2, 3, 5, 6, 7, 8):
            dy, dx = tap // 3 - 1, tap % 3 - 1
            target[:, max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)] += \
                tap_images[:, tap, max(0, dy):height - max(0, -dy), max(0, dx):width - max(0, -dx)]
    return out
