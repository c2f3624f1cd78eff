"""The plugin's widgets: SIM, rDL SIM, SFSRM, self-supervised denoising and evaluation, each run in a worker thread.

Every widget reads its input layers (and their pixel size in nm) in the main thread, runs microsr's own
Python API in a ``thread_worker`` (napari's activity dock shows it busy; the viewer stays responsive), and
adds its outputs as layers scaled in nm. What the method warned (an unreliable pattern estimate, an input
outside a model's training range, ...) is shown as napari notifications and in the widget's status line,
and kept in the output layer's metadata. A user error is one line in the status, not a traceback.
"""

from __future__ import annotations

import warnings

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, Table
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_warning

from microsr.errors import InputError, MicrosrError
from microsr.io import to_tapyx
from microsr.metrics import relative_disagreement
from microsr.models.shipped import shipped_models
from microsr.napari_plugin._layers import image_layer, layer_pixel_size_nm
from microsr.pipelines.evaluate import Picture, evaluate
from microsr.pipelines.rdl_sim import RDLSIM
from microsr.pipelines.selfsup import SelfSupDenoiser
from microsr.pipelines.sfsrm import loaded_model
from microsr.pipelines.sim import SIMReconstructor, resolve_background


class _RunWidget(Container):
    """Inputs, a Run button and a status line; :meth:`compute` runs in a worker thread."""

    title = ""

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.button = PushButton(text=f"Run {self.title}")
        self.status = Label(value="")
        self.button.changed.connect(self.run)
        self.extend([*self.fields(), self.button, self.status])
        self.status.native.setWordWrap(True)  # warnings are sentences: wrap them in the dock's width
        self.max_width = 460
        self.worker = None
        self.done = False
        self.result: dict | None = None

    def fields(self) -> list:
        return []

    def layer_choices(self, _widget=None):
        return [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]

    def layer_combo(self, label: str, optional: bool = False) -> ComboBox:
        def choices(_widget=None):
            return ([None] if optional else []) + self.layer_choices()
        combo = ComboBox(label=label, choices=choices, nullable=optional)
        self.viewer.layers.events.inserted.connect(lambda _e: combo.reset_choices())
        self.viewer.layers.events.removed.connect(lambda _e: combo.reset_choices())
        return combo

    def layer(self, combo: ComboBox):
        if combo.value is None:
            return None
        return self.viewer.layers[combo.value]

    def run(self, *_args):
        """Start the work; returns the worker (tests wait for :attr:`done`)."""
        self.done, self.result = False, None
        try:
            arguments = self.collect()
        except MicrosrError as exc:
            self._failed(exc)
            return None
        self.status.value = f"{self.title}: running…"
        self.worker = create_worker(self._compute_with_warnings, arguments, _progress={"desc": self.title})
        self.worker.returned.connect(self._show)
        self.worker.errored.connect(self._failed)
        self.worker.start()
        return self.worker

    def collect(self) -> dict:
        """Read the inputs in the main thread."""
        raise NotImplementedError

    def compute(self, arguments: dict) -> dict:
        """``{"layers": [layer data tuples], "text": str, "table": dict?}`` from the inputs, in a worker thread."""
        raise NotImplementedError

    def _compute_with_warnings(self, arguments: dict) -> dict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = self.compute(arguments)
        result["warnings"] = list(dict.fromkeys(str(w.message) for w in caught
                                                if not issubclass(w.category, DeprecationWarning)))
        return result

    def _show(self, result: dict) -> None:
        for data, options, kind in result.get("layers", []):
            options = dict(options)
            options["metadata"] = {**options.get("metadata", {}), "microsr_warnings": result["warnings"]}
            name = options.get("name")
            if name in self.viewer.layers:  # a rerun replaces its own output
                self.viewer.layers.remove(name)
            self.viewer.add_image(data, **options)
        for message in result["warnings"]:
            show_warning(f"microsr {self.title}: {message}")
        if result.get("table"):
            self.show_table(result["table"])
        said = f" — {len(result['warnings'])} warning(s): " + " | ".join(result["warnings"]) if result["warnings"] else ""
        self.status.value = f"{self.title}: {result.get('text', 'done')}{said}"
        self.result = result
        self.done = True

    def show_table(self, values: dict) -> None:
        rows = {"quantity": list(values), "value": [_fmt(v) for v in values.values()]}
        table = Table(value=rows)
        self.viewer.window.add_dock_widget(table, name=f"microsr {self.title} metrics", area="right")

    def _failed(self, error) -> None:
        message = str(error) if isinstance(error, MicrosrError) else f"{error.__class__.__name__}: {error}"
        self.status.value = f"{self.title} failed: {message}"
        self.result = {"error": message}
        self.done = True


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _frames(layer, pixel: float | None, what: str) -> tuple[np.ndarray, float]:
    if pixel is None:
        raise InputError(f"the layer {layer.name!r} has no pixel size: set its scale in nm (or open the file with "
                         f"microsr's reader), or give the pixel size in the widget ({what})")
    return np.asarray(layer.data, dtype=np.float32), float(pixel)


class SIMWidget(_RunWidget):
    """SIM: estimate the pattern from raw frames (A·P, Y, X) and Wiener-reconstruct them."""

    title = "SIM"

    def fields(self):
        self.raw = self.layer_combo("raw frames")
        self.pixel = FloatSpinBox(label="pixel size (nm, 0: the layer's)", value=0.0, min=0.0, max=1000.0)
        self.na = FloatSpinBox(label="NA", value=1.35, min=0.1, max=1.7, step=0.05)
        self.wavelength = FloatSpinBox(label="emission (nm)", value=525.0, min=300.0, max=1000.0)
        self.wiener = FloatSpinBox(label="Wiener weight", value=0.05, min=0.0, max=10.0, step=0.01)
        self.angles = ComboBox(label="orientations × phases", choices=["3 × 3", "3 × 5"], value="3 × 3")
        return [self.raw, self.pixel, self.na, self.wavelength, self.wiener, self.angles]

    def collect(self):
        layer = self.layer(self.raw)
        if layer is None:
            raise InputError("choose the layer of raw SIM frames")
        frames, pixel = _frames(layer, self.pixel.value or layer_pixel_size_nm(layer), "pixel size")
        phases = 5 if self.angles.value == "3 × 5" else 3
        background = (layer.metadata or {}).get("background")
        return {"frames": frames, "pixel": pixel, "phases": phases, "background": background, "na": self.na.value,
                "wavelength": self.wavelength.value, "wiener": self.wiener.value, "name": layer.name}

    def compute(self, a):
        stack = to_tapyx(a["frames"], angles=3, phases=a["phases"])
        background = a["background"] if a["background"] is not None else resolve_background(stack, "auto")
        sim = SIMReconstructor.from_settings(pixel_size_nm=a["pixel"], na=a["na"], wavelength_nm=a["wavelength"],
                                             wiener_weight=a["wiener"], background=background)
        params = sim.estimate(np.asarray(stack[0]))
        image = sim.reconstruct(np.asarray(stack), params)
        orientations = [{"angle_deg": round(float(np.degrees(o.angle_rad)), 2), "spacing_nm": round(o.spacing_nm, 1),
                         "modulation": round(o.modulation, 3)} for o in params.orientations]
        table = {f"orientation {i + 1}": f"{o['angle_deg']}°, {o['spacing_nm']} nm, m = {o['modulation']}"
                 for i, o in enumerate(orientations)}
        return {"layers": [image_layer(image if image.shape[0] > 1 else image[0], a["pixel"] / 2,
                                       f"{a['name']} SIM", metadata={"pattern": orientations})],
                "text": "pattern: " + "; ".join(f"{o['angle_deg']}° {o['spacing_nm']} nm m={o['modulation']}"
                                                 for o in orientations), "table": table}


class RDLWidget(_RunWidget):
    """rDL SIM: denoise raw SIM frames with the pattern in the loop, then reconstruct."""

    title = "rDL SIM"

    def fields(self):
        self.raw = self.layer_combo("raw frames")
        self.model = ComboBox(label="model", choices=shipped_models("rdl"))
        self.pixel = FloatSpinBox(label="pixel size (nm, 0: the layer's)", value=0.0, min=0.0, max=1000.0)
        return [self.raw, self.model, self.pixel]

    def collect(self):
        layer = self.layer(self.raw)
        if layer is None:
            raise InputError("choose the layer of raw SIM frames")
        frames, pixel = _frames(layer, self.pixel.value or layer_pixel_size_nm(layer), "pixel size")
        return {"frames": frames, "pixel": pixel, "model": self.model.value, "name": layer.name,
                "background": (layer.metadata or {}).get("background")}

    def compute(self, a):
        model = RDLSIM.from_pretrained(a["model"], device="cpu")
        stack = to_tapyx(a["frames"], angles=model.acquisition["angles"], phases=model.acquisition["phases"])
        background = a["background"] if a["background"] is not None else resolve_background(stack, "auto")
        result = model.predict(np.asarray(stack[0]), background=background, pixel_size_nm=a["pixel"])
        index = result.artifact_index
        return {"layers": [image_layer(result.sim, a["pixel"] / 2, f"{a['name']} rDL SIM",
                                       metadata={"residual_pattern_index": index})],
                "text": f"residual pattern index {index}"}


class SFSRMWidget(_RunWidget):
    """SFSRM: super-resolve a widefield image; the ensemble's disagreement map comes with it."""

    title = "SFSRM"

    def fields(self):
        self.image = self.layer_combo("widefield")
        self.model = ComboBox(label="model", choices=shipped_models("sfsrm"))
        self.pixel = FloatSpinBox(label="pixel size (nm, 0: the layer's)", value=0.0, min=0.0, max=1000.0)
        return [self.image, self.model, self.pixel]

    def collect(self):
        layer = self.layer(self.image)
        if layer is None:
            raise InputError("choose the widefield layer")
        image, pixel = _frames(layer, self.pixel.value or layer_pixel_size_nm(layer), "pixel size")
        if image.ndim != 2:
            raise InputError(f"the layer {layer.name!r} has shape {image.shape}: give one 2-D widefield frame")
        return {"image": image, "pixel": pixel, "model": self.model.value, "name": layer.name}

    def compute(self, a):
        model = loaded_model(a["model"], "cpu")
        result = model.predict(a["image"], pixel_size_nm=a["pixel"])
        layers = [image_layer(result.sr, result.pixel_size_nm, f"{a['name']} SFSRM",
                              metadata={"input_check": result.input_check})]
        text = "fits the training range" if not result.input_check else "input outside the training range: " + \
            ", ".join(f["quantity"] for f in result.input_check)
        if result.disagreement is not None:
            relative = relative_disagreement(result.disagreement, result.sr)
            layers.append(image_layer(result.disagreement, result.pixel_size_nm, f"{a['name']} SFSRM disagreement",
                                      colormap="magma", blending="additive", visible=True,
                                      metadata={"relative_disagreement": relative}))
            text += f"; disagreement per unit of signal {relative:.2f} (~0.15 on inputs like the training data)"
        return {"layers": layers, "text": text}


class SelfSupWidget(_RunWidget):
    """TiS/SiS-rDL: denoise a lattice light-sheet volume (Z, Y, X) or time series (T, Z, Y, X)."""

    title = "self-supervised denoising"

    def fields(self):
        self.stack = self.layer_combo("volume or stack")
        self.model = ComboBox(label="model", choices=shipped_models("selfsup"))
        return [self.stack, self.model]

    def collect(self):
        layer = self.layer(self.stack)
        if layer is None:
            raise InputError("choose the volume layer")
        data = np.asarray(layer.data, dtype=np.float32)
        if data.ndim not in (3, 4):
            raise InputError(f"the layer {layer.name!r} has shape {data.shape}: give a (Z, Y, X) volume or a "
                             "(T, Z, Y, X) stack")
        scale = list(layer.scale)
        return {"data": data, "model": self.model.value, "name": layer.name, "pixel": layer_pixel_size_nm(layer),
                "z_step": float(scale[-3]) if str(layer.units[-3]) in ("nm", "nanometer") else None}

    def compute(self, a):
        denoiser = SelfSupDenoiser.from_pretrained(a["model"], device="cpu")
        volumes = a["data"] if a["data"].ndim == 4 else a["data"][None]
        background, scale = denoiser.measure(volumes)  # the whole recording normalized alike, as training did
        out = np.stack([denoiser.denoise_volume(v, background=background, scale=scale) for v in volumes])
        out = out if a["data"].ndim == 4 else out[0]
        return {"layers": [image_layer(out, a["pixel"], f"{a['name']} denoised", z_step_nm=a["z_step"])],
                "text": f"{len(volumes)} volume(s) denoised"}


class EvaluateWidget(_RunWidget):
    """Evaluate an SR image: fidelity against a reference, resolution, HAWKMAN and SQUIRREL maps as layers."""

    title = "evaluate"

    def fields(self):
        self.sr = self.layer_combo("SR image")
        self.reference = self.layer_combo("reference (optional)", optional=True)
        self.widefield = self.layer_combo("widefield (optional)", optional=True)
        return [self.sr, self.reference, self.widefield]

    def collect(self):
        pictures = {}
        for key, combo in (("sr", self.sr), ("reference", self.reference), ("widefield", self.widefield)):
            layer = self.layer(combo)
            if layer is None:
                if key == "sr":
                    raise InputError("choose the SR image layer")
                continue
            image, pixel = _frames(layer, layer_pixel_size_nm(layer), f"{key} pixel size")
            if image.ndim != 2:
                raise InputError(f"the layer {layer.name!r} has shape {image.shape}: evaluate takes 2-D images")
            pictures[key] = Picture(key, image.astype(np.float64), pixel)
        return {"pictures": pictures, "name": self.sr.value}

    def compute(self, a):
        pictures = dict(a["pictures"])
        sr = pictures.pop("sr")
        result = evaluate(sr, **pictures)
        layers = [image_layer(values, pixel, f"{name} ({a['name']})", colormap="magma",
                              blending="additive", visible=False)
                  for name, (values, pixel) in result.maps.items()]
        table = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str)) and v is not None}
        return {"layers": layers, "table": table, "text": f"{len(table)} metrics, {len(layers)} maps"}
