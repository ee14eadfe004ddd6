"""Fault tolerance: killed workers, failing objectives, interrupted checkpoints.

A crash in the middle of a supernet checkpoint write is covered where the checkpoint is written:
``tests/test_checkpoint.py::test_exception_during_write_keeps_previous_checkpoint`` (an
exception after a torn write) and ``::test_kill_mid_write_leaves_a_loadable_checkpoint`` (a
writer process SIGKILLed while it saves); ``SupernetEvaluator.save`` goes through the same
``save_checkpoint``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import _workers
import optuna
import pytest
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas.data import synthetic_corpus
from optuna_enas.training._evaluator import SupernetEvaluator
from optuna_enas.training.distributed import state_digest


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = _workers.SPACE
CONFIG = _workers.CONFIG


def _storage_url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path}/faults.db"


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize(
    "kind",
    ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])],
)
def test_killed_worker_is_retried_with_same_architecture_and_restart_resumes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _storage_url(request, kind, tmp_path)
    name = f"faults-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=url, direction="minimize")
    storage = {"url": url, "heartbeat": True}  # heartbeat 1 s, grace 2 s, max_retry=1
    victim_ckpt = tmp_path / "victim.pt"
    marker = tmp_path / "victim-blocked.json"
    block_at = 3  # the victim completes 3 trials, then blocks inside its 4th

    def fault_args(role: str, seed: int, ckpt: Path, **extra: Any) -> dict[str, Any]:
        out = str(tmp_path / f"{role}.json")
        return {"role": role, "seed": seed, "storage": storage, "study": name, "out": out,
                "checkpoint": str(ckpt), **extra}  # fmt: skip

    victim = _workers.Worker(
        "fault",
        fault_args("victim", 0, victim_ckpt, block_at=block_at, marker=str(marker)),
        log=tmp_path / "victim.log",
    )
    survivor = _workers.Worker(
        "fault",
        fault_args(
            "survivor",
            1,
            tmp_path / "survivor.pt",
            min_trials=5,
            deadline=150.0,
            deadline_after=str(marker),
        ),
        log=tmp_path / "survivor.log",
    )
    try:
        blocked = _workers.wait_for_file(marker, 120.0, victim)
        killed_at = datetime.now()
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.proc.wait(timeout=30) == -signal.SIGKILL
        _workers.run_all([survivor], timeout=180.0)
    finally:
        victim.kill()
        survivor.kill()

    # -- the killed trial was failed by the survivor's heartbeat check and retried once -------
    trials = study.get_trials(deepcopy=False)
    killed = trials[blocked["trial"]]
    assert killed.state == TrialState.FAIL
    retried = [
        t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
    ]
    assert len(retried) == 1
    retry = retried[0]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == killed.number
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params == blocked["params"]  # the same architecture
    # It kept the killed trial's sampling record, so every controller learns the retry with
    # the log-probabilities of the policy that chose the architecture.
    assert retry.system_attrs["enas:sample"] == killed.system_attrs["enas:sample"]
    # Nothing else failed, nothing is left running or waiting.
    assert [t.number for t in trials if t.state != TrialState.COMPLETE] == [killed.number]
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    # The survivor kept going after the kill.
    survivor_report = json.loads((tmp_path / "survivor.json").read_text())
    assert survivor_report["n_calls"] >= 5
    assert any(t.datetime_start is not None and t.datetime_start > killed_at for t in trials)

    # -- the controller every sampler rebuilds: the FAIL trial left out, the retry in ---------
    replay = ENASSampler(SPACE, seed=0, config=CONFIG)
    # Bitwise equality across processes needs the same intra-op thread count (workers use 1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        replay.sync(optuna.load_study(study_name=name, storage=url, sampler=replay))
    finally:
        torch.set_num_threads(threads)
    finished = sorted(t.number for t in trials if t.state == TrialState.COMPLETE)
    assert sorted(h["trial"] for h in replay.history) == finished
    expected_digest = state_digest(replay.controller)

    # -- a restarted victim (new process, same seed) resumes supernet and controller ----------
    restart = _workers.Worker(
        "fault",
        fault_args("restart", 0, victim_ckpt, n_trials=3),
        log=tmp_path / "restart.log",
    )
    _workers.run_all([restart], timeout=120.0)
    report = json.loads((tmp_path / "restart.json").read_text())
    assert report["resumed_n_calls"] == blocked["n_calls"] == block_at
    assert report["resumed_supernet_digest"] == blocked["supernet_digest"]
    assert report["replayed"] == finished
    assert report["controller_digest"] == expected_digest  # bitwise, across processes
    assert report["evaluator_n_calls"] == block_at + 3
    after = study.get_trials(deepcopy=False)
    assert len(after) == len(trials) + 3
    assert all(t.state == TrialState.COMPLETE for t in after[len(trials) :])


def _state(sampler: ENASSampler) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sampler.controller.state_dict().items()}


@pytest.mark.parametrize("failure", ["raise", "nan", "inf"])
def test_failed_or_non_finite_evaluator_trials_never_update_the_controller(
    failure: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/bad.db"
    # n_aggregate=1: every consumed trial steps Adam, so a learned bad trial would show.
    config = ControllerConfig(lstm_size=16, learning_rate=0.02, n_aggregate=1)
    sampler = ENASSampler(SPACE, seed=0, config=config)
    study = optuna.create_study(
        storage=url, study_name="s", sampler=sampler, pruner=optuna.pruners.NopPruner()
    )
    corpus = synthetic_corpus(n_train_tokens=4000, n_valid_tokens=400, n_test_tokens=400)
    evaluator = SupernetEvaluator(
        SPACE,
        corpus,
        supernet_kwargs=_workers.SUPERNET_KWARGS,
        seed=0,
        **_workers.EVALUATOR_KWARGS,
    )
    study.optimize(evaluator, n_trials=3)
    before, baseline, n_history = _state(sampler), sampler.baseline, len(sampler.history)

    def bad(trial: optuna.Trial) -> float:
        value = evaluator(trial)  # the shared weights train as usual ...
        if failure == "raise":  # ... then the objective fails after training,
            raise RuntimeError("CUDA out of memory (simulated)")
        return value * math.nan if failure == "nan" else math.inf  # or its metric breaks.

    study.optimize(bad, n_trials=2, catch=(RuntimeError,))
    bad_trials = study.trials[-2:]
    if failure == "inf":
        assert [t.state for t in bad_trials] == [TrialState.COMPLETE] * 2
        assert [t.value for t in bad_trials] == [math.inf, math.inf]
    else:
        assert [t.state for t in bad_trials] == [TrialState.FAIL] * 2
    after = _state(sampler)
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sampler.baseline == baseline
    assert len(sampler.history) == n_history
    assert all("enas:stats" not in t.system_attrs for t in bad_trials)

    # The study goes on and learns again.
    study.optimize(evaluator, n_trials=2)
    assert [t.state for t in study.trials[-2:]] == [TrialState.COMPLETE] * 2
    assert len(sampler.history) == n_history + 2
    # A resumed sampler replays the same trials: the bad ones skipped there too.
    resumed = ENASSampler(SPACE, seed=0, config=config)
    resumed.sync(optuna.load_study(study_name="s", storage=url, sampler=resumed))
    assert [h["trial"] for h in resumed.history] == [0, 1, 2, 5, 6]
    assert all(
        torch.equal(a, b)
        for a, b in zip(_state(resumed).values(), _state(sampler).values(), strict=True)
    )
    assert resumed.baseline == sampler.baseline
