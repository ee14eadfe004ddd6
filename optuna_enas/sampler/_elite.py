"""The ``"elite"`` learning rule: refit the controller on the best trials of the whole history.

REINFORCE spends each trial once, in one small gradient step. This rule keeps the history and
refits on it, as TPE does (Bergstra et al. 2011) and as priority-queue training does for an
autoregressive policy (Abolafia et al. 2018, maximum likelihood on the top-K sequences seen so
far; the cross-entropy method is the same idea):

- **Elite.** After ``n`` finished trials the elite is the best ``k(n) = min(ceil(gamma * n),
  max_elite)`` of them by reward (ties: the earlier trial). Only the order of the rewards is
  used, so any increasing transformation of the objective gives the same search, and no value
  can poison it (non-finite ones never reach the learner).
- **Refit.** Whenever the elite changes, ``refit_steps`` Adam steps on the elite's mean
  negative log-likelihood ``-mean_k sum_t log pi(a_kt)``, warm-started from the current
  parameters (and Adam state). A step whose loss or gradient is not finite is skipped.
- **Proposal.** ``n_candidates`` candidates: ``policy_draws`` drawn from the policy mixed, per
  decision, with the uniform distribution, ``l_t = (1 - uniform_mix) pi_t + uniform_mix / n_t``
  (the LSTM conditions on whatever was drawn), ``uniform_draws`` uniform draws, and the rest
  mutants of elite members (one decision changed, each other redrawn uniformly with
  probability ``mutation_rate``, by default that of TPE's categorical kernel at the elite's
  size), whose ``pi`` the LSTM computes in one teacher-forced batch.
  The candidate with the largest ``log l(x) - log g(x)`` is proposed: TPE's acquisition. By
  default (``density="parzen"``) ``g`` is a Parzen estimator over the trials outside the elite
  built from TPE's categorical kernels (one kernel per trial, a product over the decisions, so
  a region crowded with poor trials scores low and an unexplored one gets a chance), and
  ``log l`` (``screen="both"``) is the mean of the LSTM mixture's and of the same estimator over
  the elite. ``density="marginal"`` uses per-decision categoricals instead (counts plus
  ``prior_weight`` spread uniformly), the rule's first version: it cannot tell a crowded
  region from a new one, and on NAS-Bench-201 it stayed in the basin of a local optimum.
- **Never ask twice.** An architecture already evaluated (or proposed by this sampler and still
  running) is not proposed again: unseen candidates win over seen ones; if all ``n_candidates``
  were seen, the best-scoring unseen single-decision neighbour of the best candidate is
  proposed, then an unseen uniform draw (a space of up to 100,000 architectures is walked to
  find one); only when every architecture was seen is a repeat allowed.
- **Start-up.** The first ``n_startup_trials`` proposals are uniform (TPE's random start-up).

Cost per trial: ``policy_draws`` controller draws and one teacher-forced batch of the other
candidates, the Parzen estimators (one comparison per candidate, trial and decision: linear in
the history, as TPE's), plus ``refit_steps`` Adam steps on at most ``max_elite`` sequences when
the elite changed (late in a search it rarely does); the history is kept as the elite,
per-decision counts, every trial's architecture and a set of evaluated architectures. The
state is a function of the trials in the order they were consumed, so a replay in trial-number
order rebuilds it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any
from typing import Literal

import numpy as np
import torch

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive
from optuna_enas.sampler._controller import LSTMController
from optuna_enas.sampler._controller import single_thread


_logger = logging.getLogger(__name__)

MAX_ELITE = 10_000
MAX_CANDIDATES = 10_000
MAX_STEPS = 1_000
_ENUMERATE = 100_000  # spaces up to this size are walked when random draws find nothing new


@dataclass(frozen=True, kw_only=True)
class EliteConfig:
    """Knobs of the ``"elite"`` rule (see the module docstring for the algorithm).

    ``gamma``, ``max_elite``, ``n_startup_trials`` and ``prior_weight`` are Optuna 5's TPE
    defaults. ``uniform_mix``, ``n_candidates``, ``policy_draws`` and ``screen`` were chosen on the
    development seeds 100-111 of ``benchmarks/sampler_quality.py`` (100 trials; BENCHMARKS.md,
    "Sampler quality: the elite rule"), and ``density``, ``uniform_draws`` and ``mutation_rate``
    on the same seeds at 50/100/300 trials; the held-out seeds (500-519, 600-619, 700-739,
    800-859) chose nothing.

    Args:
        gamma: Fraction of the finished trials in the elite (Optuna's TPE default
            ``gamma(n) = min(ceil(0.1 n), 25)``: 0.1).
        max_elite: Cap on the elite size (TPE: 25). Bounds the refit's cost.
        n_startup_trials: Uniform proposals before the first refit (TPE: 10).
        refit_steps: Adam steps per refit (each on the whole elite).
        learning_rate: Adam learning rate of the refit.
        uniform_mix: Weight of the uniform distribution in each decision's proposal mixture
            (and the mutants' redraw probability); a prior that keeps every architecture
            reachable.
        n_candidates: Candidates screened by ``log l - log g`` per proposal (TPE's
            ``n_ei_candidates`` is 24; 64 was better on the development seeds). 1 turns the
            screen off.
        policy_draws: How many of the candidates are drawn from the policy mixture; the rest
            are ``uniform_draws`` uniform draws and mutants of elite members, scored by the
            policy in one batch. ``None``: all of them.
        prior_weight: Pseudo-count of the uniform prior in ``g``, spread over the choices
            (TPE's ``prior_weight``: 1.0).
        dedupe: Never propose an architecture already evaluated while an unseen one is found.
        screen: The ``l`` of the screen: ``"policy"`` (the LSTM mixture), ``"marginal"``
            (per-decision categorical of the elite, counts plus ``prior_weight``, as TPE's
            univariate ``l``), ``"both"`` (the mean of their logs). With ``"policy"`` alone the
            LSTM, which nearly memorises a small elite, scores a change of an irrelevant
            decision as harshly as one of a relevant decision (ENAS's RNN cell space with 11
            distractor inputs: 0.133 regret at 300 trials against 0.033 for ``"both"``).
        density: How ``g`` and the non-LSTM part of ``l`` are estimated: ``"parzen"`` (TPE's
            categorical kernels, one per trial, multivariate) or ``"marginal"`` (per-decision
            categoricals, the first version of this rule). On the development seeds
            ``"parzen"`` won 8 of 24 cells against TPE where ``"marginal"`` won 4.
        uniform_draws: Uniform candidates in each screen (TPE's prior kernel plays this part):
            the way out of a local optimum's basin once its neighbourhood is crowded.
        mutation_rate: Probability that a mutant also redraws each other decision uniformly:
            a number, ``None`` (``uniform_mix``, the rule's first version) or ``"kernel"``
            (the default): ``n_t f / (1 + n_t f)`` with ``f = prior_weight / (elite size + 1)``,
            which makes the mutant exactly a draw from TPE's categorical kernel around that
            elite member (but for the one forced change): 2/3 of the decisions redrawn with an
            elite of one, 2/15 with 25 (4 choices). Broad early, narrow late; a fixed 0.15
            left NAS-Bench-201 CIFAR-10 in a local optimum's basin in 2 of 12 development
            seeds at 100 trials, the kernel rate in none.
    """

    gamma: float = 0.1
    max_elite: int = 25
    n_startup_trials: int = 10
    refit_steps: int = 5
    learning_rate: float = 0.01
    uniform_mix: float = 0.05
    n_candidates: int = 64
    policy_draws: int | None = 4
    prior_weight: float = 1.0
    dedupe: bool = True
    screen: Literal["policy", "marginal", "both"] = "both"
    density: Literal["marginal", "parzen"] = "parzen"
    uniform_draws: int = 8
    mutation_rate: float | Literal["kernel"] | None = "kernel"

    def __post_init__(self) -> None:
        check_positive("gamma", self.gamma)
        if self.gamma > 1.0:
            raise ValueError(f"gamma must be in (0, 1], but got {self.gamma!r}.")
        check_int("max_elite", self.max_elite, 1, MAX_ELITE)
        check_int("n_startup_trials", self.n_startup_trials, 0)
        check_int("refit_steps", self.refit_steps, 0, MAX_STEPS)
        check_positive("learning_rate", self.learning_rate)
        check_fraction("uniform_mix", self.uniform_mix, closed=True)
        check_int("n_candidates", self.n_candidates, 1, MAX_CANDIDATES)
        if self.policy_draws is not None:
            check_int("policy_draws", self.policy_draws, 1, MAX_CANDIDATES)
        check_non_negative("prior_weight", self.prior_weight)
        check_int("uniform_draws", self.uniform_draws, 0, MAX_CANDIDATES)
        if self.mutation_rate is not None and self.mutation_rate != "kernel":
            rate = self.mutation_rate
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(
                    f"mutation_rate must be a float in [0, 1], 'kernel' or None, but got {rate!r}."
                )
        if self.screen not in ("policy", "marginal", "both"):
            raise ValueError(
                f"screen must be 'policy', 'marginal' or 'both', but got {self.screen!r}."
            )
        if self.density not in ("marginal", "parzen"):
            raise ValueError(f"density must be 'marginal' or 'parzen', but got {self.density!r}.")
        if not isinstance(self.dedupe, bool):
            raise ValueError(f"dedupe must be a bool, but got {self.dedupe!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Entry:
    reward: float
    order: int  # consumption order: ties go to the earlier trial
    actions: list[int]
    mask: list[bool]


class EliteLearner:
    """Owns the refit's Adam optimizer, the elite, the counts and the evaluated set."""

    def __init__(self, controller: LSTMController, config: EliteConfig) -> None:
        self.controller = controller
        self.config = config
        self.optimizer = torch.optim.Adam(
            controller.parameters(), lr=config.learning_rate, fused=True
        )
        self.n_choices: list[int] = []
        self.n_updates = 0
        self.n_observed = 0
        self.n_skipped = 0
        self._top: list[_Entry] = []  # the best max_elite, best first
        self._counts: list[np.ndarray] = []  # per decision: choice counts over all trials
        self._seen: set[tuple[int, ...]] = set()
        self._running: dict[int, tuple[int, ...]] = {}  # token -> proposed, not yet finished
        # Every consumed trial's key, in order: a numpy buffer that doubles when full.
        self._obs = np.zeros((0, 0), dtype=np.int64)
        self.fingerprint = controller.fingerprint()

    # -- structure -----------------------------------------------------------------------------
    def add_decision(self, n_choices: int, params: list[torch.nn.Parameter]) -> None:
        """Register a decision the controller just grew (and its new parameters)."""
        self.n_choices.append(int(n_choices))
        self._counts.append(np.zeros(int(n_choices), dtype=np.float64))
        for e in self._top:  # trials before this decision existed did not take it
            e.actions.append(0)
            e.mask.append(False)
        self._obs = np.hstack([self._obs, np.full((len(self._obs), 1), -1, dtype=np.int64)])
        self.optimizer.add_param_group({"params": params})
        self.fingerprint = self.controller.fingerprint()

    @property
    def baseline(self) -> float | None:
        """The elite's threshold: the worst reward in the elite (``None`` before any trial)."""
        elite = self._elite()
        return elite[-1].reward if elite else None

    def elite_size(self) -> int:
        return len(self._elite())

    def best_actions(self) -> list[list[int]]:
        """The action lists of the best finished trials kept (up to ``max_elite``), best
        first; distinct, as no architecture is evaluated twice."""
        return [list(e.actions) for e in self._top]

    def _elite(self) -> list[_Entry]:
        n = self.n_observed
        k = min(math.ceil(self.config.gamma * n), self.config.max_elite, len(self._top))
        return self._top[:k]

    # -- learning ------------------------------------------------------------------------------
    def observe(
        self,
        *,
        actions: list[int],
        mask: list[bool],
        reward: float,
        entropy: float,
        **_: Any,
    ) -> dict[str, float]:
        """Add one finished trial; refit when the elite changed. Returns its statistics."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, but got {reward!r}.")
        d = len(self.n_choices)
        actions = [int(a) for a in actions[:d]] + [0] * max(0, d - len(actions))
        mask = [bool(m) for m in mask[:d]] + [False] * max(0, d - len(mask))
        before = [e.order for e in self._elite()]
        entry = _Entry(float(reward), self.n_observed, actions, mask)
        self.n_observed += 1
        for t, (a, m) in enumerate(zip(actions, mask, strict=True)):
            if m and 0 <= a < self.n_choices[t]:
                self._counts[t][a] += 1.0
        self._seen.add(_key(actions, mask))
        if entry.order >= len(self._obs):
            grown = np.full((max(16, 2 * len(self._obs)), d), -1, dtype=np.int64)
            grown[: len(self._obs)] = self._obs
            self._obs = grown
        self._obs[entry.order] = _key(actions, mask)
        # Insert into the top list (best first; an equal reward goes after the earlier trial).
        i = len(self._top)
        while i > 0 and self._top[i - 1].reward < entry.reward:
            i -= 1
        if i < self.config.max_elite:
            self._top.insert(i, entry)
            del self._top[self.config.max_elite :]
        elite = self._elite()
        changed = [e.order for e in elite] != before
        stats: dict[str, float] = {
            "reward": float(reward),
            "baseline": elite[-1].reward if elite else float(reward),
            "advantage": 1.0 if any(e is entry for e in elite) else 0.0,
            "entropy": float(entropy),
            "elite_size": float(len(elite)),
        }
        if changed and self.n_observed >= max(self.config.n_startup_trials, 1):
            stats["loss"] = self.refit()
        return stats

    def refit(self) -> float:
        """``refit_steps`` Adam steps of maximum likelihood on the elite; returns the last loss."""
        elite = self._elite()
        d = len(self.n_choices)
        if not elite or d == 0 or self.config.refit_steps == 0:
            return 0.0
        actions = torch.tensor([e.actions for e in elite], dtype=torch.long)
        mask = torch.tensor([e.mask for e in elite], dtype=torch.bool)
        loss_value = 0.0
        stepped = False
        with single_thread():
            for _ in range(self.config.refit_steps):
                step_logp, _, _ = self.controller.log_prob_steps(actions)
                loss = -(step_logp * mask).sum(1).mean()
                if not self._apply(loss):
                    break
                stepped = True
                loss_value = float(loss.detach())
        if stepped:
            self.n_updates += 1
            self.controller.refresh()
            self.fingerprint = self.controller.fingerprint()
        return loss_value

    def _apply(self, loss: torch.Tensor) -> bool:
        self.optimizer.zero_grad(set_to_none=True)
        if bool(torch.isfinite(loss)):
            loss.backward()
            grads = [p.grad for p in self.controller.parameters() if p.grad is not None]
            if all(bool(torch.isfinite(g).all()) for g in grads):
                self.optimizer.step()
                return True
        self.optimizer.zero_grad(set_to_none=True)
        self.n_skipped += 1
        _logger.warning(
            "ENASSampler skipped an elite refit step: its loss or gradient is not finite. The "
            "controller is unchanged by it."
        )
        return False

    # -- proposals -----------------------------------------------------------------------------
    def release(self, token: int) -> None:
        """The proposal ``token`` finished (in any state): it is no longer 'running'."""
        self._running.pop(token, None)

    def _densities(self) -> _Densities:
        """The screen's densities for this proposal, from the finished trials. With
        ``density="parzen"`` the two sets of observations of the Parzen estimators (the
        elite's architectures and the other trials'); with ``"marginal"`` the elite's and the
        other trials' per-decision categoricals (counts plus ``prior_weight`` spread over the
        choices)."""
        elite = self._elite()
        if self.config.density == "parzen":
            keys = self._obs[: self.n_observed]
            chosen = np.zeros(len(keys), dtype=bool)
            chosen[[e.order for e in elite]] = True
            return _Densities([], [], keys[chosen], keys[~chosen])
        elite_counts = [np.zeros_like(c) for c in self._counts]
        for e in elite:
            for t, (a, m) in enumerate(zip(e.actions, e.mask, strict=True)):
                if m and 0 <= a < self.n_choices[t]:
                    elite_counts[t][a] += 1.0
        prior = self.config.prior_weight
        log_l: list[np.ndarray] = []
        log_g: list[np.ndarray] = []
        for c, ec, n in zip(self._counts, elite_counts, self.n_choices, strict=True):
            for counts, out in ((np.maximum(c - ec, 0.0), log_g), (ec, log_l)):
                smoothed = counts + prior / n
                total = smoothed.sum()
                out.append(np.log(smoothed / total) if total > 0 else np.full(n, -math.log(n)))
        return _Densities(log_l, log_g, None, None)

    def propose(
        self, rng: np.random.Generator, forced: dict[int, int], token: int
    ) -> tuple[list[int], list[float], float]:
        """Choose the next architecture: ``(actions, step_log_probs, entropy)`` under pi.

        ``forced`` decisions are taken as given; ``token`` names the proposal for
        :meth:`release`.
        """
        cfg = self.config
        d = len(self.n_choices)
        n = np.asarray(self.n_choices)
        startup = self.n_observed < cfg.n_startup_trials
        n_cand = 1 if startup else cfg.n_candidates
        eps = 1.0 if startup else cfg.uniform_mix
        u = rng.random((n_cand, d))
        mix = rng.random((n_cand, d))
        rand = np.minimum((rng.random((n_cand, d)) * n).astype(np.int64), n - 1)
        dens = None if startup else self._densities()
        free = [t for t in range(d) if t not in forced]
        n_draws = n_cand if startup or cfg.policy_draws is None else min(cfg.policy_draws, n_cand)
        found: list[_Candidate] = []
        if n_draws < n_cand and free:
            n_uniform = min(cfg.uniform_draws, n_cand - n_draws)
            n_mutants = n_cand - n_draws - n_uniform
            found.extend(self._mutants(n_mutants, rng, forced, free, eps, n_uniform))
        for c in range(n_draws):
            f = dict(forced)
            for t in free:
                if mix[c, t] < eps:
                    f[t] = int(rand[c, t])
            actions, logps, entropy = self.controller.sample(u[c], forced=f)
            found.append(_Candidate(actions, logps, entropy))
        scores = np.zeros(len(found)) if dens is None else self._scores(found, dens, free, eps)
        unseen = [i for i, c in enumerate(found) if not self._is_seen(c.actions)]
        if unseen:
            best = found[max(unseen, key=lambda i: scores[i])]  # ties: the first
        else:
            start = found[int(np.argmax(scores))]
            best = self._unseen_near(start, free, dens, eps, rng, forced) or start
        if best.entropy is None:  # a mutant: the policy's log-probabilities and entropy
            forced_all = dict(enumerate(best.actions))
            best = _Candidate(*self.controller.sample(np.zeros(d), forced=forced_all))
        if cfg.dedupe:
            self._running[token] = tuple(best.actions)
        return best.actions, best.logps, float(best.entropy or 0.0)

    def _mutants(
        self,
        n: int,
        rng: np.random.Generator,
        forced: dict[int, int],
        free: list[int],
        eps: float,
        n_uniform: int = 0,
    ) -> list[_Candidate]:
        """The unseen among ``n`` mutants of elite members and ``n_uniform`` uniform draws,
        with their step log-probabilities under the policy (one teacher-forced batch)."""
        elite = self._elite()
        if not elite:
            return []
        k = np.asarray(self.n_choices)
        uniform = np.minimum((rng.random((n_uniform, len(k))) * k).astype(np.int64), k - 1)
        pick = rng.integers(len(elite), size=n)
        which = rng.integers(len(free), size=n)
        rate: float | np.ndarray
        if self.config.mutation_rate == "kernel":  # TPE's kernel: broad early, narrow later
            fill = self.config.prior_weight / (len(elite) + 1)
            rate = k * fill / (1.0 + k * fill)  # a uniform redraw: exactly its kernel
        elif self.config.mutation_rate is None:
            rate = eps
        else:
            rate = self.config.mutation_rate
        redraw = rng.random((n, len(k))) < rate
        values = np.minimum((rng.random((n, len(k))) * k).astype(np.int64), k - 1)
        shift = rng.random(n)
        drafts: list[list[int]] = []
        for m in range(n):
            e = elite[pick[m]]
            cand = [
                a if ok else int(v) for a, ok, v in zip(e.actions, e.mask, values[m], strict=True)
            ]
            for t in free:
                if redraw[m, t]:
                    cand[t] = int(values[m, t])
            t = free[which[m]]
            if k[t] > 1:  # one decision surely changes
                cand[t] = (e.actions[t] + 1 + int(shift[m] * (k[t] - 1))) % int(k[t])
            drafts.append(cand)
        drafts.extend([int(v) for v in row] for row in uniform)
        mutants = []
        for cand in drafts:
            for t, a in forced.items():
                cand[t] = a
            if not self._is_seen(cand):
                mutants.append(cand)
        return self._with_log_probs(mutants)

    def _with_log_probs(self, actions: list[list[int]]) -> list[_Candidate]:
        if not actions:
            return []
        with torch.no_grad(), single_thread():
            step_logp, _, _ = self.controller.log_prob_steps(torch.tensor(actions))
        rows = step_logp.double().tolist()
        return [_Candidate(a, lp, None) for a, lp in zip(actions, rows, strict=True)]

    def _is_seen(self, actions: list[int]) -> bool:
        if not self.config.dedupe:
            return False
        key = tuple(actions)
        return key in self._seen or key in self._running.values()

    def _scores(
        self, found: list[_Candidate], dens: _Densities, free: list[int], eps: float
    ) -> np.ndarray:
        """``log l - log g`` of each candidate, summed over the free decisions."""
        x = np.asarray([c.actions for c in found], dtype=np.int64)
        cols = np.asarray(free, dtype=np.int64)
        if len(cols) == 0:
            return np.zeros(len(found))
        k = np.asarray(self.n_choices, dtype=np.float64)[cols]
        log_pi = np.asarray([c.logps for c in found], dtype=np.float64)[:, cols]
        log_policy = np.log((1.0 - eps) * np.exp(log_pi) + eps / k).sum(1)
        if dens.good is not None and dens.rest is not None:
            log_marginal = self._parzen_log(x[:, cols], dens.good[:, cols], k)
            log_g = self._parzen_log(x[:, cols], dens.rest[:, cols], k)
        else:
            rows = np.arange(len(found))
            log_marginal = np.zeros(len(found))
            log_g = np.zeros(len(found))
            for t in free:
                log_marginal += dens.log_l[t][x[rows, t]]
                log_g += dens.log_g[t][x[rows, t]]
        screen = self.config.screen
        if screen == "policy":
            log_l = log_policy
        elif screen == "marginal":
            log_l = log_marginal
        else:
            log_l = 0.5 * (log_policy + log_marginal)
        return log_l - log_g

    def _parzen_log(self, x: np.ndarray, obs: np.ndarray, k: np.ndarray) -> np.ndarray:
        """log of a categorical Parzen estimator at each row of ``x``, built as TPE builds its
        categorical kernels (Optuna's ``_ParzenEstimator``): one kernel per observation, its
        choice plus ``prior_weight / n_kernels`` on every choice, normalised, a product over the
        decisions, plus one uniform prior kernel; the kernels averaged. A decision an
        observation did not take (-1) counts as uniform. A kernel's log depends only on how
        many decisions match, which keeps it one comparison per (row, observation, decision)."""
        n_obs = len(obs)
        n_kernels = n_obs + 1
        fill = self.config.prior_weight / n_kernels
        log_uniform = -np.log(k)
        logs = np.empty((len(x), n_kernels))
        logs[:, n_obs] = log_uniform.sum()
        if n_obs:
            matches = (x[:, None, :] == obs[None, :, :]).sum(2)
            if fill > 0:
                unmatched = math.log(fill) - np.log1p(k * fill)
                base = np.where(obs < 0, log_uniform, unmatched).sum(1)
                logs[:, :n_obs] = base[None, :] + matches * math.log1p(1.0 / fill)
            else:  # no prior: a kernel is its observation exactly
                taken = (obs >= 0).sum(1)
                untaken = np.where(obs < 0, log_uniform, 0.0).sum(1)
                logs[:, :n_obs] = np.where(matches == taken[None, :], untaken[None, :], -np.inf)
        top = logs.max(1, keepdims=True)
        return (top[:, 0] + np.log(np.exp(logs - top).sum(1))) - math.log(n_kernels)

    def _unseen_near(
        self,
        start: _Candidate,
        free: list[int],
        dens: _Densities | None,
        eps: float,
        rng: np.random.Generator,
        forced: dict[int, int],
    ) -> _Candidate | None:
        """The best unseen single-decision neighbour of ``start``, else an unseen uniform draw."""
        base = start.actions
        neighbours = []
        for t in free:
            for a in range(self.n_choices[t]):
                if a != base[t]:
                    cand = list(base)
                    cand[t] = a
                    if not self._is_seen(cand):
                        neighbours.append(cand)
        if neighbours:
            found = self._with_log_probs(neighbours)
            if dens is None:
                return found[0]
            return found[int(np.argmax(self._scores(found, dens, free, eps)))]
        n = np.asarray(self.n_choices)
        pick: list[int] | None = None
        for _ in range(64):
            cand = np.minimum((rng.random(len(n)) * n).astype(np.int64), n - 1).tolist()
            for t, a in forced.items():
                cand[t] = a
            if not self._is_seen(cand):
                pick = cand
                break
        if pick is None and math.prod(int(n[t]) for t in free) <= _ENUMERATE:
            # A small space nearly exhausted: walk it from a random start.
            sizes = [int(n[t]) for t in free]
            total = math.prod(sizes)
            offset = int(rng.integers(total))
            for i in range(total):
                cand = list(base)
                rest = (offset + i) % total
                for t, size in zip(free, sizes, strict=True):
                    rest, cand[t] = divmod(rest, size)
                if not self._is_seen(cand):
                    pick = cand
                    break
        return None if pick is None else _Candidate(pick, [], None)


@dataclass
class _Candidate:
    actions: list[int]
    logps: list[float]
    entropy: float | None  # None: not drawn from the policy (its log-probs may be missing)


@dataclass
class _Densities:
    log_l: list[np.ndarray]  # density="marginal", per decision: the elite's categorical
    log_g: list[np.ndarray]  # and the other trials' (both empty with "parzen")
    good: np.ndarray | None  # density="parzen": the elite's keys (trials x decisions)
    rest: np.ndarray | None  # and the other trials'


def _key(actions: list[int], mask: list[bool]) -> tuple[int, ...]:
    return tuple(a if m else -1 for a, m in zip(actions, mask, strict=True))


__all__ = ["EliteConfig", "EliteLearner"]
