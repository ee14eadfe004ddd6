"""The shared-weight supernet of the ENAS micro search space (Pham et al., 2018, Sec. 2.4).

The layout follows the official ``micro_child.py`` in search mode:

* stem: 3x3 convolution to ``stem_multiplier * n_filters`` channels, then batch norm; the first
  cell reads the stem output twice;
* ``n_layers + 2`` cells; the cells at ``n_layers // 3`` and ``2 * (n_layers // 3) + 1`` are
  reduction cells (2 and 5 for 6 layers), so ``n_layers`` counts the *normal* cells of the
  whole network (``child_num_layers``), not per stage. A reduction cell doubles the channels;
  it first halves the previous output with a factorized reduction and runs the reduction
  architecture on ``[previous output, reduced output]``, as the official search does;
* each cell first calibrates its two inputs to its channel count and spatial size (ReLU then
  factorized reduction when the sizes differ, ReLU-1x1 conv-BN when only the channels do);
* ``sep3x3``/``sep5x5`` are two ReLU-sepconv-BN in a row, each with its own weights
  (``stack_conv=2``); pooling is 3x3 stride 1, ``identity`` passes its input on;
* weights are shared per (cell position, block, input slot, input, op): block ``b`` owns, for
  each of its two input slots and each possible input ``0..b-1``, one module per op (the
  official code's ``w[prev_cell]`` indexing within the ``x``/``y`` scopes). The two slots'
  results are summed;
* the cell output concatenates the outputs no block reads (the two cell inputs included), then
  applies ReLU, a 1x1 convolution whose input-channel slices are selected from one shared
  ``(C, (B + 2) * C)`` weight by the loose ends, and batch norm (official ``final_conv``);
* head: ReLU, global average pooling, linear classifier.

It is written with the choice primitives of :mod:`optuna_enas.nn`: slot ``k`` of block ``b``
is a lazy :class:`~optuna_enas.nn.InputChoice` labelled ``{cell}_b{b}_in{k}`` over one
:class:`~optuna_enas.nn.LayerChoice` ``{cell}_b{b}_op{k}`` per possible input (only the
chosen input's op runs), with the labels of :class:`~optuna_enas.MicroSpace`; every normal
cell uses the same labels (one decision), and so does every reduction cell. Weight names:
``model.cells.{p}.branches.{block}.{slot}.{input}.candidates.{op}...``.
"""

from __future__ import annotations

import functools
import re
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.nn._choices import InputChoice
from optuna_enas.nn._choices import LayerChoice
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.supernet._cnn_base import MODEL_PREFIX
from optuna_enas.supernet._cnn_base import CNNSupernet
from optuna_enas.supernet._ops import FactorizedReduce
from optuna_enas.supernet._ops import ReLUConvBN
from optuna_enas.supernet._ops import batch_norm
from optuna_enas.supernet._ops import classifier
from optuna_enas.supernet._ops import conv_weight
from optuna_enas.supernet._ops import make_micro_op


def default_micro_reduction_cells(n_layers: int) -> tuple[int, ...]:
    """ENAS's reduction cells among ``n_layers + 2``: ``n // 3`` and ``2 * (n // 3) + 1``."""
    d = n_layers // 3
    return (d, 2 * d + 1)


class _Cell(nn.Module):
    """One cell position: input calibration, all ops of every block, and the output conv."""

    def __init__(
        self,
        *,
        kind: str,
        space: MicroSpace,
        channels: int,
        prev_prev: tuple[int, bool],
        prev_channels: int,
        sep_stack: int,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        c = channels
        prev_prev_channels, prev_prev_larger = prev_prev
        self.channels = c
        if prev_prev_larger:
            self.calibrate0: nn.Module = nn.Sequential(
                nn.ReLU(), FactorizedReduce(prev_prev_channels, c, generator=generator)
            )
        elif prev_prev_channels != c:
            self.calibrate0 = ReLUConvBN(prev_prev_channels, c, 1, generator=generator)
        else:
            self.calibrate0 = nn.Identity()
        if prev_channels != c:
            self.calibrate1: nn.Module = ReLUConvBN(prev_channels, c, 1, generator=generator)
        else:
            self.calibrate1 = nn.Identity()
        n_nodes = space.n_nodes
        # branches[block][slot][input]: the op choice of that slot when it reads that input;
        # block index 0..B-1 is the space's block b = index + 2, reading inputs 0..b-1.
        self.branches = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleList(
                    LayerChoice(
                        f"{kind}_b{b + 2}_op{slot + 1}",
                        {
                            op: make_micro_op(op, c, sep_stack=sep_stack, generator=generator)
                            for op in space.ops
                        },
                    )
                    for _ in range(b + 2)
                )
                for slot in range(2)
            )
            for b in range(n_nodes)
        )
        # inputs[block][slot]: which input the slot reads; lazy, so only that input's op runs.
        self.inputs = nn.ModuleList(
            nn.ModuleList(
                InputChoice(f"{kind}_b{b + 2}_in{slot + 1}", b + 2, lazy=True) for slot in range(2)
            )
            for b in range(n_nodes)
        )
        self.out_weight = conv_weight(c, (n_nodes + 2) * c, 1, generator=generator)
        self.out_bn = batch_norm(c)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.calibrate0(s0), self.calibrate1(s1)]
        used: set[int] = set()
        mixed = False
        for slots, ops in zip(self.inputs, self.branches, strict=True):
            node: torch.Tensor | None = None
            for slot, candidates in zip(
                cast(nn.ModuleList, slots), cast(nn.ModuleList, ops), strict=True
            ):
                choice = cast(InputChoice, slot)
                ops_of = cast(nn.ModuleList, candidates)
                runs = [functools.partial(op, s) for op, s in zip(ops_of, states, strict=True)]
                y = choice(runs)
                node = y if node is None else node + y
                if choice.is_mixed:
                    mixed = True
                else:
                    used.update(choice.chosen_indices())
            assert node is not None
            states.append(node)
        # Mixed mode (a relaxation): every state is an output, as DARTS's cell.
        loose = [k for k in range(len(states)) if mixed or k not in used]
        c = self.channels
        out = torch.cat([states[k] for k in loose], dim=1)
        weight = torch.cat([self.out_weight[:, k * c : (k + 1) * c] for k in loose], dim=1)
        return self.out_bn(F.conv2d(F.relu(out), weight))


class _MicroNetwork(nn.Module):
    """The micro network with its choices; :class:`MicroSupernet` wraps it."""

    def __init__(
        self,
        space: MicroSpace,
        *,
        in_channels: int,
        n_classes: int,
        n_filters: int,
        n_layers: int,
        stem_multiplier: int,
        sep_stack: int,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.reduction_cells = default_micro_reduction_cells(n_layers)
        stem_c = stem_multiplier * n_filters
        self.stem_weight = conv_weight(stem_c, in_channels, 3, generator=generator)
        self.stem_bn = batch_norm(stem_c)
        cells: list[nn.Module] = []
        reduce_inputs: list[nn.Module] = []
        # (channels, spatial scale) of the two latest outputs.
        prev_prev = (stem_c, 0)
        prev = (stem_c, 0)
        c = n_filters
        for position in range(n_layers + 2):
            reduction = position in self.reduction_cells
            if reduction:
                c *= 2
                reduce_inputs.append(FactorizedReduce(prev[0], c, generator=generator))
                # The cell reads [previous output, its reduction].
                prev_prev, prev = prev, (c, prev[1] + 1)
            cells.append(
                _Cell(
                    kind="reduce" if reduction else "normal",
                    space=space,
                    channels=c,
                    prev_prev=(prev_prev[0], prev_prev[1] < prev[1]),
                    prev_channels=prev[0],
                    sep_stack=sep_stack,
                    generator=generator,
                )
            )
            prev_prev, prev = prev, (c, prev[1])
        self.cells = nn.ModuleList(cells)
        self.reduce_inputs = nn.ModuleList(reduce_inputs)
        self.classifier_weight, self.classifier_bias = classifier(n_classes, c, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem_bn(F.conv2d(x, self.stem_weight, padding=1))
        s0, s1 = s, s
        n_reduce = 0
        for position, cell in enumerate(self.cells):
            if position in self.reduction_cells:
                reduced = self.reduce_inputs[n_reduce](s1)
                n_reduce += 1
                s0, s1 = s1, reduced
            s0, s1 = s1, cell(s0, s1)
        pooled = F.relu(s1).mean(dim=(2, 3))
        return F.linear(pooled, self.classifier_weight, self.classifier_bias)


_LEGACY_BRANCH = re.compile(r"^(cells\.\d+\.branches\.\d+\.\d+\.\d+)\.(.+)$")


class MicroSupernet(CNNSupernet):
    """Shared weights for every network of a :class:`~optuna_enas.MicroSpace`.

    An :class:`optuna_enas.nn.Supernet` (``space``, ``activate``, ``set_mix``, ``export``)
    whose forward also takes the architecture: ``supernet(x, arch)`` activates ``arch`` and
    runs it; ``supernet(x)`` runs the active one. In mixed mode (``set_mix``) every block sums
    its inputs' op mixtures weighted by the input weights, and the cell output concatenates
    every state.

    Args:
        space: The micro search space.
        in_channels: Image channels.
        n_classes: Number of classes.
        n_filters: Channels of the first stage, doubled by each reduction cell. Default 20, as
            ``cifar10_micro_search.sh`` (``child_out_filters``); must be even.
        n_layers: Normal cells in the whole network, as ``child_num_layers`` (default 6: two
            per stage, plus two reduction cells).
        stem_multiplier: The stem has ``stem_multiplier * n_filters`` channels (3 in ENAS).
        sep_stack: Separable convolutions (each ReLU-sepconv-BN) per ``sep3x3``/``sep5x5`` op.
            Default 2, as the official micro child (``stack_conv=2`` in ``_enas_conv``,
            ``src/cifar10/micro_child.py`` line 580 of melodyguan/enas).
        generator: Generator for the initialization (He-normal convolutions, a uniform
            classifier); ``None`` uses the default generator.
    """

    def __init__(
        self,
        space: MicroSpace,
        *,
        in_channels: int = 3,
        n_classes: int = 10,
        n_filters: int = 20,
        n_layers: int = 6,
        stem_multiplier: int = 3,
        sep_stack: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(space, MicroSpace):
            raise ValueError(f"space must be a MicroSpace, but got {space!r}.")
        in_channels = check_int("in_channels", in_channels)
        n_classes = check_int("n_classes", n_classes)
        n_filters = check_int("n_filters", n_filters)
        if n_filters % 2 != 0:
            raise ValueError(f"n_filters must be even, but got {n_filters!r}.")
        n_layers = check_int("n_layers", n_layers)
        stem_multiplier = check_int("stem_multiplier", stem_multiplier)
        sep_stack = check_int("sep_stack", sep_stack)
        network = _MicroNetwork(
            space,
            in_channels=in_channels,
            n_classes=n_classes,
            n_filters=n_filters,
            n_layers=n_layers,
            stem_multiplier=stem_multiplier,
            sep_stack=sep_stack,
            generator=generator,
        )
        super().__init__(network, space, in_channels=in_channels)
        self.n_classes = n_classes
        self.n_filters = n_filters
        self.n_layers = n_layers
        self.stem_multiplier = stem_multiplier
        self.sep_stack = sep_stack
        self.reduction_cells = network.reduction_cells

    @property
    def space(self) -> MicroSpace:
        return cast(MicroSpace, self._space)

    @staticmethod
    def _rename_legacy(key: str) -> str:
        """A key of the layout before the choice primitives (``cells.{p}.branches.{b}.{slot}.
        {input}.{op}...``, no ``model.``) under the current name."""
        m = _LEGACY_BRANCH.match(key)
        if m is not None:
            key = f"{m.group(1)}.candidates.{m.group(2)}"
        return MODEL_PREFIX + key

    def extra_repr(self) -> str:
        return (
            f"n_nodes={self.space.n_nodes}, ops={list(self.space.ops)}, "
            f"n_filters={self.n_filters}, n_layers={self.n_layers}, "
            f"sep_stack={self.sep_stack}, reduction_cells={list(self.reduction_cells)}"
        )


def upgrade_micro_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`MicroSupernet` state dict of the layout before the choice primitives (also the
    names :class:`~optuna_enas.oneshot._relaxed_cnn.RelaxedMicroSupernet` shares) under the
    current names; a current one passes unchanged."""
    return MicroSupernet.upgrade_state_dict(state_dict)
