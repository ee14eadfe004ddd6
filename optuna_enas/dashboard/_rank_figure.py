"""The rank-check picture: each architecture's supernet score against its score from scratch.

:class:`~optuna_enas.final.RankCheckResult` draws itself through this module: as a standalone
SVG (:func:`rank_check_svg`, hand-written like the rest of the dashboard's SVGs) and as a plotly
figure (:func:`rank_check_figure`) that :func:`save_rank_check_figure` stores in the study for
optuna-dashboard. Points in the top-k of both rankings are green, in the top-k from scratch only
red, the rest blue.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Protocol

from optuna_enas.dashboard._svg import Svg
from optuna_enas.dashboard._svg import nice_ticks
from optuna_enas.final._rank_metrics import oriented
from optuna_enas.final._rank_metrics import top_k


if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

    from optuna_enas.spaces._search_space import Architecture
    from optuna_enas.spaces._search_space import SearchSpace


class RankScatter(Protocol):
    """What the figures read of a rank check (:class:`optuna_enas.final.RankCheckResult` has
    it; declared here so that the dashboard does not import the code that computes it)."""

    @property
    def space(self) -> SearchSpace: ...

    @property
    def direction(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def indices(self) -> tuple[int, ...]: ...

    @property
    def archs(self) -> tuple[Architecture, ...]: ...

    @property
    def supernet(self) -> tuple[float, ...]: ...

    @property
    def standalone(self) -> tuple[float, ...]: ...

    @property
    def k(self) -> int: ...

    def summary(self) -> str: ...


FIGURE_ID = "enas-rank-check"
"""``graph_object_id`` of the plotly figure saved to a rank-check study for optuna-dashboard."""

BOLD_EM = 0.7
"""Width budgeted per character of bold text, in em. Measured in DejaVu Sans Bold (the first
font of the SVGs' ``font-family``): digits advance 0.696 em, lowercase letters 0.636 em on
average, a rank-check title 0.58 em; Helvetica and Arial are narrower."""

_TOP_BOTH, _TOP_Y_ONLY, _OTHER = "#2ca02c", "#d62728", "#1f77b4"
_LEGEND = "green: top-k in both; red: top-k from scratch only; blue: others"
_MAX_TITLE_LINES = 3


def _color(i: int, top_x: set[int], top_y: set[int]) -> str:
    return _TOP_BOTH if i in top_x and i in top_y else _TOP_Y_ONLY if i in top_y else _OTHER


def wrap_title(title: str, width: float, *, size: int) -> list[str]:
    """``title`` in lines of bold ``size`` px text at most ``width`` px wide (at most three;
    the third ends in an ellipsis if the title is longer still)."""
    chars = max(int(width // (BOLD_EM * size)), 8)
    lines = textwrap.wrap(title, chars) or [""]
    if len(lines) > _MAX_TITLE_LINES:
        last = lines[_MAX_TITLE_LINES - 1]
        lines = lines[: _MAX_TITLE_LINES - 1] + [last[: chars - 1].rstrip() + "\u2026"]
    return lines


def scatter_svg(
    x: Sequence[float],
    y: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    title: str,
    highlight: tuple[set[int], set[int]] = (set(), set()),
) -> str:
    """A scatter plot of ``y`` against ``x`` as a standalone SVG.

    ``highlight`` is (indices in the x top-k, indices in the y top-k): points in both are green,
    in the y top-k only red, the rest blue. The title is wrapped to the canvas's width.
    """
    xs = [float(v) for v in x]
    ys = [float(v) for v in y]
    if len(xs) != len(ys):
        raise ValueError(f"x and y must have the same length, but got {len(xs)} and {len(ys)}.")
    margin, title_size, line_h = 12.0, 12, 16.0
    w, left, right, bottom, plot_h = 640.0, 74.0, 24.0, 52.0, 356.0
    lines = wrap_title(title, w - 2 * margin, size=title_size)
    top = 22 + line_h * len(lines) + 14
    h = top + plot_h + bottom
    pw, ph = w - left - right, plot_h
    svg = Svg(w, h)
    for n, line in enumerate(lines):
        svg.text(margin, 22 + line_h * n, line, size=title_size, anchor="start", weight="bold")
    svg.text(margin, top - 12, _LEGEND, size=10, anchor="start", color="#666")

    def span(v: list[float]) -> tuple[float, float]:
        finite = [t for t in v if math.isfinite(t)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        pad = (hi - lo) * 0.06 or abs(hi) * 0.06 or 1.0
        return lo - pad, hi + pad

    (x_lo, x_hi), (y_lo, y_hi) = span(xs), span(ys)

    def sx(v: float) -> float:
        return left + (min(max(v, x_lo), x_hi) - x_lo) / (x_hi - x_lo) * pw

    def sy(v: float) -> float:
        return top + (y_hi - min(max(v, y_lo), y_hi)) / (y_hi - y_lo) * ph

    for t in nice_ticks(y_lo, y_hi):
        svg.raw(
            f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" '
            'stroke="#eee"/>',
            under=True,
        )
        svg.text(left - 6, sy(t) + 4, f"{t:g}", size=11, anchor="end")
    for t in nice_ticks(x_lo, x_hi):
        svg.raw(
            f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{top + ph}" stroke="#eee"/>',
            under=True,
        )
        svg.text(sx(t), top + ph + 16, f"{t:g}", size=11)
    svg.raw(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    svg.text(left + pw / 2, h - 12, x_label, size=12)
    mid = top + ph / 2
    svg.raw(
        f'<text x="16" y="{mid:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 16 {mid:.1f})">{html.escape(y_label)}</text>'
    )
    top_x, top_y = highlight
    for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
        if math.isfinite(a) and math.isfinite(b):
            color = _color(i, top_x, top_y)
            svg.raw(
                f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="4" fill="{color}" '
                'fill-opacity="0.75" stroke="#222" stroke-width="0.5"/>'
            )
    return svg.render()


def top_sets(result: RankScatter) -> tuple[set[int], set[int]]:
    """Positions (in ``result.indices``) of the supernet's top-k and the top-k from scratch."""
    if not result.indices:
        return set(), set()
    k = min(result.k, len(result.indices))
    a = set(top_k(oriented(result.supernet, result.direction), k).tolist())
    b = set(top_k(oriented(result.standalone, result.direction), k).tolist())
    return a, b


def rank_check_svg(result: RankScatter, *, title: str | None = None) -> str:
    """The scatter plot of a rank check (supernet score vs score from scratch) as an SVG."""
    return scatter_svg(
        result.supernet,
        result.standalone,
        x_label=f"supernet {result.metric}",
        y_label=f"from scratch {result.metric}",
        title=title or f"rank check: {result.summary()}",
        highlight=top_sets(result),
    )


def rank_check_figure(result: RankScatter) -> go.Figure:
    """The scatter plot of a rank check as a plotly figure (needs plotly)."""
    import plotly.graph_objects as go

    top_a, top_b = top_sets(result)
    text = [
        f"#{i}: {result.space.to_fixed_arc(a)}"
        for i, a in zip(result.indices, result.archs, strict=True)
    ]
    fig = go.Figure(
        go.Scatter(
            x=list(result.supernet),
            y=list(result.standalone),
            mode="markers",
            marker={"color": [_color(i, top_a, top_b) for i in range(len(text))], "size": 8},
            text=text,
            hovertemplate="%{text}<br>supernet %{x:.4g}<br>from scratch %{y:.4g}",
        )
    )
    fig.update_layout(
        title=f"Rank check<br><sup>{result.summary()}</sup>",
        xaxis_title=f"supernet {result.metric}",
        yaxis_title=f"from scratch {result.metric}",
        showlegend=False,
    )
    return fig


def save_rank_check_figure(study: optuna.Study, result: RankScatter) -> bool:
    """Save :func:`rank_check_figure` to ``study`` under :data:`FIGURE_ID` for optuna-dashboard.

    Returns ``False`` (and saves nothing) when plotly or optuna-dashboard is not installed.
    """
    try:
        import plotly  # noqa: F401
        from optuna_dashboard import save_plotly_graph_object
    except ImportError:
        return False
    save_plotly_graph_object(study, rank_check_figure(result), graph_object_id=FIGURE_ID)
    return True


__all__ = [
    "BOLD_EM",
    "FIGURE_ID",
    "rank_check_figure",
    "rank_check_svg",
    "save_rank_check_figure",
    "scatter_svg",
    "top_sets",
    "wrap_title",
]
