"""Tests for microsr.nets.unet: any input size, exact identity through the residual path, bad configurations."""

import pytest
import torch

from microsr.nets.unet import UNet


def small(**overrides):
    torch.manual_seed(0)
    return UNet(**{"features": 4, **overrides})


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("size", [(16, 16), (13, 7), (9, 31), (1, 5)])
def test_any_input_size_returns_the_input_shape(depth, size):
    net = small(depth=depth)

    out = net(torch.rand(2, 1, *size))

    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_several_channels_without_residual():
    net = small(in_channels=9, out_channels=2, residual=False)

    assert net(torch.rand(1, 9, 11, 10)).shape == (1, 2, 11, 10)


@pytest.mark.parametrize("size", [(16, 16), (13, 7)])
def test_residual_unet_with_a_silent_last_conv_returns_its_input_exactly(size):
    net = small(in_channels=3, out_channels=3)
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
    x = torch.rand(2, 3, *size)

    out = net(x)

    assert torch.equal(out, x)


def test_padding_does_not_shift_the_image():
    # Identity convs along the skip path and a silent bottleneck pass the (positive) input straight
    # through; the output equals the input only if the crop undoes the padding exactly.
    net = small(depth=2, features=1, residual=False)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
                module.bias.zero_()
        for block in net.down:
            for conv in (block[0], block[2]):
                conv.weight[0, 0, 1, 1] = 1.0
        for conv in (net.bottleneck[0], net.bottleneck[2]):
            conv.weight.zero_()
        for block in net.up:
            skip_channel = block[0].in_channels - block[0].out_channels  # the skip follows the upsampled
            block[0].weight[0, skip_channel, 1, 1] = 1.0
            block[2].weight[0, 0, 1, 1] = 1.0
        net.conv_last.weight.fill_(1.0)
    x = torch.rand(1, 1, 13, 7)

    torch.testing.assert_close(net(x), x, rtol=0, atol=1e-6)


def test_residual_needs_matching_channels():
    with pytest.raises(ValueError, match="residual=False"):
        UNet(in_channels=2, out_channels=1, residual=True)


def test_a_fresh_residual_unet_starts_as_the_identity():
    x = torch.rand(1, 3, 20, 20)
    torch.testing.assert_close(small(in_channels=3, out_channels=3)(x), x)
