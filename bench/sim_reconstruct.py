"""Benchmark: SIM pattern estimation, the SIM simulator and Wiener reconstruction, speed and memory; prints a table.

Usage: python bench/sim_reconstruct.py [--repeats 7] [--stream-sets 2000] [--threads 2]
                                       [--estimate-sizes 256 512 2048] [--simulate-sizes 512 2048]
Targets (issue 3): one reconstruction of 9 × 512² (parameters known) ≤ 50 ms median on 2 CPU cores;
estimation of a 256² set ≤ 1 s. Issue 19: estimation at 256² / 512² at least as fast as
napari-sim-processor (0.28 / 0.86 s), time and memory linear in the pixels (2048² in ≤ 16× the 512²
time, peak ≤ 1 GB); the simulator's memory linear too (2048² well under 1–2 GB).
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

from microsr.optics import ideal_otf
from microsr.sim.estimate import estimate_parameters
from microsr.sim.reconstruct import ReconstructionSettings, WienerReconstructor
from microsr.synthetic.sim_raw import simulate_sim

PIXEL_NM = 62.6
BACKGROUND = 102.0


def timed(function, repeats: int, device: torch.device):
    function()  # warm-up: plans FFTs, allocates
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stream-sets", type=int, default=2000, help="frame sets in the streaming row (0: skip)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the target machine has 2 cores)")
    parser.add_argument("--estimate-sizes", type=int, nargs="*", default=[256, 512, 2048],
                        help="frame sizes of the estimation rows (9 frames each)")
    parser.add_argument("--simulate-sizes", type=int, nargs="*", default=[512, 2048],
                        help="frame sizes of the simulator rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    otf = ideal_otf(1.35, 525.0, camera_pixel_nm=PIXEL_NM)
    rows = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

    estimate_seconds = {}
    for size in args.estimate_sizes:
        raw = simulate_sim(shape=(size, size), photons=30, seed=1).raw[0]
        # Large frames: fewer repeats (each takes seconds); the warm-up call is inside the peak too.
        repeats = max(3, args.repeats // 2) if size <= 1024 else 2
        with PeakRSS() as memory:
            seconds = timed(lambda: estimate_parameters(raw, PIXEL_NM, otf, background=BACKGROUND),
                            repeats, torch.device("cpu"))
        estimate_seconds[size] = seconds
        rows.append(("estimate (1 set)", f"9×{size}²", "cpu", seconds, f"{1 / seconds:>8.2f} sets/s", memory.mib))
        del raw

    for size in args.simulate_sizes:
        with PeakRSS() as memory:
            seconds = timed(lambda: simulate_sim(shape=(size, size), photons=30, seed=1),
                            3 if size <= 1024 else 1, torch.device("cpu"))
        rows.append(("simulate_sim (9 frames)", f"9×{size}²", "cpu", seconds, f"{1 / seconds:>8.2f} sets/s",
                     memory.mib))

    for size in (256, 512):
        data = simulate_sim(shape=(size, size), photons=30, seed=1, time_points=8)
        for device in devices:
            recon = WienerReconstructor(data.params, (size, size), PIXEL_NM, otf,
                                        ReconstructionSettings(background=BACKGROUND), device)
            for batch in (1, 8):
                raw = torch.as_tensor(data.raw[:batch]).to(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                with PeakRSS() as memory:
                    seconds = timed(lambda: recon(raw), args.repeats, device)
                peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else memory.mib)
                rows.append((f"reconstruct (batch {batch})", f"9×{size}²", device.type, seconds,
                             f"{batch / seconds:>8.1f} SR fr/s", peak))

    if args.stream_sets:
        rows.append(stream_row(args.stream_sets, otf))

    header = ("what", "size", "device", "median time", "throughput", "peak memory")
    print(f"\nSIM benchmark — torch {torch.__version__}, {args.threads} CPU thread(s)\n")
    print(f"| {header[0]:<28} | {header[1]:<12} | {header[2]:<6} | {header[3]:>11} | {header[4]:>17} | {header[5]:>11} |")
    print(f"|{'-' * 30}|{'-' * 14}|{'-' * 8}|{'-' * 13}|{'-' * 19}|{'-' * 13}|")
    for what, size, device, seconds, rate, mib in rows:
        print(f"| {what:<28} | {size:<12} | {device:<6} | {seconds * 1000:>8.1f} ms | "
              f"{rate:>17} | {mib:>7.0f} MiB |")
    sizes = sorted(estimate_seconds)
    for small, large in zip(sizes[:-1], sizes[1:]):
        pixels = (large / small) ** 2
        print(f"\nestimation {large}² / {small}²: {estimate_seconds[large] / estimate_seconds[small]:.1f}× the time "
              f"for {pixels:.0f}× the pixels (linear: ≤ {pixels:.0f}×)")


def stream_row(sets: int, otf):
    """Stream a long TIFF stack from disk to Zarr through the CLI's pipeline; memory must stay flat."""
    from microsr.io import to_tapyx
    from microsr.io.images import read_image
    from microsr.pipelines.sim import reconstruct_stack

    size = 128
    data = simulate_sim(shape=(size, size), photons=30, seed=2, time_points=4)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
        raw_path = Path(folder) / "long.tif"
        import tifffile

        frames = np.clip(np.round(data.raw), 0, 65535).astype(np.uint16).reshape(-1, size, size)
        stack = tifffile.memmap(raw_path, shape=(sets * 9, size, size), dtype=np.uint16)
        for t in range(sets):
            stack[t * 9:(t + 1) * 9] = frames[(t % 4) * 9:(t % 4 + 1) * 9]
        stack.flush()
        del stack
        lazy = to_tapyx(read_image(raw_path, lazy=True).array, 3, 3)
        with PeakRSS() as memory:
            start = time.perf_counter()
            reconstruct_stack(lazy, data.params, PIXEL_NM, otf, Path(folder) / "sr.zarr",
                              settings=ReconstructionSettings(background=BACKGROUND), device="cpu",
                              batch_size=8, progress=False)
            seconds = time.perf_counter() - start
    return (f"stream TIFF→Zarr ({sets} sets)", f"9×{size}²", "cpu", seconds / sets, f"{sets / seconds:>8.1f} SR fr/s",
            memory.mib)


if __name__ == "__main__":
    main()
