"""Word-level language-model corpora: file loader, batching, and an embedded synthetic corpus.

The file layout and the tokenization are those of the PyTorch ``word_language_model`` example and
of carpedm20/ENAS-pytorch (``data/text.py``): a directory with ``train.txt``, ``valid.txt`` and
``test.txt``; every line is split on whitespace and ``<eos>`` is appended to it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


_logger = logging.getLogger(__name__)

EOS = "<eos>"
"""Appended to every line (PyTorch word_language_model, ENAS-pytorch)."""
UNK = "<unk>"
"""Valid/test words unseen in train map to it when the training text contains it (PTB does)."""

DEFAULT_BATCH_SIZE = 64
"""Training batch size of carpedm20/ENAS-pytorch (``config.py``: ``--batch_size 64``)."""
DEFAULT_BPTT = 35
"""Truncated-BPTT length of carpedm20/ENAS-pytorch (``--shared_rnn_max_length 35``), which is
also the ENAS paper's PTB setting (Pham et al., 2018, Sec. 3.1) and the official script's
``--child_bptt_steps=35`` (melodyguan/enas ``scripts/ptb_search.sh``)."""

_SPLITS = ("train", "valid", "test")


@dataclass(frozen=True, eq=False)
class Corpus:
    """A tokenized word-level corpus.

    Args:
        train: Token ids of the training split, shape ``(n_train,)``, int64.
        valid: Token ids of the validation split, shape ``(n_valid,)``, int64.
        test: Token ids of the test split, shape ``(n_test,)``, int64.
        vocab: ``vocab[i]`` is the word of id ``i``; built from the training split in first-seen
            order.
        name: A short description of where the corpus came from.
    """

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: tuple[str, ...]
    name: str = "corpus"

    def __post_init__(self) -> None:
        for split in _SPLITS:
            t = getattr(self, split)
            if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.dtype != torch.int64:
                raise ValueError(f"Corpus.{split} must be a 1-D int64 tensor, but got {t!r}.")
            if t.numel() < 2:
                raise ValueError(f"Corpus.{split} must hold at least 2 tokens, got {t.numel()}.")
            if int(t.min()) < 0 or int(t.max()) >= len(self.vocab):
                raise ValueError(
                    f"Corpus.{split} holds ids outside [0, {len(self.vocab)}) (the vocab size)."
                )

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def word_to_id(self) -> dict[str, int]:
        """A fresh ``{word: id}`` mapping."""
        return {w: i for i, w in enumerate(self.vocab)}

    def encode(self, words: Iterable[str]) -> torch.Tensor:
        """Ids of ``words`` (unknown words map to ``<unk>`` if present, else ``KeyError``)."""
        w2i = self.word_to_id()
        unk = w2i.get(UNK)
        ids = []
        for w in words:
            i = w2i.get(w, unk)
            if i is None:
                raise KeyError(f"word {w!r} is not in the vocabulary, which has no {UNK!r}.")
            ids.append(i)
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> list[str]:
        """The words of ``ids``."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return [self.vocab[int(i)] for i in values]


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous columns, shape ``(T, B)``.

    Trailing tokens that do not fill a row are dropped, as in the PyTorch word_language_model
    example and carpedm20/ENAS-pytorch (``utils.batchify``).

    Args:
        data: Token ids, shape ``(n,)``.
        batch_size: Number of columns ``B``; must be positive and at most ``n``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, but got {batch_size!r}.")
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a 1-D tensor, but got {shape}.")
    n_rows = data.numel() // batch_size
    if n_rows == 0:
        raise ValueError(
            f"batch_size={batch_size} exceeds the number of tokens ({data.numel()}) in data."
        )
    return data[: n_rows * batch_size].view(batch_size, n_rows).t().contiguous()  # (T, B)


def get_batch(
    source: torch.Tensor, i: int, bptt: int = DEFAULT_BPTT
) -> tuple[torch.Tensor, torch.Tensor]:
    """The BPTT window starting at row ``i`` of a batchified ``source``.

    As in the PyTorch word_language_model example and ENAS-pytorch (``Trainer.get_batch``), the
    window is ``min(bptt, T - 1 - i)`` rows long and the targets are the inputs shifted by one.
    Unlike those, the targets keep their ``(L, B)`` shape (flatten them for the loss).

    Args:
        source: A ``(T, B)`` tensor from :func:`batchify`.
        i: First row; ``0 <= i < T - 1``.
        bptt: Maximum window length (default 35, ENAS-pytorch).

    Returns:
        ``(inputs, targets)``, each of shape ``(L, B)``.
    """
    if source.dim() != 2:
        raise ValueError(f"source must be a (T, B) tensor, but got shape {tuple(source.shape)}.")
    if isinstance(bptt, bool) or not isinstance(bptt, int) or bptt <= 0:
        raise ValueError(f"bptt must be a positive integer, but got {bptt!r}.")
    n_rows = source.size(0)
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_rows - 1:
        raise ValueError(f"i must be an integer in [0, {n_rows - 1}), but got {i!r}.")
    length = min(bptt, n_rows - 1 - i)
    return source[i : i + length], source[i + 1 : i + 1 + length]


# -- files -------------------------------------------------------------------------------------
def _read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ValueError(f"{path} looks binary (it holds NUL bytes); expected UTF-8 text.")
    try:
        text = raw.decode("utf-8-sig")  # a leading byte order mark (Windows editors) is dropped
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid UTF-8 text ({e}).") from e
    if not text.strip():
        raise ValueError(f"{path} is empty (no words); expected one sentence per line.")
    # Universal newlines, like the text-mode ``open`` of the PyTorch example.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _tokens(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.extend(line.split())
        out.append(EOS)
    return out


def _build(
    splits: Sequence[list[str]],
    *,
    sources: Sequence[str],
    name: str,
    extra_vocab: Sequence[str] = (),
) -> Corpus:
    w2i: dict[str, int] = {}
    for w in splits[0]:
        if w not in w2i:
            w2i[w] = len(w2i)
    for w in extra_vocab:
        if w not in w2i:
            w2i[w] = len(w2i)
    unk = w2i.get(UNK)
    tensors = []
    for split, tokens, source in zip(_SPLITS, splits, sources, strict=True):
        if unk is None:
            missing = sorted({w for w in tokens if w not in w2i})
            if missing:
                raise ValueError(
                    f"{source} ({split}) has {len(missing)} words that are not in the training "
                    f"vocabulary, e.g. {missing[:5]}, and the training text has no {UNK!r} "
                    "token to map them to; add <unk> to train.txt or fix the split."
                )
            ids = [w2i[w] for w in tokens]
        else:
            ids = [w2i.get(w, unk) for w in tokens]
        tensors.append(torch.tensor(ids, dtype=torch.int64))
    vocab = tuple(w2i)
    return Corpus(train=tensors[0], valid=tensors[1], test=tensors[2], vocab=vocab, name=name)


def load_corpus(path: str | Path | None = None) -> Corpus:
    """Load a word-level corpus directory, or the embedded synthetic one.

    Args:
        path: A directory with ``train.txt``, ``valid.txt`` and ``test.txt`` (the PTB and
            WikiText layout; UTF-8, one sentence per line). ``None`` returns
            :func:`synthetic_corpus` with its defaults, which needs no download.

    Raises:
        FileNotFoundError: ``path`` or one of the three files does not exist.
        NotADirectoryError: ``path`` is not a directory.
        ValueError: A file is empty, binary or not UTF-8, or valid/test hold words unseen in
            train while train has no ``<unk>``.
    """
    if path is None:
        return synthetic_corpus()
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"path={str(path)!r}: corpus directory does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"path={str(path)!r} must be a directory, but it is a file.")
    files = [root / f"{split}.txt" for split in _SPLITS]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(
                f"path={str(path)!r}: {f} not found; a corpus directory must hold train.txt, "
                "valid.txt and test.txt."
            )
    splits = [_tokens(_read_lines(f)) for f in files]
    corpus = _build(splits, sources=[str(f) for f in files], name=str(root))
    _logger.info(
        "Loaded %s: vocab %d, tokens train/valid/test %d/%d/%d.",
        root,
        corpus.vocab_size,
        corpus.train.numel(),
        corpus.valid.numel(),
        corpus.test.numel(),
    )
    return corpus


# -- the embedded synthetic corpus -------------------------------------------------------------
_SING_DETS = ("a", "this", "every", "one", "the", "my")
_PLUR_DETS = ("some", "these", "many", "two", "the", "my")
_ADJS = (
    "big small old young happy quiet red green clever lazy brave tired angry gentle strange bright"
).split()
# (singular, plural) pairs per noun class.
_PEOPLE = (
    ("teacher", "teachers"),
    ("farmer", "farmers"),
    ("king", "kings"),
    ("queen", "queens"),
    ("doctor", "doctors"),
    ("student", "students"),
    ("sailor", "sailors"),
    ("child", "children"),
    ("woman", "women"),
    ("man", "men"),
)
_ANIMALS = (
    ("dog", "dogs"),
    ("cat", "cats"),
    ("bird", "birds"),
    ("horse", "horses"),
    ("fox", "foxes"),
    ("wolf", "wolves"),
    ("mouse", "mice"),
    ("fish", "fishes"),
)
_FOOD = (("apple", "apples"), ("cake", "cakes"), ("egg", "eggs"), ("pear", "pears"))
_TEXTS = (("book", "books"), ("letter", "letters"), ("poem", "poems"), ("map", "maps"))
_THINGS = (("boat", "boats"), ("house", "houses"), ("wall", "walls"), ("box", "boxes"))
_INTRANSITIVE = (
    ("sleeps", "sleep"),
    ("runs", "run"),
    ("sings", "sing"),
    ("waits", "wait"),
    ("laughs", "laugh"),
    ("falls", "fall"),
    ("swims", "swim"),
    ("hides", "hide"),
)
_ADVERBS = "quickly slowly often never always today again quietly".split()
_ANIMATE = _PEOPLE + _ANIMALS
_ANY = _PEOPLE + _ANIMALS + _FOOD + _TEXTS + _THINGS
_PEOPLE_SET = frozenset(_PEOPLE)
_ANIMATE_SET = frozenset(_ANIMATE)
# Transitive verbs and the noun class of their object (selectional restrictions).
_TRANSITIVE = (
    (("sees", "see"), _ANY),
    (("likes", "like"), _ANY),
    (("finds", "find"), _ANY),
    (("helps", "help"), _ANIMATE),
    (("follows", "follow"), _ANIMATE),
    (("chases", "chase"), _ANIMALS),
    (("eats", "eat"), _FOOD),
    (("reads", "read"), _TEXTS),
    (("builds", "build"), _THINGS),
    (("carries", "carry"), _FOOD + _TEXTS + _THINGS),
)
# Verbs taking a clause; only people use them.
_SENTENTIAL = (("thinks", "think"), ("says", "say"), ("believes", "believe"), ("hopes", "hope"))
_FUNCTION = ("who", "that", "if", "then", "either", "or", "because", ",", ".", "(", ")", '"')
_MAX_DEPTH = 2


def _lexicon() -> tuple[str, ...]:
    words: list[str] = [*_SING_DETS, *_PLUR_DETS, *_ADJS, *_ADVERBS, *_FUNCTION, EOS]
    for pairs in (_ANY, _INTRANSITIVE, tuple(v for v, _ in _TRANSITIVE), _SENTENTIAL):
        for sing, plur in pairs:
            words += [sing, plur]
    return tuple(dict.fromkeys(words))


class _Grammar:
    """The stochastic grammar of :func:`synthetic_corpus`; draws come from a private Generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf = rng.random(1 << 16)
        self._pos = 0

    def _u(self) -> float:
        if self._pos == len(self._buf):
            self._buf = self._rng.random(1 << 16)
            self._pos = 0
        x = float(self._buf[self._pos])
        self._pos += 1
        return x

    def _pick(self, seq: Sequence[object]) -> int:
        return int(self._u() * len(seq))

    def sentence(self) -> list[str]:
        out: list[str] = []
        r = self._u()
        if r < 0.55:
            self._clause(out, 0)
        elif r < 0.70:
            out.append("if")
            self._clause(out, 1)
            out += [",", "then"]
            self._clause(out, 1)
        elif r < 0.85:
            out.append("either")
            self._clause(out, 1)
            out.append("or")
            self._clause(out, 1)
        else:
            self._clause(out, 1)
            out.append("because")
            self._clause(out, 1)
        out.append(".")
        return out

    def _clause(self, out: list[str], depth: int) -> None:
        plural = self._u() < 0.5
        person = self._u() < 0.5
        subject = _PEOPLE if person else _ANIMALS
        self._np(out, subject, plural, depth)
        self._vp(out, plural, person, depth)

    def _np(
        self, out: list[str], nouns: Sequence[tuple[str, str]], plural: bool, depth: int
    ) -> None:
        dets = _PLUR_DETS if plural else _SING_DETS
        out.append(dets[self._pick(dets)])
        n_adj = 0
        while n_adj < 2 and self._u() < 0.3:
            out.append(_ADJS[self._pick(_ADJS)])
            n_adj += 1
        noun = nouns[self._pick(nouns)]
        out.append(noun[1 if plural else 0])
        if depth >= _MAX_DEPTH:
            return
        r = self._u()
        if r < 0.12 and noun in _ANIMATE_SET:
            # Subject relative: its verb agrees with the head noun.
            out.append("who")
            self._vp(out, plural, noun in _PEOPLE_SET, depth + 1)
        elif r < 0.22:
            # Object relative ("the dog that the kings chase ..."): an embedded subject sits
            # between the head noun and its verb, whose object class must admit the head noun.
            out.append("that")
            inner_plural = self._u() < 0.5
            inner = _PEOPLE if self._u() < 0.5 else _ANIMALS
            self._np(out, inner, inner_plural, depth + 1)
            verbs = [v for v, objects in _TRANSITIVE if noun in objects]
            out.append(verbs[self._pick(verbs)][1 if inner_plural else 0])
        elif r < 0.30:
            out.append("(")
            self._np(out, _ANY, self._u() < 0.5, depth + 1)
            out.append(")")

    def _vp(self, out: list[str], plural: bool, person: bool, depth: int) -> None:
        k = 1 if plural else 0
        r = self._u()
        if r < 0.35 or (r >= 0.80 and (depth >= _MAX_DEPTH or not person)):
            out.append(_INTRANSITIVE[self._pick(_INTRANSITIVE)][k])
            if self._u() < 0.3:
                out.append(_ADVERBS[self._pick(_ADVERBS)])
        elif r < 0.80:
            verb, objects = _TRANSITIVE[self._pick(_TRANSITIVE)]
            out.append(verb[k])
            self._np(out, objects, self._u() < 0.5, depth + 1)
        elif r < 0.90:
            out += [_SENTENTIAL[self._pick(_SENTENTIAL)][k], "that"]
            self._clause(out, depth + 1)
        else:
            out += [_SENTENTIAL[self._pick(_SENTENTIAL)][k], '"']
            self._clause(out, depth + 1)
            out.append('"')


@functools.lru_cache(maxsize=4)
def _synthetic_tokens(seed: int, sizes: tuple[int, int, int]) -> tuple[tuple[str, ...], ...]:
    grammar = _Grammar(np.random.default_rng(seed))
    splits = []
    for n_tokens in sizes:
        tokens: list[str] = []
        while len(tokens) < n_tokens:
            tokens += grammar.sentence()
            tokens.append(EOS)
        splits.append(tuple(tokens))
    return tuple(splits)


def synthetic_corpus(
    *,
    seed: int = 0,
    n_train_tokens: int = 100_000,
    n_valid_tokens: int = 10_000,
    n_test_tokens: int = 10_000,
) -> Corpus:
    """A deterministic synthetic English-like corpus for demos and tests (no download).

    Each line is one sentence of a small probabilistic context-free grammar over 155 words,
    followed by ``<eos>``. The grammar has the structure that separates recurrent cells:

    * **Number agreement** of subject and verb (``the dog runs`` / ``the dogs run``), also
      across an embedded subject relative (``the kings who help a fox sing``), an object
      relative (``the dog that the kings chase runs``) or a parenthetical
      (``a cat ( some old boxes ) sleeps``).
    * **Bracketing**: ``(`` ... ``)`` and ``"`` ... ``"`` pair up, and ``if`` ... ``, then``,
      ``either`` ... ``or`` and ``because`` join two clauses; clauses nest up to depth 2.
    * **Selectional restrictions**: ``eats`` takes food, ``reads`` texts, ``chases`` animals,
      ``builds`` things; only people ``think``/``say``/``believe``/``hope`` a clause.
    * Determiners agree in number with their noun (``a``/``this``/``every`` vs
      ``some``/``these``/``many``).

    Splits are consecutive sentences of one stream from
    ``numpy.random.default_rng(seed)``, each cut at the first sentence end reaching its token
    count, so they are i.i.d. and never overlap. The vocabulary is the training words in
    first-seen order followed by any lexicon word the training split missed, so valid/test
    never need ``<unk>``. Generating the defaults takes about 0.3 s (cached per process).

    Args:
        seed: Seed of the private generator.
        n_train_tokens: Minimum tokens (``<eos>`` included) in the training split.
        n_valid_tokens: Minimum tokens in the validation split.
        n_test_tokens: Minimum tokens in the test split.
    """
    for name, value in (
        ("n_train_tokens", n_train_tokens),
        ("n_valid_tokens", n_valid_tokens),
        ("n_test_tokens", n_test_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, but got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, but got {seed!r}.")
    splits = _synthetic_tokens(seed, (n_train_tokens, n_valid_tokens, n_test_tokens))
    return _build(
        [list(s) for s in splits],
        sources=[f"synthetic {split} split" for split in _SPLITS],
        name=f"synthetic(seed={seed})",
        extra_vocab=_lexicon(),
    )
