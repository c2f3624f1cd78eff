"""Neural networks of microsr: one ``nn.Module`` architecture per file, configured by its hyper-parameters."""

from microsr.nets.dfcan import DFCAN, FourierChannelAttention
from microsr.nets.discriminator import UNetDiscriminator
from microsr.nets.patch_discriminator import PatchDiscriminator
from microsr.nets.rcan3d import RCAN3D
from microsr.nets.rdl_denoiser import RDLDenoiser
from microsr.nets.rrdb import RRDBNet
from microsr.nets.unet import UNet
from microsr.nets.vgg import VGG19_LAYER_NAMES, VGG19Features

__all__ = ["DFCAN", "RCAN3D", "VGG19_LAYER_NAMES", "FourierChannelAttention", "PatchDiscriminator", "RDLDenoiser",
           "RRDBNet", "UNet", "UNetDiscriminator", "VGG19Features"]
