"""Streaming stacks: block writes, atomic completion, nothing half-written on failure."""

import numpy as np
import pytest
import zarr

from microsr.errors import InputError, OutputExistsError
from microsr.io import StackWriter, open_stack


@pytest.mark.parametrize("name", ["out.tif", "out.ome.tif", "out.zarr"])
def test_blocks_stream_into_one_stack(tmp_path, name):
    data = np.random.default_rng(1).random((10, 16, 20)).astype(np.float32)
    with StackWriter(tmp_path / name, data.shape, pixel_size_nm=31.3, axes="TYX") as out:
        for start in range(0, 9, 3):
            out.write(data[start:start + 3])
        out.write(data[9])  # a single frame is a block of one
    stack = open_stack(tmp_path / name)
    assert isinstance(stack.array, (np.memmap, zarr.Array))
    np.testing.assert_array_equal(np.asarray(stack.array[...]), data)
    assert stack.pixel_size_nm == pytest.approx(31.3)
    assert stack.axes == "TYX"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_failure_leaves_nothing(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with StackWriter(tmp_path / name, (4, 8, 8)) as out:
            out.write(np.zeros((2, 8, 8), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_failure_keeps_the_old_output(tmp_path, name):
    with StackWriter(tmp_path / name, (2, 8, 8)) as out:
        out.write(np.ones((2, 8, 8)))
    with pytest.raises(RuntimeError, match="boom"):
        with StackWriter(tmp_path / name, (2, 8, 8), overwrite=True) as out:
            raise RuntimeError("boom")
    assert np.asarray(open_stack(tmp_path / name).array[...]).min() == 1
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_overwrite_replaces_when_complete(tmp_path, name):
    for value in (1, 2):
        with StackWriter(tmp_path / name, (2, 8, 8), "uint16", overwrite=True) as out:
            out.write(np.full((2, 8, 8), value))
    assert np.asarray(open_stack(tmp_path / name).array[...]).max() == 2
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_incomplete_stack_is_not_published(tmp_path):
    with pytest.raises(RuntimeError, match="2 of 4"):
        with StackWriter(tmp_path / "out.tif", (4, 8, 8)) as out:
            out.write(np.zeros((2, 8, 8), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_block_that_does_not_fit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not fit"):
        with StackWriter(tmp_path / "out.zarr", (4, 8, 8)) as out:
            out.write(np.zeros((5, 8, 8), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_output_before_writing(tmp_path):
    (tmp_path / "out.tif").write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        StackWriter(tmp_path / "out.tif", (4, 8, 8))
    assert (tmp_path / "out.tif").read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_only_tiff_and_zarr_stream(tmp_path):
    with pytest.raises(InputError, match="choose a .tif or .zarr output"):
        StackWriter(tmp_path / "out.mrc", (4, 8, 8))
