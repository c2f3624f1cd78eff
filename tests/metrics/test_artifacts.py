"""The residual-pattern artifact index: high where a reconstruction leaves the pattern, low where it does not."""

import dataclasses

import numpy as np
import pytest
from helpers import background_of, run_cli, simulated

from microsr.errors import InputError
from microsr.io import write_image
from microsr.metrics import residual_pattern_index
from microsr.pipelines.sim import SIMReconstructor
from microsr.sim.parameters import SIMParameters


@pytest.fixture(scope="module")
def reconstruction():
    data = simulated(seed=1, size=256)
    sim = SIMReconstructor.from_settings(pixel_size_nm=62.6, background=background_of(data))
    return data, sim, sim.estimate(data.raw[0])


def test_a_good_reconstruction_leaves_no_pattern_and_a_wrong_modulation_does(reconstruction):
    data, sim, params = reconstruction
    good = residual_pattern_index(sim.reconstruct(data.raw[0], params), params, 31.3)
    assert good.index < 0.9 and len(good.per_orientation) == 6  # 3 orientations × orders 1, 2
    wrong = SIMParameters([dataclasses.replace(o, modulation=0.2 * o.modulation) if a == 0 else o
                           for a, o in enumerate(params.orientations)])
    bad = residual_pattern_index(sim.reconstruct(data.raw[0], wrong), params, 31.3)
    first_order = {(r["orientation"], r["order"]): r["index"] for r in bad.per_orientation}
    # ≥ 4× its surroundings more than before (the frames' means are equalized before band separation, so the
    # part of the peak that the specimen's own pattern-frequency content in each frame mean made is gone)
    assert first_order[(0, 1)] > 0.6 + [r for r in good.per_orientation if r["orientation"] == 0][0]["index"]


def test_stripes_of_the_pattern_give_an_index_of_their_strength():
    params = SIMParameters.from_dict({"orientations": [{"angle_rad": 0.3490658504, "spacing_nm": 200.0,
                                                        "phases_rad": [0, 2.1, 4.2], "modulation": 0.8}]})
    y, x = np.mgrid[:256, :256] * 30.0
    k = np.array([np.sin(np.radians(20)), np.cos(np.radians(20))]) / 200.0
    specimen = np.random.default_rng(0).random((256, 256))
    indices = [residual_pattern_index(specimen + amplitude * np.cos(2 * np.pi * (k[0] * y + k[1] * x)), params,
                                      30.0, orders=(1,)).index for amplitude in (0.0, 0.03, 0.3, 3.0)]
    assert -0.5 < indices[0] < 0.9 and indices[1] > 1.5  # stripes of 10 % of the specimen's spread show
    # the peak's power grows with the square of the stripes' amplitude: 2 decades per factor 10
    assert indices[2] - indices[1] == pytest.approx(2, abs=0.3) and indices[3] - indices[2] == pytest.approx(2, abs=0.3)


def test_a_pattern_beyond_the_images_nyquist_is_refused():
    params = SIMParameters.from_dict({"orientations": [{"angle_rad": 0.0, "spacing_nm": 100.0,
                                                        "phases_rad": [0, 2.1, 4.2], "modulation": 0.8}]})
    with pytest.raises(InputError, match="beyond the Nyquist frequency of 62.6-nm pixels"):
        residual_pattern_index(np.ones((64, 64)), params, 62.6)


def test_evaluate_reports_the_index_when_given_the_parameters(reconstruction, tmp_path, capsys):
    data, sim, params = reconstruction
    write_image(tmp_path / "sim.tif", sim.reconstruct(data.raw[0], params), pixel_size_nm=31.3)
    params.save(tmp_path / "params.json")
    code, out, err = run_cli(["evaluate", tmp_path / "sim.tif", "--out", tmp_path / "ev", "--params",
                              tmp_path / "params.json"], capsys)
    assert code == 0, err
    printed = __import__("json").loads(out.splitlines()[0])
    assert printed["residual_pattern_index"] == pytest.approx(residual_pattern_index(
        sim.reconstruct(data.raw[0], params), params, 31.3).index)
