"""DARTS (Liu, Simonyan and Yang, ICLR 2019): bilevel gradient search over a softmax relaxation.

Every edge of the relaxed supernet mixes its candidate ops with ``softmax(alpha)``
(:func:`~optuna_enas.oneshot.build_relaxed` with ``relaxation="darts"``). DARTS alternates

* an *architecture step*: Adam on ``alpha`` with the gradient of the loss on a minibatch of
  the arch half of the training data (Sec. 2.3, eq. 3-4);
* a *weight step*: SGD on the weights with the loss on a minibatch of the weight half,

which is the official ``train`` loop (quark0/darts ``cnn/train_search.py`` lines 135-155:
``architect.step`` then the weight update, on the same training minibatch).

``order=1`` uses ``grad_alpha L_val(w, alpha)`` (the paper's first-order approximation,
``xi = 0``). ``order=2`` differentiates through one unrolled weight step,
``w' = w - xi * (mu * m + grad_w L_train(w, alpha) + wd * w)`` with ``xi`` the current weight
learning rate (Sec. 2.3, eq. 6-7; ``cnn/architect.py`` ``_compute_unrolled_model``, which also
applies the momentum buffer ``m`` and the weight decay)::

    grad_alpha L_val(w', alpha) - xi * grad2_{alpha,w} L_train(w, alpha) grad_w' L_val(w', alpha)

with the matrix-vector product by central finite differences (eq. 8):
``(grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)``,
``w+- = w +- eps * grad_w' L_val(w', alpha)``, ``eps = 0.01 / ||grad_w' L_val(w', alpha)||``
(``architect.py`` ``_hessian_vector_product``, ``r=1e-2``). Clipping follows the official code
of each kind: the convolutional search clips neither the unrolled step nor the vector
(``cnn/architect.py`` ``_compute_unrolled_model``: ``dtheta = grad + wd * theta``); the
recurrent search (``rnn/architect.py``) clips the training gradient of the unrolled step to
``--clip`` 0.25, the clip factor ``c`` counting as a constant of the step,
``w' = w - xi * c * grad``, and scaling the second term (``g.data.sub_(eta * clip_coef,
ig.data)``), and clips the validation-gradient vector ``grad_w' L_val`` to 0.25 before the
Hessian-vector product (``_clip(dtheta, self.network_clip)``). One official quirk is not
copied: ``rnn/architect.py``'s ``_clip`` returns ``0.25 / ||grad||`` even when it is above 1
(no clipping), and the second term is then scaled by it; here ``c <= 1``.

Defaults per kind, each from the official code (the paper's Sec. 3.1.1 and 3.1.2 and
appendix A.1 give the same values):

=================  ===========================  ======================================
setting            CNN (``cnn/``)               RNN (``rnn/``)
=================  ===========================  ======================================
alpha optimiser    Adam lr 3e-4,                Adam lr 3e-3, betas (0.9, 0.999)
                   betas (0.5, 0.999)           (torch's default; ``architect.py`` l.29)
                   (``architect.py`` l.17-18)   (``train_search.py --arch_lr``)
alpha wd           1e-3 (``--arch_weight_decay``)  1e-3 (``--arch_wdecay``)
weight optimiser   SGD lr 0.025, momentum 0.9   SGD lr 20, no momentum
                   (``--learning_rate``,        (``--lr``; ``optim.SGD`` l.268)
                   ``--momentum``)
schedule           cosine to 0.001 over the     constant
                   epochs (``--learning_rate_min``,
                   ``CosineAnnealingLR`` l.103)
weight decay       3e-4 (``--weight_decay``)    5e-7 (``--wdecay``)
gradient clip      5 (``--grad_clip``)          0.25 (``--clip``)
epochs             50 (``--epochs``)            50 (``--epochs``)
batch size         64 (``--batch_size``)        256 (``--batch_size``), BPTT 35
train_portion      0.5 (``--train_portion``)    0.5 (see below)
=================  ===========================  ======================================

The official recurrent search takes the architecture minibatches from the PTB *validation*
split (``search_data = batchify(corpus.valid, ...)``); we cut both streams from the training
split, as the convolutional search does, so the validation split that scores the recorded
trials stays unseen by the search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
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
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._searcher import OneShotSearcher
from optuna_enas.oneshot._searcher import clip_coefficient
from optuna_enas.oneshot._searcher import grads_of
from optuna_enas.oneshot._searcher import with_paper_optimizer
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._config import fold_training


if TYPE_CHECKING:
    from optuna_enas.dashboard._callback import DashboardCallback


@dataclass(frozen=True)
class DartsDefaults:
    """The official DARTS settings of one kind of space (see the module docstring)."""

    lr: float
    lr_min: float | None  # None: constant learning rate
    momentum: float
    weight_decay: float
    grad_clip: float
    batch_size: int
    arch_lr: float
    arch_betas: tuple[float, float]
    arch_weight_decay: float
    epochs: int
    clip_unrolled: bool  # clip the unrolled step and the vector of the Hessian product


DARTS_CNN = DartsDefaults(
    lr=0.025,  # cnn/train_search.py --learning_rate
    lr_min=0.001,  # --learning_rate_min, CosineAnnealingLR(..., eta_min)
    momentum=0.9,  # --momentum
    weight_decay=3e-4,  # --weight_decay
    grad_clip=5.0,  # --grad_clip
    batch_size=64,  # --batch_size
    arch_lr=3e-4,  # --arch_learning_rate
    arch_betas=(0.5, 0.999),  # cnn/architect.py: Adam(..., betas=(0.5, 0.999))
    arch_weight_decay=1e-3,  # --arch_weight_decay
    epochs=50,  # --epochs
    clip_unrolled=False,  # cnn/architect.py: no clipping in the unrolled step
)
DARTS_RNN = DartsDefaults(
    lr=20.0,  # rnn/train_search.py --lr
    lr_min=None,  # plain SGD, no schedule during the search
    momentum=0.0,  # optim.SGD(model.parameters(), lr=args.lr, weight_decay=args.wdecay)
    weight_decay=5e-7,  # --wdecay
    grad_clip=0.25,  # --clip
    batch_size=256,  # --batch_size
    arch_lr=3e-3,  # --arch_lr
    arch_betas=(0.9, 0.999),  # rnn/architect.py: Adam(..., lr=args.arch_lr, ...) default betas
    arch_weight_decay=1e-3,  # --arch_wdecay
    epochs=50,  # --epochs
    clip_unrolled=True,  # rnn/architect.py: _clip(grads), _clip(dtheta) at --clip
)
FINITE_DIFFERENCE_R = 0.01
"""``eps = r / ||v||`` of the Hessian-vector product (``architect.py`` ``r=1e-2``; eq. 8)."""


def darts_defaults(space: SearchSpace) -> DartsDefaults:
    """:data:`DARTS_RNN` for an RNN cell space, :data:`DARTS_CNN` for the CNN spaces."""
    return DARTS_RNN if kind_of(space).name == "rnn" else DARTS_CNN


def cosine_lr(epoch: int, n_epochs: int, lr: float, lr_min: float) -> float:
    """``CosineAnnealingLR(T_max=n_epochs, eta_min=lr_min)`` at ``epoch`` (0 gives ``lr``)."""
    if n_epochs <= 1:
        return lr
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * epoch / n_epochs))


def darts_hypergradient(
    weights: Sequence[torch.nn.Parameter],
    arch: Sequence[torch.nn.Parameter],
    train_loss: Callable[[], torch.Tensor],
    valid_loss: Callable[[], torch.Tensor],
    *,
    eta: float,
    momentum: float = 0.0,
    momentum_buffers: Sequence[torch.Tensor | None] | None = None,
    weight_decay: float = 0.0,
    grad_clip: float = math.inf,
    vector_clip: float = math.inf,
    r: float = FINITE_DIFFERENCE_R,
    reduce: Callable[[Sequence[torch.Tensor]], None] | None = None,
) -> list[torch.Tensor]:
    """The second-order DARTS gradient of the validation loss w.r.t. ``arch`` (eq. 7-8).

    ``train_loss()`` must return the training loss on the *same* minibatch at every call (it
    is called three times: at ``w``, ``w+`` and ``w-``); ``valid_loss()`` is called once, at
    the unrolled weights ``w'``. The weights are restored bit for bit before returning.
    ``reduce``, if given, averages a list of gradients in place over data-parallel ranks.
    ``grad_clip`` bounds the norm of the training gradient of the unrolled step (its factor
    also scales the second term); ``vector_clip`` the norm of ``grad_w' L_val(w', alpha)``
    before the Hessian-vector product (official RNN search: both 0.25; CNN: neither).

    Returns:
        One gradient per ``arch`` parameter.
    """
    weights = list(weights)
    arch = list(arch)
    sync = reduce if reduce is not None else (lambda _: None)
    buffers = list(momentum_buffers) if momentum_buffers is not None else [None] * len(weights)
    g = grads_of(train_loss(), weights)
    sync(g)
    coef = clip_coefficient(g, grad_clip)
    backup = [w.detach().clone() for w in weights]
    try:
        with torch.no_grad():
            for w, gi, buf in zip(weights, g, buffers, strict=True):
                step = coef * gi + weight_decay * w
                if buf is not None and momentum > 0.0:
                    step = step + momentum * buf
                w.sub_(eta * step)
        grads = grads_of(valid_loss(), [*arch, *weights])
        sync(grads)
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    dalpha = [x.detach() for x in grads[: len(arch)]]
    vector = [x.detach() for x in grads[len(arch) :]]
    vcoef = clip_coefficient(vector, vector_clip)
    if vcoef < 1.0:
        vector = [v * vcoef for v in vector]
    norm = math.sqrt(sum(float((v * v).sum()) for v in vector))
    if norm == 0.0 or eta == 0.0:
        return dalpha
    eps = r / norm
    try:
        with torch.no_grad():
            for w, b, v in zip(weights, backup, vector, strict=True):
                w.copy_(b + eps * v)
        grads_plus = grads_of(train_loss(), arch)
        with torch.no_grad():
            for w, b, v in zip(weights, backup, vector, strict=True):
                w.copy_(b - eps * v)
        grads_minus = grads_of(train_loss(), arch)
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    hvp = [(p - m) / (2.0 * eps) for p, m in zip(grads_plus, grads_minus, strict=True)]
    sync(hvp)
    return [d - eta * coef * h for d, h in zip(dalpha, hvp, strict=True)]


def _check_betas(value: Any) -> tuple[float, float]:
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        try:
            betas = (
                check_fraction("arch_betas", value[0]),
                check_fraction("arch_betas", value[1]),
            )
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"arch_betas must be two floats in [0, 1), but got {value!r}.")
    return betas


class DARTS(OneShotSearcher):
    """DARTS on an ENAS space, recorded in an Optuna study (one COMPLETE trial per epoch).

    Example:

        .. code-block:: python

            import optuna
            from optuna_enas import MicroSpace
            from optuna_enas.oneshot import DARTS

            space = MicroSpace(n_nodes=2)
            searcher = DARTS(space, order=1, seed=0, supernet_kwargs={"n_filters": 8})
            study = optuna.create_study(direction="maximize")
            result = searcher.search(study, n_steps=200, steps_per_epoch=20)
            print(result.architecture, result.value)

    Args:
        space: An ENAS space (``RNNCellSpace``, ``MicroSpace``, ``MacroSpace``).
        data: Its data (``None``: the embedded default: a small corpus, or digits).
        order: 1 (first-order approximation) or 2 (unrolled, finite-difference
            Hessian-vector product).
        seed: Seeds everything (initialisation, shuffling, dropout); ``None``: fresh.
        training: The training settings shared with the evaluators (supernet size, minibatch,
            weight SGD, device) as one :class:`~optuna_enas.TrainingConfig`;
            a field left ``None`` takes the official DARTS value of the space's kind. The flat
            keywords ``supernet_kwargs``, ``batch_size``, ``bptt``, ``lr``, ``grad_clip``,
            ``momentum``, ``weight_decay`` and ``device`` are shorthands for its fields; giving
            one that ``training`` also sets raises ``ValueError``. :attr:`training` is the
            resolved record.
        supernet_kwargs: Keyword arguments of the relaxed and of the discrete supernet.
        batch_size, lr, lr_min, momentum, weight_decay, grad_clip, arch_lr, arch_betas,
            arch_weight_decay, epochs: ``None`` takes the official value of the space's kind
            (:data:`DARTS_CNN`, :data:`DARTS_RNN`; table in the module docstring). ``lr_min``
            ``None`` on an RNN space keeps the learning rate constant; ``epochs`` is the
            default budget when :meth:`search` gets no ``n_steps``.
        bptt: Truncated-BPTT length (RNN). ``None``: 35, as ``rnn/train_search.py --bptt``.
        train_portion: Share of the training split that trains the weights; the rest trains
            alpha. 0.5 (``--train_portion``).
        r: Finite-difference scale of the second-order step (0.01, ``architect.py``).
        clip_unrolled: Second order: clip the unrolled step's gradient and the vector of the
            Hessian-vector product at ``grad_clip``. ``None``: the official choice of the kind
            (RNN yes, ``rnn/architect.py``; CNN no, ``cnn/architect.py``).
        eval_batches: Validation minibatches per epoch score; ``None``: the whole split.
        device: Torch device; ``None``: CUDA when available.
        checkpoint_path: Checkpoint written atomically after every epoch.
        resume_from: A checkpoint to continue from (same arguments).
        collapse_threshold: Warn when ``param_free_share`` rises above it; ``None``: the
            space's uniform-random share (:mod:`optuna_enas.oneshot._collapse`).
        early_stop: Stop at the crossing (DARTS+ early stopping).
        distributed: Data-parallel over the initialised ``torch.distributed`` group.
        dashboard: Draws each recorded trial on the optuna-dashboard trial page.
        supernet: A ready relaxed supernet (``relaxation="darts"``) instead of building one.
    """

    method = "darts"
    relaxation = "darts"

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData | None = None,
        *,
        order: int = 1,
        seed: int | None = None,
        training: TrainingConfig | None = None,
        supernet_kwargs: dict[str, Any] | None = None,
        batch_size: int | None = None,
        bptt: int | None = None,
        train_portion: float = 0.5,
        lr: float | None = None,
        lr_min: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        grad_clip: float | None = None,
        clip_unrolled: bool | None = None,
        arch_lr: float | None = None,
        arch_betas: tuple[float, float] | None = None,
        arch_weight_decay: float | None = None,
        epochs: int | None = None,
        r: float = FINITE_DIFFERENCE_R,
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
        d = darts_defaults(space)
        if isinstance(order, bool) or order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, but got {order!r}.")
        self.order = int(order)
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
        # The official DARTS value of the kind where the record leaves a field unset.
        training = with_paper_optimizer(training, d)
        assert training.lr is not None and training.momentum is not None
        assert training.weight_decay is not None and training.grad_clip is not None
        self.lr = training.lr
        lr_min = d.lr_min if lr_min is None else lr_min
        self.lr_min = None if lr_min is None else check_non_negative("lr_min", lr_min)
        self.momentum = training.momentum
        self.weight_decay = training.weight_decay
        self.grad_clip = training.grad_clip
        clip_unrolled = d.clip_unrolled if clip_unrolled is None else clip_unrolled
        if not isinstance(clip_unrolled, bool):
            raise ValueError(f"clip_unrolled must be a bool or None, but got {clip_unrolled!r}.")
        self.clip_unrolled = clip_unrolled
        self.arch_lr = check_positive("arch_lr", d.arch_lr if arch_lr is None else arch_lr)
        self.arch_betas = _check_betas(d.arch_betas if arch_betas is None else arch_betas)
        self.arch_weight_decay = check_non_negative(
            "arch_weight_decay",
            d.arch_weight_decay if arch_weight_decay is None else arch_weight_decay,
        )
        self.r = check_positive("r", r)
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
            self.weights, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        self.arch_optimizer = torch.optim.Adam(
            self.arch, lr=self.arch_lr, betas=self.arch_betas, weight_decay=self.arch_weight_decay
        )
        if resume_from is not None:
            self.load(resume_from)

    def _optimizers(self) -> dict[str, Any]:
        return {"weights": self.weight_optimizer, "arch": self.arch_optimizer}

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "order": self.order}

    def weight_lr(self, epoch: int, n_epochs: int) -> float:
        """The weight learning rate of ``epoch`` (cosine for CNN, constant for RNN)."""
        if self.lr_min is None:
            return self.lr
        return cosine_lr(epoch, n_epochs, self.lr, self.lr_min)

    def arch_gradient(self) -> tuple[list[torch.Tensor], Callable[[], torch.Tensor] | None]:
        """The gradient for ``alpha`` of this step, and (order 2) the replayable train loss."""
        if self.order == 1:
            loss = self.next_loss(self.a_task)
            if self.skip_if_bad(loss, self.a_task):
                return [], None
            grads = grads_of(loss, self.arch)
            self.mean_over_ranks(grads)
            return grads, None
        train_loss = self.replayable_loss(self.w_task)
        buffers = [
            self.weight_optimizer.state.get(w, {}).get("momentum_buffer") for w in self.weights
        ]
        grads = darts_hypergradient(
            self.weights,
            self.arch,
            train_loss,
            lambda: self.next_loss(self.a_task),
            eta=self.weight_optimizer.param_groups[0]["lr"],
            momentum=self.momentum,
            momentum_buffers=buffers,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip if self.clip_unrolled else math.inf,
            vector_clip=self.grad_clip if self.clip_unrolled else math.inf,
            r=self.r,
            reduce=self.mean_over_ranks,
        )
        return grads, train_loss

    def _train_step(self, epoch: int, n_epochs: int) -> None:
        lr = self.weight_lr(epoch, n_epochs)
        for group in self.weight_optimizer.param_groups:
            group["lr"] = lr
        # architecture step (Sec. 2.3 step 1), then the weight step on the training minibatch
        grads, train_loss = self.arch_gradient()
        if grads and all(bool(torch.isfinite(g).all()) for g in grads):
            self.arch_optimizer.zero_grad(set_to_none=True)
            self.set_grads(self.arch, grads)
            self.arch_optimizer.step()
        elif grads:
            self.n_skipped += 1
        loss = train_loss() if train_loss is not None else self.next_loss(self.w_task)
        if self.skip_if_bad(loss, self.w_task):
            return
        wgrads = grads_of(loss, self.weights)
        self.mean_over_ranks(wgrads)
        coef = clip_coefficient(wgrads, self.grad_clip)
        if coef < 1.0:
            for g in wgrads:
                g.mul_(coef)
        self.weight_optimizer.zero_grad(set_to_none=True)
        self.set_grads(self.weights, wgrads)
        self.weight_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)


__all__ = [
    "DARTS",
    "DARTS_CNN",
    "DARTS_RNN",
    "FINITE_DIFFERENCE_R",
    "DartsDefaults",
    "cosine_lr",
    "darts_defaults",
    "darts_hypergradient",
]
