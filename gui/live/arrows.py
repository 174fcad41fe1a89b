"""The messages on their way, drawn over the still picture each animation frame: an arrow head
per message in its outcome's colour (requests blue), pointing where it goes, and a label with
what it says, kept as a small picture since the same few labels go by thirty times a second.
When more than ten are on their way only the newest on each link is labelled."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap

from gui.common import COLORS
from gui.live.layout import position
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


def draw_flights(painter: QPainter, shown: Sequence[Flight], now: float, paths: Mapping[tuple[str, str], QPainterPath],
                 width: int, labels: Labels, base: QFont, scale: float, ratio: float) -> list[int]:
    """Draw the flights ``shown`` at ``now`` on a picture ``width`` wide; returns the numbers
    of the messages drawn on their way (neither at their start nor at their end)."""
    newest: dict[tuple[str, str], Flight] = {}
    for flight in shown:
        newest[(flight.message.source, flight.message.target)] = flight
    labelled = set(map(id, newest.values())) if len(shown) > ALL_LABELLED else set(map(id, shown))
    moving: list[int] = []
    to_label: list[tuple[QPointF, Flight, QColor]] = []
    for flight in shown:
        message = flight.message
        point, angle = position(paths, message.source, message.target, flight.progress(now))
        if 0 < flight.progress(now) < 1:
            moving.append(message.number)
        color = QColor(OUTCOME_COLORS.get(message.outcome, OUTCOME_COLORS[AnswerOutcome.FAILED]))
        painter.setPen(QPen(QColor("#ffffff"), 2))
        painter.setBrush(color)
        painter.drawPath(_head(point, angle, 7 * scale))
        if id(flight) in labelled:
            to_label.append((point, flight, color))
    for point, flight, color in to_label:
        answer = flight.message.kind == ArrowKind.ANSWER
        label = labels.get(short_text(flight.message.text), color, answer, base, scale, ratio)
        size = label.deviceIndependentSize()
        x = min(max(2.0, point.x() + 9), width - size.width() - 2)
        y = max(2.0, point.y() - size.height() - 2)
        painter.drawPixmap(QPointF(x, y), label)
    return moving


def _head(point: QPointF, angle: float, radius: float) -> QPainterPath:
    """An arrow head at ``point`` pointing along ``angle``."""
    head = QPainterPath(point + QPointF(math.cos(angle), math.sin(angle)) * radius * 1.5)
    head.lineTo(point + QPointF(math.cos(angle + 2.4), math.sin(angle + 2.4)) * radius)
    head.lineTo(point + QPointF(math.cos(angle - 2.4), math.sin(angle - 2.4)) * radius)
    head.closeSubpath()
    return head
