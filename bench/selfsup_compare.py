"""TiS-rDL and SiS-rDL against supervised and classical denoising on simulated lattice light-sheet stacks.

Like the paper's Extended Data Fig. 7 (paper 000), on data with known clean volumes:

* **PSNR vs temporal down-sampling** — vesicles (Golgi-like puncta) at 200-nm z-steps, 10 volumes/s.
  TiS-rDL, with and without GAR, is trained on the noisy training stack itself, kept at every 1st,
  2nd, 4th or 8th volume (the vesicles move 1×–8× farther between the two volumes of a pair).
  Against it: the noisy input,
  a Gaussian filter (its σ chosen per stack for the best PSNR against the truth: an oracle, the best
  any Gaussian can do), and the same network trained *supervised* on the training stack's clean
  volumes, which no real experiment has.
* **PSNR vs axial step** — vesicles and membranes imaged at 100, 300 and 600-nm z-steps over the same
  4.8 µm depth; SiS-rDL trained on odd ↔ even z-slices of the noisy training stack with and without the
  gap-amending regularization (GAR), with two training seeds at 300 and 600 nm, where GAR matters.
* **TiS-rDL against supervised** — the x1 model with GAR and the supervised one, at a constant and at
  the cosine learning rate (the configuration's default), two seeds each, scored with and without
  test-time augmentation (the mean over the 8 lateral rotations and flips).

The sweeps keep the learning rate constant, as when they were first measured.

Every model is evaluated on a held-out test stack (another seed: other vesicles, other noise), so
self-supervised and supervised models see the same amount of training data and are judged on data
neither trained on. PSNR and SSIM are 3-D, of the denoised counts minus the camera offset against the
clean expected photons, with the clean stack's peak-to-peak range as the data range; no fit, since
every method gives counts.

Usage
-----
python bench/selfsup_compare.py --train [--iterations 2400] [--sis-iterations 1200] [--jobs 2]  # 24 models, ~4.5 h on 2 cores
python bench/selfsup_compare.py [--figure bench_out/selfsup.png]          # tables from the trained models
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from microsr.train.selfsup_data import SelfSupervisedPatches

RUNS = Path("runs/selfsup_bench")
#: Expected signal photons at a typical vesicle's brightest voxel: a dim, fast LLSM recording.
PHOTONS = 8.0
FIELD_PX = 64
DEPTH_NM = 4800.0
TIS_STEP_NM = 200.0
TIS_FACTORS = (1, 2, 4, 8)
SIS_STEPS_NM = (100.0, 300.0, 600.0)
TRAIN_VOLUMES = {"tis": 32, "sis": 8}
TEST_VOLUMES = 4
TRAIN_SEED, TEST_SEED = 11, 10**6 + 7
#: Network of every bench model: bigger than the test-size CPU_SIZE, still minutes to train on a CPU.
MODEL = {"features": 16, "groups": 2, "blocks": 2, "reduction": 4}
GAUSSIAN_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
#: GAR weight of the "with GAR" models (the configuration's default), TiS and SiS alike.
GAR_WEIGHT = 0.5
#: Training seeds of the SiS-rDL models per axial step: GAR changes PSNR by a few tenths of a dB to
#: about 1 dB at the coarse steps, where the spread between seeds is the yardstick, so those are
#: trained twice. (At 100 nm, well below Nyquist, there is little gap to amend.)
SIS_SEEDS = {100.0: (0,), 300.0: (0, 1), 600.0: (0, 1)}
#: (label, run) of the models compared with and without test-time augmentation: the headline
#: question, TiS-rDL + GAR against supervised, at both learning-rate schedules and two seeds.
HEADLINE = tuple((f"{method}, {schedule} LR{', seed 1' if seed else ''}",
                  f"{run}{'_cos' if schedule == 'cosine' else ''}{'_s1' if seed else ''}")
                 for schedule in ("constant", "cosine") for seed in (0, 1)
                 for method, run in (("TiS-rDL + GAR ×1", "tis_x1_gar0.5"), ("supervised", "supervised"))
                 if not (schedule == "constant" and seed and run == "supervised"))


def simulate(step_nm: float, volumes: int, seed: int, specimen: str):
    from microsr.synthetic.llsm import simulate_llsm

    planes = int(round(DEPTH_NM / step_nm))
    return simulate_llsm(shape=(volumes, planes, FIELD_PX, FIELD_PX), voxel_size_nm=(step_nm, 92.6, 92.6),
                         specimen=specimen, photons=PHOTONS, seed=seed)


def write_zarr(path: Path, array: np.ndarray, voxel_size_nm) -> None:
    import zarr

    out = zarr.create_array(store=str(path), shape=array.shape, chunks=(1, *array.shape[1:]), dtype="float32",
                            overwrite=True)
    out[:] = array
    out.attrs.update({"axes": "TZYX", "voxel_size_nm": list(voxel_size_nm)})


def datasets(runs: Path) -> dict:
    """Simulate (once) every training and test stack; returns {name: {noisy, clean, offset, ...}} paths."""
    from microsr.synthetic.llsm import llsm_time_subsample

    data_dir = runs / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    plans = [(f"tis_x{f}", TIS_STEP_NM, "vesicles", f) for f in TIS_FACTORS]
    plans += [(f"sis_{int(s)}nm", s, "mixed", None) for s in SIS_STEPS_NM]
    for name, step, specimen, factor in plans:
        mode = "tis" if factor else "sis"
        for split, seed, volumes in (("train", TRAIN_SEED, TRAIN_VOLUMES[mode]), ("test", TEST_SEED, TEST_VOLUMES)):
            if split == "test" and mode == "tis" and factor != 1:
                found[f"{name}_test"] = found["tis_x1_test"]  # every TiS model denoises the same test stack
                continue
            key, stem = f"{name}_{split}", data_dir / f"{name}_{split}"
            if not (stem.with_suffix(".json")).exists():
                data = simulate(step, volumes * (factor or 1) if split == "train" else volumes, seed, specimen)
                if split == "train" and factor:
                    data = llsm_time_subsample(data, factor)
                write_zarr(stem.with_suffix(".zarr"), data.noisy, data.voxel_size_nm)
                np.save(stem.with_name(stem.name + "_clean.npy"), data.clean)
                stem.with_suffix(".json").write_text(json.dumps({"offset_adu": data.offset_adu,
                                                                 "voxel_size_nm": data.voxel_size_nm}))
            found[key] = {"noisy": str(stem.with_suffix(".zarr")), "clean": str(stem.with_name(stem.name + "_clean.npy")),
                          **json.loads(stem.with_suffix(".json").read_text())}
    return found


def model_plans(data: dict, iterations: int, sis_iterations: int) -> list[dict]:
    """One entry per model to train: name, mode, stack, GAR weight, patch size, seed."""
    plans = [{"name": _tis_name(f, gar), "mode": "tis", "stack": data[f"tis_x{f}_train"]["noisy"], "gar_weight": gar,
              "patch_size": (8, 32, 32)} for gar in (0.0, GAR_WEIGHT) for f in TIS_FACTORS]
    # A second seed of the headline model, against which the distance to the supervised model is judged.
    plans.append({"name": _tis_name(1, GAR_WEIGHT) + "_s1", "mode": "tis", "stack": data["tis_x1_train"]["noisy"],
                  "gar_weight": GAR_WEIGHT, "seed": 1, "patch_size": (8, 32, 32)})
    train = data["tis_x1_train"]
    plans.append({"name": "supervised", "mode": "tis", "stack": train["noisy"], "clean": train["clean"],
                  "offset_adu": train["offset_adu"], "gar_weight": 0.0, "patch_size": (8, 32, 32)})
    # The headline pair again with the cosine learning-rate schedule, two seeds each.
    for seed in (0, 1):
        suffix = "_cos" + (f"_s{seed}" if seed else "")
        plans.append({"name": _tis_name(1, GAR_WEIGHT) + suffix, "mode": "tis", "stack": train["noisy"],
                      "gar_weight": GAR_WEIGHT, "seed": seed, "patch_size": (8, 32, 32), "lr_schedule": "cosine"})
        plans.append({"name": "supervised" + suffix, "mode": "tis", "stack": train["noisy"], "clean": train["clean"],
                      "offset_adu": train["offset_adu"], "gar_weight": 0.0, "seed": seed, "patch_size": (8, 32, 32),
                      "lr_schedule": "cosine"})
    for step in SIS_STEPS_NM:
        for seed in SIS_SEEDS[step]:
            train = data[f"sis_{int(step)}nm_train"]
            planes = int(round(DEPTH_NM / step))
            for gar in (GAR_WEIGHT, 0.0):
                plans.append({"name": _sis_name(step, gar, seed), "mode": "sis", "stack": train["noisy"],
                              "gar_weight": gar, "seed": seed, "patch_size": (min(8, planes // 2), 32, 32)})
    for plan in plans:
        plan["iterations"] = sis_iterations if plan["mode"] == "sis" else iterations
    return plans


def _tis_name(factor: int, gar: float) -> str:
    return f"tis_x{factor}" + (f"_gar{gar:g}" if gar else "")


def _sis_name(step: float, gar: float, seed: int) -> str:
    return f"sis_{int(step)}nm_gar{gar:g}" + (f"_s{seed}" if seed else "")


class SupervisedPatches(SelfSupervisedPatches):
    """Noisy ↔ clean patches of the same region and time point, normalized like the noisy stack.

    The target is the clean expected photons plus the camera offset, i.e. the noisy counts' expected
    value: the same thing TiS-rDL learns from a second noisy volume, so both give counts.
    """

    def __init__(self, stack: str, clean: str, offset_adu: float, **kwargs):
        super().__init__(stack, mode="tis", **kwargs)
        self.target = np.load(clean, mmap_mode="r")
        self.offset_adu = float(offset_adu)

    def _candidate(self, rng):
        region = self._region(rng)
        t = int(rng.integers(self.shape[0]))
        target = np.asarray(self.target[(t, *region)], dtype=np.float32) + np.float32(self.offset_adu)
        normalize = np.float32(1.0 / self.scale)
        return ((self._read(t, region) - np.float32(self.background)) * normalize,
                (target - np.float32(self.background)) * normalize)


def train_one(plan: dict, runs: str) -> str:
    """Train one bench model in this (worker) process; returns its model.pt."""
    import torch

    from microsr.train.selfsup import load_selfsup_config, train_selfsup

    torch.set_num_threads(1)
    config = load_selfsup_config(None, stack=plan["stack"], mode=plan["mode"], model=MODEL,
                                 patch_size=plan["patch_size"], batch_size=4, iterations=plan["iterations"],
                                 learning_rate=5e-4, gar_weight=plan["gar_weight"], validate_every=250,
                                 lr_schedule=plan.get("lr_schedule", "constant"),
                                 seed=plan.get("seed", 0),
                                 output_dir=Path(runs) / plan["name"])
    patches = None
    if "clean" in plan:
        def patches(seed, seed_offset=0):
            return SupervisedPatches(plan["stack"], plan["clean"], plan["offset_adu"],
                                     patch_size=plan["patch_size"], seed=seed, seed_offset=seed_offset)
    log = Path(runs) / f"{plan['name']}.log"
    start = time.perf_counter()
    with open(log, "w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        path = train_selfsup(config, progress=False, patches=patches)
    return f"{plan['name']}: {time.perf_counter() - start:.0f} s -> {path}"


def train_all(runs: Path, iterations: int, sis_iterations: int, jobs: int) -> None:
    data = datasets(runs)
    plans = model_plans(data, iterations, sis_iterations)
    # Spawned one-thread workers: two of them use two cores better than one two-thread run, and
    # spawning keeps each worker's torch threads its own.
    os.environ.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        for line in pool.map(train_one, plans, [str(runs)] * len(plans)):
            print(line, flush=True)


def volume_scores(denoised: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """3-D PSNR and SSIM of photon volumes against the clean ones, data range the clean peak-to-peak."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    data_range = float(clean.max() - clean.min())
    psnr = peak_signal_noise_ratio(clean, denoised, data_range=data_range)
    win = min(7, *(s - (1 - s % 2) for s in clean.shape))  # odd and no larger than the thinnest axis
    ssim = structural_similarity(clean, denoised, data_range=data_range, win_size=win)
    return float(psnr), float(ssim)


def stack_scores(volumes, clean: np.ndarray) -> tuple[float, float]:
    scores = np.array([volume_scores(v, c) for v, c in zip(volumes, clean)])
    return tuple(float(s) for s in scores.mean(axis=0))


def gaussian_best(noisy: np.ndarray, clean: np.ndarray, offset: float, voxel_size_nm) -> tuple[float, float, float]:
    """The best Gaussian (σ in lateral pixels, axial σ scaled by the voxel aspect): (psnr, ssim, σ)."""
    from scipy.ndimage import gaussian_filter

    best = None
    aspect = voxel_size_nm[1] / voxel_size_nm[0]
    for sigma in GAUSSIAN_SIGMAS:
        filtered = [gaussian_filter(v - offset, (sigma * aspect, sigma, sigma)) for v in noisy]
        psnr, ssim = stack_scores(filtered, clean)
        if best is None or psnr > best[0]:
            best = (psnr, ssim, sigma)
    return best


def denoised(model_path: Path, noisy_path: str, offset: float, tta: bool = False) -> list[np.ndarray]:
    from microsr.pipelines.selfsup import SelfSupDenoiser
    from microsr.io.volumes import open_volume_stack

    denoiser = SelfSupDenoiser.from_pretrained(model_path, device="cpu", tta=tta)
    stack = open_volume_stack(noisy_path)
    background, scale = denoiser.measure(stack)
    return [denoiser.denoise_volume(stack[t], background=background, scale=scale) - offset
            for t in range(stack.shape[0])]


def evaluate(runs: Path, figure: Path | None) -> dict:
    data = datasets(runs)
    results: dict = {"temporal": {}, "axial": {}}
    test = data["tis_x1_test"]
    noisy = np.asarray(__import__("zarr").open_array(test["noisy"], mode="r")[:])
    clean = np.load(test["clean"])
    results["temporal"]["noisy"] = stack_scores(noisy - test["offset_adu"], clean)
    psnr, ssim, sigma = gaussian_best(noisy, clean, test["offset_adu"], test["voxel_size_nm"])
    results["temporal"][f"Gaussian (best σ {sigma:g} px)"] = (psnr, ssim)
    results["temporal"]["supervised"] = stack_scores(denoised(runs / "supervised" / "model.pt", test["noisy"],
                                                              test["offset_adu"]), clean)
    for gar in (0.0, GAR_WEIGHT):
        for factor in TIS_FACTORS:
            results["temporal"][_tis_label(factor, gar)] = stack_scores(
                denoised(runs / _tis_name(factor, gar) / "model.pt", test["noisy"], test["offset_adu"]), clean)
    results["temporal"][_tis_label(1, GAR_WEIGHT) + ", seed 1"] = stack_scores(
        denoised(runs / (_tis_name(1, GAR_WEIGHT) + "_s1") / "model.pt", test["noisy"], test["offset_adu"]), clean)
    # TiS-rDL + GAR at x1 against supervised: constant and cosine learning rate, each also with TTA.
    results["headline"] = {}
    for label, name in HEADLINE:
        for tta in (False, True):
            results["headline"][label + (", TTA" if tta else "")] = stack_scores(
                denoised(runs / name / "model.pt", test["noisy"], test["offset_adu"], tta=tta), clean)
    for step in SIS_STEPS_NM:
        test = data[f"sis_{int(step)}nm_test"]
        noisy = np.asarray(__import__("zarr").open_array(test["noisy"], mode="r")[:])
        clean = np.load(test["clean"])
        row = {"noisy": stack_scores(noisy - test["offset_adu"], clean)}
        psnr, ssim, sigma = gaussian_best(noisy, clean, test["offset_adu"], test["voxel_size_nm"])
        row["Gaussian (best σ)"] = (psnr, ssim)
        for gar in (0.0, GAR_WEIGHT):
            seeds = [stack_scores(denoised(runs / _sis_name(step, gar, seed) / "model.pt", test["noisy"],
                                           test["offset_adu"]), clean) for seed in SIS_SEEDS[step]]
            row[_sis_label(gar)] = tuple(float(v) for v in np.mean(seeds, axis=0))
            row[_sis_label(gar) + " seeds"] = [list(score) for score in seeds]
        results["axial"][f"{int(step)} nm"] = row
    if figure:
        plot(results, figure)
    return results


def _tis_label(factor: int, gar: float) -> str:
    return f"TiS-rDL{' + GAR' if gar else ''} ×{factor}"


def _sis_label(gar: float) -> str:
    return f"SiS-rDL {'with' if gar else 'without'} GAR"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    temporal = results["temporal"]
    for gar in (0.0, GAR_WEIGHT):
        left.plot(TIS_FACTORS, [temporal[_tis_label(f, gar)][0] for f in TIS_FACTORS], "o-",
                  label=f"TiS-rDL {'with' if gar else 'without'} GAR")
    for name, style in (("supervised", "--"), ("noisy", ":")):
        left.axhline(temporal[name][0], ls=style, color="k" if name == "noisy" else "C2", label=name)
    left.set(xscale="log", xticks=TIS_FACTORS, xticklabels=[str(f) for f in TIS_FACTORS],
             xlabel="temporal down-sampling factor", ylabel="PSNR (dB)", title="vesicles, 200-nm steps")
    left.minorticks_off()
    left.legend()
    steps = list(results["axial"])
    for name in (_sis_label(GAR_WEIGHT), _sis_label(0.0), "Gaussian (best σ)", "noisy"):
        right.plot([int(s.split()[0]) for s in steps], [results["axial"][s][name][0] for s in steps], "o-",
                   label=name)
    right.set(xlabel="axial step (nm)", ylabel="PSNR (dB)", title="vesicles + membranes, 4.8 µm deep")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def print_tables(results: dict) -> None:
    print("\nPSNR (dB) / SSIM, vesicles at 200-nm steps, held-out stack")
    print("| method | PSNR | SSIM |\n|---|---|---|")
    for name, (psnr, ssim) in results["temporal"].items():
        print(f"| {name} | {psnr:.2f} | {ssim:.3f} |")
    print("\nPSNR (dB) / SSIM, TiS-rDL + GAR x1 against supervised; TTA: 8 lateral views averaged")
    print("| model | PSNR | SSIM |\n|---|---|---|")
    for name, (psnr, ssim) in results["headline"].items():
        print(f"| {name} | {psnr:.2f} | {ssim:.3f} |")
    steps = list(results["axial"])
    methods = [name for name in results["axial"][steps[0]] if not name.endswith("seeds")]
    print("\nPSNR (dB) / SSIM vs axial step, vesicles + membranes, held-out stack")
    print("| method | " + " | ".join(steps) + " |\n|---|" + "---|" * len(steps))
    for name in methods:
        print(f"| {name} | " + " | ".join(f"{results['axial'][s][name][0]:.2f} / {results['axial'][s][name][1]:.3f}"
                                          for s in steps) + " |")
    print(f"\nSiS-rDL PSNR (dB) per training seed {SIS_SEEDS}; the table above gives their mean")
    for name in methods:
        if name + " seeds" in results["axial"][steps[0]]:
            print(f"| {name} | " + " | ".join(" / ".join(f"{score[0]:.2f}" for score in results["axial"][s][name + " seeds"])
                                              for s in steps) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the 24 models first (resumes if killed)")
    parser.add_argument("--iterations", type=int, default=2400, help="TiS-rDL and supervised models")
    parser.add_argument("--sis-iterations", type=int, default=1200, help="SiS-rDL models")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once (one CPU thread each)")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    args = parser.parse_args(argv)
    if args.train:
        train_all(args.runs, args.iterations, args.sis_iterations, args.jobs)
    results = evaluate(args.runs, args.figure)
    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
