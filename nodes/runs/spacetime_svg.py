"""The space-time diagram as a standalone SVG file: the layout's shapes (``spacetime_shapes``)
written out as they are, each message a group with its words as a tooltip (``<title>``) and its
trace as ``data-trace``. Plain text, every word escaped; any browser opens it."""
from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from nodes.runs.runfile import read_run
from nodes.runs.spacetime import LIMIT, picture_of_run
from nodes.runs.spacetime_layout import Layout, lay_out
from nodes.runs.spacetime_shapes import FONT, WHITE, Box, Dot, Item, Line, Polygon, Shape, Words


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e7 else "0"


def _dash(dash: tuple[float, ...]) -> str:
    return f' stroke-dasharray="{" ".join(_n(d) for d in dash)}"' if dash else ""


def shape_svg(shape: Shape) -> str:
    match shape:
        case Line(x1, y1, x2, y2, color, width, dash, opacity):
            fade = f' stroke-opacity="{_n(opacity)}"' if opacity < 1 else ""
            return (f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{color}" '
                    f'stroke-width="{_n(width)}"{_dash(dash)}{fade} stroke-linecap="round"/>')
        case Box(x, y, w, h, fill, opacity, stroke, dash):
            edge = f' stroke="{stroke}" stroke-width="1"{_dash(dash)}' if stroke else ""
            fade = f' fill-opacity="{_n(opacity)}"' if opacity < 1 else ""
            return f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"{fade}{edge}/>'
        case Polygon(points, fill):
            return f'<polygon points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in points)}" fill="{fill}"/>'
        case Dot(x, y, r, fill):
            return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{fill}"/>'
        case Words(x, y, w, h, text, px, color, bold, back):
            under = (f'<rect x="{_n(x - 2)}" y="{_n(y)}" width="{_n(w + 4)}" height="{_n(h)}" fill="{back}" '
                     'fill-opacity="0.85"/>' if back else "")
            weight = ' font-weight="bold"' if bold else ""
            baseline = y + h / 2 + px * 0.35  # the middle of a line of lower-case letters on the box's middle
            return (f'{under}<text x="{_n(x)}" y="{_n(baseline)}" font-size="{_n(px)}" fill="{color}"{weight}>'
                    f'{escape(text)}</text>')
    raise TypeError(f"not a shape: {shape!r}")


def item_svg(item: Item) -> str:
    trace = f" data-trace={quoteattr(item.trace)}" if item.trace else ""
    tip = f"<title>{escape(item.tip)}</title>" if item.tip else ""
    return f"<g{trace}>{tip}{''.join(shape_svg(shape) for shape in item.shapes)}</g>"


def svg(layout: Layout) -> str:
    """The whole picture as an SVG document."""
    w, h = _n(layout.width), _n(layout.height)
    title = layout.picture.title or "Space-time diagram"
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'font-family={quoteattr(FONT)}>',
        f"<title>{escape(f'{title} · {layout.picture.range_text}')}</title>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="{WHITE}"/>',
        *(item_svg(item) for item in layout.items),
        "</svg>", ""])


def write_svg(layout: Layout, path: str | Path) -> Path:
    """Write the picture to ``path`` (whole or not at all: a file half written is never left
    under the name asked for). Raises OSError when it cannot be written."""
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_text(svg(layout), encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def draw_run(path: str | Path, out: str | Path, from_s: float | None = None, to_s: float | None = None, *,
             limit: int | None = None) -> str:
    """``launcher.py spacetime``: a range of the run at ``path`` drawn to ``out``; what was written,
    in a line. Raises ``RunFileError`` (no run there), ``SpaceTimeError`` (nothing to draw) or
    OSError (``out`` cannot be written)."""
    run = read_run(path)
    picture = picture_of_run(run, from_s, to_s, limit=LIMIT if limit is None else limit)
    layout = lay_out(picture)
    write_svg(layout, out)
    shown = f"{len(picture.messages):,} messages" + (f" of {picture.total:,}" if picture.capped else "")
    faults = len(layout.bands)
    said = [f"wrote {out}: {shown}, {picture.range_text} of the run", f"{faults} fault band{'s' * (faults != 1)}",
            f"{len(layout.anomalies)} anomal{'ies' if len(layout.anomalies) != 1 else 'y'}"]
    lines = [", ".join(said)]
    if picture.capped:
        lines.append("  (narrow the range with --from and --to to draw every message)")
    if run.problem:
        lines.append(f"  note: {run.problem}")
    return "\n".join(lines)
