"""The CNN operations of the ENAS macro and micro spaces, built as the official code builds them.

:func:`make_micro_op` and :func:`make_macro_op` return a module that maps ``(N, C, H, W)`` to
``(N, C, H, W)`` (stride 1, "same" padding). The two spaces share op names but not op bodies:
a micro separable conv is two ReLU-sepconv-BN in a row (``micro_child.py``), a macro branch
starts with a 1x1 conv-BN-ReLU and ends its convolutions with BN-ReLU (``general_child.py``).

Parameters are created empty and initialized from ``generator`` (the default generator when it
is ``None``), so building a supernet never touches the global RNG when a generator is given.

Batch normalization uses batch statistics in training and evaluation alike
(``track_running_stats=False``), as the official ENAS micro search does
(``fused_batch_norm(..., is_training=True)`` in ``micro_child.py``): running statistics would
average over every architecture that shares the layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.spaces._enas import MACRO_OPS
from optuna_enas.spaces._enas import MICRO_OPS


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
    """ReLU, depthwise ``kernel_size`` conv, pointwise 1x1 conv, batch norm: one separable conv.

    One ``stack_{i}`` of the official micro ``_enas_conv`` (``src/cifar10/micro_child.py``,
    lines 585-622 of melodyguan/enas): ``relu``, ``separable_conv2d``, ``fused_batch_norm``.

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


class StackedSepConv(nn.Module):
    """``n_stack`` :class:`SepConvBN` in a row: the micro search's separable-conv op.

    The official micro child stacks two (``_enas_conv(..., stack_conv=2)``,
    ``src/cifar10/micro_child.py`` line 580 of melodyguan/enas; the fixed-architecture child
    the same, ``_fixed_conv(..., stack_convs=2)``, line 342), each with its own weights.

    Args:
        channels: Input and output channels.
        kernel_size: Odd kernel size of the depthwise convolutions.
        n_stack: Separable convolutions in the stack (2 as ENAS).
        generator: Generator for the weight initialization.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        *,
        n_stack: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        n_stack = check_int("n_stack", n_stack)
        self.stack = nn.ModuleList(
            SepConvBN(channels, kernel_size, generator=generator) for _ in range(n_stack)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.stack:
            x = conv(x)
        return x


class _InputConv(nn.Module):
    """1x1 convolution, batch norm, ReLU: the input stage of every official macro branch."""

    def __init__(self, channels: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.weight = conv_weight(channels, channels, 1, generator=generator)
        self.bn = batch_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(F.conv2d(x, self.weight)))


class MacroConvBranch(nn.Module):
    """An official macro conv branch: 1x1 conv-BN-ReLU, then KxK conv (or separable)-BN-ReLU.

    As ``_conv_branch`` of ``src/cifar10/general_child.py`` (melodyguan/enas, lines 483-544,
    search mode with ``whole_channels``): ``inp_conv_1`` (1x1 conv, batch norm, ReLU), then
    ``out_conv_{K}`` (a ``K``x``K`` convolution, or a depthwise ``K``x``K`` plus pointwise
    convolution when ``separable``), batch norm and ReLU. No ReLU comes before the 1x1 conv.

    Args:
        channels: Input and output channels.
        kernel_size: Odd kernel size (3 or 5 in ENAS).
        separable: Depthwise-separable ``K``x``K`` convolution instead of a full one.
        generator: Generator for the weight initialization.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        *,
        separable: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_channels("channels", channels)
        _check_kernel_size(kernel_size)
        self.channels = channels
        self.separable = bool(separable)
        self.padding = kernel_size // 2
        self.inp = _InputConv(channels, generator)
        if self.separable:
            self.depthwise = conv_weight(channels, 1, kernel_size, generator=generator)
            self.pointwise = conv_weight(channels, channels, 1, generator=generator)
        else:
            self.weight = conv_weight(channels, channels, kernel_size, generator=generator)
        self.bn = batch_norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        if self.separable:
            x = F.conv2d(x, self.depthwise, padding=self.padding, groups=self.channels)
            x = F.conv2d(x, self.pointwise)
        else:
            x = F.conv2d(x, self.weight, padding=self.padding)
        return F.relu(self.bn(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, padding={self.padding}, separable={self.separable}"


class MacroPoolBranch(nn.Module):
    """An official macro pool branch: 1x1 conv-BN-ReLU, then 3x3 stride-1 pooling.

    As ``_pool_branch`` of ``src/cifar10/general_child.py`` (melodyguan/enas, lines 546-588):
    ``conv_1`` (1x1 conv, batch norm, ReLU), then average or max pooling with "SAME" padding.

    Args:
        channels: Input and output channels.
        mode: ``"avg"`` or ``"max"``.
        generator: Generator for the weight initialization.
    """

    def __init__(
        self, channels: int, mode: str, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        _check_channels("channels", channels)
        if mode not in ("avg", "max"):
            raise ValueError(f"mode must be 'avg' or 'max', but got {mode!r}.")
        self.mode = mode
        self.inp = _InputConv(channels, generator)
        self.pool = _pool(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.inp(x))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def _pool(mode: str) -> nn.Module:
    # TF "SAME" average pooling, as in ENAS, does not count the padding.
    if mode == "avg":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return nn.MaxPool2d(3, stride=1, padding=1)


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


def make_micro_op(
    name: str,
    channels: int,
    *,
    sep_stack: int = 2,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """The micro-search op ``name`` for ``channels`` channels (names of ``MICRO_OPS``).

    ``sep3x3``/``sep5x5`` are :class:`StackedSepConv` of ``sep_stack`` separable convs;
    pooling is 3x3 stride 1 (the cell's inputs are already calibrated to ``channels``, so the
    official 1x1 conv after pooling, used only when channels differ, never applies);
    ``identity`` returns its input (``_enas_cell``, ``src/cifar10/micro_child.py`` lines
    519-577 of melodyguan/enas).

    Raises:
        ValueError: ``name`` is not a micro op, or ``channels`` / ``sep_stack`` is not a
            positive integer.
    """
    if name not in MICRO_OPS:
        raise ValueError(f"name must be one of {list(MICRO_OPS)}, but got {name!r}.")
    _check_channels("channels", channels)
    sep_stack = check_int("sep_stack", sep_stack)
    if name in ("sep3x3", "sep5x5"):
        size = 3 if name == "sep3x3" else 5
        return StackedSepConv(channels, size, n_stack=sep_stack, generator=generator)
    if name in ("avgpool", "maxpool"):
        return _pool(name[:3])
    return nn.Identity()


def make_macro_op(
    name: str, channels: int, *, generator: torch.Generator | None = None
) -> nn.Module:
    """The macro-search branch ``name`` for ``channels`` channels (names of ``MACRO_OPS``).

    Every branch starts with the official 1x1 conv-BN-ReLU (:class:`MacroConvBranch`,
    :class:`MacroPoolBranch`), in the official order ``branch_0..5`` of ``_enas_layer``
    (``src/cifar10/general_child.py`` lines 268-293 of melodyguan/enas).

    Raises:
        ValueError: ``name`` is not a macro op, or ``channels`` is not a positive integer.
    """
    if name not in MACRO_OPS:
        raise ValueError(f"name must be one of {list(MACRO_OPS)}, but got {name!r}.")
    _check_channels("channels", channels)
    if name in ("avgpool", "maxpool"):
        return MacroPoolBranch(channels, name[:3], generator=generator)
    size = 3 if name.endswith("3x3") else 5
    return MacroConvBranch(channels, size, separable=name.startswith("sep"), generator=generator)
