"""The learner on its own, with hand-computed values (baseline, advantages, weights, loss)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from optuna_enas.sampler import ControllerConfig
from optuna_enas.sampler import LSTMController
from optuna_enas.sampler._reinforce import Observation
from optuna_enas.sampler._reinforce import Reinforce


def _learner(**kwargs: object) -> Reinforce:
    config = ControllerConfig(lstm_size=8, **kwargs)  # type: ignore[arg-type]
    controller = LSTMController(
        [3, 2], ["op", "other"], config=config, generator=torch.Generator().manual_seed(0)
    )
    return Reinforce(controller, config)


def _params(learner: Reinforce) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.controller.parameters()]


def test_enas_baseline_is_d_b_plus_one_minus_d_r_read_after_the_update() -> None:
    learner = _learner(
        advantage="baseline", baseline_decay=0.9, entropy_weight=0.0, n_aggregate=99
    )
    first = learner.observe(actions=[0, 0], mask=[True, True], reward=1.0, entropy=0.0)
    assert first["baseline"] == 1.0 and first["advantage"] == 0.0  # starts at the first reward
    second = learner.observe(actions=[0, 0], mask=[True, True], reward=2.0, entropy=0.0)
    # b = 0.9 * 1 + 0.1 * 2 = 1.1 (the swapped decay would give 0.1 * 1 + 0.9 * 2 = 1.9)
    assert second["baseline"] == pytest.approx(1.1)
    assert second["advantage"] == pytest.approx(0.9)


def test_enas_entropy_bonus_enters_the_reward() -> None:
    learner = _learner(
        advantage="baseline", baseline_decay=0.5, entropy_weight=0.1, n_aggregate=99
    )
    learner.observe(actions=[0, 0], mask=[True, True], reward=1.0, entropy=0.0)
    stats = learner.observe(actions=[0, 0], mask=[True, True], reward=1.0, entropy=2.0)
    # total = 1 + 0.1 * 2 = 1.2; b = 0.5 * 1 + 0.5 * 1.2 = 1.1; advantage 0.1
    assert stats["reward_with_entropy"] == pytest.approx(1.2)
    assert stats["advantage"] == pytest.approx(0.1)


def test_rank_advantage_is_the_centred_mid_rank_quantile_and_scale_free() -> None:
    for scale, shift in ((1.0, 0.0), (1e6, -5.0), (1e-9, 3.0)):
        learner = _learner(n_aggregate=99)
        advs = [
            learner.observe(
                actions=[0, 0], mask=[True, True], reward=r * scale + shift, entropy=0.0
            )["advantage"]
            for r in (3.0, 1.0, 2.0, 10.0, 2.0)
        ]
        # 3: alone -> q = 1/2; 1: below 3 -> q = 1/4; 2: middle of 3 -> q = 1/2;
        # 10: top of 4 -> q = 3.5/4; 2 (a tie with the earlier 2): less 1, equal 2 -> q = 2/5.
        q = np.array([0.5, 0.25, 0.5, 0.875, 0.4])
        np.testing.assert_allclose(advs, (q - 0.5) * math.sqrt(12), atol=1e-12)


def test_rank_window_forgets_old_rewards() -> None:
    learner = _learner(n_aggregate=99, reward_window=2)
    for r in (100.0, 0.0):
        learner.observe(actions=[0, 0], mask=[True, True], reward=r, entropy=0.0)
    # The window holds [0, 1]: 100 fell out, so 1 is the top (q = 3/4), not the middle.
    stats = learner.observe(actions=[0, 0], mask=[True, True], reward=1.0, entropy=0.0)
    assert stats["advantage"] == pytest.approx(0.25 * math.sqrt(12))


def test_standardized_advantage_and_clip() -> None:
    learner = _learner(n_aggregate=99, advantage="standardized", advantage_clip=1.0)
    for r in (1.0, 3.0):
        learner.observe(actions=[0, 0], mask=[True, True], reward=r, entropy=0.0)
    stats = learner.observe(actions=[0, 0], mask=[True, True], reward=2.0, entropy=0.0)
    assert stats["advantage"] == pytest.approx(0.0) and stats["baseline"] == pytest.approx(2.0)
    stats = learner.observe(actions=[0, 0], mask=[True, True], reward=1e300, entropy=0.0)
    assert stats["advantage"] == 1.0  # clipped, finite


def test_huge_rewards_give_bounded_float64_advantages() -> None:
    for advantage in ("baseline", "rank", "standardized"):
        learner = _learner(n_aggregate=2, advantage=advantage)
        for r in (1.0, -1.7e308, 1.7e308, math.exp(700), -1e300):
            stats = learner.observe(actions=[1, 0], mask=[True, True], reward=r, entropy=0.0)
            assert math.isfinite(stats["advantage"])
            assert abs(stats["advantage"]) <= learner.config.advantage_clip
        assert all(bool(torch.isfinite(p).all()) for p in learner.controller.parameters())
        assert learner.n_updates == 2


def test_importance_weight_is_clipped_ratio_over_usable_finite_decisions() -> None:
    learner = _learner(importance_weight_clip=2.0)
    step_logp = torch.tensor([[-1.0, -0.5]] * 4)
    batch = [
        # ratio exp(-1 - (-3)) = e^2 > 2: clipped to 2
        Observation([0, 0], [True, True], 1.0, [-3.0, -0.5], [True, True], False),
        # ratio exp((-1 + 0) + (-0.5 + 1.5)) = e^0 ... only decision 1 usable: exp(1.0) -> 2
        Observation([0, 0], [True, True], 1.0, [0.0, -0.25], [False, True], False),
        # ratio exp(-1 - 0) = 1/e, decision 1's NaN ignored (never NaN)
        Observation([0, 0], [True, True], 1.0, [0.0, math.nan], [True, True], False),
        # on-policy: 1
        Observation([0, 0], [True, True], 1.0, [-9.0, -9.0], [True, True], True),
    ]
    w = learner.importance_weights(batch, step_logp)
    assert w.dtype == torch.float64
    np.testing.assert_allclose(w.numpy(), [2.0, math.exp(-0.25), math.exp(-1.0), 1.0])


def test_one_update_is_the_hand_computed_reinforce_loss() -> None:
    learner = _learner(advantage="baseline", baseline_decay=0.5, entropy_weight=0.0, n_aggregate=2)
    with torch.no_grad():
        logp, _, _ = learner.controller.log_prob_steps(torch.tensor([[2, 1], [0, 0]]))
    learner.observe(actions=[2, 1], mask=[True, True], reward=0.0, entropy=0.0)
    # b = 0.5 * 0 + 0.5 * 4 = 2, advantage 2; second trial takes only decision 0.
    stats = learner.observe(actions=[0, 0], mask=[True, False], reward=4.0, entropy=0.0)
    expected = -(0.0 * float(logp[0].sum()) + 2.0 * float(logp[1, 0])) / 2
    assert stats["loss"] == pytest.approx(expected, rel=1e-6)
    assert learner.n_updates == 1


def test_ppo_passes_move_the_policy_further_than_one_pass() -> None:
    def prob_after(epochs: int) -> float:
        learner = _learner(n_aggregate=4, ppo_epochs=epochs, learning_rate=0.05)
        for a, r in ((0, 1.0), (1, 0.0), (2, 0.0), (0, 1.0)):
            learner.observe(actions=[a, 0], mask=[True, True], reward=r, entropy=0.0)
        with torch.no_grad():
            logp, _, _ = learner.controller.log_prob_steps(torch.tensor([[0, 0]]))
        return math.exp(float(logp[0, 0]))

    one, four = prob_after(1), prob_after(4)
    assert 1 / 3 < one < four


def test_non_finite_loss_or_gradient_skips_the_pass_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    learner = _learner(n_aggregate=1)
    before = _params(learner)
    fingerprint = learner.fingerprint
    param = next(learner.controller.parameters())
    with caplog.at_level(logging.WARNING):
        assert not learner._apply(param.sum() * math.inf, 0)  # loss inf
        finite_loss_nan_grad = torch.sqrt((param * 0.0).sum())  # 0, d/dx = inf * 0
        assert math.isfinite(float(finite_loss_nan_grad.detach()))
        assert not learner._apply(finite_loss_nan_grad, 0)
    assert sum("skipped a controller update" in r.message for r in caplog.records) == 2
    assert learner.n_skipped == 2 and learner.fingerprint == fingerprint
    for a, b in zip(before, _params(learner), strict=True):
        assert torch.equal(a, b)


def test_non_finite_reward_or_entropy_is_refused() -> None:
    learner = _learner()
    for reward, entropy in ((math.nan, 0.0), (math.inf, 0.0), (0.0, math.nan)):
        with pytest.raises(ValueError, match="finite"):
            learner.observe(actions=[0, 0], mask=[True, True], reward=reward, entropy=entropy)
    assert learner.n_observed == 0


def test_macro_skip_penalty_is_summed_within_a_layer_and_averaged_over_layers() -> None:
    # Layers 0..3 of the macro space: op, then 0, 1, 2, 3 skip bits.
    n_choices, kinds = [], []
    for layer in range(4):
        n_choices.append(6)
        kinds.append("op")
        n_choices += [2] * layer
        kinds += ["skip"] * layer
    config = ControllerConfig(lstm_size=8, skip_weight=0.8, skip_target=0.4)
    controller = LSTMController(
        n_choices, kinds, config=config, generator=torch.Generator().manual_seed(0)
    )
    learner = Reinforce(controller, config)
    assert controller.skip_groups() == [[2], [4, 5], [7, 8, 9]]
    actions = torch.zeros(1, len(n_choices), dtype=torch.long)
    mask = torch.ones(1, len(n_choices), dtype=torch.bool)
    _, _, skip_p = controller.log_prob_steps(actions)
    p = skip_p[0].detach().double()
    kl = p * torch.log(p / 0.4) + (1 - p) * torch.log((1 - p) / 0.6)
    per_layer = [float(kl[[2]].sum()), float(kl[[4, 5]].sum()), float(kl[[7, 8, 9]].sum())]
    expected = 0.8 * sum(per_layer) / 3
    assert float(learner._skip_penalty(skip_p, mask)) == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(0.8 * sum(per_layer), rel=1e-3)  # not summed over all
