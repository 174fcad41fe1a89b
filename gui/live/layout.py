"""Where the Live picture puts things: the nodes as the documentation figures place them (the
shopper and the front-end on the left, catalog replicas in a row on top, order replicas in a
row below), each node's clickable box, and the links between them as paths a message moves
along. Pure functions of the canvas's size and the presenter scale: no painting."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

#: Where the rows of replicas start, as a share of the width (the captions start there too).
ROWS_LEFT = 0.30
#: The heights of the catalog row and the order row, as shares of the height.
CATALOG_Y = 0.27
ORDER_Y = 0.80
#: The shopper and the front-end: across, as shares of the width; their height's share.
CLIENT_X = 0.05
FRONTEND_X = 0.18
ENTRY_Y = 0.52


@dataclass
class Layout:
    """The picture's geometry at one size and scale."""

    icon: int = 0
    centers: dict[str, QPointF] = field(default_factory=dict)
    boxes: dict[str, QRectF] = field(default_factory=dict)
    paths: dict[tuple[str, str], QPainterPath] = field(default_factory=dict)


def icon_height(height: int, scale: float) -> int:
    """A node's icon: 64 px at scale 1, never taller than a seventh of the picture, nor under 34."""
    return int(max(34, min(64 * scale, height * 0.14)))


def lay_out(width: int, height: int, scale: float, catalogs: Sequence[str], orders: Sequence[str],
            catalog_of: Mapping[str, str]) -> Layout:
    """The geometry for a picture ``width`` by ``height`` at ``scale``; ``catalog_of`` says
    which catalog replica each order replica uses (a link is drawn between them)."""
    w, h = width, height
    icon = icon_height(height, scale)
    left, right = ROWS_LEFT * w, w - 8
    centers = {"client": QPointF(CLIENT_X * w, ENTRY_Y * h), "frontend": QPointF(FRONTEND_X * w, ENTRY_Y * h)}
    for row, y in ((catalogs, CATALOG_Y * h), (orders, ORDER_Y * h)):
        slot = (right - left) / max(1, len(row))
        for i, name in enumerate(row):
            centers[name] = QPointF(left + slot * i + icon * 0.5 + 6, y)
    text_width = max(90.0, (right - left) / max(1, len(catalogs), len(orders)) - icon - 14)
    boxes = {name: _box(name, center, icon, scale, text_width) for name, center in centers.items()}
    layout = Layout(icon, centers, boxes)
    layout.paths = _links(layout, scale, catalogs, orders, catalog_of)
    return layout


def _box(name: str, center: QPointF, icon: int, scale: float, text_width: float) -> QRectF:
    """Where a click chooses ``name``: its icon, and its caption below (entry nodes) or beside
    (replicas)."""
    half = icon * 0.4
    if name in ("client", "frontend"):
        return QRectF(center.x() - max(half, 46), center.y() - icon / 2, 2 * max(half, 46), icon + 44 * scale)
    return QRectF(center.x() - half, center.y() - icon / 2, 2 * half + 8 + text_width, max(icon, 64 * scale))


def _links(layout: Layout, scale: float, catalogs: Sequence[str], orders: Sequence[str],
           catalog_of: Mapping[str, str]) -> dict[tuple[str, str], QPainterPath]:
    """Every link a message can take, keyed (one end, other end): shopper to front-end, the
    front-end to every replica, each order replica to its catalog, and arcs between catalogs."""
    centers, icon = layout.centers, layout.icon

    def top(n: str) -> QPointF:
        return QPointF(centers[n].x(), centers[n].y() - icon / 2)

    def bottom(n: str) -> QPointF:
        return QPointF(centers[n].x(), centers[n].y() + icon / 2)

    paths: dict[tuple[str, str], QPainterPath] = {}
    front = centers["frontend"]
    paths[("client", "frontend")] = _line(QPointF(centers["client"].x() + icon * 0.4, front.y()),
                                          QPointF(front.x() - icon * 0.4, front.y()))
    for name in catalogs:
        paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() - icon * 0.2), bottom(name))
    for name in orders:
        paths[("frontend", name)] = _line(QPointF(front.x() + icon * 0.4, front.y() + icon * 0.2), top(name))
        catalog = catalog_of.get(name)
        if catalog is not None and catalog in centers:
            paths[(name, catalog)] = _line(top(name) + QPointF(icon * 0.2, 0), bottom(catalog) + QPointF(icon * 0.2, 0))
    for i, a in enumerate(catalogs):
        for j in range(i + 1, len(catalogs)):
            b = catalogs[j]
            lift = (14 + 16 * (j - i)) * min(scale, 1.3)
            start, end = top(a) + QPointF(icon * 0.15, 0), top(b) - QPointF(icon * 0.15, 0)
            path = QPainterPath(start)
            path.cubicTo(start - QPointF(0, lift * 1.6), end - QPointF(0, lift * 1.6), end)
            paths[(a, b)] = path
    return paths


def _line(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    path.lineTo(b)
    return path


def has_link(paths: Mapping[tuple[str, str], QPainterPath], source: str, target: str) -> bool:
    """Whether a message from ``source`` to ``target`` can be drawn (links go both ways)."""
    return (source, target) in paths or (target, source) in paths


def position(paths: Mapping[tuple[str, str], QPainterPath], source: str, target: str,
             progress: float) -> tuple[QPointF, float]:
    """Where a message from ``source`` to ``target`` is when ``progress`` (0 to 1) of its way is
    done, and the angle it points in; kept just off both ends, so it never hides under an icon."""
    path = paths.get((source, target))
    p = progress
    if path is None:
        path, p = paths[(target, source)], 1 - p
        ahead = -1
    else:
        ahead = 1
    p = min(0.97, max(0.03, p))
    point = path.pointAtPercent(p)
    nudge = path.pointAtPercent(min(1.0, max(0.0, p + 0.01 * ahead)))
    return point, math.atan2(nudge.y() - point.y(), nudge.x() - point.x())


def node_at(boxes: Mapping[str, QRectF], point: QPointF) -> str | None:
    """The node whose box (with a small margin) holds ``point``; the shopper is not a node."""
    for name, box in boxes.items():
        if name != "client" and box.adjusted(-6, -6, 6, 6).contains(point):
            return name
    return None
