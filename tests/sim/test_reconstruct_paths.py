"""The half-plane Wiener path (the fast one) gives the full-plane path's image, set-up by set-up."""

import numpy as np
import pytest

from microsr.optics import ideal_otf
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor
from microsr.synthetic.sim_raw import simulate_sim

PIXEL_NM = 62.6


def both_paths(shape, settings, phases=3, time_points=1, pixel_nm=PIXEL_NM):
    data = simulate_sim(shape=shape, phases=phases, seed=3, pixel_size_nm=pixel_nm)
    raw = np.asarray(data.raw, np.float32).reshape(data.params.angles, phases, *shape).copy()
    raw[1, 2] *= 1.08  # one frame brighter: the equalizations have work to do
    if time_points == 2:
        raw = np.stack([raw, raw[..., ::-1, :]])
    otf = ideal_otf(1.35, 525, camera_pixel_nm=pixel_nm)
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


def test_an_undersampled_camera_shares_the_nyquist_row_as_the_full_plane_does():
    # 100 nm pixels at NA 1.35, 525 nm: the OTF (cutoff 5.14 cycles/µm) reaches past the raw Nyquist (5.0)
    fast, full, uses_half_plane = both_paths((64, 64), ReconstructionSettings(background=100.0), pixel_nm=100.0)
    assert uses_half_plane
    assert np.max(np.abs(fast - full)) <= 1e-5 * np.ptp(full)


def test_an_odd_padded_grid_takes_the_full_plane_path():
    settings = ReconstructionSettings(background=100.0, border_px=5)
    data = simulate_sim(shape=(63, 64), seed=0)
    recon = WienerReconstructor(data.params, (63, 64), PIXEL_NM, ideal_otf(1.35, 525, camera_pixel_nm=PIXEL_NM),
                                settings, device="cpu")
    assert not recon._half_plane
    assert recon(data.raw).shape == (1, 126, 128)
