"""``optuna-enas rank-check``: the trained supernet's ranking against training from scratch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._options import check_seed_arg
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import DEFAULT_STORAGE
from optuna_enas.cli._storage import _file_name
from optuna_enas.cli._storage import _load_study
from optuna_enas.cli._storage import check_study_name
from optuna_enas.cli._storage import check_writable
from optuna_enas.cli._storage import open_storage
from optuna_enas.cli._storage import refuse_search_study


MAX_ARCHS = 10_000


def add_rank_check_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``rank-check`` on the subcommand set of the ``optuna-enas`` parser."""
    p = sub.add_parser(
        "rank-check",
        help="train K architectures from scratch; compare with the supernet's ranking",
        description="Sample K distinct architectures, score them on the search's trained "
        "supernet (frozen weights), train each from scratch, and report Kendall tau, Spearman "
        "rho and top-k overlap with a scatter plot. Resumable: rerun the same command.",
    )
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage of the search (default: {DEFAULT_STORAGE})",
    )
    p.add_argument("--study-name", default=None, help="the search study")
    p.add_argument("--checkpoint", default=None, help="supernet checkpoint (from the study)")
    p.add_argument("--n-archs", type=int, default=20, help="architectures to compare (20)")
    p.add_argument("--epochs", type=int, default=3, help="epochs from scratch per arch (3)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="default: a full pass")
    p.add_argument(
        "--valid-batches",
        type=int,
        default=None,
        help="supernet: score on the first N validation batches (default: the whole split)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of architectures and training (0)")
    p.add_argument(
        "--run-name", default=None, help="the rank-check study (default <study>-rank-check)"
    )
    p.add_argument("--output", default=None, help="SVG scatter plot (default <run>.svg)")
    p.add_argument("--json", default=None, help="also write the result as JSON here")
    p.add_argument("--device", default=None, help="torch device (auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(handler=_cmd_rank_check)


def _cmd_rank_check(args: argparse.Namespace) -> int:
    from optuna_enas.cli._final import _trained_evaluator
    from optuna_enas.final._rank_check import rank_check

    if not 2 <= args.n_archs <= MAX_ARCHS:
        raise UsageError(f"--n-archs must be in [2, {MAX_ARCHS}], but got {args.n_archs}.")
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, but got {args.epochs}.")
    for flag, value in (
        ("--steps-per-epoch", args.steps_per_epoch),
        ("--valid-batches", args.valid_batches),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, but got {value}.")
    check_seed_arg("--seed", args.seed)
    storage = open_storage(args.storage, must_exist=True)
    name = args.study_name
    if name is None:  # the one search study (rank-check and derive studies do not count)
        searches = [s.study_name for s in storage.get_all_studies() if CONFIG_ATTR in s.user_attrs]
        name = searches[0] if len(searches) == 1 else None
    study = _load_study(storage, args.storage, name)
    run_name = check_study_name("--run-name", args.run_name or f"{study.study_name}-rank-check")
    refuse_search_study(storage, run_name, "--run-name", "rank-check")
    output = Path(args.output or f"{_file_name(run_name)}.svg")
    check_writable("--output", output, directory=False)
    if args.json is not None:
        check_writable("--json", Path(args.json), directory=False)
    _, space, evaluator = _trained_evaluator(study, args.checkpoint, args.device)
    try:
        result = rank_check(
            evaluator,
            n_archs=args.n_archs,
            n_epochs=args.epochs,
            n_steps_per_epoch=args.steps_per_epoch,
            storage=storage,
            study_name=run_name,
            seed=args.seed,
            valid_batches=args.valid_batches,
            svg_path=output,
            progress=not args.no_progress,
        )
    except ValueError as e:
        raise UsageError(_one_line(e).removeprefix("ValueError: ")) from e
    print(f"rank check {run_name!r} of study {study.study_name!r}: {result.summary()}")
    print(f"| # | supernet {result.metric} | from scratch {result.metric} | architecture |")
    print("|---|---|---|---|")
    for i, a, s, t in zip(
        result.indices, result.archs, result.supernet, result.standalone, strict=True
    ):
        print(f"| {i} | {s:.6g} | {t:.6g} | {space.describe(a)} |")
    print(f"scatter plot: {output}")
    if args.json is not None:
        from optuna_enas._atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=1) + "\n")
        print(f"result: {args.json}")
    return 0
