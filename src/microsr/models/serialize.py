"""Model files of every method: one format tag with a version, saved atomically, loaded with ``weights_only=True``.

A model file is a ``torch.save`` dict: ``format`` (``"microsr-<method>-<version>"``), the facts a user
needs to apply the network correctly (hyper-parameters, the acquisition it was trained for, its
validation scores) and ``state_dict``. Nothing else: a file that needs pickled code to load is not one
of ours, and loading it with ``weights_only=True`` refuses it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable

import torch

from microsr.errors import InputError
from microsr.io.atomic import atomic_write_bytes

#: Format version of each method's model file; bump it when the layout of a file changes.
FORMAT_VERSIONS = {"sfsrm": 1, "rdl": 1, "selfsup": 1}

#: How messages name each method's model files.
METHOD_NAMES = {"sfsrm": "SFSRM", "rdl": "rDL SIM", "selfsup": "self-supervised LLSM"}

_TAG = re.compile(r"^microsr-(?P<method>[a-z]+)-(?P<version>\d+)$")


def format_tag(method: str) -> str:
    """The format tag this microsr writes for ``method``.

    Examples
    --------
    >>> format_tag("sfsrm")
    'microsr-sfsrm-1'
    """
    return f"microsr-{method}-{FORMAT_VERSIONS[method]}"


def save_network(path: str | Path, method: str, module: torch.nn.Module, /, **info) -> Path:
    """Write ``module``'s weights and ``info`` (plain data: numbers, strings, lists, dicts) to ``path``.

    The file is written beside and renamed into place, so a killed export never leaves a truncated
    model under the final name.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({"format": format_tag(method), **info, "state_dict": module.state_dict()}, buffer)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=True)
    return path


def read_model_file(path: str | Path, method: str, *, missing_hint: str) -> dict:
    """The dict saved at ``path`` if it is a ``method`` model file of this version; else one clear InputError.

    An older or newer version of the same method's format is named as such, with what to do.
    """
    path = Path(path)
    what = f"{METHOD_NAMES[method]} model"
    if not path.is_file():
        raise InputError(f"model file {path} does not exist: {missing_hint}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on a truncated or foreign file
        raise InputError(f"cannot load {what} {path} ({exc.__class__.__name__}): the file is corrupt or not a "
                         f"microsr {what}: {missing_hint}") from None
    found = saved.get("format") if isinstance(saved, dict) else None
    if found == format_tag(method):
        return saved
    match = _TAG.match(found) if isinstance(found, str) else None
    if match and match["method"] == method:
        raise InputError(f"{path} is a {what} file of format version {match['version']} ({found}); this microsr "
                         f"reads version {FORMAT_VERSIONS[method]} ({format_tag(method)}): retrain the model with "
                         "this version, or load it with the microsr version that wrote it")
    if match and match["method"] in METHOD_NAMES:
        raise InputError(f"{path} holds a model for {METHOD_NAMES[match['method']]}, not for {METHOD_NAMES[method]}: "
                         f"give it to 'microsr {match['method']} predict', or {missing_hint}")
    raise InputError(f"cannot load {what} {path}: the file is corrupt or not a microsr {what} "
                     f"(format {found!r}, expected {format_tag(method)!r}): {missing_hint}")


def load_network(path: str | Path, method: str, build: Callable[[dict], torch.nn.Module], *,
                 missing_hint: str) -> tuple[torch.nn.Module, dict]:
    """The network saved at ``path``, built by ``build(saved)`` with its weights loaded, in eval mode, and its info.

    Any failure (missing, truncated, foreign, another version, a layout its hyper-parameters do not
    build) becomes one :class:`InputError` naming the file, since users hand these files around.
    """
    saved = read_model_file(path, method, missing_hint=missing_hint)
    what = f"{METHOD_NAMES[method]} model"
    try:
        network = build(saved)
        network.load_state_dict(saved["state_dict"])
    except InputError:
        raise
    except Exception as exc:  # wrong hyper-parameters or weights of another layout
        raise InputError(f"cannot load {what} {path} ({exc.__class__.__name__}): the file is corrupt or not a "
                         f"microsr {what}: {missing_hint}") from None
    return network.eval(), {k: v for k, v in saved.items() if k != "state_dict"}
