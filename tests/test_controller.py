from __future__ import annotations

import numpy as np
import torch

from optuna_enas import ControllerConfig
from optuna_enas import LSTMController


def _controller(**kwargs: object) -> LSTMController:
    config = ControllerConfig(lstm_size=16, **kwargs)  # type: ignore[arg-type]
    return LSTMController(
        [4, 1, 4, 2, 4, 2],
        ["op", "input", "op", "input", "op", "skip"],
        config=config,
        generator=torch.Generator().manual_seed(0),
    )


def test_sample_log_probs_match_teacher_forcing() -> None:
    c = _controller(lstm_num_layers=2)
    actions, step_logps, entropy = c.sample(np.random.default_rng(0).random(len(c)))
    logp, ents, skips = c.log_prob_steps(torch.tensor([actions]))
    np.testing.assert_allclose(logp[0].detach().numpy(), step_logps, atol=1e-5)
    assert abs(float(ents.detach().sum()) - entropy) < 1e-4
    assert float(skips[0, 5]) > 0 and float(skips[0, 0]) == 0


def test_sample_is_a_function_of_the_uniforms() -> None:
    c = _controller()
    u = np.random.default_rng(1).random(len(c))
    assert c.sample(u)[0] == c.sample(u)[0]
    draws = {tuple(c.sample(np.random.default_rng(s).random(len(c)))[0]) for s in range(20)}
    assert len(draws) > 1


def test_forced_actions_are_taken() -> None:
    c = _controller()
    u = np.zeros(len(c))
    actions, _, _ = c.sample(u, forced={0: 3, 4: 2})
    assert actions[0] == 3 and actions[4] == 2


def test_same_generator_seed_gives_same_weights_and_fingerprint() -> None:
    a, b = _controller(), _controller()
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    b.refresh()
    assert a.fingerprint() != b.fingerprint()


def test_growing_keeps_existing_policy() -> None:
    c = _controller()
    before = c.log_prob_steps(torch.zeros(1, len(c), dtype=torch.long))[0].detach()
    c.add_decision(3, "other", generator=torch.Generator().manual_seed(1))
    after = c.log_prob_steps(torch.zeros(1, len(c), dtype=torch.long))[0].detach()
    assert len(c) == 7
    torch.testing.assert_close(before, after[:, :6])


def test_tanh_constant_bounds_the_logits() -> None:
    c = _controller(temperature=None, tanh_constant=1.0, op_tanh_reduce=2.0)
    logp, _, _ = c.log_prob_steps(torch.zeros(1, len(c), dtype=torch.long))
    p = logp.exp()
    # With |logit| <= 0.5 on a 4-way op, no choice can exceed e^0.5 / (e^0.5 + 3 e^-0.5).
    bound = np.exp(0.5) / (np.exp(0.5) + 3 * np.exp(-0.5))
    assert float(p[0, 0]) <= bound + 1e-6
