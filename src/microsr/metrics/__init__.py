"""Quality control: fidelity, resolution and confidence metrics of super-resolution images."""
