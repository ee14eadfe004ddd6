"""Every search method on one user declaration: DARTS / DSO-NAS relaxations of a Supernet's
choice modules and their searchers, SPOS, and the samplers through ``objective_over``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_enas import ENASSampler
from optuna_enas import ModelDARTS
from optuna_enas import ModelDSONAS
from optuna_enas import ModelEvaluator
from optuna_enas import objective_over
from optuna_enas.nn import ElasticBatchNorm2d
from optuna_enas.nn import ElasticConv2d
from optuna_enas.nn import InputChoice
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice
from optuna_enas.oneshot import DARTSRelaxation
from optuna_enas.oneshot import DSONASRelaxation
from optuna_enas.oneshot._record import METHOD_KEY
from optuna_enas.oneshot._record import TABLES_KEY


optuna.logging.set_verbosity(optuna.logging.WARNING)


class Block(nn.Module):
    def __init__(self, c: int, k: ValueChoice) -> None:
        super().__init__()
        self.op = LayerChoice(
            "op",
            {
                "conv": ElasticConv2d(c, c, k, bias=False),
                "pool": nn.AvgPool2d(3, 1, 1),
                "id": nn.Identity(),
            },
        )
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.op(x))


class Net(nn.Module):
    """A small user CNN: width and kernel (ValueChoice), op (LayerChoice, shared by the
    blocks), depth (Repeat), one input of two and any subset of two (InputChoice)."""

    def __init__(self) -> None:
        super().__init__()
        width = ValueChoice("width", [4, 8])
        k = ValueChoice("kernel", [3, 5])
        self.stem = ElasticConv2d(3, width, 3)
        self.stem_bn = ElasticBatchNorm2d(width)
        self.proj = ElasticConv2d(width, 8, 1)
        self.blocks = Repeat("depth", lambda i: Block(8, k), [1, 2])
        self.pick = InputChoice("pick", 2, n_chosen=1)
        self.skip = InputChoice("skip", 2, n_chosen=None)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.proj(torch.relu(self.stem_bn(self.stem(x))))
        b = self.blocks(a)
        h = self.pick([a, b]) + self.skip([a, b * 0.5])
        return self.head(h.mean((2, 3)))


X = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _supernet(seed: int = 0) -> Supernet:
    torch.manual_seed(seed)
    return Supernet(Net(), example_input=X[:2])


def _loaders(n: int = 48, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 16, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + (x[:, 1].mean((1, 2)) > 0).long()  # 3 classes
    train = DataLoader(
        TensorDataset(x[:n], y[:n]),
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    valid = DataLoader(TensorDataset(x[n:], y[n:]), batch_size=8)
    return train, valid


def _capture(modules: dict[str, nn.Module]) -> dict[str, tuple[Any, Any]]:
    seen: dict[str, tuple[Any, Any]] = {}

    def hook(name: str) -> Any:
        def fn(_: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            seen.setdefault(name, (inputs[0], output))  # first call only

        return fn

    for name, m in modules.items():
        m.register_forward_hook(hook(name))
    return seen


def _random_logits(relax: DARTSRelaxation, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in relax.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g))


# -- the relaxation ----------------------------------------------------------------------------
def test_darts_mixed_forward_is_the_hand_computed_weighted_sum() -> None:
    sn = _supernet()
    relax = DARTSRelaxation(sn, generator=torch.Generator().manual_seed(0), example_input=X)
    _random_logits(relax)
    net = sn.model
    block = net.blocks.blocks[0]
    conv = block.op.candidates["conv"]
    seen = _capture(
        {
            "stem": net.stem,
            "conv": conv,
            "op": block.op,
            "depth": net.blocks,
            "pick": net.pick,
            "skip": net.skip,
        }
    )
    sn.eval()
    relax.mix()
    with torch.no_grad():
        sn(X)
        w = {name: relax.mix_weights()[name] for name in sn.space.names}
        # width 4 or 8: the full stem output times the weights of the widths that keep a channel
        full = F.conv2d(X, net.stem.weight, net.stem.bias, padding=1)
        hand = sum(
            w["width"][j] * F.pad(full[:, :v], (0, 0, 0, 0, 0, 8 - v))
            for j, v in enumerate((4, 8))
        )
        torch.testing.assert_close(seen["stem"][1], hand)
        # kernel 3 or 5: the centre crops of the 5x5 weights, each convolution "same"
        x_conv = seen["conv"][0]
        hand = sum(
            w["kernel"][j]
            * F.conv2d(
                x_conv,
                conv.weight[..., 2 - k // 2 : 3 + k // 2, 2 - k // 2 : 3 + k // 2],
                padding=k // 2,
            )
            for j, k in enumerate((3, 5))
        )
        torch.testing.assert_close(seen["conv"][1], hand)
        # op: conv / pool / id weighted
        x_op = seen["op"][0]
        hand = (
            w["op"][0] * seen["conv"][1]
            + w["op"][1] * F.avg_pool2d(x_op, 3, 1, 1)
            + w["op"][2] * x_op
        )
        torch.testing.assert_close(seen["op"][1], hand)
        # depth 1 or 2: the outputs after each depth
        x_rep = seen["depth"][0]
        one = net.blocks.blocks[0](x_rep)
        two = net.blocks.blocks[1](one)
        torch.testing.assert_close(seen["depth"][1], w["depth"][0] * one + w["depth"][1] * two)
        # one input of two: softmax over the inputs; any subset: each input's "on" weight
        a, b = seen["pick"][0]
        torch.testing.assert_close(seen["pick"][1], w["pick"][0] * a + w["pick"][1] * b)
        a, b_half = seen["skip"][0]
        on = [F.softmax(dict(relax.named_arch_parameters())[f"skip/{i}"], -1)[1] for i in (0, 1)]
        torch.testing.assert_close(seen["skip"][1], on[0] * a + on[1] * b_half)
    assert sorted(sn.space.names) == sorted(w)
    assert all(math.isclose(float(v.sum()), 1.0, rel_tol=1e-6) for v in w.values())


def test_dsonas_factors_scale_the_choices_and_zero_removes_them() -> None:
    sn = _supernet()
    relax = DSONASRelaxation(sn, example_input=X)
    params = dict(relax.named_arch_parameters())
    assert all(bool((p == 1.0).all()) for p in params.values())  # init 1 (official code)
    assert params["skip/0"].shape == (1,) and params["op"].shape == (3,)
    with torch.no_grad():
        params["op"].copy_(torch.tensor([0.0, 2.0, -0.5]))
        params["skip/1"].zero_()
    net = sn.model
    seen = _capture({"op": net.blocks.blocks[0].op, "skip": net.skip})
    sn.eval()
    relax.mix()
    with torch.no_grad():
        sn(X)
    x_op = seen["op"][0]
    torch.testing.assert_close(seen["op"][1], 2.0 * F.avg_pool2d(x_op, 3, 1, 1) - 0.5 * x_op)
    a, _ = seen["skip"][0]
    torch.testing.assert_close(seen["skip"][1], a)
    arch = relax.derive()
    assert arch["op"] == "pool"  # largest |lambda|
    assert arch["skip/0"] == 1 and arch["skip/1"] == 0  # a gate is on iff its factor is not 0
    assert relax.arch_summary()["sparsity"] == pytest.approx(2 / 13)  # of 2+2+2+3+2+1+1 factors


@pytest.mark.parametrize("cls", [DARTSRelaxation, DSONASRelaxation])
def test_gradients_reach_every_architecture_parameter(cls: type) -> None:
    sn = _supernet()
    relax = cls(sn)
    sn.train()
    relax.mix()
    y = torch.tensor([0, 1, 2, 1])
    F.cross_entropy(sn(X), y).backward()
    for name, p in relax.named_arch_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    assert all(w.grad is not None for w in sn.parameters())


def test_one_hot_mixture_and_export_compute_the_discrete_path() -> None:
    sn = _supernet()
    relax = DARTSRelaxation(sn, generator=torch.Generator().manual_seed(0))
    _random_logits(relax, seed=3)
    arch = relax.derive()
    sn.eval()
    with torch.no_grad():
        sn.activate(arch)
        discrete = sn(X)
        plain = sn.export(arch).eval()(X)
        for name, p in relax.named_arch_parameters():  # one-hot logits
            choices = sn.space.decision(name).choices
            p.copy_(torch.full_like(p, -1e4))
            p[choices.index(arch[name])] = 1e4
        relax.mix()
        mixed = sn(X)
    torch.testing.assert_close(plain, discrete)
    torch.testing.assert_close(mixed, discrete)


def test_refusals_name_the_label() -> None:
    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cat = InputChoice("cat", 3, n_chosen=2, reduction="concat")
            self.head = nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.cat([x, x * 2, x * 3]))

    sn = Supernet(Concat(), example_input=torch.zeros(2, 8))
    with pytest.raises(ValueError, match="InputChoice 'cat' has reduction 'concat'"):
        DARTSRelaxation(sn)
    train, valid = (
        [(torch.zeros(2, 8), torch.zeros(2, dtype=torch.long))],
        [(torch.zeros(2, 8), torch.zeros(2, dtype=torch.long))],
    )
    with pytest.raises(ValueError, match="'cat'"):
        ModelDSONAS(sn, train, valid)

    class GateMean(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gates = InputChoice("gates", 2, n_chosen=None, reduction="mean")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gates([x, 3 * x])

    gated = Supernet(GateMean())
    DARTSRelaxation(gated)  # a gated mean relaxes: sum(g_i x_i) / sum(g_i)
    gated.set_mix({"gates/0": torch.tensor([0.0, 1.0]), "gates/1": torch.tensor([0.0, 1.0])})
    torch.testing.assert_close(gated(torch.ones(2)), torch.full((2,), 2.0))

    class ReadsValue(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n = ValueChoice("n", [1, 2])
            self.op = LayerChoice("o", [nn.Identity(), nn.Tanh()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x)[:, : self.n.value]

    with pytest.raises(ValueError, match="ValueChoice 'n' is not used by an elastic layer"):
        DSONASRelaxation(Supernet(ReadsValue()))

    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    class Tuples(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tup = LayerChoice("tup", [Pair(), Pair()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = self.tup(x)
            return a + b

    sn = Supernet(Tuples(), example_input=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mixed forward fails in LayerChoice 'tup'"):
        DARTSRelaxation(sn, example_input=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="supernet must be an optuna_enas.nn.Supernet"):
        DARTSRelaxation(Tuples())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init must be a number > 0"):
        DSONASRelaxation(_supernet(), init=0.0)


@pytest.mark.parametrize("method", ["darts", "dsonas"])
def test_relaxing_the_macro_supernet_equals_the_built_in_relaxed_macro(method: str) -> None:
    # MacroSupernet is written with the primitives: its relaxation is the hand-written one.
    from optuna_enas import MacroSpace
    from optuna_enas.oneshot import build_relaxed
    from optuna_enas.supernet._macro import MacroSupernet
    from optuna_enas.training._tasks import default_data

    space = MacroSpace(n_layers=4)
    gen = torch.Generator().manual_seed(0)
    built_in = build_relaxed(
        space, default_data(space, None), relaxation=method, generator=gen, n_filters=8
    )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in built_in.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    sn = MacroSupernet(space, in_channels=built_in.in_channels, n_filters=8)
    sn.load_state_dict(built_in.discrete_state_dict())
    relax = (DARTSRelaxation if method == "darts" else DSONASRelaxation)(sn)
    ops, skips = built_in.arch["ops"].detach(), built_in.arch["skips"].detach()
    with torch.no_grad():
        for name, p in relax.named_arch_parameters():
            if name.endswith("_op"):  # layer{i}_op
                p.copy_(ops[int(name[len("layer") : -len("_op")])])
            else:  # layer{i}_skip{j}: DARTS's sigmoid gate is the 2-way softmax of [0, beta]
                i, j = map(int, name[len("layer") :].split("_skip"))
                s = skips[built_in.skip_index(i, j)]
                p.copy_(torch.stack([torch.zeros(()), s]) if method == "darts" else s.view(1))
    x = torch.randn(4, built_in.in_channels, 8, 8, generator=g)
    for training in (True, False):
        built_in.train(training)
        sn.train(training)
        relax.mix()
        with torch.no_grad():
            torch.testing.assert_close(sn(x), built_in(x))
    assert relax.derive() == built_in.derive()


# -- the searchers -----------------------------------------------------------------------------
def _check_trials(study: optuna.Study, searcher: Any, method: str, n: int) -> None:
    trials = study.get_trials()
    assert len(trials) == n
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [t.system_attrs[METHOD_KEY] for t in trials] == [method] * n
    assert [t.user_attrs["epoch"] for t in trials] == list(range(n))
    for t, record in zip(trials, searcher.history, strict=True):
        assert t.params == record.architecture.to_params()
        assert t.value == pytest.approx(record.value)
        assert set(t.user_attrs) >= {TABLES_KEY, "relaxed_value", "entropy", "sparsity"}


def _exported_metric(sn: Supernet, arch: Any, valid: DataLoader) -> float:
    model = sn.export(arch).eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in valid:
            correct += int((model(x).argmax(-1) == y).sum())
            total += len(y)
    return correct / total


@pytest.mark.parametrize("order", [1, 2])
def test_darts_search_records_trials_scored_on_the_derived_path(
    tmp_path: Path, order: int
) -> None:
    sn = _supernet()
    train, valid = _loaders()
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    darts = ModelDARTS(
        sn,
        train,
        valid,
        metric="accuracy",
        order=order,
        arch_lr=0.05,
        n_eval_batches=2,
        seed=0,
        example_input=X,
    )
    alpha0 = [p.detach().clone() for p in darts.arch]
    storage = f"sqlite:///{tmp_path / 'darts.db'}"
    study = optuna.create_study(storage=storage, direction=darts.direction)
    result = darts.search(study, n_steps=6, steps_per_epoch=3)
    _check_trials(
        optuna.load_study(study_name=study.study_name, storage=storage), darts, "darts", 2
    )
    assert result.n_weight_steps == 6 and result.architecture == darts.history[-1].architecture
    assert any(not torch.equal(a, p) for a, p in zip(alpha0, darts.arch, strict=True))
    assert any(not torch.equal(before[k], v) for k, v in sn.state_dict().items())
    # the value is the discrete derived path's accuracy: the exported module's, in eval mode
    assert result.value == pytest.approx(_exported_metric(sn, result.architecture, valid))
    assert darts.score(result.architecture, n_batches=2) == pytest.approx(result.value)
    lrs = [g["lr"] for g in darts.weight_optimizer.param_groups]
    assert lrs[0] < 0.025  # cosine annealing of the default SGD, second epoch
    pytest.importorskip("plotly")
    from optuna_enas.dashboard._figures import plot_arch_weights

    names = {d.name for d in plot_arch_weights(study).data if d.name}
    assert {"width", "kernel", "depth", "op", "pick", "skip"} <= {n.split("[")[0] for n in names}


def test_dsonas_search_warms_up_prunes_and_records(tmp_path: Path) -> None:
    sn = _supernet()
    train, valid = _loaders()
    arch_train, _ = _loaders(seed=5)
    dso = ModelDSONAS(
        sn,
        train,
        valid,
        arch_data=arch_train,
        metric="accuracy",
        lr=0.05,
        gamma=2.0,
        prune_every=1,
        warmup_fraction=0.25,
        n_eval_batches=2,
        seed=0,
    )
    storage = f"sqlite:///{tmp_path / 'dso.db'}"
    study = optuna.create_study(storage=storage, direction="maximize")
    result = dso.search(study, n_steps=8, steps_per_epoch=2)
    _check_trials(study, dso, "dsonas", 4)
    phases = [t.user_attrs["phase"] for t in study.get_trials()]
    assert phases == ["warmup", "search", "search", "search"]
    lam = torch.cat([p.detach() for p in dso.arch])
    assert bool((lam >= 0).all())  # APG's non-negative clamp
    assert bool((lam == 0).any()) and dso.history[-1].summary["n_pruned"] > 0
    assert dso.history[-1].summary["sparsity"] > 0
    assert result.architecture == dso.relaxation.derive()
    assert result.value == pytest.approx(_exported_metric(sn, result.architecture, valid))


@pytest.mark.parametrize("method", ["darts2", "dsonas"])
def test_resume_from_a_checkpoint_continues_exactly(tmp_path: Path, method: str) -> None:
    def searcher(**kw: Any) -> Any:
        train, valid = _loaders()
        if method == "dsonas":
            return ModelDSONAS(
                _supernet(),
                train,
                valid,
                gamma=0.5,
                prune_every=1,
                warmup_fraction=0.25,
                seed=0,
                **kw,
            )
        return ModelDARTS(_supernet(), train, valid, order=2, arch_lr=0.05, seed=0, **kw)

    plan = {"n_steps": 8, "steps_per_epoch": 2}
    straight = searcher()
    straight.search(None, **plan)

    class Stop(Exception):
        pass

    def stop_after_two(s: Any, record: Any) -> None:
        if record.epoch == 1:
            raise Stop

    ckpt = tmp_path / "search.pt"
    with pytest.raises(Stop):
        searcher(checkpoint_path=ckpt).search(None, callbacks=[stop_after_two], **plan)
    resumed = searcher(checkpoint_path=ckpt, resume_from=ckpt)
    assert resumed.epoch == 2 and resumed.n_weight_steps == 4
    resumed.search(None, **plan)
    assert [r.value for r in resumed.history] == [r.value for r in straight.history]
    assert [r.relaxed_value for r in resumed.history] == [
        r.relaxed_value for r in straight.history
    ]
    for a, b in zip(resumed.arch, straight.arch, strict=True):
        assert torch.equal(a, b)
    for (k, a), b in zip(
        resumed.supernet.state_dict().items(), straight.supernet.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="must continue with the same"):
        resumed.search(None, n_steps=10, steps_per_epoch=2)
    with pytest.raises(ValueError, match="is not a"):
        other = ModelDSONAS if method != "dsonas" else ModelDARTS
        other(_supernet(), *_loaders(), resume_from=ckpt)


def test_darts_collapse_early_stop_on_parameter_free_ops() -> None:
    from optuna_enas.oneshot import CollapseWarning

    train, valid = _loaders()
    darts = ModelDARTS(
        _supernet(), train, valid, arch_lr=1e-6, collapse_threshold=0.5, early_stop=True
    )
    with torch.no_grad():
        dict(darts.relaxation.named_arch_parameters())["op"].copy_(torch.tensor([0.0, 0.0, 9.0]))
    with pytest.warns(CollapseWarning, match="early_stop=True stops the search"):
        result = darts.search(None, n_steps=6, steps_per_epoch=2)
    assert result.stopped_early and len(result.history) == 1 and result.n_weight_steps == 2
    assert result.architecture["op"] == "id"
    assert result.history[0].summary["param_free_share"] == 1.0


def test_searchers_refuse_bad_arguments() -> None:
    train, valid = _loaders()
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        ModelDARTS(_supernet(), train, valid, order=3)
    with pytest.raises(ValueError, match="arch_lr"):
        ModelDARTS(_supernet(), train, valid, arch_lr=-1.0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        ModelDSONAS(_supernet(), train, valid, warmup_fraction=1.5)
    darts = ModelDARTS(_supernet(), train, valid, metric="accuracy")
    with pytest.raises(ValueError, match="direction 'maximize'"):
        darts.search(optuna.create_study(direction="minimize"), n_steps=1)
    with pytest.raises(ValueError, match="steps_per_epoch is required"):
        ModelDARTS(_supernet(), iter([]), valid).search(None, n_steps=1)  # type: ignore[arg-type]


# -- the same declaration under SPOS and the samplers -------------------------------------------
def test_spos_is_two_stage_uniform_on_the_same_model(tmp_path: Path) -> None:
    sn = _supernet()
    train, valid = _loaders()
    objective = ModelEvaluator(
        sn,
        train,
        valid,
        metric="accuracy",
        schedule="two_stage",
        train_paths="uniform",
        pretrain_steps=6,
        n_eval_batches=2,
        seed=0,
    )
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'spos.db'}",
        direction=objective.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(objective, n_trials=3)
    frozen = {k: v.clone() for k, v in sn.state_dict().items()}
    study.optimize(objective, n_trials=3)
    assert objective.n_steps == 6  # the supernet trained once, before the first trial
    assert all(torch.equal(frozen[k], v) for k, v in sn.state_dict().items())
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize("sampler", ["enas", "random", "tpe"])
def test_samplers_search_the_same_model(tmp_path: Path, sampler: str) -> None:
    sn = _supernet()
    train, valid = _loaders()
    objective = objective_over(sn, train, valid, metric="accuracy", seed=0)
    samplers: dict[str, optuna.samplers.BaseSampler] = {
        "enas": ENASSampler(sn.space, seed=0),
        "random": optuna.samplers.RandomSampler(seed=0),
        "tpe": optuna.samplers.TPESampler(seed=0, n_startup_trials=2),
    }
    storage = f"sqlite:///{tmp_path / 'samplers.db'}"
    study = optuna.create_study(
        storage=storage, direction=objective.direction, sampler=samplers[sampler]
    )
    study.optimize(objective, n_trials=5)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert all(set(t.params) == set(sn.space.names) for t in trials)
    assert objective.n_steps == 5
    model = sn.export(study.best_params).eval()
    assert model(X).shape == (4, 3)


def test_the_doc_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "own_model_oneshot.md"
    code = re.search(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(doc), "exec"), namespace)  # noqa: S102
    storage = "sqlite:///own_model.db"
    summaries = optuna.get_all_study_summaries(storage)
    assert sorted(s.study_name for s in summaries) == ["darts", "dsonas", "enas", "spos"]
    assert {s.study_name: s.n_trials for s in summaries} == {
        "darts": 4,
        "dsonas": 4,
        "enas": 5,
        "spos": 5,
    }
    model = namespace["model"]
    assert not any(type(m).__module__.startswith("optuna_enas") for m in model.modules())
