"""Training patches for SFSRM: drawn on the fly from the simulator, or cut from folders of registered TIFF pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from microsr.errors import InputError
from microsr.io import read_image
from microsr.models.sfsrm import normalize_input
from microsr.resample import bicubic_upsample
from microsr.synthetic import training_pair
from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.widefield import widefield_pair
from microsr.train.sfsrm_config import DataConfig
from microsr.train.streams import stream_rng, worker_indices

#: A high-SNR twin of each noisy simulated input: the denoiser's (SEN's) target.
CLEAN_SNR = 200.0


def total_scale(config: DataConfig, scale: int) -> int:
    """HR pixels per LR pixel: the network's scale times the pre-interpolation (validated integer)."""
    return int(round(scale * config.pre_upsample))


def simulated_pair(config: DataConfig, scale: int, network: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One (input, target) pair: SEN maps noisy LR to clean LR, SRN maps LR to HR (``scale``×)."""
    rng = np.random.default_rng(seed)
    snr = float(np.exp(rng.uniform(np.log(config.snr[0]), np.log(config.snr[1]))))
    if config.realistic is not None:
        return _realistic_pair(config, scale, network, snr, rng)
    common = dict(kind=config.kind, scale=max(total_scale(config, scale), 1), lr_patch_px=config.lr_patch_px,
                  lr_pixel_nm=config.lr_pixel_nm, fwhm_nm=config.fwhm_nm, density=config.density, seed=seed)
    low, high = training_pair(snr=snr, **common)
    if network == "sen":
        clean, _ = training_pair(snr=CLEAN_SNR, **common)
        return normalize_input(low), normalize_input(clean)
    return bicubic_upsample(normalize_input(low), config.pre_upsample), high.astype(np.float32)


def training_inputs(config: DataConfig, count: int = 64) -> list[np.ndarray]:
    """Widefield images like those the model trains on, as a user would give them (noisy, not normalized):
    what its training range is measured on (:func:`microsr.models.sfsrm.measured_range`)."""
    if config.source == "folder":
        names = sorted(p.name for p in Path(config.folder.lr_dir).glob("*.tif*"))[:count]
        return [np.asarray(read_image(Path(config.folder.lr_dir) / name).array, dtype=np.float32) for name in names]
    images = []
    for index in range(count):
        rng = np.random.default_rng((config.seed, 424_242, index))
        snr = float(np.exp(rng.uniform(np.log(config.snr[0]), np.log(config.snr[1]))))
        # 128-px fields: the spectrum-based numbers need more pixels than a training patch has, and users' images are larger still
        if config.realistic is not None:
            realistic = config.realistic
            images.append(widefield_pair(realistic.classes[index % len(realistic.classes)], scale=1, lr_patch_px=128,
                                         lr_pixel_nm=config.lr_pixel_nm, fwhm_nm=float(rng.uniform(*realistic.fwhm_nm)),
                                         snr=snr, haze=float(rng.uniform(*realistic.haze)),
                                         defocus_nm=float(rng.uniform(*realistic.defocus_nm)),
                                         defects=AcquisitionDefects.realistic() if realistic.camera_defects else None,
                                         seed=rng).noisy)
        else:
            images.append(training_pair(config.kind, scale=1, lr_patch_px=128, lr_pixel_nm=config.lr_pixel_nm,
                                        fwhm_nm=config.fwhm_nm, snr=snr, density=config.density, seed=rng)[0])
    return images


def _realistic_pair(config: DataConfig, scale: int, network: str, snr: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulated_pair` from :func:`microsr.synthetic.widefield.widefield_pair`: the SEN learns to remove
    noise and camera defects (the haze is signal to it), the SRN to resolve the in-focus plane only."""
    realistic = config.realistic
    draw = lambda bounds: float(rng.uniform(*bounds))  # noqa: E731
    pair = widefield_pair(realistic.classes[int(rng.integers(len(realistic.classes)))],
                          scale=max(total_scale(config, scale), 1), lr_patch_px=config.lr_patch_px,
                          lr_pixel_nm=config.lr_pixel_nm, fwhm_nm=draw(realistic.fwhm_nm), snr=snr,
                          haze=draw(realistic.haze), defocus_nm=draw(realistic.defocus_nm),
                          defects=AcquisitionDefects.realistic() if realistic.camera_defects else None, seed=rng)
    if network == "sen":
        return normalize_input(pair.noisy), normalize_input(pair.clean)
    return bicubic_upsample(normalize_input(pair.noisy), config.pre_upsample), pair.target


class SimulatorPatches(IterableDataset):
    """An endless stream of simulated pairs; every worker and every run start draws its own seeds."""

    def __init__(self, config: DataConfig, scale: int, network: str, seed_offset: int = 0):
        self.config = config
        self.scale = scale
        self.network = network
        self.seed_offset = seed_offset

    def __iter__(self):
        for index in worker_indices():
            seed = self.config.seed * 1_000_003 + self.seed_offset * 7919 + index
            lr, target = simulated_pair(self.config, self.scale, self.network, seed)
            yield torch.from_numpy(lr)[None], torch.from_numpy(target)[None]


class FolderPatches(IterableDataset):
    """Random patches from registered pairs: ``lr_dir/NAME`` and ``hr_dir/NAME`` (HR = scale × LR)."""

    def __init__(self, config: DataConfig, scale: int, seed_offset: int = 0):
        scale = total_scale(config, scale)
        folder = config.folder
        names = sorted(p.name for p in Path(folder.lr_dir).glob("*.tif*"))
        if not names:
            raise InputError(f"no TIFF files in {folder.lr_dir}: put the low-resolution images there")
        self.pairs = []
        for name in names:
            hr_path = Path(folder.hr_dir) / name
            if not hr_path.exists():
                raise InputError(f"{name} is in {folder.lr_dir} but not in {folder.hr_dir}: pairs need the same name")
            lr = np.asarray(read_image(Path(folder.lr_dir) / name).array, dtype=np.float32)
            hr = np.asarray(read_image(hr_path).array, dtype=np.float32)
            if lr.ndim != 2 or hr.shape != (lr.shape[0] * scale, lr.shape[1] * scale):
                raise InputError(f"{name}: LR {lr.shape} and HR {hr.shape} are not a 2-D pair with HR = "
                                 f"{scale} × LR")
            if min(lr.shape) < config.lr_patch_px:
                raise InputError(f"{name}: LR {lr.shape} is smaller than data.lr_patch_px {config.lr_patch_px}")
            self.pairs.append((normalize_input(lr), normalize_input(hr)))
        self.config = config
        self.scale = scale
        self.seed_offset = seed_offset

    def __iter__(self):
        rng = stream_rng(self.config.seed, self.seed_offset)
        size = self.config.lr_patch_px
        while True:
            lr, hr = self.pairs[rng.integers(len(self.pairs))]
            y = int(rng.integers(lr.shape[0] - size + 1))
            x = int(rng.integers(lr.shape[1] - size + 1))
            s = self.scale
            lr_patch = lr[y:y + size, x:x + size]
            hr_patch = hr[y * s:(y + size) * s, x * s:(x + size) * s]
            flips = rng.integers(0, 2, size=2)
            rotations = int(rng.integers(4))
            if flips[0]:
                lr_patch, hr_patch = lr_patch[::-1], hr_patch[::-1]
            lr_patch, hr_patch = np.rot90(lr_patch, rotations), np.rot90(hr_patch, rotations)
            lr_patch = bicubic_upsample(lr_patch, self.config.pre_upsample)  # paper: 1.25× for ×5/×10
            yield (torch.from_numpy(np.ascontiguousarray(lr_patch))[None],
                   torch.from_numpy(np.ascontiguousarray(hr_patch))[None])


def validation_pairs(config: DataConfig, scale: int, network: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed validation batch from seeds the training stream never draws."""
    if config.source == "folder":
        stream = iter(FolderPatches(config, scale, seed_offset=999_983))
        pairs = [next(stream) for _ in range(config.validation_pairs)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    pairs = [simulated_pair(config, scale, network, seed=-(i + 1) % (2**31)) for i in range(config.validation_pairs)]
    return (torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None],
            torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None])
