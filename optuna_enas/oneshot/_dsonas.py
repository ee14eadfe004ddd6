"""DSO-NAS (Zhang, Huang and Wang, 2018, "You Only Search Once"): search by sparse pruning.

The relaxed supernet (``relaxation="dsonas"``) scales every connection (and every op where the
space has op choice) by a factor ``lambda``, initialised to 1 as the official
``train_search.py`` ``init_param`` does (the relaxed RNN cell keeps its uniform ``1 / n``).
The search

1. *warm-up*: trains the weights only, ``lambda`` fixed (the official README's step 1 trains
   the full network before the search; ``cfgs.py``: 120 epochs there, 120 in the search, so
   ``warmup_fraction=0.5`` of the weight-step budget);
2. *joint training*: alternates a weight step (SGD with Nesterov momentum on the weight half)
   and a ``lambda`` step on the arch half (``solver_split_iter.py``: ``transform_num = 2``,
   one batch each from ``train1`` and ``train2``) that minimises
   ``loss + gamma * sum_i c_i * |lambda_i|`` with the modified APG (:class:`~._apg.APG`):
   soft-thresholding sets ``lambda`` entries to exactly 0;
3. *pruning*: every ``prune_every`` epochs the entries at 0 are frozen at 0 for good (the
   official search rebuilds the network without them every 5 epochs); an op whose every
   connection is pruned is orphaned, and the supernet's :meth:`derive` drops it (per node the
   strongest surviving connection / op; a macro skip exists iff its ``lambda`` is non-zero).

The penalty is the official plain L1, ``c_i = 1`` (``adaptive_flops=False``, the default:
``Cifar/config/cfgs.py`` line 16 ships with ``ad_flops = False``). ``adaptive_flops=True`` is
ours, not the official variant: ``c_i`` is proportional to the FLOPs entry ``i`` gates
(:meth:`RelaxedSupernet.sparse_groups`), normalised to mean 1
(:func:`~._apg.flops_penalty_weights`), so expensive connections are pruned first; at the CLI
sizes that weights a separable conv's entries 16-25x a pooling's and ~200x an identity's, which
favours cheap ops. The official FLOPs variant (``core/optimizer_split_flops.py`` l.53-61)
instead rescales one scalar ``gamma`` per tensor by the share of ops still alive.

Structure (CNN spaces): as the official search network (``dsonas_search_full.py``), one
``lambda`` per (input, op) in front of the op (``{cell}_in``) and one per op output
(``{cell}_op``), all initialised to 1; a block's op reads the ``lambda``-weighted sum of its
inputs (``optuna_enas/oneshot/_relaxed_cnn.py``). The RNN cell, which DSO-NAS never searched,
has one factor per connection and one per activation.

Defaults (CNN spaces), from the official CIFAR search (XinbangZhang/DSO-NAS ``Cifar/``):
weight lr 0.1 (``cfgs.py``: ``lr = 0.1 if model_search``), 0.05 during warm-up (the baseline
training of step 1: ``else 0.05``), constant (the step schedule ``lr_step = [120, 180, 220]``
is never reached in 120 epochs), Nesterov momentum 0.9 (``optimizer = "nag"``, ``momentum =
0.9``), weight decay 1e-4 (``wd``), gradients clipped element-wise at 2.0 (``clip_gradient``,
``train_search.py`` l.158), batch 128 (64 per GPU on 2 GPUs: ``batch_size *= len(gpu_list)``),
``gamma = 0.001``, APG lr = the weights' lr, momentum 0.9, 240 epochs in all. The paper has
no recurrent experiment; on an RNN cell space the weights take the package's ENAS settings
(:data:`optuna_enas.training._optim.DEFAULTS` ``"rnn"``: SGD lr 5, norm clip 0.25, L2 1e-7,
batch 64), ``lambda`` the CNN APG settings except its step size, 0.01: without batch norm
behind it, a cell's ``lambda`` gets large loss gradients, and at 0.1 the non-negative clamp,
not the penalty, zeroes most of them at once. Measured on the 6-node cell, hidden 32, batch 32,
BPTT 20, embedded corpus, seed 0, 120 weight steps (30 of warm-up): relaxed validation
perplexity 89.5 / 25.2 / 26.5 and sparsity 0.87 / 0 / 0 for ``lambda_lr`` 0.1 / 0.01 / 0.001.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.oneshot._apg import APG
from optuna_enas.oneshot._apg import flops_penalty_weights
from optuna_enas.oneshot._apg import l1_penalty
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._searcher import OneShotSearcher
from optuna_enas.oneshot._searcher import clip_coefficient
from optuna_enas.oneshot._searcher import grads_of
from optuna_enas.oneshot._searcher import with_paper_optimizer
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._config import fold_training
from optuna_enas.training._optim import DEFAULTS as ENAS_OPTIM


if TYPE_CHECKING:
    from optuna_enas.dashboard._callback import DashboardCallback


@dataclass(frozen=True)
class DSONASDefaults:
    """The DSO-NAS settings of one kind of space (see the module docstring)."""

    lr: float
    warmup_lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    grad_clip: float  # global norm; inf: none
    grad_clip_value: float | None  # element-wise
    batch_size: int
    lambda_lr: float
    lambda_momentum: float
    gamma: float
    warmup_fraction: float
    prune_every: int
    epochs: int


DSONAS_CNN = DSONASDefaults(
    lr=0.1,  # Cifar/config/cfgs.py: lr = 0.1 if model_search
    warmup_lr=0.05,  # ... else 0.05 (the step-1 baseline training)
    momentum=0.9,  # momentum = 0.9
    nesterov=True,  # train_search.py: optimizer = "nag" (APGNAG for the weights)
    weight_decay=1e-4,  # wd = 0.0001 without the cosine scheduler
    grad_clip=math.inf,
    grad_clip_value=2.0,  # train_search.py: 'clip_gradient': 2.0
    batch_size=128,  # batch_size = 64; batch_size *= len(gpu_list) (2 GPUs)
    lambda_lr=0.1,  # APGNAG uses the optimizer's lr for lambda
    lambda_momentum=0.9,  # ... and its momentum
    gamma=0.001,  # gamma = 0.001
    warmup_fraction=0.5,  # 120 baseline epochs (step 1) + 120 search epochs (step 2)
    prune_every=5,  # train_search.py: for i in range(begin_epoch, num_epoch, 5): prune
    epochs=240,
)
_RNN_OPTIM = ENAS_OPTIM["rnn"]
DSONAS_RNN = DSONASDefaults(
    lr=_RNN_OPTIM.lr,
    warmup_lr=_RNN_OPTIM.lr,
    momentum=_RNN_OPTIM.momentum,
    nesterov=False,
    weight_decay=_RNN_OPTIM.weight_decay,
    grad_clip=_RNN_OPTIM.grad_clip,
    grad_clip_value=None,
    batch_size=64,  # ENAS-pytorch --batch_size
    lambda_lr=0.01,  # measured, see the module docstring (0.1 zeroes lambda by its loss gradient)
    lambda_momentum=0.9,
    gamma=0.001,
    warmup_fraction=0.5,
    prune_every=5,
    epochs=240,
)


def dsonas_defaults(space: SearchSpace) -> DSONASDefaults:
    return DSONAS_RNN if kind_of(space).name == "rnn" else DSONAS_CNN


class DSONAS(OneShotSearcher):
    """DSO-NAS on an ENAS space, recorded in an Optuna study (one COMPLETE trial per epoch).

    Example:

        .. code-block:: python

            import optuna
            from optuna_enas import MacroSpace
            from optuna_enas.oneshot import DSONAS

            space = MacroSpace(n_layers=4)
            searcher = DSONAS(space, seed=0, supernet_kwargs={"n_filters": 8})
            study = optuna.create_study(direction="maximize")
            result = searcher.search(study, n_steps=200, steps_per_epoch=20)

    Args:
        space: An ENAS space.
        data: Its data (``None``: the embedded default).
        seed: Seeds everything; ``None``: fresh.
        training: The training settings shared with the evaluators as one
            :class:`~optuna_enas.TrainingConfig`; a field left ``None`` takes
            the DSO-NAS value of the space's kind. The flat keywords ``supernet_kwargs``,
            ``batch_size``, ``bptt``, ``lr``, ``grad_clip``, ``momentum``, ``weight_decay`` and
            ``device`` are shorthands for its fields; giving one that ``training`` also sets
            raises ``ValueError``. :attr:`training` is the resolved record.
        supernet_kwargs: Keyword arguments of the relaxed and of the discrete supernet.
        batch_size, lr, warmup_lr, momentum, weight_decay, grad_clip, grad_clip_value,
            lambda_lr, lambda_momentum, gamma, warmup_fraction, prune_every, epochs: ``None``
            takes :data:`DSONAS_CNN` / :data:`DSONAS_RNN` (module docstring). ``grad_clip`` is
            a global norm for the weights; ``grad_clip_value`` an element-wise bound for
            weights and ``lambda``.
        adaptive_flops: Weight each ``lambda``'s penalty by the FLOPs it gates (ours; default
            ``False``: the official plain L1).
        bptt, train_portion, eval_batches, device, checkpoint_path, resume_from,
            collapse_threshold, early_stop, distributed, dashboard, supernet: as
            :class:`~optuna_enas.oneshot.DARTS`.
    """

    method = "dsonas"
    relaxation = "dsonas"

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData | None = None,
        *,
        seed: int | None = None,
        training: TrainingConfig | None = None,
        supernet_kwargs: dict[str, Any] | None = None,
        batch_size: int | None = None,
        bptt: int | None = None,
        train_portion: float = 0.5,
        lr: float | None = None,
        warmup_lr: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        grad_clip: float | None = None,
        grad_clip_value: float | None = None,
        lambda_lr: float | None = None,
        lambda_momentum: float | None = None,
        gamma: float | None = None,
        adaptive_flops: bool = False,
        warmup_fraction: float | None = None,
        prune_every: int | None = None,
        epochs: int | None = None,
        eval_batches: int | None = None,
        device: str | torch.device | None = None,
        checkpoint_path: str | Path | None = None,
        resume_from: str | Path | None = None,
        collapse_threshold: float | None = None,
        early_stop: bool = False,
        distributed: bool = False,
        dashboard: DashboardCallback | None = None,
        supernet: RelaxedSupernet | None = None,
    ) -> None:
        d = dsonas_defaults(space)
        training = fold_training(
            training,
            supernet_kwargs=supernet_kwargs,
            batch_size=batch_size,
            bptt=bptt,
            lr=lr,
            grad_clip=grad_clip,
            momentum=momentum,
            weight_decay=weight_decay,
            device=device,
        )
        # The DSO-NAS value of the kind where the record leaves a field unset.
        training = with_paper_optimizer(training, d)
        assert training.lr is not None and training.momentum is not None
        assert training.weight_decay is not None and training.grad_clip is not None
        self.lr = training.lr
        self.warmup_lr = check_positive(
            "warmup_lr", d.warmup_lr if warmup_lr is None else warmup_lr
        )
        self.momentum = training.momentum
        self.nesterov = d.nesterov and self.momentum > 0.0
        self.weight_decay = training.weight_decay
        self.grad_clip = training.grad_clip
        clip_value = d.grad_clip_value if grad_clip_value is None else grad_clip_value
        self.grad_clip_value = (
            None if clip_value is None else check_positive("grad_clip_value", clip_value)
        )
        self.lambda_lr = check_positive(
            "lambda_lr", d.lambda_lr if lambda_lr is None else lambda_lr
        )
        self.lambda_momentum = check_fraction(
            "lambda_momentum", d.lambda_momentum if lambda_momentum is None else lambda_momentum
        )
        self.gamma = check_non_negative("gamma", d.gamma if gamma is None else gamma)
        if not isinstance(adaptive_flops, bool):
            raise ValueError(f"adaptive_flops must be a bool, but got {adaptive_flops!r}.")
        self.adaptive_flops = adaptive_flops
        self.warmup_fraction = check_fraction(
            "warmup_fraction", d.warmup_fraction if warmup_fraction is None else warmup_fraction
        )
        self.prune_every = check_int(
            "prune_every", d.prune_every if prune_every is None else prune_every
        )
        super().__init__(
            space,
            data,
            seed=seed,
            training=training,
            train_portion=train_portion,
            eval_batches=eval_batches,
            default_epochs=check_int("epochs", d.epochs if epochs is None else epochs),
            checkpoint_path=checkpoint_path,
            collapse_threshold=collapse_threshold,
            early_stop=early_stop,
            distributed=distributed,
            dashboard=dashboard,
            supernet=supernet,
        )
        self.weight_optimizer = torch.optim.SGD(
            self.weights,
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )
        self.lambda_optimizer = APG(
            self.arch, lr=self.lambda_lr, momentum=self.lambda_momentum, gamma=self.gamma
        )
        self.penalty_weights: list[torch.Tensor | None] = [None] * len(self.arch)
        if self.adaptive_flops:
            groups = self.model.sparse_groups()
            index = {id(p): i for i, p in enumerate(self.arch)}
            unknown = [p for p, _ in groups if id(p) not in index]
            if unknown or not groups:
                raise ValueError(
                    "adaptive_flops=True needs sparse_groups() over the supernet's "
                    "arch_parameters(); pass adaptive_flops=False for this supernet."
                )
            weights = flops_penalty_weights([f for _, f in groups])
            for (p, _), w in zip(groups, weights, strict=True):
                self.lambda_optimizer.set_penalty_weights(p, w)
                self.penalty_weights[index[id(p)]] = w.to(p.device, p.dtype)
        if resume_from is not None:
            self.load(resume_from)

    def _optimizers(self) -> dict[str, Any]:
        return {"weights": self.weight_optimizer, "lambda": self.lambda_optimizer}

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "adaptive_flops": self.adaptive_flops,
            "warmup_fraction": self.warmup_fraction,
        }

    def warmup_steps(self) -> int:
        """Weight-only steps before the joint training (a share of the whole budget)."""
        if self._plan is None:
            return 0
        return int(round(self.warmup_fraction * self._plan[0]))

    def in_warmup(self) -> bool:
        return self.n_weight_steps < self.warmup_steps()

    def _phase(self) -> str:
        return "warmup" if self.n_weight_steps <= self.warmup_steps() else "search"

    def regularized_objective(self, loss: float) -> float:
        """``loss + gamma * sum_i c_i |lambda_i|`` (what the lambda steps minimise)."""
        return loss + l1_penalty(self.arch, self.penalty_weights, self.gamma)

    def _clip_value(self, grads: list[torch.Tensor]) -> None:
        if self.grad_clip_value is not None:
            for g in grads:
                g.clamp_(-self.grad_clip_value, self.grad_clip_value)

    def _train_step(self, epoch: int, n_epochs: int) -> None:
        warm = self.in_warmup()
        for group in self.weight_optimizer.param_groups:
            group["lr"] = self.warmup_lr if warm else self.lr
        loss = self.next_loss(self.w_task)
        if not self.skip_if_bad(loss, self.w_task):
            grads = grads_of(loss, self.weights)
            self.mean_over_ranks(grads)
            self._clip_value(grads)
            coef = clip_coefficient(grads, self.grad_clip)
            if coef < 1.0:
                for g in grads:
                    g.mul_(coef)
            self.weight_optimizer.zero_grad(set_to_none=True)
            self.set_grads(self.weights, grads)
            self.weight_optimizer.step()
        if warm:
            return
        loss = self.next_loss(self.a_task)
        if self.skip_if_bad(loss, self.a_task):
            return
        grads = grads_of(loss, self.arch)
        self.mean_over_ranks(grads)
        self._clip_value(grads)
        self.lambda_optimizer.zero_grad(set_to_none=True)
        self.set_grads(self.arch, grads)
        self.lambda_optimizer.step()
        self.lambda_optimizer.zero_grad(set_to_none=True)

    def _end_of_epoch(self, epoch: int) -> None:
        if not self.in_warmup() and (epoch + 1) % self.prune_every == 0:
            self.lambda_optimizer.prune_zeros()

    def _score_epoch(self, epoch: int) -> Any:
        record = super()._score_epoch(epoch)
        record.summary["n_pruned"] = float(self.lambda_optimizer.n_pruned())
        return record


__all__ = ["DSONAS", "DSONAS_CNN", "DSONAS_RNN", "DSONASDefaults", "dsonas_defaults"]
