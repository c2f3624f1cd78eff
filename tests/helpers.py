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


def figure_panels(figure, min_px=100):
    """Decode a figure PNG and find its image panels; returns (RGB image 0–1, row ranges, column ranges).

    ``figure`` is a PNG path or an already decoded (part of a) figure. A panel is a run of at least
    ``min_px`` pixel rows (columns) of which over 30 % are not white: images are, while titles, tick
    labels, colour bars and the gaps between panels are not (nor are line plots, mostly white).
    A file that is not a PNG fails to decode here, which a byte-size check would not notice.
    """
    import matplotlib.image
    import numpy as np
    from scipy import ndimage

    image = figure if isinstance(figure, np.ndarray) else matplotlib.image.imread(figure)[..., :3]
    ink = (image < 0.95).any(axis=2)

    def runs(profile):
        labels, _ = ndimage.label(profile > 0.3)
        return [(s.start, s.stop) for (s,) in ndimage.find_objects(labels) if s.stop - s.start >= min_px]

    return image, runs(ink.mean(axis=1)), runs(ink.mean(axis=0))


def assert_figure_panels(path, rows, columns, min_contrast=0.02):
    """The figure at ``path`` decodes to ``rows`` × ``columns`` panels, none of them blank."""
    image, found_rows, found_columns = figure_panels(path)
    assert (len(found_rows), len(found_columns)) == (rows, columns), (found_rows, found_columns)
    for r0, r1 in found_rows:
        for c0, c1 in found_columns:
            # The middle 60 % of a panel, clear of its ticks and labels: an image drawn there spreads
            # grey levels, a constant (blank, all-NaN, all-zero) one is a single colour.
            dr, dc = (r1 - r0) // 5, (c1 - c0) // 5
            assert image[r0 + dr:r1 - dr, c0 + dc:c1 - dc].std() > min_contrast, (path, (r0, c0))
