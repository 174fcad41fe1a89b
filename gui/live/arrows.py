"""The messages on their way, drawn over the still picture each animation frame: an arrow head
per message in its outcome's colour (requests blue), pointing where it goes, and a label with
what it says, kept as a small picture since the same few labels go by thirty times a second.
When more than ten are on their way only the newest on each link is labelled; a label goes
where it covers no node's words, no caption and no other label (``layout.place_labels``), or
is left out."""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap

from gui.common import COLORS
from gui.live.layout import Layout, place_labels, position
from gui.live.painter import OUTCOME_COLORS, scaled_font
from gui.live.schedule import Flight
from nodes.observe.arrows import AnswerOutcome, ArrowKind

LABEL_PX = 12  # message labels at scale 1; 18 px at the presenter's 1.5
#: More messages on their way than this, and only the newest on each link is labelled.
ALL_LABELLED = 10
#: Labels kept before the cache starts again.
MAX_LABELS = 400


def short_text(text: str, limit: int = 34) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis saying so."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label_font(base: QFont, scale: float) -> QFont:
    return scaled_font(base, LABEL_PX, scale, bold=True)


class Labels:
    """Message labels as pictures, drawn once for each text, colour and scale: text is the
    dearest thing to draw."""

    def __init__(self) -> None:
        self._drawn: dict[tuple[str, str, bool, float, float, str], QPixmap] = {}

    def get(self, text: str, color: QColor, answer: bool, base: QFont, scale: float, ratio: float) -> QPixmap:
        key = (text, color.name(), answer, scale, ratio, base.key())
        label = self._drawn.get(key)
        if label is not None:
            return label
        if len(self._drawn) > MAX_LABELS:
            self._drawn.clear()
        label = self._draw(text, color, answer, label_font(base, scale), ratio)
        self._drawn[key] = label
        return label

    @staticmethod
    def _draw(text: str, color: QColor, answer: bool, font: QFont, ratio: float) -> QPixmap:
        metrics = QFontMetricsF(font)
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        label = QPixmap((box.size() + QSizeF(2, 2)).toSize() * ratio)
        label.setDevicePixelRatio(ratio)
        label.fill(Qt.GlobalColor.transparent)
        painter = QPainter(label)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setFont(font)
        box.translate(1, 1)
        painter.setPen(QPen(color, 1.5))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(color.darker(130) if answer else QColor(COLORS["text"]))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        return label


def draw_flights(painter: QPainter, shown: Sequence[Flight], now: float, layout: Layout, bounds: QRectF,
                 labels: Labels, base: QFont, ratio: float, blamed: Collection[str] = ()) -> list[int]:
    """Draw the flights ``shown`` at ``now`` on a picture of ``bounds``; returns the numbers of
    the messages drawn on their way (neither at their start nor at their end). A message of a
    request a checker ``blamed`` for an anomaly (a recorded run) is ringed in the anomaly's colour."""
    scale = layout.text_scale
    moving: list[int] = []
    for flight in shown:
        message = flight.message
        point, angle = position(layout.paths, message.source, message.target, flight.progress(now))
        if 0 < flight.progress(now) < 1:
            moving.append(message.number)
        ringed = message.trace is not None and message.trace in blamed
        painter.setPen(QPen(QColor(COLORS["anomaly"]), 4) if ringed else QPen(QColor("#ffffff"), 2))
        painter.setBrush(_color(flight))
        painter.drawPath(_head(point, angle, 7 * scale))
    labelled = _labelled(shown)
    pictures = [labels.get(short_text(f.message.text), _color(f), f.message.kind == ArrowKind.ANSWER, base, scale,
                           ratio) for f in labelled]
    spots = _spots(labelled, [p.deviceIndependentSize() for p in pictures], now, layout, bounds)
    for spot, picture in zip(spots, pictures, strict=True):
        if spot is not None:
            painter.drawPixmap(spot.topLeft(), picture)
    return moving


def label_rects(shown: Sequence[Flight], now: float, layout: Layout, bounds: QRectF, base: QFont) -> list[QRectF]:
    """Where ``draw_flights`` puts the labels of ``shown`` (what the tests check the geometry of)."""
    metrics = QFontMetricsF(label_font(base, layout.text_scale))
    labelled = _labelled(shown)
    sizes = [QSizeF(metrics.horizontalAdvance(short_text(f.message.text)) + 12, metrics.height() + 6)
             for f in labelled]
    return [spot for spot in _spots(labelled, sizes, now, layout, bounds) if spot is not None]


def _labelled(shown: Sequence[Flight]) -> list[Flight]:
    """The flights that get a label: all, or with many on their way the newest on each link."""
    if len(shown) <= ALL_LABELLED:
        return list(shown)
    newest = {id(f) for f in {(f.message.source, f.message.target): f for f in shown}.values()}
    return [f for f in shown if id(f) in newest]


def _spots(labelled: Sequence[Flight], sizes: Sequence[QSizeF], now: float, layout: Layout,
           bounds: QRectF) -> list[QRectF | None]:
    """Where each label goes; the newest placed first, so that when there is no room for every
    label the newest keeps its own."""
    anchors = [(position(layout.paths, f.message.source, f.message.target, f.progress(now))[0], size)
               for f, size in zip(labelled, sizes, strict=True)]
    return place_labels(anchors[::-1], layout.obstacles(), bounds.adjusted(2, 2, -2, -2))[::-1]


def _color(flight: Flight) -> QColor:
    return QColor(OUTCOME_COLORS.get(flight.message.outcome, OUTCOME_COLORS[AnswerOutcome.FAILED]))


def _head(point: QPointF, angle: float, radius: float) -> QPainterPath:
    """An arrow head at ``point`` pointing along ``angle``."""
    head = QPainterPath(point + QPointF(math.cos(angle), math.sin(angle)) * radius * 1.5)
    head.lineTo(point + QPointF(math.cos(angle + 2.4), math.sin(angle + 2.4)) * radius)
    head.lineTo(point + QPointF(math.cos(angle - 2.4), math.sin(angle - 2.4)) * radius)
    head.closeSubpath()
    return head
