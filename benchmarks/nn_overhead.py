"""Own-model overhead: a training step through the ``Supernet`` on one path vs the exported module.

    python benchmarks/nn_overhead.py            # cnn + lm, 1 torch thread, a few minutes
    python benchmarks/nn_overhead.py --smoke    # tiny sizes (about a minute: 4 subprocesses)

Goal (issue #19): a shared-weight step on a path costs at most 1.10x the step of the plain
module ``Supernet.export`` gives for that path, and the supernet's memory is its weights plus
the active path's activations.

**Time**, side by side in one process (1 torch thread, same batches, SGD with Nesterov
momentum and gradient clipping for all): every round times ``--steps`` steps of

- ``evaluator``: ``ModelEvaluator.train_step(arch)`` (activate, forward, loss, backward,
  clip over all parameters, optimizer step over all parameters; what a trial pays),
- ``supernet``: the bare supernet step (activated once; zero_grad, forward, loss, backward,
  clip and step over the path's parameters only),
- ``plain``: the exported plain module's step,

in a rotating order (each kind goes first in turn, so a drift of the machine's load is shared).
A ratio is the median over rounds of (that kind's round CPU time / plain's round CPU time):
with one thread the process CPU time is the step's work, and it moves far less than wall
time on a machine shared with other jobs (wall-time ratios are reported too).

**Memory**, in separate subprocesses (no allocation of the other side in the way): one builds
the supernet and trains the path, the other ``torch.load``s the exported module and trains
it. Each reports RSS after imports, data and a smoke-sized warm-up of both code paths
(``base``), after building the model, and the peak (``VmHWM``); ``peak - base`` is the
model's cost. Expected for the supernet: its
weights (all candidates) + the path's gradients and momentum + the path's activations.

If a ratio misses 1.10x, ``--profile`` (on by default then) lists the top operators of each
kind (torch.profiler, self CPU time). Writes ``benchmarks/results/nn_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch import nn

from benchmarks._common import machine_info  # noqa: E402
from benchmarks._common import print_table  # noqa: E402
from benchmarks._common import write_json  # noqa: E402
from optuna_enas import objective_over
from optuna_enas.nn import ElasticBatchNorm2d
from optuna_enas.nn import ElasticConv2d
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


_GOAL = 1.10
_CONFIGS: dict[str, dict[str, Any]] = {
    # A ResNet-style CNN (as examples/own_model_cnn.py), CIFAR-like 3 x 16 x 16 inputs.
    "cnn": {
        "full": {"widths": [32, 48, 64], "side": 16, "batch": 16},
        "smoke": {"widths": [4, 8], "side": 8, "batch": 4},
        "path": {
            "width": 48,
            "depth": 3,
            "block0/op": "conv",
            "block0/kernel": 3,
            "block1/op": "sepconv",
            "block1/kernel": 5,
            "block2/op": "conv",
            "block2/kernel": 3,
            "block3/op": "identity",
            "block3/kernel": 3,
        },
        "smoke_path": {"width": 4},
    },
    # A word LM (as examples/own_model_text.py): LSTM path, elastic feed-forward width.
    "lm": {
        "full": {"vocab": 2000, "size": 128, "widths": [128, 256, 512], "bptt": 35, "batch": 16},
        "smoke": {"vocab": 50, "size": 8, "widths": [8, 16], "bptt": 5, "batch": 2},
        "path": {"seq": "lstm", "ffn_width": 256, "ffn_act": "gelu"},
        "smoke_path": {"ffn_width": 8},
    },
    # The same LM with a very wide elastic feed-forward block: the supernet's weights are
    # ~5x the path's, so what memory the unused width costs shows above the noise.
    "lm-wide": {
        "full": {"vocab": 2000, "size": 256, "widths": [256, 1024, 8192], "bptt": 35, "batch": 16},
        "smoke": {"vocab": 50, "size": 8, "widths": [8, 64], "bptt": 5, "batch": 2},
        "path": {"seq": "lstm", "ffn_width": 256, "ffn_act": "gelu"},
        "smoke_path": {"ffn_width": 8},
    },
}


# -- the two models ---------------------------------------------------------------------------
def _conv_bn_relu(cin: Any, width: ValueChoice, kernel: Any) -> nn.Module:
    return nn.Sequential(
        ElasticConv2d(cin, width, kernel, bias=False), ElasticBatchNorm2d(width), nn.ReLU()
    )


class _Block(nn.Module):
    def __init__(self, i: int, width: ValueChoice) -> None:
        super().__init__()
        kernel = ValueChoice(f"block{i}/kernel", [3, 5])
        sep = nn.Sequential(
            ElasticConv2d(width, width, kernel, depthwise=True, bias=False),
            ElasticConv2d(width, width, 1, bias=False),
            ElasticBatchNorm2d(width),
            nn.ReLU(),
        )
        self.op = LayerChoice(
            f"block{i}/op",
            {
                "conv": _conv_bn_relu(width, width, kernel),
                "sepconv": sep,
                "maxpool": nn.MaxPool2d(3, stride=1, padding=1),
                "identity": nn.Identity(),
            },
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.op(x)


class CNN(nn.Module):
    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        width = ValueChoice("width", widths)
        self.stem = _conv_bn_relu(3, width, 3)
        self.blocks = Repeat("depth", lambda i: _Block(i, width), [1, 2, 3, 4])
        self.head = ElasticLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class _Recurrent(nn.Module):
    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class _CausalConv(nn.Module):
    def __init__(self, size: int, k: int) -> None:
        super().__init__()
        self.pad = k - 1
        self.conv = nn.Conv1d(size, size, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(F.pad(x.permute(1, 2, 0), (self.pad, 0)))).permute(2, 0, 1)


class LM(nn.Module):
    def __init__(self, vocab: int, size: int, widths: list[int]) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, size)
        self.seq = LayerChoice(
            "seq",
            {
                "lstm": _Recurrent(nn.LSTM(size, size)),
                "gru": _Recurrent(nn.GRU(size, size)),
                "conv3": _CausalConv(size, 3),
            },
        )
        width = ValueChoice("ffn_width", widths)
        self.ffn = nn.Sequential(
            ElasticLinear(size, width),
            LayerChoice("ffn_act", {"relu": nn.ReLU(), "tanh": nn.Tanh(), "gelu": nn.GELU()}),
            ElasticLinear(width, size),
        )
        self.decoder = nn.Linear(size, vocab)
        self.decoder.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.seq(self.embed(tokens))
        return self.decoder(h + self.ffn(h))


def _lm_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.reshape(-1, out.size(-1)), y.reshape(-1))


def _model(name: str, smoke: bool) -> nn.Module:
    size = _CONFIGS[name]["smoke" if smoke else "full"]
    torch.manual_seed(0)  # a benchmark script may seed torch: every copy starts equal
    if name == "cnn":
        return CNN(size["widths"])
    return LM(size["vocab"], size["size"], size["widths"])


def _data(name: str, smoke: bool) -> tuple[list[tuple[Any, Any]], Callable[..., Any]]:
    """4 fixed random batches and the loss."""
    size = _CONFIGS[name]["smoke" if smoke else "full"]
    gen = torch.Generator().manual_seed(0)
    if name == "cnn":
        shape = (size["batch"], 3, size["side"], size["side"])
        labels = (size["batch"],)
        return [
            (torch.randn(shape, generator=gen), torch.randint(0, 10, labels, generator=gen))
            for _ in range(4)
        ], F.cross_entropy
    seq = (size["bptt"], size["batch"])
    return [
        (
            torch.randint(0, size["vocab"], seq, generator=gen),
            torch.randint(0, size["vocab"], seq, generator=gen),
        )
        for _ in range(4)
    ], _lm_loss


def _path(name: str, supernet: Supernet, smoke: bool) -> dict[str, Any]:
    params = dict(_CONFIGS[name]["path"])
    if smoke:
        params.update(_CONFIGS[name]["smoke_path"])
    return {k: v for k, v in params.items() if k in supernet.space}


_OPTIMIZER = ["nesterov"]  # --optimizer, set once in main() / the worker


def _sgd(params: Any) -> torch.optim.Optimizer:
    """ENAS's child SGD (Nesterov momentum 0.9, weight decay 1e-4), or plain SGD."""
    if _OPTIMIZER[0] == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    return torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)


def _plain_step(
    model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable[..., Any], batch: Any
) -> None:
    x, y = batch
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


# -- time ----------------------------------------------------------------------------------------
def _time_config(name: str, args: argparse.Namespace, export_to: Path | None) -> dict[str, Any]:
    batches, loss_fn = _data(name, args.smoke)
    supernet = Supernet(_model(name, args.smoke))
    arch = supernet.activate(_path(name, supernet, args.smoke))
    evaluator = objective_over(
        supernet, batches, batches, loss_fn=loss_fn, optimizer=_sgd, grad_clip=5.0, seed=0
    )
    bare = Supernet(_model(name, args.smoke))  # a second copy (same weights), the bare step
    bare.activate(arch)
    bare.train()
    bare_params = bare.path_parameters()
    bare_opt = _sgd(bare_params)
    plain = supernet.export(arch).train()
    if export_to is not None:
        torch.save(plain, export_to)
    plain_opt = _sgd(plain.parameters())
    k = [0]

    def batch() -> Any:
        k[0] += 1
        return batches[k[0] % len(batches)]

    def run_evaluator() -> None:
        evaluator.train_step(arch)

    def run_bare() -> None:
        x, y = batch()
        bare_opt.zero_grad(set_to_none=True)
        loss_fn(bare(x), y).backward()
        nn.utils.clip_grad_norm_(bare_params, 5.0)
        bare_opt.step()

    def run_plain() -> None:
        _plain_step(plain, plain_opt, loss_fn, batch())

    kinds: dict[str, Callable[[], None]] = {
        "evaluator": run_evaluator,
        "supernet": run_bare,
        "plain": run_plain,
    }
    for fn in kinds.values():  # warm-up: allocator, momentum buffers, oneDNN primitives
        for _ in range(2):
            fn()
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    order = list(kinds)
    for r in range(args.rounds):
        rotated = order[r % 3 :] + order[: r % 3]
        for kind in rotated:
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                kinds[kind]()
            times[kind].append((time.perf_counter() - start) / args.steps)
            cpu[kind].append((time.process_time() - start_cpu) / args.steps)

    def ratio(series: dict[str, list[float]], kind: str) -> float:
        pairs = zip(series[kind], series["plain"], strict=True)
        return statistics.median(a / b for a, b in pairs)

    ratios = {kind: ratio(cpu, kind) for kind in ("evaluator", "supernet")}
    wall_ratios = {kind: ratio(times, kind) for kind in ("evaluator", "supernet")}
    result: dict[str, Any] = {
        "config": name,
        "size": _CONFIGS[name]["smoke" if args.smoke else "full"],
        "path": arch.to_params(),
        "n_params_supernet": sum(p.numel() for p in supernet.parameters()),
        "n_params_path": sum(p.numel() for p in plain.parameters()),
        "ms_per_step": {kind: 1000 * statistics.median(ts) for kind, ts in times.items()},
        "cpu_ms_per_step": {kind: 1000 * statistics.median(ts) for kind, ts in cpu.items()},
        "round_ms": {kind: [1000 * t for t in ts] for kind, ts in times.items()},
        "round_cpu_ms": {kind: [1000 * t for t in ts] for kind, ts in cpu.items()},
        "ratio_vs_plain": ratios,  # CPU time: what a machine shared with other jobs moves least
        "wall_ratio_vs_plain": wall_ratios,
    }
    missed = max(ratios.values()) > _GOAL and not args.smoke
    if args.profile or (args.profile is None and missed):
        result["profile"] = {kind: _profile(fn) for kind, fn in kinds.items()}
    return result


def _profile(fn: Callable[[], None], n: int = 5) -> list[dict[str, Any]]:
    """The top operators of ``n`` calls of ``fn`` by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            fn()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [
        {
            "op": e.key,
            "self_ms_per_step": e.self_cpu_time_total / 1000 / n,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / n,
        }
        for e in rows[:12]
    ]


# -- memory (subprocess workers) ---------------------------------------------------------------
def _rss_mib(key: str = "VmRSS") -> float:
    """Resident memory now (``VmRSS``) or its peak (``VmHWM``) of this process, MiB.

    Not ``ru_maxrss``: Linux carries the parent's peak over fork and exec into it, so a worker
    started by a large parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _warm_up(name: str) -> None:
    """Touch the code both sides run (a smoke-sized supernet step and exported step) so that
    library pages mapped on first use are in the base RSS of both workers alike."""
    import gc

    batches, loss_fn = _data(name, True)
    supernet = Supernet(_model(name, True))
    arch = supernet.activate(_path(name, supernet, True))
    objective_over(supernet, batches, batches, loss_fn=loss_fn, optimizer=_sgd).train_step(arch)
    plain = supernet.export(arch).train()
    _plain_step(plain, _sgd(plain.parameters()), loss_fn, batches[0])
    del supernet, plain
    gc.collect()


def _memory_worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    _warm_up(args.config)
    batches, loss_fn = _data(args.config, args.smoke)
    if args.worker == "supernet":
        base = _rss_mib()
        supernet = Supernet(_model(args.config, args.smoke))
        arch = supernet.activate(_path(args.config, supernet, args.smoke))
        evaluator = objective_over(
            supernet, batches, batches, loss_fn=loss_fn, optimizer=_sgd, grad_clip=5.0, seed=0
        )
        built = _rss_mib()
        for _ in range(args.steps):
            evaluator.train_step(arch)
        params = sum(p.numel() for p in supernet.parameters())
    else:
        base = _rss_mib()
        plain = torch.load(args.export, weights_only=False).train()
        opt = _sgd(plain.parameters())
        built = _rss_mib()
        for i in range(args.steps):
            _plain_step(plain, opt, loss_fn, batches[i % len(batches)])
        params = sum(p.numel() for p in plain.parameters())
    peak = _rss_mib("VmHWM")
    print(
        json.dumps(
            {
                "which": args.worker,
                "base_mib": base,
                "built_mib": built,
                "peak_mib": peak,
                "model_mib": peak - base,
                "weights_mib": params * 4 / 2**20,
            }
        )
    )


def _memory(name: str, args: argparse.Namespace, export: Path) -> dict[str, Any]:
    out = {}
    for which in ("supernet", "plain"):
        cmd = [sys.executable, __file__, "--worker", which, "--config", name]
        cmd += ["--export", str(export), "--steps", str(max(args.steps, 3))]
        cmd += ["--optimizer", args.optimizer]
        cmd += ["--smoke"] if args.smoke else []
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"memory worker {which} failed: {run.stderr[-2000:]}")
        out[which] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 2 rounds")
    parser.add_argument(
        "--configs", nargs="+", default=["cnn", "lm", "lm-wide"], choices=sorted(_CONFIGS)
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (15)")
    parser.add_argument("--steps", type=int, default=None, help="steps per kind per round (2)")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.profiler top ops (default: only when a ratio misses 1.10x)",
    )
    parser.add_argument(
        "--optimizer",
        choices=["nesterov", "sgd"],
        default="nesterov",
        help="nesterov: ENAS's child SGD, momentum 0.9 + weight decay 1e-4 (default); sgd: "
        "plain SGD (no per-weight state: isolates what the optimizer costs)",
    )
    parser.add_argument("--json", default="benchmarks/results/nn_overhead.json", help="output")
    parser.add_argument("--worker", choices=["supernet", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _OPTIMIZER[0] = args.optimizer
    args.rounds = args.rounds or (2 if args.smoke else 15)
    args.steps = args.steps or (1 if args.smoke else 2)
    if args.worker is not None:
        _memory_worker(args)
        return
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            export = Path(tmp) / f"{name}.pt"
            result = _time_config(name, args, export)
            result["memory"] = _memory(name, args, export)
            results.append(result)
            print(f"[{name}] done: {result['ms_per_step']}", file=sys.stderr, flush=True)
    rows = []
    for r in results:
        mem = r["memory"]
        rows.append(
            {
                "config": r["config"],
                "plain cpu ms": r["cpu_ms_per_step"]["plain"],
                "supernet cpu ms": r["cpu_ms_per_step"]["supernet"],
                "evaluator cpu ms": r["cpu_ms_per_step"]["evaluator"],
                "supernet/plain": r["ratio_vs_plain"]["supernet"],
                "evaluator/plain": r["ratio_vs_plain"]["evaluator"],
                "(wall)": f"{r['wall_ratio_vs_plain']['supernet']:.3f}/"
                f"{r['wall_ratio_vs_plain']['evaluator']:.3f}",
                "weights MiB (super/path)": f"{mem['supernet']['weights_mib']:.2f}/"
                f"{mem['plain']['weights_mib']:.2f}",
                "peak-base MiB (super/plain)": f"{mem['supernet']['model_mib']:.1f}/"
                f"{mem['plain']['model_mib']:.1f}",
            }
        )
    print_table(rows, list(rows[0]))
    for r in results:
        for kind, top in r.get("profile", {}).items():
            print(f"\n[{r['config']}] {kind}: top ops by self CPU time per step")
            for e in top[:8]:
                print(f"  {e['op']:<40} {e['self_ms_per_step']:8.3f} ms  {e['share']:.1%}")
    write_json(
        args.json,
        {
            "smoke": args.smoke,
            "optimizer": args.optimizer,
            "goal_ratio": _GOAL,
            "rounds": args.rounds,
            "steps": args.steps,
            "machine": machine_info(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
