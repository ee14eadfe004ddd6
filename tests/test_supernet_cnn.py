from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas import Architecture
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
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
    cell = two.cells[-1]
    assert len(cast(StackedSepConv, cell.get_submodule("branches.0.0.0.sep3x3")).stack) == 2
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
    assert len(model.reductions) == 2
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

    model.stem_bn.register_forward_hook(keep("stem"))
    for i in range(4):
        model.get_submodule(f"layers.{i}.conv3x3").register_forward_hook(keep(f"op{i}"))
    model.skip_bns[0].register_forward_hook(keep("sum1"))
    model.skip_bns[1].register_forward_hook(keep("sum2"))
    model.skip_bns[2].register_forward_hook(keep("sum3"))
    model.skip_bns[0].register_forward_hook(keep("layer1"))
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
    shared = cast(MacroConvBranch, model.get_submodule("layers.1.sep3x3")).pointwise
    unused = cast(MacroConvBranch, model.get_submodule("layers.1.conv5x5")).weight
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
    cell = model.cells[-1]
    # Block 0, slot 0, input 0, op sep3x3 is used by both; block 1, slot 0, input 2, sep3x3 by
    # neither.
    shared = cast(SepConvBN, cell.get_submodule("branches.0.0.0.sep3x3.stack.1")).depthwise
    unused = cast(SepConvBN, cell.get_submodule("branches.1.0.2.sep3x3.stack.0")).depthwise
    for arch in (arch_a, arch_b):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, arch), torch.tensor([0, 1])).backward()
        assert shared.grad is not None and shared.grad.abs().sum() > 0
        assert unused.grad is None or not unused.grad.any()


def test_micro_supernet_reduction_cells_follow_enas() -> None:
    model = MicroSupernet(MicroSpace(n_nodes=2), n_filters=4, n_layers=6)
    assert model.reduction_cells == (2, 5)
    assert len(model.cells) == 8
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
    with pytest.raises(ValueError, match="space"):
        type(model)(RNNCellSpace(n_nodes=2))  # type: ignore[arg-type]
