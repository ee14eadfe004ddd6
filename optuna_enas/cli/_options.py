"""Search space, data, device and evaluator options of ``search`` and ``compare``."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas._validation import check_int
from optuna_enas._validation import check_seed
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.training._config import MAX_BATCH_SIZE
from optuna_enas.training._config import MAX_BPTT
from optuna_enas.training._config import TrainingConfig


if TYPE_CHECKING:
    from optuna_enas.data import Corpus
    from optuna_enas.data import ImageData
    from optuna_enas.spaces._search_space import SearchSpace


SPACES = ("rnn", "macro", "micro")
SAMPLERS = ("enas", "random", "tpe")
ONESHOT_METHODS = ("darts", "dsonas")
"""One-shot methods (:mod:`optuna_enas.oneshot`) that ``search``/``compare`` run like samplers."""
METHODS = (*SAMPLERS, *ONESHOT_METHODS)
_SPACE_DEFAULTS = {"rnn": 6, "macro": 6, "micro": 3}
MAX_TRIALS = 10_000_000
"""The largest ``--trials`` accepted (about 10^5 is what ENAS runs; 10^7 is weeks of CPU)."""
MAX_DECISIONS = 10_000
"""The most controller decisions a space may have (the paper's largest has 300)."""
_GIB = 2**30


def check_trials(flag: str, value: int, minimum: int) -> int:
    """``--trials`` in ``[minimum, MAX_TRIALS]``."""
    try:
        return check_int(flag, value, minimum, MAX_TRIALS)
    except ValueError as e:
        raise UsageError(str(e)) from None


def check_seed_arg(flag: str, value: int) -> int:
    """A seed in ``[0, 2**32 - 1]``, numpy's range."""
    try:
        seed = check_seed(flag, value)
    except ValueError as e:
        raise UsageError(str(e)) from None
    assert seed is not None
    return seed


def _n_decisions(name: str, size: int) -> int:
    if name == "rnn":
        return 2 * size - 1
    if name == "micro":
        return 8 * size
    return size + size * (size - 1) // 2  # macro: an op and skip bits to every earlier layer


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def estimate_memory(space_name: str, size: int, args: argparse.Namespace) -> int:
    """A rough upper estimate, in bytes, of what training the supernet needs on the host.

    Parameters x 4 (weights, gradients, momentum, the checkpoint copy) plus the activations of
    one minibatch. A 10,000-word vocabulary and 32x32 images are assumed (PTB, CIFAR-10).
    """
    batch = args.batch_size
    if space_name == "rnn":
        h = args.hidden_size
        edges = size * (size - 1) // 2
        params = (edges + 2) * h * 2 * h + 2 * 10_000 * h
        acts = batch * args.bptt * size * 2 * h * 4
    else:
        c = args.n_filters
        if space_name == "macro":
            params = size * 40 * c * c + size * size * c * c
            acts = batch * c * 32 * 32 * size * 8
        else:
            cells = args.n_cells + 2
            params = cells * 2 * size * (size + 2) * 5 * 4 * c * c
            acts = batch * c * 32 * 32 * cells * size * 12
    return 4 * (4 * params + 3 * acts)


def _check_memory(space_name: str, size: int, args: argparse.Namespace) -> None:
    need = estimate_memory(space_name, size, args)
    available = _available_memory()
    if available is None or need <= available:
        return
    flag = "--n-layers" if space_name == "macro" else "--n-nodes"
    width = (
        f"--hidden-size {args.hidden_size}"
        if space_name == "rnn"
        else f"--n-filters {args.n_filters}"
    )
    raise UsageError(
        f"{flag} {size} with {width} and --batch-size {args.batch_size}: the supernet would "
        f"need about {need / _GIB:.3g} GiB of memory, but {available / _GIB:.3g} GiB are "
        "available; choose a smaller network."
    )


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
    if size >= 1 and _n_decisions(name, size) > MAX_DECISIONS:
        raise UsageError(
            f"--{key.replace('_', '-')} {size} gives a space of {_n_decisions(name, size)} "
            f"decisions; at most {MAX_DECISIONS} are supported."
        )
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
    # Upper bounds: each size reaches an allocation (a list of validation windows, a batch,
    # an unrolled sequence); refused here, before anything is built or written. The network's
    # own sizes (--hidden-size, --n-filters, --n-cells) are bounded by _check_memory below.
    for flag, value, minimum, maximum in (
        ("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE),
        ("--eval-batches", args.eval_batches, 1, 100_000),
        ("--hidden-size", args.hidden_size, 1, None),
        ("--n-filters", args.n_filters, 2, None),
        ("--n-cells", args.n_cells, 1, None),
        ("--bptt", args.bptt, 1, MAX_BPTT),
    ):
        if maximum is None:
            if value < minimum:
                raise UsageError(f"{flag} must be >= {minimum}, but got {value}.")
        elif not minimum <= value <= maximum:
            raise UsageError(f"{flag} must be in [{minimum}, {maximum}], but got {value}.")
    if not math.isfinite(args.train_steps) or not 0 <= args.train_steps <= 1e6:
        raise UsageError(
            f"--train-steps must be a finite number in [0, 1000000], but got {args.train_steps}."
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
    size = args.n_layers if space_name == "macro" else args.n_nodes
    _check_memory(space_name, _SPACE_DEFAULTS[space_name] if size is None else size, args)
    return config


def training_from_config(
    config: Mapping[str, Any], device: str | None
) -> tuple[TrainingConfig, dict[str, Any]]:
    """The training settings of a stored evaluator config (:func:`_evaluator_config`, a study's
    ``"evaluator"``) as one record on ``device``, and the config's other keywords.

    Every command that trains (``search``, ``compare``, ``retrain``, the one-shot methods) builds
    its evaluator, searcher or retraining from this one record rather than from the keys."""
    training, rest = TrainingConfig.split(config)
    return dataclasses.replace(training, device=device), rest


def _metric(space_name: str) -> str:
    from optuna_enas.spaces._kinds import kind_of

    return kind_of(space_name).metric
