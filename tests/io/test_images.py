"""Image files: data and pixel size survive a round trip; bad files give one clear error."""

import numpy as np
import pytest
from helpers import shared_otf_path

from microsr.errors import InputError, OutputExistsError
from microsr.io import check_finite, read_image, write_image


@pytest.mark.parametrize("name", ["a.tif", "a.ome.tif", "a.mrc", "a.zarr", "a.npy"])
def test_round_trip_keeps_data_and_pixel_size(tmp_path, name):
    data = np.random.default_rng(0).random((5, 24, 32)).astype(np.float32)
    write_image(tmp_path / name, data, pixel_size_nm=62.6, axes="TYX")
    image = read_image(tmp_path / name)
    np.testing.assert_array_equal(np.asarray(image.array), data)
    if not name.endswith(".npy"):  # NumPy files carry no metadata
        assert image.pixel_size_nm == pytest.approx(62.6, rel=1e-5)


def test_lazy_tiff_is_memory_mapped(tmp_path):
    data = np.arange(50 * 16 * 16, dtype=np.uint16).reshape(50, 16, 16)
    write_image(tmp_path / "stack.tif", data, pixel_size_nm=100.0)
    image = read_image(tmp_path / "stack.tif", lazy=True)
    assert isinstance(image.array, np.memmap)
    np.testing.assert_array_equal(image.array[17], data[17])


def test_existing_output_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "out.tif"
    write_image(target, np.ones((8, 8), np.float32))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_image(target, np.zeros((8, 8), np.float32))
    assert read_image(target).array.max() == 1
    write_image(target, np.zeros((8, 8), np.float32), overwrite=True)
    assert read_image(target).array.max() == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # no temporary left behind


@pytest.mark.parametrize("content,match", [(b"", "cannot read"), (b"garbage" * 10, "cannot read")])
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "broken.tif"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_image(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "absent.tif")
    with pytest.raises(InputError, match="unknown file type"):
        read_image(tmp_path / "image.png")


def test_empty_image_is_refused(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8), np.float32))
    with pytest.raises(InputError, match="no pixels"):
        read_image(tmp_path / "empty.npy")


def test_nan_is_refused():
    data = np.ones((4, 4), np.float32)
    data[1, 2] = np.nan
    with pytest.raises(InputError, match="1 NaN"):
        check_finite(data, "raw frames")


def test_reads_the_reference_mrc_layout():
    image = read_image(shared_otf_path())  # rDL-style MRC: no map ID, complex values
    assert image.array.size == 257
