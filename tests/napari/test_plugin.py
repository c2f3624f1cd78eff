"""The napari plugin: manifest, reader/writer round trips with the pixel size in nm, sample data, every widget."""

import numpy as np
import pytest

from microsr.io import read_image, write_image
from microsr.napari_plugin._widgets import EvaluateWidget, RDLWidget, SelfSupWidget, SFSRMWidget, SIMWidget
from microsr.synthetic.llsm import simulate_llsm

TIMEOUT_MS = 300_000


def _run(widget, qtbot):
    widget.run()
    qtbot.waitUntil(lambda: widget.done, timeout=TIMEOUT_MS)
    assert "error" not in widget.result, widget.result
    return widget.result


def test_the_manifest_is_valid():
    import npe2

    manifest = npe2.PluginManifest.from_distribution("microsr")
    assert manifest.name == "microsr" and len(manifest.contributions.widgets) == 5
    manifest.validate_imports()


@pytest.mark.parametrize("suffix", [".ome.tif", ".mrc", ".zarr"])
def test_files_open_with_their_pixel_size_in_nm_and_layers_save_with_theirs(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    image = np.random.default_rng(0).random((2, 40, 30)).astype(np.float32)
    write_image(tmp_path / f"cells{suffix}", image, pixel_size_nm=65.0, axes="TYX")
    layer = viewer.open(str(tmp_path / f"cells{suffix}"), plugin="microsr")[0]
    assert list(layer.scale[-2:]) == [65.0, 65.0] and [str(u) for u in layer.units[-2:]] == ["nanometer"] * 2
    layer.scale = (1.0, 30.0, 30.0)  # the user corrects the scale: the file written keeps it
    viewer.layers.save(str(tmp_path / "saved.ome.tif"), selected=False, plugin="microsr")
    saved = read_image(tmp_path / "saved.ome.tif")
    assert saved.pixel_size_nm == pytest.approx(30.0)
    np.testing.assert_array_equal(saved.array, image)


def test_sim_widget_reconstructs_the_sample_and_shows_the_pattern(make_napari_viewer, qtbot, screenshot):
    viewer = make_napari_viewer()
    raw = viewer.open_sample("microsr", "sim")[0]
    widget = SIMWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microsr SIM")
    widget.raw.value = raw.name
    result = _run(widget, qtbot)
    sim = viewer.layers[f"{raw.name} SIM"]
    assert sim.data.shape == (256, 256) and list(sim.scale) == [31.3, 31.3]
    assert len(sim.metadata["pattern"]) == 3 and "pattern:" in widget.status.value
    assert all(0 < o["modulation"] <= 1 for o in sim.metadata["pattern"]) and "orientation 1" in result["table"]
    screenshot(viewer)


def test_rdl_widget_denoises_and_reconstructs_the_sample(make_napari_viewer, qtbot, screenshot):
    viewer = make_napari_viewer()
    raw = viewer.open_sample("microsr", "sim")[0]
    widget = RDLWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microsr rDL SIM")
    widget.raw.value = raw.name
    _run(widget, qtbot)
    out = viewer.layers[f"{raw.name} rDL SIM"]
    assert out.data.shape == (256, 256) and list(out.scale) == [31.3, 31.3]
    assert "residual pattern index" in widget.status.value
    screenshot(viewer)


def test_sfsrm_widget_adds_the_sr_image_and_its_disagreement_then_evaluate_measures_it(make_napari_viewer, qtbot,
                                                                                        screenshot):
    viewer = make_napari_viewer()
    widefield, truth = viewer.open_sample("microsr", "widefield")
    widget = SFSRMWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microsr SFSRM")
    widget.image.value = widefield.name
    _run(widget, qtbot)
    sr = viewer.layers[f"{widefield.name} SFSRM"]
    assert sr.data.shape == (384, 384) and list(sr.scale) == [25.0, 25.0]
    assert f"{widefield.name} SFSRM disagreement" in viewer.layers and "disagreement per unit" in widget.status.value
    screenshot(viewer, "sfsrm")
    evaluate = EvaluateWidget(viewer)
    viewer.window.add_dock_widget(evaluate, name="microsr evaluate")
    evaluate.sr.value, evaluate.reference.value, evaluate.widefield.value = sr.name, truth.name, widefield.name
    result = _run(evaluate, qtbot)
    assert 0 < result["table"]["ms_ssim"] <= 1 and result["table"]["resolution_kind"].startswith("apparent")
    assert f"HAWKMAN confidence ({sr.name})" in viewer.layers and f"SQUIRREL error ({sr.name})" in viewer.layers
    screenshot(viewer, "evaluate")


def test_selfsup_widget_denoises_a_volume_keeping_its_voxel_size(make_napari_viewer, qtbot, screenshot):
    viewer = make_napari_viewer()
    data = simulate_llsm(shape=(2, 8, 48, 48), specimen="mixed", photons=20, seed=4)
    viewer.add_image(data.noisy, name="llsm", scale=data.voxel_size_nm, units=("pixel", "nm", "nm", "nm")[-4:])
    widget = SelfSupWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microsr denoise")
    widget.stack.value = "llsm"
    _run(widget, qtbot)
    out = viewer.layers["llsm denoised"]
    assert out.data.shape == data.noisy.shape and list(out.scale[-3:]) == pytest.approx(list(data.voxel_size_nm))
    assert np.std(out.data) < np.std(data.noisy)
    screenshot(viewer)


def test_a_layer_without_a_pixel_size_is_one_line_in_the_status(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(1).random((32, 32)), name="unscaled")
    widget = SFSRMWidget(viewer)
    widget.image.value = "unscaled"
    widget.run()
    assert widget.done and "has no pixel size" in widget.status.value
