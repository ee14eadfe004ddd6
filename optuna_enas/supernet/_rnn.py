"""The shared-weight recurrent supernet of ENAS for word-level language modelling.

Pham et al. (2018), Sec. 2.1 and 3.1. Every node of the cell owns one weight matrix per possible
input: node 0 reads the embedded token and the previous hidden state through ``w_x`` and ``w_h``;
node ``i >= 1`` reading node ``j`` uses ``w_edges[i][j]``. Each matrix is ``(in, 2 * hidden)``:
its first ``hidden`` columns give the highway gate ``c``, the rest the candidate, so both come
from one matmul::

    c = sigmoid(h_j @ W[:, :H]),    h_i = h_j + c * (act(h_j @ W[:, H:]) - h_j)
                                        = c * act(...) + (1 - c) * h_j

and node 0 adds ``x_t @ w_x`` to its pre-activation. The cell output, which is also the hidden
state carried to the next step, is the mean of the loose ends (as the official ENAS
``ptb_enas_child.py``; ENAS-pytorch carries the last node instead).

The recurrence runs in a hand-written autograd function (:class:`_CellSequence`). The forward
pass stores one ``(batch, 2 * hidden)`` block per node and step (the gate and the activation
output); on a CPU it multiplies by weights reordered once per sequence into oneDNN's packed
layout (:class:`_Right`), so the 35 per-step ``(64, 1000) @ (1000, 2000)`` products do not
each pay for packing the weight, as ``torch.mm`` does. The backward pass recomputes the states
of the nodes that others read and writes each node's pre-activation gradient over its saved
block, so afterwards every weight gradient is one ``(H, T*B) @ (T*B, 2H)`` product over all
steps, written once. Edges the architecture does not use receive no gradient at all (their
``.grad`` stays ``None``), which keeps the gradient memory of the 1000-unit, 12-node
ENAS-pytorch configuration at the edges used (13 of 68 matrices). ``bfloat16_matmul=True``
runs all of these products in bfloat16; everything else stays in the weights' dtype.

That configuration (batch 64, BPTT 35, vocabulary 10000, 146 M parameters, 484 GFLOP of
matmuls per step) peaks at 1.47 GiB RSS on a CPU (``benchmarks/supernet_step.py``): 0.55 GiB
of weights, 0.2 GiB of saved activations, 0.1 GiB of packed weights, 0.25 GiB for the
caller's cross-entropy over the 35 x 64 x 10000 logits. BENCHMARKS.md has its step time next
to ENAS-pytorch's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._search_space import Architecture


_PACK_MIN_STEPS = 4  # shorter sequences multiply by each weight too rarely to pack it


@dataclass(frozen=True)
class _CellPlan:
    inputs: tuple[int, ...]  # inputs[i] is the node that node i reads; -1 for node 0
    activations: tuple[str, ...]
    loose_ends: tuple[int, ...]
    max_norm: float | None = None  # rescale each row of the cell output to this L2 norm at most
    matmul_dtype: torch.dtype | None = None  # None: the weights' dtype; else e.g. bfloat16


_PACK_OK: dict[torch.dtype, bool] = {}


def _can_pack(weight: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether oneDNN's packed linear (``torch.ops.mkldnn``) works here for ``dtype``.

    Probed once per dtype on a tiny product; any failure (a torch build without oneDNN, an
    operator that changed) falls back to ``torch.mm``.
    """
    if weight.device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
        return False
    if dtype not in _PACK_OK:
        ok = False
        try:
            if torch.backends.mkldnn.is_available():
                w = torch.linspace(-1.0, 1.0, 12).view(3, 4).to(dtype)
                x = torch.linspace(0.5, -0.5, 6).view(2, 3).to(dtype)
                packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), 2)
                y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
                ok = bool(torch.allclose(y.float(), (x @ w).float(), rtol=1e-2, atol=1e-2))
        except (AttributeError, NotImplementedError, RuntimeError):
            ok = False
        _PACK_OK[dtype] = ok
    return _PACK_OK[dtype]


class _Right:
    """Right multiplication by one fixed matrix ``w`` ``(K, N)``: ``x @ w`` for many ``x``.

    On a CPU the matrix is reordered once into oneDNN's blocked layout, so that each of the
    ``T`` products of a sequence skips the packing that ``torch.mm`` repeats for every call:
    with 64 rows, packing a ``(1000, 2000)`` weight costs about as much as the product (the
    product runs at ~110-130 GFLOP/s with ``torch.mm``, ~170-180 packed, on the 2-core
    AVX-512 CPU of ``benchmarks/supernet_step.py``). ``dtype`` is the dtype of the product
    (``x`` and ``w`` are cast to it); the result is in that dtype.
    """

    __slots__ = ("dtype", "packed", "w")

    def __init__(self, w: torch.Tensor, rows: int, dtype: torch.dtype, pack: bool) -> None:
        self.dtype = dtype
        self.packed: torch.Tensor | None = None
        self.w: torch.Tensor | None = None
        if pack and _can_pack(w, dtype):
            wt = w.t().to(dtype).contiguous()
            self.packed = torch.ops.mkldnn._reorder_linear_weight(wt, rows)
        else:
            self.w = w.to(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.packed is not None:
            out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
                x, self.packed, None, "none", [], ""
            )
            return out
        return torch.mm(x, cast(torch.Tensor, self.w))


def _activate(name: str, s: torch.Tensor, buf: torch.Tensor, hidden: int) -> None:
    """``buf = [sigmoid(s[:, :H]) | act(s[:, H:])]`` (``s`` may be ``buf`` itself)."""
    if s.dtype != buf.dtype:
        buf.copy_(s)
        s = buf
    if name == "sigmoid":
        torch.sigmoid(s, out=buf)
        return
    torch.sigmoid(s[:, :hidden], out=buf[:, :hidden])
    if name == "tanh":
        torch.tanh(s[:, hidden:], out=buf[:, hidden:])
    elif name == "relu":
        torch.clamp_min(s[:, hidden:], 0.0, out=buf[:, hidden:])
    elif s is not buf:  # identity
        buf[:, hidden:].copy_(s[:, hidden:])


def _carve(like: torch.Tensor, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
    """Contiguous tensors of ``shapes`` cut from one allocation.

    Memory: glibc serves blocks above its (dynamic, at most 32 MiB) mmap threshold with ``mmap``
    and unmaps them when freed, while mid-sized blocks come from the heap, whose holes it keeps.
    Cutting the per-step buffers and the weight gradients from big blocks keeps the peak RSS
    of the 1000-unit configuration from creeping up by 100-200 MiB over the steps.
    """
    sizes = [math.prod(shape) for shape in shapes]
    flat = like.new_empty(sum(sizes))
    return [v.view(shape) for v, shape in zip(flat.split(sizes), shapes, strict=True)]


def _right_factors(
    plan: _CellPlan, w_h: torch.Tensor, edges: tuple[torch.Tensor, ...], rows: int, steps: int
) -> tuple[_Right, list[_Right]]:
    dtype = plan.matmul_dtype or w_h.dtype
    pack = steps >= _PACK_MIN_STEPS
    return _Right(w_h, rows, dtype, pack), [_Right(w, rows, dtype, pack) for w in edges]


def _run_cell(
    plan: _CellPlan,
    xproj: torch.Tensor,
    h0: torch.Tensor,
    mask: torch.Tensor | None,
    w_h: _Right,
    edges: list[_Right],
    save: torch.Tensor | None,
    scales: torch.Tensor | None,
    out: torch.Tensor | None,
) -> torch.Tensor:
    """Run the cell over all steps; return the outputs ``(T, B, H)``, written to ``out``.

    ``save`` (``(n_nodes, T, B, 2H)`` or ``None``) receives each node's ``[gate |
    activation]``, ``scales`` (``(T, B, 1)`` or ``None``) the factors of the hidden-norm
    clipping.
    """
    steps, batch, _ = xproj.shape
    hidden = h0.shape[1]
    n_nodes = len(plan.activations)
    if out is None:
        out = xproj.new_empty((steps, batch, hidden))
    inv_loose = 1.0 / len(plan.loose_ends)
    loose = plan.loose_ends
    # Without `save`, one scratch block is reused at every step; node states likewise.
    scratch = xproj.new_empty((n_nodes, batch, 2 * hidden)) if save is None else None
    nodes = xproj.new_empty((n_nodes, batch, hidden))
    h = h0
    for t in range(steps):
        for i in range(n_nodes):
            buf = save[i, t] if save is not None else cast(torch.Tensor, scratch)[i]
            if i == 0:
                h_in = h
                s = w_h(h if mask is None else h * mask)
                # node 0 also reads x_t: its pre-activation goes straight into `buf`
                s = torch.add(xproj[t], s, out=buf)
            else:
                h_in = nodes[plan.inputs[i]]
                s = edges[i - 1](h_in)
            _activate(plan.activations[i], s, buf, hidden)
            # h_i = h_in + c * (act - h_in) = c * act + (1 - c) * h_in
            torch.lerp(h_in, buf[:, hidden:], buf[:, :hidden], out=nodes[i])
        o = out[t]
        if len(loose) == 1:
            o.copy_(nodes[loose[0]])
        else:
            torch.add(nodes[loose[0]], nodes[loose[1]], out=o)
            for k in loose[2:]:
                o.add_(nodes[k])
            o.mul_(inv_loose)
        if plan.max_norm is not None:
            scale = torch.linalg.vector_norm(o, dim=1, keepdim=True)
            scale = torch.reciprocal(scale, out=scale).mul_(plan.max_norm).clamp_(max=1.0)
            o.mul_(scale)
            if scales is not None:
                scales[t] = scale
        h = o
    return out


def _run_cells_lockstep(
    plans: Sequence[_CellPlan],
    xproj: torch.Tensor,
    h0: torch.Tensor,
    mask: torch.Tensor | None,
    right: Callable[[int, int], _Right],
    out: torch.Tensor,
) -> torch.Tensor:
    """Run M cells in lockstep over the same inputs (no gradients); outputs into ``out``.

    ``h0`` and ``out`` are ``(M, B, H)`` and ``(M, T, B, H)``. At every step and node, the
    architectures whose node reads the same input node (so uses the same weight) share one
    product over their stacked rows: node 0 of all M at once through ``w_h``, node ``i`` in at
    most ``i`` groups. Fewer, taller products run faster per FLOP than M x ``n_nodes`` products
    of ``B`` rows, and the per-op overhead of small cells drops by about the same factor.
    ``right(node, input_node)`` gives the (shared, packed) weight.
    """
    n_archs, steps, batch, hidden = out.shape
    n_nodes = len(plans[0].activations)
    dtype = xproj.dtype
    # Per node: groups (input node, arch indices sorted by activation, activation runs).
    schedule = []
    for i in range(n_nodes):
        by_input: dict[int, list[int]] = {}
        for m, plan in enumerate(plans):
            by_input.setdefault(plan.inputs[i], []).append(m)
        groups = []
        for j, members in sorted(by_input.items()):
            members.sort(key=lambda m: plans[m].activations[i])
            runs: list[tuple[str, int, int]] = []
            for k, m in enumerate(members):
                name = plans[m].activations[i]
                if runs and runs[-1][0] == name:
                    runs[-1] = (name, runs[-1][1], (k + 1) * batch)
                else:
                    runs.append((name, k * batch, (k + 1) * batch))
            index = torch.tensor(members, device=xproj.device)
            groups.append((j, index, len(members), runs))
        schedule.append(groups)
    # mean of the loose ends as one batched product: out[m] = sum_n weights[m, n] * node[m, n]
    weights = xproj.new_zeros((n_archs, 1, n_nodes))
    for m, plan in enumerate(plans):
        weights[m, 0, list(plan.loose_ends)] = 1.0 / len(plan.loose_ends)
    max_norm = plans[0].max_norm
    nodes = xproj.new_empty((n_archs, n_nodes, batch, hidden))
    h = h0
    for t in range(steps):
        for i in range(n_nodes):
            for j, index, k, runs in schedule[i]:
                src = h if j == -1 else nodes[:, j]
                h_in = src.index_select(0, index)  # (k, B, H)
                rec = h_in if (mask is None or j != -1) else h_in * mask
                s = right(i, j)(rec.view(k * batch, hidden)).to(dtype)
                if j == -1:
                    s.view(k, batch, 2 * hidden).add_(xproj[t])
                for name, r0, r1 in runs:
                    block = s[r0:r1]
                    _activate(name, block, block, hidden)
                new = torch.lerp(h_in.view(k * batch, hidden), s[:, hidden:], s[:, :hidden])
                nodes[:, i].index_copy_(0, index, new.view(k, batch, hidden))
        o = out[:, t]
        torch.bmm(
            weights, nodes.view(n_archs, n_nodes, batch * hidden), out=o.view(n_archs, 1, -1)
        )
        if max_norm is not None:
            scale = torch.linalg.vector_norm(o, dim=2, keepdim=True)
            scale = torch.reciprocal(scale, out=scale).mul_(max_norm).clamp_(max=1.0)
            o.mul_(scale)
        h = o
    return out


def _outer_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    """``out = a.T @ b`` with the product in ``dtype``.

    On a CPU through oneDNN's matmul, which runs this ``(H, T*B) @ (T*B, 2H)`` shape 1.3-1.4x
    faster than ``torch.mm`` (MKL) on the benchmark's CPU.
    """
    if _can_pack(out, dtype):
        y = torch.ops.mkldnn._linear_pointwise(
            a.t().to(dtype), b.t().to(dtype), None, "none", [], ""
        )
        out.copy_(y)
    elif dtype == out.dtype:
        torch.mm(a.t(), b, out=out)
    else:
        out.copy_(torch.mm(a.t().to(dtype), b.to(dtype)))


class _CellSequence(torch.autograd.Function):
    """The ENAS cell over a whole sequence, with a hand-written backward pass."""

    @staticmethod
    def forward(
        ctx: Any,
        plan: _CellPlan,
        xproj: torch.Tensor,
        h0: torch.Tensor,
        mask: torch.Tensor | None,
        w_h: torch.Tensor,
        *edges: torch.Tensor,
    ) -> torch.Tensor:
        steps, batch, two_h = xproj.shape
        n_nodes = len(plan.activations)
        save, scales, out = _carve(
            xproj, (n_nodes, steps, batch, two_h), (steps, batch, 1), (steps, batch, two_h // 2)
        )
        right_h, right_edges = _right_factors(plan, w_h, edges, batch, steps)
        _run_cell(plan, xproj, h0, mask, right_h, right_edges, save, scales, out)
        ctx.plan = plan
        ctx.has_mask = mask is not None
        ctx.used = False
        saved = [h0, w_h, out, save, scales, *edges]
        if mask is not None:
            saved.append(mask)
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.used:
            # The pass below overwrites the saved activations with their gradients.
            raise RuntimeError(
                "The ENAS cell's backward pass cannot run twice on one forward pass "
                "(retain_graph=True is not supported)."
            )
        ctx.used = True
        plan: _CellPlan = ctx.plan
        saved = ctx.saved_tensors
        h0, w_h, out, save, scales = saved[:5]
        n_nodes = len(plan.activations)
        edges = saved[5 : 5 + n_nodes - 1]
        mask = saved[-1] if ctx.has_mask else None
        need_h0 = ctx.needs_input_grad[2]
        dtype = plan.matmul_dtype or w_h.dtype

        steps, batch, hidden = out.shape
        inv_loose = 1.0 / len(plan.loose_ends)
        # Nodes that others read: their states, recomputed from `save`, for all steps.
        readers = sorted(set(plan.inputs[1:]))
        slot = {j: k for k, j in enumerate(readers)}
        # Right multiplications by the transposed weights (d(input) = ds @ W^T).
        right_h, right_edges = _right_factors(
            plan, w_h.t(), tuple(w.t() for w in edges), batch, steps
        )
        grad_x, states, grad_nodes = _carve(
            out,
            (steps, batch, 2 * hidden),
            (len(readers), steps, batch, hidden),
            (n_nodes, batch, hidden),
        )
        grad_prev: torch.Tensor | None = None
        for t in range(steps - 1, -1, -1):
            h_prev = out[t - 1] if t > 0 else h0
            for j in readers:  # ascending, so each input's state is there (bitwise as forward)
                src = h_prev if j == 0 else states[slot[plan.inputs[j]], t]
                torch.lerp(
                    src, save[j, t, :, hidden:], save[j, t, :, :hidden], out=states[slot[j], t]
                )
            g_t = grad_out[t] if grad_prev is None else grad_out[t] + grad_prev
            if plan.max_norm is not None:
                g_t = g_t * scales[t]  # the clipping factor is a constant (ENAS-pytorch)
            grad_nodes.zero_()
            for k in plan.loose_ends:
                torch.mul(g_t, inv_loose, out=grad_nodes[k])
            for i in range(n_nodes - 1, -1, -1):
                g = grad_nodes[i]
                h_in = h_prev if i == 0 else states[slot[plan.inputs[i]], t]
                block = save[i, t]
                gate = block[:, :hidden]
                act = block[:, hidden:]
                # ds = d(pre-activations); for i >= 1 it overwrites [gate | act] in place,
                # so that after the loop save[i] holds node i's ds for every step.
                ds = grad_x[t] if i == 0 else block
                g_gate = g * gate
                # d(gate pre-activation) = g * (act - h_in) * c * (1 - c)
                d_gate = torch.sub(act, h_in).mul_(g)
                torch.ops.aten.sigmoid_backward.grad_input(d_gate, gate, grad_input=ds[:, :hidden])
                # d(candidate pre-activation) = g * c * act'
                name = plan.activations[i]
                d_act = ds[:, hidden:]
                if name == "identity":
                    d_act.copy_(g_gate)
                elif name == "tanh":
                    torch.ops.aten.tanh_backward.grad_input(g_gate, act, grad_input=d_act)
                elif name == "relu":
                    torch.ops.aten.threshold_backward.grad_input(g_gate, act, 0, grad_input=d_act)
                else:
                    torch.ops.aten.sigmoid_backward.grad_input(g_gate, act, grad_input=d_act)
                # d(h_in) += g * (1 - c) + ds @ W^T
                if i == 0:
                    if t > 0 or need_h0:
                        g_prev = right_h(ds).to(out.dtype)
                        if mask is not None:
                            g_prev.mul_(mask)
                        grad_prev = g_prev.add_(g).sub_(g_gate)
                else:
                    j = plan.inputs[i]
                    grad_nodes[j].add_(g).sub_(g_gate).add_(right_edges[i - 1](ds))
        del right_h, right_edges
        # Weight gradients: one (H, T*B) @ (T*B, 2H) product per weight over all steps, each
        # written once, instead of T rank-B updates that each read and write the whole matrix.
        rows = steps * batch
        grad_ws = _carve(w_h, *([tuple(w_h.shape)] * n_nodes))  # each stolen as a .grad
        prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        if mask is not None:
            prev.mul_(mask)
        _outer_into(grad_ws[0], prev.view(rows, hidden), grad_x.view(rows, 2 * hidden), dtype)
        del prev
        for i in range(1, n_nodes):
            h_in_rows = states[slot[plan.inputs[i]]].view(rows, hidden)
            _outer_into(grad_ws[i], h_in_rows, save[i].view(rows, 2 * hidden), dtype)
        needs = ctx.needs_input_grad
        return (
            None,
            grad_x if needs[1] else None,
            grad_prev if need_h0 else None,
            None,
            grad_ws[0] if needs[4] else None,
            *(g if needs[5 + k] else None for k, g in enumerate(grad_ws[1:])),
        )


def _init_range(hidden_size: int) -> float:
    # Official ENAS ptb_enas_child.py `_build_params`: uniform in [-r, r].
    if hidden_size <= 300:
        return 0.1
    if hidden_size <= 400:
        return 0.05
    return 0.04


class RNNLanguageModelShell:
    """What both RNN supernets (discrete :class:`RNNSupernet` and the relaxed one of
    :mod:`optuna_enas.oneshot`) share around their cell: the checked sizes and dropouts, the
    embedding, input/recurrent/edge weights and decoder (same names, same order, so one
    ``supernet_kwargs`` dict builds either and the same generator draws the same weights),
    their initialization, and the input checks. A mixin for an ``nn.Module``; no ``__init__``.
    """

    cell_space: RNNCellSpace
    vocab_size: int
    embed_size: int
    hidden_size: int
    tie_weights: bool
    dropout: float
    input_dropout: float
    hidden_dropout: float
    max_hidden_norm: float | None
    dropout_generator: torch.Generator | None
    embedding: nn.Parameter
    w_x: nn.Parameter
    w_h: nn.Parameter
    w_edges: nn.ModuleList
    decoder_weight: nn.Parameter | None
    decoder_bias: nn.Parameter

    def _build_language_model(
        self,
        space: RNNCellSpace,
        *,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        tie_weights: bool,
        dropout: float,
        input_dropout: float,
        hidden_dropout: float,
        max_hidden_norm: float | None,
    ) -> None:
        """Check the arguments and create the (uninitialized) weights on ``self``."""
        if not isinstance(space, RNNCellSpace):
            raise ValueError(f"space must be an RNNCellSpace, but got {space!r}.")
        self.cell_space = space
        self.vocab_size = check_int("vocab_size", vocab_size)
        self.embed_size = check_int("embed_size", embed_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        if not isinstance(tie_weights, bool):
            raise ValueError(f"tie_weights must be a bool, but got {tie_weights!r}.")
        if tie_weights and embed_size != hidden_size:
            raise ValueError(
                "tie_weights=True needs embed_size == hidden_size, but got "
                f"embed_size={embed_size!r} and hidden_size={hidden_size!r}."
            )
        self.tie_weights = tie_weights
        self.dropout = check_fraction("dropout", dropout)
        self.input_dropout = check_fraction("input_dropout", input_dropout)
        self.hidden_dropout = check_fraction("hidden_dropout", hidden_dropout)
        self.dropout_generator = None
        if max_hidden_norm is not None and (
            isinstance(max_hidden_norm, bool)
            or not isinstance(max_hidden_norm, (int, float))
            or not max_hidden_norm > 0.0
        ):
            raise ValueError(
                f"max_hidden_norm must be a positive float or None, but got {max_hidden_norm!r}."
            )
        self.max_hidden_norm = None if max_hidden_norm is None else float(max_hidden_norm)

        h2 = 2 * hidden_size
        self.embedding = nn.Parameter(torch.empty(vocab_size, embed_size))
        self.w_x = nn.Parameter(torch.empty(embed_size, h2))
        self.w_h = nn.Parameter(torch.empty(hidden_size, h2))
        # w_edges[i][j]: node j -> node i (i >= 1, j < i); w_edges[0] is empty.
        self.w_edges = nn.ModuleList(
            nn.ParameterList(nn.Parameter(torch.empty(hidden_size, h2)) for _ in range(i))
            for i in range(space.n_nodes)
        )
        self.decoder_weight = (
            None if tie_weights else nn.Parameter(torch.empty(vocab_size, hidden_size))
        )
        self.decoder_bias = nn.Parameter(torch.empty(vocab_size))

    def _init_language_model(self, generator: torch.Generator | None) -> None:
        """Uniform in ``[-r, r]`` (``r`` from the official code), decoder bias 0; the
        architecture parameters of a relaxed supernet (``arch.*``) are left alone."""
        r = _init_range(self.hidden_size)
        with torch.no_grad():
            for name, p in cast(nn.Module, self).named_parameters():
                if name == "decoder_bias":
                    p.zero_()
                elif not name.startswith("arch."):
                    p.uniform_(-r, r, generator=generator)

    def edge_weight(self, node: int, input_node: int) -> nn.Parameter:
        """The ``(hidden, 2 * hidden)`` weight node ``node`` uses when it reads ``input_node``.

        Node 0 reads the previous hidden state; its weight is :attr:`w_h` (``input_node`` must
        be -1).
        """
        n = self.cell_space.n_nodes
        if node == 0 and input_node == -1:
            return self.w_h
        if not (0 < node < n and 0 <= input_node < node):
            raise ValueError(
                f"(node, input_node) must satisfy 0 < node < {n} and 0 <= input_node < node "
                f"(or be (0, -1)), but got ({node!r}, {input_node!r})."
            )
        return cast(nn.Parameter, cast(nn.ParameterList, self.w_edges[node])[input_node])

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """A zero hidden state ``(batch_size, hidden_size)`` on the module's device and dtype."""
        check_int("batch_size", batch_size)
        return self.w_h.new_zeros((batch_size, self.hidden_size))

    def _check_tokens(self, tokens: torch.Tensor) -> tuple[int, int]:
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                "tokens must be an integer tensor of shape (T, B), but got "
                f"dtype={tokens.dtype} and shape={tuple(tokens.shape)}."
            )
        steps, batch = tokens.shape
        if steps < 1 or batch < 1:
            raise ValueError(f"tokens must not be empty, but got shape {tuple(tokens.shape)}.")
        return steps, batch

    def _check_hidden(self, name: str, hidden: torch.Tensor, batch: int) -> None:
        if hidden.shape != (batch, self.hidden_size):
            raise ValueError(
                f"{name} must have shape {(batch, self.hidden_size)}, but got "
                f"{tuple(hidden.shape)}."
            )


class RNNSupernet(RNNLanguageModelShell, nn.Module):
    """ENAS's shared-weight recurrent cell with embedding and decoder, for language modelling.

    Args:
        space: The cell search space; its ``n_nodes`` and activations fix the weights.
        vocab_size: Vocabulary size (10000 for PTB).
        embed_size: Embedding size. ENAS-pytorch's default is 1000 (``--shared_embed``).
        hidden_size: Hidden size. ENAS-pytorch's default is 1000 (``--shared_hid``); the
            official ``ptb_search.sh`` uses 720.
        tie_weights: Use the embedding as the decoder weight (ENAS-pytorch ``--tie_weights``
            default ``True``; the official code always ties). Needs ``embed_size ==
            hidden_size``.
        dropout: Output dropout, one mask per sequence shared over the steps ("locked"). Default
            0, no regularization; ENAS-pytorch uses 0.4 (``--shared_dropout``), the official
            ``ptb_search.sh`` 0.75 (``child_lstm_o_keep=0.25``).
        input_dropout: Locked dropout on the embedded tokens. Default 0; ENAS-pytorch uses 0.65
            (``--shared_dropouti``), the official ``ptb_search.sh`` 0.75 (``x_keep=0.25``).
        hidden_dropout: Variational dropout on the recurrent input ``h_{t-1}`` of node 0 (one
            mask per sequence). Default 0; the official ``ptb_search.sh`` drops 0.25
            (``h_keep=0.75``) at every node's input, ENAS-pytorch uses DropConnect instead.
        max_hidden_norm: Rescale every row of each step's cell output to at most this L2
            norm, the factor counting as a constant in the backward pass. Default 25, as
            ENAS-pytorch, which needs it because chains of ReLU and identity nodes make some
            sampled cells explode (its issue #6); the official code batch-normalizes instead.
            ``None`` disables it.
        generator: Generator for the initialization, uniform in ``[-r, r]`` with ``r`` from the
            official code (0.1 up to 300 hidden units, 0.05 up to 400, else 0.04). ``None``
            uses the default generator.
        bfloat16_matmul: Run every matmul (input projection, recurrence, decoder, and their
            gradients) in bfloat16, as ``torch.autocast`` would; weights, node states,
            gradients, logits and the loss stay in the weights' dtype. Default ``False``
            (not an ENAS setting). Worth it on CPUs with AVX-512 BF16/AMX and on GPUs; see
            BENCHMARKS.md for its speed and its effect on the loss curve.

    All dropouts are active only in training mode and draw from :attr:`dropout_generator`
    (a ``torch.Generator`` on the model's device; ``None``, the default, uses the device's
    default generator). Gradient clipping and the hidden-state detaching of truncated
    backpropagation are the caller's job.
    """

    def __init__(
        self,
        space: RNNCellSpace,
        *,
        vocab_size: int,
        embed_size: int = 64,
        hidden_size: int = 64,
        tie_weights: bool = True,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        max_hidden_norm: float | None = 25.0,
        generator: torch.Generator | None = None,
        bfloat16_matmul: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(bfloat16_matmul, bool):
            raise ValueError(f"bfloat16_matmul must be a bool, but got {bfloat16_matmul!r}.")
        self.bfloat16_matmul = bfloat16_matmul
        self._build_language_model(
            space,
            vocab_size=vocab_size,
            embed_size=embed_size,
            hidden_size=hidden_size,
            tie_weights=tie_weights,
            dropout=dropout,
            input_dropout=input_dropout,
            hidden_dropout=hidden_dropout,
            max_hidden_norm=max_hidden_norm,
        )
        self.space = space
        self.reset_parameters(generator=generator)

    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        """Re-initialize every weight from ``generator`` (the default generator if ``None``)."""
        self._init_language_model(generator)

    def _plan(self, arch: Architecture) -> _CellPlan:
        self.space.check_architecture(arch)
        nodes = self.space.cell(arch)
        return _CellPlan(
            inputs=tuple(-1 if n.input is None else n.input for n in nodes),
            activations=tuple(n.activation for n in nodes),
            loose_ends=tuple(self.space.loose_ends(arch)),
            max_norm=self.max_hidden_norm,
            matmul_dtype=torch.bfloat16 if self.bfloat16_matmul else None,
        )

    def forward(
        self, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the cell chosen by ``arch`` over a batch of token sequences.

        Args:
            tokens: Token ids, ``(T, B)``, an integer tensor.
            hidden: The hidden state ``(B, hidden_size)`` carried from the previous batch
                (:meth:`init_hidden` for the first one).
            arch: An architecture of :attr:`space`.

        Returns:
            The logits ``(T, B, vocab_size)`` and the last hidden state ``(B, hidden_size)``.
        """
        plan = self._plan(arch)
        steps, batch = self._check_tokens(tokens)
        self._check_hidden("hidden", hidden, batch)
        xproj = self._project(tokens)
        mask = self._hidden_mask(hidden)
        out = self._recurrence(plan, xproj, hidden, mask, self._edges(plan))
        last = out[-1].clone()  # a view would keep the saved activations alive (see _carve)
        out = self._output_dropout(out)
        return self.decode(out), last

    def forward_many(
        self, tokens: torch.Tensor, hiddens: Sequence[torch.Tensor], archs: Sequence[Architecture]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run several architectures over the same tokens, sharing what they can.

        The embedding lookup and the input projection run once for all architectures. Without
        gradients the cells also run in lockstep (:func:`_run_cells_lockstep`): at each step and
        node, the architectures that use the same weight (``w_h`` all of them) share one
        product, and each weight is packed once. Decode the returned states with :meth:`decode`,
        which can take all of them in one product. In training mode the dropout masks are
        drawn once and shared by the architectures.

        Args:
            tokens: Token ids ``(T, B)``.
            hiddens: One hidden state ``(B, hidden_size)`` per architecture.
            archs: Architectures of :attr:`space`.

        Returns:
            The cell outputs ``(M, T, B, hidden_size)`` (output dropout applied, as
            :meth:`forward` feeds its decoder) and the last hidden states, one per architecture.
            ``decode(states[m])`` equals ``forward(tokens, hiddens[m], archs[m])[0]`` up to
            float rounding.
        """
        plans = [self._plan(a) for a in archs]
        if len(plans) == 0:
            raise ValueError("archs must not be empty.")
        if len(hiddens) != len(plans):
            raise ValueError(
                f"hiddens must have one state per architecture ({len(plans)}), but got "
                f"{len(hiddens)}."
            )
        steps, batch = self._check_tokens(tokens)
        for h in hiddens:
            self._check_hidden("hiddens[m]", h, batch)
        xproj = self._project(tokens)
        mask = self._hidden_mask(hiddens[0])
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        dtype = torch.bfloat16 if self.bfloat16_matmul else self.w_h.dtype
        pack = steps >= _PACK_MIN_STEPS
        packed: dict[tuple[int, int], _Right] = {}

        def right(node: int, input_node: int) -> _Right:
            key = (node, input_node)
            if key not in packed:
                packed[key] = _Right(self.edge_weight(node, input_node), batch, dtype, pack)
            return packed[key]

        if grad:
            outs = [
                self._recurrence(plan, xproj, h, mask, self._edges(plan))
                for plan, h in zip(plans, hiddens, strict=True)
            ]
            stacked = torch.stack(outs)
        else:
            stacked = xproj.new_empty((len(plans), steps, batch, self.hidden_size))
            if len(plans) == 1:  # nothing to share in the cell
                plan = plans[0]
                edges = [right(i, plan.inputs[i]) for i in range(1, len(plan.inputs))]
                _run_cell(
                    plan, xproj, hiddens[0], mask, right(0, -1), edges, None, None, stacked[0]
                )
            else:
                h0 = torch.stack([h.to(xproj.dtype) for h in hiddens])
                _run_cells_lockstep(plans, xproj, h0, mask, right, stacked)
        lasts = [stacked[m, -1].clone() for m in range(len(plans))]
        return self._output_dropout(stacked), lasts

    def decode(self, states: torch.Tensor) -> torch.Tensor:
        """The decoder alone: logits ``(..., vocab_size)`` of cell outputs ``(..., hidden)``."""
        weight = self.embedding if self.decoder_weight is None else self.decoder_weight
        flat = states.reshape(-1, self.hidden_size)
        logits = self._mm(flat, weight.t(), self.decoder_bias)
        return logits.view(*states.shape[:-1], self.vocab_size)

    def _project(self, tokens: torch.Tensor) -> torch.Tensor:
        """The embedded tokens (input dropout applied) times ``w_x``: ``(T, B, 2H)``."""
        steps, batch = tokens.shape
        emb = F.embedding(tokens, self.embedding)
        if self.training and self.input_dropout > 0.0:
            emb = emb * _dropout_mask(
                emb, (1, batch, self.embed_size), self.input_dropout, self.dropout_generator
            )
        xproj = self._mm(emb.reshape(steps * batch, self.embed_size), self.w_x)
        return xproj.view(steps, batch, 2 * self.hidden_size)

    def _hidden_mask(self, hidden: torch.Tensor) -> torch.Tensor | None:
        if not (self.training and self.hidden_dropout > 0.0):
            return None
        return _dropout_mask(
            hidden, tuple(hidden.shape), self.hidden_dropout, self.dropout_generator
        )

    def _output_dropout(self, out: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.dropout > 0.0):
            return out
        # one mask per sequence, shared over the steps (and over forward_many's architectures)
        shape = (*([1] * (out.dim() - 2)), out.shape[-2], self.hidden_size)
        return out * _dropout_mask(out, shape, self.dropout, self.dropout_generator)

    def _edges(self, plan: _CellPlan) -> tuple[torch.Tensor, ...]:
        return tuple(self.edge_weight(i, plan.inputs[i]) for i in range(1, len(plan.inputs)))

    def _mm(
        self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``a @ b (+ bias)``; in bfloat16 mode the product runs in bfloat16, the result is not."""
        if not self.bfloat16_matmul:
            return torch.mm(a, b) if bias is None else torch.addmm(bias, a, b)
        low = torch.bfloat16
        y = torch.mm(a.to(low), b.to(low))
        return y.to(a.dtype) if bias is None else torch.add(bias, y)

    def _recurrence(
        self,
        plan: _CellPlan,
        xproj: torch.Tensor,
        hidden: torch.Tensor,
        mask: torch.Tensor | None,
        edges: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        device_type = xproj.device.type
        if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
            # The recurrence runs in the weights' dtype; the decoder stays autocast.
            with torch.autocast(device_type, enabled=False):
                dtype = self.w_h.dtype
                return self._recurrence(plan, xproj.to(dtype), hidden.to(dtype), mask, edges)
        if torch.is_grad_enabled() and any(
            t.requires_grad for t in (xproj, hidden, self.w_h, *edges)
        ):
            out: torch.Tensor = _CellSequence.apply(plan, xproj, hidden, mask, self.w_h, *edges)
            return out
        right_h, right_edges = _right_factors(
            plan, self.w_h, edges, xproj.shape[1], xproj.shape[0]
        )
        return _run_cell(plan, xproj, hidden, mask, right_h, right_edges, None, None, None)

    def extra_repr(self) -> str:
        return (
            f"n_nodes={self.space.n_nodes}, vocab_size={self.vocab_size}, "
            f"embed_size={self.embed_size}, hidden_size={self.hidden_size}, "
            f"tie_weights={self.tie_weights}, dropout={self.dropout}, "
            f"input_dropout={self.input_dropout}, hidden_dropout={self.hidden_dropout}, "
            f"max_hidden_norm={self.max_hidden_norm}, bfloat16_matmul={self.bfloat16_matmul}"
        )


def _dropout_mask(
    like: torch.Tensor, shape: tuple[int, ...], p: float, generator: torch.Generator | None
) -> torch.Tensor:
    keep = 1.0 - p
    return like.new_empty(shape).bernoulli_(keep, generator=generator).div_(keep)
