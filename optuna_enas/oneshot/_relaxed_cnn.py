"""The relaxed ENAS CNN supernets: micro cells and macro layers, for DARTS and DSO-NAS.

Both reuse the discrete supernets' op modules (:func:`~optuna_enas.supernet._ops.make_micro_op`,
:func:`~optuna_enas.supernet._ops.make_macro_op`) and their stems, calibrations, reductions,
batch norms and classifiers, under the same names, so
:meth:`~optuna_enas.oneshot.RelaxedSupernet.discrete_state_dict` feeds the discrete supernet.

**Micro** (:class:`RelaxedMicroSupernet`). Block ``b`` of a cell reads *every* earlier state
``0..b+1``:

* ``"darts"``: edge ``j -> b`` is a mixture of the space's five ops plus zero,
  ``softmax(alpha_cell[e])`` over ``(*ops, zero)`` (DARTS ``MixedOp`` and ``Cell.forward``,
  ``cnn/model_search.py`` lines 10-58 of quark0/darts, one ``alpha`` table for the normal and
  one for the reduction cell, lines 119-128), one module per (edge, op);
* ``"dsonas"``: block ``b`` has one module per op; op ``o`` reads
  ``sum_j lambda_in[e(b, j), o] * state_j`` and the block sums ``lambda_op[b, o] * op_o(...)``:
  one factor per (op, input) before the op and one per op output, every factor initialised
  to 1 (DSO-NAS's search block: ``dsonas_layer`` and ``lambda_after`` in
  ``Cifar/symbol/dsonas_search_full.py`` lines 6-35 and 53-58, ``init_param`` in
  ``Cifar/train_search.py`` lines 57-58 of XinbangZhang/DSO-NAS). An exact zero removes its
  input from the op, or the op from the block. The official block keeps each op output as a
  state of its own; here the block's op outputs are summed into one node, the ENAS block.

Batch norm (darts): DARTS's search cell has no affine batch norm (``MixedOp`` builds
``OPS[primitive](C, stride, False)``, line 16; ``preprocess0/1`` ``affine=False``, lines
31-35); here every batch norm after the stem (calibrations, the ops, the output norm and the
reductions before a reduction cell, which play the part of DARTS's stride-2 edges) is
non-affine, and :meth:`RelaxedMicroSupernet.discrete_state_dict` gives the discrete supernet
the affine norm it equals (weight 1, bias 0). DARTS also follows each pooling op of a mixture
with a non-affine batch norm (lines 17-18); ours does not, so that each term of a mixture is
the term the derived network computes. DSO-NAS's batch norms stay affine, as the official ones
(``Cifar/symbol/operation.py`` line 6: ``fix_gamma`` is off in the search, and MXNet's
``BatchNorm`` always learns its offset).

The discrete supernet has two input slots per block, each with its own modules per (input,
op); :meth:`RelaxedMicroSupernet.discrete_state_dict` copies the edge's (darts) or the block's
(dsonas) op modules into both slots of every input they serve, so the derived architecture
inherits the trained weights whichever slot an input lands in. The relaxed cell output is
ReLU, the 1x1 convolution with the shared ``(C, (B + 2) C)`` ``out_weight`` and batch norm over
the concatenation of *all* ``B + 2`` states (DARTS concatenates the intermediate nodes,
``states[-multiplier:]``; so every slice of ``out_weight`` is trained here). Inside
:meth:`~RelaxedMicroSupernet.projected` every cell instead computes exactly the projected
architecture's discrete cell (:class:`~optuna_enas.supernet.MicroSupernet`'s): each block the
sum of its two picks' ops on their inputs (a block that reads one input twice applies the op
twice), the output over the loose ends only (the states no block reads); dsonas keeps the
kept factors' scale, ``lambda_op[b, o] * op_o(lambda_in[e, o] * state_j)``. Derivation: DARTS
``genotype()._parse`` (lines 135-152): per block the two inputs with the largest non-zero op
weight, each with its strongest op; dsonas the same on ``|lambda_in[e, o] * lambda_op[b, o]|``,
inputs whose products are all 0 excluded; a block with fewer than two surviving inputs is
filled with the previous state (index ``b + 1``) and the first op, counted in
``arch_summary()["derive_fallbacks"]``.

**Macro** (:class:`RelaxedMacroSupernet`). Layer ``i`` applies every op of the space to the
previous layer's output and mixes them (darts: ``softmax(alpha_ops[i])``, no zero op: a layer
always exists; dsonas: raw ``lambda_ops[i]``); each skip ``j -> i`` adds entry ``j`` of
``[stem, layer 0, ...]`` scaled by a gate: darts a **sigmoid gate** ``sigmoid(beta_ij)``
(present in the derived network iff ``beta_ij > 0``, i.e. the gate exceeds 1/2), dsonas a raw
``lambda_ij`` (present iff ``lambda_ij != 0``). The sum is batch-normalised as in the discrete
layer. Derived op: the largest ``alpha`` / ``|lambda|`` (all zero: the first op, a fallback).

DSO-NAS's factors all start at 1 (:data:`DSONAS_INIT`, the official ``init_param``); the
macro layer already has the official placement (one factor per op output, one per skip).
DARTS ``alpha``/``beta`` start at ``1e-3 * randn``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.oneshot._mixed import PARAM_FREE_OPS
from optuna_enas.oneshot._mixed import ZERO_OP
from optuna_enas.oneshot._mixed import MixedOp
from optuna_enas.oneshot._mixed import constant_lambda
from optuna_enas.oneshot._mixed import darts_alpha
from optuna_enas.oneshot._mixed import scaled_sum
from optuna_enas.oneshot._relaxed import ONE_HOT_LOGIT
from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._relaxed import abs_distribution
from optuna_enas.oneshot._relaxed import check_arch_none
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.supernet._macro import default_macro_pool_layers
from optuna_enas.supernet._macro import upgrade_macro_state_dict
from optuna_enas.supernet._micro import default_micro_reduction_cells
from optuna_enas.supernet._micro import upgrade_micro_state_dict
from optuna_enas.supernet._ops import FactorizedReduce
from optuna_enas.supernet._ops import ReLUConvBN
from optuna_enas.supernet._ops import batch_norm
from optuna_enas.supernet._ops import check_images
from optuna_enas.supernet._ops import classifier
from optuna_enas.supernet._ops import conv_weight
from optuna_enas.supernet._ops import make_macro_op
from optuna_enas.supernet._ops import make_micro_op


_CELLS = ("normal", "reduce")
DSONAS_INIT = 1.0
"""Every DSO-NAS scaling factor starts at 1: ``init_param`` of ``Cifar/train_search.py``
(lines 57-58 of XinbangZhang/DSO-NAS: ``if k.startswith('lambda'): init_one``)."""


def _check_image_size(value: Any) -> tuple[int, int]:
    ok = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        raise ValueError(
            f"image_size must be a pair of positive integers (H, W), but got {value!r}."
        )
    return int(value[0]), int(value[1])


def _halve(size: tuple[int, int]) -> tuple[int, int]:
    """The spatial size after a stride-2 factorized reduction (odd sizes round up)."""
    return (size[0] + 1) // 2, (size[1] + 1) // 2


def micro_op_flops(name: str, channels: int, pixels: int, sep_stack: int) -> float:
    """FLOPs of one micro op per example (a multiply-add counts 2), plus the add into its node."""
    c = channels
    add = float(c * pixels)
    if name in ("sep3x3", "sep5x5"):
        k = 3 if name == "sep3x3" else 5
        return sep_stack * (2.0 * k * k * c + 2.0 * c * c) * pixels + add
    if name in ("avgpool", "maxpool"):
        return 9.0 * c * pixels + add
    return add  # identity


def macro_op_flops(name: str, channels: int, pixels: int) -> float:
    """FLOPs of one macro branch per example (1x1 conv first, as the official branches)."""
    c = channels
    inp = 2.0 * c * c * pixels
    if name in ("avgpool", "maxpool"):
        return inp + 9.0 * c * pixels + c * pixels
    k = 3 if name.endswith("3x3") else 5
    if name.startswith("sep"):
        return inp + (2.0 * k * k * c + 2.0 * c * c) * pixels + c * pixels
    return inp + 2.0 * k * k * c * c * pixels + c * pixels


# -- micro -------------------------------------------------------------------------------------
def _without_affine(module: nn.Module) -> nn.Module:
    """``module`` with every affine :class:`~torch.nn.BatchNorm2d` in it (itself included)
    replaced by a non-affine one with the same settings (DARTS's search cell, see module)."""
    if isinstance(module, nn.BatchNorm2d) and module.affine:
        return nn.BatchNorm2d(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=False,
            track_running_stats=module.track_running_stats,
        )
    for name, child in module.named_children():
        setattr(module, name, _without_affine(child))
    return module


class _CellPicks:
    """A projected cell: per block the ``(input, op index)`` pairs it sums, and the loose ends."""

    def __init__(self, blocks: tuple[tuple[tuple[int, int], ...], ...], loose: tuple[int, ...]):
        self.blocks = blocks
        self.loose = loose


class _RelaxedMicroCell(nn.Module):
    """One cell position: calibration, the mixed ops of every block, the output conv.

    darts: ``edges[b][j]``, one :class:`MixedOp` per edge ``j -> b``; dsonas: ``block_ops[b]``,
    one :class:`MixedOp` per block whose op ``o`` reads ``sum_j lambda_in[b, j, o] * state_j``.
    """

    def __init__(
        self,
        *,
        space: MicroSpace,
        relaxation: Relaxation,
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
        self.relaxation = relaxation
        self.ops = tuple(space.ops)
        # As the discrete _Cell (supernet/_micro.py), so the names and shapes agree.
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
        self.n_nodes = n_nodes

        def mixed() -> MixedOp:
            return MixedOp(
                {
                    op: make_micro_op(op, c, sep_stack=sep_stack, generator=generator)
                    for op in space.ops
                }
            )

        if relaxation == "darts":
            # edges[b][j]: input j -> block b (j = 0..b+1).
            self.edges = nn.ModuleList(
                nn.ModuleList(mixed() for _ in range(b + 2)) for b in range(n_nodes)
            )
        else:
            self.block_ops = nn.ModuleList(mixed() for _ in range(n_nodes))
        self.out_weight = conv_weight(c, (n_nodes + 2) * c, 1, generator=generator)
        self.out_bn = batch_norm(c)
        if relaxation == "darts":
            for name in ("calibrate0", "calibrate1", "edges", "out_bn"):
                setattr(self, name, _without_affine(getattr(self, name)))

    def _op(self, block: int, input_index: int, op: int) -> nn.Module:
        mixed = (
            cast(nn.ModuleList, self.edges[block])[input_index]
            if self.relaxation == "darts"
            else self.block_ops[block]
        )
        return cast(MixedOp, mixed).ops[self.ops[op]]

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: Sequence[torch.Tensor],
        picks: _CellPicks | None = None,
    ) -> torch.Tensor:
        """``weights``: darts ``(w,)``, the ``(n_edges, n_ops)`` op weights, rows in (block,
        input) order; dsonas ``(lambda_in, lambda_op)``, ``(n_edges, n_ops)`` and ``(B, n_ops)``.
        ``picks``: compute only this architecture (the discrete cell, see ``projected``)."""
        states = [self.calibrate0(s0), self.calibrate1(s1)]
        if picks is not None:
            return self._derived(states, weights, picks)
        e = 0
        for b in range(self.n_nodes):
            n_in = b + 2
            if self.relaxation == "darts":
                edges = cast(nn.ModuleList, self.edges[b])
                node = edges[0](states[0], weights[0][e])
                for j in range(1, n_in):
                    node = node + edges[j](states[j], weights[0][e + j])
            else:
                lam_in, lam_op = weights[0][e : e + n_in], weights[1][b]
                mixed = cast(MixedOp, self.block_ops[b])
                terms = [
                    op(scaled_sum(states[:n_in], lam_in[:, o]))
                    for o, op in enumerate(mixed.ops.values())
                ]
                node = scaled_sum(terms, lam_op)
            e += n_in
            states.append(node)
        out = torch.cat(states, dim=1)
        return self.out_bn(F.conv2d(F.relu(out), self.out_weight))

    def _derived(
        self, states: list[torch.Tensor], weights: Sequence[torch.Tensor], picks: _CellPicks
    ) -> torch.Tensor:
        # The discrete cell: each pick's op on its input, summed; output over the loose ends.
        e = 0
        for b, block in enumerate(picks.blocks):
            node: torch.Tensor | None = None
            for j, o in block:
                op = self._op(b, j, o)
                if self.relaxation == "darts":
                    y = op(states[j])
                else:
                    y = weights[1][b, o] * op(weights[0][e + j, o] * states[j])
                node = y if node is None else node + y
            assert node is not None
            e += b + 2
            states.append(node)
        c = self.channels
        out = torch.cat([states[k] for k in picks.loose], dim=1)
        weight = torch.cat([self.out_weight[:, k * c : (k + 1) * c] for k in picks.loose], dim=1)
        return self.out_bn(F.conv2d(F.relu(out), weight))


class RelaxedMicroSupernet(RelaxedSupernet):
    """The relaxed supernet of a :class:`~optuna_enas.MicroSpace` (see the module docstring).

    Args:
        space: The micro search space.
        relaxation: ``"darts"`` or ``"dsonas"``.
        in_channels, n_classes, n_filters, n_layers, stem_multiplier, sep_stack: As
            :class:`~optuna_enas.supernet.MicroSupernet` (same defaults and meaning).
        image_size: ``(H, W)`` of the input images, for the FLOPs of :meth:`sparse_groups`
            (:func:`~optuna_enas.oneshot.build_relaxed` takes it from the data). Default
            ``(32, 32)``, CIFAR-10.
        generator: Generator for the weights, then the DARTS ``alpha``.
    """

    def __init__(
        self,
        space: MicroSpace,
        *,
        relaxation: Relaxation,
        in_channels: int = 3,
        n_classes: int = 10,
        n_filters: int = 20,
        n_layers: int = 6,
        stem_multiplier: int = 3,
        sep_stack: int = 2,
        image_size: Sequence[int] = (32, 32),
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(space, MicroSpace):
            raise ValueError(f"space must be a MicroSpace, but got {space!r}.")
        super().__init__(space, relaxation)
        self.micro_space = space
        self.in_channels = check_int("in_channels", in_channels)
        self.n_classes = check_int("n_classes", n_classes)
        self.n_filters = check_int("n_filters", n_filters)
        if n_filters % 2 != 0:
            raise ValueError(f"n_filters must be even, but got {n_filters!r}.")
        self.n_layers = check_int("n_layers", n_layers)
        self.stem_multiplier = check_int("stem_multiplier", stem_multiplier)
        self.sep_stack = check_int("sep_stack", sep_stack)
        self.image_size = _check_image_size(image_size)
        self.reduction_cells = default_micro_reduction_cells(n_layers)

        stem_c = stem_multiplier * n_filters
        self.stem_weight = conv_weight(stem_c, in_channels, 3, generator=generator)
        self.stem_bn = batch_norm(stem_c)
        cells: list[nn.Module] = []
        reduce_inputs: list[nn.Module] = []
        # (channels, pixels) of every cell position, for the FLOPs.
        self._cell_shapes: list[tuple[int, int]] = []
        size = self.image_size
        prev_prev = (stem_c, 0)
        prev = (stem_c, 0)
        c = n_filters
        for position in range(n_layers + 2):
            if position in self.reduction_cells:
                c *= 2
                size = _halve(size)
                reduce_inputs.append(FactorizedReduce(prev[0], c, generator=generator))
                prev_prev, prev = prev, (c, prev[1] + 1)
            cells.append(
                _RelaxedMicroCell(
                    space=space,
                    relaxation=self.relaxation,
                    channels=c,
                    prev_prev=(prev_prev[0], prev_prev[1] < prev[1]),
                    prev_channels=prev[0],
                    sep_stack=self.sep_stack,
                    generator=generator,
                )
            )
            self._cell_shapes.append((c, size[0] * size[1]))
            prev_prev, prev = prev, (c, prev[1])
        self.cells = nn.ModuleList(cells)
        self.reduce_inputs = nn.ModuleList(reduce_inputs)
        if self.relaxation == "darts":  # the stride-2 edges of DARTS's reduction cell
            self.reduce_inputs = cast(nn.ModuleList, _without_affine(self.reduce_inputs))
        self.classifier_weight, self.classifier_bias = classifier(n_classes, c, generator)

        n_ops = len(space.ops)
        self.n_edges = sum(b + 2 for b in range(space.n_nodes))
        self._picks: dict[str, _CellPicks] | None = None  # set inside projected()
        for cell in _CELLS:
            if self.relaxation == "darts":
                self.arch[cell] = darts_alpha((self.n_edges, n_ops + 1), generator)
            else:
                self.arch[f"{cell}_in"] = constant_lambda((self.n_edges, n_ops), DSONAS_INIT)
                self.arch[f"{cell}_op"] = constant_lambda((space.n_nodes, n_ops), DSONAS_INIT)

    @property
    def op_names(self) -> tuple[str, ...]:
        """The columns of a DARTS table: the space's ops, then the zero op."""
        return (*self.micro_space.ops, ZERO_OP)

    def edge_index(self, block: int, input_index: int) -> int:
        """The row of edge ``input_index -> block`` (block ``0..B-1``) in the tables."""
        if not (0 <= block < self.micro_space.n_nodes and 0 <= input_index < block + 2):
            raise ValueError(
                f"(block, input_index) must satisfy 0 <= block < {self.micro_space.n_nodes} and "
                f"0 <= input_index < block + 2, but got ({block!r}, {input_index!r})."
            )
        return sum(b + 2 for b in range(block)) + input_index

    def op_weights(self, cell: str) -> torch.Tensor:
        """``(n_edges, n_ops)`` effective weights of the non-zero ops of ``cell``'s edges:
        darts ``softmax(alpha)``; dsonas ``lambda_in[e, o] * lambda_op[b, o]`` (edge ``e`` into
        block ``b``), the product of the factors before and after op ``o``."""
        if self.relaxation == "darts":
            return F.softmax(self.arch[cell], dim=-1)[:, :-1]
        lam_op = self.arch[f"{cell}_op"]
        per_edge = torch.cat([lam_op[b].expand(b + 2, -1) for b in range(lam_op.shape[0])])
        return self.arch[f"{cell}_in"] * per_edge

    def _cell_weights(self, cell: str) -> tuple[torch.Tensor, ...]:
        if self.relaxation == "darts":
            return (self.op_weights(cell),)
        return (self.arch[f"{cell}_in"], self.arch[f"{cell}_op"])

    def forward(self, x: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of the relaxed network; ``arch`` must be ``None``."""
        check_arch_none(arch)
        check_images(x, self.in_channels)
        normal = self._cell_weights("normal")
        reduce = self._cell_weights("reduce")
        picks = self._picks or {}
        s = self.stem_bn(F.conv2d(x, self.stem_weight, padding=1))
        s0, s1 = s, s
        n_reduce = 0
        for position, cell in enumerate(self.cells):
            if position in self.reduction_cells:
                reduced = self.reduce_inputs[n_reduce](s1)
                n_reduce += 1
                s0, s1 = s1, reduced
                out = cell(s0, s1, reduce, picks.get("reduce"))
            else:
                out = cell(s0, s1, normal, picks.get("normal"))
            s0, s1 = s1, out
        pooled = F.relu(s1).mean(dim=(2, 3))
        return F.linear(pooled, self.classifier_weight, self.classifier_bias)

    # -- derivation ------------------------------------------------------------------------------
    def _strengths(self, cell: str) -> torch.Tensor:
        with torch.no_grad():
            return self.op_weights(cell).detach().abs().double().cpu()

    def _derive(self) -> tuple[Architecture, int]:
        space = self.micro_space
        params: dict[str, object] = {}
        fallbacks = 0
        for cell in _CELLS:
            w = self._strengths(cell)
            for b in range(space.n_nodes):
                rows = w[self.edge_index(b, 0) : self.edge_index(b, 0) + b + 2]
                best = rows.max(dim=1).values
                # Stable order: the strongest first, ties to the lower input index.
                order = sorted(range(b + 2), key=lambda j: (-float(best[j]), j))
                chosen = [j for j in order if float(best[j]) > 0.0][:2]
                picks = [(j, int(torch.argmax(rows[j]))) for j in chosen]
                while len(picks) < 2:
                    picks.append((b + 1, 0))
                    fallbacks += 1
                for k, (j, o) in enumerate(picks, start=1):
                    params[f"{cell}_b{b + 2}_in{k}"] = j
                    params[f"{cell}_b{b + 2}_op{k}"] = space.ops[o]
        return space.architecture(params), fallbacks

    def _projection(self, arch: Architecture) -> dict[str, torch.Tensor]:
        # A block that reads one input twice with two ops gets a half-half mixture (darts) or
        # both factors (dsonas) on that edge: the relaxed edge owns one module per op.
        space = self.micro_space
        cells = space.cells(arch)
        out: dict[str, torch.Tensor] = {}
        for cell in _CELLS:
            nodes = cells.normal if cell == "normal" else cells.reduction
            picks = [
                (self.edge_index(b, j), space.ops.index(op))
                for b, n in enumerate(nodes)
                for j, op in ((n.in1, n.op1), (n.in2, n.op2))
            ]
            if self.relaxation == "darts":
                a = torch.full_like(self.arch[cell], -ONE_HOT_LOGIT)
                a[:, -1] = ONE_HOT_LOGIT
                for e, o in picks:
                    a[e, -1] = -ONE_HOT_LOGIT
                    a[e, o] = ONE_HOT_LOGIT
                out[cell] = a
                continue
            lam_in, lam_op = self.arch[f"{cell}_in"].detach(), self.arch[f"{cell}_op"].detach()
            new_in, new_op = torch.zeros_like(lam_in), torch.zeros_like(lam_op)
            for k, (e, o) in enumerate(picks):
                b = k // 2
                new_in[e, o] = lam_in[e, o] if float(lam_in[e, o]) != 0.0 else 1.0
                new_op[b, o] = lam_op[b, o] if float(lam_op[b, o]) != 0.0 else 1.0
            out[f"{cell}_in"], out[f"{cell}_op"] = new_in, new_op
        return out

    @contextlib.contextmanager
    def projected(self, arch: Architecture | None = None) -> Iterator[Architecture]:
        """As :meth:`RelaxedSupernet.projected`, and every cell computes exactly the projected
        architecture's discrete cell: each block the sum of its two picks (a pick's op on its
        input; dsonas scaled by the kept ``lambda_op[b, o] * op(lambda_in[e, o] * input)``),
        the output over its loose ends (the states no block reads), as
        :class:`~optuna_enas.supernet.MicroSupernet`'s cell."""
        with super().projected(arch) as chosen:
            space = self.micro_space
            cells = space.cells(chosen)
            picks: dict[str, _CellPicks] = {}
            for cell in _CELLS:
                nodes = cells.normal if cell == "normal" else cells.reduction
                used = {n.in1 for n in nodes} | {n.in2 for n in nodes}
                picks[cell] = _CellPicks(
                    tuple(
                        ((n.in1, space.ops.index(n.op1)), (n.in2, space.ops.index(n.op2)))
                        for n in nodes
                    ),
                    tuple(k for k in range(space.n_nodes + 2) if k not in used),
                )
            saved = self._picks
            self._picks = picks
            try:
                yield chosen
            finally:
                self._picks = saved

    def derive(self) -> Architecture:
        """The ``MicroSpace`` architecture the architecture parameters encode (see module)."""
        return self._derive()[0]

    def arch_tables(self) -> dict[str, list[list[float]]]:
        """darts: ``normal`` / ``reduce``, one row per edge (:meth:`edge_index`), columns
        :attr:`op_names`, softmaxed. dsonas: ``{cell}_in`` (one row over the edges) and
        ``{cell}_op`` (one row per edge over the ops), raw ``lambda``."""
        tables: dict[str, list[list[float]]] = {}
        for k, p in self.named_arch_parameters():
            t = p.detach().double().cpu()
            if self.relaxation == "darts":
                t = F.softmax(t, dim=-1)
            tables[k] = t.tolist() if t.dim() == 2 else [t.tolist()]
        return tables

    def _distributions(self) -> list[torch.Tensor]:
        if self.relaxation == "darts":
            return [row for cell in _CELLS for row in F.softmax(self.arch[cell].detach(), -1)]
        dists: list[torch.Tensor] = []
        for cell in _CELLS:  # per (block, op) over its inputs; per block over its ops
            lam_in = self.arch[f"{cell}_in"].detach()
            for b in range(self.micro_space.n_nodes):
                start = self.edge_index(b, 0)
                dists.extend(abs_distribution(col) for col in lam_in[start : start + b + 2].T)
            dists.extend(abs_distribution(row) for row in self.arch[f"{cell}_op"].detach())
        return dists

    def _param_free_share(self, arch: Architecture) -> float:
        cells = self.micro_space.cells(arch)
        ops = [
            op for nodes in (cells.normal, cells.reduction) for n in nodes for op in (n.op1, n.op2)
        ]
        return sum(op in PARAM_FREE_OPS for op in ops) / len(ops)

    def _summary_extra(self, arch: Architecture) -> dict[str, float]:
        if self.relaxation == "dsonas":
            return {"derive_fallbacks": float(self._derive()[1])}
        return {}

    def sparse_groups(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """dsonas: ``{cell}_op[b, o]`` gates op ``o`` of block ``b`` in every cell of that type
        (its FLOPs summed over those positions, at :attr:`image_size`); ``{cell}_in[e, o]``
        gates the scaling and addition of edge ``e``'s input into that op's input
        (``2 * C * H * W`` per position)."""
        if self.relaxation != "dsonas":
            return []
        groups = []
        for cell in _CELLS:
            positions = [
                p
                for p in range(len(self.cells))
                if (p in self.reduction_cells) == (cell == "reduce")
            ]
            per_op = torch.tensor(
                [
                    sum(
                        micro_op_flops(op, *self._cell_shapes[p], self.sep_stack)
                        for p in positions
                    )
                    for op in self.micro_space.ops
                ],
                dtype=torch.float64,
            )
            per_in = sum(2.0 * c * px for c, px in (self._cell_shapes[p] for p in positions))
            lam_in = self.arch[f"{cell}_in"]
            lam_op = self.arch[f"{cell}_op"]
            groups.append((lam_in, torch.full(lam_in.shape, per_in).to(lam_in)))
            groups.append((lam_op, per_op.expand(lam_op.shape[0], -1).clone().to(lam_op)))
        return groups

    # -- weight transfer -------------------------------------------------------------------------
    _EDGE_KEY = re.compile(r"^cells\.(\d+)\.edges\.(\d+)\.(\d+)\.ops\.(.+)$")
    _BLOCK_KEY = re.compile(r"^cells\.(\d+)\.block_ops\.(\d+)\.ops\.(.+)$")

    def discrete_state_dict(self) -> dict[str, torch.Tensor]:
        """The discrete ``MicroSupernet`` names: darts each edge's op weights into both input
        slots (``cells.{p}.branches.{b}.{slot}.{j}.{op}...``), dsonas each block's op weights
        into both slots of every input ``j``; a non-affine batch norm (darts) as the affine one
        it equals (weight 1, bias 0); every other weight as is, then under the supernet's
        current names (:func:`upgrade_micro_state_dict`)."""
        flat = super().discrete_state_dict()
        for name, module in self.named_modules():
            if isinstance(module, nn.BatchNorm2d) and not module.affine:
                ref = next(iter(self.parameters()))
                ones = torch.ones(module.num_features, dtype=ref.dtype, device=ref.device)
                flat[f"{name}.weight"] = ones
                flat[f"{name}.bias"] = torch.zeros_like(ones)
        out: dict[str, torch.Tensor] = {}
        for k, v in flat.items():
            m = self._EDGE_KEY.match(k)
            if m is not None:
                p, b, j, rest = m.groups()
                for slot in (0, 1):
                    out[f"cells.{p}.branches.{b}.{slot}.{j}.{rest}"] = v
                continue
            m = self._BLOCK_KEY.match(k)
            if m is not None:
                p, b, rest = m.groups()
                for j in range(int(b) + 2):
                    for slot in (0, 1):
                        out[f"cells.{p}.branches.{b}.{slot}.{j}.{rest}"] = v
                continue
            out[k] = v
        return upgrade_micro_state_dict(out)

    def extra_repr(self) -> str:
        return (
            f"relaxation={self.relaxation!r}, n_nodes={self.micro_space.n_nodes}, "
            f"ops={list(self.micro_space.ops)}, n_filters={self.n_filters}, "
            f"n_layers={self.n_layers}, reduction_cells={list(self.reduction_cells)}"
        )


# -- macro -------------------------------------------------------------------------------------
class RelaxedMacroSupernet(RelaxedSupernet):
    """The relaxed supernet of a :class:`~optuna_enas.MacroSpace` (see the module docstring).

    Args:
        space: The macro search space.
        relaxation: ``"darts"`` or ``"dsonas"``.
        in_channels, n_classes, n_filters, pool_layers: As
            :class:`~optuna_enas.supernet.MacroSupernet` (same defaults and meaning).
        image_size: ``(H, W)`` of the input images, for the FLOPs of :meth:`sparse_groups`.
        generator: Generator for the weights, then the DARTS ``alpha`` / ``beta``.
    """

    def __init__(
        self,
        space: MacroSpace,
        *,
        relaxation: Relaxation,
        in_channels: int = 3,
        n_classes: int = 10,
        n_filters: int = 36,
        pool_layers: Sequence[int] | None = None,
        image_size: Sequence[int] = (32, 32),
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(space, MacroSpace):
            raise ValueError(f"space must be a MacroSpace, but got {space!r}.")
        super().__init__(space, relaxation)
        self.macro_space = space
        self.in_channels = check_int("in_channels", in_channels)
        self.n_classes = check_int("n_classes", n_classes)
        self.n_filters = check_int("n_filters", n_filters)
        if n_filters % 2 != 0:
            raise ValueError(f"n_filters must be even, but got {n_filters!r}.")
        self.image_size = _check_image_size(image_size)
        n_layers = space.n_layers
        if pool_layers is None:
            pools = default_macro_pool_layers(n_layers)
        else:
            if isinstance(pool_layers, (str, bytes)) or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in pool_layers
            ):
                raise ValueError(
                    f"pool_layers must be a sequence of ints, but got {pool_layers!r}."
                )
            pools = tuple(pool_layers)
            if len(set(pools)) != len(pools) or any(not 0 <= p < n_layers for p in pools):
                raise ValueError(
                    f"pool_layers must hold distinct layer indices in [0, {n_layers}), "
                    f"but got {pool_layers!r}."
                )
            pools = tuple(sorted(pools))
        self.pool_layers = pools

        c = n_filters
        self.stem_weight = conv_weight(c, in_channels, 3, generator=generator)
        self.stem_bn = batch_norm(c)
        self.layers = nn.ModuleList(
            nn.ModuleDict({op: make_macro_op(op, c, generator=generator) for op in space.ops})
            for _ in range(n_layers)
        )
        self.skip_bns = nn.ModuleList(batch_norm(c) for _ in range(n_layers - 1))
        self.reductions = nn.ModuleList(
            nn.ModuleList(FactorizedReduce(c, c, generator=generator) for _ in range(p + 2))
            for p in pools
        )
        self.classifier_weight, self.classifier_bias = classifier(n_classes, c, generator)
        pixels = []
        size = self.image_size
        for i in range(n_layers):
            pixels.append(size[0] * size[1])
            if i in pools:
                size = _halve(size)
        self._layer_pixels = pixels

        n_ops = len(space.ops)
        self.n_skips = n_layers * (n_layers - 1) // 2
        if self.relaxation == "darts":
            self.arch["ops"] = darts_alpha((n_layers, n_ops), generator)
            self.arch["skips"] = darts_alpha((self.n_skips,), generator)
        else:
            self.arch["ops"] = constant_lambda((n_layers, n_ops), DSONAS_INIT)
            self.arch["skips"] = constant_lambda((self.n_skips,), DSONAS_INIT)

    @staticmethod
    def skip_index(layer: int, input_index: int) -> int:
        """The entry of skip ``input_index -> layer`` (``0 <= input_index < layer``)."""
        if not 0 <= input_index < layer:
            raise ValueError(
                f"input_index must be in [0, layer), but got layer={layer!r}, "
                f"input_index={input_index!r}."
            )
        return layer * (layer - 1) // 2 + input_index

    def op_weights(self) -> torch.Tensor:
        """``(n_layers, n_ops)``: ``softmax(alpha)`` (darts) or ``lambda`` (dsonas)."""
        if self.relaxation == "darts":
            return F.softmax(self.arch["ops"], dim=-1)
        return self.arch["ops"]

    def skip_weights(self) -> torch.Tensor:
        """``(n_skips,)``: ``sigmoid(beta)`` (darts) or ``lambda`` (dsonas)."""
        if self.relaxation == "darts":
            return torch.sigmoid(self.arch["skips"])
        return self.arch["skips"]

    def forward(self, x: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of the relaxed network; ``arch`` must be ``None``."""
        check_arch_none(arch)
        check_images(x, self.in_channels)
        w_ops = self.op_weights()
        w_skips = self.skip_weights()
        out = self.stem_bn(F.conv2d(x, self.stem_weight, padding=1))
        kept = [out]
        n_pool = 0
        for i, layer in enumerate(self.layers):
            ops = cast(nn.ModuleDict, layer)
            prev = kept[-1]
            out = scaled_sum([op(prev) for op in ops.values()], w_ops[i])
            if i > 0:
                base = self.skip_index(i, 0)
                for j in range(i):
                    out = out + w_skips[base + j] * kept[j]
                out = self.skip_bns[i - 1](out)
            kept.append(out)
            if i in self.pool_layers:
                reductions = cast(nn.ModuleList, self.reductions[n_pool])
                kept = [red(k) for red, k in zip(reductions, kept, strict=True)]
                n_pool += 1
        pooled = kept[-1].mean(dim=(2, 3))
        return F.linear(pooled, self.classifier_weight, self.classifier_bias)

    def _derive(self) -> tuple[Architecture, int]:
        space = self.macro_space
        params: dict[str, object] = {}
        fallbacks = 0
        with torch.no_grad():
            ops = self.arch["ops"].detach().double().cpu()
            skips = self.arch["skips"].detach().double().cpu()
        for i in range(space.n_layers):
            row = ops[i] if self.relaxation == "darts" else ops[i].abs()
            if self.relaxation == "dsonas" and not float(row.max()) > 0.0:
                o = 0
                fallbacks += 1
            else:
                o = int(torch.argmax(row))
            params[f"layer{i}_op"] = space.ops[o]
            for j in range(i):
                s = float(skips[self.skip_index(i, j)])
                on = s > 0.0 if self.relaxation == "darts" else s != 0.0
                params[f"layer{i}_skip{j}"] = int(on)
        return space.architecture(params), fallbacks

    def _projection(self, arch: Architecture) -> dict[str, torch.Tensor]:
        layers = self.macro_space.layers(arch)
        ops, skips = self.arch["ops"].detach(), self.arch["skips"].detach()
        darts = self.relaxation == "darts"
        new_ops = torch.full_like(ops, -ONE_HOT_LOGIT) if darts else torch.zeros_like(ops)
        new_skips = torch.full_like(skips, -ONE_HOT_LOGIT) if darts else torch.zeros_like(skips)
        for i, layer in enumerate(layers):
            o = self.macro_space.ops.index(layer.op)
            kept = float(ops[i, o])
            new_ops[i, o] = ONE_HOT_LOGIT if darts else (kept if kept != 0.0 else 1.0)
            for j in layer.skips:
                k = self.skip_index(i, j)
                kept = float(skips[k])
                new_skips[k] = ONE_HOT_LOGIT if darts else (kept if kept != 0.0 else 1.0)
        return {"ops": new_ops, "skips": new_skips}

    def derive(self) -> Architecture:
        """The ``MacroSpace`` architecture the architecture parameters encode (see module)."""
        return self._derive()[0]

    def discrete_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under the discrete ``MacroSupernet``'s names
        (:func:`upgrade_macro_state_dict` of this supernet's, which are its former ones)."""
        return upgrade_macro_state_dict(super().discrete_state_dict())

    def arch_tables(self) -> dict[str, list[list[float]]]:
        """``ops``: one row per layer over the space's ops; ``skips``: one row per layer
        ``i >= 1`` over its inputs ``j < i``. darts: softmax / sigmoid gate; dsonas: raw."""
        ops = self.op_weights().detach().double().cpu()
        skips = self.skip_weights().detach().double().cpu()
        rows = [
            skips[self.skip_index(i, 0) : self.skip_index(i, 0) + i].tolist()
            for i in range(1, self.macro_space.n_layers)
        ]
        return {"ops": ops.tolist(), "skips": rows}

    def _distributions(self) -> list[torch.Tensor]:
        if self.relaxation == "darts":
            gates = torch.sigmoid(self.arch["skips"].detach())
            return [*F.softmax(self.arch["ops"].detach(), -1), *torch.stack([gates, 1 - gates], 1)]
        skips = self.arch["skips"].detach()
        return [
            *(abs_distribution(row) for row in self.arch["ops"].detach()),
            *(
                abs_distribution(skips[self.skip_index(i, 0) : self.skip_index(i, 0) + i])
                for i in range(1, self.macro_space.n_layers)
            ),
        ]

    def _param_free_share(self, arch: Architecture) -> float:
        layers = self.macro_space.layers(arch)
        return sum(layer.op in PARAM_FREE_OPS for layer in layers) / len(layers)

    def _summary_extra(self, arch: Architecture) -> dict[str, float]:
        n = self.n_skips
        out = {
            "skip_share": sum(len(x.skips) for x in self.macro_space.layers(arch)) / n
            if n
            else 0.0
        }
        if self.relaxation == "dsonas":
            out["derive_fallbacks"] = float(self._derive()[1])
        return out

    def sparse_groups(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """dsonas: ``ops[i, o]`` gates branch ``o`` of layer ``i`` (its FLOPs at that layer's
        resolution); ``skips`` entries gate one addition (``C * H * W``)."""
        if self.relaxation != "dsonas":
            return []
        c = self.n_filters
        ops = self.arch["ops"]
        skips = self.arch["skips"]
        op_flops = torch.tensor(
            [
                [macro_op_flops(op, c, px) for op in self.macro_space.ops]
                for px in self._layer_pixels
            ],
            dtype=torch.float64,
        ).to(ops)
        skip_flops = torch.tensor(
            [
                float(c * self._layer_pixels[i])
                for i in range(1, self.macro_space.n_layers)
                for _ in range(i)
            ],
            dtype=torch.float64,
        ).to(skips)
        return [(ops, op_flops.detach()), (skips, skip_flops.detach())]

    def extra_repr(self) -> str:
        return (
            f"relaxation={self.relaxation!r}, n_layers={self.macro_space.n_layers}, "
            f"ops={list(self.macro_space.ops)}, n_filters={self.n_filters}, "
            f"pool_layers={list(self.pool_layers)}"
        )


__all__ = ["RelaxedMacroSupernet", "RelaxedMicroSupernet", "macro_op_flops", "micro_op_flops"]
