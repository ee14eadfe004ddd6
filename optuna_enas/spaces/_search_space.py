"""Search spaces as ordered lists of categorical decisions, and the frozen ``Architecture`` value.

This module knows nothing of torch. Every decision is an Optuna categorical parameter whose name
and choices never depend on earlier choices, so the same objective runs unchanged under
RandomSampler, TPESampler or GPSampler.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution


if TYPE_CHECKING:
    from optuna.trial import BaseTrial


Choice = str | int | float | bool | None
DecisionKind = Literal["op", "input", "skip", "other"]
_KINDS = ("op", "input", "skip", "other")
MAX_DECISIONS = 10_000
"""The most decisions a space may have (the paper's largest space, macro with 24 layers, has
300); bounds the controller's size and every per-decision loop."""


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a search space.

    Args:
        name: The Optuna parameter name.
        choices: The allowed values, in the order the controller's softmax indexes them.
        kind: ``"op"`` (an operation or activation; the controller applies ``op_tanh_reduce``),
            ``"input"`` (which earlier node feeds this one), ``"skip"`` (a 0/1 skip connection;
            the controller's skip penalty applies) or ``"other"``.
    """

    name: str
    choices: tuple[Choice, ...]
    kind: DecisionKind = "other"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Decision name must be a non-empty string, but got {self.name!r}.")
        if len(self.choices) == 0:
            raise ValueError(f"Decision {self.name!r}: choices must not be empty.")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(
                f"Decision {self.name!r}: choices must be unique, but got {self.choices!r}."
            )
        for c in self.choices:
            if c is not None and not isinstance(c, (str, int, float, bool)):
                raise ValueError(
                    f"Decision {self.name!r}: choices must be str, int, float, bool or None, "
                    f"but got {c!r}."
                )
        if self.kind not in _KINDS:
            raise ValueError(
                f"Decision {self.name!r}: kind must be one of {_KINDS}, got {self.kind!r}."
            )

    @property
    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.choices)


@dataclass(frozen=True)
class Architecture:
    """A frozen, hashable, JSON-serializable architecture: the value of every decision, in order.

    Args:
        space: The name of the search space it belongs to (``"rnn"``, ``"macro"``, ...).
        params: ``(name, value)`` pairs in the space's decision order.
    """

    space: str
    params: tuple[tuple[str, Choice], ...]

    def to_params(self) -> dict[str, Choice]:
        """Return the Optuna parameters (a fresh dict)."""
        return dict(self.params)

    def __getitem__(self, name: str) -> Choice:
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps({"space": self.space, "params": [list(p) for p in self.params]})

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        try:
            data = json.loads(text)
            return cls(
                space=str(data["space"]),
                params=tuple((str(k), v) for k, v in data["params"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"text is not a serialized Architecture: {text[:80]!r} ({e}).") from e


class SearchSpace:
    """An ordered list of categorical decisions.

    The generic space is what ``ENASSampler()`` learns from a study when it is given none. The
    ENAS spaces (:class:`RNNCellSpace`, :class:`MacroSpace`, :class:`MicroSpace`) subclass it.

    Args:
        decisions: The decisions, in the order the controller makes them.
        name: A short name stored in each :class:`Architecture`.
    """

    def __init__(self, decisions: Sequence[Decision], *, name: str = "custom") -> None:
        decisions = tuple(decisions)
        if len(decisions) == 0:
            raise ValueError("decisions must not be empty.")
        if len(decisions) > MAX_DECISIONS:
            raise ValueError(
                f"decisions holds {len(decisions)} decisions; at most {MAX_DECISIONS} are "
                "supported."
            )
        counts = collections.Counter(d.name for d in decisions)
        dup = sorted(n for n, c in counts.items() if c > 1)
        if dup:
            raise ValueError(f"decisions must have unique names, but {dup} repeat.")
        self._name = name
        self._decisions = decisions
        self._index = {d.name: i for i, d in enumerate(decisions)}
        self._choice_index = [{c: j for j, c in enumerate(d.choices)} for d in decisions]

    # -- description ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._decisions)

    def __len__(self) -> int:
        return len(self._decisions)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and (
            self._name,
            self._decisions,
        ) == (other._name, other._decisions)

    def __hash__(self) -> int:
        return hash((self._name, self._decisions))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, n_decisions={len(self)})"

    def decision(self, name: str) -> Decision:
        return self._decisions[self._index[name]]

    def distributions(self) -> dict[str, CategoricalDistribution]:
        """The Optuna distributions of all decisions, in order."""
        return {d.name: d.distribution for d in self._decisions}

    @property
    def n_architectures(self) -> int:
        """The number of distinct architectures (the product of the choice counts)."""
        n = 1
        for d in self._decisions:
            n *= len(d.choices)
        return n

    def check_architecture(self, arch: object) -> None:
        """Raise a ValueError unless ``arch`` is an :class:`Architecture` of this space."""
        if not isinstance(arch, Architecture) or arch.space != self._name:
            got = arch.space if isinstance(arch, Architecture) else arch
            raise ValueError(
                f"arch must be an Architecture of space {self._name!r}, but got {got!r}."
            )

    # -- conversions ---------------------------------------------------------------------------
    def architecture(self, params: Mapping[str, Any]) -> Architecture:
        """Build an :class:`Architecture` from Optuna params (extra keys are ignored).

        Raises:
            ValueError: A decision is missing from ``params`` or has a value outside its choices.
        """
        values: list[tuple[str, Choice]] = []
        for d, index in zip(self._decisions, self._choice_index, strict=True):
            if d.name not in params:
                raise ValueError(f"params lacks the decision {d.name!r} of space {self._name!r}.")
            v = params[d.name]
            if v not in index or type(v) is not type(d.choices[index[v]]):
                raise ValueError(
                    f"params[{d.name!r}] must be one of {list(d.choices)}, but got {v!r}."
                )
            values.append((d.name, d.choices[index[v]]))
        return Architecture(space=self._name, params=tuple(values))

    def coerce(self, arch: Architecture | Mapping[str, Any]) -> Architecture:
        """``arch`` checked against this space: an :class:`Architecture` or Optuna params.

        Raises:
            ValueError: ``arch`` belongs to another space, or its params do not fit this one.
        """
        if isinstance(arch, Architecture):
            if arch.space != self._name:
                raise ValueError(f"arch belongs to space {arch.space!r}, not {self._name!r}.")
            return self.architecture(arch.to_params())
        return self.architecture(arch)

    def to_indices(self, arch: Architecture | Mapping[str, Any]) -> list[int]:
        """The choice index of every decision, in order."""
        params = arch.to_params() if isinstance(arch, Architecture) else arch
        self.architecture(params)  # validates
        return [
            index[params[d.name]]
            for d, index in zip(self._decisions, self._choice_index, strict=True)
        ]

    def from_indices(self, indices: Sequence[int]) -> Architecture:
        if len(indices) != len(self._decisions):
            raise ValueError(
                f"indices must have {len(self._decisions)} entries for space {self._name!r}, "
                f"but got {len(indices)}."
            )
        values: list[tuple[str, Choice]] = []
        for d, i in zip(self._decisions, indices, strict=True):
            i = int(i)
            if not 0 <= i < len(d.choices):
                raise ValueError(
                    f"index {i} for decision {d.name!r} is outside [0, {len(d.choices)})."
                )
            values.append((d.name, d.choices[i]))
        return Architecture(space=self._name, params=tuple(values))

    def to_fixed_arc(self, arch: Architecture) -> str:
        """The official ENAS ``fixed_arc`` string: the choice indices, space-separated."""
        return " ".join(str(i) for i in self.to_indices(arch))

    def from_fixed_arc(self, fixed_arc: str) -> Architecture:
        try:
            indices = [int(t) for t in fixed_arc.split()]
        except ValueError as e:
            raise ValueError(f"fixed_arc must hold integers, but got {fixed_arc!r}.") from e
        return self.from_indices(indices)

    def sample_uniform(self, rng: np.random.Generator) -> Architecture:
        """One architecture with every decision drawn uniformly (random search)."""
        return self.from_indices([int(rng.integers(len(d.choices))) for d in self._decisions])

    def describe(self, arch: Architecture) -> str:
        """A compact one-line description (stored as the trial's ``architecture`` user attr)."""
        return self.to_fixed_arc(arch)

    # -- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "custom",
            "name": self._name,
            "decisions": [
                {"name": d.name, "choices": list(d.choices), "kind": d.kind}
                for d in self._decisions
            ],
        }


def suggest_architecture(
    trial: BaseTrial, space: SearchSpace, *, record: bool = True
) -> Architecture:
    """Suggest every decision of ``space`` on ``trial`` and return the architecture.

    Works under any sampler: under :class:`~optuna_enas.ENASSampler` the values come from its
    controller, under RandomSampler or TPESampler from theirs.

    Args:
        trial: The Optuna trial (any :class:`~optuna.trial.BaseTrial`: ``Trial``,
            ``FixedTrial``, ``FrozenTrial``, an integration's distributed trial).
        space: The search space.
        record: Store :meth:`SearchSpace.describe` as the ``architecture`` user attribute
            (shown by optuna-dashboard). One storage write per trial.
    """
    params: dict[str, Any] = {}
    for d in space.decisions:
        try:
            params[d.name] = trial.suggest_categorical(d.name, d.choices)
        except ValueError as e:  # e.g. an enqueued value outside the choices
            raise ValueError(f"decision {d.name!r} of space {space.name!r}: {e}") from e
    arch = space.architecture(params)
    if record:
        trial.set_user_attr("architecture", space.describe(arch))
    return arch
