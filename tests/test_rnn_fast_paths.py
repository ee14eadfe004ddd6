"""The RNN supernet's fast paths against a plain-autograd float64 reference of the same cell.

The fast paths: oneDNN-packed weights for the per-step products (float32 on a CPU), the
gradients of the pre-activations written over the saved activations, one weight-gradient
product per weight over all steps, and the opt-in bfloat16 matmuls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optuna_enas import Architecture
from optuna_enas import RNNCellSpace
from optuna_enas.supernet import RNNSupernet
from optuna_enas.supernet._rnn import _PACK_MIN_STEPS
from optuna_enas.supernet._rnn import _can_pack


pytestmark = pytest.mark.usefixtures("one_torch_thread")

_ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda v: v,
    "sigmoid": torch.sigmoid,
}
_V, _E, _B, _T = 17, 6, 3, 9  # vocabulary, embedding = hidden, batch, steps


def _arch(space: RNNCellSpace, inputs: list[int], acts: list[str]) -> Architecture:
    params: dict[str, object] = {"node0_act": acts[0]}
    for i in range(1, space.n_nodes):
        params[f"node{i}_in"] = inputs[i - 1]
        params[f"node{i}_act"] = acts[i]
    return space.architecture(params)


def _model(n_nodes: int, **kwargs: object) -> RNNSupernet:
    model = RNNSupernet(
        RNNCellSpace(n_nodes=n_nodes),
        vocab_size=_V,
        embed_size=_E,
        hidden_size=_E,
        generator=torch.Generator().manual_seed(n_nodes),
        **kwargs,  # type: ignore[arg-type]
    )
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(15.0)  # leave the near-linear regime of the small initialization
    return model


def _reference(
    model: RNNSupernet,
    tokens: torch.Tensor,
    hidden: torch.Tensor,
    arch: Architecture,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and last state from the ENAS equations, written with plain autograd ops."""
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
    states = torch.stack(outs)
    return states @ model.embedding.t() + model.decoder_bias, states[-1]


def _run(
    model: RNNSupernet,
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    tokens: torch.Tensor,
    h0: torch.Tensor,
    arch: Architecture,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor | None], torch.Tensor]:
    model.zero_grad(set_to_none=True)
    h = h0.detach().clone().requires_grad_(True)
    logits, last = fn(tokens, h, arch) if mask is None else fn(tokens, h, arch, mask)
    (logits.sin().sum() + last.cos().sum()).backward()
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
    assert h.grad is not None
    return logits.detach(), last.detach(), grads, h.grad


def _masked_forward(
    model: RNNSupernet, seed: int
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The model in training mode with hidden dropout drawn from a generator seeded ``seed``."""

    def forward(
        tokens: torch.Tensor, h: torch.Tensor, arch: Architecture, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model.dropout_generator = torch.Generator().manual_seed(seed)
        model.train()
        return model(tokens, h, arch)  # type: ignore[no-any-return]

    return forward


def _hidden_mask(seed: int, p: float, dtype: torch.dtype) -> torch.Tensor:
    # The supernet's one mask draw when only hidden_dropout is on (see _dropout_mask).
    keep = 1.0 - p
    g = torch.Generator().manual_seed(seed)
    return torch.empty((_B, _E)).bernoulli_(keep, generator=g).div_(keep).to(dtype)


_ARCHS = [
    ([0, 1, 2, 3], ["tanh", "relu", "identity", "sigmoid", "tanh"]),  # a chain
    ([0, 0, 0, 0], ["relu", "sigmoid", "tanh", "identity", "relu"]),  # one node feeds all
    ([0, 1, 1, 0], ["identity", "tanh", "sigmoid", "relu", "identity"]),
]


@pytest.mark.parametrize("max_hidden_norm", [None, 2.0], ids=["unclipped", "clipped"])
@pytest.mark.parametrize("hidden_dropout", [0.0, 0.4], ids=["no-mask", "mask"])
@pytest.mark.parametrize("k", range(len(_ARCHS)))
def test_float32_fast_path_matches_float64_reference(
    k: int, hidden_dropout: float, max_hidden_norm: float | None
) -> None:
    model = _model(5, hidden_dropout=hidden_dropout, max_hidden_norm=max_hidden_norm)
    arch = _arch(model.space, *_ARCHS[k])
    tokens = torch.randint(0, _V, (_T, _B), generator=torch.Generator().manual_seed(k))
    h0 = torch.randn(_B, _E, generator=torch.Generator().manual_seed(k + 10))
    assert _T >= _PACK_MIN_STEPS  # the per-step products use the packed weights
    mask32 = _hidden_mask(k, hidden_dropout, torch.float32) if hidden_dropout else None
    fast = _run(
        model, _masked_forward(model, k) if mask32 is not None else model, tokens, h0, arch, mask32
    )
    # plain float32 autograd of the same cell: how much float32 rounding alone costs
    plain = _run(
        model,
        lambda *a: _reference(model, *a[:3], a[3] if len(a) > 3 else None),
        tokens,
        h0,
        arch,
        mask32,
    )
    model64 = _model(5, hidden_dropout=hidden_dropout, max_hidden_norm=max_hidden_norm).double()
    mask64 = None if mask32 is None else mask32.double()
    ref = _run(
        model64,
        lambda *a: _reference(model64, *a[:3], a[3] if len(a) > 3 else None),
        tokens,
        h0.double(),
        arch,
        mask64,
    )
    pairs = [("logits", fast[0], plain[0], ref[0]), ("last state", fast[1], plain[1], ref[1])]
    pairs.append(("grad h0", fast[3], plain[3], ref[3]))
    for name, g in fast[2].items():
        g_ref = ref[2][name]
        assert (g is None) == (g_ref is None), name
        if g is not None and g_ref is not None:
            g_plain = plain[2][name]
            assert g_plain is not None
            pairs.append((name, g, g_plain, g_ref))
    for what, x, x_plain, x_ref in pairs:
        # Against the float64 truth: no worse than 4x plain float32 autograd's error, and
        # within 1e-3 of the largest magnitude (the unclipped cells are ill-conditioned: their
        # weights were scaled up 15x).
        err = float((x.double() - x_ref).abs().max())
        err_plain = float((x_plain.double() - x_ref).abs().max())
        scale = float(x_ref.abs().max())
        assert err <= 4.0 * err_plain + 1e-5 * scale, (what, err, err_plain)
        assert err <= 1e-3 * scale, (what, err, scale)


def test_fast_path_is_used_and_differs_from_mm_only_by_rounding() -> None:
    # On a CPU torch build with oneDNN the float32 products are packed; this run and a
    # float64 run of the same supernet (torch.mm) agree to float32 rounding.
    if not _can_pack(torch.empty(1), torch.float32):
        pytest.skip("oneDNN's packed linear is not available in this torch build")
    model = _model(4)
    arch = _arch(model.space, [0, 1, 0], ["tanh", "relu", "sigmoid", "identity"])
    tokens = torch.randint(0, _V, (_T, _B), generator=torch.Generator().manual_seed(0))
    h0 = model.init_hidden(_B)
    with torch.no_grad():
        logits32, _ = model(tokens, h0, arch)
        logits64, _ = model.double()(tokens, h0.double(), arch)
    diff = float((logits32.double() - logits64).abs().max())
    assert 0.0 < diff < 1e-4 * float(logits64.abs().max())


def test_short_sequences_skip_packing_and_agree() -> None:
    model = _model(4)
    arch = _arch(model.space, [0, 0, 2], ["relu", "tanh", "identity", "sigmoid"])
    tokens = torch.randint(0, _V, (_T, _B), generator=torch.Generator().manual_seed(1))
    h = model.init_hidden(_B)
    with torch.no_grad():
        whole, _ = model(tokens, h, arch)
        # one step at a time: below _PACK_MIN_STEPS, so torch.mm; same function
        pieces = []
        for t in range(_T):
            logits, h = model(tokens[t : t + 1], h, arch)
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces), whole, rtol=1e-5, atol=1e-5)


def test_backward_twice_raises() -> None:
    model = _model(3)
    arch = model.space.sample_uniform(np.random.default_rng(0))
    tokens = torch.randint(0, _V, (_T, _B))
    logits, _ = model(tokens, model.init_hidden(_B), arch)
    loss = logits.sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError):  # the first pass overwrote what a second one would need
        loss.backward()


def test_bfloat16_matmul_runs_close_to_float32() -> None:
    rng = np.random.default_rng(0)
    model = RNNSupernet(
        RNNCellSpace(n_nodes=6),
        vocab_size=50,
        embed_size=32,
        hidden_size=32,
        generator=torch.Generator().manual_seed(0),
    )
    fast = RNNSupernet(
        RNNCellSpace(n_nodes=6),
        vocab_size=50,
        embed_size=32,
        hidden_size=32,
        generator=torch.Generator().manual_seed(0),
        bfloat16_matmul=True,
    )
    assert "bfloat16_matmul=True" in repr(fast)
    tokens = torch.randint(0, 50, (12, 4), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        arch = model.space.sample_uniform(rng)
        outs = []
        for m in (model, fast):
            m.zero_grad(set_to_none=True)
            logits, last = m(tokens[:-1], m.init_hidden(4), arch)
            assert logits.dtype == torch.float32 and last.dtype == torch.float32
            loss = F.cross_entropy(logits.reshape(-1, 50), tokens[1:].reshape(-1))
            loss.backward()
            grads = torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None])
            assert grads.dtype == torch.float32
            outs.append((logits.detach(), float(loss.detach()), grads))
        (l32, loss32, g32), (l16, loss16, g16) = outs
        assert not torch.equal(l32, l16)  # the products did run in bfloat16
        torch.testing.assert_close(l16, l32, rtol=0.0, atol=0.05 * float(l32.abs().max()))
        assert abs(loss16 - loss32) < 0.01 * loss32
        cosine = float(g16 @ g32 / (g16.norm() * g32.norm()))
        assert cosine > 0.99


def test_bfloat16_matmul_training_tracks_float32() -> None:
    final = []
    for bf16 in (False, True):
        model = RNNSupernet(
            RNNCellSpace(n_nodes=4),
            vocab_size=30,
            embed_size=16,
            hidden_size=16,
            generator=torch.Generator().manual_seed(1),
            bfloat16_matmul=bf16,
        )
        arch = model.space.sample_uniform(np.random.default_rng(1))
        tokens = torch.arange(40).remainder(7).view(-1, 1).repeat(1, 4)  # a periodic sequence
        opt = torch.optim.SGD(model.parameters(), lr=2.0)
        losses = []
        for _ in range(30):
            opt.zero_grad()
            logits, _ = model(tokens[:-1], model.init_hidden(4), arch)
            loss = F.cross_entropy(logits.reshape(-1, 30), tokens[1:].reshape(-1))
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < 0.7 * losses[0]
        final.append(losses[-1])
    assert abs(final[1] - final[0]) < 0.02 * final[0]


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bfloat16_matmul_is_validated(value: object) -> None:
    with pytest.raises(ValueError, match="bfloat16_matmul"):
        RNNSupernet(RNNCellSpace(n_nodes=2), vocab_size=5, bfloat16_matmul=value)  # type: ignore[arg-type]


def test_state_dict_layout_is_unchanged_by_bfloat16_matmul() -> None:
    a = _model(3)
    b = _model(3, bfloat16_matmul=True)
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_forward_many_equals_forward(grad: bool) -> None:
    model = _model(5)
    model.eval()
    rng = np.random.default_rng(5)
    archs = [model.space.sample_uniform(rng) for _ in range(4)]
    tokens = torch.randint(0, _V, (_T, _B), generator=torch.Generator().manual_seed(5))
    hiddens = [torch.randn(_B, _E, generator=torch.Generator().manual_seed(k)) for k in range(4)]
    with torch.set_grad_enabled(grad):
        states, lasts = model.forward_many(tokens, hiddens, archs)
        logits = model.decode(states)
        assert logits.shape == (4, _T, _B, _V)
        for m, arch in enumerate(archs):
            ref_logits, ref_last = model(tokens, hiddens[m], arch)
            torch.testing.assert_close(logits[m], ref_logits, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lasts[m], ref_last, rtol=1e-5, atol=1e-5)
    if grad:  # the autograd path: gradients reach the shared weights
        logits.sum().backward()
        assert model.w_h.grad is not None and model.w_x.grad is not None
    with pytest.raises(ValueError, match="hiddens"):
        model.forward_many(tokens, hiddens[:2], archs)
    with pytest.raises(ValueError, match="archs"):
        model.forward_many(tokens, [], [])


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16"])
def test_forward_many_lockstep_with_mask_and_clipping(bf16: bool) -> None:
    # Lockstep cells (no grad) under hidden dropout and norm clipping, with repeated and
    # shared inputs: each architecture's states equal its own forward with the same mask.
    model = _model(6, hidden_dropout=0.3, max_hidden_norm=2.0, bfloat16_matmul=bf16)
    model.train()
    rng = np.random.default_rng(7)
    archs = [model.space.sample_uniform(rng) for _ in range(5)]
    archs.append(archs[1])
    tokens = torch.randint(0, _V, (_T, _B), generator=torch.Generator().manual_seed(7))
    hiddens = [torch.randn(_B, _E, generator=torch.Generator().manual_seed(k)) for k in range(6)]
    with torch.no_grad():
        model.dropout_generator = torch.Generator().manual_seed(3)
        states, lasts = model.forward_many(tokens, hiddens, archs)
        for m, arch in enumerate(archs):
            model.dropout_generator = torch.Generator().manual_seed(3)  # the same mask
            logits, last = model(tokens, hiddens[m], arch)
            tol = 2e-2 if bf16 else 1e-5
            torch.testing.assert_close(model.decode(states[m]), logits, rtol=tol, atol=tol)
            torch.testing.assert_close(lasts[m], last, rtol=tol, atol=tol)
    assert float(states.norm(dim=-1).max()) <= 2.0 + 1e-4
