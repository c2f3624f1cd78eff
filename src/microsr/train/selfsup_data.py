"""Self-supervised rDL training samples for lattice light-sheet stacks: interleaved time points (TiS) or z-slices (SiS).

Neither TiS-rDL nor SiS-rDL needs a high-SNR partner: the noisy recording supervises itself [1]_.

- **TiS** (temporally interleaved): volume ``t`` is the input, a neighbouring volume ``t ± 1`` the
  target (:func:`tis_pairs`). The specimen barely moves between two volumes at 10 volumes/s, while
  the camera noise of the two is independent, so the network can only learn the shared signal.
- **SiS** (spatially interleaved): one volume is split into its odd and even z-slices
  (:func:`sis_split`); each set is the input and the other the target. Neighbouring planes of a
  stack sampled at or below Nyquist in z carry nearly the same signal and independent noise. They do
  lie one plane apart, though: trained on them alone, a network returns the mean of the two
  neighbours of each plane, the specimen blurred along z by the gap. :func:`gap_amending_loss`
  amends the target by the gap as the network itself estimates it.

:class:`SelfSupervisedPatches` streams the training patches, reading only each patch's region from a
lazily opened stack (:func:`open_volume_stack`).

Stacks being written
--------------------
Training on a stack that another program is still filling would read half-written volumes.
:func:`open_volume_stack` therefore refuses a stack that carries the *writing marker*:

- a Zarr array whose attributes hold ``"microsr_writing": true`` (``.zattrs`` in Zarr v2,
  ``zarr.json`` in v3), or
- a folder (a folder of TIFF volumes, or a Zarr store) holding a file named ``.writing``.

An acquisition or conversion script sets the marker before its first volume and removes it after the
last. (:class:`microsr.io.StackWriter` needs none: it writes to a hidden ``.partial`` sibling and
renames the finished stack into place.)

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes", Nat. Biotechnol. 41, 367-377 (2023): Fig. 5 (TiS-rDL),
       Fig. 6 and Extended Data Fig. 7 (SiS-rDL, gap-amending regularization).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from microsr.errors import InputError
from microsr.io import open_stack

#: Axes of every stack this module reads: time points, planes, rows, columns.
AXES = "TZYX"

#: Zarr attribute that marks a stack as still being written (see the module docstring).
WRITING_ATTRIBUTE = "microsr_writing"

#: File whose presence in a folder marks its stack as still being written.
WRITING_FILE = ".writing"

#: Volume files a folder stack is made of, one (Z, Y, X) volume per time point.
TIFF_SUFFIXES = (".tif", ".tiff")

#: Ways a self-supervised pair is made: "tis" (neighbouring time points), "sis" (odd / even z-slices).
MODES = ("tis", "sis")

#: Floor of the normalization scale: keeps an all-background stack from dividing by zero.
MIN_SCALE = 1e-6

# The intensity probe is seeded apart from the training seed, so every run, worker and resumed run
# on a stack normalizes it identically, and prediction can repeat the same numbers.
_PROBE_SEED = 20_230_367
# Voxels kept from each probe patch for the percentiles: plenty for a 99.8th percentile, and bounded
# so that large patches do not make the probe slow.
_PROBE_VOXELS = 65_536
_OPEN_VOLUMES = 8


def _natural_key(name: str):
    # Time points are often numbered without zero padding ("t2", "t10"): compare numbers as numbers.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class TiffVolumeSeries:
    """A folder of TIFF volumes, one ``(Z, Y, X)`` file per time point, seen as one ``(T, Z, Y, X)`` array.

    Only the headers are read when the series is made; a volume's pixels are read when indexed, and
    only the indexed region of it where the file allows (uncompressed TIFFs are memory-mapped).

    Parameters
    ----------
    files : sequence of Path
        The volumes in time order, all of one shape and type (checked by :func:`open_volume_stack`).
    shape : (int, int, int, int)
        ``(T, Z, Y, X)``.
    dtype : numpy dtype
        Type of the pixels on disk.
    """

    ndim = 4

    def __init__(self, files, shape: tuple[int, int, int, int], dtype):
        self.files = tuple(Path(f) for f in files)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def volume(self, t: int):
        """The lazy ``(Z, Y, X)`` array of time point ``t``."""
        if t not in self._open:
            if len(self._open) >= _OPEN_VOLUMES:
                # Each open volume holds a file handle or map; a long series would exhaust them.
                self._open.pop(next(iter(self._open)))
            self._open[t] = open_stack(self.files[t]).array
        return self._open[t]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, slice):
            volumes = [np.asarray(self.volume(t)[rest]) for t in range(*first.indices(self.shape[0]))]
            if not volumes:
                raise IndexError(f"time slice {first} selects no time point of a series of {self.shape[0]}")
            return np.stack(volumes)
        t = int(first)
        if not -self.shape[0] <= t < self.shape[0]:
            raise IndexError(f"time point {t} is outside a series of {self.shape[0]}")
        return np.asarray(self.volume(t % self.shape[0])[rest])

    def __array__(self, dtype=None, copy=None):
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def __getstate__(self):
        # Open maps and file handles stay in the process that opened them; a worker reopens its own.
        return {**self.__dict__, "_open": {}}


def _check_not_being_written(path: Path, attrs=None) -> None:
    marked = (path / WRITING_FILE).exists() if path.is_dir() else False
    if attrs is not None and bool(attrs.get(WRITING_ATTRIBUTE, False)):
        marked = True
    # Read from the metadata files themselves, before the store is opened: a store being written may
    # not open yet. Zarr v2 keeps attributes in .zattrs, v3 under "attributes" in zarr.json.
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        if marked or not (path / name).is_file():
            continue
        try:
            metadata = json.loads((path / name).read_text())
            attributes = metadata.get(key, {}) if key else metadata
            marked = bool(attributes.get(WRITING_ATTRIBUTE, False))
        except (OSError, ValueError, AttributeError):
            pass
    if marked:
        raise InputError(f"{path} is marked as being written (attribute {WRITING_ATTRIBUTE!r} = true or a "
                         f"{WRITING_FILE!r} file): wait until the acquisition or conversion has finished and "
                         "removed the marker, or train on a finished copy")


def _check_4d(shape, where: Path, axes: str | None = None) -> tuple[int, int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        hint = (" A single volume (Z, Y, X) has no time axis: save the time series as one 4-D stack or a "
                "folder of volumes." if len(shape) == 3 else "")
        raise InputError(f"{where}: stack of shape {shape} is not 4-D: expected axes (T, Z, Y, X), time "
                         f"points, planes, rows, columns.{hint}")
    if axes and sorted(axes.upper()) == sorted(AXES) and axes.upper() != AXES:
        raise InputError(f"{where}: stack of shape {shape} has axes {axes!r}: expected axes (T, Z, Y, X); "
                         "transpose it to that order before training")
    if min(shape) < 1:
        raise InputError(f"{where}: stack of shape {shape} is empty along an axis: expected (T, Z, Y, X) "
                         "with at least one of each")
    return shape


def _tiff_folder(folder: Path) -> TiffVolumeSeries:
    import tifffile

    files = sorted((p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(TIFF_SUFFIXES)
                    and not p.name.startswith(".")), key=lambda p: _natural_key(p.name))
    if not files:
        raise InputError(f"{folder} holds no TIFF volumes ({', '.join(TIFF_SUFFIXES)}): give a Zarr store or a "
                         "folder with one (Z, Y, X) TIFF per time point")
    shapes, dtypes = [], []
    for file in files:
        try:
            with tifffile.TiffFile(file) as tif:
                series = tif.series[0]
                shapes.append(tuple(int(s) for s in series.shape))
                dtypes.append(np.dtype(series.dtype))
        except Exception as exc:  # tifffile raises its own kinds on damaged files
            reason = str(exc).splitlines()[0][:100] if str(exc).strip() else "damaged file"
            raise InputError(f"cannot read {file} as TIFF ({type(exc).__name__}: {reason}): check that it is "
                             "a complete TIFF volume, or export it again") from None
    for file, shape in zip(files, shapes):
        if len(shape) != 3:
            raise InputError(f"{file}: volume of shape {shape} is not 3-D: each file of a folder holds one "
                             "(Z, Y, X) volume, so that the folder is a (T, Z, Y, X) stack")
    for file, shape in zip(files, shapes):
        if shape != shapes[0]:
            raise InputError(f"TIFF volumes in {folder} differ in shape: {files[0].name} is {shapes[0]} but "
                             f"{file.name} is {shape} (Z, Y, X); every time point needs the same volume size")
    dtype = np.result_type(*dtypes)
    return TiffVolumeSeries(files, (len(files), *shapes[0]), dtype)


def open_volume_stack(path: str | Path):
    """Open a lattice light-sheet time series as a lazy ``(T, Z, Y, X)`` array, reading no pixels yet.

    Parameters
    ----------
    path : str or Path
        A Zarr array (a ``.zarr`` folder, or any folder holding ``zarr.json`` or ``.zarray``); a folder
        of TIFF volumes, one ``(Z, Y, X)`` file per time point, in time order when sorted by name
        (numbers compared as numbers: ``t2`` before ``t10``); or one 4-D file that
        :func:`microsr.io.read_image` reads (TIFF, MRC, NumPy).

    Returns
    -------
    array-like
        Indexable like a NumPy array and with ``.shape`` ``(T, Z, Y, X)``: a Zarr array, a memory map,
        or a :class:`TiffVolumeSeries`. Indexing reads only what is asked for.

    Raises
    ------
    InputError
        A path that does not exist; a stack marked as being written (see the module docstring); a stack
        that is not 4-D or whose stated axes are not in (T, Z, Y, X) order (the message shows the
        shape); a folder without TIFFs or with TIFFs of different shapes; an unreadable file.

    Examples
    --------
    >>> stack = open_volume_stack("golgi.zarr")  # doctest: +SKIP
    >>> stack.shape, stack[3, 10:14, :64, :64].shape  # doctest: +SKIP
    ((200, 101, 512, 512), (4, 64, 64))
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path")
    if path.is_dir():
        _check_not_being_written(path)
        is_zarr = path.name.lower().rstrip("/").endswith(".zarr") or (path / "zarr.json").is_file() \
            or (path / ".zarray").is_file()
        if not is_zarr:
            series = _tiff_folder(path)
            return series
        if path.name.lower().endswith(".zarr"):
            image = open_stack(path)
            array, axes = image.array, image.axes
        else:
            import zarr

            try:
                array = zarr.open_array(str(path), mode="r")
            except Exception as exc:  # zarr raises its own kinds on damaged stores
                raise InputError(f"cannot read {path} as a Zarr array ({type(exc).__name__}): check that it is "
                                 "a complete Zarr array, not a group") from None
            axes = dict(array.attrs).get("axes")
        _check_not_being_written(path, getattr(array, "attrs", None))
    else:
        image = open_stack(path)
        array, axes = image.array, image.axes
    _check_4d(array.shape, path, axes if isinstance(axes, str) else None)
    return array


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


def sis_split(volume):
    """Odd and even z-slices of one ``(Z, Y, X)`` volume: the two halves of a SiS-rDL pair.

    Odd slice ``j`` (plane ``2j + 1``) lies midway between even slices ``j`` and ``j + 1`` (planes
    ``2j`` and ``2j + 2``): :func:`gap_amending_loss` relies on that order. Either half is the input
    and the other the target, in turn.

    Parameters
    ----------
    volume : array-like, shape (Z, Y, X)
        One volume (NumPy, Zarr or torch; only sliced).

    Returns
    -------
    odd_slices, even_slices : array-like
        ``volume[1::2]`` (``Z // 2`` planes) and ``volume[0::2]`` (``(Z + 1) // 2`` planes).

    Raises
    ------
    InputError
        Not 3-D, or fewer than 2 slices.

    Examples
    --------
    >>> odd, even = sis_split(np.arange(5)[:, None, None] * np.ones((5, 2, 2)))
    >>> odd[:, 0, 0], even[:, 0, 0]
    (array([1., 3.]), array([0., 2., 4.]))
    """
    shape = tuple(volume.shape)
    if len(shape) != 3:
        raise InputError(f"SiS-rDL splits one volume of axes (Z, Y, X); got shape {shape}")
    if shape[0] < 2:
        raise InputError(f"SiS-rDL needs at least 2 z-slices to split into odd and even, the volume has "
                         f"{shape[0]} (shape {shape}): record a z-stack, or use TiS-rDL (mode 'tis')")
    return volume[1::2], volume[0::2]


def _interleave(odd_slices: torch.Tensor, even_slices: torch.Tensor) -> torch.Tensor:
    """The full-resolution patch the two halves were split from: even slice ``j`` at plane ``2j``, odd at ``2j + 1``."""
    n_odd, n_even = odd_slices.shape[2], even_slices.shape[2]
    full = even_slices.new_empty((*even_slices.shape[:2], n_odd + n_even, *even_slices.shape[3:]))
    full[:, :, 0::2] = even_slices
    full[:, :, 1::2] = odd_slices
    return full


def _between(slices: torch.Tensor, count: int) -> torch.Tensor:
    """Mean of slices ``j`` and ``j + 1`` for ``j < count``: the plane midway between them."""
    return 0.5 * (slices[:, :, :count] + slices[:, :, 1:count + 1])


def _sis_terms(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, with_gap: bool):
    """Per direction: (prediction, target midway between its two neighbouring planes, network-estimated gap)."""
    if odd_slices.ndim != 5 or even_slices.ndim != 5:
        raise ValueError(f"odd and even slices must be (N, C, Z, Y, X) batches, got {tuple(odd_slices.shape)} "
                         f"and {tuple(even_slices.shape)}")
    n_odd, n_even = odd_slices.shape[2], even_slices.shape[2]
    if n_even not in (n_odd, n_odd + 1):
        raise ValueError(f"{n_odd} odd and {n_even} even slices are not the two halves of one stack")
    m = min(n_odd, n_even - 1)
    if m < 1:
        raise ValueError(f"no slice has a neighbour on both sides: {n_odd} odd and {n_even} even slices; "
                         "SiS pairs need at least 2 of each")
    # The network's own view of the full-resolution stack, split back into its halves: how each plane
    # differs there from the mean of its two neighbours is the gap between an input plane and its
    # targets. No gradient: it is an estimate that amends the target, not something to optimize.
    denoised_odd = denoised_even = None
    if with_gap:
        with torch.no_grad():
            denoised = network(_interleave(odd_slices, even_slices))
        denoised_odd, denoised_even = denoised[:, :, 1::2], denoised[:, :, 0::2]
    terms = []
    # Odd slice j lies between even slices j and j + 1; even slice j (j ≥ 1) between odd j − 1 and j.
    for source, target, own, other, first in ((odd_slices, even_slices, denoised_odd, denoised_even, 0),
                                              (even_slices, odd_slices, denoised_even, denoised_odd, 1)):
        prediction = network(source)[:, :, first:first + m]
        gap = None if own is None else own[:, :, first:first + m] - _between(other, m)
        terms.append((prediction, _between(target, m), gap))
    return terms


def _amendment(prediction: torch.Tensor, target: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    # ‖p − t − g‖² − ‖p − t‖², computed as g·(g − 2(p − t)) so that it is exactly 0 where g is 0.
    return torch.mean(gap * (gap - 2.0 * (prediction - target)))


def _sis_amendment(terms) -> torch.Tensor:
    return torch.stack([_amendment(*term) for term in terms]).mean()


def gap_amending_loss(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, *,
                      weight: float = 1.0) -> torch.Tensor:
    """Gap-amending regularization (GAR) of SiS-rDL: pulls each prediction from its neighbours' mean to its own plane.

    In a SiS pair the targets of input plane ``j`` are the planes one (original) step above and below
    it. Trained on them alone, a network learns their mean, i.e. the specimen blurred along z by the
    gap; at an axial step near the PSF's axial extent an in-focus vesicle all but vanishes from it.
    GAR estimates that gap with the network itself, in the manner of Neighbor2Neighbor's
    regularizer [2]_: ``F``, the network applied (without gradient) to the interleaved full stack,
    gives ``g_j = F(plane j) − ½ (F(plane j − 1) + F(plane j + 1))``, how much plane ``j`` differs
    from the mean of its neighbours. With ``p`` the prediction of plane ``j`` from its half and
    ``t = ½ (e_j + e_{j+1})`` the mean of its noisy neighbours,

    .. math::

        \\mathrm{GAR} = w \\, \\langle \\lVert p - t - g \\rVert^2 - \\lVert p - t \\rVert^2 \\rangle ,

    averaged over voxels, both directions (odd → even, even → odd) and the batch. Added to the data
    term ``⟨‖p − t‖²⟩`` it moves the optimum from ``t`` to ``t + w g``: with ``w = 1`` the amended
    target is the plane itself (``F``'s own plane j plus the noisy neighbours' deviation from
    ``F``'s), with ``w = 0`` the plain SiS target. ``w = 1`` is not a useful setting: the identity
    network then satisfies the loss exactly and noise is kept; ``w`` between 0.3 and 0.7 trades
    noise for the gap, and :class:`~microsr.train.selfsup.SelfSupTraining` ramps it in over the
    first half of training, while ``F`` is still poor.

    GAR is exactly zero where the estimated gap is zero: when neighbouring slices are identical (a
    volume constant along z) and the network keeps such a volume constant along z. That holds for
    any translation-equivariant network away from the patch's z-ends; at the ends zero padding makes
    a small gap of its own (replicate padding does not).

    Parameters
    ----------
    network : callable
        Maps a ``(N, C, Z, Y, X)`` tensor to one of the same shape (e.g. :class:`microsr.nets.RCAN3D`).
    odd_slices, even_slices : torch.Tensor, shape (N, C, Z, Y, X)
        The halves of SiS pairs in the order of :func:`sis_split`: odd slice ``j`` between even slices
        ``j`` and ``j + 1``. :class:`SelfSupervisedPatches` in mode "sis" yields ``(input, target)``
        in that order, its reversed pairs flipped along z to keep it.
    weight : float
        ``w`` above.

    Returns
    -------
    torch.Tensor
        Scalar, of either sign (it is a change of the data term); differentiable with respect to the
        network's parameters through ``p`` only.

    Raises
    ------
    ValueError
        Tensors that are not 5-D, or so thin that no slice has a neighbour on both sides.

    Notes
    -----
    The paper names GAR (Extended Data Fig. 7f, g: SiS-rDL with and without it) but the text we have
    does not define it; this is our reading. An earlier reading, which only penalized a prediction
    leaning towards one neighbour more than the other, could not fix the blur: the mean of the two
    neighbours does not lean either way. It was measured useless (−0.1 to +0.3 dB).

    References
    ----------
    .. [2] T. Huang, S. Li, X. Jia, H. Lu & J. Liu, "Neighbor2Neighbor: self-supervised denoising from
           single noisy images", CVPR 2021, Eq. 5–6.

    Examples
    --------
    >>> volume = torch.ones(1, 1, 6, 8, 8)
    >>> network = torch.nn.Conv3d(1, 1, 3, padding=1, padding_mode="replicate")
    >>> gap_amending_loss(network, volume[:, :, 1::2], volume[:, :, ::2]).item()
    0.0
    """
    return float(weight) * _sis_amendment(_sis_terms(network, odd_slices, even_slices, with_gap=True))


def sis_loss(network, odd_slices: torch.Tensor, even_slices: torch.Tensor, *,
             gar_weight: float = 0.5) -> torch.Tensor:
    """SiS-rDL training loss: each half's prediction against the mean of the other half's neighbouring planes, plus GAR.

    The data term is the mean squared error of the prediction from the odd slices against the mean
    of the two even slices around each, and of the prediction from the even slices against the mean
    of the two odd slices around each, averaged. ``gar_weight`` times :func:`gap_amending_loss` is
    added (0 trains without it); the network runs once per half, plus once without gradient over
    the full stack when GAR is on.

    Parameters
    ----------
    network : callable
        As for :func:`gap_amending_loss`.
    odd_slices, even_slices : torch.Tensor, shape (N, C, Z, Y, X)
        As for :func:`gap_amending_loss`.
    gar_weight : float
        Weight ``w`` of the gap-amending regularization.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    terms = _sis_terms(network, odd_slices, even_slices, with_gap=gar_weight != 0)
    data = torch.stack([torch.mean((prediction - target) ** 2) for prediction, target, _ in terms]).mean()
    if gar_weight == 0:
        return data
    return data + float(gar_weight) * _sis_amendment(terms)


def tis_loss(network, source: torch.Tensor, target: torch.Tensor, *, gar_weight: float = 0.5) -> torch.Tensor:
    """TiS-rDL training loss: the prediction from one time point against the other, plus an optional GAR.

    The data term is the mean squared error against the neighbouring time point. Its optimum is the
    *next* volume's signal: whatever moved between the two time points is blurred by the motion's
    spread. The same amendment as :func:`gap_amending_loss` estimates that temporal gap with the
    network itself, ``g = F(source) − F(target)`` (``F`` without gradient), and moves the optimum
    to ``target + w g``. ``gar_weight = 0`` is plain TiS-rDL.

    Parameters
    ----------
    network : callable
        Maps a ``(N, C, Z, Y, X)`` tensor to one of the same shape.
    source, target : torch.Tensor, shape (N, C, Z, Y, X)
        The same region at two neighbouring time points.
    gar_weight : float
        Weight ``w`` of the temporal gap amendment.

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    prediction = network(source)
    data = torch.mean((prediction - target) ** 2)
    if gar_weight == 0:
        return data
    with torch.no_grad():
        gap = prediction.detach() - network(target)
    return data + float(gar_weight) * _amendment(prediction, target, gap)


def probe_normalization(stack, region_shape, count: int = 16, *, background: float | None = None,
                        scale: float | None = None) -> tuple[float, float]:
    """Background and bright-structure scale of a ``(T, Z, Y, X)`` stack, from ``count`` probe regions.

    The regions (``region_shape`` ``(z, y, x)`` voxels, clipped to the volume) and their time points
    are drawn with a fixed seed, so the same stack and region shape always give the same numbers:
    training (:class:`SelfSupervisedPatches`) and prediction (:mod:`microsr.pipelines.selfsup`)
    normalize a stack identically. *Background*: the 10th percentile of the regions' medians (in
    sparse fluorescence many regions are mostly background, and a median ignores their few bright
    voxels). *Scale*: the 99.8th percentile of the probed voxels minus the background. A value given
    is kept; ``scale`` is floored at :data:`MIN_SCALE`.

    Raises
    ------
    InputError
        The stack (or a given value) holds NaN or inf.
    """
    if background is not None and scale is not None:
        return float(background), max(float(scale), MIN_SCALE)
    n_time, *volume_shape = (int(s) for s in stack.shape)
    region_shape = [min(int(r), v) for r, v in zip(region_shape, volume_shape)]
    rng = np.random.default_rng(_PROBE_SEED)
    medians, voxels = [], []
    for _ in range(count):
        t = int(rng.integers(n_time))
        corner = [int(rng.integers(v - r + 1)) for v, r in zip(volume_shape, region_shape)]
        region = tuple(slice(c, c + r) for c, r in zip(corner, region_shape))
        patch = np.asarray(stack[(t, *region)], dtype=np.float32).ravel()
        medians.append(float(np.median(patch)))
        voxels.append(patch[::max(1, patch.size // _PROBE_VOXELS)])
    if background is None:
        background = float(np.percentile(medians, 10))
    if not math.isfinite(float(background)):
        raise InputError(f"background {background} is not a number: give the camera offset plus background")
    if scale is None:
        scale = float(np.percentile(np.concatenate(voxels), 99.8)) - float(background)
    if not math.isfinite(float(scale)):
        raise InputError("the stack holds NaN or inf: check the file or the acquisition")
    return float(background), max(float(scale), MIN_SCALE)


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
      slices ``j`` and ``j + 1`` as :func:`gap_amending_loss` and :func:`sis_loss` expect.

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
    >>> from microsr.synthetic_llsm import simulate_llsm
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
        shape = _check_4d(self._stack.shape, self.path or Path("stack"))
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
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng((self.seed, self.seed_offset, info.id if info else 0))
        while True:
            yield self.sample(rng)
