"""The per-kind facts: every ENAS space kind has one record and every consumer reads it."""

from __future__ import annotations

import pytest

from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas.spaces._kinds import KINDS
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Decision


def test_kind_of_space_and_name_agree() -> None:
    for space in (RNNCellSpace(n_nodes=2), MacroSpace(n_layers=2), MicroSpace(n_nodes=1)):
        assert kind_of(space) is kind_of(space.name) is KINDS[space.name]
    assert (KINDS["rnn"].metric, KINDS["rnn"].direction) == ("ppl", "minimize")
    assert (KINDS["micro"].metric, KINDS["micro"].direction) == ("accuracy", "maximize")
    assert KINDS["macro"].data == "images" and KINDS["rnn"].data == "corpus"


def test_kind_of_custom_space_is_refused_by_name() -> None:
    custom = SearchSpace([Decision("a", (1, 2))], name="custom")
    with pytest.raises(ValueError, match="space must be an RNNCellSpace, MacroSpace or Micro"):
        kind_of(custom)
    with pytest.raises(ValueError, match="'custom'"):
        kind_of("custom")


def test_evaluators_read_the_registry() -> None:
    pytest.importorskip("torch")
    from optuna_enas import StandaloneEvaluator
    from optuna_enas import SupernetEvaluator

    space = RNNCellSpace(n_nodes=2)
    for cls in (SupernetEvaluator, StandaloneEvaluator):
        ev = cls(space, supernet_kwargs={"hidden_size": 8, "embed_size": 8}, seed=0)
        assert (ev.metric, ev.direction) == (KINDS["rnn"].metric, KINDS["rnn"].direction)
