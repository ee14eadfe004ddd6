"""The public names of optuna_enas.nn, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.nn._choices import InputChoice as InputChoice
from optuna_enas.nn._choices import LayerChoice as LayerChoice
from optuna_enas.nn._choices import Repeat as Repeat
from optuna_enas.nn._choices import ValueChoice as ValueChoice
from optuna_enas.nn._elastic import ElasticBatchNorm2d as ElasticBatchNorm2d
from optuna_enas.nn._elastic import ElasticConv2d as ElasticConv2d
from optuna_enas.nn._elastic import ElasticLinear as ElasticLinear
from optuna_enas.nn._supernet import Supernet as Supernet
