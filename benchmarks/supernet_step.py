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

``--bf16`` measures the opt-in ``RNNSupernet(bfloat16_matmul=True)`` instead.

``--peer DIR`` runs the side-by-side measurement against a checkout of carpedm20/ENAS-pytorch
that you provide (this script never downloads it): one process, rounds of alternating steps on
the same random architecture and the same tokens, in a new order every round, of

* ``ours``: this package's supernet in float32 (what the single mode times);
* ``ours_bf16``: the same model with ``bfloat16_matmul=True`` (``--no-bf16`` skips it);
* ``peer_equal``: ENAS-pytorch's ``models.shared_rnn.RNN`` at equal math: no batch norm on
  the cell output (``mode != 'train'``), no dropouts, SGD step as its ``train_shared`` without
  its diagnostics. Parameter for parameter it computes our function except that it carries the
  last node as the hidden state (we carry the mean of the loose ends, as the official code)
  and ``w_xc``/``w_xh`` have biases: same matmuls, same cost;
* ``peer_shipped``: ENAS-pytorch as its PTB default trains: batch norm on every cell output,
  its dropouts (DropConnect 0.5 on ``w_hh``/``w_hc``, embedding 0.1, input 0.65, output 0.4),
  and ``train_shared``'s per-step hidden-norm and gradient max-abs scans.

It records each variant's step times, the per-round ratios ``ours / peer_*`` (median over
rounds whose steps all ran quiet, and over all rounds), the process's peak RSS, and the
GEMM accounting: each matmul shape of our step timed alone with ``torch.mm`` and with oneDNN's
packed linear, and the fraction of the step's time those matmuls would take at that speed.

The peer checkout needs one patch to run on a CPU-only current torch (its hidden-norm
clipping moves a mask to CUDA unconditionally), in ``models/shared_rnn.py``::

    sed -i 's/torch.FloatTensor(mask).cuda()/torch.FloatTensor(mask).to(hidden.device)/' \
        models/shared_rnn.py

Its ``utils.py`` imports ``pygraphviz``, ``PIL`` and ``cv2``/``scipy.misc`` for drawing only;
when those are not installed this script puts empty stand-in modules in ``sys.modules`` before
importing it (nothing of them is called). Tested with commit 0468b8c (2020-06-16).

Usage::

    python benchmarks/supernet_step.py            # full size, 2-3 minutes
    python benchmarks/supernet_step.py --smoke    # tiny, < 30 s
    python benchmarks/supernet_step.py --bf16 --json benchmarks/results/supernet_step_bf16.json
    python benchmarks/supernet_step.py --peer /path/to/ENAS-pytorch --threads 1 --rounds 6 \
        --json benchmarks/results/supernet_step_peer_1thread.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ENAS_PYTORCH_PTB  # noqa: E402
from benchmarks._common import PTB_DIR  # noqa: E402
from benchmarks._common import RESULTS  # noqa: E402
from benchmarks._common import cpu_model  # noqa: E402
from benchmarks._common import peak_rss_mib  # noqa: E402
from benchmarks._common import rss_mib  # noqa: E402
from benchmarks._common import run_worker  # noqa: E402
from benchmarks._common import write_json  # noqa: E402


_QUIET_CORES = 0.2  # a step counts as uncontended if other processes used fewer cores
_DEFAULT_JSON = RESULTS / "supernet_step.json"

_FULL = {**ENAS_PYTORCH_PTB, "vocab_size": 10000}  # PTB's vocabulary
_SMOKE = {
    "n_nodes": 4,
    "vocab_size": 1000,
    "embed_size": 128,
    "hidden_size": 128,
    "batch_size": 16,
    "bptt": 10,
}


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
    rss_start = rss_mib()
    import numpy as np
    import torch
    import torch.nn.functional as F

    from optuna_enas import RNNCellSpace
    from optuna_enas.supernet import RNNSupernet

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rss_torch = rss_mib()
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
        bfloat16_matmul=args.bf16,
    )
    build_s = time.perf_counter() - start
    rss_model = rss_mib()
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
        "config": {
            **cfg,
            "tie_weights": True,
            "optimizer": "SGD(lr=20, weight_decay=1e-7)",
            "bfloat16_matmul": args.bf16,
        },
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
        "peak_rss_mib": peak_rss_mib(),
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


def _gemm_shapes(cfg: dict[str, int]) -> list[tuple[str, int, int, int, int]]:
    """(what, M, K, N, count) of every matmul of our shared step (forward and backward)."""
    t, b = cfg["bptt"], cfg["batch_size"]
    e, h, v, n = cfg["embed_size"], cfg["hidden_size"], cfg["vocab_size"], cfg["n_nodes"]
    tb = t * b
    return [
        ("recurrence forward: h @ W", b, h, 2 * h, t * n),
        ("recurrence backward: ds @ W^T", b, 2 * h, h, t * n),
        ("weight gradients: H^T @ ds over all steps", h, tb, 2 * h, n),
        ("input projection forward", tb, e, 2 * h, 1),
        ("input projection backward (d emb)", tb, 2 * h, e, 1),
        ("input projection backward (d w_x)", e, tb, 2 * h, 1),
        ("decoder forward", tb, h, v, 1),
        ("decoder backward (d states)", tb, v, h, 1),
        ("decoder backward (d weight)", v, tb, h, 1),
    ]


def _gemm_accounting(cfg: dict[str, int], step_s: float, repeats: int) -> dict[str, Any]:
    """Each matmul shape of the step timed alone: ``torch.mm`` and oneDNN's packed linear.

    ``ideal_s`` is the time the step's matmuls take at the speed each shape reaches alone;
    ``fraction`` = ideal / measured step time (1.0 would mean the step is nothing but matmuls
    running as fast as they run alone).
    """
    import torch

    rows = []
    ideal_mm = ideal_best = 0.0
    for what, m, k, n, count in _gemm_shapes(cfg):
        a = torch.randn(m, k)
        w = torch.randn(k, n)
        wt = w.t().contiguous()
        packed = torch.ops.mkldnn._reorder_linear_weight(wt, m)

        def mm(a: Any = a, w: Any = w) -> None:
            torch.mm(a, w)

        def onednn(a: Any = a, packed: Any = packed) -> None:
            torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")

        times = {}
        for name, fn in (("mm", mm), ("onednn_packed", onednn)):
            for _ in range(2):
                fn()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            times[name] = best
        flop = 2.0 * m * k * n
        rows.append(
            {
                "what": what,
                "shape": f"{m}x{k}x{n}",
                "count": count,
                "mm_gflops_per_s": flop / times["mm"] / 1e9,
                "onednn_gflops_per_s": flop / times["onednn_packed"] / 1e9,
            }
        )
        ideal_mm += count * times["mm"]
        ideal_best += count * min(times.values())
    return {
        "shapes": rows,
        "ideal_s_torch_mm": ideal_mm,
        "ideal_s_best": ideal_best,
        "fraction_of_torch_mm_speed": ideal_mm / step_s,
        "fraction_of_best_speed": ideal_best / step_s,
    }


class _Stub:
    """Empty stand-in for a drawing-only module that ENAS-pytorch's utils.py imports."""


def _import_peer(peer_dir: Path) -> Any:
    """ENAS-pytorch's ``models.shared_rnn`` and ``utils`` from the user's checkout."""
    import importlib
    import logging
    import types

    for name in ("pygraphviz", "PIL", "PIL.Image", "PIL.ImageFont", "PIL.ImageDraw", "cv2"):
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            for attr in ("imread", "imresize", "imwrite", "imsave"):
                setattr(module, attr, None)
            sys.modules[name] = module
            if "." in name:
                parent, child = name.split(".")
                setattr(sys.modules[parent], child, module)
    source = (peer_dir / "models" / "shared_rnn.py").read_text()
    if "FloatTensor(mask).cuda()" in source:
        raise SystemExit(
            f"{peer_dir}/models/shared_rnn.py still moves its clipping mask to CUDA; apply the "
            "patch in this script's docstring first."
        )
    sys.path.insert(0, str(peer_dir))
    shared_rnn = importlib.import_module("models.shared_rnn")
    utils = importlib.import_module("utils")
    logging.getLogger(shared_rnn.__file__).setLevel(logging.WARNING)
    for handler in logging.getLogger(utils.__file__).handlers:
        handler.setLevel(logging.WARNING)
    return shared_rnn, utils


def _peer_dag(space: Any, arch: Any, node_type: Any) -> Any:
    """Our architecture as ENAS-pytorch's DAG (see its controller's ``_construct_dags``)."""
    from collections import defaultdict

    cell = space.cell(arch)
    n = len(cell)
    dag: Any = defaultdict(list)
    dag[-1] = [node_type(0, cell[0].activation)]
    dag[-2] = [node_type(0, cell[0].activation)]
    for i in range(1, n):
        dag[cell[i].input].append(node_type(i, cell[i].activation))
    for leaf in sorted(set(range(n)) - set(dag.keys())):
        dag[leaf] = [node_type(n, "avg")]
    return dag


def _peer_worker(args: argparse.Namespace) -> dict[str, Any]:
    import random

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    from optuna_enas import RNNCellSpace
    from optuna_enas.supernet import RNNSupernet

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shared_rnn, peer_utils = _import_peer(args.peer)
    cfg = _SMOKE if args.smoke else _FULL
    t, b, v, hid = cfg["bptt"], cfg["batch_size"], cfg["vocab_size"], cfg["hidden_size"]
    space = RNNCellSpace(n_nodes=cfg["n_nodes"])
    torch.manual_seed(args.seed)  # the peer initializes from torch's global generator
    ours = RNNSupernet(
        space,
        vocab_size=v,
        embed_size=cfg["embed_size"],
        hidden_size=hid,
        tie_weights=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    ours_opt = torch.optim.SGD(ours.parameters(), lr=20.0, weight_decay=1e-7)
    peer_args = argparse.Namespace(
        shared_hid=hid,
        shared_embed=cfg["embed_size"],
        num_blocks=cfg["n_nodes"],
        tie_weights=True,
        shared_wdrop=0.0,
        shared_dropoute=0.0,
        shared_dropouti=0.0,
        shared_dropout=0.0,
        mode="train",
        cuda=False,
    )
    peer = shared_rnn.RNN(peer_args, argparse.Namespace(num_tokens=v))
    batch_norm = peer.batch_norm  # built because mode == "train"; equal math removes it
    peer_opt = torch.optim.SGD(peer.parameters(), lr=20.0, weight_decay=1e-7)
    gen = torch.Generator().manual_seed(args.seed)
    data = torch.randint(0, v, (t + 1, b), generator=gen)
    rng = np.random.default_rng(args.seed)
    order_rng = random.Random(args.seed)
    hidden = {"ours": ours.init_hidden(b), "ours_bf16": ours.init_hidden(b)}
    hidden["peer_equal"] = hidden["peer_shipped"] = torch.zeros(b, hid)

    def step_ours(arch: Any, bf16: bool, key: str) -> float:
        ours.bfloat16_matmul = bf16
        ours_opt.zero_grad(set_to_none=True)
        logits, h = ours(data[:-1], hidden[key], arch)
        loss = F.cross_entropy(logits.view(-1, v), data[1:].reshape(-1))
        del logits
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 0.25)
        ours_opt.step()
        hidden[key] = h.detach()
        return float(loss.detach())

    def step_peer(arch: Any, shipped: bool, key: str) -> float:
        # ENAS-pytorch trainer.train_shared, one step (shared_num_sample 1)
        peer_args.mode = "train" if shipped else "derive"
        peer.batch_norm = batch_norm if shipped else None
        peer_args.shared_wdrop = 0.5 if shipped else 0.0
        peer_args.shared_dropouti = 0.65 if shipped else 0.0
        peer_args.shared_dropout = 0.4 if shipped else 0.0
        peer.encoder.dropout = 0.1 if shipped else 0.0
        dag = _peer_dag(space, arch, peer_utils.Node)
        peer.train()
        output, h, extra = peer(data[:-1], dag, hidden=hidden[key])
        loss = F.cross_entropy(output.view(-1, v), data[1:].reshape(-1))
        h.detach_()
        peer_opt.zero_grad()
        loss.backward()
        if shipped:  # train_shared's diagnostics: hidden-norm max, _check_abs_max_grad
            float(extra["hiddens"].detach().norm(dim=-1).max())
            grads = [p.grad for p in peer.parameters() if p.grad is not None]
            max(float(g.max()) for g in grads)
            min(float(g.min()) for g in grads)
        nn.utils.clip_grad_norm_(peer.parameters(), 0.25)
        peer_opt.step()
        hidden[key] = h
        return float(loss.detach())

    variants = {
        "ours": lambda a: step_ours(a, False, "ours"),
        "peer_equal": lambda a: step_peer(a, False, "peer_equal"),
        "peer_shipped": lambda a: step_peer(a, True, "peer_shipped"),
    }
    if args.bf16_too:
        variants["ours_bf16"] = lambda a: step_ours(a, True, "ours_bf16")
    rounds: list[dict[str, Any]] = []
    for r in range(args.warmup + args.rounds):
        arch = space.sample_uniform(rng)
        names = list(variants)
        order_rng.shuffle(names)
        row: dict[str, Any] = {"order": names}
        for name in names:
            with _StepClock() as clock:
                loss = variants[name](arch)
            row[name] = {
                "wall_s": clock.wall,
                "cpu_s": clock.cpu,
                "other_cores": clock.other_cores,
                "loss": loss,
            }
        if r >= args.warmup:
            rounds.append(row)
        print(
            f"round {r}: " + ", ".join(f"{k} {row[k]['wall_s']:.2f}s" for k in variants),
            file=sys.stderr,
        )
    quiet = [x for x in rounds if all(x[k]["other_cores"] < _QUIET_CORES for k in variants)]

    def med(name: str, rows: list[dict[str, Any]]) -> float | None:
        return statistics.median(x[name]["wall_s"] for x in rows) if rows else None

    def ratio(num: str, den: str, rows: list[dict[str, Any]]) -> float | None:
        if not rows:
            return None
        return statistics.median(x[num]["wall_s"] / x[den]["wall_s"] for x in rows)

    ours_names = [k for k in ("ours", "ours_bf16") if k in variants]
    summary: dict[str, Any] = {
        "median_s_all": {k: med(k, rounds) for k in variants},
        "median_s_quiet": {k: med(k, quiet) for k in variants},
        "ratios_all": {
            f"{o}/{p}": ratio(o, p, rounds)
            for o in ours_names
            for p in ("peer_equal", "peer_shipped")
        },
        "ratios_quiet": {
            f"{o}/{p}": ratio(o, p, quiet)
            for o in ours_names
            for p in ("peer_equal", "peer_shipped")
        },
        # this process's CPU seconds per step: less sensitive to other processes than wall time
        "median_cpu_s_all": {
            k: statistics.median(x[k]["cpu_s"] for x in rounds) for k in variants
        },
        "cpu_ratios_all": {
            f"{o}/{p}": statistics.median(x[o]["cpu_s"] / x[p]["cpu_s"] for x in rounds)
            for o in ours_names
            for p in ("peer_equal", "peer_shipped")
        },
        "n_rounds": len(rounds),
        "n_quiet_rounds": len(quiet),
    }
    ours_s = summary["median_s_quiet"]["ours"] or summary["median_s_all"]["ours"]
    return {
        "mode": "peer",
        "peer_dir": str(args.peer),
        "config": {**cfg, "tie_weights": True, "optimizer": "SGD(lr=20, weight_decay=1e-7)"},
        "summary": summary,
        "rounds": rounds,
        "gemm": _gemm_accounting(cfg, ours_s, repeats=3 if args.smoke else 8),
        "matmul_gflop": {k: x / 1e9 for k, x in _matmul_flops(cfg).items()},
        "peak_rss_mib_process": peak_rss_mib(),
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }


def _print_peer_table(result: dict[str, Any]) -> None:
    w = result["worker"]
    s = w["summary"]
    print(
        f"{s['n_rounds']} rounds, "
        f"{s['n_quiet_rounds']} quiet; torch threads {w['torch_num_threads']}"
    )
    for k, x in s["median_s_all"].items():
        q = s["median_s_quiet"][k]
        print(f"  {k:<14} median {x:.3f} s" + ("" if q is None else f" (quiet {q:.3f} s)"))
    for k, x in s["ratios_all"].items():
        q = s["ratios_quiet"][k]
        print(
            f"  {k:<26} ratio {x:.3f}"
            + ("" if q is None else f" (quiet {q:.3f})")
            + f", CPU-time ratio {s['cpu_ratios_all'][k]:.3f}"
        )
    g = w["gemm"]
    for row in g["shapes"]:
        print(
            f"  {row['what']:<44} {row['shape']:>16} x{row['count']:<4} "
            f"mm {row['mm_gflops_per_s']:6.1f}  oneDNN {row['onednn_gflops_per_s']:6.1f} GFLOP/s"
        )
    print(
        f"  matmuls at torch.mm speed: {g['ideal_s_torch_mm']:.3f} s "
        f"({g['fraction_of_torch_mm_speed']:.0%} of our step); at the best of mm/oneDNN: "
        f"{g['ideal_s_best']:.3f} s ({g['fraction_of_best_speed']:.0%})"
    )
    print(f"  peak RSS of the process (both models): {w['peak_rss_mib_process']:.0f} MiB")
    print(f"  load average before/after: {result['loadavg_before']} / {result['loadavg_after']}")


_CURVE = {"n_nodes": 12, "embed_size": 400, "hidden_size": 400, "batch_size": 64, "bptt": 35}


def _loss_curve(args: argparse.Namespace) -> dict[str, Any]:
    """``--loss-curve N``: N shared steps in float32 and in bfloat16 from the same init.

    Both runs use :class:`SupernetEvaluator` with the same seed (same initial weights, data
    order and dropout masks) and the same sequence of uniformly random architectures; at the
    end both score the same 16 random architectures on the same validation batches
    (``evaluate_many``), which says whether bfloat16 changes the ranking the search sees.
    """
    import numpy as np
    import torch
    from scipy.stats import kendalltau

    from optuna_enas import RNNCellSpace
    from optuna_enas import SupernetEvaluator
    from optuna_enas.data import load_corpus

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data_dir = args.curve_data
    corpus = load_corpus(data_dir if data_dir is not None and data_dir.is_dir() else None)
    space = RNNCellSpace(n_nodes=_CURVE["n_nodes"])
    runs: dict[str, Any] = {}
    for name, bf16 in (("float32", False), ("bfloat16", True)):
        evaluator = SupernetEvaluator(
            space,
            corpus,
            supernet_kwargs={
                "embed_size": _CURVE["embed_size"],
                "hidden_size": _CURVE["hidden_size"],
                "bfloat16_matmul": bf16,
            },
            batch_size=_CURVE["batch_size"],
            bptt=_CURVE["bptt"],
            seed=args.seed,
            device="cpu",
        )
        rng = np.random.default_rng(args.seed)
        losses = []
        start = time.perf_counter()
        for _ in range(args.loss_curve):
            losses += evaluator.train_steps(space.sample_uniform(rng), 1)
        train_s = time.perf_counter() - start
        probe_rng = np.random.default_rng(args.seed + 1)
        probe = [space.sample_uniform(probe_rng) for _ in range(16)]
        ppl = evaluator.evaluate_many(probe, n_batches=2)
        runs[name] = {"losses": losses, "train_s": train_s, "valid_ppl_16_archs": ppl}
        print(f"{name}: {args.loss_curve} steps in {train_s:.1f} s", file=sys.stderr)
    f32, b16 = runs["float32"], runs["bfloat16"]
    tail = max(1, args.loss_curve // 10)
    window = [(0, tail), (args.loss_curve // 2 - tail // 2, args.loss_curve // 2 + tail // 2)]
    window.append((args.loss_curve - tail, args.loss_curve))
    summary = {
        f"mean_loss_steps_{a}-{b}": {
            k: float(np.mean(runs[k]["losses"][a:b])) for k in ("float32", "bfloat16")
        }
        for a, b in window
    }
    diffs = np.abs(np.array(f32["losses"]) - np.array(b16["losses"]))
    summary["max_abs_loss_diff"] = float(diffs.max())
    summary["mean_abs_loss_diff_last_tenth"] = float(diffs[-tail:].mean())
    summary["valid_ppl_mean"] = {
        k: float(np.mean(runs[k]["valid_ppl_16_archs"])) for k in ("float32", "bfloat16")
    }
    tau = kendalltau(f32["valid_ppl_16_archs"], b16["valid_ppl_16_archs"])
    summary["kendall_tau_valid_ppl_16_archs"] = float(tau.statistic)
    summary["speedup_train"] = f32["train_s"] / b16["train_s"]
    return {
        "mode": "loss_curve",
        "config": {**_CURVE, "vocab_size": corpus.vocab_size, "steps": args.loss_curve},
        "data": str(data_dir) if data_dir is not None and data_dir.is_dir() else "synthetic",
        "summary": summary,
        "runs": runs,
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }


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
        "--json",
        type=Path,
        default=None,
        help=f"output file (default {_DEFAULT_JSON}, with _bf16 or _peer before .json)",
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
    parser.add_argument(
        "--bf16", action="store_true", help="time RNNSupernet(bfloat16_matmul=True) instead"
    )
    parser.add_argument(
        "--peer",
        type=Path,
        default=None,
        metavar="DIR",
        help="side by side with your (patched, see above) checkout of carpedm20/ENAS-pytorch",
    )
    parser.add_argument("--rounds", type=int, default=6, help="--peer: timed rounds (6)")
    parser.add_argument(
        "--no-bf16", dest="bf16_too", action="store_false", help="--peer: skip ours_bf16"
    )
    parser.add_argument(
        "--loss-curve",
        type=int,
        default=None,
        metavar="N",
        help="N steps float32 vs bfloat16 from the same init (400 units, 12 nodes)",
    )
    parser.add_argument(
        "--curve-data",
        type=Path,
        default=PTB_DIR,
        help="corpus directory for --loss-curve (default ../shared/data/ptb; synthetic if absent)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 3 if args.smoke else 10
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")

    if args.loss_curve is not None:
        if args.json is None:
            args.json = _DEFAULT_JSON.with_name("supernet_step_bf16_curve.json")
        load_before = [round(x, 2) for x in os.getloadavg()]
        curve = _loss_curve(args)
        curve["loadavg_before"] = load_before
        curve["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(curve["summary"], indent=2))
        write_json(args.json, curve)
        return
    if args.json is None:
        suffix = "_peer" if args.peer is not None else "_bf16" if args.bf16 else ""
        args.json = _DEFAULT_JSON.with_name(f"supernet_step{suffix}.json")
    if args.peer is not None:
        args.peer = args.peer.resolve()
        if not (args.peer / "models" / "shared_rnn.py").is_file():
            parser.error(f"--peer {args.peer} is not an ENAS-pytorch checkout")
        if args.rounds < 1:
            parser.error("--rounds must be >= 1")
    if args.worker:
        json.dump(_worker(args) if args.peer is None else _peer_worker(args), sys.stdout)
        return

    # Measure in a fresh interpreter so that ru_maxrss is this workload's peak alone.
    env: dict[str, str] = {}
    if args.mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    load_before = [round(x, 2) for x in os.getloadavg()]
    worker = run_worker(__file__, ["--worker", *sys.argv[1:]], threads=None, env=env)
    load_after = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "supernet_step",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        },
        "malloc_mmap_threshold": env.get("MALLOC_MMAP_THRESHOLD_"),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "worker": worker,
    }
    if args.peer is None:
        _print_table(result)
    else:
        _print_peer_table(result)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
