"""napari tests need napari (the microsr[napari] extra) and a display: `make test` runs them under xvfb-run."""

import os

import pytest

pytest.importorskip("napari")
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip("no display: run under xvfb-run (make test does)", allow_module_level=True)


@pytest.fixture
def screenshot(request):
    """Save the viewer as PNG into $MICROSR_SCREENSHOTS (if set), named after the test: what a person looks at."""
    folder = os.environ.get("MICROSR_SCREENSHOTS")

    def save(viewer, name=None):
        if folder:
            os.makedirs(folder, exist_ok=True)
            viewer.window._qt_window.resize(1500, 900)
            viewer.reset_view()
            viewer.screenshot(os.path.join(folder, f"{name or request.node.name}.png"), canvas_only=False)
    return save
