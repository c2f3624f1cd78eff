"""Shared fixtures."""

import os

import pytest
import torch

from microsr.optics import ideal_otf

torch.set_num_threads(2)  # the suite is specified for 2 cores; more threads only oversubscribe
# Commands run in this process choose their threads from MICROSR_THREADS; without it they would measure
# the machine's load, and one busy moment would leave the rest of the suite on one thread.
os.environ["MICROSR_THREADS"] = "2"


@pytest.fixture
def tirf_otf():
    """NA 1.35, 525 nm emission, 62.6 nm camera pixels: the rDL TIRF-SIM geometry."""
    return ideal_otf(1.35, 525.0, camera_pixel_nm=62.6)
