"""Whole models as one network each (one tensor in, one out): what other tools run — bioimage.io, TorchScript.

:class:`SFSRMNetwork` is SFSRM's SEN → edge map → SRN ensemble in one ``torch.nn.Module`` (the edge map is
computed inside), fed an image already scaled to [0, 1] by its 0.1–99.9 percentiles; its output is the same
as :meth:`microsr.pipelines.sfsrm.SFSRM.predict` on a frame that fits one tile. :class:`SelfSupNetwork` is
the self-supervised RCAN3D denoiser on normalized counts. Both are built from plain keyword arguments, so a
model package can name them with their sizes and load a state dict into them.
"""

from __future__ import annotations

import torch

from microsr.models.selfsup import build_network
from microsr.models.sfsrm import build_generator, network_inputs


class SFSRMNetwork(torch.nn.Module):
    """SFSRM in one module: ``(B, 1, Y, X)`` normalized widefield → ``(B, 1, s·Y, s·X)`` SR image.

    Parameters
    ----------
    srn : dict
        Sizes of the SRNs (``features``, ``blocks``, ``growth``, ``scale``).
    sen : dict, optional
        Sizes of the SEN; None: no denoising step.
    members : int
        SRNs in the ensemble; member k sees the image turned by k quarter turns and its output is turned
        back, and the output is their mean (as :meth:`SFSRM.srn_outputs` does).
    """

    def __init__(self, srn: dict, sen: dict | None = None, members: int = 1):
        super().__init__()
        self.sen = build_generator("sen", sen) if sen else None
        self.srns = torch.nn.ModuleList(build_generator("srn", srn) for _ in range(members))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        frame = self.sen(image) if self.sen is not None else image
        inputs = network_inputs(frame, "srn")
        outputs = [torch.rot90(srn(torch.rot90(inputs, k % 4, dims=(-2, -1))), -(k % 4), dims=(-2, -1))
                   for k, srn in enumerate(self.srns)]
        return torch.stack(outputs).mean(dim=0)

    @classmethod
    def from_model(cls, model) -> SFSRMNetwork:
        """The module of a loaded :class:`~microsr.models.sfsrm.SFSRMModel`, with its weights."""
        network = cls(**cls.sizes(model))
        if model.sen is not None:
            network.sen.load_state_dict(model.sen.state_dict())
        for target, source in zip(network.srns, [model.srn, *model.members]):
            target.load_state_dict(source.state_dict())
        return network.eval()

    @staticmethod
    def sizes(model) -> dict:
        """The keyword arguments that build a model's module."""
        return {"srn": dict(model.srn_info["model"]), "sen": dict(model.sen_info["model"]) if model.sen else None,
                "members": 1 + len(model.members)}


class SelfSupNetwork(torch.nn.Module):
    """The TiS/SiS-rDL denoiser: ``(B, 1, Z, Y, X)`` normalized counts → the same, denoised."""

    def __init__(self, **sizes):
        super().__init__()
        self.rcan = build_network(sizes)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.rcan(volume)
