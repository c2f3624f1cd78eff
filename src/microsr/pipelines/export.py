"""Export a model to the bioimage.io model zoo format (0.5): one zip that bioimage.io tools, Fiji and napari run.

The description is built with ``bioimageio.spec`` (the ``microsr[bioimageio]`` extra, imported only here):
axes with their nm scale, the percentile or fixed scaling microsr applies as pre/post-processing, the
whole model as one module importable from microsr (:mod:`microsr.models.packaged`) with its state dict,
and TorchScript when it traces; a simulated test input with microsr's own prediction as the test
output; the model card as documentation; a cover showing both. rDL SIM does not fit the format (see
:data:`RDL_NOT_EXPORTED`).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from microsr.errors import InputError
from microsr.io.atomic import check_writable
from microsr.models.packaged import SelfSupNetwork, SFSRMNetwork
from microsr.models.selfsup import load_network
from microsr.models.sfsrm import normalize_input
from microsr.models.shipped import method_of, model_folder
from microsr.pipelines.selfsup import SelfSupDenoiser
from microsr.pipelines.sfsrm import SFSRM
from microsr.report import comparison_figure
from microsr.synthetic.llsm import simulate_llsm
from microsr.synthetic.widefield import widefield_pair

#: Why rDL SIM is not exported (said by the command, and in the model card).
RDL_NOT_EXPORTED = ("rDL SIM is not one tensor in → one out: every prediction first estimates the illumination "
                    "pattern from the raw frames and feeds the denoiser pattern-modulated images made from it "
                    "(paper 000's 'rationalized' step), which a bioimage.io model cannot do; run it with "
                    "'microsr rdl predict'")

CITATIONS = {
    "sfsrm": ("Chen, R. et al. Single-frame deep-learning super-resolution microscopy for intracellular dynamics "
              "imaging. Nat. Commun. 14, 2854 (2023).", "10.1038/s41467-023-38452-2"),
    "rdl": ("Qiao, C. et al. Rationalized deep learning super-resolution microscopy for sustained live imaging of "
            "rapid subcellular processes. Nat. Biotechnol. 41, 367–377 (2023).", "10.1038/s41587-022-01471-3"),
}


def _torchscript(network: torch.nn.Module, example: torch.Tensor, path: Path) -> bool:
    """Trace ``network`` to ``path`` if the trace reproduces the module on the example and on an input of
    another size (a trace freezes whatever depended on the shape); False, and no file, if not."""
    other = torch.nn.functional.interpolate(example, scale_factor=1.25, mode="nearest")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on input checks frozen as constants
            traced = torch.jit.trace(network, example, check_trace=False)
            for probe in (example, other):
                expected = network(probe)
                if not torch.allclose(traced(probe), expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max())):
                    return False
    except Exception:  # noqa: BLE001 — a module that does not trace is exported without TorchScript
        return False
    traced.save(str(path))
    return True


def _sfsrm_parts(name: str) -> dict:
    model = SFSRM.from_pretrained(name, device="cpu")
    network = SFSRMNetwork.from_model(model)
    widefield = widefield_pair("filaments", lr_patch_px=64, fwhm_nm=250.0, snr=15.0, haze=0.5, seed=7).noisy
    sr = model.predict(widefield, pixel_size_nm=model.pixel_size_nm, check_range=False).sr
    return {"method": "sfsrm", "model": model, "network": network, "sizes": SFSRMNetwork.sizes(model),
            "callable": "SFSRMNetwork", "input": widefield[None, None].astype(np.float32),
            "output": sr[None, None].astype(np.float32), "spatial": "yx",
            "input_scale": model.pixel_size_nm, "output_scale": model.pixel_size_nm / model.scale,
            "normalization": "percentile", "tags": ["super-resolution", "widefield", "sfsrm", "2d", "pytorch"],
            "input_name": "widefield", "output_name": "sr",
            "description": "SFSRM single-frame super-resolution of a widefield fluorescence image "
                           f"({model.pixel_size_nm:g} nm pixels → {model.pixel_size_nm / model.scale:g} nm), "
                           "trained by microsr on simulated widefield images."}


def _selfsup_parts(name: str) -> dict:
    path = model_folder(name, "selfsup")
    rcan, info = load_network(path / "model.pt" if path.is_dir() else path)
    denoiser = SelfSupDenoiser.from_pretrained(name, device="cpu")
    background, scale = (float(info["normalization"][k]) for k in ("background", "scale"))
    network = SelfSupNetwork(**info["model"])
    network.rcan.load_state_dict(rcan.state_dict())
    volume = simulate_llsm(shape=(1, 8, 48, 48), specimen="mixed", photons=30, seed=5).noisy[0].astype(np.float32)
    denoised = denoiser.denoise_volume(volume, background=background, scale=scale)
    voxel = info.get("voxel_size_nm") or [None, None, None]
    return {"method": "selfsup", "network": network.eval(), "sizes": dict(info["model"]),
            "callable": "SelfSupNetwork", "input": volume[None, None], "output": denoised[None, None].astype(np.float32),
            "spatial": "zyx", "voxel_nm": voxel, "normalization": ("fixed", background, scale),
            "tags": ["denoising", "lattice-light-sheet", "self-supervised", "3d", "pytorch"],
            "input_name": "raw", "output_name": "denoised",
            "description": "Self-supervised (TiS-rDL) denoiser for lattice light-sheet volumes, trained by microsr "
                           "on one noisy recording; inputs are scaled like that recording "
                           f"(background {background:.4g}, scale {scale:.4g} counts)."}


def export_bioimageio(model_name: str | Path, output: str | Path, *, overwrite: bool = False) -> dict:
    """Write ``model_name`` (a shipped name or a model folder) as a bioimage.io model zip at ``output``.

    Returns a summary: ``output``, ``method``, ``weights`` (formats written), ``test_input_shape``.

    Raises
    ------
    InputError
        An rDL SIM model (:data:`RDL_NOT_EXPORTED`), the extra not installed, or ``output`` exists.
    """
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5 as spec
    except ImportError:
        raise InputError("bioimage.io export needs the bioimageio extra: pip install 'microsr[bioimageio]'") from None
    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise InputError(f"{output}: a bioimage.io model is a .zip: name the output *.zip")
    check_writable(output, overwrite)
    method = method_of(model_name)
    if method == "rdl":
        raise InputError(RDL_NOT_EXPORTED)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        parts = (_sfsrm_parts if method == "sfsrm" else _selfsup_parts)(str(model_name))
        network = parts["network"]
        torch.save(network.state_dict(), work / "weights.pt")
        np.save(work / "test_input.npy", parts["input"])
        np.save(work / "test_output.npy", parts["output"])
        card = model_folder(model_name, method) / "MODEL_CARD.md"
        shutil.copy(card, work / "README.md") if card.is_file() else (work / "README.md").write_text(
            f"# {Path(str(model_name)).name}\n\n{parts['description']}\n")
        shown_in, shown_out = parts["input"][0, 0], parts["output"][0, 0]
        if shown_in.ndim == 3:  # a volume: its middle plane
            shown_in, shown_out = shown_in[len(shown_in) // 2], shown_out[len(shown_out) // 2]
        comparison_figure(work / "cover.png", [(parts["input_name"], shown_in, 1.0), (parts["output_name"], shown_out,
                                                                                       shown_in.shape[0] / shown_out.shape[0])],
                          title=f"microsr {Path(str(model_name)).name}: test input and microsr's output")

        nm = "nanometer"
        if method == "sfsrm":
            in_space = [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(min=32, step=8), unit=nm,
                                            scale=parts["input_scale"]) for a in "yx"]
            out_space = [spec.SpaceOutputAxis(id=spec.AxisId(a), size=spec.SizeReference(
                tensor_id=spec.TensorId(parts["input_name"]), axis_id=spec.AxisId(a)), unit=nm,
                scale=parts["output_scale"]) for a in "yx"]
            preprocessing = [spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
                axes=[spec.AxisId("y"), spec.AxisId("x")], min_percentile=0.1, max_percentile=99.9))]
            postprocessing = []
        else:
            _, background, scale = parts["normalization"]
            voxel = parts["voxel_nm"]
            in_space = [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(min=4 if a == "z" else 16,
                                                                                            step=4 if a == "z" else 8),
                                            **({"unit": nm, "scale": float(v)} if v else {}))
                        for a, v in zip("zyx", voxel)]
            out_space = [spec.SpaceOutputAxis(id=spec.AxisId(a), size=spec.SizeReference(
                tensor_id=spec.TensorId(parts["input_name"]), axis_id=spec.AxisId(a)),
                **({"unit": nm, "scale": float(v)} if v else {})) for a, v in zip("zyx", voxel)]
            preprocessing = [spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1.0 / scale,
                                                                                   offset=-background / scale))]
            postprocessing = [spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=scale, offset=background))]
        inputs = [spec.InputTensorDescr(
            id=spec.TensorId(parts["input_name"]),
            axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(parts["input_name"])]), *in_space],
            test_tensor=spec.FileDescr(source=work / "test_input.npy"), preprocessing=preprocessing)]
        outputs = [spec.OutputTensorDescr(
            id=spec.TensorId(parts["output_name"]),
            axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=[spec.Identifier(parts["output_name"])]),
                  *out_space],
            test_tensor=spec.FileDescr(source=work / "test_output.npy"), postprocessing=postprocessing)]
        torch_version = spec.Version(torch.__version__.split("+")[0])
        weights = {"pytorch_state_dict": spec.PytorchStateDictWeightsDescr(
            source=work / "weights.pt", pytorch_version=torch_version,
            architecture=spec.ArchitectureFromLibraryDescr(callable=spec.Identifier(parts["callable"]),
                                                          import_from="microsr.models.packaged",
                                                          kwargs=parts["sizes"]))}
        if _torchscript(network, torch.from_numpy(_preprocessed(parts)), work / "weights.torchscript"):
            weights["torchscript"] = spec.TorchscriptWeightsDescr(source=work / "weights.torchscript",
                                                                   pytorch_version=torch_version,
                                                                   parent="pytorch_state_dict")
        text, doi = CITATIONS["sfsrm" if method == "sfsrm" else "rdl"]
        description = spec.ModelDescr(
            name=f"microsr {Path(str(model_name)).name}", description=parts["description"],
            authors=[spec.Author(name="the microsr authors")], cite=[spec.CiteEntry(text=text, doi=spec.Doi(doi))],
            license=spec.LicenseId("MIT"), documentation=spec.FileDescr(source=work / "README.md"),
            covers=[spec.FileDescr(source=work / "cover.png")],
            tags=parts["tags"], inputs=inputs, outputs=outputs, weights=spec.WeightsDescr(**weights))
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists():
            output.unlink()
        save_bioimageio_package(description, output_path=output)
    return {"output": str(output), "method": method, "weights": sorted(weights),
            "test_input_shape": list(parts["input"].shape)}


def _preprocessed(parts: dict) -> np.ndarray:
    """The test input as the network sees it (after the package's preprocessing)."""
    data = parts["input"]
    if parts["normalization"] == "percentile":  # the package's scale_range: microsr's own input scaling
        return normalize_input(data)
    _, background, scale = parts["normalization"]
    return ((data - background) / scale).astype(np.float32)
