"""Which numbers notice an SFSRM model inventing structure: a hazy dense simulated field and a real widefield/STORM pair.

For each model (and bicubic upsampling): MS-SSIM against the truth, the band-pass correlation with it
(Pearson correlation of difference-of-Gaussians filtered images, σ 2 and 8 px of 25 nm: the scale of
tubules and their gaps), the apparent resolution (decorrelation analysis of the SR image alone) and
SQUIRREL's RSP against the widefield input; for an ensemble model, its disagreement map's mean and
99th percentile, its mean per unit of signal (``relative``, as `sfsrm predict` summarises it) and its
pixel-by-pixel Pearson correlation with the error ``|normalize(SR) - normalize(truth)|``. The model of before issue 17 lives in git history::

    mkdir -p runs/before && for f in sen srn; do
      git show e216d7e:src/microsr/weights/filaments-x4/$f.pt > runs/before/$f.pt; done
    python bench/sfsrm_failure.py --models runs/before filaments-x4 --real ../shared/data/sfsrm_real

``--real`` is a folder with ``mitochondria_widefield.tif`` (100 nm) and ``mitochondria_STORM.tif`` (25 nm).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from microsr.io import read_image
from microsr.metrics import decorrelation_resolution, ms_ssim, normalize, relative_disagreement, squirrel
from microsr.models.sfsrm import normalize_input
from microsr.pipelines.sfsrm import SFSRM
from microsr.resample import bicubic_upsample
from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.widefield import widefield_pair


def bandpass_correlation(image: np.ndarray, truth: np.ndarray) -> float:
    def band(x):
        x = normalize_input(x)
        return ndimage.gaussian_filter(x, 2) - ndimage.gaussian_filter(x, 8)
    return float(np.corrcoef(band(image).ravel(), band(truth).ravel())[0, 1])


def rows(widefield: np.ndarray, truth: np.ndarray, models: dict) -> None:
    outputs = {"bicubic": (bicubic_upsample(normalize_input(widefield), 4), None)}
    for name, model in models.items():
        result = model.predict(widefield, pixel_size_nm=100.0, check_range=False)
        outputs[name] = (result.sr, result.disagreement)
    for name, (image, spread) in outputs.items():
        rsp = squirrel(image, widefield, sr_pixel_size_nm=25.0, widefield_pixel_size_nm=100.0).rsp
        line = (f"| {name} | {ms_ssim(image, truth):.3f} | {bandpass_correlation(image, truth):.2f} | "
                f"{decorrelation_resolution(image, 25.0).resolution_nm:.0f} nm | {rsp:.3f} |")
        if spread is not None:
            error = np.abs(normalize(image) - normalize(truth))
            line += (f" disagreement mean {spread.mean():.3f}, p99 {np.percentile(spread, 99):.3f}, "
                     f"relative {relative_disagreement(spread, image):.2f}, "
                     f"vs error r {np.corrcoef(spread.ravel(), error.ravel())[0, 1]:.2f}")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["filaments-x4"])
    parser.add_argument("--real", default=None, help="folder with the real mitochondria widefield/STORM pair")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    models = {name: SFSRM.from_pretrained(name, device="cpu") for name in args.models}
    print("\n| method | MS-SSIM | band-pass corr. | apparent resolution | SQUIRREL RSP |\n|---|---|---|---|---|")
    print("simulated dense ER network, haze 1×, PSF 280 nm, SNR 10, 128² at 100 nm:")
    pair = widefield_pair("er", lr_patch_px=128, fwhm_nm=280, snr=10, haze=1.0, defects=AcquisitionDefects.realistic(),
                          seed=777)
    rows(pair.noisy, pair.target, models)
    if args.real:
        folder = Path(args.real)
        print("real mitochondria widefield (100 nm) against STORM (25 nm):")
        rows(np.asarray(read_image(folder / "mitochondria_widefield.tif").array, np.float32),
             np.asarray(read_image(folder / "mitochondria_STORM.tif").array, np.float32), models)


if __name__ == "__main__":
    main()
