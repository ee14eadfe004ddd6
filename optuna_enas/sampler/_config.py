"""Controller hyperparameters and presets named after the source that set them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """Hyperparameters of the LSTM controller and its REINFORCE update.

    Defaults are the official ENAS PTB search script (``scripts/ptb_search.sh`` and the flag
    defaults of ``src/ptb/main.py`` in github.com/melodyguan/enas), i.e. the preset
    ``"enas-official-ptb"``. Use :meth:`from_preset` for the others.

    Args:
        lstm_size: Hidden size of the controller LSTM (ENAS PTB: 100).
        lstm_num_layers: Stacked LSTM layers (ENAS: 1).
        temperature: Logits are divided by it before the tanh squash (ENAS PTB: 5.0). ``None``
            disables it.
        tanh_constant: Logits become ``tanh_constant * tanh(logits)`` (ENAS PTB: 2.5); this keeps
            the policy from collapsing early. ``None`` disables it.
        op_tanh_reduce: For ``"op"`` decisions the constant is divided by it (ENAS CIFAR: 2.5).
        entropy_weight: Entropy bonus added to the reward (ENAS PTB script: 1e-3).
        skip_target: Target probability of a skip connection (ENAS macro: 0.4).
        skip_weight: Weight of the KL(skip prob || skip_target) penalty (ENAS macro: 0.8); 0 off.
        baseline_decay: Moving-average baseline decay, ``b <- d*b + (1-d)*r`` (ENAS: 0.99).
        learning_rate: Adam learning rate (ENAS PTB script: 1e-3).
        grad_clip: Max global gradient norm; ``None`` disables clipping (ENAS PTB: none).
        n_aggregate: Trials whose gradients are averaged into one Adam step
            (``controller_num_aggregate``; ENAS PTB script: 10).
        init_range: Parameters start uniform in ``[-init_range, init_range]`` (ENAS: 0.1).
        importance_weight_clip: Upper clip of the importance weight used for trials sampled by
            another (or an older) controller, as in truncated importance sampling.
    """

    lstm_size: int = 100
    lstm_num_layers: int = 1
    temperature: float | None = 5.0
    tanh_constant: float | None = 2.5
    op_tanh_reduce: float = 1.0
    entropy_weight: float = 1e-3
    skip_target: float = 0.4
    skip_weight: float = 0.0
    baseline_decay: float = 0.99
    learning_rate: float = 1e-3
    grad_clip: float | None = None
    n_aggregate: int = 10
    init_range: float = 0.1
    importance_weight_clip: float = 2.0

    def __post_init__(self) -> None:
        _positive_int("lstm_size", self.lstm_size)
        _positive_int("lstm_num_layers", self.lstm_num_layers)
        _positive_int("n_aggregate", self.n_aggregate)
        for name in ("temperature", "tanh_constant", "grad_clip"):
            value = getattr(self, name)
            if value is not None:
                _positive_float(name, value)
        for name in ("op_tanh_reduce", "learning_rate", "init_range", "importance_weight_clip"):
            _positive_float(name, getattr(self, name))
        for name in ("entropy_weight", "skip_weight"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a non-negative float, but got {value!r}.")
        if not _is_real(self.skip_target) or not 0.0 < self.skip_target < 1.0:
            raise ValueError(f"skip_target must be in (0, 1), but got {self.skip_target!r}.")
        if not _is_real(self.baseline_decay) or not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), but got {self.baseline_decay!r}.")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> ControllerConfig:
        """A preset by name, with any field overridden by keyword.

        Presets (see :data:`PRESETS`): ``"enas-paper-ptb"``, ``"enas-official-ptb"``,
        ``"enas-official-cifar-macro"``, ``"enas-official-cifar-micro"``.
        """
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {preset!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"unknown ControllerConfig fields {unknown}; known: {sorted(fields)}."
            )
        return dataclasses.replace(PRESETS[preset], **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, but got {value!r}.")


def _positive_float(name: str, value: Any) -> None:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive float, but got {value!r}.")


PRESETS: dict[str, ControllerConfig] = {
    # Pham et al. 2018, Sec. 3.1 and carpedm20/ENAS-pytorch's PTB defaults (config.py):
    # controller hidden 100, Adam 3.5e-4, temperature 5, tanh 2.5, entropy 1e-4, EMA 0.95;
    # one update per sampled architecture. Its reward is 80 / valid ppl (perplexity_reward).
    "enas-paper-ptb": ControllerConfig(
        lstm_size=100,
        temperature=5.0,
        tanh_constant=2.5,
        entropy_weight=1e-4,
        baseline_decay=0.95,
        learning_rate=3.5e-4,
        n_aggregate=1,
    ),
    # melodyguan/enas scripts/ptb_search.sh: controller_lr 0.001, num_aggregate 10,
    # tanh 2.5, temperature 5.0, entropy 0.001; flag defaults: lstm 100, bl_dec 0.99.
    "enas-official-ptb": ControllerConfig(),
    # melodyguan/enas scripts/cifar10_macro_search.sh: entropy 1e-4, num_aggregate 20, lr 1e-3,
    # tanh 1.5, op_tanh_reduce 2.5, skip_target 0.4, skip_weight 0.8; lstm 64, bl_dec 0.99,
    # no temperature (flag defaults).
    "enas-official-cifar-macro": ControllerConfig(
        lstm_size=64,
        temperature=None,
        tanh_constant=1.5,
        op_tanh_reduce=2.5,
        entropy_weight=1e-4,
        skip_target=0.4,
        skip_weight=0.8,
        learning_rate=1e-3,
        n_aggregate=20,
    ),
    # melodyguan/enas scripts/cifar10_micro_search.sh: entropy 1e-4, num_aggregate 10,
    # lr 3.5e-3, tanh 1.10, op_tanh_reduce 2.5; lstm 64, bl_dec 0.99 (flag defaults).
    "enas-official-cifar-micro": ControllerConfig(
        lstm_size=64,
        temperature=None,
        tanh_constant=1.10,
        op_tanh_reduce=2.5,
        entropy_weight=1e-4,
        learning_rate=3.5e-3,
        n_aggregate=10,
    ),
}

DEFAULT_PRESET_FOR_SPACE = {
    "rnn": "enas-official-ptb",
    "macro": "enas-official-cifar-macro",
    "micro": "enas-official-cifar-micro",
}
