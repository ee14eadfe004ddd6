"""DARTS: the second-order hypergradient, alpha on a planted problem, end-to-end searches recorded
in SQLite studies, resume equality, reproducibility, collapse tracking and argument checks."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import torch.nn.functional as F
from optuna.trial import TrialState
from torch import nn

from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._corpus import load_corpus
from optuna_enas.data._images import ImageData
from optuna_enas.data._images import load_digits_dataset
from optuna_enas.oneshot._collapse import CollapseMonitor
from optuna_enas.oneshot._collapse import CollapseWarning
from optuna_enas.oneshot._collapse import default_threshold
from optuna_enas.oneshot._darts import DARTS
from optuna_enas.oneshot._darts import DARTS_CNN
from optuna_enas.oneshot._darts import DARTS_RNN
from optuna_enas.oneshot._darts import cosine_lr
from optuna_enas.oneshot._darts import darts_hypergradient
from optuna_enas.oneshot._record import METHOD_KEY
from optuna_enas.oneshot._record import TABLES_KEY
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._searcher import EpochRecord
from optuna_enas.oneshot._searcher import OneShotSearcher
from optuna_enas.spaces._search_space import Architecture


pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::optuna_enas.oneshot._collapse.CollapseWarning"),
]
optuna.logging.set_verbosity(optuna.logging.WARNING)

MACRO = MacroSpace(n_layers=2)
MACRO_KW = {"n_filters": 4}
MICRO = MicroSpace(n_nodes=2)
MICRO_KW = {"n_filters": 4, "n_layers": 2}
RNN = RNNCellSpace(n_nodes=3)
RNN_KW = {"embed_size": 16, "hidden_size": 16}


@functools.cache
def _digits() -> ImageData:
    return load_digits_dataset()  # loaded once per module: it takes seconds


@functools.cache
def _corpus() -> Corpus:
    return load_corpus(None)


# -- the second-order hypergradient ---------------------------------------------------------------
class _TinyMixed(nn.Module):
    """``softmax(alpha)``-mixture of tanh and sigmoid of ``x W1``, then ``W2``; float64."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64))
        self.w2 = nn.Parameter(torch.randn(4, 2, generator=g, dtype=torch.float64))
        self.alpha = nn.Parameter(torch.randn(2, generator=g, dtype=torch.float64))

    def loss(self, x: torch.Tensor, y: torch.Tensor, w: list[torch.Tensor] | None = None) -> Any:
        w1, w2 = (self.w1, self.w2) if w is None else w
        p = torch.softmax(self.alpha, dim=0)
        h = x @ w1
        mixed = p[0] * torch.tanh(h) + p[1] * torch.sigmoid(h)
        return F.cross_entropy(mixed @ w2, y)


def test_second_order_hypergradient_matches_finite_differences_of_the_unrolled_loss() -> None:
    model = _TinyMixed(0)
    g = torch.Generator().manual_seed(1)
    xt = torch.randn(16, 3, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 2, (16,), generator=g)
    xv = torch.randn(16, 3, generator=g, dtype=torch.float64)
    yv = torch.randint(0, 2, (16,), generator=g)
    weights = [model.w1, model.w2]
    buffers = [0.1 * torch.randn(w.shape, generator=g, dtype=torch.float64) for w in weights]
    eta, mu, wd = 0.5, 0.9, 1e-2
    before = [w.detach().clone() for w in weights]

    hyper = darts_hypergradient(
        weights,
        [model.alpha],
        lambda: model.loss(xt, yt),
        lambda: model.loss(xv, yv),
        eta=eta,
        momentum=mu,
        momentum_buffers=buffers,
        weight_decay=wd,
    )[0]
    assert all(torch.equal(w.detach(), b) for w, b in zip(weights, before, strict=True))

    def unrolled_valid_loss(alpha: torch.Tensor) -> float:
        # L_val(w - eta (mu m + grad_w L_train(w, alpha) + wd w), alpha), exact inner gradient.
        with torch.no_grad():
            model.alpha.copy_(alpha)
        grads = torch.autograd.grad(model.loss(xt, yt), weights)
        unrolled = [
            w.detach() - eta * (mu * m + gi + wd * w.detach())
            for w, gi, m in zip(weights, grads, buffers, strict=True)
        ]
        with torch.no_grad():
            return float(model.loss(xv, yv, unrolled))

    alpha0 = model.alpha.detach().clone()
    numeric = torch.zeros_like(alpha0)
    h = 1e-5
    for i in range(alpha0.numel()):
        e = torch.zeros_like(alpha0)
        e[i] = h
        numeric[i] = (unrolled_valid_loss(alpha0 + e) - unrolled_valid_loss(alpha0 - e)) / (2 * h)
    with torch.no_grad():
        model.alpha.copy_(alpha0)
    first_order = torch.autograd.grad(model.loss(xv, yv, None), [model.alpha])[0]
    # DARTS's eps = 0.01 / ||v|| leaves an O(eps^2) error; a smaller r converges to the exact one.
    assert torch.allclose(hyper, numeric, rtol=2e-3, atol=1e-9)
    fine = darts_hypergradient(
        weights,
        [model.alpha],
        lambda: model.loss(xt, yt),
        lambda: model.loss(xv, yv),
        eta=eta,
        momentum=mu,
        momentum_buffers=buffers,
        weight_decay=wd,
        r=1e-4,
    )[0]
    assert torch.allclose(fine, numeric, rtol=1e-6, atol=1e-11)
    # The check can fail: the second-order term is far larger than the tolerance.
    unrolled_first = darts_hypergradient(
        weights, [model.alpha], lambda: model.loss(xt, yt), lambda: model.loss(xv, yv), eta=0.0
    )[0]
    assert torch.equal(unrolled_first, first_order)
    assert float((hyper - first_order).abs().max()) > 20 * 2e-3 * float(hyper.abs().max())


def test_hypergradient_counts_the_clip_factor_as_a_constant() -> None:
    # With a clip bound below the gradient norm, w' = w - eta * c * grad: the same as an
    # unclipped step with eta * c.
    model = _TinyMixed(3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (8,), generator=g)
    weights = [model.w1, model.w2]
    grads = torch.autograd.grad(model.loss(x, y), weights)
    norm = math.sqrt(sum(float((gi * gi).sum()) for gi in grads))
    clip = norm / 4
    coef = clip / (norm + 1e-6)

    def hyper(**kw: Any) -> torch.Tensor:
        return darts_hypergradient(
            weights, [model.alpha], lambda: model.loss(x, y), lambda: model.loss(x, y), **kw
        )[0]

    clipped = hyper(eta=0.4, grad_clip=clip)
    # first term at w - 0.4 c g, second term 0.4 c H v: equals eta' = 0.4 c unclipped
    assert torch.allclose(clipped, hyper(eta=0.4 * coef), rtol=1e-6, atol=1e-10)


def test_hypergradient_vector_clip_scales_the_second_term_as_official_rnn() -> None:
    # rnn/architect.py: _clip(dtheta, 0.25) before _hessian_vector_product; eps = r / ||k v||
    # perturbs w by the same r v / ||v||, so the second term is exactly k times the unclipped.
    model = _TinyMixed(5)
    g = torch.Generator().manual_seed(6)
    xt, xv = (torch.randn(8, 3, generator=g, dtype=torch.float64) for _ in range(2))
    yt, yv = (torch.randint(0, 2, (8,), generator=g) for _ in range(2))
    weights = [model.w1, model.w2]
    eta = 0.3
    # Hand computation of the first term and of the vector at w' = w - eta grad L_train.
    grads = torch.autograd.grad(model.loss(xt, yt), weights)
    unrolled = [w.detach() - eta * gi for w, gi in zip(weights, grads, strict=True)]
    unrolled = [u.requires_grad_() for u in unrolled]
    dalpha, *vector = torch.autograd.grad(model.loss(xv, yv, unrolled), [model.alpha, *unrolled])
    v_norm = math.sqrt(sum(float((v * v).sum()) for v in vector))
    clip = v_norm / 3
    k = clip / (v_norm + 1e-6)

    def hyper(**kw: Any) -> torch.Tensor:
        return darts_hypergradient(
            weights,
            [model.alpha],
            lambda: model.loss(xt, yt),
            lambda: model.loss(xv, yv),
            eta=eta,
            **kw,
        )[0]

    plain, clipped = hyper(), hyper(vector_clip=clip)
    assert torch.allclose(clipped - dalpha, k * (plain - dalpha), rtol=1e-6, atol=1e-12)
    assert float((clipped - plain).abs().max()) > 1e-3 * float(plain.abs().max())
    assert torch.equal(hyper(vector_clip=10 * v_norm), plain)  # within the bound: unchanged


def test_unrolled_step_is_clipped_on_rnn_only_as_official() -> None:
    assert DARTS_RNN.clip_unrolled and not DARTS_CNN.clip_unrolled
    cnn = DARTS(MACRO, _digits(), order=2, seed=0, supernet_kwargs=MACRO_KW, batch_size=8)
    assert cnn.grad_clip == 5.0 and not cnn.clip_unrolled
    with pytest.raises(ValueError, match="clip_unrolled"):
        DARTS(MACRO, _digits(), seed=0, supernet_kwargs=MACRO_KW, clip_unrolled=1)  # type: ignore[arg-type]


# -- a planted problem: a relaxed stand-in with one useful and one useless op ---------------------
class PlantedSupernet(RelaxedSupernet):
    """Macro space of 1 layer with ops (conv3x3, avgpool) on digits: conv3x3 is a linear
    classifier, avgpool outputs zero logits. DARTS should move alpha towards conv3x3."""

    SPACE = MacroSpace(n_layers=1, ops=("conv3x3", "avgpool"))

    def __init__(self, alpha: tuple[float, float] = (0.0, 0.0), seed: int = 0) -> None:
        super().__init__(self.SPACE, "darts")
        g = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(64, 10)
        with torch.no_grad():
            self.linear.weight.copy_(0.01 * torch.randn(10, 64, generator=g))
            self.linear.bias.zero_()
        self.arch["layer0"] = nn.Parameter(torch.tensor(alpha))

    def forward(self, x: torch.Tensor, arch: Any = None) -> torch.Tensor:
        assert arch is None
        p = torch.softmax(self.arch["layer0"], dim=0)
        return p[0] * self.linear(x.flatten(1))  # + p[1] * 0 (avgpool: zero logits)

    def derive(self) -> Architecture:
        op = self.SPACE.ops[int(self.arch["layer0"].argmax())]
        return self.SPACE.architecture({"layer0_op": op})

    def arch_tables(self) -> dict[str, list[list[float]]]:
        return {"layer0": [torch.softmax(self.arch["layer0"].detach(), 0).tolist()]}

    def _distributions(self) -> list[torch.Tensor]:
        return [torch.softmax(self.arch["layer0"].detach(), 0)]

    def _param_free_share(self, arch: Architecture) -> float:
        return float(arch["layer0_op"] == "avgpool")

    def discrete_state_dict(self) -> dict[str, torch.Tensor]:
        return {}


def _planted(order: int, **kw: Any) -> DARTS:
    args: dict[str, Any] = {
        "order": order,
        "seed": 0,
        "supernet": PlantedSupernet(),
        "supernet_kwargs": MACRO_KW,
        "arch_lr": 0.05,
        "eval_batches": 1,
    }
    args.update(kw)
    return DARTS(PlantedSupernet.SPACE, _digits(), **args)


@pytest.mark.parametrize("order", [1, 2])
def test_darts_moves_alpha_towards_the_useful_op_on_a_planted_problem(order: int) -> None:
    searcher = _planted(order)
    p0 = float(torch.softmax(searcher.arch[0].detach(), 0)[0])
    study = optuna.create_study(direction="maximize")
    result = searcher.search(study, n_steps=40, steps_per_epoch=20)
    p1 = float(torch.softmax(searcher.arch[0].detach(), 0)[0])
    assert p0 == 0.5 and p1 > 0.75
    assert result.architecture["layer0_op"] == "conv3x3"
    assert [t.user_attrs["param_free_share"] for t in study.trials] == [0.0, 0.0]
    entropies = [t.user_attrs["entropy"] for t in study.trials]
    assert entropies[0] > entropies[1]  # the mixture sharpens


def test_collapse_warns_once_per_crossing_and_early_stop_stops_there() -> None:
    # alpha planted on the parameter-free op: the derived layer is avgpool, share 1.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        searcher = _planted(1, supernet=PlantedSupernet((-3.0, 3.0)), arch_lr=1e-6)
        result = searcher.search(None, n_steps=30, steps_per_epoch=10)
    collapse = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(collapse) == 1 and "0.500" in str(collapse[0].message)
    assert len(result.history) == 3 and not result.stopped_early

    with pytest.warns(CollapseWarning, match="early_stop=True stops"):
        searcher = _planted(
            1, supernet=PlantedSupernet((-3.0, 3.0)), arch_lr=1e-6, early_stop=True
        )
        result = searcher.search(None, n_steps=30, steps_per_epoch=10)
    assert result.stopped_early and len(result.history) == 1 and result.n_weight_steps == 10


def test_collapse_monitor_counts_crossings_and_default_thresholds() -> None:
    monitor = CollapseMonitor(0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crossed = [monitor.update(e, s) for e, s in enumerate([0.1, 0.7, 0.8, 0.5, 0.9])]
    assert crossed == [False, True, False, False, True]
    assert monitor.n_crossings == 2 and len(caught) == 2 and not monitor.should_stop
    restored = CollapseMonitor(0.5)
    restored.load_state_dict(monitor.state_dict())
    assert restored.above and restored.history == [0.1, 0.7, 0.8, 0.5, 0.9]
    assert default_threshold(MicroSpace()) == pytest.approx(3 / 5)
    assert default_threshold(MacroSpace()) == pytest.approx(2 / 6)
    assert default_threshold(RNNCellSpace()) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="collapse_threshold"):
        CollapseMonitor(1.5)


# -- end to end on the real relaxed supernets, recorded in SQLite ---------------------------------
def _check_recorded(
    study: optuna.Study, searcher: OneShotSearcher, n_epochs: int, method: str
) -> None:
    trials = study.trials
    assert len(trials) == n_epochs
    assert [t.user_attrs["epoch"] for t in trials] == list(range(n_epochs))
    for t, record in zip(trials, searcher.history, strict=True):
        assert t.state == TrialState.COMPLETE
        assert t.system_attrs[METHOD_KEY] == method
        arch = searcher.space.architecture(t.params)  # valid in the space
        assert searcher.space.from_fixed_arc(searcher.space.to_fixed_arc(arch)) == arch
        assert arch == record.architecture and t.value == record.value
        assert t.distributions == searcher.space.distributions()
        for key in ("weight_steps", "entropy", "sparsity", "param_free_share", "relaxed_value"):
            assert isinstance(t.user_attrs[key], (int, float)), key
        assert 0.0 <= t.user_attrs["entropy"] <= 1.0
        tables = t.user_attrs[TABLES_KEY]
        assert isinstance(tables, str) and " " not in tables and tables.startswith("{")
        assert t.user_attrs["architecture"] == searcher.space.describe(arch)
    # The last value is the derived architecture's score on the final shared weights.
    assert searcher.score(searcher.history[-1].architecture) == trials[-1].value


def test_darts_end_to_end_on_the_embedded_corpus_in_sqlite(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, direction="minimize")
    searcher = DARTS(
        RNN,
        _corpus(),
        order=2,
        seed=0,
        supernet_kwargs=RNN_KW,
        batch_size=16,
        bptt=10,
        eval_batches=2,
    )
    result = searcher.search(study, n_steps=6, steps_per_epoch=3)
    _check_recorded(
        optuna.load_study(study_name=study.study_name, storage=sqlite_url), searcher, 2, "darts"
    )
    assert math.isfinite(result.value) and result.value > 1.0  # a perplexity
    assert result.n_weight_steps == 6 and searcher.weight_optimizer.param_groups[0]["lr"] == 20.0


def test_darts_end_to_end_on_digits_with_the_dashboard(sqlite_url: str, tmp_path: Path) -> None:
    from optuna_enas.dashboard import DashboardCallback

    study = optuna.create_study(storage=sqlite_url, direction="maximize")
    dashboard = DashboardCallback(MICRO, tmp_path / "artifacts", figures_every=None)
    searcher = DARTS(
        MICRO,
        _digits(),
        order=1,
        seed=0,
        supernet_kwargs=MICRO_KW,
        batch_size=32,
        eval_batches=2,
        dashboard=dashboard,
    )
    searcher.search(study, n_steps=4, steps_per_epoch=2)
    _check_recorded(study, searcher, 2, "darts")
    # DAG drawing registered as a trial artifact and a note per trial, for optuna-dashboard.
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert sum(k.startswith("dashboard:artifacts:") for k in attrs) == 2
    assert len(list((tmp_path / "artifacts").iterdir())) == 2
    assert all(0.0 <= t.value <= 1.0 for t in study.trials)  # accuracy
    # cosine schedule: epoch 1 of 2 runs at the midpoint of 0.025 and 0.001
    assert searcher.weight_optimizer.param_groups[0]["lr"] == pytest.approx(0.013)


# -- resume and reproducibility -------------------------------------------------------------------
class _Stop(Exception):
    pass


def _macro_darts(order: int, **kw: Any) -> DARTS:
    return DARTS(
        MACRO,
        _digits(),
        order=order,
        seed=3,
        supernet_kwargs=MACRO_KW,
        batch_size=16,
        eval_batches=1,
        **kw,
    )


@pytest.mark.parametrize("order", [1, 2])
def test_resumed_search_equals_the_uninterrupted_one(
    order: int, tmp_path: Path, sqlite_url: str
) -> None:
    plan = {"n_steps": 6, "steps_per_epoch": 2}
    full = _macro_darts(order)
    full_study = optuna.create_study(direction="maximize")
    full.search(full_study, **plan)

    ckpt = tmp_path / "darts.pt"
    study = optuna.create_study(storage=sqlite_url, direction="maximize")
    first = _macro_darts(order, checkpoint_path=ckpt)

    def stop_after_two(searcher: OneShotSearcher, record: EpochRecord) -> None:
        if record.epoch == 1:
            raise _Stop

    with pytest.raises(_Stop):
        first.search(study, callbacks=[stop_after_two], **plan)
    assert len(study.trials) == 2
    resumed = _macro_darts(order, checkpoint_path=ckpt, resume_from=ckpt)
    assert resumed.epoch == 2 and resumed.n_weight_steps == 4
    resumed.search(optuna.load_study(study_name=study.study_name, storage=sqlite_url), **plan)

    for a, b in zip(full.arch, resumed.arch, strict=True):
        assert torch.equal(a.detach(), b.detach())
    for a, b in zip(full.weights, resumed.weights, strict=True):
        assert torch.equal(a.detach(), b.detach())
    assert [t.params for t in study.trials] == [t.params for t in full_study.trials]
    assert [t.value for t in study.trials] == [t.value for t in full_study.trials]
    assert [r.relaxed_value for r in resumed.history] == [r.relaxed_value for r in full.history]

    with pytest.raises(ValueError, match="n_steps=6"):
        _macro_darts(order, resume_from=ckpt).search(None, n_steps=12, steps_per_epoch=3)
    with pytest.raises(ValueError, match="order"):
        _macro_darts(3 - order, resume_from=ckpt)


def test_same_seed_same_result_and_another_seed_differs() -> None:
    runs = []
    for seed in (5, 5, 6):
        searcher = DARTS(
            MACRO,
            _digits(),
            order=1,
            seed=seed,
            supernet_kwargs=MACRO_KW,
            batch_size=16,
            eval_batches=1,
        )
        result = searcher.search(None, n_steps=4, steps_per_epoch=2)
        runs.append(([a.detach().clone() for a in searcher.arch], result.value))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0], strict=True))
    assert runs[0][1] == runs[1][1]
    assert not all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[2][0], strict=True))


# -- arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order": 3}, "order"),
        ({"order": True}, "order"),
        ({"lr": -1.0}, "lr"),
        ({"arch_betas": (0.5,)}, "arch_betas"),
        ({"arch_betas": (0.5, 1.5)}, "arch_betas"),
        ({"train_portion": 0.0}, "train_portion"),
        ({"train_portion": 0.9995}, "train_portion"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_batches": 0}, "eval_batches"),
        ({"seed": -1}, "seed"),
        ({"collapse_threshold": 2.0}, "collapse_threshold"),
        ({"early_stop": "yes"}, "early_stop"),
        ({"distributed": True}, "torch.distributed"),
        ({"supernet_kwargs": {"generator": None}}, "generator"),
    ],
)
def test_darts_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"supernet_kwargs": MACRO_KW, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DARTS(MACRO, _digits(), **args)


def test_study_and_supernet_must_fit() -> None:
    searcher = _macro_darts(1)
    with pytest.raises(ValueError, match="direction 'maximize'"):
        searcher.search(optuna.create_study(direction="minimize"), n_steps=1)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        searcher.search(None, n_steps=1, steps_per_epoch=0)
    with pytest.raises(ValueError, match="'darts' relaxation"):
        DARTS(PlantedSupernet.SPACE, _digits(), supernet=_DsoStandIn(), supernet_kwargs=MACRO_KW)


class _DsoStandIn(PlantedSupernet):
    def __init__(self) -> None:
        super().__init__()
        self.relaxation = "dsonas"


def test_defaults_are_the_official_values() -> None:
    cnn = DARTS(MACRO, _digits(), seed=0, supernet_kwargs=MACRO_KW)
    assert (cnn.lr, cnn.lr_min, cnn.momentum, cnn.weight_decay, cnn.grad_clip) == (
        0.025,
        0.001,
        0.9,
        3e-4,
        5.0,
    )
    assert (cnn.arch_lr, cnn.arch_betas, cnn.arch_weight_decay) == (3e-4, (0.5, 0.999), 1e-3)
    assert cnn.batch_size == DARTS_CNN.batch_size == 64 and cnn.default_epochs == 50
    assert cnn.train_portion == 0.5
    rnn = DARTS(RNN, _corpus(), seed=0, supernet_kwargs=RNN_KW)
    assert (rnn.lr, rnn.lr_min, rnn.momentum, rnn.weight_decay, rnn.grad_clip) == (
        20.0,
        None,
        0.0,
        5e-7,
        0.25,
    )
    assert (rnn.arch_lr, rnn.arch_betas) == (3e-3, (0.9, 0.999))
    assert rnn.batch_size == DARTS_RNN.batch_size == 256 and rnn.bptt == 35
    assert cosine_lr(0, 50, 0.025, 0.001) == 0.025
    assert cosine_lr(50, 50, 0.025, 0.001) == pytest.approx(0.001)
