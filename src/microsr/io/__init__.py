"""File input/output: images and stacks with pixel size and axes, raw SIM layouts, atomic writes."""

from microsr.io.images import ImageData, check_finite, image_format, image_notes, read_image, write_image
from microsr.io.sim_layout import LazySIMStack, to_tapyx
from microsr.io.stack import StackWriter, open_stack

__all__ = ["ImageData", "LazySIMStack", "StackWriter", "check_finite", "image_format", "image_notes", "open_stack",
           "read_image", "to_tapyx", "write_image"]
