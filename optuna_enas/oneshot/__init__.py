"""One-shot NAS: relaxed (continuous) supernets for DARTS and DSO-NAS, and their searchers.

Names load lazily (PEP 562), so ``import optuna_enas`` does not import torch.

- :mod:`._relaxed`: :class:`RelaxedSupernet` (the contract the searchers build on);
  :mod:`._build`: :func:`build_relaxed`;
- :mod:`._mixed`: mixed-op and scaled-sum building blocks;
- :mod:`._relaxed_rnn`: the relaxed recurrent cell (DARTS recurrent space, DSO-NAS lambdas);
- :mod:`._relaxed_cnn`: the relaxed micro and macro CNN supernets;
- :mod:`._searcher`: the shared loop (budget in weight steps, one trial per epoch, checkpoints);
- :mod:`._darts`: :class:`DARTS` (first and second order); :mod:`._dsonas`: :class:`DSONAS`;
- :mod:`._apg`: soft-thresholding and the accelerated proximal gradient of DSO-NAS;
- :mod:`._record`: an epoch's derived architecture as an Optuna trial;
- :mod:`._collapse`: the share of parameter-free ops, its warning and DARTS+ early stopping;
- :mod:`._choice_relax`: :class:`DARTSRelaxation` / :class:`DSONASRelaxation`, a relaxation
  applied to the choice modules of a :class:`~optuna_enas.nn.Supernet` (your own model, and
  the built-in CNN supernets); :mod:`._model_search`: :class:`ModelDARTS` /
  :class:`ModelDSONAS`, the searchers over it with your loaders, loss and metric.
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
