"""What can be done to a node from the Live picture: crash, hang, slow, cut off, heal or
restart it, each offered only when it makes sense in the node's state (none while an action on
it is under way), and each done through the controller, its errors shown, never swallowed. A
down node offers one thing, to start it again; what does not apply is drawn greyed out, since
the window's stylesheet would otherwise draw a disabled entry like any other."""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMenu, QWidget

from gui.common import spawn
from nodes.control.nemesis import ABORT_P
from nodes.core.vocabulary import HealthState
from nodes.observe.model import ClusterModel

if TYPE_CHECKING:
    from nodes.session.actions import Controller

#: What "Slow" adds to every answer.
SLOW_MS = 500
#: States a node can be healed from, and what healing does in each.
HEAL_TEXT = {HealthState.DOWN: "Start it again", HealthState.EXITED: "Start it again",
             HealthState.HUNG: "Heal: resume it", HealthState.CUT_OFF: "Heal: reconnect it",
             HealthState.SLOW: "Heal: back to full speed"}
#: States in which a node runs and can be slowed or cut off.
RUNNING = (HealthState.UP, HealthState.SLOW, HealthState.CUT_OFF)
#: Disabled entries greyed out (the window's ``QWidget { color }`` rule would make them look
#: like the others), and the rest as the platform draws them.
MENU_STYLE = ("QMenu { background: #ffffff; border: 1px solid #94a3b8; padding: 4px; }"
              "QMenu::item { padding: 5px 18px; color: #0f172a; }"
              "QMenu::item:selected:enabled { background: #dbeafe; }"
              "QMenu::item:disabled { color: #94a3b8; }"
              "QMenu::separator { height: 1px; background: #e2e8f0; margin: 4px 8px; }")


def heal_text(state: HealthState) -> str:
    """The heal entry's words: what healing does to a node in ``state``."""
    return HEAL_TEXT.get(state, "Heal (nothing to heal)")


#: The abort fault from the menu: the answers whose loss teaches most (the work is done, the
#: caller cannot tell): a replica's update of a write, an order replica's buy.
ABORTABLE = {"catalog": ("/rep/update/", "updates"), "order": ("/buy/", "buys")}


def node_menu(parent: QWidget, name: str, model: ClusterModel, controller: Controller,
              report: Callable[[str], None]) -> QMenu:
    """What can be done to ``name`` now, each through the controller. A node the window did not
    start (attached) can be slowed, cut off and healed, not crashed, hung or restarted."""
    health = model.health(name)
    state, attached = health.state, health.process.attached
    busy = controller.busy(name)
    menu = QMenu(parent)
    menu.setStyleSheet(MENU_STYLE)
    menu.setTitle(name)
    head = menu.addAction(f"{name}: {health.label}")
    head.setEnabled(False)
    if controller.held is not None:  # a replay, or the window rewound: say why nothing below works
        why = menu.addAction(controller.held)
        why.setEnabled(False)
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
         not attached and state not in (HealthState.STARTING, HealthState.DOWN, HealthState.EXITED)),
    ]
    role = name.rstrip("0123456789")
    if role == "catalog":
        full = health.process.disk_full
        actions.append(("Free its disk" if full else "Fill its disk (SQLite: \"database or disk is full\")",
                        lambda: controller.fill_disk(name, not full), running and not attached))
    if role in ABORTABLE:
        path, what = ABORTABLE[role]
        aborting = path in health.process.aborts
        actions.append((f"Stop dropping answers to {what}" if aborting else
                        f"Drop {ABORT_P:.0%} of the answers to {what} (done, answer lost)",
                        lambda: controller.abort(name, path, on=not aborting), running))
    for text, action_of, enabled in actions:
        action = menu.addAction(text)
        action.setEnabled(enabled and not busy)
        action.triggered.connect(lambda _checked=False, act=action_of: spawn(act(), report))
    return menu
