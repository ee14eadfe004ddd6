"""Writing one epoch of a one-shot search into an Optuna study as a COMPLETE trial.

A one-shot searcher (DARTS, DSO-NAS) does not ask a sampler for architectures: it learns a
relaxation and derives one architecture from it per epoch. :func:`record_epoch` adds that
architecture to the study as a finished trial with the space's distributions, so every Optuna
tool (the dashboard, ``study.best_trial``, the comparison plots, ``derive``) treats it like a
trial of any other sampler:

* params: the derived architecture (the space's categorical decisions);
* value: the shared-weight validation score of the derived architecture;
* user attrs: ``architecture`` (:meth:`SearchSpace.describe`), and what the searcher passes
  (epoch, weight steps, entropy, sparsity, ``param_free_share``, the relaxed supernet's own
  validation metric, the arch tables as compact JSON);
* system attr :data:`METHOD_KEY`: the method (``"darts"``, ``"dsonas"``).

With a :class:`~optuna_enas.dashboard.DashboardCallback` the trial also gets its DAG drawing
and note on the optuna-dashboard trial page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas._keys import METHOD_KEY
from optuna_enas._keys import TABLES_KEY
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna_enas.dashboard._callback import DashboardCallback


def compact_json(value: Any, *, digits: int = 4) -> str:
    """``value`` as JSON without spaces, floats rounded to ``digits`` significant digits."""

    def rounded(x: Any) -> Any:
        if isinstance(x, float):
            return float(f"{x:.{digits}g}") if math.isfinite(x) else None
        if isinstance(x, Mapping):
            return {str(k): rounded(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [rounded(v) for v in x]
        return x

    return json.dumps(rounded(value), separators=(",", ":"))


def record_epoch(
    study: optuna.Study,
    space: SearchSpace,
    arch: Architecture,
    *,
    value: float,
    method: str,
    user_attrs: Mapping[str, Any],
    dashboard: DashboardCallback | None = None,
) -> FrozenTrial:
    """Add ``arch`` to ``study`` as a finished trial; return it as stored.

    The trial is COMPLETE with ``value``; a non-finite ``value`` (a diverged supernet) makes
    it FAIL instead, so no sampler or plot takes NaN for a result. ``dashboard``, if given,
    draws it and writes its note (errors there are logged, never raised).
    """
    arch = space.coerce(arch)
    attrs = {"architecture": space.describe(arch), **dict(user_attrs)}
    distributions: dict[str, BaseDistribution] = dict(space.distributions())
    finite = isinstance(value, (int, float)) and math.isfinite(float(value))
    frozen = optuna.trial.create_trial(
        state=TrialState.COMPLETE if finite else TrialState.FAIL,
        value=float(value) if finite else None,
        params=arch.to_params(),
        distributions=distributions,
        user_attrs=attrs,
        system_attrs={METHOD_KEY: method},
    )
    storage = study._storage
    trial_id = storage.create_new_trial(study._study_id, template_trial=frozen)
    stored = storage.get_trial(trial_id)
    if dashboard is not None:
        dashboard(study, stored)
    return stored


def method_trials(study: optuna.Study, method: str | None = None) -> list[FrozenTrial]:
    """The trials one-shot searchers recorded (of ``method`` only, if given), by number."""
    out = [
        t
        for t in study.get_trials(deepcopy=False)
        if METHOD_KEY in t.system_attrs
        and (method is None or t.system_attrs[METHOD_KEY] == method)
    ]
    return sorted(out, key=lambda t: t.number)


__all__ = ["METHOD_KEY", "TABLES_KEY", "compact_json", "method_trials", "record_epoch"]
