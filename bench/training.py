"""Benchmark: training throughput of every trainer — iterations/s, the share spent making data, GFLOP/s vs peak.

Each row runs the project's own trainer (``train_sfsrm``, ``train_rdl``, ``train_selfsup``: the code the
CLI runs) for a short run and times, inside :func:`microsr.train.fit.fit`, every batch the training loop
draws from its data stream. The loop time runs from the first batch to the end of the fit, so start-up
(imports, Lightning, the validation batch) and the export after it (which simulates inputs to record the
training range) are left out; the data share is the time spent drawing batches
(simulating or reading patches, on the training process, as the trainers do) over the loop time.

The arithmetic a training iteration does (forward, backward, the extra passes of GAR, the perceptual
network and the discriminator) is counted by torch's ``FlopCounterMode`` over a second short run, data
drawing excluded, and divided by the measured time per iteration: the achieved GFLOP/s, against the
machine's peak probed by a large matrix product and a large 2-D convolution at the same thread count.

Usage: python bench/training.py [--iterations 30] [--threads 2] [--only selfsup-tis ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils.flop_counter import FlopCounterMode

import microsr.train.fit as fit_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class TimedBatches:
    """A data loader whose batches are timed (and drawn outside any FLOP counting)."""

    def __init__(self, loader, clock: dict):
        self.loader, self.clock = loader, clock

    def __iter__(self):
        iterator = iter(self.loader)
        while True:
            start = time.perf_counter()
            with _disable_current_modes():
                batch = next(iterator)
            now = time.perf_counter()
            if "first" not in self.clock:
                self.clock["first"] = now  # the loop starts once the first batch is in
            else:
                self.clock["data"] += now - start
            yield batch


def timed_run(train, config, count_flops: bool = False) -> dict:
    """Run ``train(config)`` with its batches timed; returns the loop time, data time and FLOPs."""
    clock = {"data": 0.0}
    original = fit_module.fit

    def fit(module, make_loader, settings, *, progress=True):
        done = original(module, lambda resumes: TimedBatches(make_loader(resumes), clock), settings, progress=False)
        clock["end"] = time.perf_counter()  # the loop ends here: the export after it (its range check) is no step
        return done

    counter = FlopCounterMode(display=False) if count_flops else None
    fit_module.fit = fit
    try:
        with counter or nullcontext():
            train(config, progress=False)
    finally:
        fit_module.fit = original
    clock["loop"] = clock["end"] - clock["first"]
    clock["flops"] = counter.get_total_flops() if counter else 0
    return clock


def peak_gflops() -> dict:
    """The machine's float32 peak as torch reaches it: a 2048² matrix product and a 64-channel 3×3 convolution."""
    def rate(function, flops):
        function()
        start, runs = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            function()
            runs += 1
        return flops * runs / (time.perf_counter() - start) / 1e9

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    conv, x = torch.nn.Conv2d(64, 64, 3, padding=1), torch.randn(8, 64, 64, 64)
    with torch.inference_mode():
        return {"matmul": rate(lambda: a @ b, 2 * 2048**3),
                "conv": rate(lambda: conv(x), 2 * 64 * 64 * 9 * 8 * 64 * 64)}


def sfsrm_config(example: str, iterations: int, folder: Path):
    from microsr.train.sfsrm import load_sfsrm_config

    config = load_sfsrm_config(EXAMPLES / example)
    stage = config.stages[0].model_copy(update={"iterations": iterations})
    return config.model_copy(update={"stages": [stage], "output_dir": folder, "validate_every": 10**6,
                                     "checkpoint_every": 10**6})


def rdl_config(example: str, iterations: int, folder: Path, sr_model: Path | None = None):
    from microsr.io.config_files import read_yaml
    from microsr.train.config import load_config
    from microsr.train.rdl import RDLTrainConfig

    settings = read_yaml(EXAMPLES / example)
    if sr_model is not None:  # the example names a DFCAN of its own run folder, which may not exist here
        settings["data"] = {**settings["data"], "sr_model": str(sr_model)}
    return load_config(None, RDLTrainConfig, {**settings, "iterations": iterations, "output_dir": folder,
                                              "validate_every": 10**6, "checkpoint_every": 10**6})


def selfsup_config(mode: str, iterations: int, folder: Path, stack: Path):
    from microsr.train.selfsup import load_selfsup_config

    return load_selfsup_config(None, stack=stack, mode=mode, iterations=iterations, output_dir=folder,
                               validate_every=10**6, checkpoint_every=10**6)


def llsm_stack(folder: Path) -> Path:
    """The fresh 10 × 16 × 64² stack of ``bench/selfsup_speed.py``."""
    import numpy as np
    import zarr

    from microsr.synthetic.llsm import simulate_llsm

    data = simulate_llsm(shape=(10, 16, 64, 64), voxel_size_nm=(200.0, 92.6, 92.6), photons=8.0, seed=2026)
    path = folder / "stack.zarr"
    out = zarr.create_array(store=str(path), shape=data.noisy.shape, chunks=(1, 16, 64, 64), dtype="float32")
    out[:] = data.noisy.astype(np.float32)
    out.attrs.update({"axes": "TZYX", "voxel_size_nm": list(data.voxel_size_nm)})
    return path


def trainers(folder: Path) -> dict:
    """name -> (train function, make_config(iterations, output_folder), what the network is)."""
    from microsr.train.rdl import train_rdl
    from microsr.train.selfsup import train_selfsup
    from microsr.train.sfsrm import train_sfsrm

    stack = llsm_stack(folder)
    sr_model = folder / "dfcan" / "model.pt"
    return {
        "sfsrm-sen": (train_sfsrm, lambda n, out: sfsrm_config("sfsrm_sen_realistic.yaml", n, out),
                      "SFSRM SEN 32×3, batch 8 × 32², stage 1"),
        "sfsrm-srn": (train_sfsrm, lambda n, out: sfsrm_config("sfsrm_srn_realistic_x4.yaml", n, out),
                      "SFSRM SRN 32×4 ×4, batch 8 × 24², stage 1"),
        "sfsrm-srn-x10": (train_sfsrm, lambda n, out: sfsrm_config("sfsrm_srn_dots_x10.yaml", n, out),
                          "SFSRM SRN 32×4 ×10 (paper tables), batch 4 × 16²"),
        "dfcan": (train_rdl, lambda n, out: rdl_config("rdl_sr_tirf.yaml", n, out),
                  "rDL DFCAN 16×2×2, batch 4 × 9 × 64²"),
        "rdl-denoiser": (train_rdl, lambda n, out: rdl_config("rdl_denoise_tirf.yaml", n, out, sr_model),
                         "rDL denoiser 16, batch 4 × 3 orientations × 64²"),
        "selfsup-tis": (train_selfsup, lambda n, out: selfsup_config("tis", n, out, stack),
                        "TiS-rDL RCAN3D 8×1×2 (CLI default), batch 2 × 8×32²"),
        "selfsup-sis": (train_selfsup, lambda n, out: selfsup_config("sis", n, out, stack),
                        "SiS-rDL RCAN3D 8×1×2 (CLI default), batch 2 × 8×32²"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="timed iterations per trainer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None, help="trainers to run (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = peak_gflops()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found = trainers(folder)
        names = args.only or list(found)
        if "rdl-denoiser" in names:  # the denoiser's data need a DFCAN: train a brief one
            train, make, _ = found["dfcan"]
            train(make(2, folder / "dfcan"), progress=False)
        for name in names:
            train, make, what = found[name]
            clock = timed_run(train, make(args.iterations, folder / f"{name}_timed"))
            flops = timed_run(train, make(3, folder / f"{name}_flops"), count_flops=True)["flops"] / 3
            per_iteration = clock["loop"] / max(1, args.iterations - 1)
            rows.append((name, what, 1 / per_iteration, clock["data"] / clock["loop"],
                         flops / per_iteration / 1e9, flops / 1e9))
    print(f"\nTraining throughput — {args.threads} CPU thread(s), {args.iterations} iterations per trainer; "
          f"machine peak (torch, float32): matmul {peak['matmul']:.0f} GFLOP/s, conv {peak['conv']:.0f} GFLOP/s\n")
    print("| trainer | network, batch | iterations/s | data share | GFLOP/iteration | GFLOP/s | of conv peak |")
    print("|---|---|---|---|---|---|---|")
    for name, what, rate, share, gflops, per in rows:
        print(f"| {name} | {what} | {rate:.2f} | {share:.0%} | {per:.2f} | {gflops:.1f} | "
              f"{gflops / peak['conv']:.0%} |")


if __name__ == "__main__":
    main()
