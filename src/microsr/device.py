"""Which torch device a computation runs on: ``auto``, ``cpu`` or ``cuda``, checked against this machine."""

from __future__ import annotations

import torch

from microsr.errors import InputError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a user error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} asked for, but this machine has no usable CUDA GPU: "
                         "use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r}: use auto, cpu or cuda") from None
