"""Your own PyTorch language model under ENAS: the sequence layer type and the widths.

    python examples/own_model_text.py                                # embedded corpus, ~1 min
    python examples/own_model_text.py --data ../shared/data/ptb      # PTB, when you have it
    python examples/own_model_text.py --smoke                        # seconds, for CI

A word-level LM written as usual: embedding, a searched sequence layer
(``LayerChoice``: LSTM, GRU or a causal 1-D convolution), a searched feed-forward block
(``ValueChoice`` width through ``ElasticLinear``, ``LayerChoice`` activation) with a residual
connection, and a tied softmax. Batches are built with ``batchify`` / ``get_batch`` from the
embedded synthetic corpus (no download), or from a PTB-style directory with ``--data`` (a
missing directory is skipped with a message, exit status 0). The search is ENAS
(``ENASSampler(supernet.space)``) over ``objective_over`` with our own flattened
cross-entropy; the best architecture is exported as plain torch, trained a little more and
tested (perplexity).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas import ENASSampler
from optuna_enas import objective_over
from optuna_enas.data import Corpus
from optuna_enas.data import batchify
from optuna_enas.data import get_batch
from optuna_enas.data import load_corpus
from optuna_enas.data import synthetic_corpus
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


# -- the model, as a user writes it ---------------------------------------------------------------
class Recurrent(nn.Module):
    """An ``nn.LSTM`` / ``nn.GRU`` that returns its output only: (L, B, E) -> (L, B, H)."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class CausalConv(nn.Module):
    """A 1-D convolution over time that sees only the past: (L, B, E) -> (L, B, H)."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = kernel_size - 1
        self.conv = nn.Conv1d(n_in, n_out, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(x.permute(1, 2, 0), (self.pad, 0)))  # (B, H, L)
        return torch.tanh(y).permute(2, 0, 1)


class TextLM(nn.Module):
    def __init__(self, vocab_size: int, size: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, size)
        self.seq = LayerChoice(
            "seq",
            {
                "lstm": Recurrent(nn.LSTM(size, size)),
                "gru": Recurrent(nn.GRU(size, size)),
                "conv3": CausalConv(size, size, 3),
                "conv5": CausalConv(size, size, 5),
            },
        )
        width = ValueChoice("ffn_width", list(widths))
        self.ffn = nn.Sequential(
            ElasticLinear(size, width),
            LayerChoice("ffn_act", {"relu": nn.ReLU(), "tanh": nn.Tanh(), "gelu": nn.GELU()}),
            ElasticLinear(width, size),
        )
        self.drop = nn.Dropout(0.1)
        self.decoder = nn.Linear(size, vocab_size)
        self.decoder.weight = self.embed.weight  # tied (Press & Wolf 2017)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # tokens: (L, B)
        h = self.seq(self.drop(self.embed(tokens)))  # (L, B, size)
        h = h + self.ffn(h)
        return self.decoder(self.drop(h))  # (L, B, vocab) logits


# -- data and loss: plain PyTorch ----------------------------------------------------------------
def windows(tokens: torch.Tensor, batch_size: int, bptt: int) -> list[tuple[torch.Tensor, ...]]:
    """Consecutive (inputs, targets) BPTT windows of a token stream, each (L, B)."""
    source = batchify(tokens, batch_size)
    return [get_batch(source, i, bptt) for i in range(0, source.size(0) - 1, bptt)]


def lm_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-word cross-entropy over every position (nats per word)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))


@torch.no_grad()
def perplexity(model: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]]) -> float:
    model.eval()
    total = sum(float(lm_loss(model(x), y)) * y.numel() for x, y in batches)
    return math.exp(total / sum(y.numel() for _, y in batches))


def finetune(model: nn.Module, batches: Sequence[tuple[torch.Tensor, ...]], n_epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(n_epochs):
        for x, y in batches:
            opt.zero_grad()
            lm_loss(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            opt.step()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ENAS over your own language model.")
    parser.add_argument("--data", default=None, help="PTB-style directory (default: embedded)")
    parser.add_argument("--trials", type=int, default=200, help="search trials (200)")
    parser.add_argument("--epochs", type=int, default=1, help="retraining epochs (1)")
    parser.add_argument("--size", type=int, default=64, help="embedding/hidden size (64)")
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size (32)")
    parser.add_argument("--bptt", type=int, default=35, help="BPTT length (35, ENAS)")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--storage", default="sqlite:///own_model_text.db", help="storage")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args(argv)
    if args.data is not None and not Path(args.data).is_dir():
        print(f"no corpus directory at {args.data}: skipped")
        return
    corpus: Corpus
    if args.data is not None:
        corpus = load_corpus(args.data)
    elif args.smoke:
        corpus = synthetic_corpus(n_train_tokens=20_000, n_valid_tokens=4_000, n_test_tokens=4_000)
    else:
        corpus = synthetic_corpus()
    if args.smoke:
        args.trials, args.epochs, args.size, args.bptt = 8, 1, 16, 10
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # the supernet's initial weights (an example may seed torch)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    train = windows(corpus.train, args.batch_size, args.bptt)
    valid = windows(corpus.valid, args.batch_size, args.bptt)
    test = windows(corpus.test, args.batch_size, args.bptt)
    widths = (32, 64, 128) if not args.smoke else (8, 16)
    model = TextLM(corpus.vocab_size, args.size, widths)
    supernet = Supernet(model, example_input=train[0][0][:, :2])
    objective = objective_over(
        supernet,
        train,  # a list of (inputs, targets) works as well as a DataLoader
        valid,
        loss_fn=lm_loss,
        metric="loss",  # validation cross-entropy on one window per trial; minimized
        optimizer=lambda params: torch.optim.SGD(params, lr=1.0),  # ENAS-pytorch's shared lr
        grad_clip=0.25,  # ENAS-pytorch --shared_grad_clip
        seed=args.seed,
    )
    storage = optuna.storages.RDBStorage(args.storage)
    name = f"own-model-text-seed{args.seed}"
    if name in {s.study_name for s in storage.get_all_studies()}:
        optuna.delete_study(study_name=name, storage=storage)  # a fresh supernet: a fresh study
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=ENASSampler(supernet.space, seed=args.seed),
        direction=objective.direction,
        pruner=optuna.pruners.NopPruner(),  # one shared step per trial: nothing to stop early
    )
    study.optimize(objective, n_trials=args.trials)
    print(f"corpus: {corpus.name}, vocab {corpus.vocab_size}")
    print(f"search space: {len(supernet.space)} decisions {supernet.space.names}")
    print(f"best trial {study.best_trial.number}: {study.best_params}")
    print(f"  valid ppl on one window (shared weights): {math.exp(study.best_value):.1f}")

    exported = supernet.export(study.best_params)
    print(f"exported: {type(exported.seq).__name__}, test ppl {perplexity(exported, test):.1f}")
    finetune(exported, train, args.epochs)
    print(f"retrained: test ppl {perplexity(exported, test):.1f} after {args.epochs} epoch(s)")


if __name__ == "__main__":
    main()
