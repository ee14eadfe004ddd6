"""The one-shot contract: the base class of the relaxed (continuous) supernets.

A relaxed supernet holds two disjoint sets of parameters: the *weights*, laid out like the
discrete ENAS supernet of the same space wherever the math allows (so that
:meth:`RelaxedSupernet.discrete_state_dict` can hand them to
:func:`~optuna_enas.training._trainer.build_supernet`'s model), and the *architecture
parameters*, kept in the :class:`~torch.nn.ParameterDict` :attr:`RelaxedSupernet.arch`:

* ``"darts"`` (Liu, Simonyan and Yang, ICLR 2019, Sec. 2.2): logits ``alpha``; each edge mixes
  its candidate ops with ``softmax(alpha)``, the candidates including a zero op where the space
  allows the edge to vanish;
* ``"dsonas"`` (Zhang et al., 2018, "You Only Search Once", Sec. 3): raw scaling factors
  ``lambda`` multiplying each connection (and each op where the space has an op choice); a
  ``lambda`` that is exactly 0 removes its term exactly.

The forward pass has the signature of the discrete supernet with ``arch`` ignored (it must be
``None``), so :class:`~optuna_enas.training._tasks.LMTask` and
:class:`~optuna_enas.training._tasks.ImageTask` train and score a relaxed supernet unchanged.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import cast

import torch
from torch import nn

from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


if TYPE_CHECKING:
    pass


Relaxation = Literal["darts", "dsonas"]
RELAXATIONS: tuple[Relaxation, ...] = ("darts", "dsonas")
ARCH_PREFIX = "arch."
"""State-dict prefix of the architecture parameters (``alpha`` / ``lambda``)."""
ONE_HOT_LOGIT = 1e4
"""A projected DARTS logit: ``softmax`` / ``sigmoid`` of +-1e4 are exactly 0 and 1."""


def check_relaxation(value: Any) -> Relaxation:
    """``value`` if it is ``"darts"`` or ``"dsonas"``; a ValueError naming it otherwise."""
    if value not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {list(RELAXATIONS)}, but got {value!r}.")
    return value


def check_arch_none(arch: object) -> None:
    """The relaxed forward takes ``arch`` only for signature compatibility: it must be None."""
    if arch is not None:
        raise ValueError(
            "a relaxed supernet mixes every architecture; arch must be None, but got "
            f"{arch!r} (score a derived architecture with the discrete supernet)."
        )


def normalized_entropy(p: torch.Tensor) -> float:
    """Entropy of the distribution ``p`` (non-negative, summing to 1) divided by ``log(len)``.

    A one-entry distribution, or an all-zero vector (every ``lambda`` of a node pruned), has
    entropy 0.
    """
    p = p.detach().double().flatten()
    n = p.numel()
    total = float(p.sum())
    if n < 2 or total <= 0.0:
        return 0.0
    p = p / total
    nz = p[p > 0]
    return float(-(nz * nz.log()).sum()) / math.log(n)


def abs_distribution(values: torch.Tensor) -> torch.Tensor:
    """``|values| / sum |values|`` (all zeros when every entry is 0): a DSO-NAS node's mix."""
    a = values.detach().abs()
    total = a.sum()
    return a / total if float(total) > 0.0 else a


class RelaxedSupernet(nn.Module):
    """Base class of the relaxed supernets of the three ENAS spaces (issue #14's contract).

    Subclasses put every architecture parameter into :attr:`arch` and implement
    :meth:`derive`, :meth:`arch_tables`, :meth:`_distributions`, :meth:`_param_free_share`,
    :meth:`_projection` (for :meth:`projected`) and, for ``"dsonas"``, :meth:`sparse_groups`;
    they override :meth:`discrete_state_dict` where their weight names differ from the
    discrete supernet's.

    Attributes:
        space: The search space (an ``RNNCellSpace``, ``MicroSpace`` or ``MacroSpace``).
        relaxation: ``"darts"`` or ``"dsonas"``.
        arch: The architecture parameters, by name.
    """

    space: SearchSpace
    relaxation: Relaxation

    def __init__(self, space: SearchSpace, relaxation: Relaxation) -> None:
        super().__init__()
        self.space = space
        self.relaxation = check_relaxation(relaxation)
        self.arch = nn.ParameterDict()

    # -- the two parameter sets ------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """``alpha`` (darts) or ``lambda`` (dsonas), in a fixed order; disjoint from weights."""
        # Under torch.func.functional_call the entries are plain tensors: no isinstance filter.
        return [cast(nn.Parameter, p) for p in self.arch.values()]

    def named_arch_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs of :meth:`arch_parameters` (names without the prefix)."""
        return [(k, cast(nn.Parameter, p)) for k, p in self.arch.items()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # -- what the relaxation currently encodes ---------------------------------------------------
    def derive(self) -> Architecture:
        """The discrete architecture of :attr:`space` the architecture parameters encode."""
        raise NotImplementedError

    def arch_tables(self) -> dict[str, list[list[float]]]:
        """Named tables of the architecture weights (softmaxed for darts, raw for dsonas)."""
        raise NotImplementedError

    def _distributions(self) -> list[torch.Tensor]:
        """The per-edge / per-node distributions whose mean normalised entropy is reported."""
        raise NotImplementedError

    def _param_free_share(self, arch: Architecture) -> float:
        """Share of parameter-free ops (identity, pooling) among the ops of ``arch``."""
        raise NotImplementedError

    def _summary_extra(self, arch: Architecture) -> dict[str, float]:
        """More summary entries of a subclass (e.g. fallbacks used by :meth:`derive`)."""
        return {}

    def arch_summary(self) -> dict[str, float]:
        """Summaries for trial user attrs.

        ``entropy``: mean normalised entropy of the per-edge (darts) or per-node (dsonas,
        ``|lambda|`` normalised) distributions, in ``[0, 1]``; ``sparsity``: share of the
        architecture entries that are exactly 0; ``param_free_share``: share of
        parameter-free ops among the ops of :meth:`derive`; plus subclass entries.
        """
        # A one-entry distribution (node 1's single input) says nothing: left out of the mean.
        dists = [d for d in self._distributions() if d.numel() >= 2]
        entropy = sum(normalized_entropy(d) for d in dists) / max(len(dists), 1)
        params = self.arch_parameters()
        n = sum(p.numel() for p in params)
        zeros = sum(int((p.detach() == 0).sum()) for p in params)
        arch = self.derive()
        out = {
            "entropy": float(entropy),
            "sparsity": zeros / n if n else 0.0,
            "param_free_share": float(self._param_free_share(arch)),
        }
        out.update(self._summary_extra(arch))
        return out

    def _projection(self, arch: Architecture) -> dict[str, torch.Tensor]:
        """Architecture-parameter values (by name in :attr:`arch`) encoding only ``arch``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def projected(self, arch: Architecture | None = None) -> Iterator[Architecture]:
        """Inside the block the architecture parameters encode only ``arch`` (default
        :meth:`derive`); they are restored on exit. Yields the architecture.

        darts: logits of +-1e4, so every mixture is exactly one op (the unchosen edges exactly
        their zero op) and every macro gate exactly 0 or 1; dsonas: the chosen factors keep
        their values (1 where :meth:`derive` fell back on an all-zero node), every other factor
        is 0 -- DSO-NAS's pruned network, before retraining. This scores an architecture
        inside the relaxed supernet, the ``discretization accuracy`` of Wang et al. (ICLR 2021,
        "Rethinking Architecture Selection in Differentiable NAS"), with the weights and the
        factors' scale the search trained. Micro: projected, a block's two inputs tie, so
        :meth:`derive` inside the block may list them in the other order (the same network).
        """
        arch = self.derive() if arch is None else self.space.coerce(arch)
        values = self._projection(arch)
        saved = {k: p.detach().clone() for k, p in self.named_arch_parameters()}
        try:
            with torch.no_grad():
                for k, v in values.items():
                    self.arch[k].copy_(v)
            yield arch
        finally:
            with torch.no_grad():
                for k, v in saved.items():
                    self.arch[k].copy_(v)

    def sparse_groups(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """dsonas: each ``lambda`` with a same-shape tensor of the FLOPs its entries gate.

        The FLOPs (multiply-adds counted as 2) are per example (per token for the RNN), on the
        parameter's device and dtype, for the FLOPs-adaptive penalty of DSO-NAS (Sec. 3.3).
        darts returns ``[]``.
        """
        return []

    # -- weight transfer -------------------------------------------------------------------------
    def discrete_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under the discrete supernet's names, detached.

        ``build_supernet(space, data, kwargs, g).load_state_dict(sd, strict=False)`` then
        gives the discrete supernet these weights, so the existing evaluators score
        :meth:`derive` with inherited weights. This default drops the architecture
        parameters and keeps every other name; subclasses remap differing names.
        """
        return {
            k: v.detach() for k, v in self.state_dict().items() if not k.startswith(ARCH_PREFIX)
        }


__all__ = [
    "ARCH_PREFIX",
    "RELAXATIONS",
    "Relaxation",
    "RelaxedSupernet",
    "check_relaxation",
]
