"""Training machinery shared by the evaluators, derive and retrain: data tasks, the
trainer, argument checks and from-scratch training."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
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
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.supernet import MacroSupernet
from optuna_enas.supernet import MicroSupernet
from optuna_enas.supernet import RNNSupernet


if TYPE_CHECKING:
    pass


_logger = logging.getLogger(__name__)

Split = Literal["train", "valid", "test"]
Direction = Literal["minimize", "maximize"]
_KIND = "SupernetEvaluator"
_LM_EVAL_BATCH_SIZE = 10  # PyTorch word_language_model's eval_batch_size.
_IMAGE_EVAL_BATCH_SIZE = 256
_MAX_LOG_PPL = 700.0  # Perplexity cap: exp(700) ~ 1e304 is still a finite float.

# Shared-weight optimizer defaults per space type: (lr, grad_clip, momentum, weight_decay).
_DEFAULTS: dict[str, tuple[float, float, float, float]] = {
    # Pham et al. 2018, Sec. 3.1 and carpedm20/ENAS-pytorch config.py train the shared weights
    # with SGD at lr 20 (--shared_lr), gradient norm clipped at 0.25 (--shared_grad_clip), L2
    # 1e-7 (--shared_l2_reg; also the official ptb_search.sh child_l2_reg). We keep the clip
    # and the L2 but default to lr 5: ENAS's 1000-unit cell is heavily regularized, while on
    # small dropout-free supernets lr 20 makes unbounded (identity/ReLU) cells blow up. Random
    # search, 400 trials, 4-node cell, 32 units, synthetic corpus: at lr 20 identity cells reach
    # ppl ~1e300 and steps go NaN; at lr 10, 12 of the last 100 trials score ppl > 1e3; lr 5
    # has the lowest median of the last 100 (24.7; lr 2: 31.5).
    "rnn": (5.0, 0.25, 0.0, 1e-7),
    # melodyguan/enas scripts/cifar10_macro_search.sh: child_lr_max 0.05, child_l2_reg 2.5e-4,
    # Nesterov momentum 0.9 (utils.get_train_ops), child_grad_bound 5.0 (main.py default).
    "macro": (0.05, 5.0, 0.9, 2.5e-4),
    # scripts/cifar10_micro_search.sh: the same, with child_l2_reg 1e-4.
    "micro": (0.05, 5.0, 0.9, 1e-4),
}


def _space_kind(space: SearchSpace) -> str:
    if isinstance(space, RNNCellSpace):
        return "rnn"
    if isinstance(space, MacroSpace):
        return "macro"
    if isinstance(space, MicroSpace):
        return "micro"
    raise ValueError(
        f"space must be an RNNCellSpace, MacroSpace or MicroSpace, but got {space!r}."
    )


def _default_data(space: SearchSpace, data: Corpus | ImageData | None) -> Corpus | ImageData:
    kind = _space_kind(space)
    if data is None:
        return load_corpus(None) if kind == "rnn" else load_digits_dataset()
    if kind == "rnn" and not isinstance(data, Corpus):
        raise ValueError(f"data must be a Corpus (or None) for an RNN space, but got {data!r}.")
    if kind != "rnn" and not isinstance(data, ImageData):
        raise ValueError(f"data must be ImageData (or None) for a {kind} space, but got {data!r}.")
    return data


def _fingerprint(data: Corpus | ImageData) -> dict[str, Any]:
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


def _build_supernet(
    space: SearchSpace,
    data: Corpus | ImageData,
    kwargs: Mapping[str, Any],
    generator: torch.Generator,
) -> nn.Module:
    if "generator" in kwargs:
        raise ValueError("supernet_kwargs must not hold 'generator'; the seed argument sets it.")
    kw = dict(kwargs)
    derived: dict[str, Any]
    if isinstance(data, Corpus):
        derived = {"vocab_size": data.vocab_size}
    else:
        derived = {"in_channels": data.in_channels, "n_classes": data.n_classes}
    for key, value in derived.items():
        if kw.setdefault(key, value) != value:
            raise ValueError(
                f"supernet_kwargs[{key!r}]={kw[key]!r} disagrees with the data ({value!r})."
            )
    if isinstance(space, RNNCellSpace):
        return RNNSupernet(space, generator=generator, **kw)
    if isinstance(space, MacroSpace):
        return MacroSupernet(space, generator=generator, **kw)
    assert isinstance(space, MicroSpace)  # _space_kind checked it.
    return MicroSupernet(space, generator=generator, **kw)


@contextlib.contextmanager
def _private_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run with the device's default generator seeded from ``seed``, restoring it afterwards.

    The supernets draw dropout masks from the default generator; this keeps those draws
    reproducible without touching the caller's global RNG state.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.cuda.default_generators[index].manual_seed(seed)
            yield
    else:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {value!r}.")
    return value


def _check_positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if not ok or (math.isinf(value) and not allow_inf) or math.isnan(value):
        raise ValueError(f"{name} must be a positive float, but got {value!r}.")
    return float(value)


def _check_non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite float >= 0, but got {value!r}.")
    return float(value)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must name a torch device, but got {device!r}.") from e
    if resolved.type == "cuda" and (
        not torch.cuda.is_available() or (resolved.index or 0) >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"device={device!r} is not available: torch sees {torch.cuda.device_count()} CUDA "
            "devices."
        )
    return resolved


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def _perplexity(total_loss: float, n_tokens: int) -> float:
    # A diverged cell (NaN or huge loss) gets the finite worst value, so samplers learn from it.
    mean = total_loss / max(n_tokens, 1)
    if math.isnan(mean):
        mean = _MAX_LOG_PPL
    return math.exp(min(mean, _MAX_LOG_PPL))


# -- tasks: data iteration, loss and metric for one data type --------------------------------
class _LMTask:
    """Word-level language modelling: truncated BPTT over a batchified corpus."""

    metric = "ppl"
    direction: Direction = "minimize"

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
        return _perplexity(total, n)

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
        source = self._source(split, _LM_EVAL_BATCH_SIZE)
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


class _ImageTask:
    """Image classification: shuffled minibatches, accuracy on validation minibatches."""

    metric = "accuracy"
    direction: Direction = "maximize"

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
        b = _IMAGE_EVAL_BATCH_SIZE if full else min(self.batch_size, y.numel())
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


_Task = _LMTask | _ImageTask


def _make_task(
    data: Corpus | ImageData, *, batch_size: int, bptt: int, device: torch.device
) -> _Task:
    if isinstance(data, Corpus):
        return _LMTask(data, batch_size=batch_size, bptt=bptt, device=device)
    return _ImageTask(data, batch_size=batch_size, device=device)


class _Trainer:
    """A supernet, its SGD optimizer and a task: the state both evaluators share."""

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData,
        *,
        supernet_kwargs: Mapping[str, Any],
        batch_size: int,
        bptt: int,
        lr: float,
        grad_clip: float,
        momentum: float,
        weight_decay: float,
        device: torch.device,
        init_seed: int,
    ) -> None:
        generator = torch.Generator().manual_seed(init_seed)
        self.model = _build_supernet(space, data, supernet_kwargs, generator).to(device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=lr,
            momentum=momentum,
            nesterov=momentum > 0,
            weight_decay=weight_decay,
        )
        self.task = _make_task(data, batch_size=batch_size, bptt=bptt, device=device)
        self.grad_clip = grad_clip
        self.device = device
        self.n_skipped = 0

    def set_hyperparameters(self, *, lr: float, momentum: float, weight_decay: float) -> None:
        for group in self.optimizer.param_groups:
            group.update(
                lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay
            )

    def step(self, arch: Architecture, rng: np.random.Generator) -> float:
        """One SGD step on the next training minibatch; returns the loss."""
        self.model.train()
        seed = int(rng.integers(2**31 - 1))
        with _private_global_rng(self.device, seed):
            loss = self.task.train_loss(self.model, arch, rng)
            value = float(loss.detach())
            if not math.isfinite(value):
                # A diverging architecture must not poison the weights the others share.
                self.n_skipped += 1
                self.task.reset_hidden()
                _logger.warning(f"Skipped a shared-weight step: the loss is {value}.")
                return value
            self.optimizer.zero_grad(set_to_none=True)  # unused ops get no update at all
            loss.backward()
        if math.isfinite(self.grad_clip):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return value

    def evaluate_next(self, arch: Architecture, n_batches: int) -> float:
        self.model.eval()
        with torch.no_grad():
            return self.task.evaluate_next(self.model, arch, n_batches)

    def evaluate(self, arch: Architecture, split: Split, full: bool, n_batches: int) -> float:
        self.model.eval()
        with torch.no_grad():
            return self.task.evaluate(self.model, arch, split, full, n_batches)


def _resolve_optim(
    kind: str,
    lr: float | None,
    grad_clip: float | None,
    momentum: float | None,
    weight_decay: float | None,
) -> dict[str, float]:
    d_lr, d_clip, d_momentum, d_wd = _DEFAULTS[kind]
    out = {
        "lr": d_lr if lr is None else _check_positive("lr", lr),
        "grad_clip": d_clip
        if grad_clip is None
        else _check_positive("grad_clip", grad_clip, allow_inf=True),
        "momentum": d_momentum if momentum is None else _check_non_negative("momentum", momentum),
        "weight_decay": d_wd
        if weight_decay is None
        else _check_non_negative("weight_decay", weight_decay),
    }
    if out["momentum"] >= 1:
        raise ValueError(f"momentum must be in [0, 1), but got {momentum!r}.")
    return out


def _as_architecture(space: SearchSpace, arch: Architecture | Mapping[str, Any]) -> Architecture:
    params = arch.to_params() if isinstance(arch, Architecture) else arch
    if isinstance(arch, Architecture) and arch.space != space.name:
        raise ValueError(f"arch belongs to space {arch.space!r}, not {space.name!r}.")
    return space.architecture(params)


def _check_split(split: str) -> Split:
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', but got {split!r}.")
    return split  # type: ignore[return-value]


def _steps_per_epoch(task: _Task) -> int:
    if isinstance(task, _LMTask):
        return max(1, math.ceil((task.train.size(0) - 1) / task.bptt))
    return max(1, task.y.numel() // task.batch_size)


def train_from_scratch(
    space: SearchSpace,
    data: Corpus | ImageData,
    arch: Architecture,
    *,
    n_epochs: int,
    n_steps_per_epoch: int | None,
    supernet_kwargs: Mapping[str, Any],
    batch_size: int,
    bptt: int,
    optim: Mapping[str, float],
    device: torch.device,
    seed: int,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, list[float], Callable[[Split], float]]:
    """Train ``arch`` alone in a fresh supernet; score the full validation set every epoch.

    ``callback(epoch, value)`` runs after each epoch's evaluation (it may raise to stop).
    Returns the model, the per-epoch validation values, and ``score(split)`` (full split).
    """
    rng = np.random.default_rng(seed)
    trainer = _Trainer(
        space,
        data,
        supernet_kwargs=supernet_kwargs,
        batch_size=batch_size,
        bptt=bptt,
        device=device,
        init_seed=int(rng.integers(2**31 - 1)),
        lr=optim["lr"],
        grad_clip=optim["grad_clip"],
        momentum=optim["momentum"],
        weight_decay=optim["weight_decay"],
    )
    n_steps = n_steps_per_epoch or _steps_per_epoch(trainer.task)
    history: list[float] = []
    for epoch in range(n_epochs):
        for _ in range(n_steps):
            trainer.step(arch, rng)
        value = trainer.evaluate(arch, "valid", True, 1)
        history.append(value)
        if callback is not None:
            callback(epoch, value)

    def score(split: Split) -> float:
        return trainer.evaluate(arch, split, True, 1)

    return trainer.model, history, score
