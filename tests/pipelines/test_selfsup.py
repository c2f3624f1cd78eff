"""Self-supervised LLSM prediction: seamless 3-D tiles, SiS halves, restartable streaming, bounded memory, CLI."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import zarr
from helpers import assert_figure_panels
from torch import nn

from microsr.errors import InputError, OutputExistsError
from microsr.io import write_image
from microsr.io.volumes import WRITING_ATTRIBUTE
from microsr.models.selfsup import save_network
from microsr.nets import RCAN3D
from microsr.pipelines.selfsup import SelfSupDenoiser, partial_path, plan_tiles, predict_selfsup_stack

SHAPE = (5, 12, 40, 36)


def _stack(shape=SHAPE, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(s) for s in shape[1:]), indexing="ij")
    structure = 50 * (np.sin(x / 3.0) * np.cos(y / 4.0 + z / 2.0)) ** 2
    return (100 + rng.poisson(structure + 5, size=shape)).astype(np.float32)


def _zarr(path, array, chunks=(1, 6, 20, 36), **attrs):
    store = zarr.create_array(store=str(path), shape=array.shape, chunks=chunks, dtype="float32")
    store[:] = array
    store.attrs.update({"axes": "TZYX", "voxel_size_nm": [200.0, 92.6, 92.6], **attrs})
    return path


def _local_network(seed=0) -> RCAN3D:
    # No residual groups, so no channel attention (which pools the whole input): a purely local network
    # of 3 convolutions, receptive field 7 voxels, which tiles with overlap ≥ 7 must reproduce exactly.
    torch.manual_seed(seed)
    return RCAN3D(features=4, groups=0, blocks=0, reduction=1)


def _save(path, network, mode="tis", patch_size=(4, 16, 16)):
    # Through the real export path, as `microsr selfsup train` writes it.
    size = {"features": network.features, "groups": network.groups, "blocks": network.blocks,
            "reduction": network.reduction}
    return save_network(path, network, mode=mode, hyper=size, patch_size=patch_size,
                        normalization={"background": 100.0, "scale": 50.0})


def test_tile_plan_fits_the_budget_and_refuses_one_too_small():
    whole = plan_tiles((32, 256, 256), 8, memory_mb=10_000)
    assert whole.tile == (32, 256, 256) and whole.overlap == (0, 0, 0)
    for budget in (400, 100, 40):
        plan = plan_tiles((32, 256, 256), 8, memory_mb=budget)
        assert plan.memory_mb <= budget and plan.tile[1] < 256
        assert all(o > 0 for o, t, s in zip(plan.overlap, plan.tile, (32, 256, 256)) if t < s)
        with_tta = plan_tiles((32, 256, 256), 8, memory_mb=budget, tta=True)  # holds more per voxel
        assert with_tta.memory_mb <= budget and np.prod(with_tta.tile) <= np.prod(plan.tile)
    with pytest.raises(InputError, match=r"too small .*needs \d+ MB.*--memory-mb"):
        plan_tiles((32, 256, 256), 64, memory_mb=5)


def test_tiles_blend_into_exactly_the_whole_volume_prediction():
    denoiser = SelfSupDenoiser(_local_network(), "tis", device="cpu")
    volume = _stack((1, 24, 40, 36))[0]
    whole = denoiser.denoise_volume(volume, background=100.0, scale=50.0, memory_mb=1e4)
    # Overlaps of 6 and 8 voxels: their zero-weight outer halves (3, 4) cover the 3-voxel reach of the
    # network's zero padding, so no damaged voxel counts.
    plan = denoiser.plan(volume.shape, memory_mb=11, overlap=(6, 8, 8))
    assert all(t < s for t, s in zip(plan.tile, volume.shape))  # really tiled, along every axis
    tiled = denoiser.denoise_volume(volume, background=100.0, scale=50.0, memory_mb=11, overlap=(6, 8, 8))
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    assert whole.dtype == np.float32 and abs(float(whole.mean()) - float(volume.mean())) < 0.5 * float(volume.std())


def test_sis_denoises_all_planes_together_like_tis():
    # Measured better than denoising the odd and even halves apart (see microsr.pipelines.selfsup).
    class AlongZ(nn.Module):
        """Averages three neighbouring planes: mixes odd and even planes when given the whole volume."""

        features = 1

        def forward(self, x):
            padded = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
            return (padded[:, :, :-2] + padded[:, :, 1:-1] + padded[:, :, 2:]) / 3

    volume = np.zeros((10, 16, 16), np.float32)
    volume[0::2], volume[1::2] = 7.0, 3.0
    sis = SelfSupDenoiser(AlongZ(), "sis", device="cpu").denoise_volume(volume, background=0.0, scale=1.0)
    tis = SelfSupDenoiser(AlongZ(), "tis", device="cpu").denoise_volume(volume, background=0.0, scale=1.0)
    np.testing.assert_array_equal(sis, tis)
    assert abs(float(sis[4, 0, 0]) - 13 / 3) < 1e-5


def test_stack_prediction_is_ome_zarr_with_a_chunk_per_plane_keeps_voxel_size_and_never_overwrites(tmp_path):
    data = _stack()
    source = _zarr(tmp_path / "noisy.zarr", data)
    denoiser = SelfSupDenoiser(_local_network(), "tis", device="cpu", fingerprint="a")
    out = tmp_path / "denoised.zarr"
    summary = predict_selfsup_stack(denoiser, source, out, memory_mb=12)
    assert summary["volumes_written"] == SHAPE[0] and summary["volumes_skipped"] == 0
    result = zarr.open_array(str(out / "0"), mode="r")
    assert result.shape == SHAPE and result.chunks == (1, 1, 40, 36) and result.dtype == np.float32
    ome = dict(zarr.open_group(str(out), mode="r").attrs)["ome"]["multiscales"][0]
    assert ome["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 200.0, 92.6, 92.6]
    attrs = dict(result.attrs)
    assert attrs["voxel_size_nm"] == [200.0, 92.6, 92.6] and attrs["axes"] == "TZYX"
    assert WRITING_ATTRIBUTE not in attrs and "volumes_done" not in attrs
    background, scale = denoiser.measure(zarr.open_array(str(source), mode="r"))
    expected = denoiser.denoise_volume(data[3], background=background, scale=scale, memory_mb=1e4)
    np.testing.assert_allclose(result[3], expected, atol=1e-4)
    assert not partial_path(out).exists()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        predict_selfsup_stack(denoiser, source, out)
    assert predict_selfsup_stack(denoiser, source, out, overwrite=True)["volumes_written"] == SHAPE[0]


def test_a_killed_prediction_resumes_at_the_first_unfinished_volume(tmp_path):
    data = _stack()
    source = _zarr(tmp_path / "noisy.zarr", data)
    network = _local_network()

    class DiesOnThirdVolume(nn.Module):
        features = 4

        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 2:  # one tile per volume at this budget: volume 3 is where the run is killed
                raise KeyboardInterrupt
            return network(x)

    out = tmp_path / "denoised.zarr"
    with pytest.raises(KeyboardInterrupt):
        predict_selfsup_stack(SelfSupDenoiser(DiesOnThirdVolume(), "tis", device="cpu", fingerprint="m"),
                              source, out, memory_mb=1e4)
    assert not out.exists() and partial_path(out).exists()
    assert zarr.open_group(str(partial_path(out)), mode="r").attrs[WRITING_ATTRIBUTE] is True
    resumed = predict_selfsup_stack(SelfSupDenoiser(network, "tis", device="cpu", fingerprint="m"), source, out)
    assert resumed["volumes_skipped"] == 2 and resumed["volumes_written"] == SHAPE[0] - 2
    fresh = predict_selfsup_stack(SelfSupDenoiser(network, "tis", device="cpu", fingerprint="m"), source,
                                  tmp_path / "fresh.zarr")
    assert fresh["volumes_skipped"] == 0
    np.testing.assert_allclose(zarr.open_array(str(out / "0"))[:], zarr.open_array(str(tmp_path / "fresh.zarr" / "0"))[:],
                               atol=1e-5)
    # A leftover of another model is not resumed: its volumes would not match.
    with pytest.raises(KeyboardInterrupt):
        predict_selfsup_stack(SelfSupDenoiser(DiesOnThirdVolume(), "tis", device="cpu", fingerprint="m"),
                              source, tmp_path / "other.zarr", memory_mb=1e4)
    other = predict_selfsup_stack(SelfSupDenoiser(network, "tis", device="cpu", fingerprint="another"), source,
                                  tmp_path / "other.zarr")
    assert other["volumes_skipped"] == 0


def test_tiff_folder_input_keeps_its_pixel_size_and_bad_stacks_are_refused(tmp_path):
    data = _stack(shape=(3, 6, 24, 24))
    folder = tmp_path / "volumes"
    folder.mkdir()
    for t, volume in enumerate(data):
        write_image(folder / f"t{t}.tif", volume, pixel_size_nm=100.0, axes="ZYX")
    denoiser = SelfSupDenoiser(_local_network(), "sis", device="cpu")
    predict_selfsup_stack(denoiser, folder, tmp_path / "out.zarr")
    result = zarr.open_array(str(tmp_path / "out.zarr" / "0"), mode="r")
    assert result.chunks == (1, 1, 24, 24)  # OME-Zarr: one plane per chunk
    assert abs(result.attrs["pixel_size_nm"] - 100.0) < 1e-6
    live = _zarr(tmp_path / "live.zarr", _stack(), **{WRITING_ATTRIBUTE: True})
    with pytest.raises(InputError, match="being written"):
        predict_selfsup_stack(denoiser, live, tmp_path / "live_out.zarr")
    swapped = _zarr(tmp_path / "ztyx.zarr", np.swapaxes(_stack(), 0, 1), chunks=(6, 1, 20, 36))
    zarr.open_array(str(swapped), mode="r+").attrs["axes"] = "ZTYX"
    with pytest.raises(InputError, match=r"\(12, 5, 40, 36\).*\(T, Z, Y, X\)"):
        predict_selfsup_stack(denoiser, swapped, tmp_path / "swapped_out.zarr")
    thin = _zarr(tmp_path / "thin.zarr", _stack(shape=(2, 1, 24, 24)), chunks=(1, 1, 24, 24))
    with pytest.raises(InputError, match="at least 2 z-slices"):
        predict_selfsup_stack(denoiser, thin, tmp_path / "thin_out.zarr")
    with pytest.raises(InputError, match=r"\.zarr"):
        predict_selfsup_stack(denoiser, folder, tmp_path / "out.tif")


_MEMORY_PROBE = textwrap.dedent("""
    import json, re, sys
    import torch
    from microsr.pipelines.selfsup import SelfSupDenoiser, predict_selfsup_stack

    def status_mb(field):
        return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024

    torch.set_num_threads(1)
    model, stack, small, out, budget = sys.argv[1:6]
    denoiser = SelfSupDenoiser.from_pretrained(model, device="cpu")
    # A first, tiny prediction imports Zarr and its codecs and loads the convolution kernels: fixed
    # costs of the process, not memory that grows with the data.
    predict_selfsup_stack(denoiser, small, out + ".warmup.zarr", memory_mb=float(budget))
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak resident size (VmHWM) to the present one
    before = status_mb("VmRSS")
    summary = predict_selfsup_stack(denoiser, stack, out, memory_mb=float(budget), overlap=(2, 8, 8))
    print(json.dumps({"grew_mb": status_mb("VmHWM") - before, **summary}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak resident size from /proc")
def test_predicting_a_stack_larger_than_the_budget_stays_under_it(tmp_path):
    # Peak resident memory of a fresh process, from the start of the prediction to its end: the stack is
    # read tile by tile and written slab by slab, so the peak must not grow with the stack.
    budget_mb = 12
    shape = (64, 16, 64, 64)  # 16 MB of float32: larger than the budget
    source = _zarr(tmp_path / "big.zarr", _stack(shape), chunks=(1, 16, 64, 64))
    assert np.prod(shape) * 4 / 2**20 > budget_mb
    model = _save(tmp_path / "model.pt", RCAN3D(features=4, groups=0, blocks=0, reduction=1))
    small = _zarr(tmp_path / "small.zarr", _stack((2, 4, 16, 16)), chunks=(1, 4, 16, 16))
    script = tmp_path / "probe.py"
    script.write_text(_MEMORY_PROBE)
    # glibc's malloc raises its mmap threshold as buffers are freed and then keeps freed buffers in the
    # heap, so resident memory drifts tens of MB above what is alive, whatever the data size. A fixed
    # threshold makes the resident size follow the live memory, which is what the budget bounds.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(script), str(model), str(source), str(small),
                          str(tmp_path / "out.zarr"), str(budget_mb)], capture_output=True, text=True, timeout=300,
                         env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["volumes_written"] == shape[0] and report["tile"] != list(shape[1:])
    assert 0 < report["grew_mb"] < budget_mb, report
    assert zarr.open_array(str(tmp_path / "out.zarr" / "0"), mode="r").shape == shape


def test_cli_predicts_and_explains_bad_input(tmp_path, capsys):
    from helpers import run_cli

    source = _zarr(tmp_path / "noisy.zarr", _stack())
    model = _save(tmp_path / "model.pt", _local_network())
    out = tmp_path / "denoised.zarr"
    code, stdout, err = run_cli(["selfsup", "predict", source, "-o", out, "--model", model, "--memory-mb", "64",
                                 "--device", "cpu"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["volumes_written"] == SHAPE[0] and out.exists()
    # The JSON reports the normalization measured on the input, and each volume written is the model's
    # prediction with it.
    summary = json.loads(stdout)
    denoiser = SelfSupDenoiser.from_pretrained(model, device="cpu")
    background, scale = denoiser.measure(zarr.open_array(str(source), mode="r"))
    assert summary["background"] == pytest.approx(background) and summary["scale"] == pytest.approx(scale)
    assert summary["shape"] == list(SHAPE) and summary["volumes_skipped"] == 0
    written = zarr.open_array(str(out / "0"), mode="r")
    for t in (0, SHAPE[0] - 1):
        np.testing.assert_allclose(written[t], denoiser.denoise_volume(_stack()[t], background=background, scale=scale),
                                   atol=1e-4)
    code, _, err = run_cli(["selfsup", "predict", source, "-o", out, "--model", model], capsys)
    assert code == 2 and "--overwrite" in err and "Traceback" not in err
    code, _, err = run_cli(["selfsup", "predict", source, "-o", tmp_path / "x.zarr", "--model",
                            tmp_path / "missing.pt"], capsys)
    assert code == 2 and "missing.pt" in err and "Traceback" not in err
    not_a_model = tmp_path / "junk.pt"
    torch.save({"format": "something else"}, not_a_model)
    code, _, err = run_cli(["selfsup", "predict", source, "-o", tmp_path / "y.zarr", "--model", not_a_model], capsys)
    assert code == 2 and "not a microsr self-supervised LLSM model" in err


def test_shipped_tis_model_denoises_held_out_vesicles_and_the_demo_shows_it(tmp_path):
    from microsr.pipelines.demo import run_selfsup_demo
    from microsr.synthetic.llsm import simulate_llsm

    data = simulate_llsm(shape=(1, 16, 48, 48), specimen="vesicles", photons=8.0, seed=10**9 + 17)
    denoiser = SelfSupDenoiser.from_pretrained("llsm-vesicles-tis", device="cpu")
    volume = data.noisy[0]
    denoised = denoiser.denoise_volume(volume, background=None, scale=None)
    clean = data.clean[0] + data.offset_adu

    def psnr(image):
        return 10 * np.log10(float(np.ptp(clean)) ** 2 / float(np.mean((image - clean) ** 2)))

    assert psnr(denoised) > psnr(volume) + 5.0
    lines = run_selfsup_demo(tmp_path, shape=(2, 12, 32, 32))
    assert (tmp_path / "llsm.png").stat().st_size > 10_000 and "TiS-rDL" in lines[0]
    assert zarr.open_array(str(tmp_path / "llsm_tis.zarr" / "0"), mode="r").shape == (2, 12, 32, 32)
    # What the demo tells a user, checked: the denoised volume is several dB closer to the clean expected
    # photons than the noisy one (measured 19.87 → 31.49 dB).
    found = re.search(r"noisy PSNR (-?[\d.]+) dB, denoised (-?[\d.]+) dB", lines[0])
    assert found, lines[0]
    noisy_db, denoised_db = map(float, found.groups())
    assert denoised_db > noisy_db + 8.0
    # Noisy, TiS-rDL and clean maximum projections, then what the denoiser removed: 4 panels, none blank.
    assert_figure_panels(tmp_path / "llsm.png", 1, 4)


def test_lateral_views_are_undone_exactly_and_tta_is_rotation_equivariant():
    from microsr.pipelines.selfsup import lateral_views

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(1, 1, 2, 3 * 4, 4)[..., :4, :]
    views = lateral_views(square=True)
    assert len(views) == 8 and len(lateral_views(square=False)) == 4
    assert len({tuple(forward(x).flatten().tolist()) for forward, _ in views}) == 8  # all different
    for forward, back in views + lateral_views(square=False):
        assert torch.equal(back(forward(x)), x)
    # A random RCAN is not rotation-equivariant; averaged over the 8 views it is, tiles included.
    volume = _stack((1, 8, 24, 24))[0]
    plain = SelfSupDenoiser(_local_network(), "tis", device="cpu")
    tta = SelfSupDenoiser(_local_network(), "tis", device="cpu", tta=True)
    rotated = np.ascontiguousarray(np.rot90(volume, 1, axes=(1, 2)))
    kwargs = dict(background=100.0, scale=50.0, memory_mb=1e4)
    assert np.abs(np.rot90(plain.denoise_volume(volume, **kwargs), 1, axes=(1, 2))
                  - plain.denoise_volume(rotated, **kwargs)).max() > 1e-3
    np.testing.assert_allclose(np.rot90(tta.denoise_volume(volume, **kwargs), 1, axes=(1, 2)),
                               tta.denoise_volume(rotated, **kwargs), atol=1e-4)
    tiled = tta.denoise_volume(volume, background=100.0, scale=50.0, memory_mb=3, overlap=(2, 8, 8))
    np.testing.assert_allclose(tiled, tta.denoise_volume(volume, **kwargs), atol=1e-4)


def test_cli_tta_is_recorded_and_matches_the_python_api(tmp_path, capsys):
    from helpers import run_cli

    source = _zarr(tmp_path / "noisy.zarr", _stack())
    model = _save(tmp_path / "model.pt", _local_network())
    out = tmp_path / "denoised.zarr"
    code, stdout, err = run_cli(["selfsup", "predict", source, "-o", out, "--model", model, "--device", "cpu",
                                 "--tta"], capsys)
    assert code == 0, err
    assert zarr.open_array(str(out / "0"), mode="r").attrs["tta"] is True
    plain = SelfSupDenoiser.from_pretrained(model, device="cpu")
    expected = SelfSupDenoiser.from_pretrained(model, device="cpu", tta=True)
    background, scale = plain.measure(zarr.open_array(str(source), mode="r"))
    np.testing.assert_allclose(zarr.open_array(str(out / "0"), mode="r")[2],
                               expected.denoise_volume(_stack()[2], background=background, scale=scale), atol=1e-4)
