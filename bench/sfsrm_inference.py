"""Benchmark: SFSRM inference time, cold and warm, and peak memory against image size, CPU (and GPU when present).

Rows of the shipped model ``filaments-x4`` as users run it: its three SRNs (the mean and their disagreement,
``predict``'s default) and its first SRN alone (``ensemble=False``, what movies use). *Cold* is the first
prediction in a fresh process (after import and loading, in a child process), *warm* the median of the
next ones; the ratio cold / warm is the price of the first call. A stage table says where the time of one
warm prediction goes. Freshly initialized networks of the paper's size (23 blocks × 64 features, one SRN)
follow: the weights do not change the cost (``build`` makes them; ``SHIPPED`` sizes the shipped ones). Memory is
the growth of the process's own memory during a prediction (tiles keep it bounded: it must not grow with
the input beyond the output itself).

Usage: python bench/sfsrm_inference.py [--sizes 256 512 1024 2048] [--paper-sizes 256 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_memory import PeakRSS

from microsr.metrics.confidence import ensemble_disagreement
from microsr.models.sfsrm import network_inputs, normalize_input
from microsr.nets import RRDBNet
from microsr.pipelines.sfsrm import SFSRM
from microsr.synthetic import training_pair
from microsr.tiling import predict_tiled

SHIPPED = {"sen": dict(features=32, blocks=3, growth=16), "srn": dict(features=32, blocks=4, growth=16)}
PAPER = {"sen": dict(features=64, blocks=23, growth=32), "srn": dict(features=64, blocks=23, growth=32)}
MODEL = "filaments-x4"


def build(size: dict, device: str) -> SFSRM:
    sen = RRDBNet(1, 1, scale=1, **size["sen"])
    srn = RRDBNet(2, 1, scale=4, **size["srn"])
    info = {"model": {**size["srn"], "scale": 4}, "lr_pixel_nm": 100.0, "pre_upsample": 1.0}
    return SFSRM(srn.eval(), info, sen.eval(), {"model": {**size["sen"], "scale": 1}}, device)


def widefield(pixels: int) -> np.ndarray:
    """A realistic 100-nm widefield frame of filaments (what the shipped model was trained on)."""
    return training_pair("filaments", scale=1, lr_patch_px=pixels, lr_pixel_nm=100.0, fwhm_nm=250.0, snr=10.0,
                         seed=np.random.default_rng(pixels))[0]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed_predictions(model: SFSRM, frame: np.ndarray, device: str, repeats: int, **options) -> dict:
    """Seconds of the first and (median) the next ``repeats`` predictions, and the peak memory growth (MiB)."""
    seconds, peaks = [], []
    for _ in range(1 + repeats):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS() as memory:
            start = time.perf_counter()
            sr = model.predict(frame, pixel_size_nm=100.0, progress=False, **options).sr
            _sync(device)
            seconds.append(time.perf_counter() - start)
        peaks.append(torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else memory.mib)
    return {"first": seconds[0], "warm": statistics.median(seconds[1:]), "peak_mib": max(peaks),
            "output": sr.shape[0]}


def cold_child(pixels: int, ensemble: bool, threads: int, device: str, name: str = MODEL) -> None:
    """In a fresh process: import done, load the model, predict once; print the seconds as JSON."""
    torch.set_num_threads(threads)
    frame = widefield(pixels)
    model = SFSRM.from_pretrained(name, device=device)
    start = time.perf_counter()
    model.predict(frame, pixel_size_nm=100.0, ensemble=ensemble, progress=False)
    _sync(device)
    print(json.dumps({"cold": time.perf_counter() - start}))


def cold_seconds(pixels: int, ensemble: bool, threads: int, device: str, name: str = MODEL) -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-child", str(pixels), str(int(ensemble)),
               str(threads), device, name]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["cold"]


def stage_seconds(model: SFSRM, frame: np.ndarray, device: str) -> list[tuple[str, float]]:
    """Where one warm prediction's time goes: input check, SEN, edge map, each SRN, averaging."""
    stages = []

    def clock(name, function):
        start = time.perf_counter()
        value = function()
        _sync(device)
        stages.append((name, time.perf_counter() - start))
        return value

    with torch.inference_mode():
        checked = clock("input check (range statistics)", lambda: model.check_range(model.check_input(frame, 100.0),
                                                                                   100.0))
        del checked
        tiles = model._tiles(frame.shape, None, 24)
        denoised = clock("SEN (tiled)", lambda: predict_tiled(model.sen, normalize_input(frame), scale=1,
                                                               tile_px=tiles, overlap_px=24, device=model.device))
        inputs = clock("edge map", lambda: network_inputs(torch.from_numpy(denoised)[None, None], "srn")[0].numpy())
        outputs = []
        for index, network in enumerate([model.srn, *model.members]):
            turned = np.ascontiguousarray(np.rot90(inputs, index, axes=(-2, -1)))
            tiles = model._tiles(turned.shape[1:], None, 24)
            output = clock(f"SRN {index + 1} (tiled, turned {index}×90°)",
                           lambda: predict_tiled(network, turned, scale=4, tile_px=tiles, overlap_px=24,
                                                 device=model.device)[0])
            outputs.append(np.ascontiguousarray(np.rot90(output, -index)))
        clock("mean and disagreement", lambda: (np.mean(outputs, axis=0), ensemble_disagreement(outputs)))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--paper-sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="warm predictions per row (their median is shown)")
    parser.add_argument("--models", nargs="+", default=[MODEL],
                        help="shipped names or model folders (default: the shipped default model)")
    parser.add_argument("--cold-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        pixels, ensemble, threads, device, name = args.cold_child
        cold_child(int(pixels), bool(int(ensemble)), int(threads), device, name)
        return
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows, stages = [], []
    for device in devices:
        for name in args.models:
            model = SFSRM.from_pretrained(name, device=device)
            for pixels in args.sizes:
                frame = widefield(pixels)
                for label, ensemble in ((f"{name}, 3 SRNs", True), (f"{name}, 1st SRN", False)):
                    # the larger sizes take minutes a call: one warm call there
                    repeats = args.repeats if pixels <= 512 else 1
                    result = timed_predictions(model, frame, device, repeats, ensemble=ensemble)
                    cold = cold_seconds(pixels, ensemble, args.threads, device, name)
                    rows.append((label, pixels, result["output"], device, cold, result["warm"], result["peak_mib"]))
            stages.append((device, name, min(args.sizes), stage_seconds(model, widefield(min(args.sizes)), device)))
        model = build(PAPER, device)
        for pixels in args.paper_sizes:
            # no input check: these fresh networks have no measured training range to check against
            result = timed_predictions(model, widefield(pixels), device, 1, check_range=False)
            rows.append(("paper-size", pixels, result["output"], device, None, result["warm"], result["peak_mib"]))

    print(f"\nSFSRM inference — {args.threads} CPU thread(s), SEN → edge map → SRN ×4, tiled; cold = first call in a "
          "fresh process\n")
    print(f"| {'model':<26} | {'size':<14} | {'device':<6} | {'cold':>8} | {'warm':>8} | {'throughput':>12} | "
          f"{'peak memory':>11} | {'cold / warm':>11} |")
    print(f"|{'-' * 28}|{'-' * 16}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 13}|{'-' * 13}|")
    for label, pixels, output, device, cold, warm, peak in rows:
        cold_text = f"{cold:6.2f} s" if cold is not None else f"{'—':>8}"
        ratio = f"{cold / warm:11.2f}" if cold is not None else f"{'—':>11}"
        print(f"| {label:<26} | {f'{pixels}² → {output}²':<14} | {device:<6} | {cold_text} | {warm:6.2f} s | "
              f"{pixels**2 / warm / 1e6:6.3f} Mpx/s | {peak:7.0f} MiB | {ratio} |")
    for device, name, pixels, rows_of_stages in stages:
        total = sum(seconds for _, seconds in rows_of_stages)
        print(f"\nWhere a warm prediction of {pixels}² ({name}, 3 SRNs, {device}) spends its {total:.2f} s\n")
        print(f"| {'stage':<36} | {'time':>8} | {'share':>6} |")
        print(f"|{'-' * 38}|{'-' * 10}|{'-' * 8}|")
        for name, seconds in rows_of_stages:
            print(f"| {name:<36} | {seconds:6.2f} s | {seconds / total:6.1%} |")


if __name__ == "__main__":
    main()
