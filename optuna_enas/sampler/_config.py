"""Controller hyperparameters: our default for Optuna budgets, and presets named after papers."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any
from typing import Literal

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive


Advantage = Literal["rank", "standardized", "baseline"]
_ADVANTAGES = ("rank", "standardized", "baseline")
EntropyForm = Literal["full", "sampled"]
_ENTROPY_FORMS = ("full", "sampled")

MAX_LSTM_SIZE = 4096
MAX_LSTM_LAYERS = 16
MAX_AGGREGATE = 100_000
MAX_EPOCHS = 100
MAX_WINDOW = 1_000_000


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """Hyperparameters of the LSTM controller and its policy-gradient update.

    ``ControllerConfig()`` is **our default**, not a paper's: it is tuned for Optuna budgets
    (50 to a few thousand trials) on objectives of any scale (see README, "The sampler", and
    ``benchmarks/sampler_quality.py`` for the evidence). The presets named after the ENAS
    paper and its official code keep ENAS's math; get them with :meth:`from_preset`.
    ``"enas-official-ptb"`` is the official PTB controller exactly (each item pinned by a test in
    ``tests/test_official.py``); ``"enas-official-cifar-macro"`` and
    ``"enas-official-cifar-micro"`` are the official CIFAR controllers exactly, attention and
    the micro decision order included (``tests/test_official_cifar.py``; see the comments of
    :data:`PRESETS`).

    Args:
        lstm_size: Hidden size of the controller LSTM (ENAS: 100 for PTB, 64 for CIFAR).
        lstm_num_layers: Stacked LSTM layers (ENAS: 1).
        temperature: Logits are divided by it before the tanh squash (ENAS PTB: 5.0). ``None``
            disables it.
        tanh_constant: Logits become ``tanh_constant * tanh(logits)`` (ENAS PTB: 2.5); this keeps
            the policy from collapsing early. ``None`` disables it.
        op_tanh_reduce: For ``"op"`` decisions the constant is divided by it (official micro
            controller: 2.5; the official macro controller never applies it).
        entropy_weight: Entropy regularisation. With ``advantage="baseline"`` it is ENAS's bonus
            added to the reward (ENAS PTB script: 1e-3); with the other advantages it is a loss
            term ``-entropy_weight * H`` (rewards have no known scale to add it to).
        skip_target: Target probability of a skip connection (ENAS macro: 0.4).
        skip_weight: Weight of the skip KL penalty (ENAS macro: 0.8); 0 off. As in the official
            macro controller, the KL is summed over the skip bits of a layer and averaged over
            layers.
        advantage: How a reward becomes an advantage. ``"baseline"``: ENAS's
            ``r - b`` with the moving average ``b <- d*b + (1-d)*r``. ``"rank"``: the reward's
            mid-rank quantile among the last ``reward_window`` rewards, centred and scaled to
            unit variance (``(q - 1/2) * sqrt(12)``): invariant to any increasing transformation
            of the objective (scale, offset, heavy tails). ``"standardized"``:
            ``(r - mean) / std`` over the same window (invariant to scale and offset only).
        reward_window: Rewards the ``"rank"`` and ``"standardized"`` advantages compare against.
        advantage_clip: Advantages are clipped to ``[-advantage_clip, advantage_clip]`` (they are
            computed in float64). With ``"baseline"`` the presets use 1e6, far beyond ENAS's
            rewards (``80 / ppl`` < 1), so only absurd values are affected.
        baseline_decay: Moving-average baseline decay for ``advantage="baseline"``,
            ``b <- d*b + (1-d)*r`` (ENAS: 0.99).
        learning_rate: Adam learning rate (ENAS PTB script: 1e-3).
        grad_clip: Max global gradient norm; ``None`` disables clipping (ENAS PTB: none).
        n_aggregate: Trials per update (``controller_num_aggregate``; ENAS PTB script: 10).
        ppo_epochs: Passes over each batch of ``n_aggregate`` trials. 1 is REINFORCE (ENAS);
            more passes use PPO's clipped ratio (Schulman et al. 2017) against the policy the
            update started from.
        ppo_clip: PPO's ``epsilon``: the ratio is clipped to ``[1 - eps, 1 + eps]`` (PPO: 0.2).
        init_range: Parameters start uniform in ``[-init_range, init_range]`` (ENAS: 0.1).
        importance_weight_clip: Upper clip of the importance weight used for trials sampled by
            another (or an older) controller, as in truncated importance sampling.
        op_bias_init: Initial (learned) bias of ``"op"`` heads, padded with its last element
            (official micro controller: ``(10, 10, 0)``, i.e. sep3x3 and sep5x5 favoured).
            ``None``: uniform init like every other parameter.
        normal_op_bias: A constant added to the squashed op logits of the micro space's normal
            cell, padded with its last element (official micro: ``(0.25, 0.25, -0.25)``).
        input_attention: Choose ``"input"`` decisions (which earlier node feeds this one) by
            attention over the earlier nodes' LSTM states, as the official PTB controller does,
            instead of a linear head. Applies where a decision's choices are the earlier nodes
            (the RNN cell space); elsewhere the linear head is used.
        attention_recency: Recency prior of the attention: ``(i - j)**2 / attention_recency`` is
            subtracted from the logit of node ``j`` at node ``i`` (official PTB: 6.0). ``None``
            disables it.
        skip_attention: Take the ``"skip"`` decisions as the official macro controller does
            (``src/cifar10/general_controller.py`` lines 213-253): one extra LSTM step per
            layer reads the op's embedding and gives all of the layer's skip bits, bit ``j``
            with logits ``[-q_j, q_j]``, ``q_j = v . tanh(W1 h_j + W2 h)`` over the earlier
            layers' anchors ``h_j`` (that step's output per layer); the next layer reads the
            chosen anchors summed over ``1 + number of skips``. Applies where the decisions are
            the macro space's (an op per layer, then one skip bit per earlier layer);
            elsewhere the plain controller is used.
        cell_attention: Take the micro space's decisions as the official micro controller
            does (``src/cifar10/micro_controller.py`` lines 116-229): per cell two LSTM steps
            give the two cell inputs' anchors (zero values), each block samples in1, in2, op1,
            op2 in that order (the space's order is in1, op1, in2, op2), inputs by attention
            over the cell's anchors reading the chosen anchor next, one more step per block
            gives its anchor; the reduction cell starts new anchors but continues the LSTM
            state. Applies where the decisions are the micro space's blocks; elsewhere the
            plain controller is used.
        lstm_bias: Whether the controller LSTM has biases (torch's ``LSTMCell``). The official
            ``stack_lstm`` (``src/common_ops.py`` lines 5-14) has none.
        shared_op_head: One op head (softmax weights) and one op embedding shared by every
            ``"op"`` decision with the same number of choices, as the official ``w_soft`` and
            ``w_emb``; ``False``: one head and one embedding per decision.
        op_head_bias: Whether ``"op"`` heads have a (learned) bias. Official PTB and macro: no
            (``w_soft`` only); official micro: yes (``b_soft``).
        entropy_form: ``"full"``: the entropy of each decision's distribution,
            ``-sum_a p(a) log p(a)`` (official micro); ``"sampled"``: the sampled action's term
            ``-p(a) log p(a)`` (official PTB and macro: ``log_prob * exp(-log_prob)``). Summed
            over decisions in both.
        skip_kl_half_logit: Compute the skip KL on ``sigmoid(x / 2)``, ``x`` the skip bit's
            log-odds, as the official macro controller does: it samples from
            ``softmax([-q, q])`` (``P(1) = sigmoid(2q)``) but penalises ``sigmoid(q)``
            (``general_controller.py`` lines 217-230). ``False``: the KL of the sampled
            probability.
        adam_beta1: Adam's ``beta1`` (torch: 0.9; official ENAS ``get_train_ops``: 0.0).
        adam_eps: Adam's epsilon (torch: 1e-8; official: 1e-3).
        adam_epsilon_hat: Use TensorFlow's placement of epsilon, ``m / (sqrt(v) + eps)`` with
            the bias correction folded into the step size, as ``tf.train.AdamOptimizer`` (the
            official code); ``False``: torch's ``m_hat / (sqrt(v_hat) + eps)``.
        baseline_init: Initial value of the moving-average baseline. ``None``: the first
            reward (ENAS-pytorch); the official code starts at 0 (``tf.Variable(0.0)``).
    """

    lstm_size: int = 64
    lstm_num_layers: int = 1
    temperature: float | None = None
    tanh_constant: float | None = 2.5
    op_tanh_reduce: float = 1.0
    entropy_weight: float = 0.0
    skip_target: float = 0.4
    skip_weight: float = 0.0
    advantage: Advantage = "rank"
    reward_window: int = 100
    advantage_clip: float = 5.0
    baseline_decay: float = 0.99
    learning_rate: float = 0.01
    grad_clip: float | None = None
    n_aggregate: int = 10
    ppo_epochs: int = 1
    ppo_clip: float = 0.2
    init_range: float = 0.1
    importance_weight_clip: float = 2.0
    op_bias_init: tuple[float, ...] | None = None
    normal_op_bias: tuple[float, ...] | None = None
    input_attention: bool = False
    attention_recency: float | None = None
    skip_attention: bool = False
    cell_attention: bool = False
    lstm_bias: bool = True
    shared_op_head: bool = False
    op_head_bias: bool = True
    entropy_form: EntropyForm = "full"
    skip_kl_half_logit: bool = False
    adam_beta1: float = 0.9
    adam_eps: float = 1e-8
    adam_epsilon_hat: bool = False
    baseline_init: float | None = None

    def __post_init__(self) -> None:
        check_int("lstm_size", self.lstm_size, 1, MAX_LSTM_SIZE)
        check_int("lstm_num_layers", self.lstm_num_layers, 1, MAX_LSTM_LAYERS)
        check_int("n_aggregate", self.n_aggregate, 1, MAX_AGGREGATE)
        check_int("ppo_epochs", self.ppo_epochs, 1, MAX_EPOCHS)
        check_int("reward_window", self.reward_window, 2, MAX_WINDOW)
        for name in ("temperature", "tanh_constant", "grad_clip", "attention_recency"):
            value = getattr(self, name)
            if value is not None:
                check_positive(name, value)
        for name in (
            "op_tanh_reduce",
            "learning_rate",
            "init_range",
            "importance_weight_clip",
            "advantage_clip",
            "ppo_clip",
        ):
            check_positive(name, getattr(self, name))
        check_non_negative("entropy_weight", self.entropy_weight)
        check_non_negative("skip_weight", self.skip_weight)
        skip_target = check_fraction("skip_target", self.skip_target)
        if skip_target == 0.0:
            raise ValueError(f"skip_target must be in (0, 1), but got {self.skip_target!r}.")
        check_fraction("baseline_decay", self.baseline_decay)
        if self.advantage not in _ADVANTAGES:
            raise ValueError(
                f"advantage must be one of {_ADVANTAGES}, but got {self.advantage!r}."
            )
        for name in (
            "input_attention",
            "skip_attention",
            "cell_attention",
            "lstm_bias",
            "shared_op_head",
            "op_head_bias",
            "skip_kl_half_logit",
            "adam_epsilon_hat",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, but got {getattr(self, name)!r}.")
        modes = [
            n for n in ("input_attention", "skip_attention", "cell_attention") if getattr(self, n)
        ]
        if len(modes) > 1:
            raise ValueError(f"at most one of {modes} can be True (one controller structure).")
        if self.entropy_form not in _ENTROPY_FORMS:
            raise ValueError(
                f"entropy_form must be one of {_ENTROPY_FORMS}, but got {self.entropy_form!r}."
            )
        check_fraction("adam_beta1", self.adam_beta1)
        check_positive("adam_eps", self.adam_eps)
        if self.baseline_init is not None and not (
            isinstance(self.baseline_init, (int, float))
            and not isinstance(self.baseline_init, bool)
            and math.isfinite(self.baseline_init)
        ):
            raise ValueError(
                f"baseline_init must be None or a finite float, but got {self.baseline_init!r}."
            )
        if self.op_bias_init is not None and not self.op_head_bias:
            raise ValueError("op_bias_init needs op_head_bias=True (op heads without bias).")
        for name in ("op_bias_init", "normal_op_bias"):
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, tuple) and 0 < len(value) <= 1024
            if not ok or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            ):
                raise ValueError(
                    f"{name} must be None or a non-empty tuple of finite floats, "
                    f"but got {value!r}."
                )

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> ControllerConfig:
        """A preset by name, with any field overridden by keyword.

        Presets (see :data:`PRESETS`): ``"default"`` (ours), ``"enas-paper-ptb"``,
        ``"enas-official-ptb"``, ``"enas-official-cifar-macro"``, ``"enas-official-cifar-micro"``.
        """
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {preset!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"unknown ControllerConfig fields {unknown}; known: {sorted(fields)}."
            )
        return dataclasses.replace(PRESETS[preset], **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Everything the ENAS presets share: ENAS's REINFORCE with a moving-average baseline, one pass
# per batch, the reward bonus form of the entropy term.
_ENAS = {"advantage": "baseline", "advantage_clip": 1e6, "ppo_epochs": 1}
# Everything the official-code presets share (melodyguan/enas, commit 4bcfd73):
# src/utils.py lines 217-219 tf.train.AdamOptimizer(lr, beta1=0.0, epsilon=1e-3);
# src/common_ops.py lines 5-14 an LSTM without bias; one op softmax and one op embedding shared
# by all op decisions (w_soft, w_emb in each controller's _create_params); the baseline is
# tf.Variable(0.0) (e.g. src/ptb/ptb_enas_controller.py line 179).
_OFFICIAL = {
    **_ENAS,
    "lstm_bias": False,
    "shared_op_head": True,
    "adam_beta1": 0.0,
    "adam_eps": 1e-3,
    "adam_epsilon_hat": True,
    "baseline_init": 0.0,
}

PRESETS: dict[str, ControllerConfig] = {
    # Ours: see ControllerConfig's docstring and README "The sampler" for the evidence.
    "default": ControllerConfig(),
    # Pham et al. 2018, Sec. 3.1 and carpedm20/ENAS-pytorch's PTB defaults (config.py):
    # controller hidden 100, Adam 3.5e-4, temperature 5, tanh 2.5, entropy 1e-4, EMA 0.95;
    # one update per sampled architecture. Its reward is 80 / valid ppl (perplexity_reward).
    "enas-paper-ptb": ControllerConfig(
        **_ENAS,  # type: ignore[arg-type]
        lstm_size=100,
        temperature=5.0,
        tanh_constant=2.5,
        entropy_weight=1e-4,
        baseline_decay=0.95,
        learning_rate=3.5e-4,
        n_aggregate=1,
    ),
    # melodyguan/enas (commit 4bcfd73) scripts/ptb_search.sh lines 32-38: controller_lr 0.001,
    # num_aggregate 10, tanh 2.5, temperature 5.0, entropy 0.001; src/ptb/main.py line 145
    # lstm_size 100, line 72 bl_dec 0.99. Input selection: src/ptb/ptb_enas_controller.py
    # lines 115-143 (attention over earlier nodes' LSTM states; lines 126-127: recency prior
    # (i - j)**2 / 6; line 143: the next input is h_j / (0.1 + i - j)); node 0's anchor from an
    # extra LSTM step (lines 112-116). Op softmax without bias (line 84), entropy of the sampled
    # action (lines 137-138, 155-156: log_prob * exp(-log_prob)). Exact (tests/test_official.py).
    "enas-official-ptb": ControllerConfig(
        **_OFFICIAL,  # type: ignore[arg-type]
        op_head_bias=False,
        entropy_form="sampled",
        lstm_size=100,
        temperature=5.0,
        tanh_constant=2.5,
        entropy_weight=1e-3,
        baseline_decay=0.99,
        learning_rate=1e-3,
        n_aggregate=10,
        input_attention=True,
        attention_recency=6.0,
    ),
    # melodyguan/enas scripts/cifar10_macro_search.sh lines 30-39: entropy 1e-4,
    # num_aggregate 20, lr 1e-3, tanh 1.5, skip_target 0.4, skip_weight 0.8; lstm 64, bl_dec
    # 0.99, no temperature (flag defaults). The script also passes op_tanh_reduce 2.5, but
    # src/cifar10/general_controller.py never reads it (lines 152-155: tanh_constant only), so
    # op logits are not reduced here. Skip KL: summed within a layer (line 233), averaged over
    # layers (line 268), on sigmoid(q) while sampling uses softmax([-q, q]) (lines 217-230).
    # Op softmax without bias (search_whole_channels, lines 149-170), entropy of the sampled
    # action (lines 168, 240-241). Skip bits: the skip bits of layer i from ONE extra LSTM step
    # that reads the op's embedding (lines 213-214), by attention over the earlier layers'
    # anchors, logits [-q_j, q_j] with q_j = v . tanh(W1 h_j + W2 h) (lines 216-224); the
    # next layer reads the chosen anchors summed over 1 + number of skips (lines 244-248),
    # layer 1 reads g_emb (line 250). Exact (tests/test_official_cifar.py).
    "enas-official-cifar-macro": ControllerConfig(
        **_OFFICIAL,  # type: ignore[arg-type]
        skip_attention=True,
        op_head_bias=False,
        entropy_form="sampled",
        skip_kl_half_logit=True,
        lstm_size=64,
        temperature=None,
        tanh_constant=1.5,
        op_tanh_reduce=1.0,
        entropy_weight=1e-4,
        skip_target=0.4,
        skip_weight=0.8,
        learning_rate=1e-3,
        n_aggregate=20,
    ),
    # melodyguan/enas scripts/cifar10_micro_search.sh: entropy 1e-4, num_aggregate 10,
    # lr 3.5e-3, tanh 1.10, op_tanh_reduce 2.5; lstm 64, bl_dec 0.99 (flag defaults).
    # Op bias: src/cifar10/micro_controller.py lines 100-104 (learned, initialised to
    # [10, 10, 0, ...]) and 106-109 + 184-185 (constant [0.25, 0.25, -0.25, ...] added to the
    # normal cell's op logits after the tanh squash). Full entropy (lines 167-169, 190-192).
    # Structure (cell_attention): a block's decisions are sampled in the order in1, in2, op1,
    # op2 (lines 150-196; recorded as in1, op1, in2, op2, lines 165 and 189), inputs by
    # attention over the cell's anchors (lines 153-161), the next step reading the chosen
    # anchor (lines 172-173; the two cell inputs' anchors are zeros, lines 135-140), one extra
    # LSTM step per block for its anchor (lines 198-201); the reduction cell starts new anchors
    # and continues the normal cell's LSTM state (lines 79-80). Exact
    # (tests/test_official_cifar.py).
    "enas-official-cifar-micro": ControllerConfig(
        **_OFFICIAL,  # type: ignore[arg-type]
        cell_attention=True,
        lstm_size=64,
        temperature=None,
        tanh_constant=1.10,
        op_tanh_reduce=2.5,
        entropy_weight=1e-4,
        learning_rate=3.5e-3,
        n_aggregate=10,
        op_bias_init=(10.0, 10.0, 0.0),
        normal_op_bias=(0.25, 0.25, -0.25),
    ),
}

ENAS_PRESETS = tuple(name for name in PRESETS if name != "default")
"""The presets that reproduce the ENAS paper or its official code."""
