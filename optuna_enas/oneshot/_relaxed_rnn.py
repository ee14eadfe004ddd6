"""The relaxed ENAS recurrent cell: the DARTS recurrent space and DSO-NAS scaling factors.

The weights are those of :class:`~optuna_enas.supernet.RNNSupernet`, under the same names and
shapes (``embedding``, ``w_x``, ``w_h``, ``w_edges.{i}.{j}``, ``decoder_weight``,
``decoder_bias``), so :meth:`RelaxedRNNSupernet.discrete_state_dict` is the state dict without
the architecture parameters. Every edge ``j -> i`` computes, as in ENAS, the highway node of
``h_j`` with its own matrix ``W_ij = w_edges[i][j]`` (``h_j @ W_ij = [gate | candidate]``)::

    c = sigmoid(gate),    hw_o(h_j) = h_j + c * (act_o(candidate) - h_j)

Node 0 reads ``x_t`` and ``h_{t-1}`` through ``w_x`` and ``w_h`` exactly as the discrete cell.

``"darts"`` (Liu et al. 2019, Sec. 2.1; ``DARTSCellSearch.cell`` in ``rnn/model_search.py``
lines 16-43 of quark0/darts): node ``i >= 1`` mixes every earlier node; edge ``j -> i`` is
``sum_o softmax(alpha_i[j])_o * hw_o(h_j)`` over ``{activations..., zero}``. Node 0 mixes its
activations with ``softmax(alpha_0)`` (no zero op: node 0 always exists). Two deliberate
differences from the official search cell: each edge keeps its own ENAS matrix ``W_ij`` (DARTS
shares one ``W_i`` per node over its inputs), so the weights transfer to the discrete cell; and
node ``i`` is the sum of its edges divided by their total non-zero mass
``sum_j (1 - softmax(alpha_i[j])_zero)`` where DARTS sums them and batch-normalises (``self.bn``,
line 39). Both make the node's scale independent of how much weight the zero ops take, so the
zero op only moves weight between edges; the division does it without batch statistics in a
recurrence, keeps each node a convex combination of highway outputs (on the scale of the
discrete node), and lets a one-hot ``alpha`` (every other edge on its zero op) compute exactly
the discrete node.

``"dsonas"`` (Zhang et al. 2018, Eq. 2: ``h_i = O_i(sum_j lambda_ij h_j)``): node ``i >= 1``
reads the scaled sum of its inputs, through the edge matrices
(``pre_i = sum_j lambda_ij h_j @ W_ij``, ``x_i = sum_j lambda_ij h_j``), and its output is the
scaled sum of its candidate ops, ``sum_o mu_io (x_i + c * (act_o(pre_i) - x_i))``. A
``lambda_ij`` or ``mu_io`` that is exactly 0 removes its term exactly. Initialisation: ``1/i``
and ``1/n_ops`` (our choice), so the initial node is the uniform average of its inputs and ops,
as DARTS's near-uniform softmax; DSO-NAS's CNN ops end in batch normalisation, which makes the
scale of ``lambda`` irrelevant there, but this cell has none.

Caveat (measured, ``benchmarks/relaxed_cost.py --gap``): the weights co-adapt with the scale of
the factors (``mu_io * lambda_ij`` shrinks under the sparse penalty), and the discrete cell of
:meth:`derive` computes with unit scale, so its score with the inherited weights can be far off
(perplexity ~1e42 where the relaxed cell had 23, after 150 steps). DSO-NAS retrains the pruned
network; score a dsonas RNN architecture inside the relaxed cell
(:meth:`~optuna_enas.oneshot.RelaxedSupernet.projected`: 41 in that run) or by retraining.

The cell output, the next hidden state, is the mean of nodes ``1..N-1`` (DARTS ``CONCAT =
STEPS``: every intermediate node; node 0 alone for ``N = 1``), rescaled to at most
``max_hidden_norm`` per row like the discrete cell. Inside :meth:`projected` it is instead the
mean of the projected architecture's loose ends, as the discrete cell's, so that the projected
score is the score of exactly that architecture (darts: the discrete cell with the search's
weights; dsonas: with the kept factors' scale as well). Derivation (:meth:`derive`): DARTS's rule
(``genotype()._parse``, lines 77-91): per node, the input ``j`` with the largest non-zero op
weight and that op; dsonas: the input with the largest ``|lambda_ij|`` and the op with the
largest ``|mu_io|``, ties to the lowest index; a node whose factors are all 0 falls back to the
previous node / the first activation, counted in ``arch_summary()["derive_fallbacks"]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas.oneshot._mixed import PARAM_FREE_OPS
from optuna_enas.oneshot._mixed import ZERO_OP
from optuna_enas.oneshot._mixed import constant_lambda
from optuna_enas.oneshot._mixed import darts_alpha
from optuna_enas.oneshot._mixed import strongest
from optuna_enas.oneshot._relaxed import ONE_HOT_LOGIT
from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.oneshot._relaxed import abs_distribution
from optuna_enas.oneshot._relaxed import check_arch_none
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.supernet._rnn import RNNLanguageModelShell


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "identity": lambda x: x,
    "sigmoid": torch.sigmoid,
}


_MIN_MASS = 1e-12


class RelaxedRNNSupernet(RNNLanguageModelShell, RelaxedSupernet):
    """The relaxed recurrent cell with embedding and decoder, for language modelling.

    Args:
        space: The cell search space.
        relaxation: ``"darts"`` or ``"dsonas"``.
        vocab_size, embed_size, hidden_size, tie_weights, dropout, input_dropout,
        hidden_dropout, max_hidden_norm: As :class:`~optuna_enas.supernet.RNNSupernet` (same
            defaults, same meaning), so one ``supernet_kwargs`` dict builds both.
        generator: Generator for the weights (as the discrete supernet) and then the DARTS
            ``alpha`` (``1e-3 * randn``). ``None`` uses the default generator.

    Attributes:
        dropout_generator: Where the dropout masks draw from (``None``: the device default).
    """

    def __init__(
        self,
        space: RNNCellSpace,
        *,
        relaxation: Relaxation,
        vocab_size: int,
        embed_size: int = 64,
        hidden_size: int = 64,
        tie_weights: bool = True,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        max_hidden_norm: float | None = 25.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(space, RNNCellSpace):
            raise ValueError(f"space must be an RNNCellSpace, but got {space!r}.")
        super().__init__(space, relaxation)
        self.rnn_space = space
        self._build_language_model(
            space,
            vocab_size=vocab_size,
            embed_size=embed_size,
            hidden_size=hidden_size,
            tie_weights=tie_weights,
            dropout=dropout,
            input_dropout=input_dropout,
            hidden_dropout=hidden_dropout,
            max_hidden_norm=max_hidden_norm,
        )
        self._output_nodes: tuple[int, ...] | None = None  # set inside projected()
        self._init_language_model(generator)  # the same draws as the discrete supernet

        n = space.n_nodes
        n_act = len(space.activations)
        if self.relaxation == "darts":
            # alpha["node{i}"][j, o]: edge j -> i, op o of (*activations, zero); node 0: one
            # row over the activations.
            self.arch["node0"] = darts_alpha((1, n_act), generator)
            for i in range(1, n):
                self.arch[f"node{i}"] = darts_alpha((i, n_act + 1), generator)
        else:
            for i in range(n):
                if i > 0:
                    self.arch[f"conn{i}"] = constant_lambda((i,), 1.0 / i)
                self.arch[f"op{i}"] = constant_lambda((n_act,), 1.0 / n_act)

    # -- the op names of a table row ---------------------------------------------------------
    @property
    def op_names(self) -> tuple[str, ...]:
        """The ops of a DARTS edge row: the space's activations, then the zero op."""
        return (*self.rnn_space.activations, ZERO_OP)

    # -- forward -------------------------------------------------------------------------------
    def _acts(self, pre: torch.Tensor) -> list[torch.Tensor]:
        return [_ACTIVATIONS[a](pre) for a in self.rnn_space.activations]

    def forward(
        self, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(T, B, vocab)`` and the last hidden state of the relaxed cell.

        ``arch`` must be ``None`` (the signature of the discrete supernet's forward).
        """
        check_arch_none(arch)
        steps, batch = self._check_tokens(tokens)
        self._check_hidden("hidden", hidden, batch)
        H = self.hidden_size
        n = self.rnn_space.n_nodes
        emb = F.embedding(tokens, self.embedding)
        if self.training and self.input_dropout > 0.0:
            emb = emb * _dropout_mask(emb, (1, batch, self.embed_size), self.input_dropout, self)
        xproj = (emb.reshape(steps * batch, self.embed_size) @ self.w_x).view(steps, batch, 2 * H)
        mask = None
        if self.training and self.hidden_dropout > 0.0:
            mask = _dropout_mask(hidden, (batch, H), self.hidden_dropout, self)
        # Node j's projections onto every later node in one matmul: [W_{j+1,j} | W_{j+2,j} ...].
        out_w = [
            torch.cat([self.edge_weight(i, j) for i in range(j + 1, n)], dim=1)
            for j in range(n - 1)
        ]
        weights = self._mix_weights()
        h = hidden
        outs = []
        for t in range(steps):
            rec = h if mask is None else h * mask
            pre0 = torch.addmm(xproj[t], rec, self.w_h)
            states = [self._node0(h, pre0, weights)]
            projs = []
            for i in range(1, n):
                projs.append(states[i - 1] @ out_w[i - 1])
                states.append(self._node(i, states, projs, weights))
            if self._output_nodes is not None:
                o = torch.stack([states[k] for k in self._output_nodes]).mean(dim=0)
            else:
                o = states[0] if n == 1 else torch.stack(states[1:]).mean(dim=0)
            if self.max_hidden_norm is not None:
                scale = self.max_hidden_norm / torch.linalg.vector_norm(o, dim=1, keepdim=True)
                o = o * scale.clamp(max=1.0).detach()  # a constant, as the discrete cell
            outs.append(o)
            h = o
        out = torch.stack(outs)
        last = out[-1]
        if self.training and self.dropout > 0.0:
            out = out * _dropout_mask(out, (1, batch, H), self.dropout, self)
        weight = self.embedding if self.decoder_weight is None else self.decoder_weight
        logits = torch.addmm(self.decoder_bias, out.reshape(steps * batch, H), weight.t())
        return logits.view(steps, batch, self.vocab_size), last

    def _mix_weights(self) -> dict[str, torch.Tensor]:
        if self.relaxation == "darts":
            return {k: F.softmax(p, dim=-1) for k, p in self.named_arch_parameters()}
        return dict(self.named_arch_parameters())

    def _node0(
        self, h: torch.Tensor, pre: torch.Tensor, weights: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        H = self.hidden_size
        c = torch.sigmoid(pre[:, :H])
        acts = self._acts(pre[:, H:])
        if self.relaxation == "darts":
            w = weights["node0"][0]
            mixed = sum((w[o] * a for o, a in enumerate(acts)), torch.zeros_like(h))
            return h + c * (mixed - h)  # the weights sum to 1 (no zero op at node 0)
        mu = weights["op0"]
        mixed = sum((mu[o] * a for o, a in enumerate(acts)), torch.zeros_like(h))
        total = mu.sum()
        return total * h + c * (mixed - total * h)

    def _node(
        self,
        i: int,
        states: list[torch.Tensor],
        projs: list[torch.Tensor],
        weights: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        H = self.hidden_size
        h2 = 2 * H
        # projs[j][:, block]: h_j @ W_ij, block (i - j - 1) of node j's projections.
        chs = torch.stack([projs[j][:, (i - j - 1) * h2 : (i - j) * h2] for j in range(i)])
        src = torch.stack(states[:i])  # (i, B, H)
        if self.relaxation == "darts":
            w = weights[f"node{i}"]  # (i, n_act + 1), rows sum to 1
            c = torch.sigmoid(chs[..., :H])
            acts = self._acts(chs[..., H:])
            mixed = sum(
                (w[:, o, None, None] * a for o, a in enumerate(acts)), torch.zeros_like(src)
            )
            mass = w[:, :-1].sum(dim=1)  # per edge, the weight of its non-zero ops
            kept = mass[:, None, None] * src
            edges = (kept + c * (mixed - kept)).sum(dim=0)
            # Normalised by the total non-zero mass: a weighted mean of the edges' highway
            # mixtures (see the module docstring). The clamp only guards an all-zero node.
            return edges / mass.sum().clamp_min(_MIN_MASS)
        lam = weights[f"conn{i}"][:, None, None]
        x = (lam * src).sum(dim=0)
        pre = (lam * chs).sum(dim=0)
        c = torch.sigmoid(pre[:, :H])
        mu = weights[f"op{i}"]
        acts = self._acts(pre[:, H:])
        mixed = sum((mu[o] * a for o, a in enumerate(acts)), torch.zeros_like(x))
        total = mu.sum()
        return total * x + c * (mixed - total * x)

    # -- derivation and summaries ------------------------------------------------------------
    def _derive(self) -> tuple[Architecture, int]:
        space = self.rnn_space
        acts = space.activations
        params: dict[str, object] = {}
        fallbacks = 0
        with torch.no_grad():
            if self.relaxation == "darts":
                w0 = F.softmax(self.arch["node0"], dim=-1)[0]
                params["node0_act"] = acts[int(torch.argmax(w0))]
                for i in range(1, space.n_nodes):
                    w = F.softmax(self.arch[f"node{i}"], dim=-1)[:, :-1]  # drop the zero op
                    j = int(torch.argmax(w.max(dim=1).values))
                    params[f"node{i}_in"] = j
                    params[f"node{i}_act"] = acts[int(torch.argmax(w[j]))]
            else:
                for i in range(space.n_nodes):
                    o = strongest(self.arch[f"op{i}"].abs())
                    if o is None:
                        o, fallbacks = 0, fallbacks + 1
                    params[f"node{i}_act"] = acts[o]
                    if i > 0:
                        jj = strongest(self.arch[f"conn{i}"].abs())
                        if jj is None:
                            jj, fallbacks = i - 1, fallbacks + 1
                        params[f"node{i}_in"] = jj
        return space.architecture(params), fallbacks

    def _projection(self, arch: Architecture) -> dict[str, torch.Tensor]:
        acts = self.rnn_space.activations
        out: dict[str, torch.Tensor] = {}
        for i, node in enumerate(self.rnn_space.cell(arch)):
            o = acts.index(node.activation)
            if self.relaxation == "darts":
                a = torch.full_like(self.arch[f"node{i}"], -ONE_HOT_LOGIT)
                if node.input is None:
                    a[0, o] = ONE_HOT_LOGIT
                else:
                    a[:, -1] = ONE_HOT_LOGIT  # every other edge: the zero op
                    a[node.input, -1] = -ONE_HOT_LOGIT
                    a[node.input, o] = ONE_HOT_LOGIT
                out[f"node{i}"] = a
                continue
            out[f"op{i}"] = _keep_one(self.arch[f"op{i}"], o)
            if node.input is not None:
                out[f"conn{i}"] = _keep_one(self.arch[f"conn{i}"], node.input)
        return out

    @contextlib.contextmanager
    def projected(self, arch: Architecture | None = None) -> Iterator[Architecture]:
        """As :meth:`RelaxedSupernet.projected`, and the cell outputs the mean of the projected
        architecture's loose ends (the discrete cell's output) instead of every node's."""
        with super().projected(arch) as chosen:
            saved = self._output_nodes
            self._output_nodes = tuple(self.rnn_space.loose_ends(chosen))
            try:
                yield chosen
            finally:
                self._output_nodes = saved

    def derive(self) -> Architecture:
        """The ``RNNCellSpace`` architecture the architecture parameters encode (see module)."""
        return self._derive()[0]

    def arch_tables(self) -> dict[str, list[list[float]]]:
        """darts: ``node{i}`` rows = inputs (node 0: one row), columns = :attr:`op_names`
        (node 0 without the zero op), softmaxed. dsonas: ``conn{i}`` (one row over the inputs)
        and ``op{i}`` (one row over the activations), raw ``lambda``."""
        tables: dict[str, list[list[float]]] = {}
        for k, p in self._mix_weights().items():
            t = p.detach().double().cpu()
            tables[k] = t.tolist() if t.dim() == 2 else [t.tolist()]
        return tables

    def _distributions(self) -> list[torch.Tensor]:
        if self.relaxation == "darts":
            return [row for p in self._mix_weights().values() for row in p.detach()]
        return [abs_distribution(p) for p in self.arch_parameters()]

    def _param_free_share(self, arch: Architecture) -> float:
        nodes = self.rnn_space.cell(arch)
        return sum(nd.activation in PARAM_FREE_OPS for nd in nodes) / len(nodes)

    def _summary_extra(self, arch: Architecture) -> dict[str, float]:
        if self.relaxation == "dsonas":
            return {"derive_fallbacks": float(self._derive()[1])}
        return {}

    def sparse_groups(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """dsonas: ``conn{i}`` entries gate one ``h_j @ W_ij`` (``4 H^2`` FLOPs per token);
        ``op{i}`` entries gate one activation and its highway mix (``4 H``, identity ``3 H``)."""
        if self.relaxation != "dsonas":
            return []
        H = self.hidden_size
        groups = []
        for k, p in self.named_arch_parameters():
            if k.startswith("conn"):
                flops = torch.full_like(p, 4.0 * H * H)
            else:
                flops = torch.tensor(
                    [3.0 * H if a == "identity" else 4.0 * H for a in self.rnn_space.activations],
                    dtype=p.dtype,
                    device=p.device,
                )
            groups.append((p, flops.detach()))
        return groups

    def extra_repr(self) -> str:
        return (
            f"relaxation={self.relaxation!r}, n_nodes={self.rnn_space.n_nodes}, "
            f"vocab_size={self.vocab_size}, embed_size={self.embed_size}, "
            f"hidden_size={self.hidden_size}, tie_weights={self.tie_weights}"
        )


def _keep_one(values: torch.Tensor, index: int) -> torch.Tensor:
    """``values`` with every entry but ``index`` zeroed (that one 1 if it was 0)."""
    out = torch.zeros_like(values.detach())
    kept = float(values.detach()[index])
    out[index] = kept if kept != 0.0 else 1.0
    return out


def _dropout_mask(
    like: torch.Tensor, shape: tuple[int, ...], p: float, model: RelaxedRNNSupernet
) -> torch.Tensor:
    keep = 1.0 - p
    mask = like.new_empty(shape).bernoulli_(keep, generator=model.dropout_generator)
    return mask.div_(keep)


__all__ = ["RelaxedRNNSupernet"]
