"""Optical transfer functions (the ideal circular-pupil OTF, measured radial OTF files) and the Fourier window of raw frames."""

from __future__ import annotations

import warnings
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from microsr.errors import InputError


def otf_cutoff_per_um(na: float, wavelength_nm: float) -> float:
    """Incoherent cut-off frequency ``2 NA / λ`` in cycles per µm."""
    if na <= 0 or wavelength_nm <= 0:
        raise InputError(f"NA ({na}) and wavelength ({wavelength_nm} nm) must be positive")
    return 2.0 * na / (wavelength_nm / 1000.0)


def frequency_grid(shape: tuple[int, int], pixel_size_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies ``(ky, kx)`` in cycles/µm of an FFT of ``shape`` (unshifted, NumPy order)."""
    pixel_um = pixel_size_nm / 1000.0
    ky = np.fft.fftfreq(shape[0], d=pixel_um)[:, None]
    kx = np.fft.fftfreq(shape[1], d=pixel_um)[None, :]
    return ky, kx


def circular_pupil_otf_profile(rho: np.ndarray) -> np.ndarray:
    """Incoherent OTF of an aberration-free circular pupil, ``2/π (acos ρ − ρ√(1−ρ²))``, ρ = k/k_c."""
    rho = np.clip(np.abs(rho), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(rho) - rho * np.sqrt(1.0 - rho * rho))


@dataclass(frozen=True)
class OTF:
    """A rotationally symmetric OTF, optionally times the camera's pixel-integration transfer.

    Parameters
    ----------
    profile : callable
        Radial OTF as a function of spatial frequency (cycles/µm), 1 at k = 0.
    cutoff_per_um : float
        Frequency beyond which the OTF carries no usable signal (cycles/µm).
    camera_pixel_nm : float or None
        If given, multiply by ``sinc(kx p) sinc(ky p)``: a camera pixel integrates light over its area.
        A measured OTF already holds this, so it is ``None`` for those.
    source : str
        Where the OTF comes from (model parameters or file), for logs and reports.
    """

    profile: Callable[[np.ndarray], np.ndarray]
    cutoff_per_um: float
    camera_pixel_nm: float | None = None
    source: str = ""

    def __call__(self, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        """OTF values at frequencies ``(ky, kx)`` in cycles/µm (broadcast)."""
        values = self.profile(np.hypot(ky, kx))
        if self.camera_pixel_nm:
            pixel_um = self.camera_pixel_nm / 1000.0
            values = values * np.sinc(kx * pixel_um) * np.sinc(ky * pixel_um)
        return values

    def on_grid(self, shape: tuple[int, int], pixel_size_nm: float,
                shift_per_um: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """OTF sampled on the FFT grid of ``shape``, at ``k - shift`` (shift as ``(ky, kx)``), float32."""
        ky, kx = frequency_grid(shape, pixel_size_nm)
        return self(ky - shift_per_um[0], kx - shift_per_um[1]).astype(np.float32)


def ideal_otf(na: float, wavelength_nm: float, camera_pixel_nm: float | None = None,
              attenuation: float = 1.0) -> OTF:
    """Incoherent OTF of a circular pupil of numerical aperture ``na`` at emission ``wavelength_nm``.

    Parameters
    ----------
    na, wavelength_nm : float
        Numerical aperture and emission wavelength (nm).
    camera_pixel_nm : float, optional
        Camera pixel size: include the pixel-integration transfer (a real camera has it).
    attenuation : float
        Exponent ``a`` of ``OTF(k)^a``; values > 1 mimic the extra loss of contrast at high
        frequency that real, slightly aberrated objectives show (1 = ideal).

    References
    ----------
    Goodman, *Introduction to Fourier Optics*, ch. 6 (incoherent OTF of a circular pupil).
    """
    cutoff = otf_cutoff_per_um(na, wavelength_nm)

    def profile(k: np.ndarray) -> np.ndarray:
        return circular_pupil_otf_profile(np.asarray(k) / cutoff) ** attenuation

    return OTF(profile, cutoff, camera_pixel_nm, f"ideal NA {na}, {wavelength_nm:g} nm")


#: Measured TIRF-SIM OTFs that come with microsr (rDL SIM reference release, MIT licence: data/otf/), by name.
SHIPPED_OTFS = {"TIRF488": "TIRF488_cam1_0_z30_OTF2d.mrc", "TIRF560": "TIRF560_cam2_0_z21_OTF2d.mrc",
                "TIRF647": "TIRF647_cam2_0_z21_OTF2d.mrc"}


def otf_path(name_or_path: str | Path) -> Path:
    """A measured OTF file: an existing path as given, or one of :data:`SHIPPED_OTFS` by name."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in SHIPPED_OTFS:
        return Path(str(resources.files("microsr") / "data" / "otf" / SHIPPED_OTFS[str(name_or_path)]))
    return path


def load_otf_mrc(path: str | Path, cutoff_threshold: float = 2e-3) -> OTF:
    """Load a measured 1-D radial OTF stored as an MRC file (as shipped with the rDL SIM data).

    The file holds the radial OTF from k = 0 outward (real or complex values, imaginary part
    ignored); the MRC header's cell length along x is the frequency step in cycles/µm.

    Parameters
    ----------
    path : path
        The ``.mrc`` file, or the name of a measured OTF that comes with microsr (:data:`SHIPPED_OTFS`:
        ``TIRF488``, ``TIRF560``, ``TIRF647``).
    cutoff_threshold : float
        The cut-off is the first frequency where the normalized OTF falls below this; a measured
        OTF has a noisy tail that must not count as signal.
    """
    path = otf_path(path)
    if not path.exists():
        raise InputError(f"OTF file {path} does not exist: check the path, or leave --otf out to use "
                         "the ideal OTF from --na and --wavelength-nm")
    import mrcfile  # on first use: it would add ~0.09 s to every command's start-up

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reference OTF files lack the MRC2014 map ID
            with mrcfile.open(path, permissive=True) as mrc:
                data = np.asarray(mrc.data)
                step_per_um = float(mrc.header.cella.x)
    except Exception as exc:  # mrcfile raises many kinds on a corrupt header
        raise InputError(f"cannot read OTF file {path} as MRC ({exc.__class__.__name__}): "
                         "pass a radial OTF .mrc, or leave --otf out") from None
    if data is None or data.size < 4:
        raise InputError(f"OTF file {path} holds no radial profile: expected ~257 values")
    values = np.real(data).astype(np.float64).ravel()
    if not np.all(np.isfinite(values)) or values[0] <= 0:
        raise InputError(f"OTF file {path} has non-finite values or OTF(0) <= 0: not a usable OTF")
    if not step_per_um > 0:
        raise InputError(f"OTF file {path} has no frequency step in its header (cella.x = "
                         f"{step_per_um}): write the step in cycles/µm into cella.x")
    values = np.clip(values / values[0], 0.0, None)
    k = np.arange(values.size) * step_per_um
    below = np.nonzero(values < cutoff_threshold)[0]
    cutoff = float(k[below[0]]) if below.size else float(k[-1])

    def profile(kq: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(kq), k, values, right=0.0)

    return OTF(profile, cutoff, None, f"measured {path.name}")


def edge_taper(shape: tuple[int, int], width_fraction: float = 0.08) -> np.ndarray:
    """Separable cosine taper to zero at the borders: stops the FFT's wrap-around edge from ringing."""
    def taper(n: int) -> np.ndarray:
        width = max(4, int(round(width_fraction * n)))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        window = np.ones(n)
        window[:width] = ramp
        window[n - width:] = ramp[::-1]
        return window
    return np.outer(taper(shape[0]), taper(shape[1]))
