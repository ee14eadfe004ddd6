"""``optuna-enas derive``, ``retrain`` and ``export``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas._keys import DERIVE_STUDY_SUFFIX
from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._options import _check_device
from optuna_enas.cli._options import _load_data
from optuna_enas.cli._options import _metric
from optuna_enas.cli._options import check_seed_arg
from optuna_enas.cli._options import training_from_config
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import _derived_study
from optuna_enas.cli._storage import _file_name
from optuna_enas.cli._storage import _is_search_trial
from optuna_enas.cli._storage import _load_study
from optuna_enas.cli._storage import _pick_trial
from optuna_enas.cli._storage import _study_space
from optuna_enas.cli._storage import check_writable
from optuna_enas.cli._storage import damaged_checkpoint
from optuna_enas.cli._storage import open_storage
from optuna_enas.cli._storage import refuse_search_study


if TYPE_CHECKING:
    import optuna

    from optuna_enas.spaces._search_space import Architecture
    from optuna_enas.spaces._search_space import SearchSpace
    from optuna_enas.training._evaluator import SupernetEvaluator


RETRAIN_ATTR = "enas:retrain"
"""Study user attr: the latest ``retrain`` result; ``enas:retrain:<k>`` keeps every one."""


def _study_config(study: optuna.Study) -> dict[str, Any]:
    config = study.user_attrs.get(CONFIG_ATTR)
    if not isinstance(config, dict):
        raise UsageError(
            f"study {study.study_name!r} was not created by `{PROG} search` (no {CONFIG_ATTR!r} "
            "user attr), so its evaluator settings are unknown."
        )
    return config


def _trained_evaluator(
    study: optuna.Study, checkpoint_arg: str | None, device_arg: str | None
) -> tuple[dict[str, Any], SearchSpace, SupernetEvaluator]:
    """The search's config, its space and its supernet evaluator loaded from the checkpoint
    (``--checkpoint``, else the one the search recorded)."""
    from optuna_enas import space_from_dict
    from optuna_enas.training._evaluator import SupernetEvaluator

    config = _study_config(study)
    space = space_from_dict(config["space"])
    checkpoint = Path(checkpoint_arg or config["checkpoint"])
    if not checkpoint.is_file():
        raise UsageError(f"--checkpoint {str(checkpoint)!r} does not exist; run the search first.")
    data = _load_data(space.name, config.get("data"))
    try:
        evaluator = SupernetEvaluator.load(checkpoint, data, device=_check_device(device_arg))
    except ValueError as e:
        raise UsageError(f"--checkpoint {str(checkpoint)!r}: {_one_line(e)}") from e
    except (KeyError, AssertionError, TypeError, RuntimeError) as e:
        raise UsageError(damaged_checkpoint(checkpoint, e)) from e
    return config, space, evaluator


def _cmd_derive(args: argparse.Namespace) -> int:
    from optuna_enas import ENASSampler
    from optuna_enas import derive
    from optuna_enas.final._derive import MAX_SAMPLES

    for flag, value in (("--n-samples", args.n_samples), ("--top-k", args.top_k)):
        if not 1 <= value <= MAX_SAMPLES:
            raise UsageError(f"{flag} must be in [1, {MAX_SAMPLES}], but got {value}.")
    if args.seed is not None:
        check_seed_arg("--seed", args.seed)
    storage = open_storage(args.storage, must_exist=True)
    study = _load_study(storage, args.storage, args.study_name)
    if not args.no_record:
        refuse_search_study(storage, study.study_name + DERIVE_STUDY_SUFFIX, "study", "derive")
    config, space, evaluator = _trained_evaluator(study, args.checkpoint, args.device)
    source: Any
    if config["sampler"] == "enas":
        # the rule the search learned with (studies from before --rule: REINFORCE)
        sampler = ENASSampler(
            space, seed=int(config["seed"]), rule=config.get("rule", "reinforce")
        )
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
    # The trial numbers are those of the derive study, not of the search: the header says so.
    column = "derive trial" if results[0].study_name is not None else "trial"
    print(f"| rank | {metric} | {column} | architecture |")
    print("|---|---|---|---|")
    for r in results:
        trial = "-" if r.trial_number is None else str(r.trial_number)
        print(f"| {r.rank} | {r.value:.6g} | {trial} | {space.describe(r.architecture)} |")
    print(f"fixed_arc (rank 0): {space.to_fixed_arc(results[0].architecture)}")
    if results[0].study_name is not None:
        print(
            f"recorded in study {results[0].study_name!r} (apart from the search study, whose "
            "best trial stays the best search trial); 'derive trial' numbers are that study's"
        )
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from optuna_enas import import_architecture
    from optuna_enas import retrain
    from optuna_enas import space_from_dict

    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, but got {args.epochs}.")
    check_seed_arg("--seed", args.seed)
    if args.save_model is not None:
        check_writable("--save-model", Path(args.save_model), directory=False)
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
    training, _ = training_from_config(config["evaluator"], _check_device(args.device))
    result = retrain(
        arch,
        space,
        _load_data(space.name, config.get("data")),
        n_epochs=args.epochs,
        n_steps_per_epoch=args.steps_per_epoch,
        training=training,  # the search's supernet size, batch size, BPTT and lr
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
    # Each result is kept: enas:retrain:<k> (k = 0, 1, ...); enas:retrain is the latest.
    k = sum(key.startswith(RETRAIN_ATTR + ":") for key in study.user_attrs)
    summary["seed"] = args.seed
    study.set_user_attr(f"{RETRAIN_ATTR}:{k}", summary)
    study.set_user_attr(RETRAIN_ATTR, summary)
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
    from optuna_enas import export_architecture

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
    where = study.study_name
    if not _is_search_trial(trial) and _derived_study(study) is not None:
        where = study.study_name + "-derive"
    print(f"study: {where}; {kind} trial {trial.number} (value {trial.value})")
    print(f"architecture: {space.describe(arch)}")
    print(f"fixed_arc: {fixed_arc}")
    print(f"wrote {output}")
    print(f"wrote {fixed_path}")
    return 0
