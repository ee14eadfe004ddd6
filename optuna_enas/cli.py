"""The ``optuna-enas`` command: search, compare samplers, derive, retrain, export, dashboard.

Run ``optuna-enas COMMAND --help`` (or ``python -m optuna_enas COMMAND --help``) for the
options. Every command works on an Optuna storage (default ``sqlite:///optuna-enas.db`` in the
current directory); a search is resumed by running the same command again. Bad input (an
unknown space, a missing data path, an unreachable storage) prints one line on stderr and exits
with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import NoReturn


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from optuna_enas._evaluator import SupernetEvaluator
    from optuna_enas._search_space import Architecture
    from optuna_enas._search_space import SearchSpace
    from optuna_enas.data import Corpus
    from optuna_enas.data import ImageData


PROG = "optuna-enas"
DEFAULT_STORAGE = "sqlite:///optuna-enas.db"
CONFIG_ATTR = "enas:cli"
"""Study user attr holding the search configuration (space, sampler, data, evaluator, seed)."""
WALL_ATTR = "enas:wall_seconds"
SPACES = ("rnn", "macro", "micro")
SAMPLERS = ("enas", "random", "tpe")
_DERIVE_TAG = "derive"  # optuna_enas._derive.DERIVE_TAG
_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
_SPACE_DEFAULTS = {"rnn": 6, "macro": 6, "micro": 3}
_CHECKPOINT_EVERY = 10


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- storage, space, data ------------------------------------------------------------------------
def _redact(url: str) -> str:
    """``url`` with the password hidden, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


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


def _build_space(args: argparse.Namespace) -> SearchSpace:
    from optuna_enas import make_space

    name = args.space
    if args.n_layers is not None and name != "macro":
        raise UsageError(
            f"--n-layers applies to --space macro only, not {name!r} (use --n-nodes)."
        )
    if args.n_nodes is not None and name == "macro":
        raise UsageError(
            "--n-nodes applies to --space rnn and micro, not 'macro' (use --n-layers)."
        )
    size = args.n_layers if name == "macro" else args.n_nodes
    size = _SPACE_DEFAULTS[name] if size is None else size
    key = "n_layers" if name == "macro" else "n_nodes"
    try:
        return make_space(name, **{key: size})
    except ValueError as e:
        raise UsageError(f"--{key.replace('_', '-')} {size!r}: {e}") from e


def _load_data(space_name: str, data: str | None) -> Corpus | ImageData | None:
    from optuna_enas.data import load_cifar10
    from optuna_enas.data import load_corpus

    if data is not None and not Path(data).expanduser().exists():
        raise UsageError(f"--data {data!r} does not exist.")
    try:
        if space_name == "rnn":
            return load_corpus(data)  # None: the embedded synthetic corpus
        return None if data is None else load_cifar10(data)  # None: scikit-learn digits
    except (OSError, ValueError, ImportError) as e:
        raise UsageError(f"--data {data!r}: {_one_line(e)}") from e


def _check_device(device: str | None) -> str | None:
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise UsageError(f"--device {device!r} is not a torch device ({_one_line(e)}).") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device!r}: CUDA is not available on this machine.")
    return device


def _evaluator_config(args: argparse.Namespace, space_name: str) -> dict[str, Any]:
    for flag, value, minimum in (
        ("--batch-size", args.batch_size, 1),
        ("--eval-batches", args.eval_batches, 1),
        ("--hidden-size", args.hidden_size, 1),
        ("--n-filters", args.n_filters, 2),
        ("--n-cells", args.n_cells, 1),
        ("--bptt", args.bptt, 1),
    ):
        if value < minimum:
            raise UsageError(f"{flag} must be >= {minimum}, but got {value}.")
    if not math.isfinite(args.train_steps) or args.train_steps < 0:
        raise UsageError(
            f"--train-steps must be a finite number >= 0, but got {args.train_steps}."
        )
    config: dict[str, Any] = {
        "batch_size": args.batch_size,
        "n_train_steps": args.train_steps,
        "n_eval_batches": args.eval_batches,
    }
    if space_name == "rnn":
        h = args.hidden_size
        config["supernet_kwargs"] = {"embed_size": h, "hidden_size": h}
        config["bptt"] = args.bptt
    else:
        if args.n_filters % 2:
            raise UsageError(f"--n-filters must be even, but got {args.n_filters}.")
        kwargs: dict[str, Any] = {"n_filters": args.n_filters}
        if space_name == "micro":
            kwargs["n_layers"] = args.n_cells
        config["supernet_kwargs"] = kwargs
    if args.lr is not None:
        if not args.lr > 0:
            raise UsageError(f"--lr must be positive, but got {args.lr}.")
        config["lr"] = args.lr
    return config


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


# -- studies -------------------------------------------------------------------------------------
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


def _metric(space_name: str) -> str:
    return "ppl" if space_name == "rnn" else "accuracy"


# -- search --------------------------------------------------------------------------------------
@dataclass
class _Run:
    study: optuna.Study
    evaluator: SupernetEvaluator
    space: SearchSpace
    checkpoint: Path
    seconds: float
    interrupted: bool


class _ProgressLines:
    """A callback printing one compact line every ``every`` trials (used when stderr is no TTY)."""

    def __init__(self, label: str, total: int, every: int, metric: str) -> None:
        self._label = label
        self._total = total
        self._every = every
        self._metric = metric
        self._n = 0
        self._start = time.perf_counter()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._n += 1
        if self._n % self._every and self._n != self._total:
            return
        best = _best_trial(study, derived=False)
        best_text = "-" if best is None else f"{best.value:.6g} (trial {best.number})"
        rate = (time.perf_counter() - self._start) / self._n
        print(
            f"[{self._label}] {self._n}/{self._total} trials, best {self._metric} {best_text}, "
            f"{rate:.2f} s/trial",
            file=sys.stderr,
            flush=True,
        )


def _make_sampler(name: str, space: SearchSpace, seed: int, n_done: int) -> Any:
    import numpy as np
    import optuna

    from optuna_enas import ENASSampler

    if name == "enas":
        # Draws are seeded by (seed, trial.number) and the controller replays the study: a
        # resumed search continues exactly.
        return ENASSampler(space, seed=seed)
    # Random and TPE draw from one stream per process; a resumed search gets a new stream so
    # it does not repeat the architectures it already tried.
    sub = seed if n_done == 0 else int(np.random.SeedSequence([seed, n_done]).generate_state(1)[0])
    if name == "random":
        return optuna.samplers.RandomSampler(seed=sub)
    return optuna.samplers.TPESampler(seed=sub)


def _run_search(
    args: argparse.Namespace,
    *,
    sampler_name: str,
    seed: int,
    study_name: str,
    n_trials: int,
    progress_label: str,
    quiet: bool = False,
) -> _Run:
    import optuna

    from optuna_enas._evaluator import SupernetEvaluator
    from optuna_enas.dashboard import DashboardCallback

    space = _build_space(args)
    evaluator_config = _evaluator_config(args, space.name)
    device = _check_device(args.device)
    data = _load_data(space.name, args.data)
    storage = open_storage(args.storage, must_exist=False)
    data_id = None if args.data is None else str(Path(args.data).expanduser().resolve())
    checkpoint = (
        Path(args.checkpoint).expanduser()
        if getattr(args, "checkpoint", None)
        else _storage_dir(args.storage) / f"{_file_name(study_name)}.supernet.pt"
    )
    config = {
        "space": space.to_dict(),
        "sampler": sampler_name,
        "seed": seed,
        "data": data_id,
        "evaluator": evaluator_config,
        "checkpoint": str(checkpoint.resolve()),
    }
    direction: Literal["minimize", "maximize"] = "minimize" if space.name == "rnn" else "maximize"
    # Check an existing study before anything is written.
    existing = {s.study_name: s for s in storage.get_all_studies()}.get(study_name)
    if existing is not None:
        old_direction = existing.direction.name.lower()
        if old_direction != direction:
            raise UsageError(
                f"--study-name {study_name!r} exists with direction {old_direction}; a "
                f"{space.name} search needs {direction}."
            )
    n_done = 0 if existing is None else _n_finished_in(storage, existing._study_id)
    if existing is not None and (CONFIG_ATTR in existing.user_attrs or n_done > 0):
        _check_same_config(study_name, existing.user_attrs.get(CONFIG_ATTR), config)
    resume = checkpoint if checkpoint.is_file() else None
    if resume is not None and n_done == 0:
        raise UsageError(
            f"--checkpoint {str(checkpoint)!r} exists but study {study_name!r} has no finished "
            "trial; delete the file or choose another --study-name or --checkpoint."
        )
    try:
        evaluator = SupernetEvaluator(
            space,
            data,
            seed=seed,
            device=device,
            checkpoint_path=checkpoint,
            checkpoint_every=_CHECKPOINT_EVERY,
            resume_from=resume,
            **evaluator_config,
        )
    except ValueError as e:
        raise UsageError(f"cannot build the evaluator: {_one_line(e)}") from e
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction,
        # One shared-weight step per trial: stopping a trial early saves nothing.
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    if existing is None or CONFIG_ATTR not in existing.user_attrs:
        study.set_user_attr(CONFIG_ATTR, config)
    study.sampler = _make_sampler(sampler_name, space, seed, n_done)
    if n_done and resume is None and not quiet:
        print(
            f"[{progress_label}] no checkpoint {checkpoint}: the supernet starts from scratch",
            file=sys.stderr,
        )
    remaining = n_trials - n_done
    if not quiet:
        state = f"resuming at {n_done} trials" if n_done else "new study"
        ckpt = f", supernet from {resume}" if resume else ""
        if remaining <= 0:
            state, ckpt = f"already has {n_done} trials; raise --trials to continue", ""
        print(f"[{progress_label}] {study_name}: {state}{ckpt}", file=sys.stderr)
    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    callback = DashboardCallback(
        space, artifact_dir, figures_every=args.figures_every, metric=_metric(space.name)
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [callback]
    bar = sys.stderr.isatty() and not quiet
    if not bar and not quiet and remaining > 0:
        metric = _metric(space.name)
        callbacks.append(_ProgressLines(progress_label, remaining, args.log_every, metric))
    start = time.perf_counter()
    interrupted = False
    try:
        if remaining > 0:
            study.optimize(
                callback.wrap(evaluator),
                n_trials=remaining,
                callbacks=callbacks,
                show_progress_bar=bar,
            )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = time.perf_counter() - start
        if remaining > 0:
            evaluator.save(checkpoint)
            study.set_user_attr(WALL_ATTR, float(study.user_attrs.get(WALL_ATTR, 0.0)) + seconds)
            callback.save_figures(study)
    return _Run(study, evaluator, space, checkpoint, seconds, interrupted)


def _check_same_config(name: str, old: Any, config: dict[str, Any]) -> None:
    if old is None:
        raise UsageError(
            f"--study-name {name!r} exists but was not created by `{PROG} search`; choose "
            "another --study-name."
        )
    flags = {"space": "--space/--n-nodes/--n-layers", "sampler": "--sampler", "seed": "--seed"}
    flags |= {"data": "--data", "evaluator": "the evaluator options", "checkpoint": "--checkpoint"}
    for key, flag in flags.items():
        if json.dumps(old.get(key), sort_keys=True) != json.dumps(config[key], sort_keys=True):
            raise UsageError(
                f"--study-name {name!r} was created with other {flag} ({key}={old.get(key)!r}, "
                f"now {config[key]!r}); rerun it with the original options or choose another "
                "--study-name."
            )


def _print_best(study: optuna.Study, space: SearchSpace) -> FrozenTrial | None:
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if _is_search_trial(t)]
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    print(
        f"trials: {len(trials)} ({counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed)"
    )
    best = _best_trial(study, derived=False)
    if best is None:
        print("best: no completed trial yet")
        return None
    arch = space.architecture(best.params)
    print(f"best trial: {best.number}  {_metric(space.name)} {best.value:.6g}")
    print(f"best architecture: {space.describe(arch)}")
    print(f"fixed_arc: {space.to_fixed_arc(arch)}")
    return best


def _dashboard_hint(args: argparse.Namespace) -> None:
    artifact_dir = args.artifact_dir or default_artifact_dir(args.storage)
    cmd = [PROG, "dashboard", "--storage", args.storage]
    if args.artifact_dir:
        cmd += ["--artifact-dir", str(artifact_dir)]
    plain = ["optuna-dashboard", args.storage, "--artifact-dir", str(artifact_dir)]
    print(f"dashboard: {shlex.join(cmd)}")
    print(f"       or: {shlex.join(plain)}")


def _cmd_search(args: argparse.Namespace) -> int:
    if args.trials < 1:
        raise UsageError(f"--trials must be >= 1, but got {args.trials}.")
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, but got {args.seed}.")
    study_name = args.study_name or f"enas-{args.space}-{args.sampler}"
    run = _run_search(
        args,
        sampler_name=args.sampler,
        seed=args.seed,
        study_name=study_name,
        n_trials=args.trials,
        progress_label="search",
    )
    print(f"study: {study_name}  storage: {args.storage}")
    _print_best(run.study, run.space)
    print(f"supernet checkpoint: {run.checkpoint}")
    _dashboard_hint(args)
    if run.interrupted:
        print(f"{PROG}: interrupted; rerun the same command to continue.", file=sys.stderr)
        return 130
    return 0


# -- compare -------------------------------------------------------------------------------------
def _cmd_compare(args: argparse.Namespace) -> int:
    from optuna_enas.dashboard import best_so_far

    if args.trials < 2:
        raise UsageError(f"--trials must be >= 2, but got {args.trials}.")
    if len(set(args.seeds)) != len(args.seeds) or any(s < 0 for s in args.seeds):
        raise UsageError(f"--seeds must be distinct non-negative integers, but got {args.seeds}.")
    samplers = list(dict.fromkeys(args.samplers))
    prefix = args.study_prefix or f"compare-{args.space}"
    out_dir = Path(args.output_dir or f"{_file_name(prefix)}").expanduser()
    rows: list[dict[str, Any]] = []
    studies: list[optuna.Study] = []
    metric = _metric(args.space)
    direction = "minimize" if args.space == "rnn" else "maximize"
    for sampler_name in samplers:
        for seed in args.seeds:
            name = f"{prefix}-{sampler_name}-seed{seed}"
            run = _run_search(
                args,
                sampler_name=sampler_name,
                seed=seed,
                study_name=name,
                n_trials=args.trials,
                progress_label=f"{sampler_name} seed {seed}",
                quiet=True,
            )
            if run.interrupted:
                print(f"{PROG}: interrupted; rerun the same command to continue.", file=sys.stderr)
                return 130
            trials = sorted(
                (t for t in run.study.get_trials(deepcopy=False) if _is_search_trial(t)),
                key=lambda t: t.number,
            )
            values = [float(t.value) for t in trials if t.value is not None]
            best = _best_trial(run.study, derived=False)
            rescored = math.nan
            if best is not None:
                arch = run.space.architecture(best.params)
                rescored = run.evaluator.evaluate(arch, split="valid", full=True)
            wall = float(run.study.user_attrs.get(WALL_ATTR, run.seconds))
            rows.append(
                {
                    "sampler": sampler_name,
                    "seed": seed,
                    "study": name,
                    "n_trials": len(values),
                    "best": best_so_far(values, direction)[-1] if values else math.nan,
                    "best_trial": None if best is None else best.number,
                    "rescored": rescored,
                    "wall_seconds": wall,
                    "curve": best_so_far(values, direction)[: args.trials],
                }
            )
            studies.append(run.study)
            print(
                f"[compare] {name}: best {metric} {rows[-1]['best']:.6g}, re-scored "
                f"{rescored:.6g}, {wall:.1f} s",
                file=sys.stderr,
            )
    table = _comparison_table(rows, samplers, metric, direction, args)
    paths = _write_comparison(rows, samplers, table, out_dir, metric, args, studies)
    print(table)
    for p in paths:
        print(f"wrote {p}")
    _dashboard_hint(args)
    return 0


def _mean_std(values: Sequence[float]) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{mean:.4g} ± {std:.2g}"


def _comparison_table(
    rows: list[dict[str, Any]],
    samplers: list[str],
    metric: str,
    direction: str,
    args: argparse.Namespace,
) -> str:
    better = "lower" if direction == "minimize" else "higher"
    lines = [
        f"Space `{args.space}`, {args.trials} trials per run, seeds {args.seeds}, one "
        f"SupernetEvaluator per run (same config); {metric}, {better} is better.",
        "",
        f"| sampler | runs | best {metric} during search (mean ± std) "
        f"| best architecture re-scored on the full validation set | wall s/run |",
        "|---|---|---|---|---|",
    ]
    for name in samplers:
        mine = [r for r in rows if r["sampler"] == name]
        label = "random (weight sharing)" if name == "random" else name
        wall = statistics.fmean(r["wall_seconds"] for r in mine)
        lines.append(
            f"| {label} | {len(mine)} | {_mean_std([r['best'] for r in mine])} "
            f"| {_mean_std([r['rescored'] for r in mine])} | {wall:.1f} |"
        )
    lines += [
        "",
        "Values during the search are single-minibatch scores with the shared weights at that "
        "time; the re-scored column evaluates each run's best architecture with its run's "
        "final shared weights on the whole validation split.",
    ]
    return "\n".join(lines) + "\n"


def _write_comparison(
    rows: list[dict[str, Any]],
    samplers: list[str],
    table: str,
    out_dir: Path,
    metric: str,
    args: argparse.Namespace,
    studies: list[optuna.Study],
) -> list[Path]:
    from optuna_enas.dashboard import comparison_svg

    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {
        name: [r["curve"] for r in rows if r["sampler"] == name and r["curve"]]
        for name in samplers
    }
    curves = {k: v for k, v in curves.items() if v}
    title = f"Best {metric} so far ({args.space}, {len(args.seeds)} seeds)"
    paths = [out_dir / "results.md", out_dir / "results.json"]
    paths[0].write_text(table, encoding="utf-8")
    paths[1].write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if not curves:
        return paths
    svg_path = out_dir / "best_so_far.svg"
    svg_path.write_text(comparison_svg(curves, metric=metric, title=title), encoding="utf-8")
    paths.append(svg_path)
    figure = None
    try:
        from optuna_enas.dashboard import plot_comparison

        figure = plot_comparison(curves, metric=metric, title=title)
        html_path = out_dir / "best_so_far.html"
        # plotly.min.js is written once next to the page, so it also opens offline.
        figure.write_html(str(html_path), include_plotlyjs="directory")
        paths.append(html_path)
        try:
            png_path = out_dir / "best_so_far.png"
            figure.write_image(str(png_path))  # needs kaleido
            paths.append(png_path)
        except Exception:  # kaleido missing or broken: the SVG and HTML are enough.
            pass
    except ImportError:
        pass
    _save_comparison_to_studies(studies, figure, table, svg_path, args)
    return paths


def _save_comparison_to_studies(
    studies: list[optuna.Study],
    figure: Any,
    table: str,
    svg_path: Path,
    args: argparse.Namespace,
) -> None:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import upload_artifact
    from optuna_dashboard import save_note
    from optuna_dashboard import save_plotly_graph_object

    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    artifact_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    for study in studies:
        if figure is not None:
            save_plotly_graph_object(study, figure, graph_object_id="enas-compare")
        artifact_id = upload_artifact(
            artifact_store=store,
            file_path=str(svg_path),
            study_or_trial=study,
            mimetype="image/svg+xml",
        )
        url = f"/artifacts/{study._study_id}/{artifact_id}"
        save_note(study, f"## Sampler comparison\n\n![best so far]({url})\n\n{table}")


# -- derive, retrain, export ---------------------------------------------------------------------
def _study_config(study: optuna.Study) -> dict[str, Any]:
    config = study.user_attrs.get(CONFIG_ATTR)
    if not isinstance(config, dict):
        raise UsageError(
            f"study {study.study_name!r} was not created by `{PROG} search` (no {CONFIG_ATTR!r} "
            "user attr), so its evaluator settings are unknown."
        )
    return config


def _cmd_derive(args: argparse.Namespace) -> int:
    from optuna_enas import ENASSampler
    from optuna_enas import space_from_dict
    from optuna_enas._derive import derive
    from optuna_enas._evaluator import SupernetEvaluator

    if args.n_samples < 1 or args.top_k < 1:
        raise UsageError(
            f"--n-samples and --top-k must be >= 1, got {args.n_samples}, {args.top_k}."
        )
    storage = open_storage(args.storage, must_exist=True)
    study = _load_study(storage, args.storage, args.study_name)
    config = _study_config(study)
    space = space_from_dict(config["space"])
    checkpoint = Path(args.checkpoint or config["checkpoint"])
    if not checkpoint.is_file():
        raise UsageError(f"--checkpoint {str(checkpoint)!r} does not exist; run the search first.")
    data = _load_data(space.name, config.get("data"))
    try:
        evaluator = SupernetEvaluator.load(checkpoint, data, device=_check_device(args.device))
    except ValueError as e:
        raise UsageError(f"--checkpoint {str(checkpoint)!r}: {_one_line(e)}") from e
    source: Any
    if config["sampler"] == "enas":
        sampler = ENASSampler(space, seed=int(config["seed"]))
        sampler.sync(study)  # replay the study: the trained controller
        source, how = sampler, "sampled from the trained controller"
    else:
        archs: list[Architecture] = []
        trials = [t for t in study.get_trials(deepcopy=False) if _is_search_trial(t)]
        sign = 1.0 if study.direction.name == "MINIMIZE" else -1.0
        done = [t for t in trials if t.value is not None and math.isfinite(t.value)]
        for t in sorted(done, key=lambda t: sign * float(t.value or 0.0)):
            arch = space.architecture(t.params)
            if arch not in archs:
                archs.append(arch)
        if not archs:
            raise UsageError(f"study {study.study_name!r} has no completed trial.")
        source, how = archs[: args.n_samples], "the best distinct architectures of the study"
    results = derive(
        None if args.no_record else study,
        source,
        evaluator,
        n_samples=args.n_samples,
        top_k=args.top_k,
        seed=args.seed,
    )
    metric = _metric(space.name)
    print(f"study: {study.study_name}; candidates: {how}; scored on the full validation split")
    print(f"| rank | {metric} | trial | architecture |")
    print("|---|---|---|---|")
    for r in results:
        trial = "-" if r.trial_number is None else str(r.trial_number)
        print(f"| {r.rank} | {r.value:.6g} | {trial} | {space.describe(r.architecture)} |")
    print(f"fixed_arc (rank 0): {space.to_fixed_arc(results[0].architecture)}")
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from optuna_enas import space_from_dict
    from optuna_enas._derive import import_architecture
    from optuna_enas._derive import retrain

    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, but got {args.epochs}.")
    storage = open_storage(args.storage, must_exist=True)
    study = _load_study(storage, args.storage, args.study_name)
    config = _study_config(study)
    space = space_from_dict(config["space"])
    if args.arch_file is not None:
        try:
            arch, file_space = import_architecture(args.arch_file)
        except (OSError, ValueError) as e:
            raise UsageError(f"--arch-file {args.arch_file!r}: {_one_line(e)}") from e
        if file_space != space:
            raise UsageError(f"--arch-file {args.arch_file!r} is for another search space.")
        source = args.arch_file
    else:
        trial = _pick_trial(study, args.trial)
        arch, source = space.architecture(trial.params), f"trial {trial.number}"
    ev = config["evaluator"]
    result = retrain(
        arch,
        space,
        _load_data(space.name, config.get("data")),
        n_epochs=args.epochs,
        n_steps_per_epoch=args.steps_per_epoch,
        supernet_kwargs=ev["supernet_kwargs"],
        batch_size=ev["batch_size"],
        bptt=ev.get("bptt", 35),
        lr=ev.get("lr"),
        device=_check_device(args.device),
        seed=args.seed,
    )
    summary = {
        "architecture": space.describe(arch),
        "fixed_arc": space.to_fixed_arc(arch),
        "source": source,
        "metric": result.metric,
        "valid": result.valid_value,
        "test": result.test_value,
        "history": list(result.history),
        "epochs": args.epochs,
    }
    study.set_user_attr("enas:retrain", summary)
    print(f"retrained {source}: {space.describe(arch)}")
    m = result.metric
    print(f"valid {m} {result.valid_value:.6g}, test {m} {result.test_value:.6g}")
    if args.save_model is not None:
        import torch

        path = Path(args.save_model).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": result.model.state_dict(), **summary}, path)
        print(f"wrote {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from optuna_enas._derive import export_architecture

    storage = open_storage(args.storage, must_exist=True)
    study = _load_study(storage, args.storage, args.study_name)
    trial = _pick_trial(study, args.trial)
    space = _study_space(study, trial)
    try:
        arch = space.architecture(trial.params)
    except ValueError as e:
        raise UsageError(f"trial {trial.number}: {_one_line(e)}") from e
    output = Path(args.output or f"{_file_name(study.study_name)}.arch.json").expanduser()
    if not output.parent.is_dir():
        raise UsageError(
            f"--output {str(output)!r}: directory {str(output.parent)!r} does not exist."
        )
    export_architecture(arch, space, output)
    fixed_arc = space.to_fixed_arc(arch)
    fixed_path = output.with_suffix(".fixed_arc")
    fixed_path.write_text(fixed_arc + "\n", encoding="utf-8")
    kind = "derived" if not _is_search_trial(trial) else "search"
    print(f"study: {study.study_name}; {kind} trial {trial.number} (value {trial.value})")
    print(f"architecture: {space.describe(arch)}")
    print(f"fixed_arc: {fixed_arc}")
    print(f"wrote {output}")
    print(f"wrote {fixed_path}")
    return 0


# -- dashboard -----------------------------------------------------------------------------------
def _cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, but got {args.port}.")
    storage = open_storage(args.storage, must_exist=True)
    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    artifact_dir.mkdir(parents=True, exist_ok=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"{PROG}: warning: --host {args.host} exposes the dashboard (no authentication) "
            "beyond this machine.",
            file=sys.stderr,
        )
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (artifacts: {artifact_dir})")
    print("press Ctrl-C to stop", flush=True)
    try:
        run_server(
            storage,
            host=args.host,
            port=args.port,
            artifact_store=FileSystemArtifactStore(str(artifact_dir)),
        )
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        raise UsageError(f"--host {args.host} --port {args.port}: {_one_line(e)}") from e
    return 0


# -- parser --------------------------------------------------------------------------------------
def _add_storage(p: argparse.ArgumentParser, *, study: bool = True) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL, or a journal file path *.log (default: {DEFAULT_STORAGE})",
    )
    if study:
        p.add_argument("--study-name", default=None, help="study name")


def _add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--space", choices=SPACES, default="rnn", help="ENAS search space (default rnn)"
    )
    p.add_argument(
        "--data",
        default=None,
        help="rnn: a directory with train/valid/test.txt (PTB format); macro/micro: a "
        "cifar-10-batches-py directory (default: embedded synthetic corpus / digits)",
    )
    p.add_argument("--n-nodes", type=int, default=None, help="rnn/micro: nodes per cell (6/3)")
    p.add_argument("--n-layers", type=int, default=None, help="macro: layers (default 6)")
    g = p.add_argument_group("evaluator (shared-weight supernet; small CPU defaults)")
    g.add_argument("--hidden-size", type=int, default=32, help="rnn: embedding/hidden size (32)")
    g.add_argument("--n-filters", type=int, default=8, help="macro/micro: channels (even; 8)")
    g.add_argument("--n-cells", type=int, default=2, help="micro: normal cells in the net (2)")
    g.add_argument("--batch-size", type=int, default=32, help="training minibatch size (32)")
    g.add_argument("--bptt", type=int, default=20, help="rnn: truncated BPTT length (20)")
    g.add_argument(
        "--train-steps", type=float, default=1.0, help="shared-weight SGD steps per trial (1)"
    )
    g.add_argument("--eval-batches", type=int, default=1, help="validation batches per trial (1)")
    g.add_argument("--lr", type=float, default=None, help="SGD learning rate (per-space default)")
    g.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (auto)")
    g.add_argument(
        "--artifact-dir",
        default=None,
        help="artifact directory for the dashboard (default: <db name>-artifacts next to it)",
    )
    g.add_argument(
        "--figures-every", type=int, default=10, help="refresh dashboard figures every N trials"
    )
    g.add_argument(
        "--log-every", type=int, default=10, help="progress line every N trials (no TTY)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``optuna-enas``."""
    from optuna_enas import __version__

    parser = _Parser(
        prog=PROG,
        description="ENAS neural architecture search on Optuna.",
        epilog=f"Run `{PROG} COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log Optuna's per-trial lines")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is often faster for small models)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("search", help="run (or resume) an architecture search")
    _add_storage(p)
    _add_search_options(p)
    p.add_argument("--sampler", choices=SAMPLERS, default="enas", help="sampler (default enas)")
    p.add_argument("--trials", type=int, default=50, help="target number of trials (50)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampler and evaluator (0)")
    p.add_argument("--checkpoint", default=None, help="supernet checkpoint path")
    p.set_defaults(handler=_cmd_search)

    p = sub.add_parser("compare", help="ENAS vs random (weight sharing) vs TPE, several seeds")
    _add_storage(p, study=False)
    _add_search_options(p)
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (0 1 2)")
    p.add_argument("--trials", type=int, default=30, help="trials per run (30)")
    p.add_argument("--study-prefix", default=None, help="default compare-<space>")
    p.add_argument("--output-dir", default=None, help="plots and tables (default: the prefix)")
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser("derive", help="score candidate architectures on the full validation set")
    _add_storage(p)
    p.add_argument("--n-samples", type=int, default=100, help="candidates (ENAS-pytorch: 100)")
    p.add_argument("--top-k", type=int, default=5, help="how many to list (5)")
    p.add_argument("--seed", type=int, default=None, help="seed of the controller's samples")
    p.add_argument("--checkpoint", default=None, help="supernet checkpoint (from the study)")
    p.add_argument("--device", default=None, help="torch device (auto)")
    p.add_argument("--no-record", action="store_true", help="do not add the scores as trials")
    p.set_defaults(handler=_cmd_derive)

    p = sub.add_parser("retrain", help="train one architecture from scratch, report test metric")
    _add_storage(p)
    p.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    p.add_argument("--arch-file", default=None, help="an architecture JSON from `export`")
    p.add_argument("--epochs", type=int, default=3, help="epochs (3)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="default: a full pass")
    p.add_argument("--seed", type=int, default=0, help="seed (0)")
    p.add_argument("--device", default=None, help="torch device (auto)")
    p.add_argument("--save-model", default=None, help="write the trained weights here")
    p.set_defaults(handler=_cmd_retrain)

    p = sub.add_parser("export", help="write the best architecture as JSON and fixed_arc")
    _add_storage(p)
    p.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    p.add_argument("--output", default=None, help="JSON path (default <study>.arch.json)")
    p.set_defaults(handler=_cmd_export)

    p = sub.add_parser("dashboard", help="start optuna-dashboard with the artifact store")
    _add_storage(p, study=False)
    p.add_argument("--artifact-dir", default=None, help="default: <db name>-artifacts")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(handler=_cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``optuna-enas`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a parse error (already printed)
        return e.code if isinstance(e.code, int) else 2
    import logging

    import optuna

    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if hasattr(args, "log_every") and (args.log_every < 1 or args.figures_every < 1):
        print(f"{PROG}: error: --log-every and --figures-every must be >= 1.", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(
                f"{PROG}: error: --threads must be >= 1, but got {args.threads}.", file=sys.stderr
            )
            return 2
        import torch

        torch.set_num_threads(args.threads)
    try:
        code: int = args.handler(args)
        return code
    except UsageError as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(e)} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
