"""What can be done to a node from the Live picture: crash, hang, slow, cut off, heal or
restart it, each offered only when it makes sense in the node's state (none while an action on
it is under way), and each done through the controller, its errors shown, never swallowed."""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMenu, QWidget

from gui.common import spawn
from nodes.observe.model import ClusterModel

if TYPE_CHECKING:
    from nodes.session.actions import Controller

#: What "Slow" adds to every answer.
SLOW_MS = 500
HEALABLE = ("down", "exited", "hung", "cut off", "slow")


def heal_text(state: str) -> str:
    """The heal entry's words: what healing does to a node in ``state``."""
    return {"down": "Heal: start it again", "exited": "Heal: start it again", "hung": "Heal: resume it",
            "cut off": "Heal: reconnect it", "slow": "Heal: back to full speed"}.get(state, "Heal (nothing to heal)")


def node_menu(parent: QWidget, name: str, model: ClusterModel, controller: Controller,
              report: Callable[[str], None]) -> QMenu:
    """What can be done to ``name`` now, each through the controller. A node the window did not
    start (attached) can be slowed, cut off and healed, not crashed, hung or restarted."""
    health = model.health(name)
    state, attached = health.state, health.process.attached
    busy = controller.busy(name)
    menu = QMenu(parent)
    menu.setTitle(name)
    head = menu.addAction(f"{name}: {health.label}")
    head.setEnabled(False)
    menu.addSeparator()
    running = state in ("up", "slow", "cut off")
    actions: list[tuple[str, Callable[[], Coroutine[Any, Any, None]], bool]] = [
        ("Crash (kill the process; its memory is lost)", lambda: controller.crash(name),
         not attached and state in ("up", "slow", "cut off", "hung", "starting")),
        ("Hang (stop answering; connections still accepted)", lambda: controller.hang(name),
         not attached and state in ("up", "slow", "cut off")),
        (f"Slow (add {SLOW_MS} ms to every answer)", lambda: controller.slow(name, SLOW_MS),
         running and not health.process.slow_ms),
        ("Cut off (no traffic in or out)", lambda: controller.cut_off(name, True), running and state != "cut off"),
        (heal_text(state), lambda: controller.heal(name), state in HEALABLE),
        ("Restart (clean stop, then start)", lambda: controller.restart(name),
         not attached and state != "starting"),
    ]
    for text, action_of, enabled in actions:
        action = menu.addAction(text)
        action.setEnabled(enabled and not busy)
        action.triggered.connect(lambda _checked=False, act=action_of: spawn(act(), report))
    return menu
