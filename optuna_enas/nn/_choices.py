"""Choice primitives that the user writes into an ordinary ``nn.Module``.

Each primitive names one or more Optuna categorical decisions by its ``label``. A module holds
every candidate's weights (the shared-weight "cache" of ENAS); which candidate runs is set from
outside, by :class:`~optuna_enas.nn.Supernet` (``activate(params)``), in one of two modes:

- **discrete** (ENAS, random search, TPE, SPOS): one choice per decision is active and the
  forward runs that path only, so only its weights get gradients;
- **mixed** (DARTS, DSO-NAS): a weight vector over the choices is set (``set_mix``) and the
  forward returns the weighted sum of the candidates (softmax weights for DARTS, sparse scaling
  factors for DSO-NAS). Which vector is a relaxation's business
  (:mod:`optuna_enas.oneshot._choice_relax`).

A primitive is never active by default: a forward before ``activate`` raises, so a forgotten
activation cannot silently train the first candidate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Literal

import torch
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.spaces._search_space import Choice
from optuna_enas.spaces._search_space import Decision


Reduction = Literal["sum", "mean", "concat"]
_REDUCTIONS = ("sum", "mean", "concat")


def check_label(label: object) -> str:
    if not isinstance(label, str) or not label or label != label.strip():
        raise ValueError(
            f"label must be a non-empty string without surrounding spaces, but got {label!r}."
        )
    return label


class _Chooser:
    """What every primitive shares: its decisions, the active choice and the mixing weights."""

    label: str

    def __init__(self, label: object) -> None:
        self.label = check_label(label)
        self._active: dict[str, Choice] | None = None
        self._mix: dict[str, torch.Tensor] | None = None

    # -- the contract Supernet relies on ---------------------------------------------------------
    def decisions(self) -> list[Decision]:
        raise NotImplementedError

    def set_active(self, params: Mapping[str, Choice]) -> None:
        """Route through the choices ``params`` names (validated by the caller's space)."""
        self._active = {d.name: params[d.name] for d in self.decisions()}
        self._mix = None

    def set_mix(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Mixed mode: ``weights[name]`` is a vector over the choices of decision ``name``."""
        mix: dict[str, torch.Tensor] = {}
        for d in self.decisions():
            if d.name not in weights:
                raise ValueError(f"set_mix: weights lack the decision {d.name!r}.")
            w = weights[d.name]
            if w.dim() != 1 or w.numel() != len(d.choices):
                raise ValueError(
                    f"set_mix: weights[{d.name!r}] must be a vector of {len(d.choices)} entries, "
                    f"but got shape {tuple(w.shape)}."
                )
            mix[d.name] = w
        self._mix = mix
        self._active = None

    def deactivate(self) -> None:
        self._active = None
        self._mix = None

    @property
    def is_mixed(self) -> bool:
        return self._mix is not None

    def _chosen(self, name: str) -> Choice:
        if self._active is None:
            raise RuntimeError(
                f"choice {self.label!r} has no active architecture: call "
                "Supernet.activate(params) (or a relaxation's set_mix) before the forward."
            )
        return self._active[name]

    def _weights(self, name: str) -> torch.Tensor:
        assert self._mix is not None
        return self._mix[name]


class LayerChoice(_Chooser, nn.Module):
    """One of several candidate layers, chosen by the decision ``label``.

    Args:
        label: The Optuna parameter name. Two ``LayerChoice`` with the same label are one
            decision (their candidates must have the same keys) and always take the same choice.
        candidates: A dict (its keys, strings, are the choices) or a list of modules (the list
            indices are the choices). Every candidate maps the same input to outputs of the same
            shape; :class:`Supernet` checks it with a dry forward when given an example input.

    Example:

        .. code-block:: python

            self.b1 = LayerChoice("b1", {"conv3": conv(3), "conv5": conv(5), "id": nn.Identity()})
    """

    def __init__(
        self, label: str, candidates: Mapping[str, nn.Module] | Sequence[nn.Module]
    ) -> None:
        nn.Module.__init__(self)
        _Chooser.__init__(self, label)
        keys: list[Choice]
        if isinstance(candidates, Mapping):
            keys = list(candidates.keys())
            modules = list(candidates.values())
            for k in keys:
                if not isinstance(k, str) or not k or "." in k:
                    raise ValueError(
                        f"LayerChoice {label!r}: candidate keys must be non-empty strings "
                        f"without '.', but got {k!r}."
                    )
        elif isinstance(candidates, Sequence) and not isinstance(candidates, str):
            modules = list(candidates)
            keys = list(range(len(modules)))
        else:
            raise ValueError(
                f"LayerChoice {label!r}: candidates must be a dict or a list of modules, "
                f"but got {type(candidates).__name__}."
            )
        if len(modules) == 0:
            raise ValueError(f"LayerChoice {label!r}: candidates must not be empty.")
        for k, m in zip(keys, modules, strict=True):
            if not isinstance(m, nn.Module):
                raise ValueError(
                    f"LayerChoice {label!r}: candidate {k!r} must be an nn.Module, "
                    f"but got {type(m).__name__}."
                )
        self.keys: tuple[Choice, ...] = tuple(keys)
        self.candidates = nn.ModuleDict({str(k): m for k, m in zip(keys, modules, strict=True)})

    def decisions(self) -> list[Decision]:
        return [Decision(self.label, self.keys, kind="op")]

    def candidate(self, key: Choice) -> nn.Module:
        if key not in self.keys:
            raise ValueError(f"LayerChoice {self.label!r}: unknown choice {key!r}.")
        return self.candidates[str(key)]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._mix is not None:
            w = self._weights(self.label)
            out: Any = None
            for i, key in enumerate(self.keys):
                y = self.candidates[str(key)](*args, **kwargs) * w[i]
                out = y if out is None else out + y
            return out
        return self.candidates[str(self._chosen(self.label))](*args, **kwargs)

    def extra_repr(self) -> str:
        return f"label={self.label!r}"


class InputChoice(_Chooser, nn.Module):
    """Which of ``n_candidates`` tensors feed on, reduced to one (``forward(list_of_tensors)``).

    Args:
        label: The Optuna parameter name.
        n_candidates: How many tensors ``forward`` receives.
        n_chosen: How many are used. An integer ``k``: one decision whose choices are the
            ``k``-subsets, written as their indices (``1`` for ``k = 1``, ``"0+2"`` for ``k = 2``).
            ``None``: any subset (ENAS's macro skip connections, Pham et al. 2018 Sec. 2.3), one
            0/1 decision per candidate named ``"{label}/{i}"`` (kind ``"skip"``; ``bit_names``
            renames them); an empty subset gives zeros shaped like the first candidate.
        reduction: How the chosen tensors combine: ``"sum"`` (ENAS's macro ``add_n``),
            ``"mean"`` or ``"concat"`` (along dimension 1). ``"concat"`` needs a fixed
            ``n_chosen`` and cannot be relaxed (DARTS, DSO-NAS).
        lazy: ``forward`` takes zero-argument callables that return the tensors, and calls
            only the chosen ones (all of them in mixed mode): candidates that cost a forward
            pass (an op applied to each possible input, as in ENAS's micro cell) run only when
            chosen.
        bit_names: With ``n_chosen=None``, the names of the 0/1 decisions (default
            ``"{label}/{i}"``), e.g. ENAS's macro space's ``layer3_skip0``.
    """

    def __init__(
        self,
        label: str,
        n_candidates: int,
        n_chosen: int | None = 1,
        reduction: Reduction = "sum",
        *,
        lazy: bool = False,
        bit_names: Sequence[str] | None = None,
    ) -> None:
        nn.Module.__init__(self)
        _Chooser.__init__(self, label)
        self.lazy = bool(lazy)
        self.n_candidates = check_int(f"InputChoice {label!r}: n_candidates", n_candidates)
        if n_chosen is not None:
            n_chosen = check_int(f"InputChoice {label!r}: n_chosen", n_chosen, 1, n_candidates)
        self.n_chosen = n_chosen
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"InputChoice {label!r}: reduction must be one of {_REDUCTIONS}, "
                f"but got {reduction!r}."
            )
        if reduction == "concat" and n_chosen is None:
            raise ValueError(
                f"InputChoice {label!r}: reduction 'concat' needs a fixed n_chosen "
                "(any-subset outputs would change width)."
            )
        self.reduction: Reduction = reduction
        if bit_names is not None and n_chosen is not None:
            raise ValueError(
                f"InputChoice {label!r}: bit_names names the 0/1 decisions of n_chosen=None; "
                f"with n_chosen={n_chosen} there is one decision, named by the label."
            )
        names = (
            [f"{label}/{i}" for i in range(n_candidates)] if bit_names is None else list(bit_names)
        )
        if len(names) != n_candidates or len(set(names)) != len(names):
            raise ValueError(
                f"InputChoice {label!r}: bit_names must be {n_candidates} distinct labels, "
                f"but got {bit_names!r}."
            )
        for name in names:
            check_label(name)
        self.bit_names: tuple[str, ...] = tuple(names)
        if n_chosen == 1:
            self._subsets: tuple[Choice, ...] = tuple(range(n_candidates))
        elif n_chosen is not None:
            self._subsets = tuple(
                "+".join(str(i) for i in c)
                for c in itertools.combinations(range(n_candidates), n_chosen)
            )
        else:
            self._subsets = ()

    def decisions(self) -> list[Decision]:
        if self.n_chosen is None:
            return [Decision(name, (0, 1), kind="skip") for name in self.bit_names]
        return [Decision(self.label, self._subsets, kind="input")]

    def chosen_indices(self) -> list[int]:
        """The indices of the inputs the active architecture uses."""
        if self.n_chosen is None:
            return [i for i, name in enumerate(self.bit_names) if self._chosen(name) == 1]
        return parse_subset(self._chosen(self.label))

    def forward(self, inputs: Sequence[Any]) -> torch.Tensor:
        if not isinstance(inputs, Sequence) or len(inputs) != self.n_candidates:
            got = len(inputs) if isinstance(inputs, Sequence) else type(inputs).__name__
            what = "callables" if self.lazy else "tensors"
            raise ValueError(
                f"InputChoice {self.label!r} takes a list of {self.n_candidates} {what}, "
                f"but got {got}."
            )
        if self._mix is not None:
            return self._mixed([self._get(x) for x in inputs])
        indices = self.chosen_indices()
        chosen = [self._get(inputs[i]) for i in indices]
        like = chosen[0] if chosen else self._get(inputs[0])
        return reduce_inputs(chosen, self.reduction, like=like)

    def _get(self, item: Any) -> torch.Tensor:
        if not self.lazy:
            return item
        if not callable(item):
            raise ValueError(
                f"InputChoice {self.label!r} is lazy: its inputs must be zero-argument "
                f"callables, but got {type(item).__name__}."
            )
        out: torch.Tensor = item()
        return out

    def _mixed(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.reduction == "concat":
            raise ValueError(
                f"InputChoice {self.label!r}: reduction 'concat' cannot be relaxed; "
                "use 'sum' or 'mean' for DARTS / DSO-NAS."
            )
        out: torch.Tensor | None = None
        if self.n_chosen is None:  # independent gates: weight of "on" per input
            gates = [self._weights(name)[1] for name in self.bit_names]
            for g, x in zip(gates, inputs, strict=True):
                y = x * g
                out = y if out is None else out + y
            if self.reduction == "mean" and out is not None:
                # sum(g_i x_i) / sum(g_i): the discrete mean for 0/1 gates (zeros when none)
                total = gates[0]
                for g in gates[1:]:
                    total = total + g
                out = out / torch.clamp(total, min=1e-12)
        else:
            w = self._weights(self.label)
            per_input: list[torch.Tensor | float] = [0.0] * self.n_candidates
            for j, subset in enumerate(self._subsets):  # an input's weight: its subsets' sum
                for i in parse_subset(subset):
                    per_input[i] = per_input[i] + w[j]
            scale = float(self.n_chosen) if self.reduction == "mean" else 1.0
            for i, x in enumerate(inputs):
                y = x * (per_input[i] / scale)
                out = y if out is None else out + y
        assert out is not None
        return out

    def extra_repr(self) -> str:
        return (
            f"label={self.label!r}, n_candidates={self.n_candidates}, "
            f"n_chosen={self.n_chosen}, reduction={self.reduction!r}"
        )


def parse_subset(choice: Choice) -> list[int]:
    if isinstance(choice, int) and not isinstance(choice, bool):
        return [choice]
    if isinstance(choice, str):
        return [int(t) for t in choice.split("+")]
    raise ValueError(f"not an InputChoice choice: {choice!r}.")


def reduce_inputs(
    chosen: Sequence[torch.Tensor], reduction: Reduction, like: torch.Tensor
) -> torch.Tensor:
    """Combine the chosen inputs (``like`` gives the shape of an empty sum)."""
    if len(chosen) == 0:
        return torch.zeros_like(like)
    if reduction == "concat":
        return torch.cat(list(chosen), dim=1)
    out = chosen[0]
    for x in chosen[1:]:
        out = out + x
    if reduction == "mean" and len(chosen) > 1:
        out = out / len(chosen)
    return out


class ValueChoice(_Chooser):
    """An integer hyper-parameter of elastic layers (a width, a kernel size), by ``label``.

    Not a module: pass it to :class:`~optuna_enas.nn.ElasticConv2d`,
    :class:`~optuna_enas.nn.ElasticLinear` or :class:`~optuna_enas.nn.ElasticBatchNorm2d`
    (several layers may share one, e.g. a conv's output width and its batch norm's). Elastic
    layers hold weights for the largest value; a smaller width is a prefix slice, a smaller
    kernel a centre crop (Once-for-All, Cai et al. 2020, without its kernel transform).
    :meth:`Supernet.export` replaces every ``ValueChoice`` attribute of a module by its value.

    Args:
        label: The Optuna parameter name.
        values: Distinct positive integers.
    """

    def __init__(self, label: str, values: Sequence[int]) -> None:
        super().__init__(label)
        vals = list(values) if isinstance(values, Sequence) else values
        if not isinstance(vals, list) or len(vals) == 0:
            raise ValueError(
                f"ValueChoice {label!r}: values must be a non-empty list of integers, "
                f"but got {values!r}."
            )
        for v in vals:
            check_int(f"ValueChoice {label!r}: each value", v)
        if len(set(vals)) != len(vals):
            raise ValueError(f"ValueChoice {label!r}: values must be distinct, got {vals!r}.")
        self.values: tuple[int, ...] = tuple(int(v) for v in vals)

    def decisions(self) -> list[Decision]:
        return [Decision(self.label, self.values, kind="other")]

    @property
    def max(self) -> int:
        return max(self.values)

    @property
    def value(self) -> int:
        """The active value (discrete mode)."""
        v = self._chosen(self.label)
        assert isinstance(v, int)
        return v

    def mix_weights(self) -> torch.Tensor | None:
        """The mixing vector over :attr:`values` in mixed mode, else ``None``."""
        return self._weights(self.label) if self._mix is not None else None

    def __repr__(self) -> str:
        return f"ValueChoice({self.label!r}, {list(self.values)})"


def resolve(value: int | ValueChoice) -> int:
    """An int, or a ``ValueChoice``'s active value (its maximum in mixed mode)."""
    if isinstance(value, ValueChoice):
        return value.max if value.is_mixed else value.value
    return value


def max_of(value: int | ValueChoice) -> int:
    return value.max if isinstance(value, ValueChoice) else value


class Repeat(_Chooser, nn.Module):
    """A stack of blocks whose depth is a decision: the first ``depth`` blocks run in order.

    Args:
        label: The Optuna parameter name.
        block_factory: ``block_factory(i)`` builds block ``i`` (``0 <= i < max(depths)``);
            each block keeps the shape of its input (checked by the dry forward).
        depths: The allowed depths (distinct integers >= 0).
    """

    def __init__(
        self, label: str, block_factory: Callable[[int], nn.Module], depths: Sequence[int]
    ) -> None:
        nn.Module.__init__(self)
        _Chooser.__init__(self, label)
        if not callable(block_factory):
            raise ValueError(f"Repeat {label!r}: block_factory must be callable.")
        ds = list(depths) if isinstance(depths, Sequence) else None
        if not ds:
            raise ValueError(
                f"Repeat {label!r}: depths must be a non-empty list of integers, "
                f"but got {depths!r}."
            )
        for d in ds:
            check_int(f"Repeat {label!r}: each depth", d, minimum=0)
        if len(set(ds)) != len(ds):
            raise ValueError(f"Repeat {label!r}: depths must be distinct, got {ds!r}.")
        self.depths: tuple[int, ...] = tuple(int(d) for d in ds)
        blocks = []
        for i in range(max(self.depths)):
            block = block_factory(i)
            if not isinstance(block, nn.Module):
                raise ValueError(
                    f"Repeat {label!r}: block_factory({i}) must return an nn.Module, "
                    f"but got {type(block).__name__}."
                )
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)

    def decisions(self) -> list[Decision]:
        return [Decision(self.label, self.depths, kind="other")]

    @property
    def depth(self) -> int:
        d = self._chosen(self.label)
        assert isinstance(d, int)
        return d

    def forward(self, x: Any) -> Any:
        if self._mix is not None:
            w = self._weights(self.label)
            outs = {0: x}
            for i, block in enumerate(self.blocks):
                x = block(x)
                outs[i + 1] = x
            total: Any = None
            for j, d in enumerate(self.depths):
                y = outs[d] * w[j]
                total = y if total is None else total + y
            return total
        for block in self.blocks[: self.depth]:
            x = block(x)
        return x

    def extra_repr(self) -> str:
        return f"label={self.label!r}, depths={list(self.depths)}"
