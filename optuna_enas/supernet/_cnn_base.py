"""What the built-in CNN supernets share: an :class:`~optuna_enas.nn.Supernet` over an ENAS space.

:class:`MicroSupernet <optuna_enas.supernet.MicroSupernet>` and
:class:`MacroSupernet <optuna_enas.supernet.MacroSupernet>` are written with the choice
primitives of :mod:`optuna_enas.nn` (``LayerChoice`` for the ops, ``InputChoice`` for the
inputs), with the decision labels of the ENAS space they search, so they are ordinary
``Supernet`` s: ``space``, ``activate(arch)``, ``set_mix``, ``export(arch)``. On top of that
:class:`CNNSupernet` keeps the call the trainer and the tasks use, ``forward(x, arch)``
(activate, then run), and reads state dicts of the layout before the primitives (issue #19).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.fx
from torch import nn

from optuna_enas.nn._supernet import Supernet
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Choice
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.supernet._ops import check_images


MODEL_PREFIX = "model."
"""Every weight of a :class:`CNNSupernet` lives under ``model.`` (the wrapped network)."""


class CNNSupernet(Supernet):
    """A :class:`~optuna_enas.nn.Supernet` over one of the ENAS CNN spaces.

    Args:
        model: The network, written with choice primitives labelled by ``space``'s decisions.
        space: The ENAS space; it replaces the space the primitives would give (same
            decisions, but in the space's own order, so architectures, ``fixed_arc`` strings
            and the controller's decision order are the space's).
        in_channels: Image channels the forward checks.
    """

    def __init__(self, model: nn.Module, space: SearchSpace, *, in_channels: int) -> None:
        super().__init__(model, space=space)
        self.in_channels = in_channels

    def forward(
        self, x: torch.Tensor, arch: Architecture | Mapping[str, Choice] | None = None
    ) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of ``arch`` (activated first; ``None``: the active one)
        for images ``x`` ``(N, in_channels, H, W)``."""
        check_images(x, self.in_channels)
        if arch is not None and not isinstance(arch, (Architecture, Mapping)):
            raise ValueError(
                f"arch must be an Architecture of space {self._space.name!r} or its params, "
                f"but got {arch!r}."
            )
        if arch is not None and (not isinstance(arch, Architecture) or arch != self.active):
            self.activate(arch)
        out: torch.Tensor = self.model(x)
        return out

    def _traced(self, params: Architecture | Mapping[str, Any]) -> tuple[Architecture, nn.Module]:
        """``params`` activated, the network traced by ``torch.fx`` on that path only."""
        previous = self.active
        arch = self.activate(params)
        try:
            graph = torch.fx.symbolic_trace(self.model)
        finally:
            if previous is not None:
                self.activate(previous)
            else:
                self.deactivate()
        # Postponed annotations ("torch.Tensor" as a string) would break pickling the graph.
        for node in graph.graph.nodes:
            if isinstance(node.type, str):
                node.type = None
        graph.recompile()
        return arch, graph

    def export(self, params: Architecture | Mapping[str, Any]) -> nn.Module:
        """The architecture ``params`` as a plain ``torch.fx.GraphModule`` with a copy of the
        weights it uses (:meth:`optuna_enas.nn.Supernet.export`'s contract).

        The network is traced with ``params`` active: the graph holds the chosen ops only (for
        the micro cell, the op of each slot's chosen input), their parameters and batch norms,
        and no optuna_enas class, so ``torch.save(model)`` loads without optuna_enas. It
        computes what ``supernet(x, params)`` computes (batch norm uses batch statistics, as in
        the search). ``model.nas_params`` holds the params.
        """
        arch, graph = self._traced(params)
        model = copy.deepcopy(graph)
        object.__setattr__(model, "nas_params", arch.to_params())
        return model

    def path_parameters(self) -> list[nn.Parameter]:
        """The parameters the active path uses: those of the network traced on that path."""
        if self.active is None:
            raise RuntimeError("path_parameters needs an active architecture: call activate.")
        _, graph = self._traced(self.active)
        used = {id(p) for p in graph.parameters()}
        return [p for p in self.parameters() if id(p) in used]

    @classmethod
    def upgrade_state_dict(cls, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """``state_dict`` under the current names (:func:`upgrade_layout`)."""
        return upgrade_layout(state_dict, cls._rename_legacy)

    @staticmethod
    def _rename_legacy(key: str) -> str:
        return MODEL_PREFIX + key

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """As ``nn.Module.load_state_dict``; a state dict of the layout before the choice
        primitives (checkpoints of optuna-enas before issue #19) is renamed first."""
        return super().load_state_dict(
            self.upgrade_state_dict(state_dict), strict=strict, assign=assign
        )


def upgrade_layout(state_dict: Mapping[str, Any], rename: Any) -> dict[str, Any]:
    """Rename the keys of a legacy-layout state dict; a current-layout one passes unchanged.

    The layout is read off the keys: the current one puts every weight under ``model.``
    (the wrapped network), the legacy one (before the choice primitives) none. A dict that
    mixes both is passed unchanged, so ``load_state_dict`` reports its unexpected keys.
    """
    keys = list(state_dict)
    if not keys or any(k.startswith(MODEL_PREFIX) for k in keys):
        return dict(state_dict)
    return {rename(k): v for k, v in state_dict.items()}


__all__ = ["CNNSupernet", "MODEL_PREFIX", "upgrade_layout"]
