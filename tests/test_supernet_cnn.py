from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import cast

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from optuna.trial import FixedTrial
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_enas import Architecture
from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import objective_over
from optuna_enas.data import load_digits_dataset
from optuna_enas.nn import InputChoice
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Supernet
from optuna_enas.spaces._enas import MACRO_OPS
from optuna_enas.spaces._enas import MICRO_OPS
from optuna_enas.supernet import MacroSupernet
from optuna_enas.supernet import MicroSupernet
from optuna_enas.supernet._ops import FactorizedReduce
from optuna_enas.supernet._ops import MacroConvBranch
from optuna_enas.supernet._ops import MacroPoolBranch
from optuna_enas.supernet._ops import SepConvBN
from optuna_enas.supernet._ops import StackedSepConv
from optuna_enas.supernet._ops import make_macro_op
from optuna_enas.supernet._ops import make_micro_op
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._evaluator import SupernetEvaluator


_Factory = Callable[..., "MacroSupernet | MicroSupernet"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _macro(seed: int = 0, **kwargs: object) -> MacroSupernet:
    return MacroSupernet(
        MacroSpace(n_layers=4),
        n_filters=4,
        generator=_gen(seed),
        **kwargs,  # type: ignore[arg-type]
    )


def _micro(seed: int = 0, **kwargs: object) -> MicroSupernet:
    return MicroSupernet(
        MicroSpace(n_nodes=2),
        n_filters=4,
        n_layers=1,
        generator=_gen(seed),
        **kwargs,  # type: ignore[arg-type]
    )


def _net(model: MacroSupernet | MicroSupernet) -> Any:
    """The wrapped network (``Supernet.model``), whose submodules the tests inspect."""
    return model.model


def _macro_arch(space: MacroSpace, ops: list[str], skips: set[tuple[int, int]]) -> Architecture:
    params: dict[str, object] = {}
    for i, op in enumerate(ops):
        params[f"layer{i}_op"] = op
        for j in range(i):
            params[f"layer{i}_skip{j}"] = int((i, j) in skips)
    return space.architecture(params)


def _micro_arch(space: MicroSpace, normal: list[tuple[int, str, int, str]]) -> Architecture:
    params: dict[str, object] = {}
    for cell in ("normal", "reduce"):
        for b, (in1, op1, in2, op2) in enumerate(normal, start=2):
            params.update(
                {
                    f"{cell}_b{b}_in1": in1,
                    f"{cell}_b{b}_op1": op1,
                    f"{cell}_b{b}_in2": in2,
                    f"{cell}_b{b}_op2": op2,
                }
            )
    return space.architecture(params)


@pytest.mark.parametrize(
    ("space", "name"),
    [("macro", n) for n in MACRO_OPS] + [("micro", n) for n in MICRO_OPS],
    ids=[f"macro-{n}" for n in MACRO_OPS] + [f"micro-{n}" for n in MICRO_OPS],
)
def test_ops_keep_shape(space: str, name: str) -> None:
    make = make_macro_op if space == "macro" else make_micro_op
    op = make(name, 4, generator=_gen())
    x = torch.randn(2, 4, 5, 5)
    assert op(x).shape == x.shape


def test_ops_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="name"):
        make_macro_op("conv7x7", 4)
    with pytest.raises(ValueError, match="name"):
        make_micro_op("conv3x3", 4)  # a macro op only
    with pytest.raises(ValueError, match="channels"):
        make_macro_op("conv3x3", 0)
    with pytest.raises(ValueError, match="sep_stack"):
        make_micro_op("sep3x3", 4, sep_stack=0)
    with pytest.raises(ValueError, match="mode"):
        MacroPoolBranch(4, "min")
    with pytest.raises(ValueError, match="out_channels"):
        FactorizedReduce(4, 3)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("c", [4, 6])
def test_op_parameter_counts_follow_official_enas(c: int) -> None:
    bn = 2 * c  # affine scale and offset
    # micro_child.py _enas_conv, stack_conv=2: each stack a depthwise KxK, pointwise 1x1, BN.
    for k, name in ((3, "sep3x3"), (5, "sep5x5")):
        assert _n_params(make_micro_op(name, c)) == 2 * (k * k * c + c * c + bn)
        assert _n_params(make_micro_op(name, c, sep_stack=1)) == k * k * c + c * c + bn
    for name in ("avgpool", "maxpool", "identity"):
        assert _n_params(make_micro_op(name, c)) == 0
    # general_child.py _conv_branch / _pool_branch: a 1x1 conv-BN first, then the KxK conv-BN.
    inp = c * c + bn
    assert _n_params(make_macro_op("conv3x3", c)) == inp + 9 * c * c + bn
    assert _n_params(make_macro_op("conv5x5", c)) == inp + 25 * c * c + bn
    assert _n_params(make_macro_op("sep3x3", c)) == inp + 9 * c + c * c + bn
    assert _n_params(make_macro_op("sep5x5", c)) == inp + 25 * c + c * c + bn
    assert _n_params(make_macro_op("avgpool", c)) == inp
    assert _n_params(make_macro_op("maxpool", c)) == inp


def _bn(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    bn = cast(nn.BatchNorm2d, module)
    return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)


def test_micro_separable_op_is_two_relu_sepconv_bn() -> None:
    op = cast(StackedSepConv, make_micro_op("sep5x5", 4, generator=_gen()))
    x = torch.randn(3, 4, 6, 6, generator=_gen(1))
    expected = x
    for sep in cast(list[SepConvBN], list(op.stack)):
        h = F.conv2d(F.relu(expected), sep.depthwise, padding=2, groups=4)
        expected = _bn(F.conv2d(h, sep.pointwise), sep.bn)
    torch.testing.assert_close(op(x), expected)
    assert len(op.stack) == 2
    # One separable conv is not the op.
    first = cast(SepConvBN, op.stack[0])
    assert not torch.allclose(op(x), first(x))


@pytest.mark.parametrize("name", ["conv3x3", "sep5x5"])
def test_macro_conv_branch_is_official(name: str) -> None:
    op = cast(MacroConvBranch, make_macro_op(name, 4, generator=_gen()))
    x = torch.randn(3, 4, 6, 6, generator=_gen(1))
    # 1x1 conv, BN, ReLU (no ReLU before), then the KxK conv, BN, ReLU.
    h = F.relu(_bn(F.conv2d(x, op.inp.weight), op.inp.bn))
    if name == "conv3x3":
        h = F.conv2d(h, op.weight, padding=1)
    else:
        h = F.conv2d(F.conv2d(h, op.depthwise, padding=2, groups=4), op.pointwise)
    expected = F.relu(_bn(h, op.bn))
    torch.testing.assert_close(op(x), expected)
    assert (op(x) >= 0).all()


@pytest.mark.parametrize("name", ["avgpool", "maxpool"])
def test_macro_pool_branch_is_official(name: str) -> None:
    op = cast(MacroPoolBranch, make_macro_op(name, 4, generator=_gen()))
    x = torch.randn(3, 4, 6, 6, generator=_gen(1))
    h = F.relu(_bn(F.conv2d(x, op.inp.weight), op.inp.bn))
    if name == "avgpool":
        expected = F.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False)
    else:
        expected = F.max_pool2d(h, 3, stride=1, padding=1)
    torch.testing.assert_close(op(x), expected)


def test_micro_supernet_sep_stack_is_a_keyword() -> None:
    two = _micro()
    one = _micro(sep_stack=1)
    n_sep = sum(1 for m in two.modules() if isinstance(m, StackedSepConv))
    assert n_sep > 0
    assert _n_params(two) > _n_params(one)
    cell = _net(two).cells[-1]
    op = cell.get_submodule("branches.0.0.0.candidates.sep3x3")
    assert len(cast(StackedSepConv, op).stack) == 2
    with pytest.raises(ValueError, match="sep_stack"):
        _micro(sep_stack=0)


@pytest.mark.parametrize("size", [8, 7], ids=["even", "odd"])
def test_factorized_reduce_halves_spatial_size(size: int) -> None:
    reduce = FactorizedReduce(3, 6, generator=_gen())
    assert reduce(torch.randn(2, 3, size, size)).shape == (2, 6, 4, 4)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_output_shapes(make: _Factory) -> None:
    model = make()
    space = model.space
    rng = np.random.default_rng(0)
    x = torch.randn(3, 3, 8, 8)
    for _ in range(4):
        logits = model(x, space.sample_uniform(rng))
        assert logits.shape == (3, 10)
        assert torch.isfinite(logits).all()


def test_macro_supernet_default_pool_layers_follow_enas() -> None:
    model = MacroSupernet(MacroSpace(n_layers=12), n_filters=4)
    assert model.pool_layers == (3, 7)
    assert len(_net(model).reductions) == 2
    assert MacroSupernet(MacroSpace(n_layers=2), n_filters=4).pool_layers == ()


def test_macro_supernet_custom_pool_layers() -> None:
    model = _macro(pool_layers=[0, 1, 2])
    arch = model.space.sample_uniform(np.random.default_rng(0))
    assert model(torch.randn(2, 3, 16, 16), arch).shape == (2, 10)


def test_macro_supernet_skip_zero_reads_the_stem() -> None:
    # As the official general_child.py: skip j of layer i adds entry j of [stem, layer 0, ...].
    model = _macro(pool_layers=[])
    arch = _macro_arch(model.space, ["conv3x3"] * 4, {(1, 0), (3, 2)})
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen[name] = args[0] if name.startswith("sum") else out

        return hook

    net = _net(model)
    net.stem_bn.register_forward_hook(keep("stem"))
    for i in range(4):
        net.get_submodule(f"layers.{i}.candidates.conv3x3").register_forward_hook(keep(f"op{i}"))
    net.skip_bns[0].register_forward_hook(keep("sum1"))
    net.skip_bns[1].register_forward_hook(keep("sum2"))
    net.skip_bns[2].register_forward_hook(keep("sum3"))
    net.skip_bns[0].register_forward_hook(keep("layer1"))
    model(torch.randn(2, 3, 8, 8), arch)
    torch.testing.assert_close(seen["sum1"], seen["op1"] + seen["stem"])
    torch.testing.assert_close(seen["sum2"], seen["op2"])
    torch.testing.assert_close(seen["sum3"], seen["op3"] + seen["layer1"])  # skip 2 = layer 1


def test_macro_supernet_architectures_share_op_weights() -> None:
    model = _macro()
    space = model.space
    x = torch.randn(2, 3, 8, 8)
    arch_a = _macro_arch(space, ["conv3x3", "sep3x3", "maxpool", "conv5x5"], {(2, 0)})
    arch_b = _macro_arch(space, ["avgpool", "sep3x3", "conv3x3", "sep5x5"], {(3, 1)})
    layer = model.get_submodule("model.layers.1")
    shared = cast(MacroConvBranch, layer.get_submodule("candidates.sep3x3")).pointwise
    unused = cast(MacroConvBranch, layer.get_submodule("candidates.conv5x5")).weight
    for arch in (arch_a, arch_b):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, arch), torch.tensor([0, 1])).backward()
        assert shared.grad is not None and shared.grad.abs().sum() > 0
        assert unused.grad is None or not unused.grad.any()


def test_micro_supernet_architectures_share_op_weights() -> None:
    model = _micro()
    space = model.space
    x = torch.randn(2, 3, 8, 8)
    arch_a = _micro_arch(space, [(0, "sep3x3", 1, "avgpool"), (2, "sep5x5", 0, "identity")])
    arch_b = _micro_arch(space, [(0, "sep3x3", 1, "maxpool"), (1, "identity", 1, "sep3x3")])
    cell = _net(model).cells[-1]
    # Block 0, slot 0, input 0, op sep3x3 is used by both; block 1, slot 0, input 2, sep3x3 by
    # neither.
    shared = cast(SepConvBN, cell.get_submodule("branches.0.0.0.candidates.sep3x3.stack.1"))
    unused = cast(SepConvBN, cell.get_submodule("branches.1.0.2.candidates.sep3x3.stack.0"))
    shared_w, unused_w = shared.depthwise, unused.depthwise
    for arch in (arch_a, arch_b):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, arch), torch.tensor([0, 1])).backward()
        assert shared_w.grad is not None and shared_w.grad.abs().sum() > 0
        assert unused_w.grad is None or not unused_w.grad.any()


def test_micro_supernet_reduction_cells_follow_enas() -> None:
    model = MicroSupernet(MicroSpace(n_nodes=2), n_filters=4, n_layers=6)
    assert model.reduction_cells == (2, 5)
    assert len(_net(model).cells) == 8
    arch = model.space.sample_uniform(np.random.default_rng(0))
    assert model(torch.randn(2, 3, 8, 8), arch).shape == (2, 10)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_state_dict_round_trip(make: _Factory) -> None:
    model = make(seed=0).eval()
    other = make(seed=1).eval()
    arch = model.space.sample_uniform(np.random.default_rng(1))
    x = torch.randn(2, 3, 8, 8)
    assert not torch.equal(model(x, arch), other(x, arch))
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x, arch), other(x, arch), rtol=0, atol=0)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_generator_seeds_init_without_touching_global_rng(
    make: _Factory,
) -> None:
    state = torch.random.get_rng_state()
    a = make(seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    b = make(seed=3)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_follows_dtype_and_meta_device(make: _Factory) -> None:
    model = make().double()
    arch = model.space.sample_uniform(np.random.default_rng(0))
    out = model(torch.randn(2, 3, 8, 8, dtype=torch.float64), arch)
    assert out.dtype == torch.float64
    meta = make().to("meta")
    out = meta(torch.randn(2, 3, 8, 8, device="meta"), arch)
    assert out.device.type == "meta" and out.shape == (2, 10)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_training_reduces_loss(make: _Factory) -> None:
    model = make()
    rng = np.random.default_rng(0)
    archs = [model.space.sample_uniform(rng) for _ in range(2)]
    gen = _gen(5)
    x = torch.randn(16, 3, 8, 8, generator=gen)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()  # learnable from the first channel

    def loss_of(arch: Architecture) -> torch.Tensor:
        return F.cross_entropy(model(x, arch), y)

    with torch.no_grad():
        before = np.mean([loss_of(a).item() for a in archs])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(30):
        loss = loss_of(archs[step % 2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = np.mean([loss_of(a).item() for a in archs])
    assert after < 0.5 * before


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_filters": 0}, "n_filters"),
        ({"n_filters": 5}, "n_filters"),
        ({"in_channels": -1}, "in_channels"),
        ({"n_classes": 1.5}, "n_classes"),
    ],
    ids=["zero-filters", "odd-filters", "channels", "classes"],
)
@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_rejects_bad_arguments(
    make: _Factory, kwargs: dict[str, object], match: str
) -> None:
    if "n_filters" in kwargs:
        space = MacroSpace(n_layers=2) if make is _macro else MicroSpace(n_nodes=2)
        cls = MacroSupernet if make is _macro else MicroSupernet
        with pytest.raises(ValueError, match=match):
            cls(space, **kwargs)  # type: ignore[arg-type]
        return
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


@pytest.mark.parametrize(
    "pool_layers", [[4], [-1], [1, 1], ["1"]], ids=["too-big", "negative", "repeat", "str"]
)
def test_macro_supernet_rejects_bad_pool_layers(pool_layers: list[object]) -> None:
    with pytest.raises(ValueError, match="pool_layers"):
        _macro(pool_layers=pool_layers)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_rejects_bad_inputs(make: _Factory) -> None:
    model = make()
    arch = model.space.sample_uniform(np.random.default_rng(0))
    with pytest.raises(ValueError, match="x must"):
        model(torch.randn(2, 1, 8, 8), arch)
    other = RNNCellSpace(n_nodes=2).sample_uniform(np.random.default_rng(0))
    with pytest.raises(ValueError, match="arch"):
        model(torch.randn(2, 3, 8, 8), other)
    with pytest.raises(ValueError, match="arch must be an Architecture"):
        model(torch.randn(2, 3, 8, 8), "conv3x3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="space"):
        type(model)(RNNCellSpace(n_nodes=2))  # type: ignore[arg-type]


# -- the supernets as optuna_enas.nn.Supernet (issue #19) ----------------------------------------
LEGACY = Path(__file__).parent / "data" / "legacy_cnn_supernets.pt"


def _legacy_micro(seed: int = 0) -> MicroSupernet:
    """The configuration of the micro supernet in ``data/legacy_cnn_supernets.pt``."""
    return MicroSupernet(
        MicroSpace(n_nodes=2),
        n_filters=2,
        n_layers=1,
        stem_multiplier=1,
        sep_stack=1,
        generator=_gen(seed),
    )


def _legacy_macro(seed: int = 0) -> MacroSupernet:
    return MacroSupernet(MacroSpace(n_layers=3), n_filters=4, generator=_gen(seed))


def _legacy_name(key: str) -> str:
    """A current weight name in the layout before the choice primitives."""
    return key.removeprefix("model.").replace(".candidates.", ".")


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_is_a_supernet_over_its_enas_space(make: _Factory) -> None:
    model = make()
    assert isinstance(model, Supernet)
    space = MacroSpace(n_layers=4) if isinstance(model, MacroSupernet) else MicroSpace(n_nodes=2)
    assert model.space == space and model.space.decisions == space.decisions
    labels = {d.name for c in model.choices for d in c.decisions()}
    assert labels == set(space.names)
    kinds = {type(c) for c in model.choices}
    assert (
        kinds == {LayerChoice, type(model.choices[-1])}
        and InputChoice in type(model.choices[-1]).__mro__
    )


def test_micro_cells_of_one_kind_share_their_labels() -> None:
    model = MicroSupernet(MicroSpace(n_nodes=2), n_filters=4, n_layers=3, generator=_gen())
    assert model.reduction_cells == (1, 3)  # normal cells 0, 2, 4
    ops = Counter(m.label for m in model.modules() if isinstance(m, LayerChoice))
    inputs = Counter(m.label for m in model.modules() if isinstance(m, InputChoice))
    assert ops["normal_b2_op1"] == 3 * 2  # 3 normal cells, one op choice per input 0, 1
    assert ops["reduce_b3_op2"] == 2 * 3  # 2 reduction cells, inputs 0, 1, 2
    assert inputs["normal_b3_in1"] == 3 and inputs["reduce_b2_in2"] == 2
    assert len(model.space) == len(set(ops) | set(inputs)) == 2 * 2 * 2 * 2


@pytest.mark.parametrize("make", [_legacy_macro, _legacy_micro], ids=["macro", "micro"])
def test_cnn_supernet_loads_the_legacy_layout_and_computes_what_it_did(make: _Factory) -> None:
    """``data/legacy_cnn_supernets.pt``: weights, inputs and logits of the supernets before the
    choice primitives (commit fbb0e32), written with their state-dict names."""
    name = "macro" if make is _legacy_macro else "micro"
    saved = torch.load(LEGACY, weights_only=True)[name]
    flat = saved["flat"].split([int(np.prod(s)) for s in saved["shapes"]])
    legacy = {
        k: v.reshape(s) for k, v, s in zip(saved["keys"], flat, saved["shapes"], strict=True)
    }
    model = make(seed=7)
    assert {_legacy_name(k) for k in model.state_dict()} == set(legacy)
    result = model.load_state_dict(legacy)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for params, logits in zip(saved["params"], saved["logits"], strict=True):
        arch = Architecture.from_json(params)
        # Float32 tolerance: micro was bit for bit on the CPU that wrote the fixture (AMD EPYC)
        # and is 2.4e-7 apart on an Intel Xeon, whose kernels sum in another order; macro adds
        # its skip sum as one term (one rounding apart anywhere).
        torch.testing.assert_close(model(saved["x"], arch), logits)
    # A dict that mixes both layouts is not guessed at.
    mixed = dict(model.state_dict())
    mixed["stem_weight"] = mixed.pop("model.stem_weight")
    with pytest.raises(RuntimeError, match="stem_weight"):
        model.load_state_dict(mixed)


def test_supernet_evaluator_resumes_from_a_checkpoint_of_the_legacy_layout(
    tmp_path: Path,
) -> None:
    digits = load_digits_dataset(seed=0)
    space = MicroSpace(n_nodes=2)

    def make(**kwargs: object) -> SupernetEvaluator:
        return SupernetEvaluator(
            space,
            digits,
            supernet_kwargs={"n_filters": 4, "n_layers": 1},
            batch_size=16,
            n_train_steps=1.5,
            seed=0,
            **kwargs,  # type: ignore[arg-type]
        )

    rng = np.random.default_rng(0)
    archs = [space.sample_uniform(rng) for _ in range(5)]
    first = make()
    for arch in archs[:2]:
        first(FixedTrial(arch.to_params()))
    state = first.state_dict()
    state["supernet"] = {_legacy_name(k): v for k, v in state["supernet"].items()}
    path = save_checkpoint(state, tmp_path / "legacy.pt")
    resumed = make(resume_from=path)
    expected = [first(FixedTrial(a.to_params())) for a in archs[2:]]
    assert [resumed(FixedTrial(a.to_params())) for a in archs[2:]] == expected


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_forward_runs_the_active_architecture(make: _Factory) -> None:
    model = make()
    rng = np.random.default_rng(2)
    a, b = model.space.sample_uniform(rng), model.space.sample_uniform(rng)
    x = torch.randn(2, 3, 8, 8)
    with_a = model(x, a)
    assert model.active == a
    torch.testing.assert_close(model(x), with_a, rtol=0, atol=0)
    torch.testing.assert_close(model(x, a.to_params()), with_a, rtol=0, atol=0)
    assert not torch.equal(model(x, b), with_a)
    model.deactivate()
    with pytest.raises(RuntimeError, match="no active architecture"):
        model(x)


@pytest.mark.parametrize("make", [_macro, _micro], ids=["macro", "micro"])
def test_cnn_supernet_export_is_plain_torch_on_the_path(make: _Factory) -> None:
    model = make()
    arch = model.space.sample_uniform(np.random.default_rng(4))
    x = torch.randn(2, 3, 8, 8)
    exported = model.export(arch).eval()
    assert model.active is None  # the export leaves the activation as it was
    assert exported.nas_params == arch.to_params()
    assert not [m for m in exported.modules() if type(m).__module__.startswith("optuna_enas")]
    torch.testing.assert_close(exported(x), model.eval()(x, arch), rtol=0, atol=0)
    # Exactly the weights the path uses: those that get gradients.
    model.train().zero_grad(set_to_none=True)
    model(x, arch).sum().backward()
    with_grad = {id(p) for p in model.parameters() if p.grad is not None}
    path = model.path_parameters()
    assert {id(p) for p in path} == with_grad
    n_path = sum(p.numel() for p in path)
    assert _n_params(exported) == n_path < _n_params(model)
    p = next(iter(exported.parameters()))
    assert all(p is not q for q in model.parameters())  # a copy


def test_exported_micro_network_loads_without_optuna_enas(tmp_path: Path) -> None:
    model = _micro()
    arch = model.space.sample_uniform(np.random.default_rng(5))
    exported = model.export(arch).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.save({"model": exported, "x": x, "y": exported(x).detach()}, tmp_path / "m.pt")
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["optuna_enas"] = None  # any import of it fails
        import torch
        d = torch.load({str(tmp_path / "m.pt")!r}, weights_only=False)
        # another process may use another thread count: equal up to float32 rounding
        torch.testing.assert_close(d["model"](d["x"]), d["y"], rtol=1e-5, atol=1e-6)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_macro_supernet_mixed_mode_with_one_hot_weights_is_the_discrete_network() -> None:
    model = _macro().double()
    arch = model.space.sample_uniform(np.random.default_rng(6))
    weights = {
        d.name: F.one_hot(torch.tensor(d.choices.index(arch[d.name])), len(d.choices)).double()
        for d in model.space.decisions
    }
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    discrete = model(x, arch)
    model.set_mix(weights)
    torch.testing.assert_close(model(x), discrete)


def test_micro_supernet_mixed_mode_trains_the_mixing_weights() -> None:
    model = _micro()
    weights = {
        d.name: torch.full((len(d.choices),), 1.0 / len(d.choices), requires_grad=True)
        for d in model.space.decisions
    }
    model.set_mix(weights)
    logits = model(torch.randn(2, 3, 8, 8))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights.values())


def test_model_evaluator_searches_the_micro_supernet_on_sqlite(tmp_path: Path) -> None:
    """The built-in supernet is an nn.Supernet: the own-model objective takes it as it is."""
    model = _micro()
    g = _gen(8)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    train = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16, shuffle=True, generator=g)
    valid = DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16)
    objective = objective_over(model, train, valid, metric="accuracy", seed=0)
    study = optuna.create_study(
        sampler=ENASSampler(model.space, seed=0),
        direction=objective.direction,
        storage=f"sqlite:///{tmp_path / 'micro.db'}",
    )
    study.optimize(objective, n_trials=2)
    assert len(study.trials) == 2 and objective.n_steps >= 2
    assert set(study.best_params) == set(model.space.names)
    assert 0.0 <= study.best_value <= 1.0
    exported = model.export(study.best_params).eval()
    torch.testing.assert_close(exported(x[48:]), model.eval()(x[48:], study.best_params))
