"""Benchmark: time of each quality metric on a 1024² image (target: decorrelation ≤ 2 s on 2 cores)."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy import ndimage

from microsr.metrics import confidence, fidelity, resolution
from microsr.synthetic import filaments_and_dots


def median_seconds(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    size, pixel_nm = args.size, 30.0
    truth = filaments_and_dots((size, size), pixel_nm, n_filaments=size // 16, n_dots=size // 4, seed=0) * 100
    sr = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    second = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    widefield = ndimage.gaussian_filter(truth, 4.0).reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3))
    stack = np.stack([sr, second, sr, second, sr])
    rows = [
        ("PSNR", lambda: fidelity.psnr(sr, truth)),
        ("SSIM", lambda: fidelity.ssim(sr, truth)),
        ("MS-SSIM", lambda: fidelity.ms_ssim(sr, truth)),
        ("NRMSE", lambda: fidelity.nrmse(sr, truth)),
        ("Pearson", lambda: fidelity.pearson(sr, truth)),
        ("decorrelation resolution", lambda: resolution.decorrelation_resolution(sr, pixel_nm)),
        ("Fourier ring correlation", lambda: resolution.fourier_ring_correlation(sr, second, pixel_nm)),
        ("HAWKMAN", lambda: confidence.hawkman(sr, truth)),
        ("SQUIRREL", lambda: confidence.squirrel(sr, widefield, sr_pixel_size_nm=pixel_nm,
                                                 widefield_pixel_size_nm=4 * pixel_nm)),
        ("ensemble disagreement (3)", lambda: confidence.ensemble_disagreement([sr, second, sr])),
        ("temporal agreement (5)", lambda: confidence.temporal_agreement(stack, window=5)),
    ]
    print(f"\nmetrics benchmark — {size}² image, {args.threads} CPU thread(s)\n")
    print(f"| {'metric':<28} | {'size':<10} | {'device':<6} | {'median time':>11} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 8}|{'-' * 13}|")
    for name, function in rows:
        seconds = median_seconds(function, args.repeats)
        print(f"| {name:<28} | {f'{size}²':<10} | cpu    | {seconds * 1000:>8.1f} ms |")


if __name__ == "__main__":
    main()
