"""SVG drawings written by hand (no graphviz, no plotting library): architectures and curves.

The public functions are re-exported by :mod:`optuna_enas.dashboard`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroNode
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
_PALETTE = {
    "tanh": "#fdd9b5",
    "relu": "#c6dcf7",
    "identity": "#e4e4e4",
    "sigmoid": "#cdeccd",
    "conv3x3": "#c6dcf7",
    "conv5x5": "#9fc3ee",
    "sep3x3": "#cdeccd",
    "sep5x5": "#a6dca6",
    "avgpool": "#fdd9b5",
    "maxpool": "#f7bd8a",
}
_EXTRA_COLORS = ("#e8d1f2", "#f6f0b3", "#f3c9d2", "#c9ece8")
SERIES_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


# -- SVG drawing -------------------------------------------------------------------------------
class Svg:
    """A minimal SVG writer: boxes, circles, text and arrowed paths in a fixed canvas."""

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height
        self._edges: list[str] = []
        self._shapes: list[str] = []
        self._markers: dict[str, str] = {}

    def _marker(self, color: str) -> str:
        if color not in self._markers:
            self._markers[color] = f"arrow{len(self._markers)}"
        return self._markers[color]

    def path(
        self, d: str, *, color: str = "#555", dashed: bool = False, arrow: bool = True
    ) -> None:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        end = f' marker-end="url(#{self._marker(color)})"' if arrow else ""
        self._edges.append(
            f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.4"{dash}{end}/>'
        )

    def box(
        self,
        cx: float,
        cy: float,
        w: float,
        h: float,
        label: str,
        *,
        fill: str = "#fff",
        bold: bool = False,
    ) -> None:
        stroke = 2.2 if bold else 1.0
        self._shapes.append(
            f'<rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'rx="6" fill="{fill}" stroke="#333" stroke-width="{stroke}"/>'
        )
        self.text(cx, cy + 4, label, size=12)

    def circle(self, cx: float, cy: float, r: float, label: str, *, bold: bool = False) -> None:
        stroke = 2.2 if bold else 1.0
        self._shapes.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="#fff" stroke="#333" '
            f'stroke-width="{stroke}"/>'
        )
        self.text(cx, cy + 4, label, size=11)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        size: int = 12,
        anchor: str = "middle",
        weight: str = "normal",
        color: str = "#222",
    ) -> None:
        self._shapes.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{color}">{html.escape(s)}</text>'
        )

    def raw(self, element: str, *, under: bool = False) -> None:
        (self._edges if under else self._shapes).append(element)

    def render(self) -> str:
        markers = "".join(
            f'<marker id="{mid}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/>'
            "</marker>"
            for color, mid in self._markers.items()
        )
        w, h = math.ceil(self.width), math.ceil(self.height)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" font-family="{_FONT}">'
            f'<rect width="{w}" height="{h}" fill="#fff"/><defs>{markers}</defs>'
            + "".join(self._edges)
            + "".join(self._shapes)
            + "</svg>\n"
        )


def _color(name: str, known: Sequence[str]) -> str:
    if name in _PALETTE:
        return _PALETTE[name]
    i = list(known).index(name) if name in known else len(name)
    return _EXTRA_COLORS[i % len(_EXTRA_COLORS)]


def _curve(x1: float, y1: float, x2: float, y2: float, bend: float = 0.0) -> str:
    dy = (y2 - y1) * 0.45
    return (
        f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1 + dy:.1f} {x2 + bend:.1f},{y2 - dy:.1f} "
        f"{x2:.1f},{y2:.1f}"
    )


def _legend(svg: Svg, y: float, names: Sequence[str], known: Sequence[str]) -> None:
    x = 12.0
    for name in names:
        svg.raw(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="12" rx="2" '
            f'fill="{_color(name, known)}" stroke="#333" stroke-width="0.8"/>'
        )
        svg.text(x + 16, y + 1, name, size=11, anchor="start")
        x += 24 + 7 * len(name)


def _title(svg: Svg, title: str | None) -> float:
    if not title:
        return 0.0
    svg.text(12, 20, title, size=14, anchor="start", weight="bold")
    return 28.0


def _rnn_svg(space: RNNCellSpace, arch: Architecture, title: str | None) -> str:
    nodes = space.cell(arch)
    loose = set(space.loose_ends(arch))
    depth = [0] * len(nodes)
    for i, node in enumerate(nodes):
        if node.input is not None:
            depth[i] = depth[node.input] + 1
    levels: dict[int, list[int]] = {}
    for i, d in enumerate(depth):
        levels.setdefault(d, []).append(i)
    bw, bh, col, row = 104.0, 30.0, 120.0, 56.0
    width = max(360.0, col * max(len(v) for v in levels.values()) + 24)
    x: dict[int, float] = {}
    for d in sorted(levels):
        members = levels[d]
        if d > 0:  # keep siblings under their parents: fewer crossing edges
            members.sort(key=lambda i: (x[nodes[i].input or 0], i))
        start = (width - col * len(members)) / 2 + col / 2
        for k, i in enumerate(members):
            x[i] = start + k * col
    n_rows = max(depth) + 3  # input, the levels, output
    height = 28 + row * n_rows + 36
    svg = Svg(width, height)
    top = _title(svg, title) + 12 + bh / 2
    y = {i: top + row * (depth[i] + 1) for i in range(len(nodes))}
    y_out = top + row * (max(depth) + 2)
    cx = width / 2
    svg.box(cx, top, 170, bh, "input: x(t), h(t-1)", fill="#f4f4f4")
    svg.path(_curve(cx, top + bh / 2, x[0], y[0] - bh / 2))
    for i, node in enumerate(nodes):
        if node.input is not None:
            p = node.input
            svg.path(_curve(x[p], y[p] + bh / 2, x[i], y[i] - bh / 2))
        if i in loose:
            svg.path(_curve(x[i], y[i] + bh / 2, cx, y_out - bh / 2), color="#999", dashed=True)
        svg.box(
            x[i],
            y[i],
            bw,
            bh,
            f"{i}: {node.activation}",
            fill=_color(node.activation, space.activations),
            bold=i in loose,
        )
    ends = ", ".join(str(i) for i in sorted(loose))
    svg.box(cx, y_out, min(width - 16, 120 + 7 * len(ends)), bh, f"h(t) = mean({ends})")
    used = [a for a in space.activations if any(n.activation == a for n in nodes)]
    _legend(svg, height - 14, used, space.activations)
    return svg.render()


def _macro_svg(space: MacroSpace, arch: Architecture, title: str | None) -> str:
    layers = space.layers(arch)
    bw, bh, row = 150.0, 30.0, 48.0
    n = len(layers)
    max_off = max(
        (18 + 10 * (i - j) for i, layer in enumerate(layers) for j in layer.skips), default=0
    )
    width = max(360.0, 24 + bw + max_off + 40)
    height = 28 + row * (n + 2) + 36
    svg = Svg(width, height)
    top = _title(svg, title) + 12 + bh / 2
    cx = 16 + bw / 2
    xr = cx + bw / 2

    def y_of(i: int) -> float:  # -1 is the input, n the output
        return top + row * (i + 1)

    svg.box(cx, y_of(-1), bw, bh, "input", fill="#f4f4f4")
    for i, layer in enumerate(layers):
        svg.path(f"M{cx:.1f},{y_of(i - 1) + bh / 2:.1f} L{cx:.1f},{y_of(i) - bh / 2:.1f}")
        for j in layer.skips:
            off = 18 + 10 * (i - j)
            y1, y2 = y_of(j), y_of(i)
            svg.path(
                f"M{xr:.1f},{y1:.1f} C{xr + off:.1f},{y1:.1f} {xr + off:.1f},{y2:.1f} "
                f"{xr + 1:.1f},{y2:.1f}",
                color="#3b6fb6",
            )
        svg.box(cx, y_of(i), bw, bh, f"{i}: {layer.op}", fill=_color(layer.op, space.ops))
    svg.path(f"M{cx:.1f},{y_of(n - 1) + bh / 2:.1f} L{cx:.1f},{y_of(n) - bh / 2:.1f}")
    svg.box(cx, y_of(n), bw, bh, "pool + classifier", fill="#f4f4f4")
    used = [o for o in space.ops if any(layer.op == o for layer in layers)]
    _legend(svg, height - 14, used, space.ops)
    return svg.render()


def _micro_panel(
    svg: Svg, x0: float, top: float, name: str, blocks: Sequence[MicroNode], ops: Sequence[str]
) -> None:
    pw, bw, bh, row, r = 330.0, 92.0, 26.0, 44.0, 12.0
    xl, xm, xr = x0 + pw * 0.28, x0 + pw * 0.5, x0 + pw * 0.72
    svg.text(xm, top, name, size=13, weight="bold")
    y_in = top + 28
    svg.box(xl, y_in, 96, bh, "0: c(k-2)", fill="#f4f4f4")
    svg.box(xr, y_in, 96, bh, "1: c(k-1)", fill="#f4f4f4")
    used = {src for b in blocks for src in (b.in1, b.in2)}
    loose = [b for b in range(2, len(blocks) + 2) if b not in used]
    y_add = {b: y_in + row * (2 * (b - 2) + 2) for b in range(2, len(blocks) + 2)}
    y_out = y_in + row * (2 * len(blocks) + 1)

    def source(i: int) -> tuple[float, float, float]:  # x, bottom y, row
        if i < 2:
            return (xl if i == 0 else xr), y_in + bh / 2, 0.0
        return xm, y_add[i] + r, float(2 * (i - 2) + 2)

    for k, block in enumerate(blocks):
        b = k + 2
        y_op = y_add[b] - row
        for src, op, x_op, side in ((block.in1, block.op1, xl, -1), (block.in2, block.op2, xr, 1)):
            sx, sy, srow = source(src)
            span = (2 * (b - 2) + 1) - srow
            bend = 0.0 if span <= 1 else side * (26 + 8 * span)
            svg.path(_curve(sx, sy, x_op, y_op - bh / 2, bend))
            svg.path(_curve(x_op, y_op + bh / 2, xm, y_add[b] - r), color="#777")
            svg.box(x_op, y_op, bw, bh, op, fill=_color(op, ops))
        svg.circle(xm, y_add[b], r, str(b), bold=b in loose)
    for b in loose:
        bend = 0.0 if b == len(blocks) + 1 else 40.0  # go around the blocks below
        svg.path(_curve(xm, y_add[b] + r, xm, y_out - bh / 2, bend), color="#999", dashed=True)
    label = "concat(" + ", ".join(map(str, loose)) + ")"
    svg.box(xm, y_out, max(120.0, 9 * len(label)), bh, label, fill="#f4f4f4")


def _micro_svg(space: MicroSpace, arch: Architecture, title: str | None) -> str:
    cells = space.cells(arch)
    height = 28 + 28 + 44 * (2 * space.n_nodes + 2) + 40
    svg = Svg(700.0, height)
    top = _title(svg, title) + 16
    _micro_panel(svg, 10, top, "normal cell", cells.normal, space.ops)
    _micro_panel(svg, 360, top, "reduction cell", cells.reduction, space.ops)
    svg.raw(f'<line x1="350" y1="{top - 8:.1f}" x2="350" y2="{height - 30:.1f}" stroke="#ccc"/>')
    used = [
        o for o in space.ops if any(o in (n.op1, n.op2) for n in cells.normal + cells.reduction)
    ]
    _legend(svg, height - 14, used, space.ops)
    return svg.render()


_KIND_COLORS = {"op": "#c6dcf7", "input": "#cdeccd", "skip": "#fdd9b5", "other": "#e8d1f2"}
_MAX_ROWS = 60
_MAX_CHOICES_CHARS = 64
_CHAR_W = 7.2  # about the advance of a 12 px sans-serif character
_SEP = " · "


def _shown(value: Any, kind: str) -> str:
    if kind == "skip" and value in (0, 1) and not isinstance(value, bool):
        return "on" if value == 1 else "off"
    return "None" if value is None else str(value)


def architecture_rows(
    space: SearchSpace, arch: Architecture
) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """One row per decision: ``(label, kind, chosen, choices)``, as drawn and noted.

    A skip decision's 0/1 reads ``off``/``on``; values are shown as ``str`` (no quotes); a long
    list of choices is cut, its last entry then saying how many are left out (``... +N``).
    """
    rows: list[tuple[str, str, str, tuple[str, ...]]] = []
    for d in space.decisions:
        names = [_shown(c, d.kind) for c in d.choices]
        kept: list[str] = []
        used = 0
        for k, name in enumerate(names):
            if used + len(name) > _MAX_CHOICES_CHARS and k < len(names) - 1:
                kept.append(f"... +{len(names) - k}")
                break
            kept.append(name)
            used += len(name) + len(_SEP)
        rows.append((d.name, d.kind, _shown(arch[d.name], d.kind), tuple(kept)))
    return rows


def drawn_as_table(space: SearchSpace) -> bool:
    """Whether ``space`` is drawn as a table (not an ENAS rnn, macro or micro space)."""
    return not isinstance(space, (RNNCellSpace, MacroSpace, MicroSpace))


def architecture_markdown(space: SearchSpace, arch: Architecture) -> str:
    """The chosen candidate per label as a Markdown table (the note of a custom space)."""
    lines = ["| decision | chosen | choices |", "| --- | --- | --- |"]
    for name, _kind, chosen, choices in architecture_rows(space, arch):
        cells = [name, f"**{chosen}**", _SEP.join(choices)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _choices_text(x: float, y: float, choices: Sequence[str], chosen: str) -> str:
    """The choices in one line, the chosen one bold and dark, the others grey."""
    spans = []
    for k, c in enumerate(choices):
        style = 'font-weight="bold" fill="#111"' if c == chosen else 'fill="#777"'
        sep = html.escape(_SEP) if k else ""
        spans.append(f'<tspan fill="#bbb">{sep}</tspan><tspan {style}>{html.escape(c)}</tspan>')
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="start" '
        'xml:space="preserve">' + "".join(spans) + "</text>"
    )


def _generic_svg(space: SearchSpace, arch: Architecture, title: str | None) -> str:
    """A table: one row per label with its kind, the chosen candidate and the alternatives."""
    rows = architecture_rows(space, arch)
    shown = rows[:_MAX_ROWS]
    pad, row_h = 10.0, 24.0
    head = ("decision", "kind", "chosen", "choices")
    texts = [(r[0], r[1], r[2], _SEP.join(r[3])) for r in shown]
    widths = [2 * pad + _CHAR_W * max(len(head[i]), *(len(t[i]) for t in texts)) for i in range(4)]
    widths[2] += 4 + 0.8 * max(len(t[2]) for t in texts)  # the pill, bold text
    table_w = sum(widths)
    n_lines = len(shown) + 1 + (len(rows) > len(shown)) + 1  # header, rows, "more", legend
    width = max(table_w + 24, 320.0)
    height = 28 + 12 + row_h * n_lines + 16
    svg = Svg(width, height)
    top = _title(svg, title) + 10
    x0 = 12.0
    xs = [x0 + sum(widths[:i]) for i in range(4)]
    svg.raw(
        f'<rect x="{x0:.1f}" y="{top:.1f}" width="{table_w:.1f}" height="{row_h:.1f}" '
        'fill="#f0f0f0" stroke="none"/>'
    )
    for i, label in enumerate(head):
        svg.text(xs[i] + pad, top + 16, label, anchor="start", weight="bold")
    for k, (name, kind, chosen, choices) in enumerate(shown):
        y = top + row_h * (k + 1)
        if k % 2 == 1:
            svg.raw(
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{table_w:.1f}" height="{row_h:.1f}" '
                'fill="#fafafa" stroke="none"/>',
                under=True,
            )
        svg.text(xs[0] + pad, y + 16, name, anchor="start")
        svg.text(xs[1] + pad, y + 16, kind, anchor="start", size=11, color="#666")
        pill_w = 1.1 * _CHAR_W * len(chosen) + 12
        svg.raw(
            f'<rect x="{xs[2] + pad - 6:.1f}" y="{y + 3:.1f}" width="{pill_w:.1f}" '
            f'height="{row_h - 6:.1f}" rx="5" fill="{_KIND_COLORS.get(kind, "#eee")}" '
            'stroke="#333" stroke-width="0.8"/>'
        )
        svg.text(xs[2] + pad, y + 16, chosen, anchor="start", weight="bold")
        svg.raw(_choices_text(xs[3] + pad, y + 16, choices, chosen))
    bottom = top + row_h * (len(shown) + 1)
    for i in range(1, 4):  # column rules
        svg.raw(
            f'<line x1="{xs[i]:.1f}" y1="{top:.1f}" x2="{xs[i]:.1f}" y2="{bottom:.1f}" '
            'stroke="#ddd"/>'
        )
    svg.raw(
        f'<rect x="{x0:.1f}" y="{top:.1f}" width="{table_w:.1f}" height="{bottom - top:.1f}" '
        'fill="none" stroke="#999"/>'
    )
    if len(rows) > len(shown):
        svg.text(x0, bottom + 16, f"... ({len(rows) - len(shown)} more)", anchor="start")
        bottom += row_h
    kinds = [k for k in _KIND_COLORS if any(r[1] == k for r in shown)]
    x = x0
    for kind in kinds:  # legend: pill colour = the decision's kind
        svg.raw(
            f'<rect x="{x:.1f}" y="{bottom + 8:.1f}" width="12" height="12" rx="2" '
            f'fill="{_KIND_COLORS[kind]}" stroke="#333" stroke-width="0.8"/>'
        )
        svg.text(x + 16, bottom + 18, kind, size=11, anchor="start")
        x += 28 + 7 * len(kind)
    return svg.render()


def architecture_svg(
    space: SearchSpace, arch: Architecture | Mapping[str, Any], *, title: str | None = None
) -> str:
    """Draw ``arch`` as a standalone SVG document.

    * RNN cell: the input, one box per node (``index: activation``) below the node it reads,
      and dashed arrows from the loose ends (bold boxes) to the averaged output.
    * Macro: the chain of layers (``index: op``) with the skip connections as arcs.
    * Micro: the normal and the reduction cell side by side; every block is two op boxes fed
      by their inputs and summed in a numbered circle; loose blocks (bold) are concatenated.
    * Other spaces (a :class:`~optuna_enas.nn.Supernet`'s, a custom one): a table with one row
      per label: its kind, the chosen candidate (in a pill coloured by kind) and all choices.

    Args:
        space: The search space.
        arch: An architecture of ``space`` or its Optuna params.
        title: A caption drawn at the top.
    """
    params = arch.to_params() if isinstance(arch, Architecture) else dict(arch)
    arch = space.architecture(params)
    if isinstance(space, RNNCellSpace):
        return _rnn_svg(space, arch, title)
    if isinstance(space, MacroSpace):
        return _macro_svg(space, arch, title)
    if isinstance(space, MicroSpace):
        return _micro_svg(space, arch, title)
    return _generic_svg(space, arch, title)


def band(runs: Sequence[Sequence[float]]) -> tuple[list[float], list[float], list[float]]:
    n = min(len(r) for r in runs)
    cols = [[float(r[i]) for r in runs] for i in range(n)]
    return [sum(c) / len(c) for c in cols], [min(c) for c in cols], [max(c) for c in cols]


def check_curves(curves: Mapping[str, Sequence[Sequence[float]]]) -> None:
    if not curves or any(not runs or any(len(r) == 0 for r in runs) for runs in curves.values()):
        raise ValueError("curves must map each name to at least one non-empty run.")


def rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def comparison_svg(
    curves: Mapping[str, Sequence[Sequence[float]]], *, metric: str, title: str
) -> str:
    """The figure of :func:`plot_comparison` as a standalone SVG (no plotly needed)."""
    check_curves(curves)
    bands = {name: band(runs) for name, runs in curves.items()}
    finite = [v for m, lo, hi in bands.values() for v in lo + hi if math.isfinite(v)]
    y_lo, y_hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    n_max = max(len(m) for m, _, _ in bands.values())
    w, h, left, right, top, bottom = 720.0, 420.0, 70.0, 190.0, 44.0, 50.0
    pw, ph = w - left - right, h - top - bottom
    svg = Svg(w, h)
    svg.text(left, 24, title, size=14, anchor="start", weight="bold")

    def sx(i: float) -> float:
        return left + (i - 1) / max(n_max - 1, 1) * pw

    def sy(v: float) -> float:
        v = min(max(v, y_lo), y_hi) if math.isfinite(v) else y_hi
        return top + (y_hi - v) / (y_hi - y_lo) * ph

    for t in nice_ticks(y_lo, y_hi):
        y = sy(t)
        svg.raw(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>',
            under=True,
        )
        svg.text(left - 6, y + 4, f"{t:g}", size=11, anchor="end")
    for t in nice_ticks(1, n_max):
        if float(t).is_integer():
            x = sx(t)
            svg.raw(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>',
                under=True,
            )
            svg.text(x, top + ph + 16, f"{int(t)}", size=11)
    svg.raw(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    svg.text(left + pw / 2, h - 12, "trials", size=12)
    svg.raw(
        f'<text x="16" y="{top + ph / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + ph / 2:.1f})">{html.escape(metric)}</text>'
    )
    for k, (name, (mean, lo, hi)) in enumerate(bands.items()):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        xs = range(1, len(mean) + 1)
        upper = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in zip(xs, hi, strict=True))
        lower = " ".join(
            f"{sx(i):.1f},{sy(v):.1f}" for i, v in reversed(list(zip(xs, lo, strict=True)))
        )
        svg.raw(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.15"/>')
        line = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in zip(xs, mean, strict=True))
        svg.raw(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = top + 10 + 22 * k
        svg.raw(
            f'<line x1="{left + pw + 14}" y1="{ly:.1f}" x2="{left + pw + 38}" y2="{ly:.1f}" '
            f'stroke="{color}" stroke-width="3"/>'
        )
        svg.text(left + pw + 44, ly + 4, f"{name} (n={len(curves[name])})", anchor="start")
    svg.text(
        left + pw + 14,
        top + 10 + 22 * len(bands) + 8,
        "line: mean, band: min-max",
        size=10,
        anchor="start",
        color="#666",
    )
    return svg.render()
