"""The ENAS recurrent cell on Penn Treebank-format text: search, derive, retrain, export.

    python examples/rnn_ptb.py --data /path/to/ptb     # train.txt, valid.txt, test.txt
    python examples/rnn_ptb.py                         # the embedded synthetic corpus
    python examples/rnn_ptb.py --smoke                 # seconds, for CI

The pipeline of Pham et al. (2018), Sec. 2.2 and 3.1, at CPU scale:

1. Search: each trial samples a cell from the LSTM controller (:class:`ENASSampler`, reward
   ``80 / valid ppl`` as in the paper), takes shared-weight SGD steps on it and returns its
   validation perplexity. The supernet is checkpointed next to the study, so rerunning the
   command resumes both.
2. Derive: sample cells from the trained controller, score each on the full validation split
   with the shared weights, keep the best.
3. Retrain the best cell from scratch and report its test perplexity; export it as JSON and
   as the official ENAS ``fixed_arc`` string.

The paper's settings (12 nodes, 1000 hidden units, 150 search epochs) need a GPU; the defaults
here are small. ``optuna-enas dashboard --storage sqlite:///rnn_ptb.db`` shows the cells.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import optuna

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator
from optuna_enas import derive
from optuna_enas import export_architecture
from optuna_enas import perplexity_reward
from optuna_enas import retrain
from optuna_enas.dashboard import DashboardCallback
from optuna_enas.data import load_corpus


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS RNN cell search on PTB-format text.")
    parser.add_argument("--data", default=None, help="directory with train/valid/test.txt")
    parser.add_argument("--storage", default="sqlite:///rnn_ptb.db", help="Optuna storage")
    parser.add_argument("--trials", type=int, default=300, help="search trials (300)")
    parser.add_argument("--n-nodes", type=int, default=8, help="nodes per cell (8; paper 12)")
    parser.add_argument("--hidden-size", type=int, default=64, help="hidden units (64)")
    parser.add_argument("--n-derive", type=int, default=20, help="cells scored by derive (20)")
    parser.add_argument("--epochs", type=int, default=2, help="retraining epochs (2)")
    parser.add_argument("--device", default=None, help="torch device (default: auto)")
    parser.add_argument("--out", default="rnn_ptb_best.json", help="exported architecture")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.n_nodes, args.hidden_size, args.n_derive = 8, 3, 8, 3
        args.epochs = 1

    corpus = load_corpus(args.data)  # None: the embedded synthetic corpus
    print(f"corpus {corpus.name}: vocab {corpus.vocab_size}, {corpus.train.numel()} train tokens")
    space = RNNCellSpace(n_nodes=args.n_nodes)
    model = {"embed_size": args.hidden_size, "hidden_size": args.hidden_size}
    batch, bptt = (8, 8) if args.smoke else (64, 35)  # ENAS-pytorch: 64 x 35
    checkpoint = Path("rnn_ptb.supernet.pt")
    evaluator = SupernetEvaluator(
        space,
        corpus,
        supernet_kwargs=model,
        batch_size=batch,
        bptt=bptt,
        seed=0,
        device=args.device,
        checkpoint_path=checkpoint,
        checkpoint_every=25,
        resume_from=checkpoint if checkpoint.is_file() else None,
    )
    sampler = ENASSampler(space, seed=0, reward_fn=perplexity_reward(80.0))
    study = optuna.create_study(
        study_name="rnn_ptb",
        storage=args.storage,
        sampler=sampler,
        direction="minimize",
        pruner=optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    dashboard = DashboardCallback(space, Path("rnn_ptb-artifacts"), figures_every=25)
    remaining = args.trials - len(study.get_trials())
    if remaining > 0:
        study.optimize(dashboard.wrap(evaluator), n_trials=remaining, callbacks=[dashboard])
        evaluator.save()
    print(f"search: {len(study.trials)} trials, best valid ppl {study.best_value:.2f}")

    best = derive(None, sampler, evaluator, n_samples=args.n_derive, top_k=1, seed=0)[0]
    arch = best.architecture
    print(f"derived ({args.n_derive} samples): full valid ppl {best.value:.2f}")
    print(f"cell: {space.describe(arch)}")
    result = retrain(
        arch,
        space,
        corpus,
        n_epochs=args.epochs,
        n_steps_per_epoch=5 if args.smoke else None,
        supernet_kwargs=model,
        batch_size=batch,
        bptt=bptt,
        device=args.device,
        seed=0,
    )
    print(f"retrained: valid ppl {result.valid_value:.2f}, test ppl {result.test_value:.2f}")
    path = export_architecture(arch, space, args.out)
    print(f"fixed_arc: {space.to_fixed_arc(arch)}  (written with the JSON to {path})")


if __name__ == "__main__":
    main()
