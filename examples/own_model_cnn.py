"""Your own PyTorch CNN under ENAS: a small ResNet-style net on scikit-learn's 8x8 digits.

    python examples/own_model_cnn.py            # 300 trials per sampler, a few minutes (CPU)
    python examples/own_model_cnn.py --smoke    # seconds, for CI

The model is written as usual, with choices where something is searched:

- ``LayerChoice``: the operation of each residual block (3x3/5x5 conv, separable conv, max
  pool, identity);
- ``ValueChoice``: the network width (one label shared by every conv, batch norm and the
  classifier, through ``ElasticConv2d`` / ``ElasticBatchNorm2d`` / ``ElasticLinear``) and each
  block's kernel size;
- ``Repeat``: the number of blocks.

``Supernet(model)`` turns it into a shared-weight search space; ``objective_over`` is the ENAS
objective over your DataLoaders, loss and metric; ``ENASSampler(supernet.space)`` searches it
on a SQLite study; ``supernet.export(study.best_params)`` gives a plain torch module that is
trained a little more and tested. The same search with ``RandomSampler`` (random search with
weight sharing) is the baseline.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_enas import ENASSampler
from optuna_enas import SearchSpace
from optuna_enas import objective_over
from optuna_enas.nn import ElasticBatchNorm2d
from optuna_enas.nn import ElasticConv2d
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


# -- the model, as a user writes it ---------------------------------------------------------------
def conv_bn_relu(
    in_channels: ValueChoice | int, width: ValueChoice, kernel: ValueChoice | int
) -> nn.Module:
    return nn.Sequential(
        ElasticConv2d(in_channels, width, kernel, bias=False), ElasticBatchNorm2d(width), nn.ReLU()
    )


def sep_conv(width: ValueChoice, kernel: ValueChoice) -> nn.Module:
    """Depthwise then pointwise convolution (the separable conv of ENAS's micro space)."""
    return nn.Sequential(
        ElasticConv2d(width, width, kernel, depthwise=True, bias=False),
        ElasticConv2d(width, width, 1, bias=False),
        ElasticBatchNorm2d(width),
        nn.ReLU(),
    )


class Block(nn.Module):
    """``x + op(x)``, with the op and its kernel size searched."""

    def __init__(self, i: int, width: ValueChoice) -> None:
        super().__init__()
        kernel = ValueChoice(f"block{i}/kernel", [3, 5])
        self.op = LayerChoice(
            f"block{i}/op",
            {
                "conv": conv_bn_relu(width, width, kernel),
                "sepconv": sep_conv(width, kernel),
                "maxpool": nn.MaxPool2d(3, stride=1, padding=1),
                "identity": nn.Identity(),
            },
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.op(x)


class DigitsNet(nn.Module):
    def __init__(self, widths: Sequence[int] = (8, 16, 32), depths: Sequence[int] = (1, 2, 3)):
        super().__init__()
        width = ValueChoice("width", list(widths))
        self.stem = conv_bn_relu(1, width, 3)
        self.blocks = Repeat("depth", lambda i: Block(i, width), list(depths))
        self.head = ElasticLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 8, 8)
        x = self.blocks(self.stem(x))  # (B, width, 8, 8)
        return self.head(x.mean(dim=(2, 3)))  # (B, 10) logits


# -- data and loss: plain PyTorch -----------------------------------------------------------------
def digits_loaders(batch_size: int, seed: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train / valid / test loaders over the 1797 bundled digits (1000 / 400 / 397 images)."""
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    parts = (order[:1000], order[1000:1400], order[1400:])

    def loader(idx: torch.Tensor, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(seed)  # a seeded order: exact resume, same runs
        data = TensorDataset(x[idx], y[idx])
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen)

    return loader(parts[0], True), loader(parts[1], True), loader(parts[2], False)


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with label smoothing 0.1 (Szegedy et al. 2016): our own training loss."""
    return F.cross_entropy(logits, target, label_smoothing=0.1)


@torch.no_grad()
def test_accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    hits = sum(int((model(x).argmax(-1) == y).sum()) for x, y in loader)
    return hits / sum(len(y) for _, y in loader)


def finetune(model: nn.Module, loader: DataLoader, n_epochs: int) -> nn.Module:
    """Train the exported plain module a little more (inherited weights as the start)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    model.train()
    for _ in range(n_epochs):
        for x, y in loader:
            opt.zero_grad()
            smoothed_cross_entropy(model(x), y).backward()
            opt.step()
    return model


# -- the search ---------------------------------------------------------------------------------
@dataclass
class Result:
    sampler: str
    best: float  # the best trial's value: accuracy on one validation minibatch
    params: dict[str, Any]
    inherited: float  # test accuracy of the exported module with the supernet's weights
    retrained: float  # ... after --epochs more epochs of training
    n_params: int
    space: SearchSpace


def search(
    sampler_name: str, args: argparse.Namespace, storage: optuna.storages.BaseStorage
) -> Result:
    torch.manual_seed(args.seed)  # the supernet's initial weights (an example may seed torch)
    train, valid, test = digits_loaders(args.batch_size, args.seed)
    supernet = Supernet(DigitsNet(), example_input=torch.zeros(2, 1, 8, 8))
    objective = objective_over(
        supernet,
        train,
        valid,
        loss_fn=smoothed_cross_entropy,
        metric="accuracy",  # top-1 on one validation minibatch per trial (ENAS's reward)
        n_train_steps=1.0,
        bn_recalibration_batches=2,  # SPOS: recompute BN statistics for the scored path
        seed=args.seed,
    )
    sampler = (
        ENASSampler(supernet.space, seed=args.seed)
        if sampler_name == "enas"
        else optuna.samplers.RandomSampler(seed=args.seed)
    )
    name = f"own-model-cnn-{sampler_name}-seed{args.seed}"
    if name in {s.study_name for s in storage.get_all_studies()}:
        optuna.delete_study(study_name=name, storage=storage)  # a fresh supernet: a fresh study
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction=objective.direction,
        pruner=optuna.pruners.NopPruner(),  # one shared step per trial: nothing to stop early
    )
    study.optimize(objective, n_trials=args.trials)

    model = supernet.export(study.best_params)  # plain torch: nn.Conv2d, nn.Sequential...
    inherited = test_accuracy(model, test)
    finetune(model, train, args.epochs)
    return Result(
        sampler=sampler_name,
        best=study.best_value,
        params=study.best_params,
        inherited=inherited,
        retrained=test_accuracy(model, test),
        n_params=sum(p.numel() for p in model.parameters()),
        space=supernet.space,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS over your own CNN, on digits.")
    parser.add_argument("--trials", type=int, default=300, help="trials per sampler (300)")
    parser.add_argument("--epochs", type=int, default=5, help="retraining epochs (5)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch size (64)")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--storage", default="sqlite:///own_model_cnn.db", help="Optuna storage")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.epochs = 8, 1
    torch.set_num_threads(1)  # a small model: one thread is fastest
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(args.storage)

    rows = [search(name, args, storage) for name in ("enas", "random")]
    space = rows[0].space
    print(f"search space: {len(space)} decisions, {space.n_architectures} architectures")
    for r in rows:
        print(f"{r.sampler}: best {r.params} ({r.n_params} weights)")
    print()
    print("| sampler | best minibatch accuracy | test (inherited weights) | test (retrained) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r.sampler} | {r.best:.3f} | {r.inherited:.3f} | {r.retrained:.3f} |")
    print(f"\nretrained: test accuracy {rows[0].retrained:.3f} ({args.epochs} epochs, ENAS)")


if __name__ == "__main__":
    main()
