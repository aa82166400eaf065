"""Charts as plain shapes: the numbers of an inline SVG chart, drawn by `templates/charts.html`.

A chart module (the calibration report's, the closed-loop report's) works out
where each bar, line and label goes and returns a `Chart`; the template macro
`chart` turns it into one `<svg>` element, escaping every label. No script, no
font, no link: inline SVG in HTML needs no namespace, so a page holds no URL.
Everything is sized in the chart's own viewBox, so the page scales it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 640
INK = "#1f2933"
MUTED = "#7b8794"
BAR = "#3e7cb1"
GOOD = "#2f9e44"
BAD = "#c92a2a"
BAND = "#e6f4ea"
GRID = "#e4e7eb"


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str = BAR


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = GRID
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"  # start, middle or end
    fill: str = INK


@dataclass(frozen=True, slots=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    stroke: str = BAR


Shape = Rect | Line | Label | Polyline


@dataclass
class Chart:
    """One chart: its title (also its accessible name), height and shapes, in drawing order."""

    title: str
    height: int
    shapes: list[Shape] = field(default_factory=list)
    width: int = WIDTH

    def __post_init__(self) -> None:
        self.shapes.insert(0, Label(self.width / 2, 18, self.title))

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)
