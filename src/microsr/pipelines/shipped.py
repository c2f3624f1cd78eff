"""The models that come with microsr: their names, and a name or a path turned into a model folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from microsr.errors import InputError

#: The file that marks a shipped folder as a model of each method.
MARKER_FILES = {"sfsrm": "srn.pt", "rdl": "denoiser.pt", "selfsup": "model.pt"}

#: How the error messages name each method.
METHOD_NAMES = {"sfsrm": "SFSRM", "rdl": "rDL SIM", "selfsup": "self-supervised LLSM"}


def _weights_root() -> Path:
    return Path(str(resources.files("microsr") / "weights"))


def shipped_models(method: str | None = None) -> list[str]:
    """Names of the models that come with microsr (folders under ``microsr/weights``), of one method or all."""
    root = _weights_root()
    if not root.is_dir():
        return []
    markers = [MARKER_FILES[method]] if method else list(MARKER_FILES.values())
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / m).exists() for m in markers))


def model_folder(name_or_path: str | Path, method: str) -> Path:
    """An existing path as given, or the folder of a shipped model of ``method``; else one clear InputError."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if str(name_or_path) in shipped_models(method):
        return _weights_root() / str(name_or_path)
    raise InputError(f"no model {str(name_or_path)!r}: give a folder with {MARKER_FILES[method]} or the name of a "
                     f"shipped {METHOD_NAMES[method]} model: {', '.join(shipped_models(method)) or 'none installed'}")
