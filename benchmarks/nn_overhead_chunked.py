"""A prototype of the fix BENCHMARKS §8 suggests: elastic weights stored as prefix chunks.

    OMP_NUM_THREADS=1 python benchmarks/nn_overhead_chunked.py

Today an ``ElasticLinear`` narrower than its maximum is a slice of one weight tensor, so its
gradient is materialised at full size and SGD's momentum and weight decay run over every
entry (``lm-wide`` of ``nn_overhead.py``: 1.24x the exported module's step). Here the two
elastic layers of ``lm-wide`` are replaced by ``ChunkedLinear``: the weight is a grid of
parameters split at the ``ValueChoice``'s values, a width concatenates the chunks below it,
and unused chunks get no gradient at all. Both supernets train the same path against the
exported plain module (interleaved rounds, 1 thread, CPU-time ratios as in nn_overhead.py).
Writes ``benchmarks/results/nn_overhead_chunked.json``. A prototype for the measurement only:
``Supernet.export`` does not know ``ChunkedLinear``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchmarks.nn_overhead as bench  # noqa: E402
from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas.nn import ElasticLinear  # noqa: E402
from optuna_enas.nn import Supernet  # noqa: E402
from optuna_enas.nn import ValueChoice  # noqa: E402
from optuna_enas.nn._choices import resolve  # noqa: E402


class ChunkedLinear(nn.Module):
    """``ElasticLinear`` whose weight is a grid of chunks split at the widths' values."""

    def __init__(self, fin: int | ValueChoice, fout: int | ValueChoice) -> None:
        super().__init__()
        self.fin, self.fout = fin, fout
        self.ob = sorted(fout.values) if isinstance(fout, ValueChoice) else [fout]
        self.ib = sorted(fin.values) if isinstance(fin, ValueChoice) else [fin]
        ref = nn.Linear(max(self.ib), max(self.ob))
        self.w = nn.ParameterList()
        self.b = nn.ParameterList()
        o0 = 0
        for o in self.ob:
            i0 = 0
            for i in self.ib:
                self.w.append(nn.Parameter(ref.weight.detach()[o0:o, i0:i].clone()))
                i0 = i
            self.b.append(nn.Parameter(ref.bias.detach()[o0:o].clone()))
            o0 = o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        no = self.ob.index(resolve(self.fout)) + 1
        ni = self.ib.index(resolve(self.fin)) + 1
        rows = []
        for a in range(no):
            parts = [self.w[a * len(self.ib) + c] for c in range(ni)]
            rows.append(parts[0] if ni == 1 else torch.cat(parts, 1))
        w = rows[0] if no == 1 else torch.cat(rows, 0)
        b = self.b[0] if no == 1 else torch.cat(list(self.b[:no]))
        return F.linear(x, w, b)


def _chunked_model() -> nn.Module:
    model = bench._model("lm-wide", False)
    assert isinstance(model, bench.LM)
    ffn = model.ffn
    assert isinstance(ffn, nn.Sequential)
    first = ffn[0]
    assert isinstance(first, ElasticLinear)
    size, width = first.in_features, first.out_features
    ffn[0] = ChunkedLinear(size, width)
    ffn[2] = ChunkedLinear(width, size)
    return model


def _measure(make: Callable[[], nn.Module], label: str, rounds: int) -> dict[str, Any]:
    batches, loss_fn = bench._data("lm-wide", False)
    supernet = Supernet(make())
    arch = supernet.activate(bench._path("lm-wide", supernet, False))
    supernet.train()
    params = supernet.path_parameters()
    opt = bench._sgd(params)
    plain = Supernet(bench._model("lm-wide", False)).export(arch).train()
    plain_opt = bench._sgd(plain.parameters())

    def step_supernet(k: int) -> None:
        x, y = batches[k % 4]
        opt.zero_grad(set_to_none=True)
        loss_fn(supernet(x), y).backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    def step_plain(k: int) -> None:
        bench._plain_step(plain, plain_opt, loss_fn, batches[k % 4])

    steps = (step_supernet, step_plain)
    for k in range(2):  # warm-up
        for fn in steps:
            fn(k)
    cpu: list[list[float]] = [[], []]
    for r in range(rounds):
        for j in (0, 1) if r % 2 == 0 else (1, 0):
            start = time.process_time()
            for k in range(2):
                steps[j](k)
            cpu[j].append((time.process_time() - start) / 2)
    return {
        "variant": label,
        "supernet cpu ms": 1000 * statistics.median(cpu[0]),
        "plain cpu ms": 1000 * statistics.median(cpu[1]),
        "supernet/plain": statistics.median(a / b for a, b in zip(*cpu, strict=True)),
        "grad entries": sum(p.grad.numel() for p in supernet.parameters() if p.grad is not None),
        "path weights": sum(p.numel() for p in plain.parameters()),
    }


def main() -> None:
    torch.set_num_threads(1)
    rows = [
        _measure(lambda: bench._model("lm-wide", False), "sliced (ElasticLinear today)", 10),
        _measure(_chunked_model, "chunked prototype", 10),
    ]
    print_table(rows, list(rows[0]))
    write_json(
        "benchmarks/results/nn_overhead_chunked.json",
        {"machine": machine_info(), "optimizer": "nesterov", "rounds": 10, "rows": rows},
    )


if __name__ == "__main__":
    main()
