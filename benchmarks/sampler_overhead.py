"""Framework cost per trial: ENASSampler vs RandomSampler vs TPESampler, across storages.

The objective is instant: it suggests the 23 decisions of the paper's 12-node RNN cell and
returns a number, so every millisecond measured is sampler + Optuna + storage.

    python benchmarks/sampler_overhead.py                      # issue #2 table (memory, sqlite)
    python benchmarks/sampler_overhead.py --storages memory sqlite journal postgres \
        --trials 1000 10000 --samplers enas random              # issue #6 table
    python benchmarks/sampler_overhead.py --smoke               # CI-sized

Storages: memory, sqlite, journal (file, fsync per write), postgres, and mirror (an in-memory
study whose finished trials a TrialMirror copies to a journal file in the background; its
durable_ms_per_trial includes waiting for the last write). BatchedStorage (one write per
trial, issue #13): batched (SQLite, exclusive, WAL + synchronous=NORMAL: the CLI's default),
batched-full (the same with synchronous=FULL), batched-journal (journal file, one record per
trial), batched-postgres (exclusive), shared-postgres (exclusive=False: Optuna's own writes since
issue #21, results before that measured the old batched shared mode; the CLI's mode for a
server URL).

    python benchmarks/sampler_overhead.py --trials 1000 10000 --samplers enas \
        --storages memory sqlite journal postgres batched batched-full batched-journal \
        batched-postgres shared-postgres --plain-max-trials 1000 \
        --json benchmarks/results/sampler_overhead_batched.json        # issue #13 table
    python benchmarks/sampler_overhead.py --trials 1000 --samplers enas --workers 1 4 \
        --storages postgres shared-postgres --json benchmarks/results/sampler_overhead_workers.json

``--interleave CHUNK`` runs the studies of one n in turns of CHUNK trials in one process (on a
machine shared with other jobs the load drifts during a run; in turns, every storage sees the
same drift, so the ratios stay fair).

``--workers K`` runs K processes on one study (K x n/K trials) for postgres and
shared-postgres (batched-postgres is exclusive: one writer); a
row's ms/trial is then the wall time of the whole run over all trials (throughput), and
worker_ms_per_trial the mean over workers of their own time per trial.

Reported per run: median and p90 ms/trial over all trials, median over the last 10% (flatness
in n), durable_ms_per_trial (total time / n, the figure the <= 5 ms goal is about),
cpu_ms_per_trial (this process's CPU time / n: what a busy machine changes least), ENAS/Random
and ENAS/TPE ratios, and x_memory / x_plain: durable ms/trial over that of the memory storage
and of the plain storage the batched one wraps (plain storages are run up to
--plain-max-trials; their per-trial cost grows with n, so a ratio against a smaller plain n is
a lower bound on the speed-up, marked by plain_n). Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import ENASSampler  # noqa: E402
from optuna_enas import RNNCellSpace  # noqa: E402
from optuna_enas import suggest_architecture  # noqa: E402
from optuna_enas.storage._mirror import TrialMirror  # noqa: E402


SPACE = RNNCellSpace()  # 12 nodes -> 23 decisions (ENAS Sec. 3.1)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "enas":
        return ENASSampler(SPACE, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # Optuna 5 defaults
    raise ValueError(f"unknown sampler {name!r}")


PLAIN_OF = {
    "batched": "sqlite",
    "batched-full": "sqlite",
    "batched-journal": "journal",
    "batched-postgres": "postgres",
    "shared-postgres": "postgres",
}
SHARED_STORAGES = ("postgres", "shared-postgres")  # several writers on one study


def _postgres(postgres_url: str | None) -> str:
    if not postgres_url:
        raise SystemExit(
            "the postgres storages need --postgres-url or OPTUNA_ENAS_TEST_POSTGRES_URL"
        )
    return postgres_url


def make_storage(kind: str, workdir: Path, postgres_url: str | None) -> Any:
    from optuna_enas.storage import BatchedStorage
    from optuna_enas.storage import configure_sqlite
    from optuna_enas.storage import storage_url

    if kind in ("memory", "mirror"):
        return None
    if kind in ("batched", "batched-full"):
        rdb = optuna.storages.RDBStorage(f"sqlite:///{workdir}/bench-{time.monotonic_ns()}.db")
        configure_sqlite(rdb, synchronous="full" if kind == "batched-full" else "normal")
        return BatchedStorage(rdb)
    if kind == "batched-journal":
        return BatchedStorage(make_storage("journal", workdir, postgres_url))
    if kind in ("batched-postgres", "shared-postgres"):
        rdb = optuna.storages.RDBStorage(storage_url(_postgres(postgres_url)))
        return BatchedStorage(rdb, exclusive=kind == "batched-postgres")
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench-{time.monotonic_ns()}.db"
    if kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(workdir / f"j-{time.monotonic_ns()}.log")))
    if kind == "postgres":
        return _postgres(postgres_url)
    raise ValueError(f"unknown storage {kind!r}")


def objective(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE, record=False)
    return float(sum(v == "relu" for _, v in arch.params))


class _Run:
    """One study on one storage, run in one go or in chunks (``--interleave``)."""

    def __init__(
        self,
        sampler: str,
        storage_kind: str,
        n: int,
        workdir: Path,
        pg: str | None,
        *,
        study_name: str | None = None,
        seed: int = 0,
    ) -> None:
        self.sampler, self.storage_kind, self.n = sampler, storage_kind, n
        storage = make_storage(storage_kind, workdir, pg)
        self.study = optuna.create_study(
            sampler=make_sampler(sampler, seed=seed),
            storage=storage,
            direction="maximize",
            study_name=study_name or f"{sampler}-{storage_kind}-{n}-{time.monotonic_ns()}",
            load_if_exists=study_name is not None,
        )
        self.callbacks: list[Any] = []
        self.mirror = None
        if storage_kind == "mirror":
            # In-memory study + every finished trial copied to a journal file (TrialMirror).
            journal = make_storage("journal", workdir, pg)
            self.mirror = TrialMirror(
                journal, study_name=self.study.study_name, directions=self.study.directions
            )
            self.callbacks.append(self.mirror)
        self.per: list[float] = []
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def step(self, k: int) -> None:
        cpu0 = time.process_time()
        stamps: list[float] = [time.perf_counter()]

        def cb(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
            stamps.append(time.perf_counter())

        self.study.optimize(objective, n_trials=k, callbacks=[*self.callbacks, cb])
        self.cpu_s += time.process_time() - cpu0
        self.wall_s += stamps[-1] - stamps[0]
        self.per += [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:], strict=False)]

    def run_all(self) -> dict[str, Any]:
        """All its trials in one go, then :meth:`result`."""
        self.step(self.n)
        return self.result()

    def result(self) -> dict[str, Any]:
        flush_s = 0.0
        if self.mirror is not None:
            t0 = time.perf_counter()
            self.mirror.close()
            flush_s = time.perf_counter() - t0
        per, n = self.per, self.n
        tail = per[-max(1, n // 10) :]
        per_sorted = sorted(per)
        return {
            "sampler": self.sampler,
            "storage": self.storage_kind,
            "n_trials": n,
            "median_ms": statistics.median(per),
            "p90_ms": per_sorted[int(0.9 * (len(per) - 1))],
            "mean_ms": statistics.fmean(per),
            "tail_median_ms": statistics.median(tail),
            "total_s": self.wall_s + flush_s,
            "durable_ms_per_trial": (self.wall_s + flush_s) * 1e3 / n,
            # This process's CPU time (all its threads): robust to other processes' load,
            # blind to waits (fsync, a database server's work).
            "cpu_ms_per_trial": self.cpu_s * 1e3 / n,
        }


def _worker(args: tuple[str, str, int, str, str | None, str, int]) -> dict[str, Any]:
    sampler, kind, n, workdir, pg, name, seed = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import torch

    torch.set_num_threads(1)
    return _Run(sampler, kind, n, Path(workdir), pg, study_name=name, seed=seed).run_all()


def run_workers(
    sampler: str, kind: str, n: int, workers: int, workdir: Path, pg: str | None
) -> dict[str, Any]:
    """``workers`` processes, ``n // workers`` trials each, on one study of a server storage."""
    import multiprocessing

    if kind not in SHARED_STORAGES:
        raise SystemExit(f"--workers > 1 needs a shared storage ({SHARED_STORAGES}), not {kind}")
    name = f"{sampler}-{kind}-{n}-w{workers}-{time.monotonic_ns()}"
    optuna.create_study(storage=_postgres(pg), study_name=name, direction="maximize")
    jobs = [(sampler, kind, n // workers, str(workdir), pg, name, w) for w in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        t0 = time.perf_counter()
        rows = pool.map(_worker, jobs)
        wall = time.perf_counter() - t0  # includes the workers' start (imports): an upper bound
    trials = optuna.load_study(study_name=name, storage=pg).trials
    n_total = n // workers * workers
    assert sorted(t.number for t in trials) == list(range(n_total)), "lost or repeated trials"
    busy = max(r["total_s"] for r in rows)
    return {
        "sampler": sampler,
        "storage": kind,
        "workers": workers,
        "n_trials": n_total,
        "median_ms": statistics.median(r["median_ms"] for r in rows),
        "p90_ms": max(r["p90_ms"] for r in rows),
        "mean_ms": statistics.fmean(r["mean_ms"] for r in rows),
        "tail_median_ms": statistics.median(r["tail_median_ms"] for r in rows),
        "total_s": busy,
        "wall_with_start_s": wall,
        "durable_ms_per_trial": busy * 1e3 / n_total,
        "worker_ms_per_trial": statistics.fmean(r["durable_ms_per_trial"] for r in rows),
        "cpu_ms_per_trial": statistics.fmean(r["cpu_ms_per_trial"] for r in rows),
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """x_memory and x_plain (see the module docstring)."""
    by = {(r["storage"], r["n_trials"], r["sampler"], r.get("workers", 1)): r for r in rows}
    for r in rows:
        key = (r["n_trials"], r["sampler"], r.get("workers", 1))
        memory = by.get(("memory", key[0], key[1], 1))
        if memory and r["storage"] != "memory":
            r["x_memory"] = r["durable_ms_per_trial"] / memory["durable_ms_per_trial"]
        plain_kind = PLAIN_OF.get(r["storage"])
        if plain_kind is None:
            continue
        candidates = [
            p
            for p in rows
            if p["storage"] == plain_kind
            and p["sampler"] == r["sampler"]
            and p.get("workers", 1) == r.get("workers", 1)
            and p["n_trials"] <= r["n_trials"]
        ]
        if candidates:
            plain = max(candidates, key=lambda p: p["n_trials"])
            r["x_plain"] = r["durable_ms_per_trial"] / plain["durable_ms_per_trial"]
            r["plain_n"] = plain["n_trials"]


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
    parser.add_argument(
        "--plain-max-trials",
        type=int,
        default=None,
        help="skip sqlite/journal/postgres above this many trials (~0.1-0.6 s per trial)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="worker processes on one study (server storages only for more than 1)",
    )
    parser.add_argument("--postgres-url", default=os.environ.get("OPTUNA_ENAS_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice)",
    )
    parser.add_argument(
        "--interleave",
        type=int,
        default=0,
        metavar="CHUNK",
        help="run the storages' studies in turns of CHUNK trials (one process), so that a "
        "machine whose load changes during the run affects them alike (0: one after another)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    parser.add_argument("--json", default=str(RESULTS / "sampler_overhead.json"))
    args = parser.parse_args()
    if args.smoke:
        args.trials = [30]
        if args.json == parser.get_default("json"):
            args.json = str(RESULTS / "sampler_overhead.smoke.json")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.trials if args.interleave else []:
            runs = [
                _Run(sampler, storage, n, Path(tmp), args.postgres_url)
                for storage in args.storages
                for sampler in args.samplers
                if not (sampler == "tpe" and n > args.tpe_max_trials)
                and not (
                    storage in ("sqlite", "journal", "postgres")
                    and args.plain_max_trials
                    and n > args.plain_max_trials
                )
            ]
            for start in range(0, n, args.interleave):
                for run in runs:
                    run.step(min(args.interleave, n - start))
            for run in runs:
                row = run.result()
                row["workers"] = 1
                rows.append(row)
                print(
                    f"{row['storage']:16s} {row['sampler']:6s} n={n:6d} median "
                    f"{row['median_ms']:.3f} ms, total/n {row['durable_ms_per_trial']:.3f} ms",
                    flush=True,
                )
        for storage in args.storages if not args.interleave else []:
            for n in args.trials:
                for sampler in args.samplers:
                    if sampler == "tpe" and n > args.tpe_max_trials:
                        continue
                    plain = storage in ("sqlite", "journal", "postgres")
                    if plain and args.plain_max_trials and n > args.plain_max_trials:
                        continue
                    for workers in args.workers:
                        if workers > 1 and storage not in SHARED_STORAGES:
                            continue
                        if workers == 1:
                            run = _Run(sampler, storage, n, Path(tmp), args.postgres_url)
                            row = run.run_all()
                            row["workers"] = 1
                        else:
                            row = run_workers(
                                sampler, storage, n, workers, Path(tmp), args.postgres_url
                            )
                        rows.append(row)
                        print(
                            f"{storage:16s} {sampler:6s} n={n:6d} w={workers} median "
                            f"{row['median_ms']:.3f} ms, total/n "
                            f"{row['durable_ms_per_trial']:.3f} ms",
                            flush=True,
                        )
    by = {(r["storage"], r["n_trials"], r["sampler"], r["workers"]): r for r in rows}
    for r in rows:
        if r["sampler"] == "enas":
            for other in ("random", "tpe"):
                o = by.get((r["storage"], r["n_trials"], other, r["workers"]))
                if o:
                    r[f"enas/{other}"] = r["median_ms"] / o["median_ms"]
    add_ratios(rows)
    print()
    print_table(
        rows,
        [
            "storage",
            "sampler",
            "workers",
            "n_trials",
            "median_ms",
            "p90_ms",
            "tail_median_ms",
            "durable_ms_per_trial",
            "cpu_ms_per_trial",
            "x_memory",
            "x_plain",
            "plain_n",
            "enas/random",
            "enas/tpe",
        ],
    )
    write_json(
        args.json, {"machine": machine_info(), "space": "rnn-12 (23 decisions)", "results": rows}
    )


if __name__ == "__main__":
    main()
