from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from optuna_enas import Architecture
from optuna_enas import Decision
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas import make_space
from optuna_enas import space_from_dict
from optuna_enas import suggest_architecture


# The architecture drawn in the ENAS paper (Fig. 1 full cell), from the official README.
PAPER_RNN_ARC = "0 0 0 1 1 2 1 2 0 2 0 5 1 1 0 6 1 8 1 8 1 8 1"


def test_rnn_space_paper_default_has_23_decisions() -> None:
    space = RNNCellSpace()
    assert len(space) == 23
    assert space.decisions[0].name == "node0_act"
    assert space.decision("node11_in").choices == tuple(range(11))
    # 4^12 * 11! architectures, as in the paper.
    assert space.n_architectures == 4**12 * 39916800


def test_rnn_fixed_arc_round_trip_and_cell() -> None:
    space = RNNCellSpace()
    arch = space.from_fixed_arc(PAPER_RNN_ARC)
    assert space.to_fixed_arc(arch) == PAPER_RNN_ARC
    cell = space.cell(arch)
    assert cell[0].input is None and cell[0].activation == "tanh"
    assert cell[5].input == 2 and cell[6].input == 5 and cell[6].activation == "relu"
    assert space.loose_ends(arch) == [3, 4, 7, 9, 10, 11]


def test_macro_fixed_arc_layout() -> None:
    space = MacroSpace(n_layers=3)
    # layer0: op 1; layer1: op 0, skip from 0; layer2: op 5, skips (0, 1) = (0, 1)
    arch = space.from_fixed_arc("1 0 1 5 0 1")
    layers = space.layers(arch)
    assert [layer.op for layer in layers] == ["sep3x3", "conv3x3", "maxpool"]
    assert [layer.skips for layer in layers] == [(), (0,), (1,)]
    assert len(MacroSpace()) == 12 + 66


def test_micro_fixed_arc_layout() -> None:
    space = MicroSpace(n_nodes=2)
    arch = space.from_fixed_arc("0 4 1 0 2 3 0 1  1 2 0 0 0 1 2 4")
    cells = space.cells(arch)
    assert cells.normal[0].in1 == 0 and cells.normal[0].op1 == "identity"
    assert cells.normal[1].in1 == 2 and cells.normal[1].op1 == "maxpool"
    assert cells.reduction[1].op2 == "identity"
    assert len(MicroSpace()) == 40


@pytest.mark.parametrize("space", [RNNCellSpace(n_nodes=4), MacroSpace(n_layers=4), MicroSpace()])
def test_architecture_params_json_round_trip(space: SearchSpace) -> None:
    arch = space.sample_uniform(np.random.default_rng(0))
    assert space.architecture(arch.to_params()) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    assert hash(Architecture.from_json(arch.to_json())) == hash(arch)
    assert space.from_indices(space.to_indices(arch)) == arch
    assert space_from_dict(json.loads(json.dumps(space.to_dict()))) == space


def test_distributions_do_not_depend_on_earlier_choices() -> None:
    space = RNNCellSpace(n_nodes=5)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: len(suggest_architecture(t, space).params), n_trials=5)
    dists = [t.distributions for t in study.trials]
    assert all(d == space.distributions() for d in dists)
    assert study.trials[0].user_attrs["architecture"].startswith("0:")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RNNCellSpace(n_nodes=0), "n_nodes"),
        (lambda: RNNCellSpace(n_nodes=2.5), "n_nodes"),  # type: ignore[arg-type]
        (lambda: RNNCellSpace(activations=["tanh", "gelu"]), "activations.*gelu"),
        (lambda: RNNCellSpace(activations=[]), "activations"),
        (lambda: RNNCellSpace(activations="tanh"), "activations"),
        (lambda: RNNCellSpace(activations=["tanh", "tanh"]), "activations"),
        (lambda: MacroSpace(n_layers=-1), "n_layers"),
        (lambda: MacroSpace(ops=["conv7x7"]), "ops.*conv7x7"),
        (lambda: MicroSpace(n_nodes=0), "n_nodes"),
        (lambda: MicroSpace(ops=["sep3x3", "zero"]), "ops.*zero"),
        (lambda: SearchSpace([]), "decisions"),
        (lambda: SearchSpace([Decision("a", (1, 2)), Decision("a", (1,))]), "unique"),
        (lambda: Decision("a", ()), "choices"),
        (lambda: Decision("a", (1, 1)), "unique"),
        (lambda: Decision("", (1,)), "name"),
        (lambda: Decision("a", (1,), "weird"), "kind"),  # type: ignore[arg-type]
        (lambda: make_space("transformer"), "space"),
        (lambda: space_from_dict({"type": "x"}), "type"),
    ],
)
def test_bad_space_configuration_raises_value_error(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_bad_params_and_fixed_arcs_raise() -> None:
    space = RNNCellSpace(n_nodes=3)
    with pytest.raises(ValueError, match="node2_in"):
        space.architecture({"node0_act": "tanh", "node1_in": 0, "node1_act": "relu"})
    with pytest.raises(ValueError, match="node1_act"):
        space.architecture(
            {
                "node0_act": "tanh",
                "node1_in": 0,
                "node1_act": "gelu",
                "node2_in": 0,
                "node2_act": "relu",
            }
        )
    with pytest.raises(ValueError, match="5 entries"):
        space.from_fixed_arc("0 0 1")
    with pytest.raises(ValueError, match="integers"):
        space.from_fixed_arc("0 a 1 0 0")
    with pytest.raises(ValueError, match="outside"):
        space.from_fixed_arc("0 3 1 0 0")
    with pytest.raises(ValueError, match="Architecture"):
        Architecture.from_json("{not json")


@pytest.mark.parametrize(
    ("factory", "key", "largest"),
    [
        (RNNCellSpace, "n_nodes", 5000),  # 2n - 1 decisions
        (MacroSpace, "n_layers", 140),  # n + n(n-1)/2
        (MicroSpace, "n_nodes", 1250),  # 8n
    ],
)
def test_space_sizes_are_bounded_before_anything_is_built(
    factory: type, key: str, largest: int
) -> None:
    from optuna_enas.spaces._search_space import MAX_DECISIONS

    assert len(factory(**{key: largest}).decisions) <= MAX_DECISIONS
    with pytest.raises(ValueError, match=rf"{key}={largest + 1} gives a space of \d+ decisions"):
        factory(**{key: largest + 1})
    with pytest.raises(ValueError, match=f"{key}=10000000 gives a space of"):
        factory(**{key: 10**7})  # refused at once, not after building 10^7 decisions


def test_custom_space_decision_count_is_bounded() -> None:
    from optuna_enas.spaces._search_space import MAX_DECISIONS

    decisions = [Decision(f"d{i}", (0, 1)) for i in range(MAX_DECISIONS + 1)]
    with pytest.raises(ValueError, match=f"{MAX_DECISIONS + 1} decisions; at most"):
        SearchSpace(decisions)
    assert len(SearchSpace(decisions[:-1]).decisions) == MAX_DECISIONS
