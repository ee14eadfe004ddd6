"""Relaxations of a :class:`~optuna_enas.nn.Supernet`: one-shot search over its choice modules.

A relaxation holds *architecture parameters*, one vector per decision of ``supernet.space``,
and turns them into the mixing vectors of the choice modules (:meth:`ChoiceRelaxation.mix` calls
``supernet.set_mix``), so the forward of the user's model returns the weighted sum over every
choice (:mod:`optuna_enas.nn._choices`, "mixed" mode) and the loss is differentiable in the
architecture parameters. Nothing in the model is rewritten: a relaxation is applied to the
choice modules, the same ones that :meth:`Supernet.activate` routes discretely.

* :class:`DARTSRelaxation` (Liu, Simonyan and Yang, ICLR 2019, Sec. 2.1, eq. 1): logits
  ``alpha`` per decision, mixing weights ``softmax(alpha)``; an any-subset
  :class:`~optuna_enas.nn.InputChoice` (``n_chosen=None``) gets a 2-way softmax per input
  (off / on), whose "on" weight scales the input. Initialisation ``1e-3 * N(0, 1)`` as the
  official code (quark0/darts ``cnn/model_search.py`` ``_initialize_alphas``). Derived
  architecture: the argmax of every decision (Sec. 2.4, per decision rather than per node:
  a user model has no DARTS cell whose top-2 rule would apply).
* :class:`DSONASRelaxation` (Zhang, Huang and Wang, 2019, "You Only Search Once", Sec. 3):
  a raw scaling factor ``lambda`` per choice (one per input of an any-subset InputChoice),
  initialised to 1 as the official code (XinbangZhang/DSO-NAS ``Cifar/train_search.py``
  ``init_param``); the mixing weights are the factors themselves, so a factor at exactly 0
  removes its candidate. The factors are meant to be trained with the L1-penalised APG
  (:class:`~optuna_enas.oneshot._apg.APG`). Derived architecture: the choice with the largest
  ``|lambda|`` per decision; an any-subset input is kept iff its factor is non-zero (as the
  built-in macro supernet's skips).

What cannot be relaxed is refused when the relaxation is built, naming the label:
an :class:`~optuna_enas.nn.InputChoice` with ``reduction="concat"`` (the output width would
depend on the choice), and a
:class:`~optuna_enas.nn.ValueChoice` that no elastic layer uses (the model's own code reads
``.value``, which has no meaning in a mixture). With
``example_input`` the constructor also runs one mixed forward and names the label of the
choice module where it fails (e.g. a :class:`~optuna_enas.nn.LayerChoice` whose candidates
return tuples).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas.nn._choices import InputChoice
from optuna_enas.nn._choices import LayerChoice
from optuna_enas.nn._choices import ValueChoice
from optuna_enas.nn._choices import _Chooser
from optuna_enas.nn._elastic import ElasticBatchNorm2d
from optuna_enas.nn._elastic import ElasticConv2d
from optuna_enas.nn._elastic import ElasticLinear
from optuna_enas.nn._supernet import Supernet
from optuna_enas.oneshot._relaxed import abs_distribution
from optuna_enas.oneshot._relaxed import normalized_entropy
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Decision


_ELASTIC = (ElasticConv2d, ElasticLinear, ElasticBatchNorm2d)
DARTS_INIT_STD = 1e-3
"""``alpha = 1e-3 * randn``: quark0/darts ``cnn/model_search.py`` ``_initialize_alphas``."""
DSONAS_INIT = 1.0
"""``lambda = 1``: XinbangZhang/DSO-NAS ``Cifar/train_search.py`` ``init_param``."""


def _gate_names(supernet: Supernet) -> dict[str, str]:
    """Decision name -> label of the any-subset InputChoice gates (one 0/1 decision per
    input)."""
    return {
        d.name: c.label
        for c in supernet.choices
        if isinstance(c, InputChoice) and c.n_chosen is None
        for d in c.decisions()
    }


def check_relaxable(supernet: Supernet) -> None:
    """Raise a ValueError naming the label of a choice module that cannot be relaxed."""
    used: set[int] = set()
    for m in supernet.modules():
        if isinstance(m, _ELASTIC):
            used.update(id(v) for v in vars(m).values() if isinstance(v, ValueChoice))
    for c in supernet.choices:
        if isinstance(c, InputChoice) and c.reduction == "concat":
            raise ValueError(
                f"InputChoice {c.label!r} has reduction 'concat', which cannot be relaxed "
                "(a mixture of concatenations of different inputs has no fixed width); use "
                "reduction 'sum' or 'mean' for DARTS / DSO-NAS, or search it with a sampler."
            )
        if isinstance(c, ValueChoice) and id(c) not in used:
            raise ValueError(
                f"ValueChoice {c.label!r} is not used by an elastic layer (ElasticConv2d, "
                "ElasticLinear, ElasticBatchNorm2d): the model's own code reads its value, "
                "which a relaxation cannot mix. Pass it to elastic layers, or search it with "
                "a sampler."
            )


class ChoiceRelaxation(nn.Module):
    """The architecture parameters of a supernet and how they mix its choices (base class).

    Subclasses: :class:`DARTSRelaxation`, :class:`DSONASRelaxation`. The supernet is not a
    submodule: :meth:`parameters` yields the architecture parameters only.

    Args:
        supernet: The :class:`~optuna_enas.nn.Supernet` to relax.
        example_input: If given, one mixed forward (eval mode, no gradients) checks that
            every choice module can be mixed, and names the label where it fails.
    """

    method: str = "relaxation"
    _supernet: Supernet  # not a submodule: set with object.__setattr__

    def __init__(self, supernet: Supernet, *, example_input: Any = None) -> None:
        super().__init__()
        if not isinstance(supernet, Supernet):
            raise ValueError(
                "supernet must be an optuna_enas.nn.Supernet (wrap your model: "
                f"Supernet(model)), but got {type(supernet).__name__}."
            )
        check_relaxable(supernet)
        object.__setattr__(self, "_supernet", supernet)
        self._decisions: tuple[Decision, ...] = supernet.space.decisions
        self._gates = _gate_names(supernet)
        device = next((p.device for p in supernet.parameters()), torch.device("cpu"))
        self.params = nn.ParameterList(
            [nn.Parameter(self._init(d).to(device)) for d in self._decisions]
        )
        if example_input is not None:
            self.check_forward(example_input)

    # -- what subclasses define ------------------------------------------------------------------
    def _init(self, d: Decision) -> torch.Tensor:
        raise NotImplementedError

    def _vector(self, d: Decision, p: torch.Tensor) -> torch.Tensor:
        """The mixing vector over ``d.choices`` from its architecture parameter ``p``."""
        raise NotImplementedError

    def _pick(self, d: Decision, p: torch.Tensor) -> int:
        """The index of the derived choice of ``d``."""
        raise NotImplementedError

    def _distribution(self, d: Decision, p: torch.Tensor) -> torch.Tensor | None:
        """What :meth:`arch_summary`'s entropy reads (``None``: left out)."""
        raise NotImplementedError

    # -- the relaxation --------------------------------------------------------------------------
    @property
    def supernet(self) -> Supernet:
        return self._supernet

    def arch_parameters(self) -> list[nn.Parameter]:
        """One parameter per decision, in the order of ``supernet.space.decisions``."""
        return list(self.params)

    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """``(decision name, parameter)`` pairs."""
        return zip((d.name for d in self._decisions), self.params, strict=True)

    def mix_weights(self) -> dict[str, torch.Tensor]:
        """The mixing vector of every decision (differentiable in the parameters)."""
        return {
            d.name: self._vector(d, p) for d, p in zip(self._decisions, self.params, strict=True)
        }

    def mix(self) -> None:
        """Put the supernet in mixed mode with the current weights (before every forward
        whose loss should reach the architecture parameters)."""
        self.supernet.set_mix(self.mix_weights())

    def derive(self) -> Architecture:
        """The discrete architecture the parameters encode."""
        with torch.no_grad():
            pairs = zip(self._decisions, self.params, strict=True)
            indices = [self._pick(d, p.detach()) for d, p in pairs]
        return self.supernet.space.from_indices(indices)

    def arch_tables(self) -> dict[str, list[list[float]]]:
        """One table per label for the trial record: the mixing weights over its choices (one
        row), or for an any-subset InputChoice one row of the per-input "on" weights
        (DARTS: softmaxed probabilities; DSO-NAS: raw factors)."""
        tables: dict[str, list[list[float]]] = {}
        with torch.no_grad():
            for d, p in zip(self._decisions, self.params, strict=True):
                w = self._vector(d, p.detach()).double().cpu()
                if d.name in self._gates:
                    label = self._gates[d.name]
                    tables.setdefault(label, [[]])[0].append(float(w[1]))
                else:
                    tables[d.name] = [w.tolist()]
        return tables

    def arch_summary(self) -> dict[str, float]:
        """``entropy``: mean normalised entropy of the decisions' distributions (DARTS:
        softmax; DSO-NAS: ``|lambda|`` normalised), in ``[0, 1]``; ``sparsity``: share of the
        architecture entries exactly 0; ``param_free_share``: share of the derived
        :class:`~optuna_enas.nn.LayerChoice` candidates without parameters (a drift towards
        identities and poolings is DARTS's collapse, Zela et al. ICLR 2020)."""
        with torch.no_grad():
            dists = [
                self._distribution(d, p.detach())
                for d, p in zip(self._decisions, self.params, strict=True)
            ]
            kept = [x for x in dists if x is not None and x.numel() >= 2]
            entropy = sum(normalized_entropy(x) for x in kept) / max(len(kept), 1)
            n = sum(p.numel() for p in self.params)
            zeros = sum(int((p.detach() == 0).sum()) for p in self.params)
        arch = self.derive().to_params()
        layer_choices = {c.label: c for c in self.supernet.choices if isinstance(c, LayerChoice)}
        free = [
            not any(True for _ in c.candidate(arch[label]).parameters())
            for label, c in layer_choices.items()
        ]
        return {
            "entropy": float(entropy),
            "sparsity": zeros / n if n else 0.0,
            "param_free_share": sum(free) / len(free) if free else 0.0,
        }

    # -- the construction-time check --------------------------------------------------------------
    def check_forward(self, example_input: Any) -> None:
        """One mixed forward on ``example_input``; a failure names the innermost choice
        module (its label) that was running."""
        net = self.supernet
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        labels: dict[nn.Module, str] = {}
        for m in net.modules():
            if isinstance(m, _Chooser):
                labels[m] = f"{type(m).__name__} {m.label!r}"
            elif isinstance(m, _ELASTIC):
                vcs = [v.label for v in vars(m).values() if isinstance(v, ValueChoice)]
                if vcs:
                    labels[m] = f"{type(m).__name__} of ValueChoice {', '.join(map(repr, vcs))}"
        stack: list[str] = []
        failed: list[str] = []

        def enter(module: nn.Module, _: Any) -> None:
            stack.append(labels[module])

        def leave(module: nn.Module, _: Any, __: Any) -> None:
            stack.pop()

        handles = [m.register_forward_pre_hook(enter) for m in labels]
        handles += [m.register_forward_hook(leave) for m in labels]
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                self.mix()
                try:
                    net(*args)
                except Exception as e:
                    failed.append(stack[-1] if stack else "the model outside any choice module")
                    raise ValueError(
                        f"{self.method}: the mixed forward fails in {failed[0]}: "
                        f"{type(e).__name__}: {e}. Mixed mode sums the candidates' outputs "
                        "weighted; every candidate must return one tensor of one shape."
                    ) from e
        finally:
            for h in handles:
                h.remove()
            net.deactivate()
            net.train(was_training)


class DARTSRelaxation(ChoiceRelaxation):
    """DARTS's softmax relaxation of a supernet's choices (see the module docstring).

    Example:

        .. code-block:: python

            relax = DARTSRelaxation(supernet, generator=torch.Generator().manual_seed(0))
            relax.mix()  # supernet(x) is now the softmax mixture
            loss = F.cross_entropy(supernet(x), y)
            loss.backward()  # gradients reach relax.arch_parameters()
            model = supernet.export(relax.derive())

    Args:
        supernet: The supernet.
        init_std: Standard deviation of the initial logits, ``1e-3`` (:data:`DARTS_INIT_STD`).
        generator: Draws the initial logits (reproducible with a seeded generator).
        example_input: See :class:`ChoiceRelaxation`.
    """

    method = "darts"

    def __init__(
        self,
        supernet: Supernet,
        *,
        init_std: float = DARTS_INIT_STD,
        generator: torch.Generator | None = None,
        example_input: Any = None,
    ) -> None:
        if not isinstance(init_std, (int, float)) or isinstance(init_std, bool) or init_std < 0:
            raise ValueError(f"init_std must be a number >= 0, but got {init_std!r}.")
        self.init_std = float(init_std)
        self._generator = generator
        super().__init__(supernet, example_input=example_input)

    def _init(self, d: Decision) -> torch.Tensor:
        return self.init_std * torch.randn(len(d.choices), generator=self._generator)

    def _vector(self, d: Decision, p: torch.Tensor) -> torch.Tensor:
        return F.softmax(p, dim=-1)

    def _pick(self, d: Decision, p: torch.Tensor) -> int:
        return int(torch.argmax(p))

    def _distribution(self, d: Decision, p: torch.Tensor) -> torch.Tensor | None:
        return F.softmax(p, dim=-1)


class DSONASRelaxation(ChoiceRelaxation):
    """DSO-NAS's scaling factors on a supernet's choices (see the module docstring).

    Args:
        supernet: The supernet.
        init: The factors' initial value, 1 (:data:`DSONAS_INIT`).
        example_input: See :class:`ChoiceRelaxation`.
    """

    method = "dsonas"

    def __init__(
        self, supernet: Supernet, *, init: float = DSONAS_INIT, example_input: Any = None
    ) -> None:
        if not isinstance(init, (int, float)) or isinstance(init, bool) or not init > 0:
            raise ValueError(f"init must be a number > 0, but got {init!r}.")
        self.init = float(init)
        super().__init__(supernet, example_input=example_input)

    def _init(self, d: Decision) -> torch.Tensor:
        n = 1 if d.name in self._gates else len(d.choices)
        return torch.full((n,), self.init)

    def _vector(self, d: Decision, p: torch.Tensor) -> torch.Tensor:
        if d.name in self._gates:  # choices (0, 1): "off" contributes nothing
            return torch.cat([torch.zeros_like(p), p])
        return p

    def _pick(self, d: Decision, p: torch.Tensor) -> int:
        if d.name in self._gates:
            return int(float(p[0]) != 0.0)
        return int(torch.argmax(p.abs()))

    def _distribution(self, d: Decision, p: torch.Tensor) -> torch.Tensor | None:
        return None if d.name in self._gates else abs_distribution(p)


__all__ = [
    "DARTSRelaxation",
    "DARTS_INIT_STD",
    "DSONASRelaxation",
    "DSONAS_INIT",
    "ChoiceRelaxation",
    "check_relaxable",
]
