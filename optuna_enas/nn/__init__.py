"""Choice modules for your own PyTorch model, and the shared-weight :class:`Supernet` over them.

Write the model as usual, with :class:`LayerChoice` / :class:`InputChoice` / :class:`Repeat`
where an operation, an input or a depth is searched, and :class:`ValueChoice` for widths and
kernel sizes of the elastic layers. ``Supernet(model)`` gives the search space, routes the
forward through an architecture (``activate``) and exports it as a plain torch module.
The one-shot methods relax the same choice modules (:mod:`optuna_enas.oneshot`:
``DARTSRelaxation``, ``DSONASRelaxation``; the searchers ``ModelDARTS``, ``ModelDSONAS``).
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
