"""rDL SIM against its alternatives on held-out simulated TIRF-SIM: PSNR, SSIM and resolution per photon level.

Methods, on the same noisy raw frames (3 × 3, 62.6 nm pixels, NA 1.35, 525 nm emission):

* **conventional SIM** — the Wiener reconstruction of the noisy frames with the true pattern;
* **DFCAN-SIM** — the SR-estimate network's own output (end-to-end deep learning, no physics after it);
* **CARE + Wiener** — a U-Net denoises each orientation's frames without the pattern, then Wiener
  (only when the model folder holds ``care.pt``, trained with ``task: care``);
* **rDL SIM** — the rDL pipeline: SR estimate → modulated images → denoiser → Wiener, true pattern.

Reference: the ground-truth specimen blurred to what an ideal linear SIM resolves
(:func:`microsr.synthetic.sim_target`). PSNR and SSIM use the rDL authors' normalization (a
least-squares linear fit of each image to the reference, ``normalization="linear_fit"``); the
resolution is decorrelation analysis of each image alone. Seeds are held out (odd validation seeds
are never drawn by training; these start at 10⁹ + 1).

Model uncertainty (``--ensemble`` with 2+ model folders, independently trained: ``bench/rdl_models.sh``
makes 3): per photon level, the per-pixel standard deviation over the models' outputs
(:func:`microsr.metrics.ensemble_disagreement`, each output scaled 0–1 first), averaged over the
pixels of all fields, for DFCAN-SIM and for rDL SIM; paper 000 reports rDL's five-fold lower.
``--figure`` saves the maps of the first field at the lowest photon level.

Usage: python bench/rdl_compare.py --model tirf-sim-3x3 [--care care.pt] [--ensemble M0 M1 M2]
       [--photons 5 15 50] [--fields 3] [--size-px 128] [--figure uncertainty.png]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from microsr.metrics import decorrelation_resolution, ensemble_disagreement, psnr, ssim
from microsr.models.rdl import NETWORK_FILES, load_network
from microsr.models.shipped import model_folder
from microsr.pipelines.rdl_sim import RDLSIM, care_sim
from microsr.sim.reconstruct import ReconstructionSettings, reconstruct
from microsr.synthetic.sim_raw import sim_resolution_fwhm_nm, sim_target, simulate_sim

HELD_OUT_SEED = 10**9 + 1


def held_out_field(index: int, photons: float, size_px: int):
    """The ``index``-th held-out field: specimens in turn, seeds no training run draws."""
    specimen = ("filaments", "pits", "network")[index % 3]
    return simulate_sim(shape=(size_px, size_px), photons=photons, specimen=specimen, seed=HELD_OUT_SEED + 2 * index)


def compare(model: RDLSIM, photons: float, fields: int, size_px: int, care=None) -> dict:
    methods = ("conventional SIM", "DFCAN-SIM", *(("CARE + Wiener",) if care is not None else ()), "rDL SIM")
    scores: dict[str, dict[str, list]] = {m: {"psnr": [], "ssim": [], "resolution_nm": []} for m in methods}
    for index in range(fields):
        data = held_out_field(index, photons, size_px)
        pixel = data.pixel_size_nm
        background = data.camera.offset_adu + data.camera.background_photons
        reference = sim_target(data.ground_truth, pixel / 2, sim_resolution_fwhm_nm(1.35, 525.0, 0.92))
        raw = data.raw[0]
        result = model.predict(raw, background=background, params=data.params, pixel_size_nm=pixel)
        conventional = reconstruct(raw, data.params, pixel, model.otf,
                                   ReconstructionSettings(background=background), device="cpu")[0]
        images = {"conventional SIM": conventional, "DFCAN-SIM": result.sr_estimate, "rDL SIM": result.sim}
        if care is not None:
            images["CARE + Wiener"] = care_sim(care, raw, data.params, pixel, model.otf, background=background)
        for name, image in images.items():
            scores[name]["psnr"].append(psnr(image, reference, normalization="linear_fit"))
            scores[name]["ssim"].append(ssim(image, reference, normalization="linear_fit"))
            scores[name]["resolution_nm"].append(decorrelation_resolution(image, pixel / 2).resolution_nm)
    summary = {}
    for name, by_metric in scores.items():
        resolutions = [r for r in by_metric["resolution_nm"] if r is not None]
        summary[name] = {"psnr": statistics.mean(by_metric["psnr"]), "ssim": statistics.mean(by_metric["ssim"]),
                         "resolution_nm": statistics.mean(resolutions) if resolutions else None}
    return summary


def uncertainty(models: list[RDLSIM], photons: float, fields: int, size_px: int) -> tuple[dict, dict]:
    """Mean per-pixel standard deviation over ``models`` for DFCAN-SIM and rDL SIM, and the first field's maps."""
    spread: dict[str, list] = {"DFCAN-SIM": [], "rDL SIM": []}
    maps = {}
    for index in range(fields):
        data = held_out_field(index, photons, size_px)
        background = data.camera.offset_adu + data.camera.background_photons
        results = [model.predict(data.raw[0], background=background, params=data.params,
                                 pixel_size_nm=data.pixel_size_nm) for model in models]
        for name, images in (("DFCAN-SIM", [r.sr_estimate for r in results]), ("rDL SIM", [r.sim for r in results])):
            std = ensemble_disagreement(images)
            spread[name].append(float(std.mean()))
            if index == 0:
                maps[name] = std
                maps[f"{name} image"] = images[0]
        if index == 0:
            maps["ground truth"] = sim_target(data.ground_truth, data.pixel_size_nm / 2,
                                              sim_resolution_fwhm_nm(1.35, 525.0, 0.92))
    return {name: statistics.mean(values) for name, values in spread.items()}, maps


def save_uncertainty_figure(maps: dict, photons: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(float(maps["DFCAN-SIM"].max()), float(maps["rDL SIM"].max()))
    panels = [("ground truth (SIM resolution)", maps["ground truth"], "gray", None),
              ("DFCAN-SIM", maps["DFCAN-SIM image"], "gray", None), ("rDL SIM", maps["rDL SIM image"], "gray", None),
              ("DFCAN-SIM: std over models", maps["DFCAN-SIM"], "inferno", top),
              ("rDL SIM: std over models", maps["rDL SIM"], "inferno", top)]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for axis, (title, image, cmap, vmax) in zip(axes, panels):
        shown = axis.imshow(image, cmap=cmap, vmin=0 if vmax else None, vmax=vmax)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
        if vmax:
            figure.colorbar(shown, ax=axis, fraction=0.046)
    figure.suptitle(f"Model uncertainty at {photons:g} photons (same colour scale for both maps)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="shipped rDL model name or folder with sr.pt and denoiser.pt")
    parser.add_argument("--care", help="CARE baseline (model.pt of 'task: care'); default MODEL/care.pt if present")
    parser.add_argument("--ensemble", nargs="+", default=[], help="2+ independently trained model folders")
    parser.add_argument("--photons", type=float, nargs="+", default=[5.0, 15.0, 50.0])
    parser.add_argument("--fields", type=int, default=3)
    parser.add_argument("--size-px", type=int, default=128)
    parser.add_argument("--figure", type=Path, help="save the uncertainty maps (PNG) of the lowest photon level")
    args = parser.parse_args()
    torch.set_num_threads(2)
    folder = model_folder(args.model, "rdl")
    model = RDLSIM.from_pretrained(folder, device="cpu")
    care_path = Path(args.care) if args.care else folder / NETWORK_FILES["care"]
    care = load_network(care_path, "care")[0] if care_path.exists() else None
    print(f"\nrDL SIM comparison — model {args.model}, {args.fields} held-out fields of {args.size_px}² per "
          "photon level; PSNR / SSIM after a linear fit to the SIM-resolution ground truth\n")
    print("| photons | method | PSNR (dB) | SSIM | decorrelation resolution |")
    print("|---|---|---|---|---|")
    for photons in args.photons:
        for name, row in compare(model, photons, args.fields, args.size_px, care).items():
            resolution = f"{row['resolution_nm']:.0f} nm" if row["resolution_nm"] else "—"
            print(f"| {photons:g} | {name} | {row['psnr']:.2f} | {row['ssim']:.3f} | {resolution} |")
    if care is None:
        print(f"\nNo {care_path}: the CARE + Wiener row needs a model trained with 'task: care' (--care).")
    if len(args.ensemble) < 2:
        print("Model uncertainty not measured: give --ensemble with 2+ independently trained model folders.")
        return
    models = [RDLSIM.from_pretrained(path, device="cpu") for path in args.ensemble]
    print(f"\nModel uncertainty: mean per-pixel std over {len(models)} models (outputs scaled 0–1), "
          f"{args.fields} fields per level\n")
    print("| photons | DFCAN-SIM | rDL SIM | DFCAN / rDL |")
    print("|---|---|---|---|")
    for photons in args.photons:
        spread, maps = uncertainty(models, photons, args.fields, args.size_px)
        ratio = spread["DFCAN-SIM"] / max(spread["rDL SIM"], 1e-12)
        print(f"| {photons:g} | {spread['DFCAN-SIM']:.4f} | {spread['rDL SIM']:.4f} | {ratio:.2f}× |")
        if args.figure and photons == min(args.photons):
            save_uncertainty_figure(maps, photons, args.figure)
    if args.figure:
        print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
