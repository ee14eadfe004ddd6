"""The same ENAS objective under ENAS, random search and TPE, over several seeds.

    python examples/compare_samplers.py            # 3 seeds x 60 trials per sampler
    python examples/compare_samplers.py --smoke    # seconds, for CI

Every (sampler, seed) run gets a fresh :class:`SupernetEvaluator` with the same configuration
and seed, so the samplers differ only in which architectures they pick. With a supernet
objective, random search is "random search with weight sharing" (Li & Talwalkar, 2019), the
baseline ENAS must beat. The script prints the final best (mean and spread) per sampler and
writes the best-so-far curves as an SVG. ``optuna-enas compare`` does the same with a storage,
resumable runs and dashboard figures.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import optuna

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator
from optuna_enas.dashboard import best_so_far
from optuna_enas.dashboard import comparison_svg


def make_sampler(name: str, space: RNNCellSpace, seed: int) -> optuna.samplers.BaseSampler:
    if name == "enas":
        return ENASSampler(space, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS vs random vs TPE on one objective.")
    parser.add_argument("--trials", type=int, default=60, help="trials per run (60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds")
    parser.add_argument("--out", default="compare_samplers.svg", help="best-so-far plot")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    size = 8 if args.smoke else 32
    if args.smoke:
        args.trials, args.seeds = 4, [0, 1]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = RNNCellSpace(n_nodes=3 if args.smoke else 6)
    curves: dict[str, list[list[float]]] = {}
    for name in ("enas", "random", "tpe"):
        for seed in args.seeds:
            evaluator = SupernetEvaluator(
                space,
                supernet_kwargs={"embed_size": size, "hidden_size": size},
                batch_size=size,
                bptt=size,
                seed=seed,
            )
            study = optuna.create_study(
                sampler=make_sampler(name, space, seed),
                direction=evaluator.direction,
                pruner=optuna.pruners.NopPruner(),
            )
            study.optimize(evaluator, n_trials=args.trials)
            values = [t.value for t in study.trials if t.value is not None]
            curves.setdefault(name, []).append(best_so_far(values, "minimize"))

    print(f"| sampler | best valid ppl after {args.trials} trials (mean ± std, min, max) |")
    print("|---|---|")
    for name, runs in curves.items():
        final = [run[-1] for run in runs]
        std = statistics.stdev(final) if len(final) > 1 else 0.0
        spread = f"{min(final):.2f}, {max(final):.2f}"
        print(f"| {name} | {statistics.fmean(final):.2f} ± {std:.2f} ({spread}) |")
    title = f"Best valid ppl so far, {len(args.seeds)} seeds"
    Path(args.out).write_text(comparison_svg(curves, metric="valid ppl", title=title))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
