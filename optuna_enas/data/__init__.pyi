"""The public names of optuna_enas.data, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.data._corpus import Corpus as Corpus
from optuna_enas.data._corpus import batchify as batchify
from optuna_enas.data._corpus import get_batch as get_batch
from optuna_enas.data._corpus import load_corpus as load_corpus
from optuna_enas.data._corpus import synthetic_corpus as synthetic_corpus
from optuna_enas.data._images import ImageData as ImageData
from optuna_enas.data._images import load_cifar10 as load_cifar10
from optuna_enas.data._images import load_digits_dataset as load_digits_dataset
