"""Storage URLs, artifact paths and study lookup for the ``optuna-enas`` commands."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._errors import _redact


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from optuna_enas.spaces._search_space import SearchSpace


DEFAULT_STORAGE = "sqlite:///optuna-enas.db"
CONFIG_ATTR = "enas:cli"
"""Study user attr holding the search configuration (space, sampler, data, evaluator, seed)."""
WALL_ATTR = "enas:wall_seconds"
_DERIVE_TAG = "derive"  # optuna_enas.final._derive.DERIVE_TAG
_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :].split("?", 1)[0]
        return Path(rest) if rest and rest != ":memory:" else None
    return None


def _journal_path(url: str) -> Path | None:
    return Path(url) if "://" not in url and url.endswith(_JOURNAL_SUFFIXES) else None


def open_storage(url: str, *, must_exist: bool) -> BaseStorage:
    """An RDB storage for a database URL, a journal storage for a ``*.log`` file path."""
    import optuna

    journal = _journal_path(url)
    if journal is not None:
        if must_exist and not journal.is_file():
            raise UsageError(f"--storage {url!r}: journal file does not exist.")
        if not journal.parent.is_dir():
            raise UsageError(
                f"--storage {url!r}: directory {str(journal.parent)!r} does not exist."
            )
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    if "://" not in url:
        raise UsageError(
            f"--storage {url!r} is neither a database URL (sqlite:///FILE, postgresql://...) "
            f"nor a journal file ({', '.join('*' + s for s in _JOURNAL_SUFFIXES)})."
        )
    db = _sqlite_path(url)
    if db is not None:
        if must_exist and not db.is_file():
            raise UsageError(f"--storage {url!r}: database file {str(db)!r} does not exist.")
        if not db.expanduser().parent.is_dir():
            raise UsageError(f"--storage {url!r}: directory {str(db.parent)!r} does not exist.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # The heartbeat fails the trials of a killed process when the study is resumed.
            return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=120)
    except Exception as e:  # SQLAlchemy raises many types for a bad or unreachable URL.
        raise UsageError(
            f"--storage {_redact(url)!r}: cannot open the storage ({_one_line(e)})."
        ) from e


def _storage_dir(url: str) -> Path:
    path = _sqlite_path(url) or _journal_path(url)
    return path.expanduser().resolve().parent if path is not None else Path.cwd()


def default_artifact_dir(url: str) -> Path:
    """``<stem>-artifacts`` next to a SQLite or journal file, else ``./optuna-enas-artifacts``."""
    path = _sqlite_path(url) or _journal_path(url)
    if path is None:
        return Path.cwd() / "optuna-enas-artifacts"
    return path.expanduser().resolve().parent / f"{path.stem}-artifacts"


def _file_name(study_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", study_name)


def _study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def _load_study(storage: BaseStorage, url: str, name: str | None) -> optuna.Study:
    import optuna

    names = _study_names(storage)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(repr(n) for n in names) or "none"
            raise UsageError(
                f"--study-name is required: {_redact(url)!r} has {len(names)} studies ({listed})."
            )
        name = names[0]
    if name not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise UsageError(
            f"--study-name {name!r} not found in {_redact(url)!r} (studies: {listed})."
        )
    return optuna.load_study(study_name=name, storage=storage)


def _is_search_trial(t: FrozenTrial) -> bool:
    return t.user_attrs.get("enas:tag") != _DERIVE_TAG


def _n_finished_in(storage: BaseStorage, study_id: int) -> int:
    """Finished search trials (not those ``derive`` added); RUNNING ones are not counted."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    trials = storage.get_all_trials(study_id, deepcopy=False, states=states)
    return sum(_is_search_trial(t) for t in trials)


def _best_trial(study: optuna.Study, *, derived: bool) -> FrozenTrial | None:
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value) and _is_search_trial(t) != derived
    ]
    if not trials:
        return None
    sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
    return min(trials, key=lambda t: (sign * float(t.value or 0.0), t.number))


def _infer_space(params: dict[str, Any]) -> SearchSpace:
    from optuna_enas import MacroSpace
    from optuna_enas import MicroSpace
    from optuna_enas import RNNCellSpace

    if "node0_act" in params:
        return RNNCellSpace(
            n_nodes=sum(re.fullmatch(r"node\d+_act", k) is not None for k in params)
        )
    if "layer0_op" in params:
        return MacroSpace(
            n_layers=sum(re.fullmatch(r"layer\d+_op", k) is not None for k in params)
        )
    if "normal_b2_op1" in params:
        n = sum(re.fullmatch(r"normal_b\d+_op1", k) is not None for k in params)
        return MicroSpace(n_nodes=n)
    raise UsageError("the study's trials do not hold an ENAS rnn, macro or micro architecture.")


def _study_space(study: optuna.Study, trial: FrozenTrial | None) -> SearchSpace:
    from optuna_enas import space_from_dict

    config = study.user_attrs.get(CONFIG_ATTR)
    if isinstance(config, dict) and "space" in config:
        return space_from_dict(config["space"])
    if trial is None:
        raise UsageError(f"study {study.study_name!r} has no completed trial.")
    return _infer_space(trial.params)


def _pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """``--trial N``, else the best derived architecture, else the best search trial."""
    if number is not None:
        for t in study.get_trials(deepcopy=False):
            if t.number == number:
                if not t.params:
                    raise UsageError(f"--trial {number}: the trial has no architecture.")
                return t
        raise UsageError(f"--trial {number} not found in study {study.study_name!r}.")
    derived = [
        t
        for t in study.get_trials(deepcopy=False)
        if not _is_search_trial(t) and t.user_attrs.get("enas:derive_rank") == 0
    ]
    if derived:
        return max(derived, key=lambda t: t.number)  # rank 0 of the latest derive
    best = _best_trial(study, derived=False)
    if best is None:
        raise UsageError(f"study {study.study_name!r} has no completed trial.")
    return best
