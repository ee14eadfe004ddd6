"""The names optuna-enas writes into Optuna studies: one home for each, importable without torch.

The sampler, the evaluators, the one-shot searchers, :func:`~optuna_enas.final.derive`, the
CLI and the dashboard all import them from here.
"""

from __future__ import annotations


SAMPLE_KEY = "enas:sample"
"""Trial system attr written at sampling: sampler id, policy fingerprint, actions, log-probs."""
STATS_KEY = "enas:stats"
"""Trial system attr written after the trial: reward, baseline, advantage, entropy."""
PHASE_KEY = "enas:phase"
"""Trial user attr naming the phase a trial belonged to, ``"train"`` or ``"score"``: a
``"train"`` trial trained shared weights; its value is not a reward and the sampler does not
learn from it (live or on replay)."""
METHOD_KEY = "enas:method"
"""Trial system attr naming the one-shot method that derived the trial's architecture."""
TABLES_KEY = "arch_tables"
"""Trial user attr: a one-shot trial's arch tables (alpha softmaxed / lambda raw), compact JSON."""
TAG_KEY = "enas:tag"
"""Trial user attr tagging trials that are not search trials (see :data:`DERIVE_TAG`)."""
DERIVE_TAG = "derive"
"""Value of :data:`TAG_KEY` on the trials :func:`~optuna_enas.final.derive` adds."""
DERIVE_STUDY_SUFFIX = "-derive"
""":func:`~optuna_enas.final.derive` records into the study ``<search study name>-derive``."""

__all__ = [
    "DERIVE_STUDY_SUFFIX",
    "DERIVE_TAG",
    "METHOD_KEY",
    "PHASE_KEY",
    "SAMPLE_KEY",
    "STATS_KEY",
    "TABLES_KEY",
    "TAG_KEY",
]
