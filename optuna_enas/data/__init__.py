"""Datasets: word-level corpora for the RNN space and image sets for the CNN spaces.

The image loaders need NumPy only; :func:`load_digits_dataset` also needs scikit-learn
(``pip install optuna-enas[images]``), imported when it is called.
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
