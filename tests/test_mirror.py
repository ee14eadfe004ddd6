from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.storage._mirror import TrialMirror
from optuna_enas.storage._mirror import load_study_in_memory


SPACE = RNNCellSpace(n_nodes=4)
CONFIG = ControllerConfig(lstm_size=16, n_aggregate=2)


def objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE)
    return float(sum(v == "relu" for _, v in arch.params))


def test_mirror_copies_trials_and_resume_rebuilds_the_controller(tmp_path: Path) -> None:
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "nas.log")))
    # One uninterrupted in-memory run as the reference.
    ref_sampler = ENASSampler(SPACE, seed=0, config=CONFIG)
    ref = optuna.create_study(sampler=ref_sampler, direction="maximize")
    ref.optimize(objective, n_trials=12)

    first = ENASSampler(SPACE, seed=0, config=CONFIG)
    study = load_study_in_memory(
        journal, "nas", sampler=first, directions=[optuna.study.StudyDirection.MAXIMIZE]
    )
    with TrialMirror(journal, study_name="nas", directions=study.directions) as mirror:
        study.optimize(objective, n_trials=7, callbacks=[mirror])
    assert mirror.n_written == 7

    # "New process": read the mirror back, keep going with a fresh sampler.
    second = ENASSampler(SPACE, seed=0, config=CONFIG)
    resumed = load_study_in_memory(journal, "nas", sampler=second)
    assert [t.params for t in resumed.trials] == [t.params for t in study.trials]
    with TrialMirror(journal, study_name="nas") as mirror:
        resumed.optimize(objective, n_trials=5, callbacks=[mirror])
    assert [t.params for t in resumed.trials] == [t.params for t in ref.trials]
    durable = optuna.load_study(study_name="nas", storage=journal)
    assert len(durable.trials) == 12
    assert all("enas:sample" in t.system_attrs for t in durable.trials)
    assert second.baseline == ref_sampler.baseline


def test_mirror_without_directions_copies_a_maximize_study_as_maximize(tmp_path: Path) -> None:
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "max.log")))
    study = optuna.create_study(direction="maximize")
    with TrialMirror(journal, study_name="max") as mirror:  # no directions given
        study.optimize(objective, n_trials=3, callbacks=[mirror])
    durable = optuna.load_study(study_name="max", storage=journal)
    assert durable.directions == [optuna.study.StudyDirection.MAXIMIZE]
    assert durable.best_value == study.best_value  # the best is the largest, as in memory


def test_plain_postgresql_url_gets_the_installed_driver() -> None:
    import importlib.util

    from optuna_enas.storage import storage_url

    url = "postgresql://u:pw@db.example/nas"
    if importlib.util.find_spec("psycopg") is None:  # SQLAlchemy's default driver is missing
        assert storage_url(url) == "postgresql+psycopg2://u:pw@db.example/nas"
    else:
        assert storage_url(url) == url
    assert storage_url("postgresql+psycopg://u@h/x") == "postgresql+psycopg://u@h/x"
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"
