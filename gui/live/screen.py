"""The Live tab around the picture: the class controls (load, teaching speed, pause and step)
above it, a shop row (look up, buy, two buyers, restock) below it, and beside it the latency
chart with a line at every fault and heal and the front-end's caches. A view of the model;
every action goes to the controller. While paused the model keeps every message: Step and Back
go through them one at a time in causal order (a message after the one that caused it, an
answer after every hop it waited for: ``nodes.observe.arrows.step_order``), and Resume draws
what happened meanwhile."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent, QShowEvent, QTextDocumentFragment
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

from gui.books import FEW_BOOKS, BookChooser
from gui.cache import CachePanel
from gui.charts import LatencyChart, load_controls, toggle_load
from gui.common import ModelEvents, label, spawn
from gui.live.canvas import LiveCanvas
from gui.live.schedule import MAX_TRACES
from gui.live.stepping import PauseAndStep
from nodes.observe.arrows import Arrow
from nodes.observe.model import ClusterModel

if TYPE_CHECKING:
    from nodes.session.actions import Controller
    from nodes.session.session import ClusterSession
    from nodes.session.shop import BuyOutcome

#: Teaching speeds offered (ms each message is held); 0 is full speed.
PACES = (0, 100, 250, 500, 1000, 2000)
CHART_REDRAW_S = 0.5
#: The caches' titles on the Live screen, short so that both fit beside the chart at 150 %.
CACHE_TITLES = {"lookup": "Lookup cache", "search": "Search cache"}


class LiveView(PauseAndStep, QWidget):
    """The Live tab: the canvas, the class controls, the shop row, the chart and the caches."""

    def __init__(self, model: ClusterModel, session: ClusterSession, controller: Controller, events: ModelEvents,
                 report: Callable[[str], None], say: Callable[[str], None]) -> None:
        super().__init__()
        self.model = model
        self.session = session  # the load generator is the session's, not the model's
        self.controller = controller
        self.report = report
        self.say = say
        self.seen = 0  # the last message taken from the model
        self.paused_at: int | None = None  # the message count when paused
        self._told: tuple[int, int] | None = None  # the book and seq the answer line's stock is of
        #: While paused: the messages stepped to so far, in the order shown, and where Back and
        #: Step have got to among them (1 is the first; 0 before the first step).
        self.told: list[Arrow] = []
        self.position = 0
        #: (trace, span) of the requests and calls sent before the pause: causes already shown;
        #: and the traces whose shopper's request was.
        self._known: set[tuple[str | None, str | None]] = set()
        self._entered: set[str | None] = set()
        #: The message count and the time when a step last found nothing to show (every message
        #: left waits for its cause): Step stays off until more come, or a moment has passed.
        self._stuck_at: tuple[int, float] | None = None
        self._chart_drawn = 0.0
        self._caches_drawn = 0.0
        self.books = session.books
        #: Set while the window shows a recording (a replay, or the live cluster rewound): Step
        #: reads the recording on until the next message's cause has been heard of.
        self.reads_on: Callable[[int], None] | None = None
        self.showing: str | None = None  # "replay" or "rewound": what the status line says

        self.canvas = LiveCanvas(model, controller, report)
        self._skipped_at_tick = 0
        self.chart = LatencyChart(model, "Latency, faults and heals", legend_columns=2)
        self.chart.setMinimumHeight(150)
        self.caches = {name: CachePanel(name, compact=True) for name in ("lookup", "search")}
        for panel in self.caches.values():
            panel.entries.setMinimumHeight(40)
        self._class_controls()
        self._shop_row()
        self._lay_out()
        self._connect(events)
        self._controls()

    def _class_controls(self) -> None:
        """Load, teaching speed, pause and step, and the line that says what is drawn."""
        self.load_button, self.rate = load_controls(20)
        self.pace = QComboBox()
        for ms in PACES:
            self.pace.addItem("full speed" if ms == 0 else f"hold {ms} ms", ms)
        self.pace.setAccessibleName("Teaching speed: how long every node holds each message it sends")
        self.pace.setToolTip("Every node holds each message it sends this long, so a class can follow it. "
                             "Timeouts grow with it, so slowness is not taken for an outage.")
        self.pause_button = QPushButton("Pause")
        self.back_button = QPushButton("◀ Back")
        self.step_button = QPushButton("Step ▶")
        self.status = label("", name="Muted")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setTextFormat(Qt.TextFormat.RichText)

    def _shop_row(self) -> None:
        """A book, and what a shopper or the shop keeper can do with it."""
        self.book = BookChooser(self.books, lambda book: f"Book {book.id}" if len(self.books) <= FEW_BOOKS
                                else f"Book {book.id}: {book.title}", width=24, tooltips=True)
        self.lookup_button = QPushButton("Look up")
        self.buy_button = QPushButton("Buy")
        self.buy_button.setObjectName("Primary")
        self.two_button = QPushButton("Two buyers")
        self.two_button.setToolTip("Two buys of this book at the same moment")
        self.copies = QSpinBox()
        self.copies.setRange(0, 1000)
        self.copies.setValue(self.books[min(1, len(self.books) - 1)].quantity)
        self.copies.setPrefix("to ")
        self.copies.setAccessibleName("Copies to restock to")
        self.restock_button = QPushButton("Restock")
        self.answer = label("", name="Muted", wrap=True)  # two lines rather than cut words
        self.answer.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def _lay_out(self) -> None:
        """Controls on top, then the line that says what is drawn; the picture left, the chart
        and caches right; the shop row and its answer under both. Everything has room at
        1280×720 at 100 % and at 150 %: the shop row spans the width, and the caches' titles
        are short here (the Cache tab has the long ones)."""
        top = QHBoxLayout()
        top.addWidget(self.load_button)
        top.addWidget(self.rate)
        top.addSpacing(10)
        top.addWidget(label("Teaching speed"))
        top.addWidget(self.pace)
        top.addSpacing(10)
        for button in (self.pause_button, self.back_button, self.step_button):
            top.addWidget(button)
        top.addStretch(1)
        shop = QHBoxLayout()
        shop.addWidget(self.book)
        for widget in (self.lookup_button, self.buy_button, self.two_button, self.copies, self.restock_button):
            shop.addWidget(widget)
        shop.addSpacing(6)
        shop.addWidget(self.answer, 1)
        caches = QHBoxLayout()
        for name, panel in self.caches.items():
            panel.setTitle(CACHE_TITLES[name])
            caches.addWidget(panel)
        right = QVBoxLayout()
        right.addWidget(self.chart, 3)
        right.addLayout(caches, 2)
        main = QHBoxLayout()
        main.addWidget(self.canvas, 3)
        main.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        # The line that says what is drawn, and while paused which step: the whole width, so
        # that a step's words are never cut (``_fitted`` shortens them only if they must be).
        layout.addWidget(self.status)
        layout.addLayout(main, 1)
        layout.addLayout(shop)

    def _connect(self, events: ModelEvents) -> None:
        self.load_button.clicked.connect(self.toggle_load)
        self.rate.valueChanged.connect(self._rate)
        self.pace.currentIndexChanged.connect(lambda _i: self.set_pace(self.pace.currentData()))
        self.pause_button.clicked.connect(self.toggle_pause)
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.step_button.clicked.connect(self._step_on)
        self.book.currentIndexChanged.connect(self._book)
        self.lookup_button.clicked.connect(self.lookup)
        self.buy_button.clicked.connect(lambda: self.buy(1))
        self.two_button.clicked.connect(lambda: self.buy(2))
        self.restock_button.clicked.connect(self.restock)
        events.changed.connect(self._changed)

    # ---- presenter scale ------------------------------------------------------------------------
    def set_scale(self, scale: float) -> None:
        self.canvas.set_scale(scale)
        self.chart.set_scale(scale)

    # ---- the shop row ---------------------------------------------------------------------------
    def chosen(self) -> int:
        return self.book.book_id() or 0

    def _book(self) -> None:
        self.canvas.book = self.chosen()
        self.copies.setValue(next(b.quantity for b in self.books if b.id == self.chosen()))
        self.canvas.update()

    def lookup(self) -> None:
        book = self.chosen()

        def done(result: tuple[bool, Any]) -> None:
            ok, body = result
            if not ok:
                self._told = None
                self.answer.setText(str(body))
                return
            # True when told, not after: dated, and said to be outdated once a newer copy shows.
            self._told = (book, int(body.get("seq", -1)))
            self.answer.setText(f"Book {book}: {body['quantity']} in stock, ${body['price']} "
                                f"(looked up at {time.strftime('%H:%M:%S')})")

        spawn(self.controller.lookup(book), self.report, done)

    def buy(self, buyers: int) -> None:
        book = self.chosen()

        async def buys() -> list[BuyOutcome]:
            return await asyncio.gather(*(self.controller.buy(book) for _ in range(buyers)))

        def done(outcomes: list[BuyOutcome]) -> None:
            self._told = None
            said = " · ".join(o.sentence if buyers == 1 else o.kind for o in outcomes)
            self.answer.setText(f"Book {book}: {said}" if buyers == 1 else f"Two buyers of book {book}: {said}")

        spawn(buys(), self.report, done)

    def restock(self) -> None:
        spawn(self.controller.restock(self.chosen(), self.copies.value()), self.report, self.answer.setText)

    # ---- class controls -------------------------------------------------------------------------
    def _step_on(self) -> None:
        if self.reads_on is not None:
            self.reads_on(1)
        else:
            self.step(1)

    def _rate(self) -> None:
        self.session.load.settings.rate = float(self.rate.value())

    def toggle_load(self) -> None:
        toggle_load(self.session, self.report, self._rate, self._controls)

    def set_pace(self, ms: int) -> None:
        if self.pace.currentData() != ms:
            self.pace.setCurrentIndex(self.pace.findData(ms))  # calls back here
            return
        spawn(self.controller.pace(ms), self.report, self.say)

    def _controls(self) -> None:
        """The buttons' words and states, and the status line: live, or paused and where."""
        self.load_button.setText("Stop load" if self.session.load.running else "Start load")
        paused_at = self.paused_at
        paused = paused_at is not None
        self.pause_button.setText(("Resume" if self.showing else "Resume live") if paused else "Pause")
        self.pause_button.setObjectName("Primary" if paused else "")
        self.pause_button.style().polish(self.pause_button)
        self.back_button.setEnabled(paused and self.position > 1)
        count = self.model.arrows.count
        stuck = self._stuck_at is not None and self._stuck_at[0] == count and time.monotonic() - self._stuck_at[1] < 1
        self.step_button.setEnabled(paused and (self.position < len(self.told) or self.reads_on is not None or (
            count - (paused_at or 0) > len(self.told) and not stuck)))
        if paused_at is not None:
            self.status.setText(self._fitted(self._paused_texts(paused_at)))
        else:
            skipped = self.canvas.skipped - self._skipped_at_tick
            self._skipped_at_tick = self.canvas.skipped
            busy = f" · busy: only {MAX_TRACES} requests drawn at once" if skipped else ""
            shown = {"replay": ["<b>Replay</b> of a recorded run: nothing here acts on a cluster", "<b>Replay</b>"],
                     "rewound": ["<b>Rewound</b>: the cluster as it was; <b>Back to live</b> (above) to act on it",
                                 "<b>Rewound</b>: the cluster as it was"]}.get(self.showing or "")
            self.status.setText(self._fitted(shown or [f"<b>Live</b>: click a node to break or heal it{busy}",
                                                       "<b>Live</b>: click a node to break or heal it"]))
            self.status.setToolTip(f"Under load only {MAX_TRACES} requests are animated at a time; "
                                   "the others are counted on the chart." if skipped else "")

    def _fitted(self, texts: list[str]) -> str:
        """The first of ``texts`` whose words fit the status line's width (the last if none)."""
        font = QFont(self.status.font())
        font.setBold(True)  # measured bold throughout: what fits so fits whatever is bold
        metrics = QFontMetrics(font)
        room = self.status.contentsRect().width()
        for text in texts:
            if metrics.horizontalAdvance(QTextDocumentFragment.fromHtml(text).toPlainText()) <= room:
                return text
        return texts[-1]

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._controls()  # the status line's wording fits its new width

    # ---- drawing ----------------------------------------------------------------------------
    def _changed(self, topics: dict[str, set[Any]]) -> None:
        if "message" in topics:
            if self.paused_at is not None:
                self._controls()  # the count of messages since the pause moves on
            elif self.isVisible():
                self.canvas.take(self.model.arrows.after(self.seen))
                self.seen = self.model.arrows.count
            else:
                self.seen = self.model.arrows.count  # nothing to replay when the tab is shown
        if self._told is not None and "replicas" in topics:
            book, seq = self._told
            if max((c.seq for c in self.model.cells(book) if c.seq is not None), default=-1) > seq:
                self._told = None
                self.answer.setText(f"{self.answer.text()}; it has changed since")
        if self.paused_at is not None or not self.isVisible():
            return
        if topics.keys() & {"node", "replicas"}:
            self.canvas.update()
        now = time.monotonic()
        if ("cache" in topics or "tick" in topics) and now - self._caches_drawn >= CHART_REDRAW_S:
            self._caches_drawn = now  # a list rebuilt a few times a second, not every frame
            self._caches()
        if topics.keys() & {"latency", "tick", "mark"} and now - self._chart_drawn >= CHART_REDRAW_S:
            self._chart_drawn = now
            self.chart.draw_in_steps()  # begins in a later turn than the caches drawn just now
        if "tick" in topics:
            self._controls()

    def _caches(self) -> None:
        for name, panel in self.caches.items():
            panel.show(self.model.caches[name], self.model.now())

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.redraw()

    def redraw(self) -> None:
        self.seen = max(self.seen, self.model.arrows.count) if self.paused_at is None else self.seen
        self._caches()
        self.chart.draw()
        self._controls()
        self.canvas.update()
