"""REINFORCE with a moving-average baseline and an entropy bonus (Williams 1992; ENAS Sec. 2.2).

Takes scalar rewards only; knows nothing of Optuna. Each observed trial updates the baseline at
once, ``b <- d*b + (1-d)*r`` (ENAS reads the baseline after this update), and joins a buffer;
every ``n_aggregate`` observations the buffer becomes one Adam step on

    loss = -mean_k(w_k * (r_k - b_k) * log pi(a_k)) + skip_weight * mean_k(sum_t KL_t)

where ``r_k`` includes ``entropy_weight * H_k``, ``w_k`` is 1 for trials sampled by the current
policy and ``min(exp(log pi(a_k) - log mu(a_k)), importance_weight_clip)`` for trials sampled by
another (or an older) policy ``mu``, and ``KL_t`` is ENAS's skip penalty
``KL(Bernoulli(p_t) || Bernoulli(skip_target))`` at skip decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from optuna_enas.sampler._config import ControllerConfig
from optuna_enas.sampler._controller import LSTMController
from optuna_enas.sampler._controller import single_thread


@dataclass
class Observation:
    """One trial as the learner sees it.

    Args:
        actions: Action index per decision (padding where ``mask`` is False).
        mask: Which decisions the trial really took (only these enter the log-probability).
        advantage: ``reward - baseline`` at observation time.
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
    """Owns the controller's Adam optimizer, the baseline and the aggregation buffer."""

    def __init__(self, controller: LSTMController, config: ControllerConfig) -> None:
        self.controller = controller
        self.config = config
        self.optimizer = torch.optim.Adam(
            controller.parameters(), lr=config.learning_rate, fused=True
        )
        self.baseline: float | None = None
        self.n_updates = 0
        self.n_observed = 0
        self._pending: list[Observation] = []
        self.fingerprint = controller.fingerprint()

    def add_params(self, params: list[torch.nn.Parameter]) -> None:
        """Register parameters of a decision the controller just grew."""
        self.optimizer.add_param_group({"params": params})
        self.fingerprint = self.controller.fingerprint()

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
        """Record one trial; steps the optimizer when ``n_aggregate`` trials are buffered.

        Returns the statistics of this observation (reward, baseline, advantage, entropy).
        """
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, but got {reward!r}.")
        total = reward + self.config.entropy_weight * entropy
        if self.baseline is None:
            self.baseline = total  # start at the first reward, as ENAS-pytorch does
        d = self.config.baseline_decay
        self.baseline = d * self.baseline + (1.0 - d) * total
        advantage = total - self.baseline
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
            "reward_with_entropy": total,
            "baseline": self.baseline,
            "advantage": advantage,
            "entropy": entropy,
        }
        if len(self._pending) >= self.config.n_aggregate:
            stats["loss"] = self.step()
        return stats

    def step(self) -> float:
        """Apply one Adam step on the buffered observations (no-op on an empty buffer)."""
        if not self._pending:
            return 0.0
        with single_thread():
            return self._step()

    def _step(self) -> float:
        batch = self._pending
        self._pending = []
        n_steps = len(self.controller)
        actions = torch.zeros(len(batch), n_steps, dtype=torch.long)
        mask = torch.zeros(len(batch), n_steps, dtype=torch.bool)
        for k, obs in enumerate(batch):
            m = min(len(obs.actions), n_steps)
            actions[k, :m] = torch.tensor(obs.actions[:m], dtype=torch.long)
            mask[k, :m] = torch.tensor(obs.mask[:m], dtype=torch.bool)
        step_logp, _, skip_p = self.controller.log_prob_steps(actions)
        logp = (step_logp * mask).sum(dim=1)
        weights = self._importance_weights(batch, step_logp.detach())
        adv = torch.tensor([o.advantage for o in batch], dtype=logp.dtype)
        loss = -(weights * adv * logp).mean()
        if self.config.skip_weight > 0:
            is_skip = torch.tensor([k == "skip" for k in self.controller.kinds])
            if bool(is_skip.any()):
                q = self.config.skip_target
                p = skip_p[:, is_skip].clamp(1e-6, 1 - 1e-6)
                kl = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
                loss = loss + self.config.skip_weight * (kl * mask[:, is_skip]).sum(1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.n_updates += 1
        self.controller.refresh()
        self.fingerprint = self.controller.fingerprint()
        return float(loss.detach())

    def _importance_weights(
        self, batch: list[Observation], step_logp: torch.Tensor
    ) -> torch.Tensor:
        weights = torch.ones(len(batch), dtype=step_logp.dtype)
        clip = self.config.importance_weight_clip
        for k, obs in enumerate(batch):
            if obs.on_policy or obs.behaviour is None:
                continue
            log_ratio = 0.0
            for t, ok in enumerate(obs.usable[: step_logp.shape[1]]):
                if ok and t < len(obs.behaviour):
                    log_ratio += float(step_logp[k, t]) - obs.behaviour[t]
            weights[k] = min(math.exp(min(log_ratio, 50.0)), clip)
        return weights

    # -- persistence helpers (tests, checkpoints) -------------------------------------------
    def state_dict(self) -> dict[str, object]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "n_updates": self.n_updates,
            "n_observed": self.n_observed,
        }
