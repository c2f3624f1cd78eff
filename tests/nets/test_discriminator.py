"""Tests for microsr.nets.discriminator: output shapes, spectral norm, gradients, odd sizes."""

import pytest
import torch

from microsr.nets.discriminator import UNetDiscriminator


def small(**overrides):
    torch.manual_seed(0)
    return UNetDiscriminator(**{"features": 8, **overrides})


@pytest.mark.parametrize(("in_channels", "size"), [(1, (8, 8)), (2, (32, 48))])
def test_global_logit_per_image_and_pixel_logits_of_input_size(in_channels, size):
    net = small(in_channels=in_channels)

    global_logits, pixel_logits = net(torch.rand(3, in_channels, *size))

    assert global_logits.shape == (3,)
    assert pixel_logits.shape == (3, 1, *size)
    assert torch.isfinite(global_logits).all() and torch.isfinite(pixel_logits).all()


def test_size_not_a_multiple_of_8_is_padded_and_cropped_back():
    net = small()

    global_logits, pixel_logits = net(torch.rand(2, 1, 30, 37))

    assert global_logits.shape == (2,)
    assert pixel_logits.shape == (2, 1, 30, 37)


def test_every_weight_is_spectrally_normalized():
    net = small()
    net.train()
    for _ in range(2):  # one power iteration per training forward, after 15 at construction
        net(torch.rand(1, 1, 16, 16))
    net.eval()

    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 12
    for layer in layers:
        assert hasattr(layer, "parametrizations") and "weight" in layer.parametrizations
        largest = float(torch.linalg.matrix_norm(layer.weight.detach().flatten(start_dim=1), ord=2))
        assert largest == pytest.approx(1.0, abs=0.05)


def test_gradients_reach_input_and_every_parameter():
    net = small()
    image = torch.rand(2, 1, 16, 16, requires_grad=True)

    global_logits, pixel_logits = net(image)
    (global_logits.sum() + pixel_logits.sum()).backward()

    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_paper_size_discriminator_builds():
    net = UNetDiscriminator(in_channels=1, features=64)

    assert sum(p.numel() for p in net.parameters()) == 6_737_538


def test_batch_that_is_not_4d_is_refused():
    with pytest.raises(ValueError, match="N, C, H, W"):
        small()(torch.rand(1, 16, 16))
