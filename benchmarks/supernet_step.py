"""Time one shared-weight training step of the ENAS recurrent supernet on the CPU.

The default configuration is ENAS-pytorch's PTB default: a 12-node cell, embedding and hidden
size 1000, tied weights, vocabulary 10000, batch 64, BPTT 35, SGD with learning rate 20, weight
decay 1e-7 and gradient clipping at 0.25. Tokens are random (the cost does not depend on them).

Measured, in a fresh subprocess so that its peak RSS is this workload's alone:

* seconds per shared step (forward, backward, clipping, SGD step; a new uniformly random
  architecture every step), median over ``--steps`` after ``--warmup`` steps;
* seconds per reward evaluation (evaluation mode, no gradient, one batch of 64 x 35);
* peak resident memory (``ru_maxrss``), and the RSS after the imports (torch, numpy,
  optuna_enas) and after building the model;
* achieved GFLOP/s, counting the matmuls analytically (``2 * M * N * K`` each; the backward pass
  doubles them), against the best GFLOP/s of plain ``torch.mm`` in the same run.

Other processes on the machine distort the timings badly (every small op of the recurrence is
an OpenMP parallel region that waits for its slowest thread), so each step also records the CPU
cores that *other* processes kept busy meanwhile (from ``/proc/stat``), and the table shows the
median of the "quiet" steps, where they used fewer than 0.2 cores.

Usage::

    python benchmarks/supernet_step.py            # full size, 2-3 minutes
    python benchmarks/supernet_step.py --smoke    # tiny, < 30 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


_QUIET_CORES = 0.2  # a step counts as uncontended if other processes used fewer cores
_DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "supernet_step.json"

_FULL = {
    "n_nodes": 12,
    "vocab_size": 10000,
    "embed_size": 1000,
    "hidden_size": 1000,
    "batch_size": 64,
    "bptt": 35,
}
_SMOKE = {
    "n_nodes": 4,
    "vocab_size": 1000,
    "embed_size": 128,
    "hidden_size": 128,
    "batch_size": 16,
    "bptt": 10,
}


def _rss_mib() -> float:
    # Current RSS from /proc (Linux); ru_maxrss only gives the peak.
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def _cpu_ticks() -> tuple[int, int]:
    """(ticks all CPUs were busy, ticks this process used), from /proc; (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return 0, 0
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return busy, int(own[11]) + int(own[12])  # utime + stime


class _StepClock:
    """Wall time, this process's CPU time, and the CPU cores *other* processes kept busy."""

    def __enter__(self) -> _StepClock:
        self._busy, self._own = _cpu_ticks()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        busy, own = _cpu_ticks()
        ticks = os.sysconf("SC_CLK_TCK")
        self.other_cores = max(0.0, (busy - self._busy) - (own - self._own)) / ticks / self.wall


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def _matmul_flops(cfg: dict[str, int]) -> dict[str, float]:
    t, b = cfg["bptt"], cfg["batch_size"]
    e, h, v, n = cfg["embed_size"], cfg["hidden_size"], cfg["vocab_size"], cfg["n_nodes"]
    forward = {
        "input_projection": 2.0 * t * b * e * 2 * h,  # (T*B, E) @ (E, 2H), once for all steps
        "recurrence": 2.0 * t * n * b * h * 2 * h,  # one (B, H) @ (H, 2H) per node and step
        "decoder": 2.0 * t * b * h * v,  # (T*B, H) @ (H, V)
    }
    fwd = sum(forward.values())
    return {**{f"forward_{k}": x for k, x in forward.items()}, "forward": fwd, "step": 3.0 * fwd}


def _mm_peak_gflops(shapes: list[tuple[int, int, int]], repeats: int) -> dict[str, float]:
    import torch

    out = {}
    for m, k, n in shapes:
        a = torch.randn(m, k)
        b = torch.randn(k, n)
        for _ in range(3):
            torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        out[f"{m}x{k}x{n}"] = 2.0 * m * k * n / best / 1e9
    return out


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    rss_start = _rss_mib()
    import numpy as np
    import torch
    import torch.nn.functional as F

    from optuna_enas import RNNCellSpace
    from optuna_enas.supernet import RNNSupernet

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rss_torch = _rss_mib()
    cfg = _SMOKE if args.smoke else _FULL
    space = RNNCellSpace(n_nodes=cfg["n_nodes"])
    start = time.perf_counter()
    model = RNNSupernet(
        space,
        vocab_size=cfg["vocab_size"],
        embed_size=cfg["embed_size"],
        hidden_size=cfg["hidden_size"],
        tie_weights=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    build_s = time.perf_counter() - start
    rss_model = _rss_mib()
    n_params = sum(p.numel() for p in model.parameters())
    # ENAS-pytorch: SGD, shared_lr 20, shared_l2_reg 1e-7, shared_grad_clip 0.25.
    optimizer = torch.optim.SGD(model.parameters(), lr=20.0, weight_decay=1e-7)
    gen = torch.Generator().manual_seed(args.seed)
    t, b, v = cfg["bptt"], cfg["batch_size"], cfg["vocab_size"]
    data = torch.randint(0, v, (t + 1, b), generator=gen)
    rng = np.random.default_rng(args.seed)
    hidden = model.init_hidden(b)

    steps: list[dict[str, float]] = []
    losses = []
    model.train()
    for i in range(args.warmup + args.steps):
        arch = space.sample_uniform(rng)
        with _StepClock() as clock:
            optimizer.zero_grad(set_to_none=True)
            logits, hidden = model(data[:-1], hidden, arch)
            loss = F.cross_entropy(logits.view(-1, v), data[1:].reshape(-1))
            del logits  # the loss keeps what the backward pass needs
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
            hidden = hidden.detach()
        losses.append(loss.item())
        if i >= args.warmup:
            steps.append(
                {"wall_s": clock.wall, "cpu_s": clock.cpu, "other_cores": clock.other_cores}
            )

    evals: list[dict[str, float]] = []
    model.eval()
    with torch.no_grad():
        for i in range(args.warmup + args.steps):
            arch = space.sample_uniform(rng)
            with _StepClock() as clock:
                logits, _ = model(data[:-1], model.init_hidden(b), arch)
                F.cross_entropy(logits.view(-1, v), data[1:].reshape(-1)).item()
                del logits
            if i >= args.warmup:
                evals.append(
                    {"wall_s": clock.wall, "cpu_s": clock.cpu, "other_cores": clock.other_cores}
                )

    h = cfg["hidden_size"]
    peaks = _mm_peak_gflops(
        [(1000, 1000, 1000), (b, h, 2 * h), (t * b, h, v)], repeats=3 if args.smoke else 10
    )
    flops = _matmul_flops(cfg)
    step_s = statistics.median(x["wall_s"] for x in steps)
    eval_s = statistics.median(x["wall_s"] for x in evals)
    quiet = [x["wall_s"] for x in steps if x["other_cores"] < _QUIET_CORES]
    return {
        "config": {**cfg, "tie_weights": True, "optimizer": "SGD(lr=20, weight_decay=1e-7)"},
        "n_parameters": n_params,
        "build_s": build_s,
        "step_s_median": step_s,
        "step_s_min": min(x["wall_s"] for x in steps),
        "step_s_quiet_median": statistics.median(quiet) if quiet else None,
        "n_quiet_steps": len(quiet),
        "steps": steps,
        "eval_s_median": eval_s,
        "eval_s_min": min(x["wall_s"] for x in evals),
        "evals": evals,
        "train_losses": losses,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_at_start_mib": rss_start,
        "rss_after_imports_mib": rss_torch,
        "rss_after_build_mib": rss_model,
        "matmul_gflop": {k: x / 1e9 for k, x in flops.items()},
        "step_gflops_per_s": flops["step"] / step_s / 1e9,
        "step_gflops_per_s_quiet": flops["step"] / statistics.median(quiet) / 1e9
        if quiet
        else None,
        "eval_gflops_per_s": flops["forward"] / eval_s / 1e9,
        "mm_peak_gflops_per_s": peaks,
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _print_table(result: dict[str, Any]) -> None:
    w = result["worker"]
    cfg = w["config"]
    peak_mm = max(w["mm_peak_gflops_per_s"].values())
    rows = [
        (
            "config",
            f"{cfg['n_nodes']} nodes, embed/hidden {cfg['embed_size']}/{cfg['hidden_size']}, "
            f"vocab {cfg['vocab_size']}, batch {cfg['batch_size']} x bptt {cfg['bptt']}",
        ),
        ("parameters", f"{w['n_parameters'] / 1e6:.1f} M"),
        (
            "torch threads",
            f"{w['torch_num_threads']} (cpu_count {result['machine']['cpu_count']})",
        ),
        ("shared step, median", f"{w['step_s_median']:.3f} s (min {w['step_s_min']:.3f} s)"),
        (
            "  per step: wall/cpu/other cores",
            ", ".join(
                f"{x['wall_s']:.2f}/{x['cpu_s']:.2f}/{x['other_cores']:.1f}" for x in w["steps"]
            ),
        ),
        (
            f"  median of quiet steps (n={w['n_quiet_steps']})",
            "-" if w["step_s_quiet_median"] is None else f"{w['step_s_quiet_median']:.3f} s",
        ),
        ("reward eval, median", f"{w['eval_s_median']:.3f} s (min {w['eval_s_min']:.3f} s)"),
        ("peak RSS", f"{w['peak_rss_mib']:.0f} MiB"),
        ("RSS after imports", f"{w['rss_after_imports_mib']:.0f} MiB"),
        ("RSS after build", f"{w['rss_after_build_mib']:.0f} MiB"),
        ("matmul GFLOP per step", f"{w['matmul_gflop']['step']:.1f}"),
        ("achieved (step, median)", f"{w['step_gflops_per_s']:.1f} GFLOP/s"),
        (
            "achieved (step, quiet median)",
            "-"
            if w["step_gflops_per_s_quiet"] is None
            else f"{w['step_gflops_per_s_quiet']:.1f} GFLOP/s",
        ),
        ("achieved (eval)", f"{w['eval_gflops_per_s']:.1f} GFLOP/s"),
        (
            "torch.mm peak",
            ", ".join(f"{k}: {x:.1f}" for k, x in w["mm_peak_gflops_per_s"].items()),
        ),
        (
            "step / mm peak (quiet)",
            "-"
            if w["step_gflops_per_s_quiet"] is None
            else f"{w['step_gflops_per_s_quiet'] / peak_mm:.0%}",
        ),
        ("load average before/after", f"{result['loadavg_before']} / {result['loadavg_after']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configuration (< 30 s)")
    parser.add_argument(
        "--json", type=Path, default=_DEFAULT_JSON, help=f"output file (default {_DEFAULT_JSON})"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (10; smoke 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data, archs")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=None,
        metavar="BYTES",
        help="set glibc's MALLOC_MMAP_THRESHOLD_ for the measured process (default: unset, "
        "glibc's dynamic threshold, whose heap fragmentation adds up to ~200 MiB of RSS)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 3 if args.smoke else 10
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")

    if args.worker:
        json.dump(_worker(args), sys.stdout)
        return

    # Measure in a fresh interpreter so that ru_maxrss is this workload's peak alone.
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *sys.argv[1:]]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    if args.mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    load_before = [round(x, 2) for x in os.getloadavg()]
    proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
    load_after = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "supernet_step",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        },
        "malloc_mmap_threshold": env.get("MALLOC_MMAP_THRESHOLD_"),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "worker": json.loads(proc.stdout),
    }
    _print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
