"""A relaxation applied to choice modules against the hand-written relaxed supernets (#19).

The ENAS macro and micro supernets are written with the choice primitives of
:mod:`optuna_enas.nn`, so :class:`~optuna_enas.oneshot.DARTSRelaxation` and
:class:`~optuna_enas.oneshot.DSONASRelaxation` relax them without a relaxed copy of the network.
This measures, at the CLI's default sizes (macro 6 layers, micro 3 nodes and 2 normal cells,
8 filters, batch 32 on the embedded digits), the seconds per training step (forward and
backward of the mixed network, no optimizer; median over ``--steps`` after ``--warmup``, the
four variants of a space interleaved step by step in one process, one torch thread) of

* ``builtin``: :func:`~optuna_enas.oneshot.build_relaxed` (``RelaxedMacroSupernet`` /
  ``RelaxedMicroSupernet``);
* ``nn``: the discrete ``MacroSupernet`` / ``MicroSupernet`` with the relaxation applied
  (``relaxation.mix()`` before each forward),

and the number of architecture parameters. Macro: the two compute the same function
(``tests/test_nn_oneshot.py`` checks it). Micro: they do not; the built-in is DARTS's per-edge
mixture (every earlier node to every node, one op vector per edge, top-2 derivation), the
``nn`` one relaxes the ENAS decisions (per input slot: a mixture over the inputs, each through
the slot's op mixture). Usage::

    OMP_NUM_THREADS=1 python benchmarks/nn_relax_cost.py             # about 2 minutes
    OMP_NUM_THREADS=1 python benchmarks/nn_relax_cost.py --steps 2   # smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402


_DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "nn_relax_cost.json"
BATCH_SIZE = 32
VARIANTS = ("builtin_darts", "nn_darts", "builtin_dsonas", "nn_dsonas")


def _build(space_name: str, variant: str) -> tuple[Any, Any, Any]:
    """``(model, relaxation or None, task)`` of one variant."""
    import torch

    from optuna_enas.oneshot import DARTSRelaxation
    from optuna_enas.oneshot import DSONASRelaxation
    from optuna_enas.oneshot import build_relaxed
    from optuna_enas.spaces import make_space
    from optuna_enas.supernet._macro import MacroSupernet
    from optuna_enas.supernet._micro import MicroSupernet
    from optuna_enas.training._tasks import default_data
    from optuna_enas.training._tasks import make_task

    if space_name == "macro":
        space = make_space("macro", n_layers=6)
        kwargs: dict[str, Any] = {"n_filters": 8}
    else:
        space = make_space("micro", n_nodes=3)
        kwargs = {"n_filters": 8, "n_layers": 2}
    data = default_data(space, None)
    gen = torch.Generator().manual_seed(0)
    method = variant.split("_")[1]
    task = make_task(data, batch_size=BATCH_SIZE, bptt=1, device=torch.device("cpu"))
    if variant.startswith("builtin"):
        model = build_relaxed(space, data, relaxation=method, generator=gen, **kwargs)
        return model.train(), None, task
    cls = MacroSupernet if space_name == "macro" else MicroSupernet
    in_channels = int(data.train_x.shape[1])
    net = cls(space, in_channels=in_channels, generator=gen, **kwargs)  # type: ignore[arg-type]
    relax = DARTSRelaxation(net, generator=gen) if method == "darts" else DSONASRelaxation(net)
    return net.train(), relax, task


def _n_arch(model: Any, relax: Any) -> int:
    params = relax.arch_parameters() if relax is not None else model.arch_parameters()
    return sum(p.numel() for p in params)


def _step(model: Any, relax: Any, task: Any, rng: Any) -> None:
    if relax is not None:
        relax.mix()
    loss = task.train_loss(model, None, rng)
    loss.backward()
    model.zero_grad(set_to_none=True)
    if relax is not None:
        relax.zero_grad(set_to_none=True)


def run(space_name: str, steps: int, warmup: int) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    built = {v: _build(space_name, v) for v in VARIANTS}
    rngs = {v: np.random.default_rng(0) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for i in range(warmup + steps):
        for v in VARIANTS:
            t0 = time.perf_counter()
            _step(*built[v], rngs[v])
            if i >= warmup:
                times[v].append(time.perf_counter() - t0)
    rows = []
    for v in VARIANTS:
        model, relax, _ = built[v]
        rows.append(
            {
                "space": space_name,
                "variant": v,
                "n_arch": _n_arch(model, relax),
                "step_s": statistics.median(times[v]),
                "step_s_min": min(times[v]),
                "steps": len(times[v]),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--spaces", nargs="+", default=["macro", "micro"])
    parser.add_argument("--json", type=Path, default=_DEFAULT_JSON)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for space_name in args.spaces:
        rows.extend(run(space_name, args.steps, args.warmup))
    print_table(rows, ["space", "variant", "n_arch", "step_s", "step_s_min", "steps"])
    write_json(args.json, {"machine": machine_info(), "batch_size": BATCH_SIZE, "rows": rows})


if __name__ == "__main__":
    main()
