"""Quickstart: ENAS searches an RNN cell on the embedded corpus, the study lives in SQLite.

    python examples/quickstart.py             # 100 trials, about a minute on a laptop CPU
    python examples/quickstart.py --smoke     # 10 tiny trials (CI)
    optuna-dashboard sqlite:///quickstart.db  # then open http://127.0.0.1:8080/

Run it again to add trials to the same study: the ENAS controller is rebuilt from the study.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import optuna

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS quickstart on the embedded corpus.")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    parser.add_argument("--storage", default="sqlite:///quickstart.db", help="Optuna storage")
    args = parser.parse_args(argv)
    size = 8 if args.smoke else 32

    # The ~20 lines a user writes: a space, the shared-weight objective, an ENAS study.
    space = RNNCellSpace(n_nodes=3 if args.smoke else 6)
    evaluator = SupernetEvaluator(
        space,  # data=None: the embedded synthetic corpus, no download
        supernet_kwargs={"embed_size": size, "hidden_size": size},
        batch_size=size,
        bptt=size,
        seed=0,
    )
    study = optuna.create_study(
        study_name="quickstart",
        storage=args.storage,
        sampler=ENASSampler(space, seed=0),
        direction=evaluator.direction,  # minimize the validation perplexity
        pruner=optuna.pruners.NopPruner(),  # a trial is one shared-weight step: nothing to prune
        load_if_exists=True,
    )
    study.optimize(evaluator, n_trials=10 if args.smoke else 100)

    best = study.best_trial
    print(f"best trial {best.number}: valid ppl {best.value:.2f}")
    print(f"architecture: {best.user_attrs['architecture']}")
    print(f"fixed_arc: {space.to_fixed_arc(space.architecture(best.params))}")


if __name__ == "__main__":
    main()
