"""Collapse of one-shot searches: tracking the share of parameter-free ops, and a remedy.

DARTS and ENAS drift towards cells made of skip / identity / pooling ops (Zela et al., ICLR
2020, "Understanding and Robustifying Differentiable Architecture Search"; NAS-Bench-201,
Dong and Yang, ICLR 2020, Table 5, reports DARTS at 54.3% on CIFAR-10 for this reason). The
searchers record ``param_free_share`` (the share of parameter-free ops in the derived
architecture, :meth:`~optuna_enas.oneshot.RelaxedSupernet.arch_summary`) every epoch, and a
:class:`CollapseMonitor` warns (:class:`CollapseWarning`, once per upward crossing) when it
rises above a threshold.

Default threshold: the share a uniformly random architecture of the space has in expectation
(:func:`default_threshold`: 3/5 for the micro space's sep3x3, sep5x5, avgpool, maxpool,
identity; 2/6 for the macro space; 1/4 for the RNN cell, whose identity activation is the
cheap one). A search whose derived architecture holds more parameter-free ops than a random
one is drifting towards them. DARTS+'s rule on the DARTS space (two or more skip-connects among
the 8 ops of a normal cell, i.e. 1/4) is the same idea with a fixed number for one space.

Remedy (opt-in, ``early_stop=True``): early stopping as in DARTS+ (Liang et al., 2019,
"DARTS+: Improved Differentiable Architecture Search with Early Stopping", Sec. 3.2,
criterion 1): the search stops at the end of the epoch whose derived architecture crosses the
threshold, and the searcher's result is the architecture of the last epoch at or below it. It
needs nothing of the supernet, so it fits all three spaces; P-DARTS's limits on skip-connects
(Chen et al., 2019) would need a per-space rewrite of :meth:`derive`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from optuna_enas.spaces._search_space import SearchSpace


PARAM_FREE_OPS = frozenset({"identity", "avgpool", "maxpool"})
"""Op names without weights in the ENAS spaces (the RNN's identity counts as the cheap one)."""


class CollapseWarning(UserWarning):
    """The derived architecture's share of parameter-free ops rose above the threshold."""


def default_threshold(space: SearchSpace) -> float:
    """The expected ``param_free_share`` of a uniformly random architecture of ``space``.

    The share of :data:`PARAM_FREE_OPS` among the choices of the space's ``"op"`` decisions
    (averaged over them); 0.5 for a space without op decisions.
    """
    shares = [
        sum(c in PARAM_FREE_OPS for c in d.choices) / len(d.choices)
        for d in space.decisions
        if d.kind == "op"
    ]
    return sum(shares) / len(shares) if shares else 0.5


def check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"collapse_threshold must be a float in [0, 1), but got {value!r}.")
    return float(value)


class CollapseMonitor:
    """Watch ``param_free_share`` epoch by epoch; warn once per crossing; optionally stop.

    Args:
        threshold: Warn when the share rises strictly above it (after being at or below it,
            or at the first epoch).
        early_stop: The DARTS+ remedy: :attr:`should_stop` turns true at the crossing.
    """

    def __init__(self, threshold: float, *, early_stop: bool = False) -> None:
        self.threshold = check_threshold(threshold)
        if not isinstance(early_stop, bool):
            raise ValueError(f"early_stop must be a bool, but got {early_stop!r}.")
        self.early_stop = early_stop
        self.above = False
        self.n_crossings = 0
        self.should_stop = False
        self.history: list[float] = []

    def update(self, epoch: int, share: float) -> bool:
        """Record epoch ``epoch``'s share; return whether it crossed the threshold upwards."""
        share = float(share)
        self.history.append(share)
        above = not math.isnan(share) and share > self.threshold
        crossed = above and not self.above
        self.above = above
        if crossed:
            self.n_crossings += 1
            message = (
                f"epoch {epoch}: the derived architecture's share of parameter-free ops is "
                f"{share:.3f}, above the collapse threshold {self.threshold:.3f} (one-shot "
                "collapse towards skip/identity/pooling ops)"
            )
            if self.early_stop:
                self.should_stop = True
                message += "; early_stop=True stops the search here (DARTS+)."
            else:
                message += "; pass early_stop=True to stop at this point (DARTS+)."
            warnings.warn(message, CollapseWarning, stacklevel=3)
        return crossed

    def state_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "above": self.above,
            "n_crossings": self.n_crossings,
            "should_stop": self.should_stop,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.above = bool(state["above"])
        self.n_crossings = int(state["n_crossings"])
        self.should_stop = bool(state["should_stop"])
        self.history = [float(x) for x in state["history"]]


__all__ = [
    "PARAM_FREE_OPS",
    "CollapseMonitor",
    "CollapseWarning",
    "check_threshold",
    "default_threshold",
]
