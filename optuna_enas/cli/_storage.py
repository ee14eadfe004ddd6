"""Storage URLs, artifact paths and study lookup for the ``optuna-enas`` commands."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas._keys import DERIVE_STUDY_SUFFIX as _DERIVE_SUFFIX
from optuna_enas._keys import DERIVE_TAG as _DERIVE_TAG
from optuna_enas._keys import TAG_KEY
from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._errors import _redact
from optuna_enas.storage._url import storage_url


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

    from optuna_enas.spaces._search_space import SearchSpace


DEFAULT_STORAGE = "sqlite:///optuna-enas.db"
CONFIG_ATTR = "enas:cli"
"""Study user attr holding the search configuration (space, sampler, data, evaluator, seed)."""
WALL_ATTR = "enas:wall_seconds"
_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
MAX_STUDY_NAME = 128
"""The longest study name the commands accept (file names are derived from it)."""


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :].split("?", 1)[0]
        return Path(rest) if rest and rest != ":memory:" else None
    return None


def _journal_path(url: str) -> Path | None:
    return Path(url) if "://" not in url and url.endswith(_JOURNAL_SUFFIXES) else None


def check_journal(path: Path, flag: str = "--storage") -> None:
    """Refuse a journal file whose last line is torn (a write interrupted mid-line).

    Optuna reads such a file up to the torn line and then fails with an unrelated error.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return  # missing: created empty
    if size == 0:
        return
    # Every complete line must be a JSON record (Optuna parses them all when it opens the
    # file, and fails on a damaged one with a bare JSONDecodeError).
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # the last line, without its newline: checked below
            try:
                json.loads(line)
            except ValueError:
                raise UsageError(
                    f"{flag} {str(path)!r}: line {number} of the journal is not a JSON record "
                    f"({len(line)} bytes starting {line[:40]!r}): the file is damaged. Keep a "
                    "copy; the records before that line are intact."
                ) from None
    with path.open("rb") as f:
        f.seek(max(0, size - 65536))
        tail = f.read()
    if tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1]
    try:
        json.loads(last.decode("utf-8"))
        return  # a complete record without its newline: Optuna reads it
    except ValueError:
        pass
    n_lines = path.read_bytes().count(b"\n")
    raise UsageError(
        f"{flag} {str(path)!r}: the journal's last line (line {n_lines + 1}, {len(last)} bytes) "
        "is incomplete: a write was interrupted. Keep a copy of the file, then delete that "
        "line (e.g. `head -n {n_lines}`) to open the study with the records before it."
    )


def damaged_checkpoint(path: Path, error: BaseException) -> str:
    """One line for a checkpoint that cannot be read back (a missing key, a wrong shape...)."""
    what = f"lacks the entry {error}" if isinstance(error, KeyError) else _one_line(error)
    return (
        f"--checkpoint {str(path)!r} cannot be resumed: it {what}"
        if isinstance(error, KeyError)
        else f"--checkpoint {str(path)!r} cannot be resumed ({what})"
    ) + " (damaged, or written by another version); move it away to start the supernet anew."


def open_storage(url: str, *, must_exist: bool, writer: bool = False) -> BaseStorage:
    """An RDB storage for a database URL, a journal storage for a ``*.log`` file path.

    ``writer=True`` (``search``, ``compare``): the storage writes each trial once
    (:class:`~optuna_enas.storage.BatchedStorage`). A SQLite file or a journal file gets the
    exclusive mode (running trials in memory, one transaction or record per finished trial;
    the search's checkpoint lock makes it the study's only writer; SQLite in WAL mode with
    ``synchronous=NORMAL``); a server database gets the shared mode (other workers may write
    the study: a trial's row at ``ask``, its parameters with its end) with the heartbeat.
    Readers (``dashboard``, ``export``, ...) get the plain storage, which sees other
    processes' new trials.
    """
    storage = _open_storage(url, must_exist=must_exist, writer=writer)
    return storage


_OPENED: list[tuple[BaseStorage, list[Path]]] = []
_WRITERS: weakref.WeakSet[Any] = weakref.WeakSet()  # the storages opened to write
"""The storages this command opened, and the files it created for them (see close_storages)."""


def record_run(
    study: optuna.Study,
    storage: BaseStorage,
    seconds: float,
    save_figures: Callable[[Any], Any],
    *,
    interrupted: bool,
) -> None:
    """Record a finished or stopped run: add ``seconds`` to the study's :data:`WALL_ATTR`,
    then ``save_figures(study)``. After an interrupt the storage's connections are closed
    first (the signal may have landed inside a commit and left one holding SQLite's lock),
    and a write that still fails is a warning, not the exit status: the trials and the
    checkpoint are already saved (docs/guarantees.md, "SIGTERM is Ctrl-C")."""
    if interrupted:
        from optuna_enas.storage._compat import reset_connections

        reset_connections(storage)
    try:
        study.set_user_attr(WALL_ATTR, float(study.user_attrs.get(WALL_ATTR, 0.0)) + seconds)
        save_figures(study)
    except Exception as e:
        if not interrupted:
            raise
        print(
            f"{PROG}: warning: the stopped run's wall time and figures were not recorded "
            f"({_one_line(e)}); its trials and checkpoint are saved.",
            file=sys.stderr,
        )


def close_storages(*, refused: bool) -> None:
    """At the end of a command: SQLite files leave WAL; a refused command's new files go.

    A refused command writes nothing (docs/guarantees.md): a database or journal file it
    created is removed. A SQLite file a writer put in WAL mode is turned back to SQLite's
    default journal, so the finished file opens anywhere, read-only media included.
    """
    from optuna.storages import RDBStorage

    from optuna_enas.storage import leave_wal

    while _OPENED:
        storage, created = _OPENED.pop()
        inner = getattr(storage, "backend", storage)
        if isinstance(inner, RDBStorage) and inner in _WRITERS:  # readers never set WAL
            leave_wal(inner)
        if refused:
            for path in created:
                for extra in ("", "-wal", "-shm", "-journal"):
                    Path(str(path) + extra).unlink(missing_ok=True)


def _open_storage(url: str, *, must_exist: bool, writer: bool) -> BaseStorage:
    path = _sqlite_path(url) or _journal_path(url)
    created = [] if path is None or path.expanduser().exists() else [path.expanduser()]
    storage = _open_storage_unregistered(url, must_exist=must_exist, writer=writer)
    _OPENED.append((storage, created))
    if writer:
        _WRITERS.add(getattr(storage, "backend", storage))
    return storage


def _open_storage_unregistered(url: str, *, must_exist: bool, writer: bool) -> BaseStorage:
    import optuna

    journal = _journal_path(url)
    if journal is not None:
        if must_exist and not journal.is_file():
            raise UsageError(f"--storage {url!r}: journal file does not exist.")
        if not journal.parent.is_dir():
            raise UsageError(
                f"--storage {url!r}: directory {str(journal.parent)!r} does not exist."
            )
        check_journal(journal)
        from optuna.storages.journal import JournalFileBackend

        storage: BaseStorage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        return _batched(storage, exclusive=True) if writer else storage
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
            if writer and db is not None:
                # Exclusive: a killed process's running trial never reaches the file, so no
                # heartbeat is needed (RUNNING trials an older version left are failed).
                rdb = _new_rdb(storage_url(url))
                from optuna_enas.storage import configure_sqlite

                configure_sqlite(rdb, synchronous=SQLITE_SYNCHRONOUS)
                return _batched(rdb, exclusive=True)
            # The heartbeat fails the trials of a killed process when the study is resumed.
            rdb = _new_rdb(storage_url(url), heartbeat_interval=60, grace_period=120)
            return _batched(rdb, exclusive=False) if writer else rdb
    except Exception as e:  # SQLAlchemy raises many types for a bad or unreachable URL.
        raise UsageError(
            f"--storage {_redact(url)!r}: cannot open the storage ({_one_line(e)})."
        ) from e


def _new_rdb(url: str, **kwargs: Any) -> RDBStorage:
    """``RDBStorage(url)``, waiting out another process that creates the same new database.

    Optuna creates its tables when it opens a database; two processes opening one new SQLite
    file at once (a search and a dashboard, two searches, a test polling a search) race, and
    the loser fails with "table ... already exists" or a UNIQUE error on the schema version.
    The loser tries again (the winner has created the tables by then).
    """
    import time

    import optuna
    import sqlalchemy

    for attempt in range(_SCHEMA_TRIES):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as e:
            text = str(e)
            racing = "already exists" in text or "alembic_version" in text
            if not racing or attempt == _SCHEMA_TRIES - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


_SCHEMA_TRIES = 10


SQLITE_SYNCHRONOUS = "normal"
"""SQLite ``synchronous`` for the CLI's writer: WAL + NORMAL keeps every committed trial
across a killed process (https://www.sqlite.org/pragma.html#pragma_synchronous); only a power
loss can drop the last commits. ``"full"`` adds an fsync per trial (BENCHMARKS.md)."""


def _batched(storage: BaseStorage, *, exclusive: bool) -> BaseStorage:
    from optuna_enas.storage import BatchedStorage

    return BatchedStorage(storage, exclusive=exclusive)


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
    """``study_name`` as a file name: safe characters only, never hidden (no leading dot).

    A name that is not kept as it is (spaces, non-ASCII letters, a leading dot...) gets
    ``+`` and a hash of the exact name, so two names that differ only in the characters a
    file name drops (``"a b"`` / ``"a_b"``) never share a file; ``+`` is not a safe character,
    so no kept name can end like that.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name)
    name = re.sub(r"^[.]+", "_", name) or "_"
    if name == study_name:
        return name
    return f"{name}+{hashlib.sha256(study_name.encode()).hexdigest()[:8]}"


def check_study_name(flag: str, name: str) -> str:
    """A study name the commands can use: 1-128 characters, no control characters."""
    if not name or len(name) > MAX_STUDY_NAME or any(not c.isprintable() for c in name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise UsageError(
            f"{flag} must be 1 to {MAX_STUDY_NAME} printable characters (no newline), but got "
            f"{shown!r} ({len(name)} characters)."
        )
    return name


def default_checkpoint(url: str, study_name: str) -> Path:
    """``<storage stem>.<study>.supernet.pt`` next to a SQLite/journal file; for a server
    storage, ``<study>.<hash of the URL>.supernet.pt`` in the current directory. Two storages
    in one folder never share a checkpoint."""
    path = _sqlite_path(url) or _journal_path(url)
    study = _file_name(study_name)
    if path is None:
        digest = hashlib.sha256(_redact(url).encode()).hexdigest()[:8]
        return Path.cwd() / f"{study}.{digest}.supernet.pt"
    path = path.expanduser().resolve()
    return path.parent / f"{_file_name(path.stem)}.{study}.supernet.pt"


def check_writable(flag: str, path: Path, *, directory: bool) -> None:
    """Refuse an output path that cannot be written, before anything is written.

    ``directory``: ``path`` is a directory (created later if missing); else a file written
    atomically (a temporary file in its directory, then a rename).
    """
    path = path.expanduser()
    if path.exists():
        if directory and not path.is_dir():
            raise UsageError(f"{flag} {str(path)!r} exists and is not a directory.")
        if not directory and path.is_dir():
            raise UsageError(f"{flag} {str(path)!r} is a directory, not a file.")
    parent = path if directory else path.parent
    probe = parent.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(
            f"{flag} {str(path)!r} cannot be written: {str(probe)!r} is a file, not a directory."
        )
    if not os.access(probe, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(
            f"{flag} {str(path)!r} cannot be written: no write permission in {str(probe)!r}."
        )


def _study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def _load_study(storage: BaseStorage, url: str, name: str | None) -> optuna.Study:
    import optuna

    names = _study_names(storage)
    if name is None:
        # A search study's "<name>-derive" study (derive's results) does not count.
        searches = [
            n
            for n in names
            if not (n.endswith(_DERIVE_SUFFIX) and n[: -len(_DERIVE_SUFFIX)] in names)
        ]
        if len(searches) != 1:
            listed = ", ".join(repr(n) for n in searches) or "none"
            raise UsageError(
                f"--study-name is required: {_redact(url)!r} has {len(searches)} studies "
                f"({listed})."
            )
        name = searches[0]
    if name not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise UsageError(
            f"--study-name {name!r} not found in {_redact(url)!r} (studies: {listed})."
        )
    return optuna.load_study(study_name=name, storage=storage)


def _is_search_trial(t: FrozenTrial) -> bool:
    return t.user_attrs.get(TAG_KEY) != _DERIVE_TAG


def _n_finished_in(storage: BaseStorage, study_id: int) -> int:
    """Finished search work: COMPLETE and PRUNED trials (not those ``derive`` added).

    RUNNING trials and FAIL ones (interrupted by Ctrl-C or SIGTERM, killed, or crashed) do
    not count toward ``--trials``: a resumed search runs them again.
    """
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED)
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


def _derived_study(study: optuna.Study) -> optuna.Study | None:
    """The ``<name>-derive`` study of ``derive``'s results, or None."""
    import optuna

    name = study.study_name + _DERIVE_SUFFIX
    if name not in _study_names(study._storage):
        return None
    return optuna.load_study(study_name=name, storage=study._storage)


def _pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """``--trial N``, else the best derived architecture, else the best search trial.

    Derived architectures are read from the ``<name>-derive`` study (and, for studies derived
    before it existed, from trials tagged ``enas:tag = derive`` in the study itself).
    """
    if number is not None:
        for t in study.get_trials(deepcopy=False):
            if t.number == number:
                if not t.params:
                    raise UsageError(f"--trial {number}: the trial has no architecture.")
                return t
        raise UsageError(f"--trial {number} not found in study {study.study_name!r}.")
    apart = _derived_study(study)
    for source in ([] if apart is None else [apart]) + [study]:
        derived = [
            t
            for t in source.get_trials(deepcopy=False)
            if not _is_search_trial(t) and t.user_attrs.get("enas:derive_rank") == 0
        ]
        if derived:
            return max(derived, key=lambda t: t.number)  # rank 0 of the latest derive
    best = _best_trial(study, derived=False)
    if best is None:
        raise UsageError(f"study {study.study_name!r} has no completed trial.")
    return best


def check_outputs(args: Any, study_name: str) -> tuple[Path, Path | None, Path]:
    """``search``'s output paths, each checked writable before anything is written.

    Returns the artifact directory, the ``--checkpoint`` given (or ``None``) and the default
    checkpoint of ``study_name``; the ``--storage`` file (SQLite, journal) is checked too.
    """
    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    check_writable("--artifact-dir", artifact_dir, directory=True)
    given = Path(args.checkpoint).expanduser() if getattr(args, "checkpoint", None) else None
    default = default_checkpoint(args.storage, study_name)
    check_writable("--checkpoint", given or default, directory=False)
    db_file = _sqlite_path(args.storage) or _journal_path(args.storage)
    if db_file is not None:
        check_writable("--storage", db_file, directory=False)
    return artifact_dir, given, default


def check_same_config(name: str, old: Any, config: dict[str, Any]) -> None:
    if old is None:
        raise UsageError(
            f"--study-name {name!r} exists but was not created by `{PROG} search`; choose "
            "another --study-name."
        )
    changed = list(
        dict.fromkeys(
            f"{_CONFIG_FLAGS.get(path, path)} {_shown(was)} (now {_shown(now)})"
            for path, was, now in _differences(old, config, "")
            if path.split(".")[0] in _CONFIG_KEYS
        )
    )
    if changed:
        raise UsageError(
            f"--study-name {name!r} was created with {', '.join(changed)}; rerun it with the "
            "original options or choose another --study-name."
        )


def refuse_search_study(storage: BaseStorage, name: str, flag: str, why: str) -> None:
    """Refuse to write results into ``name`` when it is a search study (``CONFIG_ATTR``).

    Trials added to a search study would count toward its ``--trials`` and be learned by its
    controller.
    """
    for s in storage.get_all_studies():
        if s.study_name == name and CONFIG_ATTR in s.user_attrs:
            raise UsageError(
                f"{flag} {name!r} is a search study of this storage; {why} would add trials "
                "to it (counted toward its --trials, learned by its controller). Choose "
                f"another {flag}."
            )


_CONFIG_KEYS = ("space", "sampler", "seed", "data", "evaluator", "checkpoint")
_CONFIG_FLAGS = {
    "space.type": "--space",
    "space.n_nodes": "--n-nodes",
    "space.n_layers": "--n-layers",
    "sampler": "--sampler",
    "seed": "--seed",
    "data": "--data",
    "checkpoint": "--checkpoint",
    "evaluator.batch_size": "--batch-size",
    "evaluator.n_train_steps": "--train-steps",
    "evaluator.n_eval_batches": "--eval-batches",
    "evaluator.bptt": "--bptt",
    "evaluator.lr": "--lr",
    "evaluator.supernet_kwargs.hidden_size": "--hidden-size",
    "evaluator.supernet_kwargs.embed_size": "--hidden-size",
    "evaluator.supernet_kwargs.n_filters": "--n-filters",
    "evaluator.supernet_kwargs.n_layers": "--n-cells",
}
"""The option behind each entry of a search study's stored configuration (CONFIG_ATTR)."""


def _differences(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """The leaves of two JSON-like configs that differ, as (dotted path, old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            found += _differences(old.get(key), new.get(key), sub)
        return found
    if json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True):
        return [(path, old, new)]
    return []


def _shown(value: Any) -> str:
    return "(not set)" if value is None else str(value) if not isinstance(value, str) else value
