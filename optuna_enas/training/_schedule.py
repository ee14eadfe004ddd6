"""How the trials of a :class:`~optuna_enas.SupernetEvaluator` map onto ENAS's steps.

ENAS alternates two phases (``src/cifar10/main.py`` lines 275-280 and ``src/ptb/main.py``
lines 301-309 of melodyguan/enas): it trains the shared weights for an epoch on architectures
the controller samples (one per minibatch), then freezes them and trains the controller on
``controller_train_steps * controller_num_aggregate`` fresh samples, each rewarded by its
validation score on the frozen weights. Every reward of one controller update therefore comes
from the same weights.

- ``"interleaved"``: each trial takes ``n_train_steps`` shared steps on its own architecture
  and then scores it. Simple, and any sampler can use it; but the rewards of one controller
  update come from different weights, and each architecture is scored right after a step on
  itself.
- ``"phased"``: the trials cycle through ``train_trials`` training trials (shared steps on the
  trial's architecture, no score: the trial ends PRUNED with the user attr ``enas:phase`` set
  to ``"train"``, which :class:`~optuna_enas.ENASSampler` never learns from) and
  ``score_trials`` scoring trials (no training; the architecture is scored on the frozen
  weights and the same validation minibatches as every other scoring trial of the phase;
  ``enas:phase`` is ``"score"``).
- ``"two_stage"`` (SPOS, Guo et al. 2020, Sec. 3; random search with weight sharing, Li &
  Talwalkar 2019, Sec. 4.2): the shared weights are trained first, for ``pretrain_steps``
  shared steps on the paths of the evaluator's ``train_paths`` with no trial involved, and
  then frozen; every trial only scores its architecture on the frozen weights and the same
  validation minibatches (``enas:phase`` ``"score"``). The supernet training is decoupled from
  the search: any sampler searches a fixed landscape.

Torch-free: the evaluator holds the weights; this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from optuna_enas._keys import PHASE_KEY
from optuna_enas._validation import check_int


Schedule = Literal["interleaved", "phased", "two_stage"]
SCHEDULES: tuple[Schedule, ...] = ("interleaved", "phased", "two_stage")
Phase = Literal["interleaved", "train", "score"]


DEFAULT_SCORE_TRIALS: dict[str, int] = {
    # controller_train_steps * controller_num_aggregate of the official search scripts
    # (melodyguan/enas): one controller phase between two epochs of shared training.
    "rnn": 100 * 10,  # scripts/ptb_search.sh lines 34-35
    "micro": 30 * 10,  # scripts/cifar10_micro_search.sh lines 33-34
    "macro": 50 * 20,  # scripts/cifar10_macro_search.sh lines 33-34
}


def check_schedule(value: object) -> Schedule:
    if value == "interleaved":
        return "interleaved"
    if value == "phased":
        return "phased"
    if value == "two_stage":
        return "two_stage"
    raise ValueError(f"schedule must be one of {list(SCHEDULES)}, but got {value!r}.")


@dataclass(frozen=True)
class PhasePlan:
    """The resolved schedule: which phase the trial at each position of the cycle belongs to.

    Attributes:
        schedule: ``"interleaved"``, ``"phased"`` or ``"two_stage"``.
        train_trials: Training trials per cycle (phased).
        score_trials: Scoring trials per cycle (phased).
    """

    schedule: Schedule
    train_trials: int = 0
    score_trials: int = 0

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        if self.schedule == "phased":
            check_int("phase_train_trials", self.train_trials, 0)
            check_int("phase_score_trials", self.score_trials, 1)

    @property
    def cycle(self) -> int:
        """Trials in one cycle (1 when interleaved or two-stage)."""
        if self.schedule != "phased":
            return 1
        return self.train_trials + self.score_trials

    def phase(self, position: int) -> Phase:
        """The phase of the trial at ``position`` (0-based) of the cycle."""
        if self.schedule == "interleaved":
            return "interleaved"
        if self.schedule == "two_stage":
            return "score"
        return "train" if position % self.cycle < self.train_trials else "score"

    def starts_scoring(self, position: int) -> bool:
        """Whether the trial at ``position`` is the first scoring trial of its cycle."""
        return self.schedule == "phased" and position % self.cycle == self.train_trials


__all__ = [
    "DEFAULT_SCORE_TRIALS",
    "PHASE_KEY",
    "SCHEDULES",
    "Phase",
    "PhasePlan",
    "Schedule",
    "check_schedule",
]
