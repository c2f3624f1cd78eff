"""Figures a person looks at: SIM results side by side, spectra, and the pattern-estimation evidence."""

from __future__ import annotations

import csv
import io as _bytes_io
from pathlib import Path

import numpy as np

from microsr.io.atomic import atomic_write_bytes


def _pyplot():
    # Imported when a figure is drawn, not with the package: pyplot takes ~0.9 s to import (measured on
    # the 2-core machines), which every command that draws nothing would pay.
    import matplotlib

    matplotlib.use("Agg")  # figures are files; no screen on servers or in CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, overwrite: bool = True) -> None:
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue(), overwrite)


def _display_range(image: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(image, [0.5, 99.8])
    return float(low), float(max(high, low + 1e-6))


def _log_spectrum(image: np.ndarray) -> np.ndarray:
    centred = image - image.mean()
    return np.log10(np.abs(np.fft.fftshift(np.fft.fft2(centred))) + 1e-3)


def sim_result_figure(path: str | Path, widefield: np.ndarray, sim_image: np.ndarray,
                      pixel_size_nm: float, *, ground_truth: np.ndarray | None = None,
                      cutoff_per_um: float | None = None, title: str = "",
                      overwrite: bool = True) -> None:
    """Widefield, SIM (and ground truth) at the same field of view, with their spectra below on one range.

    The spectra show what SIM is for: the SIM spectrum reaches past the widefield cut-off circle. All spectra
    share one frequency range (cycles/µm), so the same circle is the same size in each.
    """
    plt = _pyplot()
    panels = [("widefield", widefield, pixel_size_nm), ("SIM (Wiener)", sim_image, pixel_size_nm / 2)]
    if ground_truth is not None:
        scale = widefield.shape[0] * pixel_size_nm / ground_truth.shape[0]
        panels.append(("ground truth", ground_truth, scale))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.6 * len(panels), 8.8), layout="constrained")
    top_nyquist = max(1000 / (2 * pixel) for _, _, pixel in panels)
    limit = min(top_nyquist, 2.6 * cutoff_per_um) if cutoff_per_um else top_nyquist
    for column, (name, image, pixel) in enumerate(panels):
        width_um, height_um = image.shape[1] * pixel / 1000, image.shape[0] * pixel / 1000
        low, high = _display_range(image)
        shown = axes[0, column].imshow(image, cmap="gray", vmin=low, vmax=high, extent=[0, width_um, height_um, 0])
        fig.colorbar(shown, ax=axes[0, column], fraction=0.046, pad=0.04, label="intensity (counts)")
        _scale_bar(axes[0, column], width_um, height_um)
        axes[0, column].set_title(f"{name} ({pixel:.1f} nm/px)", fontsize=10)
        axes[0, column].set_xlabel("µm")
        nyquist = 1000 / (2 * pixel)
        spectrum = _log_spectrum(image)
        axes[1, column].set_facecolor("black")  # beyond a coarser grid's Nyquist there is no spectrum
        shown = axes[1, column].imshow(spectrum, cmap="magma", extent=[-nyquist, nyquist, nyquist, -nyquist],
                                       vmin=np.percentile(spectrum, 50), vmax=spectrum.max())
        fig.colorbar(shown, ax=axes[1, column], fraction=0.046, pad=0.04, label="log10 |FFT|")
        axes[1, column].set_title(f"{name}: spectrum", fontsize=10)
        axes[1, column].set_xlabel("kx (cycles/µm)")
        axes[1, column].set_ylabel("ky (cycles/µm)")
        if cutoff_per_um:
            axes[1, column].add_patch(plt.Circle((0, 0), cutoff_per_um, fill=False, color="cyan", lw=0.8, ls="--",
                                                 label=f"widefield cut-off 2NA/λ = {cutoff_per_um:.1f} /µm"))
            axes[1, column].legend(loc="lower left", fontsize=7, framealpha=0.6)
        axes[1, column].set_xlim(-limit, limit)
        axes[1, column].set_ylim(limit, -limit)
    fig.suptitle((f"{title}: " if title else "") + "widefield and SIM at one scale; spectra on one range", fontsize=11)
    _save(fig, path, overwrite)


def estimation_figure(path: str | Path, diagnostics: dict, params, *, overwrite: bool = True) -> None:
    """Cross-correlation maps of each orientation (peak over background) with the found peaks marked, in
    cycles/µm when the parameters know the pixel size (as the SIM figure), else cycles/pixel."""
    plt = _pyplot()
    maps = diagnostics["correlation_maps"]
    peaks = diagnostics["peaks_per_pixel"]
    cutoff = diagnostics["cutoff_per_pixel"]
    pixel_nm = params.quality.get("pixel_size_nm")
    per = 1000.0 / pixel_nm if pixel_nm else 1.0  # cycles/pixel → cycles/µm
    unit = "cycles/µm" if pixel_nm else "cycles/pixel"
    count = len(maps)
    fig, axes = plt.subplots(1, count, figsize=(4.4 * count, 4.8), layout="constrained")
    axes = np.atleast_1d(axes)
    for a, (ax, correlation, peak, orientation) in enumerate(zip(axes, maps, peaks, params.orientations)):
        extent = [-0.5 * per, 0.5 * per, 0.5 * per, -0.5 * per]
        shown = ax.imshow(np.log10(np.clip(correlation, 1e-3, None)), cmap="viridis", extent=extent,
                          vmin=0, vmax=max(1.0, np.log10(correlation.max())))
        for sign in (1, -1):
            ax.plot(sign * peak[1] * per, sign * peak[0] * per, "o", mfc="none", mec="red", ms=14, mew=1.2,
                    label="pattern peak" if sign == 1 else None)
        ax.add_patch(plt.Circle((0, 0), cutoff * per, fill=False, color="white", lw=0.6, ls="--",
                                label=f"OTF cut-off {cutoff * per:.2f} {unit}"))
        contrast = params.quality.get("peak_contrast", [np.nan] * count)[a]
        replaced = {item["orientation"]: item for item in params.quality.get("modulation_substituted", [])}
        note = (f"\nmeasured m {replaced[a]['measured']:.2f} is impossible:\nused {orientation.modulation:.2f} "
                f"from the {replaced[a]['source']}" if a in replaced else "")
        ax.set_title(f"orientation {a}: {np.degrees(orientation.angle_rad):.2f}°, "
                     f"{orientation.spacing_nm:.1f} nm\npeak {contrast:.0f}× background, "
                     f"m = {orientation.modulation:.2f}{note}", fontsize=9, color="red" if a in replaced else "black")
        limit = min(0.5, 1.4 * cutoff) * per
        ax.set_xlim(-limit, limit)
        ax.set_ylim(limit, -limit)
        ax.set_xlabel(f"kx ({unit})")
        ax.legend(loc="lower left", fontsize=7, framealpha=0.6)
    fig.colorbar(shown, ax=axes[-1], fraction=0.046, pad=0.04, label="log10 correlation / background")
    axes[0].set_ylabel(f"ky ({unit})")
    warnings = params.quality.get("warnings", [])
    fig.suptitle("band cross-correlation (log, peak over background)" +
                 ("\nWARNING: " + warnings[0] if warnings else ""), fontsize=10,
                 color="red" if warnings else "black")
    _save(fig, path, overwrite)


def _scale_bar(ax, width_um: float, height_um: float) -> None:
    """A white bar of a round length (a fifth of the field or less) at the lower left, labelled."""
    target = width_um / 5
    length = max((v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if v <= target), default=target)
    x0, y0 = width_um * 0.05, height_um * 0.93
    ax.plot([x0, x0 + length], [y0, y0], color="white", lw=3, solid_capstyle="butt")
    label = f"{length * 1000:g} nm" if length < 1 else f"{length:g} µm"
    ax.text(x0 + length / 2, y0 - height_um * 0.03, label, color="white", ha="center", va="bottom", fontsize=7)


#: Longest side, in pixels, of an image as drawn: a panel is ~470 px wide at 110 dpi, so finer detail is
#: invisible, and resampling a 4096² image in matplotlib took ~10 s of a 4096² evaluation (measured).
DISPLAY_PX = 1024


def _for_display(image: np.ndarray, factor: int | None = None) -> np.ndarray:
    """Block means of ``image`` no larger than :data:`DISPLAY_PX` a side (a last partial block of rows or
    columns, fewer pixels than a block, is left out: far less than a display pixel)."""
    image = np.asarray(image)
    if factor is None:
        factor = -(-max(image.shape) // DISPLAY_PX)
    if factor <= 1:
        return np.asarray(image, dtype=float)
    rows, columns = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:rows, :columns].reshape(rows // factor, factor, columns // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float64)


def _sample(image: np.ndarray, factor: int | None = None) -> np.ndarray:
    """Every ``factor``-th pixel along each axis: the percentiles of a display range, at 1/factor² the cost."""
    image = np.asarray(image)
    if factor is None:
        factor = -(-max(image.shape) // DISPLAY_PX)
    return image[::factor, ::factor] if factor > 1 else image


def _map_display(name: str, values: np.ndarray, evaluation) -> tuple[np.ndarray, dict, str]:
    """What a quality map shows (block means at most :data:`DISPLAY_PX` a side): masked where it is
    undefined, a robust range, and its colour bar's label."""
    values = np.asarray(values)
    factor = -(-max(values.shape) // DISPLAY_PX)
    if "HAWKMAN" in name and "reference" in evaluation.pictures:
        # HAWKMAN measures how well structure is reproduced: on empty background it has nothing to say, and
        # its value there (1) would read as "most confident". Masked where the reference has no structure.
        reference = np.asarray(evaluation.pictures["reference"].image)
        shown = _for_display(values, factor)
        if reference.shape == values.shape:
            low, high = np.percentile(_sample(reference, factor), [1, 99.5])
            shown = np.where(_for_display(reference, factor) > low + 0.1 * (high - low), shown, np.nan)
        return shown, {"cmap": "RdYlBu", "vmin": 0, "vmax": 1}, "confidence (0–1; grey: no structure)"
    shown = _for_display(values, factor)
    if ("agreement" in name and "disagreement" not in name) or "confidence" in name:
        return shown, {"cmap": "RdYlBu", "vmin": 0, "vmax": 1}, "agreement (0–1)"
    sample = _sample(values, factor)
    finite = sample[np.isfinite(sample)]
    # Border pixels of a blurred comparison carry edge effects: a robust range shows the interior's errors.
    high = float(np.percentile(finite, 99)) if finite.size else 1.0
    units = {"SQUIRREL error": "|error| (widefield intensity)", "ensemble disagreement": "spread (0–1 scale)"}
    return shown, {"cmap": "magma", "vmin": 0, "vmax": high or None}, units.get(name, "value")


def evaluation_figure(path: str | Path, evaluation, *, overwrite: bool = True) -> None:
    """Images side by side at one physical scale (scale bars, axes in µm), quality maps with colour bars and
    units (masked where undefined, robust ranges), resolution curves told apart by colour and line style."""
    plt = _pyplot()
    pictures = list(evaluation.pictures.values())
    maps = list(evaluation.maps.items())
    metrics = evaluation.metrics
    frc = evaluation.curves.get("frc")
    rows = [len(pictures), len(maps), 2 + (frc is not None)]
    rows = [count for count in rows if count]
    columns = max(rows)
    fig = plt.figure(figsize=(4.3 * columns, 4.1 * len(rows)), layout="constrained")
    figures = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    row_of = iter(figures)

    picture_row = next(row_of).subplots(1, len(pictures), squeeze=False)[0]
    for ax, picture in zip(picture_row, pictures):
        width_um = picture.image.shape[1] * picture.pixel_size_nm / 1000
        height_um = picture.image.shape[0] * picture.pixel_size_nm / 1000
        low, high = _display_range(_sample(picture.image))
        ax.imshow(_for_display(picture.image), cmap="gray", vmin=low, vmax=high, extent=[0, width_um, height_um, 0])
        _scale_bar(ax, width_um, height_um)
        key = {"sr": "resolution_nm", "widefield": "widefield_resolution_nm",
               "reference": "reference_resolution_nm"}.get(picture.name)
        resolution = metrics.get(key) if key else None
        label = f"{resolution:.0f} nm" if resolution else "n/a"
        # Decorrelation reads invented texture as resolution: an SR image's number is only apparent, and
        # stands beside the ensemble's disagreement when there is one.
        what = "apparent resolution (decorrelation)" if picture.name == "sr" else "decorrelation resolution"
        spread = metrics.get("ensemble_disagreement_mean") if picture.name == "sr" else None
        extra = f"; disagreement {spread:.3f}" if spread is not None else ""
        ax.set_title(f"{picture.name} ({picture.pixel_size_nm:.1f} nm/px)\n{what} {label}{extra}", fontsize=9)
        ax.set_xlabel("µm")

    if maps:
        map_row = next(row_of).subplots(1, len(maps), squeeze=False)[0]
        for ax, (name, (values, pixel)) in zip(map_row, maps):
            width_um, height_um = values.shape[1] * pixel / 1000, values.shape[0] * pixel / 1000
            shown, style, units = _map_display(name, values, evaluation)
            cmap = plt.get_cmap(style.pop("cmap")).with_extremes(bad="0.5")
            image = ax.imshow(shown, cmap=cmap, extent=[0, width_um, height_um, 0], **style)
            if "HAWKMAN" in name:
                ax.contour(np.nan_to_num(shown, nan=1.0), levels=[0.85], colors="k", linewidths=0.6,
                           extent=[0, width_um, height_um, 0], origin="upper")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=units)
            _scale_bar(ax, width_um, height_um)
            ax.set_title(name + (" (contour: 0.85)" if "HAWKMAN" in name else ""), fontsize=9)
            ax.set_xlabel("µm")

    curve_row = next(row_of).subplots(1, 2 + (frc is not None), squeeze=False)[0]
    ax = curve_row[0]
    styles = iter([("-", "o"), ("--", "s"), (":", "^"), ("-.", "d")])
    for label, (result, pixel_nm) in evaluation.curves.get("decorrelation", {}).items():
        nyquist_per_um = 1000.0 / (2 * pixel_nm)
        line_style, marker = next(styles, ("-", None))
        if len(result.curves):
            envelope = np.max(result.curves, axis=0)
            line, = ax.plot(result.radii * nyquist_per_um, envelope, ls=line_style, marker=marker, markevery=8,
                            markersize=4, label=label)
            if result.cutoff:
                ax.axvline(result.cutoff * nyquist_per_um, ls=line_style, lw=0.8, color=line.get_color())
    ax.set_xlabel("spatial frequency (cycles/µm)")
    ax.set_ylabel("decorrelation d(r)")
    ax.set_title("decorrelation, max over high-pass filters (vertical: k_c)", fontsize=9)
    if ax.lines:
        ax.legend(fontsize=7)
    if frc is not None:
        ax = curve_row[1]
        ax.plot(frc.frequencies_per_um, frc.correlation, label="FRC")
        ax.plot(frc.frequencies_per_um, frc.threshold_curve, ls="--", label="threshold")
        title = f"FRC resolution {frc.resolution_nm:.0f} nm" if frc.resolution_nm else "FRC: no crossing"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("cycles/µm")
        ax.legend(fontsize=7)
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
    text_ax = curve_row[-1]
    text_ax.set_axis_off()
    text_ax.text(0.0, 1.0, "\n".join(f"{k}: {v:.4g}" for k, v in shown.items()), va="top", ha="left",
                 family="monospace", fontsize=8)
    outside = metrics.get("input_check") or []
    if outside:  # the model was shown an input unlike its training data: say so above everything
        words = ", ".join(f"{f['quantity']} {f['value']:g} (trained {f['range'][0]:g}–{f['range'][1]:g})"
                          for f in outside)
        fig.suptitle(f"input outside the model's training range: {words}: the SR image may show invented "
                     "structure", color="firebrick", fontsize=10)
    _save(fig, path, overwrite)


def training_figure(losses_csv: str | Path, path: str | Path, *, overwrite: bool = True) -> None:
    """Training losses (log scale) and validation MS-SSIM / PSNR against iterations."""
    plt = _pyplot()
    series: dict[str, list[tuple[int, float]]] = {}
    with open(losses_csv) as handle:
        for row in csv.DictReader(handle):
            series.setdefault(row["term"], []).append((int(row["iteration"]), float(row["value"])))
    fig, (losses, validation) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    psnr_axis = validation.twinx()  # MS-SSIM (0–1) and PSNR (dB) need their own scales
    for name, points in series.items():
        steps, values = zip(*sorted(points))
        if name == "val_psnr":
            psnr_axis.plot(steps, values, label="PSNR (dB, right)", marker="s", ms=3, color="tab:orange")
        elif name.startswith("val_"):
            validation.plot(steps, values, label="MS-SSIM (left)", marker="o", ms=3, color="tab:blue")
        else:
            losses.plot(steps, values, label=name)
    losses.set_yscale("log")
    losses.set_xlabel("iteration")
    losses.set_title("training losses")
    losses.legend(fontsize=8)
    validation.set_xlabel("iteration")
    validation.set_title("validation (held-out simulated pairs)")
    validation.set_ylabel("MS-SSIM")
    psnr_axis.set_ylabel("PSNR (dB)")
    if validation.lines or psnr_axis.lines:
        validation.legend(validation.lines + psnr_axis.lines,
                          [line.get_label() for line in validation.lines + psnr_axis.lines], fontsize=8)
    _save(fig, path, overwrite)


def comparison_figure(path: str | Path, panels: list[tuple[str, np.ndarray, float]],
                 maps: list[tuple[str, np.ndarray, float]] = (), *, title: str = "",
                 overwrite: bool = True) -> None:
    """Images (name, image, pixel nm) side by side at one physical scale, then quality maps with colour bars."""
    plt = _pyplot()
    count = len(panels) + len(maps)
    fig, axes = plt.subplots(1, count, figsize=(3.8 * count, 4.0), layout="constrained", squeeze=False)
    for ax, (name, image, pixel) in zip(axes[0], panels):
        extent = [0, image.shape[1] * pixel / 1000, image.shape[0] * pixel / 1000, 0]
        low, high = _display_range(image)
        ax.imshow(image, cmap="gray", vmin=low, vmax=high, extent=extent)
        ax.set_title(f"{name} ({pixel:g} nm/px)", fontsize=9)
        ax.set_xlabel("µm")
    for ax, (name, values, pixel) in zip(axes[0, len(panels):], maps):
        extent = [0, values.shape[1] * pixel / 1000, values.shape[0] * pixel / 1000, 0]
        shown = ax.imshow(values, cmap="magma", extent=extent)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("µm")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path, overwrite)


def qc_figure(path: str | Path, contrast_map: np.ndarray, pixel_size_nm: float, frame_means: list[float],
              sim_image: np.ndarray, pattern_per_um: list[tuple[float, float]], flags: list[str], *,
              title: str = "", overwrite: bool = True) -> None:
    """``microsr sim check``: the raw data's modulation contrast, its frame intensities, and the SIM spectrum
    with the pattern's ±k and ±2k marked (where residual-pattern artifacts would show), flags below."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    extent = [0, contrast_map.shape[1] * pixel_size_nm / 1000, contrast_map.shape[0] * pixel_size_nm / 1000, 0]
    shown = axes[0].imshow(contrast_map, cmap="viridis", vmin=0, vmax=1, extent=extent)
    fig.colorbar(shown, ax=axes[0], fraction=0.046)
    axes[0].set_title("modulation contrast of the raw data (NaN: no signal)")
    axes[0].set_xlabel("µm")
    axes[1].plot(np.arange(len(frame_means)), frame_means, ".-", lw=0.8)
    axes[1].set_xlabel("frame (acquisition order)")
    axes[1].set_ylabel("mean above background")
    axes[1].set_title("frame intensities: bleaching and excitation")
    sr_pixel = pixel_size_nm / 2
    nyquist = 1000 / (2 * sr_pixel)
    spectrum = _log_spectrum(sim_image)
    axes[2].imshow(spectrum, cmap="magma", extent=[-nyquist, nyquist, nyquist, -nyquist],
                   vmin=np.percentile(spectrum, 50), vmax=spectrum.max())
    for ky, kx in pattern_per_um:
        for order, marker in ((1, "o"), (2, "s")):
            for sign in (1, -1):
                axes[2].plot(sign * order * kx, sign * order * ky, marker, mfc="none", mec="cyan", ms=9)
    axes[2].set_title("SIM spectrum: pattern at ±k (○) and ±2k (□)")
    axes[2].set_xlabel("cycles/µm")
    fig.text(0.01, 0.01, "flags: " + ("; ".join(flags) if flags else "none"), fontsize=8, wrap=True)
    fig.subplots_adjust(wspace=0.45)
    if title:
        fig.suptitle(title)
    _save(fig, path, overwrite)
