from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optuna_enas import Architecture
from optuna_enas import MacroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.supernet import RNNSupernet
from optuna_enas.supernet._rnn import _CellSequence


_ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda v: v,
    "sigmoid": torch.sigmoid,
}


def _arch(space: RNNCellSpace, inputs: list[int], acts: list[str]) -> Architecture:
    params: dict[str, object] = {"node0_act": acts[0]}
    for i in range(1, space.n_nodes):
        params[f"node{i}_in"] = inputs[i - 1]
        params[f"node{i}_act"] = acts[i]
    return space.architecture(params)


def _model(n_nodes: int = 4, *, seed: int = 0, **kwargs: object) -> RNNSupernet:
    options: dict[str, object] = {
        "vocab_size": 20,
        "embed_size": 8,
        "hidden_size": 8,
        "max_hidden_norm": None,
    }
    options.update(kwargs)
    return RNNSupernet(
        RNNCellSpace(n_nodes=n_nodes),
        generator=torch.Generator().manual_seed(seed),
        **options,  # type: ignore[arg-type]
    )


def _reference_states(
    model: RNNSupernet,
    tokens: torch.Tensor,
    hidden: torch.Tensor,
    arch: Architecture,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The cell outputs ``(T, B, H)``, written with plain autograd ops from the ENAS equations."""
    cell = model.space.cell(arch)
    loose = model.space.loose_ends(arch)
    size = model.hidden_size
    emb = F.embedding(tokens, model.embedding)
    outs = []
    h = hidden
    for t in range(tokens.shape[0]):
        nodes: list[torch.Tensor] = []
        for i, node in enumerate(cell):
            if node.input is None:
                h_in = h
                rec = h if mask is None else h * mask
                s = emb[t] @ model.w_x + rec @ model.w_h
            else:
                h_in = nodes[node.input]
                s = h_in @ model.edge_weight(i, node.input)
            c = torch.sigmoid(s[:, :size])
            nodes.append(c * _ACT[node.activation](s[:, size:]) + (1 - c) * h_in)
        h = torch.stack([nodes[k] for k in loose]).mean(0)
        if model.max_hidden_norm is not None:
            h = h * (model.max_hidden_norm / h.norm(dim=1, keepdim=True)).clamp(max=1.0).detach()
        outs.append(h)
    return torch.stack(outs)


def _reference(
    model: RNNSupernet, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture
) -> tuple[torch.Tensor, torch.Tensor]:
    states = _reference_states(model, tokens, hidden, arch)
    weight = model.embedding if model.decoder_weight is None else model.decoder_weight
    return states @ weight.t() + model.decoder_bias, states[-1]


@pytest.mark.parametrize(
    ("n_nodes", "tie_weights"),
    [(1, True), (2, True), (5, True), (5, False)],
    ids=["1node", "2nodes", "5nodes", "5nodes-untied"],
)
def test_rnn_supernet_output_shapes(n_nodes: int, tie_weights: bool) -> None:
    model = _model(n_nodes, tie_weights=tie_weights, embed_size=6 if not tie_weights else 8)
    rng = np.random.default_rng(0)
    tokens = torch.randint(0, 20, (7, 3))
    for _ in range(4):
        arch = model.space.sample_uniform(rng)
        logits, hidden = model(tokens, model.init_hidden(3), arch)
        assert logits.shape == (7, 3, 20)
        assert hidden.shape == (3, 8)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    ("n_nodes", "max_hidden_norm"),
    [(1, None), (2, None), (6, None), (6, 1.5)],
    ids=["1node", "2nodes", "6nodes", "6nodes-clipped"],
)
def test_rnn_supernet_matches_autograd_reference(
    n_nodes: int, max_hidden_norm: float | None
) -> None:
    model = _model(
        n_nodes, vocab_size=15, embed_size=5, hidden_size=5, max_hidden_norm=max_hidden_norm
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20.0)  # leave the near-linear regime of the small initialization
    rng = np.random.default_rng(n_nodes)
    for _ in range(4):
        arch = model.space.sample_uniform(rng)
        tokens = torch.randint(0, 15, (11, 3))  # weight gradients: one product over 11 steps
        h0 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
        results = []
        for fn in (model, _reference):
            model.zero_grad()
            h0.grad = None
            logits, last = (
                fn(tokens, h0, arch) if fn is model else _reference(model, tokens, h0, arch)
            )
            (logits.sin().sum() + last.cos().sum()).backward()
            grads = {k: p.grad for k, p in model.named_parameters()}
            results.append((logits.detach(), last.detach(), grads, h0.grad))
        (lo1, h1, g1, gh1), (lo2, h2, g2, gh2) = results
        torch.testing.assert_close(lo1, lo2)
        torch.testing.assert_close(h1, h2)
        torch.testing.assert_close(gh1, gh2)
        for name in g1:
            if g2[name] is None:
                assert g1[name] is None, name
            else:
                torch.testing.assert_close(g1[name], g2[name], msg=name)


def test_rnn_cell_sequence_with_hidden_mask_matches_reference() -> None:
    model = _model(4, vocab_size=15, embed_size=5, hidden_size=5).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20.0)
    arch = _arch(model.space, [0, 0, 1], ["tanh", "relu", "sigmoid", "identity"])
    plan = model._plan(arch)
    tokens = torch.randint(0, 15, (19, 2))
    h0 = torch.randn(2, 5, dtype=torch.float64)
    mask = torch.bernoulli(torch.full((2, 5), 0.5, dtype=torch.float64)) * 2.0
    edges = [model.edge_weight(i, plan.inputs[i]) for i in range(1, 4)]
    weights = [model.embedding, model.w_x, model.w_h, *edges]
    results = []
    for use_function in (True, False):
        model.zero_grad()
        if use_function:
            xproj = F.embedding(tokens, model.embedding) @ model.w_x
            out = _CellSequence.apply(plan, xproj, h0, mask, model.w_h, *edges)
        else:
            out = _reference_states(model, tokens, h0, arch, mask)
        out.sin().sum().backward()
        results.append((out.detach(), [w.grad for w in weights]))
    (out1, grads1), (out2, grads2) = results
    torch.testing.assert_close(out1, out2)
    for g1, g2 in zip(grads1, grads2, strict=True):
        torch.testing.assert_close(g1, g2)


def test_rnn_supernet_architectures_share_edge_weights() -> None:
    model = _model(4)
    space = model.space
    # Both use edge 0 -> 2; A uses 0 -> 1, B uses 1 -> 3; nobody uses 2 -> 3.
    arch_a = _arch(space, [0, 0, 0], ["tanh", "tanh", "relu", "tanh"])
    arch_b = _arch(space, [0, 0, 1], ["relu", "sigmoid", "tanh", "identity"])
    tokens = torch.randint(0, 20, (5, 2))
    shared = model.edge_weight(2, 0)
    for arch in (arch_a, arch_b):
        model.zero_grad(set_to_none=True)
        logits, _ = model(tokens, model.init_hidden(2), arch)
        logits.logsumexp(-1).sum().backward()
        assert shared.grad is not None and shared.grad.abs().sum() > 0
        unused = model.edge_weight(3, 2).grad
        assert unused is None or not unused.any()
    # The shared tensor is one object: a step on B moves the weights A reads.
    before, _ = model(tokens, model.init_hidden(2), arch_a)
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    after, _ = model(tokens, model.init_hidden(2), arch_a)
    assert not torch.equal(before, after)


def test_rnn_supernet_unused_edges_get_no_gradient() -> None:
    model = _model(5)
    arch = _arch(model.space, [0, 1, 2, 3], ["tanh"] * 5)
    logits, _ = model(torch.randint(0, 20, (3, 2)), model.init_hidden(2), arch)
    logits.sum().backward()
    used = {(1, 0), (2, 1), (3, 2), (4, 3)}
    for i in range(1, 5):
        for j in range(i):
            grad = model.edge_weight(i, j).grad
            assert (grad is not None) == ((i, j) in used), (i, j)


def test_rnn_supernet_state_dict_round_trip() -> None:
    model = _model(4, seed=0).eval()
    other = _model(4, seed=1).eval()
    arch = model.space.sample_uniform(np.random.default_rng(3))
    tokens = torch.randint(0, 20, (6, 2))
    assert not torch.equal(
        model(tokens, model.init_hidden(2), arch)[0], other(tokens, other.init_hidden(2), arch)[0]
    )
    other.load_state_dict(model.state_dict())
    out_a = model(tokens, model.init_hidden(2), arch)
    out_b = other(tokens, other.init_hidden(2), arch)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    keys = set(model.state_dict())
    assert "w_edges.3.1" in keys and "w_x" in keys and "embedding" in keys


def test_rnn_supernet_generator_seeds_init_without_touching_global_rng() -> None:
    state = torch.random.get_rng_state()
    a = _model(3, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())
    b = _model(3, seed=7)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_rnn_supernet_follows_dtype_and_meta_device() -> None:
    model = _model(3).double()
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, 20, (4, 2))
    hidden = model.init_hidden(2)
    assert hidden.dtype == torch.float64
    logits, last = model(tokens, hidden, arch)
    assert logits.dtype == torch.float64 and last.dtype == torch.float64
    logits.sum().backward()

    meta = _model(3, dropout=0.5, input_dropout=0.5, hidden_dropout=0.5).to("meta")
    hidden = meta.init_hidden(2)
    assert hidden.device.type == "meta"
    logits, last = meta(tokens.to("meta"), hidden, arch)
    assert logits.device.type == "meta" and logits.shape == (4, 2, 20)


def test_rnn_supernet_dropout_only_in_training() -> None:
    model = _model(3, dropout=0.5, input_dropout=0.5, hidden_dropout=0.5)
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, 20, (4, 2))
    model.train()
    a, _ = model(tokens, model.init_hidden(2), arch)
    b, _ = model(tokens, model.init_hidden(2), arch)
    assert not torch.equal(a, b)
    model.eval()
    a, _ = model(tokens, model.init_hidden(2), arch)
    b, _ = model(tokens, model.init_hidden(2), arch)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rnn_supernet_no_grad_path_matches_autograd_path() -> None:
    model = _model(5).eval()
    arch = model.space.sample_uniform(np.random.default_rng(1))
    tokens = torch.randint(0, 20, (4, 2))
    with_grad, _ = model(tokens, model.init_hidden(2), arch)
    with torch.no_grad():
        without, _ = model(tokens, model.init_hidden(2), arch)
    torch.testing.assert_close(with_grad.detach(), without, rtol=0, atol=0)


def test_rnn_supernet_training_reduces_loss() -> None:
    model = _model(4, vocab_size=10, embed_size=16, hidden_size=16, max_hidden_norm=25.0)
    space = model.space
    rng = np.random.default_rng(0)
    data = torch.arange(31) % 10  # a deterministic cycle: next token = token + 1
    tokens = data.view(-1, 1).repeat(1, 4)
    probes = [space.sample_uniform(rng) for _ in range(3)]

    def loss_of(arch: Architecture) -> torch.Tensor:
        logits, _ = model(tokens[:-1], model.init_hidden(4), arch)
        return F.cross_entropy(logits.reshape(-1, 10), tokens[1:].reshape(-1))

    with torch.no_grad():
        before = [loss_of(a).item() for a in probes]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(30):  # shared-weight training: the architectures take turns
        loss = loss_of(probes[step % len(probes)])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    with torch.no_grad():
        after = [loss_of(a).item() for a in probes]
    assert np.mean(after) < 0.5 * np.mean(before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 0}, "vocab_size"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"embed_size": 2.5}, "embed_size"),
        ({"embed_size": 4, "hidden_size": 8}, "tie_weights"),
        ({"dropout": 1.0}, "dropout"),
        ({"input_dropout": -0.1}, "input_dropout"),
        ({"hidden_dropout": "0.1"}, "hidden_dropout"),
    ],
    ids=["vocab", "hidden", "embed", "tie", "dropout", "input-dropout", "hidden-dropout"],
)
def test_rnn_supernet_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {"vocab_size": 20, "embed_size": 8, "hidden_size": 8}
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        RNNSupernet(RNNCellSpace(n_nodes=3), **options)


def test_rnn_supernet_rejects_bad_inputs() -> None:
    model = _model(3)
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, 20, (4, 2))
    with pytest.raises(ValueError, match="space 'rnn'"):
        model(
            tokens,
            model.init_hidden(2),
            MacroSpace(n_layers=2).sample_uniform(np.random.default_rng(0)),
        )
    with pytest.raises(ValueError, match="tokens"):
        model(tokens.float(), model.init_hidden(2), arch)
    with pytest.raises(ValueError, match="hidden"):
        model(tokens, model.init_hidden(3), arch)
    with pytest.raises(ValueError, match="batch_size"):
        model.init_hidden(0)
    with pytest.raises(ValueError, match="space"):
        RNNSupernet(MacroSpace(n_layers=2), vocab_size=5)  # type: ignore[arg-type]


def test_rnn_supernet_enas_pytorch_size_runs() -> None:
    # ENAS-pytorch defaults: 12 nodes, embedding and hidden 1000, tied, PTB vocabulary 10000.
    # About 2 s on 2 CPU cores (585 MB of weights), so not marked slow.
    model = _model(12, vocab_size=10000, embed_size=1000, hidden_size=1000)
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, 10000, (4, 2))
    logits, hidden = model(tokens[:-1], model.init_hidden(2), arch)
    loss = F.cross_entropy(logits.reshape(-1, 10000), tokens[1:].reshape(-1))
    loss.backward()
    assert logits.shape == (3, 2, 10000) and hidden.shape == (2, 1000)
    assert torch.isfinite(loss)
    n_grads = sum(p.grad is not None for p in model.parameters())
    assert n_grads == 2 + 11 + 2  # w_x, w_h, 11 edges, embedding, decoder bias


def test_rnn_supernet_runs_under_autocast() -> None:
    model = _model(4)
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, 20, (4, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, hidden = model(tokens, model.init_hidden(2), arch)
    assert logits.dtype == torch.bfloat16  # the decoder runs under autocast
    assert hidden.dtype == torch.float32  # the recurrence runs in the weights' dtype
    logits.float().sum().backward()
    assert model.w_h.grad is not None and model.w_h.grad.dtype == torch.float32
