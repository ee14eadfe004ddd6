"""The training settings every trainer of the package shares: one frozen, validated record.

:class:`TrainingConfig` holds what :class:`~optuna_enas.SupernetEvaluator`,
:class:`~optuna_enas.StandaloneEvaluator`, :func:`~optuna_enas.retrain`,
:func:`~optuna_enas.final.rank_check` and the one-shot searchers (DARTS, DSO-NAS) all take: the
supernet's size (``supernet_kwargs``), the minibatch (``batch_size``, ``bptt``), the SGD
settings of the weights (``lr``, ``grad_clip``, ``momentum``, ``weight_decay``) and the
``device``. Build it once and pass it as ``training=`` to each of them (as nanoGPT passes one
``GPTConfig``); their flat keywords of the same names are shorthands for its fields.

A field left ``None`` takes the default of whoever trains with it: the ENAS settings of the
space's kind for the evaluators and ``retrain`` (:data:`optuna_enas.training._optim.DEFAULTS`;
batch size 64 and BPTT 35: ``DEFAULT_BATCH_SIZE`` and ``DEFAULT_BPTT`` of
:mod:`optuna_enas.data._corpus`), the official DARTS or DSO-NAS settings for those searchers.
Variants come from :func:`dataclasses.replace`.

Torch-free: the CLI builds and checks it before importing torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from types import MappingProxyType
from typing import Any

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive


MAX_BATCH_SIZE = 65_536
"""The largest ``batch_size`` accepted (a minibatch is one allocation); ``--batch-size`` too."""
MAX_BPTT = 100_000
"""The largest ``bptt`` accepted (one unrolled sequence); ``--bptt`` too."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _rebuild(values: dict[str, Any]) -> TrainingConfig:
    return TrainingConfig(**values)


def _check_supernet_kwargs(value: Any) -> Mapping[str, Any]:
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"supernet_kwargs must be a mapping with string keys, but got {value!r}.")
    if "generator" in value:
        raise ValueError("supernet_kwargs must not hold 'generator'; the seed argument sets it.")
    return MappingProxyType(dict(value))


def _check_device(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) and type(value).__module__.split(".")[0] == "torch":
        value = str(value)  # a torch.device: "cpu", "cuda:0", ...
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"device must be a torch device name or None, but got {value!r}.")
    return value


@dataclass(frozen=True)
class TrainingConfig:
    """The training settings shared by the evaluators, ``retrain``, ``rank_check`` and DARTS /
    DSO-NAS (see the module docstring). Every field is optional: ``None`` takes the default of
    the method that trains with it.

    Example:

        .. code-block:: python

            import dataclasses
            from optuna_enas import MicroSpace, StandaloneEvaluator, SupernetEvaluator
            from optuna_enas import TrainingConfig

            training = TrainingConfig(supernet_kwargs={"n_filters": 8}, batch_size=32)
            space = MicroSpace(n_nodes=2)
            search = SupernetEvaluator(space, training=training, seed=0)
            scratch = StandaloneEvaluator(
                space, training=dataclasses.replace(training, lr=0.1), seed=0
            )

    Attributes:
        supernet_kwargs: Extra arguments of the supernet (``hidden_size``, ``n_filters``,
            ``dropout``, ...), kept as a read-only mapping. ``vocab_size``, ``in_channels``
            and ``n_classes`` default to the data's; ``generator`` is refused (the ``seed``
            argument sets it).
        batch_size: Training minibatch size, in ``[1, 65536]``. ``None``: 64 (ENAS-pytorch
            ``--batch_size``) for the evaluators and ``retrain``; the official DARTS / DSO-NAS
            value of the space's kind for those searchers.
        bptt: Truncated-BPTT length of RNN spaces, in ``[1, 100000]``. ``None``: 35
            (ENAS-pytorch ``--shared_rnn_max_length``, DARTS ``rnn/train_search.py --bptt``).
        lr: Learning rate of the weights (``> 0``). ``None``: the method's default per kind.
        grad_clip: Maximum global gradient norm (``> 0``; ``math.inf`` disables clipping).
            ``None``: the method's default per kind.
        momentum: SGD momentum in ``[0, 1)``. ``None``: the method's default per kind.
        weight_decay: L2 penalty (``>= 0``). ``None``: the method's default per kind (ENAS:
            :data:`optuna_enas.training._optim.DEFAULTS`).
        device: A torch device name (``"cpu"``, ``"cuda:1"``; a ``torch.device`` is stored as
            its name). ``None``: CUDA when available.
    """

    supernet_kwargs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    batch_size: int | None = None
    bptt: int | None = None
    lr: float | None = None
    grad_clip: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        values: dict[str, Any] = {
            "supernet_kwargs": _check_supernet_kwargs(self.supernet_kwargs),
            "device": _check_device(self.device),
        }
        if self.batch_size is not None:
            values["batch_size"] = check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        if self.bptt is not None:
            values["bptt"] = check_int("bptt", self.bptt, 1, MAX_BPTT)
        if self.lr is not None:
            values["lr"] = check_positive("lr", self.lr)
        if self.grad_clip is not None:
            values["grad_clip"] = check_positive("grad_clip", self.grad_clip, allow_inf=True)
        if self.momentum is not None:
            values["momentum"] = check_fraction("momentum", self.momentum)
        if self.weight_decay is not None:
            values["weight_decay"] = check_non_negative("weight_decay", self.weight_decay)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:  # the set fields only, supernet_kwargs as a dict
        shown = [f"{k}={v!r}" for k, v in self.to_dict().items() if self.is_set(k)]
        return f"TrainingConfig({', '.join(shown)})"

    def __hash__(self) -> int:  # supernet_kwargs by its keys (its values may be unhashable)
        rest = tuple(getattr(self, k) for k in FIELDS if k != "supernet_kwargs")
        return hash((tuple(sorted(self.supernet_kwargs)), rest))

    # The read-only mapping does not pickle (nor deep-copy): rebuild from plain values.
    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return _rebuild, (self.to_dict(),)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (``supernet_kwargs`` a new ``dict``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["supernet_kwargs"] = dict(self.supernet_kwargs)
        return out

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainingConfig:
        """The record of keyword arguments named as the fields; ``None`` values are unset.

        Raises:
            ValueError: A keyword that is not a field (the message lists the fields).
        """
        unknown = sorted(set(kwargs) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a TrainingConfig field; the fields are {list(FIELDS)}."
            )
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    @classmethod
    def split(cls, kwargs: Mapping[str, Any]) -> tuple[TrainingConfig, dict[str, Any]]:
        """The record of the training fields among ``kwargs``, and the other keywords.

        For a flat keyword mapping (a stored evaluator config, say): ``training, rest =
        TrainingConfig.split(config)`` then ``SupernetEvaluator(space, training=training,
        **rest)``.
        """
        training = cls.from_kwargs(**{k: v for k, v in kwargs.items() if k in FIELDS})
        return training, {k: v for k, v in kwargs.items() if k not in FIELDS}

    def with_defaults(self, **defaults: Any) -> TrainingConfig:
        """This record with the fields it leaves unset filled from ``defaults`` (a method's
        own paper values, e.g. DARTS's); the fields it sets are kept."""
        assert set(defaults) <= set(FIELDS), sorted(set(defaults) - set(FIELDS))
        fill = {k: v for k, v in defaults.items() if not self.is_set(k)}
        return dataclasses.replace(self, **fill) if fill else self

    def is_set(self, name: str) -> bool:
        """Whether field ``name`` holds a value (not ``None``; a non-empty ``supernet_kwargs``)."""
        value = getattr(self, name)
        return bool(value) if name == "supernet_kwargs" else value is not None


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainingConfig))
"""The field names, i.e. the flat keywords that are shorthands for ``training=``."""


def fold_training(training: TrainingConfig | None, **flat: Any) -> TrainingConfig:
    """One record from ``training=`` and the flat shorthands of a constructor.

    A flat keyword left ``None`` is not given. A given one fills its field of ``training``
    (``None``: an empty record); when ``training`` already sets that field the two disagree
    about who decides, so it is refused.

    Raises:
        ValueError: ``training`` is not a :class:`TrainingConfig`; a flat keyword and
            ``training`` both set a field (the message names both); a value is invalid.
    """
    if training is None:
        base = TrainingConfig()
    elif isinstance(training, TrainingConfig):
        base = training
    else:
        raise ValueError(f"training must be a TrainingConfig or None, but got {training!r}.")
    assert set(flat) <= set(FIELDS), sorted(set(flat) - set(FIELDS))
    given = {k: v for k, v in flat.items() if v is not None}
    for name, value in given.items():
        if base.is_set(name):
            raise ValueError(
                f"{name}={value!r} and training.{name}={getattr(base, name)!r} both set "
                f"{name}; give it once (training=dataclasses.replace(training, {name}=...))."
            )
    return dataclasses.replace(base, **given) if given else base


__all__ = ["FIELDS", "MAX_BATCH_SIZE", "MAX_BPTT", "TrainingConfig", "fold_training"]
