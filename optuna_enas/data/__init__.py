"""Datasets: word-level corpora for the RNN space and image sets for the CNN spaces.

The image loaders need NumPy only; :func:`load_digits_dataset` also needs scikit-learn
(``pip install optuna-enas[images]``), imported when it is called.
"""

from optuna_enas.data._corpus import DEFAULT_BATCH_SIZE
from optuna_enas.data._corpus import DEFAULT_BPTT
from optuna_enas.data._corpus import EOS
from optuna_enas.data._corpus import UNK
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._corpus import batchify
from optuna_enas.data._corpus import get_batch
from optuna_enas.data._corpus import load_corpus
from optuna_enas.data._corpus import synthetic_corpus
from optuna_enas.data._images import ImageData
from optuna_enas.data._images import load_cifar10
from optuna_enas.data._images import load_digits_dataset


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BPTT",
    "EOS",
    "UNK",
    "Corpus",
    "ImageData",
    "batchify",
    "get_batch",
    "load_cifar10",
    "load_corpus",
    "load_digits_dataset",
    "synthetic_corpus",
]
