"""The own-model primitives: LayerChoice, InputChoice, ValueChoice, Repeat, Supernet, export."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from optuna_enas.nn import ElasticBatchNorm2d
from optuna_enas.nn import ElasticConv2d
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import InputChoice
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


class Block(nn.Module):
    def __init__(self, c: int, k: ValueChoice) -> None:
        super().__init__()
        self.op = LayerChoice(
            "op",
            {
                "conv": ElasticConv2d(c, c, k, bias=False),
                "sep": nn.Sequential(
                    ElasticConv2d(c, c, k, depthwise=True, bias=False), nn.Conv2d(c, c, 1)
                ),
                "pool": nn.MaxPool2d(3, 1, 1),
                "id": nn.Identity(),
            },
        )
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.op(x))


class Net(nn.Module):
    """A user's small CNN: width, kernel, op per block (one shared label), depth, skip."""

    def __init__(self, reduction: str = "sum", n_chosen: int | None = 1) -> None:
        super().__init__()
        self.width = ValueChoice("width", [8, 12])
        k = ValueChoice("kernel", [3, 5])
        self.stem = ElasticConv2d(3, self.width, 3)
        self.stem_bn = ElasticBatchNorm2d(self.width)
        self.proj = ElasticConv2d(self.width, 8, 1)
        self.blocks = Repeat("depth", lambda i: Block(8, k), [0, 1, 2])
        self.skip = InputChoice("skip", 3, n_chosen=n_chosen, reduction=reduction)  # type: ignore[arg-type]
        width_out = 8 * (n_chosen or 1) if reduction == "concat" else 8
        self.head = nn.Linear(width_out, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.proj(torch.relu(self.stem_bn(self.stem(x))))
        b = self.blocks(a)
        h = self.skip([a, b, a * 0.5])
        return self.head(h.mean((2, 3)))


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
PARAMS = {"width": 12, "kernel": 3, "depth": 2, "op": "sep", "skip": 1}


def _supernet(**kw: object) -> Supernet:
    torch.manual_seed(0)
    return Supernet(Net(**kw), example_input=X)  # type: ignore[arg-type]


def test_space_one_decision_per_label_in_registration_order() -> None:
    sn = _supernet()
    assert sn.space.names == ("width", "depth", "op", "kernel", "skip")
    assert sn.space.decision("op").choices == ("conv", "sep", "pool", "id")
    assert sn.space.decision("op").kind == "op"
    assert sn.space.decision("skip").kind == "input"
    assert sn.space.n_architectures == 2 * 3 * 4 * 2 * 3
    # Two blocks, one label: one decision that both follow.
    sn.activate(PARAMS)
    blocks = list(sn.model.blocks.blocks)
    assert [b.op._chosen("op") for b in blocks] == ["sep", "sep"]


def test_subsets_and_skip_bits() -> None:
    two = _supernet(n_chosen=2, reduction="mean")
    assert two.space.decision("skip").choices == ("0+1", "0+2", "1+2")
    bits = _supernet(n_chosen=None)
    assert [d.name for d in bits.space.decisions if d.kind == "skip"] == [
        "skip/0",
        "skip/1",
        "skip/2",
    ]


@pytest.mark.parametrize(
    "kw,params",
    [
        ({}, PARAMS),
        ({}, {"width": 8, "kernel": 5, "depth": 1, "op": "conv", "skip": 0}),
        ({}, {"width": 8, "kernel": 3, "depth": 0, "op": "pool", "skip": 2}),
        ({"n_chosen": 2, "reduction": "mean"}, {**PARAMS, "skip": "0+2"}),
        ({"n_chosen": 2, "reduction": "concat"}, {**PARAMS, "skip": "1+2"}),
        ({"n_chosen": None}, {**PARAMS, "skip/0": 1, "skip/1": 0, "skip/2": 1}),
        ({"n_chosen": None}, {**PARAMS, "skip/0": 0, "skip/1": 0, "skip/2": 0}),
    ],
)
def test_export_computes_what_the_supernet_computes(kw: dict, params: dict) -> None:
    sn = _supernet(**kw)
    sn.activate(params)
    sn.train()
    for _ in range(2):  # move the batch-norm statistics off their initial values
        sn(torch.randn(4, 3, 8, 8))
    sn.eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        expected = sn(x)
        model = sn.export(params)
        model.eval()
        got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert model.nas_params == sn.space.architecture(params).to_params()
    assert not [m for m in model.modules() if type(m).__module__.startswith("optuna_enas")]
    assert isinstance(model.width, int)  # a ValueChoice attribute becomes its value
    assert sn.active is not None and sn.active.to_params() == model.nas_params


def test_export_kernel_and_width_are_crops_and_slices() -> None:
    sn = _supernet()
    model = sn.export({**PARAMS, "width": 8, "kernel": 3})
    assert isinstance(model.stem, nn.Conv2d) and model.stem.out_channels == 8
    torch.testing.assert_close(model.stem.weight, sn.model.stem.weight[:8])
    assert isinstance(model.stem_bn, nn.BatchNorm2d) and model.stem_bn.num_features == 8
    conv = model.blocks[0].op[0]
    assert conv.kernel_size == (3, 3) and conv.groups == 8 and conv.padding == (1, 1)
    full = sn.model.blocks.blocks[0].op.candidates["sep"][0].weight
    torch.testing.assert_close(conv.weight, full[:, :, 1:4, 1:4])


def test_exported_model_loads_without_optuna_enas(tmp_path: Path) -> None:
    sn = _supernet()
    model = sn.export(PARAMS)
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    torch.save({"model": model, "x": x, "y": model(x).detach()}, tmp_path / "m.pt")
    # The model class is this test module's: put it on the path, and block optuna_enas.
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["optuna_enas"] = None  # any import of it fails
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import types
        stub = types.ModuleType("test_nn")
        import torch
        from torch import nn
        class Net(nn.Module): pass
        class Block(nn.Module):
            def forward(self, x): return x + self.bn(self.op(x))
        def fwd(self, x):
            a = self.proj(torch.relu(self.stem_bn(self.stem(x))))
            return self.head(self.skip([a, self.blocks(a), a * 0.5]).mean((2, 3)))
        Net.forward = fwd
        stub.Net, stub.Block = Net, Block
        sys.modules["test_nn"] = stub
        sys.modules["tests.test_nn"] = stub
        d = torch.load({str(tmp_path / "m.pt")!r}, weights_only=False)
        torch.testing.assert_close(d["model"](d["x"]), d["y"])
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_only_the_active_path_gets_gradients() -> None:
    sn = _supernet()
    sn.activate({**PARAMS, "depth": 1, "op": "conv"})
    sn.train()
    sn(X).sum().backward()
    blocks = sn.model.blocks.blocks
    assert blocks[0].op.candidates["conv"].weight.grad is not None
    for key in ("sep", "pool", "id"):
        for p in blocks[0].op.candidates[key].parameters():
            assert p.grad is None
    for p in blocks[1].parameters():  # beyond the depth
        assert p.grad is None
    path = {id(p) for p in sn.path_parameters()}
    assert id(blocks[0].op.candidates["conv"].weight) in path
    assert id(blocks[1].bn.weight) not in path


def test_forward_before_activate_names_the_label() -> None:
    sn = _supernet()
    with pytest.raises(RuntimeError, match="no active architecture"):
        sn(X)


def test_bad_params_name_label_and_value() -> None:
    sn = _supernet()
    with pytest.raises(ValueError, match=r"params\['op'\] must be one of .* but got 'conv7'"):
        sn.activate({**PARAMS, "op": "conv7"})
    missing = dict(PARAMS)
    del missing["depth"]
    with pytest.raises(ValueError, match="lacks the decision 'depth'"):
        sn.activate(missing)
    with pytest.raises(ValueError, match="lacks the decision 'kernel'"):
        sn.export({k: v for k, v in PARAMS.items() if k != "kernel"})


def test_label_reused_with_other_candidates_is_refused() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice("op", {"x": nn.Identity(), "y": nn.Tanh()})
            self.b = LayerChoice("op", {"x": nn.Identity(), "z": nn.ReLU()})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    with pytest.raises(ValueError, match="label 'op' is used by a LayerChoice with choices"):
        Supernet(Twice())


def test_model_without_choices_is_refused() -> None:
    with pytest.raises(ValueError, match="Linear has no LayerChoice"):
        Supernet(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        Supernet("net")  # type: ignore[arg-type]


def test_incompatible_candidates_found_at_construction() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice("b1", {"wide": nn.Linear(4, 8), "narrow": nn.Linear(4, 6)})
            self.pool = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x).sum(-1, keepdim=True)  # hides the shape from the output

    with pytest.raises(ValueError, match=r"LayerChoice 'b1': the candidates' outputs cannot"):
        Supernet(Bad(), example_input=torch.zeros(2, 4))
    Supernet(Bad())  # without an example input nothing is run

    class BadInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.pick = InputChoice("pick", 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(self.pick([x, x[:, :2]]))

    with pytest.raises(ValueError, match=r"'pick' = 1 .*mat1 and mat2"):
        Supernet(BadInputs(), example_input=torch.zeros(2, 4))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="label must be a non-empty string"):
        LayerChoice("", [nn.Identity()])
    with pytest.raises(ValueError, match="candidates must not be empty"):
        LayerChoice("a", [])
    with pytest.raises(ValueError, match="candidate keys must be non-empty strings"):
        LayerChoice("a", {"x.y": nn.Identity()})
    with pytest.raises(ValueError, match="candidate 'x' must be an nn.Module"):
        LayerChoice("a", {"x": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="n_chosen must be an integer in"):
        InputChoice("a", 2, n_chosen=3)
    with pytest.raises(ValueError, match="reduction must be one of"):
        InputChoice("a", 2, reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'concat' needs a fixed n_chosen"):
        InputChoice("a", 2, n_chosen=None, reduction="concat")
    with pytest.raises(ValueError, match="values must be distinct"):
        ValueChoice("w", [8, 8])
    with pytest.raises(ValueError, match="kernel_size must take odd values"):
        ElasticConv2d(3, 8, ValueChoice("k", [3, 4]))
    with pytest.raises(ValueError, match="depths must be a non-empty list"):
        Repeat("d", lambda i: nn.Identity(), [])
    with pytest.raises(ValueError, match=r"takes a list of 2 tensors, but got 3"):
        sn = Supernet(nn.Sequential(nn.Identity()).append(InputChoice("i", 2)))
        sn.activate({"i": 0})
        InputChoice.forward(sn.model[1], [X, X, X])


def test_elastic_layers_check_their_input_width() -> None:
    w = ValueChoice("w", [4, 8])
    lin = ElasticLinear(w, 3)
    w.set_active({"w": 4})
    with pytest.raises(ValueError, match="expected 4 input features"):
        lin(torch.zeros(2, 8))
    assert lin(torch.zeros(2, 4)).shape == (2, 3)


def test_elastic_batch_norm_updates_its_slice_in_place() -> None:
    w = ValueChoice("w", [2, 4])
    bn = ElasticBatchNorm2d(w)
    w.set_active({"w": 2})
    bn.train()
    bn(torch.randn(8, 2, 3, 3) + 5.0)
    assert (bn.running_mean[:2] > 0.2).all()
    assert (bn.running_mean[2:] == 0).all()


def test_mixed_mode_is_the_weighted_sum() -> None:
    torch.manual_seed(0)
    choice = LayerChoice("op", {"a": nn.Linear(3, 3), "b": nn.Tanh()})
    x = torch.randn(2, 3)
    w = torch.tensor([0.25, 0.75], requires_grad=True)
    choice.set_mix({"op": w})
    out = choice(x)
    torch.testing.assert_close(out, 0.25 * choice.candidates["a"](x) + 0.75 * torch.tanh(x))
    out.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    width = ValueChoice("w", [2, 4])
    lin = ElasticLinear(3, width)
    width.set_mix({"w": torch.tensor([0.5, 0.5])})
    y = lin(x)
    full = nn.functional.linear(x, lin.weight, lin.bias)
    torch.testing.assert_close(y, full * torch.tensor([1.0, 1.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="must be a vector of 2 entries"):
        width.set_mix({"w": torch.ones(3)})


def test_export_of_a_lazy_input_choice() -> None:
    class Lazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ops = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
            self.pick = InputChoice("pick", 2, lazy=True)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            def run(i: int) -> torch.Tensor:
                self.calls += 1
                return self.ops[i](x)

            return self.pick([lambda: run(0), lambda: run(1)])

    net = Lazy()
    sn = Supernet(net)
    sn.activate({"pick": 1})
    x = torch.randn(2, 4)
    y = sn(x)
    assert net.calls == 1  # only the chosen input ran
    torch.testing.assert_close(sn.export({"pick": 1})(x), y)


def test_save_export_writes_model_and_params(tmp_path: Path) -> None:
    sn = _supernet()
    out = sn.save_export(PARAMS, tmp_path / "final")
    model = torch.load(out / "model.pt", weights_only=False)
    assert model.nas_params["op"] == "sep"
    assert '"op": "sep"' in (out / "params.json").read_text()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)  # a plain state dict too
    assert buf.tell() > 0


def test_any_subset_mean_mixes_to_the_discrete_mean() -> None:
    pick = InputChoice("pick", 3, n_chosen=None, reduction="mean")
    xs = [torch.full((2,), 1.0), torch.full((2,), 3.0), torch.full((2,), 10.0)]
    pick.set_active({"pick/0": 1, "pick/1": 1, "pick/2": 0})
    discrete = pick(xs)
    one_hot = {f"pick/{i}": torch.tensor([1.0 - b, float(b)]) for i, b in enumerate([1, 1, 0])}
    pick.set_mix(one_hot)
    torch.testing.assert_close(pick(xs), discrete)
    torch.testing.assert_close(discrete, torch.full((2,), 2.0))
    pick.set_mix({f"pick/{i}": torch.tensor([1.0, 0.0]) for i in range(3)})
    torch.testing.assert_close(pick(xs), torch.zeros(2))


def test_a_narrow_path_leaves_the_wider_chunks_without_gradients() -> None:
    width = ValueChoice("w", [4, 16])
    lin = ElasticLinear(8, width)
    bn = ElasticBatchNorm2d(width)
    width.set_active({"w": 4})
    lin(torch.randn(3, 8)).sum().backward()
    bn(torch.randn(3, 4, 2, 2)).sum().backward()
    assert [p.grad is not None for p in lin.weight_grid.chunks] == [True, False]
    assert [p.grad is not None for p in lin.bias_grid.chunks] == [True, False]  # type: ignore[union-attr]
    assert [p.grad is not None for p in bn.weight_grid.chunks] == [True, False]  # type: ignore[union-attr]
    assert lin.weight.shape == (16, 8)  # the whole tensor, read-only view of the chunks
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    wide = lin.weight_grid.chunks[1].detach().clone()
    opt.step()
    torch.testing.assert_close(lin.weight_grid.chunks[1].detach(), wide)  # decay skipped it
