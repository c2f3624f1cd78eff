"""Two iterations of every training task under Lightning DDP on CPU (2 processes, gloo), in one launch.

Run as a script (``python ddp_every_task.py FOLDER``): Lightning's DDP launcher starts a copy of it for
rank 1, which runs the same trainings in step with rank 0. Not a test module itself (tests/train/test_ddp.py
runs it), because the launcher re-executes the command that started it.
"""

import sys
from pathlib import Path

import zarr

from microsr.synthetic.llsm import simulate_llsm
from microsr.train.rdl import RDLTrainConfig, train_rdl
from microsr.train.selfsup import load_selfsup_config, train_selfsup
from microsr.train.sfsrm import train_sfsrm
from microsr.train.sfsrm_config import TrainConfig

DDP = {"devices": 2, "accelerator": "cpu", "strategy": "ddp", "checkpoint_every": 50, "validate_every": 1000}


def main(folder: Path) -> None:
    stack = folder / "noisy.zarr"
    if not stack.exists():  # made before the first training launches the copy, which finds it
        data = simulate_llsm(shape=(4, 8, 32, 32), specimen="mixed", photons=30, seed=3)
        array = zarr.open_array(str(stack), mode="w", shape=data.noisy.shape, chunks=(1, 8, 32, 32), dtype="float32")
        array[:] = data.noisy
        array.attrs["voxel_size_nm"] = list(data.voxel_size_nm)
    for network in ("sen", "srn"):
        train_sfsrm(TrainConfig.model_validate({
            "network": network, "model": {"features": 4, "blocks": 1, "growth": 4, "scale": 1 if network == "sen" else 2},
            "data": {"lr_patch_px": 16, "snr": [10, 20], "batch_size": 2, "validation_pairs": 1, "seed": 3},
            "stages": [{"name": "s1", "iterations": 2, "learning_rate": 1e-3, "losses": {"msssim_l1": 1.0}}],
            "output_dir": str(folder / f"sfsrm_{network}"), **DDP}), progress=False)
    models = {"sr": {"features": 4, "groups": 1, "blocks_per_group": 1, "reduction": 2},
              "denoise": {"features": 4, "mpe_groups": 1, "pfe_groups": 1, "merged_groups": 1, "blocks": 1,
                          "reduction": 2}}
    for task, model in models.items():
        train_rdl(RDLTrainConfig.model_validate({
            "task": task, "model": model, "iterations": 2, "output_dir": str(folder / f"rdl_{task}"),
            "data": {"patch_px": 32, "field_px": 48, "batch_size": 2, "validation_pairs": 1, "specimens": ["filaments"],
                     "photons": [20, 50]}, **DDP}), progress=False)
    train_selfsup(load_selfsup_config(None, stack=stack, mode="tis", iterations=2, output_dir=folder / "selfsup",
                                      model={"features": 4, "groups": 1, "blocks": 1, "reduction": 2},
                                      patch_size=(4, 16, 16), batch_size=1, validation_patches=1, **DDP),
                  progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
