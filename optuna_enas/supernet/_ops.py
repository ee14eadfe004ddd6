"""A typed registry of the CNN operations of the ENAS macro and micro spaces.

Every factory takes ``(channels, generator)`` and returns a module that maps ``(N, C, H, W)`` to
``(N, C, H, W)`` (stride 1, "same" padding). Parameters are created empty and initialized from
``generator`` (the default generator when it is ``None``), so building a supernet never touches
the global RNG when a generator is given.

Batch normalization uses batch statistics in training and evaluation alike
(``track_running_stats=False``), as the official ENAS micro search does
(``fused_batch_norm(..., is_training=True)`` in ``micro_child.py``): running statistics would
average over every architecture that shares the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Mapping
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn


OpFactory = Callable[[int, "torch.Generator | None"], nn.Module]
"""``factory(channels, generator) -> module``: a stride-1 op from ``channels`` to ``channels``."""


def _check_channels(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, but got {value!r}.")
    return value


def _check_kernel_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 != 1:
        raise ValueError(f"kernel_size must be an odd positive integer, but got {value!r}.")
    return value


def check_images(x: torch.Tensor, in_channels: int) -> None:
    """Raise a ValueError unless ``x`` is an image batch ``(N, in_channels, H, W)``."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"x must have shape (N, {in_channels}, H, W), but got {tuple(x.shape)}.")


def classifier(
    n_classes: int, channels: int, generator: torch.Generator | None
) -> tuple[nn.Parameter, nn.Parameter]:
    """Weight and bias of the final linear layer, weight uniform in +-1/sqrt(channels)."""
    weight = nn.Parameter(torch.empty(n_classes, channels))
    bound = 1.0 / math.sqrt(channels)
    nn.init.uniform_(weight, -bound, bound, generator=generator)
    return weight, nn.Parameter(torch.zeros(n_classes))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Affine batch norm that always normalizes with the statistics of the current batch."""
    return nn.BatchNorm2d(channels, track_running_stats=False)


def conv_weight(
    out_channels: int,
    in_channels: int,
    kernel_size: int,
    *,
    generator: torch.Generator | None = None,
) -> nn.Parameter:
    """A He-normal (fan-in) convolution weight, as ENAS's ``create_weight`` default."""
    weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=generator)
    return nn.Parameter(weight)


class ReLUConvBN(nn.Module):
    """ReLU, then a ``kernel_size`` convolution with "same" padding, then batch norm.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel size (1, 3 or 5 in ENAS).
        generator: Generator for the weight initialization.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_channels("in_channels", in_channels)
        _check_channels("out_channels", out_channels)
        _check_kernel_size(kernel_size)
        self.padding = kernel_size // 2
        self.weight = conv_weight(out_channels, in_channels, kernel_size, generator=generator)
        self.bn = batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.conv2d(F.relu(x), self.weight, padding=self.padding))


class SepConvBN(nn.Module):
    """ReLU, depthwise ``kernel_size`` conv, pointwise 1x1 conv, batch norm (ENAS ``separable``).

    ENAS's micro search stacks two of these per op (``stack_conv=2``); this is one, as in the
    macro search's separable branch.

    Args:
        channels: Input and output channels.
        kernel_size: Odd kernel size of the depthwise convolution.
        generator: Generator for the weight initialization.
    """

    def __init__(
        self, channels: int, kernel_size: int, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        _check_channels("channels", channels)
        _check_kernel_size(kernel_size)
        self.channels = channels
        self.padding = kernel_size // 2
        self.depthwise = conv_weight(channels, 1, kernel_size, generator=generator)
        self.pointwise = conv_weight(channels, channels, 1, generator=generator)
        self.bn = batch_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(F.relu(x), self.depthwise, padding=self.padding, groups=self.channels)
        return self.bn(F.conv2d(x, self.pointwise))


class FactorizedReduce(nn.Module):
    """Halve the spatial size without dropping pixels (ENAS ``_factorized_reduction``).

    Two stride-2 1x1 convolutions, the second on the input shifted by one pixel, each giving
    half of ``out_channels``; their concatenation is batch-normalized. Odd sizes round up.

    Args:
        in_channels: Input channels.
        out_channels: Output channels; must be even.
        generator: Generator for the weight initialization.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        _check_channels("in_channels", in_channels)
        _check_channels("out_channels", out_channels)
        if out_channels % 2 != 0:
            raise ValueError(f"out_channels must be even, but got {out_channels!r}.")
        self.path1 = conv_weight(out_channels // 2, in_channels, 1, generator=generator)
        self.path2 = conv_weight(out_channels // 2, in_channels, 1, generator=generator)
        self.bn = batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = F.conv2d(x, self.path1, stride=2)
        p2 = F.conv2d(F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:], self.path2, stride=2)
        return self.bn(torch.cat([p1, p2], dim=1))


def _conv3x3(channels: int, generator: torch.Generator | None) -> nn.Module:
    return ReLUConvBN(channels, channels, 3, generator=generator)


def _conv5x5(channels: int, generator: torch.Generator | None) -> nn.Module:
    return ReLUConvBN(channels, channels, 5, generator=generator)


def _sep3x3(channels: int, generator: torch.Generator | None) -> nn.Module:
    return SepConvBN(channels, 3, generator=generator)


def _sep5x5(channels: int, generator: torch.Generator | None) -> nn.Module:
    return SepConvBN(channels, 5, generator=generator)


def _avgpool(channels: int, generator: torch.Generator | None) -> nn.Module:
    # TF "SAME" average pooling, as in ENAS, does not count the padding.
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def _maxpool(channels: int, generator: torch.Generator | None) -> nn.Module:
    return nn.MaxPool2d(3, stride=1, padding=1)


def _identity(channels: int, generator: torch.Generator | None) -> nn.Module:
    return nn.Identity()


OPS: Mapping[str, OpFactory] = MappingProxyType(
    {
        "conv3x3": _conv3x3,
        "conv5x5": _conv5x5,
        "sep3x3": _sep3x3,
        "sep5x5": _sep5x5,
        "avgpool": _avgpool,
        "maxpool": _maxpool,
        "identity": _identity,
    }
)
"""Op name to factory; the names are those of ``MACRO_OPS`` and ``MICRO_OPS``."""


def make_op(name: str, channels: int, *, generator: torch.Generator | None = None) -> nn.Module:
    """Build the op ``name`` for ``channels`` channels.

    Raises:
        ValueError: ``name`` is not in :data:`OPS` or ``channels`` is not a positive integer.
    """
    if name not in OPS:
        raise ValueError(f"name must be one of {sorted(OPS)}, but got {name!r}.")
    return OPS[name](_check_channels("channels", channels), generator)
