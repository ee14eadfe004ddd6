"""Elastic layers: one weight tensor at the largest size serves every width and kernel size.

A width below the maximum uses the first ``width`` output channels (a prefix slice of the weight,
bias and batch-norm statistics); a kernel size below the maximum uses the centre crop of the
largest kernel (Once-for-All, Cai et al. ICLR 2020, Sec. 3.2, without its kernel transformation
matrices). The input width is read from the declared ``in_channels`` / ``in_features`` (an int
or the ``ValueChoice`` of the layer before), so :meth:`Supernet.export` can build the plain
layer.

Each weight is stored as a grid of parameters (:class:`ChunkGrid`) split at the widths its
``ValueChoice`` can take, so a path that uses a prefix width builds gradients, momentum and
weight decay for that prefix only: the rows it does not use stay untouched, as the candidates
of a ``LayerChoice`` that the path does not take. ``layer.weight`` reads the whole tensor.

In mixed mode (DARTS, DSO-NAS) a width is the weighted sum of its prefix slices, computed as
the full-width output times the mask ``m[c] = sum of the weights of the widths > c``
(FBNetV2's channel masking, Wan et al. CVPR 2020); a kernel is the weighted sum of the centre
crops, zero-padded to the largest (one convolution at the largest size).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.nn._choices import ValueChoice
from optuna_enas.nn._choices import max_of
from optuna_enas.nn._choices import resolve


IntOrChoice = int | ValueChoice


def _check(name: str, value: Any, *, odd: bool = False) -> IntOrChoice:
    if isinstance(value, ValueChoice):
        if odd and any(v % 2 == 0 for v in value.values):
            raise ValueError(
                f"{name} must take odd values (centre crops), but ValueChoice "
                f"{value.label!r} has {list(value.values)}."
            )
        return value
    v = check_int(name, value)
    if odd and v % 2 == 0:
        raise ValueError(f"{name} must be odd, but got {value!r}.")
    return v


def width_mask(choice: IntOrChoice, size: int, like: torch.Tensor) -> torch.Tensor | None:
    """The mixed-mode channel mask of ``choice`` (``None`` in discrete mode or for an int)."""
    if not isinstance(choice, ValueChoice):
        return None
    w = choice.mix_weights()
    if w is None:
        return None
    idx = torch.arange(size, device=like.device)
    mask = torch.zeros(size, dtype=like.dtype, device=like.device)
    for j, v in enumerate(choice.values):
        mask = mask + (idx < v).to(like.dtype) * w[j]
    return mask


def _apply_mask(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return y
    shape = [1, -1] + [1] * (y.dim() - 2)
    return y * mask.view(shape)


def _in_width(name: str, declared: IntOrChoice, x: torch.Tensor) -> int:
    want = resolve(declared)
    if x.dim() < 2 or x.shape[1] != want:
        raise ValueError(
            f"{name}: expected an input with {want} channels/features in dimension 1, "
            f"but got shape {tuple(x.shape)}."
        )
    return want


def _splits(choice: IntOrChoice) -> list[int]:
    return sorted(set(choice.values)) if isinstance(choice, ValueChoice) else [choice]


class ChunkGrid(nn.Module):
    """A tensor stored as a grid of parameters, split along dimensions 0 (and 1) at ``rows``
    (and ``cols``), the sorted widths a ``ValueChoice`` can take (its largest last).

    :meth:`prefix` concatenates the chunks of the first ``r`` rows and ``c`` columns, so
    autograd creates gradients only for the chunks a path uses (``r`` and ``c`` must be split
    points). The parameters are ``chunks.0 ... chunks.n`` in row-major order.
    """

    def __init__(self, full: torch.Tensor, rows: list[int], cols: list[int] | None) -> None:
        super().__init__()
        self.rows = list(rows)
        self.cols = list(cols) if cols is not None else None
        if full.shape[0] != self.rows[-1] or (
            self.cols is not None and full.shape[1] != self.cols[-1]
        ):
            raise ValueError(f"ChunkGrid: shape {tuple(full.shape)} does not end at the splits.")
        chunks = []
        r0 = 0
        for r in self.rows:
            if self.cols is None:
                chunks.append(nn.Parameter(full[r0:r].detach().clone()))
            else:
                c0 = 0
                for c in self.cols:
                    chunks.append(nn.Parameter(full[r0:r, c0:c].detach().clone()))
                    c0 = c
            r0 = r
        self.chunks = nn.ParameterList(chunks)

    def _index(self, splits: list[int], n: int, what: str) -> int:
        try:
            return splits.index(n) + 1
        except ValueError:
            raise ValueError(f"ChunkGrid: {what} {n} is not one of the splits {splits}.") from None

    def prefix(self, r: int, c: int | None = None) -> torch.Tensor:
        nr = self._index(self.rows, r, "rows")
        if self.cols is None:
            parts = list(self.chunks[:nr])
            return parts[0] if nr == 1 else torch.cat(parts, 0)
        nc = self._index(self.cols, self.cols[-1] if c is None else c, "columns")
        width = len(self.cols)
        rows = []
        for a in range(nr):
            parts = [self.chunks[a * width + b] for b in range(nc)]
            rows.append(parts[0] if nc == 1 else torch.cat(parts, 1))
        return rows[0] if nr == 1 else torch.cat(rows, 0)

    def full(self) -> torch.Tensor:
        return self.prefix(self.rows[-1], None if self.cols is None else self.cols[-1])


class ElasticConv2d(nn.Module):
    """``nn.Conv2d`` whose output width and kernel size may be :class:`ValueChoice`.

    Padding keeps the spatial size for stride 1 (``dilation * (k - 1) // 2``, "same").

    Args:
        in_channels: Input width (an int, or the ``ValueChoice`` of the layer before).
        out_channels: Output width.
        kernel_size: An odd kernel size.
        stride: Convolution stride.
        dilation: Convolution dilation.
        depthwise: A depthwise convolution (``groups`` = channels; ``out_channels`` must then be
            the same value or ``ValueChoice`` as ``in_channels``).
        bias: Whether the layer has a bias.
    """

    def __init__(
        self,
        in_channels: IntOrChoice,
        out_channels: IntOrChoice,
        kernel_size: IntOrChoice = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = _check("ElasticConv2d in_channels", in_channels)
        self.out_channels = _check("ElasticConv2d out_channels", out_channels)
        self.kernel_size = _check("ElasticConv2d kernel_size", kernel_size, odd=True)
        self.stride = check_int("ElasticConv2d stride", stride)
        self.dilation = check_int("ElasticConv2d dilation", dilation)
        self.depthwise = bool(depthwise)
        if self.depthwise and self.out_channels is not self.in_channels:
            raise ValueError(
                "ElasticConv2d with depthwise=True needs out_channels to be in_channels "
                f"(the same int or ValueChoice), but got {out_channels!r} and {in_channels!r}."
            )
        k = max_of(self.kernel_size)
        cin = 1 if self.depthwise else max_of(self.in_channels)
        # The initialization of nn.Conv2d at the largest size, stored as a grid of chunks.
        ref = nn.Conv2d(cin, max_of(self.out_channels), k, bias=bias)
        self._kmax = k
        rows = _splits(self.out_channels)
        self.weight_grid = ChunkGrid(
            ref.weight, rows, None if self.depthwise else _splits(self.in_channels)
        )
        self.bias_grid = ChunkGrid(ref.bias, rows, None) if ref.bias is not None else None

    @property
    def weight(self) -> torch.Tensor:
        """The whole weight (out, in, k, k) at the largest sizes (a concatenation)."""
        return self.weight_grid.full()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.bias_grid.full() if self.bias_grid is not None else None

    def _padding(self, k: int) -> int:
        return self.dilation * (k - 1) // 2

    def _kernel(self, cout: int, cin: int) -> tuple[torch.Tensor, int]:
        kmax = self._kmax
        w = self.weight_grid.prefix(cout, None if self.depthwise else cin)
        kc = self.kernel_size
        if isinstance(kc, ValueChoice) and kc.is_mixed:
            mix = kc.mix_weights()
            assert mix is not None
            full = None
            for j, k in enumerate(kc.values):
                off = (kmax - k) // 2
                crop = torch.zeros_like(w)
                crop[..., off : off + k, off : off + k] = w[..., off : off + k, off : off + k]
                term = crop * mix[j]
                full = term if full is None else full + term
            assert full is not None
            return full, kmax
        k = resolve(kc)
        off = (kmax - k) // 2
        return w[..., off : off + k, off : off + k], k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = _in_width("ElasticConv2d", self.in_channels, x)
        cout = cin if self.depthwise else resolve(self.out_channels)
        weight, k = self._kernel(cout, cin)
        bias = self.bias_grid.prefix(cout) if self.bias_grid is not None else None
        y = F.conv2d(
            x,
            weight,
            bias,
            stride=self.stride,
            padding=self._padding(k),
            dilation=self.dilation,
            groups=cin if self.depthwise else 1,
        )
        return _apply_mask(y, width_mask(self.out_channels, cout, y))

    def export(self) -> nn.Conv2d:
        """The plain ``nn.Conv2d`` of the active sizes, with the inherited weights."""
        cin = resolve(self.in_channels)
        cout = cin if self.depthwise else resolve(self.out_channels)
        weight, k = self._kernel(cout, cin)
        conv = nn.Conv2d(
            cin,
            cout,
            k,
            stride=self.stride,
            padding=self._padding(k),
            dilation=self.dilation,
            groups=cin if self.depthwise else 1,
            bias=self.bias_grid is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(weight)
            if self.bias_grid is not None and conv.bias is not None:
                conv.bias.copy_(self.bias_grid.prefix(cout))
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, depthwise={self.depthwise}"
        )


class ElasticLinear(nn.Module):
    """``nn.Linear`` whose input and output widths may be :class:`ValueChoice`."""

    def __init__(
        self, in_features: IntOrChoice, out_features: IntOrChoice, *, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_features = _check("ElasticLinear in_features", in_features)
        self.out_features = _check("ElasticLinear out_features", out_features)
        ref = nn.Linear(max_of(self.in_features), max_of(self.out_features), bias=bias)
        rows = _splits(self.out_features)
        self.weight_grid = ChunkGrid(ref.weight, rows, _splits(self.in_features))
        self.bias_grid = ChunkGrid(ref.bias, rows, None) if ref.bias is not None else None

    @property
    def weight(self) -> torch.Tensor:
        """The whole weight (out, in) at the largest sizes (a concatenation)."""
        return self.weight_grid.full()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.bias_grid.full() if self.bias_grid is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        want = resolve(self.in_features)
        if x.shape[-1] != want:
            raise ValueError(
                f"ElasticLinear: expected {want} input features in the last dimension, "
                f"but got shape {tuple(x.shape)}."
            )
        cout = resolve(self.out_features)
        bias = self.bias_grid.prefix(cout) if self.bias_grid is not None else None
        y = F.linear(x, self.weight_grid.prefix(cout, want), bias)
        mask = width_mask(self.out_features, cout, y)
        return y if mask is None else y * mask

    def export(self) -> nn.Linear:
        cin, cout = resolve(self.in_features), resolve(self.out_features)
        lin = nn.Linear(cin, cout, bias=self.bias_grid is not None)
        with torch.no_grad():
            lin.weight.copy_(self.weight_grid.prefix(cout, cin))
            if self.bias_grid is not None and lin.bias is not None:
                lin.bias.copy_(self.bias_grid.prefix(cout))
        return lin

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"


class ElasticBatchNorm2d(nn.Module):
    """``nn.BatchNorm2d`` whose width may be a :class:`ValueChoice` (statistics sliced too).

    The running statistics of width ``w`` are the first ``w`` entries of one set of buffers, as
    in Once-for-All; a path's statistics are best recalibrated before scoring
    (``recalibrate_bn`` of the model evaluator).
    """

    def __init__(
        self,
        num_features: IntOrChoice,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = _check("ElasticBatchNorm2d num_features", num_features)
        n = max_of(self.num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        rows = _splits(self.num_features)
        self.weight_grid = ChunkGrid(torch.ones(n), rows, None) if affine else None
        self.bias_grid = ChunkGrid(torch.zeros(n), rows, None) if affine else None
        self.running_mean: torch.Tensor
        self.running_var: torch.Tensor
        self.num_batches_tracked: torch.Tensor
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @property
    def weight(self) -> torch.Tensor | None:
        return self.weight_grid.full() if self.weight_grid is not None else None

    @property
    def bias(self) -> torch.Tensor | None:
        return self.bias_grid.full() if self.bias_grid is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = _in_width("ElasticBatchNorm2d", self.num_features, x)
        if self.training:
            self.num_batches_tracked.add_(1)
        # A slice of a buffer is a view: F.batch_norm updates the running stats in place.
        y = F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            self.weight_grid.prefix(c) if self.weight_grid is not None else None,
            self.bias_grid.prefix(c) if self.bias_grid is not None else None,
            self.training,
            self.momentum,
            self.eps,
        )
        return _apply_mask(y, width_mask(self.num_features, c, y))

    def export(self) -> nn.BatchNorm2d:
        c = resolve(self.num_features)
        bn = nn.BatchNorm2d(c, eps=self.eps, momentum=self.momentum, affine=self.affine)
        with torch.no_grad():
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.copy_(self.running_mean[:c])
            bn.running_var.copy_(self.running_var[:c])
            assert bn.num_batches_tracked is not None
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
            if self.weight_grid is not None and self.bias_grid is not None:
                bn.weight.copy_(self.weight_grid.prefix(c))
                bn.bias.copy_(self.bias_grid.prefix(c))
        return bn

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
