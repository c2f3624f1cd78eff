"""How long TiS-rDL, trained by the CLI with its default settings, takes to beat the best Gaussian filter.

A user's first question about self-supervised denoising is whether it is worth the wait on their own
machine. This trains ``microsr selfsup train --mode tis`` (defaults only) on a fresh simulated 10 × 16 ×
64 × 64 stack (vesicles, dim), denoises the same stack with ``microsr selfsup predict``, and scores both
against the clean volumes beside the noisy input and the best Gaussian filter (σ chosen for the best
PSNR against the truth: an oracle no real experiment has). Each row is one run from scratch with
``--iterations N`` (the default schedule scaled to N); wall time includes start-up and prediction.

Usage
-----
python bench/selfsup_speed.py [--iterations 250 500 1000] [--runs runs/selfsup_speed]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from selfsup_compare import PHOTONS, gaussian_best, stack_scores, write_zarr  # noqa: E402

SHAPE = (10, 16, 64, 64)
VOXEL_NM = (200.0, 92.6, 92.6)
SEED = 2026


def fresh_stack(folder: Path) -> dict:
    from microsr.synthetic.llsm import simulate_llsm

    folder.mkdir(parents=True, exist_ok=True)
    data = simulate_llsm(shape=SHAPE, voxel_size_nm=VOXEL_NM, specimen="vesicles", photons=PHOTONS, seed=SEED)
    write_zarr(folder / "stack.zarr", data.noisy, data.voxel_size_nm)
    return {"noisy": data.noisy, "clean": data.clean, "offset": data.offset_adu, "stack": folder / "stack.zarr"}


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[1000],
                        help="one run from scratch per count (1000 is the CLI's default)")
    parser.add_argument("--runs", type=Path, default=Path("runs/selfsup_speed"))
    args = parser.parse_args(argv)
    data = fresh_stack(args.runs)
    microsr = str(Path(sys.executable).with_name("microsr"))
    noisy_psnr, _ = stack_scores(data["noisy"] - data["offset"], data["clean"])
    gauss_psnr, _, sigma = gaussian_best(data["noisy"], data["clean"], data["offset"], VOXEL_NM)
    print(f"TiS-rDL trained by the CLI (defaults) on a fresh {'×'.join(map(str, SHAPE))} stack, "
          f"{PHOTONS:g} photons: noisy {noisy_psnr:.2f} dB, best Gaussian (σ {sigma:g} px) {gauss_psnr:.2f} dB")
    print(f"{'iterations':>10} | {'train s':>8} | {'predict s':>9} | {'PSNR dB':>7} | beats Gaussian")
    for iterations in args.iterations:
        run_dir, output = args.runs / f"tis_{iterations}", args.runs / f"denoised_{iterations}.zarr"
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)
        train_s = run([microsr, "selfsup", "train", str(data["stack"]), "--mode", "tis", "-o", str(run_dir),
                       "--iterations", str(iterations)])
        predict_s = run([microsr, "selfsup", "predict", str(data["stack"]), "-o", str(output),
                         "--model", str(run_dir / "model.pt")])
        from microsr.io.volumes import open_volume_stack

        denoised = np.asarray(open_volume_stack(output)[:], dtype=np.float64) - data["offset"]
        psnr, _ = stack_scores(denoised, data["clean"])
        print(f"{iterations:>10} | {train_s:>8.0f} | {predict_s:>9.0f} | {psnr:>7.2f} | "
              f"{'yes' if psnr > gauss_psnr else 'no'} ({psnr - gauss_psnr:+.2f} dB)", flush=True)
        (args.runs / f"result_{iterations}.json").write_text(json.dumps(
            {"iterations": iterations, "train_s": train_s, "predict_s": predict_s, "psnr": psnr,
             "gaussian_psnr": gauss_psnr, "noisy_psnr": noisy_psnr}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
