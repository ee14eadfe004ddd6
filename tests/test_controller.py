from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import LSTMController
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace


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


def test_micro_preset_op_bias_favours_separable_convs_in_the_normal_cell() -> None:
    space = MicroSpace()
    sampler = ENASSampler(space, seed=0, preset="enas-official-cifar-micro")
    c = sampler.controller
    i_normal = space.names.index("normal_b2_op1")
    i_reduce = space.names.index("reduce_b2_op1")
    head = c.heads[i_normal]
    assert isinstance(head, torch.nn.Linear)
    np.testing.assert_allclose(head.bias.detach().numpy(), [10.0, 10.0, 0.0, 0.0, 0.0])
    with torch.no_grad():
        actions = torch.zeros(1, len(c), dtype=torch.long)
        probs = {}
        for i in (i_normal, i_reduce):
            per_choice = []
            for a in range(5):
                actions[0, i] = a
                per_choice.append(float(c.log_prob_steps(actions)[0][0, i].exp()))
            probs[i] = per_choice
    # tanh(10) ~ 1: sep3x3 and sep5x5 get logit 1.1/2.5 (+0.25 in the normal cell), others ~0.
    for i, extra in ((i_normal, 0.25), (i_reduce, 0.0)):
        sep = math.exp(0.44 + extra)
        assert probs[i][0] == pytest.approx(sep / (2 * sep + 3 * math.exp(-extra)), abs=0.02)
    assert probs[i_normal][0] > probs[i_reduce][0] > 0.2


def test_official_ptb_attention_input_selection_with_recency_prior() -> None:
    space = RNNCellSpace(n_nodes=6)
    sampler = ENASSampler(space, seed=0, preset="enas-official-ptb")
    c = sampler.controller
    assert c.attn_v is not None
    # Sampling (numpy) and teacher forcing (torch) agree with attention in the loop.
    actions, step_logps, entropy = c.sample(np.random.default_rng(0).random(len(c)))
    logp, ents, _ = c.log_prob_steps(torch.tensor([actions]))
    np.testing.assert_allclose(logp[0].detach().numpy(), step_logps, atol=1e-5)
    assert abs(float(ents.detach().sum()) - entropy) < 1e-4
    # At node 5 the recency prior (5 - j)^2 / 6 makes node 4 the likeliest input by far.
    t = space.names.index("node5_in")
    with torch.no_grad():
        probs = []
        for j in range(5):
            forced = torch.tensor([actions])
            forced[0, t] = j
            probs.append(float(c.log_prob_steps(forced)[0][0, t].exp()))
    prior = np.exp(-((5 - np.arange(5)) ** 2) / 6.0)
    np.testing.assert_allclose(probs, prior / prior.sum(), atol=0.05)
    # The default controller uses a linear head instead.
    assert ENASSampler(space, seed=0).controller.attn_v is None


def test_macro_preset_does_not_reduce_op_logits() -> None:
    config = ControllerConfig.from_preset("enas-official-cifar-macro")
    c = LSTMController([6], ["op"], config=config, generator=torch.Generator().manual_seed(0))
    assert c._scales == [1.5]
