"""Pixel sizes from files are checked: an MRC header in µm is recognised and said, an implausible value refused."""

import mrcfile
import numpy as np
import pytest
import tifffile
from helpers import run_cli, simulated

from microsr.errors import InputError
from microsr.io import read_image
from microsr.io.images import PixelSizeWarning, mrc_pixel_size_nm, pixel_size_of


def _mrc(path, data, voxel):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, np.float32))
        mrc.voxel_size = voxel
    return path


@pytest.mark.parametrize("header, expected, rule", [(626.0, 62.6, None), (0.0626, 62.6, "µm"), (10.0, 1.0, None),
                                                    (0.0, None, None), (1e-7, None, "fits no unit")])
def test_mrc_header_rule(header, expected, rule):
    value, note = mrc_pixel_size_nm(header)
    assert value == (pytest.approx(expected) if expected else None)
    assert (note is None) if rule is None else (rule in note)


def test_an_mrc_in_micrometres_is_read_right_and_said_on_stderr(tmp_path, capsys):
    data = simulated(seed=1, size=128)
    raw = _mrc(tmp_path / "raw.mrc", data.raw[0].reshape(9, 128, 128), 0.0626)  # as the rDL authors' files
    image = read_image(raw)
    assert image.pixel_size_nm == pytest.approx(62.6) and "read as µm" in image.pixel_size_note
    with pytest.warns(PixelSizeWarning, match="0.0626 .* read as µm .*62.6 nm"):
        assert pixel_size_of(image, None, raw, camera=True) == pytest.approx(62.6)
    assert pixel_size_of(image, 65.0, raw, camera=True) == 65.0  # the flag wins, silently
    code, out, err = run_cli(["sim", "estimate", raw, "--json", tmp_path / "p.json"], capsys)
    assert code == 0, err
    assert err.count("read as µm (62.6 nm)") == 1 and "Traceback" not in err and "UserWarning" not in err


def test_values_no_rule_explains_are_refused_naming_the_flag(tmp_path, capsys):
    image = read_image(_mrc(tmp_path / "tiny.mrc", np.ones((9, 64, 64)), 1e-7))
    assert image.pixel_size_nm is None
    with pytest.raises(InputError, match="fits no unit .*--pixel-size-nm"):
        pixel_size_of(image, None, "tiny.mrc")
    ome = tmp_path / "wrong_unit.ome.tif"  # 62.6 written where the OME unit (µm) expects 0.0626
    tifffile.imwrite(ome, np.ones((9, 64, 64), np.uint16), ome=True,
                     metadata={"axes": "QYX", "PhysicalSizeX": 62.6, "PhysicalSizeY": 62.6})
    code, _, err = run_cli(["sim", "estimate", ome, "--json", tmp_path / "p.json"], capsys)
    assert code == 2 and "62600 nm" in err and "--pixel-size-nm" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("pixel", ["5000", "0.006", "6.26"])
def test_a_camera_pixel_size_no_camera_has_is_one_line_exit_2(pixel, tmp_path, capsys):
    data = simulated(seed=1, size=128)
    raw = tmp_path / "raw.tif"
    tifffile.imwrite(raw, data.raw[0].reshape(9, 128, 128).astype(np.uint16))
    code, _, err = run_cli(["sim", "reconstruct", raw, "-o", tmp_path / "o.tif", "--pixel-size-nm", pixel], capsys)
    assert code == 2 and "not a camera pixel" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("factor, says", [(1.6, "far inside it"), (2.0, "far inside it"), (0.5, "beyond the detection")])
def test_a_pixel_size_wrong_by_a_factor_is_warned_about(factor, says, tmp_path, capsys):
    data = simulated(seed=1, size=128)
    raw = tmp_path / "raw.tif"
    tifffile.imwrite(raw, data.raw[0].reshape(9, 128, 128).astype(np.uint16))
    code, out, err = run_cli(["sim", "estimate", raw, "--json", tmp_path / "p.json", "--background", "102",
                              "--pixel-size-nm", str(62.6 * factor)], capsys)
    assert code == 0 and says in err and "check --pixel-size-nm" in err


@pytest.mark.parametrize("suffix", [".ome.tif", ".zarr"])
def test_a_light_sheet_z_step_survives_a_round_trip(suffix, tmp_path):
    from microsr.io import write_image

    volume = np.random.default_rng(0).random((6, 16, 20)).astype(np.float32)
    path = write_image(tmp_path / f"volume{suffix}", volume, pixel_size_nm=92.6, z_step_nm=300.0, axes="ZYX")
    image = read_image(path)
    assert image.pixel_size_nm == pytest.approx(92.6) and image.z_step_nm == pytest.approx(300.0)
    assert np.array_equal(np.asarray(image.array), volume)
    flat = read_image(write_image(tmp_path / f"plain{suffix}", volume[0], pixel_size_nm=92.6))
    assert flat.z_step_nm is None
