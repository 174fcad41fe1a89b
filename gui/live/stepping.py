"""Pause and step on the Live tab: while paused the model keeps every message, and Step and
Back go through them one at a time in causal order (a message after the one that caused it, an
answer after every hop it waited for: ``nodes.observe.arrows.step_order``); Resume draws what
happened meanwhile. A part of ``LiveView``, kept apart so that the view's layout and its
stepping can each be read alone."""
from __future__ import annotations

import time

from gui.live.arrows import short_text
from gui.live.canvas import LiveCanvas
from nodes.observe.arrows import Arrow, ArrowKind, step_order
from nodes.observe.model import ClusterModel

#: A step orders at most this many of the messages not shown yet (the oldest), so that a long
#: pause under load stays quick to step through.
STEP_WINDOW = 3000
#: Messages before the pause looked at for causes already shown.
KNOWN_BEFORE_PAUSE = 5000


class PauseAndStep:
    """Pause, Step, Back and Resume, for a view with a ``model`` and a ``canvas``."""

    model: ClusterModel
    canvas: LiveCanvas
    seen: int  # the last message taken from the model
    paused_at: int | None  # the message count when paused
    told: list[Arrow]  # while paused: the messages stepped to so far, in the order shown
    position: int  # where Back and Step have got to among them (1 is the first; 0 before it)
    _stuck_at: tuple[int, float] | None  # a Step that found nothing yet: (message count, when)
    _known: set[tuple[str | None, str | None]]
    _entered: set[str | None]
    showing: str | None  # "replay" or "rewound" while the window shows a recording

    def _controls(self) -> None:
        raise NotImplementedError  # the view's buttons and status line

    def redraw(self) -> None:
        raise NotImplementedError  # the view's chart and caches

    def toggle_pause(self) -> None:
        if self.paused_at is None:
            self.pause()
        else:
            self.resume()

    def pause(self) -> None:
        """Freeze the picture; the model keeps every message meanwhile."""
        self.paused_at = self.seen
        self.told, self.position, self._stuck_at = [], 0, None
        earlier = [a for a in self.model.arrows.after(max(0, self.paused_at - KNOWN_BEFORE_PAUSE))
                   if a.number <= self.paused_at and a.kind == ArrowKind.REQUEST]
        self._known = {(a.trace, a.span) for a in earlier}
        self._entered = {a.trace for a in earlier if a.source == "client"}
        self.canvas.freeze()
        self._controls()

    def step(self, by: int) -> None:
        """While paused, go to the next (or previous) message since the pause, in causal order:
        Back and Step again show what was shown; a step past the last takes the next message
        of ``step_order`` among those not shown yet."""
        if self.paused_at is None:
            return
        if by < 0 and self.position > 1:
            self.position -= 1
        elif by > 0 and self.position < len(self.told):
            self.position += 1
        elif by > 0:
            following = self.next_message()
            if following is None:
                self._stuck_at = (self.model.arrows.count, time.monotonic())
                self._controls()
                return
            self.told.append(following)
            self.position = len(self.told)
        else:
            self._controls()
            return
        self.canvas.show_step(self.told[self.position - 1])
        self._controls()

    def next_message(self) -> Arrow | None:
        """The next message to step to: the first, in causal order, of those since the pause
        not shown yet (the oldest ``STEP_WINDOW`` of them), whose cause has been heard of."""
        assert self.paused_at is not None
        shown = {a.number for a in self.told}
        waiting = [a for a in self.model.arrows.after(self.paused_at) if a.number not in shown][:STEP_WINDOW]
        known = self._known | {(a.trace, a.span) for a in self.told if a.kind == ArrowKind.REQUEST}
        entered = self._entered | {a.trace for a in self.told if a.source == "client"}
        ordered = step_order(waiting, known, self.model.now(), entered)
        return ordered[0] if ordered else None

    def resume(self) -> None:
        """Back to live: what happened meanwhile is drawn (chart, caches), new messages move."""
        self.paused_at = None
        self.seen = self.model.arrows.count
        self.canvas.thaw()
        self.redraw()

    def stepped_message(self) -> Arrow | None:
        if self.paused_at is None or not self.position:
            return None
        return self.told[self.position - 1]

    def _paused_texts(self, paused_at: int) -> list[str]:
        """How many messages came since the pause, and which one is stepped to, with its time:
        the longest wording first, then shorter ones (``_fitted`` takes the first that fits)."""
        count = self.model.arrows.count - paused_at
        since = f"{count} message{'' if count == 1 else 's'} since"
        message = self.stepped_message()
        # A replay has no cluster to keep running; a rewound window's cluster does.
        running = "" if self.showing == "replay" else " · the cluster keeps running"
        paused = f"<b>Paused</b>{running} · {since}"
        if message is None:
            return [f"{paused} · press Step ▶ for the first", paused, f"<b>Paused</b> · {since}"]
        when = (f"{time.strftime('%H:%M:%S', time.localtime(message.t))}.{int(message.t % 1 * 1000):03d}")
        step = f"step <b>{self.position}</b>: {message.source} → {message.target}"
        return [f"{paused} · {step} {short_text(message.text, 48)} · sent {when}",
                f"<b>Paused</b> · {since} · {step} {short_text(message.text, 48)} · sent {when}",
                f"<b>Paused</b> · {step} {short_text(message.text, 40)} · sent {when}",
                f"<b>Paused</b> · {step} {short_text(message.text, 28)}",
                f"{step} {short_text(message.text, 16)}"]
