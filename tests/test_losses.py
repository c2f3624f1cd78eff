"""Tests for microsr.losses: zero for identical images, growth with the error, known answers, weights files."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from microsr.errors import InputError
from microsr.losses import (
    SEEDED_FEATURES_SOURCE, FrequencyLoss, MSSSIML1Loss, PerceptualLoss, discriminator_loss,
    generator_adversarial_loss,
)
from microsr.losses import ms_ssim_torch


def specimen(size=64, seed=0):
    """Blobs and thin bright lines on a dim background in 0..1, as a (1, 1, size, size) float32 tensor."""
    rng = np.random.default_rng(seed)
    image = 0.5 * gaussian_filter(rng.random((size, size)), 3.0)
    for _ in range(6):
        row, col = rng.integers(0, size, 2)
        image[row, :] += 0.8 * (np.arange(size) > col)
    image = gaussian_filter(image, 0.7)
    image = (image - image.min()) / (image.max() - image.min())
    return torch.from_numpy(image.astype(np.float32))[None, None]


def noisier(image, sigmas):
    noise = torch.from_numpy(np.random.default_rng(1).standard_normal(image.shape).astype(np.float32))
    return [image + sigma * noise for sigma in sigmas]


def blurrier(image, sigmas):
    return [torch.from_numpy(gaussian_filter(image[0, 0].numpy(), sigma))[None, None] for sigma in sigmas]


@pytest.fixture(scope="module")
def perceptual():
    return PerceptualLoss()  # building the 20 M-parameter VGG takes ~1 s: share it


def losses(perceptual):
    return {"ms-ssim-l1": MSSSIML1Loss(), "frequency full": FrequencyLoss("full"),
            "frequency central75": FrequencyLoss("central75"), "perceptual": perceptual}


# --- zero for identical images, growing with the difference ---------------------------------------------------


def test_every_loss_is_zero_for_identical_images(perceptual):
    image = specimen(32)

    for name, loss in losses(perceptual).items():
        assert float(loss(image, image.clone())) == pytest.approx(0.0, abs=1e-6), name


@pytest.mark.parametrize("degrade", [noisier, blurrier], ids=["noise", "blur"])
def test_every_loss_grows_with_the_degradation(perceptual, degrade):
    image = specimen(32)
    levels = [0.02, 0.07, 0.2] if degrade is noisier else [0.5, 1.5, 4.0]
    degraded = degrade(image, levels)

    for name, loss in losses(perceptual).items():
        values = [float(loss(d, image)) for d in degraded]
        assert all(b > a for a, b in zip(values, values[1:])), (name, values)
        assert values[0] > 1e-4, (name, values)


def test_gradients_reach_the_prediction(perceptual):
    target = specimen(32)
    for name, loss in losses(perceptual).items():
        prediction = (target + 0.1).requires_grad_(True)
        loss(prediction, target).backward()
        assert prediction.grad is not None and torch.isfinite(prediction.grad).all(), name
        assert prediction.grad.abs().sum() > 0, name


# --- MS-SSIM-L1 ------------------------------------------------------------------------------------------------


def test_ms_ssim_l1_is_the_weighted_sum_of_its_two_terms():
    target = specimen(64)
    prediction = noisier(target, [0.1])[0]
    l1 = float((prediction - target).abs().mean())
    ms_ssim = float(ms_ssim_torch(prediction, target, win_size=7))

    assert float(MSSSIML1Loss()(prediction, target)) == pytest.approx(0.84 * (1 - ms_ssim) + 0.16 * l1, rel=1e-5)
    assert float(MSSSIML1Loss(alpha=0.0)(prediction, target)) == pytest.approx(l1, rel=1e-6)


def test_ms_ssim_l1_refuses_mismatched_shapes_and_bad_alpha():
    with pytest.raises(InputError, match="same shape"):
        MSSSIML1Loss()(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 16))
    with pytest.raises(InputError, match="alpha"):
        MSSSIML1Loss(alpha=1.5)


# --- frequency -------------------------------------------------------------------------------------------------


def test_frequency_loss_of_a_constant_offset_is_its_dc_term():
    # An offset c on an N x N image puts c * N (orthonormal FFT) in the zero frequency only.
    size, offset = 32, 0.25
    target = specimen(size)
    mask_count = round(0.75 * size * size)

    full = float(FrequencyLoss("full")(target + offset, target))
    central = float(FrequencyLoss("central75")(target + offset, target))

    assert full == pytest.approx(offset * size / size ** 2, rel=1e-4)
    assert central == pytest.approx(offset * size / mask_count, rel=0.01)  # ties at the disc's edge


def test_frequency_loss_sees_a_shift_that_leaves_the_amplitude_spectrum_unchanged():
    target = specimen(32)
    shifted = torch.roll(target, shifts=3, dims=-1)

    assert torch.allclose(torch.fft.fft2(shifted).abs(), torch.fft.fft2(target).abs(), atol=1e-4)
    assert float(FrequencyLoss()(shifted, target)) > 0.01


def test_central75_ignores_the_highest_frequencies():
    size = 32
    target = specimen(size)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checkerboard = 0.1 * (-1.0) ** (rows + cols)  # only the (0.5, 0.5) cycles/pixel corner frequency

    assert float(FrequencyLoss("central75")(target + checkerboard, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(FrequencyLoss("full")(target + checkerboard, target)) > 1e-3


def test_frequency_loss_refuses_an_unknown_mask():
    with pytest.raises(InputError, match="central75"):
        FrequencyLoss("central50")


# --- perceptual ------------------------------------------------------------------------------------------------


def test_seeded_features_are_deterministic_and_leave_the_global_random_stream_alone(perceptual):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    other = PerceptualLoss()
    after = torch.rand(3)

    assert torch.equal(after, expected)
    for mine, theirs in zip(perceptual.state_dict().values(), other.state_dict().values()):
        assert torch.equal(mine, theirs)
    target = specimen(32)
    prediction = blurrier(target, [1.0])[0]
    assert float(other(prediction, target)) == float(perceptual(prediction, target))
    assert other.source == SEEDED_FEATURES_SOURCE


def test_weights_file_round_trip_gives_the_same_loss(perceptual, tmp_path):
    path = tmp_path / "vgg19_features.pth"
    torch.save(perceptual.features.layers.state_dict(), path)
    target = specimen(32)
    prediction = noisier(target, [0.05])[0]

    loaded = PerceptualLoss(weights_path=path)

    assert loaded.source == f"weights file {path}"
    assert float(loaded(prediction, target)) == float(perceptual(prediction, target))


def test_whole_torchvision_style_state_dict_is_accepted(perceptual, tmp_path):
    # torchvision's vgg19().state_dict() names the conv layers "features.<index>.*" and adds a classifier.
    state = {f"features.{key}": value for key, value in perceptual.features.layers.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)

    loaded = PerceptualLoss(weights_path=path)

    assert torch.equal(loaded.features.layers[34].weight, perceptual.features.layers[34].weight)


def test_missing_corrupt_or_mismatched_weights_file_is_an_input_error(perceptual, tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 this is not a torch file" * 10)
    wrong_keys = tmp_path / "wrong_keys.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong_keys)
    wrong_shape = tmp_path / "wrong_shape.pth"
    state = dict(perceptual.features.layers.state_dict())
    state["0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, wrong_shape)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)

    for path, message in [(tmp_path / "absent.pth", "does not exist"), (corrupt, "cannot be read"),
                          (wrong_keys, "missing keys"), (wrong_shape, "0.weight has shape"),
                          (not_a_dict, "state dict of tensors")]:
        with pytest.raises(InputError, match=message):
            PerceptualLoss(weights_path=path)


def test_unknown_layer_is_an_input_error():
    with pytest.raises(InputError, match="conv6_1"):
        PerceptualLoss(layers=("conv6_1",))


def test_several_layers_are_averaged(perceptual):
    both = PerceptualLoss(layers=("relu2_2", "conv5_4"))
    target = specimen(32)
    prediction = noisier(target, [0.1])[0]

    with torch.no_grad():
        per_layer = [(p - t).abs().mean() for p, t in zip(perceptual.features(prediction, ["relu2_2", "conv5_4"]),
                                                          perceptual.features(target, ["relu2_2", "conv5_4"]))]
    assert float(both(prediction, target)) == pytest.approx(float(sum(per_layer)) / 2, rel=1e-5)


# --- adversarial -----------------------------------------------------------------------------------------------


def logits(value, size=8, batch=2):
    return torch.full((batch,), float(value)), torch.full((batch, 1, size, size), float(value))


def test_undecided_discriminator_gives_log2_per_term():
    real, fake = logits(0.0), logits(0.0)

    assert float(discriminator_loss(*real, *fake)) == pytest.approx(4 * math.log(2), rel=1e-6)
    assert float(generator_adversarial_loss(*fake)) == pytest.approx(2 * math.log(2), rel=1e-6)
    # Eq. 6 and 8 literally: the decoder terms sum over the 8 x 8 pixels.
    assert float(discriminator_loss(*real, *fake, pixel_reduction="sum")) == pytest.approx(
        2 * math.log(2) * (1 + 64), rel=1e-6)
    assert float(generator_adversarial_loss(*fake, pixel_reduction="sum")) == pytest.approx(
        math.log(2) * (1 + 64), rel=1e-6)


def test_adversarial_losses_match_the_paper_formulas():
    generator = torch.Generator().manual_seed(0)
    real_global, fake_global = torch.randn(4, generator=generator), torch.randn(4, generator=generator)
    real_pixel, fake_pixel = (torch.randn(4, 1, 8, 8, generator=generator) for _ in range(2))
    d = torch.sigmoid

    encoder = -torch.log(d(real_global)).mean() - torch.log(1 - d(fake_global)).mean()
    decoder = (-torch.log(d(real_pixel)).sum(dim=(1, 2, 3)).mean()
               - torch.log(1 - d(fake_pixel)).sum(dim=(1, 2, 3)).mean())
    adversarial = -torch.log(d(fake_global)).mean() - torch.log(d(fake_pixel)).sum(dim=(1, 2, 3)).mean()

    assert float(discriminator_loss(real_global, real_pixel, fake_global, fake_pixel, pixel_reduction="sum")) \
        == pytest.approx(float(encoder + decoder), rel=1e-5)
    assert float(generator_adversarial_loss(fake_global, fake_pixel, pixel_reduction="sum")) \
        == pytest.approx(float(adversarial), rel=1e-5)


def test_adversarial_losses_move_opposite_ways_as_fakes_look_more_real():
    real = logits(2.0)
    confidences = [-6.0, -2.0, 0.0, 2.0, 6.0]

    d_values = [float(discriminator_loss(*real, *logits(c))) for c in confidences]
    g_values = [float(generator_adversarial_loss(*logits(c))) for c in confidences]

    assert all(b > a for a, b in zip(d_values, d_values[1:]))
    assert all(b < a for a, b in zip(g_values, g_values[1:]))


def test_certain_logits_stay_finite():
    real, fake = logits(100.0), logits(-100.0)

    assert float(discriminator_loss(*real, *fake)) == pytest.approx(0.0, abs=1e-6)
    assert float(generator_adversarial_loss(*fake)) == pytest.approx(200.0, rel=1e-6)
    assert math.isfinite(float(generator_adversarial_loss(*logits(-1e4))))


def test_real_logits_do_not_change_the_generator_loss():
    # Eq. 8 is the standard (not relativistic) GAN loss: passing the real images' logits is allowed and ignored.
    fake = logits(0.5)

    assert float(generator_adversarial_loss(*fake, *logits(3.0))) == float(generator_adversarial_loss(*fake))
