"""The autoregressive LSTM policy over a list of categorical decisions (ENAS Sec. 2).

The controller knows nothing of data or Optuna. Step ``t`` reads the embedding of the action taken
at step ``t-1`` (a learned start vector at ``t=0``), runs the LSTM, and turns its output into
logits over decision ``t``'s choices with a per-decision linear head. Logits are divided by the
temperature and squashed with ``tanh_constant * tanh(.)`` as in ENAS.

Options of the official controllers (``ControllerConfig``): an initial op bias and a constant
normal-cell op bias (official micro controller); one op head and one op embedding shared by all
``"op"`` decisions (``shared_op_head``, the official ``w_soft`` and ``w_emb``), optionally
without bias (``op_head_bias``), and an LSTM without bias (``lstm_bias``, official
``stack_lstm``); the sampled action's ``-p(a) log p(a)`` as the entropy (``entropy_form``); and
input selection by attention over earlier nodes' LSTM states with a recency prior (official PTB
controller): at an ``"input"`` decision whose choices are the earlier nodes,
``logit_j = v . tanh(W1 h_j + W2 h)`` over the anchors ``h_j``, and the next step reads
``h_a / (0.1 + i - a)`` instead of an embedding. The anchors are the LSTM output of every
``"input"`` step and, for node 0, of an extra first step: as in the official code, the LSTM
runs twice on the start vector, the first output is node 0's anchor and the second gives node
0's op logits (``src/ptb/ptb_enas_controller.py`` lines 112-116, 141-146).

The official CIFAR controllers (``skip_attention``: ``src/cifar10/general_controller.py``;
``cell_attention``: ``src/cifar10/micro_controller.py``) do not take one LSTM step per decision:
where the decisions are the macro or micro space's, a plan (:func:`_macro_plan`,
:func:`_micro_plan`) schedules the LSTM steps, the anchors and the decisions as the official
code does (the micro blocks in the order in1, in2, op1, op2), and both paths follow it.

Two paths share :meth:`_logits`: :meth:`sample` (no grad, batch 1, numpy inverse-CDF draws from
caller-given uniforms, so sampling never touches a global RNG) and :meth:`log_prob_steps`
(teacher forcing on a batch of given actions, with grad, for the REINFORCE update).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from optuna_enas.sampler._config import ControllerConfig


_THREADS_LOCK = threading.Lock()


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the count.

    The controller's tensors are tiny: a second OpenMP thread buys nothing, and when another
    process keeps a core busy its spinning worker stalls every op (one update took 3.6 s
    instead of 15 ms on a loaded 2-core machine; see BENCHMARKS.md). The thread count is
    process-wide, so another Python thread training at the same moment (``n_jobs > 1``) also
    runs on one thread for these few milliseconds.
    """
    with _THREADS_LOCK:
        n = torch.get_num_threads()
        if n == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(n)


class LSTMController(nn.Module):
    """LSTM policy over a growable list of decisions.

    Args:
        n_choices: Number of choices of each decision, in order.
        kinds: Each decision's kind (``"op"``, ``"input"``, ``"skip"`` or ``"other"``).
        config: Hyperparameters (sizes, temperature, tanh constants, init range).
        generator: Seeds the parameter initialisation (uniform in ``[-init_range, init_range]``).
    """

    def __init__(
        self,
        n_choices: Sequence[int],
        kinds: Sequence[str],
        *,
        config: ControllerConfig,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if len(n_choices) != len(kinds):
            raise ValueError(
                f"n_choices and kinds must have the same length, got {len(n_choices)} "
                f"and {len(kinds)}."
            )
        self.config = config
        size = config.lstm_size
        self.cells = nn.ModuleList(
            [nn.LSTMCell(size, size, bias=config.lstm_bias) for _ in range(config.lstm_num_layers)]
        )
        self.start = nn.Parameter(torch.empty(1, size))  # input of step 0
        self.attn_w1: nn.Parameter | None = None
        self.attn_w2: nn.Parameter | None = None
        self.attn_v: nn.Parameter | None = None
        if config.input_attention or config.skip_attention or config.cell_attention:
            self.attn_w1 = nn.Parameter(torch.empty(size, size))
            self.attn_w2 = nn.Parameter(torch.empty(size, size))
            self.attn_v = nn.Parameter(torch.empty(size))
        # decision t: Linear(size, n_t); with shared_op_head the op decisions with n choices
        # hold the same module (state_dict lists it under each index; parameters() once).
        self.heads = nn.ModuleList()
        self.embeddings = nn.ModuleList()  # decision t: Embedding(n_t, size), input of step t+1
        self._shared: dict[int, tuple[nn.Linear, nn.Embedding]] = {}
        self.n_choices: list[int] = []
        self.kinds: list[str] = []
        self._scales: list[float | None] = []
        self._fixed_bias: list[np.ndarray | None] = []
        self._anchors: list[list[int] | None] = []  # per step: anchor steps it attends over
        self._anchor_steps: list[int] = []
        self._plan_cache: tuple[int, _Plan | None] | None = None
        self._snapshot: _Snapshot | None = None
        self._init(list(self.parameters()), generator)
        for n, kind in zip(n_choices, kinds, strict=True):
            self.add_decision(n, kind, generator=generator)

    # -- structure -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.n_choices)

    def add_decision(
        self,
        n_choices: int,
        kind: str,
        *,
        generator: torch.Generator | None = None,
        normal_cell: bool = False,
    ) -> list[nn.Parameter]:
        """Append one decision; returns the new parameters (for the optimizer).

        ``normal_cell``: an op of the micro space's normal cell (gets ``normal_op_bias``).
        """
        if n_choices < 1:
            raise ValueError(f"n_choices must be >= 1, but got {n_choices}.")
        size = self.config.lstm_size
        t = len(self.n_choices)
        shared = self._shared.get(n_choices) if kind == "op" else None
        if shared is not None and self.config.shared_op_head:
            head, emb = shared
            new: list[nn.Parameter] = []
        else:
            head = nn.Linear(size, n_choices, bias=kind != "op" or self.config.op_head_bias)
            emb = nn.Embedding(n_choices, size)
            new = [*head.parameters(), *emb.parameters()]
            self._init(new, generator)
            if kind == "op" and self.config.op_bias_init is not None:
                with torch.no_grad():
                    head.bias.copy_(torch.from_numpy(_padded(self.config.op_bias_init, n_choices)))
            if kind == "op" and self.config.shared_op_head:
                self._shared[n_choices] = (head, emb)
        fixed = None
        if kind == "op" and normal_cell and self.config.normal_op_bias is not None:
            fixed = _padded(self.config.normal_op_bias, n_choices).astype(np.float64)
        self._fixed_bias.append(fixed)
        if t == 0 or kind == "input":
            attend = (
                self.config.input_attention
                and kind == "input"
                and (n_choices == len(self._anchor_steps) and t > 0)
            )
            self._anchors.append(list(self._anchor_steps) if attend else None)
            self._anchor_steps.append(t)
        else:
            self._anchors.append(None)
        self.heads.append(head)
        self.embeddings.append(emb)
        self.n_choices.append(n_choices)
        self.kinds.append(kind)
        c = self.config.tanh_constant
        if c is not None and kind == "op":
            c = c / self.config.op_tanh_reduce
        self._scales.append(c)
        self.refresh()
        return new

    def _init(self, params: list[nn.Parameter], generator: torch.Generator | None) -> None:
        r = self.config.init_range
        with torch.no_grad():
            for p in params:
                p.uniform_(-r, r, generator=generator)

    def skip_groups(self) -> list[list[int]]:
        """Steps of ``"skip"`` decisions, grouped into runs of consecutive steps (one per layer
        in the macro space, where a layer's skip bits follow its op)."""
        groups: list[list[int]] = []
        for t, kind in enumerate(self.kinds):
            if kind != "skip":
                continue
            if groups and groups[-1][-1] == t - 1:
                groups[-1].append(t)
            else:
                groups.append([t])
        return groups

    def fingerprint(self) -> str:
        """A checksum of the structure and every parameter: equal iff the policy is equal."""
        crc = zlib.crc32(repr(self.n_choices).encode())
        if self.config.skip_attention or self.config.cell_attention:
            # The official CIFAR structures: which one applies depends on the kinds too.
            tag = (self.kinds, self._plan() is not None, self.config.skip_attention)
            crc = zlib.crc32(repr(tag).encode(), crc)
        adler = 1
        for p in self.parameters():
            b = p.detach().cpu().contiguous().numpy().tobytes()
            crc = zlib.crc32(b, crc)
            adler = zlib.adler32(b, adler)
        return f"{crc:08x}{adler:08x}"

    # -- shared math -----------------------------------------------------------------------
    def _step(
        self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        for i, cell in enumerate(self.cells):
            assert isinstance(cell, nn.LSTMCell)
            h, c = torch.lstm_cell(
                x, state[i], cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
            )
            state[i] = (h, c)
            x = h
        return x

    def _logits(
        self, t: int, h: torch.Tensor, anchors: torch.Tensor | None = None
    ) -> torch.Tensor:
        if anchors is not None:  # (B, n, size): attention over earlier nodes
            assert self.attn_w1 is not None and self.attn_w2 is not None
            assert self.attn_v is not None
            query = torch.tanh(anchors @ self.attn_w1 + (h @ self.attn_w2)[:, None, :])
            logits = query @ self.attn_v
        else:
            head = self.heads[t]
            assert isinstance(head, nn.Linear)
            logits = torch.nn.functional.linear(h, head.weight, head.bias)
        if self.config.temperature is not None:
            logits = logits / self.config.temperature
        scale = self._scales[t]
        if scale is not None:
            logits = scale * torch.tanh(logits)
        if anchors is not None:
            logits = logits - torch.from_numpy(self._recency(anchors.shape[1])).to(logits.dtype)
        fixed = self._fixed_bias[t]
        if fixed is not None:
            logits = logits + torch.from_numpy(fixed).to(logits.dtype)
        return logits

    def _recency(self, n: int) -> np.ndarray:
        r = self.config.attention_recency
        if r is None:
            return np.zeros(n)
        return (n - np.arange(n, dtype=np.float64)) ** 2 / r

    @property
    def _phantom_first_step(self) -> bool:
        """Official PTB: node 0's anchor comes from an extra LSTM step on the start vector."""
        return self.config.input_attention

    def _entropy(self, p: torch.Tensor, logp: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if self.config.entropy_form == "sampled":
            lp = logp.gather(1, a[:, None])[:, 0]
            return -(lp.exp() * lp)
        return -(p * logp).sum(dim=1)

    def _zero_state(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        z = self.start.new_zeros(batch, self.config.lstm_size)
        return [(z, z) for _ in self.cells]

    # -- sampling --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Drop the numpy snapshot used by :meth:`sample`; call after the parameters change."""
        self._snapshot = None

    def _numpy_snapshot(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None:
            snap = _Snapshot(self)
            self._snapshot = snap
        return snap

    def sample(
        self, uniforms: np.ndarray, *, forced: Mapping[int, int] | None = None
    ) -> tuple[list[int], list[float], float]:
        """Draw one action per decision.

        Runs in numpy on a snapshot of the parameters (tiny matrices: torch's per-op overhead
        would dominate). :meth:`log_prob_steps` is the same function in torch.

        Args:
            uniforms: One number in ``[0, 1)`` per decision (inverse-CDF draws).
            forced: ``{step: action}`` taken as given (teacher forcing), e.g. enqueued params.

        Returns:
            ``(actions, step_log_probs, entropy)``: the log-probability of each action under the
            current policy, and the summed entropy of the per-step distributions.
        """
        forced = forced or {}
        plan = self._plan()
        if plan is not None:
            return self._sample_plan(plan, uniforms, forced)
        snap = self._numpy_snapshot()
        temperature = self.config.temperature
        actions: list[int] = []
        step_logps: list[float] = []
        entropy = 0.0
        x = snap.start
        size = self.config.lstm_size
        state = [(np.zeros(size, np.float32), np.zeros(size, np.float32)) for _ in snap.cells]
        outputs: list[np.ndarray] = []

        def step(x: np.ndarray) -> np.ndarray:
            return _lstm_step(snap.cells, state, x, size)

        sampled_entropy = self.config.entropy_form == "sampled"
        for t in range(len(self.n_choices)):
            if t == 0 and self._phantom_first_step:
                outputs.append(step(x))
                x = step(snap.start)
            else:
                x = step(x)
                outputs.append(x)
            steps = self._anchors[t]
            anchors = None
            if steps is not None:
                assert snap.attn is not None
                w1, w2, v = snap.attn
                anchors = np.stack([outputs[s] for s in steps])
                logits = (np.tanh(anchors @ w1 + x @ w2) @ v).astype(np.float64)
            else:
                w, b = snap.heads[t]
                logits = (x @ w + b).astype(np.float64)
            if temperature is not None:
                logits = logits / temperature
            scale = self._scales[t]
            if scale is not None:
                logits = scale * np.tanh(logits)
            if anchors is not None:
                logits = logits - self._recency(len(anchors))
            fixed = self._fixed_bias[t]
            if fixed is not None:
                logits = logits + fixed
            logits -= logits.max()
            logp = logits - np.log(np.exp(logits).sum())
            p = np.exp(logp)
            if t in forced:
                a = forced[t]
            else:
                cdf = np.cumsum(p)
                a = min(int(np.searchsorted(cdf, uniforms[t] * cdf[-1], side="right")), len(p) - 1)
            actions.append(a)
            step_logps.append(float(logp[a]))
            if sampled_entropy:
                entropy -= float(p[a] * logp[a])
            else:
                entropy -= float(np.dot(p, logp))
            if anchors is not None:
                x = anchors[a] / np.float32(0.1 + len(anchors) - a)
            else:
                x = snap.embeddings[t][a]
        return actions, step_logps, entropy

    def log_prob_steps(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced per-step log-probabilities of a batch of given actions.

        Args:
            actions: ``(B, T)`` int64 actions, ``T = len(self)``.

        Returns:
            ``(log_probs (B, T), entropies (B, T), skip_probs (B, T))``; ``skip_probs`` holds the
            probability of choice 1 at ``"skip"`` decisions and 0 elsewhere.
        """
        batch, n_steps = actions.shape
        if n_steps != len(self.n_choices):
            raise ValueError(f"actions must have {len(self.n_choices)} columns, got {n_steps}.")
        plan = self._plan()
        if plan is not None:
            return self._log_prob_plan(plan, actions)
        x = self.start.expand(batch, -1)
        state = self._zero_state(batch)
        logps, ents, skips = [], [], []
        zero = self.start.new_zeros(batch)
        outputs: list[torch.Tensor] = []
        for t in range(n_steps):
            if t == 0 and self._phantom_first_step:
                outputs.append(self._step(x, state))
                h = self._step(x, state)
            else:
                h = self._step(x, state)
                outputs.append(h)
            steps = self._anchors[t]
            anchors = torch.stack([outputs[s] for s in steps], 1) if steps is not None else None
            logp = torch.log_softmax(self._logits(t, h, anchors), dim=-1)
            a = actions[:, t]
            logps.append(logp.gather(1, a[:, None])[:, 0])
            p = logp.exp()
            ents.append(self._entropy(p, logp, a))
            skips.append(p[:, 1] if self.kinds[t] == "skip" and p.shape[1] == 2 else zero)
            if anchors is not None:
                picked = anchors[torch.arange(batch), a]
                x = picked / (0.1 + anchors.shape[1] - a.to(picked.dtype))[:, None]
            else:
                emb = self.embeddings[t]
                assert isinstance(emb, nn.Embedding)
                x = torch.nn.functional.embedding(a, emb.weight)
        return torch.stack(logps, 1), torch.stack(ents, 1), torch.stack(skips, 1)

    # -- the official CIFAR controllers: one plan of LSTM steps and decisions ------------------
    def _plan(self) -> _Plan | None:
        """The official macro or micro controller's schedule for the current decisions, or
        ``None`` (the plain controller: one LSTM step per decision, in order)."""
        n = len(self.n_choices)
        if self._plan_cache is None or self._plan_cache[0] != n:
            plan = None
            if self.config.skip_attention:
                plan = _macro_plan(self.kinds, self.n_choices)
            elif self.config.cell_attention:
                plan = _micro_plan(self.kinds, self.n_choices)
            self._plan_cache = (n, plan)
        return self._plan_cache[1]

    def _squash(self, t: int, logits: torch.Tensor) -> torch.Tensor:
        """Temperature, ``tanh_constant * tanh``, the constant op bias (as :meth:`_logits`)."""
        if self.config.temperature is not None:
            logits = logits / self.config.temperature
        scale = self._scales[t]
        if scale is not None:
            logits = scale * torch.tanh(logits)
        fixed = self._fixed_bias[t]
        if fixed is not None:
            logits = logits + torch.from_numpy(fixed).to(logits.dtype)
        return logits

    def _sample_plan(
        self, plan: _Plan, uniforms: np.ndarray, forced: Mapping[int, int]
    ) -> tuple[list[int], list[float], float]:
        """:meth:`sample` under a plan (numpy, batch 1)."""
        snap = self._numpy_snapshot()
        assert snap.attn is not None
        w1, w2, v = snap.attn
        size = self.config.lstm_size
        temperature = self.config.temperature
        sampled_entropy = self.config.entropy_form == "sampled"
        n = len(self.n_choices)
        actions = [0] * n
        step_logps = [0.0] * n
        entropy = 0.0
        state = [(np.zeros(size, np.float32), np.zeros(size, np.float32)) for _ in snap.cells]
        x = snap.start
        h = x
        keys: list[np.ndarray] = []  # anchors_w_1: each anchor's LSTM output times w_attn_1
        values: list[np.ndarray] = []  # anchors: what a chosen anchor feeds to the next step
        for kind, args in plan:
            if kind == "step":  # the input x stays until a decision or "start" changes it
                h = _lstm_step(snap.cells, state, x, size)
                continue
            if kind == "start":
                x = snap.start
                continue
            if kind == "cell":
                keys, values = [], []
                continue
            if kind == "anchor":
                keys.append(h @ w1)
                values.append(np.zeros(size, np.float32) if args[0] else h)
                continue
            if kind == "mix":
                bits = np.asarray([actions[t] for t in args], np.float32)
                x = (bits @ np.stack(values[: len(args)])) / np.float32(1.0 + bits.sum())
                continue
            t = args[0]
            if kind == "head":
                w, b = snap.heads[t]
                logits = (h @ w + b).astype(np.float64)
            elif kind == "attend":
                logits = (np.tanh(np.stack(keys) + h @ w2) @ v).astype(np.float64)
            else:  # "bit": logits [-q, q] of skip bit j
                q = float(np.tanh(keys[args[1]] + h @ w2) @ v)
                logits = np.array([-q, q])
            if temperature is not None:
                logits = logits / temperature
            scale = self._scales[t]
            if scale is not None:
                logits = scale * np.tanh(logits)
            fixed = self._fixed_bias[t]
            if fixed is not None:
                logits = logits + fixed
            logits -= logits.max()
            logp = logits - np.log(np.exp(logits).sum())
            p = np.exp(logp)
            if t in forced:
                a = forced[t]
            else:
                cdf = np.cumsum(p)
                a = min(int(np.searchsorted(cdf, uniforms[t] * cdf[-1], side="right")), len(p) - 1)
            actions[t] = a
            step_logps[t] = float(logp[a])
            if sampled_entropy:
                entropy -= float(p[a] * logp[a])
            else:
                entropy -= float(np.dot(p, logp))
            if kind == "head":
                x = snap.embeddings[t][a]
            elif kind == "attend":
                x = values[a]
        return actions, step_logps, entropy

    def _log_prob_plan(
        self, plan: _Plan, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`log_prob_steps` under a plan (torch, teacher-forced batch)."""
        assert self.attn_w1 is not None and self.attn_w2 is not None
        assert self.attn_v is not None
        batch, n_steps = actions.shape
        x = self.start.expand(batch, -1)
        h = x
        state = self._zero_state(batch)
        zero = self.start.new_zeros(batch)
        logps: list[torch.Tensor] = [zero] * n_steps
        ents: list[torch.Tensor] = [zero] * n_steps
        skips: list[torch.Tensor] = [zero] * n_steps
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        for kind, args in plan:
            if kind == "step":
                h = self._step(x, state)  # x stays until a decision or "start" changes it
                continue
            if kind == "start":
                x = self.start.expand(batch, -1)
                continue
            if kind == "cell":
                keys, values = [], []
                continue
            if kind == "anchor":
                keys.append(h @ self.attn_w1)
                values.append(torch.zeros_like(h) if args[0] else h)
                continue
            if kind == "mix":
                bits = actions[:, list(args)].to(h.dtype)  # (B, k)
                mixed = torch.bmm(bits[:, None, :], torch.stack(values[: len(args)], 1))[:, 0]
                x = mixed / (1.0 + bits.sum(1))[:, None]
                continue
            t = args[0]
            if kind == "head":
                head = self.heads[t]
                assert isinstance(head, nn.Linear)
                raw = torch.nn.functional.linear(h, head.weight, head.bias)
            elif kind == "attend":
                query = torch.tanh(torch.stack(keys, 1) + (h @ self.attn_w2)[:, None, :])
                raw = query @ self.attn_v
            else:  # "bit"
                q = torch.tanh(keys[args[1]] + h @ self.attn_w2) @ self.attn_v
                raw = torch.stack([-q, q], 1)
            logp = torch.log_softmax(self._squash(t, raw), dim=-1)
            a = actions[:, t]
            logps[t] = logp.gather(1, a[:, None])[:, 0]
            p = logp.exp()
            ents[t] = self._entropy(p, logp, a)
            if self.kinds[t] == "skip" and p.shape[1] == 2:
                skips[t] = p[:, 1]
            if kind == "head":
                emb = self.embeddings[t]
                assert isinstance(emb, nn.Embedding)
                x = torch.nn.functional.embedding(a, emb.weight)
            elif kind == "attend":
                x = torch.stack(values, 1)[torch.arange(batch), a]
        return torch.stack(logps, 1), torch.stack(ents, 1), torch.stack(skips, 1)


_Plan = list[tuple[str, tuple[int, ...]]]
"""A schedule: ``("step", ())`` runs the LSTM on the current input; ``("start", ())`` makes
the start vector (``g_emb``) the input; ``("cell", ())`` empties the anchors; ``("anchor", (z,))``
stores the last LSTM output as an anchor (its attention key ``h @ w_attn_1`` and, unless ``z``,
its value ``h``; ``z``: the value is zeros); ``("head", (t,))``, ``("attend", (t,))``,
``("bit", (t, j))`` take decision ``t`` from the last LSTM output by its linear head, by
attention over the anchors, or as skip bit ``j`` (logits ``[-q_j, q_j]``); ``("mix", ts)``: the
input becomes the skip bits ``ts``'s chosen anchors' values summed, over ``1 + their count``."""


def _macro_plan(kinds: Sequence[str], n_choices: Sequence[int]) -> _Plan | None:
    """The official macro controller (``src/cifar10/general_controller.py``, commit 4bcfd73,
    lines 147-253, ``search_whole_channels``), or ``None`` unless the decisions are (a prefix
    of) the macro space's: per layer ``i`` an op, then ``i`` skip bits (two choices each).

    Layer ``i``: one LSTM step gives the op (lines 149-170); one more step reads the op's
    embedding (lines 213-214) and gives all of the layer's skip bits, bit ``j`` from
    ``q_j = v . tanh(w_attn_1 h_j + w_attn_2 h)`` over the earlier layers' anchors ``h_j`` as
    logits ``[-q_j, q_j]`` (lines 216-229); the next layer reads the chosen anchors summed,
    divided by ``1 + number of skips`` (lines 244-248), layer 0's successor ``g_emb`` (line
    250); that second step's output is the layer's anchor (lines 252-253).
    """
    plan: _Plan = []
    layer = -1
    group: list[int] = []
    for t, (kind, n) in enumerate(zip(kinds, n_choices, strict=True)):
        if kind == "op":
            if layer >= 0:
                if len(group) != layer:
                    return None
                if group:
                    plan += [("mix", tuple(group)), ("anchor", (0,))]
                else:  # layer 0: the extra step, its anchor, then g_emb
                    plan += [("step", ()), ("anchor", (0,)), ("start", ())]
            layer += 1
            group = []
            plan += [("step", ()), ("head", (t,))]
        elif kind == "skip" and n == 2 and 0 <= len(group) < layer:
            if not group:
                plan.append(("step", ()))
            plan.append(("bit", (t, len(group))))
            group.append(t)
        else:
            return None
    return plan if plan else None


def _micro_plan(kinds: Sequence[str], n_choices: Sequence[int]) -> _Plan | None:
    """The official micro controller (``src/cifar10/micro_controller.py``, commit 4bcfd73,
    lines 78-83 and 116-229), or ``None`` unless the decisions are cells of the micro space's
    blocks: ``(input, op, input, op)``, the inputs of block ``b`` with ``b`` choices, ``b``
    running ``2, 3, ...`` within a cell.

    Per cell: the input is ``g_emb`` and two LSTM steps give the two cell inputs' anchors, whose
    values are zeros (lines 133-140). Per block, in the order in1, in2, op1, op2 (lines
    150-196, recorded as in1, op1, in2, op2 by line 165 and 189): each input by attention over
    the cell's anchors, the next step reading the chosen anchor's value (lines 153-173); each op
    by the shared op head, the next step reading its embedding (lines 175-196); one more step
    gives the block's anchor and the input returns to ``g_emb`` (lines 198-201). The next cell
    starts new anchors but continues the LSTM state (lines 79-80, 126-132).
    """
    if not kinds or len(kinds) % 4:
        return None
    plan: _Plan = []
    previous = 0
    for s in range(0, len(kinds), 4):
        if list(kinds[s : s + 4]) != ["input", "op", "input", "op"]:
            return None
        b = n_choices[s]
        if n_choices[s + 2] != b or not (b == 2 or b == previous + 1):
            return None
        if b == 2:
            zero = ("anchor", (1,))
            plan += [("cell", ()), ("start", ()), ("step", ()), zero, ("step", ()), zero]
        plan += [
            ("step", ()),
            ("attend", (s,)),
            ("step", ()),
            ("attend", (s + 2,)),
            ("step", ()),
            ("head", (s + 1,)),
            ("step", ()),
            ("head", (s + 3,)),
            ("step", ()),
            ("anchor", (0,)),
            ("start", ()),
        ]
        previous = b
    return plan


def _padded(values: tuple[float, ...], n: int) -> np.ndarray:
    """``values`` cut or padded with its last element to length ``n`` (float32)."""
    out = list(values[:n]) + [values[-1]] * max(0, n - len(values))
    return np.asarray(out, dtype=np.float32)


def _lstm_step(
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    state: list[tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    size: int,
) -> np.ndarray:
    """One step of the stacked LSTM in numpy (torch's ``LSTMCell`` gate order i, f, g, o):
    ``state`` is updated in place; returns the top layer's output."""
    for layer, (w_ih, w_hh, bias) in enumerate(cells):
        h, c = state[layer]
        gates = x @ w_ih + h @ w_hh + bias
        i_g = _sigmoid(gates[:size])
        f_g = _sigmoid(gates[size : 2 * size])
        g_g = np.tanh(gates[2 * size : 3 * size])
        o_g = _sigmoid(gates[3 * size :])
        c = f_g * c + i_g * g_g
        h = o_g * np.tanh(c)
        state[layer] = (h, c)
        x = h
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Snapshot:
    """Numpy copies of the controller's weights, laid out for row-vector math."""

    def __init__(self, controller: LSTMController) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32, copy=True)

        self.start = arr(controller.start[0])
        self.cells = []
        for cell in controller.cells:
            assert isinstance(cell, nn.LSTMCell)
            bias = (
                arr(cell.bias_ih) + arr(cell.bias_hh)
                if cell.bias
                else np.zeros(4 * controller.config.lstm_size, np.float32)
            )
            self.cells.append((arr(cell.weight_ih).T.copy(), arr(cell.weight_hh).T.copy(), bias))
        self.heads = []
        for head in controller.heads:
            assert isinstance(head, nn.Linear)
            n = head.out_features
            b = arr(head.bias) if head.bias is not None else np.zeros(n, np.float32)
            self.heads.append((arr(head.weight).T.copy(), b))
        self.attn: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if controller.attn_v is not None:
            assert controller.attn_w1 is not None and controller.attn_w2 is not None
            self.attn = (
                arr(controller.attn_w1),
                arr(controller.attn_w2),
                arr(controller.attn_v),
            )
        self.embeddings = []
        for emb in controller.embeddings:
            assert isinstance(emb, nn.Embedding)
            self.embeddings.append(arr(emb.weight))
