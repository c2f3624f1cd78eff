"""Streaming stacks: block writes, atomic completion, nothing half-written on failure."""

import numpy as np
import pytest

from microsr.errors import OutputExistsError
from microsr.io import StackWriter, open_stack


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_blocks_stream_into_one_stack(tmp_path, name):
    data = np.random.default_rng(1).random((10, 16, 20)).astype(np.float32)
    with StackWriter(tmp_path / name, data.shape, pixel_size_nm=31.3, axes="TYX") as out:
        for start in range(0, 10, 3):
            out.write(data[start:start + 3])
    stack = open_stack(tmp_path / name)
    np.testing.assert_array_equal(np.asarray(stack.array[...]), data)
    assert stack.pixel_size_nm == pytest.approx(31.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_failure_leaves_nothing(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with StackWriter(tmp_path / name, (4, 8, 8)) as out:
            out.write(np.zeros((2, 8, 8), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_stack_is_not_published(tmp_path):
    with pytest.raises(RuntimeError, match="2 of 4"):
        with StackWriter(tmp_path / "out.tif", (4, 8, 8)) as out:
            out.write(np.zeros((2, 8, 8), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_output_before_writing(tmp_path):
    (tmp_path / "out.tif").write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        StackWriter(tmp_path / "out.tif", (4, 8, 8))
    assert (tmp_path / "out.tif").read_bytes() == b"precious"
