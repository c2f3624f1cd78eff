"""Tests for microsr.nets.rdl_denoiser: shapes for 3 and 5 phases, dependence on both inputs, attention, bad inputs."""

import pytest
import torch

from microsr.nets.rdl_denoiser import RCAB, ChannelAttention, RDLDenoiser, ResidualGroup


def small(**overrides):
    torch.manual_seed(0)
    return RDLDenoiser(**{"features": 8, "mpe_groups": 1, "pfe_groups": 1, "merged_groups": 1, "blocks": 1,
                          "reduction": 4, **overrides})


@pytest.mark.parametrize("phases", [3, 5])
@pytest.mark.parametrize("size", [(16, 16), (13, 7)])
def test_denoised_frames_have_the_shape_of_the_raw_frames(phases, size):
    net = small(phases=phases)

    out = net(torch.rand(2, phases, *size), torch.rand(2, phases, *size))

    assert out.shape == (2, phases, *size)
    assert torch.isfinite(out).all()


def test_paper_sizes_build_and_run_on_a_tiny_field():
    net = RDLDenoiser(features=16)  # the paper's depth: 2 + 5 + 5 groups of 5 RCABs, narrower

    out = net(torch.rand(1, 3, 5, 6), torch.rand(1, 3, 5, 6))

    assert out.shape == (1, 3, 5, 6)


def test_output_depends_on_the_pattern_modulated_images_and_on_the_noisy_frames():
    net = small()
    generator = torch.Generator().manual_seed(2)
    modulated, noisy = torch.rand(1, 3, 12, 12, generator=generator), torch.rand(1, 3, 12, 12, generator=generator)

    with torch.no_grad():
        reference = net(modulated, noisy)
        other_modulated = net(modulated + 0.5 * torch.rand(1, 3, 12, 12, generator=generator), noisy)
        other_noisy = net(modulated, noisy + 0.5 * torch.rand(1, 3, 12, 12, generator=generator))

    assert (other_modulated - reference).abs().max() > 1e-4
    assert (other_noisy - reference).abs().max() > 1e-4


def test_output_is_not_clamped():
    net = small()
    with torch.no_grad():
        net.conv_last.bias.fill_(-3.0)

    out = net(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))

    assert (out < 0).any()


def test_gradients_reach_both_branches():
    net = small()

    net(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).square().mean().backward()

    for branch in (net.mpe_branch, net.pfe_branch):
        assert branch.conv_first.weight.grad.abs().sum() > 0


def test_blocks_keep_the_shape_and_channel_attention_scales_by_less_than_one():
    torch.manual_seed(0)
    x = torch.rand(2, 8, 7, 9) + 0.5

    ratio = ChannelAttention(8, reduction=4)(x) / x

    assert RCAB(8, reduction=4)(x).shape == x.shape
    assert ResidualGroup(8, blocks=2, reduction=4)(x).shape == x.shape
    assert (ratio > 0).all() and (ratio < 1).all()


def test_mismatched_inputs_are_refused():
    net = small()
    with pytest.raises(ValueError, match="differ"):
        net(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.rand(1, 5, 8, 8), torch.rand(1, 5, 8, 8))
    with pytest.raises(ValueError, match="phases"):
        RDLDenoiser(phases=0)
