"""Test helpers: simulated acquisitions with known truth (cached: ~1 s each) and shared data paths."""

import functools
import sys
from pathlib import Path

import pytest

from microsr.synthetic.sim_raw import simulate_sim


@functools.lru_cache(maxsize=None)
def simulated(seed=0, photons=30.0, size=256, phases=3, fraction=0.92, jitter=0.0, time_points=1):
    """A simulated TIRF-SIM acquisition (62.6 nm pixels, NA 1.35, 525 nm emission)."""
    return simulate_sim(shape=(size, size), photons=photons, seed=seed, phases=phases,
                        pattern_fraction_of_cutoff=fraction, phase_jitter_rad=jitter,
                        time_points=time_points)


def background_of(data):
    """Camera offset plus the unmodulated background photons of a simulation."""
    return data.camera.offset_adu + data.camera.background_photons


def shared_otf_path(name="TIRF488_cam1_0_z30_OTF2d.mrc"):
    """A measured OTF from ../shared/data/otf (CI clones the repo with shared/ beside it)."""
    for root in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        candidate = root / "data" / "otf" / name
        if candidate.exists():
            return candidate
    pytest.skip("the shared measured OTF files are not beside this checkout")


def run_cli(argv, capsys):
    """Run ``microsr argv`` in this process; returns (exit code, stdout, stderr)."""
    from microsr.cli import main

    old = sys.argv
    sys.argv = ["microsr", *map(str, argv)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err
