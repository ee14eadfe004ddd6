"""One test per private part of Optuna that optuna_enas.storage._compat uses.

Each fails when an Optuna release changes the piece it checks; CI runs them against the
lowest and the newest Optuna of the range pyproject.toml declares (.ci/run).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from optuna_enas.storage import _compat


optuna.logging.set_verbosity(optuna.logging.WARNING)
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_unwrap_cached_finds_the_rdb_storage_inside_optunas_cache(tmp_path: Path) -> None:
    rdb = RDBStorage(f"sqlite:///{tmp_path}/a.db")
    wrapped = optuna.storages.get_storage(rdb)
    assert wrapped is not rdb
    assert _compat.unwrap_cached(wrapped) is rdb
    assert _compat.unwrap_cached(rdb) is rdb


def test_cached_is_what_create_study_reads_through(tmp_path: Path) -> None:
    rdb = RDBStorage(f"sqlite:///{tmp_path}/a.db")
    storage = _compat.cached(rdb)
    study = optuna.create_study(storage=rdb)
    assert type(storage) is type(study._storage)
    assert _compat.unwrap_cached(storage) is rdb


def test_stale_trial_ids_and_base_heartbeat(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = RDBStorage(f"sqlite:///{tmp_path}/a.db", heartbeat_interval=1, grace_period=1)
    assert isinstance(rdb, _compat.BaseHeartbeat)
    study_id = rdb.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    trial_id = rdb.create_new_trial(study_id)
    rdb.record_heartbeat(trial_id)
    assert _compat.stale_trial_ids(rdb, study_id) == []
    time.sleep(2.5)
    assert _compat.stale_trial_ids(rdb, study_id) == [trial_id]


def test_get_all_studies_returns_frozen_studies(tmp_path: Path) -> None:
    rdb = RDBStorage(f"sqlite:///{tmp_path}/a.db")
    optuna.create_study(storage=rdb, study_name="s")
    (found,) = rdb.get_all_studies()
    assert type(found) is _compat.FrozenStudy


def test_tested_optuna_range_is_the_one_pyproject_declares() -> None:
    text = _PYPROJECT.read_text(encoding="utf-8")
    (spec,) = re.findall(r'"optuna(>=[^"]+)"', text)
    low = re.search(r">=(\d+)\.(\d+)", spec)
    high = re.search(r"<(\d+)\.(\d+)", spec)
    assert low is not None and high is not None, spec
    lo, hi = (int(low[1]), int(low[2])), (int(high[1]), int(high[2]))
    assert _compat.TESTED_OPTUNA[0] == lo
    assert _compat.TESTED_OPTUNA[-1] == (hi[0], hi[1] - 1)


def _trial(state: TrialState) -> optuna.trial.FrozenTrial:
    finished = state.is_finished()
    return optuna.trial.create_trial(
        state=state,
        values=[math.inf, -1.5] if state == TrialState.COMPLETE else None,
        params={"a": "tanh", "b": 3, "c": 0.25},
        distributions={
            "a": CategoricalDistribution(["relu", "tanh"]),
            "b": IntDistribution(0, 5),
            "c": FloatDistribution(0.0, 1.0),
        },
        user_attrs={"u": [1, {"k": None}]} if finished else {},
        system_attrs={"enas:sample": {"logp": -1.25}},
        intermediate_values={0: math.nan, 1: math.inf, 2: 0.5},
    )


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING])
def test_sql_trial_writer_writes_what_create_new_trial_writes(
    state: TrialState, tmp_path: Path
) -> None:
    release = tuple(int(x) for x in optuna.__version__.split(".")[:2])
    assert release in _compat.TESTED_OPTUNA, f"Optuna {optuna.__version__}: test it, then add it"
    ours = RDBStorage(f"sqlite:///{tmp_path}/ours.db")
    ref = RDBStorage(f"sqlite:///{tmp_path}/ref.db")
    writer = _compat.sql_trial_writer(ours)
    assert writer is not None
    templates = [_trial(state) for _ in range(2)]
    got, want = [], []
    directions = [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
    for storage, out in ((ours, got), (ref, want)):
        study_id = storage.create_new_study(directions, "s")
        for i, template in enumerate(templates):
            if storage is ours:
                trial_id, number = writer(study_id, template)
                assert number == i
            else:
                trial_id = storage.create_new_trial(study_id, template_trial=template)
            out.append(storage.get_trial(trial_id))
    for a, b in zip(got, want, strict=True):
        assert (a.number, a.state, a.params, a.distributions) == (
            b.number,
            b.state,
            b.params,
            b.distributions,
        )
        assert a.values == b.values and a.user_attrs == b.user_attrs
        assert a.system_attrs == b.system_attrs
        assert str(a.intermediate_values) == str(b.intermediate_values)  # nan == nan
        assert a.datetime_start == b.datetime_start
        assert a.datetime_complete == b.datetime_complete


def _interrupted_commit(tmp_path: Path) -> tuple[RDBStorage, optuna.Study]:
    """A study whose storage had Ctrl-C land inside a commit (SQLite's lock wait cut to 0.2 s)."""
    from sqlalchemy import event

    rdb = RDBStorage(
        f"sqlite:///{tmp_path}/i.db", engine_kwargs={"connect_args": {"timeout": 0.2}}
    )
    study = optuna.create_study(storage=rdb, study_name="i")
    armed = [True]

    @event.listens_for(rdb.engine, "commit")
    def interrupt(conn: object) -> None:
        if armed.pop() if armed else False:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.set_user_attr("cut", 1)
    return rdb, study


def test_an_interrupted_commit_blocks_the_next_write(tmp_path: Path) -> None:
    """What reset_connections is for: without it the next write fails."""
    _, study = _interrupted_commit(tmp_path)
    with pytest.raises(optuna.exceptions.StorageInternalError):
        study.set_user_attr("after", 2)


@pytest.mark.parametrize("wrap", ["rdb", "cached", "batched"])
def test_reset_connections_lets_the_next_write_through(tmp_path: Path, wrap: str) -> None:
    from optuna_enas.storage import BatchedStorage

    rdb, study = _interrupted_commit(tmp_path)
    handle = {"rdb": rdb, "cached": _compat.cached(rdb), "batched": BatchedStorage(rdb)}[wrap]
    _compat.reset_connections(handle)
    study.set_user_attr("after", 2)
    assert optuna.load_study(study_name="i", storage=rdb).user_attrs["after"] == 2
    _compat.reset_connections(optuna.storages.InMemoryStorage())  # no RDB: nothing to do
