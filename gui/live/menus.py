"""What can be done to a node from the Live picture: crash, hang, slow, cut off, heal or
restart it, each offered only when it makes sense in the node's state (none while an action on
it is under way), and each done through the controller, its errors shown, never swallowed."""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMenu, QWidget

from gui.common import spawn
from nodes.core.vocabulary import HealthState
from nodes.observe.model import ClusterModel

if TYPE_CHECKING:
    from nodes.session.actions import Controller

#: What "Slow" adds to every answer.
SLOW_MS = 500
#: States a node can be healed from, and what healing does in each.
HEAL_TEXT = {HealthState.DOWN: "Heal: start it again", HealthState.EXITED: "Heal: start it again",
             HealthState.HUNG: "Heal: resume it", HealthState.CUT_OFF: "Heal: reconnect it",
             HealthState.SLOW: "Heal: back to full speed"}
#: States in which a node runs and can be slowed or cut off.
RUNNING = (HealthState.UP, HealthState.SLOW, HealthState.CUT_OFF)


def heal_text(state: HealthState) -> str:
    """The heal entry's words: what healing does to a node in ``state``."""
    return HEAL_TEXT.get(state, "Heal (nothing to heal)")


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
    running = state in RUNNING
    actions: list[tuple[str, Callable[[], Coroutine[Any, Any, None]], bool]] = [
        ("Crash (kill the process; its memory is lost)", lambda: controller.crash(name),
         not attached and state in (*RUNNING, HealthState.HUNG, HealthState.STARTING)),
        ("Hang (stop answering; connections still accepted)", lambda: controller.hang(name),
         not attached and state in RUNNING),
        (f"Slow (add {SLOW_MS} ms to every answer)", lambda: controller.slow(name, SLOW_MS),
         running and not health.process.slow_ms),
        ("Cut off (no traffic in or out)", lambda: controller.cut_off(name, True),
         running and state != HealthState.CUT_OFF),
        (heal_text(state), lambda: controller.heal(name), state in HEAL_TEXT),
        ("Restart (clean stop, then start)", lambda: controller.restart(name),
         not attached and state != HealthState.STARTING),
    ]
    for text, action_of, enabled in actions:
        action = menu.addAction(text)
        action.setEnabled(enabled and not busy)
        action.triggered.connect(lambda _checked=False, act=action_of: spawn(act(), report))
    return menu
