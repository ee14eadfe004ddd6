"""What each kind of ENAS space means to the rest of the package, written down once.

An evaluator, ``derive``, ``retrain``, the CLI and the dashboard all need to know that an RNN
cell is scored by validation perplexity (lower is better) on a text corpus while the CNN
spaces are scored by accuracy on images. They read it here. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._search_space import SearchSpace


Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class SpaceKind:
    """Facts about one kind of space.

    Attributes:
        name: ``"rnn"``, ``"macro"`` or ``"micro"`` (the space's ``name``).
        metric: The evaluators' metric: ``"ppl"`` or ``"accuracy"``.
        metric_label: The metric as axes and tables show it (``"valid ppl"``).
        direction: The study direction the metric needs.
        data: The data it trains on: ``"corpus"`` (text) or ``"images"``.
    """

    name: str
    metric: str
    metric_label: str
    direction: Direction
    data: Literal["corpus", "images"]


KINDS: dict[str, SpaceKind] = {
    # Language modelling: ENAS Sec. 3.1 reports validation / test perplexity on PTB.
    "rnn": SpaceKind("rnn", "ppl", "valid ppl", "minimize", "corpus"),
    # Image classification: ENAS Sec. 3.2 reports CIFAR-10 accuracy (error).
    "macro": SpaceKind("macro", "accuracy", "valid accuracy", "maximize", "images"),
    "micro": SpaceKind("micro", "accuracy", "valid accuracy", "maximize", "images"),
}

_CLASSES: dict[str, type[SearchSpace]] = {
    "rnn": RNNCellSpace,
    "macro": MacroSpace,
    "micro": MicroSpace,
}


def kind_of(space: SearchSpace | str) -> SpaceKind:
    """The facts of ``space`` (an ENAS space or its name).

    Raises:
        ValueError: ``space`` is not an RNNCellSpace, MacroSpace or MicroSpace (nor the name
            of one): only those have supernets.
    """
    if isinstance(space, str):
        if space in KINDS:
            return KINDS[space]
    else:
        for name, cls in _CLASSES.items():
            if isinstance(space, cls):
                return KINDS[name]
    raise ValueError(
        f"space must be an RNNCellSpace, MacroSpace or MicroSpace (or 'rnn', 'macro', "
        f"'micro'), but got {space!r}."
    )


__all__ = ["KINDS", "Direction", "SpaceKind", "kind_of"]
