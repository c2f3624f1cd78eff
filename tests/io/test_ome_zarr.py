"""Zarr outputs are OME-Zarr (NGFF 0.5): ome-zarr's own reader finds the pyramid, the axes and the scale of every axis."""

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from microsr.io import StackWriter, image_notes, read_image, write_image
from microsr.io.ome_zarr import bin_plane, pyramid_shapes


def _ome_reader(path):
    node = list(Reader(parse_url(str(path)))())[0]
    return node.metadata, node.data


def test_a_streamed_stack_is_an_ome_zarr_pyramid_with_scale_on_every_axis(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.random((3, 1100, 1030)).astype(np.float32)
    with StackWriter(tmp_path / "sr.zarr", frames.shape, pixel_size_nm=25.0, axes="TYX", notes={"input_check": []}) as out:
        for frame in frames:  # streamed frame by frame, as the predictors do
            out.write(frame)
    metadata, levels = _ome_reader(tmp_path / "sr.zarr")
    assert [tuple(level.shape) for level in levels] == [(3, 1100, 1030), (3, 550, 515), (3, 275, 257)]
    assert [(a["name"], a.get("type"), a.get("unit")) for a in metadata["axes"]] == [
        ("t", "time", None), ("y", "space", "nanometer"), ("x", "space", "nanometer")]
    scales = [t[0]["scale"] for t in metadata["coordinateTransformations"]]
    assert scales == [[1.0, 25.0, 25.0], [1.0, 50.0, 50.0], [1.0, 100.0, 100.0]]
    assert metadata["coordinateTransformations"][1][1]["translation"] == [0.0, 12.5, 12.5]  # 2 × 2 bin centres
    np.testing.assert_allclose(np.asarray(levels[1][2]), bin_plane(frames[2], 1), rtol=1e-6)
    assert zarr.open_array(str(tmp_path / "sr.zarr" / "0"), mode="r").chunks == (1, 1100, 1030)  # a plane: one read
    image = read_image(tmp_path / "sr.zarr")
    assert image.pixel_size_nm == 25.0 and image.axes == "TYX"
    np.testing.assert_array_equal(image.array, frames)
    assert image_notes(tmp_path / "sr.zarr") == {"input_check": []}


def test_a_volume_keeps_its_z_step_and_small_images_need_no_pyramid(tmp_path):
    volume = np.arange(4 * 40 * 30, dtype=np.uint16).reshape(4, 40, 30)
    write_image(tmp_path / "v.zarr", volume, pixel_size_nm=104.0, axes="ZYX", z_step_nm=200.0)
    metadata, levels = _ome_reader(tmp_path / "v.zarr")
    assert len(levels) == 1 and metadata["coordinateTransformations"][0][0]["scale"] == [200.0, 104.0, 104.0]
    assert [a.get("unit") for a in metadata["axes"]] == ["nanometer"] * 3
    image = read_image(tmp_path / "v.zarr")
    assert (image.pixel_size_nm, image.z_step_nm, image.axes) == (104.0, 200.0, "ZYX")
    np.testing.assert_array_equal(image.array, volume)


def test_an_ome_zarr_in_micrometers_and_a_plain_zarr_of_before_are_both_read(tmp_path):
    write_image(tmp_path / "um.zarr", np.ones((8, 8), np.float32), pixel_size_nm=65.0, axes="YX")
    group = zarr.open_group(str(tmp_path / "um.zarr"), mode="r+")
    ome = dict(group.attrs["ome"])
    for axis in ome["multiscales"][0]["axes"]:
        axis["unit"] = "micrometer"
    ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = [0.065, 0.065]
    group.attrs["ome"] = ome
    assert read_image(tmp_path / "um.zarr").pixel_size_nm == pytest.approx(65.0)
    plain = zarr.create_array(store=str(tmp_path / "old.zarr"), shape=(2, 8, 8), dtype="float32")
    plain.attrs.update({"pixel_size_nm": 30.0, "axes": "TYX"})
    assert (read_image(tmp_path / "old.zarr").pixel_size_nm, read_image(tmp_path / "old.zarr").axes) == (30.0, "TYX")


def test_the_pyramid_stops_at_512_px():
    assert pyramid_shapes((4096, 4096))[-1] == (512, 512) and len(pyramid_shapes((4096, 4096))) == 4


def test_ome_tiff_sizes_are_read_on_every_axis_and_rectangular_pixels_are_said(tmp_path):
    import tifffile

    from microsr.io.images import PixelSizeWarning, pixel_size_of

    volume = np.zeros((3, 16, 16), np.float32)
    tifffile.imwrite(tmp_path / "v.ome.tif", volume, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "PhysicalSizeZ": 0.3})
    image = read_image(tmp_path / "v.ome.tif")
    assert (image.pixel_size_nm, image.z_step_nm) == (pytest.approx(100.0), pytest.approx(300.0))
    tifffile.imwrite(tmp_path / "r.ome.tif", volume[0], ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 65.0, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 80.0, "PhysicalSizeYUnit": "nm"})
    image = read_image(tmp_path / "r.ome.tif")
    with pytest.warns(PixelSizeWarning, match="rectangular pixels"):
        assert pixel_size_of(image, None, "r.ome.tif") == pytest.approx(65.0)
