"""Benchmark: time and peak memory of each quality metric on a 1024² image, and of `microsr evaluate` at 4096².

Targets on 2 CPU cores: decorrelation ≤ 2 s, HAWKMAN and SQUIRREL ≤ 0.5 s at 1024²; `evaluate` of a 4096²
SR image with a reference ≤ 30 s (``--evaluate 4096``, ~1 min with the data it makes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_memory import PeakRSS
from scipy import ndimage

from microsr.io import write_image
from microsr.metrics import confidence, fidelity, resolution
from microsr.synthetic import filaments_and_dots

#: Seconds each metric should take at 1024² on 2 cores (issue 19), where one was set.
TARGETS_S = {"decorrelation resolution": 2.0, "HAWKMAN": 0.5, "SQUIRREL": 0.5}
EVALUATE_TARGET_S = 30.0


def median_seconds(function, repeats: int) -> tuple[float, float]:
    """Median time of ``repeats`` calls after one warm-up, and the peak memory of one call (MiB)."""
    function()
    with PeakRSS() as peak:
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak.mib


def specimen(size: int, pixel_nm: float):
    """Ground truth (filaments and dots), a noisy SR-like image of it, a second one, and a 4×-binned widefield."""
    rng = np.random.default_rng(0)
    truth = filaments_and_dots((size, size), pixel_nm, n_filaments=size // 16, n_dots=size // 4, seed=0) * 100
    sr = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    second = rng.poisson(ndimage.gaussian_filter(truth, 2.0) + 5).astype(np.float64)
    widefield = ndimage.gaussian_filter(truth, 4.0).reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3))
    return truth, sr, second, widefield


def row(name: str, size: int, seconds: float, mib: float, target: float | None) -> str:
    ratio = f"{seconds / target:>6.2f}×" if target else f"{'':>7}"
    target_text = f"{target:>6.1f} s" if target else f"{'':>8}"
    return (f"| {name:<28} | {f'{size}²':<10} | cpu    | {seconds * 1000:>9.1f} ms | {mib:>8.0f} MiB "
            f"| {target_text} | {ratio} |")


def evaluate_row(size: int, pixel_nm: float) -> str:
    """``microsr evaluate`` (its Python entry point) of a size² SR image with a same-grid reference, once."""
    from microsr.pipelines.evaluate import evaluate_files

    truth, sr, _, _ = specimen(size, pixel_nm)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_image(folder / "sr.tif", sr.astype(np.float32), pixel_size_nm=pixel_nm)
        write_image(folder / "reference.tif", truth.astype(np.float32), pixel_size_nm=pixel_nm)
        del truth, sr
        with PeakRSS() as peak:
            start = time.perf_counter()
            evaluate_files(folder / "sr.tif", folder / "out", reference=folder / "reference.tif", progress=False)
            seconds = time.perf_counter() - start
    return row("evaluate (with reference)", size, seconds, peak.mib, EVALUATE_TARGET_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evaluate", type=int, default=0, metavar="SIZE",
                        help="also time `microsr evaluate` of a SIZE² image with a reference (make bench: 4096)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size, pixel_nm = args.size, 30.0
    truth, sr, second, widefield = specimen(size, pixel_nm)
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
    print(f"\nmetrics benchmark — {size}² image, {args.threads} CPU thread(s); peak memory above the start of a call;"
          " ratio = time / target\n")
    print(f"| {'metric':<28} | {'size':<10} | {'device':<6} | {'median time':>12} | {'peak mem':>12} "
          f"| {'target':>8} | {'ratio':>7} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 8}|{'-' * 14}|{'-' * 14}|{'-' * 10}|{'-' * 9}|")
    for name, function in rows:
        seconds, mib = median_seconds(function, args.repeats)
        print(row(name, size, seconds, mib, TARGETS_S.get(name)), flush=True)
    if args.evaluate:
        del truth, sr, second, widefield, stack
        print(evaluate_row(args.evaluate, pixel_nm), flush=True)


if __name__ == "__main__":
    main()
