"""Framework cost per trial: ENASSampler vs RandomSampler vs TPESampler, across storages.

The objective is instant: it suggests the 23 decisions of the paper's 12-node RNN cell and
returns a number, so every millisecond measured is sampler + Optuna + storage.

    python benchmarks/sampler_overhead.py                      # issue #2 table (memory, sqlite)
    python benchmarks/sampler_overhead.py --storages memory sqlite journal postgres \
        --trials 1000 10000 --samplers enas random              # issue #6 table
    python benchmarks/sampler_overhead.py --smoke               # CI-sized

Storages: memory, sqlite, journal (file, fsync per write), postgres, and mirror (an in-memory
study whose finished trials a TrialMirror copies to a journal file in the background; its
durable_ms_per_trial includes waiting for the last write).

Reported per run: median and p90 ms/trial over all trials, median over the last 10% (flatness
in n), and ENAS/Random and ENAS/TPE ratios. Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from _common import machine_info
from _common import print_table
from _common import write_json

from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.storage._mirror import TrialMirror


SPACE = RNNCellSpace()  # 12 nodes -> 23 decisions (ENAS Sec. 3.1)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "enas":
        return ENASSampler(SPACE, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # Optuna 5 defaults
    raise ValueError(f"unknown sampler {name!r}")


def make_storage(kind: str, workdir: Path, postgres_url: str | None) -> Any:
    if kind in ("memory", "mirror"):
        return None
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench-{time.monotonic_ns()}.db"
    if kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(workdir / f"j-{time.monotonic_ns()}.log")))
    if kind == "postgres":
        if not postgres_url:
            raise SystemExit(
                "--storages postgres needs --postgres-url or OPTUNA_ENAS_TEST_POSTGRES_URL"
            )
        return postgres_url
    raise ValueError(f"unknown storage {kind!r}")


def objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE, record=False)
    return float(sum(v == "relu" for _, v in arch.params))


def run_one(
    sampler: str, storage_kind: str, n: int, workdir: Path, pg: str | None
) -> dict[str, Any]:
    storage = make_storage(storage_kind, workdir, pg)
    study = optuna.create_study(
        sampler=make_sampler(sampler, seed=0),
        storage=storage,
        direction="maximize",
        study_name=f"{sampler}-{storage_kind}-{n}-{time.monotonic_ns()}",
    )
    callbacks: list[Any] = []
    mirror = None
    if storage_kind == "mirror":
        # In-memory study + every finished trial copied to a journal file (TrialMirror).
        journal = make_storage("journal", workdir, pg)
        mirror = TrialMirror(journal, study_name=study.study_name, directions=study.directions)
        callbacks.append(mirror)
    stamps: list[float] = [time.perf_counter()]

    def cb(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        stamps.append(time.perf_counter())

    study.optimize(objective, n_trials=n, callbacks=[*callbacks, cb])
    flush_s = 0.0
    if mirror is not None:
        t0 = time.perf_counter()
        mirror.close()
        flush_s = time.perf_counter() - t0
    per = [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:], strict=False)]
    tail = per[-max(1, n // 10) :]
    per_sorted = sorted(per)
    return {
        "sampler": sampler,
        "storage": storage_kind,
        "n_trials": n,
        "median_ms": statistics.median(per),
        "p90_ms": per_sorted[int(0.9 * (len(per) - 1))],
        "mean_ms": statistics.fmean(per),
        "tail_median_ms": statistics.median(tail),
        "total_s": stamps[-1] - stamps[0] + flush_s,
        "durable_ms_per_trial": (stamps[-1] - stamps[0] + flush_s) * 1e3 / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--samplers", nargs="+", default=["enas", "random", "tpe"])
    parser.add_argument("--storages", nargs="+", default=["memory", "sqlite"])
    parser.add_argument(
        "--tpe-max-trials",
        type=int,
        default=1000,
        help="skip TPE above this many trials (its cost grows with n)",
    )
    parser.add_argument("--postgres-url", default=os.environ.get("OPTUNA_ENAS_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    parser.add_argument("--json", default="benchmarks/results/sampler_overhead.json")
    args = parser.parse_args()
    if args.smoke:
        args.trials = [30]
        if args.json == parser.get_default("json"):
            args.json = "benchmarks/results/sampler_overhead.smoke.json"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for storage in args.storages:
            for n in args.trials:
                for sampler in args.samplers:
                    if sampler == "tpe" and n > args.tpe_max_trials:
                        continue
                    row = run_one(sampler, storage, n, Path(tmp), args.postgres_url)
                    rows.append(row)
                    print(
                        f"{storage:8s} {sampler:6s} n={n:6d} median {row['median_ms']:.3f} ms",
                        flush=True,
                    )
    by = {(r["storage"], r["n_trials"], r["sampler"]): r for r in rows}
    for r in rows:
        if r["sampler"] == "enas":
            for other in ("random", "tpe"):
                o = by.get((r["storage"], r["n_trials"], other))
                if o:
                    r[f"enas/{other}"] = r["median_ms"] / o["median_ms"]
    print()
    print_table(
        rows,
        [
            "storage",
            "sampler",
            "n_trials",
            "median_ms",
            "p90_ms",
            "tail_median_ms",
            "mean_ms",
            "enas/random",
            "enas/tpe",
        ],
    )
    write_json(
        args.json, {"machine": machine_info(), "space": "rnn-12 (23 decisions)", "results": rows}
    )


if __name__ == "__main__":
    main()
