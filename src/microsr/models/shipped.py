"""The models that come with microsr: their names, and a name or a path turned into the model's folder or file."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import torch

from microsr.errors import InputError
from microsr.models.serialize import METHOD_NAMES

#: The file that marks a shipped folder as a model of each method.
MARKER_FILES = {"sfsrm": "srn.pt", "rdl": "denoiser.pt", "selfsup": "model.pt"}


def _weights_root() -> Path:
    return Path(str(resources.files("microsr") / "weights"))


def shipped_models(method: str | None = None) -> list[str]:
    """Names of the models that come with microsr (folders under ``microsr/weights``), of one method or all.

    Examples
    --------
    >>> "filaments-x4" in shipped_models("sfsrm")
    True
    """
    root = _weights_root()
    if not root.is_dir():
        return []
    markers = [MARKER_FILES[method]] if method else list(MARKER_FILES.values())
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any((p / m).exists() for m in markers))


def model_folder(name_or_path: str | Path, method: str) -> Path:
    """An existing path as given (a folder or a file), or the folder of a shipped model of ``method``.

    A path wins over a shipped name, so a user's folder called like a shipped model is the one used.

    Raises
    ------
    InputError
        Neither a path nor a shipped name; the message lists the shipped models of ``method``.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    if str(name_or_path) in shipped_models(method):
        return _weights_root() / str(name_or_path)
    raise InputError(f"no model {str(name_or_path)!r}: give a folder with {MARKER_FILES[method]} or the name of a "
                     f"shipped {METHOD_NAMES[method]} model: {', '.join(shipped_models(method)) or 'none installed'}")


def network_file(name_or_path: str | Path, method: str, file_name: str) -> Path:
    """One network's file of a model: a file path as given, else ``file_name`` in :func:`model_folder` (a folder
    or a shipped name); what fine-tuning (``init_from``) starts from, for any method."""
    path = Path(name_or_path)
    if path.suffix == ".pt":  # a file, existing or not: loading it says what is wrong
        return path
    folder = model_folder(name_or_path, method)
    return folder / file_name if folder.is_dir() else folder


def method_of(name_or_path: str | Path) -> str:
    """Which method a shipped name, a model folder or a model file belongs to; one InputError if none.

    A folder is recognised by its marker file (``srn.pt``: SFSRM; ``denoiser.pt``: rDL SIM;
    ``model.pt``: read its format tag), a file by its format tag.
    """
    path = Path(name_or_path)
    if not path.exists():
        for method in MARKER_FILES:
            if str(name_or_path) in shipped_models(method):
                return method
        raise InputError(f"no model {str(name_or_path)!r}: give a model folder or file, or the name of a shipped "
                         f"model: {', '.join(shipped_models()) or 'none installed'}")
    if path.is_dir():
        for method in ("sfsrm", "rdl"):
            if (path / MARKER_FILES[method]).is_file():
                return method
        path = path / "model.pt"
    try:
        tag = torch.load(path, map_location="cpu", weights_only=True).get("format", "")
    except Exception:  # a missing, damaged or foreign file: said once, below
        tag = ""
    for method in MARKER_FILES:
        if str(tag).startswith(f"microsr-{method}-"):
            return method
    raise InputError(f"{name_or_path} is not a microsr model: give a folder with srn.pt (SFSRM), sr.pt and "
                     "denoiser.pt (rDL SIM) or model.pt, or a shipped model's name")


def _network_facts(folder: Path) -> dict:
    """Sizes and training facts of a model folder's networks, read from their files."""
    parameters, size, trained_on = 0, 0, {}
    for file in sorted(folder.glob("*.pt")):
        saved = torch.load(file, map_location="cpu", weights_only=True)
        parameters += sum(int(t.numel()) for t in saved.get("state_dict", {}).values())
        size += file.stat().st_size
        if "acquisition" in saved:
            trained_on.update(saved["acquisition"])
        if "lr_pixel_nm" in saved:
            trained_on["pixel_size_nm"] = saved["lr_pixel_nm"]
        measured = (saved.get("training_range") or {}).get("measured")
        if measured and "measured" not in trained_on:  # the first network's (sen.pt before srn.pt): the one checked
            trained_on["measured"] = {k: [round(float(v), 3) for v in pair] for k, pair in measured.items()}
        if "patch_size" in saved:
            trained_on["patch_size"] = list(saved["patch_size"])
    return {"parameters": parameters, "size_mb": round(size / 2**20, 2), "trained_on": trained_on}


def shipped_model_summaries() -> list[dict]:
    """Each shipped model as ``{"name", "method", "description", "card", "parameters", "size_mb", "trained_on"}``:
    what ``microsr models`` lists (``trained_on``: the acquisition or pixel size the networks were trained for and,
    for SFSRM, the measured range of their training inputs that every prediction is checked against).

    The description is the first sentence of the model card's first paragraph, without its parentheses
    (citations) and markdown emphasis.

    Examples
    --------
    >>> [m["method"] for m in shipped_model_summaries() if m["name"] == "filaments-x4"]
    ['SFSRM']
    """
    summaries = []
    for name in shipped_models():
        folder = _weights_root() / name
        method = next(m for m, marker in MARKER_FILES.items() if (folder / marker).exists())
        card = folder / "MODEL_CARD.md"
        description = ""
        if card.is_file():
            paragraph = card.read_text().split("\n\n")[1] if "\n\n" in card.read_text() else ""
            text = re.sub(r"\s*\([^()]*\)", "", " ".join(paragraph.split()).replace("*", ""))
            description = text.split(". ")[0].rstrip(".") + "." if text else ""
        summaries.append({"name": name, "method": METHOD_NAMES[method], "description": description,
                          "card": str(card) if card.is_file() else None, **_network_facts(folder)})
    return summaries


def model_signature(name_or_path: str | Path, method: str) -> tuple:
    """What identifies a model's files as they are now (name, size, modification time of each ``.pt``): a cache
    of loaded models keyed by it never serves weights that were retrained since."""
    path = model_folder(name_or_path, method)
    files = sorted(path.glob("*.pt")) if path.is_dir() else [path]
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists())
