"""The final architecture: derive it from a search, retrain it from scratch, export it."""

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
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.final._derive import DerivedArchitecture as DerivedArchitecture
    from optuna_enas.final._derive import derive as derive
    from optuna_enas.final._export import export_architecture as export_architecture
    from optuna_enas.final._export import import_architecture as import_architecture
    from optuna_enas.final._retrain import RetrainResult as RetrainResult
    from optuna_enas.final._retrain import retrain as retrain

__all__ = sorted(_EXPORTS)
