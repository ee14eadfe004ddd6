"""End-to-end search quality with weight sharing, judged by training from scratch.

Issue #11, item 6(b). For each method and seed:

1. search: ``--trials`` trials of :class:`~optuna_enas.SupernetEvaluator` on the ground-truth
   task's space, data and child model (``benchmarks/ground_truth.py``), under ENASSampler
   (default configuration), RandomSampler (random search with weight sharing, Li & Talwalkar
   2019) or TPESampler, with the evaluator options given by ``--evaluator`` (JSON, e.g. a
   schedule);
2. derive: ``--candidates`` architectures re-scored on the whole validation slice with the
   final shared weights (:func:`~optuna_enas.derive`): for ENAS samples of the trained policy
   (ENAS Sec. 2.2), for the baselines the best distinct architectures of their trials;
3. retrain the best candidate from scratch with exactly the ground-truth protocol, and place
   its value as a percentile of the ground-truth table (100 = better than every trained
   architecture; a uniformly random architecture averages 50).

Mann-Whitney U p-values test "ENAS's percentiles are higher" against each baseline.

One-shot methods (issue #14): ``darts`` (first order), ``darts2`` (second order) and ``dsonas``
search the same space, data, child model and batch size with **the same number of
shared-weight steps** as a sampler run (``--trials`` x the evaluator's ``n_train_steps``, one
step per trial by default), cut into ``--oneshot-epochs`` epochs (one recorded trial each).
Their weights use the ground truth's optimizer (learning rate, momentum, weight decay, clip;
DARTS's cosine schedule is turned off by ``lr_min = lr``) so that only the search method
differs; alpha / lambda use the papers' settings. The final architecture (the last derived
one) is retrained with the ground-truth protocol like the others. Each run also records its
wall time per weight step and the process's peak RSS growth.

    python benchmarks/end_to_end.py --task rnn --seeds 5 --trials 300
    python benchmarks/end_to_end.py --task rnn --evaluator '{"n_train_steps": 1.0}'
    python benchmarks/end_to_end.py --task micro --seeds 3 --trials 300 \
        --methods enas random darts darts2 dsonas
    python benchmarks/end_to_end.py --smoke
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from scipy import stats


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import FixedTrial  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import peak_rss_mib  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from benchmarks.ground_truth import CONFIGS  # noqa: E402
from benchmarks.ground_truth import load_task_data  # noqa: E402
from benchmarks.ground_truth import make_evaluator  # noqa: E402
from benchmarks.ground_truth import make_space  # noqa: E402
from benchmarks.ground_truth import make_supernet_evaluator  # noqa: E402
from optuna_enas import Architecture  # noqa: E402
from optuna_enas import ENASSampler  # noqa: E402
from optuna_enas import SearchSpace  # noqa: E402
from optuna_enas import derive  # noqa: E402


SAMPLER_METHODS = ("enas", "random", "tpe")
ONESHOT_METHODS = ("darts", "darts2", "dsonas")
METHODS = (*SAMPLER_METHODS, *ONESHOT_METHODS)


def _best_trial_archs(study: optuna.Study, space: SearchSpace, n: int) -> list[Architecture]:
    trials = [t for t in study.trials if t.value is not None]
    trials.sort(key=lambda t: float(t.value or 0.0), reverse=study.direction.name == "MAXIMIZE")
    out: list[Architecture] = []
    for t in trials:
        arch = space.architecture(t.params)
        if arch not in out:
            out.append(arch)
        if len(out) == n:
            break
    return out


def run_oneshot(
    method: str,
    seed: int,
    *,
    config: dict[str, Any],
    space: SearchSpace,
    data: Any,
    n_steps: int,
    n_epochs: int,
) -> tuple[Architecture, float, dict[str, Any]]:
    """One DARTS / DSO-NAS search of ``n_steps`` weight steps; its final architecture."""
    from optuna_enas.oneshot._darts import DARTS
    from optuna_enas.oneshot._dsonas import DSONAS

    optim = config["optim"]
    common: dict[str, Any] = {
        "seed": seed,
        "supernet_kwargs": config["supernet_kwargs"],
        "batch_size": config["batch_size"],
        "bptt": config["bptt"],
        "device": "cpu",
        "lr": optim["lr"],
        "momentum": optim["momentum"],
        "weight_decay": optim["weight_decay"],
        "grad_clip": optim["grad_clip"],
    }
    searcher: Any
    if method == "dsonas":
        searcher = DSONAS(space, data, warmup_lr=optim["lr"], **common)
    else:
        order = 2 if method == "darts2" else 1
        searcher = DARTS(space, data, order=order, lr_min=optim["lr"], **common)
    study = optuna.create_study(direction=config["direction"])
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    result = searcher.search(
        study, n_steps=n_steps, steps_per_epoch=max(1, math.ceil(n_steps / n_epochs))
    )
    seconds = time.perf_counter() - t0
    last = result.history[-1].summary
    info = {
        "epochs": len(result.history),
        "seconds_per_weight_step": seconds / max(1, result.n_weight_steps),
        "peak_rss_growth_mib": peak_rss_mib() - rss0,
        "param_free_share": [r.summary.get("param_free_share") for r in result.history],
        "final_entropy": last.get("entropy"),
        "final_sparsity": last.get("sparsity"),
        "stopped_early": result.stopped_early,
    }
    return result.architecture, float(result.value), info


def run_one(
    method: str,
    seed: int,
    *,
    config: dict[str, Any],
    space: SearchSpace,
    data: Any,
    n_trials: int,
    n_candidates: int,
    evaluator_kwargs: dict[str, Any],
    table: np.ndarray,
    lower_is_better: bool,
    n_oneshot_epochs: int = 10,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if method in ONESHOT_METHODS:
        steps = float(evaluator_kwargs.get("n_train_steps", 1.0))
        arch, value, info = run_oneshot(
            method,
            seed,
            config=config,
            space=space,
            data=data,
            n_steps=max(1, math.floor(n_trials * steps)),
            n_epochs=n_oneshot_epochs,
        )
        return _finish(method, seed, config, space, data, arch, value, table, lower_is_better,
                       t0, time.perf_counter() - t0, info)  # fmt: skip
    rss0 = peak_rss_mib()
    evaluator = make_supernet_evaluator(config, space, data, seed=seed, **evaluator_kwargs)
    sampler: optuna.samplers.BaseSampler
    if method == "enas":
        sampler = ENASSampler(space, seed=seed)
    elif method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction=evaluator.direction, sampler=sampler)
    study.optimize(evaluator, n_trials=n_trials)
    search_s = time.perf_counter() - t0
    info["seconds_per_weight_step"] = search_s / max(1, evaluator.n_steps)
    info["peak_rss_growth_mib"] = peak_rss_mib() - rss0
    source: Any = sampler if method == "enas" else _best_trial_archs(study, space, n_candidates)
    best = derive(None, source, evaluator, n_samples=n_candidates, top_k=1, seed=seed)[0]
    return _finish(method, seed, config, space, data, best.architecture, float(best.value),
                   table, lower_is_better, t0, search_s, info)  # fmt: skip


def _finish(
    method: str,
    seed: int,
    config: dict[str, Any],
    space: SearchSpace,
    data: Any,
    arch: Architecture,
    shared_value: float,
    table: np.ndarray,
    lower_is_better: bool,
    t0: float,
    search_s: float,
    info: dict[str, Any],
) -> dict[str, Any]:
    # Retrain with the ground-truth protocol (its run seed 0), like every table row.
    retrain_value = float(make_evaluator(config, space, data)(FixedTrial(arch.to_params(), 0)))
    worse = table > retrain_value if lower_is_better else table < retrain_value
    return {
        "method": method,
        "seed": seed,
        "architecture": space.describe(arch),
        "params": arch.to_params(),
        "shared_weight_value": shared_value,
        "retrained_value": retrain_value,
        "percentile": float(100.0 * np.mean(worse)),
        "search_seconds": search_s,
        "total_seconds": time.perf_counter() - t0,
        **info,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=tuple(CONFIGS), default="rnn")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(SAMPLER_METHODS))
    p.add_argument("--oneshot-epochs", type=int, default=10, help="epochs of a one-shot run")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--candidates", type=int, default=20)
    p.add_argument("--evaluator", type=json.loads, default={}, help="SupernetEvaluator kwargs")
    p.add_argument("--smoke", action="store_true", help="1 seed, 6 trials, tiny retrain")
    p.add_argument("--table", type=Path, default=None, help="ground-truth JSON (default: ours)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--seed-list", type=int, nargs="+", default=None, help="instead of --seeds")
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="keep each (method, seed) result here as JSON and skip the runs already there "
        "(resumable; several processes with different --seed-list can share it)",
    )
    p.add_argument(
        "--summarize-only",
        action="store_true",
        help="run nothing: the table of the runs already in --runs-dir (any seeds)",
    )
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)

    config = json.loads(json.dumps(CONFIGS[args.task]))
    table_path = args.table or RESULTS / f"ground_truth_{args.task}.json"
    if not table_path.is_file():
        print(f"no ground-truth table at {table_path}: run benchmarks/ground_truth.py first")
        return
    table_json = json.loads(table_path.read_text())
    if args.smoke:
        args.seeds, args.trials, args.candidates = 1, 6, 2
        config["n_epochs"], config["n_steps_per_epoch"] = 1, 2
    else:
        stored = table_json["config"]
        for key in ("space", "data", "supernet_kwargs", "n_epochs", "n_steps_per_epoch"):
            if stored.get(key) != config.get(key):
                sys.exit(f"the table was made with another {key}: {stored.get(key)!r}")
    s0 = config["seeds"][0]
    table = np.array([r["value"] for r in table_json["rows"] if r["seed"] == s0], dtype=float)
    space = make_space(config)
    data = load_task_data(config)
    lower = config["direction"] == "minimize"

    runs = []
    seeds = args.seed_list if args.seed_list is not None else list(range(args.seeds))
    if args.runs_dir is not None:
        args.runs_dir.mkdir(parents=True, exist_ok=True)
    if args.summarize_only:
        if args.runs_dir is None:
            sys.exit("--summarize-only needs --runs-dir")
        for method in args.methods:
            for f in sorted(args.runs_dir.glob(f"{args.task}-{method}-t{args.trials}-seed*.json")):
                runs.append(json.loads(f.read_text()))
        seeds = []
    for seed in seeds:
        for method in args.methods:
            cached = None
            if args.runs_dir is not None:
                cached = args.runs_dir / f"{args.task}-{method}-t{args.trials}-seed{seed}.json"
                if cached.is_file():
                    runs.append(json.loads(cached.read_text()))
                    continue
            r = run_one(
                method,
                seed,
                config=config,
                space=space,
                data=data,
                n_trials=args.trials,
                n_candidates=args.candidates,
                evaluator_kwargs=args.evaluator,
                table=table,
                lower_is_better=lower,
                n_oneshot_epochs=args.oneshot_epochs,
            )
            runs.append(r)
            if cached is not None:
                cached.write_text(json.dumps(r, indent=1) + "\n")
            print(
                f"{method} seed {seed}: retrained {r['retrained_value']:.4g} "
                f"(percentile {r['percentile']:.1f}) {r['architecture']} "
                f"[{r['total_seconds']:.0f} s]",
                flush=True,
            )

    rows = []
    for method in args.methods:
        if not any(r["method"] == method for r in runs):
            continue
        pct = np.array([r["percentile"] for r in runs if r["method"] == method])
        vals = np.array([r["retrained_value"] for r in runs if r["method"] == method])
        row: dict[str, Any] = {
            "method": method,
            "runs": len(pct),
            "percentile_mean": float(pct.mean()),
            "percentile_std": float(pct.std(ddof=1)) if len(pct) > 1 else 0.0,
            "retrained_mean": float(vals.mean()),
            "top10_share": float(np.mean(pct >= 90.0)),
            "ms_per_weight_step": 1000.0
            * float(
                np.mean([r["seconds_per_weight_step"] for r in runs if r["method"] == method])
            ),
            "peak_rss_growth_mib": float(
                max(r["peak_rss_growth_mib"] for r in runs if r["method"] == method)
            ),
        }
        if method != "enas" and "enas" in args.methods and len(pct) > 1:
            enas = np.array([r["percentile"] for r in runs if r["method"] == "enas"])
            row["p_enas_better"] = float(
                stats.mannwhitneyu(enas, pct, alternative="greater").pvalue
            )
        rows.append(row)
    print()
    cols = ["method", "runs", "percentile_mean", "percentile_std", "retrained_mean"]
    print_table(
        rows, [*cols, "top10_share", "p_enas_better", "ms_per_weight_step", "peak_rss_growth_mib"]
    )
    if args.smoke:
        return
    write_json(
        args.out or RESULTS / f"end_to_end_{args.task}.json",
        {
            "machine": machine_info(),
            "config": config,
            "evaluator": args.evaluator,
            "trials": args.trials,
            "candidates": args.candidates,
            "oneshot_epochs": args.oneshot_epochs,
            "n_table": int(len(table)),
            "rows": rows,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
