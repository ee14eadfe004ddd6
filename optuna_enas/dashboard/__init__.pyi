"""The public names of optuna_enas.dashboard, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.dashboard._callback import DashboardCallback as DashboardCallback
from optuna_enas.dashboard._figures import best_so_far as best_so_far
from optuna_enas.dashboard._figures import plot_arch_weights as plot_arch_weights
from optuna_enas.dashboard._figures import plot_best_so_far as plot_best_so_far
from optuna_enas.dashboard._figures import plot_comparison as plot_comparison
from optuna_enas.dashboard._figures import plot_controller_stats as plot_controller_stats
from optuna_enas.dashboard._figures import save_study_figures as save_study_figures
from optuna_enas.dashboard._figures import set_metric_name as set_metric_name
from optuna_enas.dashboard._svg import architecture_svg as architecture_svg
from optuna_enas.dashboard._svg import comparison_svg as comparison_svg
