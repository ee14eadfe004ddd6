"""Rank agreement between two scorings of the same architectures (numpy only, torch-free).

Every function takes two equally long sequences of scores where **higher is better** (negate
perplexities first, or use :func:`oriented`). Kendall's tau is tau-b (ties in either scoring
count as in ``scipy.stats.kendalltau``); Spearman's rho is Pearson's correlation of the
average ranks. Top-k compares the ``k`` best of each scoring; ties at the cut are broken by
position, so give distinct scores where that matters.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from optuna_enas._validation import check_int


def _pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"scores must be two 1-d sequences of the same length, but got shapes "
            f"{x.shape} and {y.shape}."
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores must be finite.")
    return x, y


def oriented(values: npt.ArrayLike, direction: str) -> np.ndarray:
    """``values`` as higher-is-better scores: negated when ``direction`` is ``"minimize"``."""
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', but got {direction!r}.")
    x = np.asarray(values, dtype=float)
    return -x if direction == "minimize" else x


def kendall_tau(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Kendall's tau-b of two scorings; NaN when fewer than 2 items or one scoring is constant."""
    x, y = _pair(a, b)
    n = x.size
    if n < 2:
        return math.nan
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(n, k=1)
    sx, sy = dx[upper], dy[upper]
    n_x = float(np.count_nonzero(sx))  # pairs not tied in x
    n_y = float(np.count_nonzero(sy))
    if n_x == 0 or n_y == 0:
        return math.nan
    return float(np.sum(sx * sy) / math.sqrt(n_x * n_y))


def average_ranks(values: npt.ArrayLike) -> np.ndarray:
    """Ranks 1..n of ``values`` (ascending), ties sharing their average rank."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=float)
    sorted_x = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman_rho(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's rho; NaN when fewer than 2 items or one scoring is constant."""
    x, y = _pair(a, b)
    if x.size < 2:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    return math.nan if denom == 0 else float(np.sum(rx * ry) / denom)


def top_k(scores: npt.ArrayLike, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (ties: earlier position first)."""
    x = np.asarray(scores, dtype=float)
    k = check_int("k", k, 1, max(x.size, 1))
    return np.argsort(-x, kind="stable")[:k]


def top_k_overlap(a: npt.ArrayLike, b: npt.ArrayLike, k: int) -> float:
    """The fraction of ``a``'s ``k`` best items that are also among ``b``'s ``k`` best.

    With both sets of size ``k`` this is both the precision and the recall of ``a``'s top-k
    against ``b``'s; 1 means the same set, ``k / n`` is what a random scoring gets on average.
    """
    x, y = _pair(a, b)
    k = check_int("k", k, 1, max(x.size, 1))
    return len(set(top_k(x, k).tolist()) & set(top_k(y, k).tolist())) / k


def top_fraction_k(n: int, fraction: float) -> int:
    """``k`` of a top ``fraction`` of ``n`` items: ``ceil(fraction * n)``, at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], but got {fraction!r}.")
    return max(1, math.ceil(fraction * n - 1e-9))


def rank_agreement(
    predicted: npt.ArrayLike, truth: npt.ArrayLike, *, top_fraction: float = 0.1
) -> dict[str, float]:
    """Kendall tau, Spearman rho and top-k overlap (``k`` the top ``top_fraction``) at once."""
    x, y = _pair(predicted, truth)
    k = top_fraction_k(x.size, top_fraction) if x.size else 1
    return {
        "n": float(x.size),
        "kendall_tau": kendall_tau(x, y),
        "spearman_rho": spearman_rho(x, y),
        "top_k": float(k),
        "top_k_overlap": top_k_overlap(x, y, k) if x.size else math.nan,
    }


__all__ = [
    "average_ranks",
    "kendall_tau",
    "oriented",
    "rank_agreement",
    "spearman_rho",
    "top_fraction_k",
    "top_k",
    "top_k_overlap",
]
