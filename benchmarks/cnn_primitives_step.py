"""One shared-weight training step of the CNN supernets before and after the choice primitives.

Issue #19 rebuilt :class:`~optuna_enas.supernet.MicroSupernet` and
:class:`~optuna_enas.supernet.MacroSupernet` on :mod:`optuna_enas.nn` (``LayerChoice``,
``InputChoice``): each forward now activates the architecture in every choice module (about
400 for the default micro supernet) and routes through them. This script times one training
step of both versions side by side in one process: the old modules are read from git
(``git show {commit}:optuna_enas/supernet/_micro.py``, default: fbb0e32, the last commit
before the rebuild) into a temporary directory and imported from there.

A step is what the trainer does: a new uniformly random architecture, ``zero_grad``, forward
``supernet(x, arch)``, cross-entropy, backward, SGD step. Both versions get the same
initialisation (same generator seed: the parameters are created in the same order), the same
batch and the same architectures. Rounds alternate which version goes first; the table shows
the median seconds per step and the median over rounds of the per-round ratio new / old, in
CPU seconds of this process (``time.process_time``: with one thread, the time the step
computed, not the time other processes on a shared machine took from it); the wall-clock
medians are kept in the JSON.

Configurations: ``tiny`` (the tests' size: ``n_nodes=2, n_filters=4, n_layers=1``, 8x8 images,
batch 16: the Python overhead dominates, the worst case for the ratio), ``digits`` (the default
supernet, 20 filters, 6 + 2 cells, 5 blocks, on the digits images, 1x8x8, batch 64 as the
evaluator) and ``cifar`` (the same supernet on 3x32x32, batch 32).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/cnn_primitives_step.py            # a few minutes
    OMP_NUM_THREADS=1 python benchmarks/cnn_primitives_step.py --smoke    # seconds
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import MacroSpace  # noqa: E402
from optuna_enas import MicroSpace  # noqa: E402
from optuna_enas.supernet import MacroSupernet  # noqa: E402
from optuna_enas.supernet import MicroSupernet  # noqa: E402


_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT_JSON = _ROOT / "benchmarks" / "results" / "cnn_primitives_step.json"
_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "micro": {"space": {"n_nodes": 2}, "net": {"n_filters": 4, "n_layers": 1}},
        "macro": {"space": {"n_layers": 4}, "net": {"n_filters": 4}},
        "image": (3, 8, 8),
        "batch": 16,
    },
    "digits": {
        "micro": {"space": {}, "net": {}},
        "macro": {"space": {}, "net": {}},
        "image": (1, 8, 8),
        "batch": 64,
    },
    "cifar": {
        "micro": {"space": {}, "net": {}},
        "macro": {"space": {}, "net": {}},
        "image": (3, 32, 32),
        "batch": 32,
    },
}


def _old_module(commit: str, name: str, tmp: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:optuna_enas/supernet/_{name}.py"],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp / f"old_{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"old_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _step(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, arch: Any
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one training step."""
    cpu, wall = time.process_time(), time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x, arch), y)
    loss.backward()
    opt.step()
    return time.process_time() - cpu, time.perf_counter() - wall


def _measure(kind: str, config: str, old: ModuleType, steps: int, rounds: int) -> dict[str, Any]:
    cfg = _CONFIGS[config]
    c, h, w = cfg["image"]
    space_cls = MicroSpace if kind == "micro" else MacroSpace
    new_cls = MicroSupernet if kind == "micro" else MacroSupernet
    old_cls = old.MicroSupernet if kind == "micro" else old.MacroSupernet
    space = space_cls(**cfg[kind]["space"])
    kw = {"in_channels": c, "n_classes": 10, **cfg[kind]["net"]}
    models = {
        "old": old_cls(space, generator=torch.Generator().manual_seed(0), **kw),
        "new": new_cls(space, generator=torch.Generator().manual_seed(0), **kw),
    }
    n_params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    assert n_params["old"] == n_params["new"], n_params
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(cfg["batch"], c, h, w, generator=gen)
    y = torch.randint(0, 10, (cfg["batch"],), generator=gen)
    rng = np.random.default_rng(0)
    archs = [space.sample_uniform(rng) for _ in range((rounds + 1) * steps)]
    for k in models:  # warm-up
        _step(models[k], opts[k], x, y, archs[0])
    times: dict[str, list[float]] = {"old": [], "new": []}
    walls: dict[str, list[float]] = {"old": [], "new": []}
    ratios = []
    for r in range(rounds):
        batch = archs[(r + 1) * steps : (r + 2) * steps]
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        per: dict[str, float] = {}
        for k in order:
            ts = [_step(models[k], opts[k], x, y, a) for a in batch]
            times[k].extend(t for t, _ in ts)
            walls[k].extend(t for _, t in ts)
            per[k] = statistics.median(t for t, _ in ts)
        ratios.append(per["new"] / per["old"])
    # Activation alone (the new cost): one activate per step.
    new = models["new"]
    t0 = time.process_time()
    for a in archs:
        new.activate(a)
    activate = (time.process_time() - t0) / len(archs)
    return {
        "space": kind,
        "config": config,
        "batch": cfg["batch"],
        "image": f"{c}x{h}x{w}",
        "n_params": n_params["new"],
        "n_choices": len(new.choices),
        "old_s": statistics.median(times["old"]),
        "new_s": statistics.median(times["new"]),
        "ratio_new_old": statistics.median(ratios),
        "activate_ms": 1e3 * activate,
        "old_wall_s": statistics.median(walls["old"]),
        "new_wall_s": statistics.median(walls["new"]),
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commit", default="fbb0e32", help="the commit of the old modules")
    parser.add_argument("--configs", nargs="+", default=list(_CONFIGS), choices=list(_CONFIGS))
    parser.add_argument("--spaces", nargs="+", default=["micro", "macro"])
    parser.add_argument("--steps", type=int, default=5, help="steps per version per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny config, 2 rounds of 2 steps")
    parser.add_argument("--json", default=str(_DEFAULT_JSON))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.configs, args.steps, args.rounds = ["tiny"], 2, 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = {k: _old_module(args.commit, k, Path(tmp)) for k in ("micro", "macro")}
        for config in args.configs:
            for kind in args.spaces:
                steps = args.steps if config != "cifar" else max(1, args.steps // 2)
                row = _measure(kind, config, old[kind], steps, args.rounds)
                rows.append(row)
                print_table(
                    [row],
                    [
                        "space",
                        "config",
                        "n_params",
                        "n_choices",
                        "old_s",
                        "new_s",
                        "ratio_new_old",
                        "activate_ms",
                    ],
                )
                sys.stdout.flush()
    print()
    print_table(
        rows,
        [
            "space",
            "config",
            "n_params",
            "n_choices",
            "old_s",
            "new_s",
            "ratio_new_old",
            "activate_ms",
        ],
    )
    if not args.smoke:
        write_json(
            args.json,
            {
                "machine": machine_info(),
                "old_commit": args.commit,
                "threads": args.threads,
                "rows": rows,
            },
        )


if __name__ == "__main__":
    main()
