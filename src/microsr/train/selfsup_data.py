"""Self-supervised rDL training patches for lattice light-sheet stacks: interleaved time points (TiS) or z-slices (SiS).

Neither TiS-rDL nor SiS-rDL needs a high-SNR partner: the noisy recording supervises itself [1]_.

- **TiS** (temporally interleaved): volume ``t`` is the input, a neighbouring volume ``t ± 1`` the
  target (:func:`tis_pairs`). The specimen barely moves between two volumes at 10 volumes/s, while
  the camera noise of the two is independent, so the network can only learn the shared signal.
- **SiS** (spatially interleaved): one volume is split into its odd and even z-slices
  (:func:`sis_split`); each set is the input and the other the target. Neighbouring planes of a
  stack sampled at or below Nyquist in z carry nearly the same signal and independent noise. They do
  lie one plane apart, though: trained on them alone, a network returns the mean of the two
  neighbours of each plane, the specimen blurred along z by the gap. :func:`microsr.losses.gap_amending_loss`
  amends the target by the gap as the network itself estimates it.

:class:`SelfSupervisedPatches` streams the training patches, reading only each patch's region from a
lazily opened stack (:func:`open_volume_stack`).

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes", Nat. Biotechnol. 41, 367-377 (2023): Fig. 5 (TiS-rDL),
       Fig. 6 and Extended Data Fig. 7 (SiS-rDL, gap-amending regularization).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from microsr.errors import InputError
from microsr.io.volumes import check_volume_axes, open_volume_stack
from microsr.models.selfsup import MODES, probe_normalization, sis_split
from microsr.train.streams import stream_rng


def tis_pairs(n_time: int) -> list[tuple[int, int]]:
    """(input, target) time points of TiS-rDL: each odd volume with the even one before it, both ways.

    Time points ``2k`` and ``2k + 1`` form a pair, used in both directions: ``(2k + 1 → 2k)`` and
    ``(2k → 2k + 1)``. Every pair joins an odd and an even time point, so the two carry independent
    noise, and no volume is ever its own target (the network would learn to copy the noise). With
    an odd number of time points the last one has no partner and is left out.

    Parameters
    ----------
    n_time : int
        Time points in the stack.

    Returns
    -------
    list of (int, int)
        ``(input_t, target_t)`` pairs.

    Raises
    ------
    InputError
        Fewer than 2 time points.

    Examples
    --------
    >>> tis_pairs(4)
    [(1, 0), (0, 1), (3, 2), (2, 3)]
    """
    n_time = int(n_time)
    if n_time < 2:
        raise InputError(f"TiS-rDL needs at least 2 time points to pair, the stack has {n_time}: record a time "
                         "series, or use SiS-rDL (mode 'sis'), which pairs z-slices of single volumes")
    pairs = []
    for even in range(0, n_time - 1, 2):
        pairs += [(even + 1, even), (even, even + 1)]
    return pairs


def _patch_shape(patch_size) -> tuple[int, int, int]:
    if isinstance(patch_size, (int, np.integer)):
        patch_size = (patch_size,) * 3
    shape = tuple(int(s) for s in patch_size)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"patch size {patch_size} must be 3 positive numbers of voxels (z, y, x)")
    return shape


class SelfSupervisedPatches(IterableDataset):
    """An endless stream of TiS-rDL or SiS-rDL training patches cut from one noisy ``(T, Z, Y, X)`` stack.

    Each sample reads only its own region from the stack (of the one or two time points it needs),
    so a stack far larger than memory trains as well as a small one.

    - ``mode="tis"``: a random pair of :func:`tis_pairs`; input and target are the same
      ``(pz, py, px)`` region of the two volumes.
    - ``mode="sis"``: a random volume; a region of ``2·pz`` planes is split by :func:`sis_split` into
      odd (input) and even (target) slices of ``pz`` planes each. Half of the samples are reversed
      (even slices the input) and flipped along z, so that input slice ``j`` still lies between target
      slices ``j`` and ``j + 1`` as :func:`microsr.losses.gap_amending_loss` and :func:`microsr.losses.sis_loss` expect.

    Both are flipped at random in y and x and rotated by a random multiple of 90° in the y-x plane,
    identically (odd multiples only for square patches, which keep their shape).

    Intensities are normalized once per stack, from ``probe_patches`` patches at random places and
    time points (drawn with a fixed seed, so every run and worker agrees): the *background* is the
    10th percentile of the probe patches' medians (in sparse fluorescence many patches are mostly
    background, and a median ignores their few bright voxels), the *scale* is the 99.8th percentile of
    the probed voxels minus the background (the bright end of the structures). A patch becomes
    ``(raw − background) / scale``, so background is 0 and bright structure about 1.

    Background patches are rejected: a patch is kept when the mean of its normalized input and target
    is at least ``min_foreground_fraction``, i.e. when its mean signal above background reaches that
    fraction of the stack's bright-structure level (default 2 %: an empty patch averages 0, one with a
    few vesicles or a membrane crossing it several per cent). After ``max_tries`` rejections in a row
    the stream gives up with an :class:`InputError`.

    Parameters
    ----------
    stack : path or array-like
        A path :func:`open_volume_stack` opens (reopened in each worker), or a ``(T, Z, Y, X)`` array
        (NumPy, Zarr, :class:`TiffVolumeSeries`).
    mode : {"tis", "sis"}
        Temporally or spatially interleaved pairs.
    patch_size : int or (int, int, int)
        ``(pz, py, px)`` voxels of the input and of the target. SiS reads ``2·pz`` planes.
    background : float, optional
        Camera offset plus background (counts); default estimated as above.
    scale : float, optional
        Counts above background that normalize to 1; default estimated as above.
    min_foreground_fraction : float
        Rejection threshold (see above); 0 keeps every patch.
    max_tries : int
        Rejected patches in a row before giving up.
    probe_patches : int
        Patches read to estimate background and scale.
    augment : bool
        Random flips and 90° rotations in the y-x plane.
    seed, seed_offset : int
        Non-negative; patch positions and augmentations follow from them and the worker. A resumed run
        passes a new ``seed_offset`` to see new patches.

    Raises
    ------
    InputError
        Any error of :func:`open_volume_stack`; an unknown mode; a patch that does not fit the stack
        (SiS: ``2·pz`` planes) or ``pz < 2`` for SiS; fewer than 2 time points for TiS; negative seeds
        or a negative threshold; and, while iterating, no patch above the threshold in ``max_tries``.

    Examples
    --------
    >>> from microsr.synthetic.llsm import simulate_llsm
    >>> data = simulate_llsm(shape=(2, 8, 32, 32), seed=1)
    >>> noisy, target = next(iter(SelfSupervisedPatches(data.noisy, mode="tis", patch_size=(4, 16, 16))))
    >>> tuple(noisy.shape), noisy.dtype
    ((1, 4, 16, 16), torch.float32)
    """

    def __init__(self, stack, *, mode: str = "tis", patch_size=(16, 64, 64), background: float | None = None,
                 scale: float | None = None, min_foreground_fraction: float = 0.02, max_tries: int = 100,
                 probe_patches: int = 16, augment: bool = True, seed: int = 0, seed_offset: int = 0):
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}: use 'tis' (time points 2k ↔ 2k+1) or 'sis' (odd ↔ even "
                             "z-slices)")
        if seed < 0 or seed_offset < 0:
            raise InputError(f"seed ({seed}) and seed_offset ({seed_offset}) must be ≥ 0")
        if not (min_foreground_fraction >= 0 and math.isfinite(min_foreground_fraction)):
            raise InputError(f"min_foreground_fraction must be a number ≥ 0, got {min_foreground_fraction}")
        if max_tries < 1 or probe_patches < 1:
            raise InputError(f"max_tries ({max_tries}) and probe_patches ({probe_patches}) must be ≥ 1")
        self.path = None if hasattr(stack, "shape") else Path(stack)
        self._stack = open_volume_stack(self.path) if self.path is not None else stack
        shape = check_volume_axes(self._stack.shape, self.path or Path("stack"))
        self.shape = shape
        self.mode = mode
        self.patch_size = _patch_shape(patch_size)
        pz, py, px = self.patch_size
        n_time, nz, ny, nx = shape
        if mode == "tis":
            self.pairs = tis_pairs(n_time)
            self._read_z = pz
        else:
            if pz < 2:
                raise InputError(f"SiS patches need pz ≥ 2 (each slice between two of the other half), got {pz}")
            if nz < 2:
                sis_split(np.empty((nz, 1, 1)))  # raises the message on too few slices
            self.pairs = None
            self._read_z = 2 * pz
        if self._read_z > nz or py > ny or px > nx:
            need = f"({self._read_z}, {py}, {px})" + (f": SiS reads 2·pz = {self._read_z} planes" if mode == "sis"
                                                      else "")
            raise InputError(f"patch region {need} does not fit volumes of (Z, Y, X) = {(nz, ny, nx)}: use a "
                             "smaller patch_size")
        self.min_foreground_fraction = float(min_foreground_fraction)
        self.max_tries = int(max_tries)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.seed_offset = int(seed_offset)
        self.background, self.scale = self._probe(int(probe_patches), background, scale)

    @property
    def stack(self):
        """The ``(T, Z, Y, X)`` stack, opened in this process on first use."""
        if self._stack is None:
            self._stack = open_volume_stack(self.path)
        return self._stack

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_stack"] = None  # a worker reopens the path: memory maps would pickle their pixels
        return state

    def _region(self, rng: np.random.Generator) -> tuple[slice, slice, slice]:
        _, nz, ny, nx = self.shape
        _, py, px = self.patch_size
        z = int(rng.integers(nz - self._read_z + 1))
        y = int(rng.integers(ny - py + 1))
        x = int(rng.integers(nx - px + 1))
        return slice(z, z + self._read_z), slice(y, y + py), slice(x, x + px)

    def _read(self, t: int, region) -> np.ndarray:
        return np.asarray(self.stack[(int(t), *region)], dtype=np.float32)

    def _probe(self, count: int, background, scale) -> tuple[float, float]:
        _, py, px = self.patch_size
        return probe_normalization(self.stack, (self._read_z, py, px), count, background=background, scale=scale)

    def _candidate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        region = self._region(rng)
        if self.mode == "tis":
            t_in, t_target = self.pairs[int(rng.integers(len(self.pairs)))]
            source, target = self._read(t_in, region), self._read(t_target, region)
        else:
            source, target = sis_split(self._read(int(rng.integers(self.shape[0])), region))
            if rng.random() < 0.5:
                # Reversed, and flipped along z so input slice j still lies between target slices j and j+1.
                source, target = target[::-1], source[::-1]
        normalize = np.float32(1.0 / self.scale)
        background = np.float32(self.background)
        return (source - background) * normalize, (target - background) * normalize

    def _augmented(self, rng: np.random.Generator, source: np.ndarray, target: np.ndarray):
        if not self.augment:
            return source, target
        square = self.patch_size[1] == self.patch_size[2]
        turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        flip_y, flip_x = rng.random() < 0.5, rng.random() < 0.5

        def apply(volume):
            volume = np.rot90(volume, turns, axes=(1, 2))
            if flip_y:
                volume = volume[:, ::-1]
            if flip_x:
                volume = volume[:, :, ::-1]
            return volume

        return apply(source), apply(target)

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``(input, target)`` pair, float32 ``(1, pz, py, px)``, drawn with ``rng``.

        Raises
        ------
        InputError
            ``max_tries`` patches in a row were background.
        """
        for _ in range(self.max_tries):
            source, target = self._candidate(rng)
            signal = 0.5 * (float(source.mean()) + float(target.mean()))
            if self.min_foreground_fraction == 0 or signal >= self.min_foreground_fraction:
                source, target = self._augmented(rng, source, target)
                return tuple(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)[None])
                             for v in (source, target))
        raise InputError(f"no {self.mode.upper()} patch of {self.patch_size} (z, y, x) voxels had a mean signal of "
                         f"{self.min_foreground_fraction:g} of the bright-structure level (background "
                         f"{self.background:.4g}, scale {self.scale:.4g}) in {self.max_tries} tries: the stack may be "
                         "empty or mostly background; lower min_foreground_fraction, enlarge the patch, crop the "
                         "stack to the cell, or give background= explicitly")

    def __iter__(self):
        rng = stream_rng(self.seed, self.seed_offset)
        while True:
            yield self.sample(rng)
