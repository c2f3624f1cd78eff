"""Quality control: fidelity, resolution and confidence metrics of super-resolution images."""

from microsr.losses import ms_ssim_torch
from microsr.metrics.artifacts import ResidualPatternResult, residual_pattern_index
from microsr.metrics.confidence import (HawkmanResult, SquirrelResult, ensemble_disagreement, hawkman,
                                        relative_disagreement, squirrel, temporal_agreement)
from microsr.metrics.fidelity import ms_ssim, normalize, nrmse, pearson, psnr, ssim
from microsr.metrics.pairs import pair_resolved, profile_through
from microsr.metrics.resolution import (DecorrelationResult, FRCResult, decorrelation_resolution,
                                        fourier_ring_correlation)
from microsr.metrics.signal import signal_density, signal_to_noise

__all__ = ["ResidualPatternResult", "residual_pattern_index", "DecorrelationResult", "FRCResult", "HawkmanResult", "SquirrelResult", "decorrelation_resolution",
           "ensemble_disagreement", "fourier_ring_correlation", "hawkman", "ms_ssim", "ms_ssim_torch",
           "normalize", "nrmse", "pair_resolved", "pearson", "profile_through", "psnr", "relative_disagreement", "signal_density", "signal_to_noise", "squirrel", "ssim",
           "temporal_agreement"]
