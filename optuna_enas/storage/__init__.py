"""Durable, fast storage for long searches: one write per trial (BatchedStorage), or an in-memory
study mirrored to a journal file (TrialMirror)."""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
