"""``build_relaxed``: the relaxed supernet of an ENAS space, sized for its data.

Kept apart from :mod:`._relaxed` (the base class the relaxed supernets import), so that the
base class never imports its subclasses.
"""

from __future__ import annotations

from typing import Any

import torch

from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._relaxed import check_relaxation
from optuna_enas.oneshot._relaxed_cnn import RelaxedMacroSupernet
from optuna_enas.oneshot._relaxed_cnn import RelaxedMicroSupernet
from optuna_enas.oneshot._relaxed_rnn import RelaxedRNNSupernet
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._tasks import default_data
from optuna_enas.training._trainer import sized_for_data


def build_relaxed(
    space: SearchSpace,
    data: Corpus | ImageData,
    *,
    relaxation: Relaxation,
    generator: torch.Generator,
    **supernet_kwargs: Any,
) -> RelaxedSupernet:
    """The relaxed supernet of ``space`` sized for ``data`` (as ``build_supernet`` sizes it).

    ``supernet_kwargs`` are the discrete supernet's keyword arguments (``hidden_size``,
    ``n_filters``, ...), so the same dict builds both and the weight layouts agree.

    Raises:
        ValueError: ``space`` is not an ENAS space, ``relaxation`` is unknown, or a keyword
            disagrees with ``data``.
    """
    kind_of(space)  # a ValueError for a space without a supernet
    relaxation = check_relaxation(relaxation)
    data = default_data(space, data)
    kw = sized_for_data(supernet_kwargs, data)
    if isinstance(space, RNNCellSpace):
        return RelaxedRNNSupernet(space, relaxation=relaxation, generator=generator, **kw)
    image_size = tuple(int(s) for s in data.train_x.shape[2:])  # type: ignore[union-attr]
    if isinstance(space, MacroSpace):
        return RelaxedMacroSupernet(
            space, relaxation=relaxation, generator=generator, image_size=image_size, **kw
        )
    assert isinstance(space, MicroSpace)
    return RelaxedMicroSupernet(
        space, relaxation=relaxation, generator=generator, image_size=image_size, **kw
    )


__all__ = ["build_relaxed"]
