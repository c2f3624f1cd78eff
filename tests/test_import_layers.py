"""The house's layering holds: imports go one way, train and pipelines never meet, inference never loads Lightning."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "microsr"

#: Layer of each part of the package (README, Layout): a module may import its own layer and those below.
LAYERS = {
    "microsr": 0, "microsr.errors": 0,
    "microsr.io": 1, "microsr.device": 1, "microsr.threads": 1,
    "microsr.optics": 2, "microsr.resample": 2, "microsr.tiling": 2, "microsr.edges": 2, "microsr.nets": 2,
    "microsr.losses": 3, "microsr.sim": 3,
    "microsr.metrics": 4,
    "microsr.synthetic": 5, "microsr.report": 5,
    "microsr.models": 6,
    "microsr.train": 7, "microsr.pipelines": 7,
    "microsr.cli": 8, "microsr.napari_plugin": 8,
}

#: Parts of one layer that must not import each other.
APART = {("microsr.train", "microsr.pipelines"), ("microsr.pipelines", "microsr.train")}

#: Modules allowed to import the package inside functions, with the measured reason in a comment there.
LAZY_ALLOWED = {"microsr.cli"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The entry of LAYERS a module belongs to (its longest matching prefix)."""
    candidates = [name for name in LAYERS if module == name or (name != "microsr" and module.startswith(name + "."))]
    if not candidates:
        raise AssertionError(f"{module} has no layer in LAYERS: give it one (tests/test_import_layers.py)")
    return max(candidates, key=len)


def _imports(path: Path):
    """(imported microsr module, at module top?) for every import in a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base]
            if base == "microsr" or base.startswith("microsr."):
                # `from microsr.models import serialize` names a module, not an attribute
                targets = [f"{base}.{a.name}" if (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/")).with_suffix(".py").exists()
                           or (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/")).is_dir() else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target == "microsr" or target.startswith("microsr."):
                yield target, id(node) in top_level


def _graph():
    return {_module_name(path): list(_imports(path)) for path in PACKAGE.rglob("*.py")}


def _upward(graph) -> list[str]:
    wrong = []
    for module, imports in graph.items():
        for target, _ in imports:
            source_part, target_part = _part(module), _part(target)
            if LAYERS[target_part] > LAYERS[source_part] or (source_part, target_part) in APART:
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


def test_no_module_imports_upwards_and_train_and_pipelines_stay_apart():
    wrong = _upward(_graph())
    assert not wrong, "upward imports: " + "; ".join(wrong)


def test_imports_sit_at_module_top_except_where_start_up_was_measured():
    lazy = sorted({f"{module} imports {target}" for module, imports in _graph().items()
                   for target, top in imports if not top and module not in LAZY_ALLOWED})
    assert not lazy, "imports inside functions: " + "; ".join(lazy)


def _check_cycles(graph) -> None:
    state: dict[str, int] = {}

    def visit(module, trail):
        if state.get(module) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(module):] + [module]))
        if state.get(module) == 2:
            return
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            # importing microsr.a.b runs microsr.a's __init__ first, so that package is imported too, unless
            # the importing module lies inside it (then the package is being initialized already)
            for step in [target.rsplit(".", i)[0] for i in range(target.count("."), -1, -1)]:
                if step != module and step in graph and not module.startswith(step + "."):
                    visit(step, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])


def test_no_import_cycle():
    _check_cycles({module: {target for target, top in imports if top} for module, imports in _graph().items()})


def test_the_checks_see_an_upward_import_a_crossing_and_a_cycle():
    # Guards the guards with a made-up package graph.
    graph = {"microsr.io.images": [("microsr.models.sfsrm", True)], "microsr.train.fit": [("microsr.pipelines.sim", True)],
             "microsr.pipelines.sim": [("microsr.sim.estimate", True)]}
    assert _upward(graph) == ["microsr.io.images imports microsr.models.sfsrm",
                              "microsr.train.fit imports microsr.pipelines.sim"]
    with pytest.raises(AssertionError, match="import cycle: microsr.sim.a -> microsr.sim.b -> microsr.sim.a"):
        _check_cycles({"microsr.sim.a": {"microsr.sim.b"}, "microsr.sim.b": {"microsr.sim.a"}})
    with pytest.raises(AssertionError, match="no layer"):
        _part("microsr.brand_new_module")


PREDICT_EACH_METHOD = textwrap.dedent("""
    import sys
    import numpy as np
    from microsr.pipelines.sfsrm import SFSRM
    from microsr.pipelines.rdl_sim import RDLSIM
    from microsr.pipelines.selfsup import SelfSupDenoiser
    from microsr.pipelines.sim import SIMReconstructor
    from microsr.synthetic import simulate_sim

    SFSRM.from_pretrained("filaments-x4", device="cpu").predict(np.random.default_rng(0).random((32, 32)),
                                                                pixel_size_nm=100)
    data = simulate_sim(shape=(64, 64), photons=50, seed=1)
    background = data.camera.offset_adu + data.camera.background_photons
    RDLSIM.from_pretrained("tirf-sim-3x3", device="cpu").predict(data.raw[0], background=background,
                                                                 params=data.params)
    sim = SIMReconstructor.from_settings(pixel_size_nm=62.6, background=background)
    sim.reconstruct(data.raw[0], sim.estimate(data.raw[0]))
    SelfSupDenoiser.from_pretrained("llsm-vesicles-tis", device="cpu").denoise_volume(np.ones((4, 16, 16)))
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning")))
""")


def test_inference_of_every_method_never_imports_lightning():
    done = subprocess.run([sys.executable, "-c", PREDICT_EACH_METHOD], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
