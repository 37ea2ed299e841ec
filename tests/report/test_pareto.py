import math
import random
import re

import pytest

from toolkit.report.pareto import Point, frontier, scatter_svg


@pytest.mark.parametrize("points, expected", [
    ([], []),
    ([(1.0, 0.9)], [0]),
    ([(1.0, 0.9), (2.0, 0.95), (3.0, 0.94), (0.5, 0.5)], [3, 0, 1]),  # (3, .94) beaten by (2, .95)
    ([(1.0, 0.9), (1.0, 0.8)], [0]),                                  # same x, less accurate
    ([(1.0, 0.9), (2.0, 0.9)], [0]),                                  # same accuracy, slower
    ([(1.0, 0.9), (1.0, 0.9)], [0, 1]),                               # identical: both kept
    ([(math.nan, 0.99), (1.0, 0.5), (0.1, math.inf)], [1]),          # non-finite never on it
])
def test_frontier_hand_cases(points, expected):
    assert frontier(points) == expected


def test_frontier_minimizing_y():
    assert frontier([(1.0, 5.0), (2.0, 3.0), (3.0, 4.0)], maximize_y=False) == [0, 1]


def _dominated(point, others):
    return any(o[0] <= point[0] and o[1] >= point[1] and o != point for o in others)


@pytest.mark.parametrize("seed", range(20))
def test_frontier_matches_brute_force(seed):
    rng = random.Random(seed)
    # Coarse grid so ties in x, in y and exact duplicates all occur.
    points = [(rng.randint(0, 8) / 4, rng.randint(0, 8) / 8) for _ in range(rng.randint(1, 30))]
    result = frontier(points)
    assert set(result) == {i for i, p in enumerate(points) if not _dominated(p, points)}
    xs = [points[i][0] for i in result]
    ys = [points[i][1] for i in result]
    assert xs == sorted(xs) and ys == sorted(ys)  # faster → slower means less → more accurate


def _points(xs, ys):
    return [Point(x, y, f"p{i}", f"tip {i} <&>", "#d1495b", hollow=i % 2 == 1)
            for i, (x, y) in enumerate(zip(xs, ys))]


def test_scatter_svg_draws_every_point_with_a_tooltip_and_labels_the_frontier():
    points = _points([0.03, 0.05, 0.07, 0.06], [94.0, 95.5, 96.0, 95.0])
    front = frontier([(p.x, p.y) for p in points])
    svg = scatter_svg(points, "cpu: accuracy vs latency", "p50 (ms)", "accuracy (%)", front)
    assert front == [0, 1, 2]
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<title>tip") == 4 and "tip 3 &lt;&amp;&gt;" in svg
    assert len(re.findall(r'class="ring"', svg)) == 3
    labels = re.findall(r'class="point-label"[^>]*>([^<]+)<', svg)
    assert labels == ["p0", "p1", "p2"]
    assert svg.count("<polyline") == 1
    assert 'fill="#fff"' in svg  # hollow markers for the odd points
    assert "log scale" not in svg


def test_scatter_svg_uses_log_scale_for_wide_ranges_and_keeps_points_inside():
    points = _points([2.0, 40.0, 400.0], [90.0, 93.0, 96.0])
    svg = scatter_svg(points, "size", "gzip KB", "accuracy (%)", [0, 1, 2], width=400, height=300)
    assert "gzip KB (log scale)" in svg
    for cx, cy in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="5.5"', svg):
        assert 58 <= float(cx) <= 400 - 18 and 30 <= float(cy) <= 300 - 46


def test_scatter_svg_without_points_says_so():
    assert "nothing measured" in scatter_svg([], "gpu", "x", "y", [])
