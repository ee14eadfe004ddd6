"""The relaxed ENAS micro and macro supernets (work in progress: the implementation follows)."""

from __future__ import annotations

from typing import Any

import torch

from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace


class RelaxedMicroSupernet(RelaxedSupernet):
    """Placeholder with the final constructor signature."""

    def __init__(
        self,
        space: MicroSpace,
        *,
        relaxation: Relaxation,
        generator: torch.Generator | None = None,
        image_size: tuple[int, ...] = (32, 32),
        **kwargs: Any,
    ) -> None:
        super().__init__(space, relaxation)
        raise NotImplementedError("RelaxedMicroSupernet is being written (issue #14).")


class RelaxedMacroSupernet(RelaxedSupernet):
    """Placeholder with the final constructor signature."""

    def __init__(
        self,
        space: MacroSpace,
        *,
        relaxation: Relaxation,
        generator: torch.Generator | None = None,
        image_size: tuple[int, ...] = (32, 32),
        **kwargs: Any,
    ) -> None:
        super().__init__(space, relaxation)
        raise NotImplementedError("RelaxedMacroSupernet is being written (issue #14).")
