"""When a GPU is lent: the bench on it, then the paper-size SFSRM x10 and rDL models trained within a fixed budget.

The README's tables were all measured on 2 CPU cores with networks 10-100x smaller than the papers'. A
lent GPU is short (minutes), so this script is ready to spend it without thought on the day:

1. **Inference** of SFSRM at the shipped and the paper's size on the GPU (``bench/sfsrm_inference.py``'s
   networks), with the GPU's peak memory.
2. **Training throughput** of every trainer on the GPU (``bench/training.py``: iterations/s, data share).
3. **Paper-size models within the budget**: the x10 SFSRM SRNs of paper 003's dot-pair and line-pair
   tables (23 RRDB blocks of 64 features), and three rDL SIM DFCAN + denoiser pairs at paper 000's size
   (the ensemble behind the model-uncertainty ratio). Each run's iteration count is set from its own
   measured speed so that all of them together end inside ``--budget-min``; every run checkpoints and
   resumes, so a second call with a larger budget goes on where the first stopped.
4. **The tables**: paper 003's dot-pair and line-pair tables (``bench/sfsrm_paper.py``) and the rDL
   ensemble's uncertainty ratio DFCAN-SIM / rDL SIM (``bench/rdl_compare.py``), beside the papers'.

Everything lands in ``OUT/rows.md`` (and ``OUT/rows.json``). ``--tiny`` runs the same code on a CPU with
tiny networks and a few iterations — what the test suite does, so the script cannot rot unnoticed.

Usage: bash bench/gpu.sh [--budget-min 8] [--out bench_out/gpu] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import rdl_compare  # noqa: E402
import sfsrm_inference  # noqa: E402
import sfsrm_paper  # noqa: E402
import training  # noqa: E402

EXAMPLES = BENCH.parent / "examples"
PAPER_SRN = {"features": 64, "blocks": 23, "growth": 32, "scale": 4}
PAPER_DFCAN = {"features": 64, "groups": 4, "blocks_per_group": 4, "reduction": 16}
PAPER_DENOISER = {"features": 64, "mpe_groups": 2, "pfe_groups": 5, "merged_groups": 5, "blocks": 5, "reduction": 16}
TINY_SRN = {"features": 8, "blocks": 1, "growth": 8, "scale": 4}
TINY_DFCAN = {"features": 8, "groups": 1, "blocks_per_group": 1, "reduction": 4}
TINY_DENOISER = {"features": 8, "mpe_groups": 1, "pfe_groups": 1, "merged_groups": 1, "blocks": 1, "reduction": 4}
TINY_SFSRM_DATA = {"lr_patch_px": 8, "batch_size": 1, "validation_pairs": 1}
TINY_RDL_DATA = {"patch_px": 32, "field_px": 32, "batch_size": 1, "validation_pairs": 1}
#: Share of the training budget per run: the two SFSRM SRNs, then three DFCANs and three denoisers.
SHARES = {"srn_dots": 0.2, "srn_lines": 0.2, **{f"{net}_seed{seed}": 0.1 for seed in range(3) for net in ("sr", "denoise")}}
PROBE_ITERATIONS = 3
#: Independently trained rDL SIM models: the ensemble whose spread is the model uncertainty.
SEEDS = 3


def sfsrm_run(kind: str, tiny: bool, folder: Path, accelerator: str):
    from microsr.train.sfsrm import load_sfsrm_config

    config = load_sfsrm_config(EXAMPLES / f"sfsrm_srn_{kind}_x10.yaml")
    data = config.data.model_copy(update=TINY_SFSRM_DATA if tiny else {})
    return lambda iterations, output=folder / f"srn_{kind}_x10": config.model_copy(update={
        "model": config.model.model_copy(update=TINY_SRN if tiny else PAPER_SRN), "data": data,
        # Stage 1 gets the budget; stage 2 (all four losses) keeps the example's short ending.
        "stages": [config.stages[0].model_copy(update={"iterations": iterations}),
                   config.stages[1].model_copy(update={"iterations": 1 if tiny else config.stages[1].iterations})],
        "output_dir": output, "accelerator": accelerator, "validate_every": 10**6})


def rdl_run(task: str, seed: int, tiny: bool, folder: Path, accelerator: str):
    from microsr.io.config_files import read_yaml
    from microsr.train.config import load_config
    from microsr.train.rdl import RDLTrainConfig

    # Validated only when a run is made: the denoiser's configuration names the DFCAN of its seed, which
    # is trained just before it.
    settings = read_yaml(EXAMPLES / f"rdl_{task}_tirf.yaml")
    model = (TINY_DFCAN if task == "sr" else TINY_DENOISER) if tiny else (PAPER_DFCAN if task == "sr" else PAPER_DENOISER)
    data = {**settings["data"], "seed": seed, **(TINY_RDL_DATA if tiny else {})}
    if task == "denoise":
        data["sr_model"] = str(folder / f"sr_seed{seed}" / "model.pt")
    return lambda iterations, output=folder / f"{task}_seed{seed}": load_config(None, RDLTrainConfig, {
        **settings, "model": model, "seed": seed, "iterations": iterations, "data": data,
        "output_dir": output, "accelerator": accelerator, "validate_every": 10**6})


def budgeted_training(budget_s: float, tiny: bool, folder: Path, accelerator: str) -> list[dict]:
    """Train every paper-size run to its share of the budget, its iterations set by a short probe run's speed.

    The probe runs in a folder of its own: SFSRM's second stage (with its discriminator) is part of every
    run, so a probe's checkpoint is not the start of a longer run. A run cut short resumes when called again.
    """
    from microsr.train.rdl import train_rdl
    from microsr.train.sfsrm import train_sfsrm

    runs = {"srn_dots": (train_sfsrm, sfsrm_run("dots", tiny, folder, accelerator)),
            "srn_lines": (train_sfsrm, sfsrm_run("lines", tiny, folder, accelerator))}
    for seed in range(2 if tiny else SEEDS):  # two models are the least an ensemble spread needs
        for task in ("sr", "denoise"):
            runs[f"{task}_seed{seed}"] = (train_rdl, rdl_run(task, seed, tiny, folder, accelerator))
    rows = []
    for name, (train, make) in runs.items():
        start = time.perf_counter()
        probe = training.timed_run(train, make(PROBE_ITERATIONS, folder / "probes" / name))
        seconds_per_iteration = probe["loop"] / (PROBE_ITERATIONS - 1)
        total = int(SHARES[name] * budget_s / seconds_per_iteration)
        final = make(total if total > PROBE_ITERATIONS else PROBE_ITERATIONS)
        if total > PROBE_ITERATIONS:
            train(final, progress=False)
        else:  # no time for more than the probe: it is the model
            shutil.copytree(folder / "probes" / name, final.output_dir, dirs_exist_ok=True)
        rows.append({"run": name, "iterations": max(total, PROBE_ITERATIONS),
                     "iterations_per_s": 1 / seconds_per_iteration, "seconds": time.perf_counter() - start})
        print(f"trained {name}: {total} iterations, {1 / seconds_per_iteration:.1f} it/s", flush=True)
    return rows


def rdl_ensemble(folder: Path) -> list[Path]:
    """Model folders (sr.pt + denoiser.pt) of the trained seeds, as ``RDLSIM.from_pretrained`` takes them."""
    folders = []
    for seed in range(SEEDS):
        if not (folder / f"denoise_seed{seed}" / "model.pt").exists():
            break
        model = folder / f"rdl_model_seed{seed}"
        model.mkdir(exist_ok=True)
        shutil.copy(folder / f"sr_seed{seed}" / "model.pt", model / "sr.pt")
        shutil.copy(folder / f"denoise_seed{seed}" / "model.pt", model / "denoiser.pt")
        folders.append(model)
    return folders


def inference_rows(device: str, sizes: list[int], tiny: bool) -> list[dict]:
    rows = []
    networks = {"shipped-size": sfsrm_inference.SHIPPED, "paper-size": sfsrm_inference.PAPER}
    if tiny:
        networks = {"tiny": {net: {"features": 8, "blocks": 1, "growth": 8} for net in ("sen", "srn")}}
    for label, size in networks.items():
        model = sfsrm_inference.build(size, device)
        for pixels in sizes:
            frame = np.random.default_rng(0).poisson(50, (pixels, pixels)).astype(np.float32)
            model.predict(frame)  # warm: the first call pays for kernel selection
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
            start = time.perf_counter()
            sr = model.predict(frame).sr
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
            rows.append({"network": label, "size": f"{pixels}² → {sr.shape[0]}²", "seconds": seconds,
                         "peak_mib": peak})
    return rows


def markdown(report: dict) -> str:
    lines = [f"# Bench on {report['device_name']} ({report['device']})", "",
             "## SFSRM inference (warm)", "", "| network | size | time | peak GPU memory |", "|---|---|---|---|"]
    lines += [f"| {r['network']} | {r['size']} | {r['seconds']:.3f} s | {r['peak_mib']:.0f} MiB |"
              for r in report["inference"]]
    lines += ["", "## Training throughput", "", "| trainer | iterations/s | data share |", "|---|---|---|"]
    lines += [f"| {r['trainer']} | {r['iterations_per_s']:.2f} | {r['data_share']:.0%} |" for r in report["training"]]
    lines += ["", f"## Paper-size models trained in {report['budget_min']:g} min", "",
              "| run | iterations | iterations/s | seconds |", "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['iterations']} | {r['iterations_per_s']:.2f} | {r['seconds']:.0f} |"
              for r in report["budgeted"]]
    dots = report["dot_pairs"]
    lines += ["", f"## Dot pairs resolved (PSF 280 nm, SNR {dots['snr']:g})", "",
              "| separation | SFSRM (paper size) | bicubic | ground truth | paper |", "|---|---|---|---|---|"]
    lines += [f"| {d} nm | {dots['sfsrm'][d]:.0f} % | {dots['bicubic'][d]:.0f} % | {dots['ground truth'][d]:.0f} % | "
              f"{paper} % |" for d, paper in sfsrm_paper.PAPER_DOTS.items()]
    lines += ["", f"## Line pairs: smallest separation resolved in > 85 % (paper: {sfsrm_paper.PAPER_LINE_NM})", "",
              "| SNR | smallest resolved |", "|---|---|"]
    lines += [f"| {snr} | {row['smallest_resolved_nm'] or 'none'} nm |" for snr, row in report["line_pairs"].items()]
    lines += ["", f"## rDL SIM model uncertainty ({report['seeds']} paper-size seeds; paper: ~5x lower than DFCAN-SIM)", "",
              "| photons | DFCAN-SIM | rDL SIM | DFCAN / rDL |", "|---|---|---|---|"]
    lines += [f"| {p} | {s['DFCAN-SIM']:.4f} | {s['rDL SIM']:.4f} | {s['DFCAN-SIM'] / max(s['rDL SIM'], 1e-12):.2f}x |"
              for p, s in report["uncertainty"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-min", type=float, default=8.0, help="minutes for all paper-size training together")
    parser.add_argument("--out", type=Path, default=Path("bench_out/gpu"))
    parser.add_argument("--tiny", action="store_true", help="tiny networks and a few iterations (CPU smoke test)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        print("no CUDA GPU here: this script is for a lent GPU (--tiny runs it on a CPU as a check)", file=sys.stderr)
        return 2
    accelerator = "gpu" if device == "cuda" else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"device": device, "budget_min": args.budget_min,
              "device_name": torch.cuda.get_device_name() if device == "cuda" else "CPU"}
    report["inference"] = inference_rows(device, [32] if args.tiny else [256, 512, 1024, 2048], args.tiny)

    found = training.trainers(args.out)
    names = ["dfcan"] if args.tiny else list(found)
    if "rdl-denoiser" in names:
        train, make, _ = found["dfcan"]
        train(make(2, args.out / "dfcan").model_copy(update={"accelerator": accelerator}), progress=False)
    report["training"] = []
    count = 3 if args.tiny else 30
    for name in names:
        train, make, what = found[name]
        clock = training.timed_run(train, make(count, args.out / f"throughput_{name}")
                                   .model_copy(update={"accelerator": accelerator}))
        report["training"].append({"trainer": f"{name}: {what}", "iterations_per_s": (count - 1) / clock["loop"],
                                   "data_share": clock["data"] / clock["loop"]})

    # --tiny: no budget beyond the probes, which then are the models.
    report["budgeted"] = budgeted_training(0 if args.tiny else args.budget_min * 60, args.tiny, args.out, accelerator)
    from microsr.pipelines.rdl_sim import RDLSIM
    from microsr.pipelines.sfsrm import SFSRM

    fields, field_um = (1, 2.0) if args.tiny else (4, 5.0)
    dots = sfsrm_paper.dot_table(SFSRM.from_pretrained(args.out / "srn_dots_x10" / "model.pt", device=device),
                                 fields, 10.0, field_um)
    report["dot_pairs"] = {"snr": 10.0, **dots}
    report["line_pairs"] = {f"{snr:g}": row for snr, row in sfsrm_paper.line_table(
        SFSRM.from_pretrained(args.out / "srn_lines_x10" / "model.pt", device=device), fields,
        [7.0] if args.tiny else [3, 5, 7, 10, 15, 20], field_um).items()}
    ensemble = [RDLSIM.from_pretrained(folder, device=device) for folder in rdl_ensemble(args.out)]
    report["seeds"] = len(ensemble)
    report["uncertainty"] = {f"{photons:g}": rdl_compare.uncertainty(ensemble, photons, 1 if args.tiny else 3,
                                                                     64 if args.tiny else 128)[0]
                             for photons in ([5.0] if args.tiny else [5.0, 15.0, 50.0])}
    (args.out / "rows.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / "rows.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
