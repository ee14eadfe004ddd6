"""DSO-NAS: weight-only warm-up, APG on lambda with exact zeros, pruning, the FLOPs-adaptive
penalty, derivation, end-to-end searches in SQLite studies, resume equality and defaults."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._corpus import load_corpus
from optuna_enas.data._images import ImageData
from optuna_enas.data._images import load_digits_dataset
from optuna_enas.oneshot._dsonas import DSONAS
from optuna_enas.oneshot._record import METHOD_KEY
from optuna_enas.oneshot._searcher import EpochRecord
from optuna_enas.oneshot._searcher import OneShotSearcher


pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::optuna_enas.oneshot._collapse.CollapseWarning"),
]
optuna.logging.set_verbosity(optuna.logging.WARNING)

MACRO = MacroSpace(n_layers=3)
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


def _macro(**kw: Any) -> DSONAS:
    args: dict[str, Any] = {
        "seed": 0,
        "supernet_kwargs": MACRO_KW,
        "batch_size": 16,
        "eval_batches": 1,
        "gamma": 0.5,
        "warmup_fraction": 0.25,
        "prune_every": 1,
    }
    args.update(kw)
    return DSONAS(MACRO, _digits(), **args)


def test_warmup_trains_weights_only_then_apg_zeroes_and_prunes_lambda(sqlite_url: str) -> None:
    searcher = _macro()
    lam0 = [p.detach().clone() for p in searcher.arch]
    w0 = [p.detach().clone() for p in searcher.weights]
    seen: list[dict[str, Any]] = []

    def watch(s: OneShotSearcher, record: EpochRecord) -> None:
        assert isinstance(s, DSONAS)
        seen.append(
            {
                "lam": [p.detach().clone() for p in s.arch],
                "pruned": s.lambda_optimizer.n_pruned(),
                "phase": record.phase,
            }
        )

    study = optuna.create_study(storage=sqlite_url, direction="maximize")
    searcher.search(study, n_steps=12, steps_per_epoch=3, callbacks=[watch])
    # Epoch 0 is the warm-up (3 of 12 steps): lambda untouched, the weights trained.
    assert [s["phase"] for s in seen] == ["warmup", "search", "search", "search"]
    assert all(torch.equal(a, b) for a, b in zip(seen[0]["lam"], lam0, strict=True))
    assert not all(torch.equal(a.detach(), b) for a, b in zip(searcher.weights, w0, strict=True))
    # Then the APG steps set entries to exactly 0; pruned entries stay 0 and their count grows.
    final = torch.cat([p.detach().flatten() for p in searcher.arch])
    assert int((final == 0).sum()) > 0 and bool((final >= 0).all())
    pruned = [s["pruned"] for s in seen]
    assert pruned == sorted(pruned) and pruned[-1] > 0
    for later in seen[2:]:
        for a, b in zip(seen[1]["lam"], later["lam"], strict=True):
            assert bool((b[a == 0] == 0).all())
    trials = study.trials
    assert [t.user_attrs["phase"] for t in trials] == [s["phase"] for s in seen]
    assert trials[0].user_attrs["sparsity"] == 0.0 and trials[-1].user_attrs["sparsity"] > 0.0
    assert trials[-1].user_attrs["n_pruned"] == pruned[-1]
    assert all(t.system_attrs[METHOD_KEY] == "dsonas" for t in trials)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # A macro skip is derived iff its lambda is non-zero.
    arch = searcher.model.derive()
    skips = [v for name, v in arch.params if "_skip" in name]
    skip_lambda = dict(searcher.model.named_arch_parameters())["skips"].detach()
    assert sum(skips) == int((skip_lambda != 0).sum())  # type: ignore[arg-type]


def test_a_larger_gamma_prunes_more() -> None:
    sparsity = []
    for gamma in (0.0, 0.5):
        searcher = _macro(gamma=gamma)
        searcher.search(None, n_steps=12, steps_per_epoch=3)
        sparsity.append(searcher.history[-1].summary["sparsity"])
    assert sparsity[0] < sparsity[1]


def test_flops_adaptive_penalty_weights_follow_sparse_groups() -> None:
    searcher = _macro(adaptive_flops=True)
    groups = searcher.model.sparse_groups()
    weights = [w for w in searcher.penalty_weights if w is not None]
    assert len(weights) == len(groups)
    flat = torch.cat([w.flatten() for w in weights])
    assert float(flat.mean()) == pytest.approx(1.0, rel=1e-5)
    flops = torch.cat([f.flatten() for _, f in groups])
    # more FLOPs, more penalty (entries with FLOPs > 0)
    pos = flops > 0
    order = torch.argsort(flops[pos])
    assert bool((flat[pos][order].diff() >= -1e-6).all())
    plain = _macro()  # the official plain L1 is the default
    assert not plain.adaptive_flops
    assert plain.penalty_weights == [None] * len(plain.arch)
    assert plain.regularized_objective(1.0) == pytest.approx(
        1.0 + 0.5 * sum(float(p.detach().abs().sum()) for p in plain.arch)
    )


def test_dsonas_end_to_end_on_the_embedded_corpus_and_on_digits(sqlite_url: str) -> None:
    rnn_study = optuna.create_study(storage=sqlite_url, study_name="rnn", direction="minimize")
    rnn = DSONAS(
        RNN,
        _corpus(),
        seed=0,
        supernet_kwargs=RNN_KW,
        batch_size=16,
        bptt=10,
        eval_batches=2,
        gamma=0.05,
    )
    result = rnn.search(rnn_study, n_steps=6, steps_per_epoch=3)
    assert math.isfinite(result.value) and result.value > 1.0
    micro_study = optuna.create_study(storage=sqlite_url, study_name="micro", direction="maximize")
    micro = DSONAS(
        MICRO,
        _digits(),
        seed=0,
        supernet_kwargs=MICRO_KW,
        batch_size=32,
        eval_batches=2,
        gamma=0.05,
    )
    micro.search(micro_study, n_steps=4, steps_per_epoch=2)
    for study, searcher in ((rnn_study, rnn), (micro_study, micro)):
        trials = optuna.load_study(study_name=study.study_name, storage=sqlite_url).trials
        assert len(trials) == 2
        for t, record in zip(trials, searcher.history, strict=True):
            arch = searcher.space.architecture(t.params)
            assert searcher.space.from_fixed_arc(searcher.space.to_fixed_arc(arch)) == arch
            assert arch == record.architecture and t.value == record.value
            assert t.state == TrialState.COMPLETE


class _Stop(Exception):
    pass


def test_resumed_dsonas_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    plan = {"n_steps": 12, "steps_per_epoch": 3}
    full = _macro()
    full.search(None, **plan)
    ckpt = tmp_path / "dsonas.pt"

    def stop(searcher: OneShotSearcher, record: EpochRecord) -> None:
        if record.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        _macro(checkpoint_path=ckpt).search(None, callbacks=[stop], **plan)
    resumed = _macro(resume_from=ckpt)
    resumed.search(None, **plan)
    for a, b in zip(full.arch, resumed.arch, strict=True):
        assert torch.equal(a.detach(), b.detach())
    for a, b in zip(full.weights, resumed.weights, strict=True):
        assert torch.equal(a.detach(), b.detach())
    assert resumed.lambda_optimizer.n_pruned() == full.lambda_optimizer.n_pruned()
    assert [r.value for r in resumed.history] == [r.value for r in full.history]
    with pytest.raises(ValueError, match="adaptive_flops"):
        _macro(resume_from=ckpt, adaptive_flops=True)
    with pytest.raises(ValueError, match="not a darts searcher checkpoint"):
        from optuna_enas.oneshot._darts import DARTS

        DARTS(MACRO, _digits(), seed=0, supernet_kwargs=MACRO_KW, batch_size=16, resume_from=ckpt)


def test_dsonas_defaults_are_the_official_values() -> None:
    s = DSONAS(MACRO, _digits(), seed=0, supernet_kwargs=MACRO_KW)
    assert (s.lr, s.warmup_lr, s.momentum, s.nesterov, s.weight_decay) == (
        0.1,
        0.05,
        0.9,
        True,
        1e-4,
    )
    assert (s.grad_clip_value, s.gamma, s.lambda_lr, s.lambda_momentum) == (2.0, 0.001, 0.1, 0.9)
    assert (s.batch_size, s.warmup_fraction, s.prune_every, s.default_epochs) == (
        128,
        0.5,
        5,
        240,
    )
    assert not s.adaptive_flops and s.train_portion == 0.5  # cfgs.py: ad_flops = False
    r = DSONAS(RNN, _corpus(), seed=0, supernet_kwargs=RNN_KW)
    assert (r.lr, r.grad_clip, r.grad_clip_value, r.batch_size) == (5.0, 0.25, None, 64)
    assert r.lambda_lr == 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"lambda_lr": 0.0}, "lambda_lr"),
        ({"warmup_fraction": 1.0}, "warmup_fraction"),
        ({"prune_every": 0}, "prune_every"),
        ({"adaptive_flops": 1}, "adaptive_flops"),
        ({"grad_clip_value": 0.0}, "grad_clip_value"),
        ({"momentum": 1.0}, "momentum"),
    ],
)
def test_dsonas_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _macro(**kwargs)
