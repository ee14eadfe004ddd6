"""BatchedStorage: the same study as Optuna's storages, one write per trial, exact resume.

Real Optuna studies on real SQLite, journal and (when ``OPTUNA_ENAS_TEST_POSTGRES_URL`` is set)
PostgreSQL storages; crashes are real subprocesses killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages import RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.storage import BatchedStorage
from optuna_enas.storage import configure_sqlite
from optuna_enas.storage import fail_running_trials


optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

_REPO = Path(__file__).resolve().parents[1]
_ENV = {**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"}
SPACE = RNNCellSpace(n_nodes=4)
CONFIG = ControllerConfig(lstm_size=16, learning_rate=0.02, n_aggregate=3)


def objective(trial: optuna.Trial) -> float:
    """Parameters, user attrs, intermediate values, and PRUNED and FAIL trials."""
    arch = suggest_architecture(trial, SPACE)
    trial.set_user_attr("n", trial.number)
    trial.report(0.5, step=0)
    trial.report(0.25, step=1)
    if trial.number % 7 == 3:
        raise optuna.TrialPruned()
    if trial.number % 11 == 5:
        raise RuntimeError("a failing trial")
    return float(sum(v == "relu" for _, v in arch.params))


def _comparable(t: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    # ENASSampler's record names the sampler object (a random id per instance): left out.
    system = {
        k: {kk: vv for kk, vv in v.items() if kk != "sampler"} if isinstance(v, dict) else v
        for k, v in t.system_attrs.items()
    }
    return (
        t.number,
        t.state,
        t.values,
        t.params,
        t.distributions,
        t.user_attrs,
        system,
        t.intermediate_values,
    )


def _run(storage: Any, n_trials: int, *, name: str = "s") -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=ENASSampler(SPACE, seed=0, config=CONFIG),
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    study.enqueue_trial({"node0_act": "relu"}, skip_if_exists=False)  # a WAITING trial
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    template = study.trials[0]  # add_trial: a finished trial written whole
    study.add_trial(
        optuna.trial.create_trial(
            params=template.params,
            distributions=template.distributions,
            value=1.0,
            user_attrs={"added": True},
        )
    )
    return study


def _sqlite(path: Path) -> BatchedStorage:
    rdb = RDBStorage(f"sqlite:///{path}")
    configure_sqlite(rdb, synchronous="normal")
    return BatchedStorage(rdb)


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_batched_study_equals_the_plain_storage_study_with_one_write_per_trial(
    backend: str, tmp_path: Path
) -> None:
    n = 12  # trials 3 and 10 pruned, 5 failed
    if backend == "sqlite":
        plain: Any = RDBStorage(f"sqlite:///{tmp_path}/plain.db")
        configure_sqlite(plain, synchronous="normal")  # Optuna's own writes, fewer fsyncs
        batched = _sqlite(tmp_path / "batched.db")
        reopen: Any = f"sqlite:///{tmp_path}/batched.db"
    else:
        plain = JournalStorage(JournalFileBackend(str(tmp_path / "plain.log")))
        batched = BatchedStorage(JournalStorage(JournalFileBackend(str(tmp_path / "b.log"))))
        reopen = JournalStorage(JournalFileBackend(str(tmp_path / "b.log")))
    ref = _run(plain, n)
    got = _run(batched, n)
    # One trial write per trial: the enqueued trial's row (kept across a crash), then every
    # finished trial once (the add_trial one included). On a journal the enqueued trial's
    # writes pass through one by one.
    assert batched.n_transactions == 1 + n + 1
    stored = optuna.load_study(study_name="s", storage=reopen).trials
    expected = [_comparable(t) for t in optuna.load_study(study_name="s", storage=plain).trials]
    assert [_comparable(t) for t in stored] == expected
    assert [_comparable(t) for t in got.trials] == expected  # what the process saw
    states = [t.state for t in stored]
    assert TrialState.PRUNED in states and TrialState.FAIL in states
    assert stored[0].params["node0_act"] == "relu"  # the enqueued trial ran first
    assert [t.number for t in ref.trials] == list(range(n + 1))


def test_running_trial_lives_in_memory_and_reads_merge_it(tmp_path: Path) -> None:
    storage = _sqlite(tmp_path / "b.db")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    assert trial._trial_id < 0  # not in the database yet
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("u", 1)
    assert storage.get_trial(trial._trial_id).params == {"x": x}
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert [t.number for t in running] == [0]
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/b.db").trials == []
    frozen = study.tell(trial, 2.0)
    assert frozen.value == 2.0 and frozen.params == {"x": x} and frozen._trial_id > 0
    assert storage.get_trial(trial._trial_id)._trial_id == frozen._trial_id  # old id still works
    again = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/b.db").trials
    assert [(t.number, t.value, t.params, t.user_attrs) for t in again] == [
        (0, 2.0, {"x": x}, {"u": 1})
    ]
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_user_attr(trial._trial_id, "late", 1)
    # A parameter whose distribution clashes with the study's is refused, as by Optuna.
    other = study.ask()
    with pytest.raises(ValueError):
        other.suggest_int("x", 0, 5)


def test_a_second_writer_gets_the_next_number_and_is_refused_after(tmp_path: Path) -> None:
    a = _sqlite(tmp_path / "b.db")
    b = _sqlite(tmp_path / "b.db")
    study_a = optuna.create_study(storage=a, study_name="s")
    study_b = optuna.load_study(storage=b, study_name="s")
    assert study_b.trials == []  # b reads the study (empty) ...
    study_a.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trial = study_b.ask()  # ... a writes two trials; b still expects number 0
    trial.suggest_float("x", 0, 1)
    with pytest.raises(RuntimeError, match="another process wrote trials"):
        study_b.tell(trial, 1.0)  # written as trial 2 (the storage numbers it), then refused
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/b.db").trials
    assert [t.number for t in stored] == [0, 1, 2]
    assert [t.number for t in study_b.trials] == [0, 1, 2]  # b's view: the database's
    with pytest.raises(RuntimeError, match="another process wrote trials"):
        study_b.ask()  # b writes no more to the study


def test_running_trials_a_dead_process_left_are_failed_at_the_first_write(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = optuna.create_study(storage=url, study_name="s")  # an older version's plain storage
    old.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    old.ask().suggest_float("x", 0, 1)  # RUNNING when "killed"
    storage = _sqlite(tmp_path / "old.db")
    study = optuna.load_study(storage=storage, study_name="s")
    assert [t.state for t in study.trials][-1] == TrialState.RUNNING  # reading changes nothing
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    stored = optuna.load_study(study_name="s", storage=url).trials
    assert [t.state for t in stored] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert fail_running_trials(optuna.storages.get_storage(url), "s") == []


def test_shared_mode_is_optunas_own_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    storage = BatchedStorage(url, exclusive=False)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    other = optuna.load_study(study_name="s", storage=url).trials
    assert [(t.state, t.params) for t in other] == [(TrialState.RUNNING, {"x": x})]
    study.tell(trial, x)
    study.enqueue_trial({"node0_act": "relu"})
    study.optimize(objective, n_trials=8, catch=(RuntimeError,))
    assert storage.n_transactions == 0  # nothing batched
    assert study.trials[1].params["node0_act"] == "relu"
    assert study.get_trials(states=(TrialState.WAITING,)) == []
    stored = optuna.load_study(study_name="s", storage=url).trials
    assert [t.number for t in stored] == list(range(9))
    assert [_comparable(t) for t in stored] == [_comparable(t) for t in study.trials]
    # A trial another process failed meanwhile (a heartbeat) is not overwritten.
    late = study.ask()
    late.suggest_float("x", 0.0, 1.0)
    RDBStorage(url).set_trial_state_values(late._trial_id, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_state_values(late._trial_id, TrialState.COMPLETE, [1.0])
    assert optuna.load_study(study_name="s", storage=url).trials[-1].state == TrialState.FAIL


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="exclusive must be True or False, but got 1"):
        BatchedStorage(optuna.storages.InMemoryStorage(), exclusive=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend must be an Optuna storage"):
        BatchedStorage(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="synchronous must be one of full, normal"):
        configure_sqlite(RDBStorage("sqlite:///:memory:"), synchronous="off")


# -- a real process killed at any point --------------------------------------------------------
_CHILD = """
import json, os, sys, time
import optuna
sys.path.insert(0, {tests!r})
import test_storage_batching as m
optuna.logging.set_verbosity(optuna.logging.WARNING)
path, n, block_at, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
storage = m._sqlite(m.Path(path))
study = optuna.create_study(storage=storage, study_name="s", direction="maximize",
    sampler=m.ENASSampler(m.SPACE, seed=0, config=m.CONFIG), load_if_exists=True)
def objective(trial):
    value = m.objective(trial)
    if trial.number == block_at:
        open(marker, "w").write(str(trial.number))
        time.sleep(600)  # killed here, inside a trial with its parameters set
    return value
n_done = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)))
study.optimize(objective, n_trials=n - n_done, catch=(RuntimeError,))
"""


def _child(tmp_path: Path, db: Path, n: int, block_at: int) -> subprocess.Popen[bytes]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(_REPO / "tests")))
    marker = tmp_path / "blocked"
    marker.unlink(missing_ok=True)
    args = [sys.executable, str(script), str(db), str(n), str(block_at), str(marker)]
    return subprocess.Popen(args, env=_ENV, cwd=tmp_path, stderr=subprocess.PIPE)


def _finished(db: Path) -> list[optuna.trial.FrozenTrial]:
    if not db.exists():
        return []
    try:
        return optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    except KeyError:  # the study is not created yet (killed before it)
        return []


@pytest.mark.slow
def test_killed_process_resumes_exactly_with_every_finished_trial_once(tmp_path: Path) -> None:
    n = 20
    reference = tmp_path / "ref.db"
    ref_proc = _child(tmp_path, reference, n, block_at=-1)
    assert ref_proc.wait(timeout=240) == 0, ref_proc.stderr.read() if ref_proc.stderr else ""
    expected = [_comparable(t) for t in _finished(reference)]
    assert len(expected) == n

    db = tmp_path / "crash.db"
    # 1. Killed inside trial 8 (its parameters set, not written).
    proc = _child(tmp_path, db, n, block_at=8)
    deadline = time.monotonic() + 240
    while not (tmp_path / "blocked").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the child did not block"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after_kill = _finished(db)
    assert [t.number for t in after_kill] == list(range(8))  # trial 8 is not there at all
    assert all(t.state.is_finished() for t in after_kill)
    # 2. Killed at a moment nobody chose (sampling, writing, learning), twice.
    for delay in (3.0,):
        proc = _child(tmp_path, db, n, block_at=-1)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        numbers = [t.number for t in _finished(db)]
        assert numbers == list(range(len(numbers)))  # no gap, no duplicate, no RUNNING row
    # 3. Resumed to the end: the study an uninterrupted run makes.
    proc = _child(tmp_path, db, n, block_at=-1)
    assert proc.wait(timeout=240) == 0, proc.stderr.read() if proc.stderr else ""
    assert [_comparable(t) for t in _finished(db)] == expected


# -- several workers on PostgreSQL ---------------------------------------------------------------
_WORKER = """
import json, sys, time
import optuna
sys.path.insert(0, {tests!r})
import test_storage_batching as m
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name, worker, n, n_total, out = sys.argv[1:7]
storage = m.BatchedStorage(url, exclusive=False)
sampler = m.ENASSampler(m.SPACE, seed=int(worker), config=m.CONFIG)
study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
t0 = time.perf_counter()
study.optimize(m.objective, n_trials=int(n), catch=(RuntimeError,))
elapsed = time.perf_counter() - t0
deadline = time.monotonic() + 120
S = optuna.trial.TrialState
while len(study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.FAIL))) < int(
        n_total) and time.monotonic() < deadline:
    time.sleep(0.1)
sampler.sync(study)
json.dump({{"history": sorted(h["trial"] for h in sampler.history),
    "transactions": storage.n_transactions, "seconds": elapsed}}, open(out, "w"))
"""


@pytest.mark.postgres
def test_four_batched_workers_on_postgres_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    n_workers, n_trials = 4, 20
    n_total = n_workers * n_trials
    name = f"batched-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=postgres_url, direction="maximize")
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(tests=str(_REPO / "tests")))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                postgres_url,
                name,
                str(w),
                str(n_trials),
                str(n_total),
                str(tmp_path / f"w{w}.json"),
            ],
            env=_ENV,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for w in range(n_workers)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read() if p.stderr else ""
    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert sorted(t.number for t in trials) == list(range(n_total))
    assert len({t._trial_id for t in trials}) == n_total
    assert all(t.state.is_finished() for t in trials)
    assert all(set(t.params) == set(SPACE.names) for t in trials)
    assert all("enas:sample" in t.system_attrs for t in trials)
    finished = sorted(t.number for t in trials if t.state != TrialState.FAIL)
    for w in range(n_workers):
        report = json.loads((tmp_path / f"w{w}.json").read_text())
        assert report["transactions"] == 0  # shared mode: Optuna's own writes, none batched
        assert report["history"] == finished  # every worker learned from every trial once


# -- the CLI's default storage ------------------------------------------------------------------
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]


def test_cli_default_storage_is_batched_sqlite_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna_enas.cli import main
    from optuna_enas.cli._storage import DEFAULT_STORAGE
    from optuna_enas.cli._storage import open_storage

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "optuna-enas.db"
    writer = open_storage(DEFAULT_STORAGE, must_exist=False, writer=True)
    assert isinstance(writer, BatchedStorage) and writer.exclusive
    reader = open_storage(DEFAULT_STORAGE, must_exist=True)
    assert not isinstance(reader, BatchedStorage)
    for opened in (writer.backend, reader):  # no connection left open (WAL is left at the end)
        opened.engine.dispose()  # type: ignore[attr-defined]
    # An older version's study with a RUNNING trial left by a killed process.
    plain = RDBStorage(DEFAULT_STORAGE)
    old = optuna.create_study(storage=plain, study_name="old", direction="minimize")
    old.ask()
    plain.engine.dispose()  # SQLite leaves WAL only when no other connection is open
    assert main(["search", *_TINY, "--trials", "2", "--train-steps", "2"]) == 0  # no --storage
    with RDBStorage(DEFAULT_STORAGE).engine.connect() as conn:
        # WAL while it ran; the default journal again when it is done (read-only media).
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    assert main(["search", *_TINY, "--trials", "4", "--train-steps", "2"]) == 0  # resumed
    trials = optuna.load_study(study_name="enas-rnn-enas", storage=f"sqlite:///{db}").trials
    assert [(t.number, t.state) for t in trials] == [(i, TrialState.COMPLETE) for i in range(4)]
    assert all("enas:sample" in t.system_attrs and len(t.params) == 5 for t in trials)
    # A search on the old study's storage leaves that study's trials alone (other study).
    assert [
        t.state for t in optuna.load_study(study_name="old", storage=DEFAULT_STORAGE).trials
    ] == [TrialState.RUNNING]


@pytest.mark.slow
def test_cli_search_killed_with_sigkill_resumes_with_every_finished_trial_once(
    tmp_path: Path,
) -> None:
    from optuna_enas.cli import main

    db = tmp_path / "optuna-enas.db"
    cmd = [sys.executable, "-m", "optuna_enas", "--threads", "1", "search", *_TINY]
    cmd += ["--trials", "100000", "--train-steps", "2", "--log-every", "1000"]
    proc = subprocess.Popen(cmd, env=_ENV, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while True:
            done = [t for t in _cli_trials(db, polling=True) if t.state == TrialState.COMPLETE]
            if len(done) >= 3:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"no 3 trials before the kill: {err.decode()[-2000:]}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # no handler runs: mid-trial or mid-write
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    trials = _cli_trials(db)
    k = len(trials)
    assert [(t.number, t.state) for t in trials] == [(i, TrialState.COMPLETE) for i in range(k)]
    os.chdir(tmp_path)
    try:
        args = ["search", *_TINY, "--trials", str(k + 2), "--train-steps", "2"]
        assert main(args) == 0
    finally:
        os.chdir(_REPO)
    after = _cli_trials(db)
    assert [(t.number, t.state) for t in after] == [(i, TrialState.COMPLETE) for i in range(k + 2)]
    assert [t.params for t in after[:k]] == [t.params for t in trials]


def _cli_trials(db: Path, *, polling: bool = False) -> list[optuna.trial.FrozenTrial]:
    if not db.exists():
        return []
    try:
        return optuna.load_study(study_name="enas-rnn-enas", storage=f"sqlite:///{db}").trials
    except KeyError:  # the study is not created yet
        return []
    except Exception:  # polling while the writer creates the tables (locked, half-made schema)
        if polling:
            return []
        raise


def test_sampler_keys_a_batched_storage_by_its_database(tmp_path: Path) -> None:
    # The sampler's bookkeeping (what it has learned, per study) names the database, not the
    # wrapper object, so a resumed process or another wrapper finds the same key.
    from optuna_enas.sampler._sampler import _study_key

    url = f"sqlite:///{tmp_path}/k.db"
    rdb = optuna.storages.RDBStorage(url)
    assert _study_key(BatchedStorage(rdb), 1, "s") == ("rdb", url, 1, "s")
    assert _study_key(BatchedStorage(rdb), 1, "s") == _study_key(rdb, 1, "s")
