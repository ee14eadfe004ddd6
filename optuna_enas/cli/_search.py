"""``optuna-enas search``, and the study/evaluator setup that ``compare`` shares."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._errors import _redact
from optuna_enas.cli._interrupt import SignalGuard
from optuna_enas.cli._interrupt import Terminated
from optuna_enas.cli._lock import CheckpointLock
from optuna_enas.cli._options import ONESHOT_METHODS
from optuna_enas.cli._options import _build_space
from optuna_enas.cli._options import _check_device
from optuna_enas.cli._options import _evaluator_config
from optuna_enas.cli._options import _load_data
from optuna_enas.cli._options import _metric
from optuna_enas.cli._options import check_seed_arg
from optuna_enas.cli._options import check_trials
from optuna_enas.cli._options import training_from_config
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import _best_trial
from optuna_enas.cli._storage import _is_search_trial
from optuna_enas.cli._storage import _n_finished_in
from optuna_enas.cli._storage import check_outputs
from optuna_enas.cli._storage import check_same_config
from optuna_enas.cli._storage import check_study_name
from optuna_enas.cli._storage import check_writable
from optuna_enas.cli._storage import damaged_checkpoint
from optuna_enas.cli._storage import default_artifact_dir
from optuna_enas.cli._storage import open_storage
from optuna_enas.cli._storage import record_run
from optuna_enas.spaces._kinds import kind_of


if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from optuna_enas.cli._oneshot import OneShotRun
    from optuna_enas.spaces._search_space import SearchSpace
    from optuna_enas.training._evaluator import SupernetEvaluator


_CHECKPOINT_EVERY = 10


@dataclass
class _Run:
    study: optuna.Study
    evaluator: SupernetEvaluator
    space: SearchSpace
    checkpoint: Path
    seconds: float
    interrupted: bool
    exit_code: int = 0  # 130 after Ctrl-C (SIGINT), 143 after SIGTERM


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


def _controller_config(args: argparse.Namespace) -> Any:
    """The ENAS controller config from ``--preset`` and ``--controller-lr`` (None: default)."""
    from optuna_enas.sampler._config import ControllerConfig

    preset = getattr(args, "preset", None)
    lr = getattr(args, "controller_lr", None)
    if lr is not None and not (lr > 0 and lr < float("inf")):
        raise UsageError(f"--controller-lr must be a positive number, but got {lr!r}.")
    if preset is None and lr is None:
        return None
    overrides = {} if lr is None else {"learning_rate": lr}
    return ControllerConfig.from_preset(preset or "default", **overrides)


def resolve_rule(
    args: argparse.Namespace,
    sampler_name: str,
    controller: Any,
    old_config: Any,
    config: dict[str, Any] | None = None,
) -> str | None:
    """The ENAS controller's learning rule for this run (``None`` for other samplers), also
    recorded as ``config["rule"]`` when ``config`` is given.

    A study keeps the rule it was created with (studies from before ``--rule`` existed were
    REINFORCE's, and get no ``"rule"``: nothing to compare); ``--rule`` that disagrees with it
    is refused. A new study takes ``--rule``, else ``ENASSampler``'s default (the ENAS presets
    and ``--controller-lr`` mean REINFORCE).
    """
    if sampler_name != "enas":
        return None
    from optuna_enas.sampler._sampler import DEFAULT_RULE

    given = getattr(args, "rule", None)
    if isinstance(old_config, dict):
        stored = str(old_config.get("rule", "reinforce"))
        if given is not None and given != stored:
            raise UsageError(
                f"--rule {given} disagrees with the study, which was created with --rule "
                f"{stored}; rerun it with --rule {stored} or choose another --study-name."
            )
        if config is not None and "rule" in old_config:
            config["rule"] = stored
        return stored
    if given is not None:
        rule = str(given)
    else:
        rule = DEFAULT_RULE if controller is None else "reinforce"
    if config is not None:
        config["rule"] = rule
    return rule


def _make_sampler(
    name: str,
    space: SearchSpace,
    seed: int,
    n_done: int,
    controller: Any = None,
    rule: str | None = None,
) -> Any:
    import numpy as np
    import optuna

    from optuna_enas import ENASSampler

    if name == "enas":
        # Draws are seeded by (seed, trial.number) and the controller replays the study: a
        # resumed search continues exactly. ENAS presets (moving-average baseline) on the RNN
        # space: ENAS's PTB reward 80 / valid ppl (Sec. 3.1), not -ppl.
        from optuna_enas import perplexity_reward

        ppl = space.name == "rnn" and getattr(controller, "advantage", None) == "baseline"
        reward_fn = perplexity_reward() if ppl else None
        return ENASSampler(
            space, seed=seed, config=controller, reward_fn=reward_fn, rule=cast(Any, rule)
        )
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
    space = _build_space(args)
    evaluator_config = _evaluator_config(args, space.name)
    _controller_config(args)  # --preset / --controller-lr: refused before anything is written
    device = _check_device(args.device)
    data = _load_data(space.name, args.data)
    # Every output path must be writable before the storage (or anything else) is written.
    artifact_dir, given, default = check_outputs(args, study_name)
    storage = open_storage(args.storage, must_exist=False, writer=True)
    data_id = None if args.data is None else str(Path(args.data).expanduser().resolve())
    existing = {s.study_name: s for s in storage.get_all_studies()}.get(study_name)
    old_config = None if existing is None else existing.user_attrs.get(CONFIG_ATTR)
    if given is not None:
        checkpoint = given
    elif isinstance(old_config, dict) and isinstance(old_config.get("checkpoint"), str):
        checkpoint = Path(old_config["checkpoint"])  # the study's own checkpoint
        check_writable("--checkpoint", checkpoint, directory=False)
    else:
        checkpoint = default
    config = {
        "space": space.to_dict(),
        "sampler": sampler_name,
        "seed": seed,
        "data": data_id,
        "evaluator": evaluator_config,
        "checkpoint": str(checkpoint.resolve()),
    }
    rule = resolve_rule(args, sampler_name, _controller_config(args), old_config, config)
    direction = kind_of(space).direction
    # Check an existing study before anything is written.
    if existing is not None:
        old_direction = existing.direction.name.lower()
        if old_direction != direction:
            raise UsageError(
                f"--study-name {study_name!r} exists with direction {old_direction}; a "
                f"{space.name} search needs {direction}."
            )
    n_done = 0 if existing is None else _n_finished_in(storage, existing._study_id)
    if existing is not None and (CONFIG_ATTR in existing.user_attrs or n_done > 0):
        check_same_config(study_name, existing.user_attrs.get(CONFIG_ATTR), config)
    owner = {"study": study_name, "storage": _redact(args.storage)}
    lock = CheckpointLock(checkpoint, owner=owner)
    lock.acquire()  # one writer per supernet; released when the run ends
    _reload_after_lock(storage)
    try:
        return _run_locked(
            args, storage, space, config, checkpoint, artifact_dir, existing, n_done,
            device=device, data=data, sampler_name=sampler_name, seed=seed,
            study_name=study_name, n_trials=n_trials, progress_label=progress_label,
            quiet=quiet, rule=rule,
        )  # fmt: skip
    finally:
        lock.release()


def _reload_after_lock(storage: Any) -> None:
    """What a writer that held the lock before us wrote: read again (BatchedStorage)."""
    from optuna_enas.storage import BatchedStorage

    if isinstance(storage, BatchedStorage):
        storage.reload()


def _run_locked(
    args: argparse.Namespace,
    storage: Any,
    space: SearchSpace,
    config: dict[str, Any],
    checkpoint: Path,
    artifact_dir: Path,
    existing: Any,
    n_done: int,
    *,
    device: str | None,
    data: Any,
    sampler_name: str,
    seed: int,
    study_name: str,
    n_trials: int,
    progress_label: str,
    quiet: bool,
    rule: str | None,
) -> _Run:
    import optuna

    from optuna_enas.dashboard import DashboardCallback
    from optuna_enas.dashboard import set_metric_name
    from optuna_enas.training._evaluator import SupernetEvaluator

    evaluator_config = config["evaluator"]
    direction = kind_of(space).direction
    resume = checkpoint if checkpoint.is_file() else None
    if resume is not None and n_done == 0:
        raise UsageError(
            f"--checkpoint {str(checkpoint)!r} exists but study {study_name!r} has no finished "
            "trial; delete the file or choose another --study-name or --checkpoint."
        )
    try:
        training, options = training_from_config(evaluator_config, device)
        evaluator = SupernetEvaluator(
            space,
            data,
            training=training,
            seed=seed,
            checkpoint_path=checkpoint,
            checkpoint_every=_CHECKPOINT_EVERY,
            resume_from=resume,
            **options,
        )
    except ValueError as e:
        raise UsageError(f"cannot build the evaluator: {_one_line(e)}") from e
    except (KeyError, AssertionError, TypeError, RuntimeError) as e:
        if resume is None:
            raise
        raise UsageError(damaged_checkpoint(resume, e)) from e
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
    set_metric_name(study, kind_of(space).metric_label)  # dashboard axes: not "Objective 0"
    study.sampler = _make_sampler(
        sampler_name,
        space,
        seed,
        n_done,
        controller=_controller_config(args),
        rule=rule,
    )
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
    callback = DashboardCallback(
        space, artifact_dir, figures_every=args.figures_every, metric=kind_of(space).metric_label
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [callback]
    bar = sys.stderr.isatty() and not quiet
    if not bar and not quiet and remaining > 0:
        metric = _metric(space.name)
        callbacks.append(_ProgressLines(progress_label, remaining, args.log_every, metric))
    start = time.perf_counter()
    interrupted, exit_code = False, 0
    guard = SignalGuard()  # Ctrl-C and SIGTERM: a FAIL trial and a saved checkpoint
    try:
        if remaining > 0:
            with guard.installed():
                study.optimize(
                    guard.objective(callback.wrap(evaluator)),
                    n_trials=remaining,
                    callbacks=[*callbacks, guard.callback],
                    show_progress_bar=bar,
                )
            if guard.signal is not None:  # stopped between two trials
                interrupted, exit_code = True, 128 + guard.signal
    except KeyboardInterrupt as e:
        interrupted, exit_code = True, 143 if isinstance(e, Terminated) else 130
    except Exception:
        # The interrupt landed inside a storage write, which reported it as its own error.
        if guard.received is None:
            raise
        interrupted, exit_code = True, 128 + guard.received
    finally:
        seconds = time.perf_counter() - start
        if remaining > 0:
            evaluator.save(checkpoint)
            record_run(study, storage, seconds, callback.save_figures, interrupted=interrupted)
    return _Run(study, evaluator, space, checkpoint, seconds, interrupted, exit_code)


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
    check_trials("--trials", args.trials, 1)
    check_seed_arg("--seed", args.seed)
    study_name = args.study_name or f"enas-{args.space}-{args.sampler}"
    check_study_name("--study-name", study_name)
    run: _Run | OneShotRun
    if args.sampler in ONESHOT_METHODS:  # DARTS / DSO-NAS: the same budget of weight steps
        from optuna_enas.cli._oneshot import run_oneshot

        run = run_oneshot(
            args,
            method=args.sampler,
            seed=args.seed,
            study_name=study_name,
            n_trials=args.trials,
            progress_label="search",
        )
    else:
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
        return run.exit_code
    return 0
