"""``Supernet``: the user's model with choice primitives, as one shared-weight search space.

:class:`Supernet` wraps the model, collects its :class:`LayerChoice`, :class:`InputChoice`,
:class:`ValueChoice` and :class:`Repeat` into a :class:`~optuna_enas.SearchSpace` (one
decision per label, in the order the modules are registered), routes the forward through the
active architecture, and exports that architecture as a plain torch module.
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn

from optuna_enas.nn._choices import InputChoice
from optuna_enas.nn._choices import LayerChoice
from optuna_enas.nn._choices import Repeat
from optuna_enas.nn._choices import ValueChoice
from optuna_enas.nn._choices import _Chooser
from optuna_enas.nn._elastic import ElasticBatchNorm2d
from optuna_enas.nn._elastic import ElasticConv2d
from optuna_enas.nn._elastic import ElasticLinear
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Choice
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace


_ELASTIC = (ElasticConv2d, ElasticLinear, ElasticBatchNorm2d)


def _value_choices(module: nn.Module) -> Iterator[ValueChoice]:
    for value in vars(module).values():
        if isinstance(value, ValueChoice):
            yield value


def collect_choices(model: nn.Module) -> list[_Chooser]:
    """Every choice primitive of ``model``, in registration (pre-)order, each object once."""
    found: list[_Chooser] = []
    seen: set[int] = set()
    for _, module in model.named_modules(remove_duplicate=False):
        items: list[_Chooser] = []
        if isinstance(module, _Chooser):
            items.append(module)
        items.extend(_value_choices(module))
        for item in items:
            if id(item) not in seen:
                seen.add(id(item))
                found.append(item)
    return found


def build_space(choices: list[_Chooser], name: str) -> SearchSpace:
    """One decision per label; a label used twice must mean the same decision."""
    decisions: dict[str, Decision] = {}
    owner: dict[str, str] = {}
    for c in choices:
        for d in c.decisions():
            prev = decisions.get(d.name)
            if prev is None:
                decisions[d.name] = d
                owner[d.name] = type(c).__name__
            elif prev.choices != d.choices or owner[d.name] != type(c).__name__:
                raise ValueError(
                    f"label {d.name!r} is used by a {owner[d.name]} with choices "
                    f"{list(prev.choices)} and by a {type(c).__name__} with choices "
                    f"{list(d.choices)}; one label is one decision: give them the same "
                    "candidates or different labels."
                )
    return SearchSpace(list(decisions.values()), name=name)


class Supernet(nn.Module):
    """The shared-weight supernet of a model written with choice primitives.

    Args:
        model: The user's ``nn.Module`` with at least one :class:`LayerChoice`,
            :class:`InputChoice`, :class:`Repeat` or :class:`ValueChoice` (held by an elastic
            layer or as a module attribute) inside.
        example_input: An input of ``model`` (a tensor, or a tuple of positional arguments).
            When given, the constructor runs the model once per choice of every decision (eval
            mode, no gradients, the other decisions at their first choice, widths at their
            largest) and refuses candidates whose outputs cannot be combined, naming the label
            and the choice. Use a small batch: it costs about ``sum of choice counts`` forwards.
        name: The :class:`~optuna_enas.SearchSpace` name stored in each architecture.
        space: A space with exactly the decisions the primitives declare, in the order the
            controller should take them (the built-in ENAS supernets pass their
            ``MicroSpace`` / ``MacroSpace``). Default: the primitives' own, in registration
            order, named ``name``.

    Example:

        .. code-block:: python

            supernet = Supernet(Net(), example_input=torch.zeros(2, 3, 32, 32))
            supernet.activate(trial.params)  # or suggest_architecture(trial, supernet.space)
            logits = supernet(x)  # the active path only
            model = supernet.export(study.best_params)  # a plain nn.Module
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        example_input: Any = None,
        name: str = "supernet",
        space: SearchSpace | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, but got {type(model).__name__}.")
        if isinstance(model, Supernet):
            raise ValueError("model is already a Supernet.")
        self.model = model
        self._choices = collect_choices(model)
        if not self._choices:
            raise ValueError(
                f"model {type(model).__name__} has no LayerChoice, InputChoice, ValueChoice or "
                "Repeat: there is nothing to search."
            )
        self._space = build_space(self._choices, name)
        if space is not None:
            self._space = _same_decisions(self._space, space)
        self._active: Architecture | None = None
        if example_input is not None:
            self.check_forward(example_input)

    # -- the space and the active architecture -------------------------------------------------
    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def choices(self) -> tuple[_Chooser, ...]:
        """The primitives, in decision order of their first appearance."""
        return tuple(self._choices)

    @property
    def active(self) -> Architecture | None:
        """The active architecture (``None`` before :meth:`activate` or in mixed mode)."""
        return self._active

    def activate(self, params: Architecture | Mapping[str, Any]) -> Architecture:
        """Route the forward through ``params`` (``trial.params``, ``study.best_params`` or an
        :class:`~optuna_enas.Architecture`); keys of other parameters are ignored.

        Raises:
            ValueError: A label is missing or its value is not one of its choices (the message
                names both).
        """
        arch = self._space.coerce(params)
        values = arch.to_params()
        for c in self._choices:
            c.set_active(values)
        self._active = arch
        return arch

    def set_mix(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Mixed mode (DARTS, DSO-NAS): ``weights[label]`` weighs the choices of every label."""
        for c in self._choices:
            c.set_mix(weights)
        self._active = None

    def deactivate(self) -> None:
        for c in self._choices:
            c.deactivate()
        self._active = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def path_parameters(self) -> list[nn.Parameter]:
        """The parameters the active path uses (candidates of other choices and blocks beyond
        a ``Repeat``'s depth excluded; an elastic layer on the path counts whole, although a
        narrow width gets gradients for its chunks only)."""
        exported = set()
        for m in self._path_modules(self.model):
            for p in m.parameters(recurse=False):
                exported.add(id(p))
        return [p for p in self.parameters() if id(p) in exported]

    def _path_modules(self, module: nn.Module) -> Iterator[nn.Module]:
        yield module
        if isinstance(module, LayerChoice):
            yield from self._path_modules(module.candidate(module._chosen(module.label)))
            return
        if isinstance(module, Repeat):
            for block in module.blocks[: module.depth]:
                yield from self._path_modules(block)
            return
        for child in module.children():
            yield from self._path_modules(child)

    # -- checks ----------------------------------------------------------------------------------
    def check_forward(self, example_input: Any) -> None:
        """Run the model on ``example_input`` once per choice; raise naming what fails."""
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        base = {d.name: _probe_default(d) for d in self._space.decisions}
        was_training = self.training
        self.eval()
        shapes: dict[str, dict[Choice, Any]] = {}
        try:
            with torch.no_grad():
                for d in self._space.decisions:
                    for choice in d.choices:
                        params = dict(base)
                        params[d.name] = choice
                        self.activate(params)
                        try:
                            out = self.model(*args)
                        except Exception as e:
                            raise ValueError(
                                f"the model's forward fails with {d.name!r} = {choice!r} "
                                f"(other decisions at their first choice, widths at their "
                                f"largest): {type(e).__name__}: {e}"
                            ) from e
                        shapes.setdefault(d.name, {})[choice] = _shape_of(out)
                for c in self._choices:
                    if isinstance(c, LayerChoice):
                        self._check_candidates(c, args, base)
        finally:
            self.deactivate()
            self.train(was_training)
        for name, by_choice in shapes.items():
            if len({json.dumps(s) for s in by_choice.values()}) > 1:
                raise ValueError(
                    f"the model's output shape depends on {name!r}: {by_choice}; every "
                    "architecture must give outputs of one shape."
                )

    def _check_candidates(
        self, choice: LayerChoice, args: tuple[Any, ...], base: dict[str, Choice]
    ) -> None:
        """All candidates of ``choice`` give outputs of one shape on the input it receives."""
        seen: dict[Choice, Any] = {}

        def hook(_: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            seen[choice._chosen(choice.label)] = _shape_of(output)

        handle = choice.register_forward_hook(hook)
        try:
            for key in choice.keys:
                params = dict(base)
                params[choice.label] = key
                self.activate(params)
                self.model(*args)
        finally:
            handle.remove()
        if len({json.dumps(s) for s in seen.values()}) > 1:
            raise ValueError(
                f"LayerChoice {choice.label!r}: the candidates' outputs cannot be combined, "
                f"their shapes differ: {seen}."
            )

    # -- export ----------------------------------------------------------------------------------
    def export(self, params: Architecture | Mapping[str, Any]) -> nn.Module:
        """The architecture ``params`` as a plain torch module with the inherited weights.

        A deep copy of the model in which every :class:`LayerChoice` is replaced by its chosen
        candidate, every :class:`Repeat` by an ``nn.Sequential`` of its first ``depth`` blocks,
        every :class:`InputChoice` by a small ``torch.fx.GraphModule`` that selects and reduces
        the chosen inputs, every elastic layer by the plain ``nn.Conv2d`` / ``nn.Linear`` /
        ``nn.BatchNorm2d`` of its active sizes, and every :class:`ValueChoice` attribute by its
        value. Nothing of optuna_enas is left inside, so ``torch.save(model)`` loads where
        optuna_enas is not installed; in eval mode it computes what the supernet computes on
        that path. The params are attached as ``model.nas_params`` (a plain dict).

        The supernet's own activation is left as it was.
        """
        previous = self._active
        arch = self.activate(params)
        try:
            model = _export_module(copy.deepcopy(self.model))
        finally:
            if previous is not None:
                self.activate(previous)
            else:
                self.deactivate()
        leftovers = sorted(
            {
                type(m).__qualname__
                for m in model.modules()
                if type(m).__module__.startswith("optuna_enas")
            }
        )
        if leftovers:  # a primitive inside an unsupported container
            raise RuntimeError(f"export left optuna_enas modules in the model: {leftovers}.")
        object.__setattr__(model, "nas_params", arch.to_params())
        return model

    def save_export(self, params: Architecture | Mapping[str, Any], directory: str | Path) -> Path:
        """Write ``model.pt`` (``torch.save`` of :meth:`export`) and ``params.json``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        model = self.export(params)
        torch.save(model, out / "model.pt")
        (out / "params.json").write_text(json.dumps(model.nas_params, indent=2) + "\n")
        return out

    def extra_repr(self) -> str:
        return f"n_decisions={len(self._space)}, n_architectures={self._space.n_architectures}"


def _same_decisions(built: SearchSpace, space: SearchSpace) -> SearchSpace:
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a SearchSpace, but got {type(space).__name__}.")
    have = {d.name: d for d in built.decisions}
    want = {d.name: d for d in space.decisions}
    if have != want:
        differ = sorted(set(have) ^ set(want)) or sorted(n for n in have if have[n] != want[n])
        raise ValueError(
            f"space {space.name!r} does not declare the decisions of the model's choices; "
            f"they differ at {differ[:4]}."
        )
    return space


def _probe_default(d: Decision) -> Choice:
    if d.kind == "other" and all(isinstance(c, int) for c in d.choices):
        return max(d.choices, key=lambda c: c if isinstance(c, int) else 0)
    return d.choices[0]


def _shape_of(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, (list, tuple)):
        return [_shape_of(o) for o in out]
    if isinstance(out, Mapping):
        return {str(k): _shape_of(v) for k, v in out.items()}
    return type(out).__name__


def input_select_module(indices: list[int], reduction: str, *, lazy: bool = False) -> nn.Module:
    """A plain ``torch.fx.GraphModule``: ``inputs -> reduce(inputs[i] for i in indices)``
    (``lazy``: ``inputs[i]()``)."""
    graph = torch.fx.Graph()
    inputs = graph.placeholder("inputs")

    def item(i: int) -> torch.fx.Node:
        node = graph.call_function(operator.getitem, (inputs, i))
        return graph.call_method("__call__", (node,)) if lazy else node

    items = [item(i) for i in indices]
    out: torch.fx.Node
    if not items:
        first = item(0)
        out = graph.call_function(torch.zeros_like, (first,))
    elif reduction == "concat":
        out = graph.call_function(torch.cat, (items,), {"dim": 1})
    else:
        out = items[0]
        for node in items[1:]:
            out = graph.call_function(operator.add, (out, node))
        if reduction == "mean" and len(items) > 1:
            out = graph.call_function(operator.truediv, (out, len(items)))
    graph.output(out)
    return torch.fx.GraphModule(nn.Module(), graph, class_name="InputSelect")


def _plain(module: nn.Module) -> nn.Module | None:
    """The plain replacement of a primitive (``None``: keep the module, recurse into it)."""
    if isinstance(module, LayerChoice):
        return _export_module(module.candidate(module._chosen(module.label)))
    if isinstance(module, Repeat):
        blocks = [_export_module(b) for b in module.blocks[: module.depth]]
        return nn.Sequential(*blocks) if blocks else nn.Identity()
    if isinstance(module, InputChoice):
        return input_select_module(module.chosen_indices(), module.reduction, lazy=module.lazy)
    if isinstance(module, _ELASTIC):
        return module.export()
    return None


def _export_module(module: nn.Module) -> nn.Module:
    replacement = _plain(module)
    if replacement is not None:
        return replacement
    for name, child in list(module.named_children()):
        setattr(module, name, _export_module(child))
    for key, value in list(vars(module).items()):
        if isinstance(value, ValueChoice):
            setattr(module, key, value.value)
    return module
