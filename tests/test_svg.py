"""The hand-drawn SVGs: well-formed XML with one box per node of the architecture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas.dashboard import architecture_svg
from optuna_enas.dashboard import comparison_svg
from optuna_enas.spaces._search_space import Decision


_NS = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{_NS}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{_NS}text")]


def test_rnn_cell_drawing_names_every_node_and_activation() -> None:
    space = RNNCellSpace(n_nodes=4)
    arch = space.architecture(
        {"node0_act": "tanh", "node1_in": 0, "node1_act": "relu", "node2_in": 0,
         "node2_act": "identity", "node3_in": 2, "node3_act": "sigmoid"}
    )  # fmt: skip
    texts = " ".join(_texts(architecture_svg(space, arch, title="cell <1>")))
    for label in ("0: tanh", "1: relu", "2: identity", "3: sigmoid"):
        assert label in texts
    assert "cell <1>" in texts  # escaped in the XML, intact when parsed


@pytest.mark.parametrize("space", [MacroSpace(n_layers=3), MicroSpace(n_nodes=2)])
def test_cnn_drawings_parse_and_show_the_ops(space: SearchSpace) -> None:
    arch = space.from_indices([0] * len(space))
    texts = " ".join(_texts(architecture_svg(space, arch)))
    op = str(space.decisions[[d.kind for d in space.decisions].index("op")].choices[0])
    assert op.split("_")[0] in texts


def test_generic_space_lists_its_decisions() -> None:
    space = SearchSpace([Decision("width", (8, 16)), Decision("act", ("relu", "tanh"))])
    texts = " ".join(_texts(architecture_svg(space, {"width": 16, "act": "tanh"})))
    assert "width" in texts and "16" in texts and "tanh" in texts


def test_comparison_svg_has_one_series_per_sampler() -> None:
    svg = comparison_svg(
        {"enas": [[3.0, 2.0, 1.0]], "random": [[3.0, 2.5, 2.0], [3.0, 3.0, 2.2]]},
        metric="valid ppl",
        title="t",
    )
    texts = " ".join(_texts(svg))
    assert "enas" in texts and "random" in texts and "valid ppl" in texts
    with pytest.raises(ValueError):
        comparison_svg({}, metric="m", title="t")
