"""Reward functions: map a trial's objective value(s) to a higher-is-better scalar.

Single-objective rewards are called as ``reward_fn(value, direction)``. On a multi-objective
study :class:`ENASSampler` calls ``reward_fn(values, directions)`` with one entry per objective;
:func:`weighted_sum_reward` and :func:`mnasnet_reward` are such scalarising rewards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from optuna.study import StudyDirection

from optuna_enas._validation import check_int
from optuna_enas._validation import check_positive


RewardFn = Callable[[Any, Any], float]
"""``(value, direction) -> reward``, or ``(values, directions) -> reward`` on multi-objective
studies."""


def direction_reward(value: float, direction: StudyDirection) -> float:
    """The default: the value when maximizing, its negation when minimizing."""
    return value if direction == StudyDirection.MAXIMIZE else -value


def perplexity_reward(c: float = 80.0) -> RewardFn:
    """ENAS's PTB reward ``c / perplexity`` (Pham et al. 2018, Sec. 3.1: c = 80).

    Use with a study that minimizes validation perplexity.
    """
    c = check_positive("c", c)

    def reward(value: float, direction: StudyDirection) -> float:
        if direction != StudyDirection.MINIMIZE:
            raise ValueError("perplexity_reward needs a study with direction='minimize'.")
        if value <= 0:
            raise ValueError(f"perplexity must be positive, but got {value!r}.")
        return c / value

    return reward


def _check_lengths(values: Sequence[float], directions: Sequence[StudyDirection], n: int) -> None:
    if isinstance(values, (int, float)) or len(values) != n or len(directions) != n:
        raise ValueError(
            f"this reward needs a study with {n} objectives, but got values {values!r}."
        )


def weighted_sum_reward(weights: Sequence[float]) -> RewardFn:
    """Scalarise a multi-objective study: ``sum_i weights[i] * s_i * values[i]``.

    ``s_i`` is +1 for an objective that is maximized and -1 for one that is minimized, so every
    weight should be positive (a larger weight means that objective matters more).
    """
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or not weights:
        raise ValueError(f"weights must be a non-empty sequence of floats, but got {weights!r}.")
    ws = [check_positive(f"weights[{i}]", w) for i, w in enumerate(weights)]

    def reward(values: Sequence[float], directions: Sequence[StudyDirection]) -> float:
        _check_lengths(values, directions, len(ws))
        return float(
            sum(
                w * (v if d == StudyDirection.MAXIMIZE else -v)
                for w, v, d in zip(ws, values, directions, strict=True)
            )
        )

    return reward


def mnasnet_reward(
    target: float, *, w: float = -0.07, accuracy_index: int = 0, latency_index: int = 1
) -> RewardFn:
    """MnasNet's reward ``acc * (lat / target) ** w`` (Tan et al. 2019, Eq. 2; soft constraint
    ``w = alpha = beta = -0.07``, Sec. 3.1).

    Args:
        target: The target latency (or size, FLOPs), in the latency objective's unit.
        w: The exponent; negative, so slower than ``target`` costs reward.
        accuracy_index: Which objective is the accuracy (maximized, positive).
        latency_index: Which objective is the latency (minimized, positive).
    """
    target = check_positive("target", target)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
        raise ValueError(f"w must be a finite float, but got {w!r}.")
    acc_i = check_int("accuracy_index", accuracy_index, 0)
    lat_i = check_int("latency_index", latency_index, 0)
    if acc_i == lat_i:
        raise ValueError(
            f"accuracy_index and latency_index must differ, but both are {accuracy_index!r}."
        )

    def reward(values: Sequence[float], directions: Sequence[StudyDirection]) -> float:
        _check_lengths(values, directions, max(acc_i, lat_i) + 1)
        if directions[acc_i] != StudyDirection.MAXIMIZE:
            raise ValueError(f"objective {acc_i} (accuracy) must be maximized.")
        if directions[lat_i] != StudyDirection.MINIMIZE:
            raise ValueError(f"objective {lat_i} (latency) must be minimized.")
        lat = values[lat_i]
        if not lat > 0:
            raise ValueError(f"latency must be positive, but got {lat!r}.")
        return float(values[acc_i] * (lat / target) ** w)

    return reward
