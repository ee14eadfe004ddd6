"""Wall time and peak memory of one search step: DARTS (1st, 2nd order), DSO-NAS vs ENAS.

At the CLI's default sizes (RNN 6 nodes, hidden 32, batch 32, BPTT 20 on the embedded corpus;
micro 3 nodes, 8 filters, 2 normal cells; macro 6 layers, 8 filters; batch 32 on digits) this
measures, per space and method:

* ``step_s``: seconds per *weight step* of the search, everything included (ENAS: one SGD
  step of the shared weights on a uniformly random architecture, as the evaluator's
  ``Trainer.step``; DARTS: the architecture step -- one validation batch for order 1, the
  unrolled step plus the two Hessian-vector-product passes for order 2 -- then the weight step;
  DSO-NAS: the weight step then the APG step on lambda, i.e. after the warm-up), median over
  ``--steps`` steps after ``--warmup``, the methods of a space interleaved step by step in one
  process so that other processes' load hits them alike;
* ``epoch_s``: seconds per epoch = ``steps_per_epoch`` (one pass over the weight half of the
  training split, the searchers' default; ENAS: the same number of shared steps) times
  ``step_s``, plus the end-of-epoch scoring of the one-shot searchers (relaxed supernet and
  derived architecture on ``--eval-batches`` validation batches, the CLI's 1);
* ``peak_rss_mib``: peak RSS of a fresh process running ``--mem-steps`` steps, minus its RSS
  after building everything (``ru_maxrss``).

One torch thread. Usage::

    OMP_NUM_THREADS=1 python benchmarks/oneshot_search_cost.py              # a few minutes
    OMP_NUM_THREADS=1 python benchmarks/oneshot_search_cost.py --steps 2    # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import cli_defaults  # noqa: E402
from benchmarks._common import cli_space  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import peak_rss_mib  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import ratios_to_base  # noqa: E402
from benchmarks._common import rss_mib  # noqa: E402
from benchmarks._common import run_worker  # noqa: E402
from benchmarks._common import write_json  # noqa: E402


SPACES = ("rnn", "micro", "macro")
METHODS = ("enas", "darts1", "darts2", "dsonas")


class _Runner:
    """One method on one space: ``step()`` takes one weight step, ``score()`` ends an epoch."""

    def __init__(self, space_name: str, method: str, eval_batches: int) -> None:
        import numpy as np

        from optuna_enas.training._tasks import steps_per_epoch

        cfg = cli_defaults(space_name)
        self.space = cli_space(space_name)
        self.method = method
        self.rng = np.random.default_rng(0)
        kwargs: dict[str, Any] = {
            "seed": 0,
            "supernet_kwargs": dict(cfg["kwargs"]),
            "batch_size": cfg["batch_size"],
            "bptt": cfg["bptt"],
            "eval_batches": eval_batches,
            "device": "cpu",
        }
        if method == "enas":
            from optuna_enas.training._trainer import Trainer
            from optuna_enas.training._trainer import resolve_training

            setup = resolve_training(
                self.space,
                None,
                supernet_kwargs=cfg["kwargs"],
                batch_size=cfg["batch_size"],
                bptt=cfg["bptt"],
                lr=None,
                grad_clip=None,
                momentum=None,
                weight_decay=None,
                device="cpu",
            )
            self.trainer = Trainer(setup, init_seed=0)
            # ENAS trains on the whole training split; for the epoch, the one-shot searchers'
            # steps_per_epoch (half the split) keeps the same number of weight steps.
            self.steps_per_epoch = max(1, steps_per_epoch(self.trainer.task) // 2)
            return
        if method.startswith("darts"):
            from optuna_enas.oneshot._darts import DARTS

            self.searcher: Any = DARTS(self.space, order=int(method[-1]), **kwargs)
        else:
            from optuna_enas.oneshot._dsonas import DSONAS

            self.searcher = DSONAS(self.space, **kwargs)  # _plan None: no warm-up
        self.steps_per_epoch = steps_per_epoch(self.searcher.w_task)

    def step(self) -> None:
        if self.method == "enas":
            self.trainer.step(self.space.sample_uniform(self.rng), self.rng)
            return
        self.searcher.model.train()
        self.searcher._train_step(0, 50)
        self.searcher.n_weight_steps += 1

    def score(self) -> None:
        if self.method != "enas":
            self.searcher._score_epoch(0)


def time_worker(space_name: str, steps: int, warmup: int, eval_batches: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    runners = {m: _Runner(space_name, m, eval_batches) for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for i in range(warmup + steps):
        for m, r in runners.items():
            t0 = time.perf_counter()
            r.step()
            if i >= warmup:
                times[m].append(time.perf_counter() - t0)
    out = {}
    for m, r in runners.items():
        t0 = time.perf_counter()
        r.score()
        score_s = time.perf_counter() - t0
        step_s = statistics.median(times[m])
        out[m] = {
            "step_s": step_s,
            "score_s": score_s,
            "steps_per_epoch": r.steps_per_epoch,
            "epoch_s": r.steps_per_epoch * step_s + score_s,
        }
    return out


def memory_worker(space_name: str, method: str, steps: int, eval_batches: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    runner = _Runner(space_name, method, eval_batches)
    before = rss_mib()
    for _ in range(steps):
        runner.step()
    runner.score()
    return {"peak_rss_mib": peak_rss_mib() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mem-steps", type=int, default=3)
    parser.add_argument("--eval-batches", type=int, default=1)
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    parser.add_argument("--json", default=str(RESULTS / "oneshot_search_cost.json"))
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, arg = args.worker
        if kind == "time":
            result = time_worker(arg, args.steps, args.warmup, args.eval_batches)
        else:
            space_name, method = arg.split(":")
            result = memory_worker(space_name, method, args.mem_steps, args.eval_batches)
        print(json.dumps(result))
        return

    def run(*extra: str) -> Any:
        cmd = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
        cmd += ["--mem-steps", str(args.mem_steps), "--eval-batches", str(args.eval_batches)]
        return run_worker(__file__, [*cmd, "--worker", *extra])

    rows = []
    for space_name in args.spaces:
        timing = run("time", space_name)
        for method in METHODS:
            row = {"space": space_name, "method": method, **timing[method]}
            row.update(run("memory", f"{space_name}:{method}"))
            rows.append(row)
            print(f"{space_name} {method}: {row['step_s']:.4f} s/step", flush=True)
    ratios_to_base(
        rows, base=("method", "enas"), ratios={"step_x": "step_s", "epoch_x": "epoch_s"}
    )
    print()
    columns = ["space", "method", "step_s", "step_x", "steps_per_epoch", "score_s", "epoch_s"]
    print_table(rows, [*columns, "epoch_x", "peak_rss_mib"])
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "settings": {
                "steps": args.steps,
                "warmup": args.warmup,
                "mem_steps": args.mem_steps,
                "eval_batches": args.eval_batches,
                "cli_sizes": {name: cli_defaults(name) for name in args.spaces},
            },
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
