"""Tests for microsr.nets.dfcan and .patch_discriminator: shapes, output range, finite attention gradient, training."""

import pytest
import torch
from torch.nn import functional as F

from microsr.nets.dfcan import DFCAN, FourierChannelAttention
from microsr.nets.patch_discriminator import PatchDiscriminator


def small(**overrides):
    torch.manual_seed(0)
    return DFCAN(**{"features": 8, "groups": 2, "blocks_per_group": 2, "reduction": 4, **overrides})


def test_nine_raw_frames_become_one_image_on_a_twice_finer_grid():
    net = small()

    out = net(torch.rand(2, 9, 37, 41))

    assert out.shape == (2, 1, 74, 82)


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize("size", [(7, 5), (16, 13)])
def test_any_input_size_is_enlarged_by_scale(scale, size):
    net = small(in_channels=15, scale=scale)

    out = net(torch.rand(1, 15, *size))

    assert out.shape == (1, 1, size[0] * scale, size[1] * scale)


def test_sigmoid_output_lies_strictly_between_zero_and_one():
    net = small(sigmoid_output=True)
    with torch.no_grad():  # a large bias before the sigmoid still leaves float32 room below 1
        net.conv_last.bias.fill_(8.0)

    out = net(torch.randn(2, 9, 11, 9) * 3)

    assert torch.isfinite(out).all()
    assert (out > 0).all() and (out < 1).all()


def test_fourier_channel_attention_keeps_the_shape():
    attention = FourierChannelAttention(8, reduction=4, gamma=0.8)

    out = attention(torch.rand(3, 8, 9, 14))

    assert out.shape == (3, 8, 9, 14)


@pytest.mark.parametrize("gamma", [0.1, 0.8])
def test_fourier_channel_attention_gradient_is_finite_on_a_blank_input(gamma):
    # |FFT|**gamma has an infinite slope at a zero spectrum; the epsilon must keep the gradient finite.
    torch.manual_seed(0)
    attention = FourierChannelAttention(8, reduction=4, gamma=gamma)
    x = torch.zeros(1, 8, 6, 6, requires_grad=True)

    attention(x).sum().backward()

    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attention.parameters())


def test_fourier_channel_attention_weights_each_channel_by_a_factor_in_zero_one():
    attention = FourierChannelAttention(8, reduction=4)
    x = torch.rand(2, 8, 10, 10) + 0.5

    ratio = attention(x) / x

    per_channel = ratio.flatten(2)
    assert torch.allclose(per_channel, per_channel[..., :1].expand_as(per_channel), rtol=0, atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()


@pytest.fixture
def one_thread():
    # A 12-px batch is far too small to split between threads: waking a second one costs more than the
    # work, and on a 2-core machine busy with another job each parallel op then waits milliseconds
    # for a time slice (30 steps took 22 s with 2 threads, 0.4 s with 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_training_on_one_pair_reduces_the_error():
    net = small()
    generator = torch.Generator().manual_seed(1)
    raw = torch.rand(1, 9, 12, 12, generator=generator)
    target = torch.rand(1, 1, 24, 24, generator=generator)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    with torch.no_grad():
        initial = F.mse_loss(net(raw), target).item()

    for _ in range(30):
        optimizer.zero_grad()
        loss = F.mse_loss(net(raw), target)
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        final = F.mse_loss(net(raw), target).item()
    assert final < 0.8 * initial


def test_invalid_sizes_are_refused():
    with pytest.raises(ValueError, match="scale"):
        DFCAN(scale=0)
    with pytest.raises(ValueError, match="gamma"):
        FourierChannelAttention(8, gamma=0.0)
    with pytest.raises(ValueError, match=r"\(N, 9, H, W\)"):
        small()(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("size", [(32, 32), (50, 50), (33, 70)])
def test_patch_discriminator_gives_one_logit_per_image(size):
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(features=4)

    logits = discriminator(torch.rand(3, 1, *size))

    assert logits.shape == (3, 1)
    assert torch.isfinite(logits).all()


def test_patch_discriminator_refuses_images_smaller_than_32_px():
    with pytest.raises(ValueError, match="32"):
        PatchDiscriminator(features=4)(torch.rand(1, 1, 31, 64))
