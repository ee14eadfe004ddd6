"""Derive the final architecture: sample from the trained policy, rank with shared weights.

ENAS (Pham et al., 2018, Sec. 2.2 "Deriving Architectures") samples several models from the
trained policy, scores each with the shared weights, and retrains only the best from scratch
(:func:`~optuna_enas.retrain`); carpedm20/ENAS-pytorch samples 100
(``--derive_num_sample 100``).
"""

from __future__ import annotations

import itertools
import logging
import math
import uuid
import warnings
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection

from optuna_enas._keys import DERIVE_STUDY_SUFFIX
from optuna_enas._keys import DERIVE_TAG
from optuna_enas._keys import TAG_KEY
from optuna_enas._validation import check_int
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


_logger = logging.getLogger(__name__)

SEARCH_STUDY_ATTR = "enas:search_study"
"""User attr of a derive study: the name of the search study it belongs to."""
MAX_SAMPLES = 10_000
"""The most architectures one :func:`derive` call scores (ENAS-pytorch samples 100)."""

ArchitectureSource = (
    Iterable[Architecture] | Callable[[], Architecture] | Any  # Any: has sample_architectures(n)
)


class Scorer(Protocol):
    """What :func:`derive` needs of an evaluator (:class:`SupernetEvaluator` has it)."""

    @property
    def space(self) -> SearchSpace: ...

    @property
    def direction(self) -> Literal["minimize", "maximize"]: ...

    def evaluate(self, arch: Architecture, *, split: Any = ..., full: bool = ...) -> float: ...


@dataclass(frozen=True)
class DerivedArchitecture:
    """One scored architecture of :func:`derive`.

    Args:
        architecture: The architecture.
        value: Its metric on the full validation set with the shared weights.
        rank: 0 for the best.
        trial_number: The trial that records it in the derive study (``None`` without one).
        study_name: That study's name (``<search study>-derive``; ``None`` without one).
    """

    architecture: Architecture
    value: float
    rank: int
    trial_number: int | None = None
    study_name: str | None = None


def derive_study(study: optuna.Study, *, create: bool = True) -> optuna.Study | None:
    """The study holding :func:`derive`'s results for the search ``study``.

    It is ``<study name>-derive`` in the same storage, with the same direction, so the search
    study's ``best_trial`` (and the dashboard's history) keep meaning the best *search* trial:
    derive scores on the full validation split, a different measurement from the search's
    single minibatch. ``create=False``: ``None`` when it does not exist yet.
    """
    name = study.study_name + DERIVE_STUDY_SUFFIX
    storage = study._storage
    exists = any(s.study_name == name for s in storage.get_all_studies())
    if not exists and not create:
        return None
    target = optuna.create_study(
        storage=storage, study_name=name, directions=study.directions, load_if_exists=True
    )
    if not exists:
        target.set_user_attr(SEARCH_STUDY_ATTR, study.study_name)
        if study.metric_names is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                target.set_metric_names([f"{m} (full split)" for m in study.metric_names])
    return target


def _draw(source: ArchitectureSource, n: int, seed: int | None) -> list[Architecture]:
    if hasattr(source, "sample_architectures"):
        archs = source.sample_architectures(n, seed=seed)
    elif callable(source):
        archs = [source() for _ in range(n)]
    elif isinstance(source, Iterable):
        archs = list(itertools.islice(source, n))
    else:
        raise ValueError(
            "sampler_or_architectures must be an iterable of Architecture, a callable "
            f"returning one, or have sample_architectures(n), but got {source!r}."
        )
    if not archs:
        raise ValueError("sampler_or_architectures gave no architectures.")
    for a in archs:
        if not isinstance(a, Architecture):
            raise ValueError(
                f"sampler_or_architectures must give Architecture objects, but gave {a!r}."
            )
    return list(archs)


def derive(
    study: optuna.Study | None,
    sampler_or_architectures: ArchitectureSource,
    evaluator: Scorer,
    *,
    n_samples: int = 100,
    top_k: int = 1,
    seed: int | None = None,
) -> list[DerivedArchitecture]:
    """Sample architectures, score each on the full validation set, return the best ``top_k``.

    Every distinct architecture is scored once with ``evaluator.evaluate(arch, split="valid",
    full=True)`` and, when ``study`` is given, recorded as a COMPLETE trial with the user
    attrs ``enas:tag = "derive"``, ``enas:derive_rank`` and ``enas:derive_id`` (one id per call)
    in the separate study :func:`derive_study` (``<study name>-derive``, same storage), never in
    ``study`` itself: ``study.best_trial`` stays the best search trial, and the search's
    sampler does not learn from these full-split scores. ENAS scores each sample on a single
    validation minibatch; the full set is less noisy and cheap for small models.

    Args:
        study: The search study; the results go to its derive study. Its direction must match
            ``evaluator.direction``. ``None`` records nothing.
        sampler_or_architectures: An object with ``sample_architectures(n, seed=...)`` (the
            trained :class:`~optuna_enas.ENASSampler`), a callable returning one architecture,
            or an iterable of architectures (the first ``n_samples`` are used).
        evaluator: A trained :class:`~optuna_enas.training._evaluator.SupernetEvaluator`.
        n_samples: Architectures to sample, at most :data:`MAX_SAMPLES` (ENAS-pytorch
            ``--derive_num_sample 100``).
        top_k: How many of the best to return.
        seed: Passed to ``sample_architectures``.

    Returns:
        The ``top_k`` best, best first.
    """
    check_int("n_samples", n_samples, 1, MAX_SAMPLES)
    check_int("top_k", top_k, 1)
    space = evaluator.space
    direction = evaluator.direction
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"evaluator.direction must be minimize or maximize, got {direction!r}.")
    if study is not None:
        expected = StudyDirection.MINIMIZE if direction == "minimize" else StudyDirection.MAXIMIZE
        if study.direction != expected:
            raise ValueError(
                f"study.direction is {study.direction.name.lower()}, but the evaluator's metric "
                f"needs {direction}."
            )
    archs = [space.coerce(a) for a in _draw(sampler_or_architectures, n_samples, seed)]
    unique = list(dict.fromkeys(archs))
    scored = [(a, float(evaluator.evaluate(a, split="valid", full=True))) for a in unique]
    sign = 1.0 if direction == "minimize" else -1.0
    scored.sort(key=lambda p: sign * p[1] if not math.isnan(p[1]) else math.inf)
    _logger.info(
        f"Derived {len(scored)} distinct architectures of {len(archs)} samples; best "
        f"{scored[0][1]:.6g}: {space.describe(scored[0][0])}."
    )
    numbers: dict[int, int] = {}
    target = None if study is None else derive_study(study)
    if target is not None:
        derive_id = uuid.uuid4().hex
        distributions: dict[str, BaseDistribution] = dict(space.distributions())
        for rank, (arch, value) in enumerate(scored):
            target.add_trial(
                optuna.trial.create_trial(
                    params=arch.to_params(),
                    distributions=distributions,
                    value=value,
                    user_attrs={
                        TAG_KEY: DERIVE_TAG,
                        "enas:derive_rank": rank,
                        "enas:derive_id": derive_id,
                        "architecture": space.describe(arch),
                    },
                )
            )
        for t in target.get_trials(deepcopy=False):
            if t.user_attrs.get("enas:derive_id") == derive_id:
                numbers[int(t.user_attrs["enas:derive_rank"])] = t.number
    name = None if target is None else target.study_name
    return [
        DerivedArchitecture(
            architecture=a, value=v, rank=r, trial_number=numbers.get(r), study_name=name
        )
        for r, (a, v) in enumerate(scored[:top_k])
    ]


__all__ = [
    "DERIVE_STUDY_SUFFIX",
    "DERIVE_TAG",
    "MAX_SAMPLES",
    "SEARCH_STUDY_ATTR",
    "DerivedArchitecture",
    "Scorer",
    "derive",
    "derive_study",
]
