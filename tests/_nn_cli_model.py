"""A tiny user module for the ``--model`` / ``--data`` command-line tests (test_nn_cli.py)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = ValueChoice("width", [4, 8])
        self.inp = ElasticLinear(6, width)
        self.body = Repeat(
            "depth",
            lambda i: LayerChoice(f"act{i}", {"relu": nn.ReLU(), "tanh": nn.Tanh()}),
            [1, 2],
        )
        self.out = ElasticLinear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.inp(x)))


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return Net()


def make_supernet() -> Supernet:
    return Supernet(make_model(), example_input=torch.zeros(2, 6))


def _loader(seed: int) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 3 classes, learnable
    return DataLoader(
        TensorDataset(x, y),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )


def make_loaders() -> tuple[DataLoader, DataLoader]:
    return _loader(1), _loader(2)


def _smoothed(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, target, label_smoothing=0.1)


def make_evaluator_kwargs() -> dict[str, Any]:
    return {
        "train_data": _loader(1),
        "valid_data": _loader(2),
        "loss_fn": _smoothed,
        "metric": "accuracy",
    }


def make_bad_kwargs() -> dict[str, Any]:
    return {"train_data": _loader(1), "valid_data": _loader(2), "seed": 3}


def make_nothing() -> int:
    return 3
