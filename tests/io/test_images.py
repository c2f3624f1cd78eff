"""Image files: data, pixel size and axes survive a round trip; bad files give one clear error."""

import numpy as np
import pytest
import tifffile
import zarr
from helpers import shared_otf_path

from microsr.errors import InputError, OutputExistsError
from microsr.io import check_finite, read_image, write_image


def stack(frames=5, dtype=np.float32):
    return np.random.default_rng(0).random((frames, 24, 32)).astype(dtype)


@pytest.mark.parametrize("name", ["a.tif", "a.tiff", "a.ome.tif", "a.ome.tiff", "a.mrc", "a.zarr", "a.npy"])
@pytest.mark.parametrize("lazy", [False, True])
def test_round_trip_keeps_data_and_pixel_size(tmp_path, name, lazy):
    data = stack()
    write_image(tmp_path / name, data, pixel_size_nm=62.6, axes="TYX")
    image = read_image(tmp_path / name, lazy=lazy)
    np.testing.assert_array_equal(np.asarray(image.array[...]), data)
    if name.endswith(".npy"):  # NumPy files carry no metadata
        assert image.pixel_size_nm is None
    else:
        assert image.pixel_size_nm == pytest.approx(62.6, rel=1e-6)
    if name.endswith((".tif", ".tiff", ".zarr")):
        assert image.axes == "TYX"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left beside it


@pytest.mark.parametrize("name", ["a.tif", "a.mrc", "a.zarr"])
def test_unknown_pixel_size_reads_as_none(tmp_path, name):
    write_image(tmp_path / name, stack(2))
    assert read_image(tmp_path / name).pixel_size_nm is None


def test_tiff_is_written_as_ome_with_nm_units(tmp_path):
    write_image(tmp_path / "plain.tif", stack(2), pixel_size_nm=31.3)
    with tifffile.TiffFile(tmp_path / "plain.tif") as tif:
        assert 'PhysicalSizeX="31.3"' in tif.ome_metadata
        assert 'PhysicalSizeXUnit="nm"' in tif.ome_metadata


@pytest.mark.parametrize("unit", ["um", "micron", "\\u00B5m"])  # tifffile writes ImageJ text as ASCII
def test_imagej_calibration_is_read_in_nm(tmp_path, unit):
    path = tmp_path / "fiji.tif"
    tifffile.imwrite(path, stack(3), imagej=True, resolution=(1 / 0.0626, 1 / 0.0626),
                     metadata={"unit": unit, "axes": "TYX"})
    assert read_image(path).pixel_size_nm == pytest.approx(62.6, rel=1e-4)


def test_ome_micrometres_are_converted(tmp_path):
    path = tmp_path / "bf.ome.tif"
    tifffile.imwrite(path, stack(2), ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.0313,
                                                         "PhysicalSizeXUnit": "µm"})
    assert read_image(path).pixel_size_nm == pytest.approx(31.3)


def test_screen_resolution_is_not_a_pixel_size(tmp_path):
    path = tmp_path / "screen.tif"
    tifffile.imwrite(path, stack(2), resolution=(72, 72), resolutionunit="INCH")
    assert read_image(path).pixel_size_nm is None


def test_lazy_tiff_is_memory_mapped(tmp_path):
    data = np.arange(50 * 16 * 16, dtype=np.uint16).reshape(50, 16, 16)
    write_image(tmp_path / "stack.tif", data, pixel_size_nm=100.0)
    image = read_image(tmp_path / "stack.tif", lazy=True)
    assert isinstance(image.array, np.memmap) and image.array.shape == (50, 16, 16)
    np.testing.assert_array_equal(image.array[17], data[17])
    assert image.pixel_size_nm == pytest.approx(100.0)


def test_lazy_compressed_tiff_is_read_per_frame(tmp_path):
    data = np.arange(50 * 16 * 16, dtype=np.uint16).reshape(50, 16, 16)
    tifffile.imwrite(tmp_path / "zlib.tif", data, compression="zlib")
    image = read_image(tmp_path / "zlib.tif", lazy=True)
    assert isinstance(image.array, zarr.Array) and image.array.shape == (50, 16, 16)
    np.testing.assert_array_equal(image.array[42], data[42])


def test_lazy_zarr_and_mrc_stay_on_disk(tmp_path):
    write_image(tmp_path / "a.zarr", stack(), pixel_size_nm=50.0)
    write_image(tmp_path / "a.mrc", stack(), pixel_size_nm=50.0)
    assert isinstance(read_image(tmp_path / "a.zarr", lazy=True).array, zarr.Array)
    assert isinstance(read_image(tmp_path / "a.mrc", lazy=True).array, np.memmap)


@pytest.mark.parametrize("name", ["out.tif", "out.zarr", "out.mrc", "out.npy"])
def test_existing_output_is_kept_without_overwrite(tmp_path, name):
    target = tmp_path / name
    write_image(target, np.ones((16, 16), np.float32))
    with pytest.raises(OutputExistsError, match=f"{name} exists: pass --overwrite"):
        write_image(target, np.zeros((16, 16), np.float32))
    assert read_image(target).array.max() == 1
    write_image(target, np.zeros((16, 16), np.float32), overwrite=True)
    assert read_image(target).array.max() == 0
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_writer(path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_writer)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "out.tif", stack(2))
    assert list(tmp_path.iterdir()) == []


def test_parent_folders_are_created_and_dtype_applied(tmp_path):
    path = write_image(tmp_path / "a" / "b" / "c.tif", stack(2), dtype=np.uint16)
    assert read_image(path).array.dtype == np.uint16


def test_mrc_refuses_more_than_three_axes(tmp_path):
    with pytest.raises(InputError, match="at most 3-D.*write .tif or .zarr"):
        write_image(tmp_path / "a.mrc", np.zeros((2, 3, 16, 16), np.float32))


def test_non_positive_pixel_size_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a positive number"):
        write_image(tmp_path / "a.tif", stack(2), pixel_size_nm=0)


@pytest.mark.parametrize("name,content", [("broken.tif", b""), ("broken.tif", b"garbage" * 10),
                                          ("broken.mrc", b"garbage" * 10), ("broken.npy", b"garbage")])
def test_unreadable_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=r"cannot read .* as (TIFF|MRC|NumPy) \(.*\): check that it is a complete"):
        read_image(tmp_path / name)


def test_unreadable_zarr(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(InputError, match="cannot read .* as Zarr"):
        read_image(tmp_path / "empty.zarr")
    zarr.open_group(tmp_path / "group.zarr", mode="w").create_array("0", shape=(4, 4), dtype="f4")
    with pytest.raises(InputError, match="is a Zarr group, not an array"):
        read_image(tmp_path / "group.zarr")


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="does not exist: check the path"):
        read_image(tmp_path / "absent.tif")
    with pytest.raises(InputError, match=r"unknown file type; use TIFF.*\.mrc.*\.zarr.*\.npy"):
        read_image(tmp_path / "image.png")


def test_empty_image_is_refused(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8), np.float32))
    with pytest.raises(InputError, match="holds no pixels"):
        read_image(tmp_path / "empty.npy")


def test_nan_and_inf_are_counted():
    data = np.ones((4, 4), np.float32)
    data[1, 2] = np.nan
    data[0, 0] = data[3, 3] = -np.inf
    with pytest.raises(InputError, match="raw frames contains 1 NaN and 2 infinite"):
        check_finite(data, "raw frames")
    check_finite(np.ones((4, 4), np.uint16), "integers")  # always finite


def test_nan_in_a_lazy_stack_is_found(tmp_path):
    data = stack(20)
    data[13, 5, 7] = np.nan
    write_image(tmp_path / "a.zarr", data)
    with pytest.raises(InputError, match="1 NaN"):
        check_finite(read_image(tmp_path / "a.zarr", lazy=True).array, "stack")


def test_reads_the_reference_mrc_layout():
    image = read_image(shared_otf_path())  # rDL-style MRC: no map ID, complex values
    assert image.array.size == 257
