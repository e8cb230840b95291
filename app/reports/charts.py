"""Server-drawn SVG charts, pure: the geometry of a bar chart (with an optional running-share
line, for a Pareto) that templates/reports/_chart.html draws with a <title> and <desc>. No
script, no library: it prints as it shows."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 40, 12, 38


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: float
    show_label: bool


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    desc: str
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (y, text) of the value axis
    line: str | None  # polyline points of the running share (0-100 %), for a Pareto
    share_ticks: list[tuple[float, str]] | None = None  # (y, text) of the share axis on the right
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: float = HEIGHT - BOTTOM


def _nice_max(top: float) -> float:
    """The axis' top: at least 4, and a quarter of it a round number (ticks of whole units)."""
    top = max(top, 4.0)
    step = 10 ** (len(str(int(top))) - 1)
    for m in (1, 2, 4, 8, 10):
        if top <= m * step:
            return m * step
    return 10.0 * step


def bar_chart(chart_id: str, title: str, desc: str, points: Sequence[tuple[str, float | int | Decimal]],
              running: Sequence[float | Decimal] | None = None, label_every: int = 1) -> Chart:
    """Bars for (label, value) points; `running`: a cumulative share per point in percent."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max((float(v) for _, v in points), default=0.0))
    n = max(len(points), 1)
    slot = plot_w / n
    bars = []
    for i, (label, value) in enumerate(points):
        h = float(value) / top * plot_h
        bars.append(Bar(round(LEFT + i * slot + slot * 0.15, 1), round(TOP + plot_h - h, 1), round(slot * 0.7, 1),
                        round(h, 1), label, float(value), i % label_every == 0))
    ticks = [(round(TOP + plot_h - plot_h * k / 4, 1), f"{top * k / 4:g}") for k in range(5)]
    line, share_ticks = None, None
    if running is not None:
        share_ticks = [(round(TOP + plot_h - plot_h * k / 4, 1), f"{25 * k} %") for k in range(5)]
        line = " ".join(f"{round(LEFT + i * slot + slot / 2, 1)},{round(TOP + plot_h - float(v) / 100 * plot_h, 1)}"
                        for i, v in enumerate(running))
    return Chart(chart_id, title, desc, bars, ticks, line, share_ticks)
