"""microsr: super-resolution microscopy checked against the physics."""
__version__ = "0.1.0"
