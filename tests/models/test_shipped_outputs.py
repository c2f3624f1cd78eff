"""The shipped models give today's outputs: pinned on demo-like inputs before the model-layer redesign."""

from pathlib import Path

import numpy as np
import pytest

from microsr.pipelines.rdl_sim import RDLSIM
from microsr.pipelines.selfsup import SelfSupDenoiser
from microsr.pipelines.sfsrm import SFSRM

#: Outputs recorded with the code as it was before models/ existed (commit "tests: today's shipped-model
#: outputs"), on inputs stored beside them: SFSRM 48² at 100 nm, rDL SIM 9 × 64², TiS-rDL 8 × 32². The
#: rDL SIM image was recorded again when the Wiener reconstruction got its mirrored border (issue 16): it
#: changed along the border, by design, and less than 1e-3 of its range 32 px inside; the pattern
#: estimate and the two other models' outputs are still those of before the redesign. Both rDL records were
#: made again when frame means began to be equalized within an orientation (estimate: angles within 1 mrad,
#: spacings within 0.1 %, modulations within 0.004 of before) and rDL SIM began to average its denoiser
#: over the phase orders (image: 9 % of the range at most 32 px inside, the honeycomb's share). The SFSRM
#: record was made again when filaments-x4 was retrained on realistic widefield images with an ensemble of
#: three SRNs (issue 17): its output is now their mean; and again when member k began to see the field
#: turned by k quarter turns (its output turned back), which changed it by 4 % of its range at most.
REFERENCE = Path(__file__).parent.parent / "data" / "shipped_outputs.npz"

#: Float32 networks on 2 CPU threads: the same code and weights repeat to the last bit; 1e-6 of the
#: output's range leaves room for another BLAS only.
TOLERANCE = 1e-6
#: SFSRM's prediction computes the SRN's upsampling tail with the nearest-neighbour doubling folded into
#: its convolutions, strip by strip, its features pixel-major (issue 19): the same function, summed in
#: another order (measured 1.2e-6 of the range at most, 8e-7 absolute; the old and the new float32 outputs lie
#: 8e-7 and 6e-7 of the range from a float64 run). The issue allows 1e-3.
SFSRM_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def _same(output, expected, tolerance=TOLERANCE):
    scale = float(np.ptp(expected))
    np.testing.assert_allclose(output, expected, rtol=0, atol=tolerance * scale)


def test_shipped_sfsrm_gives_todays_output(reference):
    model = SFSRM.from_pretrained("filaments-x4", device="cpu")
    _same(model.predict(reference["sfsrm_input"], pixel_size_nm=model.pixel_size_nm).sr, reference["sfsrm_output"],
          SFSRM_TOLERANCE)


def test_shipped_rdl_sim_gives_todays_output_and_pattern(reference):
    model = RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu")
    result = model.predict(reference["rdl_input"], background=float(reference["rdl_background"]),
                           pixel_size_nm=model.acquisition["pixel_size_nm"])
    params = np.array([[o.angle_rad, o.spacing_nm, o.modulation] for o in result.params.orientations])
    np.testing.assert_allclose(params, reference["rdl_params"], rtol=1e-9)
    _same(result.sim, reference["rdl_output"])


def test_shipped_tis_model_gives_todays_output(reference):
    denoiser = SelfSupDenoiser.from_pretrained("llsm-vesicles-tis", device="cpu")
    _same(denoiser.denoise_volume(reference["selfsup_input"]), reference["selfsup_output"])
