"""Simulated lattice light-sheet volume time series of moving vesicles and membranes, with clean truth.

The specimen is defined in physical space (nm), not in voxels: space is cut into cubic cells and each
cell draws its own vesicles and membrane shells from a random stream seeded by ``(seed, cell)``. The
same seed therefore gives the same specimen whatever the voxel size, field of view or number of time
points; a coarser z-step only samples it more sparsely. That is what lets SiS-rDL be studied against
the axial step and TiS-rDL against the temporal sampling on one and the same specimen.

Imaging follows a deskewed LLSM volume: plane ``k`` is the specimen blurred by the PSF and *sampled*
at ``z = k · zstep`` (the light sheet excites a slab of fixed thickness wherever the planes are), each
camera pixel *integrates* the blurred specimen over its area. Both are computed exactly for Gaussian
objects and a Gaussian PSF, so nothing depends on a hidden rendering grid in z.

References
----------
.. [1] C. Qiao et al., "Rationalized deep learning super-resolution microscopy for sustained live
       imaging of rapid subcellular processes" (rDL SIM), Nat. Biotechnol. 41, 367-377 (2023):
       Fig. 5 (TiS-rDL on SiT-Golgi vesicles at 10 volumes/s), Fig. 6 and Extended Data Fig. 7
       (SiS-rDL on ER and mitochondria; Nyquist axial step of 300 nm for LLSM).
.. [2] B.-C. Chen et al., "Lattice light-sheet microscopy: imaging molecules to embryos at high
       spatiotemporal resolution", Science 346, 1257998 (2014).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse
from scipy.special import ndtr

from microsr.errors import InputError

#: Specimens :func:`simulate_llsm` can image. "beads" are static 100-nm beads, sparse enough to
#: measure the PSF on, as one does on the microscope.
SPECIMENS = ("vesicles", "membranes", "mixed", "beads")

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

# The Airy disk's FWHM is 0.51 λ/NA; a Gaussian of that FWHM is the usual stand-in for the detection PSF.
_AIRY_FWHM_PER_LAMBDA_OVER_NA = 0.51
# The paper puts LLSM's axial Nyquist step at 300 nm (Ext. Data Fig. 7g), i.e. an axial resolution of
# ~600 nm: 2.5 × the 243-nm lateral FWHM at NA 1.1, 525 nm. The lattice sheet's thickness sets it.
_AXIAL_PER_LATERAL = 2.5

# Vesicles: SiT-labelled Golgi transport intermediates, 60–200 nm across. A ball of radius R has a
# per-axis variance R²/5, which the Gaussian stand-in keeps. The dye sits in the membrane, so a
# vesicle's brightness scales with its area.
_VESICLE_DIAMETER_NM = (60.0, 200.0)
_REFERENCE_DIAMETER_NM = 100.0
_BEAD_DIAMETER_NM = 100.0
_BEADS_PER_UM3 = 0.05

# Membrane shells: organelle-sized deformed spheres (a shell larger than the field shows as a curved
# sheet). Thickness 60 nm FWHM keeps them far below the PSF, i.e. thin.
_SHELLS_PER_UM3 = 0.008
_SHELL_RADIUS_NM = (1000.0, 2500.0)
_SHELL_SQUASH_MAX = 0.2          # ellipsoidal (l = 2) deformation, fraction of the radius
_SHELL_MODES = 4
_SHELL_MODE_AMPLITUDE = (0.01, 0.04)   # each smooth undulation, fraction of the radius
_SHELL_MODE_WAVENUMBER = (1.5, 4.0)    # undulations per unit of (direction · mode axis)
_SHELL_MODE_RATE_RAD_PER_S = 1.0       # slow deformation: a few nm per 0.1-s frame
_MEMBRANE_FWHM_NM = 60.0
# Dye per µm² of membrane, in units of a reference (100 nm, unit-brightness) vesicle: an in-focus flat
# membrane then peaks at ~0.5× a reference vesicle's photons at the default optics and pixels (and an
# edge-on one at ~1.2×, since the elongated axial PSF integrates more of it).
_MEMBRANE_VESICLES_PER_UM2 = 6.7
_SURFEL_SPACING_NM = 40.0      # samples of the membrane surface
_NODE_SPACING_NM = 40.0        # grid the surface samples are spread onto before imaging

# Random streams: each specimen component of each cell of space, and the camera, have their own.
_VESICLE_CELL_NM = 2000.0
_SHELL_CELL_NM = 6000.0
_STREAM_VESICLES, _STREAM_BEADS, _STREAM_SHELLS, _STREAM_NOISE = 1, 2, 3, 4
_CELL_INDEX_OFFSET = 2 ** 31   # seed sequences take non-negative integers; cells left of 0 are negative

# A Gaussian beyond 4.5 σ carries < 1e-5 of its peak: objects farther from the field are left out.
_REACH_SIGMAS = 4.5
_BLOCK_VOXELS = (32, 64, 64)   # vesicles are imaged block by block: cost ∝ nearby objects × block
_MAX_VOXELS = 200_000_000      # three float32 arrays of this size already need 2.4 GB


@dataclass
class LLSMData:
    """A simulated LLSM recording and its truth; arrays are ``(T, Z, Y, X)`` float32.

    Attributes
    ----------
    noisy : ndarray
        Camera counts (ADU, gain 1 ADU/e⁻): Poisson photons of ``clean`` plus Gaussian read noise plus
        the camera offset ``offset_adu``.
    clean : ndarray
        Expected photoelectrons per voxel, signal plus background, without noise and offset: the
        target a denoiser should reach (``noisy - offset_adu`` is an unbiased sample of it).
    ground_truth : ndarray
        The unblurred specimen: fluorophore density integrated over each voxel, in the photon units of
        ``clean`` (blurring it by the PSF gives about ``clean - background_photons``), no background.
    voxel_size_nm : tuple of float
        (z-step, y, x) in nm, deskewed sample coordinates.
    time_step_s : float
        Time between consecutive volumes.
    offset_adu : float
        Camera offset added to ``noisy``.
    background_photons : float
        Uniform background (photons per voxel) included in ``clean``.
    psf_fwhm_nm : tuple of float
        FWHM of the Gaussian PSF along (z, y, x).
    settings : dict
        Every argument and derived constant of the simulation, for a report or a re-run.
    """

    noisy: np.ndarray
    clean: np.ndarray
    ground_truth: np.ndarray
    voxel_size_nm: tuple[float, float, float]
    time_step_s: float
    offset_adu: float
    background_photons: float
    psf_fwhm_nm: tuple[float, float, float]
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Shell:
    """A deformed spherical membrane: radius ``R0 (1 + squash ((u·w)² − ⅓) + Σ a sin(k u·v + φ + ω t))``."""

    centre_nm: np.ndarray
    velocity_nm_per_s: np.ndarray
    radius_nm: float
    squash: float
    squash_axis: np.ndarray
    mode_axes: np.ndarray
    mode_wavenumbers: np.ndarray
    mode_amplitudes: np.ndarray
    mode_phases: np.ndarray
    mode_rates_rad_per_s: np.ndarray

    @property
    def max_radius_nm(self) -> float:
        return self.radius_nm * (1.0 + abs(self.squash) + float(self.mode_amplitudes.sum()))


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------

def _check_number(name: str, value, *, minimum: float = 0.0, strict: bool = True) -> float:
    """A finite real number above (or, not strict, at least) ``minimum``, else an InputError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    below = number < minimum or (strict and number == minimum)
    if isinstance(value, bool) or not np.isfinite(number) or below:
        relation = ">" if strict else "≥"
        raise InputError(f"{name} must be a finite number {relation} {minimum:g}, got {value!r}")
    return number


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_shape(shape) -> tuple[int, int, int, int]:
    try:
        items = tuple(shape)
    except TypeError:
        items = ()
    if len(items) != 4 or not all(_is_integer(n) and n >= 1 for n in items):
        raise InputError(f"shape must be 4 integers ≥ 1 (T, Z, Y, X), got {shape!r}")
    voxels = int(np.prod([int(n) for n in items], dtype=np.int64))
    if voxels > _MAX_VOXELS:
        raise InputError(f"shape {tuple(items)} is {voxels:,} voxels, above the {_MAX_VOXELS:,} this "
                         "simulator holds in memory; simulate fewer time points or a smaller volume")
    return tuple(int(n) for n in items)


def _check_voxel_size(voxel_size_nm) -> tuple[float, float, float]:
    try:
        items = tuple(voxel_size_nm)
    except TypeError:
        items = ()
    if len(items) != 3:
        raise InputError(f"voxel_size_nm must be 3 sizes in nm (z-step, y, x), got {voxel_size_nm!r}")
    return tuple(_check_number(f"voxel_size_nm[{i}]", v) for i, v in enumerate(items))


# --------------------------------------------------------------------------------------------------
# Imaging weights along one axis: everything is separable in z, y, x
# --------------------------------------------------------------------------------------------------

def _sampled(centres: np.ndarray, sigma: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Unit-integral Gaussians at ``centres`` (N,), widths ``sigma`` (N,), at ``samples`` (K,): (N, K)."""
    s = np.broadcast_to(sigma, centres.shape)[:, None]
    u = (samples[None, :] - centres[:, None]) / s
    return np.exp(-0.5 * u * u) / (np.sqrt(2.0 * np.pi) * s)


def _binned(centres: np.ndarray, sigma: np.ndarray, bin_centres: np.ndarray, width: float) -> np.ndarray:
    """Integrals of unit Gaussians over bins of ``width`` around ``bin_centres``: (N, K)."""
    s = np.broadcast_to(sigma, centres.shape)[:, None]
    offset = bin_centres[None, :] - centres[:, None]
    return ndtr((offset + 0.5 * width) / s) - ndtr((offset - 0.5 * width) / s)


def _window(lo_nm: float, hi_nm: float, count: int, spacing_nm: float) -> slice:
    """Indices of voxel centres ``i · spacing`` that lie in ``[lo, hi]`` (possibly empty)."""
    first = max(0, int(np.ceil(lo_nm / spacing_nm)))
    last = min(count, int(np.floor(hi_nm / spacing_nm)) + 1)
    return slice(first, max(first, last))


def _outer_sum(wz: np.ndarray, wy: np.ndarray, wx: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """``Σ_n wz[n, k] wy[n, j] wx[n, i]`` as matrix products over chunks of ``n``: (K, J, I)."""
    n, k = wz.shape
    j, i = wy.shape[1], wx.shape[1]
    total = np.zeros((k * j, i), dtype=np.float32)
    for first in range(0, n, chunk):
        part = slice(first, first + chunk)
        zy = (wz[part, :, None] * wy[part, None, :]).astype(np.float32).reshape(-1, k * j)
        total += zy.T @ wx[part].astype(np.float32)
    return total.reshape(k, j, i)


# --------------------------------------------------------------------------------------------------
# The specimen, cell by cell of physical space
# --------------------------------------------------------------------------------------------------

def _cells(lo_nm: np.ndarray, hi_nm: np.ndarray, cell_nm: float):
    """Integer (z, y, x) indices of the cubic cells that meet the box ``[lo, hi]``."""
    first = np.floor(lo_nm / cell_nm).astype(int)
    last = np.floor(hi_nm / cell_nm).astype(int)
    return itertools.product(*(range(a, b + 1) for a, b in zip(first, last)))


def _cell_rng(seed: int, stream: int, cell) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *(int(c) + _CELL_INDEX_OFFSET for c in cell)])


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _vesicle_tracks(seed: int, lo_nm: np.ndarray, hi_nm: np.ndarray, n_frames: int, time_step_s: float,
                    per_um3: float, diffusion_um2_per_s: float, speed_nm_per_s: float,
                    beads: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``(T, N, 3)`` nm, Gaussian σ ``(N,)`` nm and dye amounts ``(N,)`` of the puncta near a box.

    Each vesicle drifts at its own constant velocity (transport along microtubules, a random direction
    and a speed up to ``speed_nm_per_s``) and diffuses (a Gaussian random walk); beads stay put.
    """
    cell_um3 = (_VESICLE_CELL_NM / 1000.0) ** 3
    stream = _STREAM_BEADS if beads else _STREAM_VESICLES
    step_nm = np.sqrt(2.0 * diffusion_um2_per_s * 1e6 * time_step_s)
    times_s = np.arange(n_frames) * time_step_s
    tracks, sigmas, amounts = [], [], []
    for cell in _cells(lo_nm, hi_nm, _VESICLE_CELL_NM):
        rng = _cell_rng(seed, stream, cell)
        n = int(rng.poisson(per_um3 * cell_um3))
        if n == 0:
            continue
        # Draws that do not depend on the number of frames come first, so a longer series continues
        # the same tracks.
        start = (np.asarray(cell) + rng.random((n, 3))) * _VESICLE_CELL_NM
        if beads:
            diameter = np.full(n, _BEAD_DIAMETER_NM)
            amount = np.ones(n)
            track = np.broadcast_to(start, (n_frames, n, 3))
        else:
            diameter = np.exp(rng.uniform(*np.log(_VESICLE_DIAMETER_NM), size=n))
            amount = rng.uniform(0.5, 1.5, size=n) * (diameter / _REFERENCE_DIAMETER_NM) ** 2
            velocity = _unit_vectors(rng, n) * rng.random((n, 1)) * speed_nm_per_s
            walk = np.zeros((n_frames, n, 3))
            walk[1:] = np.cumsum(rng.normal(size=(n_frames - 1, n, 3)), axis=0) * step_nm
            track = start[None] + times_s[:, None, None] * velocity[None] + walk
        tracks.append(track)
        sigmas.append(diameter / 2.0 / np.sqrt(5.0))
        amounts.append(amount)
    if not tracks:
        return np.zeros((n_frames, 0, 3)), np.zeros(0), np.zeros(0)
    return np.concatenate(tracks, axis=1), np.concatenate(sigmas), np.concatenate(amounts)


def _membrane_shells(seed: int, lo_nm: np.ndarray, hi_nm: np.ndarray, speed_nm_per_s: float) -> list[_Shell]:
    """The membrane shells whose centres lie in the cells that meet the box ``[lo, hi]``."""
    cell_um3 = (_SHELL_CELL_NM / 1000.0) ** 3
    shells = []
    for cell in _cells(lo_nm, hi_nm, _SHELL_CELL_NM):
        rng = _cell_rng(seed, _STREAM_SHELLS, cell)
        for _ in range(int(rng.poisson(_SHELLS_PER_UM3 * cell_um3))):
            shells.append(_Shell(
                centre_nm=(np.asarray(cell) + rng.random(3)) * _SHELL_CELL_NM,
                velocity_nm_per_s=_unit_vectors(rng, 1)[0] * rng.random() * speed_nm_per_s,
                radius_nm=float(rng.uniform(*_SHELL_RADIUS_NM)),
                squash=float(rng.uniform(-_SHELL_SQUASH_MAX, _SHELL_SQUASH_MAX)),
                squash_axis=_unit_vectors(rng, 1)[0],
                mode_axes=_unit_vectors(rng, _SHELL_MODES),
                mode_wavenumbers=rng.uniform(*_SHELL_MODE_WAVENUMBER, size=_SHELL_MODES),
                mode_amplitudes=rng.uniform(*_SHELL_MODE_AMPLITUDE, size=_SHELL_MODES),
                mode_phases=rng.uniform(0.0, 2.0 * np.pi, size=_SHELL_MODES),
                mode_rates_rad_per_s=rng.uniform(-1.0, 1.0, size=_SHELL_MODES) * _SHELL_MODE_RATE_RAD_PER_S,
            ))
    return shells


def _shell_frames(shell: _Shell, times_s: np.ndarray, box_lo_nm: np.ndarray, box_hi_nm: np.ndarray):
    """Surface samples ``(n, 3)`` nm and dye amounts ``(n,)`` of a shell at each time, within a box.

    Samples start on a near-uniform (Fibonacci) lattice of directions; those whose point stays out of
    the box at every time are dropped once. Dye is constant per area: a sample carries r² × its
    solid angle (the tilt of the gently deformed surface is neglected).
    """
    n = max(64, int(np.ceil(4.0 * np.pi * shell.max_radius_nm ** 2 / _SURFEL_SPACING_NM ** 2)))
    i = np.arange(n) + 0.5
    uz = 1.0 - 2.0 * i / n
    ur = np.sqrt(1.0 - uz * uz)
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    directions = np.stack([uz, ur * np.sin(phi), ur * np.cos(phi)], axis=1)
    solid_angle = 4.0 * np.pi / n
    # Between any two times a point moves by the drift and, radially, by at most 2 Σ amplitudes · R0.
    slack = (np.linalg.norm(shell.velocity_nm_per_s) * (times_s[-1] - times_s[0])
             + 2.0 * shell.radius_nm * shell.mode_amplitudes.sum())
    phase = directions @ shell.mode_axes.T * shell.mode_wavenumbers + shell.mode_phases
    # sin(phase + ωt) = sin(phase) cos(ωt) + cos(phase) sin(ωt): no sines per sample and frame.
    sin_phase, cos_phase = np.sin(phase), np.cos(phase)
    base = 1.0 + shell.squash * ((directions @ shell.squash_axis) ** 2 - 1.0 / 3.0)
    keep = None
    for time_s in times_s:
        turn = shell.mode_rates_rad_per_s * time_s
        radius = shell.radius_nm * (base + sin_phase @ (shell.mode_amplitudes * np.cos(turn))
                                    + cos_phase @ (shell.mode_amplitudes * np.sin(turn)))
        points = shell.centre_nm + shell.velocity_nm_per_s * time_s + radius[:, None] * directions
        if keep is None:
            keep = np.all((points >= box_lo_nm - slack) & (points <= box_hi_nm + slack), axis=1)
            if not keep.any():
                return
            directions, radius, points = directions[keep], radius[keep], points[keep]
            sin_phase, cos_phase, base = sin_phase[keep], cos_phase[keep], base[keep]
        yield points, _MEMBRANE_VESICLES_PER_UM2 * 1e-6 * radius ** 2 * solid_angle


# --------------------------------------------------------------------------------------------------
# Imaging: blurred and sampled (clean) and unblurred voxel integrals (ground truth)
# --------------------------------------------------------------------------------------------------

def _image_puncta(clean: np.ndarray, truth: np.ndarray, centres: np.ndarray, sigma: np.ndarray,
                  amount: np.ndarray, voxel_nm: np.ndarray, psf_sigma_nm: np.ndarray) -> None:
    """Add Gaussian puncta to one volume's clean image and ground truth (in dye units, in place)."""
    shape = np.array(clean.shape)
    blurred = np.sqrt(sigma[:, None] ** 2 + psf_sigma_nm[None, :] ** 2)
    reach = _REACH_SIGMAS * blurred
    for start in itertools.product(*(range(0, n, b) for n, b in zip(shape, _BLOCK_VOXELS))):
        stop = np.minimum(np.array(start) + _BLOCK_VOXELS, shape)
        lo = (np.array(start) - 0.5) * voxel_nm
        hi = (stop - 0.5) * voxel_nm
        near = np.all((centres + reach >= lo) & (centres - reach <= hi), axis=1)
        if not near.any():
            continue
        c, s, b, a = centres[near], sigma[near], blurred[near], amount[near]
        axes = [np.arange(start[d], stop[d]) * voxel_nm[d] for d in range(3)]
        block = tuple(slice(start[d], stop[d]) for d in range(3))
        clean[block] += _outer_sum(a[:, None] * _sampled(c[:, 0], b[:, 0], axes[0]),
                                   _binned(c[:, 1], b[:, 1], axes[1], voxel_nm[1]),
                                   _binned(c[:, 2], b[:, 2], axes[2], voxel_nm[2]))
        truth[block] += _outer_sum(a[:, None] * _binned(c[:, 0], s, axes[0], voxel_nm[0]) / voxel_nm[0],
                                   _binned(c[:, 1], s, axes[1], voxel_nm[1]),
                                   _binned(c[:, 2], s, axes[2], voxel_nm[2]))


def _image_surface(clean: np.ndarray, truth: np.ndarray, points: np.ndarray, dye: np.ndarray,
                   voxel_nm: np.ndarray, psf_sigma_nm: np.ndarray) -> None:
    """Add a membrane (surface samples with dye amounts) to one volume's clean image and ground truth.

    A surface has far too many samples to image one by one. They are spread onto a 40-nm grid of
    nodes fixed in physical space (trilinear weights), so the result does not depend on the voxel
    size; the nodes are then imaged like puncta, separably. The spreading's own variance (Δ²/6 on
    average per axis) is taken out of the nodes' width so that the membrane keeps its thickness.
    """
    thickness = _MEMBRANE_FWHM_NM / _FWHM_PER_SIGMA
    node_sigma = np.sqrt(thickness ** 2 - _NODE_SPACING_NM ** 2 / 6.0)
    blur = np.hypot(node_sigma, psf_sigma_nm)
    shape = np.array(clean.shape)
    reach = _REACH_SIGMAS * blur
    field_lo, field_hi = -0.5 * voxel_nm, (shape - 0.5) * voxel_nm
    inside = np.all((points + reach >= field_lo) & (points - reach <= field_hi), axis=1)
    if not inside.any():
        return
    grid = points[inside] / _NODE_SPACING_NM
    corner = np.floor(grid).astype(np.int64)
    frac = grid - corner
    first = corner.min(axis=0)
    n_nodes = corner.max(axis=0) - first + 2
    n_samples = len(grid)
    # Sample → nodes as two sparse matrices with a fixed number of entries per sample, built directly
    # in compressed form (no sorting): two depth nodes per sample, four lateral nodes per sample.
    fz, fy, fx = frac[:, 0:1], frac[:, 1:2], frac[:, 2:3]
    depth_node = corner[:, 0:1] - first[0] + np.array([0, 1])
    to_depth = sparse.csr_matrix((np.hstack([1.0 - fz, fz]).ravel(), depth_node.ravel(),
                                  np.arange(0, 2 * n_samples + 1, 2)), shape=(n_samples, int(n_nodes[0])))
    lateral_weight = np.hstack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    lateral_weight *= dye[inside, None]
    row, col = corner[:, 1:2] - first[1], corner[:, 2:3] - first[2]
    lateral_node = (row + np.array([0, 0, 1, 1])) * n_nodes[2] + col + np.array([0, 1, 0, 1])
    columns = np.arange(0, 4 * n_samples + 1, 4)
    spread = sparse.csc_matrix((lateral_weight.ravel(), lateral_node.ravel(), columns),
                               shape=(int(n_nodes[1] * n_nodes[2]), n_samples))
    node_axes = [(first[d] + np.arange(n_nodes[d])) * _NODE_SPACING_NM for d in range(3)]

    for target, sigma, sampled in ((clean, blur, True), (truth, np.full(3, node_sigma), False)):
        windows = [_window(a[0] - _REACH_SIGMAS * s - 0.5 * d, a[-1] + _REACH_SIGMAS * s + 0.5 * d, n, d)
                   for a, s, n, d in zip(node_axes, sigma, shape, voxel_nm)]
        if any(w.start == w.stop for w in windows):
            continue
        centres = [np.arange(w.start, w.stop) * d for w, d in zip(windows, voxel_nm)]
        if sampled:
            wz = _sampled(node_axes[0], sigma[0], centres[0])
        else:
            wz = _binned(node_axes[0], sigma[0], centres[0], voxel_nm[0]) / voxel_nm[0]
        wy = _binned(node_axes[1], sigma[1], centres[1], voxel_nm[1])
        wx = _binned(node_axes[2], sigma[2], centres[2], voxel_nm[2])
        per_plane = np.asarray(spread @ (to_depth @ wz)).reshape(n_nodes[1], n_nodes[2], -1)  # node y, x, k
        along_x = np.tensordot(per_plane, wx, axes=([1], [0]))                 # (node y, plane, x)
        image = np.tensordot(wy, along_x, axes=([0], [0]))                      # (y, plane, x)
        target[tuple(windows)] += image.transpose(1, 0, 2).astype(np.float32)


def _photons_per_dye(voxel_nm: np.ndarray, psf_sigma_nm: np.ndarray, photons: float) -> float:
    """Photons per unit of dye so that a reference vesicle centred on a voxel peaks at ``photons``."""
    sigma = _REFERENCE_DIAMETER_NM / 2.0 / np.sqrt(5.0)
    blurred = np.hypot(sigma, psf_sigma_nm)
    zero = np.zeros(1)
    peak = (_sampled(zero, blurred[0], zero) * _binned(zero, blurred[1], zero, voxel_nm[1])
            * _binned(zero, blurred[2], zero, voxel_nm[2]))
    return photons / float(peak[0, 0])


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

def simulate_llsm(*, shape=(8, 16, 64, 64), voxel_size_nm=(200.0, 92.6, 92.6), specimen: str = "vesicles",
                  photons: float = 30.0, background_photons: float = 5.0, read_noise_e: float = 1.5,
                  offset_adu: float = 100.0, na: float = 1.1, wavelength_nm: float = 525.0,
                  lateral_fwhm_nm: float | None = None, axial_fwhm_nm: float | None = None,
                  time_step_s: float = 0.1, vesicles_per_um3: float = 2.5,
                  vesicle_diffusion_um2_per_s: float = 0.01, vesicle_speed_nm_per_s: float = 300.0,
                  membrane_speed_nm_per_s: float = 100.0, seed: int = 0) -> LLSMData:
    """Simulate a deskewed lattice light-sheet volume time series of a moving specimen.

    Voxel ``(k, j, i)`` is centred at ``(k·zstep, j·y, i·x)`` nm. Plane ``k`` is the specimen blurred by
    a Gaussian PSF sampled at depth ``k·zstep``; each pixel integrates it over its area. The expected
    photons plus a uniform background are Poisson-distributed; Gaussian read noise and a camera offset
    follow (gain 1 ADU/e⁻).

    Parameters
    ----------
    shape : (int, int, int, int)
        (T, Z, Y, X): time points, planes, rows, columns.
    voxel_size_nm : (float, float, float)
        (z-step, y, x) in nm. Default 200 nm planes of 92.6-nm pixels, a deskewed LLSM volume.
    specimen : {"vesicles", "membranes", "mixed", "beads"}
        "vesicles": SiT-Golgi-like puncta, 60–200 nm, ``vesicles_per_um3`` of them, each drifting at
        its own velocity and diffusing, a fraction of the PSF per frame, so consecutive volumes are
        highly correlated (what TiS-rDL relies on). "membranes": thin (60 nm) shells of deformed
        spheres 1–2.5 µm in radius, 0.008 per µm³ (typically 4–15 reach the default field), that drift and
        undulate slowly: ER/mitochondria-like surfaces for SiS-rDL. "mixed": both. "beads": static
        100-nm beads, 0.05 per µm³, to measure the PSF.
    photons : float
        Expected signal photons at the brightest voxel of a typical vesicle (100 nm, unit brightness,
        centred on a voxel): sets the SNR. Vesicles range from ~0.2× to ~5× it (size and brightness
        vary); a membrane gives ~0.5× lying in a plane and ~1.2× seen edge-on, more where shells
        overlap. It fixes the dye's brightness for the lateral pixel size and PSF; the z-step does not
        change it.
    background_photons : float
        Uniform background, photons per voxel.
    read_noise_e : float
        Camera read noise, electrons RMS.
    offset_adu : float
        Camera offset added to the noisy counts.
    na, wavelength_nm : float
        Detection NA and emission wavelength; they set the default lateral FWHM ``0.51 λ/NA``
        (243 nm at NA 1.1, 525 nm).
    lateral_fwhm_nm, axial_fwhm_nm : float, optional
        Override the PSF's FWHMs. Default axial: 2.5 × lateral (608 nm), the axial resolution implied by
        the 300-nm Nyquist step the paper gives for LLSM.
    time_step_s : float
        Time between volumes (default 0.1 s: the paper's 10 volumes/s). Motion per frame scales with it:
        drift ∝ ``time_step_s``, diffusion ∝ ``√time_step_s``.
    vesicles_per_um3 : float
        Density of vesicles (2.5/µm³: ~280 in the default 3.2 × 5.9 × 5.9 µm³ field).
    vesicle_diffusion_um2_per_s : float
        Diffusion coefficient of the vesicles' random walk (0.01 µm²/s: 45 nm per axis per 0.1 s).
    vesicle_speed_nm_per_s : float
        Largest directed speed; each vesicle gets a uniform fraction of it in a random direction.
    membrane_speed_nm_per_s : float
        Largest drift speed of a membrane shell; shells also undulate at up to 1 rad/s.
    seed : int
        Non-negative integer. The specimen follows from it alone, identical in physical space whatever
        the shape and voxel size; the noise also depends on the shape.

    Returns
    -------
    LLSMData
        ``noisy``, ``clean`` and ``ground_truth`` of shape ``shape``, float32, with the settings used.

    Raises
    ------
    InputError
        A shape that is not 4 integers ≥ 1, non-positive sizes, photons, NA, wavelength or time step,
        negative noise or densities, or an unknown specimen.

    References
    ----------
    C. Qiao et al., Nat. Biotechnol. 41, 367-377 (2023), Fig. 5, Fig. 6, Extended Data Fig. 7.

    Examples
    --------
    >>> data = simulate_llsm(shape=(2, 8, 32, 32), photons=50.0, seed=1)
    >>> data.noisy.shape, data.noisy.dtype
    ((2, 8, 32, 32), dtype('float32'))
    >>> bool(abs(data.noisy.mean() - data.clean.mean() - data.offset_adu) < 1.0)
    True
    """
    shape = _check_shape(shape)
    voxel = _check_voxel_size(voxel_size_nm)
    if specimen not in SPECIMENS:
        raise InputError(f"unknown specimen {specimen!r}: use one of {', '.join(SPECIMENS)}")
    photons = _check_number("photons", photons)
    background_photons = _check_number("background_photons", background_photons, strict=False)
    read_noise_e = _check_number("read_noise_e", read_noise_e, strict=False)
    offset_adu = _check_number("offset_adu", offset_adu, minimum=-np.inf, strict=False)
    na = _check_number("na", na)
    if na >= 1.52:
        raise InputError(f"na must be below 1.52 (immersion media limit it), got {na}")
    wavelength_nm = _check_number("wavelength_nm", wavelength_nm)
    lateral = (_AIRY_FWHM_PER_LAMBDA_OVER_NA * wavelength_nm / na if lateral_fwhm_nm is None
               else _check_number("lateral_fwhm_nm", lateral_fwhm_nm))
    axial = (_AXIAL_PER_LATERAL * lateral if axial_fwhm_nm is None
             else _check_number("axial_fwhm_nm", axial_fwhm_nm))
    time_step_s = _check_number("time_step_s", time_step_s)
    vesicles_per_um3 = _check_number("vesicles_per_um3", vesicles_per_um3, strict=False)
    diffusion = _check_number("vesicle_diffusion_um2_per_s", vesicle_diffusion_um2_per_s, strict=False)
    vesicle_speed = _check_number("vesicle_speed_nm_per_s", vesicle_speed_nm_per_s, strict=False)
    membrane_speed = _check_number("membrane_speed_nm_per_s", membrane_speed_nm_per_s, strict=False)
    if not _is_integer(seed) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)

    n_frames = shape[0]
    voxel_nm = np.array(voxel)
    psf_fwhm = np.array([axial, lateral, lateral])
    psf_sigma = psf_fwhm / _FWHM_PER_SIGMA
    field_lo = -0.5 * voxel_nm
    field_hi = (np.array(shape[1:]) - 0.5) * voxel_nm
    margin = _REACH_SIGMAS * np.hypot(psf_sigma, _VESICLE_DIAMETER_NM[1] / 2.0 / np.sqrt(5.0))
    duration_s = (n_frames - 1) * time_step_s
    clean = np.zeros(shape, dtype=np.float32)
    truth = np.zeros(shape, dtype=np.float32)
    settings = dict(shape=list(shape), voxel_size_nm=list(voxel), specimen=specimen, photons=photons,
                    background_photons=background_photons, read_noise_e=read_noise_e, offset_adu=offset_adu,
                    na=na, wavelength_nm=wavelength_nm, lateral_fwhm_nm=lateral, axial_fwhm_nm=axial,
                    time_step_s=time_step_s, vesicles_per_um3=vesicles_per_um3,
                    vesicle_diffusion_um2_per_s=diffusion, vesicle_speed_nm_per_s=vesicle_speed,
                    membrane_speed_nm_per_s=membrane_speed, seed=seed, time_subsample=1)

    if specimen in ("vesicles", "mixed", "beads"):
        beads = specimen == "beads"
        # Vesicles from farther away than they can travel in the series never reach the field.
        travel = 0.0 if beads else (vesicle_speed * duration_s
                                    + 5.0 * np.sqrt(2.0 * diffusion * 1e6 * duration_s))
        tracks, sigma, amount = _vesicle_tracks(
            seed, field_lo - margin - travel, field_hi + margin + travel, n_frames, time_step_s,
            _BEADS_PER_UM3 if beads else vesicles_per_um3, diffusion, vesicle_speed, beads)
        for t in range(n_frames):
            _image_puncta(clean[t], truth[t], tracks[t], sigma, amount, voxel_nm, psf_sigma)
        in_field = np.all((tracks[0] >= field_lo) & (tracks[0] <= field_hi), axis=1)
        settings["puncta_in_field_at_start"] = int(in_field.sum())
    if specimen in ("membranes", "mixed"):
        travel = membrane_speed * duration_s
        largest = _SHELL_RADIUS_NM[1] * (1.0 + _SHELL_SQUASH_MAX + _SHELL_MODES * _SHELL_MODE_AMPLITUDE[1])
        box_lo, box_hi = field_lo - margin - largest - travel, field_hi + margin + largest + travel
        imaged = 0
        for shell in _membrane_shells(seed, box_lo, box_hi, membrane_speed):
            # A shell whose surface stays beyond the PSF's reach of the field never shows.
            gap = np.linalg.norm(np.clip(shell.centre_nm, field_lo, field_hi) - shell.centre_nm)
            if gap > shell.max_radius_nm + travel + margin.max():
                continue
            times_s = np.arange(n_frames) * time_step_s
            frames = _shell_frames(shell, times_s, field_lo - margin, field_hi + margin)
            for t, (points, dye) in enumerate(frames):
                _image_surface(clean[t], truth[t], points, dye, voxel_nm, psf_sigma)
                if t == 0:
                    imaged += 1
        settings["membrane_shells"] = imaged

    scale = _photons_per_dye(voxel_nm, psf_sigma, photons)
    clean *= scale
    truth *= scale
    # Rounding in the matrix products can leave −1e-7 where there is no dye.
    np.maximum(clean, 0.0, out=clean)
    np.maximum(truth, 0.0, out=truth)
    clean += background_photons
    settings["photons_per_dye"] = scale
    noise = np.random.default_rng([seed, _STREAM_NOISE])
    noisy = noise.poisson(clean).astype(np.float32)
    noisy += noise.normal(0.0, read_noise_e, size=shape).astype(np.float32) if read_noise_e > 0 else 0.0
    noisy += np.float32(offset_adu)
    return LLSMData(noisy=noisy, clean=clean, ground_truth=truth, voxel_size_nm=voxel,
                    time_step_s=time_step_s, offset_adu=offset_adu, background_photons=background_photons,
                    psf_fwhm_nm=tuple(float(f) for f in psf_fwhm), settings=settings)


def llsm_time_subsample(data: LLSMData, factor: int, *, start: int = 0) -> LLSMData:
    """Keep every ``factor``-th volume: the same specimen imaged ``factor`` times less often.

    Between kept volumes the vesicles drift ``factor`` times farther and diffuse ``√factor`` times
    farther (membranes deform ``factor`` times more), so consecutive volumes are less alike: this is the
    temporal down-sampling against which the paper plots TiS-rDL's PSNR (Extended Data Fig. 7c). The
    noise of each kept volume is unchanged, as each volume is exposed the same. Simulating with
    ``time_step_s`` multiplied by ``factor`` gives statistically the same series, but a different
    random walk; sub-sampling compares factors on one and the same specimen.

    Parameters
    ----------
    data : LLSMData
        A recording from :func:`simulate_llsm`.
    factor : int
        Temporal down-sampling factor, ≥ 1.
    start : int
        First volume kept, ``0 ≤ start < T``.

    Returns
    -------
    LLSMData
        Volumes ``start, start + factor, …``; ``time_step_s`` and the settings' ``time_step_s``,
        ``time_subsample`` and ``shape`` updated.

    Raises
    ------
    InputError
        A factor that is not an integer ≥ 1, or a start outside the series.

    Examples
    --------
    >>> data = simulate_llsm(shape=(6, 4, 16, 16), seed=0)
    >>> slow = llsm_time_subsample(data, 2)
    >>> slow.clean.shape[0], round(slow.time_step_s, 3)
    (3, 0.2)
    """
    if not _is_integer(factor) or factor < 1:
        raise InputError(f"factor must be an integer ≥ 1, got {factor!r}")
    n_frames = data.noisy.shape[0]
    if not _is_integer(start) or not 0 <= start < n_frames:
        raise InputError(f"start must be an integer in [0, {n_frames}), got {start!r}")
    keep = slice(int(start), None, int(factor))
    noisy, clean, truth = (np.ascontiguousarray(a[keep]) for a in (data.noisy, data.clean, data.ground_truth))
    time_step_s = data.time_step_s * factor
    settings = dict(data.settings, time_step_s=time_step_s, shape=list(noisy.shape),
                    time_subsample=int(data.settings.get("time_subsample", 1)) * int(factor),
                    time_subsample_start=int(start))
    return replace(data, noisy=noisy, clean=clean, ground_truth=truth, time_step_s=time_step_s,
                   settings=settings)
