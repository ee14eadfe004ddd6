"""The two CIFAR presets against numpy transliterations of the official samplers.

Source: melodyguan/enas, commit 4bcfd73: ``src/cifar10/general_controller.py`` (macro),
``src/cifar10/micro_controller.py`` (micro), ``src/common_ops.py`` (``stack_lstm``). Each
transliteration takes the controller's weights in the official layout (``w_lstm`` of shape
``[2H, 4H]`` with the gates ``i, f, o, g``; ``w_soft``, ``b_soft``, ``w_emb``, ``g_emb``,
``w_attn_1``, ``w_attn_2``, ``v_attn``) and replaces ``tf.multinomial`` by an inverse-CDF draw
from given uniforms, one per sampled decision in the official sampling order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import optuna
import pytest
import torch

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import LSTMController
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import suggest_architecture
from optuna_enas.sampler._reinforce import Reinforce


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


class _Official:
    """The official parameters of a controller, and ``common_ops.stack_lstm``."""

    def __init__(self, c: LSTMController) -> None:
        size = c.config.lstm_size
        self.w_lstm = []
        for cell in c.cells:
            assert isinstance(cell, torch.nn.LSTMCell)
            w = np.concatenate([_np(cell.weight_ih).T, _np(cell.weight_hh).T])
            i, f, g, o = np.split(w, 4, axis=1)  # torch's gate order
            self.w_lstm.append(np.concatenate([i, f, o, g], axis=1))  # official i, f, o, g
        op = c.kinds.index("op")
        head = c.heads[op]
        self.w_soft = _np(head.weight).T  # type: ignore[arg-type]
        self.b_soft = _np(head.bias) if head.bias is not None else None  # type: ignore[arg-type]
        self.w_emb = _np(c.embeddings[op].weight)  # type: ignore[arg-type]
        self.g_emb = _np(c.start)
        assert c.attn_w1 is not None and c.attn_w2 is not None and c.attn_v is not None
        self.w_attn_1, self.w_attn_2 = _np(c.attn_w1), _np(c.attn_w2)
        self.v_attn = _np(c.attn_v)[:, None]
        self.size = size

    def zeros(self) -> list[np.ndarray]:
        return [np.zeros((1, self.size)) for _ in self.w_lstm]

    def stack_lstm(
        self, x: np.ndarray, prev_c: list[np.ndarray], prev_h: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        next_c: list[np.ndarray] = []
        next_h: list[np.ndarray] = []
        for layer_id, (_c, _h, _w) in enumerate(zip(prev_c, prev_h, self.w_lstm, strict=True)):
            inputs = x if layer_id == 0 else next_h[-1]
            ifog = np.concatenate([inputs, _h], axis=1) @ _w
            i, f, o, g = np.split(ifog, 4, axis=1)
            sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
            c = sig(i) * np.tanh(g) + sig(f) * _c
            next_c.append(c)
            next_h.append(sig(o) * np.tanh(c))
        return next_c, next_h


def _multinomial(logits: np.ndarray, u: float) -> int:
    """One draw of ``tf.multinomial`` by inverse CDF; returns the index."""
    p = np.exp(logits - logits.max())
    cdf = np.cumsum(p / p.sum())
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(p) - 1)


def _ce(logits: np.ndarray, label: int) -> float:
    """``sparse_softmax_cross_entropy_with_logits`` (= -log p(label))."""
    m = logits.max()
    return float(m + np.log(np.exp(logits - m).sum()) - logits[label])


def _official_macro(
    c: LSTMController, draws: Iterator[float], num_layers: int
) -> tuple[list[int], list[float], float, float]:
    """``GeneralController._build_sampler`` (lines 131-268, ``search_whole_channels``).

    Returns ``arc_seq``, the log-probability of each entry of it, the entropy
    ``sum log_prob * exp(-log_prob)`` and ``skip_penaltys`` (the mean over layers of the KL).
    """
    cfg = c.config
    w = _Official(c)
    anchors: list[np.ndarray] = []
    anchors_w_1: list[np.ndarray] = []
    arc_seq: list[int] = []
    log_probs: list[float] = []
    entropy = 0.0
    skip_penaltys = []
    prev_c, prev_h = w.zeros(), w.zeros()
    inputs = w.g_emb
    skip_targets = np.array([1.0 - cfg.skip_target, cfg.skip_target])

    def squash(logit: np.ndarray) -> np.ndarray:
        if cfg.temperature is not None:
            logit = logit / cfg.temperature
        if cfg.tanh_constant is not None:
            logit = cfg.tanh_constant * np.tanh(logit)
        return logit

    for layer_id in range(num_layers):
        next_c, next_h = w.stack_lstm(inputs, prev_c, prev_h)
        prev_c, prev_h = next_c, next_h
        logit = squash(next_h[-1] @ w.w_soft)[0]
        branch_id = _multinomial(logit, next(draws))
        arc_seq.append(branch_id)
        log_prob = _ce(logit, branch_id)
        log_probs.append(-log_prob)
        entropy += log_prob * math.exp(-log_prob)
        inputs = w.w_emb[[branch_id]]

        next_c, next_h = w.stack_lstm(inputs, prev_c, prev_h)
        prev_c, prev_h = next_c, next_h
        if layer_id > 0:
            query = np.concatenate(anchors_w_1, axis=0)
            query = np.tanh(query + next_h[-1] @ w.w_attn_2)
            query = query @ w.v_attn  # (layer_id, 1)
            logit = squash(np.concatenate([-query, query], axis=1))
            skip = [_multinomial(row, next(draws)) for row in logit]
            arc_seq += skip
            skip_prob = 1 / (1 + np.exp(-logit))
            kl = skip_prob * np.log(skip_prob / skip_targets)
            skip_penaltys.append(kl.sum())
            for row, s in zip(logit, skip, strict=True):
                lp = _ce(row, s)
                log_probs.append(-lp)
                entropy += lp * math.exp(-lp)
            skip_vec = np.asarray(skip, float).reshape(1, layer_id)
            inputs = skip_vec @ np.concatenate(anchors, axis=0)
            inputs = inputs / (1.0 + skip_vec.sum())
        else:
            inputs = w.g_emb
        anchors.append(next_h[-1])
        anchors_w_1.append(next_h[-1] @ w.w_attn_1)
    return arc_seq, log_probs, entropy, float(np.mean(skip_penaltys)) if skip_penaltys else 0.0


def _official_micro_cell(
    w: _Official,
    cfg: ControllerConfig,
    draws: Iterator[float],
    num_cells: int,
    prev: tuple[list[np.ndarray], list[np.ndarray]] | None,
    use_bias: bool,
) -> tuple[list[int], list[float], float, tuple[list[np.ndarray], list[np.ndarray]]]:
    """``MicroController._build_sampler`` (lines 116-229) for one cell."""
    assert w.b_soft is not None
    anchors: list[np.ndarray] = []
    anchors_w_1: list[np.ndarray] = []
    arc_seq = [0] * (4 * num_cells)
    log_probs = [0.0] * (4 * num_cells)
    entropy = 0.0
    prev_c, prev_h = prev if prev is not None else (w.zeros(), w.zeros())
    inputs = w.g_emb
    n = len(w.b_soft)
    b_soft_no_learn = np.array([0.25, 0.25] + [-0.25] * (n - 2))

    def take(logits: np.ndarray, pos: int) -> int:
        nonlocal entropy
        index = _multinomial(logits, next(draws))
        arc_seq[pos] = index
        log_probs[pos] = -_ce(logits, index)
        p = np.exp(logits - logits.max())
        p = p / p.sum()
        entropy += float(-(p * np.log(p)).sum())  # softmax CE against softmax(logits)
        return index

    for _ in range(2):
        prev_c, prev_h = w.stack_lstm(inputs, prev_c, prev_h)
        anchors.append(np.zeros_like(prev_h[-1]))
        anchors_w_1.append(prev_h[-1] @ w.w_attn_1)
    for layer_id in range(2, num_cells + 2):
        start_id = 4 * (layer_id - 2)
        for i in range(2):  # index_1, index_2
            prev_c, prev_h = w.stack_lstm(inputs, prev_c, prev_h)
            query = np.concatenate(anchors_w_1[:layer_id], axis=0)
            query = np.tanh(query + prev_h[-1] @ w.w_attn_2)
            logits = (query @ w.v_attn).reshape(layer_id)
            if cfg.temperature is not None:
                logits = logits / cfg.temperature
            if cfg.tanh_constant is not None:
                logits = cfg.tanh_constant * np.tanh(logits)
            index = take(logits, start_id + 2 * i)
            inputs = anchors[index]
        for i in range(2):  # op_1, op_2
            prev_c, prev_h = w.stack_lstm(inputs, prev_c, prev_h)
            logits = (prev_h[-1] @ w.w_soft + w.b_soft)[0]
            if cfg.temperature is not None:
                logits = logits / cfg.temperature
            if cfg.tanh_constant is not None:
                logits = cfg.tanh_constant / cfg.op_tanh_reduce * np.tanh(logits)
            if use_bias:
                logits = logits + b_soft_no_learn
            op_id = take(logits, start_id + 2 * i + 1)
            inputs = w.w_emb[[op_id]]
        prev_c, prev_h = w.stack_lstm(inputs, prev_c, prev_h)
        anchors.append(prev_h[-1])
        anchors_w_1.append(prev_h[-1] @ w.w_attn_1)
        inputs = w.g_emb
    return arc_seq, log_probs, entropy, (prev_c, prev_h)


def _official_micro(
    c: LSTMController, draws: Iterator[float], num_cells: int
) -> tuple[list[int], list[float], float]:
    """``MicroController.__init__`` lines 79-83: the normal cell with the constant op bias,
    then the reduction cell continuing its LSTM state."""
    w = _Official(c)
    arc_1, lp_1, ent_1, state = _official_micro_cell(w, c.config, draws, num_cells, None, True)
    arc_2, lp_2, ent_2, _ = _official_micro_cell(w, c.config, draws, num_cells, state, False)
    return arc_1 + arc_2, lp_1 + lp_2, ent_1 + ent_2


def _micro_order(n_nodes: int) -> list[int]:
    """Our decision index of each official draw: per block in1, in2, op1, op2."""
    order = []
    for cell in range(2):
        for b in range(n_nodes):
            s = 4 * (cell * n_nodes + b)
            order += [s, s + 2, s + 1, s + 3]
    return order


def _perturb(c: LSTMController) -> None:
    """Weights far from the 0.1 init, so that the attention and LSTM terms matter."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in c.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    c.refresh()


@pytest.mark.parametrize("n_layers", [1, 2, 5])
def test_official_macro_controller_is_the_official_sampler_exactly(n_layers: int) -> None:
    space = MacroSpace(n_layers=n_layers)
    sampler = ENASSampler(space, seed=2, preset="enas-official-cifar-macro")
    c = sampler.controller
    _perturb(c)
    config = sampler.config
    learner = Reinforce(c, config)
    for seed in range(4):
        u = np.random.default_rng(seed).random(len(c))
        arc, ref_logps, ref_entropy, ref_kl = _official_macro(c, iter(u), n_layers)
        actions, step_logps, entropy = c.sample(u)  # same decision order as the official one
        assert actions == arc
        np.testing.assert_allclose(step_logps, ref_logps, atol=1e-5)
        assert entropy == pytest.approx(ref_entropy, abs=1e-5)
        logp, ents, skip_p = c.log_prob_steps(torch.tensor([actions]))
        np.testing.assert_allclose(_np(logp[0]), ref_logps, atol=1e-5)
        assert float(ents.detach().sum()) == pytest.approx(ref_entropy, abs=1e-5)
        if n_layers > 1:  # skip_weight * skip_penaltys (lines 231-234, 268, 291-292)
            mask = torch.ones_like(skip_p, dtype=torch.bool)
            penalty = float(learner._skip_penalty(skip_p.detach(), mask))
            assert penalty == pytest.approx(config.skip_weight * ref_kl, rel=1e-5)


def test_official_macro_skips_mix_the_chosen_anchors() -> None:
    # Draws of 0 take no skip, draws next to 1 take the skip: all skips, none, and a mix, so
    # that the next layer reads sum(chosen anchors) / (1 + k) for k = 0, 1, 2, 3.
    space = MacroSpace(n_layers=4)
    c = ENASSampler(space, seed=0, preset="enas-official-cifar-macro").controller
    _perturb(c)
    skips = [t for t, kind in enumerate(c.kinds) if kind == "skip"]
    for bits in ([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1]):
        u = np.random.default_rng(sum(bits)).random(len(c))
        u[skips] = [1 - 1e-12 if b else 0.0 for b in bits]
        arc, ref_logps, ref_entropy, _ = _official_macro(c, iter(u), 4)
        assert [arc[t] for t in skips] == bits
        actions, step_logps, entropy = c.sample(u)
        assert actions == arc
        np.testing.assert_allclose(step_logps, ref_logps, atol=1e-5)
        assert entropy == pytest.approx(ref_entropy, abs=1e-5)
        logp, _, _ = c.log_prob_steps(torch.tensor([actions]))
        np.testing.assert_allclose(_np(logp[0]), ref_logps, atol=1e-5)


@pytest.mark.parametrize("n_nodes", [1, 2, 4])
def test_official_micro_controller_is_the_official_sampler_exactly(n_nodes: int) -> None:
    space = MicroSpace(n_nodes=n_nodes)
    c = ENASSampler(space, seed=4, preset="enas-official-cifar-micro").controller
    _perturb(c)
    order = _micro_order(n_nodes)
    assert sorted(order) == list(range(len(c)))
    for seed in range(4):
        draws = np.random.default_rng(seed).random(len(c))  # in the official order
        arc, ref_logps, ref_entropy = _official_micro(c, iter(draws), n_nodes)
        u = np.empty(len(c))
        u[order] = draws  # decision order[k] gets the k-th official draw
        actions, step_logps, entropy = c.sample(u)
        assert actions == arc  # recorded as in1, op1, in2, op2 (lines 165, 189)
        np.testing.assert_allclose(step_logps, ref_logps, atol=1e-5)
        assert entropy == pytest.approx(ref_entropy, abs=1e-5)
        logp, ents, _ = c.log_prob_steps(torch.tensor([actions, actions]))
        np.testing.assert_allclose(_np(logp[1]), ref_logps, atol=1e-5)
        assert float(ents[1].detach().sum()) == pytest.approx(ref_entropy, abs=1e-5)


def test_official_micro_reduction_cell_continues_the_lstm_state() -> None:
    # With a fresh state the reduction cell's log-probabilities differ (the official code
    # passes prev_c=c, prev_h=h, lines 79-80).
    n_nodes = 2
    c = ENASSampler(MicroSpace(n_nodes=n_nodes), seed=4, preset="enas-official-cifar-micro")
    ctrl = c.controller
    _perturb(ctrl)
    draws = np.random.default_rng(0).random(len(ctrl))
    w = _Official(ctrl)
    half = 4 * n_nodes
    it = iter(draws)
    _official_micro_cell(w, ctrl.config, it, n_nodes, None, True)
    _, fresh_logps, _, _ = _official_micro_cell(w, ctrl.config, it, n_nodes, None, False)
    _, ref_logps, _ = _official_micro(ctrl, iter(draws), n_nodes)
    u = np.empty(len(ctrl))
    u[_micro_order(n_nodes)] = draws
    _, step_logps, _ = ctrl.sample(u)
    np.testing.assert_allclose(step_logps[half:], ref_logps[half:], atol=1e-5)
    assert np.abs(np.asarray(step_logps[half:]) - fresh_logps).max() > 1e-3


def test_other_decision_lists_keep_the_plain_controller() -> None:
    # cell_attention / skip_attention apply only where the decisions have the official shape.
    for preset, n_choices, kinds in (
        ("enas-official-cifar-micro", [5, 3], ["op", "input"]),
        ("enas-official-cifar-micro", [2, 5, 2], ["input", "op", "input"]),
        ("enas-official-cifar-macro", [2, 6], ["skip", "op"]),
        ("enas-official-cifar-macro", [6, 6, 2, 2], ["op", "op", "skip", "skip"]),
    ):
        config = ControllerConfig.from_preset(preset)
        c = LSTMController(n_choices, kinds, config=config)
        assert c._plan() is None
        plain_config = ControllerConfig.from_preset(
            preset, skip_attention=False, cell_attention=False
        )
        plain = LSTMController(n_choices, kinds, config=plain_config)
        state = {k: v for k, v in c.state_dict().items() if not k.startswith("attn")}
        plain.load_state_dict(state)
        u = np.random.default_rng(0).random(len(c))
        assert c.sample(u) == plain.sample(u)
    # The macro prefix of any length takes the official structure.
    macro = ControllerConfig.from_preset("enas-official-cifar-macro")
    assert LSTMController([6, 6, 2], ["op", "op", "skip"], config=macro)._plan() is not None


def test_fingerprint_tells_the_structures_apart() -> None:
    space = MicroSpace(n_nodes=2)
    official = ENASSampler(space, seed=0, preset="enas-official-cifar-micro").controller
    config = ControllerConfig.from_preset("enas-official-cifar-micro", cell_attention=False)
    plain = ENASSampler(space, seed=0, config=config).controller
    assert official.fingerprint() != plain.fingerprint()
    # The same weights under the plain structure (decisions that do not fit) differ too.
    micro = ControllerConfig.from_preset("enas-official-cifar-micro")
    a = LSTMController([2, 5, 2, 5], ["input", "op", "input", "op"], config=micro)
    b = LSTMController([2, 5, 2, 5], ["input", "op", "input", "other"], config=micro)
    b.load_state_dict(a.state_dict())
    assert a.fingerprint() != b.fingerprint()


def test_config_refuses_two_structures() -> None:
    with pytest.raises(ValueError, match="at most one"):
        ControllerConfig(skip_attention=True, cell_attention=True)
    with pytest.raises(ValueError, match="at most one"):
        ControllerConfig(input_attention=True, skip_attention=True)
    with pytest.raises(ValueError, match="cell_attention must be a bool"):
        ControllerConfig(cell_attention=1)  # type: ignore[arg-type]
    assert ControllerConfig.from_preset("enas-official-cifar-macro").skip_attention
    assert ControllerConfig.from_preset("enas-official-cifar-micro").cell_attention


@pytest.mark.parametrize(
    ("preset", "space"),
    [
        ("enas-official-cifar-macro", MacroSpace(n_layers=3)),
        ("enas-official-cifar-micro", MicroSpace(n_nodes=2)),
    ],
)
def test_official_cifar_presets_learn_and_replay(
    tmp_path: object, preset: str, space: MacroSpace | MicroSpace
) -> None:
    config = ControllerConfig.from_preset(preset, n_aggregate=2, learning_rate=0.05)

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space)
        return float(sum(map(ord, space.describe(arch))) % 7)

    url = f"sqlite:///{tmp_path}/replay.db"
    full = ENASSampler(space, seed=1, config=config)
    optuna.create_study(sampler=full, storage=url, study_name="full").optimize(objective, 8)
    first = ENASSampler(space, seed=1, config=config)
    split = optuna.create_study(sampler=first, storage=url, study_name="split")
    split.optimize(objective, n_trials=5)
    second = ENASSampler(space, seed=1, config=config)
    optuna.load_study(study_name="split", storage=url, sampler=second).optimize(objective, 3)
    assert full.n_updates == 4
    assert second.controller.fingerprint() == full.controller.fingerprint()
    assert all(h["on_policy"] for h in second.history)
