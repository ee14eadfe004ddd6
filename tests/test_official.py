"""The official-code presets against hand computations of the official formulas.

Source: melodyguan/enas, commit 4bcfd73 (``src/utils.py``, ``src/common_ops.py``,
``src/ptb/ptb_enas_controller.py``, ``src/cifar10/general_controller.py``,
``src/cifar10/micro_controller.py``).
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import LSTMController
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.sampler._reinforce import Reinforce
from optuna_enas.sampler._reinforce import TFAdam


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _official_ptb(
    c: LSTMController, actions: list[int], n_nodes: int
) -> tuple[list[float], float]:
    """``PTBEnasController._build_sampler`` transliterated (lines 99-166), teacher-forced.

    Our weights, the official computation: an LSTM without bias (``common_ops.lstm``), two LSTM
    steps per node, attention over ``all_h[:-1]`` with the recency prior, the next input
    ``all_h[a] / (0.1 + i - a)``, one op softmax ``w_soft`` and one embedding ``w_emb``.
    Returns the per-decision log-probabilities and the entropy ``sum -p(a) log p(a)``.
    """
    cfg = c.config
    size = cfg.lstm_size
    cells = [(_np(cell.weight_ih), _np(cell.weight_hh)) for cell in c.cells]
    op_t = [t for t, k in enumerate(c.kinds) if k == "op"]
    w_soft = _np(c.heads[op_t[0]].weight).T  # (size, n_funcs)
    w_emb = _np(c.embeddings[op_t[0]].weight)
    assert c.attn_w1 is not None and c.attn_w2 is not None and c.attn_v is not None
    w1, w2, v = _np(c.attn_w1), _np(c.attn_w2), _np(c.attn_v)
    g_emb = _np(c.start)[0]
    state = [(np.zeros(size), np.zeros(size)) for _ in cells]

    def stack_lstm(x: np.ndarray) -> np.ndarray:
        for layer, (w_ih, w_hh) in enumerate(cells):
            h, cc = state[layer]
            gates = w_ih @ x + w_hh @ h  # torch's gate order i, f, g, o; no bias
            i, f, g, o = np.split(gates, 4)
            sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
            cc = sig(f) * cc + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(cc)
            state[layer] = (h, cc)
            x = h
        return x

    def squash(logits: np.ndarray) -> np.ndarray:
        logits = logits / cfg.temperature
        return cfg.tanh_constant * np.tanh(logits)

    logps: list[float] = []
    entropy = 0.0
    k = 0

    def take(logits: np.ndarray) -> int:
        nonlocal k, entropy
        logp = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        a = actions[k]
        k += 1
        logps.append(float(logp[a]))
        entropy += float(-logp[a] * np.exp(logp[a]))  # log_prob * exp(-log_prob)
        return a

    inputs = g_emb
    all_h: list[np.ndarray] = []
    all_h_w: list[np.ndarray] = []
    for layer_id in range(n_nodes):
        h = stack_lstm(inputs)
        all_h.append(h)
        all_h_w.append(h @ w1)
        if layer_id > 0:
            query = np.tanh(h @ w2 + np.stack(all_h_w[:-1]))
            logits = squash(query @ v)
            logits = logits - (layer_id - np.arange(layer_id)) ** 2 / 6.0
            a = take(logits)
            inputs = all_h[a] / (0.1 + layer_id - a)
        else:
            inputs = g_emb
        h = stack_lstm(inputs)
        a = take(squash(h @ w_soft))
        inputs = w_emb[a]
    return logps, entropy


def test_official_ptb_controller_is_the_official_sampler_exactly() -> None:
    space = RNNCellSpace(n_nodes=6)
    sampler = ENASSampler(space, seed=3, preset="enas-official-ptb")
    c = sampler.controller
    assert all(not cell.bias for cell in c.cells)  # type: ignore[union-attr]
    ops = [c.heads[t] for t, k in enumerate(c.kinds) if k == "op"]
    assert all(h is ops[0] for h in ops) and ops[0].bias is None  # type: ignore[union-attr]
    for seed in range(3):
        actions, step_logps, entropy = c.sample(np.random.default_rng(seed).random(len(c)))
        ref_logps, ref_entropy = _official_ptb(c, actions, space.n_nodes)
        np.testing.assert_allclose(step_logps, ref_logps, atol=1e-5)
        assert entropy == pytest.approx(ref_entropy, abs=1e-5)
        logp, ents, _ = c.log_prob_steps(torch.tensor([actions]))
        np.testing.assert_allclose(_np(logp[0]), ref_logps, atol=1e-5)
        assert float(ents.detach().sum()) == pytest.approx(ref_entropy, abs=1e-5)
    # The sampled-action entropy, not the full entropy of each step's distribution.
    full = ControllerConfig.from_preset("enas-official-ptb", entropy_form="full")
    c_full = ENASSampler(space, seed=3, config=full).controller
    assert c_full.fingerprint() == c.fingerprint()
    _, _, full_entropy = c_full.sample(np.random.default_rng(0).random(len(c)))
    _, _, sampled_entropy = c.sample(np.random.default_rng(0).random(len(c)))
    assert full_entropy > sampled_entropy + 1e-3


def test_tf_adam_is_tensorflow_adam_by_hand() -> None:
    # tf.train.AdamOptimizer(lr, beta1=0.0, epsilon=1e-3): epsilon on the uncorrected sqrt(v).
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = TFAdam([p], lr=0.1, betas=(0.0, 0.999), eps=1e-3)
    expected = 1.0
    v = 0.0
    for t, g in enumerate((0.02, -0.5, 0.3), start=1):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        v = 0.999 * v + 0.001 * g * g
        m = g  # beta1 = 0
        expected -= 0.1 * math.sqrt(1 - 0.999**t) / (1 - 0.0**t) * m / (math.sqrt(v) + 1e-3)
        assert float(p) == pytest.approx(expected, rel=1e-12)
    # torch's Adam with the same numbers differs (eps on the corrected sqrt(v)): step 1 moves
    # 0.1 * 0.02 / (0.02 + 1e-3) = 0.0952 instead of 0.1 * 0.02 / (0.02 + 1e-3 / sqrt(1e-3)).
    q = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    torch_adam = torch.optim.Adam([q], lr=0.1, betas=(0.0, 0.999), eps=1e-3)
    q.grad = torch.tensor([0.02], dtype=torch.float64)
    torch_adam.step()
    tf_step = 0.1 * math.sqrt(0.001) * 0.02 / (math.sqrt(0.001) * 0.02 + 1e-3)
    assert 1.0 - float(q) == pytest.approx(0.1 * 0.02 / 0.021, rel=1e-9)
    assert abs((1.0 - float(q)) - tf_step) > 0.02


@pytest.mark.parametrize("preset", ["enas-official-ptb", "enas-official-cifar-macro"])
def test_official_presets_use_tf_adam_beta1_0_eps_1e_3(preset: str) -> None:
    config = ControllerConfig.from_preset(preset)
    learner = Reinforce(LSTMController([3], ["op"], config=config), config)
    assert isinstance(learner.optimizer, TFAdam)
    group = learner.optimizer.param_groups[0]
    assert group["betas"] == (0.0, 0.999) and group["eps"] == 1e-3
    default = Reinforce(LSTMController([3], ["op"], config=ControllerConfig()), ControllerConfig())
    assert isinstance(default.optimizer, torch.optim.Adam)
    assert default.optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_official_baseline_starts_at_zero() -> None:
    config = ControllerConfig.from_preset("enas-official-ptb", n_aggregate=99)
    learner = Reinforce(LSTMController([2], ["op"], config=config), config)
    first = learner.observe(actions=[0], mask=[True], reward=0.5, entropy=0.0)
    # b = 0.99 * 0 + 0.01 * 0.5 = 0.005 (tf.assign_sub before the read); advantage 0.495
    assert first["baseline"] == pytest.approx(0.005)
    assert first["advantage"] == pytest.approx(0.495)
    second = learner.observe(actions=[0], mask=[True], reward=0.25, entropy=2.0)
    total = 0.25 + 1e-3 * 2.0  # entropy bonus in the reward
    b = 0.99 * 0.005 + 0.01 * total
    assert second["baseline"] == pytest.approx(b)
    assert second["advantage"] == pytest.approx(total - b)
    # The paper preset (ENAS-pytorch) still starts at the first reward.
    paper = ControllerConfig.from_preset("enas-paper-ptb")
    learner = Reinforce(LSTMController([2], ["op"], config=paper), paper)
    assert learner.observe(actions=[0], mask=[True], reward=0.5, entropy=0.0)["advantage"] == 0


def _macro_controller(config: ControllerConfig) -> LSTMController:
    space = MacroSpace(n_layers=4)
    kinds = [d.kind for d in space.decisions]
    n_choices = [len(d.choices) for d in space.decisions]
    return LSTMController(
        n_choices, kinds, config=config, generator=torch.Generator().manual_seed(1)
    )


def test_official_macro_skip_kl_is_on_sigmoid_q_while_sampling_uses_sigmoid_2q() -> None:
    config = ControllerConfig.from_preset("enas-official-cifar-macro")
    c = _macro_controller(config)
    learner = Reinforce(c, config)
    actions = torch.tensor([[a % n for a, n in zip(range(len(c)), c.n_choices, strict=True)]])
    mask = torch.ones_like(actions, dtype=torch.bool)
    # Perturb the skip heads so that the skip probabilities are far from 1/2.
    with torch.no_grad():
        for t, kind in enumerate(c.kinds):
            if kind == "skip":
                c.heads[t].bias.copy_(torch.tensor([-0.4 * t, 0.3 * t]))  # type: ignore[union-attr]
    logp, _, skip_p = c.log_prob_steps(actions)
    # Official: logit = [-q, q] (after the tanh squash); sampling P(1) = softmax = sigmoid(2q);
    # KL = sum over both entries of sigmoid(logit) * log(sigmoid(logit) / [1 - t, t]).
    kl_layers = []
    for group in c.skip_groups():
        total = 0.0
        for t in group:
            p1 = float(skip_p[0, t])
            q = 0.5 * math.log(p1 / (1 - p1))  # softmax([-q, q])[1] = p1
            assert 1 / (1 + math.exp(-2 * q)) == pytest.approx(p1)
            s1, s0 = 1 / (1 + math.exp(-q)), 1 / (1 + math.exp(q))
            total += s1 * math.log(s1 / 0.4) + s0 * math.log(s0 / 0.6)
        kl_layers.append(total)
    expected = 0.8 * sum(kl_layers) / len(kl_layers)
    assert float(learner._skip_penalty(skip_p, mask)) == pytest.approx(expected, rel=1e-6)
    # The penalty's minimum: sigmoid(q) = 0.4, i.e. a sampling probability of
    # sigmoid(2 logit(0.4)) = 0.16 / (0.16 + 0.36) = 0.3077, not 0.4.
    target = 0.4**2 / (0.4**2 + 0.6**2)
    p = torch.tensor([[0.0, target]], dtype=torch.float64, requires_grad=True)
    c2 = LSTMController([3, 2], ["op", "skip"], config=config)
    penalty = Reinforce(c2, config)._skip_penalty(p, torch.ones(1, 2, dtype=torch.bool))
    (grad,) = torch.autograd.grad(penalty, p)
    assert float(penalty) == pytest.approx(0.0, abs=1e-12)
    assert abs(float(grad[0, 1])) < 1e-9
    assert target == pytest.approx(0.3077, abs=1e-4)
    del logp


def test_official_macro_and_micro_share_one_op_softmax_and_embedding() -> None:
    macro = _macro_controller(ControllerConfig.from_preset("enas-official-cifar-macro"))
    ops = [t for t, k in enumerate(macro.kinds) if k == "op"]
    assert all(macro.heads[t] is macro.heads[ops[0]] for t in ops)
    assert all(macro.embeddings[t] is macro.embeddings[ops[0]] for t in ops)
    assert macro.heads[ops[0]].bias is None  # type: ignore[union-attr]
    assert all(not cell.bias for cell in macro.cells)  # type: ignore[union-attr]
    micro = ENASSampler(MicroSpace(n_nodes=2), seed=0, preset="enas-official-cifar-micro")
    c = micro.controller
    ops = [t for t, k in enumerate(c.kinds) if k == "op"]
    # One b_soft for both cells, learned, initialised to [10, 10, 0, 0, 0].
    assert all(c.heads[t] is c.heads[ops[0]] for t in ops)
    np.testing.assert_allclose(_np(c.heads[ops[0]].bias), [10, 10, 0, 0, 0])  # type: ignore[arg-type]
    # The default controller keeps one head per decision.
    d = ENASSampler(MicroSpace(n_nodes=2), seed=0).controller
    assert d.heads[ops[0]] is not d.heads[ops[1]]
    assert d.heads[ops[0]].bias is not None and d.cells[0].bias  # type: ignore[union-attr]


def test_micro_entropy_is_the_full_entropy() -> None:
    micro = ControllerConfig.from_preset("enas-official-cifar-micro")
    assert micro.entropy_form == "full"  # micro_controller.py lines 167-169: softmax CE
    c = LSTMController([5, 3], ["op", "input"], config=micro)
    actions, _, entropy = c.sample(np.array([0.3, 0.7]))
    logp, _, _ = c.log_prob_steps(torch.tensor([actions]))
    with torch.no_grad():
        full = 0.0
        x = c.start
        state = c._zero_state(1)
        for t in range(2):
            h = c._step(x, state)
            lp = torch.log_softmax(c._logits(t, h), -1)
            full += float(-(lp.exp() * lp).sum())
            x = c.embeddings[t].weight[actions[t]][None]  # type: ignore[index]
    assert entropy == pytest.approx(full, abs=1e-5)


def test_cli_ptb_preset_rewards_80_over_ppl() -> None:
    from optuna_enas.cli._search import _make_sampler

    space = RNNCellSpace(n_nodes=3)
    for preset, expected in (
        ("enas-official-ptb", 0.5),
        ("enas-paper-ptb", 0.5),
        ("default", -160.0),
    ):
        config = ControllerConfig.from_preset(preset)
        sampler = _make_sampler("enas", space, 0, 0, config)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        study.optimize(lambda trial: (suggest_architecture(trial, space), 160.0)[1], n_trials=1)
        stats = study.trials[0].system_attrs["enas:stats"]
        assert stats["reward"] == pytest.approx(expected), preset
