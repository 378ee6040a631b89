"""Bar charts drawn on the server as inline SVG geometry: no chart library, no CDN.

:func:`bar_chart` turns labelled values into bars (and an optional second, overlaid series, such
as the failed share of the answers) scaled into a fixed view box; the template draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 180
AXIS = 16  # room under the bars for the first and last labels


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    width: float
    y: float
    height: float
    overlay_value: float = 0.0
    overlay_y: float = 0.0
    overlay_height: float = 0.0


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    maximum: float
    width: int = WIDTH
    height: int = HEIGHT
    axis: int = AXIS

    @property
    def baseline(self) -> int:
        return self.height - self.axis

    @property
    def empty(self) -> bool:
        return not any(b.value for b in self.bars)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    overlay: Sequence[float] | None = None,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> BarChart:
    """Vertical bars for ``values`` (one per label, left to right), scaled so that the largest
    fills the plot; ``overlay`` (each at most its value) is drawn over the bottom of its bar."""
    if len(labels) != len(values) or (overlay is not None and len(overlay) != len(values)):
        raise ValueError("labels, values and overlay must have the same length")
    plot = height - AXIS
    maximum = max(values, default=0) or 1
    slot = width / max(len(values), 1)
    gap = min(slot * 0.2, 4.0)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_height = plot * value / maximum
        extra = min(overlay[i], value) if overlay is not None else 0.0
        extra_height = plot * extra / maximum
        bars.append(
            Bar(
                label=label,
                value=value,
                x=round(i * slot + gap / 2, 2),
                width=round(max(slot - gap, 1.0), 2),
                y=round(plot - bar_height, 2),
                height=round(bar_height, 2),
                overlay_value=extra,
                overlay_y=round(plot - extra_height, 2),
                overlay_height=round(extra_height, 2),
            )
        )
    return BarChart(tuple(bars), float(max(values, default=0)), width, height)
