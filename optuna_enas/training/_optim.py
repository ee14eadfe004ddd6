"""The shared-weight optimizer's settings: one frozen record, with per-kind defaults from ENAS.

Torch-free: the CLI validates these before importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive


@dataclass(frozen=True)
class OptimConfig:
    """SGD settings of the shared (or standalone) weights.

    Attributes:
        lr: Learning rate.
        grad_clip: Maximum global gradient norm; ``math.inf`` disables clipping.
        momentum: SGD momentum in ``[0, 1)``; Nesterov when positive.
        weight_decay: L2 penalty.
    """

    lr: float
    grad_clip: float
    momentum: float
    weight_decay: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_positive("lr", self.lr))
        object.__setattr__(
            self, "grad_clip", check_positive("grad_clip", self.grad_clip, allow_inf=True)
        )
        object.__setattr__(self, "momentum", check_fraction("momentum", self.momentum))
        object.__setattr__(
            self, "weight_decay", check_non_negative("weight_decay", self.weight_decay)
        )

    @classmethod
    def for_kind(
        cls,
        kind: str,
        *,
        lr: float | None = None,
        grad_clip: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
    ) -> OptimConfig:
        """The defaults of ``kind`` (``"rnn"``, ``"macro"``, ``"micro"``), with overrides."""
        if kind not in DEFAULTS:
            raise ValueError(f"kind must be one of {sorted(DEFAULTS)}, but got {kind!r}.")
        given = {"lr": lr, "grad_clip": grad_clip, "momentum": momentum}
        given["weight_decay"] = weight_decay
        return dataclasses.replace(
            DEFAULTS[kind], **{k: v for k, v in given.items() if v is not None}
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULTS: dict[str, OptimConfig] = {
    # Pham et al. 2018, Sec. 3.1 and carpedm20/ENAS-pytorch config.py train the shared weights
    # with SGD at lr 20 (--shared_lr), gradient norm clipped at 0.25 (--shared_grad_clip), L2
    # 1e-7 (--shared_l2_reg; also the official ptb_search.sh child_l2_reg). We keep the clip
    # and the L2 but default to lr 5: ENAS's 1000-unit cell is heavily regularized, while on
    # small dropout-free supernets lr 20 makes unbounded (identity/ReLU) cells blow up. Random
    # search, 400 trials, 4-node cell, 32 units, synthetic corpus: at lr 20 identity cells reach
    # ppl ~1e300 and steps go NaN; at lr 10, 12 of the last 100 trials score ppl > 1e3; lr 5
    # has the lowest median of the last 100 (24.7; lr 2: 31.5).
    "rnn": OptimConfig(lr=5.0, grad_clip=0.25, momentum=0.0, weight_decay=1e-7),
    # melodyguan/enas scripts/cifar10_macro_search.sh: child_lr_max 0.05, child_l2_reg 2.5e-4,
    # Nesterov momentum 0.9 (utils.get_train_ops), child_grad_bound 5.0 (main.py default).
    "macro": OptimConfig(lr=0.05, grad_clip=5.0, momentum=0.9, weight_decay=2.5e-4),
    # scripts/cifar10_micro_search.sh: the same, with child_l2_reg 1e-4.
    "micro": OptimConfig(lr=0.05, grad_clip=5.0, momentum=0.9, weight_decay=1e-4),
}


__all__ = ["DEFAULTS", "OptimConfig"]
