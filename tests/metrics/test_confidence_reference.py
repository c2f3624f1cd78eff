"""The fast HAWKMAN and SQUIRREL give the values of their plain definitions (SciPy filters, one blur at a time)."""

import numpy as np
import pytest
from scipy import ndimage, optimize
from skimage.morphology import skeletonize

import microsr.metrics.confidence as confidence
from microsr.metrics.confidence import _normalize_unit, hawkman, squirrel

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _filaments(shape, count, seed, width_px):
    """Straight lines across the field, blurred to ``width_px``: a microtubule-like ground truth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for _ in range(count):
        angle, centre = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8, size=2) * np.array(shape)
        distance = np.abs((yy - centre[0]) * np.cos(angle) - (xx - centre[1]) * np.sin(angle))
        image = np.maximum(image, np.exp(-0.5 * (distance / width_px) ** 2))
    return image


def _dots(shape, count, seed):
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    image[rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)] = rng.uniform(0.5, 1.0, count)
    return image


def _pearson(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return 0.0 if denominator == 0 else float(np.dot(a, b) / denominator)


def _local_pearson(a, b, sigma):
    mean_a, mean_b = ndimage.gaussian_filter(a, sigma), ndimage.gaussian_filter(b, sigma)
    var_a = np.maximum(ndimage.gaussian_filter(a * a, sigma) - mean_a**2, 0.0)
    var_b = np.maximum(ndimage.gaussian_filter(b * b, sigma) - mean_b**2, 0.0)
    cov = ndimage.gaussian_filter(a * b, sigma) - mean_a * mean_b
    floor = 1e-6 * max(var_a.max(), var_b.max(), np.finfo(float).tiny)
    has_a, has_b = var_a > floor, var_b > floor
    pcc = np.zeros_like(a)
    both = has_a & has_b
    pcc[both] = cov[both] / np.sqrt(var_a[both] * var_b[both])
    pcc[~has_a & ~has_b] = 1.0
    return np.clip(pcc, -1.0, 1.0)


def _eq18(sharp, structure, threshold):
    return 0.5 * np.clip(sharp / threshold, 0, 1) + 0.5 * np.clip(structure / threshold, 0, 1)


def _features(image, scale_px):
    sigma = scale_px / _FWHM_PER_SIGMA
    blurred = ndimage.gaussian_filter(image, sigma)
    if blurred.max() > 0:
        blurred = blurred / blurred.max()
    sharpening = (blurred > ndimage.gaussian_filter(blurred, 3.0 * sigma + 1.0) + 0.1).astype(float)
    core = np.minimum(ndimage.gaussian_filter(sharpening, sigma) / 0.5, 1.0) > 0.75
    return sharpening, ndimage.gaussian_filter(skeletonize(core).astype(float), sigma)


def slow_hawkman(test, reference, max_scale_px=10, threshold=0.85, min_scale_px=1):
    """HAWKMAN as its definition reads: every scale, every blur in space."""
    test, reference = _normalize_unit(test), _normalize_unit(reference)
    best = None
    for scale_px in range(min_scale_px, max_scale_px + 1):
        sharp_t, structure_t = _features(test, scale_px)
        sharp_r, structure_r = _features(reference, scale_px)
        if not sharp_r.any():
            continue
        pcc_sharp, pcc_structure = _pearson(sharp_t, sharp_r), _pearson(structure_t, structure_r)
        score = float(_eq18(pcc_sharp, pcc_structure, threshold))
        if best is None or score < best[0]:
            best = (score, scale_px, pcc_sharp, pcc_structure, sharp_t, sharp_r, structure_t, structure_r)
    score, scale_px, pcc_sharp, pcc_structure, sharp_t, sharp_r, structure_t, structure_r = best
    window = max(2.0, float(scale_px))
    local = _eq18(_local_pearson(sharp_t, sharp_r, window), _local_pearson(structure_t, structure_r, window), threshold)
    return score, scale_px, pcc_sharp, pcc_structure, local


def slow_squirrel(sr, widefield, factor):
    def scaled(sigma):
        blurred = ndimage.gaussian_filter(sr, sigma, mode="reflect")
        return blurred.reshape(widefield.shape[0], factor, widefield.shape[1], factor).mean(axis=(1, 3))

    def fit(image):
        design = np.stack([image.ravel(), np.ones(image.size)], axis=1)
        (alpha, beta), *_ = np.linalg.lstsq(design, widefield.ravel(), rcond=None)
        return alpha, beta, float(np.sum((alpha * image + beta - widefield) ** 2))

    grid = np.geomspace(0.05, max(0.25 * min(sr.shape), 2.0 * factor), 24)
    values = [fit(scaled(s))[2] for s in grid]
    best = int(np.argmin(values))
    refined = optimize.minimize_scalar(lambda s: fit(scaled(s))[2], method="bounded", options={"xatol": 1e-4},
                                       bounds=(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]))
    sigma = float(refined.x) if refined.fun <= values[best] else float(grid[best])
    alpha, beta, _ = fit(scaled(sigma))
    resolution_scaled = alpha * scaled(sigma) + beta
    return sigma, alpha, beta, np.abs(resolution_scaled - widefield), _pearson(resolution_scaled, widefield)


def _pairs():
    rng = np.random.default_rng(7)
    filaments = _filaments((96, 80), count=7, seed=3, width_px=1.2) + _dots((96, 80), count=30, seed=4)
    return {
        "noisy": (filaments + 0.08 * rng.standard_normal(filaments.shape), filaments),
        "shifted": (np.roll(filaments, (2, 1), axis=(0, 1)), filaments),
        "blurred": (ndimage.gaussian_filter(filaments, 1.5), filaments),
        "missing region": (np.where(np.add.outer(np.arange(96), np.arange(80)) > 110, 0.0, filaments), filaments),
    }


@pytest.mark.parametrize("name", sorted(_pairs()))
@pytest.mark.parametrize("scales", [(1, 10), (3, 7)])
def test_hawkman_equals_its_plain_definition(name, scales):
    test, reference = _pairs()[name]
    fast = hawkman(test, reference, min_scale_px=scales[0], max_scale_px=scales[1])
    score, scale_px, pcc_sharp, pcc_structure, local = slow_hawkman(test, reference, scales[1], 0.85, scales[0])
    assert fast.scale_px == scale_px
    assert fast.score == pytest.approx(score, abs=1e-6)
    assert fast.pcc_sharpening == pytest.approx(pcc_sharp, abs=1e-9)
    assert fast.pcc_structure == pytest.approx(pcc_structure, abs=1e-6)
    assert np.abs(fast.confidence_map - local).max() < 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_hawkman_in_strips_and_threads_equals_its_plain_definition(monkeypatch, threads):
    rng = np.random.default_rng(11)
    reference = _filaments((300, 60), count=9, seed=8, width_px=1.0) + _dots((300, 60), count=60, seed=9)
    test = reference + 0.1 * rng.standard_normal(reference.shape)
    # the confidence map in strips of ~80 rows, each read with its margins
    monkeypatch.setattr(confidence, "_MAP_STRIP_PIXELS", 60 * 80)
    monkeypatch.setattr(confidence, "transform_threads", lambda: threads)
    fast = hawkman(test, reference)
    score, scale_px, _, _, local = slow_hawkman(test, reference)
    assert fast.scale_px == scale_px and fast.score == pytest.approx(score, abs=1e-6)
    assert np.abs(fast.confidence_map - local).max() < 1e-5


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_squirrel_equals_its_plain_definition(factor):
    rng = np.random.default_rng(factor)
    sr = _filaments((96, 72), count=6, seed=factor, width_px=1.0) + _dots((96, 72), count=25, seed=5)
    blurred = ndimage.gaussian_filter(sr, 2.7).reshape(96 // factor, factor, 72 // factor, factor).mean(axis=(1, 3))
    widefield = 2.5 * blurred + 1.0 + 0.02 * rng.standard_normal(blurred.shape)
    fast = squirrel(sr, widefield, sr_pixel_size_nm=20.0, widefield_pixel_size_nm=20.0 * factor)
    sigma, alpha, beta, error_map, rsp = slow_squirrel(sr, widefield, factor)
    assert fast.sigma_nm == pytest.approx(sigma * 20.0, abs=1e-6)
    assert fast.alpha == pytest.approx(alpha, abs=1e-9) and fast.beta == pytest.approx(beta, abs=1e-9)
    assert fast.rsp == pytest.approx(rsp, abs=1e-9)
    assert fast.rse == pytest.approx(np.sqrt(np.mean(error_map**2)), abs=1e-9)
    assert np.abs(fast.error_map - error_map).max() < 1e-6 * np.ptp(error_map)
