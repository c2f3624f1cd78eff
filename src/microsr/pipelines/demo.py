"""The demo jobs: the SIM chain on a simulated TIRF-SIM set, then each shipped model on held-out simulated data, with figures."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr
from scipy import ndimage

from microsr.io import read_image, write_image
from microsr.metrics.confidence import hawkman, squirrel
from microsr.metrics.fidelity import ms_ssim, psnr, ssim
from microsr.models.sfsrm import normalize_input
from microsr.models.shipped import shipped_models
from microsr.pipelines.rdl_sim import RDLSIM
from microsr.pipelines.selfsup import SelfSupDenoiser, predict_selfsup_stack
from microsr.pipelines.sfsrm import SFSRM
from microsr.pipelines.sim import Optics, SIMReconstructor, estimate_stack, open_raw, reconstruct_stack
from microsr.pipelines.simulate import write_simulation
from microsr.report import comparison_figure, estimation_figure, sim_result_figure
from microsr.resample import bicubic_upsample
from microsr.sim.reconstruct import ReconstructionSettings
from microsr.synthetic import sim_resolution_fwhm_nm, sim_target, simulate_llsm, simulate_sim, training_pair


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def run_demo(outdir: str | Path, *, size: int = 256, photons: float = 30.0, seed: int = 7,
             overwrite: bool = True) -> list[str]:
    """Run the whole SIM chain on files in ``outdir``; returns lines that summarize what it found."""
    outdir = Path(outdir)
    optics = Optics(na=1.35, wavelength_nm=525.0)
    data = simulate_sim(shape=(size, size), pixel_size_nm=62.6, na=optics.na,
                        wavelength_nm=optics.wavelength_nm, photons=photons, seed=seed)
    write_simulation(data, outdir, overwrite)
    stack, pixel = open_raw(outdir / "raw.tif", 3, 3, None)
    background = data.camera.offset_adu + data.camera.background_photons
    sim = SIMReconstructor(optics.otf(pixel), pixel, ReconstructionSettings(background=background))
    otf = sim.otf
    diagnostics: dict = {}
    params = estimate_stack(sim, stack, diagnostics=diagnostics)
    params.quality["pixel_size_nm"] = pixel
    params.save(outdir / "params.json")
    estimation_figure(outdir / "estimation.png", diagnostics, params, overwrite=overwrite)
    reconstruct_stack(stack, params, pixel, otf, outdir / "sim.tif", widefield_output=outdir / "wf.tif",
                      settings=sim.settings, overwrite=overwrite, progress=False)
    sim_image = read_image(outdir / "sim.tif").array
    widefield = read_image(outdir / "wf.tif").array
    sim_result_figure(outdir / "sim.png", widefield, sim_image, pixel, ground_truth=data.ground_truth,
                      cutoff_per_um=otf.cutoff_per_um,
                      title=f"simulated TIRF-SIM, {photons:g} photons peak, NA 1.35, 62.6 nm pixels",
                      overwrite=overwrite)
    lines = [f"simulated {size}×{size} raw frames ({photons:g} photons peak) in {outdir}"]
    for a, (found, true) in enumerate(zip(params.orientations, data.params.orientations)):
        angle_error = (found.angle_rad - true.angle_rad + math.pi / 2) % math.pi - math.pi / 2
        phase_error = max(abs(math.remainder(f - t, 2 * math.pi))
                          for f, t in zip(found.phases_rad, true.phases_rad))
        lines.append(f"orientation {a}: angle error {angle_error * 1000:+.2f} mrad, spacing error "
                     f"{(found.spacing_nm / true.spacing_nm - 1) * 100:+.2f} %, modulation "
                     f"{found.modulation:.2f} (true {true.modulation:.2f}), worst phase error "
                     f"{phase_error:.3f} rad")
    truth = ndimage.gaussian_filter(data.ground_truth, 1.0)
    upsampled = ndimage.zoom(widefield, 2, order=3)
    lines.append(f"correlation with the ground truth: SIM {_correlation(sim_image, truth):.3f}, "
                 f"upsampled widefield {_correlation(upsampled, truth):.3f}")
    lines.append(f"figures: {outdir / 'sim.png'} and {outdir / 'estimation.png'}")
    return lines


def run_sfsrm_demo(outdir: str | Path, *, model_name: str = "filaments-x4", size_px: int = 64, snr: float = 15.0,
                   seed: int = 10**9 + 7, overwrite: bool = True) -> list[str]:
    """Shipped SFSRM on a held-out simulated widefield frame: widefield, bicubic, SFSRM, truth, HAWKMAN and SQUIRREL maps."""
    outdir = Path(outdir)
    model = SFSRM.from_pretrained(model_name, device="cpu")
    scale = int(model.scale)
    pixel = model.pixel_size_nm
    widefield, truth = training_pair("filaments", scale=scale, lr_patch_px=size_px, lr_pixel_nm=pixel, snr=snr,
                                     seed=seed)
    result = model.predict(widefield, pixel_size_nm=pixel)
    bicubic = bicubic_upsample(normalize_input(widefield), scale)
    # The physics check needs no ground truth: blur the SR image back and compare with the input.
    check = squirrel(result.sr, widefield, sr_pixel_size_nm=pixel / scale, widefield_pixel_size_nm=pixel)
    # The paper's confidence map: where the SR image's structure agrees with the ground truth's.
    trust = hawkman(result.sr, truth)
    write_image(outdir / "sfsrm_widefield.tif", widefield, pixel_size_nm=pixel, overwrite=overwrite)
    write_image(outdir / "sfsrm.tif", result.sr, pixel_size_nm=pixel / scale, overwrite=overwrite)
    comparison_figure(outdir / "sfsrm.png",
                 [("widefield", widefield, pixel), ("bicubic", bicubic, pixel / scale),
                  ("SFSRM", result.sr, pixel / scale), ("ground truth", truth, pixel / scale)],
                 [("HAWKMAN confidence vs truth (< 0.85: untrusted)", trust.confidence_map, pixel / scale),
                  ("SQUIRREL error (SR re-blurred vs widefield)", check.error_map, pixel)],
                 title=f"SFSRM {model_name} on held-out simulated filaments, SNR {snr:g}", overwrite=overwrite)
    return [f"SFSRM ({model_name}) on a held-out {size_px}² widefield frame at SNR {snr:g}: "
            f"MS-SSIM {ms_ssim(result.sr, truth):.3f} (bicubic {ms_ssim(bicubic, truth):.3f}), "
            f"PSNR {psnr(result.sr, truth):.2f} dB (bicubic {psnr(bicubic, truth):.2f} dB), "
            f"HAWKMAN {trust.score:.2f} (bicubic {hawkman(bicubic, truth).score:.2f}), SQUIRREL RSP {check.rsp:.3f}",
            f"figure: {outdir / 'sfsrm.png'}"]


def run_rdl_demo(outdir: str | Path, *, model_name: str = "tirf-sim-3x3", size_px: int = 128, photons: float = 8.0,
                 seed: int = 10**9 + 11, overwrite: bool = True) -> list[str]:
    """Shipped rDL SIM on a held-out low-light TIRF-SIM set: noisy raw, conventional SIM, denoised raw, rDL SIM, truth."""
    outdir = Path(outdir)
    model = RDLSIM.from_pretrained(model_name, device="cpu")
    pixel = model.acquisition["pixel_size_nm"]
    data = simulate_sim(shape=(size_px, size_px), pixel_size_nm=pixel, na=model.acquisition["na"],
                        wavelength_nm=model.acquisition["wavelength_nm"], photons=photons, specimen="network",
                        seed=seed, otf=model.otf)
    background = data.camera.offset_adu + data.camera.background_photons
    raw = data.raw[0]
    # The pattern is estimated from the noisy frames themselves, as a user's data would be.
    result = model.predict(raw, background=background, pixel_size_nm=pixel)
    conventional = SIMReconstructor(model.otf, pixel, ReconstructionSettings(background=background),
                                    device="cpu").reconstruct(raw, result.params)
    truth = sim_target(data.ground_truth, pixel / 2, sim_resolution_fwhm_nm(
        model.acquisition["na"], model.acquisition["wavelength_nm"], data.settings["pattern_fraction_of_cutoff"]))
    widefield = raw.mean(axis=(0, 1)) - background
    # The physics check needs no ground truth: the rDL SIM image blurred back must explain the widefield image.
    check = squirrel(result.sim, widefield, sr_pixel_size_nm=pixel / 2, widefield_pixel_size_nm=pixel)
    # What the denoiser took out of the frames: noise only, if it kept the signal (structure here is a warning).
    removed = (raw[0] - background - result.denoised[0]).mean(axis=0)
    write_image(outdir / "rdl_sim.tif", result.sim, pixel_size_nm=pixel / 2, overwrite=overwrite)
    write_image(outdir / "rdl_denoised.tif", result.denoised.reshape(-1, size_px, size_px), pixel_size_nm=pixel,
                overwrite=overwrite)
    comparison_figure(outdir / "rdl.png",
                      [("noisy raw (orientation 1, phase 1)", raw[0, 0] - background, pixel),
                       ("conventional SIM", conventional, pixel / 2),
                       ("rDL-denoised raw", result.denoised[0, 0], pixel),
                       ("rDL SIM", result.sim, pixel / 2), ("ground truth (SIM resolution)", truth, pixel / 2)],
                      [("removed by the denoiser (orientation 1)", removed, pixel),
                       ("SQUIRREL error (rDL SIM re-blurred vs widefield)", check.error_map, pixel)],
                      title=f"rDL SIM {model_name} on a held-out simulated TIRF-SIM set, {photons:g} photons peak",
                      overwrite=overwrite)
    scores = {name: (psnr(image, truth, normalization="linear_fit"), ssim(image, truth, normalization="linear_fit"))
              for name, image in (("conventional SIM", conventional), ("rDL SIM", result.sim))}
    return [f"rDL SIM ({model_name}) on a held-out {size_px}² raw set at {photons:g} photons: "
            + ", ".join(f"{name} PSNR {p:.2f} dB / SSIM {s:.3f}" for name, (p, s) in scores.items())
            + f" (against the truth at SIM resolution); SQUIRREL RSP {check.rsp:.3f}",
            f"figure: {outdir / 'rdl.png'}"]


def run_selfsup_demo(outdir: str | Path, *, model_name: str = "llsm-vesicles-tis", shape=(4, 24, 64, 64),
                     photons: float = 8.0, seed: int = 10**9 + 13, overwrite: bool = True) -> list[str]:
    """Shipped TiS-rDL on a held-out simulated LLSM stack of vesicles, streamed through Zarr: MIPs and PSNR."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = simulate_llsm(shape=shape, specimen="vesicles", photons=photons, seed=seed)
    noisy_path, denoised_path = outdir / "llsm_noisy.zarr", outdir / "llsm_tis.zarr"
    if overwrite or not noisy_path.exists():
        stack = zarr.create_array(store=str(noisy_path), shape=data.noisy.shape, chunks=(1, *shape[1:]),
                                  dtype="float32", overwrite=True)
        stack[:] = data.noisy
        stack.attrs.update({"axes": "TZYX", "voxel_size_nm": list(data.voxel_size_nm)})
    denoiser = SelfSupDenoiser.from_pretrained(model_name, device="cpu")
    summary = predict_selfsup_stack(denoiser, noisy_path, denoised_path, overwrite=overwrite)
    denoised = np.asarray(read_image(denoised_path, lazy=True).array[0]) - data.offset_adu
    noisy, clean = data.noisy[0] - data.offset_adu, data.clean[0]

    def psnr_3d(volume):
        return 10 * math.log10(float(np.ptp(clean)) ** 2 / float(np.mean((volume - clean) ** 2)))

    pixel = data.voxel_size_nm[1]
    comparison_figure(outdir / "llsm.png",
                      [("noisy (max projection over z)", noisy.max(axis=0), pixel),
                       ("TiS-rDL", denoised.max(axis=0), pixel), ("clean (simulation truth)", clean.max(axis=0), pixel)],
                      [("removed by the denoiser (mean over z)", (noisy - denoised).mean(axis=0), pixel)],
                      title=f"TiS-rDL {model_name} on a held-out simulated LLSM stack of vesicles, {photons:g} photons",
                      overwrite=overwrite)
    return [f"TiS-rDL ({model_name}) on a held-out {shape[0]}-volume stack of (Z, Y, X) = {tuple(shape[1:])}: noisy "
            f"PSNR {psnr_3d(noisy):.2f} dB, denoised {psnr_3d(denoised):.2f} dB (volume 0, against the clean "
            f"expected photons); {summary['seconds']:.1f} s, tiles {tuple(summary['tile'])}",
            f"figure: {outdir / 'llsm.png'}"]


def run_all_demos(outdir: str | Path, *, overwrite: bool = True) -> Iterator[str]:
    """``make demo``: the SIM chain, then each shipped model on held-out data; yields the summary lines as they come."""
    yield from run_demo(outdir, overwrite=overwrite)
    if "filaments-x4" in shipped_models("sfsrm"):
        yield from run_sfsrm_demo(outdir, overwrite=overwrite)
    if "tirf-sim-3x3" in shipped_models("rdl"):
        yield from run_rdl_demo(outdir, overwrite=overwrite)
    if "llsm-vesicles-tis" in shipped_models("selfsup"):
        yield from run_selfsup_demo(outdir, overwrite=overwrite)
