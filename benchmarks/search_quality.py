"""Search quality at an equal trial budget: ENAS vs Random-WS vs TPE (issue #6, parts 3 and 4).

Every search trains its OWN fresh shared-weight supernet (a SupernetEvaluator built with the
same seed for every sampler, so within a seed only the sampler differs). Each trial trains the
shared weights for one minibatch on the trial's architecture and returns the architecture's
shared-weight score on the next validation minibatch (perplexity for PTB, accuracy for digits).

Samplers (all on a SupernetEvaluator, i.e. all with weight sharing):

- ``enas``: ENASSampler with a controller tuned for a short budget: the space's official
  preset with ``learning_rate=5e-3, n_aggregate=1, baseline_decay=0.9`` (the presets are tuned
  for ~10^5 samples); on PTB the reward is ``perplexity_reward(80)`` (80 / ppl, ENAS Sec. 3.1).
- ``enas-official``: ENASSampler with the space's official preset unchanged
  (``enas-official-ptb`` / ``enas-official-cifar-micro``); same reward as ``enas``.
- ``random-ws``: RandomSampler: random search with weight sharing (Li & Talwalkar, 2019).
- ``tpe``: TPESampler (Optuna defaults).

"Random" without sharing (StandaloneEvaluator, every trial trained from scratch) costs a full
retrain per trial, far beyond this CPU budget at the same trial count; it is omitted from the
equal-budget table. The Kendall-tau set below is exactly such a search with a small budget (N
architectures drawn uniformly and trained from scratch), so its best member (by from-scratch
validation) is reported as ``random-standalone (N trials)``.

After each search, the top 5 distinct architectures by trial value are rescored with the
final shared weights on the whole (possibly truncated) validation split, and the best is
retrained from scratch with ``retrain`` (fixed seed, fixed short budget) and scored on the full
test split.

Kendall tau (Sciuto et al., 2019; Yu et al., 2020): N architectures sampled uniformly (fixed
seed) are scored with the final shared weights of the seed-0 Random-WS supernet (whole
validation split) and trained from scratch (same retrain budget); tau is computed between the
shared-weight score and the from-scratch validation (and test) score.

    python benchmarks/search_quality.py --task ptb               # PTB, 3 seeds, 300 trials
    python benchmarks/search_quality.py --task digits            # MicroSpace on digits
    python benchmarks/search_quality.py --task digits --smoke    # CI-sized (< 60 s)

Writes JSON to benchmarks/results/search_quality_<task>.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import PTB_DIR  # noqa: E402
from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import ControllerConfig  # noqa: E402
from optuna_enas import ENASSampler  # noqa: E402
from optuna_enas import MicroSpace  # noqa: E402
from optuna_enas import RNNCellSpace  # noqa: E402
from optuna_enas import SupernetEvaluator  # noqa: E402
from optuna_enas import perplexity_reward  # noqa: E402
from optuna_enas import retrain  # noqa: E402
from optuna_enas import suggest_architecture  # noqa: E402
from optuna_enas.data import load_corpus  # noqa: E402
from optuna_enas.data import load_digits_dataset  # noqa: E402
from optuna_enas.data._corpus import Corpus  # noqa: E402


SAMPLERS = ["enas", "enas-official", "random-ws", "tpe"]
SHORT_BUDGET_OVERRIDES = {"learning_rate": 5e-3, "n_aggregate": 1, "baseline_decay": 0.9}
TOP_K = 5
RETRAIN_SEED = 0
TAU_ARCH_SEED = 1234

# Per task: space, supernet, minibatching, search budget, retrain budget, corpus truncation.
CONFIGS: dict[str, dict[str, Any]] = {
    "ptb": {
        "space": {"type": "rnn", "n_nodes": 8},
        "supernet_kwargs": {"embed_size": 32, "hidden_size": 32},
        "batch_size": 32,
        "bptt": 20,
        "n_trials": 300,
        "retrain": {"n_epochs": 1, "n_steps_per_epoch": 300},
        # First N tokens of each split (None: whole split). Test stays whole.
        "truncate": {"train": 300_000, "valid": 15_000, "test": None},
        "n_tau": 10,
    },
    "digits": {
        "space": {"type": "micro", "n_nodes": 3},
        "supernet_kwargs": {"n_filters": 8, "n_layers": 3},
        "batch_size": 64,
        "bptt": 35,  # unused for images
        "n_trials": 300,
        "retrain": {"n_epochs": 8, "n_steps_per_epoch": None},
        "truncate": None,
        "n_tau": 10,
    },
}
SMOKE: dict[str, dict[str, Any]] = {
    "ptb": {
        "n_trials": 12,
        "retrain": {"n_epochs": 1, "n_steps_per_epoch": 5},
        "truncate": {"train": 20_000, "valid": 2_000, "test": 2_000},
        "n_tau": 4,
    },
    "digits": {
        "supernet_kwargs": {"n_filters": 4, "n_layers": 1},
        "n_trials": 12,
        "retrain": {"n_epochs": 1, "n_steps_per_epoch": 3},
        "n_tau": 4,
    },
}


def make_space(cfg: dict[str, Any]) -> RNNCellSpace | MicroSpace:
    if cfg["type"] == "rnn":
        return RNNCellSpace(n_nodes=cfg["n_nodes"])
    return MicroSpace(n_nodes=cfg["n_nodes"])


def load_data(task: str, data_dir: Path, truncate: dict[str, int | None] | None) -> Any:
    if task == "digits":
        return load_digits_dataset()
    if not (data_dir / "train.txt").is_file():
        sys.exit(
            f"PTB not found at {data_dir} (expected train.txt, valid.txt, test.txt); pass "
            "--data DIR (see /work/shared/data/README.md)."
        )
    corpus = load_corpus(data_dir)
    if not truncate:
        return corpus
    splits = {s: getattr(corpus, s)[: truncate[s]] for s in ("train", "valid", "test")}
    return Corpus(**splits, vocab=corpus.vocab, name=f"{corpus.name} (truncated)")


def make_sampler(name: str, task: str, space: Any, seed: int) -> optuna.samplers.BaseSampler:
    reward = perplexity_reward(80.0) if task == "ptb" else None
    preset = "enas-official-ptb" if task == "ptb" else "enas-official-cifar-micro"
    if name == "enas":
        config = ControllerConfig.from_preset(preset, **SHORT_BUDGET_OVERRIDES)
        return ENASSampler(space, config=config, seed=seed, reward_fn=reward)
    if name == "enas-official":
        return ENASSampler(space, config=preset, seed=seed, reward_fn=reward)
    if name == "random-ws":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


def better(direction: str) -> Any:
    return min if direction == "minimize" else max


def best_so_far(values: list[float], direction: str) -> list[float]:
    pick = better(direction)
    out: list[float] = []
    for v in values:
        out.append(v if not out else pick(out[-1], v))
    return out


def checkpoints(n: int) -> list[int]:
    return sorted({max(1, n // 4), max(1, n // 2), n})


def kendall_tau(x: list[float], y: list[float]) -> tuple[float, float | None]:
    try:
        from scipy.stats import kendalltau
    except ImportError:  # tau-b without ties correction beyond the pair counts
        n, s, tx, ty = len(x), 0, 0, 0
        for i in range(n):
            for j in range(i + 1, n):
                a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
                s += a * b
                tx += a != 0
                ty += b != 0
        return float(s / math.sqrt(tx * ty)) if tx and ty else math.nan, None
    res = kendalltau(x, y)
    return float(res.statistic), float(res.pvalue)


def _model_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """The task's supernet and minibatching, on the CPU (search and retrain alike)."""
    keys = ("supernet_kwargs", "batch_size", "bptt")
    return {**{k: cfg[k] for k in keys}, "device": "cpu"}


def do_retrain(arch: Any, space: Any, data: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = retrain(arch, space, data, **cfg["retrain"], **_model_kwargs(cfg), seed=RETRAIN_SEED)
    return {
        "valid": r.valid_value,
        "test": r.test_value,
        "history": list(r.history),
        "seconds": time.perf_counter() - t0,
    }


def run_search(
    sampler_name: str, seed: int, task: str, space: Any, data: Any, cfg: dict[str, Any]
) -> tuple[dict[str, Any], SupernetEvaluator]:
    evaluator = SupernetEvaluator(space, data, seed=seed, **_model_kwargs(cfg))
    direction = evaluator.direction
    study = optuna.create_study(
        direction=direction, sampler=make_sampler(sampler_name, task, space, seed)
    )
    t0 = time.perf_counter()
    study.optimize(evaluator, n_trials=cfg["n_trials"])
    search_s = time.perf_counter() - t0
    trials = [t for t in study.trials if t.value is not None]
    values = [float(t.value) for t in trials]
    curve = best_so_far(values, direction)
    # Top-k distinct architectures by trial value, rescored on the whole validation split.
    order = sorted(trials, key=lambda t: t.value, reverse=direction == "maximize")
    seen: set[tuple[Any, ...]] = set()
    candidates = []
    for t in order:
        key = tuple(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            candidates.append(space.architecture(t.params))
        if len(candidates) == TOP_K:
            break
    rescored = [(evaluator.evaluate(a, full=True), a) for a in candidates]
    pick = better(direction)
    best_value, best_arch = pick(rescored, key=lambda p: p[0])
    rt = do_retrain(best_arch, space, data, cfg)
    record = {
        "sampler": sampler_name,
        "seed": seed,
        "values": values,
        "best_so_far": {str(c): curve[c - 1] for c in checkpoints(len(curve))},
        "best_trial_value": curve[-1],
        "rescored_valid": [v for v, _ in rescored],
        "chosen_arch": space.describe(best_arch),
        "chosen_params": dict(best_arch.to_params()),
        "chosen_shared_valid": best_value,
        "retrain": rt,
        "search_seconds": search_s,
        "n_shared_steps": evaluator.n_steps,
    }
    return record, evaluator


def run_tau(
    evaluator: SupernetEvaluator, space: Any, data: Any, cfg: dict[str, Any]
) -> dict[str, Any]:
    ask = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=TAU_ARCH_SEED))
    archs, seen = [], set()
    while len(archs) < cfg["n_tau"]:
        a = suggest_architecture(ask.ask(), space, record=False)
        if a.params not in seen:
            seen.add(a.params)
            archs.append(a)
    pairs = []
    for a in archs:
        shared = evaluator.evaluate(a, full=True)
        rt = do_retrain(a, space, data, cfg)
        pairs.append(
            {
                "arch": space.describe(a),
                "shared_valid": shared,
                "scratch_valid": rt["valid"],
                "scratch_test": rt["test"],
                "retrain_seconds": rt["seconds"],
            }
        )
        print(f"  tau pair: shared {shared:.4g} scratch valid {rt['valid']:.4g}", flush=True)
    shared = [p["shared_valid"] for p in pairs]
    tau_v, p_v = kendall_tau(shared, [p["scratch_valid"] for p in pairs])
    tau_t, p_t = kendall_tau(shared, [p["scratch_test"] for p in pairs])
    direction = evaluator.direction
    best = better(direction)(pairs, key=lambda p: p["scratch_valid"])
    return {
        "supernet": "random-ws, seed 0, after its search",
        "arch_sampler": f"RandomSampler(seed={TAU_ARCH_SEED}), distinct architectures",
        "n": len(pairs),
        "tau_valid": tau_v,
        "p_valid": p_v,
        "tau_test": tau_t,
        "p_test": p_t,
        "pairs": pairs,
        "standalone_best": {
            "arch": best["arch"],
            "valid": best["scratch_valid"],
            "test": best["scratch_test"],
        },
    }


def summarize(records: list[dict[str, Any]], samplers: list[str]) -> list[dict[str, Any]]:
    rows = []
    for s in samplers:
        recs = [r for r in records if r["sampler"] == s]
        if not recs:
            continue
        row: dict[str, Any] = {"sampler": s, "seeds": len(recs)}
        for c in recs[0]["best_so_far"]:
            vals = [r["best_so_far"][c] for r in recs]
            row[f"best@{c}"] = f"{statistics.fmean(vals):.4g} [{min(vals):.4g}, {max(vals):.4g}]"
        sv = [r["chosen_shared_valid"] for r in recs]
        row["shared_valid(top)"] = f"{statistics.fmean(sv):.4g}"
        tests = [r["retrain"]["test"] for r in recs]
        sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
        row["retrain_test"] = f"{statistics.fmean(tests):.4g} ± {sd:.3g}"
        row["test_min_max"] = f"[{min(tests):.4g}, {max(tests):.4g}]"
        row["search_s"] = statistics.fmean(r["search_seconds"] for r in recs)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["ptb", "digits"], default="ptb")
    parser.add_argument("--data", type=Path, default=PTB_DIR, help="PTB directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=None, help="trials per search")
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=SAMPLERS)
    parser.add_argument("--no-tau", action="store_true", help="skip the Kendall-tau study")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI (< 60 s)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cfg = dict(CONFIGS[args.task])
    if args.smoke:
        cfg.update(SMOKE[args.task])
        if args.seeds == parser.get_default("seeds"):
            args.seeds = [0]
    if args.trials is not None:
        cfg["n_trials"] = args.trials
    if args.json is None:
        suffix = ".smoke" if args.smoke else ""
        args.json = RESULTS / f"search_quality_{args.task}{suffix}.json"
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = make_space(cfg["space"])
    data = load_data(args.task, args.data, cfg.get("truncate"))
    t_start = time.perf_counter()
    records: list[dict[str, Any]] = []
    tau: dict[str, Any] | None = None
    for seed in args.seeds:
        for s in args.samplers:
            rec, evaluator = run_search(s, seed, args.task, space, data, cfg)
            records.append(rec)
            print(
                f"{s:13s} seed {seed}: best trial {rec['best_trial_value']:.4g}, chosen shared "
                f"{rec['chosen_shared_valid']:.4g}, retrain test {rec['retrain']['test']:.4g} "
                f"({rec['search_seconds']:.0f}+{rec['retrain']['seconds']:.0f} s) "
                f"{rec['chosen_arch']}",
                flush=True,
            )
            if s == "random-ws" and seed == args.seeds[0] and not args.no_tau:
                tau = run_tau(evaluator, space, data, cfg)
                print(f"  Kendall tau (shared vs scratch valid): {tau['tau_valid']:.3f}")
    rows = summarize(records, args.samplers)
    metric = "valid ppl (lower is better)" if args.task == "ptb" else "valid acc (higher)"
    print(f"\nsearch: best shared-weight {metric}, mean [min, max] over seeds at trial n")
    cols = ["sampler", "seeds", *[k for k in rows[0] if k.startswith("best@")]]
    print_table(rows, [*cols, "shared_valid(top)", "retrain_test", "test_min_max", "search_s"])
    if tau is not None:
        print(
            f"\nKendall tau over {tau['n']} architectures: valid {tau['tau_valid']:.3f} "
            f"(p={tau['p_valid']}), test {tau['tau_test']:.3f} (p={tau['p_test']})"
        )
        print_table(tau["pairs"], ["arch", "shared_valid", "scratch_valid", "scratch_test"])
        sb = tau["standalone_best"]
        print(
            f"random-standalone ({tau['n']} trials): valid {sb['valid']:.4g} test {sb['test']:.4g}"
        )
    write_json(
        args.json,
        {
            "machine": machine_info(),
            "task": args.task,
            "smoke": args.smoke,
            "config": {
                **{k: v for k, v in cfg.items()},
                "seeds": args.seeds,
                "samplers": args.samplers,
                "sampler_definitions": {
                    "enas": "ENASSampler(official preset + "
                    f"{SHORT_BUDGET_OVERRIDES}) + SupernetEvaluator (shared weights)",
                    "enas-official": "ENASSampler(official preset) + SupernetEvaluator",
                    "random-ws": "RandomSampler + SupernetEvaluator (random search with "
                    "weight sharing, Li & Talwalkar 2019)",
                    "tpe": "TPESampler (Optuna defaults) + SupernetEvaluator",
                },
                "reward_fn": "perplexity_reward(80)" if args.task == "ptb" else "accuracy",
                "data": str(args.data) if args.task == "ptb" else "sklearn digits",
                "top_k_rescored": TOP_K,
                "retrain_seed": RETRAIN_SEED,
                "supernet_seed": "= search seed, same for every sampler",
            },
            "summary": rows,
            "runs": records,
            "kendall_tau": tau,
            "total_seconds": time.perf_counter() - t_start,
        },
    )


if __name__ == "__main__":
    main()
