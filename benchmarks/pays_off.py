"""Does weight sharing pay off? Percentile of the final architecture against CPU-seconds.

Issue #23, item 2, on the RNN ground truth (``benchmarks/ground_truth.py``: RNNCellSpace(6) on
a PTB slice, 200 architectures trained from scratch with one protocol, ~17-23 CPU-s each).

Weight-sharing methods (really run; one torch thread; cost = CPU-seconds of this process for
search + derive + the final retrain, ``time.process_time``):

- ``enas-ws``: ENASSampler on ``SupernetEvaluator`` (interleaved, ``train_paths="controller"``:
  one shared step on each trial's architecture), ``B`` trials = ``B`` shared steps;
- ``random-ws`` / ``tpe-ws``: the same with RandomSampler (RS-WS, Li & Talwalkar 2019) /
  TPESampler;
- ``spos-enas``: ``schedule="two_stage"``: ``B`` shared steps on uniform paths (SPOS, Guo et
  al. 2020), then ENASSampler searches ``--frozen-trials`` trials on the frozen weights;
- ``fair-enas``: the same with ``train_paths="fair"`` (FairNAS, Chu et al. 2021);
- ``elite-ws`` / ``fair-elite``: ``enas-ws`` / ``fair-enas`` with the first version of the
  elite rule (issue #20; ``EliteConfig(density="marginal", uniform_draws=0,
  mutation_rate=None)``, what their stored rows ran); ``parzen-ws``: ``enas-ws`` with
  ``ENASSampler(rule="elite")``, today's default (the Parzen screen). Their final candidates
  are the best distinct trials, as for Random and TPE (the rule learns from the history, not a
  policy gradient).
- ``darts-ws`` / ``dsonas-ws``: the one-shot searchers DARTS (first order, Liu et al. 2019) and
  DSO-NAS (Zhang et al. 2019), run by ``benchmarks/end_to_end.py``'s ``run_oneshot`` with its
  settings (§7.5 of BENCHMARKS.md): ``B`` weight steps cut into ``--oneshot-epochs`` epochs,
  each weight step with its architecture step, the ground truth's weight optimizer; their
  final architecture is the last derived one (no candidate re-scoring, so no derive cost).

Each sampler method derives its final architecture as ``benchmarks/end_to_end.py`` does
(``--candidates`` re-scored on the whole validation slice with the final weights: ENAS samples
of its policy, the others their best distinct trials). Every method retrains its final
architecture with exactly the ground-truth protocol and places it as a percentile of the
table (100 = better than all 200).

From-scratch methods (simulated by table lookup, so hundreds of seeds cost nothing; cost = the
table's recorded CPU-seconds of every architecture trained):

- ``random-scratch``: uniform draws without replacement from the table (the table is a uniform
  sample of the space, so this is random search from scratch);
- ``tpe-scratch`` / ``nasrl-scratch``: TPESampler / ENASSampler (NAS-RL: ENAS without sharing)
  over the whole space; each proposal is answered by the nearest table architecture (Hamming
  distance over the decisions; ties: the lowest index) and charged that run's CPU-seconds.

Optimism of the lookup: the final architecture of a from-scratch search is the best by its own
table value, and that same value places it (no retraining noise); the weight-sharing methods
are placed by an independent retrain. The from-scratch curves are therefore an upper bound.

Results are appended to ``--runs`` (JSON lines) as each run finishes; a rerun skips finished
(method, budget, seed) runs. ``summarize`` writes the table, Mann-Whitney U verdicts and an
SVG plot from whatever has finished.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/pays_off.py scratch --seeds 100
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/pays_off.py ws --methods spos-enas \\
        random-ws enas-ws --budgets 300 1000 3000 --seeds 0 1 2
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/pays_off.py ws --methods darts-ws \\
        dsonas-ws --budgets 1000 --seeds 0 1 2 3 4
    python benchmarks/pays_off.py summarize
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
from scipy import stats


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import FixedTrial  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from benchmarks.ground_truth import CONFIGS  # noqa: E402
from benchmarks.ground_truth import make_space  # noqa: E402


RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "pays_off_rnn_runs.jsonl"
ONESHOT_METHODS = {"darts-ws": "darts", "dsonas-ws": "dsonas"}  # -> end_to_end.py's names
WS_METHODS = (
    "enas-ws",
    "random-ws",
    "tpe-ws",
    "spos-enas",
    "fair-enas",
    "elite-ws",
    "fair-elite",
    "parzen-ws",
    *ONESHOT_METHODS,
)
SCRATCH_METHODS = ("random-scratch", "tpe-scratch", "nasrl-scratch")
SCRATCH_TRIALS = (1, 2, 3, 5, 10, 20, 50)


# -- the table ---------------------------------------------------------------------------------
def load_table() -> dict[str, Any]:
    doc = json.loads((RESULTS / "ground_truth_rnn.json").read_text())
    config = CONFIGS["rnn"]
    space = make_space(config)
    s0 = config["seeds"][0]
    rows = [r for r in doc["rows"] if r["seed"] == s0]
    return {
        "space": space,
        "config": config,
        "values": np.array([r["value"] for r in rows], dtype=float),
        "cpu_s": np.array([r["cpu_s"] for r in rows], dtype=float),
        "indices": np.array([space.to_indices(r["params"]) for r in rows], dtype=int),
    }


def percentile(table: np.ndarray, value: float) -> float:
    """100 * the share of the table that is worse (higher perplexity) than ``value``."""
    return float(100.0 * np.mean(table > value))


def _append(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def _done(path: Path) -> set[tuple[str, int, int]]:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out.add((r["method"], int(r["budget"]), int(r["seed"])))
    return out


# -- from scratch, by table lookup -------------------------------------------------------------
def scratch_run(method: str, seed: int, n_trials: int, table: dict[str, Any]) -> list[int]:
    """The table rows a from-scratch search of ``n_trials`` trains, in order."""
    n = len(table["values"])
    if method == "random-scratch":
        return [int(i) for i in np.random.default_rng(seed).permutation(n)[:n_trials]]
    from optuna_enas import ENASSampler
    from optuna_enas import suggest_architecture

    space = table["space"]
    sampler: optuna.samplers.BaseSampler = (
        ENASSampler(space, seed=seed, rule="reinforce")
        if method == "nasrl-scratch"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    order: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        idx = np.array(space.to_indices(suggest_architecture(trial, space)))
        row = int(np.argmin((table["indices"] != idx).sum(axis=1)))
        order.append(row)
        return float(np.log(table["values"][row]))

    study.optimize(objective, n_trials=n_trials)
    return order


def run_scratch(args: argparse.Namespace) -> None:
    table = load_table()
    done = _done(args.runs)
    n_max = max(SCRATCH_TRIALS)
    for method in args.methods:
        for seed in range(args.seeds):
            if all((method, n, seed) in done for n in SCRATCH_TRIALS):
                continue
            order = scratch_run(method, seed, n_max, table)
            for n in SCRATCH_TRIALS:
                rows = order[:n]
                best = min(rows, key=lambda r: table["values"][r])
                _append(
                    args.runs,
                    {
                        "method": method,
                        "budget": n,
                        "budget_unit": "trials",
                        "seed": seed,
                        "cpu_s": float(table["cpu_s"][rows].sum()),
                        "distinct_trained": len(set(rows)),
                        "final_value": float(table["values"][best]),
                        "percentile": percentile(table["values"], float(table["values"][best])),
                    },
                )
        print(f"{method}: {args.seeds} seeds", flush=True)


# -- with weight sharing, really run -----------------------------------------------------------
def ws_run(
    method: str, budget: int, seed: int, table: dict[str, Any], data: Any, args: argparse.Namespace
) -> dict[str, Any]:
    from benchmarks.end_to_end import _best_trial_archs
    from benchmarks.ground_truth import make_evaluator
    from benchmarks.ground_truth import make_supernet_evaluator
    from optuna_enas import ENASSampler
    from optuna_enas import derive
    from optuna_enas.sampler import EliteConfig

    config, space = table["config"], table["space"]
    if method in ONESHOT_METHODS:
        return oneshot_run(method, budget, seed, table, data, args)
    c0 = time.process_time()
    kwargs: dict[str, Any] = {}
    if method in ("spos-enas", "fair-enas", "fair-elite"):
        kwargs = {
            "schedule": "two_stage",
            "pretrain_steps": budget,
            "train_paths": "uniform" if method == "spos-enas" else "fair",
        }
    ev = make_supernet_evaluator(config, space, data, seed=seed, **kwargs)
    sampler: optuna.samplers.BaseSampler
    if method in ("enas-ws", "spos-enas", "fair-enas"):
        sampler = ENASSampler(space, seed=seed, rule="reinforce")
    elif method in ("elite-ws", "fair-elite"):
        first = EliteConfig(density="marginal", uniform_draws=0, mutation_rate=None)
        sampler = ENASSampler(space, seed=seed, rule=first)
    elif method == "parzen-ws":
        sampler = ENASSampler(space, seed=seed, rule="elite")
    elif method == "random-ws":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(
        direction="minimize", sampler=sampler, pruner=optuna.pruners.NopPruner()
    )
    n_trials = args.frozen_trials if "two_stage" in kwargs.values() else budget
    study.optimize(ev, n_trials=n_trials)
    search_cpu = time.process_time() - c0
    source: Any = (
        sampler
        if method in ("enas-ws", "spos-enas", "fair-enas")
        else _best_trial_archs(study, space, 20)
    )
    best = derive(None, source, ev, n_samples=args.candidates, top_k=1, seed=seed)[0]
    derive_cpu = time.process_time() - c0 - search_cpu
    arch = best.architecture
    retrained = float(make_evaluator(config, space, data)(FixedTrial(arch.to_params(), 0)))
    return {
        "method": method,
        "budget": budget,
        "budget_unit": "shared steps",
        "seed": seed,
        "trials": n_trials,
        "shared_steps": ev.n_steps,
        "cpu_s": time.process_time() - c0,
        "search_cpu_s": search_cpu,
        "derive_cpu_s": derive_cpu,
        "architecture": space.describe(arch),
        "shared_weight_value": float(best.value),
        "final_value": retrained,
        "percentile": percentile(table["values"], retrained),
    }


def oneshot_run(
    method: str, budget: int, seed: int, table: dict[str, Any], data: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """DARTS / DSO-NAS with ``budget`` weight steps; the last derived architecture, retrained."""
    from benchmarks.end_to_end import run_oneshot
    from benchmarks.ground_truth import make_evaluator

    config, space = table["config"], table["space"]
    c0 = time.process_time()
    arch, shared_value, info = run_oneshot(
        ONESHOT_METHODS[method],
        seed,
        config=config,
        space=space,
        data=data,
        n_steps=budget,
        n_epochs=args.oneshot_epochs,
    )
    search_cpu = time.process_time() - c0
    retrained = float(make_evaluator(config, space, data)(FixedTrial(arch.to_params(), 0)))
    return {
        "method": method,
        "budget": budget,
        "budget_unit": "shared steps",
        "seed": seed,
        "trials": info["epochs"],
        "shared_steps": budget,
        "cpu_s": time.process_time() - c0,
        "search_cpu_s": search_cpu,
        "derive_cpu_s": 0.0,
        "architecture": space.describe(arch),
        "shared_weight_value": shared_value,
        "final_value": retrained,
        "percentile": percentile(table["values"], retrained),
        "final_entropy": info["final_entropy"],
        "final_sparsity": info["final_sparsity"],
        "param_free_share": info["param_free_share"],
        "stopped_early": info["stopped_early"],
    }


def run_ws(args: argparse.Namespace) -> None:
    from benchmarks.ground_truth import load_task_data

    table = load_table()
    data = load_task_data(table["config"])
    done = _done(args.runs)
    for seed in args.seed_list:
        for budget in args.budgets:
            for method in args.methods:
                if (method, budget, seed) in done:
                    continue
                r = ws_run(method, budget, seed, table, data, args)
                _append(args.runs, r)
                print(
                    f"{method} B={budget} seed {seed}: percentile {r['percentile']:.1f} "
                    f"({r['cpu_s']:.0f} CPU-s) {r['architecture']}",
                    flush=True,
                )


# -- summary, verdicts, plot -------------------------------------------------------------------
def _scratch_at(runs: list[dict[str, Any]], method: str, cpu: float) -> list[float]:
    """Per seed: the percentile of a from-scratch search stopped within ``cpu`` CPU-seconds."""
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        if r["method"] == method:
            by_seed.setdefault(int(r["seed"]), []).append(r)
    out = []
    for rows in by_seed.values():
        within = [r for r in rows if r["cpu_s"] <= cpu]
        out.append(max((r["percentile"] for r in within), default=0.0))
    return out


def summarize(args: argparse.Namespace) -> None:
    runs = [json.loads(x) for x in args.runs.read_text().splitlines() if x.strip()]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["method"], int(r["budget"])), []).append(r)
    rows = []
    for (method, budget), rs in sorted(groups.items()):
        pct = np.array([r["percentile"] for r in rs])
        cpu = float(np.mean([r["cpu_s"] for r in rs]))
        row: dict[str, Any] = {
            "method": method,
            "budget": budget,
            "unit": rs[0]["budget_unit"],
            "seeds": len(rs),
            "cpu_s_mean": round(cpu, 1),
            "percentile_mean": round(float(pct.mean()), 1),
            "percentile_std": round(float(pct.std(ddof=1)), 1) if len(pct) > 1 else 0.0,
            "top10_share": round(float(np.mean(pct >= 90.0)), 2),
        }
        if method in WS_METHODS:
            base = [r["percentile"] for r in groups.get(("random-ws", budget), [])]
            if method != "random-ws" and len(base) > 1 and len(pct) > 1:
                row["p_better_than_random_ws"] = round(
                    float(stats.mannwhitneyu(pct, base, alternative="greater").pvalue), 4
                )
                row["p_worse_than_random_ws"] = round(
                    float(stats.mannwhitneyu(pct, base, alternative="less").pvalue), 4
                )
            scratch = _scratch_at(runs, "random-scratch", cpu)
            if scratch and len(pct) > 1:
                row["random_scratch_at_equal_cpu"] = round(float(np.mean(scratch)), 1)
                row["p_better_than_random_scratch"] = round(
                    float(stats.mannwhitneyu(pct, scratch, alternative="greater").pvalue), 4
                )
        rows.append(row)
    cols = ["method", "budget", "unit", "seeds", "cpu_s_mean", "percentile_mean"]
    cols += ["percentile_std", "top10_share", "p_better_than_random_ws", "p_worse_than_random_ws"]
    cols += ["random_scratch_at_equal_cpu", "p_better_than_random_scratch"]
    print_table(rows, cols)
    # The from-scratch cost of a mean percentile >= 90 (the reference point).
    reach: dict[str, float | None] = {}
    for method in SCRATCH_METHODS:
        hits = [r for r in rows if r["method"] == method and r["percentile_mean"] >= 90.0]
        reach[method] = min((r["cpu_s_mean"] for r in hits), default=None)
    print(f"\nCPU-s at which a from-scratch search first reaches mean percentile >= 90: {reach}")
    svg = args.runs.with_suffix(".svg")
    svg.write_text(plot_svg(rows))
    print(f"wrote {svg}")
    write_json(
        args.runs.with_name("pays_off_rnn.json"),
        {
            "machine": machine_info(),
            "runs_file": str(args.runs),
            "n_runs": len(runs),
            "from_scratch_cpu_s_to_mean_percentile_90": reach,
            "rows": rows,
        },
    )


_COLORS = {
    "enas-ws": "#d62728",
    "random-ws": "#7f7f7f",
    "tpe-ws": "#9467bd",
    "spos-enas": "#1f77b4",
    "fair-enas": "#17becf",
    "elite-ws": "#e377c2",
    "fair-elite": "#8c564b",
    "parzen-ws": "#ff7f0e",
    "darts-ws": "#000000",
    "dsonas-ws": "#393b79",
    "random-scratch": "#2ca02c",
    "tpe-scratch": "#bcbd22",
    "nasrl-scratch": "#ff7f0e",
}


def plot_svg(rows: list[dict[str, Any]]) -> str:
    """Mean percentile (± std) against mean CPU-seconds, log x axis; one line per method."""
    w, h, left, right, top, bottom = 720, 440, 60, 170, 20, 50
    cpus = [r["cpu_s_mean"] for r in rows if r["cpu_s_mean"] > 0]
    lo = 10 ** math.floor(math.log10(min(cpus))) if cpus else 1.0
    hi = 10 ** math.ceil(math.log10(max(cpus))) if cpus else 10.0

    def x(c: float) -> float:
        c = max(c, lo)
        return left + (w - left - right) * (math.log10(c) - math.log10(lo)) / (
            math.log10(hi) - math.log10(lo)
        )

    def y(p: float) -> float:
        return top + (h - top - bottom) * (1 - p / 100.0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for p in range(0, 101, 10):
        style = 'stroke="#999" stroke-dasharray="4 3"' if p == 90 else 'stroke="#eee"'
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(p):.1f}" y2="{y(p):.1f}" {style}/>')
        out.append(f'<text x="{left - 6}" y="{y(p) + 4:.1f}" text-anchor="end">{p}</text>')
    e = math.log10(lo)
    while e <= math.log10(hi) + 1e-9:
        c = 10**e
        out.append(
            f'<line x1="{x(c):.1f}" x2="{x(c):.1f}" y1="{top}" y2="{h - bottom}" stroke="#eee"/>'
        )
        out.append(f'<text x="{x(c):.1f}" y="{h - bottom + 16}" text-anchor="middle">{c:g}</text>')
        e += 1
    out.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">'
        "CPU-seconds (search + final retrain; log scale)</text>"
    )
    out.append(
        f'<text x="14" y="{(top + h - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + h - bottom) / 2})">percentile of the final '
        "architecture in the RNN table</text>"
    )
    methods = [m for m in (*WS_METHODS, *SCRATCH_METHODS) if any(r["method"] == m for r in rows)]
    for k, method in enumerate(methods):
        color = _COLORS[method]
        pts = sorted(
            (r["cpu_s_mean"], r["percentile_mean"], r["percentile_std"], r["seeds"])
            for r in rows
            if r["method"] == method
        )
        path = " ".join(f"{x(c):.1f},{y(p):.1f}" for c, p, _, _ in pts)
        dash = ' stroke-dasharray="5 3"' if method in SCRATCH_METHODS else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}"{dash}/>')
        for c, p, s, n in pts:
            out.append(
                f'<line x1="{x(c):.1f}" x2="{x(c):.1f}" y1="{y(min(100, p + s)):.1f}" '
                f'y2="{y(max(0, p - s)):.1f}" stroke="{color}" stroke-opacity="0.4"/>'
            )
            out.append(
                f'<circle cx="{x(c):.1f}" cy="{y(p):.1f}" r="3" fill="{color}">'
                f"<title>{method}: {p:.1f} ± {s:.1f} at {c:.0f} CPU-s ({n} seeds)</title>"
                "</circle>"
            )
        ly = top + 14 * k + 6
        out.append(
            f'<line x1="{w - right + 10}" x2="{w - right + 30}" y1="{ly}" y2="{ly}" '
            f'stroke="{color}"{dash}/>'
        )
        out.append(f'<text x="{w - right + 34}" y="{ly + 4}">{method}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("scratch", help="from-scratch searches by table lookup")
    sc.add_argument("--methods", nargs="+", choices=SCRATCH_METHODS, default=SCRATCH_METHODS)
    sc.add_argument("--seeds", type=int, default=100)
    ws = sub.add_parser("ws", help="weight-sharing searches, really run")
    ws.add_argument("--methods", nargs="+", choices=WS_METHODS, default=WS_METHODS)
    ws.add_argument("--budgets", type=int, nargs="+", default=[300, 1000, 3000])
    ws.add_argument("--seeds", dest="seed_list", type=int, nargs="+", default=[0, 1, 2])
    ws.add_argument("--frozen-trials", type=int, default=300, help="two-stage search trials")
    ws.add_argument("--candidates", type=int, default=20)
    ws.add_argument(
        "--oneshot-epochs", type=int, default=10, help="epochs of darts-ws / dsonas-ws (§7.5)"
    )
    sub.add_parser("summarize", help="table, verdicts and SVG of the finished runs")
    for p in (sc, ws, *sub.choices.values()):
        if not any(a.dest == "runs" for a in p._actions):
            p.add_argument("--runs", type=Path, default=RUNS, help="JSON-lines results")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import torch

    torch.set_num_threads(1)
    if args.command == "scratch":
        run_scratch(args)
    elif args.command == "ws":
        run_ws(args)
    else:
        summarize(args)


if __name__ == "__main__":
    main()
