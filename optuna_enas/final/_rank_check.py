"""Does the trained supernet rank architectures as training them from scratch would?

:func:`rank_check` samples ``n_archs`` distinct architectures of the evaluator's space
(uniformly, from ``seed``), scores each on the trained supernet's frozen weights (a fixed
validation slice, no training, no side effects), trains each from scratch with a
:class:`~optuna_enas.StandaloneEvaluator` budget the caller sets, and reports Kendall's tau,
Spearman's rho and the top-k overlap of the two rankings. It prints nothing unless asked
(``progress=``); the scatter plot is drawn by :mod:`optuna_enas.dashboard._rank_figure`.

It is resumable: every architecture trained from scratch becomes one COMPLETE trial of an Optuna
study (the value is the standalone score, the user attrs hold the index and the supernet
score), added only once its training has finished. Running it again with the same storage and
study name skips what is done; a different space, seed, validation slice or supernet is
refused rather than mixed in. A larger ``n_archs`` extends a run (the architectures are drawn
in order from the seed).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TextIO
from typing import cast

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from optuna_enas._atomic import atomic_write_text
from optuna_enas._validation import check_int
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.final._rank_metrics import kendall_tau
from optuna_enas.final._rank_metrics import oriented
from optuna_enas.final._rank_metrics import spearman_rho
from optuna_enas.final._rank_metrics import top_fraction_k
from optuna_enas.final._rank_metrics import top_k_overlap
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._config import TrainingConfig


if TYPE_CHECKING:
    import plotly.graph_objects as go

    from optuna_enas.training._evaluator import StandaloneEvaluator
    from optuna_enas.training._evaluator import SupernetEvaluator


CONFIG_ATTR = "rank_check:config"
"""Study user attr: what the run is (space, seed, validation slice, supernet digest)."""
INDEX_ATTR = "rank_check:index"
SUPERNET_ATTR = "rank_check:supernet"
DEFAULT_STUDY_NAME = "rank-check"
_MAX_DRAWS_PER_ARCH = 200


def draw_distinct(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct architectures of ``space`` drawn uniformly from ``seed`` (in draw order).

    Raises:
        ValueError: The space holds fewer than ``n`` distinct architectures (or they are too
            rare to find).
    """
    n = check_int("n_archs", n, 2)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[Architecture] = []
    for _ in range(n * _MAX_DRAWS_PER_ARCH):
        arch = space.sample_uniform(rng)
        key = space.to_fixed_arc(arch)
        if key not in seen:
            seen.add(key)
            out.append(arch)
            if len(out) == n:
                return out
    raise ValueError(f"n_archs={n} exceeds the distinct architectures found in the space.")


@dataclass(frozen=True)
class RankCheckResult:
    """The outcome of :func:`rank_check` (over the architectures trained so far).

    Attributes:
        space: The search space.
        direction: ``"minimize"`` (perplexity) or ``"maximize"`` (accuracy).
        metric: The metric's label, e.g. ``"valid ppl"``.
        indices: Indices (in draw order) of the architectures with both scores.
        archs: Those architectures.
        supernet: Their scores on the supernet's frozen weights.
        standalone: Their scores after training from scratch.
        n_archs: Architectures planned.
        k: The ``k`` of the top-k overlap.
        kendall_tau: Kendall's tau-b of the two rankings (NaN with fewer than 2).
        spearman_rho: Spearman's rho.
        top_k_overlap: Fraction of the supernet's ``k`` best that are among the ``k`` best
            from scratch (``k / n`` is chance).
        study_name: The study that holds the run.
    """

    space: SearchSpace
    direction: str
    metric: str
    indices: tuple[int, ...]
    archs: tuple[Architecture, ...]
    supernet: tuple[float, ...]
    standalone: tuple[float, ...]
    n_archs: int
    k: int
    kendall_tau: float
    spearman_rho: float
    top_k_overlap: float
    study_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.indices) == self.n_archs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (architectures as ``fixed_arc`` strings)."""
        return {
            "space": self.space.to_dict(),
            "direction": self.direction,
            "metric": self.metric,
            "n_archs": self.n_archs,
            "n_done": len(self.indices),
            "k": self.k,
            "kendall_tau": _json_float(self.kendall_tau),
            "spearman_rho": _json_float(self.spearman_rho),
            "top_k_overlap": _json_float(self.top_k_overlap),
            "study_name": self.study_name,
            "archs": [
                {
                    "index": i,
                    "fixed_arc": self.space.to_fixed_arc(a),
                    "supernet": s,
                    "standalone": t,
                }
                for i, a, s, t in zip(
                    self.indices, self.archs, self.supernet, self.standalone, strict=True
                )
            ],
        }

    def summary(self) -> str:
        """One line: n, tau, rho, top-k."""
        return (
            f"{len(self.indices)}/{self.n_archs} architectures: Kendall tau "
            f"{self.kendall_tau:.3f}, Spearman rho {self.spearman_rho:.3f}, top-{self.k} "
            f"overlap {self.top_k_overlap:.2f} (chance {self.k / max(len(self.indices), 1):.2f})"
        )

    def svg(self, *, title: str | None = None) -> str:
        """The scatter plot (supernet score vs score from scratch) as a standalone SVG."""
        from optuna_enas.dashboard._rank_figure import rank_check_svg

        return rank_check_svg(self, title=title)

    def figure(self) -> go.Figure:
        """The scatter plot as a plotly figure (needs plotly)."""
        from optuna_enas.dashboard._rank_figure import rank_check_figure

        return rank_check_figure(self)


def _json_float(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


# -- the progress line ---------------------------------------------------------------------------
class _Progress:
    """A one-line progress bar on a stream (redrawn with ``\\r`` on a terminal)."""

    def __init__(self, total: int, done: int, stream: TextIO | None) -> None:
        self.total = total
        self.done = done
        self.stream = stream
        self.start = time.monotonic()
        self.start_done = done
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def show(self, note: str = "") -> None:
        if self.stream is None:
            return
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.monotonic() - self.start
        n_new = self.done - self.start_done
        eta = elapsed / n_new * (self.total - self.done) if n_new else math.nan
        line = (
            f"rank-check [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"trained, {_clock(elapsed)} elapsed, eta {_clock(eta)}"
            + (f"  {note}" if note else "")
        )
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


# -- the recording trial -------------------------------------------------------------------------
class _RecordingTrial:
    """What StandaloneEvaluator needs of a trial: fixed params, reports, the trial number."""

    def __init__(self, number: int, params: Mapping[str, Any]) -> None:
        self.number = number
        self.params = dict(params)
        self.distributions: dict[str, CategoricalDistribution] = {}
        self.intermediate: dict[int, float] = {}
        self.user_attrs: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.distributions[name] = CategoricalDistribution(tuple(choices))
        return self.params[name]

    def report(self, value: float, step: int) -> None:
        self.intermediate[int(step)] = float(value)

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


# -- the run -------------------------------------------------------------------------------------
def rank_check(
    evaluator: SupernetEvaluator,
    *,
    n_archs: int = 20,
    n_epochs: int = 3,
    n_steps_per_epoch: int | None = None,
    standalone: StandaloneEvaluator | None = None,
    training: TrainingConfig | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str = DEFAULT_STUDY_NAME,
    seed: int | None = None,
    valid_batches: int | None = None,
    top_fraction: float = 0.1,
    svg_path: str | Path | None = None,
    save_figure: bool = True,
    progress: bool | TextIO = False,
    max_archs: int | None = None,
) -> RankCheckResult:
    """Compare the supernet's ranking of ``n_archs`` architectures with training from scratch.

    Args:
        evaluator: A trained :class:`~optuna_enas.SupernetEvaluator`; its weights are only read.
        n_archs: Architectures to compare (at least 2), drawn uniformly and distinct.
        n_epochs: Epochs of training from scratch per architecture (when ``standalone`` is
            ``None``).
        n_steps_per_epoch: Minibatches per epoch (``None``: a full pass over the data).
        standalone: The from-scratch objective; ``None`` builds a
            :class:`~optuna_enas.StandaloneEvaluator` with the evaluator's data, ``training``,
            ``n_epochs`` and ``n_steps_per_epoch``, seeded from ``seed``.
        training: The from-scratch training settings
            (:class:`~optuna_enas.TrainingConfig`) when ``standalone`` is
            ``None``; ``None``: the evaluator's (``evaluator.training``: its supernet size,
            batch size, BPTT, optimizer settings and device). Not with ``standalone``.
        storage: Optuna storage of the run (URL or object); ``None`` keeps it in memory (not
            resumable).
        study_name: The run's study; rerunning with the same name continues it.
        seed: Seeds the architectures and the from-scratch training; ``None`` draws one (kept
            in the study, so a rerun continues with it).
        valid_batches: The supernet scores each architecture on the first ``valid_batches``
            validation minibatches; ``None``: the whole validation split (as the from-scratch
            score).
        top_fraction: ``k`` of the top-k overlap is ``ceil(top_fraction * n)``.
        svg_path: Where to write the scatter plot SVG (``None``: nowhere).
        save_figure: Save the plotly figure to the study for optuna-dashboard when plotly is
            installed.
        progress: Print a progress line to stderr (``True``) or to a given stream; the
            default ``False`` prints nothing (the CLI turns it on).
        max_archs: Train at most this many new architectures in this call, then return (a
            partial result; rerun to continue). ``None``: all.

    Returns:
        A :class:`RankCheckResult` over the architectures done so far.
    """
    from optuna_enas.training._evaluator import StandaloneEvaluator
    from optuna_enas.training._evaluator import SupernetEvaluator
    from optuna_enas.training.distributed import state_digest

    if not isinstance(evaluator, SupernetEvaluator):
        raise ValueError(f"evaluator must be a SupernetEvaluator, but got {evaluator!r}.")
    if training is not None:
        if standalone is not None:
            raise ValueError(
                "training and standalone both say how to train from scratch; give one of them."
            )
        if not isinstance(training, TrainingConfig):
            raise ValueError(f"training must be a TrainingConfig or None, but got {training!r}.")
    n_archs = check_int("n_archs", n_archs, 2)
    check_int("n_epochs", n_epochs, 1)
    check_seed("seed", seed)
    if valid_batches is not None:
        check_int("valid_batches", valid_batches, 1)
    if max_archs is not None:
        check_int("max_archs", max_archs, 0)
    top_fraction_k(n_archs, top_fraction)  # checks top_fraction
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name must be a non-empty string, but got {study_name!r}.")
    if not isinstance(progress, bool) and not callable(getattr(progress, "write", None)):
        raise ValueError(f"progress must be a bool or a writable stream, but got {progress!r}.")
    stream: TextIO | None = (
        sys.stderr if progress is True else None if progress is False else progress
    )
    space = evaluator.space
    kind = kind_of(space)
    direction = evaluator.direction
    digest = state_digest(evaluator.supernet)

    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction,
        load_if_exists=True,
        pruner=optuna.pruners.NopPruner(),
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study_name={study_name!r} exists with direction {study.direction.name.lower()}, "
            f"but the evaluator's metric needs {direction}."
        )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if seed is None:
        seed = int(stored["seed"]) if isinstance(stored, dict) else fresh_seed()
    config = {
        "space": space.to_dict(),
        "seed": seed,
        "valid_batches": valid_batches,
        "supernet_digest": digest,
    }
    if isinstance(stored, dict):
        for key, value in config.items():
            if stored.get(key) != value:
                what = "the supernet's weights" if key == "supernet_digest" else key
                raise ValueError(
                    f"study_name={study_name!r} is a rank check with another {what} "
                    f"({stored.get(key)!r} there, {value!r} here); use a new study name."
                )
    else:
        study.set_user_attr(CONFIG_ATTR, config)
    # The architectures are drawn in order from the seed, so a larger n_archs extends the run.

    archs = draw_distinct(space, n_archs, seed)
    if standalone is None:
        standalone = StandaloneEvaluator(
            space,
            evaluator.data,
            training=evaluator.training if training is None else training,
            n_epochs=n_epochs,
            n_steps_per_epoch=n_steps_per_epoch,
            seed=seed,
        )
    elif standalone.space != space or standalone.direction != direction:
        raise ValueError("standalone must evaluate the evaluator's space with the same metric.")

    done = _done_indices(study)
    bar = _Progress(n_archs, len(done), stream)
    bar.show()
    n_new = 0
    try:
        for index, arch in enumerate(archs):
            if index in done:
                continue
            if max_archs is not None and n_new >= max_archs:
                break
            full = valid_batches is None
            shared = evaluator.evaluate(arch, split="valid", full=full, n_batches=valid_batches)
            trial = _RecordingTrial(index, arch.to_params())
            t0 = time.monotonic()
            value = float(standalone(cast(Any, trial)))
            study.add_trial(
                optuna.trial.create_trial(
                    params=trial.params,
                    distributions=dict(trial.distributions),
                    value=value,
                    intermediate_values=trial.intermediate,
                    user_attrs={
                        **trial.user_attrs,
                        INDEX_ATTR: index,
                        SUPERNET_ATTR: shared,
                        "rank_check:seconds": round(time.monotonic() - t0, 3),
                        "architecture": space.describe(arch),
                    },
                )
            )
            done.add(index)
            n_new += 1
            bar.done = len(done)
            bar.show(f"#{index}: supernet {shared:.4g}, from scratch {value:.4g}")
    finally:
        bar.close()

    result = collect(study, space, kind.metric_label, direction, n_archs, top_fraction)
    if svg_path is not None:
        atomic_write_text(svg_path, result.svg())
    if save_figure and len(result.indices) >= 2:
        from optuna_enas.dashboard._rank_figure import save_rank_check_figure

        save_rank_check_figure(study, result)
    return result


def _done_indices(study: optuna.Study) -> set[int]:
    return {
        int(t.user_attrs[INDEX_ATTR])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if INDEX_ATTR in t.user_attrs
    }


def collect(
    study: optuna.Study,
    space: SearchSpace,
    metric: str,
    direction: str,
    n_archs: int,
    top_fraction: float = 0.1,
) -> RankCheckResult:
    """The :class:`RankCheckResult` of the trials a rank-check study holds."""
    rows: dict[int, tuple[Architecture, float, float]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if INDEX_ATTR not in t.user_attrs or t.value is None:
            continue
        if int(t.user_attrs[INDEX_ATTR]) >= n_archs:
            continue
        rows[int(t.user_attrs[INDEX_ATTR])] = (
            space.architecture(t.params),
            float(t.user_attrs[SUPERNET_ATTR]),
            float(t.value),
        )
    indices = sorted(rows)
    shared = [rows[i][1] for i in indices]
    scratch = [rows[i][2] for i in indices]
    n = len(indices)
    k = top_fraction_k(n, top_fraction) if n else 1
    a, b = oriented(shared, direction), oriented(scratch, direction)
    finite = n >= 2 and bool(np.isfinite(a).all() and np.isfinite(b).all())
    return RankCheckResult(
        space=space,
        direction=direction,
        metric=metric,
        indices=tuple(indices),
        archs=tuple(rows[i][0] for i in indices),
        supernet=tuple(shared),
        standalone=tuple(scratch),
        n_archs=n_archs,
        k=k,
        kendall_tau=kendall_tau(a, b) if finite else math.nan,
        spearman_rho=spearman_rho(a, b) if finite else math.nan,
        top_k_overlap=top_k_overlap(a, b, k) if finite else math.nan,
        study_name=study.study_name,
    )


__all__ = [
    "CONFIG_ATTR",
    "DEFAULT_STUDY_NAME",
    "RankCheckResult",
    "collect",
    "draw_distinct",
    "rank_check",
]
