"""Worker processes for the multi-worker, fault and distributed tests (not a test module).

Run as ``python tests/_workers.py COMMAND JSON_ARGS``; each command writes its findings as JSON
to ``args["out"]`` for the parent test to check.

* ``toy``: one ENASSampler worker on a shared study with an instant objective.
* ``fault``: a worker whose objective is a real SupernetEvaluator with checkpoints; the
  ``victim`` role blocks inside a trial so that the parent can SIGKILL it.
* ``distributed``: one rank of a 2-rank gloo group training a supernet data-parallel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture


SPACE = RNNCellSpace(n_nodes=4)
CONFIG = ControllerConfig(lstm_size=16, learning_rate=0.02, n_aggregate=5)
# Tiny supernet and corpus: a trial (one SGD step, one validation batch) takes milliseconds.
SUPERNET_KWARGS = {"embed_size": 16, "hidden_size": 16}
EVALUATOR_KWARGS: dict[str, Any] = {"batch_size": 8, "bptt": 10, "n_eval_batches": 1}
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def relu_count(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE, record=False)
    return float(sum(v == "relu" for _, v in arch.params))


def make_storage(spec: dict[str, Any]) -> optuna.storages.BaseStorage:
    """``{"url": ...}`` (optionally with heartbeats and the retry callback) or ``{"journal"}``."""
    if "journal" in spec:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(spec["journal"]))
    if spec.get("heartbeat"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                spec["url"],
                heartbeat_interval=1,
                grace_period=2,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=1
                ),
            )
    return optuna.storages.RDBStorage(spec["url"])


def small_corpus() -> Any:
    from optuna_enas.data import synthetic_corpus

    return synthetic_corpus(n_train_tokens=4000, n_valid_tokens=400, n_test_tokens=400)


def write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data))
    os.replace(tmp, path)  # the parent never reads a half-written file


def wait_for_finished(study: optuna.Study, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done = len(study.get_trials(deepcopy=False, states=_FINISHED))
        if done >= n or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


# -- commands --------------------------------------------------------------------------------
def toy(args: dict[str, Any]) -> None:
    """Run ``n_trials`` trials, wait until the study has ``n_total`` finished ones, sync."""
    sampler = ENASSampler(
        SPACE, seed=args["worker"], config=CONFIG, rule=args.get("rule", "reinforce")
    )
    study = optuna.load_study(
        study_name=args["study"], storage=make_storage(args["storage"]), sampler=sampler
    )
    t0 = time.monotonic()
    study.optimize(relu_count, n_trials=args["n_trials"])
    elapsed = time.monotonic() - t0
    n_seen = wait_for_finished(study, args["n_total"], args.get("barrier_timeout", 300.0))
    n_synced = sampler.sync(study)
    write_json(
        args["out"],
        {
            "worker": args["worker"],
            "history": sorted(h["trial"] for h in sampler.history),
            "n_finished_at_barrier": n_seen,
            "n_synced_at_end": n_synced,
            "n_off_policy": sum(not h["on_policy"] for h in sampler.history),
            "optimize_seconds": elapsed,
        },
    )


def fault(args: dict[str, Any]) -> None:
    """A ``victim``, ``survivor`` or ``restart`` worker on a heartbeat-enabled RDB study."""
    from optuna_enas.training._evaluator import SupernetEvaluator
    from optuna_enas.training.distributed import state_digest

    role = args["role"]
    sampler = ENASSampler(SPACE, seed=args["seed"], config=CONFIG)
    study = optuna.load_study(
        study_name=args["study"],
        storage=make_storage(args["storage"]),
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),  # every trial COMPLETE unless it is killed
    )
    ckpt = Path(args["checkpoint"])
    evaluator = SupernetEvaluator(
        SPACE,
        small_corpus(),
        supernet_kwargs=SUPERNET_KWARGS,
        seed=args["seed"],
        checkpoint_path=ckpt,
        checkpoint_every=1,
        resume_from=ckpt if ckpt.exists() else None,
        **EVALUATOR_KWARGS,
    )
    report: dict[str, Any] = {"role": role, "pid": os.getpid()}
    if role == "restart":
        # Resume: the supernet from its checkpoint (above), the controller by replaying the
        # study (sampling does it by itself; done here first to record what it rebuilt).
        report["resumed_n_calls"] = evaluator.n_calls
        report["resumed_supernet_digest"] = state_digest(evaluator.supernet)
        report["n_replayed"] = sampler.sync(study)
        report["replayed"] = sorted(h["trial"] for h in sampler.history)
        report["controller_digest"] = state_digest(sampler.controller)
        report["baseline"] = sampler.baseline
    calls = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal calls
        if role == "victim" and calls == args["block_at"]:
            suggest_architecture(trial, SPACE)
            write_json(
                args["marker"],
                {
                    "trial": trial.number,
                    "params": trial.params,
                    "n_calls": evaluator.n_calls,
                    "supernet_digest": state_digest(evaluator.supernet),
                },
            )
            time.sleep(600)  # the parent kills us here
        value = evaluator(trial)
        calls += 1
        if role == "survivor":
            time.sleep(0.05)  # let the heartbeat grace period pass while we are still running
        return value

    def stop_when_retried(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal deadline
        after = args.get("deadline_after")
        if after is not None and not Path(after).exists():
            # The clock starts once the victim is blocked: on a loaded machine the victim may
            # need longer than the whole deadline to get there (seen once in CI).
            deadline = time.monotonic() + args.get("deadline", 120.0)
            return
        if calls < args.get("min_trials", 0):
            return
        retried = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
        ]
        if retried or time.monotonic() > deadline:
            study.stop()

    deadline = time.monotonic() + args.get("deadline", 120.0)
    callbacks = [stop_when_retried] if role == "survivor" else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=args.get("n_trials"), callbacks=callbacks)
    report["n_calls"] = calls
    report["evaluator_n_calls"] = evaluator.n_calls
    write_json(args["out"], report)


def distributed(args: dict[str, Any]) -> None:
    """One rank: rank 0 owns the study and ENASSampler, the others follow."""

    from optuna_enas.training._evaluator import SupernetEvaluator
    from optuna_enas.training.distributed import allreduce_gradients
    from optuna_enas.training.distributed import make_distributed_objective
    from optuna_enas.training.distributed import shard_training_data
    from optuna_enas.training.distributed import state_digest

    rank, world = _join_gloo(args)
    # allreduce_gradients alone: a gradient on every rank, on rank 0 only, and on none.
    probe = torch.nn.ParameterDict(
        {name: torch.nn.Parameter(torch.zeros(n)) for name, n in (("a", 3), ("b", 2), ("c", 1))}
    )
    probe["a"].grad = torch.full((3,), float(rank + 1))
    if rank == 0:
        probe["b"].grad = torch.full((2,), 4.0)
    allreduce_gradients(probe)
    grads = {k: None if p.grad is None else p.grad.tolist() for k, p in probe.items()}

    data = shard_training_data(small_corpus(), rank=rank, world_size=world)
    # Each rank seeds its evaluator differently: the broadcast from rank 0 must fix the weights.
    evaluator = SupernetEvaluator(
        SPACE, data, supernet_kwargs=SUPERNET_KWARGS, seed=args["seed"] + rank, **EVALUATOR_KWARGS
    )
    initial = state_digest(evaluator.supernet)
    objective = make_distributed_objective(evaluator)
    log: list[dict[str, Any]] = []

    def traced(trial: optuna.Trial | None) -> float:
        value = objective(trial)
        log.append(
            {
                "params": objective.last_params,
                "value": value,
                "digest": state_digest(evaluator.supernet),
                "n_steps": evaluator.n_steps,
                "n_reductions": objective.averager.n_reductions,
            }
        )
        return value

    report: dict[str, Any] = {"rank": rank, "initial_digest": initial, "probe_grads": grads}
    if rank == 0:
        sampler = ENASSampler(SPACE, seed=args["seed"], config=CONFIG)
        study = optuna.create_study(direction=evaluator.direction, sampler=sampler)
        study.optimize(traced, n_trials=args["n_trials"])
        report["study_params"] = [t.params for t in study.trials]
        report["study_values"] = [t.value for t in study.trials]
        report["n_history"] = len(sampler.history)
    else:
        for _ in range(args["n_trials"]):
            traced(None)
    report["log"] = log
    report["train_head"] = data.train[:50].tolist()
    _leave_gloo(args["out"], report)


def distributed_model(args: dict[str, Any]) -> None:
    """One rank of a user-model (ModelEvaluator) search: rank 0 decides every architecture."""
    from torch.utils.data import DataLoader
    from torch.utils.data import TensorDataset

    from optuna_enas.nn import ElasticLinear
    from optuna_enas.nn import LayerChoice
    from optuna_enas.nn import Supernet
    from optuna_enas.nn import ValueChoice
    from optuna_enas.training._model_evaluator import ModelEvaluator
    from optuna_enas.training.distributed import make_distributed_objective
    from optuna_enas.training.distributed import state_digest

    rank, world = _join_gloo(args)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = ValueChoice("width", [4, 8])
            self.inp = ElasticLinear(6, width)
            self.act = LayerChoice("act", {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()})
            self.out = ElasticLinear(width, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.act(self.inp(x)))

    torch.manual_seed(args["seed"] + rank)  # different inits: the broadcast must fix them
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    y = (x[:, 0] > 0).long()
    shard = slice(rank * 32, rank * 32 + 32)  # each rank its own training half
    train = DataLoader(TensorDataset(x[shard], y[shard]), batch_size=8)
    valid = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    supernet = Supernet(Net())
    evaluator = ModelEvaluator(supernet, train, valid, metric="accuracy", seed=0)
    objective = make_distributed_objective(evaluator)
    log: list[dict[str, Any]] = []

    def traced(trial: optuna.Trial | None) -> float:
        value = objective(trial)
        log.append(
            {
                "params": objective.last_params,
                "value": value,
                "digest": state_digest(supernet),
                "n_steps": evaluator.n_steps,
            }
        )
        return value

    report: dict[str, Any] = {"rank": rank}
    if rank == 0:
        sampler = ENASSampler(supernet.space, seed=args["seed"])
        study = optuna.create_study(direction=evaluator.direction, sampler=sampler)
        study.optimize(traced, n_trials=args["n_trials"])
        report["study_params"] = [t.params for t in study.trials]
    else:
        for _ in range(args["n_trials"]):
            traced(None)
    report["log"] = log
    _leave_gloo(args["out"], report)


def _join_gloo(args: dict[str, Any]) -> tuple[int, int]:
    """Join the 2-rank gloo group of a distributed test; ``(rank, world_size)``."""
    import datetime

    import torch.distributed as dist

    rank, world = args["rank"], args["world_size"]
    dist.init_process_group(
        "gloo",
        init_method=args["init_method"],
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    return rank, world


def _leave_gloo(out: str, report: dict[str, Any]) -> None:
    """Write the rank's report, wait for the others, leave the group and the process."""
    import torch.distributed as dist

    write_json(out, report)
    dist.barrier()
    dist.destroy_process_group()
    _exit_now()


def _exit_now() -> None:
    """Leave without the interpreter's teardown: gloo's threads can abort it after the process
    group is destroyed ("terminate called without an active exception", SIGABRT; seen once in
    five suite runs), although every result is written by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# -- used by the test modules (``import _workers``) --------------------------------------------
_REPO_ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A worker process started by a test; its output goes to ``log``."""

    def __init__(self, command: str, args: dict[str, Any], *, log: Path) -> None:
        self.log = log
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["OMP_NUM_THREADS"] = "1"
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), command, json.dumps(args)],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def wait(self, timeout: float) -> int:
        """Wait for the exit; kill the process and fail the test after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"worker {self.pid} still running after {timeout} s; its log:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def run_all(workers: list[Worker], timeout: float) -> None:
    """Wait for every worker (``timeout`` in all); each must exit with status 0."""
    deadline = time.monotonic() + timeout
    try:
        for w in workers:
            rc = w.wait(max(1.0, deadline - time.monotonic()))
            assert rc == 0, f"worker {w.pid} exited with {rc}; its log:\n{w.tail()}"
    finally:
        for w in workers:
            w.kill()


def wait_for_file(path: Path, timeout: float, worker: Worker) -> dict[str, Any]:
    """Read the JSON ``path`` once it exists; fail early if ``worker`` dies first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker {worker.pid} exited early; its log:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear in {timeout} s:\n{worker.tail()}")
        time.sleep(0.05)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def main() -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    if command == "toy":
        toy(args)
    elif command == "fault":
        fault(args)
    elif command == "distributed":
        distributed(args)
    elif command == "distributed_model":
        distributed_model(args)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
