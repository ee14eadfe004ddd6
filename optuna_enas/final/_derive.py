"""After the search: derive the final architecture, retrain it from scratch, export it.

ENAS (Pham et al., 2018, Sec. 2.2 "Deriving Architectures") samples several models from the
trained policy, scores each with the shared weights, and retrains only the best from scratch;
carpedm20/ENAS-pytorch samples 100 (``--derive_num_sample 100``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal
from typing import Protocol

import optuna
import torch
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from torch import nn

from optuna_enas.data._corpus import DEFAULT_BATCH_SIZE
from optuna_enas.data._corpus import DEFAULT_BPTT
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.spaces._enas import space_from_dict
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._training import _as_architecture
from optuna_enas.training._training import _check_int
from optuna_enas.training._training import _default_data
from optuna_enas.training._training import _fresh_seed
from optuna_enas.training._training import _resolve_device
from optuna_enas.training._training import _resolve_optim
from optuna_enas.training._training import _space_kind
from optuna_enas.training._training import train_from_scratch


_logger = logging.getLogger(__name__)

DERIVE_TAG = "derive"
"""Value of the ``enas:tag`` user attr of the trials :func:`derive` adds."""
_FORMAT = "optuna-enas-architecture"
_VERSION = 1

ArchitectureSource = (
    Iterable[Architecture] | Callable[[], Architecture] | Any  # Any: has sample_architectures(n)
)


class Scorer(Protocol):
    """What :func:`derive` needs of an evaluator (:class:`SupernetEvaluator` has it)."""

    @property
    def space(self) -> SearchSpace: ...

    @property
    def direction(self) -> Literal["minimize", "maximize"]: ...

    def evaluate(self, arch: Architecture, *, split: Any = ..., full: bool = ...) -> float: ...


@dataclass(frozen=True)
class DerivedArchitecture:
    """One scored architecture of :func:`derive`.

    Args:
        architecture: The architecture.
        value: Its metric on the full validation set with the shared weights.
        rank: 0 for the best.
        trial_number: The study trial that records it (``None`` without a study).
    """

    architecture: Architecture
    value: float
    rank: int
    trial_number: int | None = None


def _draw(source: ArchitectureSource, n: int, seed: int | None) -> list[Architecture]:
    if hasattr(source, "sample_architectures"):
        archs = source.sample_architectures(n, seed=seed)
    elif callable(source):
        archs = [source() for _ in range(n)]
    elif isinstance(source, Iterable):
        archs = list(itertools.islice(source, n))
    else:
        raise ValueError(
            "sampler_or_architectures must be an iterable of Architecture, a callable "
            f"returning one, or have sample_architectures(n), but got {source!r}."
        )
    if not archs:
        raise ValueError("sampler_or_architectures gave no architectures.")
    for a in archs:
        if not isinstance(a, Architecture):
            raise ValueError(
                f"sampler_or_architectures must give Architecture objects, but gave {a!r}."
            )
    return list(archs)


def derive(
    study: optuna.Study | None,
    sampler_or_architectures: ArchitectureSource,
    evaluator: Scorer,
    *,
    n_samples: int = 100,
    top_k: int = 1,
    seed: int | None = None,
) -> list[DerivedArchitecture]:
    """Sample architectures, score each on the full validation set, return the best ``top_k``.

    Every distinct architecture is scored once with ``evaluator.evaluate(arch, split="valid",
    full=True)`` and, when ``study`` is given, added to it as a COMPLETE trial with the user
    attrs ``enas:tag = "derive"``, ``enas:derive_rank`` and ``enas:derive_id`` (one id per call).
    ENAS scores each sample on a single validation minibatch; the full set is less noisy and
    cheap for small models. An :class:`~optuna_enas.ENASSampler` that keeps optimizing the
    study learns from these trials too (as off-policy samples); pass ``study=None`` to avoid it.

    Args:
        study: Where the scored architectures are recorded; its direction must match
            ``evaluator.direction``. ``None`` records nothing.
        sampler_or_architectures: An object with ``sample_architectures(n, seed=...)`` (the
            trained :class:`~optuna_enas.ENASSampler`), a callable returning one architecture,
            or an iterable of architectures (the first ``n_samples`` are used).
        evaluator: A trained :class:`~optuna_enas.training._evaluator.SupernetEvaluator`.
        n_samples: Architectures to sample (ENAS-pytorch ``--derive_num_sample 100``).
        top_k: How many of the best to return.
        seed: Passed to ``sample_architectures``.

    Returns:
        The ``top_k`` best, best first.
    """
    _check_int("n_samples", n_samples, 1)
    _check_int("top_k", top_k, 1)
    space = evaluator.space
    direction = evaluator.direction
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"evaluator.direction must be minimize or maximize, got {direction!r}.")
    if study is not None:
        expected = StudyDirection.MINIMIZE if direction == "minimize" else StudyDirection.MAXIMIZE
        if study.direction != expected:
            raise ValueError(
                f"study.direction is {study.direction.name.lower()}, but the evaluator's metric "
                f"needs {direction}."
            )
    archs = [_as_architecture(space, a) for a in _draw(sampler_or_architectures, n_samples, seed)]
    unique = list(dict.fromkeys(archs))
    scored = [(a, float(evaluator.evaluate(a, split="valid", full=True))) for a in unique]
    sign = 1.0 if direction == "minimize" else -1.0
    scored.sort(key=lambda p: sign * p[1] if not math.isnan(p[1]) else math.inf)
    _logger.info(
        f"Derived {len(scored)} distinct architectures of {len(archs)} samples; best "
        f"{scored[0][1]:.6g}: {space.describe(scored[0][0])}."
    )
    numbers: dict[int, int] = {}
    if study is not None:
        derive_id = uuid.uuid4().hex
        distributions: dict[str, BaseDistribution] = dict(space.distributions())
        for rank, (arch, value) in enumerate(scored):
            study.add_trial(
                optuna.trial.create_trial(
                    params=arch.to_params(),
                    distributions=distributions,
                    value=value,
                    user_attrs={
                        "enas:tag": DERIVE_TAG,
                        "enas:derive_rank": rank,
                        "enas:derive_id": derive_id,
                        "architecture": space.describe(arch),
                    },
                )
            )
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("enas:derive_id") == derive_id:
                numbers[int(t.user_attrs["enas:derive_rank"])] = t.number
    return [
        DerivedArchitecture(architecture=a, value=v, rank=r, trial_number=numbers.get(r))
        for r, (a, v) in enumerate(scored[:top_k])
    ]


@dataclass(frozen=True, eq=False)
class RetrainResult:
    """The outcome of :func:`retrain`.

    Args:
        architecture: The architecture.
        metric: ``"ppl"`` or ``"accuracy"``.
        valid_value: Full validation-set metric after the last epoch.
        test_value: Full test-set metric after the last epoch.
        history: Validation metric after each epoch.
        model: The trained network (a supernet used only with ``architecture``).
    """

    architecture: Architecture
    metric: str
    valid_value: float
    test_value: float
    history: tuple[float, ...]
    model: nn.Module


def retrain(
    arch: Architecture,
    space: SearchSpace,
    data: Corpus | ImageData | None = None,
    *,
    n_epochs: int = 10,
    n_steps_per_epoch: int | None = None,
    supernet_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    bptt: int = DEFAULT_BPTT,
    lr: float | None = None,
    grad_clip: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
) -> RetrainResult:
    """Train ``arch`` from scratch in a fresh model and report its test metric.

    The model is a new supernet (no shared weights) trained on ``arch`` alone with the same
    optimizer defaults as :class:`~optuna_enas.SupernetEvaluator`, constant learning rate.
    ENAS retrains far longer with learning-rate decay and heavy regularization
    (``ptb_final.sh``); pass larger ``supernet_kwargs``/``n_epochs`` for that.

    Args:
        arch: The architecture (e.g. ``derive(...)[0].architecture``).
        space: Its search space.
        data: A Corpus (RNN) or ImageData (CNN); ``None``: the embedded defaults.
        n_epochs: Training epochs.
        n_steps_per_epoch: Minibatches per epoch; ``None``: one pass over the training data.
        supernet_kwargs: Model size and dropout (see the supernets).
        batch_size: Training minibatch size.
        bptt: Truncated-BPTT length (RNN).
        lr: SGD learning rate (default per space, see the evaluator).
        grad_clip: Maximum gradient norm (default per space).
        momentum: SGD momentum (default per space).
        weight_decay: L2 penalty (default per space).
        device: Torch device; ``None`` picks CUDA when available.
        seed: Seed of initialization and shuffling; ``None`` draws one.
    """
    kind = _space_kind(space)
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, but got {arch!r}.")
    arch = _as_architecture(space, arch)
    _check_int("n_epochs", n_epochs, 1)
    if n_steps_per_epoch is not None:
        _check_int("n_steps_per_epoch", n_steps_per_epoch, 1)
    if seed is not None:
        _check_int("seed", seed, 0)
    data = _default_data(space, data)
    model, history, score = train_from_scratch(
        space,
        data,
        arch,
        n_epochs=n_epochs,
        n_steps_per_epoch=n_steps_per_epoch,
        supernet_kwargs=dict(supernet_kwargs or {}),
        batch_size=_check_int("batch_size", batch_size, 1),
        bptt=_check_int("bptt", bptt, 1),
        optim=_resolve_optim(kind, lr, grad_clip, momentum, weight_decay),
        device=_resolve_device(device),
        seed=seed if seed is not None else _fresh_seed(),
    )
    metric = "ppl" if kind == "rnn" else "accuracy"
    result = RetrainResult(
        architecture=arch,
        metric=metric,
        valid_value=history[-1],
        test_value=score("test"),
        history=tuple(history),
        model=model,
    )
    _logger.info(
        f"Retrained {space.describe(arch)}: valid {metric} {result.valid_value:.6g}, test "
        f"{metric} {result.test_value:.6g}."
    )
    return result


def export_architecture(arch: Architecture, space: SearchSpace, path: str | Path) -> Path:
    """Write ``arch`` and its space as JSON (atomically), with the ENAS ``fixed_arc`` string.

    The file holds ``format``, ``version``, ``space`` (:meth:`SearchSpace.to_dict`),
    ``architecture`` (``{"space", "params"}``), ``fixed_arc`` (accepted by the official ENAS
    scripts for the ENAS spaces) and a human-readable ``description``.
    """
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, but got {arch!r}.")
    arch = space.architecture(arch.to_params())
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "space": space.to_dict(),
        "architecture": json.loads(arch.to_json()),
        "fixed_arc": space.to_fixed_arc(arch),
        "description": space.describe(arch),
    }
    dest = Path(path).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest


def import_architecture(path: str | Path) -> tuple[Architecture, SearchSpace]:
    """Read a file written by :func:`export_architecture`.

    A hand-written file may give only ``space`` and ``fixed_arc``.

    Returns:
        The architecture and its search space.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not valid JSON, not an architecture file, or inconsistent.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: architecture file does not exist.")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"path={str(path)!r} is not a JSON architecture file ({e}).") from e
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"path={str(path)!r} is not an optuna-enas architecture file.")
    if data.get("version") != _VERSION:
        raise ValueError(
            f"path={str(path)!r} has version {data.get('version')!r}; expected {_VERSION}."
        )
    try:
        space = space_from_dict(data["space"])
        if "architecture" in data:
            arch = Architecture.from_json(json.dumps(data["architecture"]))
            arch = space.architecture(arch.to_params())
            if "fixed_arc" in data and space.to_fixed_arc(arch) != data["fixed_arc"]:
                raise ValueError(
                    f"fixed_arc {data['fixed_arc']!r} disagrees with the params "
                    f"({space.to_fixed_arc(arch)!r})."
                )
        else:
            arch = space.from_fixed_arc(str(data["fixed_arc"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"path={str(path)!r} holds an invalid architecture: {e}") from e
    return arch, space


__all__ = [
    "DERIVE_TAG",
    "DerivedArchitecture",
    "RetrainResult",
    "derive",
    "export_architecture",
    "import_architecture",
    "retrain",
]
