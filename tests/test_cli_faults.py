"""The ``optuna-enas`` command under faults: a second writer, signals, storages side by side.

Real subprocesses (a lock holder that is SIGKILLed, a search stopped by SIGTERM or SIGINT)
and real SQLite and journal storages; no timed assertions (the waits have generous deadlines
and only wait, they assert nothing about durations).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_enas import import_architecture
from optuna_enas.cli import main
from optuna_enas.cli._interrupt import INTERRUPTED_ATTR
from optuna_enas.cli._lock import lock_path
from optuna_enas.cli._storage import default_checkpoint


optuna.logging.set_verbosity(optuna.logging.WARNING)

_REPO = Path(__file__).resolve().parents[1]
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]
_ENV = {**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _wait_until(condition: object, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def _states(url: str, name: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name=name, storage=url).trials]


def _n_complete_read_only(db: Path) -> int:
    """COMPLETE trials in a SQLite file another process writes, read without writing.

    ``optuna.load_study`` would create Optuna's tables in a file the search is creating at the
    same moment (a race either side can lose); a read-only connection never writes.
    """
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()
    except sqlite3.OperationalError:  # no tables yet, or the file is being created
        return 0
    return int(row[0])


_HOLDER = """
import sys, time
from pathlib import Path
from optuna_enas.cli._lock import CheckpointLock
lock = CheckpointLock(Path(sys.argv[1]), owner={"study": "held", "storage": "elsewhere"})
lock.acquire()
Path(sys.argv[2]).write_text("locked")
time.sleep(600)
"""


def test_second_writer_of_a_supernet_is_refused_and_a_crashed_lock_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    checkpoint = default_checkpoint(url, "enas-rnn-enas")
    marker = tmp_path / "holder.locked"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(checkpoint), str(marker)], env=_ENV, cwd=tmp_path
    )
    try:
        _wait_until(marker.is_file, 120.0, "the lock holder")
        # The same command as a running search: refused before a trial or a file is written.
        assert main(["search", "--storage", url, *_TINY, "--trials", "2"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"process {holder.pid}" in err and "'held'" in err
        assert "several workers" in err and "--study-name" in err
        assert not checkpoint.exists()
        assert optuna.get_all_study_summaries(url) == []  # no study, no trial
        # The holder crashes (SIGKILL: no cleanup); the kernel drops its lock, the next
        # search takes it over at once and releases it at the end.
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        assert lock_path(checkpoint).exists()  # the dead owner's file is still there
        assert main(["search", "--storage", url, *_TINY, "--trials", "2"]) == 0
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert _states(url, "enas-rnn-enas") == [TrialState.COMPLETE] * 2
    assert checkpoint.is_file() and not lock_path(checkpoint).exists()


def _search_proc(tmp_path: Path, url: str, trials: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "optuna_enas", "--threads", "1", "search", "--storage", url]
    cmd += [*_TINY, "--trials", str(trials), "--train-steps", "4", "--log-every", "1000"]
    return subprocess.Popen(
        cmd,
        env=_ENV,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_stops_like_ctrl_c_saves_the_checkpoint_and_counts_only_finished_trials(
    sig: signal.Signals, code: int, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    name = "enas-rnn-enas"
    proc = _search_proc(tmp_path, url, 100_000)
    try:

        def two_done() -> bool:
            return _n_complete_read_only(tmp_path / "s.db") >= 2

        _wait_until(two_done, 180.0, "two finished trials")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert lines[-1] == "optuna-enas: interrupted; rerun the same command to continue."
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Terminated" not in err
    assert "fixed_arc:" in out  # the summary is printed as after a normal end
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.trials
    assert all(t.state != TrialState.RUNNING for t in trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs.get(INTERRUPTED_ATTR) is True for t in failed)
    n_complete = sum(t.state == TrialState.COMPLETE for t in trials)
    checkpoint = default_checkpoint(url, name)
    assert torch.load(checkpoint, weights_only=True)["n_calls"] >= n_complete
    assert not lock_path(checkpoint).exists()

    # Resume to n_complete + 1: the interrupted trial does not count, one more trial runs.
    args = ["search", "--storage", url, *_TINY, "--trials", str(n_complete + 1)]
    assert main([*args, "--train-steps", "4", "--log-every", "1000"]) == 0
    after = optuna.load_study(study_name=name, storage=url).trials
    assert sum(t.state == TrialState.COMPLETE for t in after) == n_complete + 1
    assert len(after) == len(trials) + 1


def test_same_study_name_in_two_storages_gets_two_checkpoints(tmp_path: Path) -> None:
    for url in (
        f"sqlite:///{tmp_path}/a.db",
        f"sqlite:///{tmp_path}/b.db",
        str(tmp_path / "c.log"),
    ):
        assert main(["search", "--storage", url, *_TINY, "--trials", "1"]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.supernet.pt"))
    assert names == [
        "a.enas-rnn-enas.supernet.pt",
        "b.enas-rnn-enas.supernet.pt",
        "c.enas-rnn-enas.supernet.pt",
    ]
    # A server storage (no file to sit beside) gets a hash of its URL.
    pg1 = default_checkpoint("postgresql://u@host1/db", "s")
    pg2 = default_checkpoint("postgresql://u@host2/db", "s")
    assert pg1 != pg2 and pg1.name.startswith("s.") and pg1.name.endswith(".supernet.pt")
    # A study name never becomes a hidden file.
    assert not default_checkpoint("sqlite:///x.db", "..hidden").name.startswith(".")


def test_derive_results_stay_apart_from_the_search_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    assert main(["search", "--storage", url, *_TINY, "--trials", "4"]) == 0
    search = optuna.load_study(study_name="enas-rnn-enas", storage=url)
    best = search.best_trial.number
    assert main(["derive", "--storage", url, "--n-samples", "3"]) == 0
    printed = capsys.readouterr().out
    assert "recorded in study 'enas-rnn-enas-derive'" in printed
    assert "| rank | ppl | derive trial |" in printed  # not mistaken for search trials
    search = optuna.load_study(study_name="enas-rnn-enas", storage=url)
    assert len(search.trials) == 4 and search.best_trial.number == best
    derived = optuna.load_study(study_name="enas-rnn-enas-derive", storage=url)
    assert derived.user_attrs["enas:search_study"] == "enas-rnn-enas"
    assert derived.trials and all(t.user_attrs["enas:tag"] == "derive" for t in derived.trials)
    # export (and retrain) still take the best derived architecture by default.
    out = tmp_path / "best.json"
    assert main(["export", "--storage", url, "--output", str(out)]) == 0  # no --study-name:
    # the storage holds one search (and its derive study)
    rank0 = next(t for t in derived.trials if t.user_attrs["enas:derive_rank"] == 0)
    arch, _ = import_architecture(out)
    assert arch.to_params() == rank0.params
    assert "enas-rnn-enas-derive; derived trial" in capsys.readouterr().out


def test_torn_last_journal_line_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "s.log"
    assert main(["search", "--storage", str(log), *_TINY, "--trials", "2"]) == 0
    capsys.readouterr()
    whole = log.read_bytes()
    log.write_bytes(whole[:-20])  # a write interrupted in the middle of the last record
    torn = log.read_bytes()
    assert main(["search", "--storage", str(log), *_TINY, "--trials", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last line" in err and "incomplete" in err
    assert log.read_bytes() == torn  # nothing appended after the torn record


@pytest.mark.postgres
@pytest.mark.slow
def test_plain_postgresql_url_works_with_the_postgres_extra(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``postgresql://`` (no driver) with psycopg2, the driver the ``postgres`` extra installs."""
    plain = "postgresql://" + postgres_url.split("://", 1)[1]
    name = f"plain-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.chdir(tmp_path)  # a server storage's checkpoint goes to the current directory
    argv = ["search", "--storage", plain, "--study-name", name, *_TINY, "--trials", "2"]
    assert main(argv) == 0
    study = optuna.load_study(study_name=name, storage=postgres_url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert default_checkpoint(plain, name).is_file()


def _guarded_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path}/g.db", direction="maximize")


def test_signal_between_trials_lets_the_trial_finish_then_stops(tmp_path: Path) -> None:
    """A signal outside the objective (sampling, storage writes, callbacks) could leave a
    RUNNING or half-written trial: it is noted, the trial finishes, the search stops."""
    from optuna_enas.cli._interrupt import SignalGuard

    study = _guarded_study(tmp_path)
    guard = SignalGuard()

    def kill_after_first(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, outside the objective

    with guard.installed():
        study.optimize(
            guard.objective(lambda t: t.suggest_float("x", 0, 1)),
            n_trials=5,
            callbacks=[kill_after_first, guard.callback],
        )
    assert guard.signal == signal.SIGTERM
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_signal_inside_the_objective_fails_and_tags_the_trial(tmp_path: Path) -> None:
    from optuna_enas.cli._interrupt import SignalGuard
    from optuna_enas.cli._interrupt import Terminated

    study = _guarded_study(tmp_path)
    guard = SignalGuard()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # raises Terminated right here
            time.sleep(30)  # never reached
        return x

    with pytest.raises(Terminated), guard.installed():
        study.optimize(guard.objective(objective), n_trials=5, callbacks=[guard.callback])
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs[INTERRUPTED_ATTR] is True


@pytest.mark.parametrize("method", ["darts", "dsonas"])
def test_sigterm_stops_a_oneshot_search_like_ctrl_c(method: str, tmp_path: Path) -> None:
    """docs/guarantees.md, "SIGTERM is Ctrl-C", for --sampler darts|dsonas too."""
    url = f"sqlite:///{tmp_path}/s.db"
    cmd = [sys.executable, "-m", "optuna_enas", "--threads", "1", "search", "--storage", url]
    cmd += [*_TINY, "--sampler", method, "--trials", "100000", "--oneshot-epochs", "50000"]
    proc = subprocess.Popen(
        cmd, env=_ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def one_epoch() -> bool:
            if not (tmp_path / "s.db").exists():
                return False
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{tmp_path}/s.db?mode=ro", uri=True)
                ) as conn:
                    # two epochs recorded: the first one's checkpoint is written
                    return int(conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]) >= 2
            except sqlite3.OperationalError:
                return False

        _wait_until(one_epoch, 180.0, "two recorded epochs")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert (
        err.strip().splitlines()[-1]
        == "optuna-enas: interrupted; rerun the same command to continue."
    )
    assert "Traceback" not in err
    checkpoint = default_checkpoint(url, f"enas-rnn-{method}")
    assert checkpoint.is_file() and not lock_path(checkpoint).exists()


def test_a_swallowed_sigterm_is_raised_again_at_the_next_step() -> None:
    """A one-shot loop's SIGTERM whose exception lands where it is swallowed (a ``__del__``,
    a retry loop catching BaseException) still stops the loop at its next step."""
    import os

    from optuna_enas.cli._interrupt import Terminated
    from optuna_enas.cli._interrupt import sigterm_as_interrupt

    with sigterm_as_interrupt() as pending:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)  # the handler runs here and raises
        except BaseException:  # noqa: B036 - swallowed on purpose
            pass
        with pytest.raises(Terminated):
            pending.raise_if_pending()


def test_sigterm_turned_into_a_storage_error_still_ends_like_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGTERM that lands inside a storage write comes out as the storage's own error
    (Optuna wraps what interrupted its commit): the search still ends with 143, lock released."""
    from optuna_enas.oneshot._searcher import OneShotSearcher

    def search(self: OneShotSearcher, *args: object, **kwargs: object) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the CLI's handler raises Terminated here
        except KeyboardInterrupt as e:
            raise optuna.exceptions.StorageInternalError("commit failed") from e

    monkeypatch.setattr(OneShotSearcher, "search", search)
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["search", "--storage", url, *_TINY, "--sampler", "darts", "--oneshot-epochs", "3"]
    assert main([*argv, "--trials", "6"]) == 143
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*argv, "--trials", "6"]) == 0  # the lock was released: the search resumes


def test_a_storage_error_without_a_signal_is_still_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_enas.oneshot._searcher import OneShotSearcher

    def search(self: OneShotSearcher, *args: object, **kwargs: object) -> None:
        raise optuna.exceptions.StorageInternalError("commit failed")

    monkeypatch.setattr(OneShotSearcher, "search", search)
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["search", "--storage", url, *_TINY, "--sampler", "darts", "--oneshot-epochs", "3"]
    assert main([*argv, "--trials", "6"]) == 1
    assert "StorageInternalError: commit failed" in capsys.readouterr().err


def test_enas_search_sigterm_turned_into_a_storage_error_still_ends_like_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same for ``search`` with the ENAS sampler: an interrupt inside the objective that
    a storage write reports as its own error ends with 143, the checkpoint saved."""
    from optuna_enas.training._evaluator import SupernetEvaluator

    real_call = SupernetEvaluator.__call__

    def call(self: SupernetEvaluator, trial: optuna.Trial) -> float:
        if trial.number == 1:
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # SignalGuard raises Terminated here
            except KeyboardInterrupt as e:
                raise optuna.exceptions.StorageInternalError("commit failed") from e
        return real_call(self, trial)

    monkeypatch.setattr(SupernetEvaluator, "__call__", call)
    db = tmp_path / "s.db"
    argv = ["search", "--storage", f"sqlite:///{db}", *_TINY, "--trials", "4"]
    assert main(argv) == 143
    assert list(tmp_path.glob("s.*.supernet.pt"))  # the checkpoint was saved
    monkeypatch.undo()
    capsys.readouterr()
    assert main(argv) == 0  # resumes and finishes


def test_record_run_closes_the_storage_and_never_turns_a_stop_into_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_enas.cli._storage import WALL_ATTR
    from optuna_enas.cli._storage import record_run

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/r.db")
    study = optuna.create_study(storage=storage)

    def broken(_: object) -> None:
        raise optuna.exceptions.StorageInternalError("database is locked")

    record_run(study, storage, 1.0, broken, interrupted=True)  # after a stop: a warning
    err = capsys.readouterr().err
    assert "warning: the stopped run's wall time and figures were not recorded" in err
    assert "database is locked" in err
    with pytest.raises(optuna.exceptions.StorageInternalError):
        record_run(study, storage, 1.0, broken, interrupted=False)  # no stop: the error stands
    study.set_user_attr(WALL_ATTR, 0.0)
    record_run(study, storage, 1.0, lambda _: None, interrupted=True)
    assert study.user_attrs[WALL_ATTR] == 1.0  # the connections were reset, the write went through
