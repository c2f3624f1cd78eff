"""Pattern-modulated images: what raw SIM frames of an SR estimate would look like, for the rDL denoiser."""

from __future__ import annotations

import numpy as np

from microsr.errors import InputError
from microsr.optics import OTF
from microsr.sim.parameters import SIMParameters
from microsr.sim.pattern import forward_model


def modulated_images(sr_estimate: np.ndarray, params: SIMParameters, raw_pixel_nm: float, otf: OTF, *,
                     oversample: int = 2, margin_px: int = 16) -> np.ndarray:
    """Noise-free raw frames ``(A, P, Y, X)`` of an SR estimate under the estimated illumination patterns.

    rDL SIM (paper 000, Methods) feeds these to the denoiser's MPE branch: they carry the pattern's
    angle, spacing, phase and modulation, so the network is told where the fringes lie instead of
    having to guess them from noise. Each is the SR estimate times one illumination pattern, blurred
    by the detection OTF and sampled on the camera grid — the simulator's own forward model
    (:func:`microsr.sim.pattern.forward_model`), so a perfect SR estimate gives exactly the
    noise-free raw frames.

    Parameters
    ----------
    sr_estimate : ndarray, shape (oversample·Y, oversample·X)
        Specimen estimate on the SR grid (pixel ``raw_pixel_nm / oversample``; fine pixel
        ``oversample·j`` lies on camera pixel ``j``), background-free.
    params : SIMParameters
        Pattern parameters, phases referred to the raw frame's centre pixel ``(Y//2, X//2)``.
    raw_pixel_nm : float
        Camera pixel size in the sample plane.
    otf : OTF
        Detection OTF (with the camera pixel integration, as the estimation used).
    oversample : int
        SR grid factor (2 for SIM).
    margin_px : int
        Camera pixels of mirrored padding: the FFT blur wraps around, and the pattern is not periodic
        over the field, so without it the frames would get seams along the edges.

    Returns
    -------
    ndarray, float32, shape (A, P, Y, X)
        In the SR estimate's units times the OTF's gain (normalize before feeding a network).

    Raises
    ------
    InputError
        An SR estimate that is not 2-D, not a multiple of ``oversample``, or not finite.
    """
    estimate = np.asarray(sr_estimate, dtype=np.float64)
    if estimate.ndim != 2 or estimate.shape[0] % oversample or estimate.shape[1] % oversample:
        raise InputError(f"SR estimate of shape {estimate.shape} is not a 2-D image {oversample}× the raw "
                         "frames' size")
    if not np.isfinite(estimate).all():
        raise InputError("SR estimate contains NaN or inf: check the SR network's input")
    pad = margin_px * oversample
    padded = np.pad(estimate, pad, mode="reflect")
    return forward_model(padded, raw_pixel_nm / oversample, oversample, otf, params, margin_px)
