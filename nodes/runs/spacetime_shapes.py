"""The shapes the space-time diagram is made of (``spacetime_layout`` places them; the SVG writer
and the window's view draw them, and nothing else): lines, boxes, arrowheads, dots and words in
pixels, grouped in items a person can point at; its colours and font sizes; and measuring words
without a font at hand."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nodes.core.vocabulary import HealthState
from nodes.observe.arrows import AnswerOutcome

#: Font sizes in pixels at scale 1.
TITLE_PX, TEXT_PX, LABEL_PX, NAME_PX = 16.0, 11.5, 10.5, 13.0
FONT = "DejaVu Sans, Segoe UI, Helvetica, Arial, sans-serif"

TEXT, MUTED, LIFELINE, GRID, WHITE = "#0f172a", "#64748b", "#cbd5e1", "#eef2f7", "#ffffff"
REQUEST = "#1d4ed8"
OUTCOME_COLORS = {AnswerOutcome.OK: "#15803d", AnswerOutcome.OUT_OF_STOCK: "#b45309",
                  AnswerOutcome.CONFLICT: "#c2410c", AnswerOutcome.NOT_FOUND: "#334155",
                  AnswerOutcome.UNKNOWN: "#6d28d9", AnswerOutcome.FAILED: "#b91c1c"}
ANOMALY = "#be185d"
NOTE = "#92400e"
CUT = "#7c3aed"
FAULT_COLORS = {HealthState.DOWN: "#dc2626", HealthState.EXITED: "#dc2626", HealthState.HUNG: "#d97706",
                HealthState.SLOW: "#d97706", HealthState.CUT_OFF: CUT, HealthState.STARTING: "#2563eb"}

Measure = Callable[[str, float, bool], float]


def rough_width(text: str, px: float, bold: bool = False) -> float:
    """Words' width without a font at hand (the SVG's reader picks the font): a little wide."""
    return len(text) * px * (0.64 if bold else 0.6)


# ---- shapes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    color: str
    width: float
    dash: tuple[float, ...] = ()  # on and off lengths, in pixels
    opacity: float = 1.0


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    fill: str
    opacity: float = 1.0
    stroke: str | None = None
    dash: tuple[float, ...] = ()


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]
    fill: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float
    fill: str


@dataclass(frozen=True)
class Words:
    """Words in a box (``x``, ``y`` its top left, ``w`` × ``h``), left-aligned and centred
    vertically, on ``back`` when given."""

    x: float
    y: float
    w: float
    h: float
    text: str
    px: float
    color: str
    bold: bool = False
    back: str | None = None


Shape = Line | Box | Polygon | Dot | Words


@dataclass(frozen=True)
class Item:
    """Shapes a person can point at as one: a message (its ``trace`` is what a click chooses),
    a band, an anomaly; ``tip`` says what it is."""

    shapes: tuple[Shape, ...]
    tip: str = ""
    trace: str | None = None


def fit_text(text: str, px: float, width: float, measure: Measure, bold: bool = False) -> str:
    """``text``, cut short with "…" to fit ``width`` ("" when not even a letter does)."""
    if measure(text, px, bold) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if measure(text[:mid].rstrip() + "…", px, bold) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "…" if low else ""


def wrap(text: str, px: float, width: float, measure: Measure, bold: bool = False) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and measure(lines[-1] + " " + word, px, bold) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines
