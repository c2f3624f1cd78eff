"""Sample data made by microsr's simulator on the spot (nothing is downloaded)."""

from __future__ import annotations

from microsr.napari_plugin._layers import image_layer
from microsr.synthetic import simulate_sim
from microsr.synthetic.widefield import widefield_pair


def sim_sample() -> list[tuple]:
    """Raw TIRF-SIM frames (3 orientations × 3 phases, 128², 62.6 nm) of simulated filaments."""
    data = simulate_sim(shape=(128, 128), photons=50, seed=1)
    raw = data.raw[0].reshape(-1, *data.raw.shape[-2:])
    return [image_layer(raw, data.pixel_size_nm, "raw SIM frames (simulated)",
                        metadata={"background": float(data.camera.offset_adu + data.camera.background_photons)})]


def widefield_sample() -> list[tuple]:
    """A widefield image (100 nm pixels) of a simulated ER network with haze, and its in-focus truth (25 nm)."""
    pair = widefield_pair("er", lr_patch_px=96, fwhm_nm=260.0, snr=15.0, haze=0.8, seed=3)
    return [image_layer(pair.noisy, 100.0, "widefield (simulated)"),
            image_layer(pair.target, 25.0, "in-focus truth (simulated)", visible=False)]
