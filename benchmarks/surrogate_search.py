"""Search quality without weight sharing: samplers on a surrogate of the ground-truth table.

Issue #11, item 6(a). ``benchmarks/ground_truth.py`` trained a few hundred architectures of a
reduced space from scratch. Samplers propose architectures of the whole space, most of which
were never trained, so the objective here is a k-nearest-neighbour surrogate of the table:
the mean ground-truth value (log perplexity for RNN, accuracy for micro; averaged over seeds)
of the k table architectures closest in Hamming distance over the decisions, k picked by
leave-one-out cross-validation. The script prints how well the surrogate itself ranks held-out
architectures (leave-one-out Kendall tau against the table), which bounds what this benchmark
can say.

Each sampler (ENASSampler with its default configuration, RandomSampler, TPESampler) runs
``--seeds`` studies of ``--trials`` trials on the surrogate. The figure of merit at a budget
is the percentile of the best surrogate value found so far among the table's architectures
(100 = better than every trained architecture), and the regret against the best surrogate
value over the table and all found architectures. Mann-Whitney U p-values compare ENAS with
each baseline at every budget.

    python benchmarks/surrogate_search.py --task rnn          # 20 seeds, 50/100/300 trials
    python benchmarks/surrogate_search.py --task micro
    python benchmarks/surrogate_search.py --smoke             # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import ENASSampler  # noqa: E402
from optuna_enas import SearchSpace  # noqa: E402
from optuna_enas import space_from_dict  # noqa: E402
from optuna_enas import suggest_architecture  # noqa: E402


SAMPLERS = ("enas", "random", "tpe")


class Surrogate:
    """k-NN regression over decision indices with Hamming distance; higher is better."""

    def __init__(self, space: SearchSpace, rows: list[dict[str, Any]], *, log: bool) -> None:
        by_arch: dict[tuple[int, ...], list[float]] = {}
        for r in rows:
            key = tuple(space.to_indices(r["params"]))
            by_arch.setdefault(key, []).append(float(r["value"]))
        self.space = space
        self.x = np.array(list(by_arch), dtype=np.int64)
        values = np.array([np.mean(v) for v in by_arch.values()])
        # Internally "higher is better": minus log perplexity, or accuracy.
        self.y = -np.log(values) if log else values
        self.k, self.loo = self._choose_k()

    def _predict_rows(self, x: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
        d = (x[:, None, :] != self.x[None, :, :]).sum(axis=2).astype(float)
        if exclude_self:
            np.fill_diagonal(d, np.inf)
        # Stable tie-break: distance first, then table order.
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]
        return self.y[idx].mean(axis=1)

    def _choose_k(self) -> tuple[int, dict[str, float]]:
        best: tuple[float, int, dict[str, float]] | None = None
        for k in (1, 3, 5, 10, 20):
            if k >= len(self.y):
                break
            pred = self._predict_rows(self.x, k, exclude_self=True)
            tau = float(stats.kendalltau(pred, self.y).statistic)
            rho = float(stats.spearmanr(pred, self.y).statistic)
            if best is None or tau > best[0]:
                best = (tau, k, {"k": k, "loo_kendall_tau": tau, "loo_spearman": rho})
        assert best is not None, "the table needs at least 2 architectures"
        return best[1], best[2]

    def __call__(self, params: dict[str, Any]) -> float:
        x = np.array([self.space.to_indices(params)], dtype=np.int64)
        return float(self._predict_rows(x, self.k)[0])

    def percentile(self, value: float) -> float:
        """Percent of table architectures whose own value is below ``value``."""
        return float(100.0 * np.mean(self.y < value))


def _make_sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if name == "enas":
        return ENASSampler(space, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run_one(name: str, surrogate: Surrogate, seed: int, n_trials: int) -> list[float]:
    """Best-so-far surrogate values after every trial (higher is better)."""
    space = surrogate.space
    study = optuna.create_study(direction="maximize", sampler=_make_sampler(name, space, seed))

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space, record=False)
        return surrogate(arch.to_params())

    study.optimize(objective, n_trials=n_trials)
    values = [float(t.value) for t in study.trials if t.value is not None]
    return list(np.maximum.accumulate(values))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=("rnn", "micro"), default="rnn")
    p.add_argument("--table", type=Path, default=None, help="ground-truth JSON (default: ours)")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 300])
    p.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    p.add_argument("--smoke", action="store_true", help="2 seeds x 20 trials; no JSON kept")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.smoke:
        args.seeds, args.budgets = 2, [10, 20]

    table_path = args.table or RESULTS / f"ground_truth_{args.task}.json"
    if not table_path.is_file():
        print(f"no ground-truth table at {table_path}: run benchmarks/ground_truth.py first")
        return
    table = json.loads(table_path.read_text())
    space = space_from_dict(table["space"])
    surrogate = Surrogate(space, table["rows"], log=args.task == "rnn")
    print(
        f"table: {len(surrogate.y)} architectures; surrogate k={surrogate.k}, leave-one-out "
        f"Kendall tau {surrogate.loo['loo_kendall_tau']:.3f}, "
        f"Spearman {surrogate.loo['loo_spearman']:.3f}"
    )

    n_trials = max(args.budgets)
    curves: dict[str, list[list[float]]] = {}
    seconds: dict[str, float] = {}
    for name in args.samplers:
        t0 = time.perf_counter()
        curves[name] = [run_one(name, surrogate, seed, n_trials) for seed in range(args.seeds)]
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {args.seeds} runs in {seconds[name]:.1f} s")

    best_known = max(float(surrogate.y.max()), max(c[-1] for cs in curves.values() for c in cs))
    rows = []
    for budget in args.budgets:
        for name in args.samplers:
            finals = np.array([c[budget - 1] for c in curves[name]])
            pct = np.array([surrogate.percentile(v) for v in finals])
            row: dict[str, Any] = {
                "budget": budget,
                "sampler": name,
                "percentile_mean": float(pct.mean()),
                "percentile_std": float(pct.std(ddof=1)) if len(pct) > 1 else 0.0,
                "regret_mean": float(np.mean(best_known - finals)),
                "regret_std": float(np.std(best_known - finals, ddof=1)) if len(finals) > 1 else 0,
            }
            if name != "enas" and "enas" in curves:
                enas = np.array([c[budget - 1] for c in curves["enas"]])
                row["p_enas_better"] = float(
                    stats.mannwhitneyu(enas, finals, alternative="greater").pvalue
                )
            rows.append(row)
    print()
    print_table(
        rows,
        [
            "budget",
            "sampler",
            "percentile_mean",
            "percentile_std",
            "regret_mean",
            "regret_std",
            "p_enas_better",
        ],
    )
    if args.smoke:
        return
    write_json(
        args.out or RESULTS / f"surrogate_search_{args.task}.json",
        {
            "machine": machine_info(),
            "table": str(table_path),
            "n_table_architectures": int(len(surrogate.y)),
            "surrogate": surrogate.loo,
            "objective": "-log(ppl)" if args.task == "rnn" else "accuracy",
            "best_known": best_known,
            "seconds": seconds,
            "rows": rows,
            "curves": {k: [list(map(float, c)) for c in v] for k, v in curves.items()},
        },
    )


if __name__ == "__main__":
    main()
