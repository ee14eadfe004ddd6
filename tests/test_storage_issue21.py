"""Issue #21: nothing lost, nothing hidden by BatchedStorage (real SQLite, real studies).

Dashboard notes under the trial's id in the database (CLI and Python searches, read through
optuna-dashboard's own app), unique trial numbers with two exclusive writers, an enqueued
trial run by the next process, add_trial and the sampler, attribute snapshots, shared mode
with Optuna's own writes, WAL left when the CLI is done.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.cli import main
from optuna_enas.dashboard import DashboardCallback
from optuna_enas.storage import BatchedStorage
from optuna_enas.storage import SecondWriterError
from optuna_enas.storage import configure_sqlite


optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPACE = RNNCellSpace(n_nodes=3)
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]


def _batched(db: Path) -> BatchedStorage:
    rdb = RDBStorage(f"sqlite:///{db}")
    configure_sqlite(rdb, synchronous="normal")
    return BatchedStorage(rdb)


def _objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE)
    return float(sum(SPACE.to_indices(arch)))


def _dashboard_trials(db: Path, artifacts: Path, study_name: str) -> list[dict[str, Any]]:
    """The trials of ``study_name`` as optuna-dashboard's own server app returns them."""
    from optuna_dashboard import wsgi

    app = wsgi(f"sqlite:///{db}", artifact_store=FileSystemArtifactStore(str(artifacts)))

    def get(path: str) -> tuple[str, bytes]:
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
        }
        chunks = app(environ, lambda s, h, *a: status.append(s))
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return status[0], body

    summaries = json.loads(get("/api/studies")[1])["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == study_name]
    trials = json.loads(get(f"/api/studies/{study_id}")[1])["trials"]
    for trial in trials:
        (meta,) = [a for a in trial["artifacts"] if a["mimetype"] == "image/svg+xml"]
        path = f"/artifacts/{study_id}/{trial['trial_id']}/{meta['artifact_id']}"
        trial["svg_path"] = path
        status, svg = get(path)
        trial["svg"] = svg if status.startswith("200") else b""
    return trials


def _assert_every_note_shows_its_picture(trials: list[dict[str, Any]], n: int) -> None:
    assert len(trials) == n
    for trial in trials:
        assert trial["trial_id"] > 0
        assert f"![architecture]({trial['svg_path']})" in trial["note"]["body"]
        assert trial["svg"].startswith(b"<svg")
        assert f"Trial {trial['number']}".encode() in trial["svg"]


def test_python_search_on_batched_storage_has_a_note_per_trial(tmp_path: Path) -> None:
    db, artifacts = tmp_path / "p.db", tmp_path / "art"
    callback = DashboardCallback(SPACE, artifacts, figures_every=None)
    study = optuna.create_study(
        storage=_batched(db), study_name="py", sampler=ENASSampler(SPACE, seed=0)
    )
    study.optimize(callback.wrap(_objective), n_trials=3, callbacks=[callback])
    _assert_every_note_shows_its_picture(_dashboard_trials(db, artifacts, "py"), 3)
    attrs = RDBStorage(f"sqlite:///{db}").get_study_system_attrs(study._study_id)
    assert not [k for k in attrs if k.startswith("dashboard:-")]  # no temporary ids


def test_cli_search_has_a_note_per_trial_and_leaves_no_wal(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert main(["search", "--storage", f"sqlite:///{db}", *_TINY, "--trials", "3"]) == 0
    trials = _dashboard_trials(db, tmp_path / "c-artifacts", "enas-rnn-enas")
    _assert_every_note_shows_its_picture(trials, 3)
    # The file is a plain SQLite database again: readable from read-only media.
    assert not (tmp_path / "c.db-wal").exists()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_two_exclusive_writers_racing_never_share_a_trial_number(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    a, b = _batched(db), _batched(db)
    study_a = optuna.create_study(storage=a, study_name="s")
    study_b = optuna.load_study(storage=b, study_name="s")
    assert study_a.trials == [] and study_b.trials == []
    trial_a, trial_b = study_a.ask(), study_b.ask()  # both expect number 0
    for t in (trial_a, trial_b):
        t.suggest_float("x", 0, 1)
    armed = [True]

    def write_a_first(*_: Any) -> None:  # b has read; a writes before b's next statement
        if armed[0]:
            armed[0] = False
            worker = threading.Thread(target=study_a.tell, args=(trial_a, 1.0))
            worker.start()
            worker.join()

    engine = b.backend.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "after_cursor_execute", write_a_first)
    with pytest.raises(RuntimeError, match="another process wrote trials"):
        study_b.tell(trial_b, 2.0)
    sqlalchemy.event.remove(engine, "after_cursor_execute", write_a_first)
    assert not armed[0]
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert sorted(t.number for t in stored) == [0, 1]  # unique numbers, nothing lost
    assert sorted(t.value for t in stored) == [1.0, 2.0]
    assert [t.number for t in study_b.trials] == [0, 1]  # b's view: the database's
    with pytest.raises(SecondWriterError):  # b writes no more to the study
        study_b.ask()
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials) == 2


def test_a_trial_enqueued_by_one_process_and_run_by_the_next_is_seen_finished(
    tmp_path: Path,
) -> None:
    db = tmp_path / "q.db"
    first = optuna.create_study(storage=_batched(db), study_name="s", direction="maximize")
    first.enqueue_trial({"x": 0.25})
    storage = _batched(db)  # the next process
    study = optuna.load_study(storage=storage, study_name="s")
    study.optimize(lambda t: -abs(t.suggest_float("x", 0, 1) - 0.25), n_trials=2)
    seen = [(t.number, t.state, t.params) for t in study.trials]
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert seen == [(t.number, t.state, t.params) for t in stored]
    assert seen[0] == (0, TrialState.COMPLETE, {"x": 0.25})
    assert study.best_trial.number == 0 and study.best_value == 0.0
    assert study.get_trials(states=(TrialState.WAITING,)) == []


def test_add_trial_does_not_make_the_sampler_learn_earlier_trials_again(tmp_path: Path) -> None:
    sampler = ENASSampler(SPACE, seed=0)
    study = optuna.create_study(storage=_batched(tmp_path / "a.db"), sampler=sampler)
    study.optimize(_objective, n_trials=4)
    template = study.trials[0]
    study.add_trial(
        optuna.trial.create_trial(
            params=template.params, distributions=template.distributions, value=1.0
        )
    )
    before = sampler.sync(study)  # the added trial: learned once
    study.optimize(_objective, n_trials=1)
    assert before == 1
    assert sampler.sync(study) == 0  # nothing learned twice


def test_attribute_values_are_snapshots(tmp_path: Path) -> None:
    db = tmp_path / "snap.db"
    study = optuna.create_study(storage=_batched(db), study_name="s")
    trial = study.ask()
    values = [1, 2]
    trial.set_user_attr("v", values)
    trial.set_user_attr("t", (1, 2))
    values.append(3)
    study.tell(trial, 0.0)
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials[0]
    assert stored.user_attrs == {"v": [1, 2], "t": [1, 2]}
    assert study.trials[0].user_attrs == stored.user_attrs  # the view equals the database


def test_shared_mode_keeps_a_running_trials_params_and_sees_a_heartbeat_fail(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    storage = BatchedStorage(url, exclusive=False)
    study = optuna.create_study(storage=storage, study_name="s", sampler=ENASSampler(SPACE))
    trial = study.ask()
    suggest_architecture(trial, SPACE)
    # A worker killed now: its architecture and sample record are already in the database,
    # so a RetryFailedTrialCallback retry replays the same architecture.
    (row,) = optuna.load_study(study_name="s", storage=url).trials
    assert row.params == trial.params and "enas:sample" in row.system_attrs
    # Another worker's heartbeat check failed the trial: tell sees it and refuses.
    RDBStorage(url).set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises((ValueError, optuna.exceptions.UpdateFinishedTrialError)):
        study.tell(trial, 1.0)
    assert sampler_learned_nothing(study)


def sampler_learned_nothing(study: optuna.Study) -> bool:
    sampler = study.sampler
    assert isinstance(sampler, ENASSampler)
    return sampler.n_updates == 0 and sampler.baseline is None


def test_a_refused_search_leaves_no_database_file(tmp_path: Path) -> None:
    db = tmp_path / "refused.db"
    checkpoint = tmp_path / "refused.enas-rnn-enas.supernet.pt"
    checkpoint.write_bytes(b"")  # refused after the storage was opened: no finished trial
    code = main(["search", "--storage", f"sqlite:///{db}", *_TINY, "--trials", "1"])
    assert code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.name]


def test_many_openers_of_one_new_database_all_succeed(tmp_path: Path) -> None:
    """A search and a dashboard (or a test polling it) creating Optuna's tables at once."""
    from optuna_enas.cli._storage import open_storage

    def open_it(url: str, barrier: threading.Barrier, errors: list[BaseException]) -> None:
        barrier.wait()
        try:
            open_storage(url, must_exist=False, writer=False)
        except BaseException as e:
            errors.append(e)

    for rep in range(3):
        url = f"sqlite:///{tmp_path}/new{rep}.db"
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=open_it, args=(url, barrier, errors)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_a_writer_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    """Longer than SQLite's default 5 s: the write waits (busy_timeout), it does not fail."""
    import time

    db = tmp_path / "locked.db"
    study = optuna.create_study(storage=_batched(db), study_name="s")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    holder = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    release = threading.Timer(6.0, lambda: holder.execute("COMMIT"))
    release.start()
    start = time.monotonic()
    try:
        study.tell(trial, 1.0)
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - start >= 5.5
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert [(t.number, t.value) for t in stored] == [(0, 1.0)]
