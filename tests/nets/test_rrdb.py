"""Tests for microsr.nets.rrdb: output shapes, paper-size parameter count, gradients, receptive field, bad scale."""

import pytest
import torch

from microsr.nets.rrdb import RRDBNet


def small(**overrides):
    torch.manual_seed(0)
    return RRDBNet(**{"features": 16, "blocks": 2, "growth": 8, **overrides})


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("in_channels", [1, 2])
def test_output_is_scale_times_larger_for_any_input_size(scale, in_channels):
    net = small(in_channels=in_channels, scale=scale)

    out = net(torch.rand(2, in_channels, 6, 5))

    assert out.shape == (2, 1, 6 * scale, 5 * scale)
    assert torch.isfinite(out).all()


def test_paper_size_generator_has_esrgan_parameter_count():
    net = RRDBNet(in_channels=2, out_channels=1, features=64, blocks=23, growth=32, scale=4)  # the SRN

    count = sum(p.numel() for p in net.parameters())

    # ESRGAN's RGB generator has 16,697,987 parameters; one input channel fewer removes 64 * 9 weights
    # from the first conv, two output channels fewer remove 2 * (64 * 9 + 1) from the last.
    assert count == 16_697_987 - 64 * 9 - 2 * (64 * 9 + 1) == 16_696_257


def test_gradients_reach_every_parameter():
    net = small(in_channels=2, scale=2)

    net(torch.rand(1, 2, 8, 8)).square().mean().backward()

    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in net.parameters())


def test_receptive_field_formula():
    assert RRDBNet(features=8, blocks=23, growth=8, scale=4).receptive_field_px == 703
    assert small(scale=1).receptive_field_px == 2 * (2 + 30 + 0 + 2) + 1


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_tile_with_receptive_field_halo_reproduces_whole_image(scale):
    net = small(features=8, blocks=1, scale=scale).double()
    image = torch.rand(1, 1, 52, 12, dtype=torch.float64)
    halo = net.receptive_field_px // 2
    top, bottom = 5, 5 + 2 * halo + 3  # a tile whose centre rows lie at least `halo` from both tile edges

    with torch.no_grad():
        whole = net(image)
        tile = net(image[..., top:bottom, :])

    centre = slice((top + halo) * scale, (bottom - halo) * scale)
    inside = slice(halo * scale, (bottom - top - halo) * scale)
    torch.testing.assert_close(tile[..., inside, :], whole[..., centre, :], rtol=0, atol=1e-10)


def test_receptive_field_bound_is_within_two_pixels_of_the_true_reach():
    # Large weights make the influence of far pixels visible above rounding (with ESRGAN's 0.1-scaled
    # initialization it is ~1e-17 at the edge of the receptive field).
    torch.manual_seed(0)
    net = RRDBNet(features=8, blocks=1, growth=8, scale=4).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.4)
    image = torch.rand(1, 1, 48, 12, dtype=torch.float64)
    halo = net.receptive_field_px // 2 - 3

    with torch.no_grad():
        whole = net(image)
        tile = net(image[..., 10:10 + 2 * halo + 1, :])

    difference = tile[..., 4 * halo:4 * halo + 4, :] - whole[..., 4 * (10 + halo):4 * (11 + halo), :]
    assert difference.abs().max() > 1e-6 * whole.abs().max()


@pytest.mark.parametrize("scale", [0, 3, 8])
def test_unsupported_scale_is_refused(scale):
    with pytest.raises(ValueError, match="scale"):
        RRDBNet(scale=scale)


@pytest.mark.parametrize("strip_px", [0, 20, 10**6])
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_prediction_form_equals_the_training_form(scale, strip_px):
    # Large weights, so that a misplaced sub-pixel phase or a strip edge seen through padding shows far
    # above rounding; strips of 2 rows (20 px / 10 columns) put every row next to a strip edge.
    net = small(in_channels=2, scale=scale).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.3)
    net.tail_strip_px = strip_px
    image = torch.rand(2, 2, 23, 10, dtype=torch.float64)

    with torch.enable_grad():
        training_form = net(image).detach()
    with torch.no_grad():
        prediction_form = net(image)

    torch.testing.assert_close(prediction_form, training_form, rtol=0, atol=1e-12 * training_form.abs().max())


def test_prediction_form_in_float32_is_within_rounding_of_the_training_form():
    net = small(in_channels=2, scale=4)
    net.tail_strip_px = 64  # strips of 4 rows on this 16-column input
    image = torch.rand(1, 2, 40, 16)

    with torch.enable_grad():
        training_form = net(image).detach()
    with torch.no_grad():
        prediction_form = net(image)

    value_range = training_form.max() - training_form.min()
    assert (prediction_form - training_form).abs().max() <= 1e-5 * value_range
