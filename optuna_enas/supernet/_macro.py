"""The shared-weight supernet of the ENAS macro search space (Pham et al., 2018, Sec. 2.3).

The layout follows the official ``general_child.py`` in search mode (``whole_channels``):

* stem: 3x3 convolution to ``n_filters`` channels, then batch norm;
* layer ``i`` owns every op of the space; the architecture picks the one applied to the previous
  layer's output. Each op is an official branch (``_conv_branch`` / ``_pool_branch``): a 1x1
  conv-BN-ReLU first, then the ``K``x``K`` conv (full or separable)-BN-ReLU, or the pooling;
* skip connections are **summed** with the op's output and the sum is batch-normalized (layers
  ``i >= 1``), as the official code does (``add_n`` then ``batch_norm``; the paper's text says
  concatenate). Skip bit ``j`` of layer ``i`` adds entry ``j`` of ``[stem, layer 0, ...,
  layer i-1]``, i.e. the stem for ``j = 0`` and layer ``j - 1`` otherwise, exactly as the
  official code indexes ``prev_layers``, so an official ``fixed_arc`` means the same network;
* after each layer in ``pool_layers`` every kept output (stem included) passes through its own
  :class:`~optuna_enas.supernet._ops.FactorizedReduce`; the channel count stays ``n_filters``
  (the official search doubles it only for a fixed architecture);
* head: global average pooling and a linear classifier.

It is written with the choice primitives of :mod:`optuna_enas.nn`, labelled as
:class:`~optuna_enas.MacroSpace`: layer ``i`` is a :class:`~optuna_enas.nn.LayerChoice`
``layer{i}_op`` over the branches, and its skip bits an any-subset
:class:`~optuna_enas.nn.InputChoice` (reduction ``"sum"``) over ``[stem, layer 0, ...,
layer i-2]`` whose bits are named ``layer{i}_skip{j}``. Weight names:
``model.layers.{i}.candidates.{op}...``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas.nn._choices import InputChoice
from optuna_enas.nn._choices import LayerChoice
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.supernet._cnn_base import MODEL_PREFIX
from optuna_enas.supernet._cnn_base import CNNSupernet
from optuna_enas.supernet._ops import FactorizedReduce
from optuna_enas.supernet._ops import batch_norm
from optuna_enas.supernet._ops import classifier
from optuna_enas.supernet._ops import conv_weight
from optuna_enas.supernet._ops import make_macro_op


def default_macro_pool_layers(n_layers: int) -> tuple[int, ...]:
    """ENAS's reduction points: after layers ``n // 3 - 1`` and ``2 * (n // 3) - 1``."""
    d = n_layers // 3
    return tuple(sorted({p for p in (d - 1, 2 * d - 1) if p >= 0}))


class _MacroNetwork(nn.Module):
    """The macro network with its choices; :class:`MacroSupernet` wraps it."""

    def __init__(
        self,
        space: MacroSpace,
        *,
        in_channels: int,
        n_classes: int,
        n_filters: int,
        pool_layers: tuple[int, ...],
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.pool_layers = pool_layers
        n_layers = space.n_layers
        c = n_filters
        self.stem_weight = conv_weight(c, in_channels, 3, generator=generator)
        self.stem_bn = batch_norm(c)
        self.layers = nn.ModuleList(
            LayerChoice(
                f"layer{i}_op",
                {op: make_macro_op(op, c, generator=generator) for op in space.ops},
            )
            for i in range(n_layers)
        )
        # skips[i - 1]: the skip bits of layer i >= 1 over [stem, layer 0, ..., layer i-2].
        self.skips = nn.ModuleList(
            InputChoice(
                f"layer{i}_skip",
                i,
                n_chosen=None,
                bit_names=[f"layer{i}_skip{j}" for j in range(i)],
            )
            for i in range(1, n_layers)
        )
        # skip_bns[i - 1] normalizes the sum of layer i (i >= 1).
        self.skip_bns = nn.ModuleList(batch_norm(c) for _ in range(n_layers - 1))
        # reductions[k][m]: the factorized reduction of entry m of [stem, layer 0, ...] after
        # the k-th pool layer.
        self.reductions = nn.ModuleList(
            nn.ModuleList(FactorizedReduce(c, c, generator=generator) for _ in range(p + 2))
            for p in pool_layers
        )
        self.classifier_weight, self.classifier_bias = classifier(n_classes, c, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem_bn(F.conv2d(x, self.stem_weight, padding=1))
        kept = [out]  # [stem, layer 0, ..., layer i-1]
        n_pool = 0
        for i, layer in enumerate(self.layers):
            out = layer(kept[-1])
            if i > 0:
                skip = cast(InputChoice, self.skips[i - 1])
                if skip.is_mixed or skip.chosen_indices():  # no zeros added for no skip
                    out = out + skip(kept[:i])
                out = self.skip_bns[i - 1](out)
            kept.append(out)
            if i in self.pool_layers:
                reductions = cast(nn.ModuleList, self.reductions[n_pool])
                kept = [red(k) for red, k in zip(reductions, kept, strict=True)]
                n_pool += 1
        pooled = kept[-1].mean(dim=(2, 3))
        return F.linear(pooled, self.classifier_weight, self.classifier_bias)


_LEGACY_LAYER = re.compile(r"^(layers\.\d+)\.(.+)$")


class MacroSupernet(CNNSupernet):
    """Shared weights for every network of a :class:`~optuna_enas.MacroSpace`.

    An :class:`optuna_enas.nn.Supernet` (``space``, ``activate``, ``set_mix``, ``export``)
    whose forward also takes the architecture: ``supernet(x, arch)`` activates ``arch`` and
    runs it; ``supernet(x)`` runs the active one.

    Args:
        space: The macro search space.
        in_channels: Image channels.
        n_classes: Number of classes.
        n_filters: Channels of every layer. Default 36, as ``cifar10_macro_search.sh``
            (``child_out_filters``); must be even (factorized reduction).
        pool_layers: Layers followed by a factorized reduction (stride 2). Default: ENAS's, after
            layers ``n_layers // 3 - 1`` and ``2 * (n_layers // 3) - 1`` (3 and 7 for 12 layers).
        generator: Generator for the initialization (He-normal convolutions, a uniform
            classifier); ``None`` uses the default generator.
    """

    def __init__(
        self,
        space: MacroSpace,
        *,
        in_channels: int = 3,
        n_classes: int = 10,
        n_filters: int = 36,
        pool_layers: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(space, MacroSpace):
            raise ValueError(f"space must be a MacroSpace, but got {space!r}.")
        in_channels = check_int("in_channels", in_channels)
        n_classes = check_int("n_classes", n_classes)
        n_filters = check_int("n_filters", n_filters)
        if n_filters % 2 != 0:
            raise ValueError(f"n_filters must be even, but got {n_filters!r}.")
        n_layers = space.n_layers
        if pool_layers is None:
            pools = default_macro_pool_layers(n_layers)
        else:
            if isinstance(pool_layers, (str, bytes)) or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in pool_layers
            ):
                raise ValueError(
                    f"pool_layers must be a sequence of ints, but got {pool_layers!r}."
                )
            pools = tuple(pool_layers)
            if len(set(pools)) != len(pools) or any(not 0 <= p < n_layers for p in pools):
                raise ValueError(
                    f"pool_layers must hold distinct layer indices in [0, {n_layers}), "
                    f"but got {pool_layers!r}."
                )
            pools = tuple(sorted(pools))
        network = _MacroNetwork(
            space,
            in_channels=in_channels,
            n_classes=n_classes,
            n_filters=n_filters,
            pool_layers=pools,
            generator=generator,
        )
        super().__init__(network, space, in_channels=in_channels)
        self.n_classes = n_classes
        self.n_filters = n_filters
        self.pool_layers = pools

    @property
    def space(self) -> MacroSpace:
        return cast(MacroSpace, self._space)

    @staticmethod
    def _rename_legacy(key: str) -> str:
        """A key of the layout before the choice primitives (``layers.{i}.{op}...``, no
        ``model.``) under the current name."""
        m = _LEGACY_LAYER.match(key)
        if m is not None:
            key = f"{m.group(1)}.candidates.{m.group(2)}"
        return MODEL_PREFIX + key

    def extra_repr(self) -> str:
        return (
            f"n_layers={self.space.n_layers}, ops={list(self.space.ops)}, "
            f"n_filters={self.n_filters}, pool_layers={list(self.pool_layers)}"
        )


def upgrade_macro_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`MacroSupernet` state dict of the layout before the choice primitives (also the
    names :class:`~optuna_enas.oneshot._relaxed_cnn.RelaxedMacroSupernet` shares) under the
    current names; a current one passes unchanged."""
    return MacroSupernet.upgrade_state_dict(state_dict)
