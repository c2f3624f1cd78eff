"""Trained models of every method: network factory, file format and version, loading, normalization, acquisition check.

Each method has one module (:mod:`~microsr.models.sfsrm`, :mod:`~microsr.models.rdl`,
:mod:`~microsr.models.selfsup`) and one class with ``from_pretrained(name_or_path, device=...)``;
shipped names and user folders resolve the same way (:mod:`~microsr.models.shipped`), and every
file is written and read by :mod:`~microsr.models.serialize` (``weights_only=True``). Training
(:mod:`microsr.train`) and prediction (:mod:`microsr.pipelines`, whose facades subclass these
classes) both stand on this layer and never import each other.
"""

from __future__ import annotations

from pathlib import Path

from microsr.models.rdl import RDLModel
from microsr.models.selfsup import SelfSupModel
from microsr.models.sfsrm import SFSRMModel
from microsr.models.shipped import method_of, shipped_models

#: The model class of each method.
MODEL_CLASSES = {"sfsrm": SFSRMModel, "rdl": RDLModel, "selfsup": SelfSupModel}


def from_pretrained(name_or_path: str | Path, device: str = "auto"):
    """Any microsr model, by a shipped name or a path: the method is read from the files.

    Returns a :class:`SFSRMModel`, :class:`RDLModel` or :class:`SelfSupModel`; for prediction use the
    facade of the method (``microsr.pipelines.sfsrm.SFSRM.from_pretrained`` and its kin), which takes
    the same arguments.

    Examples
    --------
    >>> type(from_pretrained("tirf-sim-3x3", device="cpu")).__name__
    'RDLModel'
    """
    return MODEL_CLASSES[method_of(name_or_path)].from_pretrained(name_or_path, device=device)


__all__ = ["MODEL_CLASSES", "RDLModel", "SFSRMModel", "SelfSupModel", "from_pretrained", "method_of", "shipped_models"]
