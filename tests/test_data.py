"""Tests of the corpus and image loaders (``optuna_enas.data``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from optuna_enas.data import Corpus
from optuna_enas.data import ImageData
from optuna_enas.data import batchify
from optuna_enas.data import get_batch
from optuna_enas.data import load_cifar10
from optuna_enas.data import load_corpus
from optuna_enas.data import load_digits_dataset
from optuna_enas.data import synthetic_corpus
from optuna_enas.data._corpus import EOS
from optuna_enas.data._corpus import UNK


def _write_corpus(root: Path, train: str, valid: str, test: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(train, encoding="utf-8")
    (root / "valid.txt").write_text(valid, encoding="utf-8")
    (root / "test.txt").write_text(test, encoding="utf-8")
    return root


# -- corpus files ------------------------------------------------------------------------------
def test_load_corpus_vocab_first_seen_order_and_eos(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "c", " b a b \n c a\n", "a b\n", "c\n")
    corpus = load_corpus(root)
    assert corpus.vocab == ("b", "a", EOS, "c")
    assert corpus.decode(corpus.train) == ["b", "a", "b", EOS, "c", "a", EOS]
    assert corpus.decode(corpus.valid) == ["a", "b", EOS]
    assert corpus.decode(corpus.test) == ["c", EOS]
    assert corpus.train.dtype == torch.int64
    assert corpus.vocab_size == 4


def test_load_corpus_accepts_str_and_crlf(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "c", "a b\r\nc\r\n", "a\r\n", "b c\r\n")
    corpus = load_corpus(str(root))
    assert corpus.decode(corpus.train) == ["a", "b", EOS, "c", EOS]


def test_load_corpus_maps_unseen_words_to_unk(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "c", "a <unk> b\n", "a zebra\n", "yak b\n")
    corpus = load_corpus(root)
    assert corpus.decode(corpus.valid) == ["a", UNK, EOS]
    assert corpus.decode(corpus.test) == [UNK, "b", EOS]


def test_load_corpus_unseen_words_without_unk_raise(tmp_path: Path) -> None:
    root = _write_corpus(tmp_path / "c", "a b\n", "a zebra\n", "b\n")
    with pytest.raises(ValueError, match=r"valid\.txt.*zebra"):
        load_corpus(root)


def test_load_corpus_missing_directory_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"path=.*nope"):
        load_corpus(missing)


def test_load_corpus_file_instead_of_directory_raises(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("a\n")
    with pytest.raises(NotADirectoryError, match="path="):
        load_corpus(f)


@pytest.mark.parametrize("missing", ["train.txt", "valid.txt", "test.txt"])
def test_load_corpus_missing_file_raises(tmp_path: Path, missing: str) -> None:
    root = _write_corpus(tmp_path / "c", "a\n", "a\n", "a\n")
    (root / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing.replace(".", r"\.")):
        load_corpus(root)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"  \n\n \n", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        (b"caf\xe9 latin-1\n", "UTF-8"),
    ],
    ids=["empty", "blank", "binary", "latin1"],
)
def test_load_corpus_corrupt_file_raises(tmp_path: Path, content: bytes, message: str) -> None:
    root = _write_corpus(tmp_path / "c", "a b\n", "a\n", "b\n")
    (root / "valid.txt").write_bytes(content)
    with pytest.raises(ValueError, match=rf"valid\.txt.*{message}"):
        load_corpus(root)


def test_load_corpus_none_is_synthetic() -> None:
    corpus = load_corpus(None)
    assert corpus.name.startswith("synthetic")
    assert corpus.vocab == synthetic_corpus().vocab


def test_corpus_rejects_out_of_range_ids() -> None:
    t = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="outside"):
        Corpus(train=t, valid=t, test=t, vocab=("a", "b"))


def test_corpus_encode_unknown_word_without_unk_raises() -> None:
    t = torch.tensor([0, 1])
    corpus = Corpus(train=t, valid=t, test=t, vocab=("a", "b"))
    assert corpus.encode(["b", "a"]).tolist() == [1, 0]
    with pytest.raises(KeyError, match="zebra"):
        corpus.encode(["zebra"])


# -- synthetic corpus --------------------------------------------------------------------------
def test_synthetic_corpus_is_deterministic_and_sized() -> None:
    # No wall-clock assertion here (a busy CI machine would fail it); the corpus's speed is
    # part of the benchmarks, not of the unit tests.
    a = synthetic_corpus(seed=123, n_train_tokens=100_000)
    b = synthetic_corpus(seed=123, n_train_tokens=100_000)
    c = synthetic_corpus(seed=124, n_train_tokens=100_000)
    assert torch.equal(a.train, b.train) and a.vocab == b.vocab
    assert not torch.equal(a.train[:1000], c.train[:1000])
    assert 100_000 <= a.train.numel() < 100_100
    assert a.valid.numel() >= 10_000 and a.test.numel() >= 10_000
    assert 50 <= a.vocab_size <= 200
    assert set(a.train.tolist()) == set(range(a.vocab_size))  # every word occurs in train


def test_synthetic_corpus_has_agreement_and_balanced_brackets() -> None:
    corpus = synthetic_corpus(n_train_tokens=20_000)
    words = corpus.decode(corpus.train)
    sentences: list[list[str]] = [[]]
    for w in words:
        if w == EOS:
            sentences.append([])
        else:
            sentences[-1].append(w)
    sentences.pop()
    for s in sentences:
        assert s[-1] == "."
        assert s.count("(") == s.count(")")
        assert s.count('"') % 2 == 0
        assert s.count("either") <= s.count("or")
        assert s.count("if") == s.count("then")
    # Singular determiners never precede a plural noun directly.
    plural_nouns = {"dogs", "cats", "children", "women", "mice", "apples", "books"}
    for s in sentences:
        for prev, word in zip(s, s[1:], strict=False):
            if word in plural_nouns:
                assert prev not in {"a", "this", "every", "one"}
    # Simple clauses: "the dog runs" vs "the dogs run", never the mismatched forms.
    text = " ".join(words)
    assert " dog runs " in text and " dogs run " in text
    assert " dog run " not in text and " dogs runs " not in text


@pytest.mark.parametrize("kwargs", [{"n_train_tokens": 1}, {"seed": -1}, {"n_test_tokens": 1.5}])
def test_synthetic_corpus_invalid_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        synthetic_corpus(**kwargs)  # type: ignore[arg-type]


# -- batching ----------------------------------------------------------------------------------
def test_batchify_columns_are_contiguous_streams() -> None:
    data = torch.arange(10)
    out = batchify(data, 3)
    assert out.shape == (3, 3)
    assert out[:, 0].tolist() == [0, 1, 2]
    assert out[:, 2].tolist() == [6, 7, 8]  # token 9 is dropped


@pytest.mark.parametrize("batch_size", [0, -1, 11, True])
def test_batchify_invalid_batch_size_raises(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        batchify(torch.arange(10), batch_size)


def test_batchify_rejects_2d_data() -> None:
    with pytest.raises(ValueError, match="1-D"):
        batchify(torch.zeros(2, 2, dtype=torch.int64), 1)


def test_get_batch_targets_are_shifted_and_last_window_short() -> None:
    source = batchify(torch.arange(20), 2)  # (10, 2)
    x, y = get_batch(source, 0, 4)
    assert x.shape == (4, 2) and torch.equal(y, source[1:5])
    x, y = get_batch(source, 7, 4)
    assert x.shape == (2, 2)  # min(bptt, T - 1 - i)
    assert torch.equal(y, source[8:10])
    with pytest.raises(ValueError, match="i must"):
        get_batch(source, 9, 4)
    with pytest.raises(ValueError, match="bptt"):
        get_batch(source, 0, 0)


# -- images ------------------------------------------------------------------------------------
def test_load_digits_dataset_shapes_normalization_and_determinism() -> None:
    data = load_digits_dataset(seed=3)
    again = load_digits_dataset(seed=3)
    other = load_digits_dataset(seed=4)
    n = data.train_y.numel() + data.valid_y.numel() + data.test_y.numel()
    assert n == 1797
    assert data.train_x.shape[1:] == (1, 8, 8) and data.train_x.dtype == torch.float32
    assert data.in_channels == 1 and data.image_size == (8, 8) and data.n_classes == 10
    assert abs(float(data.train_x.mean())) < 1e-4
    assert abs(float(data.train_x.std()) - 1.0) < 1e-2
    assert torch.equal(data.valid_x, again.valid_x)
    assert not torch.equal(data.valid_y, other.valid_y)


def test_load_digits_dataset_without_sklearn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"optuna-enas\[images\]"):
        load_digits_dataset()


def test_load_digits_dataset_invalid_fraction_raises() -> None:
    with pytest.raises(ValueError, match="valid_fraction"):
        load_digits_dataset(valid_fraction=1.5)


def _write_cifar(root: Path, n_per_batch: int = 6, *, seed: int = 0) -> Path:
    """Tiny CIFAR-10 python batches in the real format (uint8 (N, 3072) + labels list)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(n_per_batch)],
        }
        with open(root / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return root


def test_load_cifar10_reads_real_format(tmp_path: Path) -> None:
    root = _write_cifar(tmp_path / "cifar")
    data = load_cifar10(root, n_valid=4)
    assert isinstance(data, ImageData)
    assert data.train_x.shape == (26, 3, 32, 32)
    assert data.valid_x.shape == (4, 3, 32, 32)
    assert data.test_x.shape == (6, 3, 32, 32)
    assert data.train_y.dtype == torch.int64
    # Channel planes: the first 1024 values are red (row-major).
    with open(root / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    red = raw[b"data"][0, :1024].reshape(32, 32).astype(np.float64) / 255.0
    x0 = data.train_x[0, 0].double().numpy()
    corr = np.corrcoef(red.ravel(), x0.ravel())[0, 1]
    assert corr > 0.999
    assert data.train_y[0].item() == raw[b"labels"][0]
    assert torch.allclose(data.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_load_cifar10_missing_batch_raises(tmp_path: Path) -> None:
    root = _write_cifar(tmp_path / "cifar")
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(root, n_valid=4)
    with pytest.raises(FileNotFoundError, match="path="):
        load_cifar10(tmp_path / "missing")


@pytest.mark.parametrize(
    "payload",
    [b"not a pickle", pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})],
    ids=["garbage", "wrong-shape"],
)
def test_load_cifar10_corrupt_batch_raises(tmp_path: Path, payload: bytes) -> None:
    root = _write_cifar(tmp_path / "cifar")
    (root / "test_batch").write_bytes(payload)
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(root, n_valid=4)


def test_load_cifar10_refuses_code_in_pickle(tmp_path: Path) -> None:
    root = _write_cifar(tmp_path / "cifar")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="not allowed"):
        load_cifar10(root, n_valid=4)


def test_load_cifar10_n_valid_too_large_raises(tmp_path: Path) -> None:
    root = _write_cifar(tmp_path / "cifar")
    with pytest.raises(ValueError, match="n_valid"):
        load_cifar10(root, n_valid=30)


@pytest.mark.slow
def test_load_corpus_ptb_counts_match_data_readme(ptb_dir: Path) -> None:
    corpus = load_corpus(ptb_dir)
    # tokens+eos and vocabulary of /work/shared/data/README.md and Mikolov's PTB.
    assert corpus.train.numel() == 929_589
    assert corpus.valid.numel() == 73_760
    assert corpus.test.numel() == 82_430
    assert corpus.vocab_size == 10_000
    assert corpus.decode(corpus.train[:5]) == [
        "aer",
        "banknote",
        "berlitz",
        "calloway",
        "centrust",
    ]
