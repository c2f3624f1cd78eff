"""rDL SIM training data: specimens, one normalization for noisy and clean, stream and folder samples."""

import itertools

import numpy as np
import pytest

from microsr.errors import InputError
from microsr.io import write_image
from microsr.models.rdl import MIN_SCALE, normalize_raw
from microsr.synthetic.sim_raw import SPECIMENS, simulate_sim
from microsr.train.rdl_data import FolderRawPairs, RawPairStream, sim_resolution_fwhm_nm, simulated_raw_pair, training_seed, validation_raw_pairs, validation_seed, with_estimated_modulation

SIZE = 64


def test_specimens_simulate_and_differ():
    truths = {}
    for specimen in SPECIMENS:
        data = simulate_sim(shape=(SIZE, SIZE), photons=50, seed=3, specimen=specimen)
        assert data.raw.shape == (1, 3, 3, SIZE, SIZE) and data.ground_truth.shape == (2 * SIZE, 2 * SIZE)
        assert data.settings["specimen"] == specimen and data.truth_dict()["specimen"] == specimen
        truths[specimen] = data.ground_truth.ravel()
    for a, b in itertools.combinations(SPECIMENS, 2):
        assert np.corrcoef(truths[a], truths[b])[0, 1] < 0.5, (a, b)
    # A dense network covers far more of the field than sparse filaments or pits do.
    covered = {k: float(np.mean(v > 0.1 * v.max())) for k, v in truths.items()}
    assert covered["network"] > 3 * max(covered["filaments"], covered["pits"])
    # The default is the filaments-and-dots specimen, unchanged.
    default = simulate_sim(shape=(SIZE, SIZE), photons=50, seed=3)
    np.testing.assert_array_equal(default.ground_truth.ravel(), truths["filaments"])
    with pytest.raises(InputError, match="filaments, pits, network"):
        simulate_sim(shape=(SIZE, SIZE), specimen="nuclei")


def test_normalize_raw_sets_the_widefield_and_maps_noisy_and_clean_alike():
    data = simulate_sim(shape=(SIZE, SIZE), photons=40, seed=5, specimen="network")
    background = data.camera.offset_adu + data.camera.background_photons
    noisy, scale = normalize_raw(data.raw[0], background)
    assert noisy.dtype == np.float32 and noisy.shape == (3, 3, SIZE, SIZE)
    assert np.percentile(noisy.mean(axis=(0, 1)), 99.9) == pytest.approx(1.0, abs=1e-5)
    clean = data.raw_clean / scale
    # Means of noisy and clean agree within 5 standard errors of the noise (per-pixel spread / √N).
    standard_error = (noisy - clean).std() / np.sqrt(noisy.size)
    assert abs(noisy.mean() - clean.mean()) < 5 * standard_error
    # Background alone: the floor keeps the scale positive, nothing becomes inf.
    empty, floor = normalize_raw(np.full((3, 3, 32, 32), 100.0), 100.0)
    assert floor == MIN_SCALE and np.isfinite(empty).all()
    with pytest.raises(InputError, match="background"):
        normalize_raw(data.raw[0], float("nan"))
    with pytest.raises(InputError, match="set of frames"):
        normalize_raw(data.raw[0, 0, 0], background)


@pytest.mark.parametrize("specimen", SPECIMENS)
def test_pair_shares_units_between_noisy_clean_and_modulated(specimen):
    pair = simulated_raw_pair(specimen=specimen, photons=30, shape=(SIZE, SIZE), seed=7)
    for frames in (pair.noisy, pair.clean, pair.modulated):
        assert frames.shape == (3, 3, SIZE, SIZE) and frames.dtype == np.float32
    assert pair.sim_target.shape == (2 * SIZE, 2 * SIZE) and pair.sim_target.max() == pytest.approx(1.0)
    assert pair.specimen == specimen and pair.photons == 30
    assert abs(pair.noisy.mean() - pair.clean.mean()) < 0.05 * pair.clean.mean()
    # Same pattern, same units: the modulated images of the truth are the clean frames. The outer 4 px
    # lack the light of structures just outside the field (as for any SR estimate), so they are left out.
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    for modulated, clean in zip(pair.modulated[inner].reshape(9, -1), pair.clean[inner].reshape(9, -1)):
        assert np.corrcoef(modulated, clean)[0, 1] > 0.99
        assert modulated.mean() == pytest.approx(clean.mean(), rel=0.05)


def test_modulated_images_from_an_sr_network_follow_its_estimate(tmp_path):
    import torch

    from microsr.nets import DFCAN
    from microsr.optics import ideal_otf
    from microsr.models.rdl import save_network

    hyper = {"in_channels": 9, "features": 4, "groups": 1, "blocks_per_group": 1, "reduction": 2}
    torch.manual_seed(0)
    network = DFCAN(**hyper)
    path = save_network(tmp_path / "sr.pt", "sr", network, hyper, {})
    pair = simulated_raw_pair(photons=30, shape=(SIZE, SIZE), seed=7)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=62.6)

    estimated = with_estimated_modulation(pair, path, otf)

    assert estimated.modulated.shape == pair.modulated.shape
    # An untrained network's estimate is not the truth, so its modulated images are not the clean frames,
    # but they are gain-matched to the noisy frames' units.
    assert not np.allclose(estimated.modulated, pair.modulated, rtol=0.1)
    assert estimated.modulated.mean() == pytest.approx(pair.noisy.mean(), rel=0.3)
    np.testing.assert_array_equal(estimated.noisy, pair.noisy)
    stream = RawPairStream(patch_px=32, field_px=SIZE, task="denoise", sr_model=path)
    modulated, noisy, clean = next(iter(stream))
    assert modulated.shape == noisy.shape == clean.shape == (3, 32, 32)


def test_sim_target_resolution():
    # Widefield Airy FWHM 0.51 λ/NA = 198 nm, shrunk by 1 + 0.92 for a pattern at 92 % of the cut-off.
    assert sim_resolution_fwhm_nm(1.35, 525.0, 0.92) == pytest.approx(103.3, abs=0.1)


@pytest.mark.parametrize("phases", [3, 5])
def test_stream_and_validation_shapes(phases):
    sr = next(iter(RawPairStream(patch_px=32, field_px=SIZE, phases=phases, task="sr")))
    assert [tuple(t.shape) for t in sr] == [(3 * phases, 32, 32), (1, 64, 64)]
    denoise = next(iter(RawPairStream(patch_px=32, field_px=SIZE, phases=phases, task="denoise")))
    assert [tuple(t.shape) for t in denoise] == [(phases, 32, 32)] * 3
    batch = validation_raw_pairs(2, patch_px=32, field_px=SIZE, phases=phases, task="denoise")
    assert [tuple(t.shape) for t in batch] == [(2, phases, 32, 32)] * 3


def test_validation_seeds_are_never_training_seeds():
    training = {training_seed(seed, offset, i) for seed in range(3) for offset in range(3) for i in range(500)}
    validation = {validation_seed(seed, i) for seed in range(3) for i in range(500)}
    # By construction: training seeds are even, validation seeds odd.
    assert all(s % 2 == 0 for s in training) and all(s % 2 == 1 for s in validation)
    assert not training & validation
    stream = RawPairStream(patch_px=32, field_px=SIZE, seed=2, seed_offset=1)
    assert stream.seed_for(5) == training_seed(2, 1, 5)
    with pytest.raises(InputError, match="validation"):
        RawPairStream(seed=-1)
    with pytest.raises(InputError, match="field_px"):
        RawPairStream(patch_px=96, field_px=SIZE)


def write_pair(folder, name, seed, noisy_subfolder="train", time_points=1, specimen="network"):
    """Low photons (20) in ``noisy_subfolder``, high photons (500) of the same field in its ``_gt`` partner."""
    for subfolder, photons, times in ((noisy_subfolder, 20, time_points), (f"{noisy_subfolder}_gt", 500, 1)):
        data = simulate_sim(shape=(SIZE, SIZE), photons=photons, seed=seed, specimen=specimen, time_points=times)
        write_image(folder / subfolder / name, data.raw.reshape(-1, SIZE, SIZE), pixel_size_nm=62.6)


def test_folder_round_trip(tmp_path):
    write_pair(tmp_path, "cell1.tif", seed=0, time_points=2)
    write_pair(tmp_path, "cell2.mrc", seed=1)
    write_pair(tmp_path, "cell3.tif", seed=2, noisy_subfolder="val")
    reader = FolderRawPairs(tmp_path, task="sr", patch_px=32)
    assert [pair.specimen for pair in reader.pairs] == ["cell1.tif[0]", "cell1.tif[1]", "cell2.mrc[0]"]
    pair = reader.pairs[0]
    assert pair.noisy.shape == pair.clean.shape == pair.modulated.shape == (3, 3, SIZE, SIZE)
    # The high-SNR stack is brought to the low-SNR one's exposure before the shared scale.
    assert pair.clean.mean() == pytest.approx(pair.noisy.mean(), rel=1e-4)
    assert pair.sim_target.shape == (2 * SIZE, 2 * SIZE) and pair.sim_target.max() == pytest.approx(1.0)
    noisy, target = next(iter(reader))
    assert tuple(noisy.shape) == (9, 32, 32) and tuple(target.shape) == (1, 64, 64)
    modulated, noisy, clean = next(iter(FolderRawPairs(tmp_path, task="denoise", patch_px=32)))
    assert tuple(modulated.shape) == tuple(noisy.shape) == tuple(clean.shape) == (3, 32, 32)
    batch = validation_raw_pairs(2, patch_px=32, task="sr", folder=tmp_path)
    assert [tuple(t.shape) for t in batch] == [(2, 9, 32, 32), (2, 1, 64, 64)]


def test_folder_errors_name_the_problem(tmp_path):
    write_pair(tmp_path, "cell1.tif", seed=0)
    gt_dir = tmp_path / "train_gt"
    (gt_dir / "cell1.tif").rename(tmp_path / "cell1.tif")
    gt_dir.rmdir()
    with pytest.raises(InputError, match="train_gt is missing"):
        FolderRawPairs(tmp_path)
    gt_dir.mkdir()
    with pytest.raises(InputError, match="cell1.tif is in .*train but has no partner in .*train_gt"):
        FolderRawPairs(tmp_path)
    (tmp_path / "cell1.tif").rename(gt_dir / "cell1.tif")
    for subfolder in ("train", "train_gt"):
        write_image(tmp_path / subfolder / "bad.tif", np.zeros((8, SIZE, SIZE), np.float32), pixel_size_nm=62.6)
    with pytest.raises(InputError, match="bad.tif: raw stack has 8 frames, not a multiple"):
        FolderRawPairs(tmp_path)


def test_failed_estimation_names_the_file_and_suggests_a_prior(tmp_path):
    # One sparse filament in 64 × 64 pixels: too little structure for an estimate to be trusted.
    write_pair(tmp_path, "sparse.tif", seed=2, specimen="filaments")
    with pytest.raises(InputError, match="sparse.tif.*PatternPrior"):
        FolderRawPairs(tmp_path)


def test_domain_randomization_draws_the_instrument_of_each_field_from_its_ranges():
    from microsr.train.rdl_data import Randomization, simulated_raw_pair, _simulated_pair

    randomization = Randomization(otfs=("ideal", "TIRF488", "TIRF647"), pattern_fraction=(0.9, 1.0),
                                  modulation=(0.3, 0.9), defects=True)
    drawn = [randomization.draw(np.random.default_rng(seed), 1.35, 525.0, 62.6) for seed in range(30)]
    sources = {d["otf"].source.split()[0] + (" " + d["otf"].source.split()[1] if "measured" in d["otf"].source else "")
               for d in drawn}
    assert {"ideal", "measured TIRF488_cam1_0_z30_OTF2d.mrc", "measured TIRF647_cam2_0_z21_OTF2d.mrc"} == sources
    assert all(0.9 <= d["pattern_fraction"] <= 1.0 and all(0.3 <= m <= 0.9 for m in d["modulation"]) for d in drawn)
    assert all(d["defects"] is not None for d in drawn) and len({d["defects"] for d in drawn}) == 30
    pair = _simulated_pair(specimen="network", photons=20, shape=(64, 64), angles=3, phases=3, pixel_size_nm=62.6,
                           na=1.35, wavelength_nm=525.0, seed=4, instrument=drawn[0])
    assert pair.otf is drawn[0]["otf"] and [o.modulation for o in pair.params.orientations] == list(drawn[0]["modulation"])
    assert np.isfinite(pair.noisy).all() and pair.noisy.max() < 50  # stuck pixels repaired before normalizing
    plain = simulated_raw_pair(specimen="network", photons=20, shape=(64, 64), seed=4)
    assert plain.otf is None and plain.params.orientations[0].modulation == 0.8


def test_samples_relabel_the_phases_the_same_way_in_every_array():
    import dataclasses

    from microsr.train.rdl_data import crop_sample

    pair = simulated_raw_pair(specimen="pits", photons=20, shape=(32, 32), seed=0)
    label = np.arange(3, dtype=np.float32)[None, :, None, None] * np.ones((3, 3, 32, 32), np.float32)
    labelled = dataclasses.replace(pair, modulated=label.copy(), noisy=label + 10, clean=label + 20)
    rng = np.random.default_rng(0)
    orders = set()
    for _ in range(40):
        modulated, noisy, clean = (t.numpy()[:, 0, 0] for t in crop_sample(labelled, "denoise", 16, rng))
        assert np.array_equal(noisy - 10, modulated) and np.array_equal(clean - 20, modulated)
        orders.add(tuple(modulated.astype(int)))
    assert orders == set(itertools.permutations(range(3)))  # 3 starts × 2 directions: every order of 3 phases
    noisy, _ = crop_sample(labelled, "sr", 16, rng)
    assert sorted(noisy.numpy()[:3, 0, 0] - 10) == [0, 1, 2]  # orientation by orientation, phases kept together
