"""Inception-v3 feature network for FID, loaded from a local weight file only.

The network is torchvision's ``Inception3`` (Szegedy et al. 2016, "Rethinking the Inception
Architecture for Computer Vision"). When torchvision imports, its own
``inception_v3(weights=None, aux_logits=False, init_weights=False)`` is used; otherwise
:class:`InceptionV3` below rebuilds the same network with identical module and parameter names and
shapes (``Conv2d_1a_3x3.conv.weight``, ``Mixed_7c.branch_pool.bn.running_var``, ...), so
torchvision's weight file ``inception_v3_google-0cc3c7bd.pth`` loads into either with
``strict=True``. The auxiliary classifier (``AuxLogits.*``) is not built and its keys are ignored
when loading; the final classifier ``fc`` (``fc.weight``, ``fc.bias``) is kept so the state dict
matches torchvision's, although FID only uses the 2048-d pool3 features in front of it.

Weights are never downloaded: see :func:`resolve_weights` for where they are looked up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ENV_VAR",
    "WEIGHTS_FILE",
    "WEIGHTS_URL",
    "InceptionV3",
    "build_inception",
    "load_state_dict_file",
    "pool3_features",
    "resolve_weights",
]

#: torchvision's file name for the Inception-v3 ImageNet weights ported from TensorFlow.
WEIGHTS_FILE = "inception_v3_google-0cc3c7bd.pth"
#: Where torchvision downloads that file from (fetch it on a machine with internet access).
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
#: Environment variable naming a local weight file.
ENV_VAR = "GALWIDGETS_INCEPTION_WEIGHTS"

#: Modules of the pool3 trunk, in forward order (names shared with torchvision's Inception3).
TRUNK = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
    "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001) and ReLU: ``.conv`` and ``.bn``."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(*layers: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(x)
        return x

    return run


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


def _max3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=2)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (Mixed_5b-d)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(self.branch5x5_1, self.branch5x5_2)(x),
            _chain(self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3)(x),
            self.branch_pool(_avg3(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            _chain(self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3)(x),
            _max3(x),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b-e)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c = channels_7x7
        row, col = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c, c, **row)
        self.branch7x7_3 = BasicConv2d(c, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c, c, **col)
        self.branch7x7dbl_3 = BasicConv2d(c, c, **row)
        self.branch7x7dbl_4 = BasicConv2d(c, c, **col)
        self.branch7x7dbl_5 = BasicConv2d(c, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = _chain(self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5)
        return torch.cat([
            self.branch1x1(x),
            _chain(self.branch7x7_1, self.branch7x7_2, self.branch7x7_3)(x),
            dbl(x),
            self.branch_pool(_avg3(x)),
        ], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = _chain(self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4)
        return torch.cat([_chain(self.branch3x3_1, self.branch3x3_2)(x), seven(x), _max3(x)], dim=1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3 / 3x1 filter banks (Mixed_7b, Mixed_7c)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        row, col = {"kernel_size": (1, 3), "padding": (0, 1)}, {"kernel_size": (3, 1), "padding": (1, 0)}
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(_avg3(x)),
        ], dim=1)


class InceptionV3(nn.Module):
    """torchvision's ``Inception3`` without the auxiliary classifier, for 299x299 inputs.

    ``forward`` returns the 1000 ImageNet logits like torchvision's in eval mode (no input
    transform: see :func:`pool3_features` for the preprocessing); FID uses :func:`pool3_features`.
    Parameters are left at PyTorch's default initialisation: load weights before use.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.5)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(pool3_features(self, x)))


def pool3_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """2048-d pool3 features of an Inception3 (ours or torchvision's) for inputs in ``[-1, 1]``.

    ``x`` is ``(N, 3, 299, 299)`` scaled to ``[-1, 1]``, which is what the TensorFlow-ported
    weights expect: torchvision feeds them ImageNet-normalised images and its
    ``transform_input=True`` maps those back to ``(x_01 - 0.5) / 0.5``, so ``2 * x_01 - 1`` is
    the same input without the round trip.
    """
    for name in TRUNK:
        x = getattr(net, name)(x)
    return torch.flatten(net.avgpool(x), 1)


def build_inception() -> nn.Module:
    """Uninitialised-for-use Inception-v3: torchvision's if it imports, else :class:`InceptionV3`."""
    try:
        from torchvision.models import inception_v3
    except Exception:  # not installed, or a build that does not match this torch
        return InceptionV3()
    return inception_v3(weights=None, aux_logits=False, init_weights=False)


def resolve_weights(weights: str | os.PathLike | None = None) -> Path:
    """Path of the Inception weight file: ``weights``, else ``$GALWIDGETS_INCEPTION_WEIGHTS``,
    else torchvision's cache ``torch.hub.get_dir()/checkpoints/inception_v3_google-0cc3c7bd.pth``.

    Raises
    ------
    FileNotFoundError
        If the chosen file does not exist; the message says where to put it and where to get it.
    """
    cache = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if weights is not None:
        path, source = Path(weights).expanduser(), "weights"
    elif os.environ.get(ENV_VAR):
        path, source = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        path, source = cache, "the torch hub cache"
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"{source}: Inception-v3 weight file not found at {path}. galwidgets never downloads at run "
        f"time. On a machine with internet access download {WEIGHTS_URL} (torchvision's ImageNet "
        f"weights, about 104 MB) and copy it to {cache}, or pass its path as weights=... or set "
        f"the environment variable {ENV_VAR}. A torchvision installation that already downloaded "
        f"inception_v3(weights='IMAGENET1K_V1') keeps the file at that cache path."
    )


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, without unpickling objects."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights: {path} does not hold a state dict of tensors")
    return state
