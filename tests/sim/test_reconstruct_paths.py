"""The half-plane Wiener path (the fast one) gives the full-plane path's image, set-up by set-up."""

import numpy as np
import pytest
from helpers import shared_otf_path

from microsr.optics import ideal_otf, load_otf_mrc
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor
from microsr.synthetic.sim_raw import simulate_sim

PIXEL_NM = 62.6


def both_paths(shape, settings, phases=3, time_points=1, pixel_nm=PIXEL_NM, otf=None):
    otf = otf or ideal_otf(1.35, 525, camera_pixel_nm=pixel_nm)
    data = simulate_sim(shape=shape, phases=phases, seed=3, pixel_size_nm=pixel_nm, otf=otf)
    raw = np.asarray(data.raw, np.float32).reshape(data.params.angles, phases, *shape).copy()
    raw[1, 2] *= 1.08  # one frame brighter: the equalizations have work to do
    if time_points == 2:
        raw = np.stack([raw, raw[..., ::-1, :]])
    recon = WienerReconstructor(data.params, shape, pixel_nm, otf, settings, device="cpu")
    fast = recon(raw).numpy()
    try:
        WienerReconstructor.HALF_PLANE = False
        full_plane = WienerReconstructor(data.params, shape, pixel_nm, otf, settings, device="cpu")
    finally:
        WienerReconstructor.HALF_PLANE = True
    assert not full_plane._half_plane
    return fast, full_plane(raw).numpy(), recon._half_plane


@pytest.mark.parametrize("shape, phases, time_points, settings", [
    ((96, 96), 3, 1, ReconstructionSettings(background=100.0)),
    ((80, 64), 5, 2, ReconstructionSettings(background=100.0)),
    ((70, 90), 3, 1, ReconstructionSettings(background=100.0, border_px=7)),
    ((64, 64), 3, 1, ReconstructionSettings(background=100.0, border_px=0)),
    ((10, 64), 3, 1, ReconstructionSettings(background=100.0, border_px=14)),  # a margin wider than a side
    ((72, 72), 3, 1, ReconstructionSettings(background=95.0, equalize_frames=False, equalize_orientations=False,
                                            clip_negative=False, apodization="cosine")),
])
def test_half_plane_path_gives_the_full_plane_image(shape, phases, time_points, settings):
    fast, full, uses_half_plane = both_paths(shape, settings, phases, time_points)
    assert uses_half_plane
    assert fast.shape == full.shape == (time_points, 2 * shape[0], 2 * shape[1])
    assert np.max(np.abs(fast - full)) <= 1e-5 * np.ptp(full)


@pytest.mark.parametrize("shape", [(64, 64), (64, 80)])
def test_an_undersampled_camera_shares_the_nyquist_row_as_the_full_plane_does(shape):
    # 80 nm pixels behind the measured 560 nm TIRF OTF: its weights reach the raw Nyquist row (6.25 cycles/µm),
    # and they are not mirror-symmetric in x there (the side bands' terms of the Wiener denominator)
    otf = load_otf_mrc(shared_otf_path("TIRF560_cam2_0_z21_OTF2d.mrc"))
    fast, full, uses_half_plane = both_paths(shape, ReconstructionSettings(background=100.0), pixel_nm=80.0, otf=otf)
    assert uses_half_plane
    assert np.max(np.abs(fast - full)) <= 1e-5 * np.ptp(full)


def test_an_odd_padded_grid_takes_the_full_plane_path():
    settings = ReconstructionSettings(background=100.0, border_px=5)
    data = simulate_sim(shape=(63, 64), seed=0)
    recon = WienerReconstructor(data.params, (63, 64), PIXEL_NM, ideal_otf(1.35, 525, camera_pixel_nm=PIXEL_NM),
                                settings, device="cpu")
    assert not recon._half_plane
    assert recon(data.raw).shape == (1, 126, 128)
