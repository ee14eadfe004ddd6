"""``optuna-enas search/compare --model MODULE:FACTORY --data MODULE:FACTORY``: your own model.

``--model`` names a factory (called with no arguments) that returns an ``nn.Module`` with
choice modules (:mod:`optuna_enas.nn`) or a :class:`~optuna_enas.nn.Supernet`; an ``nn.Module``
or ``Supernet`` object itself is used as it is. ``--data`` names a factory that returns
``(train_loader, valid_loader)`` or a dict of :class:`~optuna_enas.ModelEvaluator` arguments
with ``train_data`` and ``valid_data`` (and, say, ``loss_fn``, ``metric``, ``optimizer``,
``schedule``). ``MODULE`` is a dotted module name (importable from the current directory) or
a path to a ``.py`` file. The search is :class:`~optuna_enas.ModelEvaluator` under the chosen
sampler, on the storage, with the checkpoint, lock, resume, signal handling and dashboard of
the built-in spaces; at the end the best architecture is exported as plain torch
(``Supernet.save_export``) next to the checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._errors import _redact
from optuna_enas.cli._interrupt import SignalGuard
from optuna_enas.cli._interrupt import Terminated
from optuna_enas.cli._lock import CheckpointLock
from optuna_enas.cli._options import SAMPLERS
from optuna_enas.cli._options import _check_device
from optuna_enas.cli._options import check_seed_arg
from optuna_enas.cli._options import check_trials
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import WALL_ATTR
from optuna_enas.cli._storage import _best_trial
from optuna_enas.cli._storage import _file_name
from optuna_enas.cli._storage import _is_search_trial
from optuna_enas.cli._storage import _n_finished_in
from optuna_enas.cli._storage import check_outputs
from optuna_enas.cli._storage import check_same_config
from optuna_enas.cli._storage import check_study_name
from optuna_enas.cli._storage import check_writable
from optuna_enas.cli._storage import open_storage


if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from optuna_enas.nn import Supernet
    from optuna_enas.training._model_evaluator import ModelEvaluator


_CHECKPOINT_EVERY = 10
# ModelEvaluator arguments the command line sets itself (the flag to use instead).
_CLI_OWNED = {
    "supernet": "--model",
    "n_train_steps": "--train-steps",
    "n_eval_batches": "--eval-batches",
    "device": "--device",
    "seed": "--seed",
    "checkpoint_path": "--checkpoint",
    "checkpoint_every": "--checkpoint",
    "resume_from": "--checkpoint (rerun the command to resume)",
}
# Options of the built-in spaces that mean nothing here (those whose default is None).
_SPACE_ONLY = ("n_nodes", "n_layers")


def load_object(flag: str, spec: str) -> Any:
    """The object ``MODULE:NAME`` names (``MODULE``: dotted name, or a path to a .py file)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr or not attr.replace(".", "_").isidentifier():
        raise UsageError(
            f"{flag} {spec!r} must be MODULE:FACTORY (a module name or a .py path, a colon, "
            "and a name in it), e.g. mypackage.models:make_model or ./models.py:make_model."
        )
    path = Path(module_name).expanduser()
    try:
        if module_name.endswith(".py"):
            module = _load_file(flag, spec, path)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as `python -m` would
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as e:  # the user's module failed to import
        raise UsageError(
            f"{flag} {spec!r}: importing {module_name!r} failed: {_one_line(e)}"
        ) from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{flag} {spec!r}: {module_name!r} has no {attr!r}.")
        obj = getattr(obj, part)
    return obj


def _load_file(flag: str, spec: str, path: Path) -> Any:
    """The module of a .py file, named after its stem (so ``torch.save`` of its classes loads
    again with ``import <stem>``), loaded once per process."""
    if not path.is_file():
        raise UsageError(f"{flag} {spec!r}: no file {str(path)!r}.")
    resolved = path.resolve()
    names = [path.stem] if path.stem.isidentifier() else []
    names.append(f"_optuna_enas_user_{_file_name(path.stem)}")
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            break
        if Path(getattr(module, "__file__", "") or "").resolve() == resolved:
            return module  # --model and --data in one file: one module, one class identity
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise UsageError(f"{flag} {spec!r}: cannot load {str(path)!r} as Python.")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # pickling and dataclasses look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _call(flag: str, spec: str, obj: Any) -> Any:
    from torch import nn

    if isinstance(obj, nn.Module):  # a module object: used as it is
        return obj
    if not callable(obj):
        raise UsageError(f"{flag} {spec!r} is a {type(obj).__name__}, not a factory.")
    try:
        return obj()
    except Exception as e:
        raise UsageError(f"{flag} {spec!r}: calling it failed: {_one_line(e)}") from e


def build_supernet(spec: str) -> Supernet:
    """``--model``: the factory's ``Supernet``, or its ``nn.Module`` wrapped in one."""
    from torch import nn

    from optuna_enas.nn import Supernet

    model = _call("--model", spec, load_object("--model", spec))
    if isinstance(model, Supernet):
        return model
    if not isinstance(model, nn.Module):
        raise UsageError(
            f"--model {spec!r} returned a {type(model).__name__}; it must return an nn.Module "
            "with choices (optuna_enas.nn) or a Supernet."
        )
    try:
        return Supernet(model)
    except ValueError as e:
        raise UsageError(f"--model {spec!r}: {_one_line(e)}") from e


def build_data(spec: str) -> dict[str, Any]:
    """``--data``: ModelEvaluator arguments with ``train_data`` and ``valid_data``."""
    from optuna_enas.training._model_evaluator import ModelEvaluator

    out = _call("--data", spec, load_object("--data", spec))
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return {"train_data": out[0], "valid_data": out[1]}
    if not isinstance(out, dict):
        got = f"a {type(out).__name__}" + (
            f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
        )
        raise UsageError(
            f"--data {spec!r} returned {got}; it must return (train_loader, valid_loader) or "
            "a dict of ModelEvaluator arguments with 'train_data' and 'valid_data'."
        )
    missing = [k for k in ("train_data", "valid_data") if k not in out]
    if missing:
        raise UsageError(f"--data {spec!r}: the dict lacks {missing}.")
    known = set(inspect.signature(ModelEvaluator.__init__).parameters) - {"self"}
    for key in out:
        if key in _CLI_OWNED:
            raise UsageError(
                f"--data {spec!r}: {key!r} is set on the command line ({_CLI_OWNED[key]}), "
                "not by the data factory."
            )
        if key not in known:
            raise UsageError(
                f"--data {spec!r}: {key!r} is not a ModelEvaluator argument "
                f"(one of {sorted(known - set(_CLI_OWNED))})."
            )
    return dict(out)


def _check_args(args: argparse.Namespace) -> None:
    if args.data is None:
        raise UsageError(
            "--model needs --data MODULE:FACTORY (returning (train_loader, valid_loader) or "
            "a dict of ModelEvaluator arguments)."
        )
    for key in _SPACE_ONLY:
        if getattr(args, key, None) is not None:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} applies to the built-in spaces, not to --model.")


def _sgd(lr: float) -> Callable[[list[Any]], Any]:
    """ENAS's child SGD (:func:`~optuna_enas.training._model_evaluator.default_optimizer`)
    with the learning rate of ``--lr``."""

    def factory(params: list[Any]) -> Any:
        import torch

        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)

    return factory


def _evaluator_kwargs(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    if not math.isfinite(args.train_steps) or args.train_steps < 0:
        raise UsageError(
            f"--train-steps must be a finite number >= 0, but got {args.train_steps}."
        )
    if args.eval_batches < 1:
        raise UsageError(f"--eval-batches must be >= 1, but got {args.eval_batches}.")
    kwargs = dict(data)
    kwargs["n_train_steps"] = args.train_steps
    kwargs["n_eval_batches"] = args.eval_batches
    if args.lr is not None:
        if not args.lr > 0:
            raise UsageError(f"--lr must be positive, but got {args.lr}.")
        if "optimizer" in data:
            raise UsageError("--lr and an 'optimizer' from --data: give one of them.")
        kwargs["optimizer"] = _sgd(args.lr)
    return kwargs


@dataclass
class UserRun:
    study: optuna.Study
    evaluator: ModelEvaluator
    supernet: Supernet
    checkpoint: Path
    seconds: float
    interrupted: bool
    exit_code: int = 0


def run_model_search(
    args: argparse.Namespace,
    *,
    sampler_name: str,
    seed: int,
    study_name: str,
    n_trials: int,
    progress_label: str,
    quiet: bool = False,
) -> UserRun:
    """One search over ``--model`` with ``--data`` (new or resumed), like ``_run_search``."""
    import optuna

    from optuna_enas.cli._search import _controller_config
    from optuna_enas.cli._search import _make_sampler
    from optuna_enas.cli._search import _ProgressLines
    from optuna_enas.cli._search import _reload_after_lock
    from optuna_enas.cli._search import resolve_rule
    from optuna_enas.dashboard import DashboardCallback
    from optuna_enas.dashboard import set_metric_name
    from optuna_enas.training._model_evaluator import ModelEvaluator

    _check_args(args)
    if sampler_name not in SAMPLERS:
        raise UsageError(
            f"--sampler {sampler_name!r} with --model: one of {list(SAMPLERS)} (the one-shot "
            "methods over your model are optuna_enas.ModelDARTS / ModelDSONAS in Python)."
        )
    controller = _controller_config(args)
    device = _check_device(args.device)
    artifact_dir, given, default = check_outputs(args, study_name)
    supernet = build_supernet(args.model)
    data = build_data(args.data)
    kwargs = _evaluator_kwargs(args, data)
    space = supernet.space
    storage = open_storage(args.storage, must_exist=False, writer=True)
    existing = {s.study_name: s for s in storage.get_all_studies()}.get(study_name)
    old_config = None if existing is None else existing.user_attrs.get(CONFIG_ATTR)
    if given is not None:
        checkpoint = given
    elif isinstance(old_config, dict) and isinstance(old_config.get("checkpoint"), str):
        checkpoint = Path(old_config["checkpoint"])
        check_writable("--checkpoint", checkpoint, directory=False)
    else:
        checkpoint = default
    config = {
        "space": space.to_dict(),
        "model": args.model,
        "sampler": sampler_name,
        "seed": seed,
        "data": args.data,
        "evaluator": {
            "n_train_steps": args.train_steps,
            "n_eval_batches": args.eval_batches,
            "lr": args.lr,
            "from_data": sorted(k for k in data if k not in ("train_data", "valid_data")),
        },
        "checkpoint": str(checkpoint.resolve()),
    }
    rule = resolve_rule(args, sampler_name, controller, old_config, config)
    n_done = 0 if existing is None else _n_finished_in(storage, existing._study_id)
    if existing is not None and (CONFIG_ATTR in existing.user_attrs or n_done > 0):
        check_same_config(study_name, old_config, config)
    resume = checkpoint if checkpoint.is_file() else None
    if resume is not None and n_done == 0:
        raise UsageError(
            f"--checkpoint {str(checkpoint)!r} exists but study {study_name!r} has no finished "
            "trial; delete the file or choose another --study-name or --checkpoint."
        )
    lock = CheckpointLock(
        checkpoint, owner={"study": study_name, "storage": _redact(args.storage)}
    )
    lock.acquire()
    _reload_after_lock(storage)
    try:
        try:
            evaluator = ModelEvaluator(
                supernet,
                seed=seed,
                device=device,
                checkpoint_path=checkpoint,
                checkpoint_every=_CHECKPOINT_EVERY,
                resume_from=resume,
                **kwargs,
            )
        except ValueError as e:
            raise UsageError(f"cannot build the evaluator: {_one_line(e)}") from e
        direction = evaluator.direction
        if existing is not None and existing.direction.name.lower() != direction:
            raise UsageError(
                f"--study-name {study_name!r} exists with direction "
                f"{existing.direction.name.lower()}; this objective needs {direction}."
            )
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction=direction,
            pruner=optuna.pruners.NopPruner(),  # one shared step per trial: nothing to stop
            load_if_exists=True,
        )
        if existing is None or CONFIG_ATTR not in existing.user_attrs:
            study.set_user_attr(CONFIG_ATTR, config)
        set_metric_name(study, evaluator.metric)
        study.sampler = _make_sampler(
            sampler_name, space, seed, n_done, controller=controller, rule=rule
        )
        remaining = n_trials - n_done
        if not quiet:
            state = f"resuming at {n_done} trials" if n_done else "new study"
            if remaining <= 0:
                state = f"already has {n_done} trials; raise --trials to continue"
            elif resume is not None:
                state += f", supernet from {resume}"
            print(f"[{progress_label}] {study_name}: {state}", file=sys.stderr)
        callback = DashboardCallback(
            space, artifact_dir, figures_every=args.figures_every, metric=evaluator.metric
        )
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [callback]
        bar = sys.stderr.isatty() and not quiet
        if not bar and not quiet and remaining > 0:
            callbacks.append(
                _ProgressLines(progress_label, remaining, args.log_every, evaluator.metric)
            )
        start = time.perf_counter()
        interrupted, exit_code = False, 0
        try:
            if remaining > 0:
                guard = SignalGuard()
                with guard.installed():
                    study.optimize(
                        guard.objective(callback.wrap(evaluator)),
                        n_trials=remaining,
                        callbacks=[*callbacks, guard.callback],
                        show_progress_bar=bar,
                    )
                if guard.signal is not None:
                    interrupted, exit_code = True, 128 + guard.signal
        except KeyboardInterrupt as e:
            interrupted, exit_code = True, 143 if isinstance(e, Terminated) else 130
        finally:
            seconds = time.perf_counter() - start
            if remaining > 0:
                evaluator.save(checkpoint)
                wall = float(study.user_attrs.get(WALL_ATTR, 0.0)) + seconds
                study.set_user_attr(WALL_ATTR, wall)
                callback.save_figures(study)
    finally:
        lock.release()
    return UserRun(study, evaluator, supernet, checkpoint, seconds, interrupted, exit_code)


def export_dir(checkpoint: Path) -> Path:
    """Where the best architecture is exported: ``<checkpoint without .pt>.best/``."""
    return checkpoint.with_name(checkpoint.name.removesuffix(".pt") + ".best")


def _study_prefix(args: argparse.Namespace) -> str:
    return "model-" + _file_name(args.model.rpartition(":")[2])


def cmd_search_model(args: argparse.Namespace) -> int:
    """``optuna-enas search --model ... --data ...``."""
    from optuna_enas.cli._search import _dashboard_hint

    check_trials("--trials", args.trials, 1)
    check_seed_arg("--seed", args.seed)
    study_name = args.study_name or f"{_study_prefix(args)}-{args.sampler}"
    check_study_name("--study-name", study_name)
    run = run_model_search(
        args,
        sampler_name=args.sampler,
        seed=args.seed,
        study_name=study_name,
        n_trials=args.trials,
        progress_label="search",
    )
    print(f"study: {study_name}  storage: {args.storage}")
    trials = [t for t in run.study.get_trials(deepcopy=False) if _is_search_trial(t)]
    print(f"trials: {len(trials)}")
    best = _best_trial(run.study, derived=False)
    if best is None:
        print("best: no completed trial yet")
    else:
        print(f"best trial: {best.number}  {run.evaluator.metric} {best.value:.6g}")
        print(f"best architecture: {json.dumps(best.params)}")
        out = run.supernet.save_export(best.params, export_dir(run.checkpoint))
        print(f"exported model: {out / 'model.pt'} (plain torch), {out / 'params.json'}")
    print(f"supernet checkpoint: {run.checkpoint}")
    _dashboard_hint(args)
    if run.interrupted:
        print(f"{PROG}: interrupted; rerun the same command to continue.", file=sys.stderr)
        return run.exit_code
    return 0


def cmd_compare_model(args: argparse.Namespace) -> int:
    """``optuna-enas compare --model ... --data ...``: samplers x seeds on your model.

    Each run has its own study and supernet; the table gives the best value during the
    search and the best architecture re-scored by its run's final shared weights on
    ``--eval-batches`` x 10 validation batches (the same batches for every run of a seed
    only if the loader's order is seeded).
    """
    check_trials("--trials", args.trials, 2)
    if len(set(args.seeds)) != len(args.seeds):
        raise UsageError(f"--seeds must be distinct, but got {args.seeds}.")
    for s in args.seeds:
        check_seed_arg("--seeds", s)
    samplers = list(dict.fromkeys(args.samplers))
    prefix = args.study_prefix or f"compare-{_study_prefix(args)}"
    for name in samplers:
        check_study_name("--study-prefix", f"{prefix}-{name}-seed{max(args.seeds)}")
    out_dir = Path(args.output_dir or _file_name(prefix)).expanduser()
    check_writable("--output-dir", out_dir, directory=True)
    rows: list[dict[str, Any]] = []
    metric = "value"
    for sampler_name in samplers:
        for seed in args.seeds:
            name = f"{prefix}-{sampler_name}-seed{seed}"
            run = run_model_search(
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
                return run.exit_code
            metric = run.evaluator.metric
            best = _best_trial(run.study, derived=False)
            rescored = math.nan
            if best is not None:
                rescored = run.evaluator.evaluate(best.params, n_batches=10 * args.eval_batches)
            rows.append(
                {
                    "sampler": sampler_name,
                    "seed": seed,
                    "study": name,
                    "best": math.nan if best is None else float(best.value or math.nan),
                    "params": None if best is None else best.params,
                    "rescored": rescored,
                    "wall_seconds": float(run.study.user_attrs.get(WALL_ATTR, run.seconds)),
                }
            )
            print(
                f"[compare] {name}: best {metric} {rows[-1]['best']:.6g}, re-scored "
                f"{rescored:.6g}",
                file=sys.stderr,
            )
    table = _table(rows, samplers, metric, args)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table)
    print(f"wrote {out_dir / 'results.md'}")
    print(f"wrote {out_dir / 'results.json'}")
    return 0


def _mean_std(values: list[float]) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return "n/a"
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.4g} ± {std:.2g}"


def _table(
    rows: list[dict[str, Any]], samplers: list[str], metric: str, args: argparse.Namespace
) -> str:
    lines = [
        f"Model `{args.model}`, data `{args.data}`, {args.trials} trials per run, seeds "
        f"{args.seeds}; {metric}.",
        "",
        f"| sampler | runs | best {metric} during search | best architecture re-scored "
        f"({10 * args.eval_batches} validation batches) | wall s/run |",
        "|---|---|---|---|---|",
    ]
    for name in samplers:
        mine = [r for r in rows if r["sampler"] == name]
        wall = statistics.fmean(r["wall_seconds"] for r in mine)
        lines.append(
            f"| {name} | {len(mine)} | {_mean_std([r['best'] for r in mine])} "
            f"| {_mean_std([r['rescored'] for r in mine])} | {wall:.1f} |"
        )
    return "\n".join(lines) + "\n"
