"""Fine-tune an SFSRM model on a user's registered widefield / SR pairs: checked, resampled to the model's grid, trained.

``microsr sfsrm finetune PAIRS_DIR --from filaments-x4 -o MODEL``. ``PAIRS_DIR`` holds
``widefield/NAME.tif`` and ``sr/NAME.tif`` (STORM, SIM, … of the same field; the same name pairs them).
Every pair is checked first (:func:`microsr.metrics.registration.pair_registration`): a shifted, flipped
or foreign SR image is refused with one line, before anything is trained. Pairs whose pixel sizes are
not the model's are resampled to its grid (widefield to the model's camera pixel, SR to that over the
model's scale), and the factors are reported. Each SRN of the ensemble is then trained from its own
weights on the pairs, fed the model's SEN output as at prediction time; the SEN is kept. The new model
folder has ``srn.pt`` and ``srn_1.pt``, … (training range measured on the user's widefield images),
``sen.pt`` and ``finetune.json`` (pairs, factors, checks).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from scipy import ndimage

from microsr.errors import InputError
from microsr.io import read_image, write_image
from microsr.io.images import pixel_size_of
from microsr.metrics.image_stats import apparent_psf_fwhm_nm
from microsr.metrics.registration import pair_registration
from microsr.models.sfsrm import (ENSEMBLE_FILES, NETWORK_FILES, SFSRMModel, load_generator, measured_range,
                                   normalize_input)
from microsr.models.serialize import save_network
from microsr.models.shipped import network_file
from microsr.train.sfsrm import train_sfsrm
from microsr.tiling import predict_tiled
from microsr.train.sfsrm_config import TrainConfig

#: Subfolders of a pairs folder.
PAIR_FOLDERS = ("widefield", "sr")

#: PSF FWHM (widefield pixels at the model's grid) the registration blurs with when the widefield image's
#: own spectrum shows none (a nearly empty field).
_FALLBACK_FWHM_PX = 2.5


def _single_frame(path: Path) -> np.ndarray:
    array = np.asarray(read_image(path).array, dtype=np.float32)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise InputError(f"{path}: shape {array.shape} is not one 2-D image")
    return array


def _resample(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` zoomed by ``factor`` keeping pixel areas aligned; area-averaged first when it shrinks."""
    if abs(factor - 1.0) < 1e-6:
        return image
    if factor < 1:  # anti-alias: what a larger pixel would have integrated
        image = ndimage.gaussian_filter(image, 0.5 / factor)
    return ndimage.zoom(image, factor, order=1, grid_mode=True, mode="reflect").astype(np.float32)


def prepare_pairs(pairs_dir: str | Path, model: SFSRMModel, out_dir: Path, *, widefield_pixel_nm: float | None = None,
                  sr_pixel_nm: float | None = None) -> list[dict]:
    """Check, resample and write every pair of ``pairs_dir`` to ``out_dir/{lr,hr}``; one record per pair.

    Raises
    ------
    InputError
        A missing folder or partner, an unknown pixel size, a pair too small, or a pair that is shifted,
        flipped or of another field (the message names the file and which).
    """
    pairs_dir = Path(pairs_dir)
    folders = [pairs_dir / name for name in PAIR_FOLDERS]
    for folder in folders:
        if not folder.is_dir():
            raise InputError(f"{folder} is missing: put widefield images in {folders[0]} and the SR images of the "
                             f"same fields, with the same names, in {folders[1]}")
    names = sorted(p.name for p in folders[0].iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not names:
        raise InputError(f"no TIFF files in {folders[0]}: put the widefield images there")
    scale = int(round(model.scale))
    model_pixel = model.pixel_size_nm
    records = []
    for name in names:
        partner = folders[1] / name
        if not partner.exists():
            raise InputError(f"{name} is in {folders[0]} but not in {folders[1]}: a pair needs the same file name")
        wf_data, sr_data = read_image(folders[0] / name), read_image(partner)
        wf_pixel = pixel_size_of(wf_data, widefield_pixel_nm, folders[0] / name, camera=True)
        sr_pixel = pixel_size_of(sr_data, sr_pixel_nm, partner)
        if wf_pixel is None or sr_pixel is None:
            raise InputError(f"{name}: the pixel sizes are not in the files: pass --widefield-pixel-size-nm and "
                             "--sr-pixel-size-nm")
        widefield = _resample(_single_frame(folders[0] / name), wf_pixel / model_pixel)
        sr = _resample(_single_frame(partner), sr_pixel / (model_pixel / scale))
        height = min(widefield.shape[0], sr.shape[0] // scale)
        width = min(widefield.shape[1], sr.shape[1] // scale)
        if min(height, width) < 32:
            raise InputError(f"{name}: {height}×{width} widefield pixels on the model's grid: too small to train on")
        widefield, sr = widefield[:height, :width], sr[:height * scale, :width * scale]
        fwhm_px = apparent_psf_fwhm_nm(widefield, model_pixel) / model_pixel
        registration = pair_registration(widefield, sr, scale, fwhm_px if np.isfinite(fwhm_px) else _FALLBACK_FWHM_PX)
        if registration.problem:
            raise InputError(f"{name}: {registration.problem}; fine-tuning on it would teach the network to invent")
        write_image(out_dir / "lr" / name, widefield, pixel_size_nm=model_pixel, axes="YX", overwrite=True)
        write_image(out_dir / "hr" / name, sr, pixel_size_nm=model_pixel / scale, axes="YX", overwrite=True)
        records.append({"name": name, "widefield_pixel_nm": wf_pixel, "sr_pixel_nm": sr_pixel,
                        "widefield_factor": round(wf_pixel / model_pixel, 4),
                        "sr_factor": round(sr_pixel / (model_pixel / scale), 4),
                        "correlation": round(registration.correlation, 3), "shape": [height, width]})
    return records


def _srn_inputs(model: SFSRMModel, lr_dir: Path, out_dir: Path) -> Path:
    """What the SRN sees at prediction time for each widefield image of ``lr_dir``: the model's SEN output (of
    the percentile-normalized frame), written to ``out_dir``; ``lr_dir`` itself for a model without SEN. An
    SRN fine-tuned on raw widefield images would meet a denoised, haze-free input at prediction time."""
    if model.sen is None:
        return lr_dir
    for path in sorted(lr_dir.iterdir()):
        image = read_image(path)
        denoised = predict_tiled(model.sen, normalize_input(np.asarray(image.array, dtype=np.float32)), scale=1,
                                 device=model.device)
        write_image(out_dir / path.name, denoised, pixel_size_nm=image.pixel_size_nm, axes="YX", overwrite=True)
    return out_dir


def _member_files(base: str | Path) -> list[tuple[str, Path]]:
    """``(file name, path)`` of each SRN of ``base``: ``srn.pt`` and its ensemble members ``srn_1.pt``, …"""
    first = network_file(base, "sfsrm", NETWORK_FILES["srn"])
    if first.parent.is_dir() and first.name == NETWORK_FILES["srn"]:
        members = sorted(first.parent.glob(ENSEMBLE_FILES), key=lambda p: int(p.stem.split("_")[1]))
        return [(first.name, first)] + [(member.name, member) for member in members]
    return [(NETWORK_FILES["srn"], first)]


def finetune(pairs_dir: str | Path, base: str | Path, output: str | Path, *, iterations: int = 300,
             learning_rate: float = 1e-4, widefield_pixel_nm: float | None = None, sr_pixel_nm: float | None = None,
             members: int | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Fine-tune ``base``'s SRNs on the pairs of ``pairs_dir`` into the model folder ``output``; a summary.

    Every SRN of the ensemble is fine-tuned from its own weights with its own seed (``members`` limits how
    many: the first ones), so the new model still carries a disagreement map. The SRNs learn from what
    they see at prediction time (the SEN's output); the training range saved with them is measured on the
    user's widefield images, which is what :meth:`SFSRMModel.check_range` measures at prediction time.
    """
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise InputError(f"{output} exists and is not empty: choose another folder or pass --overwrite")
    if members is not None and members < 1:
        raise InputError(f"--members {members}: give at least 1 (the SRNs of the ensemble to fine-tune)")
    model = SFSRMModel.from_pretrained(base, device="cpu")
    work = output / "finetune_run"
    records = prepare_pairs(pairs_dir, model, work / "pairs", widefield_pixel_nm=widefield_pixel_nm,
                            sr_pixel_nm=sr_pixel_nm)
    lr_dir = _srn_inputs(model, work / "pairs" / "lr", work / "pairs" / "srn_input")
    widefields = [np.asarray(read_image(path).array, dtype=np.float32)
                  for path in sorted((work / "pairs" / "lr").iterdir())]
    user_range = {"source": "folder", "pixel_size_nm": [model.pixel_size_nm, model.pixel_size_nm],
                  "measured": measured_range(widefields, model.pixel_size_nm)}
    smallest = min(min(r["shape"]) for r in records)
    patch = int(min(32, smallest // 2 * 2))
    trained_files = []
    for index, (name, start) in enumerate(_member_files(base)[:members]):
        config = TrainConfig(
            network="srn", model=model.srn_info["model"], init_from=str(start),
            data={"source": "folder", "folder": {"lr_dir": lr_dir, "hr_dir": work / "pairs" / "hr"},
                  "lr_patch_px": patch, "lr_pixel_nm": model.pixel_size_nm,
                  "pre_upsample": float(model.srn_info.get("pre_upsample", 1.0)), "batch_size": 8,
                  "validation_pairs": 8, "seed": index},
            stages=[{"name": "finetune", "iterations": int(iterations), "learning_rate": float(learning_rate),
                     "losses": {"msssim_l1": 1.0}}],
            output_dir=work / Path(name).stem, checkpoint_every=50,
            validate_every=max(1, min(100, int(iterations))))
        generator, info = load_generator(train_sfsrm(config, progress=progress), "srn")
        info.pop("format")  # save_network writes it again
        save_network(output / name, "sfsrm", generator, **{**info, "training_range": user_range})
        trained_files.append(name)
    if model.sen is not None:  # only a model folder has an SEN
        shutil.copy(network_file(base, "sfsrm", NETWORK_FILES["sen"]), output / NETWORK_FILES["sen"])
    summary = {"model": str(output), "from": str(base), "iterations": int(iterations), "networks": trained_files,
               "pairs": records}
    (output / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
