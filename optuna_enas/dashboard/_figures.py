"""Plotly figures of a study for optuna-dashboard: best-so-far, controller statistics, comparisons.

plotly and optuna-dashboard are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas._keys import DERIVE_TAG as _DERIVE_TAG
from optuna_enas._keys import METHOD_KEY as _METHOD_KEY
from optuna_enas._keys import STATS_KEY as STATS_KEY  # re-exported by optuna_enas.dashboard
from optuna_enas._keys import TABLES_KEY as _TABLES_KEY
from optuna_enas._keys import TAG_KEY
from optuna_enas.dashboard._svg import SERIES_COLORS
from optuna_enas.dashboard._svg import band
from optuna_enas.dashboard._svg import check_curves
from optuna_enas.dashboard._svg import rgba


if TYPE_CHECKING:
    import plotly.graph_objects as go


_FIGURE_BEST = "enas-best-so-far"
_FIGURE_CONTROLLER = "enas-controller"
_FIGURE_ONESHOT = "enas-oneshot-arch"
_ONESHOT_SUMMARIES = ("entropy", "sparsity", "param_free_share")


def _search_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials of the search (not those ``derive`` added), by number."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(
        (t for t in trials if t.user_attrs.get(TAG_KEY) != _DERIVE_TAG and t.value is not None),
        key=lambda t: t.number,
    )


def best_so_far(values: Sequence[float], direction: str) -> list[float]:
    """The running best of ``values`` (``direction``: ``"minimize"`` or ``"maximize"``)."""
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', but got {direction!r}.")
    better = min if direction == "minimize" else max
    out: list[float] = []
    for v in values:
        out.append(v if not out else better(out[-1], v))
    return out


def set_metric_name(study: optuna.Study, name: str) -> bool:
    """Name the objective of a single-objective ``study`` (optuna-dashboard's axis label).

    Without it the dashboard labels the values "Objective 0". A name already set is kept.
    Returns whether the name was set now.
    """
    import warnings

    if len(study.directions) != 1 or study.metric_names is not None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([name])
    return True


def max_entropy(trial: FrozenTrial) -> float | None:
    """The entropy of a uniform policy over the trial's categorical decisions (nats).

    A controller that has not learned anything is near it; a converged one near 0.
    """
    total = 0.0
    found = False
    for dist in trial.distributions.values():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            total += math.log(len(dist.choices))
            found = True
    return total if found else None


def _direction(study: optuna.Study) -> str:
    return "minimize" if study.direction == optuna.study.StudyDirection.MINIMIZE else "maximize"


def plot_best_so_far(study: optuna.Study, *, metric: str = "value") -> go.Figure:
    """Trial values and the best value so far against the trial number (plotly)."""
    import plotly.graph_objects as go

    trials = _search_trials(study)
    numbers = [t.number for t in trials]
    values = [float(t.value) for t in trials if t.value is not None]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=numbers, y=values, mode="markers", name=metric, marker={"color": "#aaa", "size": 5}
        )
    )
    fig.add_trace(
        go.Scatter(
            x=numbers,
            y=best_so_far(values, _direction(study)),
            mode="lines",
            name="best so far",
            line={"color": SERIES_COLORS[0], "width": 2},
        )
    )
    fig.update_layout(
        title=f"Best {metric} so far ({study.study_name})",
        xaxis_title="trial",
        yaxis_title=metric,
        template="plotly_white",
    )
    return fig


def controller_stats(study: optuna.Study) -> list[dict[str, Any]]:
    """The ``enas:stats`` records of the study's trials, by trial number."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        stats = t.system_attrs.get(STATS_KEY)
        if isinstance(stats, dict):
            row = {"trial": t.number, **stats}
            if "max_entropy" not in row:
                row["max_entropy"] = max_entropy(t)
            rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def _entropy_fraction(row: Mapping[str, Any]) -> float | None:
    entropy, top = row.get("entropy"), row.get("max_entropy")
    if not isinstance(entropy, (int, float)) or not isinstance(top, (int, float)) or top <= 0:
        return None
    return float(entropy) / float(top)


def plot_controller_stats(study: optuna.Study) -> go.Figure:
    """Reward, moving-average baseline and policy entropy of the ENAS controller per trial.

    The entropy is shown as a fraction of its maximum (the entropy of a uniform policy over
    the same decisions): 1 is a controller that still samples uniformly, 0 a deterministic one.
    The absolute value (nats) and the maximum are in the hover text.

    Raises:
        ValueError: No trial carries ``enas:stats`` (the study was not run by ENASSampler).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = controller_stats(study)
    if not rows:
        raise ValueError(
            f"study {study.study_name!r} has no {STATS_KEY!r} trial attrs; was it run by "
            "ENASSampler with record_stats=True?"
        )
    x = [r["trial"] for r in rows]
    tops = [r["max_entropy"] for r in rows if isinstance(r.get("max_entropy"), (int, float))]
    top_text = f"{max(tops):.4g} nats" if tops else "unknown"
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=(
            "reward and baseline",
            f"policy entropy / its maximum (1 = uniform, max {top_text}; 0 = converged)",
        ),
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r.get("reward") for r in rows],
            mode="markers",
            name="reward",
            marker={"color": "#888", "size": 5},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r.get("baseline") for r in rows],
            mode="lines",
            name="baseline",
            line={"color": SERIES_COLORS[1], "width": 2},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[_entropy_fraction(r) for r in rows],
            customdata=[[r.get("entropy"), r.get("max_entropy")] for r in rows],
            hovertemplate="trial %{x}: %{y:.3f} of max (%{customdata[0]:.4g} of "
            "%{customdata[1]:.4g} nats)<extra></extra>",
            mode="lines",
            name="entropy / max",
            line={"color": SERIES_COLORS[2], "width": 2},
        ),
        row=2,
        col=1,
    )
    fig.update_layout(title=f"ENAS controller ({study.study_name})", template="plotly_white")
    fig.update_yaxes(title_text="reward", row=1, col=1)
    fig.update_yaxes(title_text="entropy / max", range=[0, 1.05], row=2, col=1)
    fig.update_xaxes(title_text="trial", row=2, col=1)
    return fig


def save_study_figures(study: optuna.Study, *, metric: str = "value") -> list[str]:
    """Save the best-so-far and (ENAS studies) controller figures for optuna-dashboard.

    Uses :func:`optuna_dashboard.save_plotly_graph_object` with fixed ids, so calling it again
    replaces the figures. Returns the ids saved.

    Raises:
        ImportError: plotly is not installed (``pip install optuna-enas[plot]``).
    """
    try:
        import plotly  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "study figures need plotly; install it with `pip install optuna-enas[plot]`."
        ) from e
    from optuna_dashboard import save_plotly_graph_object

    if metric == "value" and study.metric_names:
        metric = study.metric_names[0]
    saved = []
    if _search_trials(study):
        save_plotly_graph_object(
            study, plot_best_so_far(study, metric=metric), graph_object_id=_FIGURE_BEST
        )
        saved.append(_FIGURE_BEST)
    if controller_stats(study):
        fig = plot_controller_stats(study)
        save_plotly_graph_object(study, fig, graph_object_id=_FIGURE_CONTROLLER)
        saved.append(_FIGURE_CONTROLLER)
    if oneshot_history(study):
        save_plotly_graph_object(study, plot_arch_weights(study), graph_object_id=_FIGURE_ONESHOT)
        saved.append(_FIGURE_ONESHOT)
    return saved


# -- one-shot searches (DARTS, DSO-NAS) ---------------------------------------------------------
def oneshot_history(study: optuna.Study, method: str | None = None) -> list[dict[str, Any]]:
    """Per epoch of a one-shot search: ``{"trial", "epoch", "method", "tables", summaries}``.

    Reads the trials :func:`optuna_enas.oneshot._record.record_epoch` wrote (system attr
    ``enas:method``, user attrs ``epoch``, ``arch_tables`` and the summaries), of ``method``
    only if given, ordered by trial number.
    """
    import json

    trials = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False)
            if _METHOD_KEY in t.system_attrs
            and (method is None or t.system_attrs[_METHOD_KEY] == method)
        ),
        key=lambda t: t.number,
    )
    rows = []
    for t in trials:
        try:
            tables = json.loads(t.user_attrs.get(_TABLES_KEY, "{}"))
        except (TypeError, ValueError):
            tables = {}
        row: dict[str, Any] = {
            "trial": t.number,
            "epoch": t.user_attrs.get("epoch", t.number),
            "method": t.system_attrs.get(_METHOD_KEY),
            "tables": tables if isinstance(tables, dict) else {},
        }
        for key in _ONESHOT_SUMMARIES:
            value = t.user_attrs.get(key)
            row[key] = float(value) if isinstance(value, (int, float)) else None
        rows.append(row)
    return rows


def plot_arch_weights(study: optuna.Study, *, method: str | None = None) -> go.Figure:
    """Alpha (softmaxed, DARTS) or lambda (DSO-NAS) entries and their summaries over epochs.

    Top: one line per architecture entry (``table[row][column]`` of the supernet's
    ``arch_tables``), coloured by table. Bottom: the mean normalised entropy, the sparsity
    (share of entries exactly 0) and the derived architecture's share of parameter-free ops
    (the collapse indicator).

    Raises:
        ValueError: The study holds no one-shot trials (of ``method``).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = oneshot_history(study, method)
    if not rows:
        raise ValueError(
            f"study {study.study_name!r} has no trials recorded by a one-shot searcher"
            + ("" if method is None else f" of method {method!r}")
            + "."
        )
    methods = sorted({str(r["method"]) for r in rows})
    x = [r["epoch"] if len(methods) == 1 else r["trial"] for r in rows]
    x_title = "epoch" if len(methods) == 1 else "trial"
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=("architecture weights (alpha softmaxed / lambda)", "summaries"),
    )
    names: list[str] = []
    for r in rows:
        for name in r["tables"]:
            if name not in names:
                names.append(name)
    for k, name in enumerate(names):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        shape: list[list[Any]] = next((r["tables"][name] for r in rows if name in r["tables"]), [])
        for i, row in enumerate(shape):
            for j in range(len(row)):
                y: list[float | None] = []
                for r in rows:
                    table = r["tables"].get(name)
                    try:
                        y.append(float(table[i][j]))
                    except (TypeError, IndexError, ValueError):
                        y.append(None)
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=y,
                        mode="lines",
                        name=name,
                        legendgroup=name,
                        showlegend=i == 0 and j == 0,
                        hovertemplate=f"{name}[{i}][{j}]: %{{y:.4g}}<extra></extra>",
                        line={"color": color, "width": 1},
                    ),
                    row=1,
                    col=1,
                )
    for k, key in enumerate(_ONESHOT_SUMMARIES):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r[key] for r in rows],
                mode="lines+markers",
                name=key,
                line={"color": SERIES_COLORS[(k + 3) % len(SERIES_COLORS)], "width": 2},
            ),
            row=2,
            col=1,
        )
    fig.update_layout(
        title=f"One-shot search ({', '.join(methods)}; {study.study_name})",
        template="plotly_white",
    )
    fig.update_yaxes(title_text="weight", row=1, col=1)
    fig.update_yaxes(title_text="share", range=[0, 1.05], row=2, col=1)
    fig.update_xaxes(title_text=x_title, row=2, col=1)
    return fig


# -- comparisons (several samplers x seeds) ----------------------------------------------------
def plot_comparison(
    curves: Mapping[str, Sequence[Sequence[float]]], *, metric: str, title: str
) -> go.Figure:
    """Mean best-so-far per name with a min-max band over its runs (plotly).

    Args:
        curves: ``{name: [run, ...]}``, each run the best-so-far values by trial; runs are cut
            to the shortest one.
        metric: The y-axis label.
        title: The figure title.
    """
    import plotly.graph_objects as go

    check_curves(curves)
    fig = go.Figure()
    for k, (name, runs) in enumerate(curves.items()):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        mean, lo, hi = band(runs)
        x = list(range(1, len(mean) + 1))
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=hi + lo[::-1],
                fill="toself",
                fillcolor=rgba(color, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                name=f"{name} min-max",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines",
                name=f"{name} (n={len(runs)})",
                line={"color": color, "width": 2},
            )
        )
    fig.update_layout(
        title=title, xaxis_title="trials", yaxis_title=metric, template="plotly_white"
    )
    return fig
