"""``search`` / ``compare`` with a one-shot method (DARTS, DSO-NAS) instead of a sampler.

A one-shot searcher has no sampler and no objective: it trains a relaxed supernet and records
the architecture it currently derives as one COMPLETE trial per epoch
(:mod:`optuna_enas.oneshot`). The CLI gives it the same space, data, supernet size, batch size,
storage, artifact store and checkpoint rules as a sampler run, and **the same budget of
shared-weight training steps**: ``--trials x --train-steps`` weight steps, which is what a
sampler run spends on its supernet. ``--oneshot-epochs`` (default 10) sets how many epochs
(recorded trials) that budget is cut into.

Resume: the searcher checkpoints after every epoch; rerunning the same command continues from
the last finished epoch. An epoch cut short is run again from its start.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._errors import _redact
from optuna_enas.cli._interrupt import PendingSignal
from optuna_enas.cli._interrupt import Terminated
from optuna_enas.cli._interrupt import sigterm_as_interrupt
from optuna_enas.cli._lock import CheckpointLock
from optuna_enas.cli._options import ONESHOT_METHODS
from optuna_enas.cli._options import _build_space
from optuna_enas.cli._options import _check_device
from optuna_enas.cli._options import _evaluator_config
from optuna_enas.cli._options import _load_data
from optuna_enas.cli._options import training_from_config
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import _n_finished_in
from optuna_enas.cli._storage import check_outputs
from optuna_enas.cli._storage import check_same_config
from optuna_enas.cli._storage import damaged_checkpoint
from optuna_enas.cli._storage import open_storage
from optuna_enas.cli._storage import record_run
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.training._config import FIELDS as TRAINING_FIELDS


if TYPE_CHECKING:
    import optuna

    from optuna_enas.oneshot._searcher import OneShotSearcher
    from optuna_enas.spaces._search_space import Architecture
    from optuna_enas.spaces._search_space import SearchSpace


DEFAULT_ONESHOT_EPOCHS = 10


@dataclass
class OneShotRun:
    """What ``search`` / ``compare`` need of a finished (or interrupted) one-shot run."""

    study: optuna.Study
    space: SearchSpace
    checkpoint: Path
    seconds: float
    interrupted: bool
    exit_code: int
    final: Architecture | None  # the searcher's result (the last derived architecture)
    rescore: Callable[[Architecture], float]  # full-validation score with the final weights


def weight_step_budget(n_trials: int, train_steps: float) -> int:
    """The shared-weight steps a sampler run of ``n_trials`` spends: ``n_trials * train_steps``."""
    return max(1, math.floor(n_trials * train_steps + 1e-9))


def oneshot_plan(n_trials: int, args: argparse.Namespace) -> tuple[int, int]:
    """``(n_steps, steps_per_epoch)`` of a one-shot run with the budget of ``n_trials``."""
    epochs = getattr(args, "oneshot_epochs", DEFAULT_ONESHOT_EPOCHS)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"--oneshot-epochs must be an integer >= 1, but got {epochs!r}.")
    n_steps = weight_step_budget(n_trials, args.train_steps)
    return n_steps, max(1, math.ceil(n_steps / epochs))


def _oneshot_config(
    args: argparse.Namespace, method: str, evaluator_config: dict[str, Any]
) -> dict[str, Any]:
    """The searcher's keyword arguments from the shared evaluator options."""
    # The training settings (supernet size, batch size, BPTT, lr): those of the evaluator.
    kwargs: dict[str, Any] = {k: v for k, v in evaluator_config.items() if k in TRAINING_FIELDS}
    kwargs["supernet_kwargs"] = dict(kwargs["supernet_kwargs"])
    kwargs["eval_batches"] = evaluator_config["n_eval_batches"]
    if method == "darts":
        order = getattr(args, "darts_order", 1)
        if order not in (1, 2):
            raise UsageError(f"--darts-order must be 1 or 2, but got {order!r}.")
        kwargs["order"] = order
    return kwargs


def make_searcher(
    method: str,
    space: SearchSpace,
    data: Any,
    *,
    seed: int,
    device: str | None,
    checkpoint: Path,
    resume: Path | None,
    kwargs: dict[str, Any],
    dashboard: Any,
) -> OneShotSearcher:
    from optuna_enas.oneshot._darts import DARTS
    from optuna_enas.oneshot._dsonas import DSONAS

    assert method in ONESHOT_METHODS
    cls = DARTS if method == "darts" else DSONAS
    try:
        training, options = training_from_config(kwargs, device)
        return cls(
            space,
            data,
            training=training,
            seed=seed,
            checkpoint_path=checkpoint,
            resume_from=resume,
            dashboard=dashboard,
            **options,
        )
    except ValueError as e:
        raise UsageError(f"cannot build the {method} searcher: {_one_line(e)}") from e
    except (KeyError, AssertionError, TypeError, RuntimeError) as e:
        if resume is None:
            raise
        raise UsageError(damaged_checkpoint(resume, e)) from e


def run_oneshot(
    args: argparse.Namespace,
    *,
    method: str,
    seed: int,
    study_name: str,
    n_trials: int,
    progress_label: str,
    quiet: bool = False,
) -> OneShotRun:
    """Run (or resume) one one-shot search with the budget of ``n_trials`` sampler trials."""
    import optuna

    from optuna_enas.dashboard import DashboardCallback
    from optuna_enas.dashboard import set_metric_name

    space = _build_space(args)
    evaluator_config = _evaluator_config(args, space.name)
    kwargs = _oneshot_config(args, method, evaluator_config)
    n_steps, steps_per_epoch = oneshot_plan(n_trials, args)
    device = _check_device(args.device)
    data = _load_data(space.name, args.data)
    artifact_dir, given, default = check_outputs(args, study_name)
    checkpoint = given or default
    # The plain storage: a one-shot run writes one trial per epoch (no per-suggest writes).
    storage = open_storage(args.storage, must_exist=False)
    existing = {s.study_name: s for s in storage.get_all_studies()}.get(study_name)
    config = {
        "space": space.to_dict(),
        "sampler": method,
        "seed": seed,
        "data": None if args.data is None else str(Path(args.data).expanduser().resolve()),
        "evaluator": {**kwargs, "n_steps": n_steps, "steps_per_epoch": steps_per_epoch},
        "checkpoint": str(checkpoint.resolve()),
    }
    direction = kind_of(space).direction
    if existing is not None:
        if existing.direction.name.lower() != direction:
            raise UsageError(
                f"--study-name {study_name!r} exists with direction "
                f"{existing.direction.name.lower()}; a {space.name} search needs {direction}."
            )
        if CONFIG_ATTR in existing.user_attrs or _n_finished_in(storage, existing._study_id):
            check_same_config(study_name, existing.user_attrs.get(CONFIG_ATTR), config)
    resume = checkpoint if checkpoint.is_file() else None
    owner = {"study": study_name, "storage": _redact(args.storage)}
    lock = CheckpointLock(checkpoint, owner=owner)
    lock.acquire()
    try:
        study = optuna.create_study(
            storage=storage, study_name=study_name, direction=direction, load_if_exists=True
        )
        if CONFIG_ATTR not in study.user_attrs:
            study.set_user_attr(CONFIG_ATTR, config)
        set_metric_name(study, kind_of(space).metric_label)
        dashboard = DashboardCallback(
            space, artifact_dir, figures_every=1, metric=kind_of(space).metric_label
        )
        searcher = make_searcher(
            method, space, data, seed=seed, device=device, checkpoint=checkpoint,
            resume=resume, kwargs=kwargs, dashboard=dashboard,
        )  # fmt: skip
        if not quiet:
            state = f"resuming at epoch {searcher.epoch}" if resume else "new study"
            print(
                f"[{progress_label}] {study_name}: {method}, {n_steps} weight steps in "
                f"epochs of {steps_per_epoch}; {state}",
                file=sys.stderr,
            )

        pending: PendingSignal | None = None

        def progress(s: OneShotSearcher, record: Any) -> None:
            if pending is not None:
                pending.raise_if_pending()  # a signal whose exception was swallowed
            if not quiet:
                print(
                    f"[{progress_label}] epoch {record.epoch}: {record.n_weight_steps}/{n_steps} "
                    f"steps, derived {space.describe(record.architecture)} -> "
                    f"{record.value:.6g}",
                    file=sys.stderr,
                    flush=True,
                )

        start = time.perf_counter()
        interrupted, exit_code = False, 0
        try:
            with sigterm_as_interrupt() as pending:  # docs/guarantees.md: "SIGTERM is Ctrl-C"
                searcher.search(
                    study, n_steps=n_steps, steps_per_epoch=steps_per_epoch, callbacks=[progress]
                )
        except KeyboardInterrupt as e:
            interrupted, exit_code = True, 143 if isinstance(e, Terminated) else 130
        except Exception:
            # SIGTERM landed inside a storage write, which reported it as its own error (seen
            # once in a fresh-clone suite run: Optuna's StorageInternalError): still SIGTERM.
            if pending is None or pending.signum is None:
                raise
            interrupted, exit_code = True, 143
        seconds = time.perf_counter() - start
        record_run(study, storage, seconds, dashboard.save_figures, interrupted=interrupted)
    finally:
        lock.release()
    final = searcher.result().architecture if searcher.history else None
    return OneShotRun(
        study, space, checkpoint, seconds, interrupted, exit_code, final, _rescorer(searcher)
    )


def _rescorer(searcher: OneShotSearcher) -> Callable[[Architecture], float]:
    """Score an architecture with the search's final weights on the whole validation set
    (inside the relaxed supernet, projected onto it: :meth:`OneShotSearcher.score`)."""

    def rescore(arch: Architecture) -> float:
        return searcher.score(arch, full=True)

    return rescore
