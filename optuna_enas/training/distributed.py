"""Data-parallel supernet training: one architecture per trial, gradients averaged over ranks.

Every rank of a ``torch.distributed`` process group (CPU ranks with ``gloo``, GPUs with
``nccl``) holds a copy of the same :class:`~optuna_enas.SupernetEvaluator`, built
with the same ``seed`` and its own shard of the training data (:func:`shard_training_data`).
The study and its :class:`~optuna_enas.ENASSampler` live on rank 0 only. For each trial every
rank wraps its trial in ``optuna_integration.TorchDistributedTrial`` (rank 0 the real trial,
the others ``None``), so the architecture is sampled once, on rank 0, and broadcast. Each rank
then trains that architecture on its shard; after every backward pass :class:`GradientAverager`
averages the gradients over the ranks, so the shared weights stay identical everywhere, and
rank 0 reports the validation value (every rank computes the same one: the weights and the
validation split are the same).

Example (``torchrun --nproc-per-node 2 search.py``):

    .. code-block:: python

        import optuna
        import torch.distributed as dist
        from optuna_enas import ENASSampler, RNNCellSpace
        from optuna_enas.training.distributed import make_distributed_objective
        from optuna_enas.training.distributed import run_follower
        from optuna_enas.training.distributed import shard_training_data
        from optuna_enas import SupernetEvaluator
        from optuna_enas.data import load_corpus

        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        space = RNNCellSpace(n_nodes=4)
        data = shard_training_data(load_corpus(None), rank=rank, world_size=world)
        objective = make_distributed_objective(SupernetEvaluator(space, data, seed=0))
        if rank == 0:
            study = optuna.create_study(sampler=ENASSampler(space, seed=0))
            study.optimize(objective, n_trials=100)
        else:
            run_follower(objective, n_trials=100)

Limits: every rank must run the same number of trials (use ``n_trials``, not ``timeout``), and
a training loss that is non-finite on some ranks only makes those ranks skip the step while
the others wait in the gradient all-reduce; create the process group with a ``timeout`` so
that this ends in an error instead of a hang.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import overload

import optuna
import torch
import torch.distributed as dist
from torch import nn
from torch.autograd import Variable

from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData


if TYPE_CHECKING:
    from optuna.trial import BaseTrial
    from torch.distributed import ProcessGroup
    from torch.utils.hooks import RemovableHandle

    from optuna_enas.training._evaluator import SupernetEvaluator
    from optuna_enas.training._model_evaluator import ModelEvaluator


def _require_initialized(what: str) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            f"{what} needs an initialized torch.distributed process group; call "
            "torch.distributed.init_process_group first."
        )


def allreduce_gradients(module: nn.Module, *, group: ProcessGroup | None = None) -> None:
    """Replace every parameter gradient of ``module`` by its mean over the ranks of ``group``.

    A parameter without a gradient on some rank counts as a zero gradient there; one without a
    gradient on every rank keeps ``grad=None`` (the optimizer leaves it alone, as it leaves an
    op the architecture does not use). Every rank must call this at the same point.

    Args:
        module: The module whose ``parameters()`` are averaged (same structure on every rank).
        group: The process group; ``None`` is the default group.
    """
    _require_initialized("allreduce_gradients")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    world = dist.get_world_size(group)
    device = params[0].device
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
    has_grad = has_grad.to(device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.SUM, group=group)
    buckets: dict[tuple[torch.device, torch.dtype], list[nn.Parameter]] = {}
    for p, flag in zip(params, has_grad.tolist(), strict=True):
        if flag == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        buckets.setdefault((p.grad.device, p.grad.dtype), []).append(p)
    # Dict order is insertion order, the same on every rank: the collectives line up.
    for bucket in buckets.values():
        grads = [p.grad for p in bucket if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        flat.div_(world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def broadcast_parameters(
    module: nn.Module, *, src: int = 0, group: ProcessGroup | None = None
) -> None:
    """Copy the parameters and buffers of ``module`` on rank ``src`` to every other rank."""
    _require_initialized("broadcast_parameters")
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=src, group=group)


def state_digest(module: nn.Module) -> str:
    """SHA-256 of ``module.state_dict()`` (names, dtypes, shapes, bytes); equal iff bitwise."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@overload
def shard_training_data(data: Corpus, *, rank: int, world_size: int) -> Corpus: ...


@overload
def shard_training_data(data: ImageData, *, rank: int, world_size: int) -> ImageData: ...


def shard_training_data(
    data: Corpus | ImageData, *, rank: int, world_size: int
) -> Corpus | ImageData:
    """Rank ``rank``'s contiguous ``1/world_size`` slice of the training split.

    The validation and test splits are left whole, so every rank scores an architecture on the
    same data (and, its weights being the same, gets the same value). The shards have equal
    sizes (the remainder is dropped), so every rank takes the same number of steps per epoch.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, but got {world_size!r}.")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), but got {rank!r}.")
    n = data.train.numel() if isinstance(data, Corpus) else data.train_y.numel()
    size = n // world_size
    if size < 2:
        raise ValueError(
            f"world_size={world_size} leaves fewer than 2 training examples per rank (of {n})."
        )
    part = slice(rank * size, (rank + 1) * size)
    name = f"{data.name}[shard {rank}/{world_size}]"
    if isinstance(data, Corpus):
        return dataclasses.replace(data, train=data.train[part].clone(), name=name)
    if isinstance(data, ImageData):
        return dataclasses.replace(
            data,
            train_x=data.train_x[part].clone(),
            train_y=data.train_y[part].clone(),
            name=name,
        )
    raise ValueError(f"data must be a Corpus or ImageData, but got {type(data).__name__}.")


class GradientAverager:
    """Average ``module``'s gradients over the ranks at the end of every backward pass.

    Like ``DistributedDataParallel``, but it copes with parameters that get no gradient (the
    ops an architecture does not use) and needs no change to the training loop: a hook on each
    parameter queues one :func:`allreduce_gradients` to run when the backward pass finishes,
    before the caller clips the gradients and steps the optimizer. Every backward pass through
    ``module`` is then a collective call, so every rank must run the same ones.

    Args:
        module: The module to synchronise.
        group: The process group; ``None`` is the default group.
    """

    def __init__(self, module: nn.Module, *, group: ProcessGroup | None = None) -> None:
        _require_initialized("GradientAverager")
        self.module = module
        self.group = group
        self.n_reductions = 0
        self._queued = False
        self._handles: list[RemovableHandle] = [
            p.register_post_accumulate_grad_hook(self._on_grad)
            for p in module.parameters()
            if p.requires_grad
        ]

    def _on_grad(self, param: torch.Tensor) -> None:
        if not self._queued:
            self._queued = True
            Variable._execution_engine.queue_callback(self._reduce)

    def _reduce(self) -> None:
        self._queued = False
        allreduce_gradients(self.module, group=self.group)
        self.n_reductions += 1

    def remove(self) -> None:
        """Remove the hooks; later backward passes are local again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class DistributedObjective:
    """The objective :func:`make_distributed_objective` returns; every rank calls it per trial.

    Attributes:
        evaluator: The wrapped evaluator.
        averager: The :class:`GradientAverager` on the evaluator's supernet.
        last_params: The parameters (the architecture) of the latest call, on every rank.
    """

    def __init__(
        self,
        evaluator: SupernetEvaluator | ModelEvaluator,
        *,
        group: ProcessGroup | None = None,
    ) -> None:
        _require_initialized("make_distributed_objective")
        try:
            from optuna_integration import TorchDistributedTrial
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "make_distributed_objective needs optuna-integration: "
                "pip install 'optuna-enas[distributed]'."
            ) from e
        self._trial_class = TorchDistributedTrial
        self.evaluator = evaluator
        self.group = group
        broadcast_parameters(evaluator.supernet, src=0, group=group)
        self.averager = GradientAverager(evaluator.supernet, group=group)
        self.last_params: dict[str, Any] = {}

    def __call__(self, trial: BaseTrial | None) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            distributed_trial = self._trial_class(trial, self.group)
        try:
            return self.evaluator(distributed_trial)
        finally:
            self.last_params = dict(distributed_trial.params)


def make_distributed_objective(
    evaluator: SupernetEvaluator | ModelEvaluator, *, group: ProcessGroup | None = None
) -> DistributedObjective:
    """Wrap ``evaluator`` into an objective that every rank calls once per trial.

    Rank 0 passes the Optuna trial (``study.optimize(objective, ...)``), the other ranks pass
    ``None`` (:func:`run_follower`). The supernet's weights are broadcast from rank 0 once, and
    a :class:`GradientAverager` keeps them identical afterwards. Each call wraps the trial in
    ``optuna_integration.TorchDistributedTrial``, so the architecture is sampled on rank 0 and
    broadcast, and ``report``/``should_prune`` are decided on rank 0 for every rank.

    Args:
        evaluator: A :class:`~optuna_enas.SupernetEvaluator` or a
            :class:`~optuna_enas.ModelEvaluator` (your own model), built the same way on
            every rank except for the training data (see :func:`shard_training_data`). Give
            only rank 0 a ``checkpoint_path`` (weights and optimizer state are the same on
            every rank); to resume, pass that file as ``resume_from`` on every rank (the
            shards have equal sizes, so it fits; each rank then continues at rank 0's data
            position).
        group: The process group; ``None`` is the default group.
    """
    return DistributedObjective(evaluator, group=group)


def run_follower(objective: Callable[[BaseTrial | None], float], *, n_trials: int) -> None:
    """Run ``objective(None)`` ``n_trials`` times on a rank other than 0.

    Pruned trials (rank 0 decides and broadcasts) are skipped over, as ``study.optimize`` does.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise ValueError(f"n_trials must be a non-negative integer, but got {n_trials!r}.")
    for _ in range(n_trials):
        try:
            objective(None)
        except optuna.TrialPruned:
            pass


__all__ = [
    "DistributedObjective",
    "GradientAverager",
    "allreduce_gradients",
    "broadcast_parameters",
    "make_distributed_objective",
    "run_follower",
    "shard_training_data",
    "state_digest",
]
