"""Ranking fidelity (issue #11, item 4): does the shared-weight supernet rank like training from
scratch, as a function of supernet training budget, schedule and warm-up?

For each task (``rnn``: RNNCellSpace(6) on a PTB slice; ``micro``: a small MicroSpace on
digits), the child models, data and optimizer are exactly those of the ground truth
(``RNN_CONFIG`` / ``MICRO_CONFIG`` of ``benchmarks/ground_truth.py``). A SupernetEvaluator is
trained by an ENAS search (``ENASSampler``, default controller, in-memory study, NopPruner)
under each schedule:

- ``interleaved``: every trial takes one shared step on its architecture, then scores it;
- ``phased``: ``--phase-train`` training trials (one shared step each, never learned from),
  then ``--phase-score`` scoring trials on frozen weights;

each without and with a warm-up of ``--warmup`` shared steps on uniform architectures (counted
in the budget). At every budget in ``--budgets`` (total shared steps) the search pauses and the
ground-truth architectures are ranked two ways:

- ``frozen``: frozen weights, the whole validation slice of the ground truth at the training
  batch size (what ``derive`` does with the final supernet);
- ``reward``: what the controller is rewarded with under that schedule. ``phased``: frozen
  weights, one validation minibatch, the same for every architecture. ``interleaved``: on a
  copy of the evaluator, every ground-truth architecture runs as an interleaved trial in a
  random order (one step on itself, then one rotating validation minibatch), so the weights
  drift across the ranking exactly as they do across the rewards of a search.

Both are compared with the ground truth (seed 0) by Kendall's tau and the top-10% overlap
(precision of the supernet's top 10% within the true top 10%; chance = 0.1). The noise floor is
the seed-to-seed tau of the ground truth's two-seed architectures: training from scratch twice
agrees only that well, so no cheaper ranking can be expected to do better.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/rank_fidelity.py --task rnn
    python benchmarks/rank_fidelity.py --task rnn --budgets 50 100 --max-archs 20  # smoke

The ground truth is read from the journal in ``$GROUND_TRUTH_DIR`` (``/work/gt``, live, read
only) when it exists, else from ``benchmarks/results/ground_truth_<task>.json``; the JSON written
here names how many architectures it had.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import ground_truth as gt  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import Architecture  # noqa: E402
from optuna_enas import ENASSampler  # noqa: E402
from optuna_enas import SearchSpace  # noqa: E402
from optuna_enas import SupernetEvaluator  # noqa: E402
from optuna_enas.final._rank_metrics import kendall_tau  # noqa: E402
from optuna_enas.final._rank_metrics import oriented  # noqa: E402
from optuna_enas.final._rank_metrics import top_fraction_k  # noqa: E402
from optuna_enas.final._rank_metrics import top_k_overlap  # noqa: E402


RESULTS = Path(__file__).resolve().parent / "results"
TOP_FRACTION = 0.1


# -- ground truth ------------------------------------------------------------------------------
def load_ground_truth(task: str, source: str) -> dict[str, Any]:
    """Seed-0 values per architecture, and the (seed 0, seed 1) pairs, from journal or JSON."""
    config = gt.CONFIGS[task]
    space = gt.make_space(config)
    s0, s1 = config["seeds"]
    values: dict[int, dict[int, float]] = {}
    params: dict[int, dict[str, Any]] = {}
    journal = gt.storage_path(gt.DEFAULT_STATE_DIR, task)
    json_path = RESULTS / f"ground_truth_{task}.json"
    if source == "journal" or (source == "auto" and journal.exists()):
        study = gt.open_study(gt.DEFAULT_STATE_DIR, task, create=False)
        if study is None:
            sys.exit(f"{task}: no ground-truth study at {journal}")
        for (i, seed), t in gt._collect(study)["done"].items():
            values.setdefault(i, {})[seed] = float(t.value)
            params[i] = dict(t.params)
        where = str(journal)
    else:
        if not json_path.exists():
            sys.exit(f"{task}: no ground truth ({journal} nor {json_path})")
        for row in json.loads(json_path.read_text())["rows"]:
            values.setdefault(row["arch"], {})[row["seed"]] = float(row["value"])
            params[row["arch"]] = row["params"]
        where = str(json_path)
    indices = sorted(i for i in values if s0 in values[i])
    return {
        "space": space,
        "source": where,
        "indices": indices,
        "archs": [space.architecture(params[i]) for i in indices],
        "values": [values[i][s0] for i in indices],
        "pairs": [(values[i][s0], values[i][s1]) for i in indices if s1 in values[i]],
    }


def agreement(pred: list[float], truth: list[float], direction: str) -> dict[str, float]:
    a, b = oriented(pred, direction), oriented(truth, direction)
    k = top_fraction_k(len(a), TOP_FRACTION)
    return {"tau": kendall_tau(a, b), "top10": top_k_overlap(a, b, k), "k": k}


# -- the supernet runs -------------------------------------------------------------------------
def frozen_scores(ev: SupernetEvaluator, archs: list[Architecture], n_batches: int) -> list[float]:
    return [ev.evaluate(a, split="valid", n_batches=n_batches) for a in archs]


def interleaved_rewards(
    ev: SupernetEvaluator, archs: list[Architecture], seed: int
) -> list[float]:
    """Each architecture as an interleaved trial on a copy: one step on it, then its score."""
    twin = copy.deepcopy(ev)
    order = np.random.default_rng(seed).permutation(len(archs))
    out = [math.nan] * len(archs)
    for j in order:
        arch = archs[int(j)]
        twin.train_steps(arch, 1)
        out[int(j)] = twin._trainer.evaluate_next(arch, 1)
    return out


def run_one(
    task: str,
    schedule: str,
    warmup: int,
    truth: dict[str, Any],
    data: Any,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    config = gt.CONFIGS[task]
    space: SearchSpace = truth["space"]
    archs, values = truth["archs"], truth["values"]
    direction = config["direction"]
    kwargs: dict[str, Any] = {}
    if schedule == "phased":
        kwargs = {"phase_train_trials": args.phase_train, "phase_score_trials": args.phase_score}
    ev = gt.make_supernet_evaluator(
        config, space, data, seed=args.seed, schedule=schedule, warmup_steps=warmup, **kwargs
    )
    task_state = ev._trainer.task
    n_valid = gt_valid_batches(task_state)
    study = optuna.create_study(
        direction=direction,
        sampler=(
            ENASSampler(space, seed=args.seed)
            if args.sampler == "enas"
            else optuna.samplers.RandomSampler(seed=args.seed)
        ),
        pruner=optuna.pruners.NopPruner(),
    )
    rows = []
    train_wall = 0.0
    for budget in args.budgets:
        t0 = time.perf_counter()
        while ev.n_steps < budget:
            study.optimize(ev, n_trials=1)
        train_wall += time.perf_counter() - t0
        t1 = time.perf_counter()
        frozen = frozen_scores(ev, archs, n_valid)
        if schedule == "phased":
            reward = frozen_scores(ev, archs, 1)
        else:
            reward = interleaved_rewards(ev, archs, args.seed + budget)
        f, r = agreement(frozen, values, direction), agreement(reward, values, direction)
        completed = [t for t in study.trials if t.state.name == "COMPLETE"]
        recent = study.trials[-200:]
        row = {
            "task": task,
            "sampler": args.sampler,
            "schedule": schedule,
            "warmup": warmup,
            "steps": ev.n_steps,
            "trials": len(study.trials),
            "rewards": len(completed),
            "tau_frozen": f["tau"],
            "top10_frozen": f["top10"],
            "tau_reward": r["tau"],
            "top10_reward": r["top10"],
            # How concentrated the sampling is: distinct architectures in the last 200 trials.
            "distinct_last200": len({tuple(sorted(t.params.items())) for t in recent}),
            "train_s": round(train_wall, 1),
            "measure_s": round(time.perf_counter() - t1, 1),
        }
        rows.append(row)
        print(
            f"  {task} {schedule:11s} warmup {warmup:4d} steps {ev.n_steps:5d}: tau frozen "
            f"{f['tau']:+.3f} top10 {f['top10']:.2f} | tau reward {r['tau']:+.3f} top10 "
            f"{r['top10']:.2f} ({train_wall:.0f} s training)",
            flush=True,
        )
    return rows


def run_paths(
    task: str, mode: str, seed: int, truth: dict[str, Any], data: Any, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Issue #23: the supernet trained on the paths of ``train_paths=mode`` at equal shared steps.

    ``controller``: an ENAS search (``ENASSampler``, interleaved, one shared step per trial on
    the trial's architecture), as in the runs above. ``uniform`` / ``fair`` / ``mixture``: no
    search, ``SupernetEvaluator.train_shared`` (SPOS / RS-WS one uniform path per step;
    FairNAS ``m`` paths per step on one minibatch). Frozen ranking as ``frozen`` above.
    """
    config = gt.CONFIGS[task]
    space: SearchSpace = truth["space"]
    archs, values = truth["archs"], truth["values"]
    direction = config["direction"]
    ev = gt.make_supernet_evaluator(
        config, space, data, seed=seed, train_paths=mode, mixture=args.mixture
    )
    n_valid = gt_valid_batches(ev._trainer.task)
    study = optuna.create_study(
        direction=direction,
        sampler=ENASSampler(space, seed=seed),
        pruner=optuna.pruners.NopPruner(),
    )
    per_step = ev._paths.paths_per_step
    rows = []
    cpu = 0.0
    for budget in args.budgets:
        c0 = time.process_time()
        if mode == "controller":
            while ev.n_steps < budget:
                study.optimize(ev, n_trials=1)
        else:
            ev.train_shared(budget - ev.n_steps)
        cpu += time.process_time() - c0
        c1 = time.process_time()
        frozen = ev.evaluate_many(archs, split="valid", n_batches=n_valid)
        f = agreement(frozen, values, direction)
        row = {
            "task": task,
            "train_paths": mode,
            "seed": seed,
            "steps": ev.n_steps,
            "paths_per_step": per_step,
            "path_passes": ev.n_steps * per_step,
            "trials": len(study.trials),
            "tau_frozen": f["tau"],
            "top10_frozen": f["top10"],
            # The table architecture the frozen supernet ranks first, placed in the table (a
            # two-stage search restricted to the table, without retraining noise).
            "picked_percentile": _picked_percentile(frozen, values, direction),
            "frozen_scores": [round(float(v), 4) for v in frozen],
            "train_cpu_s": round(cpu, 1),
            "measure_cpu_s": round(time.process_time() - c1, 1),
        }
        if mode == "controller":
            recent = study.trials[-200:]
            row["distinct_last200"] = len({tuple(sorted(t.params.items())) for t in recent})
        rows.append(row)
        print(
            f"  {task} {mode:10s} seed {seed} steps {ev.n_steps:5d}: tau frozen "
            f"{f['tau']:+.3f} top10 {f['top10']:.2f} ({cpu:.0f} CPU-s training)",
            flush=True,
        )
    return rows


def _picked_percentile(frozen: list[float], truth: list[float], direction: str) -> float:
    """Percentile (100 = best) in ``truth`` of the architecture with the best frozen score."""
    sign = 1.0 if direction == "minimize" else -1.0
    pred, true = sign * np.asarray(frozen, dtype=float), sign * np.asarray(truth, dtype=float)
    best = int(np.nanargmin(pred))
    return float(100.0 * np.mean(true > true[best]))


def main_paths(args: argparse.Namespace) -> None:
    """``--train-paths``: resumable; one (mode, seed) run at a time, appended to the JSON."""
    task = args.task
    if task not in ("rnn", "micro"):
        sys.exit("--train-paths needs --task rnn or --task micro")
    config = gt.CONFIGS[task]
    truth = load_ground_truth(task, args.source)
    if args.max_archs is not None:
        for key in ("indices", "archs", "values"):
            truth[key] = truth[key][: args.max_archs]
    out = Path(args.output or RESULTS / f"rank_fidelity_paths_{task}.json")
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if not doc:
        doc = {
            "task": task,
            "issue": 23,
            "machine": machine_info(),
            "ground_truth": {
                "source": truth["source"],
                "n_architectures": len(truth["archs"]),
                "config": config,
            },
            "noise_floor_seed_to_seed": noise_floor(truth["pairs"], config["direction"]),
            "settings": {"budgets": args.budgets, "mixture": args.mixture},
            "rows": [],
        }
    done = {(r["train_paths"], r["seed"], r["steps"]) for r in doc["rows"]}
    data = gt.load_task_data(config)
    print(f"{task}: {len(truth['archs'])} ground-truth architectures; -> {out}", flush=True)
    for seed in args.seeds:
        for mode in args.train_paths:
            if all((mode, seed, b) in done for b in args.budgets):
                continue
            doc["rows"] += [
                r
                for r in run_paths(task, mode, seed, truth, data, args)
                if (r["train_paths"], r["seed"], r["steps"]) not in done
            ]
            write_json(out, doc)
    print()
    print_table(
        doc["rows"],
        [
            "train_paths",
            "seed",
            "steps",
            "path_passes",
            "tau_frozen",
            "top10_frozen",
            "train_cpu_s",
        ],
    )


def gt_valid_batches(task_state: Any) -> int:
    """Minibatches covering the validation slice at the training batch size."""
    if hasattr(task_state, "valid_y"):  # images
        return max(1, math.ceil(task_state.valid_y.numel() / task_state.eval_batch_size))
    return max(1, math.ceil((task_state.valid.size(0) - 1) / task_state.bptt))


def noise_floor(pairs: list[tuple[float, float]], direction: str) -> dict[str, Any]:
    if len(pairs) < 3:
        return {"n_architectures": len(pairs)}
    a = np.array(pairs, dtype=float)
    out = agreement(list(a[:, 0]), list(a[:, 1]), direction)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(1000):
        idx = rng.integers(len(a), size=len(a))
        tau = kendall_tau(a[idx, 0], a[idx, 1])
        if math.isfinite(tau):
            boot.append(tau)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "n_architectures": len(a),
        "tau": round(out["tau"], 4),
        "tau_bootstrap_95": [round(float(lo), 3), round(float(hi), 3)],
        "top10": out["top10"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("rnn", "micro", "all"), default="rnn")
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=[150, 300, 600, 1200], help="shared steps"
    )
    parser.add_argument("--schedules", nargs="+", default=["interleaved", "phased"])
    parser.add_argument("--warmups", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--phase-train", type=int, default=50, help="training trials per phase")
    parser.add_argument("--phase-score", type=int, default=20, help="scoring trials per phase")
    parser.add_argument("--max-archs", type=int, default=None, help="first N ground-truth archs")
    parser.add_argument("--source", choices=("auto", "journal", "json"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sampler",
        choices=("enas", "random"),
        default="enas",
        help="who samples the training architectures (random: the uniform control)",
    )
    parser.add_argument(
        "--train-paths",
        nargs="+",
        choices=("controller", "uniform", "fair", "mixture"),
        default=None,
        help="issue #23: supernet training paths at equal shared steps (resumable JSON)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="with --train-paths")
    parser.add_argument("--mixture", type=float, default=0.5, help="with --train-paths mixture")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="default results/rank_fidelity_<task>.json")
    args = parser.parse_args()
    if sorted(args.budgets) != args.budgets or args.budgets[0] < 1:
        parser.error("--budgets must be increasing positive step counts")
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.train_paths is not None:
        main_paths(args)
        return
    tasks = ("rnn", "micro") if args.task == "all" else (args.task,)
    for task in tasks:
        config = gt.CONFIGS[task]
        truth = load_ground_truth(task, args.source)
        if args.max_archs is not None:
            for key in ("indices", "archs", "values"):
                truth[key] = truth[key][: args.max_archs]
        n = len(truth["archs"])
        if n < 10:
            print(f"{task}: only {n} ground-truth architectures in {truth['source']}; skipped")
            continue
        floor = noise_floor(truth["pairs"], config["direction"])
        print(
            f"{task}: {n} ground-truth architectures ({truth['source']}); noise floor "
            f"(seed-to-seed) {floor}",
            flush=True,
        )
        data = gt.load_task_data(config)
        rows: list[dict[str, Any]] = []
        start = time.perf_counter()
        for warmup in args.warmups:
            for schedule in args.schedules:
                rows += run_one(task, schedule, warmup, truth, data, args)
        columns = ["schedule", "warmup", "steps", "rewards", "tau_frozen", "top10_frozen"]
        columns += ["tau_reward", "top10_reward", "distinct_last200", "train_s"]
        print()
        print_table(rows, columns)
        out = Path(args.output or RESULTS / f"rank_fidelity_{task}.json")
        write_json(
            out,
            {
                "task": task,
                "machine": machine_info(),
                "ground_truth": {
                    "source": truth["source"],
                    "n_architectures": n,
                    "arch_indices": truth["indices"],
                    "config": config,
                },
                "noise_floor_seed_to_seed": floor,
                "settings": {
                    "budgets": args.budgets,
                    "schedules": args.schedules,
                    "warmups": args.warmups,
                    "phase_train_trials": args.phase_train,
                    "phase_score_trials": args.phase_score,
                    "seed": args.seed,
                    "sampler": (
                        "ENASSampler(space, seed) with the default ControllerConfig"
                        if args.sampler == "enas"
                        else "RandomSampler(seed)"
                    ),
                    "top_fraction": TOP_FRACTION,
                },
                "wall_seconds": round(time.perf_counter() - start, 1),
                "rows": rows,
            },
        )


if __name__ == "__main__":
    main()
