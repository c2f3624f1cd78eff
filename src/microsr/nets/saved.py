"""Load an exported network file (``torch.save`` dict with a format tag), or fail with one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from microsr.errors import InputError


def load_saved_network(path: str | Path, format_tag: str, build: Callable[[dict], torch.nn.Module], *,
                       what: str, missing_hint: str) -> tuple[torch.nn.Module, dict]:
    """The network saved at ``path`` (built by ``build(saved)``, weights loaded, eval mode) and its info.

    Loading uses ``weights_only=True``: an exported model is tensors and plain data, and a file that
    needs more is not one of ours. Any failure — missing, truncated, foreign, another layout — becomes
    one :class:`InputError` naming the file, since users hand these files around.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist: {missing_hint}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != format_tag:
            raise KeyError("format")
        network = build(saved)
        network.load_state_dict(saved["state_dict"])
    except InputError:
        raise
    except Exception as exc:  # torch raises many kinds on a truncated or foreign file
        raise InputError(f"cannot load {what} {path} ({exc.__class__.__name__}): the file is corrupt or not a "
                         f"microsr {what}") from None
    return network.eval(), {k: v for k, v in saved.items() if k != "state_dict"}
