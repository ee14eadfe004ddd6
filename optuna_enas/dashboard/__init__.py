"""optuna-dashboard integration and pictures: architecture SVGs, trial notes, study figures.

- :mod:`._svg`: hand-drawn SVGs of an architecture (RNN cell, macro, micro) and comparison charts;
- :mod:`._callback`: :class:`DashboardCallback` (per-trial drawing as artifact + note);
- :mod:`._figures`: plotly figures of the study (best so far, controller statistics, one-shot
  alpha / lambda over epochs);
- :mod:`._rank_figure`: the rank-check scatter plot (SVG and plotly), drawn by
  :class:`~optuna_enas.final.RankCheckResult`.
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
