"""Pattern-modulated images of a known specimen with known parameters reproduce the noise-free raw frames."""

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.optics import ideal_otf
from microsr.sim.modulated import modulated_images
from microsr.synthetic.sim_raw import simulate_sim


@pytest.mark.parametrize("phases", [3, 5])
def test_truth_and_true_parameters_give_the_clean_raw_frames(phases):
    data = simulate_sim(shape=(96, 96), phases=phases, photons=30, seed=4)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=data.pixel_size_nm)
    modulated = modulated_images(data.ground_truth, data.params, data.pixel_size_nm, otf)
    assert modulated.shape == data.raw_clean.shape == (3, phases, 96, 96)
    for frame, clean in zip(modulated.reshape(-1, 96, 96), data.raw_clean.reshape(-1, 96, 96)):
        assert np.corrcoef(frame.ravel(), clean.ravel())[0, 1] > 0.99
    # A wrong phase must show: the test would pass for any blurred copy otherwise.
    shifted = data.params.orientations[0]
    wrong = type(data.params)([type(shifted)(shifted.angle_rad, shifted.spacing_nm,
                                             tuple(p + np.pi for p in shifted.phases_rad), shifted.modulation),
                               *data.params.orientations[1:]])
    off = modulated_images(data.ground_truth, wrong, data.pixel_size_nm, otf)[0, 0]
    on = modulated[0, 0]
    clean = data.raw_clean[0, 0]
    assert np.abs(off - clean).mean() > 3 * np.abs(on - clean).mean()


def test_bad_estimates():
    data = simulate_sim(shape=(64, 64), seed=1)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=data.pixel_size_nm)
    with pytest.raises(InputError, match="2×"):
        modulated_images(data.ground_truth[:-1], data.params, data.pixel_size_nm, otf)
    broken = data.ground_truth.copy()
    broken[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        modulated_images(broken, data.params, data.pixel_size_nm, otf)
