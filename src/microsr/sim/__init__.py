"""Structured-illumination physics: pattern model, parameter estimation, Wiener reconstruction."""

from microsr.sim.parameters import Orientation, SIMParameters

__all__ = ["Orientation", "SIMParameters"]
