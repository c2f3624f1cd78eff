"""Held-out accuracy of an SFSRM model against bicubic upsampling and Richardson–Lucy deconvolution.

Simulated filaments (paper 003's recipe: GT blurred by 20 nm, widefield PSF 200 nm FWHM on 100 nm
pixels, Poisson + read noise at the asked SNR) from seeds that training never draws; MS-SSIM and
PSNR against the ground truth on the SR grid, all images percentile-normalized the same way, and the
HAWKMAN score against the ground truth (paper 003 reports > 0.9 for SNR > 7 at < 60 % density).

``--specimen`` takes other held-out fields of :mod:`microsr.synthetic.widefield` instead: ``er`` (a dense
tubular network with sheets), ``mitochondria`` or ``puncta``, each with out-of-focus haze (0.5–1.5 × the
in-focus signal), a PSF drawn in 250–300 nm (Richardson–Lucy is given the true one) and an sCMOS
camera's defects; the reference is the in-focus plane. ``--ensemble`` adds more models: the row
"ensemble" is their mean, and "disagreement vs error" is the Pearson correlation of the ensemble's
disagreement map with the mean's absolute error (issue 17 asks ≥ 0.3). A model folder with ensemble
members (``srn_1.pt``, …, as the shipped one) is an ensemble by itself: its row is the members' mean.

Usage: python bench/sfsrm_eval.py [--model filaments-x4] [--ensemble M2 M3] [--specimen er] [--snr 15]
       [--images 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
from skimage.restoration import richardson_lucy

from microsr.metrics import ensemble_disagreement, hawkman, ms_ssim, normalize, psnr, relative_disagreement
from microsr.models.sfsrm import normalize_input
from microsr.pipelines.sfsrm import SFSRM
from microsr.resample import bicubic_upsample
from microsr.synthetic import training_pair
from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.widefield import widefield_pair

HELD_OUT_SEED = 10**9  # training streams draw seeds far below this


def richardson_lucy_upsampled(lr: np.ndarray, fwhm_px: float, scale: int, iterations: int = 20) -> np.ndarray:
    """The classical answer: deconvolve with the known Gaussian PSF, then bicubic upsampling."""
    sigma = fwhm_px / 2.3548
    radius = int(np.ceil(4 * sigma))
    grid = np.arange(-radius, radius + 1)
    psf = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma**2))
    deconvolved = richardson_lucy(np.clip(normalize_input(lr), 0, None), psf / psf.sum(), num_iter=iterations,
                                  clip=False)
    return bicubic_upsample(deconvolved, scale)


def held_out_field(specimen: str, index: int, scale: int, size_px: int, pixel_nm: float, snr: float):
    """``(lr, hr, psf_fwhm_nm)`` of the ``index``-th held-out field of ``specimen``."""
    if specimen == "filaments":
        lr, hr = training_pair("filaments", scale=scale, lr_patch_px=size_px, lr_pixel_nm=pixel_nm, fwhm_nm=200.0,
                               snr=snr, seed=HELD_OUT_SEED + index)
        return lr, hr, 200.0
    rng = np.random.default_rng((HELD_OUT_SEED, index))
    fwhm = float(rng.uniform(250.0, 300.0))
    pair = widefield_pair(specimen, scale=scale, lr_patch_px=size_px, lr_pixel_nm=pixel_nm, fwhm_nm=fwhm, snr=snr,
                          haze=float(rng.uniform(0.5, 1.5)), defects=AcquisitionDefects.realistic(), seed=rng)
    return pair.noisy, pair.target, fwhm


def evaluate(model_names: list[str], snr: float, images: int, size_px: int, specimen: str = "filaments") -> dict:
    models = [SFSRM.from_pretrained(name, device="cpu") for name in model_names]
    model = models[0]
    scale = int(model.scale)
    methods = ("bicubic", "richardson_lucy", "sfsrm", *(("ensemble",) if len(models) > 1 else ()))
    scores: dict[str, dict[str, list[float]]] = {m: {"ms_ssim": [], "psnr": [], "hawkman": []} for m in methods}
    agreement, relative = [], []
    for index in range(images):
        lr, hr, fwhm = held_out_field(specimen, index, scale, size_px, model.pixel_size_nm, snr)
        prediction = model.predict(lr, pixel_size_nm=model.pixel_size_nm, check_range=False)
        outputs = {"bicubic": bicubic_upsample(normalize_input(lr), scale),
                   "richardson_lucy": richardson_lucy_upsampled(lr, fwhm / model.pixel_size_nm, scale),
                   "sfsrm": prediction.sr}
        if prediction.disagreement is not None:  # a model with ensemble members: its row is their mean
            error = np.abs(normalize(prediction.sr) - normalize(hr))
            agreement.append(float(np.corrcoef(prediction.disagreement.ravel(), error.ravel())[0, 1]))
            relative.append(relative_disagreement(prediction.disagreement, prediction.sr))
        if len(models) > 1:
            members = [outputs["sfsrm"]] + [m.predict(lr, pixel_size_nm=m.pixel_size_nm, check_range=False).sr
                                            for m in models[1:]]
            outputs["ensemble"] = np.mean(members, axis=0)
            error = np.abs(normalize(outputs["ensemble"]) - normalize(hr))
            agreement.append(float(np.corrcoef(ensemble_disagreement(members).ravel(), error.ravel())[0, 1]))
        for name, image in outputs.items():
            scores[name]["ms_ssim"].append(ms_ssim(image, hr))
            scores[name]["psnr"].append(psnr(image, hr))
            scores[name]["hawkman"].append(hawkman(image, hr).score)
    result = {name: {metric: statistics.mean(values) for metric, values in by_metric.items()}
              for name, by_metric in scores.items()}
    if agreement:
        result["disagreement_vs_error"] = statistics.mean(agreement)
    if relative:  # per unit of signal, as `sfsrm predict` summarises it
        result["relative_disagreement"] = statistics.mean(relative)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="filaments-x4")
    parser.add_argument("--ensemble", nargs="*", default=[], help="more models: their mean and disagreement")
    parser.add_argument("--specimen", default="filaments", choices=["filaments", "er", "mitochondria", "puncta"])
    parser.add_argument("--snr", type=float, nargs="+", default=[15.0], help="one or more SNRs")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size-px", type=int, default=64, help="LR image size (100 nm pixels)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {snr: evaluate([args.model, *args.ensemble], snr, args.images, args.size_px, args.specimen)
               for snr in args.snr}
    print(f"\nSFSRM held-out evaluation — model {args.model}{' + ' + str(len(args.ensemble)) if args.ensemble else ''}, "
          f"{args.specimen}, {args.images} images of {args.size_px}² LR px per SNR\n")
    print(f"| {'SNR':>4} | {'method':<16} | {'MS-SSIM':>8} | {'PSNR (dB)':>9} | {'HAWKMAN':>8} |")
    print(f"|{'-' * 6}|{'-' * 18}|{'-' * 10}|{'-' * 11}|{'-' * 10}|")
    for snr, by_method in results.items():
        for name, values in by_method.items():
            if name in ("disagreement_vs_error", "relative_disagreement"):
                continue
            print(f"| {snr:>4g} | {name:<16} | {values['ms_ssim']:>8.3f} | {values['psnr']:>9.2f} | "
                  f"{values['hawkman']:>8.2f} |")
    for snr, by_method in results.items():
        if "disagreement_vs_error" in by_method:
            print(f"SNR {snr:g}: disagreement vs error, Pearson {by_method['disagreement_vs_error']:.2f}"
                  + (f"; per unit of signal {by_method['relative_disagreement']:.2f}"
                     if "relative_disagreement" in by_method else ""))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"images": args.images, "size_px": args.size_px,
                       "results": {str(snr): r for snr, r in results.items()}}, handle, indent=2)


if __name__ == "__main__":
    main()
