"""The relaxed CNN supernets against their sources (issue #22, "One-shot fidelity").

* the projected micro score computes exactly the derived architecture's discrete cell (loose
  ends, a block reading one input twice), for DARTS and DSO-NAS;
* DARTS's search cell has no affine batch norm (quark0/darts ``cnn/model_search.py``);
* DSO-NAS's micro cell has one ``lambda`` per (op, input) before the op and one per op output,
  initialised to 1 (XinbangZhang/DSO-NAS ``Cifar/symbol/dsonas_search_full.py``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_enas.oneshot._relaxed_cnn import RelaxedMacroSupernet
from optuna_enas.oneshot._relaxed_cnn import RelaxedMicroSupernet
from optuna_enas.spaces import MacroSpace
from optuna_enas.spaces import MicroSpace
from optuna_enas.supernet import MicroSupernet


pytestmark = pytest.mark.usefixtures("one_torch_thread")

RELAXATIONS = ("darts", "dsonas")
KW = {"in_channels": 1, "n_classes": 3, "n_filters": 2, "n_layers": 1, "stem_multiplier": 1}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _micro(relaxation: str, n_nodes: int = 3, seed: int = 0) -> RelaxedMicroSupernet:
    return RelaxedMicroSupernet(
        MicroSpace(n_nodes=n_nodes),
        relaxation=relaxation,  # type: ignore[arg-type]
        sep_stack=1,
        image_size=(4, 4),
        generator=_gen(seed),
        **KW,
    )


def _cell(nodes: list[tuple[int, str, int, str]], kind: str) -> dict[str, object]:
    params: dict[str, object] = {}
    for b, (in1, op1, in2, op2) in enumerate(nodes, start=2):
        params |= {f"{kind}_b{b}_in1": in1, f"{kind}_b{b}_op1": op1}
        params |= {f"{kind}_b{b}_in2": in2, f"{kind}_b{b}_op2": op2}
    return params


# normal: blocks read states 0, 1, 2 -> loose ends {3, 4}; block 3 reads state 1 twice with
# the same op. reduce: loose ends {4}; block 3 reads state 2 twice with two ops.
NORMAL = [(0, "sep3x3", 1, "maxpool"), (1, "avgpool", 1, "avgpool"), (2, "identity", 0, "sep5x5")]
REDUCE = [(1, "identity", 0, "avgpool"), (2, "sep5x5", 2, "maxpool"), (0, "sep3x3", 3, "sep3x3")]


@pytest.mark.parametrize("relaxation", RELAXATIONS)
def test_projected_micro_scores_exactly_the_derived_discrete_cell(relaxation: str) -> None:
    model = _micro(relaxation).double()
    space = model.micro_space
    arch = space.architecture(_cell(NORMAL, "normal") | _cell(REDUCE, "reduce"))
    with torch.no_grad():
        for p in model.weight_parameters():  # trained weights, not the initialisation
            p.add_(0.5 * torch.randn(p.shape, generator=_gen(9), dtype=p.dtype))
        for p in model.arch_parameters():  # dsonas keeps the chosen factors: make them 1
            p.copy_(torch.randn(p.shape, generator=_gen(3)) if relaxation == "darts" else 1.0)
    discrete = MicroSupernet(space, sep_stack=1, generator=_gen(5), **KW).double()
    result = discrete.load_state_dict(model.discrete_state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(4, 1, 4, 4, generator=_gen(1), dtype=torch.float64)
    expected = discrete(x, arch)
    with model.projected(arch):
        torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)
    # Outside the block every state is an output again (and the mixtures are back).
    assert model._picks is None
    assert not torch.allclose(model(x), expected)


def test_projected_dsonas_micro_keeps_the_factor_scale() -> None:
    """Kept factors != 1: each pick is ``lambda_op[b, o] * op(lambda_in[e, o] * input)``."""
    model = _micro("dsonas", n_nodes=1).double()
    space = model.micro_space
    arch = space.architecture(
        _cell([(0, "identity", 1, "avgpool")], "normal")
        | _cell([(1, "identity", 1, "maxpool")], "reduce")
    )
    with torch.no_grad():
        for cell in ("normal", "reduce"):
            model.arch[f"{cell}_in"].copy_(torch.tensor([[2.0] * 5, [3.0] * 5]))
            model.arch[f"{cell}_op"].copy_(torch.tensor([[0.5] * 5]))
    seen: list[torch.Tensor] = []
    cell = model.cells[2]  # the normal cell of n_layers=1
    hooks = [
        cell.calibrate0.register_forward_hook(lambda _m, _a, y: seen.append(y)),
        cell.calibrate1.register_forward_hook(lambda _m, _a, y: seen.append(y)),
        cell.register_forward_hook(lambda _m, _a, y: seen.append(y)),
    ]
    x = torch.randn(4, 1, 4, 4, generator=_gen(1), dtype=torch.float64)
    with model.projected(arch):
        model(x)
    for h in hooks:
        h.remove()
    s0, s1, out = seen
    avg = cell.block_ops[0].ops["avgpool"]
    node = 0.5 * (2.0 * s0) + 0.5 * avg(3.0 * s1)  # identity(2 s0), avgpool(3 s1), both * 0.5
    c = cell.channels
    hand = cell.out_bn(nn.functional.conv2d(nn.functional.relu(node), cell.out_weight[:, 2 * c :]))
    torch.testing.assert_close(out, hand)  # loose end: the block only


def test_darts_search_cell_has_no_affine_batch_norm_as_official() -> None:
    # quark0/darts cnn/model_search.py: MixedOp builds OPS[primitive](C, stride, False) (l.16),
    # preprocess0/1 ReLUConvBN / FactorizedReduce(..., affine=False) (l.32-35); the stem's
    # nn.BatchNorm2d(C_curr) (l.75) is affine.
    darts, dsonas = _micro("darts"), _micro("dsonas")
    affine = [n for n, m in darts.named_modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
    assert affine == ["stem_bn"]
    plain = [n for n, m in darts.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert any(".edges." in n for n in plain) and any(".out_bn" in n for n in plain)
    assert any(n.startswith("reduce_inputs.") for n in plain)
    bn_params = [
        f"{n}.{k}"
        for n, m in darts.named_modules()
        if isinstance(m, nn.BatchNorm2d)
        for k, _ in m.named_parameters(recurse=False)
    ]
    assert bn_params == ["stem_bn.weight", "stem_bn.bias"]
    n_bn = sum(
        p.numel() for m in darts.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()
    )
    assert n_bn == 2 * 2  # the stem's 2 channels only
    # DSO-NAS keeps affine batch norms: Cifar/symbol/operation.py l.6 fix_gamma is False in the
    # search (gamma learned) and MXNet's BatchNorm always learns beta.
    assert all(m.affine for m in dsonas.modules() if isinstance(m, nn.BatchNorm2d))
    # The discrete supernet gets the affine identity (weight 1, bias 0) for every such norm.
    sd = darts.discrete_state_dict()
    assert torch.equal(sd["model.cells.2.out_bn.weight"], torch.ones(8))
    assert torch.equal(sd["model.cells.2.out_bn.bias"], torch.zeros(8))


def test_dsonas_micro_lambdas_are_per_op_input_and_per_op_output_init_one() -> None:
    model = _micro("dsonas", n_nodes=2).double()
    n_ops, n_edges = len(model.micro_space.ops), 2 + 3
    shapes = {k: tuple(p.shape) for k, p in model.named_arch_parameters()}
    assert shapes == {
        "normal_in": (n_edges, n_ops),
        "normal_op": (2, n_ops),
        "reduce_in": (n_edges, n_ops),
        "reduce_op": (2, n_ops),
    }
    assert all(bool((p == 1.0).all()) for p in model.arch_parameters())  # init_param: One()
    with torch.no_grad():
        for p in model.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=_gen(4)))
    seen: list[torch.Tensor] = []
    cell = model.cells[2]
    hooks = [
        cell.calibrate0.register_forward_hook(lambda _m, _a, y: seen.append(y)),
        cell.calibrate1.register_forward_hook(lambda _m, _a, y: seen.append(y)),
        cell.register_forward_hook(lambda _m, _a, y: seen.append(y)),
    ]
    model(torch.randn(4, 1, 4, 4, generator=_gen(1), dtype=torch.float64))
    for h in hooks:
        h.remove()
    s0, s1, out = seen
    lam_in, lam_op = model.arch["normal_in"].detach(), model.arch["normal_op"].detach()
    states = [s0, s1]
    e = 0
    for b in range(2):  # node b = sum_o mu[b, o] * op_bo(sum_j lambda[e(b, j), o] * state_j)
        node = torch.zeros_like(s0)
        for o, op in enumerate(cell.block_ops[b].ops.values()):
            inp = sum(lam_in[e + j, o] * states[j] for j in range(b + 2))
            node = node + lam_op[b, o] * op(inp)
        e += b + 2
        states.append(node)
    relu = nn.functional.relu(torch.cat(states, dim=1))
    hand = cell.out_bn(nn.functional.conv2d(relu, cell.out_weight))
    torch.testing.assert_close(out, hand)
    macro = RelaxedMacroSupernet(
        MacroSpace(n_layers=3), relaxation="dsonas", in_channels=1, n_classes=3, n_filters=2
    )
    assert all(bool((p == 1.0).all()) for p in macro.arch_parameters())
