"""Self-supervised rDL samples: interleaved pairs, lazy stacks, patches, background rejection and GAR."""

import functools
import itertools

import numpy as np
import pytest
import tifffile
import torch
import zarr

from microsr.errors import InputError
from microsr.io.volumes import WRITING_ATTRIBUTE, WRITING_FILE, open_volume_stack
from microsr.losses import gap_amending_loss, sis_loss, tis_loss
from microsr.models.selfsup import sis_split
from microsr.nets import RCAN3D
from microsr.nets.rcan3d import CPU_SIZE
from microsr.synthetic.llsm import simulate_llsm
from microsr.train.selfsup_data import SelfSupervisedPatches, tis_pairs

SHAPE = (4, 8, 32, 32)


@functools.lru_cache(maxsize=None)
def _noisy():
    return simulate_llsm(shape=SHAPE, photons=40.0, specimen="mixed", seed=3).noisy


def _write_zarr(path, data, **attrs):
    array = zarr.create_array(store=str(path), shape=data.shape, chunks=(1, *data.shape[1:]), dtype=data.dtype)
    array[...] = data
    array.attrs.update(attrs)
    return path


def _write_tiff_folder(folder, data):
    folder.mkdir()
    # Unpadded numbers: t10 must still come after t2.
    for t, volume in enumerate(data):
        tifffile.imwrite(folder / f"t{t}.tif", volume)
    return folder


@pytest.mark.parametrize("n_time", [2, 3, 4, 7])
def test_tis_pairs_join_odd_and_even_both_ways_never_a_frame_with_itself(n_time):
    pairs = tis_pairs(n_time)
    assert all(a != b and abs(a - b) == 1 and (a + b) % 2 == 1 for a, b in pairs)
    assert {a % 2 for a, _ in pairs} == {0, 1} and {b % 2 for _, b in pairs} == {0, 1}
    assert all((b, a) in pairs for a, b in pairs)
    assert sorted({t for pair in pairs for t in pair}) == list(range(n_time - n_time % 2))
    assert (1, 0) in pairs and (0, 1) in pairs


def test_too_few_time_points_or_slices_are_refused():
    with pytest.raises(InputError, match="at least 2 time points"):
        tis_pairs(1)
    with pytest.raises(InputError, match="at least 2 z-slices"):
        sis_split(np.zeros((1, 8, 8)))
    with pytest.raises(InputError, match="at least 2 time points"):
        SelfSupervisedPatches(np.ones((1, 8, 16, 16)), mode="tis", patch_size=(4, 8, 8))
    with pytest.raises(InputError, match="at least 2 z-slices"):
        SelfSupervisedPatches(np.ones((3, 1, 16, 16)), mode="sis", patch_size=(2, 8, 8))


def test_sis_split_puts_each_odd_slice_between_two_even_ones():
    volume = np.arange(7, dtype=np.float32)[:, None, None] * np.ones((7, 2, 2), np.float32)
    odd, even = sis_split(volume)
    np.testing.assert_array_equal(odd[:, 0, 0], [1, 3, 5])
    np.testing.assert_array_equal(even[:, 0, 0], [0, 2, 4, 6])


def test_sis_patches_keep_the_input_between_its_target_slices_in_both_directions():
    # Plane index as intensity: input slice j must lie midway between target slices j and j+1.
    planes = np.arange(12, dtype=np.float32)[None, :, None, None] * np.ones((2, 12, 8, 8), np.float32)
    patches = SelfSupervisedPatches(planes, mode="sis", patch_size=(3, 8, 8), background=0.0, scale=1.0,
                                    min_foreground_fraction=0.0, seed=1)
    parities = set()
    for source, target in itertools.islice(iter(patches), 40):
        z_in, z_target = source[0, :, 0, 0].numpy(), target[0, :, 0, 0].numpy()
        np.testing.assert_array_equal(z_in[:-1], (z_target[:-1] + z_target[1:]) / 2)
        parities.add(int(z_in[0]) % 2)
    assert parities == {0, 1}  # odd slices as input and, reversed, even ones


def _per_plane_network():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, (1, 3, 3), padding=(0, 1, 1)), torch.nn.ReLU(),
                               torch.nn.Conv3d(4, 1, (1, 3, 3), padding=(0, 1, 1)))


def test_gar_is_exactly_zero_when_neighbouring_slices_are_identical():
    torch.manual_seed(0)
    plane = torch.rand(2, 1, 1, 12, 12) * 5
    volume = plane.expand(2, 1, 8, 12, 12).contiguous()
    odd, even = volume[:, :, 1::2], volume[:, :, ::2]
    # Any network that keeps a z-constant volume constant along z sees no gap to amend.
    replicate = torch.nn.Conv3d(1, 1, 3, padding=1, padding_mode="replicate")
    for network in (replicate, _per_plane_network()):
        assert gap_amending_loss(network, odd, even, weight=0.7).item() == 0.0
        # The data term is not zero for an untrained network: GAR alone vanishes.
        assert sis_loss(network, odd, even, gar_weight=0.7).item() == sis_loss(network, odd, even,
                                                                               gar_weight=0.0).item() > 0
    # Two identical time points: no temporal gap either.
    network = RCAN3D(**CPU_SIZE)
    plain = tis_loss(network, volume, volume, gar_weight=0.0).item()
    assert tis_loss(network, volume, volume, gar_weight=0.7).item() == plain > 0


def test_gar_amends_the_target_from_the_neighbours_mean_to_the_input_plane():
    torch.manual_seed(0)
    noisy = torch.rand(2, 1, 10, 6, 6)
    odd, even = noisy[:, :, 1::2], noisy[:, :, ::2]

    def identity(x):
        return x.clone()

    # Without GAR the target of each plane is the mean of its two neighbours, which the input is not.
    plain = sis_loss(identity, odd, even, gar_weight=0.0).item()
    assert plain > 0.01
    # With w = 1 the network's own (here: identity) view of the full stack moves the target onto the
    # input's own plane, so the identity meets it exactly: the planes are aligned, both directions.
    assert sis_loss(identity, odd, even, gar_weight=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # In between, data + w·GAR = (1 − w)·plain when the identity's amended target is met: linear in w.
    assert sis_loss(identity, odd, even, gar_weight=0.4).item() == pytest.approx(0.6 * plain, rel=1e-5)
    source, target = noisy[:, :, :5], noisy[:, :, 5:]
    assert tis_loss(identity, source, target, gar_weight=1.0).item() == pytest.approx(0.0, abs=1e-6)
    mse = torch.mean((source - target) ** 2).item()
    assert tis_loss(identity, source, target, gar_weight=0.0).item() == pytest.approx(mse)


def test_gar_trains_the_network_through_its_prediction_only():
    ramp = torch.rand(1, 1, 10, 8, 8)
    odd, even = ramp[:, :, 1::2], ramp[:, :, ::2]
    for loss in (lambda n: sis_loss(n, odd, even, gar_weight=0.5), lambda n: tis_loss(n, odd, even, gar_weight=0.5)):
        network = RCAN3D(**CPU_SIZE)
        loss(network).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in network.parameters())
    with pytest.raises(ValueError, match="neighbour on both sides"):
        sis_loss(RCAN3D(**CPU_SIZE), odd[:, :, :1], even[:, :, :1])


def test_zarr_store_and_tiff_folder_give_the_same_patches_as_the_array_in_memory(tmp_path):
    data = _noisy()
    store = _write_zarr(tmp_path / "stack.zarr", data)
    folder = _write_tiff_folder(tmp_path / "volumes", data)
    lazy_zarr, lazy_tiff = open_volume_stack(store), open_volume_stack(folder)
    for lazy in (lazy_zarr, lazy_tiff):
        assert not isinstance(lazy, np.ndarray) and tuple(lazy.shape) == SHAPE
        np.testing.assert_array_equal(lazy[2, 1:5, 3:20, 7:9], data[2, 1:5, 3:20, 7:9])
    for mode in ("tis", "sis"):
        streams = [SelfSupervisedPatches(source, mode=mode, patch_size=(3, 16, 16), seed=2, seed_offset=1)
                   for source in (data, store, folder, lazy_tiff)]
        assert len({(s.background, s.scale) for s in streams}) == 1
        samples = [list(itertools.islice(iter(s), 6)) for s in streams]
        for other in samples[1:]:
            for (a_in, a_target), (b_in, b_target) in zip(samples[0], other):
                assert a_in.shape == (1, 3, 16, 16) and a_in.dtype == torch.float32
                torch.testing.assert_close(b_in, a_in, rtol=0, atol=0)
                torch.testing.assert_close(b_target, a_target, rtol=0, atol=0)


def test_patches_read_only_their_own_region():
    data = _noisy()

    class Recording:
        shape = data.shape

        def __init__(self):
            self.reads = []

        def __getitem__(self, key):
            self.reads.append(key)
            return data[key]

    stack = Recording()
    stream = SelfSupervisedPatches(stack, mode="tis", patch_size=(4, 8, 8), seed=0)
    stack.reads.clear()
    source, target = next(iter(stream))
    assert stack.reads
    for key in stack.reads:
        assert isinstance(key[0], int)
        assert [s.stop - s.start for s in key[1:]] == [4, 8, 8]
    assert not torch.equal(source, target)  # two time points, independent noise


def test_a_stack_being_written_is_refused(tmp_path):
    data = _noisy()
    store = _write_zarr(tmp_path / "live.zarr", data, **{WRITING_ATTRIBUTE: True})
    with pytest.raises(InputError, match="being written"):
        open_volume_stack(store)
    with pytest.raises(InputError, match="being written"):
        SelfSupervisedPatches(store, patch_size=(2, 8, 8))
    zarr.open_array(str(store), mode="r+").attrs[WRITING_ATTRIBUTE] = False
    assert open_volume_stack(store).shape == SHAPE
    folder = _write_tiff_folder(tmp_path / "volumes", data)
    (folder / WRITING_FILE).touch()
    with pytest.raises(InputError, match="being written"):
        open_volume_stack(folder)


def test_stacks_that_cannot_be_used_are_refused_with_their_shape(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_volume_stack(tmp_path / "missing.zarr")
    volume = _noisy()[0]
    with pytest.raises(InputError, match=r"\(8, 32, 32\).*\(T, Z, Y, X\)"):
        open_volume_stack(_write_zarr(tmp_path / "one_volume.zarr", volume))
    with pytest.raises(InputError, match=r"\(32, 32\).*\(Z, Y, X\)"):
        open_volume_stack(_write_tiff_folder(tmp_path / "planes", volume))
    transposed = _write_zarr(tmp_path / "ztyx.zarr", np.swapaxes(_noisy(), 0, 1), axes="ZTYX")
    with pytest.raises(InputError, match=r"\(8, 4, 32, 32\).*\(T, Z, Y, X\)"):
        open_volume_stack(transposed)
    with pytest.raises(InputError, match=r"\(2, 3, 4\).*\(T, Z, Y, X\)"):
        SelfSupervisedPatches(np.zeros((2, 3, 4)), patch_size=1)
    uneven = tmp_path / "uneven"
    uneven.mkdir()
    tifffile.imwrite(uneven / "t0.tif", np.zeros((4, 16, 16), np.uint16), photometric="minisblack")
    tifffile.imwrite(uneven / "t1.tif", np.zeros((4, 16, 12), np.uint16), photometric="minisblack")
    with pytest.raises(InputError, match="differ in shape"):
        open_volume_stack(uneven)
    broken = _write_tiff_folder(tmp_path / "broken", _noisy()[:2])
    (broken / "t2.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="cannot read .*t2.tif"):
        open_volume_stack(broken)


def test_background_patches_are_rejected_from_a_half_empty_stack():
    rng = np.random.default_rng(0)
    stack = 100.0 + rng.poisson(5.0, size=(2, 8, 48, 48)).astype(np.float32)
    stack[..., 24:] += 50.0  # bright right half, empty left half
    kept = SelfSupervisedPatches(stack, mode="tis", patch_size=(4, 16, 16), seed=0)
    assert kept.background == pytest.approx(105.0, abs=1.0) and kept.scale == pytest.approx(50.0, rel=0.2)
    for source, target in itertools.islice(iter(kept), 60):
        assert (source > 0.5).any() and (target > 0.5).any()
    # Without rejection, about a quarter of the patches lie in the empty half.
    unfiltered = SelfSupervisedPatches(stack, mode="tis", patch_size=(4, 16, 16), seed=0,
                                       min_foreground_fraction=0.0)
    empty = sum(not (source > 0.5).any() for source, _ in itertools.islice(iter(unfiltered), 60))
    assert empty > 5
    background_only = SelfSupervisedPatches(stack[..., :24], mode="sis", patch_size=(2, 16, 16), max_tries=7)
    with pytest.raises(InputError, match="in 7 tries"):
        next(iter(background_only))


def test_normalization_puts_background_at_zero_and_structures_near_one():
    data = simulate_llsm(shape=(2, 8, 32, 32), photons=40.0, specimen="mixed", seed=3)
    stream = SelfSupervisedPatches(data.noisy, mode="sis", patch_size=(2, 16, 16), seed=0)
    # Out-of-focus light of the many vesicles lifts the level between structures above the uniform
    # background: the estimate lies between that and the clean stack's median (both plus the offset).
    haze = float(np.median(data.clean))
    assert data.offset_adu + data.background_photons - 0.5 <= stream.background <= data.offset_adu + haze + 0.5
    bright = float(np.percentile(data.clean, 99.8)) - haze
    assert stream.scale == pytest.approx(bright, rel=0.3)


def test_workers_and_offsets_draw_different_patches_and_paths_reopen_in_workers(tmp_path):
    store = _write_zarr(tmp_path / "stack.zarr", _noisy())
    first = next(iter(SelfSupervisedPatches(store, patch_size=(2, 8, 8), seed=0)))[0]
    again = next(iter(SelfSupervisedPatches(store, patch_size=(2, 8, 8), seed=0)))[0]
    offset = next(iter(SelfSupervisedPatches(store, patch_size=(2, 8, 8), seed=0, seed_offset=1)))[0]
    assert torch.equal(first, again) and not torch.equal(first, offset)
    import pickle

    copy = pickle.loads(pickle.dumps(SelfSupervisedPatches(store, patch_size=(2, 8, 8))))
    assert copy._stack is None and next(iter(copy))[0].shape == (1, 2, 8, 8)
    with pytest.raises(InputError, match="seed"):
        SelfSupervisedPatches(store, seed=-1)
    with pytest.raises(InputError, match="unknown mode"):
        SelfSupervisedPatches(store, mode="both")
    with pytest.raises(InputError, match="does not fit"):
        SelfSupervisedPatches(store, mode="sis", patch_size=(5, 8, 8))
