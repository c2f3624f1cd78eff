"""SFSRM on frames larger than one tile: equal tiles on the CPU, one progress bar over the tiles of every network."""

import numpy as np
import pytest
import torch
from tqdm import tqdm

import microsr.pipelines.sfsrm as sfsrm_pipeline

from microsr.models.sfsrm import build_generator, save_generator
from microsr.pipelines.sfsrm import CPU_TILE_PX, SFSRM
from microsr.tiling import balanced_tile_px


@pytest.fixture
def model(tmp_path):
    for network, scale, seed in (("sen", 1, 0), ("srn", 4, 1), ("srn_1", 4, 2)):
        torch.manual_seed(seed)
        hyper = {"features": 8, "blocks": 1, "growth": 4, "scale": scale}
        save_generator(tmp_path / f"{network}.pt", network.split("_")[0],
                       build_generator(network.split("_")[0], hyper), hyper, lr_pixel_nm=100.0, fwhm_nm=200.0)
    return SFSRM.from_pretrained(tmp_path, device="cpu")


def test_a_large_frame_shows_one_bar_over_the_tiles_of_every_network(model, capsys, monkeypatch):
    bars = []

    class RecordingBar(tqdm):
        """The bar the pipeline makes, kept to see how far it got: what it printed last depends on timing."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(sfsrm_pipeline, "tqdm", RecordingBar)
    frame = np.random.default_rng(0).poisson(20, (300, 300)).astype(np.float32)

    model.predict(frame, pixel_size_nm=100, progress=True, check_range=False)

    # 300 px > 288: two equal tiles of 174 px per axis, four per network, for the SEN and two SRNs
    assert balanced_tile_px(300, CPU_TILE_PX, 24) == 174
    assert [(bar.n, bar.total) for bar in bars] == [(12, 12)]
    assert "SFSRM tiles" in capsys.readouterr().err


def test_no_bar_unless_asked_off_a_terminal_or_for_a_frame_of_one_tile(model, capsys):
    model.predict(np.ones((300, 300), np.float32), pixel_size_nm=100, check_range=False)  # stderr is no terminal here
    model.predict(np.ones((40, 40), np.float32), pixel_size_nm=100, progress=None, check_range=False)
    assert "tile" not in capsys.readouterr().err


def test_equal_tiles_give_the_output_of_the_whole_frame(model):
    frame = np.random.default_rng(1).poisson(20, (300, 260)).astype(np.float32)
    receptive = model.srn.receptive_field_px

    tiled = model.predict(frame, pixel_size_nm=100, overlap_px=receptive, check_range=False)
    whole = model.predict(frame, pixel_size_nm=100, tile_px=512, check_range=False)

    assert np.max(np.abs(tiled.sr - whole.sr)) <= 1e-5 * np.ptp(whole.sr)
