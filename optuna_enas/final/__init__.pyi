"""The public names of optuna_enas.final, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.final._derive import DerivedArchitecture as DerivedArchitecture
from optuna_enas.final._derive import derive as derive
from optuna_enas.final._export import export_architecture as export_architecture
from optuna_enas.final._export import import_architecture as import_architecture
from optuna_enas.final._rank_check import RankCheckResult as RankCheckResult
from optuna_enas.final._rank_check import rank_check as rank_check
from optuna_enas.final._rank_metrics import kendall_tau as kendall_tau
from optuna_enas.final._rank_metrics import rank_agreement as rank_agreement
from optuna_enas.final._rank_metrics import spearman_rho as spearman_rho
from optuna_enas.final._rank_metrics import top_k_overlap as top_k_overlap
from optuna_enas.final._retrain import RetrainResult as RetrainResult
from optuna_enas.final._retrain import retrain as retrain
