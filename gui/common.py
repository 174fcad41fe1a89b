"""What every view shares: colours, Bazar's icons, a thread-safe bridge from the supervisor,
and a way to run a coroutine from a click with its errors shown, never swallowed."""
from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Coroutine
from functools import lru_cache
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QLabel

ASSETS = Path(__file__).resolve().parent.parent / "assets"

COLORS = {
    "text": "#0f172a",
    "muted": "#64748b",
    "line": "#cbd5e1",
    "accent": "#2563eb",
    "up": "#16a34a",
    "starting": "#2563eb",
    "down": "#dc2626",
    "exited": "#dc2626",
    "hung": "#d97706",
    "slow": "#d97706",
    "cut": "#7c3aed",
    "stale": "#fef3c7",
    "valid": "#dcfce7",
    "lookup": "#2563eb",
    "search": "#9333ea",
    "buy": "#059669",
}
OUTCOME_STYLE = {
    "bought": ("#dcfce7", "#166534"),
    "out of stock": ("#fef3c7", "#92400e"),
    "book unknown": ("#fee2e2", "#991b1b"),
    "invalid": ("#fee2e2", "#991b1b"),
    "unreachable": ("#fee2e2", "#991b1b"),
    "unknown": ("#ede9fe", "#5b21b6"),
}


def stylesheet() -> str:
    return (ASSETS / "bazar.qss").read_text(encoding="utf-8")


def role_of(name: str) -> str:
    return "frontend" if name == "frontend" else name.rstrip("0123456789")


@lru_cache(maxsize=64)
def node_icon(role: str, height: int = 64, crossed: bool = False, faded: bool = False) -> QPixmap:
    """Bazar's server icon for a role, optionally crossed out (down) or faded."""
    width = int(height * 0.8)
    pixmap = QPixmap(width, height)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if faded:
        painter.setOpacity(0.35)
    QSvgRenderer(str(ASSETS / "icons" / f"{role}.svg")).render(painter, QRectF(0, 0, width, height))
    if crossed:
        painter.setOpacity(1.0)
        painter.setPen(QPen(QColor("#111827"), max(3, height // 14), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        margin = height * 0.08
        painter.drawLine(QRectF(margin, margin, width - 2 * margin, height - 2 * margin).topLeft(),
                         QRectF(margin, margin, width - 2 * margin, height - 2 * margin).bottomRight())
        painter.drawLine(QRectF(margin, margin, width - 2 * margin, height - 2 * margin).topRight(),
                         QRectF(margin, margin, width - 2 * margin, height - 2 * margin).bottomLeft())
    painter.end()
    return pixmap


def status_color(status: str) -> str:
    if status.startswith("exited"):
        return COLORS["exited"]
    if "cut off" in status:
        return COLORS["cut"]
    if "slowed" in status:
        return COLORS["slow"]
    return COLORS.get(status.split(",")[0], COLORS["muted"])


def pill(text: str, color: str) -> str:
    """Rich text for a small coloured status label."""
    return (f'<span style="background:{color}; color:white; font-weight:700; padding:2px 8px; '
            f'border-radius:8px;">&nbsp;{text}&nbsp;</span>')


def label(text: str = "", *, name: str | None = None, wrap: bool = False) -> QLabel:
    widget = QLabel(text)
    if name:
        widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


class SupervisorBridge(QObject):
    """The supervisor calls its listeners from process-reader threads; this turns each call
    into a Qt signal delivered on the GUI thread."""

    node_changed = Signal(str)

    def __call__(self, node: Any) -> None:
        self.node_changed.emit(node.name)


def spawn(coro: Coroutine[Any, Any, Any], report: Callable[[str], None],
          done: Callable[[Any], None] | None = None) -> asyncio.Task:
    """Run ``coro`` on the window's loop; show any error through ``report``."""
    task = asyncio.ensure_future(coro)

    def finished(t: asyncio.Task) -> None:
        if t.cancelled():
            return
        error = t.exception()
        if error is not None:
            report(f"{error.__class__.__name__}: {error}")
            traceback.print_exception(error)
        elif done is not None:
            done(t.result())

    task.add_done_callback(finished)
    return task
