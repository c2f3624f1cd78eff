"""Benchmark: SFSRM inference time and peak memory against image size, CPU (and GPU when present).

The weights do not change the cost, so freshly initialized networks of the shipped size (SEN 32×3,
SRN 32×4, ×4) and of the paper's size (23 blocks × 64 features) are timed; memory is the growth of
the process's own memory during a prediction (tiles keep it bounded: it must not grow with the input
beyond the output itself).

Usage: python bench/sfsrm_inference.py [--sizes 256 512 1024 2048] [--paper-sizes 256 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_memory import PeakRSS

from microsr.nets import RRDBNet
from microsr.pipelines.sfsrm import SFSRM

SHIPPED = {"sen": dict(features=32, blocks=3, growth=16), "srn": dict(features=32, blocks=4, growth=16)}
PAPER = {"sen": dict(features=64, blocks=23, growth=32), "srn": dict(features=64, blocks=23, growth=32)}


def build(size: dict, device: str) -> SFSRM:
    sen = RRDBNet(1, 1, scale=1, **size["sen"])
    srn = RRDBNet(2, 1, scale=4, **size["srn"])
    info = {"model": {**size["srn"], "scale": 4}, "lr_pixel_nm": 100.0, "pre_upsample": 1.0}
    return SFSRM(srn.eval(), info, sen.eval(), {"model": {**size["sen"], "scale": 1}}, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--paper-sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for label, size, sizes in (("shipped-size", SHIPPED, args.sizes), ("paper-size", PAPER, args.paper_sizes)):
        for device in devices:
            model = build(size, device)
            for pixels in sizes:
                frame = np.random.default_rng(0).poisson(50, (pixels, pixels)).astype(np.float32)
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                with PeakRSS() as memory:
                    start = time.perf_counter()
                    sr = model.predict(frame).sr
                    if device == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - start
                peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else memory.mib
                rows.append((label, f"{pixels}² → {sr.shape[0]}²", device, seconds, peak, sr.nbytes / 2**20))
    print(f"\nSFSRM inference — {args.threads} CPU thread(s), SEN → edge map → SRN ×4, tiled\n")
    print(f"| {'model':<13} | {'size':<16} | {'device':<6} | {'time':>9} | {'peak memory':>11} | {'output':>8} |")
    print(f"|{'-' * 15}|{'-' * 18}|{'-' * 8}|{'-' * 11}|{'-' * 13}|{'-' * 10}|")
    for label, size, device, seconds, peak, output in rows:
        print(f"| {label:<13} | {size:<16} | {device:<6} | {seconds:>7.2f} s | {peak:>7.0f} MiB | {output:>4.0f} MiB |")


if __name__ == "__main__":
    main()
