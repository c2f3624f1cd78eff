"""Many files in one command: inputs expanded, run on Dask workers, a corrupt file reported while the rest go on."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from microsr.errors import InputError
from microsr.io import read_image, write_image
from microsr.pipelines.batch import BatchItem, expand_inputs, plan_jobs, run_batch


def _widefield_folder(folder, count=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        write_image(folder / f"cell{index}.tif", rng.random((32, 32)).astype(np.float32) * 100, pixel_size_nm=100.0,
                    axes="YX")
    return folder


def test_files_globs_and_folders_become_jobs_with_one_output_each(tmp_path):
    folder = _widefield_folder(tmp_path / "in")
    (folder / "notes.txt").write_text("not an image")
    assert [p.name for p in expand_inputs([folder])] == ["cell0.tif", "cell1.tif", "cell2.tif"]
    assert [p.name for p in expand_inputs([str(folder / "cell[01].tif")])] == ["cell0.tif", "cell1.tif"]
    jobs, single = plan_jobs([folder / "cell0.tif"], tmp_path / "sr.tif")
    assert single and jobs == [(folder / "cell0.tif", tmp_path / "sr.tif")]
    jobs, single = plan_jobs([folder], tmp_path / "out")
    assert not single and [target.name for _, target in jobs] == ["cell0.tif", "cell1.tif", "cell2.tif"]
    with pytest.raises(InputError, match="given twice"):
        expand_inputs([folder, folder / "cell0.tif"])
    with pytest.raises(InputError, match="looks like a file name"):
        plan_jobs([folder], tmp_path / "out.tif")
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.mrc")])


def _fails_on_odd(source, target, *, overwrite=False, progress=False):
    if "1" in Path(source).name:
        raise InputError(f"{source} is odd")
    Path(target).write_text("done")
    return {"output": str(target)}


def test_a_failing_file_is_reported_and_the_rest_go_on_and_a_rerun_skips_what_is_done(tmp_path):
    jobs = [(tmp_path / f"in{i}", tmp_path / f"out{i}") for i in range(3)]
    items = run_batch(_fails_on_odd, jobs, show_progress=False)
    assert [item.status for item in items] == ["done", "failed", "done"]
    assert items[1].error == f"{tmp_path / 'in1'} is odd"
    again = run_batch(_fails_on_odd, jobs, show_progress=False)
    assert [item.status for item in again] == ["skipped", "failed", "skipped"]
    assert isinstance(again[0], BatchItem)


@pytest.mark.slow
def test_four_files_on_two_dask_workers_one_of_them_corrupt(tmp_path, capsys):
    folder = _widefield_folder(tmp_path / "in")
    (folder / "broken.tif").write_bytes(b"II*\x00 this is no TIFF")
    code, out, err = run_cli(["sfsrm", "predict", folder, "-o", tmp_path / "out", "--workers", "2"], capsys)
    items = {Path(item["input"]).name: item for item in json.loads(out.strip().splitlines()[-1])}
    assert code == 1, err
    assert {name: item["status"] for name, item in items.items()} == {
        "broken.tif": "failed", "cell0.tif": "done", "cell1.tif": "done", "cell2.tif": "done"}
    assert "broken.tif" in items["broken.tif"]["error"] and "4 files: 3 done, 0 skipped, 1 failed" in err
    for index in range(3):  # each output as a single run writes it: SR image, pixel size, disagreement map beside
        sr = read_image(tmp_path / "out" / f"cell{index}.tif")
        assert sr.array.shape == (128, 128) and sr.pixel_size_nm == pytest.approx(25.0)
        assert (tmp_path / "out" / f"cell{index}_disagreement.tif").is_file()
    assert items["cell0.tif"]["summary"]["input_check"] is not None
    code, out, err = run_cli(["sfsrm", "predict", folder, "-o", tmp_path / "out"], capsys)  # a rerun, here
    assert code == 1 and "4 files: 0 done, 3 skipped, 1 failed" in err


def test_several_stacks_are_denoised_into_a_folder_and_a_folder_of_volumes_is_one_stack(tmp_path, capsys):
    import zarr

    from microsr.synthetic.llsm import simulate_llsm

    names = []
    for seed in (1, 2):
        data = simulate_llsm(shape=(2, 8, 32, 32), specimen="mixed", photons=30, seed=seed).noisy.astype(np.float32)
        array = zarr.create_array(store=str(tmp_path / f"cell{seed}.zarr"), shape=data.shape, chunks=(1, 8, 32, 32),
                                  dtype="float32")
        array[...] = data
        names.append(f"cell{seed}.zarr")
    code, out, err = run_cli(["selfsup", "predict", str(tmp_path / "cell*.zarr"), "-o", tmp_path / "denoised",
                              "--model", "llsm-vesicles-tis"], capsys)
    assert code == 0, err
    items = json.loads(out.strip().splitlines()[-1])
    assert [Path(item["output"]).name for item in items] == names and {i["status"] for i in items} == {"done"}
    assert read_image(tmp_path / "denoised" / "cell1.zarr").array.shape == (2, 8, 32, 32)
    jobs, single = plan_jobs([tmp_path / "cell1.zarr"], tmp_path / "one.zarr", folders_are_inputs=True)
    assert single


@pytest.mark.slow
def test_one_movie_is_predicted_frame_parallel_on_two_workers_as_in_order(tmp_path, capsys):
    from microsr.io import image_notes

    movie = np.random.default_rng(5).random((4, 32, 40)).astype(np.float32) * 100
    write_image(tmp_path / "movie.tif", movie, pixel_size_nm=100.0, axes="TYX")
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "movie.tif", "-o", tmp_path / "parallel.zarr",
                              "--workers", "2"], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["frames"] == 4
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "movie.tif", "-o", tmp_path / "in_order.zarr"], capsys)
    assert code == 0, err
    parallel, in_order = read_image(tmp_path / "parallel.zarr"), read_image(tmp_path / "in_order.zarr")
    assert parallel.pixel_size_nm == in_order.pixel_size_nm == pytest.approx(25.0)
    np.testing.assert_allclose(parallel.array, in_order.array, atol=1e-5 * np.ptp(in_order.array))
    assert "input_check" in image_notes(tmp_path / "parallel.zarr")
    code, out, err = run_cli(["sfsrm", "predict", tmp_path / "movie.tif", "-o", tmp_path / "p.tif", "--workers", "2"],
                             capsys)
    assert code == 2 and "*.zarr" in err and not (tmp_path / "p.tif").exists()
