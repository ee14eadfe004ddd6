"""Data-parallel supernet training with optuna-integration's TorchDistributedTrial (2 CPU ranks).

Two processes (``tests/_workers.py distributed``) form a gloo group through a ``file://`` init
method. Rank 0 owns the study and the ENASSampler; rank 1 passes ``None``. Each rank trains the
sampled architecture on its own half of the training tokens and the gradients are averaged.
"""

from __future__ import annotations

import json
from typing import Any

import _workers
import pytest
import torch
import torch.distributed as dist

from optuna_enas.data import synthetic_corpus
from optuna_enas.training.distributed import shard_training_data


N_TRIALS = 6


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("distributed")
    workers = [
        _workers.Worker(
            "distributed",
            {
                "rank": rank,
                "world_size": 2,
                "init_method": f"file://{tmp / 'rendezvous'}",
                "seed": 0,
                "n_trials": N_TRIALS,
                "out": str(tmp / f"rank{rank}.json"),
            },
            log=tmp / f"rank{rank}.log",
        )
        for rank in range(2)
    ]
    _workers.run_all(workers, timeout=180.0)
    return [json.loads((tmp / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_allreduce_gradients_averages_and_keeps_unused_parameters_gradient_free(
    ranks: list[dict[str, Any]],
) -> None:
    # a: 1 on rank 0, 2 on rank 1; b: 4 on rank 0 only (a zero on rank 1); c: on no rank.
    for r in ranks:
        assert r["probe_grads"] == {"a": [1.5] * 3, "b": [2.0] * 2, "c": None}


def test_ranks_train_the_same_architecture_on_different_shards_with_identical_weights(
    ranks: list[dict[str, Any]],
) -> None:
    rank0, rank1 = ranks
    assert rank0["train_head"] != rank1["train_head"]  # different data
    # The ranks built their supernets from different seeds; rank 0's weights were broadcast.
    assert rank0["initial_digest"] != rank1["initial_digest"]
    log0, log1 = rank0["log"], rank1["log"]
    assert len(log0) == len(log1) == N_TRIALS
    # Both ranks ran the architecture rank 0's ENASSampler chose, trial by trial ...
    assert [e["params"] for e in log0] == [e["params"] for e in log1] == rank0["study_params"]
    assert len({json.dumps(e["params"], sort_keys=True) for e in log0}) > 1
    # ... took one shared-weight step per trial, each with one gradient all-reduce ...
    assert [e["n_steps"] for e in log0] == [e["n_steps"] for e in log1] == [1, 2, 3, 4, 5, 6]
    assert [e["n_reductions"] for e in log1] == [1, 2, 3, 4, 5, 6]
    # ... and hold bitwise-identical weights after every step, which change from step to step.
    assert [e["digest"] for e in log0] == [e["digest"] for e in log1]
    assert len({e["digest"] for e in log0}) == N_TRIALS
    # Same weights, same validation split: the same value; rank 0 reported it to the study.
    assert [e["value"] for e in log0] == [e["value"] for e in log1] == rank0["study_values"]
    assert rank0["n_history"] == N_TRIALS  # the controller learned from every trial


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rank": 2, "world_size": 2}, r"rank must be .*\[0, 2\).*2"),
        ({"rank": 0, "world_size": 0}, "world_size.*0"),
        ({"rank": 0, "world_size": 10_000}, "world_size=10000"),
    ],
    ids=["rank-out-of-range", "zero-world", "shards-too-small"],
)
def test_shard_training_data_bad_arguments(kwargs: dict[str, int], match: str) -> None:
    corpus = synthetic_corpus(n_train_tokens=1000, n_valid_tokens=100, n_test_tokens=100)
    with pytest.raises(ValueError, match=match):
        shard_training_data(corpus, **kwargs)


def test_shard_training_data_partitions_the_training_split_only() -> None:
    corpus = synthetic_corpus(n_train_tokens=1001, n_valid_tokens=100, n_test_tokens=100)
    shards = [shard_training_data(corpus, rank=r, world_size=3) for r in range(3)]
    size = corpus.train.numel() // 3
    assert torch.equal(torch.cat([s.train for s in shards]), corpus.train[: 3 * size])
    assert all(torch.equal(s.valid, corpus.valid) for s in shards)


def test_distributed_helpers_without_process_group_raise() -> None:
    from optuna_enas.training.distributed import GradientAverager
    from optuna_enas.training.distributed import allreduce_gradients

    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="GradientAverager.*init_process_group"):
        GradientAverager(torch.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="allreduce_gradients.*init_process_group"):
        allreduce_gradients(torch.nn.Linear(2, 2))


def test_user_model_data_parallel_every_rank_on_rank_0s_path(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("distributed_model")
    workers = [
        _workers.Worker(
            "distributed_model",
            {
                "rank": rank,
                "world_size": 2,
                "init_method": f"file://{tmp / 'rendezvous'}",
                "seed": 0,
                "n_trials": 5,
                "out": str(tmp / f"rank{rank}.json"),
            },
            log=tmp / f"rank{rank}.log",
        )
        for rank in range(2)
    ]
    _workers.run_all(workers, timeout=180.0)
    rank0, rank1 = (json.loads((tmp / f"rank{r}.json").read_text()) for r in range(2))
    log0, log1 = rank0["log"], rank1["log"]
    assert [e["params"] for e in log0] == [e["params"] for e in log1] == rank0["study_params"]
    assert [e["n_steps"] for e in log1] == [1, 2, 3, 4, 5]
    # Different shards, averaged gradients: bitwise-identical weights after every step.
    assert [e["digest"] for e in log0] == [e["digest"] for e in log1]
    assert len({e["digest"] for e in log0}) == 5
    assert [e["value"] for e in log0] == [e["value"] for e in log1]
