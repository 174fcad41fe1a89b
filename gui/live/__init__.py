"""The Live screen, one module per concern (docs/architecture.md): ``layout`` (where nodes and
links sit), ``schedule`` (when each message is drawn on its way), ``painter`` (the still
picture: nodes and links) and ``arrows`` (the messages on their way), ``menus`` (what can be
done to a node), ``canvas`` (the widget that wires Qt's events to them) and ``screen`` (the
Live tab around the canvas)."""
from gui.live.canvas import LiveCanvas
from gui.live.schedule import Flight
from gui.live.screen import LiveView

__all__ = ["Flight", "LiveCanvas", "LiveView"]
