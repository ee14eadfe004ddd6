"""Trials per second of frozen-weight scoring: ``evaluate_many`` against ``evaluate`` in a loop.

A scoring trial (the ``"phased"`` schedule, or ranking architectures on frozen weights) is one
evaluation of one architecture on the same validation minibatch(es). ``evaluate_many`` scores
M architectures at once, running the embedding lookup and input projection once, packing each
weight once for all architectures that use it, and decoding all M outputs in one product
(grouped to at most 256 MiB of logits). This script times both on the same weights and
batches, checks that they agree, and reports architectures per second.

Configurations: ``small`` is ``SupernetEvaluator(RNNCellSpace())`` with its defaults (synthetic
corpus); ``peer`` is ENAS-pytorch's PTB size (12 nodes, 1000/1000, PTB's 10000 words
from ``--data``, batch 64 x BPTT 35) on its initial weights (the cost of scoring does not depend
on training).

Usage::

    python benchmarks/batched_scoring.py                    # both configurations
    python benchmarks/batched_scoring.py --configs small --sizes 1 8 32
    python benchmarks/batched_scoring.py --smoke            # seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ENAS_PYTORCH_PTB  # noqa: E402
from benchmarks._common import PTB_DIR  # noqa: E402
from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402


_DEFAULT_JSON = RESULTS / "batched_scoring.json"


def _evaluator(config: str, seed: int, data: Path) -> Any:
    from optuna_enas import RNNCellSpace
    from optuna_enas import SupernetEvaluator
    from optuna_enas.data import load_corpus
    from optuna_enas.data import synthetic_corpus

    if config == "small":
        return SupernetEvaluator(RNNCellSpace(), seed=seed, device="cpu")
    if config == "peer":
        corpus = load_corpus(data if data.is_dir() else None)
        peer = ENAS_PYTORCH_PTB
        return SupernetEvaluator(
            RNNCellSpace(n_nodes=peer["n_nodes"]),
            corpus,
            supernet_kwargs={"embed_size": peer["embed_size"], "hidden_size": peer["hidden_size"]},
            batch_size=peer["batch_size"],
            bptt=peer["bptt"],
            seed=seed,
            device="cpu",
        )
    assert config == "smoke"
    corpus = synthetic_corpus(n_train_tokens=4000, n_valid_tokens=2000)
    return SupernetEvaluator(
        RNNCellSpace(n_nodes=4),
        corpus,
        supernet_kwargs={"embed_size": 32, "hidden_size": 32},
        batch_size=16,
        bptt=20,
        seed=seed,
        device="cpu",
    )


def _run(
    config: str, sizes: list[int], repeats: int, seed: int, data: Path
) -> list[dict[str, Any]]:
    import numpy as np

    evaluator = _evaluator(config, seed, data)
    space = evaluator.space
    rng = np.random.default_rng(seed)
    evaluator.evaluate(space.sample_uniform(rng))  # warm-up (allocations, oneDNN kernels)
    rows = []
    for m in sizes:
        loop_s, many_s = [], []
        max_rel = 0.0
        for _ in range(repeats):
            archs = [space.sample_uniform(rng) for _ in range(m)]
            start = time.perf_counter()
            one = [evaluator.evaluate(a) for a in archs]
            loop_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            many = evaluator.evaluate_many(archs)
            many_s.append(time.perf_counter() - start)
            rel = max(abs(x - y) / abs(y) for x, y in zip(many, one, strict=True))
            max_rel = max(max_rel, rel)
        loop, batched = statistics.median(loop_s), statistics.median(many_s)
        rows.append(
            {
                "config": config,
                "M": m,
                "loop_s": loop,
                "many_s": batched,
                "loop_archs_per_s": m / loop,
                "many_archs_per_s": m / batched,
                "speedup": loop / batched,
                "max_rel_diff": max_rel,
                "loop_s_all": loop_s,
                "many_s_all": many_s,
            }
        )
        print(
            f"{config} M={m}: loop {m / loop:.2f}/s, many {m / batched:.2f}/s "
            f"(x{loop / batched:.2f}), max rel diff {max_rel:.1e}",
            file=sys.stderr,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--configs", nargs="+", default=["small", "peer"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4, 16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny configuration, seconds")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--data",
        type=Path,
        default=PTB_DIR,
        help="corpus of the peer configuration (default ../shared/data/ptb; synthetic if absent)",
    )
    args = parser.parse_args()
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    configs = ["smoke"] if args.smoke else args.configs
    sizes = [1, 4] if args.smoke else args.sizes
    if any(c not in ("small", "peer", "smoke") for c in configs):
        parser.error("--configs takes small and/or peer")
    load_before = os.getloadavg()
    rows = []
    for config in configs:
        rows += _run(config, sizes, 1 if args.smoke else args.repeats, args.seed, args.data)
    print_table(
        rows, ["config", "M", "loop_archs_per_s", "many_archs_per_s", "speedup", "max_rel_diff"]
    )
    default = (
        _DEFAULT_JSON.with_name("batched_scoring_smoke.json") if args.smoke else _DEFAULT_JSON
    )
    write_json(
        args.json or default,
        {
            "benchmark": "batched_scoring",
            "machine": machine_info(),
            "load_average_at_start": load_before,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
