"""The relaxed ENAS recurrent cell (work in progress: the implementation follows)."""

from __future__ import annotations

from typing import Any

import torch

from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.spaces._enas import RNNCellSpace


class RelaxedRNNSupernet(RelaxedSupernet):
    """Placeholder with the final constructor signature."""

    def __init__(
        self,
        space: RNNCellSpace,
        *,
        relaxation: Relaxation,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, relaxation)
        raise NotImplementedError("RelaxedRNNSupernet is being written (issue #14).")
