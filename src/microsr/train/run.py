"""Run a training configuration: Lightning trainer, checkpoints and resume, loss plot, exported weights."""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path

import torch

from microsr.errors import InputError
from microsr.train.config import RunSettings, TrainConfig

MODEL_FORMAT = "microsr-sfsrm-1"
log = logging.getLogger("microsr.train")


def _loader(config: TrainConfig, seed_offset: int):
    from torch.utils.data import DataLoader

    from microsr.train.data import FolderPatches, SimulatorPatches

    scale = config.model.scale
    dataset = (FolderPatches(config.data, scale, seed_offset) if config.data.source == "folder"
               else SimulatorPatches(config.data, scale, config.network, seed_offset))
    return DataLoader(dataset, batch_size=config.data.batch_size, num_workers=0)


def train(config: TrainConfig, *, progress: bool = True) -> Path:
    """Train (or resume) the run in ``config.output_dir``; returns the exported ``model.pt``.

    A run killed at any point resumes from ``checkpoints/last.ckpt`` when started again with the
    same configuration. ``devices``/``accelerator``/``strategy`` go to Lightning unchanged, so
    ``strategy: ddp`` with several devices scales across GPUs.
    """
    import lightning as L

    from microsr.train.data import validation_pairs
    from microsr.train.module import SFSRMTraining

    output = prepare_output(config)
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = SFSRMTraining(config)
    if module.perceptual_loss is not None:
        log.warning("perceptual loss features: %s", module.perceptual_loss.source)
        (output / "perceptual_features.txt").write_text(module.perceptual_loss.source + "\n")
    module.validation = validation_pairs(config.data, config.model.scale, config.network)
    fit(module, lambda resumes: _loader(config, seed_offset=resumes), config, progress=progress)
    return _finish(module, output)


def prepare_output(config) -> Path:
    """Create the output folder and record the configuration the run was started with."""
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.json").write_text(config.model_dump_json(indent=2))
    return output


def fit(module, make_loader, config: RunSettings, *, progress: bool = True) -> None:
    """Fit ``module`` until it has done ``config.total_iterations``, resuming from ``checkpoints/last.ckpt``.

    Shared by every trainer of the project (SFSRM, rDL). ``make_loader(resumes)`` gives the training
    batches; a resumed run passes a new ``resumes`` count so it draws fresh simulated patches rather
    than replaying the ones already seen. The module must count its iterations in a buffer named
    ``iteration`` and stop the trainer itself when done: the patch streams are endless, and this
    lets a resumed run go on with more iterations than the first one had.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    # Lightning's advice for generic GAN loops does not apply here: the frozen feature network is in
    # eval mode on purpose, and checkpoints hold the state after each iteration, which is what resume needs.
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
    warnings.filterwarnings("ignore", message=".*manual optimization and every_n_train_steps.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    output = Path(config.output_dir)
    last = output / "checkpoints" / "last.ckpt"
    starts = output / "starts.txt"
    resumes = int(starts.read_text()) if starts.exists() else 0
    starts.write_text(f"{resumes + 1}\n")
    checkpoint = ModelCheckpoint(dirpath=output / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=config.checkpoint_every)
    if _iterations_in(last) >= config.total_iterations:  # finished before: just export again
        module.load_state_dict(torch.load(last, map_location="cpu", weights_only=False)["state_dict"])
        return
    trainer = L.Trainer(max_epochs=-1, accelerator=config.accelerator,
                        devices=config.devices, strategy=config.strategy, callbacks=[checkpoint],
                        enable_progress_bar=progress, logger=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=output)
    try:
        trainer.fit(module, train_dataloaders=make_loader(resumes), ckpt_path=str(last) if last.exists() else None)
    except (RuntimeError, KeyError) as exc:
        if last.exists() and ("checkpoint" in str(exc).lower() or "state_dict" in str(exc)):
            raise InputError(f"cannot resume from {last} ({str(exc).splitlines()[0][:100]}): it belongs "
                             "to another configuration; use a new output_dir") from None
        raise
    trainer.save_checkpoint(last)


def _iterations_in(checkpoint: Path) -> int:
    """Generator iterations a checkpoint has done (0 when there is none)."""
    if not checkpoint.exists():
        return 0
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        return int(state["iteration"])
    except Exception as exc:  # a checkpoint cut short by a kill, or from another program
        raise InputError(f"cannot resume from {checkpoint} ({exc.__class__.__name__}): delete it to start "
                         "afresh, or use a new output_dir") from None


def _finish(module, output: Path) -> Path:
    model_path = export(module, output / "model.pt")
    plot_losses(output / "losses.csv", output / "loss.png")
    return model_path


def export(module, path: Path) -> Path:
    """Save the generator and what a user needs to apply it correctly (small: no optimizer state)."""
    config = module.config
    metrics = last_validation(Path(config.output_dir) / "losses.csv")
    torch.save({"format": MODEL_FORMAT, "network": config.network, "model": config.model.model_dump(),
                "lr_pixel_nm": config.data.lr_pixel_nm, "fwhm_nm": config.data.fwhm_nm,
                "pre_upsample": config.data.pre_upsample, "iterations": int(module.iteration),
                "validation": metrics, "state_dict": module.generator.state_dict()}, path)
    return path


def last_validation(losses_csv: Path) -> dict:
    """The last validation metrics recorded in ``losses.csv`` (empty if none)."""
    if not losses_csv.exists():
        return {}
    found = {}
    with open(losses_csv) as handle:
        for row in csv.DictReader(handle):
            if row["stage"] == "validation":
                found[row["term"]] = float(row["value"])
                found["iteration"] = int(row["iteration"])
    return found


def plot_losses(losses_csv: Path, path: Path) -> None:
    """Loss per term and validation metrics against iterations: what a person checks first."""
    from microsr.report import training_figure

    if losses_csv.exists():
        training_figure(losses_csv, path)
