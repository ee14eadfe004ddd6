"""Reward functions: map a trial's objective value to a higher-is-better scalar."""

from __future__ import annotations

from collections.abc import Callable

from optuna.study import StudyDirection


RewardFn = Callable[[float, StudyDirection], float]


def direction_reward(value: float, direction: StudyDirection) -> float:
    """The default: the value when maximizing, its negation when minimizing."""
    return value if direction == StudyDirection.MAXIMIZE else -value


def perplexity_reward(c: float = 80.0) -> RewardFn:
    """ENAS's PTB reward ``c / perplexity`` (Pham et al. 2018, Sec. 3.1: c = 80).

    Use with a study that minimizes validation perplexity.
    """
    if not c > 0:
        raise ValueError(f"c must be positive, but got {c!r}.")

    def reward(value: float, direction: StudyDirection) -> float:
        if direction != StudyDirection.MINIMIZE:
            raise ValueError("perplexity_reward needs a study with direction='minimize'.")
        if value <= 0:
            raise ValueError(f"perplexity must be positive, but got {value!r}.")
        return c / value

    return reward
