"""ENAS micro (cell) search for a CNN on scikit-learn's 8x8 digits, then retrain the best cell.

    python examples/cnn_micro_digits.py            # 200 trials, a few minutes on a CPU
    python examples/cnn_micro_digits.py --smoke    # seconds, for CI

The space is ENAS's micro space (Sec. 2.4): a normal and a reduction cell of ``--n-nodes``
blocks, each block two (input, op) pairs summed. The digits (1797 images, bundled with
scikit-learn, no download) stand in for CIFAR-10; pass ``--cifar DIR`` (the
``cifar-10-batches-py`` folder) for the real thing, with a GPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import optuna

from optuna_enas import ENASSampler
from optuna_enas import MicroSpace
from optuna_enas import SupernetEvaluator
from optuna_enas import derive
from optuna_enas import retrain
from optuna_enas.data import load_cifar10


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS micro search on digits.")
    parser.add_argument("--trials", type=int, default=200, help="search trials (200)")
    parser.add_argument("--n-nodes", type=int, default=3, help="blocks per cell (3; paper 5)")
    parser.add_argument("--n-filters", type=int, default=16, help="channels (16)")
    parser.add_argument("--cifar", default=None, help="cifar-10-batches-py directory")
    parser.add_argument("--device", default=None, help="torch device (default: auto)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.n_nodes, args.n_filters = 6, 2, 4

    space = MicroSpace(n_nodes=args.n_nodes)
    data = None if args.cifar is None else load_cifar10(args.cifar)  # None: digits
    model = {"n_filters": args.n_filters, "n_layers": 2}  # 2 normal cells + 2 reduction cells
    evaluator = SupernetEvaluator(
        space, data, supernet_kwargs=model, batch_size=32, seed=0, device=args.device
    )
    # The default controller (tuned to learn within a few hundred trials). The official ENAS
    # CIFAR micro controller is config=ControllerConfig.from_preset("enas-official-cifar-micro").
    sampler = ENASSampler(space, seed=0)
    study = optuna.create_study(
        sampler=sampler, direction=evaluator.direction, pruner=optuna.pruners.NopPruner()
    )
    study.optimize(evaluator, n_trials=args.trials)
    print(f"search: best minibatch accuracy {study.best_value:.3f} in {args.trials} trials")

    best = derive(None, sampler, evaluator, n_samples=3 if args.smoke else 20, seed=0)[0]
    print(f"derived: full valid accuracy {best.value:.3f} with the shared weights")
    print(space.describe(best.architecture))
    result = retrain(
        best.architecture,
        space,
        data,
        n_epochs=1 if args.smoke else 5,
        n_steps_per_epoch=3 if args.smoke else None,
        supernet_kwargs=model,
        batch_size=32,
        device=args.device,
        seed=0,
    )
    print(f"retrained: valid accuracy {result.valid_value:.3f}, test {result.test_value:.3f}")
    print(f"fixed_arc: {space.to_fixed_arc(best.architecture)}")


if __name__ == "__main__":
    main()
