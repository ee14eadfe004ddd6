"""NAS-RL-style search (Zoph & Le, 2017): every child trained from scratch, bad ones pruned.

    python examples/nasrl_pruning.py            # 60 children, 4 epochs each at most
    python examples/nasrl_pruning.py --smoke    # seconds, for CI

No weight sharing: :class:`StandaloneEvaluator` builds a fresh network per trial, trains it
for ``--epochs`` epochs and reports the full validation perplexity after each one, so
Optuna's :class:`~optuna.pruners.MedianPruner` stops children that are worse than the median
of earlier children at the same epoch. The controller (:class:`ENASSampler`) learns from
pruned children too, from their last reported perplexity (``pruned_trial_policy``). This is
the expensive baseline ENAS was invented to replace (its Table 1: 22,400 GPU hours for
NAS-RL's CIFAR cell search vs. 16 for ENAS); compare the wall time with ``quickstart.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import StandaloneEvaluator


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="NAS-RL-style search with pruning.")
    parser.add_argument("--trials", type=int, default=60, help="children (60)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per child (4)")
    parser.add_argument("--steps-per-epoch", type=int, default=100, help="minibatches (100)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    size = 8 if args.smoke else 32
    if args.smoke:
        args.trials, args.epochs, args.steps_per_epoch = 8, 2, 3

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = RNNCellSpace(n_nodes=3 if args.smoke else 6)
    evaluator = StandaloneEvaluator(
        space,
        supernet_kwargs={"embed_size": size, "hidden_size": size},
        n_epochs=args.epochs,
        n_steps_per_epoch=args.steps_per_epoch,
        batch_size=size,
        bptt=size,
        seed=0,
    )
    study = optuna.create_study(
        sampler=ENASSampler(space, seed=0, pruned_trial_policy="last_value"),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        direction=evaluator.direction,
    )
    start = time.perf_counter()
    study.optimize(evaluator, n_trials=args.trials)
    seconds = time.perf_counter() - start

    pruned = study.get_trials(states=(TrialState.PRUNED,))
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    print(f"{len(study.trials)} children, {len(pruned)} pruned, {seconds:.1f} s")
    print(f"epochs trained: {epochs} of {len(study.trials) * args.epochs} without pruning")
    print(f"best valid ppl {study.best_value:.2f}: {study.best_trial.user_attrs['architecture']}")


if __name__ == "__main__":
    main()
