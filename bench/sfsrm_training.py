"""Benchmark: SFSRM training speed (iterations/s) for the shipped and the paper-size networks, per stage.

Each row runs ``microsr.train.sfsrm.train_sfsrm`` twice on the simulator — ``short`` and ``short + count``
iterations of one stage — and divides the difference in wall time by ``count``, so start-up (imports,
Lightning, the validation batch) is left out and everything a real iteration does is in: drawing the
simulated patches, the edge map, the losses, the discriminator step in stage 2.

Usage: python bench/sfsrm_training.py [--count 10] [--threads 2] [--paper]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from microsr.train.sfsrm import train_sfsrm as train
from microsr.train.sfsrm_config import TrainConfig

STAGES = {
    "stage 1 (MS-SSIM-L1)": {"msssim_l1": 1.0},
    "stage 2 (all four losses)": {"msssim_l1": 1.0, "perceptual": 0.1, "adversarial": 0.001, "frequency": 0.01},
}
SIZES = {
    "shipped SRN 32×4": {"features": 32, "blocks": 4, "growth": 16, "patch": 24, "batch": 8},
    "paper SRN 64×23": {"features": 64, "blocks": 23, "growth": 32, "patch": 16, "batch": 4},
}


def seconds_for(iterations: int, size: dict, losses: dict, device: str, folder: Path) -> float:
    config = TrainConfig.model_validate({
        "network": "srn",
        "model": {"features": size["features"], "blocks": size["blocks"], "growth": size["growth"], "scale": 4},
        "data": {"lr_patch_px": size["patch"], "batch_size": size["batch"], "validation_pairs": 1},
        "stages": [{"name": "bench", "iterations": iterations, "learning_rate": 1e-4, "losses": losses}],
        "output_dir": str(folder / f"run{iterations}"), "validate_every": 10**6, "checkpoint_every": 10**6,
        "accelerator": device,
    })
    start = time.perf_counter()
    train(config, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="iterations timed per row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paper", action="store_true", help="also time the paper-size network (slow on a CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["gpu"] if torch.cuda.is_available() else [])
    # The first run in a process pays one-time costs (imports, torch's optimizer compilation hooks) that
    # would otherwise be charged to the first row's short run and make its iterations look free.
    with tempfile.TemporaryDirectory() as folder:
        seconds_for(1, SIZES["shipped SRN 32×4"], STAGES["stage 1 (MS-SSIM-L1)"], "cpu", Path(folder))
    rows = []
    for label, size in SIZES.items():
        if label.startswith("paper") and not args.paper:
            continue
        for stage, losses in STAGES.items():
            for device in devices:
                with tempfile.TemporaryDirectory() as folder:
                    short = seconds_for(2, size, losses, device, Path(folder))
                    long = seconds_for(2 + args.count, size, losses, device, Path(folder))
                per_iteration = (long - short) / args.count
                rows.append((label, f"{size['batch']}×{size['patch']}² → ×4", stage, device, per_iteration))
    print(f"\nSFSRM training speed — {args.threads} CPU thread(s), simulated filaments, {args.count} iterations "
          "timed per row\n")
    print("| network | batch | stage | device | s / iteration | iterations / s |")
    print("|---|---|---|---|---|---|")
    for label, batch, stage, device, seconds in rows:
        print(f"| {label} | {batch} | {stage} | {device} | {seconds:.2f} | {1 / seconds:.2f} |")


if __name__ == "__main__":
    main()
