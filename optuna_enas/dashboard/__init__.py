"""optuna-dashboard integration and pictures: architecture SVGs, trial notes, study figures.

- :mod:`._svg`: hand-drawn SVGs of an architecture (RNN cell, macro, micro) and comparison charts;
- :mod:`._callback`: :class:`DashboardCallback` (per-trial drawing as artifact + note);
- :mod:`._figures`: plotly figures of the study (best so far, controller statistics, one-shot
  alpha / lambda over epochs);
- :mod:`._rank_figure`: the rank-check scatter plot (SVG and plotly), drawn by
  :class:`~optuna_enas.final.RankCheckResult`.
"""

from optuna_enas.dashboard._callback import SVG_ATTR
from optuna_enas.dashboard._callback import ArtifactStoreLike
from optuna_enas.dashboard._callback import DashboardCallback
from optuna_enas.dashboard._callback import architecture_note
from optuna_enas.dashboard._figures import STATS_KEY
from optuna_enas.dashboard._figures import best_so_far
from optuna_enas.dashboard._figures import controller_stats
from optuna_enas.dashboard._figures import max_entropy
from optuna_enas.dashboard._figures import oneshot_history
from optuna_enas.dashboard._figures import plot_arch_weights
from optuna_enas.dashboard._figures import plot_best_so_far
from optuna_enas.dashboard._figures import plot_comparison
from optuna_enas.dashboard._figures import plot_controller_stats
from optuna_enas.dashboard._figures import save_study_figures
from optuna_enas.dashboard._figures import set_metric_name
from optuna_enas.dashboard._svg import architecture_svg
from optuna_enas.dashboard._svg import comparison_svg


__all__ = [
    "STATS_KEY",
    "SVG_ATTR",
    "ArtifactStoreLike",
    "DashboardCallback",
    "architecture_note",
    "architecture_svg",
    "best_so_far",
    "comparison_svg",
    "controller_stats",
    "max_entropy",
    "oneshot_history",
    "plot_arch_weights",
    "plot_best_so_far",
    "plot_comparison",
    "plot_controller_stats",
    "save_study_figures",
    "set_metric_name",
]
