"""Search space, data, device and evaluator options of ``search`` and ``compare``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line


if TYPE_CHECKING:
    from optuna_enas.data import Corpus
    from optuna_enas.data import ImageData
    from optuna_enas.spaces._search_space import SearchSpace


SPACES = ("rnn", "macro", "micro")
SAMPLERS = ("enas", "random", "tpe")
_SPACE_DEFAULTS = {"rnn": 6, "macro": 6, "micro": 3}


def _build_space(args: argparse.Namespace) -> SearchSpace:
    from optuna_enas import make_space

    name = args.space
    if args.n_layers is not None and name != "macro":
        raise UsageError(
            f"--n-layers applies to --space macro only, not {name!r} (use --n-nodes)."
        )
    if args.n_nodes is not None and name == "macro":
        raise UsageError(
            "--n-nodes applies to --space rnn and micro, not 'macro' (use --n-layers)."
        )
    size = args.n_layers if name == "macro" else args.n_nodes
    size = _SPACE_DEFAULTS[name] if size is None else size
    key = "n_layers" if name == "macro" else "n_nodes"
    try:
        return make_space(name, **{key: size})
    except ValueError as e:
        raise UsageError(f"--{key.replace('_', '-')} {size!r}: {e}") from e


def _load_data(space_name: str, data: str | None) -> Corpus | ImageData | None:
    from optuna_enas.data import load_cifar10
    from optuna_enas.data import load_corpus

    if data is not None and not Path(data).expanduser().exists():
        raise UsageError(f"--data {data!r} does not exist.")
    try:
        if space_name == "rnn":
            return load_corpus(data)  # None: the embedded synthetic corpus
        return None if data is None else load_cifar10(data)  # None: scikit-learn digits
    except (OSError, ValueError, ImportError) as e:
        raise UsageError(f"--data {data!r}: {_one_line(e)}") from e


def _check_device(device: str | None) -> str | None:
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise UsageError(f"--device {device!r} is not a torch device ({_one_line(e)}).") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device!r}: CUDA is not available on this machine.")
    return device


def _evaluator_config(args: argparse.Namespace, space_name: str) -> dict[str, Any]:
    for flag, value, minimum in (
        ("--batch-size", args.batch_size, 1),
        ("--eval-batches", args.eval_batches, 1),
        ("--hidden-size", args.hidden_size, 1),
        ("--n-filters", args.n_filters, 2),
        ("--n-cells", args.n_cells, 1),
        ("--bptt", args.bptt, 1),
    ):
        if value < minimum:
            raise UsageError(f"{flag} must be >= {minimum}, but got {value}.")
    if not math.isfinite(args.train_steps) or args.train_steps < 0:
        raise UsageError(
            f"--train-steps must be a finite number >= 0, but got {args.train_steps}."
        )
    config: dict[str, Any] = {
        "batch_size": args.batch_size,
        "n_train_steps": args.train_steps,
        "n_eval_batches": args.eval_batches,
    }
    if space_name == "rnn":
        h = args.hidden_size
        config["supernet_kwargs"] = {"embed_size": h, "hidden_size": h}
        config["bptt"] = args.bptt
    else:
        if args.n_filters % 2:
            raise UsageError(f"--n-filters must be even, but got {args.n_filters}.")
        kwargs: dict[str, Any] = {"n_filters": args.n_filters}
        if space_name == "micro":
            kwargs["n_layers"] = args.n_cells
        config["supernet_kwargs"] = kwargs
    if args.lr is not None:
        if not args.lr > 0:
            raise UsageError(f"--lr must be positive, but got {args.lr}.")
        config["lr"] = args.lr
    return config


def _metric(space_name: str) -> str:
    from optuna_enas.spaces._kinds import kind_of

    return kind_of(space_name).metric
