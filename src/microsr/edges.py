"""Sub-pixel edge map of one widefield frame by radiality (SRRF's idea), the SFSRM network's second input.

The recipe is fixed here so that an edge map can be reproduced from the image alone (users of the SFSRM
reference code could not reproduce its edge maps):

1. **Gradients** ``(g_x, g_y)`` of the image by central differences on the input grid,
   ``g_x[y, x] = (I[y, x+1] − I[y, x−1]) / 2`` (and likewise along rows), the image edge replicated.
   ``x`` runs along columns, ``y`` along rows (downwards).
2. **Output grid.** Output pixel ``(i, j)`` of a map ``magnification`` times finer sits at
   ``y = (i + 0.5) / magnification − 0.5``, ``x = (j + 0.5) / magnification − 0.5`` in input pixels,
   input pixel centres being at integers: the output pixels tile the input pixels exactly (the
   ``align_corners=False`` convention of PyTorch and of scikit-image's ``rescale``).
3. **Ring.** Around each output position, ``n_points`` points on a circle of radius ``ring_radius_px``
   (input pixels), at angles ``θ_k = 2πk / n_points`` from the +x axis. The gradient at each ring point is
   interpolated from the gradient images by separable Catmull-Rom (Keys' bicubic, ``a = −0.5``), the
   image edge replicated.
4. **Radiality.** Ring point ``k`` at offset ``o_k`` from the centre scores
   ``s_k = sign(−o_k · g) (1 − d_k / R)²``, where ``d_k = |o_k × g| / |g|`` is the distance from the
   centre to the line through the ring point along its gradient: +1 when the gradient points straight
   at the centre (the ring point is on the flank of a bright spot or ridge centred there), negative when
   it points away. With ``gradient_weighted`` (the default) the score is multiplied by ``|g|`` at the
   ring point. Gradients weaker than ``1e-6`` of the image's largest gradient are float rounding, not
   structure: they are set to 0 on the input grid before interpolation, and a ring point whose
   interpolated gradient is that weak scores 0. The map is the mean of the scores over the ring,
   clamped at ≥ 0.
   *Why gradient weighting:* the plain score depends on the gradient's direction only. Across a
   straight line every gradient is normal to it, so the mean changes only when the centre crosses a
   ring point's distance to the line; with 12 points it is exactly flat within ±R/2 of the line centre
   and its maximum falls anywhere on that plateau. Weighting by ``|g|`` lets the ring points that
   straddle the line centre, whose gradients vanish there, fade in continuously, which restores a peak
   on the centre (within about 0.2 px at ×4 for noise-free lines of any angle and offset) and leaves
   spot centres where they were.
5. Optionally times the Catmull-Rom interpolated intensity above the image's minimum (so a camera offset
   does not matter), clamped at ≥ 0.
6. Divided by its maximum, per image, so it lies in [0, 1]; an all-zero map stays zero.

References
----------
.. [1] N. Gustafsson et al., "Fast live-cell conventional fluorophore nanoscopy with ImageJ through
   super-resolution radial fluctuations", Nat. Commun. 7, 12471 (2016).
.. [2] R. Chen et al., "Single-frame deep-learning super-resolution microscopy for intracellular dynamics
   imaging" (SFSRM), Nat. Commun. 14, 2854 (2023).
.. [3] R. Keys, "Cubic convolution interpolation for digital image processing", IEEE Trans. Acoust.
   Speech Signal Process. 29, 1153 (1981).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from microsr.errors import InputError

MIN_SIZE_PX = 8
#: Gradients below this fraction of the image's largest gradient have no reliable direction.
GRADIENT_FLOOR = 1e-6

__all__ = ["edge_map", "edge_map_torch"]


def edge_map(
    image: np.ndarray,
    *,
    magnification: int = 1,
    ring_radius_px: float = 1.0,
    n_points: int = 12,
    gradient_weighted: bool = True,
    intensity_weighted: bool = False,
) -> np.ndarray:
    """Radiality edge map of one 2-D image, on a grid ``magnification`` times finer, in [0, 1].

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        One widefield (low-resolution) frame, finite real values; any offset or scale.
    magnification : int
        Output pixels per input pixel along each axis (a positive integer).
    ring_radius_px : float
        Radius ``R`` of the ring of gradient samples, in input pixels.
    n_points : int
        Gradient samples on the ring (at least 3).
    gradient_weighted : bool
        Weight each ring point's score by its gradient magnitude (cf. NanoJ-SRRF's gradient weighting,
        which takes another form). Without it the map is flat-topped across a line (module notes, step
        4) and its maximum is only defined to ±R/2; ``False`` gives SRRF's plain mean.
    intensity_weighted : bool
        Multiply the radiality by the interpolated intensity above the image's minimum, so that dim
        background (whose gradients are mostly noise) is suppressed.

    Returns
    -------
    ndarray of float32, shape (magnification·Y, magnification·X)
        The edge map divided by its maximum (all zeros if nothing is radial, e.g. a constant image).
        Output pixel ``(i, j)`` is centred at ``((i + 0.5)/magnification − 0.5,
        (j + 0.5)/magnification − 0.5)`` in input pixels. The module docstring gives the full recipe.

    Raises
    ------
    InputError
        If ``image`` is not 2-D, holds NaN or infinity, is smaller than 8 pixels along an axis, or a
        parameter is out of range.

    References
    ----------
    .. [1] N. Gustafsson et al., Nat. Commun. 7, 12471 (2016) (SRRF radiality).
    .. [2] R. Chen et al., Nat. Commun. 14, 2854 (2023) (SFSRM edge map).

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:32, :32]
    >>> spot = np.exp(-((x - 15.3) ** 2 + (y - 16.6) ** 2) / (2 * 1.5**2))
    >>> edges = edge_map(spot, magnification=4)
    >>> edges.shape, edges.dtype, float(edges.max())
    ((128, 128), dtype('float32'), 1.0)
    >>> i, j = np.unravel_index(np.argmax(edges), edges.shape)
    >>> float((i + 0.5) / 4 - 0.5), float((j + 0.5) / 4 - 0.5)  # true centre (16.6, 15.3)
    (16.625, 15.375)
    """
    array = np.asarray(image)
    if array.ndim != 2:
        raise InputError(
            f"edge_map needs one 2-D grey-scale frame, got an array of shape {array.shape}; "
            "pass frames one at a time and convert RGB to one channel first"
        )
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise InputError(f"edge_map needs real numbers, got dtype {array.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    result = edge_map_torch(
        tensor,
        magnification=magnification,
        ring_radius_px=ring_radius_px,
        n_points=n_points,
        gradient_weighted=gradient_weighted,
        intensity_weighted=intensity_weighted,
    )
    return result[0, 0].numpy()


def edge_map_torch(
    images: torch.Tensor,
    *,
    magnification: int = 1,
    ring_radius_px: float = 1.0,
    n_points: int = 12,
    gradient_weighted: bool = True,
    intensity_weighted: bool = False,
) -> torch.Tensor:
    """Radiality edge maps of a batch of frames on their own device (for on-the-fly training inputs).

    Same recipe and conventions as :func:`edge_map`, image by image (each map is normalized by its own
    maximum). No gradient is tracked through it: the edge map is an input, not a trained quantity.

    Parameters
    ----------
    images : Tensor, shape (N, 1, H, W)
        Real-valued frames on any device. float64 is computed in float64, anything else in float32.
    magnification : int
        Output pixels per input pixel along each axis (a positive integer).
    ring_radius_px : float
        Radius of the ring of gradient samples, in input pixels.
    n_points : int
        Gradient samples on the ring (at least 3).
    gradient_weighted : bool
        Weight each ring point's score by its gradient magnitude (see :func:`edge_map`).
    intensity_weighted : bool
        Multiply by the interpolated intensity above each image's minimum.

    Returns
    -------
    Tensor, shape (N, 1, magnification·H, magnification·W)
        Edge maps in [0, 1], on the device of ``images``, float64 for float64 input, else float32.

    Raises
    ------
    InputError
        If ``images`` is not (N, 1, H, W), holds NaN or infinity, H or W < 8, or a parameter is out
        of range.

    References
    ----------
    .. [1] N. Gustafsson et al., Nat. Commun. 7, 12471 (2016) (SRRF radiality).

    Examples
    --------
    >>> import torch
    >>> batch = torch.zeros(2, 1, 16, 16)
    >>> batch[:, :, 8, 8] = 1.0
    >>> edge_map_torch(batch, magnification=2).shape
    torch.Size([2, 1, 32, 32])
    """
    _check_parameters(magnification, ring_radius_px, n_points)
    if not isinstance(images, torch.Tensor):
        raise InputError(f"edge_map_torch needs a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 1:
        raise InputError(
            f"edge_map_torch needs a batch of shape (N, 1, H, W), got {tuple(images.shape)}; "
            "convert RGB to one channel first"
        )
    if images.is_complex() or images.dtype == torch.bool:
        raise InputError(f"edge_map_torch needs real numbers, got dtype {images.dtype}")
    if min(images.shape[-2:]) < MIN_SIZE_PX:
        raise InputError(
            f"edge map needs images of at least {MIN_SIZE_PX}×{MIN_SIZE_PX} pixels, "
            f"got {tuple(images.shape[-2:])}"
        )
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        images = images.to(dtype)
        if not bool(torch.isfinite(images).all()):
            raise InputError("the image holds NaN or infinite values; replace them before the edge map")
        return _radiality(images, int(magnification), float(ring_radius_px), int(n_points),
                          bool(gradient_weighted), bool(intensity_weighted))


def _check_parameters(magnification, ring_radius_px, n_points):
    if isinstance(magnification, bool) or not isinstance(magnification, numbers.Integral) \
            or magnification < 1:
        raise InputError(f"magnification must be a positive integer, got {magnification!r}")
    if isinstance(ring_radius_px, bool) or not isinstance(ring_radius_px, numbers.Real) \
            or not math.isfinite(ring_radius_px) or ring_radius_px <= 0:
        raise InputError(f"ring_radius_px must be a positive number of pixels, got {ring_radius_px!r}")
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 3:
        raise InputError(f"n_points must be an integer ≥ 3, got {n_points!r}")


def _catmull_rom_weights(t: np.ndarray) -> np.ndarray:
    """Weights of the taps at −1, 0, +1, +2 for sampling at fractions ``t`` ∈ [0, 1) past tap 0."""
    t2, t3 = t * t, t * t * t
    # Keys' cubic convolution with a = −0.5 (Catmull-Rom): interpolates, C¹, exact for quadratics.
    return 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2],
                          axis=-1)


class _Resampler:
    """Samples (B, 1, H, W) fields at ``output grid + (dy, dx)`` as (B, m_x, m_y, H, W) sub-pixel phases.

    Output pixel ``(q_y·m + r_y, q_x·m + r_x)`` is phase ``(r_x, r_y)`` of input pixel ``(q_y, q_x)``.
    Because the fractional sample position depends only on the phase, each phase is a fixed 4-tap
    filter along each axis: 8·m shifted, scaled slices replace a per-pixel gather (and, unlike small
    convolutions, cost no per-shape set-up on CPU).
    """

    def __init__(self, fields: torch.Tensor, magnification: int, reach_px: float):
        self.m = magnification
        self.phase = (np.arange(magnification) + 0.5) / magnification - 0.5
        # one replicate pad wide enough for every ring point keeps every tap inside the array
        self.pad = int(math.floor(self.phase.max() + reach_px)) + 3
        self.padded = F.pad(fields, (self.pad,) * 4, mode="replicate")[:, 0]
        self.height, self.width = fields.shape[-2:]

    def _taps(self, offset_px: float) -> tuple[np.ndarray, np.ndarray]:
        """Index in the padded array of each phase's first tap, and the phases' 4 tap weights."""
        positions = self.phase + offset_px
        base = np.floor(positions).astype(np.int64)
        return base - 1 + self.pad, _catmull_rom_weights(positions - base)

    def __call__(self, dy_px: float, dx_px: float) -> torch.Tensor:
        m, height, width = self.m, self.height, self.width
        first_x, weights_x = self._taps(dx_px)
        first_y, weights_y = self._taps(dy_px)
        top, bottom = int(first_y.min()), int(first_y.max()) + 3 + height
        rows = self.padded[:, top:bottom]
        along_x = rows.new_empty(rows.shape[0], m, bottom - top, width)
        for r in range(m):
            start = int(first_x[r])
            torch.mul(rows[..., start:start + width], float(weights_x[r, 0]), out=along_x[:, r])
            for tap in range(1, 4):
                along_x[:, r].add_(rows[..., start + tap:start + tap + width],
                                   alpha=float(weights_x[r, tap]))
        both = rows.new_empty(rows.shape[0], m, m, height, width)
        for r in range(m):
            start = int(first_y[r]) - top
            torch.mul(along_x[:, :, start:start + height], float(weights_y[r, 0]), out=both[:, :, r])
            for tap in range(1, 4):
                both[:, :, r].add_(along_x[:, :, start + tap:start + tap + height],
                                   alpha=float(weights_y[r, tap]))
        return both


def _radiality(images: torch.Tensor, m: int, radius: float, n_points: int,
               gradient_weighted: bool, intensity_weighted: bool) -> torch.Tensor:
    n, _, height, width = images.shape
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    grad_x = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    grad_y = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    strength = torch.hypot(grad_x, grad_y)
    floor = GRADIENT_FLOOR * strength.amax(dim=(1, 2, 3), keepdim=True)
    # zeroing them also keeps subnormal numbers (Gaussian tails in float32), slow on CPUs, out
    weak = strength <= floor
    grad_x, grad_y = grad_x.masked_fill(weak, 0.0), grad_y.masked_fill(weak, 0.0)
    floor = floor.unsqueeze(-1)

    gradients = _Resampler(torch.cat([grad_x, grad_y], dim=0), m, radius)
    total = torch.zeros(n, m, m, height, width, dtype=images.dtype, device=images.device)
    for k in range(n_points):
        angle = 2.0 * math.pi * k / n_points
        ox, oy = math.cos(angle), math.sin(angle)  # unit offset: the ring point is at R·(ox, oy)
        sampled = gradients(radius * oy, radius * ox)
        gx, gy = sampled[:n], sampled[n:]
        # across = |g| sin φ and inward = |g| cos φ, φ the angle between g and the direction from the
        # ring point to the centre, so d/R = |sin φ| = |across| / |g|
        across = gy * ox
        across.sub_(gx, alpha=oy)
        inward = gx * -ox
        inward.sub_(gy, alpha=oy)
        magnitude = torch.hypot(across, inward)
        score = across.abs_().div_(magnitude).neg_().add_(1.0).square_()
        if gradient_weighted:
            score.mul_(magnitude)
        score = torch.copysign(score, inward, out=score)
        # also replaces the 0/0 of a vanishing gradient
        total.add_(score.masked_fill_(magnitude <= floor, 0.0))
    radiality = total.div_(n_points).clamp_(min=0.0)

    if intensity_weighted:
        above_minimum = images - images.amin(dim=(1, 2, 3), keepdim=True)
        intensity = _Resampler(above_minimum, m, 0.0)(0.0, 0.0)
        radiality.mul_(intensity.clamp_(min=0.0))

    # phases (r_x, r_y) of pixel (q_y, q_x) → output pixel (q_y·m + r_y, q_x·m + r_x)
    out = radiality.permute(0, 3, 2, 4, 1).reshape(n, 1, height * m, width * m)
    peak = out.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(peak > 0, out / torch.where(peak > 0, peak, 1.0), 0.0)
