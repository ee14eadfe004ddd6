"""Which architectures train the shared weights: ENAS, SPOS/RS-WS, FairNAS, or a mixture.

One *shared step* is one optimizer step of the supernet; the architectures it trains are the
*paths* whose gradients are accumulated (summed, each path's loss divided by their number)
before that step.

- ``"controller"`` (ENAS, Pham et al. 2018, Sec. 2.2): the architecture the sampler chose for
  the trial; with no trial (warm-up, two-stage pretraining), a uniform draw.
- ``"uniform"`` (SPOS, Guo et al. 2020, Sec. 3.1 and Eq. 6; RS-WS, Li & Talwalkar 2019,
  Sec. 4.2): one architecture with every decision drawn uniformly, whatever the sampler chose.
- ``"fair"`` (FairNAS, Chu et al. 2021, strict fairness, Sec. 3.2 and Alg. 1): ``m`` paths,
  ``m`` the largest number of choices of any decision. Decision ``d`` takes its choices in a
  fresh random permutation across the ``m`` paths, so every candidate of every decision trains
  exactly once per step; a decision with fewer than ``m`` choices fills the remaining paths
  with uniform draws (FairNAS's spaces have the same number of choices everywhere; ours do not).
- ``"mixture"``: the trial's architecture with probability ``mixture``, otherwise a uniform
  draw (one path per step). Not from a paper: an interpolation between ENAS and SPOS.

Torch-free: this module only draws architectures from a caller's NumPy generator.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from optuna_enas._validation import check_fraction
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


TrainPaths = Literal["controller", "uniform", "fair", "mixture"]
TRAIN_PATHS: tuple[TrainPaths, ...] = ("controller", "uniform", "fair", "mixture")


def check_train_paths(value: object) -> TrainPaths:
    """``value`` as a :data:`TrainPaths`; raises ``ValueError`` naming ``train_paths``."""
    for mode in TRAIN_PATHS:
        if value == mode and isinstance(value, str):
            return mode
    raise ValueError(f"train_paths must be one of {list(TRAIN_PATHS)}, but got {value!r}.")


class PathSampler:
    """Which architectures train the shared weights in one shared step.

    The sources: ENAS (Pham et al. 2018) trains on the controller's sample (``"controller"``);
    SPOS (Guo et al. 2020) and random search with weight sharing (Li & Talwalkar 2019) train
    on a uniformly drawn path (``"uniform"``); FairNAS (Chu et al. 2021) trains every
    candidate of every decision exactly once per step (strict fairness, ``"fair"``);
    ``"mixture"`` interpolates between ENAS and SPOS.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_enas import RNNCellSpace
            from optuna_enas.training._paths import PathSampler

            space = RNNCellSpace(n_nodes=4)
            paths = PathSampler(space, "fair").paths(None, np.random.default_rng(0))
            assert len(paths) == 4  # the largest decision has 4 choices

    Args:
        space: The search space.
        mode: ``"controller"`` (ENAS), ``"uniform"`` (SPOS / RS-WS), ``"fair"`` (FairNAS) or
            ``"mixture"``.
        mixture: Probability of the trial's architecture under ``"mixture"`` (in [0, 1]).
            Default 0.5: half ENAS, half SPOS (no paper sets it).
    """

    def __init__(
        self, space: SearchSpace, mode: TrainPaths = "controller", *, mixture: float = 0.5
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, but got {space!r}.")
        self._space = space
        self._mode = check_train_paths(mode)
        self._mixture = check_fraction("mixture", mixture, closed=True)
        self._sizes = [len(d.choices) for d in space.decisions]
        self._m = max(self._sizes, default=1)

    @property
    def mode(self) -> TrainPaths:
        return self._mode

    @property
    def mixture(self) -> float:
        return self._mixture

    @property
    def paths_per_step(self) -> int:
        """How many paths :meth:`paths` returns (``m`` for ``"fair"``, else 1)."""
        return self._m if self._mode == "fair" else 1

    def paths(
        self, trial_arch: Architecture | None, rng: np.random.Generator
    ) -> list[Architecture]:
        """The architectures whose gradients are accumulated for ONE optimizer step.

        - ``"controller"``: ``[trial_arch]`` (``trial_arch`` ``None``: one uniform draw);
        - ``"uniform"``: one uniform draw;
        - ``"fair"``: ``m`` paths, ``m`` the largest number of choices; decision ``d`` uses a
          random permutation of its choices, extended by uniform draws when it has fewer
          than ``m``;
        - ``"mixture"``: ``[trial_arch]`` with probability ``mixture``, else a uniform draw
          (``trial_arch`` ``None``: a uniform draw; the coin is drawn anyway).

        All randomness comes from ``rng``.
        """
        if trial_arch is not None:
            self._space.check_architecture(trial_arch)
        if self._mode == "controller":
            return [trial_arch if trial_arch is not None else self._space.sample_uniform(rng)]
        if self._mode == "uniform":
            return [self._space.sample_uniform(rng)]
        if self._mode == "mixture":
            take_trial = bool(rng.random() < self._mixture)
            if take_trial and trial_arch is not None:
                return [trial_arch]
            return [self._space.sample_uniform(rng)]
        columns = []
        for n in self._sizes:
            column = rng.permutation(n)
            if n < self._m:
                column = np.concatenate([column, rng.integers(n, size=self._m - n)])
            columns.append(column)
        return [self._space.from_indices([int(c[j]) for c in columns]) for j in range(self._m)]

    def __repr__(self) -> str:
        return f"PathSampler(mode={self._mode!r}, mixture={self._mixture})"


__all__ = ["TRAIN_PATHS", "PathSampler", "TrainPaths", "check_train_paths"]
