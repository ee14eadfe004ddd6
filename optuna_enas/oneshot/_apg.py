"""Soft-thresholding and the modified accelerated proximal gradient (APG) of DSO-NAS.

DSO-NAS (Zhang, Huang and Wang, 2018, "You Only Search Once") drives the scaling factors
``lambda`` of its supernet to exact zeros with the sparse regularisation
``gamma * sum_i c_i * |lambda_i|`` and solves it with the modified APG of Huang and Wang (2018,
"Data-Driven Sparse Structure Selection for Deep Neural Networks", Sec. 3.3, eq. 10-12), which
reformulates Nesterov's accelerated proximal gradient so that it needs one gradient per step
at the current point, like SGD with momentum::

    z_t     = S_{eta * gamma * c}(lambda_{t-1} - eta * grad)          (eq. 10)
    v_t     = mu * v_{t-1} + z_t - lambda_{t-1}                       (eq. 11)
    lambda_t = z_t + mu * v_t                                         (eq. 12)

with ``S_t(x) = sign(x) * max(|x| - t, 0)`` the soft-thresholding operator (the proximal
operator of ``t * |x|``), which produces exact zeros. The official DSO-NAS code
(XinbangZhang/DSO-NAS, ``Cifar/core/optimizer_split.py``, class ``APGNAG``) runs exactly these
three lines and then clamps ``lambda`` at 0 (scaling factors are non-negative); ``nonnegative``
keeps that clamp.

Pruning: :meth:`APG.prune_zeros` freezes every entry that is exactly 0 at 0 for good (its
momentum too), as the official search rebuilds the network without the zero connections every
5 epochs (``Cifar/train_search.py``, the ``range(begin_epoch, num_epoch, 5)`` loop).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable

import torch
from torch import nn

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive


def soft_threshold(x: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """``sign(x) * max(|x| - threshold, 0)``: the proximal operator of ``threshold * |x|``.

    Entries with ``|x| <= threshold`` become exactly 0. ``threshold`` is a float or a tensor
    that broadcasts against ``x`` (non-negative).
    """
    return torch.sign(x) * torch.clamp(x.abs() - threshold, min=0.0)


class APG(torch.optim.Optimizer):
    """The modified accelerated proximal gradient of Huang and Wang (2018) for an L1 penalty.

    Minimises ``f(lambda) + gamma * sum_i c_i * |lambda_i|`` for the parameters given: each
    :meth:`step` reads the gradient of the smooth part ``f`` from ``.grad`` and applies
    eq. 10-12 (see the module docstring). ``c_i`` is 1 unless :meth:`set_penalty_weights` gave a
    same-shape tensor (DSO-NAS's FLOPs-adaptive penalty).

    Args:
        params: The scaling factors (``lambda``).
        lr: Step size ``eta``. DSO-NAS uses the weights' learning rate, 0.1 in its CIFAR search
            (``Cifar/config/cfgs.py``: ``lr = 0.1 if model_search``).
        momentum: ``mu``. 0.9, as the official search (``cfgs.py`` ``momentum = 0.9``).
        gamma: The penalty strength. 0.001, the official CIFAR search (``cfgs.py``
            ``gamma = 0.001``).
        nonnegative: Clamp the parameters at 0 after every step (the official ``APGNAG``).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        *,
        lr: float = 0.1,
        momentum: float = 0.9,
        gamma: float = 0.001,
        nonnegative: bool = True,
    ) -> None:
        if not isinstance(nonnegative, bool):
            raise ValueError(f"nonnegative must be a bool, but got {nonnegative!r}.")
        defaults = {
            "lr": check_positive("lr", lr),
            "momentum": check_fraction("momentum", momentum),
            "gamma": check_non_negative("gamma", gamma),
            "nonnegative": nonnegative,
        }
        super().__init__(list(params), defaults)

    def set_penalty_weights(self, param: torch.Tensor, weights: torch.Tensor) -> None:
        """Use ``gamma * weights`` (same shape as ``param``, >= 0) as ``param``'s L1 weights."""
        if weights.shape != param.shape:
            raise ValueError(
                f"weights must have the shape of param {tuple(param.shape)}, but got "
                f"{tuple(weights.shape)}."
            )
        if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
            raise ValueError("weights must be finite and non-negative.")
        self.state[param]["penalty"] = weights.detach().to(param.device, param.dtype).clone()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, gamma = group["lr"], group["momentum"], group["gamma"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                penalty = state.get("penalty")
                threshold: torch.Tensor | float = (
                    lr * gamma if penalty is None else penalty * (lr * gamma)
                )
                z = soft_threshold(p - lr * p.grad, threshold)  # eq. 10
                v.mul_(mu).add_(z - p)  # eq. 11
                p.copy_(z + mu * v)  # eq. 12
                if group["nonnegative"]:
                    p.clamp_(min=0.0)
                mask = state.get("pruned")
                if mask is not None:
                    # load_state_dict casts state tensors to the parameter's dtype
                    mask = mask.to(torch.bool)
                    p.masked_fill_(mask, 0.0)
                    v.masked_fill_(mask, 0.0)
        return loss

    @torch.no_grad()
    def prune_zeros(self) -> int:
        """Freeze every entry that is exactly 0 now at 0 for good; return how many are frozen."""
        n = 0
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                mask = p == 0
                old = state.get("pruned")
                if old is not None:
                    mask |= old.to(torch.bool)
                state["pruned"] = mask
                if "velocity" in state:
                    state["velocity"].masked_fill_(mask, 0.0)
                n += int(mask.sum())
        return n

    def n_pruned(self) -> int:
        """Entries frozen at 0 by :meth:`prune_zeros`."""
        return sum(
            int(self.state[p]["pruned"].to(torch.bool).sum())
            for group in self.param_groups
            for p in group["params"]
            if "pruned" in self.state[p]
        )


def l1_penalty(
    params: Iterable[torch.Tensor], weights: Iterable[torch.Tensor | None], gamma: float
) -> float:
    """``gamma * sum_i w_i * |lambda_i|`` over ``params`` (``None`` weights count as 1)."""
    total = 0.0
    for p, w in zip(params, weights, strict=True):
        a = p.detach().abs()
        total += float((a if w is None else a * w).sum())
    return gamma * total


def flops_penalty_weights(flops: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per-entry L1 weights proportional to the FLOPs each entry gates, with mean 1.

    DSO-NAS's adaptive-FLOPs variant (the paper's Fig. 5; the official
    ``Cifar/core/optimizer_split_flops.py``) makes the penalty of a connection grow with the
    computation it keeps alive. Normalising to mean 1 over all entries keeps ``gamma``
    comparable with the plain penalty; entries that gate no FLOPs (e.g. an identity) get the
    smallest positive weight seen, so they can still be pruned.
    """
    if not flops:
        return []
    flat = torch.cat([f.detach().double().flatten() for f in flops])
    if bool((flat < 0).any()) or not bool(torch.isfinite(flat).all()):
        raise ValueError("the FLOPs of sparse_groups() must be finite and non-negative.")
    positive = flat[flat > 0]
    floor = float(positive.min()) if positive.numel() else 1.0
    flat = flat.clamp(min=floor)
    mean = float(flat.mean())
    out = []
    for f in flops:
        w = f.detach().double().clamp(min=floor) / mean
        out.append(w.to(f.dtype))
    return out


__all__ = ["APG", "flops_penalty_weights", "l1_penalty", "soft_threshold"]
