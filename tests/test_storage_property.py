"""Random ask / tell / fail / prune / enqueue / add_trial / resume sequences, side by side.

The same sequence runs on a ``BatchedStorage`` (exclusive, SQLite) and on a plain Optuna
``RDBStorage`` (SQLite); after every step the two studies must be equal: trial numbers,
states, values, params, user and system attrs, intermediate values and the trial notes the
dashboard shows. Both the batched view (what the process reads) and the batched database (what
any other reader sees; its running trials are in memory only) are compared. The default suite
runs 3 sequences of 40 steps (~10 s each); ``-m slow`` runs 5 of 150 (~40 s each).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from optuna_enas.storage import BatchedStorage
from optuna_enas.storage import configure_sqlite


optuna.logging.set_verbosity(optuna.logging.ERROR)
_OPS = ("ask", "tell", "fail", "prune", "enqueue", "add_trial", "resume", "attr", "report")


def _note_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = study._storage.get_study_system_attrs(study._study_id)
    return str(get_note_from_system_attrs(attrs, trial._trial_id)["body"])


def _save_note(study: optuna.Study, trial: optuna.trial.FrozenTrial, body: str) -> None:
    from optuna_dashboard import save_note

    handle = types.SimpleNamespace(storage=study._storage, study=study, _trial_id=trial._trial_id)
    save_note(handle, body)


def _rows(study: optuna.Study, *, finished_only: bool = False) -> list[tuple[Any, ...]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if finished_only and not t.state.is_finished():
            continue
        note = _note_of(study, t) if t.state.is_finished() else None
        rows.append(
            (t.number, t.state, t.values, t.params, t.user_attrs, t.system_attrs,
             str(t.intermediate_values), note)
        )  # fmt: skip
    return rows


class _Side:
    """One storage running the sequence: a study and its running trials, by number."""

    def __init__(self, storage: Any, name: str) -> None:
        self.storage = storage
        self.study = optuna.create_study(
            storage=storage, study_name=name, sampler=optuna.samplers.RandomSampler(seed=0),
            load_if_exists=True,
        )  # fmt: skip
        self.running: dict[int, optuna.Trial] = {}

    def reopen(self, storage: Any) -> None:
        sampler = self.study.sampler
        self.storage = storage
        self.study = optuna.load_study(
            storage=storage, study_name=self.study.study_name, sampler=sampler
        )


def _run_sequence(tmp_path: Path, seed: int, n_steps: int) -> None:
    rng = np.random.default_rng(seed)
    url = f"sqlite:///{tmp_path}/batched-{seed}.db"

    def batched() -> BatchedStorage:
        rdb = RDBStorage(url)
        configure_sqlite(rdb, synchronous="normal")
        return BatchedStorage(rdb)

    plain = _Side(RDBStorage(f"sqlite:///{tmp_path}/plain-{seed}.db"), "s")
    ours = _Side(batched(), "s")
    sides = (plain, ours)
    reader = RDBStorage(url)  # what any other process reads (no cache)
    for step in range(n_steps):
        op = _OPS[int(rng.integers(len(_OPS)))]
        if op in ("tell", "fail", "prune", "attr", "report") and not plain.running:
            op = "ask"
        if op == "resume" and plain.running:
            op = "tell"  # a resume with running trials would lose them on one side only
        number = int(rng.choice(sorted(plain.running))) if plain.running else -1
        value = float(rng.normal())
        if op == "ask":
            for side in sides:
                trial = side.study.ask()
                trial.suggest_float("x", 0.0, 1.0)
                trial.suggest_categorical("c", ["a", "b", "c"])
                side.running[trial.number] = trial
            assert plain.running.keys() == ours.running.keys()
        elif op in ("tell", "fail", "prune"):
            state = {"tell": TrialState.COMPLETE, "fail": TrialState.FAIL}.get(
                op, TrialState.PRUNED
            )
            for side in sides:
                trial = side.running.pop(number)
                frozen = side.study.tell(
                    trial, value if state == TrialState.COMPLETE else None, state=state
                )
                _save_note(side.study, frozen, f"note of trial {frozen.number}: {value}")
        elif op == "enqueue":
            for side in sides:
                side.study.enqueue_trial({"x": round(value % 1.0, 3)}, skip_if_exists=False)
        elif op == "add_trial":
            template = optuna.trial.create_trial(
                params={"x": 0.5, "c": "b"},
                distributions={
                    "x": optuna.distributions.FloatDistribution(0.0, 1.0),
                    "c": optuna.distributions.CategoricalDistribution(["a", "b", "c"]),
                },
                value=value,
                user_attrs={"added": [step]},
            )
            for side in sides:
                side.study.add_trial(template)
        elif op == "attr":
            payload = [step, {"v": value}]
            for side in sides:
                side.running[number].set_user_attr("a", payload)
                side.running[number].storage.set_trial_system_attr(
                    side.running[number]._trial_id, "s", {"step": step}
                )
            payload.append("changed later")  # stored as it was when set
        elif op == "report":
            for side in sides:
                side.running[number].report(value, step=step)
        elif op == "resume":
            ours.reopen(batched())
            plain.reopen(RDBStorage(f"sqlite:///{tmp_path}/plain-{seed}.db"))
        want = _rows(plain.study)
        assert _rows(ours.study) == want, (seed, step, op)
        stored = optuna.load_study(study_name="s", storage=reader)
        # The database: every finished trial; running ones only where they had to be written.
        assert _rows(stored, finished_only=True) == _rows(plain.study, finished_only=True)
        assert len(stored.trials) <= len(want)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_storage_equals_plain_storage_after_every_step(seed: int, tmp_path: Path) -> None:
    _run_sequence(tmp_path, seed, n_steps=40)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 8))
def test_batched_storage_equals_plain_storage_long_sequences(seed: int, tmp_path: Path) -> None:
    _run_sequence(tmp_path, seed, n_steps=150)
