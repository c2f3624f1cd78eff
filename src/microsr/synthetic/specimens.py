"""2-D specimens with known ground truth (filaments, pairs, rings), their widefield images and SFSRM training pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import fft as scipy_fft
from scipy import ndimage
from skimage.filters import threshold_otsu

from microsr.errors import InputError
from microsr.metrics.signal import signal_density


def _splat(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
    """Deposit point intensities at sub-pixel positions by bilinear weights (in place)."""
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    fr = rows - r0
    fc = cols - c0
    ny, nx = image.shape
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr = r0 + dr
        cc = c0 + dc
        inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
        np.add.at(image, (rr[inside], cc[inside]), (weights * w)[inside])


def worm_like_chain(rng: np.random.Generator, start: np.ndarray, length_nm: float,
                    persistence_nm: float, step_nm: float) -> np.ndarray:
    """Points ``(N, 2)`` (y, x in nm) of a 2-D worm-like chain: direction diffuses with the persistence length."""
    steps = max(2, int(length_nm / step_nm))
    # A 2-D worm-like chain's tangent angle performs a random walk of variance step/persistence.
    turns = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), size=steps)
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(turns)
    path = np.cumsum(np.stack([np.sin(angle), np.cos(angle)], axis=1) * step_nm, axis=0)
    return start[None, :] + path


def filaments_and_dots(shape: tuple[int, int], pixel_size_nm: float, *, n_filaments: int = 12,
                       n_dots: int = 40, filament_width_nm: float = 25.0,
                       persistence_nm: float = 3000.0, seed: int | np.random.Generator = 0,
                       ) -> np.ndarray:
    """A fluorescent specimen of filaments (microtubule-like) and dots (vesicle-like), peak ≈ 1.

    Parameters
    ----------
    shape : (int, int)
        Image size (Y, X) in pixels of ``pixel_size_nm``.
    pixel_size_nm : float
        Pixel size of the ground-truth grid.
    n_filaments, n_dots : int
        Number of worm-like-chain filaments and of point-like dots.
    filament_width_nm : float
        FWHM of the filament cross-section (25 nm: a microtubule).
    persistence_nm : float
        Persistence length of the chains: stiffer filaments curve less.
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    ndarray, float32, shape ``shape``
        Fluorophore density, scaled so that a filament's crest is about 1.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    field_nm = np.array([ny, nx], dtype=float) * pixel_size_nm
    image = np.zeros(shape, dtype=np.float64)
    step_nm = pixel_size_nm / 3.0  # sub-pixel steps keep the line's brightness even
    for _ in range(n_filaments):
        length = rng.uniform(0.5, 1.5) * field_nm.max()
        start = rng.uniform(0.0, 1.0, size=2) * field_nm
        points = worm_like_chain(rng, start, length, persistence_nm, step_nm)
        brightness = rng.uniform(0.6, 1.0)
        _splat(image, points[:, 0] / pixel_size_nm, points[:, 1] / pixel_size_nm,
               np.full(len(points), brightness * step_nm / pixel_size_nm))
    dots = rng.uniform(0.0, 1.0, size=(n_dots, 2)) * np.array([ny, nx])
    _splat(image, dots[:, 0], dots[:, 1], rng.uniform(1.0, 3.0, size=n_dots))
    sigma_px = filament_width_nm / 2.3548 / pixel_size_nm
    image = ndimage.gaussian_filter(image, max(sigma_px, 0.3), mode="wrap")
    crest = np.percentile(image[image > 0], 99.5) if np.any(image > 0) else 1.0
    return (image / crest).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# SFSRM simulation recipes (Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image
# generation"): polymer chains, line pairs, dot pairs and rings on a fine ground-truth grid, and their
# degradation into noisy low-resolution images.
# --------------------------------------------------------------------------------------------------

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_SFSRM_REFERENCE = ("R. Chen et al., \"Single-frame deep-learning super-resolution microscopy for "
                    "intracellular dynamics imaging\", Nat. Commun. 14, 2854 (2023), Methods.")
# SFSRM simulates 50 polymers per 10 × 10 µm² field "to mimic a densely distributed microtubule network".
_SFSRM_CHAINS_PER_UM2 = 50.0 / 100.0
_TRAINING_KINDS = ("filaments", "line-pairs", "dot-pairs", "rings")


@dataclass(frozen=True)
class LinePair:
    """Two parallel straight lines of a line-pair specimen, in nm on the ground-truth field.

    ``centres_nm`` are the midpoints (y, x) of the two lines; the profile that tells whether the pair is
    resolved runs from the first to the second, across the lines. ``direction_rad`` is the angle of the
    lines from +x towards +y (unit vector ``(sin, cos)`` in (y, x)).
    """

    centres_nm: tuple[tuple[float, float], tuple[float, float]]
    direction_rad: float
    separation_nm: float
    length_nm: float


@dataclass(frozen=True)
class DotPair:
    """Two point emitters of a dot-pair specimen, in nm on the ground-truth field.

    ``centres_nm`` are the two dots (y, x); ``direction_rad`` is the angle of the axis joining them,
    from +x towards +y.
    """

    centres_nm: tuple[tuple[float, float], tuple[float, float]]
    direction_rad: float
    separation_nm: float


@dataclass(frozen=True)
class Ring:
    """A clathrin-coat-like ring of a ring specimen: centre (y, x) and diameter, in nm."""

    centre_nm: tuple[float, float]
    diameter_nm: float


#: Densities above this need tens of thousands of chains (measured: 0.5 took ~30 s) for a field that is
#: already a haze of crossing filaments.
MAX_FILAMENT_DENSITY = 0.5


def _field_shape(field_um: float, gt_pixel_nm: float) -> tuple[int, int]:
    """Ground-truth grid size for a square field, with the user's arguments checked."""
    if not np.isfinite(field_um) or field_um <= 0:
        raise InputError(f"field_um must be a positive size in µm, got {field_um}")
    if not np.isfinite(gt_pixel_nm) or gt_pixel_nm <= 0:
        raise InputError(f"gt_pixel_nm must be a positive pixel size in nm, got {gt_pixel_nm}")
    n = int(round(field_um * 1000.0 / gt_pixel_nm))
    if n < 8:
        raise InputError(f"a {field_um} µm field on {gt_pixel_nm} nm pixels is only {n} pixels wide; "
                         "use a larger field or smaller pixels")
    return n, n


def _line_sigma_px(gt_blur_fwhm_nm: float, gt_pixel_nm: float) -> float:
    """Gaussian σ (GT pixels) of the ground-truth blur; 0 means no blur."""
    if not np.isfinite(gt_blur_fwhm_nm) or gt_blur_fwhm_nm < 0:
        raise InputError(f"gt_blur_fwhm_nm must be ≥ 0 nm, got {gt_blur_fwhm_nm}")
    return gt_blur_fwhm_nm / _FWHM_PER_SIGMA / gt_pixel_nm


def _effective_sigma_px(sigma_px: float) -> float:
    # Bilinear splatting spreads a point over two pixels per axis (variance ≤ 1/4, 1/6 on average over
    # sub-pixel positions); adding it keeps the crest normalization right when the blur is sub-pixel.
    return float(np.sqrt(sigma_px ** 2 + 1.0 / 6.0))


def _blur_ground_truth(thin: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur thin lines or points by the ground-truth Gaussian (zero fluorophores outside the field)."""
    if sigma_px <= 0:
        return thin
    return ndimage.gaussian_filter(thin, sigma_px, mode="constant")


def _draw_segment(image: np.ndarray, start_nm: np.ndarray, stop_nm: np.ndarray, pixel_nm: float) -> None:
    """Splat a straight line of unit linear density (per pixel length) between two points in nm."""
    length_nm = float(np.hypot(*(stop_nm - start_nm)))
    # Steps of a third of a pixel keep the splatted line's brightness even along its length.
    n = max(2, int(np.ceil(3.0 * length_nm / pixel_nm)))
    t = (np.arange(n) + 0.5) / n
    points = start_nm[None, :] + t[:, None] * (stop_nm - start_nm)[None, :]
    _splat(image, points[:, 0] / pixel_nm, points[:, 1] / pixel_nm,
           np.full(n, length_nm / n / pixel_nm))


def _splat_sum(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
    """Bilinear splatting like :func:`_splat`, by ``bincount``: many times faster for millions of points."""
    r0 = np.floor(rows).astype(np.int64)
    c0 = np.floor(cols).astype(np.int64)
    fr = rows - r0
    fc = cols - c0
    ny, nx = image.shape
    total = np.zeros(ny * nx)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr = r0 + dr
        cc = c0 + dc
        inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
        total += np.bincount(rr[inside] * nx + cc[inside], (weights * w)[inside], minlength=ny * nx)
    image += total.reshape(ny, nx)


def _draw_chains(image: np.ndarray, rng: np.random.Generator, n_chains: int, pixel_nm: float,
                 persistence_nm: float) -> None:
    """Add ``n_chains`` worm-like chains of unit linear density to a thin-line image (in place).

    The chains are those of :func:`worm_like_chain` (start uniform in the field, random direction,
    length 0.5–1.5 field widths), generated many at a time: dense specimens need thousands of chains.
    """
    field_nm = np.array(image.shape, dtype=float) * pixel_nm
    step_nm = pixel_nm / 3.0  # sub-pixel steps keep the line's brightness even
    chunk_points = 2_000_000  # bounds the memory of one vectorized chunk
    done = 0
    while done < n_chains:
        lengths = rng.uniform(0.5, 1.5, size=n_chains - done) * field_nm.max()
        steps = np.maximum(2, (lengths / step_nm).astype(np.int64))
        n = max(1, int(np.searchsorted(np.cumsum(steps), chunk_points)))
        steps = steps[:n]
        starts = rng.uniform(0.0, 1.0, size=(n, 2)) * field_nm
        first = np.concatenate([[0], np.cumsum(steps)[:-1]])
        chain = np.repeat(np.arange(n), steps)
        # A 2-D worm-like chain's tangent angle performs a random walk of variance step/persistence;
        # cumulative sums over all chains at once, restarted at each chain's first step.
        turns = rng.normal(0.0, np.sqrt(step_nm / persistence_nm), size=int(steps.sum()))
        angle = np.cumsum(turns)
        angle += np.repeat(rng.uniform(0, 2 * np.pi, size=n) - (angle[first] - turns[first]), steps)
        points = []
        for trig in (np.sin, np.cos):
            path = np.cumsum(trig(angle) * step_nm)
            path -= np.repeat(path[first] - trig(angle[first]) * step_nm, steps)
            points.append(path)
        rows = (starts[chain, 0] + points[0]) / pixel_nm
        cols = (starts[chain, 1] + points[1]) / pixel_nm
        _splat_sum(image, rows, cols, np.full(rows.size, step_nm / pixel_nm))
        done += n


def polymer_chains(field_um: float = 10.0, gt_pixel_nm: float = 10.0, *, n_chains: int | None = None,
                   density: float | None = None, persistence_nm: float = 3000.0,
                   gt_blur_fwhm_nm: float = 20.0, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Ground truth of randomly laid polymer chains (microtubule-like), as SFSRM simulates them.

    Chains are 2-D worm-like chains drawn as lines of unit linear fluorophore density, then blurred by a
    Gaussian of ``gt_blur_fwhm_nm`` (20 nm in SFSRM). Each chain starts uniformly in the field, has a
    random direction and a length of 0.5–1.5 field widths, and may leave the field.

    Parameters
    ----------
    field_um : float
        Side of the square field in µm (SFSRM: 10 µm).
    gt_pixel_nm : float
        Pixel size of the ground-truth grid in nm (SFSRM: 10 nm).
    n_chains : int, optional
        Number of chains. Default (with ``density`` also unset) SFSRM's 50 chains per 10 × 10 µm²,
        scaled by the field's area.
    density : float, optional
        Target signal density in (0, 1): the fraction of signal pixels of the binarized ground truth
        (SFSRM eq. 19, :func:`microsr.metrics.signal.signal_density`, Otsu threshold). Chains are added
        (in batches sized from the density gained so far, then one at a time) until the density reaches
        the target; the chain count whose density is closest to the target is kept. Exclusive with
        ``n_chains``.
    persistence_nm : float
        Persistence length of the chains in nm; stiffer chains curve less.
    gt_blur_fwhm_nm : float
        FWHM in nm of the Gaussian that gives the lines their width (0: no blur).
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    ndarray, float32, shape (N, N)
        Fluorophore density on ``gt_pixel_nm`` pixels, ``N = field_um · 1000 / gt_pixel_nm``, scaled so
        that the crest of a single isolated chain is about 1 (crossings are brighter).

    Raises
    ------
    InputError
        Non-positive sizes, both or invalid ``n_chains`` and ``density``, or a density that adding
        chains does not reach.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image generation" and eq. 19.

    Examples
    --------
    >>> gt = polymer_chains(2.0, 10.0, n_chains=3, seed=1)
    >>> gt.shape, gt.dtype
    ((200, 200), dtype('float32'))
    """
    shape = _field_shape(field_um, gt_pixel_nm)
    sigma_px = _line_sigma_px(gt_blur_fwhm_nm, gt_pixel_nm)
    if not np.isfinite(persistence_nm) or persistence_nm <= 0:
        raise InputError(f"persistence_nm must be a positive length in nm, got {persistence_nm}")
    if n_chains is not None and density is not None:
        raise InputError("pass either n_chains or density, not both")
    rng = np.random.default_rng(seed)
    # A chain of unit linear density blurred by σ has a crest of 1/(√(2π) σ) per pixel.
    crest = 1.0 / (np.sqrt(2.0 * np.pi) * _effective_sigma_px(sigma_px))
    thin = np.zeros(shape, dtype=np.float64)

    if density is None:
        if n_chains is None:
            n_chains = max(1, int(round(_SFSRM_CHAINS_PER_UM2 * field_um ** 2)))
        if int(n_chains) != n_chains or n_chains < 1:
            raise InputError(f"n_chains must be a positive integer, got {n_chains}")
        _draw_chains(thin, rng, int(n_chains), gt_pixel_nm, persistence_nm)
        return (_blur_ground_truth(thin, sigma_px) / crest).astype(np.float32)

    if not np.isfinite(density) or not 0.0 < density < 1.0:
        raise InputError(f"density must be a fraction in (0, 1), got {density}")
    if density > MAX_FILAMENT_DENSITY:
        raise InputError(f"density {density} is above {MAX_FILAMENT_DENSITY}: Otsu-binarized fields that dense "
                         "are a uniform haze and take minutes of chains to reach; ask for a lower density")

    def measured(image: np.ndarray) -> float:
        blurred = _blur_ground_truth(image, sigma_px)
        return signal_density(blurred) if np.ptp(blurred) > 0 else 0.0

    count, current = 0, 0.0
    previous = (thin.copy(), 0.0)
    for _ in range(200):
        if current >= density:
            break
        per_chain = current / count if count else 0.0
        # Add half of what the density gained per chain so far predicts, so the last chains go one at a
        # time and the overshoot stays about one chain's worth.
        # Batches at most double the count, so a first chain that barely touches the field does not
        # set off a huge overshoot.
        batch = max(1, count) if per_chain <= 0 else int(np.clip(0.5 * (density - current) / per_chain,
                                                                   1, max(1, count)))
        previous = (thin.copy(), current)
        _draw_chains(thin, rng, batch, gt_pixel_nm, persistence_nm)
        count += batch
        current = measured(thin)
    else:
        raise InputError(f"signal density {density} was not reached (got {current:.3f} with {count} "
                         "chains); ask for a lower density")
    if abs(previous[1] - density) < abs(current - density):
        thin = previous[0]
    return (_blur_ground_truth(thin, sigma_px) / crest).astype(np.float32)


def _place_centres(rng: np.random.Generator, n: int, field_nm: float, border_nm: float,
                   spacing_nm: float, what: str) -> np.ndarray:
    """``(n, 2)`` random centres (y, x) in nm, ``border_nm`` inside the field and ``spacing_nm`` apart."""
    if int(n) != n or n < 1:
        raise InputError(f"the number of {what} must be a positive integer, got {n}")
    low, high = border_nm, field_nm - border_nm
    if high <= low:
        raise InputError(f"a {field_nm / 1000:g} µm field is too small for {what} of this size; "
                         "use a larger field")
    centres: list[np.ndarray] = []
    for _ in range(200 * int(n)):
        candidate = rng.uniform(low, high, size=2)
        if all(np.hypot(*(candidate - c)) >= spacing_nm for c in centres):
            centres.append(candidate)
            if len(centres) == n:
                return np.array(centres)
    raise InputError(f"could not place {n} {what} {spacing_nm:g} nm apart in a {field_nm / 1000:g} µm "
                     "field; ask for fewer or use a larger field")


def _check_lengths(values, name: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InputError(f"{name} must be positive lengths in nm, got {values.tolist()}")
    return values


def line_pairs(field_um: float = 10.0, gt_pixel_nm: float = 10.0, *,
               separations_nm=(10.0, 20.0, 30.0, 40.0, 50.0), n_pairs: int = 20,
               length_nm: float = 1000.0, gt_blur_fwhm_nm: float = 20.0,
               seed: int | np.random.Generator = 0) -> tuple[np.ndarray, list[LinePair]]:
    """Ground truth of straight line pairs a known distance apart, to measure the achievable resolution.

    Each pair is two parallel lines of unit linear density, ``length_nm`` long, at a random position
    and orientation; pairs do not touch one another. Pair ``i`` gets ``separations_nm[i % len]``, so
    every separation is equally represented (SFSRM resolves line pairs 10–50 nm apart and reports the
    smallest separation resolved with accuracy > 0.85).

    Parameters
    ----------
    field_um : float
        Side of the square field in µm (SFSRM: 10 µm).
    gt_pixel_nm : float
        Pixel size of the ground-truth grid in nm (SFSRM: 10 nm).
    separations_nm : sequence of float
        Centre-to-centre distances between the two lines in nm, cycled over the pairs.
    n_pairs : int
        Number of pairs.
    length_nm : float
        Length of each line in nm.
    gt_blur_fwhm_nm : float
        FWHM in nm of the ground-truth Gaussian (20 nm in SFSRM; 0: no blur).
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    gt : ndarray, float32, shape (N, N)
        Fluorophore density, scaled so that an isolated line's crest is about 1.
    pairs : list of LinePair
        Where each pair lies, its orientation and separation, in nm. A position ``p`` nm is at pixel
        coordinate ``p / gt_pixel_nm`` (pixel ``i`` is centred on ``i · gt_pixel_nm``).

    Raises
    ------
    InputError
        Non-positive sizes, or more pairs than fit in the field.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image generation", Fig. 2a and
    Supplementary Note 2.

    Examples
    --------
    >>> gt, pairs = line_pairs(3.0, 10.0, separations_nm=(30.0,), n_pairs=2, seed=0)
    >>> gt.shape, [p.separation_nm for p in pairs]
    ((300, 300), [30.0, 30.0])
    """
    shape = _field_shape(field_um, gt_pixel_nm)
    sigma_px = _line_sigma_px(gt_blur_fwhm_nm, gt_pixel_nm)
    separations = _check_lengths(separations_nm, "separations_nm")
    length_nm = float(_check_lengths(length_nm, "length_nm")[0])
    rng = np.random.default_rng(seed)
    field_nm = shape[0] * gt_pixel_nm
    extent_nm = 0.5 * np.hypot(length_nm, separations.max())
    # Pairs at least 200 nm plus their extent apart stay distinct even after a 280-nm PSF.
    centres = _place_centres(rng, n_pairs, field_nm, extent_nm + 2 * gt_pixel_nm,
                             2 * extent_nm + 200.0, "line pairs")
    thin = np.zeros(shape, dtype=np.float64)
    pairs: list[LinePair] = []
    for i, centre in enumerate(centres):
        angle = rng.uniform(0.0, np.pi)
        along = np.array([np.sin(angle), np.cos(angle)])
        across = np.array([np.cos(angle), -np.sin(angle)])
        separation = float(separations[i % separations.size])
        mids = [centre - 0.5 * separation * across, centre + 0.5 * separation * across]
        for mid in mids:
            _draw_segment(thin, mid - 0.5 * length_nm * along, mid + 0.5 * length_nm * along, gt_pixel_nm)
        pairs.append(LinePair(centres_nm=tuple(tuple(float(v) for v in m) for m in mids),
                              direction_rad=float(angle), separation_nm=separation,
                              length_nm=length_nm))
    crest = 1.0 / (np.sqrt(2.0 * np.pi) * _effective_sigma_px(sigma_px))
    return (_blur_ground_truth(thin, sigma_px) / crest).astype(np.float32), pairs


def dot_pairs(field_um: float = 10.0, gt_pixel_nm: float = 10.0, *,
              separations_nm=(20.0, 30.0, 40.0, 50.0), n_pairs: int = 50,
              gt_blur_fwhm_nm: float = 20.0, seed: int | np.random.Generator = 0,
              ) -> tuple[np.ndarray, list[DotPair]]:
    """Ground truth of point-emitter pairs a known distance apart (DNA-nanoruler-like).

    Each pair is two point emitters at a random position and orientation; pairs do not touch one
    another. Pair ``i`` gets ``separations_nm[i % len]`` (SFSRM: 20–50 nm).

    Parameters
    ----------
    field_um : float
        Side of the square field in µm (SFSRM: 10 µm).
    gt_pixel_nm : float
        Pixel size of the ground-truth grid in nm (SFSRM: 10 nm).
    separations_nm : sequence of float
        Distances between the two dots in nm, cycled over the pairs.
    n_pairs : int
        Number of pairs.
    gt_blur_fwhm_nm : float
        FWHM in nm of the ground-truth Gaussian (20 nm in SFSRM; 0: no blur).
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    gt : ndarray, float32, shape (N, N)
        Fluorophore density, scaled so that an isolated dot's peak is about 1.
    pairs : list of DotPair
        Where each pair's dots lie and their separation, in nm.

    Raises
    ------
    InputError
        Non-positive sizes, or more pairs than fit in the field.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image generation" and Fig. 2c.

    Examples
    --------
    >>> gt, pairs = dot_pairs(1.0, 10.0, n_pairs=4, seed=0)
    >>> gt.shape, len(pairs)
    ((100, 100), 4)
    """
    shape = _field_shape(field_um, gt_pixel_nm)
    sigma_px = _line_sigma_px(gt_blur_fwhm_nm, gt_pixel_nm)
    separations = _check_lengths(separations_nm, "separations_nm")
    rng = np.random.default_rng(seed)
    field_nm = shape[0] * gt_pixel_nm
    extent_nm = 0.5 * separations.max()
    centres = _place_centres(rng, n_pairs, field_nm, extent_nm + 2 * gt_pixel_nm,
                             2 * extent_nm + 200.0, "dot pairs")
    thin = np.zeros(shape, dtype=np.float64)
    pairs: list[DotPair] = []
    for i, centre in enumerate(centres):
        angle = rng.uniform(0.0, np.pi)
        axis = np.array([np.sin(angle), np.cos(angle)])
        separation = float(separations[i % separations.size])
        dots = np.array([centre - 0.5 * separation * axis, centre + 0.5 * separation * axis])
        _splat(thin, dots[:, 0] / gt_pixel_nm, dots[:, 1] / gt_pixel_nm, np.ones(2))
        pairs.append(DotPair(centres_nm=tuple(tuple(float(v) for v in d) for d in dots),
                             direction_rad=float(angle), separation_nm=separation))
    # A unit point blurred by σ peaks at 1/(2π σ²).
    peak = 1.0 / (2.0 * np.pi * _effective_sigma_px(sigma_px) ** 2)
    return (_blur_ground_truth(thin, sigma_px) / peak).astype(np.float32), pairs


def rings(field_um: float = 10.0, gt_pixel_nm: float = 10.0, *, diameters_nm=(50.0, 160.0),
          n_rings: int = 50, gt_blur_fwhm_nm: float = 20.0, seed: int | np.random.Generator = 0,
          ) -> tuple[np.ndarray, list[Ring]]:
    """Ground truth of hollow rings the size of clathrin-coated pits (SFSRM Fig. 2e).

    Each ring is a circle of unit linear density with a diameter drawn uniformly in ``diameters_nm``,
    at a random position; rings do not touch one another.

    Parameters
    ----------
    field_um : float
        Side of the square field in µm.
    gt_pixel_nm : float
        Pixel size of the ground-truth grid in nm.
    diameters_nm : (float, float)
        Smallest and largest ring diameter in nm (clathrin-coated pits: about 50–160 nm).
    n_rings : int
        Number of rings.
    gt_blur_fwhm_nm : float
        FWHM in nm of the ground-truth Gaussian (0: no blur).
    seed : int or Generator
        Randomness, for reproducible specimens.

    Returns
    -------
    gt : ndarray, float32, shape (N, N)
        Fluorophore density, scaled so that a ring's crest is about 1.
    rings : list of Ring
        Centre and diameter of each ring, in nm.

    Raises
    ------
    InputError
        Non-positive sizes, a reversed diameter range, or more rings than fit in the field.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Fig. 2e (clathrin-coated pits of different sizes).

    Examples
    --------
    >>> gt, found = rings(1.0, 10.0, n_rings=3, seed=0)
    >>> gt.shape, len(found)
    ((100, 100), 3)
    """
    shape = _field_shape(field_um, gt_pixel_nm)
    sigma_px = _line_sigma_px(gt_blur_fwhm_nm, gt_pixel_nm)
    limits = _check_lengths(diameters_nm, "diameters_nm")
    if limits.size != 2 or limits[0] > limits[1]:
        raise InputError(f"diameters_nm must be (smallest, largest), got {limits.tolist()}")
    rng = np.random.default_rng(seed)
    field_nm = shape[0] * gt_pixel_nm
    radius_max = 0.5 * limits[1]
    centres = _place_centres(rng, n_rings, field_nm, radius_max + 2 * gt_pixel_nm,
                             2 * radius_max + 100.0, "rings")
    thin = np.zeros(shape, dtype=np.float64)
    found: list[Ring] = []
    for centre in centres:
        diameter = float(rng.uniform(limits[0], limits[1]))
        # Steps of a third of a pixel along the circumference keep the ring evenly bright.
        n = max(8, int(np.ceil(3.0 * np.pi * diameter / gt_pixel_nm)))
        phi = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(n) / n
        points = centre[None, :] + 0.5 * diameter * np.stack([np.sin(phi), np.cos(phi)], axis=1)
        _splat(thin, points[:, 0] / gt_pixel_nm, points[:, 1] / gt_pixel_nm,
               np.full(n, np.pi * diameter / n / gt_pixel_nm))
        found.append(Ring(centre_nm=(float(centre[0]), float(centre[1])), diameter_nm=diameter))
    crest = 1.0 / (np.sqrt(2.0 * np.pi) * _effective_sigma_px(sigma_px))
    return (_blur_ground_truth(thin, sigma_px) / crest).astype(np.float32), found


def _pixel_ratio(lr_pixel_nm: float, gt_pixel_nm: float) -> int:
    """The integer number of GT pixels per LR pixel, or an InputError saying why there is none."""
    for name, value in (("lr_pixel_nm", lr_pixel_nm), ("gt_pixel_nm", gt_pixel_nm)):
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive pixel size in nm, got {value}")
    ratio = lr_pixel_nm / gt_pixel_nm
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-6 * ratio:
        raise InputError(f"the low-resolution pixel ({lr_pixel_nm} nm) must be an integer multiple of the "
                         f"ground-truth pixel ({gt_pixel_nm} nm), got a ratio of {ratio:g}")
    return int(round(ratio))


def _blur_and_bin(gt: np.ndarray, sigma_px: float, ratio: int) -> np.ndarray:
    """Noise-free low-resolution image: Gaussian PSF on the GT grid, then camera-pixel integration."""
    image = np.asarray(gt, dtype=np.float64)
    if sigma_px > 0:
        # The PSF is tens of GT pixels wide; a Fourier-domain Gaussian costs the same for any width.
        # Zero padding by 4σ means no fluorophores outside the field, and no wrap-around.
        pad = int(np.ceil(4.0 * sigma_px))
        size = [scipy_fft.next_fast_len(n + 2 * pad, real=True) for n in image.shape]
        padded = np.zeros(size)
        padded[pad:pad + image.shape[0], pad:pad + image.shape[1]] = image
        ky = scipy_fft.fftfreq(size[0])[:, None]
        kx = scipy_fft.rfftfreq(size[1])[None, :]
        transfer = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (ky ** 2 + kx ** 2))
        blurred = scipy_fft.irfft2(scipy_fft.rfft2(padded) * transfer, s=size)
        image = blurred[pad:pad + image.shape[0], pad:pad + image.shape[1]]
    ny, nx = image.shape
    # A camera pixel counts every photon landing on it: sum, not sample, the GT pixels it covers.
    return image.reshape(ny // ratio, ratio, nx // ratio, ratio).sum(axis=(1, 3))


def _binning_blur_rows(length: int, sigma_px: float, ratio: int, start_lr: int, count_lr: int) -> np.ndarray:
    """``(count_lr, length)`` weights: LR pixels ``start_lr …`` of :func:`_blur_and_bin` along one axis, each the sum
    of its ``ratio`` GT pixels of the blurred axis. The kernel is the one the Fourier-domain blur applies: the
    inverse transform of the same sampled Gaussian transfer on the same zero-padded length."""
    fine = np.arange(start_lr * ratio, (start_lr + count_lr) * ratio)[:, None] - np.arange(length)[None, :]
    if sigma_px > 0:
        pad = int(np.ceil(4.0 * sigma_px))
        size = scipy_fft.next_fast_len(length + 2 * pad, real=True)
        kernel = scipy_fft.irfft(np.exp(-2.0 * (np.pi * sigma_px * scipy_fft.rfftfreq(size)) ** 2), n=size)
        weights = kernel[np.mod(fine, size)]
    else:
        weights = (fine == 0).astype(np.float64)
    return weights.reshape(count_lr, ratio, length).sum(axis=1)


def _blur_and_bin_crop(gt: np.ndarray, sigma_px: float, ratio: int, start_lr: int, count_lr: int) -> np.ndarray:
    """``_blur_and_bin(gt, sigma_px, ratio)[crop, crop]`` for the LR pixels ``start_lr … start_lr + count_lr``.

    Only the patch is made, as two matrix products with the blur-and-bin weights of its rows and columns: a
    training patch is a small part of the field that its margin (the reach of the PSF and the haze) makes
    large, and the two Fourier transforms of the whole padded field cost ~30× more (measured at 768² GT
    pixels). Equal to the whole-field blur to float rounding.
    """
    image = np.asarray(gt, dtype=np.float64)
    rows = _binning_blur_rows(image.shape[0], sigma_px, ratio, start_lr, count_lr)
    columns = rows if image.shape[0] == image.shape[1] else _binning_blur_rows(image.shape[1], sigma_px, ratio,
                                                                              start_lr, count_lr)
    return rows @ image @ columns.T


def _photon_scale(expected: np.ndarray, snr: float, background_photons: float,
                  read_noise_e: float) -> float:
    """Photons per unit of ``expected`` that give the image the asked SNR (see :func:`degrade`).

    With ``a`` the scale, the noisy image is ``Poisson(a·b + B) + N(0, r²)``. Over the signal mask (Otsu
    of ``b`` smoothed by one pixel, as ``signal_to_noise`` does on the image) the signal is
    ``S = a·(mean b_sig − median b_bg) = a·m`` and the noise variance of the background pixels is
    ``a·μ + B + r²`` (shot noise of the structures' tails and of the background, read noise), with ``μ``
    the mean of ``b`` over them. ``SNR² = a²m² / (a(m + μ) + B + r²)`` grows with ``a``, so
    ``SNR(a) = snr`` is a quadratic in ``a`` with one positive root.
    """
    smoothed = ndimage.gaussian_filter(expected, 1.0)
    mask = smoothed > threshold_otsu(smoothed)
    background = expected[~mask]
    if not mask.any() or background.size == 0:
        raise InputError("the low-resolution image has no background pixels to measure noise on; "
                         "use a sparser ground truth or a larger field")
    m = float(expected[mask].mean() - np.median(background))
    if m <= 0:
        raise InputError("the ground truth's structures are not brighter than its background at this "
                         "resolution; use a sparser ground truth")
    mu = float(background.mean())
    c = background_photons + read_noise_e ** 2
    t2 = snr ** 2
    linear = t2 * (m + mu)
    return float((linear + np.sqrt(linear ** 2 + 4.0 * m ** 2 * t2 * c)) / (2.0 * m ** 2))


def _check_noise(snr: float, background_photons: float, read_noise_e: float) -> None:
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be positive, got {snr}")
    if not np.isfinite(background_photons) or background_photons < 0:
        raise InputError(f"background_photons must be ≥ 0, got {background_photons}")
    if not np.isfinite(read_noise_e) or read_noise_e < 0:
        raise InputError(f"read_noise_e must be ≥ 0, got {read_noise_e}")
    if background_photons + read_noise_e ** 2 == 0:
        raise InputError("with no background and no read noise the SNR is set by the signal alone; "
                         "give background_photons or read_noise_e a positive value")


def _add_noise(expected: np.ndarray, scale: float, background_photons: float, read_noise_e: float,
               rng: np.random.Generator) -> np.ndarray:
    photons = rng.poisson(scale * expected + background_photons).astype(np.float64)
    return (photons + rng.normal(0.0, read_noise_e, size=expected.shape)).astype(np.float32)


def degrade(gt: np.ndarray, gt_pixel_nm: float, *, lr_pixel_nm: float = 100.0, fwhm_nm: float = 200.0,
            snr: float = 15.0, background_photons: float = 10.0, read_noise_e: float = 1.5,
            seed: int | np.random.Generator = 0) -> np.ndarray:
    """Noisy low-resolution (widefield) image of a ground truth, at a chosen SNR.

    The ground truth is blurred by a Gaussian PSF of ``fwhm_nm`` on its own grid (no fluorophores
    outside the field), integrated onto camera pixels of ``lr_pixel_nm``, scaled to photons, and given a
    uniform background, Poisson shot noise and Gaussian read noise. The output is in photoelectrons
    (gain 1, no camera offset).

    SNR follows :func:`microsr.metrics.signal.signal_to_noise`: ``SNR = S / sqrt(S + σ²_bg)``, with
    ``S`` the mean background-subtracted signal (photons) over the signal pixels (Otsu mask of the image
    smoothed by one pixel) and ``σ²_bg`` the noise variance of the background pixels (background shot
    noise, read noise, and the shot noise of the structures' tails there). The photon scale that gives
    ``snr`` is solved analytically on the noise-free image. For sparse specimens the SNR that
    ``signal_to_noise`` measures on the output agrees within about 10 %; on dense ones it reads lower,
    because it also counts the structure between the signal pixels as background variance, which is
    not noise.

    Parameters
    ----------
    gt : ndarray, shape (Y, X)
        Ground truth (fluorophore density, any scale), both sides multiples of the pixel ratio.
    gt_pixel_nm : float
        Pixel size of ``gt`` in nm.
    lr_pixel_nm : float
        Camera pixel size in the sample plane in nm (SFSRM: 100 nm), an integer multiple of
        ``gt_pixel_nm``.
    fwhm_nm : float
        FWHM of the Gaussian PSF in nm (SFSRM: 200 nm for polymer lines, 280 nm for line/dot pairs).
    snr : float
        Target SNR of the low-resolution image (SFSRM explores 1–20; it needs about 15 without and 7
        with its signal-enhancement network).
    background_photons : float
        Uniform background in photons per camera pixel.
    read_noise_e : float
        Camera read noise in electrons RMS.
    seed : int or Generator
        Randomness, for reproducible noise.

    Returns
    -------
    ndarray, float32, shape (Y / ratio, X / ratio)
        Low-resolution image in photoelectrons, ``ratio = lr_pixel_nm / gt_pixel_nm``.

    Raises
    ------
    InputError
        A non-integer pixel ratio, a shape not divisible by it, ``snr ≤ 0``, negative noise levels, an
        empty or non-finite ground truth, or an SNR the ground truth's structure does not allow.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image generation" and Results
    (SNR 1–20; Supplementary Note 1).

    Examples
    --------
    >>> gt = polymer_chains(3.2, 10.0, n_chains=4, seed=0)
    >>> lr = degrade(gt, 10.0, snr=15.0, seed=0)
    >>> lr.shape, lr.dtype
    ((32, 32), dtype('float32'))
    """
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise InputError(f"the ground truth must be a 2-D image, got shape {gt.shape}")
    if not np.all(np.isfinite(gt)) or np.any(gt < 0):
        raise InputError("the ground truth must be finite and non-negative (a fluorophore density)")
    if np.ptp(gt) == 0:
        raise InputError("the ground truth is constant, so it has no structure to image")
    ratio = _pixel_ratio(lr_pixel_nm, gt_pixel_nm)
    if gt.shape[0] % ratio or gt.shape[1] % ratio:
        raise InputError(f"the ground truth's shape {gt.shape} must be a multiple of the pixel ratio "
                         f"{ratio}; crop it")
    if not np.isfinite(fwhm_nm) or fwhm_nm < 0:
        raise InputError(f"fwhm_nm must be ≥ 0 nm, got {fwhm_nm}")
    _check_noise(snr, background_photons, read_noise_e)
    rng = np.random.default_rng(seed)
    expected = _blur_and_bin(gt, fwhm_nm / _FWHM_PER_SIGMA / gt_pixel_nm, ratio)
    scale = _photon_scale(expected, snr, background_photons, read_noise_e)
    return _add_noise(expected, scale, background_photons, read_noise_e, rng)


def _training_gt_pixel(lr_pixel_nm: float, scale: int) -> tuple[float, int]:
    """A GT pixel ≤ 10 nm (SFSRM's grid) that divides the HR pixel: ``lr_pixel / (scale · k)``."""
    hr_pixel_nm = lr_pixel_nm / scale
    k = max(1, int(np.ceil(hr_pixel_nm / 10.0 - 1e-9)))
    return hr_pixel_nm / k, k


def _binned_crop(gt: np.ndarray, margin_lr: int, patch_px: int, scale: int, k: int) -> np.ndarray:
    """The patch of ``gt`` inside a margin of ``margin_lr`` LR pixels, summed onto the HR grid (``k`` GT pixels
    per HR pixel, ``scale`` HR pixels per LR pixel)."""
    ratio = scale * k
    crop = slice(margin_lr * ratio, (margin_lr + patch_px) * ratio)
    return gt[crop, crop].reshape(patch_px * scale, k, patch_px * scale, k).sum(axis=(1, 3))


def training_pair(kind: str = "filaments", *, scale: int = 4, lr_patch_px: int = 32,
                  lr_pixel_nm: float = 100.0, fwhm_nm: float = 200.0, snr: float = 15.0,
                  density: float | None = None, background_photons: float = 10.0,
                  read_noise_e: float = 1.5, seed: int | np.random.Generator = 0,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One simulated (low-resolution, high-resolution) training pair, drawn on the fly.

    A ground truth of the chosen ``kind`` is drawn on a grid of ``lr_pixel_nm / (scale · k)`` pixels
    (``k`` the smallest integer that makes it ≤ 10 nm, SFSRM's GT pixel), with a margin of 3 LR pixels
    around the patch so structures outside it blur in as they would in a larger image. The LR image is
    :func:`degrade` of it (PSF ``fwhm_nm``, camera ``lr_pixel_nm``, target ``snr`` measured on the
    patch); the HR target is the same ground truth (already blurred by 20 nm) integrated onto pixels of
    ``lr_pixel_nm / scale``. Both are cropped to the patch.

    Parameters
    ----------
    kind : {"filaments", "line-pairs", "dot-pairs", "rings"}
        Specimen: :func:`polymer_chains` (SFSRM's 50 chains per 100 µm² unless ``density``),
        :func:`line_pairs` (10–50 nm), :func:`dot_pairs` (20–50 nm) or :func:`rings` (50–160 nm).
    scale : int
        Resolution gain: HR pixels per LR pixel per axis (×4 → 25 nm, ×10 → 10 nm at 100 nm LR pixels).
    lr_patch_px : int
        Side of the LR patch in pixels.
    lr_pixel_nm : float
        LR (camera) pixel size in nm.
    fwhm_nm : float
        FWHM of the LR Gaussian PSF in nm (SFSRM: 200 nm for lines, 280 nm for pairs).
    snr : float
        SNR of the LR patch, as :func:`degrade` defines it.
    density : float, optional
        Signal density of the filaments' ground truth (whole generated field, margin included); only
        for ``kind="filaments"``.
    background_photons, read_noise_e : float
        Background (photons per LR pixel) and read noise (electrons RMS), as in :func:`degrade`.
    seed : int or Generator
        Randomness: the same seed gives the same pair.

    Returns
    -------
    lr : ndarray, float32, shape (P, P)
        Noisy low-resolution patch in photoelectrons (normalize it before a network sees it).
    hr : ndarray, float32, shape (scale · P, scale · P)
        Noise-free high-resolution target divided by its maximum, so its peak is exactly 1 and its
        background 0 (SFSRM normalizes its training images to a fixed range).

    Raises
    ------
    InputError
        An unknown ``kind``, a non-integer or non-positive ``scale`` or patch size, ``density`` with
        a kind other than filaments, or invalid noise settings.

    References
    ----------
    R. Chen et al., Nat. Commun. 14, 2854 (2023), Methods "Simulation image generation" and "Network
    training".

    Examples
    --------
    >>> lr, hr = training_pair("filaments", scale=4, lr_patch_px=32, seed=3)
    >>> lr.shape, hr.shape, float(hr.max())
    ((32, 32), (128, 128), 1.0)
    """
    if kind not in _TRAINING_KINDS:
        raise InputError(f"kind must be one of {', '.join(_TRAINING_KINDS)}, got {kind!r}")
    if int(scale) != scale or scale < 1:
        raise InputError(f"scale must be a positive integer, got {scale}")
    if int(lr_patch_px) != lr_patch_px or lr_patch_px < 8:
        raise InputError(f"lr_patch_px must be an integer ≥ 8, got {lr_patch_px}")
    if density is not None and kind != "filaments":
        raise InputError(f"density controls filaments only; leave it unset for kind={kind!r}")
    if not np.isfinite(lr_pixel_nm) or lr_pixel_nm <= 0:
        raise InputError(f"lr_pixel_nm must be a positive pixel size in nm, got {lr_pixel_nm}")
    if not np.isfinite(fwhm_nm) or fwhm_nm < 0:
        raise InputError(f"fwhm_nm must be ≥ 0 nm, got {fwhm_nm}")
    _check_noise(snr, background_photons, read_noise_e)
    scale, lr_patch_px = int(scale), int(lr_patch_px)
    rng = np.random.default_rng(seed)
    gt_pixel_nm, k = _training_gt_pixel(lr_pixel_nm, scale)
    ratio = scale * k
    margin_lr = 3  # 3 LR pixels ≥ 3σ of a ≤ 280-nm-FWHM PSF at 100 nm pixels
    field_lr = lr_patch_px + 2 * margin_lr
    field_um = field_lr * lr_pixel_nm / 1000.0
    area_um2 = field_um ** 2

    for _ in range(20):  # an empty patch (everything in the margin) is drawn again
        if kind == "filaments":
            gt = polymer_chains(field_um, gt_pixel_nm, density=density,
                                n_chains=None if density is not None else
                                max(1, int(round(_SFSRM_CHAINS_PER_UM2 * area_um2))), seed=rng)
        elif kind == "line-pairs":
            gt, _ = line_pairs(field_um, gt_pixel_nm, n_pairs=max(1, int(area_um2 / 3.0)),
                               length_nm=min(1000.0, 0.25 * field_um * 1000.0), seed=rng)
        elif kind == "dot-pairs":
            gt, _ = dot_pairs(field_um, gt_pixel_nm, n_pairs=max(1, int(area_um2)), seed=rng)
        else:
            gt, _ = rings(field_um, gt_pixel_nm, n_rings=max(1, int(area_um2)), seed=rng)
        # Rounding in _field_shape can leave the field a pixel off a whole number of LR pixels.
        gt = gt[:field_lr * ratio, :field_lr * ratio]
        hr = _binned_crop(gt, margin_lr, lr_patch_px, scale, k)
        if hr.max() > 0:
            break
    else:
        raise InputError("could not draw a non-empty patch; use a larger lr_patch_px")
    expected = _blur_and_bin_crop(gt, fwhm_nm / _FWHM_PER_SIGMA / gt_pixel_nm, ratio, margin_lr, lr_patch_px)
    photons = _photon_scale(expected, snr, background_photons, read_noise_e)
    lr = _add_noise(expected, photons, background_photons, read_noise_e, rng)
    return lr, (hr / hr.max()).astype(np.float32)


#: Specimens :func:`simulate_widefield` makes (``microsr simulate <kind>``).
WIDEFIELD_SPECIMENS = ("filaments", "line-pairs", "dot-pairs", "rings")


@dataclass
class WidefieldSimulation:
    """A simulated widefield image, its ground truth on a fine grid, and the facts of how it was made.

    ``facts`` is what ``truth.json`` holds: kind, field, both pixel sizes, PSF FWHM, SNR, density,
    seed, and each placed structure (pairs and rings: positions, separations, diameters).
    """

    ground_truth: np.ndarray
    widefield: np.ndarray
    facts: dict


def simulate_widefield(kind: str = "filaments", *, field_um: float = 10.0, gt_pixel_nm: float = 10.0,
                       lr_pixel_nm: float = 100.0, fwhm_nm: float | None = None, snr: float = 15.0,
                       density: float | None = None, count: int | None = None, seed: int = 0) -> WidefieldSimulation:
    """Paper 003's recipes: ground truth on a fine grid, its noisy widefield image on the camera grid.

    Parameters
    ----------
    kind : {"filaments", "line-pairs", "dot-pairs", "rings"}
        The specimen.
    field_um, gt_pixel_nm, lr_pixel_nm : float
        Field of view (µm, square) and the pixel sizes of the truth and the widefield image.
    fwhm_nm : float, optional
        PSF FWHM; default the paper's, 200 nm for lines (filaments, line pairs), 280 nm for dots and rings.
    snr : float
        SNR of the widefield image (paper 003's definition, :func:`degrade`).
    density : float, optional
        Signal density of filaments (:func:`polymer_chains`); not for pairs and rings.
    count : int, optional
        Chains, pairs or rings; default the paper's.
    seed : int
        Seeds the specimen and the noise.

    Raises
    ------
    InputError
        An unknown kind, or ``density`` for pairs or rings.

    Examples
    --------
    >>> sim = simulate_widefield("dot-pairs", field_um=2.0, count=2, seed=1)
    >>> sim.ground_truth.shape, sim.widefield.shape, len(sim.facts["structures"])
    ((200, 200), (20, 20), 2)
    """
    if kind not in WIDEFIELD_SPECIMENS:
        raise InputError(f"unknown specimen {kind!r}: use one of {', '.join(WIDEFIELD_SPECIMENS)}")
    if kind == "filaments":
        truth = polymer_chains(field_um, gt_pixel_nm, density=density, n_chains=count, seed=seed)
        items = []
    else:
        if density is not None:
            raise InputError("--density applies to filaments only; use --count for pairs and rings")
        make, count_name = {"line-pairs": (line_pairs, "n_pairs"), "dot-pairs": (dot_pairs, "n_pairs"),
                            "rings": (rings, "n_rings")}[kind]
        truth, items = make(field_um, gt_pixel_nm, seed=seed, **({count_name: count} if count else {}))
    fwhm = fwhm_nm or (200.0 if kind in ("filaments", "line-pairs") else 280.0)  # the paper's PSFs
    widefield = degrade(truth, gt_pixel_nm, lr_pixel_nm=lr_pixel_nm, fwhm_nm=fwhm, snr=snr, seed=seed)
    facts = {"kind": kind, "field_um": field_um, "ground_truth_pixel_nm": gt_pixel_nm,
             "widefield_pixel_nm": lr_pixel_nm, "psf_fwhm_nm": fwhm, "snr": snr, "density": density, "seed": seed,
             "structures": [asdict(item) for item in items]}
    return WidefieldSimulation(truth, widefield, facts)
