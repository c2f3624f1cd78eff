"""Whether two emitters a known distance apart are resolved in an image: a profile through them and a dip."""

from __future__ import annotations

import numpy as np

#: The dip, as a fraction of the lower peak, that counts as resolved. The SFSRM paper only says "a dip";
#: 10 % is stricter than Sparrow's "any dip" and looser than Rayleigh's 26 %.
DIP = 0.10


def profile_through(image: np.ndarray, first_px, second_px, *, step_px: float, margin: float = 1.0) -> np.ndarray:
    """Bilinear samples of ``image`` along the line through two points (y, x in pixels).

    The profile runs from ``margin`` separations before ``first_px`` to ``margin`` separations after
    ``second_px``, one sample every ``step_px``; the two points therefore lie at samples
    ``margin · d / step_px`` and ``(margin + 1) · d / step_px`` (``d`` their distance in pixels).
    """
    from scipy import ndimage  # imported on first use: it costs start-up time every import would pay

    first, second = np.asarray(first_px, float), np.asarray(second_px, float)
    distance = float(np.hypot(*(second - first)))
    unit = (second - first) / distance
    start, end = first - unit * margin * distance, second + unit * margin * distance
    count = max(2, int(round((1 + 2 * margin) * distance / step_px)) + 1)
    t = np.linspace(0.0, 1.0, count)
    points = start[:, None] + (end - start)[:, None] * t[None]
    return ndimage.map_coordinates(np.asarray(image, float), points, order=1, mode="nearest")


def pair_resolved(values: np.ndarray, first: float, second: float, *, dip: float = DIP) -> bool:
    """True when a profile shows one peak near each of two true positions with a dip between them.

    Parameters
    ----------
    values : ndarray, 1-D
        Intensity profile through the pair (see :func:`profile_through`).
    first, second : float
        The true positions, in samples of ``values`` (``first < second``).
    dip : float
        The minimum between the two peaks must lie at least this fraction below the lower peak.

    Each peak is a local maximum within half the separation of its true position — the tolerance the
    SFSRM paper uses for its reconstruction bias — so a single blob between the two, or two peaks in
    the wrong places, does not count.

    Examples
    --------
    >>> x = np.arange(100.0)
    >>> two = np.exp(-(x - 40) ** 2 / 50) + np.exp(-(x - 60) ** 2 / 50)
    >>> pair_resolved(two, 40, 60), pair_resolved(np.exp(-(x - 50) ** 2 / 200), 40, 60)
    (True, False)
    """
    values = np.asarray(values, float)
    tolerance = (second - first) / 2
    interior = np.arange(1, len(values) - 1)
    peaks = interior[(values[interior] >= values[interior - 1]) & (values[interior] > values[interior + 1])]
    near_first = [p for p in peaks if abs(p - first) <= tolerance]
    near_second = [p for p in peaks if abs(p - second) <= tolerance]
    if not near_first or not near_second:
        return False
    a = max(near_first, key=lambda p: values[p])
    b = max(near_second, key=lambda p: values[p])
    if b <= a:
        return False
    return bool(values[a:b + 1].min() <= (1.0 - dip) * min(values[a], values[b]))
