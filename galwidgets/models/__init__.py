"""Neural networks: the ε-prediction U-Net (and, later, the comparison models)."""

from .unet import UNet, timestep_embedding

MODELS = {"UNet": UNet}

__all__ = ["MODELS", "UNet", "timestep_embedding"]
