"""Simulated acquisitions to files: raw SIM stacks and widefield specimens with their ground truth and facts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from microsr.io import write_image
from microsr.io.atomic import atomic_write_text, check_writable
from microsr.synthetic import SimulatedSIM, WidefieldSimulation, simulate_widefield

#: Files :func:`write_simulation` writes.
SIM_FILES = ("raw.tif", "raw_clean.tif", "ground_truth.tif", "widefield.tif", "truth.json")

#: Files :func:`write_widefield_simulation` writes.
WIDEFIELD_FILES = ("ground_truth.tif", "widefield.tif", "truth.json")


def write_simulation(data: SimulatedSIM, outdir: str | Path, overwrite: bool = False) -> dict:
    """Write ``raw.tif`` (uint16 camera counts), ``raw_clean.tif``, ``ground_truth.tif``,
    ``widefield.tif`` and ``truth.json``. Returns the paths written."""
    outdir = Path(outdir)
    for name in SIM_FILES:
        check_writable(outdir / name, overwrite)
    t, a, p, y, x = data.raw.shape
    raw = np.clip(np.round(data.raw), 0, 65535).astype(np.uint16).reshape(t * a * p, y, x)
    pixel = data.pixel_size_nm
    write_image(outdir / "raw.tif", raw, pixel_size_nm=pixel, axes="QYX", overwrite=overwrite)
    write_image(outdir / "raw_clean.tif", data.raw_clean.reshape(a * p, y, x), pixel_size_nm=pixel,
                axes="QYX", overwrite=overwrite)
    write_image(outdir / "ground_truth.tif", data.ground_truth, pixel_size_nm=pixel / 2, axes="YX",
                overwrite=overwrite)
    write_image(outdir / "widefield.tif", data.widefield if t > 1 else data.widefield[0],
                pixel_size_nm=pixel, axes="TYX" if t > 1 else "YX", overwrite=overwrite)
    atomic_write_text(outdir / "truth.json", json.dumps(data.truth_dict(), indent=2) + "\n", overwrite)
    return {name: str(outdir / name) for name in SIM_FILES}


def write_widefield_simulation(kind: str, outdir: str | Path, *, overwrite: bool = False,
                               **options) -> WidefieldSimulation:
    """:func:`microsr.synthetic.simulate_widefield` of ``kind`` with ``options``, written to ``outdir``:
    ``ground_truth.tif`` and ``widefield.tif`` (each with its pixel size) and ``truth.json``."""
    outdir = Path(outdir)
    for name in WIDEFIELD_FILES:
        check_writable(outdir / name, overwrite)
    sim = simulate_widefield(kind, **options)
    facts = sim.facts
    write_image(outdir / "ground_truth.tif", sim.ground_truth, pixel_size_nm=facts["ground_truth_pixel_nm"],
                axes="YX", overwrite=overwrite)
    write_image(outdir / "widefield.tif", sim.widefield, pixel_size_nm=facts["widefield_pixel_nm"], axes="YX",
                overwrite=overwrite)
    atomic_write_text(outdir / "truth.json", json.dumps(facts, indent=2) + "\n", overwrite)
    return sim
