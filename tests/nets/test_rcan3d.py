"""Tests for microsr.nets.rcan3d: shapes of any volume, overfitting one volume, attention, sizes, bad inputs."""

import pytest
import torch

from microsr.nets.blocks import RCAB, ChannelAttention, ResidualGroup
from microsr.nets.rcan3d import CPU_SIZE, PAPER_SIZE, RCAN3D


@pytest.fixture(autouse=True)
def one_thread():
    # These volumes are a few hundred voxels: a second thread only adds synchronization, which costs
    # 30x (0.4 s -> 13 s for the overfitting test) when another job is keeping the other core busy.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(**overrides):
    torch.manual_seed(0)
    return RCAN3D(**{**CPU_SIZE, **overrides})


def parameter_count(net):
    return sum(parameter.numel() for parameter in net.parameters())


@pytest.mark.parametrize("size", [(8, 16, 16), (3, 7, 9), (5, 11, 6), (1, 4, 5), (2, 1, 1)])
def test_denoised_volume_has_the_shape_of_the_noisy_volume(size):
    net = small()

    out = net(torch.rand(2, 1, *size))

    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_several_channels_in_and_out_without_the_residual():
    net = small(in_channels=2, out_channels=3, residual=False)

    out = net(torch.rand(1, 2, 3, 6, 5))

    assert out.shape == (1, 3, 3, 6, 5)


def test_residual_network_with_a_silent_last_conv_returns_its_input():
    net = small()
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
    volume = torch.rand(1, 1, 3, 8, 8)

    out = net(volume)

    torch.testing.assert_close(out, volume, rtol=0, atol=0)


def test_tiny_network_overfits_one_noisy_volume_in_thirty_steps():
    z, y, x = torch.meshgrid(torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 12), torch.linspace(-1, 1, 12),
                             indexing="ij")
    clean = torch.exp(-((y - 0.2) ** 2 + (x + 0.1) ** 2) / 0.1 - z ** 2 / 0.5)[None, None]
    noise_sigma = 0.2
    noisy = clean + noise_sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    net = small()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = (net(noisy) - clean).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    # Measured 0.044 -> 0.012: the residual network starts near the noise power and must learn to
    # remove the noise to get below it.
    assert losses[-1] < 0.5 * losses[0]
    assert losses[-1] < 0.5 * noise_sigma ** 2


def test_channel_attention_weights_lie_strictly_between_zero_and_one():
    torch.manual_seed(0)
    volume = torch.randn(2, 8, 3, 7, 9) * 4
    attention = ChannelAttention(8, reduction=4, dims=3)

    weights = attention.weights(volume)
    ratio = attention(volume.abs() + 0.5) / (volume.abs() + 0.5)

    assert weights.shape == (2, 8, 1, 1, 1)
    assert (weights > 0).all() and (weights < 1).all()
    assert (ratio > 0).all() and (ratio < 1).all()


def test_attention_keeps_one_hidden_channel_when_features_are_fewer_than_the_reduction():
    attention = ChannelAttention(4, reduction=16, dims=3)

    assert attention.excite[0].out_channels == 1


def test_blocks_and_groups_keep_the_shape():
    torch.manual_seed(0)
    volume = torch.rand(1, 8, 3, 5, 7)

    assert RCAB(8, reduction=4, dims=3)(volume).shape == volume.shape
    assert ResidualGroup(8, blocks=2, reduction=4, dims=3)(volume).shape == volume.shape


def test_paper_size_has_about_3_8_million_parameters():
    # Per 3 x 3 x 3 conv at 64 features: 64 * 64 * 27 + 64 weights; per attention: 64 -> 4 -> 64.
    conv = 64 * 64 * 27 + 64
    attention = (64 * 4 + 4) + (4 * 64 + 64)
    group = 5 * (2 * conv + attention) + conv
    expected = (1 * 64 * 27 + 64) + 3 * group + conv + (64 * 27 + 1)

    count = parameter_count(RCAN3D(**PAPER_SIZE))

    assert count == expected == 3_774_525
    assert 3_000_000 < count < 5_000_000
    assert parameter_count(RCAN3D(**CPU_SIZE)) < 20_000


def test_size_presets_are_read_only():
    with pytest.raises(TypeError):
        PAPER_SIZE["features"] = 32  # type: ignore[index]


@pytest.mark.parametrize("overrides, name", [({"features": 0}, "features"), ({"reduction": 0}, "reduction"),
                                             ({"in_channels": 0, "residual": False}, "in_channels"),
                                             ({"groups": -1}, "groups"), ({"blocks": -1}, "blocks")])
def test_bad_sizes_are_refused(overrides, name):
    with pytest.raises(ValueError, match=name):
        RCAN3D(**{**CPU_SIZE, **overrides})


def test_residual_with_different_channel_counts_is_refused():
    with pytest.raises(ValueError, match="residual=False"):
        RCAN3D(in_channels=1, out_channels=2, **CPU_SIZE)


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (1, 2, 3, 8, 8), (1, 1, 1, 3, 8, 8), (1, 1, 0, 8, 8)])
def test_bad_input_shapes_are_refused(shape):
    net = small()

    with pytest.raises(ValueError, match="x has shape"):
        net(torch.rand(*shape))
