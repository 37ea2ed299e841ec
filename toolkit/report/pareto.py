"""Pareto frontiers and inline SVG scatter plots.

The report must open offline and be archived with the run, so plots are plain SVG text built
here: no plotting library, no JavaScript, no external assets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Callable

def frontier(points: list[tuple[float, float]], maximize_y: bool = True) -> list[int]:
    """Indices of the points no other point beats: lower-or-equal x and better-or-equal y,
    strictly better in one. Returned in order of increasing x.

    Identical points are all kept (neither beats the other); points with a non-finite
    coordinate are never on the frontier.
    """
    sign = 1.0 if maximize_y else -1.0
    finite = [i for i, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)]
    order = sorted(finite, key=lambda i: (points[i][0], -sign * points[i][1]))
    on_frontier: list[int] = []
    best_y = -math.inf
    for i in order:
        y = sign * points[i][1]
        if y > best_y:
            on_frontier.append(i)
            best_y = y
        elif on_frontier and points[on_frontier[-1]] == points[i]:
            on_frontier.append(i)
    return on_frontier


def frontier_by(count: int, beats: Callable[[int, int], bool]) -> list[int]:
    """Indices (of `count` items) that no other item beats, for orders that are not plain
    coordinates: latency compared by intervals (`selection.compare_p50`), where "no measurable
    difference" is a tie that a lower p50 alone does not break."""
    return [i for i in range(count) if not any(beats(j, i) for j in range(count) if j != i)]


@dataclass(frozen=True)
class Point:
    """One marker on a scatter plot; `x_range` draws an error bar (e.g. the p50 CI)."""

    x: float
    y: float
    label: str
    tooltip: str
    color: str
    hollow: bool = False
    x_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float
    log: bool
    start: float
    length: float

    def pixel(self, value: float) -> float:
        if self.log:
            value, low, high = math.log10(value), math.log10(self.low), math.log10(self.high)
        else:
            low, high = self.low, self.high
        return self.start + (value - low) / (high - low) * self.length

    def ticks(self) -> list[float]:
        if self.log:
            first, last = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            steps = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
            return [t for t in steps if self.low <= t <= self.high]
        step = _nice_step((self.high - self.low) / 5)
        first = math.ceil(self.low / step - 1e-9)
        return [k * step for k in range(first, int(math.floor(self.high / step + 1e-9)) + 1)]


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def _axis(values: list[float], start: float, length: float, from_zero: bool,
          ceiling: float | None = None) -> _Axis:
    low, high = min(values), max(values)
    if low > 0 and high / low > 8:
        return _Axis(low / 1.3, high * 1.3, True, start, length)
    span = (high - low) or abs(high) or 1.0
    low = 0.0 if from_zero and low >= 0 else low - 0.08 * span
    high = high + 0.08 * span
    step = _nice_step((high - low) / 5)
    top = math.ceil(high / step) * step
    if ceiling is not None:
        top = min(top, max(ceiling, max(values)))  # accuracy never exceeds 100%
    return _Axis(math.floor(low / step) * step, top, False, start, length)


def _tick_text(value: float) -> str:
    return f"{value:.4g}"


def scatter_svg(points: list[Point], title: str, x_label: str, y_label: str,
                frontier_indices: list[int], width: int = 460, height: int = 320) -> str:
    """An SVG scatter plot; frontier points are joined by a step line and labelled.

    Every marker carries a <title> tooltip. The x axis starts at zero unless the values span
    more than 8×, where a log scale keeps small artifacts from collapsing onto the axis.
    """
    left, right, top, bottom = 58, 18, 30, 46
    if not points:
        return (f'<svg class="plot" viewBox="0 0 {width} {height}" role="img">'
                f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
                f'{escape(title)}: nothing measured</text></svg>')
    xs = [v for p in points for v in ((p.x,) + (p.x_range or ()))]
    x_axis = _axis(xs, left, width - left - right, from_zero=True)
    y_axis = _axis([p.y for p in points], height - bottom, -(height - top - bottom), False, ceiling=100.0)
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text class="plot-title" x="{left}" y="18">{escape(title)}</text>']
    parts += _grid(x_axis, y_axis, left, top, width - right, height - bottom)
    parts.append(f'<text class="axis-label" x="{(left + width - right) / 2}" y="{height - 8}" '
                 f'text-anchor="middle">{escape(x_label)}{" (log scale)" if x_axis.log else ""}'
                 f'</text>')
    parts.append(f'<text class="axis-label" transform="translate(14 {(top + height - bottom) / 2})'
                 f' rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    frontier_indices = sorted(frontier_indices, key=lambda i: points[i].x)
    ordered = [points[i] for i in frontier_indices]
    if len(ordered) > 1:
        steps = []
        for previous, current in zip(ordered, ordered[1:]):
            steps.append(f"{x_axis.pixel(current.x):.1f},{y_axis.pixel(previous.y):.1f}")
            steps.append(f"{x_axis.pixel(current.x):.1f},{y_axis.pixel(current.y):.1f}")
        first = f"{x_axis.pixel(ordered[0].x):.1f},{y_axis.pixel(ordered[0].y):.1f}"
        parts.append(f'<polyline class="frontier-line" points="{first} {" ".join(steps)}"/>')
    rank = {index: order for order, index in enumerate(frontier_indices)}
    for index, point in enumerate(points):
        parts.append(_marker(point, x_axis, y_axis, rank.get(index)))
    parts.append("</svg>")
    return "".join(parts)


def _grid(x_axis: _Axis, y_axis: _Axis, left: float, top: float, right: float,
          bottom: float) -> list[str]:
    parts = []
    for tick in x_axis.ticks():
        px = x_axis.pixel(tick)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}"/>'
                     f'<text class="tick" x="{px:.1f}" y="{bottom + 16}" text-anchor="middle">'
                     f'{_tick_text(tick)}</text>')
    for tick in y_axis.ticks():
        py = y_axis.pixel(tick)
        parts.append(f'<line class="grid" x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">'
                     f'{_tick_text(tick)}</text>')
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" '
                 f'height="{bottom - top}"/>')
    return parts


def _marker(point: Point, x_axis: _Axis, y_axis: _Axis, frontier_rank: int | None) -> str:
    """A marker with tooltip; frontier markers get a dark ring and a label that alternates
    above/below (neighbours on the frontier are close) and flips left near the right edge."""
    px, py = x_axis.pixel(point.x), y_axis.pixel(point.y)
    on_frontier = frontier_rank is not None
    parts = ['<g class="point' + (' on-frontier' if on_frontier else '') + '">']
    if point.x_range:
        lo, hi = (x_axis.pixel(v) for v in point.x_range)
        parts.append(f'<line class="ci" x1="{lo:.1f}" y1="{py:.1f}" x2="{hi:.1f}" y2="{py:.1f}" '
                     f'stroke="{point.color}"/>')
    if on_frontier:
        parts.append(f'<circle class="ring" cx="{px:.1f}" cy="{py:.1f}" r="8.5"/>')
    fill = "#fff" if point.hollow else point.color
    parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{5.5 if on_frontier else 4.5}" '
                 f'fill="{fill}" stroke="{point.color}"><title>{escape(point.tooltip)}</title>'
                 f'</circle>')
    if on_frontier:
        near_right = px > x_axis.start + 0.7 * x_axis.length
        lx, anchor = (px - 11, "end") if near_right else (px + 11, "start")
        ly = py - 10 if frontier_rank % 2 == 0 else py + 18
        parts.append(f'<text class="point-label" x="{lx:.1f}" y="{ly:.1f}" '
                     f'text-anchor="{anchor}">{escape(point.label)}</text>')
    parts.append("</g>")
    return "".join(parts)
