"""The policy-gradient learner: REINFORCE (Williams 1992; ENAS Sec. 2.2) with three advantages.

Takes scalar rewards only; knows nothing of Optuna. Each observed trial gets its advantage at
once (from the rewards seen so far, so a replay in trial order reproduces it) and joins a
buffer; every ``n_aggregate`` observations the buffer becomes one update:

    loss = -mean_k(w_k * A_k * log pi(a_k)) + skip_weight * mean_k(KL_k) [- entropy term]

- ``A_k``: ``advantage="baseline"`` (ENAS): ``r_k + entropy_weight * H_k - b_k`` with
  ``b <- d*b + (1-d)*(r + entropy_weight * H)`` updated before it is read (as ENAS does),
  starting at ``baseline_init`` (official: 0) or at the first reward (``None``);
  ``"rank"``: the reward's mid-rank quantile ``q`` among the last ``reward_window`` rewards,
  ``(q - 1/2) * sqrt(12)``; ``"standardized"``: ``(r - mean) / std`` over that window. Always
  float64 and clipped to ``[-advantage_clip, advantage_clip]``. With the last two the entropy
  term is ``-entropy_weight * mean_k(H_k)`` in the loss (with gradient).
- ``w_k``: 1 for trials sampled by the current policy, ``min(exp(log pi(a_k) - log mu(a_k)),
  importance_weight_clip)`` for trials sampled by another (or an older) policy ``mu``, over the
  decisions whose behaviour log-probability is known and finite.
- ``KL_k``: ENAS's skip penalty, ``KL(Bernoulli(p_t) || Bernoulli(skip_target))`` summed over
  the skip bits of a layer and averaged over the layers (official macro controller); with
  ``skip_kl_half_logit`` on ``sigmoid(logit(p_t) / 2)`` as the official code does.
- ``ppo_epochs > 1``: that many passes, each with PPO's clipped surrogate
  ``min(rho * A, clip(rho, 1 - eps, 1 + eps) * A)``, ``rho = pi(a) / pi_start(a)``. One pass is
  plain REINFORCE (the same gradient as the ratio form at ``rho = 1``).

The optimizer is torch's Adam, or with ``adam_epsilon_hat`` :class:`TFAdam` (TensorFlow's
``AdamOptimizer``, as in the official ENAS code).

A pass whose loss or gradient is not finite is not applied (the controller is untouched by it),
the rest of that update is dropped, and one warning is logged.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from optuna_enas.sampler._config import ControllerConfig
from optuna_enas.sampler._controller import LSTMController
from optuna_enas.sampler._controller import single_thread


_logger = logging.getLogger(__name__)
_SQRT12 = math.sqrt(12.0)


@dataclass
class Observation:
    """One trial as the learner sees it.

    Args:
        actions: Action index per decision (padding where ``mask`` is False).
        mask: Which decisions the trial really took (only these enter the log-probability).
        advantage: The trial's advantage (float64, bounded).
        behaviour: Per-decision log-probabilities under the sampling policy, or ``None``.
        usable: Decisions whose behaviour log-probability enters the importance ratio.
        on_policy: Sampled by exactly the current policy (importance weight 1).
    """

    actions: list[int]
    mask: list[bool]
    advantage: float
    behaviour: list[float] | None
    usable: list[bool]
    on_policy: bool


class Reinforce:
    """Owns the controller's Adam optimizer, the advantage state and the aggregation buffer."""

    def __init__(self, controller: LSTMController, config: ControllerConfig) -> None:
        self.controller = controller
        self.config = config
        self.optimizer: torch.optim.Optimizer
        betas = (config.adam_beta1, 0.999)
        if config.adam_epsilon_hat:
            self.optimizer = TFAdam(
                controller.parameters(), lr=config.learning_rate, betas=betas, eps=config.adam_eps
            )
        else:
            self.optimizer = torch.optim.Adam(
                controller.parameters(),
                lr=config.learning_rate,
                betas=betas,
                eps=config.adam_eps,
                fused=True,
            )
        self.baseline: float | None = config.baseline_init
        self.n_updates = 0
        self.n_observed = 0
        self.n_skipped = 0
        self._window: deque[float] = deque(maxlen=config.reward_window)
        self._sorted: list[float] = []  # the window, sorted (for ranks)
        self._pending: list[Observation] = []
        self.fingerprint = controller.fingerprint()

    def add_params(self, params: list[torch.nn.Parameter]) -> None:
        """Register parameters of a decision the controller just grew."""
        self.optimizer.add_param_group({"params": params})
        self.fingerprint = self.controller.fingerprint()

    # -- advantages ----------------------------------------------------------------------------
    def advantage(self, reward: float, entropy: float) -> tuple[float, float]:
        """Fold ``reward`` into the advantage state; returns ``(advantage, baseline)``.

        ``baseline`` is what the reward is compared with: ENAS's moving average, the window's
        median (rank) or mean (standardized). Both are finite floats.
        """
        config = self.config
        clip = config.advantage_clip
        if config.advantage == "baseline":
            total = reward + config.entropy_weight * entropy
            if not math.isfinite(total):  # reward and entropy finite, their sum overflowed
                total = math.copysign(1.7976931348623157e308, total)
            if self.baseline is None:
                self.baseline = total  # start at the first reward, as ENAS-pytorch does
            d = config.baseline_decay
            self.baseline = d * self.baseline + (1.0 - d) * total
            diff = total - self.baseline  # may overflow to +-inf: clipped below
            return _clip(diff, clip), self.baseline
        self._push(reward)
        window = self._sorted
        n = len(window)
        if config.advantage == "rank":
            less = bisect.bisect_left(window, reward)
            equal = bisect.bisect_right(window, reward) - less
            q = (less + 0.5 * equal) / n
            median = window[n // 2] if n % 2 else 0.5 * window[n // 2 - 1] + 0.5 * window[n // 2]
            return _clip((q - 0.5) * _SQRT12, clip), float(median)
        values = np.asarray(window, dtype=np.float64)
        scale = float(np.max(np.abs(values)))
        if scale == 0.0 or n < 2:
            return 0.0, float(values.mean())
        z = values / scale  # in [-1, 1]: no overflow in mean or std
        mean, std = float(z.mean()), float(z.std())
        if std == 0.0:
            return 0.0, mean * scale
        return _clip((reward / scale - mean) / std, clip), mean * scale

    def _push(self, reward: float) -> None:
        if len(self._window) == self._window.maxlen:
            old = self._window[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._window.append(reward)
        bisect.insort(self._sorted, reward)

    # -- observations --------------------------------------------------------------------------
    def observe(
        self,
        *,
        actions: list[int],
        mask: list[bool],
        reward: float,
        entropy: float,
        behaviour: list[float] | None = None,
        usable: list[bool] | None = None,
        on_policy: bool = True,
    ) -> dict[str, float]:
        """Record one trial; updates the controller when ``n_aggregate`` trials are buffered.

        Returns the statistics of this observation (reward, baseline, advantage, entropy).
        """
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, but got {reward!r}.")
        if not math.isfinite(entropy):
            raise ValueError(f"entropy must be finite, but got {entropy!r}.")
        advantage, baseline = self.advantage(float(reward), float(entropy))
        self._pending.append(
            Observation(
                actions=list(actions),
                mask=list(mask),
                advantage=advantage,
                behaviour=behaviour,
                usable=list(usable) if usable is not None else [False] * len(actions),
                on_policy=on_policy,
            )
        )
        self.n_observed += 1
        stats = {
            "reward": reward,
            "baseline": baseline,
            "advantage": advantage,
            "entropy": entropy,
        }
        if self.config.advantage == "baseline":
            stats["reward_with_entropy"] = reward + self.config.entropy_weight * entropy
        if len(self._pending) >= self.config.n_aggregate:
            stats["loss"] = self.step()
        return stats

    def step(self) -> float:
        """Update on the buffered observations (no-op on an empty buffer); returns the loss."""
        if not self._pending:
            return 0.0
        with single_thread():
            return self._update()

    def _update(self) -> float:
        batch = self._pending
        self._pending = []
        n_steps = len(self.controller)
        actions = torch.zeros(len(batch), n_steps, dtype=torch.long)
        mask = torch.zeros(len(batch), n_steps, dtype=torch.bool)
        for k, obs in enumerate(batch):
            m = min(len(obs.actions), n_steps)
            actions[k, :m] = torch.tensor(obs.actions[:m], dtype=torch.long)
            mask[k, :m] = torch.tensor(obs.mask[:m], dtype=torch.bool)
        adv = torch.tensor([o.advantage for o in batch], dtype=torch.float64)
        epochs = self.config.ppo_epochs
        weights: torch.Tensor | None = None
        start_logp: torch.Tensor | None = None
        loss_value = 0.0
        stepped = False
        for epoch in range(epochs):
            step_logp, ents, skip_p = self.controller.log_prob_steps(actions)
            logp = (step_logp * mask).sum(dim=1).double()
            if weights is None:
                weights = self.importance_weights(batch, step_logp.detach())
                start_logp = logp.detach()
            assert start_logp is not None
            if epochs == 1:
                loss = -(weights * adv * logp).mean()
            else:
                rho = torch.exp(logp - start_logp)
                eps = self.config.ppo_clip
                surrogate = torch.minimum(rho * adv, rho.clamp(1.0 - eps, 1.0 + eps) * adv)
                loss = -(weights * surrogate).mean()
            loss = loss + self._skip_penalty(skip_p, mask)
            if self.config.advantage != "baseline" and self.config.entropy_weight > 0:
                loss = loss - self.config.entropy_weight * (ents * mask).sum(1).double().mean()
            if not self._apply(loss, epoch):
                break
            stepped = True
            loss_value = float(loss.detach())
        if stepped:
            self.n_updates += 1
            self.controller.refresh()
            self.fingerprint = self.controller.fingerprint()
        return loss_value

    def _apply(self, loss: torch.Tensor, epoch: int) -> bool:
        """One Adam step on ``loss``, unless the loss or a gradient is not finite."""
        self.optimizer.zero_grad(set_to_none=True)
        bad = "loss"
        if bool(torch.isfinite(loss)):
            loss.backward()
            grads = [p.grad for p in self.controller.parameters() if p.grad is not None]
            if all(bool(torch.isfinite(g).all()) for g in grads):
                if self.config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(
                        self.controller.parameters(), self.config.grad_clip
                    )
                self.optimizer.step()
                return True
            bad = "gradient"
        self.optimizer.zero_grad(set_to_none=True)
        self.n_skipped += 1
        _logger.warning(
            f"ENASSampler skipped a controller update (pass {epoch + 1}): its {bad} is not "
            "finite. The controller is unchanged by it."
        )
        return False

    def _skip_penalty(self, skip_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``skip_weight * mean_k mean_layers sum_{bits of layer} KL`` (official macro form)."""
        if self.config.skip_weight == 0:
            return torch.zeros((), dtype=torch.float64)
        groups = self.controller.skip_groups()
        if not groups:
            return torch.zeros((), dtype=torch.float64)
        q = self.config.skip_target
        p = skip_p.double().clamp(1e-6, 1 - 1e-6)
        if self.config.skip_kl_half_logit:  # sigmoid(logit(p) / 2)
            p = p.sqrt() / (p.sqrt() + (1 - p).sqrt())
        kl = (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))) * mask
        per_layer = torch.stack([kl[:, g].sum(1) for g in groups], 1)
        return self.config.skip_weight * per_layer.mean(1).mean()

    def importance_weights(
        self, batch: list[Observation], step_logp: torch.Tensor
    ) -> torch.Tensor:
        """Truncated importance weights (float64, in ``(0, importance_weight_clip]``)."""
        weights = torch.ones(len(batch), dtype=torch.float64)
        clip = self.config.importance_weight_clip
        for k, obs in enumerate(batch):
            if obs.on_policy or obs.behaviour is None:
                continue
            log_ratio = 0.0
            for t, ok in enumerate(obs.usable[: step_logp.shape[1]]):
                if ok and t < len(obs.behaviour):
                    b = obs.behaviour[t]
                    cur = float(step_logp[k, t])
                    if math.isfinite(b) and math.isfinite(cur):
                        log_ratio += cur - b
            weights[k] = min(math.exp(min(log_ratio, 50.0)), clip)
        return weights

    # -- persistence helpers (tests, checkpoints) -------------------------------------------
    def state_dict(self) -> dict[str, object]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "window": list(self._window),
            "n_updates": self.n_updates,
            "n_observed": self.n_observed,
        }


class TFAdam(torch.optim.Optimizer):
    """Adam as TensorFlow 1's ``tf.train.AdamOptimizer`` computes it (official ENAS code).

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``: epsilon is added
    to the uncorrected ``sqrt(v)`` ("epsilon hat" in Kingma & Ba, Sec. 2), so with the official
    ``eps = 1e-3`` the first steps differ from torch's Adam, which adds it to
    ``sqrt(v / (1 - b2^t))``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["m"], state["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                lr_t = group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-lr_t)


def _clip(value: float, bound: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-bound, min(bound, value))
