"""microsr evaluate reports its long steps on a progress bar (stderr), and stays quiet when asked."""

import json

import numpy as np
from scipy import ndimage

from microsr.io import write_image
from microsr.pipelines.evaluate import evaluate_files


def _images(folder):
    rng = np.random.default_rng(0)
    truth = np.zeros((96, 96))
    truth[rng.integers(0, 96, 80), rng.integers(0, 96, 80)] = 100.0
    truth = ndimage.gaussian_filter(truth, 1.0)
    sr = rng.poisson(ndimage.gaussian_filter(truth, 1.5) + 5).astype(np.float32)
    widefield = ndimage.gaussian_filter(truth, 3.0).reshape(48, 2, 48, 2).mean(axis=(1, 3))
    write_image(folder / "sr.tif", sr, pixel_size_nm=30.0)
    write_image(folder / "truth.tif", truth.astype(np.float32), pixel_size_nm=30.0)
    write_image(folder / "wf.tif", widefield.astype(np.float32), pixel_size_nm=60.0)


def test_progress_bar_names_each_step_and_ends_full(tmp_path, capsys):
    _images(tmp_path)
    evaluate_files(tmp_path / "sr.tif", tmp_path / "out", reference=tmp_path / "truth.tif",
                   widefield=tmp_path / "wf.tif", progress=True)
    err = capsys.readouterr().err
    for step in ("reading", "resolution (SR)", "MS-SSIM", "HAWKMAN", "SQUIRREL", "report"):
        assert step in err, step
    # reading, SR resolution, 4 reference steps, 2 widefield steps, report
    assert "9/9" in err
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["hawkman"] is not None


def test_no_progress_bar_when_not_asked(tmp_path, capsys):
    _images(tmp_path)
    evaluate_files(tmp_path / "sr.tif", tmp_path / "out", reference=tmp_path / "truth.tif", progress=False)
    assert capsys.readouterr().err == ""
