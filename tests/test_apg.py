"""Soft-thresholding and the modified APG of DSO-NAS on convex problems with known solutions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optuna_enas.oneshot._apg import APG
from optuna_enas.oneshot._apg import flops_penalty_weights
from optuna_enas.oneshot._apg import l1_penalty
from optuna_enas.oneshot._apg import soft_threshold


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_soft_threshold_is_the_l1_prox_with_exact_zeros() -> None:
    x = torch.tensor([-3.0, -0.5, 0.0, 0.2, 0.5, 2.0])
    out = soft_threshold(x, 0.5)
    assert out.tolist() == [-2.5, 0.0, 0.0, 0.0, 0.0, 1.5]
    # A tensor threshold applies entry by entry.
    out = soft_threshold(x, torch.tensor([1.0, 0.1, 0.0, 0.3, 0.1, 3.0]))
    assert out.tolist() == pytest.approx([-2.0, -0.4, 0.0, 0.0, 0.4, 0.0])
    # prox property: argmin_z 0.5 (z - x)^2 + t |z| on a fine grid.
    grid = torch.linspace(-4, 4, 80001, dtype=torch.float64)
    for xi in (-3.0, -0.3, 0.7, 2.5):
        obj = 0.5 * (grid - xi) ** 2 + 0.5 * grid.abs()
        best = float(grid[obj.argmin()])
        assert float(soft_threshold(torch.tensor(xi, dtype=torch.float64), 0.5)) == pytest.approx(
            best, abs=2e-4
        )


def _lasso(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """An orthogonal-design lasso: X^T X / n = I, so the solution is S_gamma(X^T y / n)."""
    g = torch.Generator().manual_seed(seed)
    n, d = 64, 12
    q, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    x = q * n**0.5
    beta = torch.tensor([3.0, -2.0, 1.5, 0, 0, 0, 0, 0, 0, 0, 0.05, -0.08], dtype=torch.float64)
    y = x @ beta + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    gamma = 0.3
    solution = soft_threshold(x.T @ y / n, gamma)
    return x, y, solution, gamma


def _objective(x: torch.Tensor, y: torch.Tensor, b: torch.Tensor, gamma: float) -> float:
    n = y.numel()
    return float(0.5 * ((y - x @ b) ** 2).sum() / n) + l1_penalty([b], [None], gamma)


def test_apg_solves_a_lasso_with_exact_zeros_and_decreases_the_objective() -> None:
    x, y, solution, gamma = _lasso()
    assert int((solution == 0).sum()) >= 7  # the planted problem has a sparse solution
    b = nn.Parameter(torch.zeros(x.shape[1], dtype=torch.float64))
    opt = APG([b], lr=0.1, momentum=0.9, gamma=gamma, nonnegative=False)
    n = y.numel()
    objectives = [_objective(x, y, b.detach(), gamma)]
    for _ in range(300):
        opt.zero_grad()
        loss = 0.5 * ((y - x @ b) ** 2).sum() / n
        loss.backward()
        opt.step()
        objectives.append(_objective(x, y, b.detach(), gamma))
    optimum = _objective(x, y, solution, gamma)
    assert objectives[-1] == pytest.approx(optimum, rel=1e-9)
    assert objectives[-1] < 0.5 * objectives[0]
    # Accelerated, not monotone step by step, but every tail objective is below the start.
    assert max(objectives[50:]) < objectives[0]
    assert torch.allclose(b.detach(), solution, atol=1e-8)
    # Soft-thresholding puts the small coefficients at exactly 0, not merely near it.
    zeros = solution == 0
    assert bool((b.detach()[zeros] == 0).all())
    assert bool((b.detach()[~zeros] != 0).all())


def test_plain_gradient_descent_on_the_same_lasso_leaves_no_exact_zeros() -> None:
    # The control: a subgradient method oscillates around 0 instead of reaching it.
    x, y, solution, gamma = _lasso()
    b = nn.Parameter(torch.zeros(x.shape[1], dtype=torch.float64))
    opt = torch.optim.SGD([b], lr=0.05, momentum=0.9)
    for _ in range(300):
        opt.zero_grad()
        loss = 0.5 * ((y - x @ b) ** 2).sum() / y.numel() + gamma * b.abs().sum()
        loss.backward()
        opt.step()
    assert int((b.detach() == 0).sum()) < int((solution == 0).sum())


def test_nonnegative_apg_clamps_and_solves_the_nonnegative_lasso() -> None:
    x, y, _, gamma = _lasso()
    b = nn.Parameter(torch.ones(x.shape[1], dtype=torch.float64))
    opt = APG([b], lr=0.1, momentum=0.9, gamma=gamma)
    for _ in range(400):
        opt.zero_grad()
        (0.5 * ((y - x @ b) ** 2).sum() / y.numel()).backward()
        opt.step()
        assert bool((b.detach() >= 0).all())
    # Orthogonal design: the non-negative solution is max(X^T y / n - gamma, 0).
    expected = torch.clamp(x.T @ y / y.numel() - gamma, min=0.0)
    assert torch.allclose(b.detach(), expected, atol=1e-8)
    assert bool((b.detach()[expected == 0] == 0).all())


def test_penalty_weights_prune_the_expensive_entries_first() -> None:
    # Two equally useful entries; the one with the larger weight (more FLOPs) goes to 0.
    lam = nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = APG([lam], lr=0.1, momentum=0.9, gamma=0.5)
    opt.set_penalty_weights(lam, torch.tensor([0.2, 1.8], dtype=torch.float64))
    target = torch.tensor([0.6, 0.6], dtype=torch.float64)
    for _ in range(300):
        opt.zero_grad()
        (0.5 * ((lam - target) ** 2).sum()).backward()
        opt.step()
    assert float(lam.detach()[1]) == 0.0
    assert float(lam.detach()[0]) == pytest.approx(0.5)  # 0.6 - 0.5 * 0.2
    with pytest.raises(ValueError, match="shape"):
        opt.set_penalty_weights(lam, torch.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        opt.set_penalty_weights(lam, -torch.ones(2))


def test_prune_zeros_freezes_entries_for_good_and_survives_state_dict() -> None:
    lam = nn.Parameter(torch.tensor([0.0, 1.0, 0.5]))
    opt = APG([lam], lr=0.1, momentum=0.9, gamma=0.0)
    assert opt.prune_zeros() == 1
    for _ in range(20):  # a gradient that pulls every entry up
        opt.zero_grad()
        (-lam.sum()).backward()
        opt.step()
    assert float(lam.detach()[0]) == 0.0
    assert float(lam.detach()[1]) > 1.0 and float(lam.detach()[2]) > 0.5
    state = opt.state_dict()
    lam2 = nn.Parameter(torch.tensor([0.3, 1.0, 0.5]))
    opt2 = APG([lam2], lr=0.1, momentum=0.9, gamma=0.0)
    opt2.load_state_dict(state)
    assert opt2.n_pruned() == 1
    opt2.zero_grad()
    (-lam2.sum()).backward()
    opt2.step()
    assert float(lam2.detach()[0]) == 0.0


def test_flops_penalty_weights_are_proportional_with_mean_one() -> None:
    flops = [torch.tensor([[10.0, 30.0]]), torch.tensor([0.0, 20.0])]
    w = flops_penalty_weights(flops)
    flat = torch.cat([t.flatten() for t in w])
    assert float(flat.mean()) == pytest.approx(1.0)
    assert float(w[0][0, 1] / w[0][0, 0]) == pytest.approx(3.0)
    assert float(w[1][0]) == pytest.approx(float(w[0][0, 0]))  # zero FLOPs: the floor
    assert flops_penalty_weights([]) == []
    with pytest.raises(ValueError, match="non-negative"):
        flops_penalty_weights([torch.tensor([-1.0])])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"gamma": -1.0}, "gamma"),
        ({"nonnegative": 1}, "nonnegative"),
    ],
)
def test_apg_arguments_are_checked(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        APG([nn.Parameter(torch.ones(1))], **kwargs)  # type: ignore[arg-type]
