"""Building blocks of the relaxed supernets: mixed ops, scaled sums, and their initialisation.

A *mixed op* (DARTS, Liu et al. 2019, Eq. 2; ``MixedOp`` in ``cnn/model_search.py`` lines
10-22 of quark0/darts) applies every candidate op to its input and returns the weighted sum
``sum_o w_o * op_o(x)``; the zero op (DARTS's ``'none'``) contributes ``w_zero * 0`` and so is
never computed. A *scaled sum* (DSO-NAS, Zhang et al. 2018, Eq. 2) is the same sum with raw
scaling factors ``lambda`` in place of the softmax weights: a factor that is exactly 0 removes
its term exactly (``0 * y == 0`` for every finite ``y``). The terms are always computed, so a
zero factor still receives the gradient ``y`` (a proximal step may bring it back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


ZERO_OP = "zero"
"""The name of the zero op in the DARTS mixtures (DARTS calls it ``'none'``)."""
PARAM_FREE_OPS = frozenset({"identity", "avgpool", "maxpool"})
"""Ops without weights of their own: the ops one-shot searches collapse to (``param_free_share``).

The RNN's ``identity`` activation still multiplies by its edge's matrix, but like a skip
connection it adds no non-linearity; DARTS's recurrent collapse is a cell of identities.
"""
DARTS_ALPHA_INIT_SCALE = 1e-3
"""``alpha = 1e-3 * randn``: DARTS ``_initialize_alphas`` (``cnn/model_search.py`` line 123,
``rnn/model_search.py`` line 61 of quark0/darts)."""


def darts_alpha(shape: tuple[int, ...], generator: torch.Generator | None) -> nn.Parameter:
    """A DARTS architecture logit tensor, ``1e-3 * N(0, 1)`` from ``generator``."""
    alpha = torch.randn(shape, generator=generator) * DARTS_ALPHA_INIT_SCALE
    return nn.Parameter(alpha)


def constant_lambda(shape: tuple[int, ...], value: float) -> nn.Parameter:
    """A DSO-NAS scaling-factor tensor, every entry ``value``."""
    return nn.Parameter(torch.full(shape, float(value)))


def scaled_sum(terms: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[k] * terms[k]`` (``weights`` a 1-D tensor, one entry per term)."""
    if len(terms) != weights.numel() or len(terms) == 0:
        raise ValueError(
            f"scaled_sum needs one weight per term, but got {len(terms)} terms and "
            f"{weights.numel()} weights."
        )
    out = weights[0] * terms[0]
    for k in range(1, len(terms)):
        out = out + weights[k] * terms[k]
    return out


class MixedOp(nn.Module):
    """Every candidate op of one edge; ``forward(x, weights)`` is their weighted sum.

    The zero op is not a module: give it no weight here (its term is 0). The candidates live
    in a :class:`~torch.nn.ModuleDict` keyed by op name, the layout of the discrete supernets'
    per-edge ``ModuleDict`` (so their state-dict names map one to one).

    Args:
        ops: ``{name: module}``, in the order of ``weights``.
    """

    def __init__(self, ops: dict[str, nn.Module]) -> None:
        super().__init__()
        if not ops:
            raise ValueError("ops must not be empty.")
        self.ops = nn.ModuleDict(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return scaled_sum([op(x) for op in self.ops.values()], weights)


def strongest(values: torch.Tensor, *, exclude: int | None = None) -> int | None:
    """Index of the largest entry (the first of equal ones), skipping ``exclude``.

    Returns ``None`` when no entry is strictly positive (e.g. every ``|lambda|`` is 0).
    """
    v = values.detach().double().flatten().clone()
    if exclude is not None:
        v[exclude] = -float("inf")
    best = int(torch.argmax(v))  # torch.argmax returns the first maximal index
    return best if float(v[best]) > 0.0 else None


__all__ = [
    "DARTS_ALPHA_INIT_SCALE",
    "PARAM_FREE_OPS",
    "ZERO_OP",
    "MixedOp",
    "constant_lambda",
    "darts_alpha",
    "scaled_sum",
    "strongest",
]
