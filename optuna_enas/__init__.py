"""optuna-enas: Efficient Neural Architecture Search (Pham et al., 2018) as an Optuna sampler.

The package has two halves that meet only through Optuna params:

- sampling: :mod:`optuna_enas.spaces` (torch-free) and :mod:`optuna_enas.sampler`;
- evaluation: :mod:`optuna_enas.nn` (choice modules for your own model and its
  :class:`~optuna_enas.nn.Supernet`), :mod:`optuna_enas.supernet` (the ENAS spaces' supernets),
  :mod:`optuna_enas.training`, :mod:`optuna_enas.data`;

and :mod:`optuna_enas.oneshot` (DARTS, DSO-NAS), :mod:`optuna_enas.final` (derive, retrain,
export), :mod:`optuna_enas.storage`, :mod:`optuna_enas.dashboard` and :mod:`optuna_enas.cli`
around them. The root re-exports the names of the usual workflow; every package lists its
public names once, in its ``__init__.pyi`` (docs/api.md lists them all). Names load lazily
(PEP 562, :mod:`optuna_enas._lazy`): ``import optuna_enas`` and the spaces work without
importing torch.
"""

from optuna_enas import _lazy


__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
