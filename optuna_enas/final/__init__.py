"""The final architecture: derive it from a search, retrain it from scratch, export it; and
:func:`rank_check`, which tests the supernet's ranking against training from scratch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


_EXPORTS = {
    "DerivedArchitecture": "optuna_enas.final._derive",
    "derive": "optuna_enas.final._derive",
    "export_architecture": "optuna_enas.final._export",
    "import_architecture": "optuna_enas.final._export",
    "RetrainResult": "optuna_enas.final._retrain",
    "retrain": "optuna_enas.final._retrain",
    "RankCheckResult": "optuna_enas.final._rank_check",
    "rank_check": "optuna_enas.final._rank_check",
    "kendall_tau": "optuna_enas.final._rank_metrics",
    "spearman_rho": "optuna_enas.final._rank_metrics",
    "top_k_overlap": "optuna_enas.final._rank_metrics",
    "rank_agreement": "optuna_enas.final._rank_metrics",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
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

__all__ = sorted(_EXPORTS)
