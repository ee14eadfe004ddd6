"""Bad input, table-driven: every error names the argument and the value, and nothing is written.

Each case builds what it needs (a study, files) and returns an :class:`Action`: the call that
must raise, plus the study, sampler or files that must be left as they were. The check after
the raise is the same for every case: no new COMPLETE trial, no new ``enas:stats`` attribute,
the controller untouched, the files byte for byte the same.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import sqlalchemy.exc
import torch
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas import make_space
from optuna_enas import space_from_dict
from optuna_enas import suggest_architecture
from optuna_enas.data import load_cifar10
from optuna_enas.data import load_corpus
from optuna_enas.data import synthetic_corpus
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._evaluator import SupernetEvaluator


optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = RNNCellSpace(n_nodes=4)
FAST = ControllerConfig(lstm_size=8, n_aggregate=1, learning_rate=0.02)
TINY = {"embed_size": 8, "hidden_size": 8}


def relu_count(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE, record=False)
    return float(sum(v == "relu" for _, v in arch.params))


def tiny_corpus() -> Any:
    return synthetic_corpus(n_train_tokens=2000, n_valid_tokens=200, n_test_tokens=200)


@dataclass
class Action:
    """What a case does: ``run`` must raise; the rest must be unchanged afterwards."""

    run: Callable[[], object]
    study: optuna.Study | None = None
    sampler: ENASSampler | None = None
    files: list[Path] = field(default_factory=list)
    after: Callable[[], None] | None = None  # case-specific checks after the raise


def _study_with_sampler(tmp_path: Path) -> Action:
    """An RDB study with two COMPLETE trials, learned by its ENASSampler."""
    sampler = ENASSampler(SPACE, seed=0, config=FAST)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/bad.db", sampler=sampler, direction="maximize"
    )
    study.optimize(relu_count, n_trials=2)
    return Action(run=lambda: None, study=study, sampler=sampler)


# -- cases that need setup ----------------------------------------------------------------------
def multi_objective(tmp_path: Path) -> Action:
    sampler = ENASSampler(SPACE, seed=0, config=FAST)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/mo.db",
        sampler=sampler,
        directions=["maximize", "minimize"],
    )

    def after() -> None:
        (trial,) = study.trials
        assert trial.state == TrialState.FAIL
        assert not any(k.startswith("enas:") for k in trial.system_attrs)

    return Action(
        run=lambda: study.optimize(lambda t: (relu_count(t), 1.0), n_trials=1),
        study=study,
        sampler=sampler,
        after=after,
    )


def enqueue_wrong_type(value: dict[str, Any]) -> Callable[[Path], Action]:
    def build(tmp_path: Path) -> Action:
        action = _study_with_sampler(tmp_path)
        study, sampler = action.study, action.sampler
        assert study is not None and sampler is not None
        study.enqueue_trial(value)

        def after() -> None:
            assert study.trials[-1].state == TrialState.FAIL
            n = len(sampler.history)
            study.optimize(relu_count, n_trials=2)  # the study continues
            assert [t.state for t in study.trials[-2:]] == [TrialState.COMPLETE] * 2
            assert len(sampler.history) == n + 2

        action.run = lambda: study.optimize(relu_count, n_trials=1)
        action.after = after
        return action

    return build


def clashing_study(tmp_path: Path) -> Action:
    other = RNNCellSpace(n_nodes=4, activations=["relu", "tanh"])
    url = f"sqlite:///{tmp_path}/clash.db"
    first = optuna.create_study(storage=url, study_name="s", direction="maximize")
    first.optimize(
        lambda t: float(len(suggest_architecture(t, other, record=False).params)), n_trials=2
    )
    sampler = ENASSampler(SPACE, seed=0, config=FAST)
    study = optuna.load_study(study_name="s", storage=url, sampler=sampler)

    def after() -> None:
        assert study.trials[-1].state == TrialState.FAIL

    return Action(
        run=lambda: study.optimize(relu_count, n_trials=1),
        study=study,
        sampler=sampler,
        after=after,
    )


def missing_corpus(tmp_path: Path) -> Action:
    return Action(run=lambda: load_corpus(tmp_path / "no-such-corpus"))


def non_utf8_corpus(tmp_path: Path) -> Action:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "train.txt").write_bytes("the caf\u00e9 opens\n".encode("latin-1"))
    (root / "valid.txt").write_text("the opens\n")
    (root / "test.txt").write_text("the opens\n")
    return Action(run=lambda: load_corpus(root), files=[root / "train.txt"])


def corrupt_cifar(tmp_path: Path) -> Action:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"labels": [int(v) for v in rng.integers(0, 10, 4)],
            b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
        }
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    good = (root / "data_batch_2").read_bytes()
    (root / "data_batch_2").write_bytes(good[: len(good) // 2])  # a torn download
    return Action(run=lambda: load_cifar10(root, n_valid=2), files=[root / "data_batch_2"])


def garbage_checkpoint(tmp_path: Path) -> Action:
    path = tmp_path / "supernet.pt"
    path.write_bytes(b"\x89PNG not a checkpoint" * 20)
    # checkpoint_path is the same file: a failed resume must not overwrite it.
    return Action(
        run=lambda: SupernetEvaluator(
            SPACE,
            tiny_corpus(),
            supernet_kwargs=TINY,
            checkpoint_path=path,
            checkpoint_every=1,
            resume_from=path,
        ),
        files=[path],
    )


def other_space_checkpoint(tmp_path: Path) -> Action:
    path = tmp_path / "rnn3.pt"
    SupernetEvaluator(RNNCellSpace(n_nodes=3), tiny_corpus(), supernet_kwargs=TINY, seed=0).save(
        path
    )
    return Action(
        run=lambda: SupernetEvaluator(
            SPACE, tiny_corpus(), supernet_kwargs=TINY, seed=0, resume_from=path
        ),
        files=[path],
    )


def foreign_checkpoint(tmp_path: Path) -> Action:
    path = tmp_path / "foreign.pt"
    save_checkpoint({"kind": "SomethingElse", "weights": torch.zeros(2)}, path)
    return Action(run=lambda: SupernetEvaluator.load(path, tiny_corpus()), files=[path])


def unreachable_postgres(tmp_path: Path) -> Action:
    return Action(
        run=lambda: optuna.create_study(
            study_name="never", storage="postgresql+psycopg2://u@127.0.0.1:1/x"
        )
    )


def mirror_other_direction(tmp_path: Path) -> Action:
    """A maximize study mirrored into an existing minimize study: refused, journal untouched."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from optuna_enas import TrialMirror

    path = tmp_path / "nas.log"
    journal = JournalStorage(JournalFileBackend(str(path)))
    optuna.create_study(storage=journal, study_name="nas", direction="minimize")
    study = optuna.create_study(direction="maximize")

    def run() -> None:
        with TrialMirror(journal, study_name="nas") as mirror:
            study.optimize(relu_count, n_trials=1, callbacks=[mirror])

    return Action(run=run, files=[path])


def evaluator(**kwargs: Any) -> Callable[[Path], Action]:
    space = kwargs.pop("space", SPACE)

    def build(tmp_path: Path) -> Action:
        return Action(
            run=lambda: SupernetEvaluator(space, tiny_corpus(), supernet_kwargs=TINY, **kwargs)
        )

    return build


def call(fn: Callable[[], object]) -> Callable[[Path], Action]:
    return lambda tmp_path: Action(run=fn)


def case(
    id_: str,
    build: Callable[[Path], Action],
    exc: type[BaseException],
    match: str,
    *,
    skip_if: bool = False,
) -> Any:
    """One row: ``build`` sets it up; ``exc`` must be raised with a message matching ``match``
    (a regex naming the argument and the value)."""
    marks = [pytest.mark.skipif(skip_if, reason="not applicable here")] if skip_if else []
    return pytest.param(build, exc, match, id=id_, marks=marks)


VE = ValueError
# fmt: off
CASES = [
    # search spaces
    case("rnn-n_nodes-zero", call(lambda: RNNCellSpace(n_nodes=0)), VE, r"n_nodes.*\b0\b"),
    case("macro-n_layers-float", call(lambda: MacroSpace(n_layers=2.0)), VE, r"n_layers.*2\.0"),  # type: ignore[arg-type]
    case("micro-n_nodes-bool", call(lambda: MicroSpace(n_nodes=True)), VE, r"n_nodes.*True"),
    case("rnn-unknown-activation", call(lambda: RNNCellSpace(activations=["tanh", "swish"])),
         VE, r"activations.*swish"),
    case("micro-unknown-op", call(lambda: MicroSpace(ops=["sep3x3", "conv7x7"])), VE,
         r"ops.*conv7x7"),
    case("make_space-unknown", call(lambda: make_space("nasbench201")), VE,
         r"space.*nasbench201"),
    case("space_from_dict-missing-key",
         call(lambda: space_from_dict({"type": "rnn", "n_nodes": 2})), VE,
         r"activations is missing.*'n_nodes': 2"),
    case("space_from_dict-not-a-dict", call(lambda: space_from_dict("rnn")), VE,  # type: ignore[arg-type]
         r"data must be a dict.*'rnn'"),
    # the sampler and the study
    case("sampler-search_space-str", call(lambda: ENASSampler("rnn")), VE, r"search_space.*str"),  # type: ignore[arg-type]
    case("sampler-seed-float", call(lambda: ENASSampler(SPACE, seed=1.5)), VE, r"seed.*1\.5"),  # type: ignore[arg-type]
    case("sampler-unknown-preset", call(lambda: ENASSampler(SPACE, config="enas-v3")), VE,
         r"preset.*enas-v3"),
    case("multi-objective-study", multi_objective, VE, r"multi-objective.*ENASSampler"),
    case("enqueue-int-for-str", enqueue_wrong_type({"node0_act": 3}), VE,
         r"'3' not in \('tanh', 'relu'"),
    case("enqueue-out-of-choices", enqueue_wrong_type({"node2_in": 5}), VE,
         r"'5' not in \(0, 1\)"),
    case("study-clashes-with-space", clashing_study, VE, r"clashes.*'node0_act'"),
    # controller configuration
    case("config-lstm_size-negative", call(lambda: ControllerConfig(lstm_size=-3)), VE,
         r"lstm_size.*-3"),
    case("config-grad_clip-zero", call(lambda: ControllerConfig(grad_clip=0.0)), VE,
         r"grad_clip.*0\.0"),
    case("config-importance_weight_clip-inf",
         call(lambda: ControllerConfig(importance_weight_clip=math.inf)), VE,
         r"importance_weight_clip.*inf"),
    case("config-baseline_decay-negative", call(lambda: ControllerConfig(baseline_decay=-0.5)),
         VE, r"baseline_decay.*-0\.5"),
    case("config-preset-unknown-field",
         call(lambda: ControllerConfig.from_preset("enas-official-ptb", lstm_sizes=3)), VE,
         r"lstm_sizes"),
    # data files
    case("corpus-dir-missing", missing_corpus, FileNotFoundError, r"path=.*no-such-corpus"),
    case("corpus-train-not-utf8", non_utf8_corpus, VE, r"train\.txt.*UTF-8"),
    case("cifar-truncated-pickle", corrupt_cifar, VE, r"data_batch_2.*CIFAR-10"),
    # checkpoints
    case("resume-from-garbage", garbage_checkpoint, VE, r"path=.*supernet\.pt"),
    case("resume-from-other-space", other_space_checkpoint, VE,
         r"resume_from=.*rnn3\.pt.*another search space"),
    case("load-foreign-checkpoint", foreign_checkpoint, VE,
         r"foreign\.pt.*not a SupernetEvaluator checkpoint"),
    # storage
    case("storage-unreachable", unreachable_postgres, sqlalchemy.exc.OperationalError,
         r"127\.0\.0\.1.*port 1\b"),
    case("mirror-into-study-of-other-direction", mirror_other_direction, VE,
         r"directions.*\['minimize'\].*\['maximize'\]"),
    # SupernetEvaluator arguments
    case("evaluator-n_train_steps-negative", evaluator(n_train_steps=-1), VE,
         r"n_train_steps.*-1"),
    case("evaluator-device-unknown", evaluator(device="tpu9"), VE, r"device.*'tpu9'"),
    case("evaluator-device-cuda-missing", evaluator(device="cuda:0"), VE,
         r"device='cuda:0' is not available", skip_if=torch.cuda.is_available()),
    case("evaluator-batch_size-zero", evaluator(batch_size=0), VE, r"batch_size.*\b0\b"),
    case("evaluator-checkpoint_every-zero", evaluator(checkpoint_every=0), VE,
         r"checkpoint_every.*\b0\b"),
    case("evaluator-momentum-one", evaluator(momentum=1.0), VE, r"momentum.*1\.0"),
    case("evaluator-lr-nan", evaluator(lr=math.nan), VE, r"lr.*nan"),
    case("evaluator-corpus-for-macro", evaluator(space=MacroSpace(n_layers=2)), VE,
         r"data must be ImageData.*macro"),
    case("evaluator-custom-space",
         evaluator(space=SearchSpace([RNNCellSpace(n_nodes=2).decisions[0]])), VE,
         r"space must be an RNNCellSpace.*custom"),
]
# fmt: on


@pytest.mark.parametrize(("build", "exc", "match"), CASES)
def test_bad_input_raises_a_named_error_and_writes_nothing(
    build: Callable[[Path], Action], exc: type[BaseException], match: str, tmp_path: Path
) -> None:
    action = build(tmp_path)
    study, sampler = action.study, action.sampler
    n_before = len(study.trials) if study is not None else 0
    state = {k: v.clone() for k, v in sampler.controller.state_dict().items()} if sampler else {}
    n_history = len(sampler.history) if sampler else 0
    files = {p: p.read_bytes() for p in action.files}

    with pytest.raises(exc, match=match):
        action.run()

    if study is not None:
        new = study.trials[n_before:]
        assert all(t.state != TrialState.COMPLETE for t in new)
        assert all("enas:stats" not in t.system_attrs for t in new)
    if sampler is not None:
        assert len(sampler.history) == n_history
        after = sampler.controller.state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state)
    for path, content in files.items():
        assert path.read_bytes() == content, f"{path} was modified"
    assert [p.name for p in tmp_path.glob("*.tmp")] == []  # no half-written checkpoint
    if action.after is not None:
        action.after()


def test_corpus_with_utf8_byte_order_mark_reads_like_without(tmp_path: Path) -> None:
    """A file saved by a Windows editor starts with a BOM: not part of the first word."""
    plain, bom = tmp_path / "plain", tmp_path / "bom"
    for root, prefix in ((plain, b""), (bom, b"\xef\xbb\xbf")):
        root.mkdir()
        for name in ("train.txt", "valid.txt", "test.txt"):
            (root / name).write_bytes(prefix + b"the cat sat\nthe dog ran\n")
    a, b = load_corpus(plain), load_corpus(bom)
    assert not any("\ufeff" in w for w in b.vocab)
    assert b.vocab == a.vocab
    assert torch.equal(b.train, a.train) and torch.equal(b.valid, a.valid)
