"""The time slider: a strip above the tabs for going back in time. Over a run opened from a file
it says so ("Replay of FILE, recorded DATE") and plays it at 0.25×–8×; over the live cluster it
rewinds the last minutes while the cluster runs on, and "Back to live" follows it again. Either
way: every fault, heal and anomaly is marked on the slider, the jump buttons go to the previous
or next fault or anomaly, and the message buttons step through the Live picture's messages in
causal order. The window's one model is fed by the source's player, so every tab shows the
instant chosen."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from gui.common import COLORS, label
from nodes.observe.views import Mark, MarkKind
from nodes.runs.player import mark_near
from nodes.runs.sources import LiveSource, RunSource

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: The slider's steps per second of run (tenths of a second).
STEPS_PER_S = 10
#: How often playback moves on, and how long the background reading of a run may take a turn.
FRAME_MS = 40
INDEX_BUDGET_S = 0.015
MARK_COLORS = {MarkKind.FAULT: COLORS["down"], MarkKind.HEAL: COLORS["up"], MarkKind.ANOMALY: COLORS["anomaly"]}


def clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class MarkedSlider(QSlider):
    """A slider with a tick for every fault (red), heal (green) and anomaly (pink) of the run."""

    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.marks: list[tuple[int, MarkKind, str]] = []  # (slider value, kind, text)
        self.setMouseTracking(True)

    def set_marks(self, marks: list[tuple[int, MarkKind, str]]) -> None:
        if marks != self.marks:
            self.marks = marks
            self.update()

    def _x(self, value: int) -> float:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, self.maximum() - self.minimum())
        left = groove.left() + handle.width() / 2
        width = groove.width() - handle.width()
        return left + width * (value - self.minimum()) / span

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if not self.marks:
            return
        painter = QPainter(self)
        for value, kind, _text in self.marks:
            pen = QPen(QColor(MARK_COLORS.get(kind, COLORS["muted"])))
            pen.setWidthF(2.5 if kind == MarkKind.ANOMALY else 2.0)
            painter.setPen(pen)
            x = self._x(value)
            painter.drawLine(QRectF(x, 1, 0, 0).topLeft(), QRectF(x, self.height() - 1, 0, 0).topLeft())
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        super().mouseMoveEvent(event)
        x = event.position().x()
        near = [text for value, _kind, text in self.marks if abs(self._x(value) - x) <= 4]
        self.setToolTip("\n".join(near[:6]))


class ReplayBar(QFrame):
    """The strip; ``jumped`` when the model was put at another instant (every view draws
    everything again), ``played`` when playback starts, ``live_changed`` when the window went
    from live to rewound or back."""

    jumped = Signal()
    live_changed = Signal(bool)
    played = Signal()

    def __init__(self, source: RunSource | LiveSource, step_message: Callable[[int], None]) -> None:
        super().__init__()
        self.setObjectName("ReplayBar")
        self.setStyleSheet(replay_stylesheet())
        self.source = source
        self.step_message = step_message
        self.playing = False
        self.speed = 1.0
        self._played_at = 0.0
        self._dragging = False
        #: Held while the source seeks (the window's ``ModelEvents.held``): ``jumped`` follows.
        self.quiet: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        self.banner = label("", name="Banner")
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setMinimumWidth(1)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.back_fault = QPushButton("◀ Fault")
        self.back_fault.setToolTip("Back to the previous fault or anomaly")
        self.back_message = QPushButton("◀ Step")
        self.back_message.setToolTip("The previous message on the Live picture, in causal order")
        self.play_button = QPushButton("❚❚ Pause")
        self.play_button.setObjectName("Primary")
        self.play_button.setMinimumWidth(self.play_button.sizeHint().width())  # the wider: no shift
        self.next_message = QPushButton("Step ▶")
        self.next_message.setToolTip("The next message on the Live picture, in causal order")
        self.next_fault = QPushButton("Fault ▶")
        self.next_fault.setToolTip("On to the next fault or anomaly")
        self.speeds = QComboBox()
        for speed in SPEEDS:
            self.speeds.addItem(f"{speed:g}×", speed)
        self.speeds.setCurrentIndex(SPEEDS.index(1.0))
        self.speeds.setAccessibleName("Playback speed")
        self.slider = MarkedSlider()
        self.slider.setAccessibleName("Time in the run")
        self.slider.setMinimumWidth(120)
        self.position = label("", name="Muted")
        self.live_button = QPushButton("Back to live")
        self.live_button.setObjectName("Primary")
        for button, name in ((self.back_fault, "Previous fault"), (self.back_message, "Previous message"),
                             (self.next_message, "Next message"), (self.next_fault, "Next fault")):
            button.setAccessibleName(name)
        # What is shown says so on a line of its own, above the controls: a replay, or the past.
        rows = QVBoxLayout()
        rows.setContentsMargins(12, 3, 12, 3)
        rows.setSpacing(2)
        rows.addWidget(self.banner)
        controls = QHBoxLayout()
        controls.setSpacing(6)
        for widget in (self.back_fault, self.back_message, self.play_button, self.next_message, self.next_fault,
                       self.speeds):
            controls.addWidget(widget)
        controls.addWidget(self.slider, 5)
        controls.addWidget(self.position)
        controls.addWidget(self.live_button)
        rows.addLayout(controls)
        self.setLayout(rows)

        self.back_fault.clicked.connect(lambda: self.jump(-1))
        self.next_fault.clicked.connect(lambda: self.jump(1))
        self.back_message.clicked.connect(lambda: self.step(-1))
        self.next_message.clicked.connect(lambda: self.step(1))
        self.play_button.clicked.connect(self.toggle_play)
        self.speeds.currentIndexChanged.connect(lambda _i: self._set_speed(self.speeds.currentData()))
        self.slider.sliderPressed.connect(self._pressed)
        self.slider.sliderReleased.connect(self._released)
        self.slider.valueChanged.connect(self._moved)
        self.live_button.clicked.connect(self.back_to_live)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._frame)
        self.timer.start(FRAME_MS)
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.timeout.connect(self._dragged)
        self.refresh()

    # ---- where it is ------------------------------------------------------------------------------
    @property
    def rewound(self) -> bool:
        return not self.source.live or self.source.rewound  # type: ignore[union-attr]

    def _value(self, t: float) -> int:
        return round((t - self.source.start) * STEPS_PER_S)

    def refresh(self) -> None:
        """The banner, the slider's range, position and marks, and which buttons work now."""
        source = self.source
        start, end, now = source.start, source.end, source.time
        live = source.live and not self.rewound
        if source.live:
            reach = end - start
            self.banner.setText(f"<b>{source.banner()}</b>" if self.rewound else
                                f"<b>Live</b> · drag back to rewind {clock(reach)}")
        else:
            text = source.banner()
            indexed = source.indexed  # type: ignore[union-attr]
            if indexed < 1:
                text += f" · reading the run {indexed:.0%}"
            self.banner.setText(f"<b>{text}</b>")
        self.banner.setToolTip(self.banner.text().replace("<b>", "").replace("</b>", ""))
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(1, self._value(end)))
        if not self._dragging:
            self.slider.setValue(self._value(end if live else now))
        self.slider.blockSignals(False)
        self.slider.set_marks([(self._value(m.t), m.kind, self._mark_text(m)) for m in source.marks()
                               if start <= m.t <= end])
        self.position.setText(f"{clock(now - start)} / {clock(end - start)}" if not live else "now")
        self.live_button.setVisible(source.live and self.rewound)
        for widget in (self.back_message, self.next_message, self.play_button, self.speeds):
            widget.setEnabled(self.rewound)
        self.back_fault.setEnabled(self._mark(-1) is not None)
        self.next_fault.setEnabled(self.rewound and self._mark(1) is not None)
        self.play_button.setText("❚❚ Pause" if self.playing else "▶ Play")

    def _mark_text(self, mark: Mark) -> str:
        return f"{clock(mark.t - self.source.start)}  {mark.text}"

    def _mark(self, direction: int) -> Mark | None:
        reachable = (m for m in self.source.marks() if self.source.start <= m.t)
        return mark_near(reachable, self.source.time, direction)

    # ---- moving ------------------------------------------------------------------------------------
    def seek(self, t: float) -> None:
        """The model at ``t``; every view draws that instant (``jumped``: whether the model went
        back to a keyframe or on, a view that draws by turns would keep the instant before)."""
        was_live = self.source.live and not self.rewound
        with self.quiet():
            self.source.seek(t)
        self.jumped.emit()
        if was_live:
            self.live_changed.emit(False)
        self.refresh()

    def jump(self, direction: int) -> None:
        mark = self._mark(direction)
        if mark is not None:
            self.pause()
            self.seek(mark.t)

    def step(self, by: int) -> None:
        if not self.rewound:
            return
        self.pause()
        self.step_message(by)
        self.refresh()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.source.time >= self.source.end - 1e-6 and not self.source.live:
            self.seek(self.source.start)  # played to the end: again from the start
        self.playing = True
        self._played_at = time.monotonic()
        self.played.emit()
        self.refresh()

    def pause(self) -> None:
        self.playing = False
        self.refresh()

    def back_to_live(self) -> None:
        if isinstance(self.source, LiveSource) and self.source.rewound:
            self.playing = False
            self.source.back_to_live()
            self.jumped.emit()
            self.live_changed.emit(True)
        self.refresh()

    def _set_speed(self, speed: Any) -> None:
        self.speed = float(speed)

    def _frame(self) -> None:
        """Playback moves on; a run is read on in the background; the strip is kept true."""
        if isinstance(self.source, RunSource) and self.source.indexed < 1:
            self.source.index(INDEX_BUDGET_S)
        if self.playing:
            now = time.monotonic()
            target = self.source.time + (now - self._played_at) * self.speed
            self._played_at = now
            if isinstance(self.source, LiveSource) and target >= self.source.recorder.recording.end:
                self.back_to_live()  # caught up with the present: live again
                return
            self.source.forward(target)
            if target >= self.source.end:
                self.playing = False
        if self.isVisible():
            self.refresh()

    def _pressed(self) -> None:
        self._dragging = True
        self.pause()

    def _released(self) -> None:
        self._dragging = False
        self._moved(self.slider.value())

    def _moved(self, value: int) -> None:
        """Dragged or clicked: while dragging, the instant is drawn once a frame at most (the
        last place the handle was), so the handle never waits on the views."""
        if self._dragging:
            if not self._drag_timer.isActive():
                self._drag_timer.start(FRAME_MS)
            return
        self._go(value)

    def _dragged(self) -> None:
        self._go(self.slider.value())

    def _go(self, value: int) -> None:
        """To the slider's ``value``, unless it is where the model is already."""
        target = self.source.start + value / STEPS_PER_S
        live = self.source.live and not self.rewound
        if live and value >= self.slider.maximum():
            return  # still at the present
        if abs(target - self.source.time) > 0.5 / STEPS_PER_S or live:
            self.seek(target)


class RewindSlider(QWidget):
    """Live: the last minutes as a small slider in the status bar, the present at its right end,
    every fault and heal marked. Dragging it back rewinds (the strip with its controls comes up
    above the tabs and says so); it goes back to the end when the window is live again."""

    rewind = Signal(float)
    #: Let go at the present end after a drag had rewound the window: it goes back to live.
    back = Signal()

    def __init__(self, source: LiveSource) -> None:
        super().__init__()
        self.source = source
        self.caption = label("Rewind", name="Muted")
        self.slider = MarkedSlider()
        self.slider.setAccessibleName("Rewind the live cluster")
        self.slider.setToolTip("Drag back to see the cluster as it was (it keeps running meanwhile)")
        self.slider.setMinimumWidth(220)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 6, 0)
        row.addWidget(self.caption)
        row.addWidget(self.slider, 1)
        self.slider.sliderReleased.connect(self._released)
        self.slider.sliderMoved.connect(self._moved)
        self.slider.actionTriggered.connect(lambda _action: QTimer.singleShot(0, self._stepped))
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(1000)
        #: While the handle is dragged the window rewinds to it once a frame at most, as the
        #: replay strip's slider does: the tabs follow the hand, not only its letting go.
        self._drag_timer = QTimer(self)
        self._drag_timer.setSingleShot(True)
        self._drag_timer.setInterval(FRAME_MS)
        self._drag_timer.timeout.connect(self._dragged)
        self.refresh()

    def refresh(self) -> None:
        """The reach and the marks now; at the present end unless being dragged."""
        source = self.source
        start, end = source.start, time.time()
        trouble = source.recorder.writer.error  # a full disk, say: the buffer still rewinds
        if not self.slider.isSliderDown():  # while dragged it says where the handle is
            self.caption.setText(f"Rewind {clock(end - start)}" + (" · not saved to disk" if trouble else ""))
        self.caption.setToolTip(f"{trouble}; rewinding still works (the last minutes are kept in memory)"
                                if trouble else "")
        if self.slider.isSliderDown():
            return  # its range stays while dragged: grown with the clock, the handle's place would
            # name a later moment under a still hand (a new user saw the tabs jump 3 s ahead)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(1, round((end - start) * STEPS_PER_S)))
        if not source.rewound:
            self.slider.setValue(self.slider.maximum())
        self.slider.blockSignals(False)
        self.slider.set_marks([(round((m.t - start) * STEPS_PER_S), m.kind, f"{m.text}")
                               for m in source.model.marks if start <= m.t <= end])

    def _target(self) -> float:
        return self.source.start + self.slider.value() / STEPS_PER_S

    def _moved(self, _value: int) -> None:
        target = self._target()
        self.caption.setText(f"Rewind to {datetime.fromtimestamp(target).strftime('%H:%M:%S')} "
                             f"({time.time() - target:.0f} s ago)")  # as the strip will say it
        if not self._drag_timer.isActive():
            self._drag_timer.start()

    def _dragged(self) -> None:
        if self.slider.isSliderDown() and self.slider.value() < self.slider.maximum():
            self.rewind.emit(self._target())

    def _released(self) -> None:
        self._drag_timer.stop()
        if self.slider.value() < self.slider.maximum():
            self.rewind.emit(self._target())
        elif self.source.rewound:
            self.back.emit()
        self.refresh()

    def _stepped(self) -> None:  # the keyboard or a click on the groove, not a drag
        if not self.slider.isSliderDown() and self.slider.value() < self.slider.maximum():
            self.rewind.emit(self._target())


def replay_stylesheet() -> str:
    return (f"QFrame#ReplayBar {{ background: #fdf2f8; border-bottom: 1px solid {COLORS['line']}; }}"
            f" QLabel#Banner {{ color: {COLORS['anomaly']}; }}")


def set_acting(widgets: list[QWidget], on: bool, why: str) -> None:
    """Controls that act on the cluster: off (with ``why`` as their tooltip) or on again, with
    the tooltips they had."""
    for widget in widgets:
        if widget.property("tip_when_acting") is None:
            widget.setProperty("tip_when_acting", widget.toolTip())
        widget.setEnabled(on)
        widget.setToolTip(str(widget.property("tip_when_acting")) if on else why)
