"""Relaxed supernets (issue #14): gradients, derivation, exact zeros, weight transfer, tasks."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd.gradcheck import GradcheckError
from torch.func import functional_call

from optuna_enas.oneshot import RelaxedSupernet
from optuna_enas.oneshot import build_relaxed
from optuna_enas.oneshot._relaxed_cnn import RelaxedMacroSupernet
from optuna_enas.oneshot._relaxed_cnn import RelaxedMicroSupernet
from optuna_enas.oneshot._relaxed_rnn import RelaxedRNNSupernet
from optuna_enas.spaces import MacroSpace
from optuna_enas.spaces import MicroSpace
from optuna_enas.spaces import RNNCellSpace
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.supernet import MacroSupernet
from optuna_enas.supernet import MicroSupernet
from optuna_enas.supernet import RNNSupernet
from optuna_enas.training._tasks import default_data
from optuna_enas.training._tasks import make_task


pytestmark = pytest.mark.usefixtures("one_torch_thread")

RELAXATIONS = ("darts", "dsonas")
VOCAB = 7


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rnn(relaxation: str, n_nodes: int = 3, seed: int = 0, **kw: Any) -> RelaxedRNNSupernet:
    kw = {"embed_size": 4, "hidden_size": 4, **kw}
    return RelaxedRNNSupernet(
        RNNCellSpace(n_nodes=n_nodes),
        relaxation=relaxation,  # type: ignore[arg-type]
        vocab_size=VOCAB,
        generator=_gen(seed),
        **kw,
    )


def _micro(relaxation: str, n_nodes: int = 2, seed: int = 0) -> RelaxedMicroSupernet:
    return RelaxedMicroSupernet(
        MicroSpace(n_nodes=n_nodes),
        relaxation=relaxation,  # type: ignore[arg-type]
        in_channels=1,
        n_classes=3,
        n_filters=2,
        n_layers=1,
        stem_multiplier=1,
        sep_stack=1,
        image_size=(4, 4),
        generator=_gen(seed),
    )


def _macro(relaxation: str, n_layers: int = 3, seed: int = 0) -> RelaxedMacroSupernet:
    return RelaxedMacroSupernet(
        MacroSpace(n_layers=n_layers),
        relaxation=relaxation,  # type: ignore[arg-type]
        in_channels=1,
        n_classes=3,
        n_filters=2,
        image_size=(4, 4),
        generator=_gen(seed),
    )


def _loss_fn(model: RelaxedSupernet) -> Any:
    """``f(**arch) -> scalar`` of a fixed batch through ``model`` with the given arch tensors."""
    g = _gen(123)
    if isinstance(model, RelaxedRNNSupernet):
        tokens = torch.randint(0, VOCAB, (3, 2), generator=g)
        hidden = torch.randn(2, model.hidden_size, generator=g, dtype=torch.float64)
        target = torch.randint(0, VOCAB, (3, 2), generator=g)

        def run(arch: dict[str, torch.Tensor]) -> torch.Tensor:
            logits, _ = functional_call(model, arch, (tokens, hidden))
            return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1))

        return run
    x = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])

    def run_cnn(arch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(model, arch, (x,)), y)

    return run_cnn


ALL_BUILDERS = [_rnn, _micro, _macro]


# -- gradients against finite differences ----------------------------------------------------
@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_arch_gradients_match_finite_differences(builder: Any, relaxation: str) -> None:
    model = builder(relaxation).double()
    # Move off the symmetric initialisation so that every entry matters differently.
    with torch.no_grad():
        for p in model.arch_parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=_gen(7), dtype=p.dtype))
    run = _loss_fn(model)
    names = [f"arch.{k}" for k, _ in model.named_arch_parameters()]
    values = tuple(p.detach().clone().requires_grad_(True) for p in model.arch_parameters())

    def f(*arch: torch.Tensor) -> torch.Tensor:
        return run(dict(zip(names, arch, strict=True)))

    assert torch.autograd.gradcheck(f, values, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_catches_a_wrong_gradient() -> None:
    """The harness above fails when the backward pass is wrong (it can fail)."""

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
            return a * a

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            return g  # should be 2 * a * g

    a = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(Wrong.apply, (a,), eps=1e-6, atol=1e-6, rtol=1e-4)


# -- parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_arch_and_weight_parameters_are_disjoint_and_complete(
    builder: Any, relaxation: str
) -> None:
    model = builder(relaxation)
    arch = {id(p) for p in model.arch_parameters()}
    weights = {id(p) for p in model.weight_parameters()}
    assert arch and weights and not arch & weights
    assert arch | weights == {id(p) for p in model.parameters()}
    assert model.relaxation == relaxation
    groups = model.sparse_groups()
    if relaxation == "darts":
        assert groups == []
    else:
        assert [id(p) for p, _ in groups] == [id(p) for p in model.arch_parameters()]
        for p, flops in groups:
            assert flops.shape == p.shape and bool((flops > 0).all())


# -- derivation -----------------------------------------------------------------------------
def _check_valid(space: SearchSpace, model: RelaxedSupernet) -> None:
    arch = model.derive()
    assert space.architecture(arch.to_params()) == arch
    assert space.from_fixed_arc(space.to_fixed_arc(arch)) == arch
    summary = model.arch_summary()
    assert 0.0 <= summary["entropy"] <= 1.0
    assert 0.0 <= summary["sparsity"] <= 1.0
    assert 0.0 <= summary["param_free_share"] <= 1.0
    tables = model.arch_tables()
    assert tables and all(isinstance(r, list) for t in tables.values() for r in t)


@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_random_arch_parameters_derive_valid_round_tripping_architectures(
    builder: Any, relaxation: str
) -> None:
    model = builder(relaxation, 4)
    for seed in range(5):
        with torch.no_grad():
            for p in model.arch_parameters():
                p.copy_(torch.randn(p.shape, generator=_gen(seed)))
                if relaxation == "dsonas":
                    p.mul_(torch.rand(p.shape, generator=_gen(seed + 50)) > 0.4)  # exact zeros
        _check_valid(model.space, model)
    with torch.no_grad():  # everything pruned: the documented fallbacks, still valid
        for p in model.arch_parameters():
            p.zero_()
    _check_valid(model.space, model)
    if relaxation == "dsonas":
        summary = model.arch_summary()
        assert summary["sparsity"] == 1.0
        assert summary["derive_fallbacks"] > 0


def test_rnn_darts_derive_picks_the_planted_input_and_op_never_zero() -> None:
    model = _rnn("darts", n_nodes=5)
    space = model.rnn_space
    rng = np.random.default_rng(0)
    acts = space.activations
    planted: dict[str, object] = {"node0_act": "sigmoid"}
    with torch.no_grad():
        model.arch["node0"].zero_()
        model.arch["node0"][0, acts.index("sigmoid")] = 2.0
        for i in range(1, space.n_nodes):
            a = model.arch[f"node{i}"]
            a.copy_(torch.randn(a.shape, generator=_gen(i)) * 0.1)
            a[:, -1] = 9.0  # the zero op dominates every edge but is never derived
            j = int(rng.integers(i))
            o = int(rng.integers(len(acts)))
            a[j, o] = 3.0
            planted[f"node{i}_in"] = j
            planted[f"node{i}_act"] = acts[o]
    assert model.derive() == space.architecture(planted)


def test_rnn_dsonas_derive_picks_the_planted_lambdas_and_marks_fallbacks() -> None:
    model = _rnn("dsonas", n_nodes=4)
    space = model.rnn_space
    with torch.no_grad():
        for p in model.arch_parameters():
            p.zero_()
        model.arch["op0"][1] = -0.5  # |lambda| counts: relu
        model.arch["conn1"][0] = 0.2
        model.arch["op1"][3] = 0.1
        model.arch["conn2"][:] = torch.tensor([0.1, -0.7])
        model.arch["op2"][:] = torch.tensor([0.3, 0.0, 0.2, 0.1])
        # node 3: every factor 0 -> previous node, first activation (two fallbacks)
    expected = space.architecture(
        {
            "node0_act": "relu",
            "node1_in": 0,
            "node1_act": "sigmoid",
            "node2_in": 1,
            "node2_act": "tanh",
            "node3_in": 2,
            "node3_act": "tanh",
        }
    )
    assert model.derive() == expected
    summary = model.arch_summary()
    assert summary["derive_fallbacks"] == 2.0
    n = sum(p.numel() for p in model.arch_parameters())
    assert summary["sparsity"] == pytest.approx((n - 8) / n)  # 8 non-zero factors set above


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_micro_derive_picks_the_two_planted_inputs_with_their_ops(relaxation: str) -> None:
    model = _micro(relaxation, n_nodes=4)
    space = model.micro_space
    rng = np.random.default_rng(1)
    planted: dict[str, object] = {}
    with torch.no_grad():
        for p in model.arch_parameters():
            p.copy_(torch.rand(p.shape, generator=_gen(3)) * 0.1)
        for cell in ("normal", "reduce"):
            if relaxation == "darts":
                model.arch[cell][:, -1] = 9.0  # zero op strongest everywhere: ignored
            else:
                model.arch[f"{cell}_op"].fill_(1.0)  # strengths: |lambda_in * lambda_op|
            for b in range(space.n_nodes):
                inputs = rng.choice(b + 2, size=2, replace=False)
                for k, (j, strength) in enumerate(zip(inputs, (5.0, 4.0), strict=True), start=1):
                    o = int(rng.integers(len(space.ops)))
                    e = model.edge_index(b, int(j))
                    if relaxation == "darts":
                        model.arch[cell][e, o] = strength
                    else:
                        model.arch[f"{cell}_in"][e, o] = -strength  # the sign does not matter
                    planted[f"{cell}_b{b + 2}_in{k}"] = int(j)
                    planted[f"{cell}_b{b + 2}_op{k}"] = space.ops[o]
    assert model.derive() == space.architecture(planted)


def test_micro_dsonas_derive_skips_pruned_inputs_and_falls_back() -> None:
    model = _micro("dsonas", n_nodes=2)
    with torch.no_grad():
        for p in model.arch_parameters():
            p.zero_()
        # block 0 (b2): only input 1 survives (with op maxpool); block 1 (b3): nothing.
        model.arch["normal_in"][model.edge_index(0, 1), 3] = 1.0
        model.arch["normal_op"][0, 3] = 0.5
        model.arch["normal_in"][model.edge_index(0, 0), 0] = 9.0  # its op factor is 0
    arch = model.derive()
    assert arch["normal_b2_in1"] == 1 and arch["normal_b2_op1"] == "maxpool"
    assert (arch["normal_b2_in2"], arch["normal_b2_op2"]) == (1, "sep3x3")  # fallback
    assert (arch["normal_b3_in1"], arch["normal_b3_in2"]) == (2, 2)  # fallbacks
    assert model.arch_summary()["derive_fallbacks"] == 1 + 2 + 2 * 2  # + the empty reduce cell


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_macro_derive_picks_the_planted_ops_and_skips(relaxation: str) -> None:
    model = _macro(relaxation, n_layers=4)
    space = model.macro_space
    rng = np.random.default_rng(2)
    planted: dict[str, object] = {}
    with torch.no_grad():
        ops = model.arch["ops"]
        ops.copy_(torch.rand(ops.shape, generator=_gen(4)) * 0.1)
        for i in range(space.n_layers):
            o = int(rng.integers(len(space.ops)))
            ops[i, o] = 2.0
            planted[f"layer{i}_op"] = space.ops[o]
            for j in range(i):
                on = int(rng.integers(2))
                if relaxation == "darts":
                    value = 0.01 if on else -0.01  # gate just above / below 1/2
                else:
                    value = -1e-30 if on else 0.0  # any non-zero lambda keeps the skip
                model.arch["skips"][model.skip_index(i, j)] = value
                planted[f"layer{i}_skip{j}"] = on
    assert model.derive() == space.architecture(planted)


# -- exact zeros ----------------------------------------------------------------------------
def _perturb(params: list[nn.Parameter]) -> None:
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=_gen(99), dtype=p.dtype))


def test_rnn_dsonas_zero_lambda_removes_the_connection_exactly() -> None:
    model = _rnn("dsonas", n_nodes=4).double()
    run = _loss_fn(model)
    with torch.no_grad():
        model.arch["conn3"][1] = 0.0
    before = run({})
    _perturb([model.edge_weight(3, 1)])  # the pruned edge's matrix no longer matters ...
    assert torch.equal(run({}), before)
    _perturb([model.edge_weight(3, 0)])  # ... while a live edge's does
    assert not torch.equal(run({}), before)
    loss = run({})
    loss.backward()
    grad = model.edge_weight(3, 1).grad
    assert grad is not None and bool((grad == 0).all())
    lam_grad = model.arch["conn3"].grad
    assert lam_grad is not None and float(lam_grad[1]) != 0.0  # a zero lambda keeps its gradient


def test_micro_dsonas_zero_lambda_removes_the_op_or_the_input_exactly() -> None:
    model = _micro("dsonas", n_nodes=2).double()
    run = _loss_fn(model)
    o = model.micro_space.ops.index("sep5x5")
    with torch.no_grad():
        model.arch["normal_op"][1, o] = 0.0  # block 1's sep5x5 output
        model.arch["normal_in"][model.edge_index(1, 2), 0] = 0.0  # block 0 -> its sep3x3
    before = run({})
    position = next(p for p in range(len(model.cells)) if p not in model.reduction_cells)
    cell = model.cells[position]
    _perturb(list(cell.block_ops[1].ops["sep5x5"].parameters()))
    assert torch.equal(run({}), before)
    _perturb(list(cell.block_ops[0].ops["sep5x5"].parameters()))
    assert not torch.equal(run({}), before)
    seen: list[torch.Tensor] = []
    sep3 = cell.block_ops[1].ops["sep3x3"]
    handle = sep3.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    states: list[torch.Tensor] = []
    hooks = [
        cell.calibrate0.register_forward_hook(lambda _m, _a, out: states.append(out)),
        cell.calibrate1.register_forward_hook(lambda _m, _a, out: states.append(out)),
    ]
    run({})
    handle.remove()
    for h in hooks:
        h.remove()
    lam = model.arch["normal_in"].detach()
    # block 1's sep3x3 reads states 0 and 1 only: state 2's factor is exactly 0.
    e0, e1 = model.edge_index(1, 0), model.edge_index(1, 1)
    assert torch.equal(seen[0], lam[e0, 0] * states[0] + lam[e1, 0] * states[1])


def test_macro_dsonas_zero_lambda_removes_the_op_exactly() -> None:
    model = _macro("dsonas", n_layers=3).double()
    run = _loss_fn(model)
    with torch.no_grad():
        model.arch["ops"][1, 0] = 0.0
    before = run({})
    _perturb(list(model.layers[1]["conv3x3"].parameters()))
    assert torch.equal(run({}), before)
    _perturb(list(model.layers[1]["conv5x5"].parameters()))
    assert not torch.equal(run({}), before)


# -- weight transfer ------------------------------------------------------------------------
def _discrete(model: RelaxedSupernet) -> nn.Module:
    if isinstance(model, RelaxedRNNSupernet):
        return RNNSupernet(
            model.rnn_space, vocab_size=VOCAB, embed_size=4, hidden_size=4, generator=_gen(5)
        )
    if isinstance(model, RelaxedMicroSupernet):
        return MicroSupernet(
            model.micro_space,
            in_channels=1,
            n_classes=3,
            n_filters=2,
            n_layers=1,
            stem_multiplier=1,
            sep_stack=1,
            generator=_gen(5),
        )
    assert isinstance(model, RelaxedMacroSupernet)
    return MacroSupernet(
        model.macro_space, in_channels=1, n_classes=3, n_filters=2, generator=_gen(5)
    )


@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_discrete_supernet_loads_every_weight_of_the_relaxed_one(
    builder: Any, relaxation: str
) -> None:
    model = builder(relaxation)
    _perturb(model.weight_parameters())  # trained weights differ from any initialisation
    sd = model.discrete_state_dict()
    discrete = _discrete(model)
    result = discrete.load_state_dict(sd, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    dsd = discrete.state_dict()
    assert set(dsd) == set(sd)
    for k, v in sd.items():
        assert torch.equal(dsd[k], v), k
    assert not any(k.startswith("arch.") for k in sd)
    if isinstance(model, RelaxedMicroSupernet):  # both input slots get the edge's weights
        cell = model.cells[1]
        for j in range(3):  # dsonas: the block's op, for every input
            mixed = cell.edges[1][j] if relaxation == "darts" else cell.block_ops[1]
            edge = mixed.ops["sep3x3"].stack[0].depthwise
            for slot in (0, 1):
                key = f"model.cells.1.branches.1.{slot}.{j}.candidates.sep3x3.stack.0.depthwise"
                assert torch.equal(dsd[key], edge)


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_rnn_with_one_hot_arch_parameters_is_the_discrete_cell(relaxation: str) -> None:
    """Every node reads node 0: the loose ends are nodes 1..N-1, the relaxed output's mean.

    darts: logits of +-1e4 make the softmax exactly one-hot, every unchosen edge on its zero
    op; the node's division by the non-zero mass then leaves the chosen highway node alone.
    """
    model = _rnn(relaxation, n_nodes=4).double()
    acts = model.rnn_space.activations
    chosen = ["relu", "tanh", "identity", "sigmoid"]
    with torch.no_grad():
        if relaxation == "darts":
            for i, a in enumerate(chosen):
                alpha = model.arch[f"node{i}"]
                alpha.fill_(-1e4)
                if i > 0:
                    alpha[:, -1] = 1e4  # the zero op on every edge ...
                    alpha[0, -1] = -1e4  # ... but the one from node 0
                alpha[0, acts.index(a)] = 1e4
        else:
            for p in model.arch_parameters():
                p.zero_()
            for i, a in enumerate(chosen):
                model.arch[f"op{i}"][acts.index(a)] = 1.0
                if i > 0:
                    model.arch[f"conn{i}"][0] = 1.0
    arch = model.derive()
    assert [n.input for n in model.rnn_space.cell(arch)] == [None, 0, 0, 0]
    assert [n.activation for n in model.rnn_space.cell(arch)] == chosen
    discrete = _discrete(model).double()
    discrete.load_state_dict(model.discrete_state_dict(), strict=False)
    tokens = torch.randint(0, VOCAB, (5, 3), generator=_gen(1))
    h0 = torch.randn(3, 4, generator=_gen(2), dtype=torch.float64)
    logits, h = model(tokens, h0)
    d_logits, d_h = discrete(tokens, h0, arch)
    torch.testing.assert_close(logits, d_logits)
    torch.testing.assert_close(h, d_h)


def test_macro_dsonas_with_one_hot_lambdas_is_the_discrete_network() -> None:
    model = _macro("dsonas", n_layers=4).double()
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for p in model.arch_parameters():
            p.zero_()
        for i in range(4):
            model.arch["ops"][i, int(rng.integers(6))] = 1.0
            for j in range(i):
                model.arch["skips"][model.skip_index(i, j)] = float(rng.integers(2))
    arch = model.derive()
    discrete = _discrete(model).double()
    discrete.load_state_dict(model.discrete_state_dict(), strict=False)
    x = torch.randn(4, 1, 4, 4, generator=_gen(1), dtype=torch.float64)
    torch.testing.assert_close(model(x), discrete(x, arch))


# -- tasks and build_relaxed -----------------------------------------------------------------
@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("space_name", ["rnn", "micro", "macro"])
def test_tasks_train_and_evaluate_on_the_embedded_data(space_name: str, relaxation: str) -> None:
    space: SearchSpace = {
        "rnn": RNNCellSpace(n_nodes=3),
        "micro": MicroSpace(n_nodes=2),
        "macro": MacroSpace(n_layers=3),
    }[space_name]
    kwargs: dict[str, Any] = (
        {"embed_size": 8, "hidden_size": 8}
        if space_name == "rnn"
        else {"n_filters": 4, **({"n_layers": 1} if space_name == "micro" else {})}
    )
    data = default_data(space, None)
    model = build_relaxed(
        space,
        data,
        relaxation=relaxation,
        generator=_gen(0),
        **kwargs,  # type: ignore[arg-type]
    )
    task = make_task(data, batch_size=8, bptt=5, device=torch.device("cpu"))
    rng = np.random.default_rng(0)
    loss = task.train_loss(model, None, rng)  # type: ignore[arg-type]
    assert loss.ndim == 0 and bool(torch.isfinite(loss))
    loss.backward()
    for p in model.arch_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    model.eval()
    with torch.no_grad():
        score = task.evaluate(model, None, "valid", False, 2)  # type: ignore[arg-type]
    if space_name == "rnn":
        assert np.isfinite(score) and score > 1.0  # perplexity
    else:
        assert 0.0 <= score <= 1.0  # accuracy
    discrete_kwargs = dict(kwargs)
    from optuna_enas.training._trainer import build_supernet

    discrete = build_supernet(space, data, discrete_kwargs, _gen(1))
    result = discrete.load_state_dict(model.discrete_state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []


def test_build_relaxed_and_forward_reject_bad_arguments() -> None:
    space = RNNCellSpace(n_nodes=2)
    data = default_data(space, None)
    with pytest.raises(ValueError, match="relaxation must be one of"):
        build_relaxed(space, data, relaxation="enas", generator=_gen())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vocab_size"):
        build_relaxed(space, data, relaxation="darts", generator=_gen(), vocab_size=3)
    with pytest.raises(ValueError, match="space must be"):
        RelaxedMicroSupernet(space, relaxation="darts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size"):
        RelaxedMacroSupernet(MacroSpace(n_layers=2), relaxation="darts", image_size=(0, 4))
    model = _rnn("darts", n_nodes=2)
    arch = model.derive()
    with pytest.raises(ValueError, match="arch must be None"):
        model(torch.zeros(2, 1, dtype=torch.int64), model.init_hidden(1), arch)


def test_same_seed_same_relaxed_supernet() -> None:
    for builder, relaxation in itertools.product(ALL_BUILDERS, RELAXATIONS):
        a, b = builder(relaxation, seed=4), builder(relaxation, seed=4)
        for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(pa, pb)


def test_sparse_group_flops_follow_the_op_costs() -> None:
    rnn = _rnn("dsonas", n_nodes=3)
    groups = dict((id(p), f) for p, f in rnn.sparse_groups())
    h = rnn.hidden_size
    assert bool((groups[id(rnn.arch["conn2"])] == 4.0 * h * h).all())  # one h_j @ W_ij
    micro = _micro("dsonas", n_nodes=2)
    ops = micro.micro_space.ops
    for lam_in, lam_op in zip(*[iter(micro.sparse_groups())] * 2, strict=True):
        in_flops, op_flops = lam_in[1], lam_op[1]
        row = dict(zip(ops, op_flops[0].tolist(), strict=True))
        assert row["sep5x5"] > row["sep3x3"] > row["maxpool"] == row["avgpool"] > row["identity"]
        # an input factor gates one scaling and addition (2 C H W per position of the cell)
        assert in_flops.shape == lam_in[0].shape and bool((in_flops == in_flops[0, 0]).all())
        assert lam_op[1].shape == lam_op[0].shape == (2, len(ops))
    macro = _macro("dsonas", n_layers=3)
    (ops_p, ops_f), (skips_p, skips_f) = macro.sparse_groups()
    row = dict(zip(macro.macro_space.ops, ops_f[0].tolist(), strict=True))
    assert row["conv5x5"] > row["conv3x3"] > row["sep3x3"] and row["conv5x5"] > row["sep5x5"]
    assert row["sep5x5"] > row["sep3x3"] and row["conv3x3"] > row["maxpool"] == row["avgpool"]
    assert ops_f[2, 0] < ops_f[1, 0] < ops_f[0, 0]  # after each pooling layer, fewer pixels
    torch.testing.assert_close(skips_f[0], torch.tensor(2.0 * 16 / 4))  # C * H * W, layer 1


@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_entropy_is_one_at_the_start_and_zero_when_decided(builder: Any) -> None:
    model = builder("darts")
    assert model.arch_summary()["entropy"] == pytest.approx(1.0, abs=1e-3)  # 1e-3 * randn
    with torch.no_grad():
        for p in model.arch_parameters():
            p.fill_(-50.0)
            p.view(-1, p.shape[-1])[:, 0] = 50.0 if p.dim() > 1 else -50.0
    assert model.arch_summary()["entropy"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("relaxation", RELAXATIONS)
@pytest.mark.parametrize("builder", ALL_BUILDERS, ids=["rnn", "micro", "macro"])
def test_projected_encodes_the_architecture_and_restores(builder: Any, relaxation: str) -> None:
    model = builder(relaxation, 4)
    with torch.no_grad():
        for p in model.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=_gen(11)))
    before = [p.detach().clone() for p in model.arch_parameters()]
    derived = model.derive()

    def same(a: Any, b: Any) -> bool:
        if not isinstance(model, RelaxedMicroSupernet):
            return bool(a == b)
        # Projected, a block's two inputs tie: derive() may list them in the other order.
        ca, cb = model.micro_space.cells(a), model.micro_space.cells(b)
        return all(
            sorted([(n.in1, n.op1), (n.in2, n.op2)]) == sorted([(m.in1, m.op1), (m.in2, m.op2)])
            for x, y in ((ca.normal, cb.normal), (ca.reduction, cb.reduction))
            for n, m in zip(x, y, strict=True)
        )

    with model.projected() as arch:
        assert arch == derived and same(model.derive(), derived)
        if relaxation == "dsonas":
            assert model.arch_summary()["sparsity"] > 0.5
    other = model.space.sample_uniform(np.random.default_rng(5))
    if isinstance(model, RelaxedMicroSupernet):  # two distinct inputs per block: derivable
        params = other.to_params()
        for key in params:
            if key.endswith("_in2"):
                params[key] = 0 if params[key.replace("_in2", "_in1")] != 0 else 1
        other = model.space.architecture(params)
    with model.projected(other) as arch:
        assert arch == other and same(model.derive(), other)
    for p, q in zip(model.arch_parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_projected_darts_macro_and_rnn_compute_the_discrete_network() -> None:
    macro = _macro("darts", n_layers=4).double()
    discrete = _discrete(macro).double()
    discrete.load_state_dict(macro.discrete_state_dict(), strict=False)
    x = torch.randn(4, 1, 4, 4, generator=_gen(1), dtype=torch.float64)
    with macro.projected() as arch:
        torch.testing.assert_close(macro(x), discrete(x, arch))
    rnn = _rnn("darts", n_nodes=4).double()
    space = rnn.rnn_space
    star = space.architecture(  # every node reads node 0: the loose ends are nodes 1..3
        {"node0_act": "relu", **{f"node{i}_in": 0 for i in range(1, 4)}}
        | {
            f"node{i}_act": a
            for i, a in zip(range(1, 4), ("tanh", "identity", "sigmoid"), strict=True)
        }
    )
    d_rnn = _discrete(rnn).double()
    d_rnn.load_state_dict(rnn.discrete_state_dict(), strict=False)
    tokens = torch.randint(0, VOCAB, (5, 3), generator=_gen(1))
    h0 = torch.randn(3, 4, generator=_gen(2), dtype=torch.float64)
    with rnn.projected(star):
        torch.testing.assert_close(rnn(tokens, h0)[0], d_rnn(tokens, h0, star)[0])


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_projected_rnn_scores_exactly_the_derived_non_star_cell(relaxation: str) -> None:
    """Loose ends {3, 4} of 5 nodes: projected, the relaxed cell outputs their mean (the
    discrete cell's output), not the mean of nodes 1..4."""
    rnn = _rnn(relaxation, n_nodes=5).double()
    space = rnn.rnn_space
    chain = space.architecture(
        {"node0_act": "tanh", "node1_in": 0, "node2_in": 1, "node3_in": 1, "node4_in": 2}
        | {f"node{i}_act": a for i, a in enumerate(("relu", "sigmoid", "identity", "tanh"), 1)}
    )
    assert space.loose_ends(chain) == [3, 4]
    with torch.no_grad():
        for p in rnn.arch_parameters():  # dsonas keeps the chosen factors: make them 1
            p.copy_(torch.randn(p.shape, generator=_gen(3)) if relaxation == "darts" else 1.0)
    d_rnn = _discrete(rnn).double()
    d_rnn.load_state_dict(rnn.discrete_state_dict(), strict=False)
    tokens = torch.randint(0, VOCAB, (5, 3), generator=_gen(1))
    h0 = torch.randn(3, 4, generator=_gen(2), dtype=torch.float64)
    d_logits, d_h = d_rnn(tokens, h0, chain)
    with rnn.projected(chain):
        logits, h = rnn(tokens, h0)
    torch.testing.assert_close(logits, d_logits)
    torch.testing.assert_close(h, d_h)
    # Outside the block the relaxed output is back to the mean of every node.
    assert rnn._output_nodes is None
    assert not torch.allclose(rnn(tokens, h0)[0], d_logits)
