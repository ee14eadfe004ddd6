"""One-shot NAS: relaxed (continuous) supernets for DARTS and DSO-NAS, and their searchers.

Names load lazily (PEP 562), so ``import optuna_enas`` does not import torch.

- :mod:`._relaxed`: :class:`RelaxedSupernet` (the contract the searchers build on) and
  :func:`build_relaxed`;
- :mod:`._mixed`: mixed-op and scaled-sum building blocks;
- :mod:`._relaxed_rnn`: the relaxed recurrent cell (DARTS recurrent space, DSO-NAS lambdas);
- :mod:`._relaxed_cnn`: the relaxed micro and macro CNN supernets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


_EXPORTS = {
    "PARAM_FREE_OPS": "optuna_enas.oneshot._mixed",
    "RELAXATIONS": "optuna_enas.oneshot._relaxed",
    "Relaxation": "optuna_enas.oneshot._relaxed",
    "RelaxedSupernet": "optuna_enas.oneshot._relaxed",
    "build_relaxed": "optuna_enas.oneshot._relaxed",
    "RelaxedRNNSupernet": "optuna_enas.oneshot._relaxed_rnn",
    "RelaxedMicroSupernet": "optuna_enas.oneshot._relaxed_cnn",
    "RelaxedMacroSupernet": "optuna_enas.oneshot._relaxed_cnn",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.oneshot._mixed import PARAM_FREE_OPS as PARAM_FREE_OPS
    from optuna_enas.oneshot._relaxed import RELAXATIONS as RELAXATIONS
    from optuna_enas.oneshot._relaxed import Relaxation as Relaxation
    from optuna_enas.oneshot._relaxed import RelaxedSupernet as RelaxedSupernet
    from optuna_enas.oneshot._relaxed import build_relaxed as build_relaxed
    from optuna_enas.oneshot._relaxed_cnn import RelaxedMacroSupernet as RelaxedMacroSupernet
    from optuna_enas.oneshot._relaxed_cnn import RelaxedMicroSupernet as RelaxedMicroSupernet
    from optuna_enas.oneshot._relaxed_rnn import RelaxedRNNSupernet as RelaxedRNNSupernet

__all__ = sorted(_EXPORTS)
