"""Choice modules for your own PyTorch model, and the shared-weight :class:`Supernet` over them.

Write the model as usual, with :class:`LayerChoice` / :class:`InputChoice` / :class:`Repeat`
where an operation, an input or a depth is searched, and :class:`ValueChoice` for widths and
kernel sizes of the elastic layers. ``Supernet(model)`` gives the search space, routes the
forward through an architecture (``activate``) and exports it as a plain torch module.
The one-shot methods relax the same choice modules: :class:`DARTSRelaxation`,
:class:`DSONASRelaxation`, and their searchers :class:`ModelDARTS`, :class:`ModelDSONAS`.
"""

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports
from optuna_enas.nn._choices import InputChoice
from optuna_enas.nn._choices import LayerChoice
from optuna_enas.nn._choices import Repeat
from optuna_enas.nn._choices import ValueChoice
from optuna_enas.nn._elastic import ElasticBatchNorm2d
from optuna_enas.nn._elastic import ElasticConv2d
from optuna_enas.nn._elastic import ElasticLinear
from optuna_enas.nn._supernet import Supernet


# The one-shot pieces import the searchers' modules, which import this package: loaded lazily.
_LAZY = {
    "DARTSRelaxation": "optuna_enas.nn._relax",
    "DSONASRelaxation": "optuna_enas.nn._relax",
    "ModelDARTS": "optuna_enas.nn._oneshot",
    "ModelDSONAS": "optuna_enas.nn._oneshot",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

if TYPE_CHECKING:
    from optuna_enas.nn._oneshot import ModelDARTS as ModelDARTS
    from optuna_enas.nn._oneshot import ModelDSONAS as ModelDSONAS
    from optuna_enas.nn._relax import DARTSRelaxation as DARTSRelaxation
    from optuna_enas.nn._relax import DSONASRelaxation as DSONASRelaxation


__all__ = [
    "DARTSRelaxation",
    "DSONASRelaxation",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticLinear",
    "InputChoice",
    "LayerChoice",
    "ModelDARTS",
    "ModelDSONAS",
    "Repeat",
    "Supernet",
    "ValueChoice",
]
