"""Several worker processes search one study through a shared storage (NAS-RL style).

    python examples/multi_worker.py                           # 4 workers, journal file
    python examples/multi_worker.py --storage sqlite:///mw.db # or an SQLite database
    python examples/multi_worker.py --smoke                   # 2 workers, seconds

Each worker is a separate process with its own :class:`ENASSampler`. Before every trial a
sampler replays the trials the other workers finished (off-policy, with a clipped importance
weight), so one controller policy learns from all of them. The children are trained from
scratch (:class:`StandaloneEvaluator`), as NAS-RL (Zoph & Le, 2017) did on 800 GPUs: the
trials are independent, so workers need no shared weights. (With :class:`SupernetEvaluator`
every worker would train its own supernet; see ``optuna_enas.training.distributed`` for
data-parallel shared weights.)

The default storage is an Optuna journal file, which needs no database server and is safe
for several processes on one machine; use PostgreSQL/MySQL URLs for several machines.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

import optuna
from optuna.storages import BaseStorage

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import StandaloneEvaluator


STUDY = "multi_worker"


def open_storage(url: str) -> BaseStorage | str:
    if "://" in url:
        return url
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(url))


def space_for(smoke: bool) -> RNNCellSpace:
    return RNNCellSpace(n_nodes=3 if smoke else 6)


def worker(index: int, storage: str, n_trials: int, smoke: bool) -> None:
    space = space_for(smoke)
    size = 8 if smoke else 32
    evaluator = StandaloneEvaluator(
        space,
        supernet_kwargs={"embed_size": size, "hidden_size": size},
        n_epochs=1 if smoke else 2,
        n_steps_per_epoch=3 if smoke else 100,
        batch_size=size,
        bptt=size,
        seed=index,
    )

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", index)
        return evaluator(trial)

    study = optuna.load_study(
        study_name=STUDY,
        storage=open_storage(storage),
        sampler=ENASSampler(space, seed=index),  # one seed per worker: different draws
    )
    study.optimize(objective, n_trials=n_trials)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Several workers, one ENAS study.")
    parser.add_argument("--storage", default="multi_worker.log", help="URL or journal file")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (4)")
    parser.add_argument("--trials", type=int, default=25, help="trials per worker (25)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.workers, args.trials = 2, 3
    if args.worker_index is not None:  # a child process
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        worker(args.worker_index, args.storage, args.trials, args.smoke)
        return

    optuna.create_study(
        study_name=STUDY,
        storage=open_storage(args.storage),
        direction="minimize",  # validation perplexity
        load_if_exists=True,
    )
    common = ["--storage", args.storage, "--trials", str(args.trials)]
    common += ["--smoke"] if args.smoke else []
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker-index", str(i), *common])
        for i in range(args.workers)
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"workers exited with {codes}")

    study = optuna.load_study(study_name=STUDY, storage=open_storage(args.storage))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    per_worker = Counter(t.user_attrs["worker"] for t in done)
    print(f"{len(done)} complete trials from workers {dict(sorted(per_worker.items()))}")
    print(f"best valid ppl {study.best_value:.2f}: {study.best_trial.user_attrs['architecture']}")
    # Every worker's controller learned from the others' trials too:
    learned = sum("enas:stats" in t.system_attrs for t in done)
    print(f"{learned} trials carry controller stats (enas:stats)")


if __name__ == "__main__":
    main()
