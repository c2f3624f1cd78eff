"""What every trainer shares: the Lightning module skeleton, fit with checkpoints and resume, the run's sequence, loss records."""

from __future__ import annotations

import csv
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from microsr.errors import InputError
from microsr.report import training_figure
from microsr.train.config import RunSettings

log = logging.getLogger("microsr.train")


class NetworkTraining(L.LightningModule):
    """The skeleton of every training module: its configuration, an iteration count that checkpoints keep,
    and validation on a fixed batch.

    Subclasses build their networks, define ``training_step`` (ending in :func:`finish_step`),
    :meth:`trained_network` and :meth:`validation_metrics`.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": config.model_dump(mode="json")})
        # Counted here rather than by Lightning: the patch streams are endless, stage boundaries and GAR
        # ramps are in iterations, and a resumed run must continue the count of the killed one.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.validation: tuple[torch.Tensor, ...] | None = None

    def trained_network(self) -> torch.nn.Module:
        """The network that is exported (switched to eval mode while validating)."""
        raise NotImplementedError

    def validation_metrics(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """Scores of the network on the validation batch (already on the module's device)."""
        raise NotImplementedError

    @torch.no_grad()
    def _validate(self, step: int) -> None:
        if self.validation is None:
            return
        batch = tuple(t.to(self.device) for t in self.validation)
        network = self.trained_network()
        network.eval()
        metrics = self.validation_metrics(batch)
        network.train()
        self.log_dict(metrics, prog_bar=True)
        record_losses(self, step, "validation", float("nan"), metrics)


def run_training(config: RunSettings, build: Callable[[], NetworkTraining],
                 make_loader: Callable[[int], object], export: Callable[[NetworkTraining, Path], Path], *,
                 progress: bool = True) -> Path:
    """A whole training run, the same for every method: prepare ``config.output_dir``, seed, ``build()`` the
    module (after seeding, so its initial weights follow ``config.seed``), :func:`fit` it (resuming a killed
    run), ``export(module, output_dir)`` the model file, and plot the losses. Returns the model file; None in
    the other processes of a DDP run, which leave the export to the first."""
    output = prepare_output(config)
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = build()
    if not fit(module, make_loader, config, progress=progress):
        return None  # another DDP rank: the first one exports
    path = export(module, output)
    plot_losses(output / "losses.csv", output / "loss.png")
    return path


def prepare_output(config) -> Path:
    """Create the output folder and record the configuration the run was started with."""
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if not launched_copy():
        (output / "config.json").write_text(config.model_dump_json(indent=2))
    return output


def launched_copy() -> bool:
    """Whether this process is a copy of the command that Lightning's DDP launcher started for another rank
    (it sets ``LOCAL_RANK``/``NODE_RANK``): such a copy leaves the run's files to the first process."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def check_ranks_agree(trainer, module, output: Path) -> None:
    """After a DDP run: gather every rank's weights and record, in ``ddp.json``, how far they are from rank 0's
    (0 when DDP did its job: the same averaged gradients applied to the same start)."""
    # reshape, not view: channels-last parameters (RCAN3D's) are not contiguous in (out, in, z, y, x) order.
    weights = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    gathered = trainer.strategy.all_gather(weights)
    if trainer.is_global_zero:
        difference = float((gathered - gathered[0]).abs().max())
        (output / "ddp.json").write_text(json.dumps({"ranks": int(gathered.shape[0]),
                                                     "max_weight_difference": difference}) + "\n")
        if difference > 0:
            log.warning("DDP ranks ended with different weights (max difference %.3g): the run is not one "
                        "model; check the strategy", difference)


def fit(module, make_loader, config: RunSettings, *, progress: bool = True) -> bool:
    """Fit ``module`` until it has done ``config.total_iterations``, resuming from ``checkpoints/last.ckpt``.

    Shared by every trainer of the project (SFSRM, rDL SIM, self-supervised). ``make_loader(resumes)`` gives the training
    batches; a resumed run passes a new ``resumes`` count so it draws fresh simulated patches rather
    than replaying the ones already seen. The module must count its iterations in a buffer named
    ``iteration`` and stop the trainer itself when done: the patch streams are endless, and this
    lets a resumed run go on with more iterations than the first one had. Returns False in the other
    processes of a DDP run (they export nothing), True in the first.
    """
    # Lightning's advice for generic GAN loops does not apply here: the frozen feature network is in
    # eval mode on purpose, and checkpoints hold the state after each iteration, which is what resume needs.
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
    warnings.filterwarnings("ignore", message=".*manual optimization and every_n_train_steps.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    output = Path(config.output_dir)
    last = output / "checkpoints" / "last.ckpt"
    starts = output / "starts.txt"
    resumes = int(starts.read_text()) if starts.exists() else 0
    if launched_copy():  # the first process counted this start before it launched the copies
        resumes = max(0, resumes - 1)
    else:
        starts.write_text(f"{resumes + 1}\n")
    checkpoint = ModelCheckpoint(dirpath=output / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=config.checkpoint_every)
    if _iterations_in(last) >= config.total_iterations:  # finished before: just export again
        module.load_state_dict(torch.load(last, map_location="cpu", weights_only=False)["state_dict"])
        return not launched_copy()
    trainer = L.Trainer(max_epochs=-1, accelerator=config.accelerator,
                        devices=config.devices, strategy=config.strategy, callbacks=[checkpoint],
                        enable_progress_bar=progress, logger=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=output)
    try:
        trainer.fit(module, train_dataloaders=make_loader(resumes), ckpt_path=str(last) if last.exists() else None)
    except SystemExit:
        # Lightning answers Ctrl-C (and SIGTERM, which the CLI turns into one) by exiting with status 1;
        # it is an interrupt, and the run resumes from its last checkpoint: say so as every command does.
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    except (RuntimeError, KeyError) as exc:
        if last.exists() and ("checkpoint" in str(exc).lower() or "state_dict" in str(exc)):
            raise InputError(f"cannot resume from {last} ({str(exc).splitlines()[0][:100]}): it belongs "
                             "to another configuration; use a new output_dir") from None
        raise
    trainer.save_checkpoint(last)
    if trainer.world_size > 1:
        check_ranks_agree(trainer, module, output)
    return trainer.is_global_zero


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
    if losses_csv.exists():
        training_figure(losses_csv, path)


def finish_step(module, step: int, stage: str, loss: torch.Tensor, terms: dict) -> None:
    """What every trainer does after training step ``step``: log the loss, keep it and its ``terms``
    (tensors) in ``losses.csv``, call ``module._validate(step)`` when due, and stop after the last one."""
    module.log("loss", loss.detach(), prog_bar=True)
    record_losses(module, step, stage, float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()})
    if step % module.config.validate_every == 0 or step == module.config.total_iterations:
        module._validate(step)
    if step >= module.config.total_iterations:
        module.trainer.should_stop = True


def record_losses(module, step: int, stage: str, loss: float, terms: dict) -> None:
    """Append one step of a training module to its run's ``losses.csv`` (only the main process writes)."""
    if module.trainer is not None and module.trainer.is_global_zero:
        append_losses(Path(module.config.output_dir) / "losses.csv", step, stage, loss, terms)


def append_losses(path: Path, step: int, stage: str, loss: float, terms: dict) -> None:
    """Append to ``losses.csv``: a file, so the history survives a killed and resumed run."""
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["iteration", "stage", "loss", "term", "value"])
        for name, value in terms.items():
            writer.writerow([step, stage, loss, name, value])
