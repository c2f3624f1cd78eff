"""Neural networks of microsr: one ``nn.Module`` architecture per file, configured by its hyper-parameters."""

from microsr.nets.discriminator import UNetDiscriminator
from microsr.nets.rrdb import RRDBNet
from microsr.nets.vgg import VGG19_LAYER_NAMES, VGG19Features

__all__ = ["RRDBNet", "UNetDiscriminator", "VGG19Features", "VGG19_LAYER_NAMES"]
