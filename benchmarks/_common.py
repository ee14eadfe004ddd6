"""Shared helpers for the benchmark scripts: machine facts, memory, the CLI's defaults, worker
subprocesses, JSON output, tables.

Every script imports them the same way, so that it runs as ``python benchmarks/NAME.py`` from
anywhere (and as ``benchmarks.NAME`` under the tests)::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from benchmarks._common import write_json  # noqa: E402
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any


REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
"""Where the scripts write their JSON by default."""
PTB_DIR = REPO.parent / "shared" / "data" / "ptb"
"""Penn Treebank (``../shared/data/ptb``, outside the repository); scripts fall back to the
synthetic corpus when it is absent."""
ENAS_PYTORCH_PTB: dict[str, int] = {
    "n_nodes": 12,
    "embed_size": 1000,
    "hidden_size": 1000,
    "batch_size": 64,
    "bptt": 35,
}
"""The recurrent supernet of carpedm20/ENAS-pytorch's PTB default (``config.py``: ``num_blocks``
12, ``shared_embed`` and ``shared_hid`` 1000, ``batch_size`` 64, ``shared_rnn_max_length``
35), the peer the throughput benchmarks compare against."""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def rss_mib() -> float:
    """This process's resident memory now, in MiB (``/proc/self/statm``; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def cli_defaults(space_name: str) -> dict[str, Any]:
    """What ``optuna-enas search --space SPACE`` trains without size flags, read from the CLI's
    own parser (not retyped): the space's ``size`` (``n_nodes``, or ``n_layers`` for macro),
    the supernet's ``kwargs``, ``batch_size`` and ``bptt``."""
    from optuna_enas.cli._options import _SPACE_DEFAULTS
    from optuna_enas.cli._options import _evaluator_config
    from optuna_enas.cli._parser import build_parser

    args = build_parser().parse_args(["search", "--space", space_name])
    config = _evaluator_config(args, space_name)
    return {
        "size": _SPACE_DEFAULTS[space_name],
        "kwargs": dict(config["supernet_kwargs"]),
        "batch_size": config["batch_size"],
        "bptt": args.bptt,
    }


def cli_space(space_name: str) -> Any:
    """The search space ``optuna-enas search --space SPACE`` builds without size flags."""
    from optuna_enas.spaces import make_space

    key = "n_layers" if space_name == "macro" else "n_nodes"
    return make_space(space_name, **{key: cli_defaults(space_name)["size"]})


def run_worker(
    script: str | Path,
    args: Sequence[str],
    *,
    threads: int | None = 1,
    env: dict[str, str] | None = None,
) -> Any:
    """Run ``python SCRIPT ARGS`` in a fresh interpreter (so that its peak RSS is its own) and
    return the JSON of the last line it prints.

    ``threads`` sets ``OMP_NUM_THREADS`` (``None``: as inherited); ``env`` adds variables.
    """
    env = {**os.environ, **(env or {})}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(script), *args]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class FixedTrial:
    """A stand-in trial with fixed params for one from-scratch run (no storage): what
    :class:`~optuna_enas.StandaloneEvaluator` asks of a trial."""

    def __init__(self, params: dict[str, Any], number: int) -> None:
        self.params = params
        self.number = number

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.params[name]

    def set_user_attr(self, key: str, value: Any) -> None:
        pass

    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return False


def machine_info() -> dict[str, Any]:
    import numpy
    import optuna
    import torch

    import optuna_enas

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "optuna": optuna.__version__,
        "numpy": numpy.__version__,
        "optuna_enas": optuna_enas.__version__,
        "cuda": torch.cuda.is_available(),
    }


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_average_at_end": os.getloadavg(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


def ratios_to_base(
    rows: list[dict[str, Any]],
    *,
    base: tuple[str, str],
    ratios: Mapping[str, str],
    group: str = "space",
) -> None:
    """Add to every row ``name: row[column] / base_row[column]`` for ``name, column`` in
    ``ratios``, where ``base_row`` is the row of the same ``group`` whose ``base[0]`` column
    is ``base[1]`` (e.g. ``base=("method", "enas")``)."""
    key, value = base
    bases = {r[group]: r for r in rows if r[key] == value}
    for r in rows:
        b = bases[r[group]]
        for name, column in ratios.items():
            r[name] = r[column] / b[column]


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)))
