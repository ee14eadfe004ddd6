"""Tasks: how a supernet is trained and scored on one kind of data.

A task owns the data on the device, its position in the training and validation streams
(which persists across trials and goes into checkpoints), the loss and the metric:
:class:`LMTask` (word-level language modelling, perplexity) and :class:`ImageTask` (image
classification, accuracy).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas.data._corpus import Corpus
from optuna_enas.data._corpus import batchify
from optuna_enas.data._corpus import get_batch
from optuna_enas.data._corpus import load_corpus
from optuna_enas.data._images import ImageData
from optuna_enas.data._images import load_digits_dataset
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


Split = Literal["train", "valid", "test"]
LM_EVAL_BATCH_SIZE = 10  # PyTorch word_language_model's eval_batch_size.
IMAGE_EVAL_BATCH_SIZE = 256
MAX_LOG_PPL = 700.0  # Perplexity cap: exp(700) ~ 1e304 is still a finite float.
SCORE_MANY_LOGITS_BYTES = 2**28  # logits per decoder product when scoring many architectures


def default_data(space: SearchSpace, data: Corpus | ImageData | None) -> Corpus | ImageData:
    """``data`` checked against ``space``'s kind; ``None``: the embedded default for it."""
    kind = kind_of(space)
    if data is None:
        return load_corpus(None) if kind.data == "corpus" else load_digits_dataset()
    if kind.data == "corpus" and not isinstance(data, Corpus):
        raise ValueError(f"data must be a Corpus (or None) for an RNN space, but got {data!r}.")
    if kind.data == "images" and not isinstance(data, ImageData):
        raise ValueError(
            f"data must be ImageData (or None) for a {kind.name} space, but got {data!r}."
        )
    return data


def data_fingerprint(data: Corpus | ImageData) -> dict[str, Any]:
    """A small JSON summary that tells whether a checkpoint was trained on this data."""
    if isinstance(data, Corpus):
        digest = hashlib.sha256("\n".join(data.vocab).encode("utf-8")).hexdigest()[:16]
        sizes = [int(data.train.numel()), int(data.valid.numel()), int(data.test.numel())]
        return {"type": "corpus", "vocab": digest, "sizes": sizes}
    return {
        "type": "images",
        "shape": list(data.train_x.shape[1:]),
        "sizes": [int(data.train_y.numel()), int(data.valid_y.numel()), int(data.test_y.numel())],
        "n_classes": data.n_classes,
        "label_sum": int(data.train_y.sum()),
    }


def perplexity(total_loss: float, n_tokens: int) -> float:
    # A diverged cell (NaN or huge loss) gets the finite worst value, so samplers learn from it.
    mean = total_loss / max(n_tokens, 1)
    if math.isnan(mean):
        mean = MAX_LOG_PPL
    return math.exp(min(mean, MAX_LOG_PPL))


def check_split(split: str) -> Split:
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', but got {split!r}.")
    return split  # type: ignore[return-value]


# -- tasks: data iteration, loss and metric for one data type --------------------------------
class LMTask:
    """Word-level language modelling: truncated BPTT over a batchified corpus."""

    def __init__(self, corpus: Corpus, *, batch_size: int, bptt: int, device: torch.device):
        self.corpus = corpus
        self.batch_size = batch_size
        self.bptt = bptt
        self.device = device
        self.train = batchify(corpus.train, batch_size).to(device)  # (T, B)
        self.valid = batchify(corpus.valid, min(batch_size, corpus.valid.numel() // 2))
        self.valid = self.valid.to(device)
        self._full: dict[str, torch.Tensor] = {}
        self.pos = 0
        self.valid_pos = 0
        self.hidden: torch.Tensor | None = None

    def train_loss(self, model: Any, arch: Architecture, rng: np.random.Generator) -> Any:
        if self.pos >= self.train.size(0) - 1:  # new epoch
            self.pos = 0
            self.hidden = None
        x, y = get_batch(self.train, self.pos, self.bptt)
        self.pos += x.size(0)
        hidden = model.init_hidden(self.batch_size) if self.hidden is None else self.hidden
        logits, hidden = model(x, hidden, arch)
        self.hidden = hidden.detach()  # truncated BPTT, as ENAS-pytorch's train_shared
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def reset_hidden(self) -> None:
        self.hidden = None

    def _score(
        self, model: Any, arch: Architecture, source: torch.Tensor, rows: Iterable[int]
    ) -> float:
        # The hidden state flows from one window to the next; it restarts at zero on a jump.
        total, n, expected = 0.0, 0, -1
        hidden = model.init_hidden(source.size(1))
        for i in rows:
            if i != expected:
                hidden = model.init_hidden(source.size(1))
            x, y = get_batch(source, i, self.bptt)
            expected = i + x.size(0)
            logits, hidden = model(x, hidden, arch)
            flat = logits.reshape(-1, logits.size(-1))
            total += float(F.cross_entropy(flat, y.reshape(-1), reduction="sum"))
            n += y.numel()
        return perplexity(total, n)

    def _score_many(
        self,
        model: Any,
        archs: Sequence[Architecture],
        source: torch.Tensor,
        rows: Iterable[int],
    ) -> list[float]:
        """:meth:`_score` of several architectures on the same windows, sharing the work.

        The embedding, the input projection, the packed weights and the products of the
        lockstep cells are shared (:meth:`RNNSupernet.forward_many`), and the decoder takes as
        many architectures per product as :data:`SCORE_MANY_LOGITS_BYTES` of logits allow.
        """
        if not hasattr(model, "forward_many"):
            return [self._score(model, arch, source, rows) for arch in archs]
        rows = list(rows)
        batch = source.size(1)
        totals = [0.0] * len(archs)
        n, expected = 0, -1
        hiddens = [model.init_hidden(batch) for _ in archs]
        for i in rows:
            if i != expected:
                hiddens = [model.init_hidden(batch) for _ in archs]
            x, y = get_batch(source, i, self.bptt)
            expected = i + x.size(0)
            states, hiddens = model.forward_many(x, hiddens, archs)
            target = y.reshape(-1)
            per_arch = target.numel() * model.vocab_size * states.element_size()
            group = max(1, SCORE_MANY_LOGITS_BYTES // per_arch)
            for a in range(0, len(archs), group):
                logits = model.decode(states[a : a + group])
                k = logits.size(0)
                flat = logits.reshape(-1, logits.size(-1))
                losses = F.cross_entropy(flat, target.repeat(k), reduction="none")
                for j, v in enumerate(losses.view(k, -1).sum(dim=1).tolist()):
                    totals[a + j] += v
                del logits, flat, losses
            n += y.numel()
        return [perplexity(total, n) for total in totals]

    def evaluate_many(
        self,
        model: Any,
        archs: Sequence[Architecture],
        split: Split,
        full: bool,
        n_batches: int,
    ) -> list[float]:
        """:meth:`evaluate` for each of ``archs`` (same windows), with the shared work once."""
        if not full:
            source = self.valid if split == "valid" else self._source(split, self.batch_size)
            last = source.size(0) - 1
            return self._score_many(model, archs, source, range(0, last, self.bptt)[:n_batches])
        source = self._source(split, LM_EVAL_BATCH_SIZE)
        return self._score_many(model, archs, source, range(0, source.size(0) - 1, self.bptt))

    def evaluate_next(self, model: Any, arch: Architecture, n_batches: int) -> float:
        rows = []
        for _ in range(n_batches):
            if self.valid_pos >= self.valid.size(0) - 1:
                self.valid_pos = 0
            rows.append(self.valid_pos)
            self.valid_pos += self.bptt
        return self._score(model, arch, self.valid, rows)

    def evaluate(
        self, model: Any, arch: Architecture, split: Split, full: bool, n_batches: int
    ) -> float:
        if not full:
            source = self.valid if split == "valid" else self._source(split, self.batch_size)
            last = source.size(0) - 1
            return self._score(model, arch, source, range(0, last, self.bptt)[:n_batches])
        source = self._source(split, LM_EVAL_BATCH_SIZE)
        return self._score(model, arch, source, range(0, source.size(0) - 1, self.bptt))

    def _source(self, split: Split, batch_size: int) -> torch.Tensor:
        key = f"{split}/{batch_size}"
        if key not in self._full:
            tokens: torch.Tensor = getattr(self.corpus, split)
            bsz = min(batch_size, tokens.numel() // 2)
            self._full[key] = batchify(tokens, bsz).to(self.device)
        return self._full[key]

    def state_dict(self) -> dict[str, Any]:
        hidden = None if self.hidden is None else self.hidden.detach().cpu().clone()
        return {"pos": self.pos, "valid_pos": self.valid_pos, "hidden": hidden}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pos = int(state["pos"])
        self.valid_pos = int(state["valid_pos"])
        hidden = state["hidden"]
        self.hidden = None if hidden is None else hidden.to(self.device)


class ImageTask:
    """Image classification: shuffled minibatches, accuracy on validation minibatches."""

    def __init__(self, data: ImageData, *, batch_size: int, device: torch.device):
        self.data = data
        self.device = device
        self.x = data.train_x.to(device)
        self.y = data.train_y.to(device)
        self.valid_x = data.valid_x.to(device)
        self.valid_y = data.valid_y.to(device)
        self.batch_size = min(batch_size, self.y.numel())
        self.eval_batch_size = min(batch_size, self.valid_y.numel())
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.valid_pos = 0

    def train_loss(self, model: nn.Module, arch: Architecture, rng: np.random.Generator) -> Any:
        n = self.y.numel()
        if self.perm is None or self.pos + self.batch_size > n:  # new epoch (drop the rest)
            self.perm = torch.from_numpy(rng.permutation(n))
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size].to(self.device)
        self.pos += self.batch_size
        return F.cross_entropy(model(self.x[idx], arch), self.y[idx])

    def reset_hidden(self) -> None:
        pass

    @staticmethod
    def _score(model: nn.Module, arch: Architecture, chunks: Any) -> float:
        correct, n = 0, 0
        for x, y in chunks:
            correct += int((model(x, arch).argmax(dim=1) == y).sum())
            n += y.numel()
        return correct / n

    def evaluate_next(self, model: nn.Module, arch: Architecture, n_batches: int) -> float:
        chunks = []
        b = self.eval_batch_size
        for _ in range(n_batches):
            if self.valid_pos + b > self.valid_y.numel():
                self.valid_pos = 0
            sl = slice(self.valid_pos, self.valid_pos + b)
            chunks.append((self.valid_x[sl], self.valid_y[sl]))
            self.valid_pos += b
        return self._score(model, arch, chunks)

    def evaluate(
        self, model: nn.Module, arch: Architecture, split: Split, full: bool, n_batches: int
    ) -> float:
        x, y = self.data.split(split)
        b = IMAGE_EVAL_BATCH_SIZE if full else min(self.batch_size, y.numel())
        stop = y.numel() if full else min(y.numel(), n_batches * b)
        chunks = (
            (x[i : i + b].to(self.device), y[i : i + b].to(self.device)) for i in range(0, stop, b)
        )
        return self._score(model, arch, chunks)

    def state_dict(self) -> dict[str, Any]:
        perm = None if self.perm is None else self.perm.clone()
        return {"pos": self.pos, "valid_pos": self.valid_pos, "perm": perm}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pos = int(state["pos"])
        self.valid_pos = int(state["valid_pos"])
        self.perm = state["perm"]


Task = LMTask | ImageTask


def make_task(
    data: Corpus | ImageData, *, batch_size: int, bptt: int, device: torch.device
) -> Task:
    if isinstance(data, Corpus):
        return LMTask(data, batch_size=batch_size, bptt=bptt, device=device)
    return ImageTask(data, batch_size=batch_size, device=device)


def steps_per_epoch(task: Task) -> int:
    if isinstance(task, LMTask):
        return max(1, math.ceil((task.train.size(0) - 1) / task.bptt))
    return max(1, task.y.numel() // task.batch_size)


__all__ = [
    "IMAGE_EVAL_BATCH_SIZE",
    "LM_EVAL_BATCH_SIZE",
    "MAX_LOG_PPL",
    "ImageTask",
    "LMTask",
    "Split",
    "Task",
    "check_split",
    "data_fingerprint",
    "default_data",
    "make_task",
    "perplexity",
    "steps_per_epoch",
]
