"""Synthetic data with known truth: 2-D specimens and their widefield images, raw SIM acquisitions, LLSM volume series.

- :mod:`~microsr.synthetic.specimens`: filaments, line and dot pairs, rings (paper 003's specimens)
  on a fine grid, degraded to widefield images (blur, binning, noise), and SFSRM training pairs.
- :mod:`~microsr.synthetic.sim_raw`: a complete 2-D SIM acquisition (patterns, optics, camera) and
  the SIM-resolution target rDL SIM trains towards.
- :mod:`~microsr.synthetic.defects`: a real instrument's camera, laser and bleaching, for any raw stack.
- :mod:`~microsr.synthetic.llsm`: lattice light-sheet time series of moving vesicles and membranes.
"""

from microsr.synthetic.defects import AcquisitionDefects
from microsr.synthetic.llsm import LLSMData, llsm_time_subsample, simulate_llsm
from microsr.synthetic.sim_raw import SimulatedSIM, sim_resolution_fwhm_nm, sim_target, simulate_sim
from microsr.synthetic.specimens import (DotPair, LinePair, Ring, WidefieldSimulation, degrade, dot_pairs,
                                         filaments_and_dots, line_pairs, polymer_chains, rings, simulate_widefield,
                                         training_pair, worm_like_chain)

__all__ = ["AcquisitionDefects", "DotPair", "LLSMData", "LinePair", "Ring", "SimulatedSIM", "WidefieldSimulation", "degrade", "dot_pairs",
           "filaments_and_dots", "line_pairs", "llsm_time_subsample", "polymer_chains", "rings", "sim_resolution_fwhm_nm",
           "sim_target", "simulate_llsm", "simulate_sim", "simulate_widefield", "training_pair", "worm_like_chain"]
