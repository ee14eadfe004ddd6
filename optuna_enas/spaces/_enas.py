"""The three search spaces of ENAS (Pham et al., 2018), in the official ``fixed_arc`` order.

Decision order follows the official ENAS README (github.com/melodyguan/enas), so
:meth:`SearchSpace.to_fixed_arc` yields strings the official scripts accept:

* RNN cell (Sec. 2.1, Fig. 1): ``act_0`` then ``(input_i, act_i)`` for nodes ``1..N-1``; ``2N-1``
  tokens (23 for the paper's 12 nodes).
* CNN macro (Sec. 2.3): per layer ``i``, an op index then ``i-1`` skip bits.
* CNN micro (Sec. 2.4): the normal cell then the reduction cell, each ``B`` blocks of
  ``index_1, op_1, index_2, op_2``; indices 0 and 1 are the two previous cells' outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_enas.spaces._search_space import MAX_DECISIONS
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace


RNN_ACTIVATIONS = ("tanh", "relu", "identity", "sigmoid")
"""The paper's four activations, in the official index order (ENAS README)."""
MACRO_OPS = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool", "maxpool")
"""The six macro-space ops, in the official index order (ENAS README)."""
MICRO_OPS = ("sep3x3", "sep5x5", "avgpool", "maxpool", "identity")
"""The five micro-space ops, in the official index order (ENAS README)."""


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _check_count(name: str, value: Any, minimum: int, n_decisions: Callable[[int], int]) -> int:
    """``value`` as a size argument: an integer >= ``minimum`` whose space has at most
    :data:`MAX_DECISIONS` decisions (checked before any decision is built)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {value!r}.")
    if n_decisions(value) > MAX_DECISIONS:
        raise ValueError(
            f"{name}={value} gives a space of {n_decisions(value)} decisions; at most "
            f"{MAX_DECISIONS} are supported."
        )
    return value


def rnn_decisions(n_nodes: int) -> int:
    """Decisions of ``RNNCellSpace(n_nodes=n_nodes)``: an activation per node, an input per
    node after the first."""
    return 2 * n_nodes - 1


def macro_decisions(n_layers: int) -> int:
    """Decisions of ``MacroSpace(n_layers=n_layers)``: an op per layer, a skip bit per pair."""
    return n_layers + n_layers * (n_layers - 1) // 2


def micro_decisions(n_nodes: int) -> int:
    """Decisions of ``MicroSpace(n_nodes=n_nodes)``: two inputs and two ops per block, two
    cells."""
    return 8 * n_nodes


def _check_ops(name: str, ops: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    if isinstance(ops, str):
        raise ValueError(f"{name} must be a sequence of op names, but got the string {ops!r}.")
    ops = tuple(ops)
    if len(ops) == 0:
        raise ValueError(f"{name} must not be empty.")
    unknown = [o for o in ops if o not in known]
    if unknown:
        raise ValueError(f"{name} has unknown ops {unknown}; known ops are {list(known)}.")
    if len(set(ops)) != len(ops):
        raise ValueError(f"{name} must not repeat ops, but got {list(ops)}.")
    return ops


@dataclass(frozen=True)
class RNNNode:
    input: int | None  # index of the node it reads; None for node 0 (reads x_t and h_{t-1})
    activation: str


class RNNCellSpace(SearchSpace):
    """The ENAS recurrent cell: node ``i`` reads one earlier node and applies an activation.

    The cell output is the mean of the loose ends (nodes no other node reads).

    Args:
        n_nodes: Nodes in the cell. Default 12, as in ENAS Sec. 3.1 (PTB).
        activations: Allowed activations. Default: tanh, ReLU, identity, sigmoid (Sec. 2.1).
    """

    def __init__(self, *, n_nodes: int = 12, activations: Sequence[str] = RNN_ACTIVATIONS) -> None:
        self.n_nodes = _check_count("n_nodes", n_nodes, 1, rnn_decisions)
        self.activations = _check_ops("activations", activations, RNN_ACTIVATIONS)
        decisions = [Decision("node0_act", self.activations, "op")]
        for i in range(1, n_nodes):
            decisions.append(Decision(f"node{i}_in", tuple(range(i)), "input"))
            decisions.append(Decision(f"node{i}_act", self.activations, "op"))
        super().__init__(decisions, name="rnn")

    def cell(self, arch: Architecture) -> list[RNNNode]:
        p = self.architecture(arch.to_params()).to_params()
        nodes = [RNNNode(None, str(p["node0_act"]))]
        for i in range(1, self.n_nodes):
            nodes.append(RNNNode(_int(p[f"node{i}_in"]), str(p[f"node{i}_act"])))
        return nodes

    def loose_ends(self, arch: Architecture) -> list[int]:
        used = {n.input for n in self.cell(arch) if n.input is not None}
        return [i for i in range(self.n_nodes) if i not in used]

    def describe(self, arch: Architecture) -> str:
        parts = []
        for i, n in enumerate(self.cell(arch)):
            parts.append(
                f"{i}:{n.activation}" if n.input is None else f"{i}<{n.input}:{n.activation}"
            )
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "rnn", "n_nodes": self.n_nodes, "activations": list(self.activations)}


@dataclass(frozen=True)
class MacroLayer:
    op: str
    skips: tuple[int, ...]  # skip bits set to 1; bit j adds [stem, layer0, ...][j] (official code)


class MacroSpace(SearchSpace):
    """The ENAS macro space: one op per layer plus a skip bit to every earlier layer.

    Args:
        n_layers: Layers. Default 12, as in ``cifar10_macro_search.sh`` (``child_num_layers``).
        ops: Allowed ops. Default: the six of ENAS Sec. 2.3, official order.
    """

    def __init__(self, *, n_layers: int = 12, ops: Sequence[str] = MACRO_OPS) -> None:
        self.n_layers = _check_count("n_layers", n_layers, 1, macro_decisions)
        self.ops = _check_ops("ops", ops, MACRO_OPS)
        decisions = []
        for i in range(n_layers):
            decisions.append(Decision(f"layer{i}_op", self.ops, "op"))
            for j in range(i):
                decisions.append(Decision(f"layer{i}_skip{j}", (0, 1), "skip"))
        super().__init__(decisions, name="macro")

    def layers(self, arch: Architecture) -> list[MacroLayer]:
        p = self.architecture(arch.to_params()).to_params()
        return [
            MacroLayer(
                str(p[f"layer{i}_op"]),
                tuple(j for j in range(i) if p[f"layer{i}_skip{j}"] == 1),
            )
            for i in range(self.n_layers)
        ]

    def describe(self, arch: Architecture) -> str:
        return " | ".join(
            f"{layer.op}" + (f"+{','.join(map(str, layer.skips))}" if layer.skips else "")
            for layer in self.layers(arch)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"type": "macro", "n_layers": self.n_layers, "ops": list(self.ops)}


@dataclass(frozen=True)
class MicroNode:
    in1: int
    op1: str
    in2: int
    op2: str


@dataclass(frozen=True)
class MicroCells:
    normal: tuple[MicroNode, ...]
    reduction: tuple[MicroNode, ...]


class MicroSpace(SearchSpace):
    """The ENAS micro space: a normal and a reduction cell of ``n_nodes`` blocks each.

    Block ``b`` (numbered ``2..B+1``) picks two inputs among ``0..b-1`` and an op for each.

    Args:
        n_nodes: Blocks per cell, ``B``. Default 5, as in ENAS Sec. 2.4 and
            ``cifar10_micro_search.sh`` (``child_num_cells``).
        ops: Allowed ops. Default: the five of ENAS Sec. 2.4, official order.
    """

    def __init__(self, *, n_nodes: int = 5, ops: Sequence[str] = MICRO_OPS) -> None:
        self.n_nodes = _check_count("n_nodes", n_nodes, 1, micro_decisions)
        self.ops = _check_ops("ops", ops, MICRO_OPS)
        decisions = []
        for cell in ("normal", "reduce"):
            for b in range(2, n_nodes + 2):
                for k in (1, 2):
                    decisions.append(Decision(f"{cell}_b{b}_in{k}", tuple(range(b)), "input"))
                    decisions.append(Decision(f"{cell}_b{b}_op{k}", self.ops, "op"))
        super().__init__(decisions, name="micro")

    def cells(self, arch: Architecture) -> MicroCells:
        p = self.architecture(arch.to_params()).to_params()

        def cell(kind: str) -> tuple[MicroNode, ...]:
            return tuple(
                MicroNode(
                    _int(p[f"{kind}_b{b}_in1"]),
                    str(p[f"{kind}_b{b}_op1"]),
                    _int(p[f"{kind}_b{b}_in2"]),
                    str(p[f"{kind}_b{b}_op2"]),
                )
                for b in range(2, self.n_nodes + 2)
            )

        return MicroCells(normal=cell("normal"), reduction=cell("reduce"))

    def describe(self, arch: Architecture) -> str:
        c = self.cells(arch)

        def fmt(nodes: tuple[MicroNode, ...]) -> str:
            return " ".join(f"{n.op1}({n.in1})+{n.op2}({n.in2})" for n in nodes)

        return f"normal: {fmt(c.normal)} | reduce: {fmt(c.reduction)}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "micro", "n_nodes": self.n_nodes, "ops": list(self.ops)}


_SPACE_KEYS = {  # what SearchSpace.to_dict() writes, so what a complete dict has
    "rnn": ("n_nodes", "activations"),
    "macro": ("n_layers", "ops"),
    "micro": ("n_nodes", "ops"),
    "custom": ("decisions",),
}


_MAX_SIZE_FROM_DICT = {"rnn": 256, "micro": 256, "macro": 128}
"""The largest space :func:`space_from_dict` builds: 10-20 times the papers' (12 RNN nodes,
5 micro nodes, 24 macro layers); building the 128-layer macro space takes ~2.5 s."""


def space_from_dict(data: dict[str, Any]) -> SearchSpace:
    """Rebuild a space from :meth:`SearchSpace.to_dict`.

    Raises:
        ValueError: ``data`` is not such a dict (a missing key is named).
    """
    if not isinstance(data, dict):
        raise ValueError(f"data must be a dict from SearchSpace.to_dict(), but got {data!r}.")
    kind = data.get("type")
    if kind not in _SPACE_KEYS:
        raise ValueError(f"data['type'] must be rnn, macro, micro or custom, but got {kind!r}.")
    missing = [k for k in _SPACE_KEYS[kind] if k not in data]
    if missing:
        raise ValueError(
            f"data for a {kind!r} space must have the keys {list(_SPACE_KEYS[kind])}, but "
            f"{', '.join(missing)} is missing (got {data!r})."
        )
    # A file read back is bounded before anything is built (the spaces grow as n^2 to n^3).
    size_key = "n_layers" if kind == "macro" else "n_nodes"
    size = data.get(size_key, 1)
    limit = _MAX_SIZE_FROM_DICT.get(kind)
    if limit is not None and not (
        isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= limit
    ):
        raise ValueError(
            f"data[{size_key!r}] of a {kind!r} space must be an int in [1, {limit}], "
            f"but got {size!r}."
        )
    if kind == "rnn":
        return RNNCellSpace(n_nodes=data["n_nodes"], activations=data["activations"])
    if kind == "macro":
        return MacroSpace(n_layers=data["n_layers"], ops=data["ops"])
    if kind == "micro":
        return MicroSpace(n_nodes=data["n_nodes"], ops=data["ops"])
    try:
        decisions = [
            Decision(d["name"], tuple(d["choices"]), d.get("kind", "other"))
            for d in data["decisions"]
        ]
    except (KeyError, TypeError) as e:
        raise ValueError(
            "data['decisions'] must be a list of {'name', 'choices', 'kind'} dicts, but got "
            f"{data['decisions']!r}."
        ) from e
    return SearchSpace(decisions, name=data.get("name", "custom"))


def make_space(name: str, **kwargs: Any) -> SearchSpace:
    """Build an ENAS space by name: ``"rnn"``, ``"macro"`` or ``"micro"``."""
    spaces: dict[str, type[SearchSpace]] = {
        "rnn": RNNCellSpace,
        "macro": MacroSpace,
        "micro": MicroSpace,
    }
    if name not in spaces:
        raise ValueError(f"space must be one of {sorted(spaces)}, but got {name!r}.")
    return spaces[name](**kwargs)
